"""PERCIST 1.0 (Wahl et al. 2009), as restated step by step in "Practical PERCIST"."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from emlesion.errors import ResponseError, format_message

from ._common import (
    at_least,
    at_most,
    build,
    check_order,
    fmt,
    fmt_pct,
    less_than,
    more_than,
    new_lesions,
    percent_change,
    select_by_organ,
)
from .assessment import Assessment, Criterion, PercistCategory
from .observations import LesionObservation, TimepointObservation, UptakeMetric

__all__ = ["MeasurabilityReference", "ProgressionReference", "assess_percist",
           "percist_measurability_threshold"]

#: PMR needs a decrease of at least this many percent (inclusive) ...
PMR_DECREASE_PCT = 30.0
#: ... and at least this many SUL units (inclusive).
PMR_DECREASE_ABS = 0.8
#: PMD needs an increase of more than this many percent (exclusive) ...
PMD_INCREASE_PCT = 30.0
#: ... and more than this many SUL units (exclusive).
PMD_INCREASE_ABS = 0.8


class ProgressionReference(str, enum.Enum):
    """Scan that progression is measured against."""

    BASELINE = "baseline"
    NADIR = "nadir"


class MeasurabilityReference(str, enum.Enum):
    """Normal tissue defining the PERCIST measurability threshold."""

    LIVER = "liver"
    BLOOD_POOL = "blood_pool"


def _coerce(enum_cls: type[enum.Enum], value: Any, name: str) -> Any:
    try:
        return enum_cls(value.value if isinstance(value, enum.Enum) else str(value).lower())
    except ValueError:
        raise ResponseError(
            format_message(f"unknown {name} {value!r}",
                           fix="use one of " + ", ".join(str(m.value) for m in enum_cls))
        ) from None


def percist_measurability_threshold(
    timepoint: TimepointObservation,
    metric: str | UptakeMetric = UptakeMetric.SULPEAK,
    reference: str | MeasurabilityReference = MeasurabilityReference.LIVER,
) -> tuple[float | None, str]:
    """PERCIST minimum uptake of a measurable target lesion.

    ``1.5 x liver mean + 2 x liver SD`` (liver: 3 cm sphere in the right lobe), or
    ``2.0 x blood-pool mean + 2 x blood-pool SD`` when the liver is abnormal
    (descending thoracic aorta). Means and SDs are taken in the normalisation of
    ``metric`` (SUL for SULpeak).

    Parameters
    ----------
    timepoint : TimepointObservation
        The scan (usually the baseline).
    metric : str or UptakeMetric
        The lesion metric the threshold is compared with.
    reference : {"liver", "blood_pool"}
        Reference tissue.

    Returns
    -------
    threshold : float or None
        ``None`` when the reference mean or SD was not measured.
    explanation : str
        The formula with the numbers, or why it could not be computed.

    References
    ----------
    .. [1] Wahl RL et al. From RECIST to PERCIST. J Nucl Med 2009;50 Suppl 1:122S-150S.
    .. [2] PMOD PERCIST documentation, http://doc.pmod.com/pseg/pseg_percist-intro.html
    """
    m = UptakeMetric.coerce(metric)
    ref = _coerce(MeasurabilityReference, reference, "measurability reference")
    region = timepoint.liver if ref is MeasurabilityReference.LIVER else timepoint.blood_pool
    factor = 1.5 if ref is MeasurabilityReference.LIVER else 2.0
    name = "liver" if ref is MeasurabilityReference.LIVER else "blood pool"
    norm = m.normalisation
    mean = region.statistic(norm, "mean") if region is not None else None
    sd = region.statistic(norm, "sd") if region is not None else None
    if mean is None or sd is None:
        missing = "mean" if mean is None else "SD"
        return None, f"{name} {norm}{missing} not measured at {timepoint.label}"
    threshold = factor * mean + 2.0 * sd
    return threshold, (f"{factor:g} x {name} {norm}mean {fmt(mean)} + 2 x SD {fmt(sd)} "
                       f"= {fmt(threshold)}")


def _scan_value(
    tp: TimepointObservation, metric: UptakeMetric, n: int, max_per_organ: int,
    threshold: float | None = None,
) -> tuple[float | None, list[tuple[float, LesionObservation]], list[LesionObservation]]:
    """Hottest lesion (n == 1) or sum of the n hottest (at most max_per_organ per organ)."""
    present = [les for les in tp.lesions if not les.pet_resolved]
    measured: list[tuple[float, LesionObservation]] = []
    unmeasured: list[LesionObservation] = []
    for les in present:
        v = les.uptake(metric)
        if v is None:
            unmeasured.append(les)
        elif threshold is None or at_least(v, threshold):
            measured.append((v, les))
    chosen = select_by_organ(measured, n, max_per_organ if n > 1 else None)
    value = sum(v for v, _ in chosen) if chosen else None
    return value, chosen, unmeasured


def _check_comparability(
    baseline: TimepointObservation, followup: TimepointObservation, norm: str,
    liver_tolerance_pct: float, liver_tolerance_abs: float, uptake_time_tolerance_min: float,
    numbers: dict[str, Any], warn: list[str],
) -> float | None:
    """PERCIST comparability of the two scans (liver mean, uptake time, scanner): warnings
    appended to ``warn`` and the numbers to ``numbers``, never a category. Returns the
    follow-up liver mean in ``norm`` (``None`` when not measured)."""
    liver_b = baseline.liver.statistic(norm, "mean") if baseline.liver else None
    liver_f = followup.liver.statistic(norm, "mean") if followup.liver else None
    numbers[f"liver_{norm}mean_baseline"] = liver_b
    numbers[f"liver_{norm}mean_followup"] = liver_f
    if liver_b is not None and liver_f is not None:
        d_abs = liver_f - liver_b
        d_pct = percent_change(liver_f, liver_b)
        numbers[f"liver_{norm}mean_change_abs"] = d_abs
        numbers["liver_mean_change_pct"] = d_pct
        if more_than(abs(d_pct), liver_tolerance_pct) or at_least(abs(d_abs),
                                                                    liver_tolerance_abs):
            warn.append(
                f"liver {norm}mean changed from {fmt(liver_b)} to {fmt(liver_f)} "
                f"({fmt_pct(d_pct)}, {d_abs:+.2f}); PERCIST requires agreement within "
                f"{liver_tolerance_pct:g} % and < {liver_tolerance_abs:g} {norm}")
    else:
        warn.append(f"liver {norm}mean missing; liver comparability not checked")
    tb, tf = baseline.uptake_time_min, followup.uptake_time_min
    if tb is not None and tf is not None:
        numbers["uptake_time_difference_min"] = tf - tb
        if more_than(abs(tf - tb), uptake_time_tolerance_min):
            warn.append(f"uptake time {fmt(tf, 0)} min vs {fmt(tb, 0)} min at baseline "
                        f"differs by more than {uptake_time_tolerance_min:g} min")
    else:
        warn.append("uptake time missing; uptake-time comparability not checked")
    if baseline.scanner and followup.scanner and baseline.scanner != followup.scanner:
        warn.append(f"scanner/reconstruction changed ({baseline.scanner} -> "
                    f"{followup.scanner})")
    return liver_f


def _lesion_table(
    baseline: TimepointObservation, followup: TimepointObservation, m: UptakeMetric,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Per tracked baseline lesion: its uptake at both scans, whether it resolved or was
    reported, the uptake and LD changes; and the lesions that grew by more than
    :data:`PMD_INCREASE_PCT` (uptake or LD), which block a PMR."""
    table: dict[str, dict[str, Any]] = {}
    grown: list[str] = []
    for les_b in baseline.lesions:
        les_f = followup.lesion(les_b.track_id)
        vb = les_b.uptake(m)
        vf = None if les_f is None else (None if les_f.pet_resolved else les_f.uptake(m))
        row: dict[str, Any] = {"baseline": vb, "followup": vf,
                               "resolved": bool(les_f is not None and les_f.pet_resolved),
                               "reported": les_f is not None}
        if vb is not None and vf is not None:
            row["change_pct"] = percent_change(vf, vb)
            if more_than(row["change_pct"], PMD_INCREASE_PCT):
                grown.append(f"{les_b.name} {m.value} {fmt(vb)} -> {fmt(vf)} "
                             f"({fmt_pct(row['change_pct'])})")
        if (les_f is not None and not les_f.pet_resolved and les_b.ld_mm and les_f.ld_mm
                is not None):
            row["ld_change_pct"] = percent_change(les_f.ld_mm, les_b.ld_mm)
            if more_than(row["ld_change_pct"], PMD_INCREASE_PCT):
                grown.append(f"{les_b.name} LD {fmt(les_b.ld_mm, 1)} -> "
                             f"{fmt(les_f.ld_mm, 1)} mm ({fmt_pct(row['ld_change_pct'])})")
        table[les_b.track_id] = row
    return table, grown


