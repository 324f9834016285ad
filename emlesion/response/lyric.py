"""LYRIC (Cheson 2016): Lugano 2014 with indeterminate responses for immunomodulatory therapy.

LYRIC (LYmphoma Response to Immunomodulatory therapy Criteria) keeps the Lugano 2014
response categories and changes one thing: a first progression-like finding during
immunomodulatory therapy (checkpoint inhibitors, CAR-T) is called an *indeterminate
response* (IR1, IR2 or IR3) instead of progressive disease, because a flare or
pseudo-progression looks the same on a single scan. A later scan (or a biopsy, which the
images cannot show) then decides between response and true progression.

This module does not restate the Lugano rules: it calls :func:`assess_lugano_pet` and
:func:`assess_lugano_ct` and reads their categories, rule ids and numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emlesion.errors import ResponseError, ResponseWarning, format_message

from ._common import at_least, at_most, build, fmt, fmt_pct, new_lesions, percent_change
from .assessment import (
    Assessment,
    Criterion,
    LuganoCtCategory,
    LuganoPetCategory,
    LyricCategory,
)
from .lugano import assess_lugano_ct, assess_lugano_pet
from .observations import LesionObservation, TimepointObservation

__all__ = ["LyricBasis", "assess_lyric"]

#: IR1: SPD increase (percent, inclusive) ...
IR1_SPD_INCREASE_PCT = 50.0
#: ... within this many days of the start of therapy (12 weeks, inclusive).
IR1_WINDOW_DAYS = 84.0
#: An IR1/IR2 becomes PD when the SPD grows by at least this many percent over the SPD at
#: the time of the IR.
CONFIRM_SPD_INCREASE_PCT = 10.0

_IR = (LyricCategory.IR1, LyricCategory.IR2, LyricCategory.IR3)

# the Lugano calls in the one LYRIC vocabulary (PD here still means "Lugano progression")
_FROM_PET = {LuganoPetCategory.CMR: LyricCategory.CR, LuganoPetCategory.PMR: LyricCategory.PR,
             LuganoPetCategory.NMR: LyricCategory.SD, LuganoPetCategory.PMD: LyricCategory.PD}
_FROM_CT = {LuganoCtCategory.CR: LyricCategory.CR, LuganoCtCategory.PR: LyricCategory.PR,
            LuganoCtCategory.SD: LyricCategory.SD, LuganoCtCategory.PD: LyricCategory.PD}

# rule ids of the Lugano engines that this module reads
_CT_NEW = "LUGANO_CT.PD.new_lesion"
_CT_SIZE = ("LUGANO_CT.PD.lesion_progression", "LUGANO_CT.PD.regrowth")
_PET_NEW = "LUGANO_PET.PMD.new_lesion"
_PET_UPTAKE = "LUGANO_PET.PMD.uptake_increase"


class LyricBasis(str, enum.Enum):
    """Which Lugano call LYRIC starts from.

    ``PET_CT``: the PET-based call when it is evaluable, else the CT-based call (Lugano
    2014: PET-CT based response for FDG-avid histologies). ``CT``: the CT-based call only
    (histologies that are not FDG-avid); IR3 is then never assigned.
    """

    PET_CT = "pet_ct"
    CT = "ct"

    @classmethod
    def coerce(cls, value: str | LyricBasis) -> LyricBasis:
        """Accept a member or its value, case-insensitively."""
        if isinstance(value, cls):
            return value
        text = str(value).strip().lower().replace("-", "_")
        for member in cls:
            if text in (member.value, member.name.lower()):
                return member
        raise ResponseError(format_message(
            f"unknown LYRIC basis {value!r}", fix="use one of " + ", ".join(m.value for m in cls)))


@dataclass(frozen=True)
class _Settings:
    therapy_start: _dt.date | None
    ir1_window_days: float
    ir1_spd_increase_pct: float
    confirm_spd_increase_pct: float
    basis: LyricBasis
    pet_options: Mapping[str, Any]
    ct_options: Mapping[str, Any]


@dataclass(frozen=True)
class _Decision:
    """The LYRIC call of one timepoint before it becomes an :class:`Assessment`."""

    timepoint: TimepointObservation
    category: LyricCategory
    rule: str
    reasons: tuple[str, ...]
    numbers: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    nadir: str | None = None
    #: SPD (mm²) of the Lugano baseline targets, None unless every target was measured
    spd: float | None = None


def _measured(les: LesionObservation | None) -> bool:
    """True when the Lugano CT engine can give ``les`` a PPD (resolved and too-small lesions
    have the conventional 0 x 0 and 5 x 5 mm; otherwise both axes are needed)."""
    if les is None:
        return False
    return les.resolved or les.too_small or (les.ld_mm is not None and les.sa_mm is not None)


def _complete_spd(ct: Assessment, followup: TimepointObservation) -> float | None:
    """The follow-up SPD reported by the Lugano CT engine when every target was measured."""
    targets = ct.numbers.get("targets")
    spd = ct.numbers.get("followup_spd_mm2")
    if not targets or spd is None:
        return None
    if not all(_measured(followup.lesion(tid)) for tid in targets):
        return None
    return float(spd)


def _new_ids(baseline: TimepointObservation, tp: TimepointObservation) -> list[str]:
    """``track_id`` of the new lesions of ``tp``, as every engine counts them."""
    return [les.track_id for les in new_lesions(baseline, tp)]


def _only(tp: TimepointObservation, keep: set[str]) -> TimepointObservation:
    """``tp`` with only the lesions whose ``track_id`` is in ``keep``."""
    return dataclasses.replace(tp, lesions=tuple(les for les in tp.lesions
                                                 if les.track_id in keep))


def _days_since_start(followup: TimepointObservation, start: _dt.date | None) -> int | None:
    if followup.date is None or start is None:
        return None
    days = (followup.date - start).days
    if days < 0:
        raise ResponseError(format_message(
            f"follow-up {followup.label} ({followup.date}) is dated before the start of "
            f"therapy ({start})", fix="pass therapy_start on or before the follow-up scan"))
    return days


def _lugano_warnings(pet: Assessment, ct: Assessment, basis: LyricBasis) -> list[str]:
    """The Lugano engines' warnings, once each, with the engine that raised them."""
    seen: dict[str, list[str]] = {}
    sources = (("CT", ct),) if basis is LyricBasis.CT else (("PET", pet), ("CT", ct))
    for name, a in sources:
        for message in a.warnings:
            seen.setdefault(message, []).append(name)
    return [f"Lugano {'/'.join(names)}: {message}" for message, names in seen.items()]


