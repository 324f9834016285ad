"""RECIST 1.1 on CT (Eisenhauer et al. 2009)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emlesion.errors import ResponseError, format_message

from ._common import (
    at_least,
    build,
    check_order,
    fmt,
    fmt_pct,
    less_than,
    new_lesions,
    percent_change,
    select_by_organ,
)
from .assessment import Assessment, Criterion, RecistCategory
from .observations import LesionObservation, TimepointObservation

__all__ = ["assess_recist", "recist_lesion_size_mm", "select_recist_targets"]

#: PR: decrease of at least 30 % of the baseline sum (inclusive).
PR_DECREASE_PCT = 30.0
#: PD: increase of at least 20 % over the nadir sum (inclusive) ...
PD_INCREASE_PCT = 20.0
#: ... and at least 5 mm absolute (inclusive).
PD_INCREASE_MM = 5.0



def _measurable_limit_mm(tp: TimepointObservation, min_ld_mm: float) -> float:
    st = tp.ct_slice_thickness_mm
    return max(min_ld_mm, 2.0 * st) if st is not None and st > 5.0 else min_ld_mm


def _baseline_size(les: LesionObservation, min_ld: float,
                   min_node_sa_mm: float) -> float | None:
    """Size used for target selection, or None when the lesion is not measurable."""
    if les.resolved or les.too_small:
        return None
    if les.is_lymph_node:
        return les.sa_mm if les.sa_mm is not None and at_least(les.sa_mm, min_node_sa_mm) \
            else None
    return les.ld_mm if les.ld_mm is not None and at_least(les.ld_mm, min_ld) else None


def select_recist_targets(
    baseline: TimepointObservation,
    *,
    max_targets: int = 5,
    max_per_organ: int = 2,
    min_ld_mm: float = 10.0,
    min_node_sa_mm: float = 15.0,
) -> tuple[LesionObservation, ...]:
    """Pick the RECIST 1.1 target lesions at baseline.

    Measurable lesions are non-nodal lesions with LD >= ``min_ld_mm`` (raised to twice
    the CT slice thickness when that exceeds 5 mm) and lymph nodes with short axis
    >= ``min_node_sa_mm``. The largest (LD, or SA for nodes) are taken first, at most
    ``max_per_organ`` per organ (all lymph nodes count as one organ), up to
    ``max_targets``; an exact tie goes to the smaller ``track_id`` in natural order
    (``T2`` before ``T10``), the rule of every emlesion response engine.

    Parameters
    ----------
    baseline : TimepointObservation
        The baseline CT measurements.
    max_targets, max_per_organ : int
        RECIST 1.1: 5 and 2.
    min_ld_mm, min_node_sa_mm : float
        RECIST 1.1: 10 mm and 15 mm.

    Returns
    -------
    tuple of LesionObservation
        The targets, largest first (empty when nothing is measurable).

    References
    ----------
    .. [1] Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised
       RECIST guideline (version 1.1). Eur J Cancer 2009;45:228-247.
    .. [2] EORTC RECIST questions and clarifications,
       https://www.eortc.be/Recist/questions_clarifications.html
    .. [3] CDISC RECIST 1.1 conventions (too small: 5 mm; disappeared: 0 mm).
    """
    limit = _measurable_limit_mm(baseline, min_ld_mm)
    candidates = [(size, les) for les in baseline.lesions
                  if (size := _baseline_size(les, limit, min_node_sa_mm)) is not None]
    return tuple(les for _, les in select_by_organ(candidates, max_targets, max_per_organ))


def recist_lesion_size_mm(lesion: LesionObservation | None, *, is_node: bool,
                          too_small_mm: float = 5.0) -> float | None:
    """The RECIST size of a lesion at one timepoint (LD, or SA for a node).

    Resolved: 0 mm (a node keeps its measured SA when given); too small to measure:
    ``too_small_mm``; otherwise the measured value, even below 5 mm; ``None`` when the
    lesion was not reported or not measured.

    References
    ----------
    .. [1] Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised
       RECIST guideline (version 1.1). Eur J Cancer 2009;45:228-247.
    .. [2] EORTC RECIST questions and clarifications,
       https://www.eortc.be/Recist/questions_clarifications.html
    .. [3] CDISC RECIST 1.1 conventions (too small: 5 mm; disappeared: 0 mm).
    """
    if lesion is None:
        return None
    if lesion.resolved:
        if is_node and lesion.sa_mm is not None:
            return lesion.sa_mm
        return 0.0
    if lesion.too_small:
        return too_small_mm
    return lesion.sa_mm if is_node else lesion.ld_mm


def _sizes(tp: TimepointObservation, targets: Sequence[LesionObservation],
           too_small_mm: float) -> dict[str, float | None]:
    return {t.track_id: recist_lesion_size_mm(tp.lesion(t.track_id), is_node=t.is_lymph_node,
                                              too_small_mm=too_small_mm) for t in targets}


def assess_recist(
    baseline: TimepointObservation,
    followup: TimepointObservation,
    *,
    previous: Sequence[TimepointObservation] = (),
    target_ids: Sequence[str] | None = None,
    max_targets: int = 5,
    max_per_organ: int = 2,
    min_ld_mm: float = 10.0,
    min_node_sa_mm: float = 15.0,
    normal_node_sa_mm: float = 10.0,
    too_small_mm: float = 5.0,
) -> Assessment:
    """Assess a follow-up CT against baseline with RECIST 1.1.

    Sum of diameters = Σ LD of non-nodal targets + Σ SA of nodal targets. Response is
    judged against the baseline sum, progression against the **nadir**: the smallest
    sum among baseline and the ``previous`` timepoints with CT (RECIST 1.1 fixes this;
    it is not a parameter). Non-target lesions are all other baseline lesions.

    Decision table (first matching row wins; tolerance 1e-9 mm / percent):

    ======  ======================================  ===========================================
    order   rule id                                 condition
    ======  ======================================  ===========================================
    0       ``RECIST.NE.no_ct``                     no CT at baseline or follow-up
    0       ``RECIST.NE.no_measurable_disease``     no measurable baseline lesion
    1       ``RECIST.PD.new_lesion``                a new lesion (track_id absent at baseline)
    2       ``RECIST.PD.sum_increase``              sum >= nadir x 1.2 **and** sum - nadir >=
                                                    5 mm (also from a partial sum when some
                                                    targets were not assessed)
    3       ``RECIST.NE.target_not_assessed``       a target not reported / not measured
    4       ``RECIST.CR``                           every non-nodal target 0 mm, every nodal
                                                    target SA < 10 mm, same for non-targets
    5       ``RECIST.PR.nontarget_persisting``      targets CR but a non-target persists
                                                    (non-CR/non-PD non-target -> PR)
    6       ``RECIST.PR.sum_decrease``              sum <= baseline sum x 0.7
    7       ``RECIST.SD``                           none of the above
    ======  ======================================  ===========================================

    So exactly -30 % is PR; exactly +20 % with exactly +5 mm is PD; +20 % with 4.9 mm
    is SD. Unequivocal progression of non-target disease needs a reader and is not
    called automatically.

    Parameters
    ----------
    baseline, followup : TimepointObservation
        The two CT timepoints.
    previous : sequence of TimepointObservation
        Timepoints between baseline and follow-up (for the nadir).
    target_ids : sequence of str, optional
        Targets chosen by a reader; default :func:`select_recist_targets`.
    max_targets, max_per_organ, min_ld_mm, min_node_sa_mm : int or float
        Target selection (RECIST 1.1: 5, 2, 10 mm, 15 mm).
    normal_node_sa_mm : float
        A node with SA below this is normal (RECIST: 10 mm).
    too_small_mm : float
        Value recorded for a lesion too small to measure (RECIST: 5 mm).

    Returns
    -------
    Assessment
        Category :class:`RecistCategory`.

    Raises
    ------
    ResponseError
        ``target_ids`` names a lesion missing at baseline, or breaks the 5 / 2-per-organ
        limits.

    Notes
    -----
    Ties (automatic target selection, largest first), the same rule in every emlesion
    response engine: the higher size (LD, or SA for nodes) ranks first; on an exact tie the
    smaller ``track_id`` in natural order wins (``T2`` before ``T10``: tracks are numbered
    in the order lesions are first seen). The choice never depends on the order in which the
    lesions are listed.

    References
    ----------
    .. [1] Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised
       RECIST guideline (version 1.1). Eur J Cancer 2009;45:228-247.
    .. [2] EORTC RECIST questions and clarifications,
       https://www.eortc.be/Recist/questions_clarifications.html
    .. [3] CDISC RECIST 1.1 conventions (too small: 5 mm; disappeared: 0 mm).
    """
    previous = tuple(previous)
    parameters: dict[str, Any] = {
        "target_ids": None if target_ids is None else list(target_ids),
        "max_targets": max_targets, "max_per_organ": max_per_organ, "min_ld_mm": min_ld_mm,
        "min_node_sa_mm": min_node_sa_mm, "normal_node_sa_mm": normal_node_sa_mm,
        "too_small_mm": too_small_mm, "previous": [p.label for p in previous],
    }
    thresholds: dict[str, Any] = {
        "pr_decrease_pct_at_least": PR_DECREASE_PCT,
        "pd_increase_pct_at_least": PD_INCREASE_PCT,
        "pd_increase_mm_at_least": PD_INCREASE_MM,
        "measurable_ld_mm_at_least": _measurable_limit_mm(baseline, min_ld_mm),
        "measurable_node_sa_mm_at_least": min_node_sa_mm,
        "normal_node_sa_mm_below": normal_node_sa_mm,
    }
    warn = check_order(baseline, followup, previous)
    reasons: list[str] = []
    numbers: dict[str, Any] = {}

    def done(category: RecistCategory, rule: str, nadir: str | None = None) -> Assessment:
        return build(Criterion.RECIST, "assess_recist", baseline, followup, category, rule,
                     reasons, numbers, thresholds, warn, parameters, nadir)

    missing_ct = [tp.label for tp in (baseline, followup) if not tp.has_ct]
    if missing_ct:
        reasons.append(f"no CT at {', '.join(missing_ct)}: RECIST 1.1 needs CT measurements "
                       "at both timepoints")
        return done(RecistCategory.NE, "RECIST.NE.no_ct")

    if target_ids is None:
        targets = select_recist_targets(baseline, max_targets=max_targets,
                                        max_per_organ=max_per_organ, min_ld_mm=min_ld_mm,
                                        min_node_sa_mm=min_node_sa_mm)
    else:
        targets = _reader_targets(baseline, target_ids, max_targets, max_per_organ)
    if not targets:
        reasons.append("no measurable lesion at baseline (non-nodal LD >= "
                       f"{fmt(thresholds['measurable_ld_mm_at_least'], 0)} mm, node SA >= "
                       f"{fmt(min_node_sa_mm, 0)} mm)")
        return done(RecistCategory.NE, "RECIST.NE.no_measurable_disease")
    target_set = {t.track_id for t in targets}
    non_targets = [les for les in baseline.lesions if les.track_id not in target_set]
    numbers["targets"] = [t.track_id for t in targets]
    numbers["non_targets"] = [les.track_id for les in non_targets]

    b_sizes = _sizes(baseline, targets, too_small_mm)
    b_sum = sum(v for v in b_sizes.values() if v is not None)
    numbers["baseline_sum_mm"] = b_sum
    numbers["baseline_sizes_mm"] = b_sizes
    reasons.append(f"{len(targets)} target(s) "
                   + ", ".join(f"{t.name} {fmt(b_sizes[t.track_id], 1)} mm"
                               + (" (SA)" if t.is_lymph_node else "") for t in targets)
                   + f": baseline sum {fmt(b_sum, 1)} mm")

    nadir_sum, nadir_label = b_sum, baseline.label
    for tp in previous:
        if not tp.has_ct:
            continue
        sizes = _sizes(tp, targets, too_small_mm)
        if any(v is None for v in sizes.values()):
            warn.append(f"{tp.label} not used for the nadir: not every target was measured")
            continue
        s = sum(v for v in sizes.values() if v is not None)
        if less_than(s, nadir_sum):
            nadir_sum, nadir_label = s, tp.label
    numbers["nadir_sum_mm"] = nadir_sum
    numbers["nadir_timepoint"] = nadir_label

    new = new_lesions(baseline, followup)
    numbers["new_lesions"] = [les.track_id for les in new]
    if new:
        reasons.append("new lesion(s): " + ", ".join(les.name for les in new))
        return done(RecistCategory.PD, "RECIST.PD.new_lesion", nadir_label)

    f_sizes = _sizes(followup, targets, too_small_mm)
    numbers["followup_sizes_mm"] = f_sizes
    missing = [tid for tid, v in f_sizes.items() if v is None]
    f_sum = sum(v for v in f_sizes.values() if v is not None)
    numbers["followup_sum_mm"] = f_sum
    d_nadir = f_sum - nadir_sum
    p_nadir = percent_change(f_sum, nadir_sum)
    numbers["change_from_nadir_mm"] = d_nadir
    numbers["change_from_nadir_pct"] = p_nadir
    partial = " (targets assessed so far)" if missing else ""
    if at_least(p_nadir, PD_INCREASE_PCT) and at_least(d_nadir, PD_INCREASE_MM):
        reasons.append(f"sum{partial} {fmt(f_sum, 1)} mm vs nadir {fmt(nadir_sum, 1)} mm at "
                       f"{nadir_label}: {fmt_pct(p_nadir)}, {d_nadir:+.1f} mm (PD needs >= "
                       f"{PD_INCREASE_PCT:g} % and >= {PD_INCREASE_MM:g} mm)")
        return done(RecistCategory.PD, "RECIST.PD.sum_increase", nadir_label)
    if missing:
        reasons.append("target(s) not assessed at follow-up: " + ", ".join(missing)
                       + "; PD not reached by the assessed targets")
        return done(RecistCategory.NE, "RECIST.NE.target_not_assessed", nadir_label)

    d_base = f_sum - b_sum
    p_base = percent_change(f_sum, b_sum)
    numbers["change_from_baseline_mm"] = d_base
    numbers["change_from_baseline_pct"] = p_base
    summary = (f"sum {fmt(f_sum, 1)} mm: {fmt_pct(p_base)} vs baseline {fmt(b_sum, 1)} mm, "
               f"{fmt_pct(p_nadir)} / {d_nadir:+.1f} mm vs nadir {fmt(nadir_sum, 1)} mm "
               f"({nadir_label})")
    reasons.append(summary)

    def gone(les: LesionObservation, size: float | None) -> bool:
        if size is None:
            return False
        if les.is_lymph_node:
            return less_than(size, normal_node_sa_mm)
        return size == 0.0

    if all(gone(t, f_sizes[t.track_id]) for t in targets):
        persisting = [
            les.name for les in non_targets
            if not gone(les, recist_lesion_size_mm(followup.lesion(les.track_id),
                                                   is_node=les.is_lymph_node,
                                                   too_small_mm=too_small_mm))
        ]
        if not persisting:
            reasons.append(f"all non-nodal lesions disappeared and all nodes < "
                           f"{normal_node_sa_mm:g} mm SA; no new lesion")
            return done(RecistCategory.CR, "RECIST.CR", nadir_label)
        reasons.append("target lesions in complete response but non-target lesion(s) "
                       "persist or were not assessed: " + ", ".join(persisting))
        return done(RecistCategory.PR, "RECIST.PR.nontarget_persisting", nadir_label)
    if at_least(-p_base, PR_DECREASE_PCT):
        reasons.append(f"decrease of at least {PR_DECREASE_PCT:g} % from baseline")
        return done(RecistCategory.PR, "RECIST.PR.sum_decrease", nadir_label)
    reasons.append(f"neither PR (>= {PR_DECREASE_PCT:g} % decrease from baseline) nor PD "
                   f"(>= {PD_INCREASE_PCT:g} % and >= {PD_INCREASE_MM:g} mm over nadir)")
    return done(RecistCategory.SD, "RECIST.SD", nadir_label)


def _reader_targets(baseline: TimepointObservation, target_ids: Sequence[str],
                    max_targets: int, max_per_organ: int) -> tuple[LesionObservation, ...]:
    ids = [str(t) for t in target_ids]
    if len(set(ids)) != len(ids):
        raise ResponseError(format_message(f"target_ids repeats a lesion: {ids}"))
    if len(ids) > max_targets:
        raise ResponseError(format_message(
            f"{len(ids)} target lesions given, RECIST 1.1 allows {max_targets}"))
    out = []
    per_organ: dict[str, int] = {}
    for tid in ids:
        les = baseline.lesion(tid)
        if les is None:
            raise ResponseError(format_message(f"target {tid!r} is not a baseline lesion",
                                               fix="pick targets among the baseline lesions"))
        if les.resolved or (les.sa_mm if les.is_lymph_node else les.ld_mm) is None:
            raise ResponseError(format_message(
                f"target {tid!r} has no baseline "
                + ("short axis" if les.is_lymph_node else "longest diameter"),
                fix="choose measured lesions as targets"))
        per_organ[les.organ_key] = per_organ.get(les.organ_key, 0) + 1
        if per_organ[les.organ_key] > max_per_organ:
            raise ResponseError(format_message(
                f"more than {max_per_organ} targets in organ {les.organ_key!r}",
                fix="all lymph nodes count as one organ (EORTC RECIST FAQ)"))
        out.append(les)
    return tuple(out)