def _nadir(
    baseline: TimepointObservation, previous: Sequence[TimepointObservation],
    m: UptakeMetric, target_lesions: int, max_per_organ: int, b_val: float, warn: list[str],
) -> tuple[float, str]:
    """The lowest target value among the baseline (``b_val``) and the ``previous`` scans, and
    its timepoint; a previous scan without residual lesion uptake counts as 0, one whose
    lesions were not measured is skipped (with a warning)."""
    nadir_val, nadir_label = b_val, baseline.label
    for tp in previous:
        if not tp.has_pet:
            continue
        v, _, unmeasured = _scan_value(tp, m, target_lesions, max_per_organ)
        unmeasured += [les for les in baseline.lesions if tp.lesion(les.track_id) is None]
        if v is None and unmeasured:
            warn.append(f"{tp.label} skipped for the nadir: lesion uptake not measured")
            continue
        v = 0.0 if v is None else v
        if v < nadir_val:
            nadir_val, nadir_label = v, tp.label
    return nadir_val, nadir_label


def _all_resolved_reason(followup: TimepointObservation, m: UptakeMetric,
                         numbers: dict[str, Any]) -> str:
    """The reason of ``PERCIST.CMR.no_residual_uptake``. Resolved lesions read at their former
    site carry that site's uptake: it is quoted (and added to ``numbers``), so that the
    sentence agrees with the numbers reported beside it."""
    former = [(v, les) for les in followup.lesions
              if les.pet_resolved and (v := les.uptake(m)) is not None]
    if not former:
        return "every lesion resolved at follow-up and no new lesion: no residual FDG uptake"
    numbers[f"former_site_{m.value}"] = {les.track_id: v for v, les in former}
    return ("every lesion resolved at follow-up and no new lesion: no focal FDG uptake "
            "left (former sites, not segmented: " + ", ".join(
                f"{les.name} {m.value} {fmt(v)}"
                + (f" (Deauville {les.deauville})" if les.deauville is not None else "")
                for v, les in former) + ")")