def _spd_against_nadir(
    ct: Assessment, baseline: TimepointObservation, followup: TimepointObservation,
    history: Sequence[_Decision], numbers: dict[str, Any], warn: list[str],
) -> tuple[float | None, str | None, float | None]:
    """SPD of the Lugano baseline targets now, and its change from the nadir (the smallest
    SPD at baseline or an earlier follow-up): ``(spd_now, nadir label, change %)``; the
    values also go into ``numbers``, a missing target measurement into ``warn``."""
    spd_now = _complete_spd(ct, followup)
    b_spd = ct.numbers.get("baseline_spd_mm2")
    numbers["targets"] = list(ct.numbers.get("targets", []))
    numbers["baseline_spd_mm2"] = b_spd
    numbers["followup_spd_mm2"] = spd_now
    nadir_label: str | None = None
    d_nadir: float | None = None
    if b_spd is not None:
        nadir_label, nadir_spd = baseline.label, float(b_spd)
        for past in history:
            if past.spd is not None and past.spd < nadir_spd:
                nadir_label, nadir_spd = past.timepoint.label, past.spd
        numbers["nadir_spd_mm2"] = nadir_spd
        numbers["nadir_spd_timepoint"] = nadir_label
        if spd_now is not None:
            d_nadir = percent_change(spd_now, nadir_spd)
            numbers["spd_change_from_baseline_pct"] = percent_change(spd_now, float(b_spd))
            numbers["spd_change_from_nadir_pct"] = d_nadir
    if ct.numbers.get("targets") and spd_now is None and ct.category is not LuganoCtCategory.NE:
        warn.append("a Lugano target was not measured at this follow-up: SPD not computed")
    return spd_now, nadir_label, d_nadir