def _cmr_background(
    followup: TimepointObservation, m: UptakeMetric, liver_mean: float | None,
    cmr_blood_pool_sd: float, thresholds: dict[str, Any], warn: list[str],
) -> str | None:
    """Row 4 of the decision table: the reason when the hottest follow-up lesion is below the
    liver mean and at most blood-pool mean + ``cmr_blood_pool_sd`` SD, else ``None``. The two
    limits go to ``thresholds``; a missing reference is a warning."""
    norm = m.normalisation
    hottest_f = max(v for v, _ in _scan_value(followup, m, 5, 5)[1])
    bp = followup.blood_pool
    bp_mean = bp.statistic(norm, "mean") if bp is not None else None
    bp_sd = bp.statistic(norm, "sd") if bp is not None else None
    bp_limit = None if bp_mean is None else bp_mean + cmr_blood_pool_sd * (bp_sd or 0.0)
    thresholds[f"cmr_below_liver_{norm}mean"] = liver_mean
    thresholds[f"cmr_blood_pool_{norm}_at_most"] = bp_limit
    if liver_mean is None:
        warn.append("follow-up liver mean missing: CMR by uptake level not checked")
        return None
    if bp_limit is None:
        warn.append("follow-up blood pool not measured: CMR judged on the liver only")
    if less_than(hottest_f, liver_mean) and (bp_limit is None or at_most(hottest_f, bp_limit)):
        return (f"hottest follow-up lesion {m.value} {fmt(hottest_f)} < liver {norm}mean "
                f"{fmt(liver_mean)}" + ("" if bp_limit is None else
                                        f" and <= blood pool {fmt(bp_limit)}")
                + "; no new lesion")
    return None