def _decide(
    baseline: TimepointObservation,
    followup: TimepointObservation,
    previous: tuple[TimepointObservation, ...],
    history: Sequence[_Decision],
    cfg: _Settings,
) -> _Decision:
    """LYRIC call of ``followup``; ``history`` holds the calls of ``previous`` (same order).

    Called with the Lugano engines' warnings silenced: the warnings that matter are
    carried in the returned decision and emitted once by :func:`assess_lyric`.
    """
    pet_opts, ct_opts = dict(cfg.pet_options), dict(cfg.ct_options)
    pet = assess_lugano_pet(baseline, followup, **pet_opts)
    ct = assess_lugano_ct(baseline, followup, previous=previous, **ct_opts)
    use_pet = cfg.basis is LyricBasis.PET_CT
    reasons: list[str] = []
    warn = _lugano_warnings(pet, ct, cfg.basis)
    numbers: dict[str, Any] = {
        "lugano_ct": {"category": ct.category.value, "rule": ct.rule},
    }
    if use_pet:
        numbers["lugano_pet"] = {"category": pet.category.value, "rule": pet.rule}
        if "change_pct" in pet.numbers:
            numbers["hottest_uptake_change_pct"] = pet.numbers["change_pct"]

    # --- SPD of the Lugano baseline targets: now, at baseline, at its nadir
    spd_now, nadir_label, d_nadir = _spd_against_nadir(ct, baseline, followup, history,
                                                       numbers, warn)

    start = cfg.therapy_start or baseline.date
    days = _days_since_start(followup, start)
    numbers["days_since_therapy_start"] = days
    new_ids = _new_ids(baseline, followup)
    numbers["new_lesions"] = new_ids

    def decision(category: LyricCategory, rule: str, nadir: str | None = None) -> _Decision:
        return _Decision(followup, category, rule, tuple(reasons), numbers,
                         tuple(dict.fromkeys(warn)), nadir, spd_now)

    # --- the Lugano call LYRIC starts from (PET-CT precedence, else CT)
    if use_pet and pet.evaluable:
        source, lugano = "lugano_pet", _FROM_PET[LuganoPetCategory(pet.category)]
        reasons.append(f"Lugano PET-based: {pet.category.value} [{pet.rule}]")
        if lugano is not LyricCategory.PD and ct.category is LuganoCtCategory.PD:
            warn.append(f"Lugano CT-based call is PD [{ct.rule}] but the PET-based call "
                        f"({pet.category.value}) takes precedence (Lugano 2014, FDG-avid "
                        "histology); use basis='ct' for a histology that is not FDG-avid")
    elif ct.evaluable:
        source, lugano = "lugano_ct", _FROM_CT[LuganoCtCategory(ct.category)]
        reasons.append(f"Lugano CT-based: {ct.category.value} [{ct.rule}]")
        if use_pet:
            warn.append(f"no evaluable PET-based call [{pet.rule}]: the CT-based call is used")
    else:
        reasons.append(f"no evaluable Lugano call: CT [{ct.rule}]"
                       + (f", PET [{pet.rule}]" if use_pet else ""))
        reasons += [f"Lugano CT: {r}" for r in ct.reasons]
        if use_pet:
            reasons += [f"Lugano PET: {r}" for r in pet.reasons]
        return decision(LyricCategory.NE, "LYRIC.NE.no_lugano_call")
    numbers["lugano_basis_used"] = source
    if d_nadir is not None:
        reasons.append(f"SPD {fmt(numbers['nadir_spd_mm2'], 0)} mm² (nadir, {nadir_label}) -> "
                       f"{fmt(spd_now, 0)} mm² ({fmt_pct(d_nadir)})")

    # --- the open IR episode, if any: consecutive IR calls (NE skipped) up to now
    ref: _Decision | None = None
    for past in reversed(history):
        if past.category is LyricCategory.NE:
            continue
        if past.category in _IR:
            ref = past
            continue
        break
    earlier_pd = next((p for p in history if p.category is LyricCategory.PD), None)

    if lugano is not LyricCategory.PD:
        if ref is not None:
            reasons.append(f"{ref.category.value} at {ref.timepoint.label} not confirmed: the "
                           f"follow-up no longer meets Lugano progression")
        return decision(lugano, f"LYRIC.{lugano.value}.{source}")

    # ---- from here Lugano says progression
    ct_new = ct.rule == _CT_NEW
    pet_new = use_pet and pet.rule == _PET_NEW
    ct_size = ct.rule in _CT_SIZE
    size_rule = ct.rule
    if ct_new:
        # the CT engine stops at the first PD reason: look at the baseline lesions alone
        probe = assess_lugano_ct(baseline, _only(followup, set(baseline.track_ids)),
                                 previous=previous, **ct_opts)
        ct_size, size_rule = probe.rule in _CT_SIZE, probe.rule
        if "lesions" in probe.numbers:
            numbers["lesions"] = probe.numbers["lesions"]
    elif "lesions" in ct.numbers:
        numbers["lesions"] = ct.numbers["lesions"]
    pet_uptake = use_pet and pet.rule == _PET_UPTAKE

    if earlier_pd is not None:
        reasons.append(f"progression was already established at {earlier_pd.timepoint.label}")
        return decision(LyricCategory.PD, "LYRIC.PD.after_pd")

    if ref is not None:
        return _follow_ir(baseline, followup, previous, ref, numbers, reasons, warn, cfg,
                          spd_now, ct_size or ct_new, size_rule)

    # ---- first progression-like finding: IR1 / IR2 / IR3, or PD
    k = cfg.ir1_spd_increase_pct
    spd_big = d_nadir is not None and at_least(d_nadir, k)
    if d_nadir is None:
        warn.append("SPD change not available: the IR1 (>= "
                    f"{k:g} %) and IR2 (< {k:g} %) SPD conditions could not be checked")
    in_window = days is not None and at_most(days, cfg.ir1_window_days)
    if days is None:
        warn.append("no scan date (or therapy_start): the IR1 window of "
                    f"{cfg.ir1_window_days:g} days could not be checked; IR1 not assigned")
    size_or_number = ct_size or ct_new or pet_new
    if spd_big and in_window:
        reasons.append(f"SPD up by {fmt_pct(d_nadir)} (>= {k:g} %) {days} days after the start "
                       f"of therapy (<= {cfg.ir1_window_days:g}): IR1, indeterminate until "
                       "biopsy or the next scan")
        warn.append("IR1 requires the absence of clinical deterioration, which images cannot "
                    "show: assumed here, a clinician must confirm it")
        return decision(LyricCategory.IR1, "LYRIC.IR1.spd_increase", nadir=nadir_label)
    if spd_big and size_or_number:
        reasons.append(f"SPD up by {fmt_pct(d_nadir)} (>= {k:g} %) {days} days after the start "
                       f"of therapy, beyond the IR1 window of {cfg.ir1_window_days:g} days: "
                       "progression [" + (size_rule if ct_size else ct.rule if ct_new
                                          else pet.rule) + "]")
        return decision(LyricCategory.PD, "LYRIC.PD.spd_increase", nadir=nadir_label)
    if ct_new or pet_new:
        which = [r for r, hit in ((ct.rule, ct_new), (pet.rule, pet_new)) if hit]
        reasons.append("new lesion(s) " + ", ".join(new_ids) + " [" + ", ".join(which) + "]"
                       + (f" with SPD {fmt_pct(d_nadir)} (< {k:g} %)" if d_nadir is not None
                          else "") + ": IR2 (a), indeterminate until biopsy or the next scan")
        if ct_size:
            reasons.append(f"also individual lesion growth [{size_rule}] (IR2 b)")
        return decision(LyricCategory.IR2, "LYRIC.IR2.new_lesion", nadir=nadir_label)
    if ct_size:
        reasons.append(f"individual lesion growth meeting Lugano progression [{size_rule}]"
                       + (f" with SPD {fmt_pct(d_nadir)} (< {k:g} %)" if d_nadir is not None
                          else "") + ": IR2 (b), indeterminate until biopsy or the next scan")
        return decision(LyricCategory.IR2, "LYRIC.IR2.lesion_increase", nadir=nadir_label)
    # only the uptake rose (LUGANO_PET.PMD.uptake_increase); sizes and number do not meet
    # Lugano progression
    if pet_uptake:
        if not ct.evaluable:
            warn.append(f"no evaluable CT-based call [{ct.rule}]: an increase in size could "
                        "not be excluded")
        reasons.append(f"FDG uptake up ({fmt_pct(numbers.get('hottest_uptake_change_pct'))}) "
                       "without a size or number increase meeting Lugano progression: IR3, "
                       "indeterminate until biopsy or the next scan")
        return decision(LyricCategory.IR3, "LYRIC.IR3.uptake_increase", nadir=nadir_label)
    # defensive: a Lugano PD rule this module does not know
    reasons.append(f"Lugano progression [{ct.rule if source == 'lugano_ct' else pet.rule}] "
                   "matches no IR definition")
    return decision(LyricCategory.PD, "LYRIC.PD.lugano")