def _change_thresholds(single: bool) -> dict[str, Any]:
    """The PMR/PMD cut-offs that apply (the absolute SUL ones only to a single lesion)."""
    thresholds: dict[str, Any] = {
        "pmr_decrease_pct_at_least": PMR_DECREASE_PCT,
        "pmd_increase_pct_more_than": PMD_INCREASE_PCT,
    }
    if single:
        thresholds["pmr_decrease_abs_at_least"] = PMR_DECREASE_ABS
        thresholds["pmd_increase_abs_more_than"] = PMD_INCREASE_ABS
    return thresholds


def _pmr_or_smd(d_pct: float, d_abs: float, single: bool, norm: str,
                grown: Sequence[str]) -> tuple[PercistCategory, str, str]:
    """Rows 6-8 of the decision table, once new lesions, CMR and PMD are ruled out:
    (category, rule id, reason) from the change vs baseline and the lesions that grew."""
    pmr = at_least(-d_pct, PMR_DECREASE_PCT) and (not single
                                                  or at_least(-d_abs, PMR_DECREASE_ABS))
    if pmr and not grown:
        return (PercistCategory.PMR, "PERCIST.PMR.uptake_decrease",
                f"decrease of at least {PMR_DECREASE_PCT:g} %"
                + (f" and at least {PMR_DECREASE_ABS:g} {norm}" if single else "")
                + "; no lesion increased by more than 30 %; no new lesion")
    if pmr:
        return (PercistCategory.SMD, "PERCIST.SMD.other_lesion_increase",
                "target decrease meets PMR but other lesion(s) increased by more "
                "than 30 %: " + "; ".join(grown))
    return (PercistCategory.SMD, "PERCIST.SMD",
            f"change {fmt_pct(d_pct)} / {d_abs:+.2f} {norm}: neither PMR (>= "
            f"-{PMR_DECREASE_PCT:g} %" + (f" and <= -{PMR_DECREASE_ABS:g}" if single else "")
            + f") nor PMD (> +{PMD_INCREASE_PCT:g} %"
            + (f" and > +{PMD_INCREASE_ABS:g}" if single else "") + ")")