def _follow_ir(
    baseline: TimepointObservation,
    followup: TimepointObservation,
    previous: tuple[TimepointObservation, ...],
    ref: _Decision,
    numbers: dict[str, Any],
    reasons: list[str],
    warn: list[str],
    cfg: _Settings,
    spd_now: float | None,
    ct_progression: bool,
    size_rule: str,
) -> _Decision:
    """Lugano progression after an open IR (called at ``ref``): PD when confirmed, else IR."""
    kind = ref.category
    r_label = ref.timepoint.label
    numbers["ir_reference_timepoint"] = r_label
    numbers["ir_reference_category"] = kind.value

    def decision(category: LyricCategory, rule: str) -> _Decision:
        return _Decision(followup, category, rule, tuple(reasons), numbers,
                         tuple(dict.fromkeys(warn)), r_label, spd_now)

    # new lesions since the IR: absent at baseline and absent (or resolved) at the IR scan,
    # counted only when the Lugano engines count them (size limits, FDG avidity)
    since = [tid for tid in _new_ids(baseline, followup)
             if (les := ref.timepoint.lesion(tid)) is None or les.resolved]
    numbers["new_lesions_since_ir"] = since
    if since:
        probe_tp = _only(followup, set(baseline.track_ids) | set(since))
        counted = assess_lugano_ct(baseline, probe_tp, previous=previous,
                                   **dict(cfg.ct_options)).rule == _CT_NEW
        if cfg.basis is LyricBasis.PET_CT and not counted:
            counted = assess_lugano_pet(baseline, probe_tp,
                                        **dict(cfg.pet_options)).rule == _PET_NEW
        if counted:
            reasons.append(f"{kind.value} at {r_label} confirmed: new lesion(s) since then: "
                           + ", ".join(since))
            return decision(LyricCategory.PD, "LYRIC.PD.confirmed_new_lesion")
        warn.append("new lesion(s) since the IR not counted by Lugano (size or uptake below "
                    "the limits): " + ", ".join(since))

    if kind is LyricCategory.IR3:
        if ct_progression:
            reasons.append(f"IR3 at {r_label} confirmed: size or number now meets Lugano "
                           f"progression [{size_rule}]")
            return decision(LyricCategory.PD, "LYRIC.PD.confirmed_size_progression")
        reasons.append(f"IR3 at {r_label} not confirmed: uptake still up, no size or number "
                       "increase meeting Lugano progression")
        return decision(LyricCategory.IR3, "LYRIC.IR3.not_confirmed")

    c = cfg.confirm_spd_increase_pct
    if ref.spd is None or spd_now is None:
        at = r_label if ref.spd is None else followup.label
        warn.append(f"SPD not available at {at}: the >= {c:g} % confirmation of "
                    f"{kind.value} could not be checked")
    else:
        d_ref = percent_change(spd_now, ref.spd)
        numbers["ir_reference_spd_mm2"] = ref.spd
        numbers["spd_change_from_ir_pct"] = d_ref
        text = (f"SPD {fmt(ref.spd, 0)} mm² at {r_label} ({kind.value}) -> {fmt(spd_now, 0)} "
                f"mm² ({fmt_pct(d_ref)})")
        if at_least(d_ref, c):
            reasons.append(f"{kind.value} at {r_label} confirmed: {text}, >= {c:g} %")
            return decision(LyricCategory.PD, "LYRIC.PD.confirmed_spd_increase")
        reasons.append(f"{text}, < {c:g} %")
    reasons.append(f"{kind.value} at {r_label} not confirmed (no SPD increase of >= {c:g} %, "
                   "no new lesion since): still indeterminate")
    return decision(kind, f"LYRIC.{kind.value}.not_confirmed")