def assess_percist(
    baseline: TimepointObservation,
    followup: TimepointObservation,
    *,
    previous: Sequence[TimepointObservation] = (),
    metric: str | UptakeMetric = UptakeMetric.SULPEAK,
    target_lesions: int = 1,
    max_per_organ: int = 2,
    progression_reference: str | ProgressionReference = ProgressionReference.BASELINE,
    measurability_reference: str | MeasurabilityReference = MeasurabilityReference.LIVER,
    cmr_blood_pool_sd: float = 2.0,
    liver_tolerance_pct: float = 20.0,
    liver_tolerance_abs: float = 0.3,
    uptake_time_tolerance_min: float = 15.0,
) -> Assessment:
    """Assess a follow-up PET against baseline with PERCIST 1.0.

    The target is the SULpeak of the **hottest lesion on each scan, which may be a
    different lesion** at baseline and at follow-up. At baseline the lesion must be
    measurable (SULpeak >= 1.5 x liver SULmean + 2 SD); at follow-up the hottest lesion
    is taken whatever its uptake.

    Decision table (first matching row wins; b = baseline target, f = follow-up
    target, r = progression reference, Δ% and Δ in SUL, tolerance 1e-9, see
    :mod:`emlesion.response._common`):

    ======  =======================================  ==========================================
    order   rule id                                  condition
    ======  =======================================  ==========================================
    0       ``PERCIST.NE.no_pet``                    no PET at baseline or follow-up
    0       ``PERCIST.NE.no_reference``              measurability reference not measured
    0       ``PERCIST.NE.baseline_not_measurable``   no baseline lesion >= threshold
    1       ``PERCIST.PMD.new_lesion``               a lesion whose track_id is absent at
                                                     baseline (and not resolved)
    2       ``PERCIST.NE.followup_not_measured``     lesions present (or baseline lesions not
                                                     reported) at follow-up, none measured
    3       ``PERCIST.CMR.no_residual_uptake``       every follow-up lesion resolved
    4       ``PERCIST.CMR.background``               f < liver mean **and**
                                                     f <= blood-pool mean + k SD (k =
                                                     ``cmr_blood_pool_sd``)
    5       ``PERCIST.PMD.uptake_increase``          (f - r)/r > 30 % **and** f - r > 0.8
    6       ``PERCIST.PMR.uptake_decrease``          (f - b)/b <= -30 % **and** f - b <= -0.8,
                                                     no tracked lesion up > 30 % (uptake or LD)
    7       ``PERCIST.SMD.other_lesion_increase``    the PMR row failed only on another lesion
    8       ``PERCIST.SMD``                          none of the above
    ======  =======================================  ==========================================

    So exactly 30 % and exactly 0.8 SUL down is PMR; exactly 30 % (or 0.8 SUL) up is
    SMD. With ``target_lesions > 1`` the sum of the up to ``target_lesions`` hottest
    lesions (at most ``max_per_organ`` per organ, all lymph nodes one organ) is used on
    each scan and only the percent part of rows 5-6 applies (the 0.8 SUL rule is
    defined for a single lesion).

    Comparability checks are reported as warnings, never as NE: liver mean (in the
    normalisation of ``metric``) must agree within ``liver_tolerance_pct`` percent
    (inclusive) **and** differ by less than ``liver_tolerance_abs``; uptake times must
    agree within ``uptake_time_tolerance_min`` (inclusive); the scanner must be the same.

    Parameters
    ----------
    baseline, followup : TimepointObservation
        The two scans.
    previous : sequence of TimepointObservation
        Scans between baseline and follow-up, in order; used for the nadir.
    metric : str or UptakeMetric
        Lesion statistic; PERCIST uses ``"SULpeak"`` (a warning is given for others).
    target_lesions : int
        1 (PERCIST primary measure) to 5 (secondary: sum of up to 5 hottest lesions).
    max_per_organ : int
        Organ limit for ``target_lesions > 1`` (PERCIST: 2).
    progression_reference : {"baseline", "nadir"}
        Reference for PMD. Default ``"baseline"``: PERCIST 1.0 defines PMD as an
        increase "from the baseline scan" [1]_ (domain reference 3.1, 3.7, decision
        8.9). ``"nadir"`` uses the lowest target value among baseline and ``previous``;
        a previous scan without residual lesion uptake counts as 0. The nadir is always
        reported, with a warning when it would change the call.
    measurability_reference : {"liver", "blood_pool"}
        ``"blood_pool"`` (2.0 x mean + 2 SD) when the liver is abnormal.
    cmr_blood_pool_sd : float
        "Indistinguishable from blood-pool background" is taken as at most
        blood-pool mean + ``cmr_blood_pool_sd`` x SD (SD missing: the mean). This band is
        an emlesion choice mirroring the "+ 2 SD" of the measurability rule.
    liver_tolerance_pct, liver_tolerance_abs, uptake_time_tolerance_min : float
        Comparability limits (PERCIST: 20 %, 0.3 SUL, 15 min).

    Returns
    -------
    Assessment
        Category :class:`PercistCategory`; ``numbers`` holds the target values,
        lesion ids, changes and a per-lesion table.

    Raises
    ------
    ResponseError
        Invalid options (``target_lesions`` outside 1..5, unknown reference).

    Notes
    -----
    Ties (the hottest lesion of each scan, or the up to ``target_lesions`` hottest), the
    same rule in every emlesion response engine: the higher ``metric`` value ranks first; on
    an exact tie the smaller ``track_id`` in natural order wins (``T2`` before ``T10``:
    tracks are numbered in the order lesions are first seen). The choice never depends on
    the order in which the lesions are listed.

    References
    ----------
    .. [1] Wahl RL, Jacene H, Kasamon Y, Lodge MA. From RECIST to PERCIST: evolving
       considerations for PET response criteria in solid tumors. J Nucl Med
       2009;50 Suppl 1:122S-150S.
    .. [2] O JH, Lodge MA, Wahl RL. Practical PERCIST: a simplified guide to PET
       response criteria in solid tumors 1.0. Radiology 2016;280:576-584.
    .. [3] PMOD PERCIST documentation, http://doc.pmod.com/pseg/pseg_percist-intro.html
    """
    m = UptakeMetric.coerce(metric)
    prog_ref = _coerce(ProgressionReference, progression_reference, "progression reference")
    meas_ref = _coerce(MeasurabilityReference, measurability_reference,
                       "measurability reference")
    if not isinstance(target_lesions, int) or not 1 <= target_lesions <= 5:
        raise ResponseError(format_message(
            f"target_lesions must be an integer 1..5, got {target_lesions!r}",
            fix="PERCIST uses the hottest lesion (1) or the sum of up to 5"))
    if max_per_organ < 1:
        raise ResponseError(format_message(f"max_per_organ must be >= 1, got {max_per_organ}"))
    previous = tuple(previous)
    single = target_lesions == 1
    norm = m.normalisation
    parameters: dict[str, Any] = {
        "metric": m.value, "target_lesions": target_lesions, "max_per_organ": max_per_organ,
        "progression_reference": prog_ref.value, "measurability_reference": meas_ref.value,
        "cmr_blood_pool_sd": cmr_blood_pool_sd, "liver_tolerance_pct": liver_tolerance_pct,
        "liver_tolerance_abs": liver_tolerance_abs,
        "uptake_time_tolerance_min": uptake_time_tolerance_min,
        "previous": [p.label for p in previous],
    }
    thresholds = _change_thresholds(single)
    warn: list[str] = check_order(baseline, followup, previous)
    reasons: list[str] = []
    numbers: dict[str, Any] = {}

    def done(category: PercistCategory, rule: str, nadir: str | None = None) -> Assessment:
        return build(Criterion.PERCIST, "assess_percist", baseline, followup, category, rule,
                     reasons, numbers, thresholds, warn, parameters, nadir)

    if m is not UptakeMetric.SULPEAK:
        warn.append(f"PERCIST 1.0 is defined on SULpeak; {m.value} used instead")

    # --- comparability (warnings only) -------------------------------------------------
    liver_f = _check_comparability(baseline, followup, norm, liver_tolerance_pct,
                                   liver_tolerance_abs, uptake_time_tolerance_min, numbers, warn)
    thresholds["liver_tolerance_pct"] = liver_tolerance_pct
    thresholds["liver_tolerance_abs"] = liver_tolerance_abs
    thresholds["uptake_time_tolerance_min"] = uptake_time_tolerance_min

    # --- evaluability --------------------------------------------------------------------
    missing_pet = [tp.label for tp in (baseline, followup) if not tp.has_pet]
    if missing_pet:
        reasons.append(f"no PET at {', '.join(missing_pet)}: PERCIST needs PET at both scans")
        return done(PercistCategory.NE, "PERCIST.NE.no_pet")
    threshold, how = percist_measurability_threshold(baseline, m, meas_ref)
    thresholds["measurability_threshold"] = threshold
    if threshold is None:
        reasons.append(f"measurability threshold unknown: {how}")
        return done(PercistCategory.NE, "PERCIST.NE.no_reference")
    reasons.append(f"measurability threshold {how}")
    b_val, b_chosen, _ = _scan_value(baseline, m, target_lesions, max_per_organ, threshold)
    if b_val is None:
        hottest, _, _ = _scan_value(baseline, m, 1, max_per_organ)
        reasons.append(
            f"no measurable lesion at baseline: hottest {m.value} {fmt(hottest)} "
            f"< threshold {fmt(threshold)}" if hottest is not None
            else "no lesion with a measured uptake at baseline")
        numbers[f"baseline_hottest_{m.value}"] = hottest
        return done(PercistCategory.NE, "PERCIST.NE.baseline_not_measurable")
    f_val, f_chosen, f_unmeasured = _scan_value(followup, m, target_lesions, max_per_organ)
    # a baseline lesion the follow-up does not report was not looked at: not measured,
    # never "resolved" (only an explicit resolved=True is)
    f_unmeasured += [les for les in baseline.lesions if followup.lesion(les.track_id) is None]
    what = m.value if single else f"sum of {m.value}"
    numbers[f"baseline_{m.value}"] = b_val
    numbers["baseline_lesions"] = [les.track_id for _, les in b_chosen]
    numbers[f"followup_{m.value}"] = f_val
    numbers["followup_lesions"] = [les.track_id for _, les in f_chosen]
    reasons.append(
        f"baseline {what} {fmt(b_val)} ({', '.join(les.name for _, les in b_chosen)})")

    # per-lesion table (tracked lesions, any uptake)
    numbers["lesions"], grown = _lesion_table(baseline, followup, m)

    # nadir (always computed, used when progression_reference == nadir)
    nadir_val, nadir_label = _nadir(baseline, previous, m, target_lesions, max_per_organ,
                                    b_val, warn)
    numbers[f"nadir_{m.value}"] = nadir_val
    numbers["nadir_timepoint"] = nadir_label
    use_nadir = prog_ref is ProgressionReference.NADIR
    ref_val, ref_label = (nadir_val, nadir_label) if use_nadir else (b_val, baseline.label)
    nadir_out = ref_label if use_nadir else None

    # 1. new lesions
    new = new_lesions(baseline, followup)
    numbers["new_lesions"] = [les.track_id for les in new]
    if new:
        reasons.append("new lesion(s) at follow-up (track_id absent at baseline): "
                       + ", ".join(les.name for les in new))
        return done(PercistCategory.PMD, "PERCIST.PMD.new_lesion", nadir_out)

    # 2./3. nothing measured / nothing left
    if f_val is None:
        if f_unmeasured:
            reasons.append(f"{len(f_unmeasured)} lesion(s) present at follow-up without a "
                           f"measured {m.value}: " + ", ".join(x.name for x in f_unmeasured))
            return done(PercistCategory.NE, "PERCIST.NE.followup_not_measured", nadir_out)
        numbers["change_pct"] = -100.0
        reasons.append(_all_resolved_reason(followup, m, numbers))
        return done(PercistCategory.CMR, "PERCIST.CMR.no_residual_uptake", nadir_out)
    if f_unmeasured:
        warn.append(f"{len(f_unmeasured)} follow-up lesion(s) without a measured {m.value} "
                    "ignored: " + ", ".join(x.name for x in f_unmeasured))
    d_abs = f_val - b_val
    d_pct = percent_change(f_val, b_val)
    numbers["change_abs"] = d_abs
    numbers["change_pct"] = d_pct
    reasons.append(
        f"follow-up {what} {fmt(f_val)} ({', '.join(les.name for _, les in f_chosen)}): "
        f"{fmt_pct(d_pct)}, {d_abs:+.2f} {norm} vs baseline")

    # 4. CMR: below liver mean and indistinguishable from blood pool
    background = _cmr_background(followup, m, liver_f, cmr_blood_pool_sd, thresholds, warn)
    if background is not None:
        reasons.append(background)
        return done(PercistCategory.CMR, "PERCIST.CMR.background", nadir_out)

    # 5. PMD vs the progression reference
    r_abs = f_val - ref_val
    r_pct = percent_change(f_val, ref_val)
    numbers["progression_reference_timepoint"] = ref_label
    numbers["progression_change_abs"] = r_abs
    numbers["progression_change_pct"] = r_pct

    def is_pmd(pct: float, dabs: float) -> bool:
        return more_than(pct, PMD_INCREASE_PCT) and (not single
                                                     or more_than(dabs, PMD_INCREASE_ABS))

    if is_pmd(r_pct, r_abs):
        reasons.append(f"{what} rose {fmt_pct(r_pct)} and {r_abs:+.2f} {norm} from "
                       f"{ref_label} ({fmt(ref_val)}): more than {PMD_INCREASE_PCT:g} %"
                       + (f" and more than {PMD_INCREASE_ABS:g} {norm}" if single else ""))
        return done(PercistCategory.PMD, "PERCIST.PMD.uptake_increase", nadir_out)
    if not use_nadir and nadir_label != baseline.label:
        n_abs, n_pct = f_val - nadir_val, percent_change(f_val, nadir_val)
        if is_pmd(n_pct, n_abs):
            warn.append(f"{what} rose {fmt_pct(n_pct)} ({n_abs:+.2f}) from the nadir at "
                        f"{nadir_label}: PMD with progression_reference='nadir'")

    # 6./7./8. PMR, or SMD
    category, rule, reason = _pmr_or_smd(d_pct, d_abs, single, norm, grown)
    reasons.append(reason)
    return done(category, rule, nadir_out)