def assess_lyric(
    baseline: TimepointObservation,
    followup: TimepointObservation,
    previous: Sequence[TimepointObservation] = (),
    *,
    therapy_start: _dt.date | None = None,
    ir1_window_days: float = IR1_WINDOW_DAYS,
    ir1_spd_increase_pct: float = IR1_SPD_INCREASE_PCT,
    confirm_spd_increase_pct: float = CONFIRM_SPD_INCREASE_PCT,
    basis: str | LyricBasis = LyricBasis.PET_CT,
    pet_options: Mapping[str, Any] | None = None,
    ct_options: Mapping[str, Any] | None = None,
) -> Assessment:
    """Assess a follow-up with LYRIC (Lugano 2014 refined for immunomodulatory therapy).

    The Lugano 2014 PET-based and CT-based calls are computed with
    :func:`assess_lugano_pet` and :func:`assess_lugano_ct` (``previous`` gives the CT
    engine its per-lesion nadir). One of them is the *Lugano call*: the PET-based one when
    it is evaluable (Lugano 2014: PET-CT based response for FDG-avid histologies; CMR ->
    CR, PMR -> PR, NMR -> SD, PMD -> PD), else the CT-based one (``basis="ct"``: always
    the CT-based one). When the Lugano call is not progression, LYRIC is the Lugano call.
    When it is progression, LYRIC names an indeterminate response (IR) instead, and calls
    PD only when a later scan confirms a previous IR, or where no IR definition applies.

    LYRIC definitions (the LYRIC table of Cheson 2016 [1]_, read here as tabulated in [2]_;
    the table number in [1] was not checked: its Table 2 compares RECIST, irRC and Lugano):

    * **IR1**: SPD increase of >= 50 % in the first 12 weeks of therapy, without
      clinical deterioration;
    * **IR2**: SPD increase of < 50 % with (a) new lesion(s), or (b) an increase of >= 50 %
      in the PPD of a lesion or set of lesions, at any time during treatment;
    * **IR3**: increase in FDG uptake of one or more lesions without a concomitant increase
      in lesion size or number meeting progression criteria.

    Decision table for one follow-up (first matching row wins; tolerance 1e-9):

    =====  ========================================  ==============================================
    order  rule id                                   condition
    =====  ========================================  ==============================================
    0      ``LYRIC.NE.no_lugano_call``               neither Lugano call evaluable
    1      ``LYRIC.<CR|PR|SD>.lugano_<pet|ct>``      the Lugano call is not progression (an
                                                     open IR is thereby resolved)
    2      ``LYRIC.PD.after_pd``                     Lugano progression after an earlier LYRIC PD
    3      ``LYRIC.PD.confirmed_new_lesion``         open IR; new lesion(s) since the IR scan,
                                                     counted by Lugano (size / FDG avidity)
    4      ``LYRIC.PD.confirmed_size_progression``   open IR3; the CT-based call is progression
                                                     by size or number
    5      ``LYRIC.PD.confirmed_spd_increase``       open IR1 / IR2; SPD >= +10 % over the SPD
                                                     at the IR scan
    6      ``LYRIC.IR<n>.not_confirmed``             open IR, none of rows 3-5: the IR stands
    7      ``LYRIC.IR1.spd_increase``                SPD >= +50 % from nadir, follow-up <= 84
                                                     days after ``therapy_start``
    8      ``LYRIC.PD.spd_increase``                 SPD >= +50 % from nadir after the IR1
                                                     window, with a size or new-lesion
                                                     progression
    9      ``LYRIC.IR2.new_lesion``                  new lesion(s) counted by Lugano (IR2 a)
    10     ``LYRIC.IR2.lesion_increase``             Lugano individual-lesion progression (PPD
                                                     +50 % from nadir and the axis step) or
                                                     regrowth (IR2 b)
    11     ``LYRIC.IR3.uptake_increase``             only the FDG uptake rose
                                                     (``LUGANO_PET.PMD.uptake_increase``)
    12     ``LYRIC.PD.lugano``                       a Lugano progression rule none of the above
                                                     knows (defensive)
    =====  ========================================  ==============================================

    An *open IR* is the run of IR calls (NE calls skipped) that ends at the most recent
    previous call; the IR scan of rows 3-6 is the first of that run.

    Parameters
    ----------
    baseline, followup : TimepointObservation
        Baseline (reference for response) and the follow-up assessed.
    previous : sequence of TimepointObservation
        Timepoints in between, in chronological order: the Lugano CT nadir, the SPD nadir
        and the LYRIC calls at those timepoints (is an IR open?).
    therapy_start : datetime.date, optional
        Start of the immunomodulatory therapy (CAR-T: infusion day). Default: the baseline
        scan date.
    ir1_window_days : float
        IR1 applies up to this many days after ``therapy_start`` (84 = 12 weeks, inclusive).
    ir1_spd_increase_pct : float
        IR1: SPD increase of at least this many percent (50; below it: IR2).
    confirm_spd_increase_pct : float
        An IR1 / IR2 becomes PD at an SPD increase of at least this many percent over the
        SPD at the IR scan (10).
    basis : {"pet_ct", "ct"} or LyricBasis
        Which Lugano call to start from (see :class:`LyricBasis`).
    pet_options, ct_options : mapping, optional
        Keyword options of :func:`assess_lugano_pet` / :func:`assess_lugano_ct`.

    Returns
    -------
    Assessment
        Category :class:`LyricCategory`. ``numbers`` holds both Lugano calls
        (``lugano_pet``, ``lugano_ct``: category and rule), the SPD at baseline, nadir and
        follow-up with the percent changes, the days since ``therapy_start``, the new
        lesions and, after an IR, the IR scan, its SPD and the change since
        (``spd_change_from_ir_pct``). ``nadir`` is the IR scan (rows 3-6) or the SPD nadir.

    Raises
    ------
    ResponseError
        Unknown ``basis``, a non-positive threshold, or a follow-up dated before
        ``therapy_start``.

    Notes
    -----
    Choices and limits (emlesion):

    * "Without clinical deterioration" (IR1) cannot be read from images; it is assumed and
      every IR1 carries a warning saying so. Biopsy, the other way LYRIC resolves an IR,
      is outside the images too.
    * The SPD is that of the Lugano CT targets (up to 6, chosen at baseline by the CT
      engine); its change for IR1 / IR2 is taken from the smallest SPD so far (baseline or
      a previous timepoint with every target measured), as Lugano measures progression
      from nadir; the change from baseline is reported too. The sources say only
      "increase in SPD".
    * IR2 (b) "a lesion or set of lesions": a single lesion is recognised when the Lugano CT
      engine calls individual-lesion progression (which adds LDi > 15 mm and the 5 / 10 mm
      axis step to the +50 % PPD); regrowth of a resolved lesion is counted here too. A
      *set* of lesions growing together is not recognised on its own.
    * Confirmation (rows 3-6) [unverified]: this follows the summary that an IR1 / IR2
      becomes PD when the next scan shows a further SPD increase of >= 10 % over the SPD at
      the time of IR, or new lesions; IR3 when lesion size or number then meets Lugano
      progression. The Cheson 2016 text itself could not be checked here; secondary
      summaries (not verified) say that the new lesions of an IR2 join the target lesions
      (up to 6 in all) before that 10 % comparison, which is not done here: new lesions
      since the IR confirm PD by themselves, and the SPD compared is that of the Lugano
      baseline targets. The reference is the first scan of the open IR.
    * Confirmation only gates a progression call: when the follow-up is no longer Lugano
      progression the IR is resolved to the Lugano call (row 1), whatever the SPD did.
    * With ``basis="pet_ct"`` a CT-based progression under a PET-based non-progression is
      not progression (Lugano precedence); a warning names the discordance.

    References
    ----------
    .. [1] Cheson BD, Ansell S, Schwartz L, Gordon LI, Advani R, Jacene HA, Hoos A,
       Barrington SF, Armand P. Refinement of the Lugano Classification lymphoma response
       criteria in the era of immunomodulatory therapy. Blood 2016;128(21):2489-2496.
       http://ashpublications.net/blood/article/128/21/2489/35743
    .. [2] J Nucl Med review, Table 2 "Immune-modified 18F-FDG PET response criteria:
       LYRIC and iPERCIST" (IR1, IR2a, IR2b, IR3 as used here),
       https://jnm.snmjournals.org/highwire/markup/98398/expansion
    .. [3] Cheson BD, Fisher RI, Barrington SF et al. Recommendations for initial
       evaluation, staging, and response assessment of Hodgkin and non-Hodgkin lymphoma:
       the Lugano classification. J Clin Oncol 2014;32:3059-3068.
    .. [4] Domain reference, section 3.5 (LYRIC).
    """
    previous = tuple(previous)
    for name, value in (("ir1_window_days", ir1_window_days),
                        ("ir1_spd_increase_pct", ir1_spd_increase_pct),
                        ("confirm_spd_increase_pct", confirm_spd_increase_pct)):
        if not value > 0:
            raise ResponseError(format_message(f"{name} must be positive, got {value!r}"))
    cfg = _Settings(therapy_start, float(ir1_window_days), float(ir1_spd_increase_pct),
                    float(confirm_spd_increase_pct), LyricBasis.coerce(basis),
                    dict(pet_options or {}), dict(ct_options or {}))
    parameters: dict[str, Any] = {
        "therapy_start": therapy_start, "ir1_window_days": cfg.ir1_window_days,
        "ir1_spd_increase_pct": cfg.ir1_spd_increase_pct,
        "confirm_spd_increase_pct": cfg.confirm_spd_increase_pct, "basis": cfg.basis.value,
        "pet_options": cfg.pet_options, "ct_options": cfg.ct_options,
        "previous": [p.label for p in previous],
    }
    thresholds: dict[str, Any] = {
        "ir1_spd_increase_pct_at_least": cfg.ir1_spd_increase_pct,
        "ir1_days_since_therapy_start_at_most": cfg.ir1_window_days,
        "ir2_spd_increase_pct_below": cfg.ir1_spd_increase_pct,
        "ir2b_lesion_ppd_increase_pct_at_least": 50.0,
        "pd_confirm_spd_increase_from_ir_pct_at_least": cfg.confirm_spd_increase_pct,
    }
    # the history (LYRIC calls at the previous timepoints) and the Lugano engines run with
    # their warnings silenced; the warnings of this call are emitted once, by build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResponseWarning)
        history: list[_Decision] = []
        for k, tp in enumerate(previous):
            history.append(_decide(baseline, tp, previous[:k], history, cfg))
        d = _decide(baseline, followup, previous, history, cfg)
    numbers = dict(d.numbers)
    numbers["previous_calls"] = {h.timepoint.label: h.category.value for h in history}
    nadir = d.nadir if d.nadir != baseline.label else None
    return build(Criterion.LYRIC, "assess_lyric", baseline, followup, d.category, d.rule,
                 d.reasons, numbers, thresholds, d.warnings, parameters, nadir=nadir)
