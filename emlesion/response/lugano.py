"""Lugano 2014 classification: PET-based (Deauville 5-point scale) and CT-based (SPD)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from emlesion.errors import ResponseError, format_message

from ._common import (
    at_least,
    at_most,
    build,
    check_order,
    fmt,
    fmt_pct,
    hottest,
    measured_uptake,
    more_than,
    new_lesions,
    percent_change,
    select_by_organ,
)
from .assessment import Assessment, Criterion, LuganoCtCategory, LuganoPetCategory
from .observations import LesionObservation, TimepointObservation, UptakeMetric

__all__ = [
    "DeauvilleReferences",
    "assess_lugano",
    "assess_lugano_ct",
    "assess_lugano_pet",
    "deauville_from_values",
    "deauville_score",
]



@dataclass(frozen=True)
class DeauvilleReferences:
    """How the Deauville 5-point scale is quantified (domain reference decision 8.11).

    Parameters
    ----------
    lesion_metric : str or UptakeMetric
        Lesion statistic (default SUVmax).
    mediastinum_statistic : {"max", "mean"}
        Statistic of ``TimepointObservation.blood_pool`` (mediastinal blood pool).
    liver_statistic : {"max", "mean"}
        Statistic of ``TimepointObservation.liver``.
    markedly_factor : float
        Score 5 when the lesion exceeds ``markedly_factor`` x liver (sources give
        roughly 2-3 x liver SUVmax; default 2.0).

    Notes
    -----
    References are read in the normalisation of ``lesion_metric`` (SUV or SUL), so the
    comparison is like for like. The defaults compare maxima with maxima.

    References
    ----------
    .. [1] Barrington SF et al. J Clin Oncol 2014;32:3048-3058.
    .. [2] https://standardofcare.com/deauville-criteria/
    """

    lesion_metric: UptakeMetric = UptakeMetric.SUVMAX
    mediastinum_statistic: str = "max"
    liver_statistic: str = "max"
    markedly_factor: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lesion_metric", UptakeMetric.coerce(self.lesion_metric))
        for name in ("mediastinum_statistic", "liver_statistic"):
            value = str(getattr(self, name)).lower()
            if value not in ("max", "mean"):
                raise ResponseError(format_message(f"{name} must be 'max' or 'mean', "
                                                   f"got {value!r}"))
            object.__setattr__(self, name, value)
        if not self.markedly_factor > 1.0:
            raise ResponseError(format_message(
                f"markedly_factor must exceed 1, got {self.markedly_factor}"))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        d = asdict(self)
        d["lesion_metric"] = self.lesion_metric.value
        return d


def deauville_score(
    lesion: LesionObservation, timepoint: TimepointObservation,
    references: DeauvilleReferences | None = None,
) -> tuple[int | None, str]:
    """Deauville score of one lesion, quantified.

    ====== ==================================================================
    score  condition (lesion value x, mediastinum M, liver L, factor k)
    ====== ==================================================================
    1      lesion resolved (no uptake above background), and no uptake value given
    2      x <= M (if M >= L, x <= L)
    3      M < x <= L
    4      L < x <= k L ("moderately" above liver)
    5      x > k L ("markedly" above liver)
    ====== ==================================================================

    Score X (new uptake unlikely to be lymphoma) needs a reader and is not assigned.

    Returns
    -------
    score : int or None
        ``None`` when the lesion value or a reference is missing.
    explanation : str
        The comparison with the numbers.

    References
    ----------
    .. [1] Cheson BD, Fisher RI, Barrington SF et al. Recommendations for initial
       evaluation, staging, and response assessment of Hodgkin and non-Hodgkin lymphoma:
       the Lugano classification. J Clin Oncol 2014;32:3059-3068.
    .. [2] Barrington SF et al. Role of imaging in the staging and response assessment of
       lymphoma: consensus of the International Conference on Malignant Lymphomas Imaging
       Working Group. J Clin Oncol 2014;32:3048-3058.
    .. [3] CIBMTR forms manual, lymphoma response criteria,
       https://www.manula.com/manuals/cibmtr/fim/1/en/topic/lymphoma-response-criteria
    """
    refs = references or DeauvilleReferences()
    m = refs.lesion_metric
    x = lesion.uptake(m)
    if lesion.pet_resolved and x is None:
        # nothing left to measure: a resolved lesion that comes with the uptake of its
        # former site is scored from that uptake instead (site readouts)
        return 1, (f"{lesion.name}: resolved, no lesion left at its site (no uptake of its "
                   "own above background)")
    norm = m.normalisation
    med = (timepoint.blood_pool.statistic(norm, refs.mediastinum_statistic)
           if timepoint.blood_pool is not None else None)
    liver = (timepoint.liver.statistic(norm, refs.liver_statistic)
             if timepoint.liver is not None else None)
    if x is None:
        return None, f"{lesion.name}: {m.value} not measured"
    if med is None or liver is None:
        missing = "mediastinum" if med is None else "liver"
        return None, f"{lesion.name}: {missing} {norm} not measured at {timepoint.label}"
    score, why = deauville_from_values(x, med, liver, refs.markedly_factor)
    return score, f"{lesion.name}: {m.value} {fmt(x)} {why} -> Deauville {score}"


def deauville_from_values(value: float, mediastinum: float, liver: float,
                          markedly_factor: float = 2.0) -> tuple[int, str]:
    """Deauville score 2-5 of an uptake value against the mediastinum and liver references.

    Parameters
    ----------
    value : float
        Lesion (or site) uptake, e.g. SUVmax.
    mediastinum, liver : float
        Reference values in the same quantity (e.g. blood-pool and liver SUVmax).
    markedly_factor : float
        Score 5 above ``markedly_factor`` x liver.

    Returns
    -------
    score : int
        2 (<= mediastinum; <= liver when the mediastinum is the higher), 3, 4 or 5. Score 1
        ("no uptake above background") needs a reader: a measured value never gets it.
    why : str
        The comparison, with the numbers.

    References
    ----------
    .. [1] Barrington SF et al. J Clin Oncol 2014;32:3048-3058 (the five-point scale; if the
       mediastinal blood pool is at or above the liver, the lesion is compared with the liver).

    Examples
    --------
    >>> deauville_from_values(2.9, 2.0, 2.7)[0]   # above liver, below 2 x liver
    4
    >>> deauville_from_values(1.8, 2.0, 2.7)[0]
    2
    """
    low = min(mediastinum, liver)
    k = markedly_factor
    if at_most(value, low):
        return 2, (f"<= mediastinum {fmt(mediastinum)}" if mediastinum <= liver
                   else f"<= liver {fmt(liver)}")
    if at_most(value, liver):
        return 3, f"> mediastinum {fmt(mediastinum)} and <= liver {fmt(liver)}"
    if at_most(value, k * liver):
        return 4, f"> liver {fmt(liver)} and <= {k:g} x liver {fmt(k * liver)}"
    return 5, f"> {k:g} x liver {fmt(k * liver)}"


def assess_lugano_pet(
    baseline: TimepointObservation,
    followup: TimepointObservation,
    *,
    references: DeauvilleReferences | None = None,
    cmr_max_score: int = 3,
    uptake_change_pct: float = 30.0,
) -> Assessment:
    """Assess a follow-up PET against baseline with the Lugano 2014 PET-based response.

    Every follow-up lesion is scored with :func:`deauville_score`; the timepoint score
    is the highest. "Reduced" or "increased" uptake vs baseline compares the hottest
    lesion (``references.lesion_metric``) on each scan.

    Decision table (first matching row wins):

    ======  ========================================  ==============================================
    order   rule id                                   condition
    ======  ========================================  ==============================================
    0       ``LUGANO_PET.NE.no_pet``                  no PET at baseline or follow-up
    0       ``LUGANO_PET.NE.no_baseline_uptake``      no baseline lesion with a measured value
    0       ``LUGANO_PET.NE.not_scored``              a follow-up lesion or reference not measured,
                                                      or a baseline lesion not reported
    1       ``LUGANO_PET.PMD.new_lesion``             new lesion (track_id absent at baseline) with
                                                      Deauville >= 4 or unmeasured uptake
    2       ``LUGANO_PET.CMR``                        highest score <= ``cmr_max_score`` (default 3)
    3       ``LUGANO_PET.PMD.uptake_increase``        score 4-5, hottest value > +X % vs baseline
    4       ``LUGANO_PET.PMR.uptake_decrease``        score 4-5, hottest value <= -X % vs baseline
    5       ``LUGANO_PET.NMR``                        score 4-5, no significant change
    ======  ========================================  ==============================================

    Lugano 2014 describes the change in uptake visually; X = ``uptake_change_pct``
    (default 30, PMR inclusive and PMD exclusive as in PERCIST) is an emlesion choice,
    documented as such. Bone-marrow involvement is not assessed.

    Parameters
    ----------
    baseline, followup : TimepointObservation
        The two PET scans (progression reference: baseline).
    references : DeauvilleReferences, optional
        Quantification of the 5-point scale.
    cmr_max_score : {2, 3}
        Highest score still called CMR (score 3 is context dependent; 3 = Lugano default).
    uptake_change_pct : float
        Change of hottest-lesion uptake counted as "reduced" / "increased".

    Returns
    -------
    Assessment
        Category :class:`LuganoPetCategory`; ``numbers["deauville"]`` per lesion.

    Notes
    -----
    Ties (the hottest lesion of each scan), the same rule in every emlesion response engine:
    the higher ``references.lesion_metric`` value ranks first; on an exact tie the smaller
    ``track_id`` in natural order wins (``T2`` before ``T10``: tracks are numbered in the
    order lesions are first seen). The choice never depends on the order in which the
    lesions are listed.

    References
    ----------
    .. [1] Cheson BD, Fisher RI, Barrington SF et al. Recommendations for initial
       evaluation, staging, and response assessment of Hodgkin and non-Hodgkin lymphoma:
       the Lugano classification. J Clin Oncol 2014;32:3059-3068.
    .. [2] Barrington SF et al. Role of imaging in the staging and response assessment of
       lymphoma: consensus of the International Conference on Malignant Lymphomas Imaging
       Working Group. J Clin Oncol 2014;32:3048-3058.
    .. [3] CIBMTR forms manual, lymphoma response criteria,
       https://www.manula.com/manuals/cibmtr/fim/1/en/topic/lymphoma-response-criteria
    """
    refs = references or DeauvilleReferences()
    m = refs.lesion_metric
    if cmr_max_score not in (2, 3):
        raise ResponseError(format_message(f"cmr_max_score must be 2 or 3, got {cmr_max_score}"))
    parameters: dict[str, Any] = {"references": refs.to_dict(), "cmr_max_score": cmr_max_score,
                                  "uptake_change_pct": uptake_change_pct}
    thresholds: dict[str, Any] = {"cmr_deauville_at_most": cmr_max_score,
                                  "pmr_decrease_pct_at_least": uptake_change_pct,
                                  "pmd_increase_pct_more_than": uptake_change_pct,
                                  "markedly_factor": refs.markedly_factor}
    warn = check_order(baseline, followup, ())
    reasons: list[str] = []
    numbers: dict[str, Any] = {}

    def done(category: LuganoPetCategory, rule: str) -> Assessment:
        return build(Criterion.LUGANO_PET, "assess_lugano_pet", baseline, followup, category,
                     rule, reasons, numbers, thresholds, warn, parameters)

    missing_pet = [tp.label for tp in (baseline, followup) if not tp.has_pet]
    if missing_pet:
        reasons.append(f"no PET at {', '.join(missing_pet)}")
        return done(LuganoPetCategory.NE, "LUGANO_PET.NE.no_pet")
    b_measured = measured_uptake(baseline, m)
    if not b_measured:
        reasons.append(f"no baseline lesion with a measured {m.value}")
        return done(LuganoPetCategory.NE, "LUGANO_PET.NE.no_baseline_uptake")
    b_val, b_les = hottest(b_measured)
    b_scores = [deauville_score(les, baseline, refs)[0] for _, les in b_measured]
    b_max = max((s for s in b_scores if s is not None), default=None)
    numbers["baseline_deauville_max"] = b_max
    numbers[f"baseline_hottest_{m.value}"] = b_val
    numbers["baseline_hottest_lesion"] = b_les.track_id
    if b_max is not None and b_max <= 3:
        warn.append(f"baseline disease is not clearly FDG-avid (highest Deauville {b_max})")

    new_ids = {les.track_id for les in new_lesions(baseline, followup)}
    scores: dict[str, int | None] = {}
    avid_new: list[str] = []
    unscored: list[str] = []
    for les in followup.lesions:
        score, why = deauville_score(les, followup, refs)
        scores[les.track_id] = score
        reasons.append(why)
        if les.track_id in new_ids:
            if score is None or score >= 4:
                avid_new.append(les.name)
            else:
                warn.append(f"new lesion {les.name} has Deauville {score}: not counted as "
                            "FDG-avid progression")
        elif score is None:
            unscored.append(les.name)
    # a baseline lesion the follow-up does not report was not looked at: it cannot be
    # scored (only an explicit resolved=True scores 1)
    unscored += [f"{les.name} (not reported)" for les in baseline.lesions
                 if followup.lesion(les.track_id) is None]
    numbers["deauville"] = scores
    numbers["new_lesions"] = sorted(new_ids)
    if avid_new:
        reasons.append("new FDG-avid lesion(s): " + ", ".join(avid_new))
        return done(LuganoPetCategory.PMD, "LUGANO_PET.PMD.new_lesion")
    if unscored:
        reasons.append("Deauville score not computable for: " + ", ".join(unscored))
        return done(LuganoPetCategory.NE, "LUGANO_PET.NE.not_scored")
    f_max = max((s for s in scores.values() if s is not None), default=1)
    numbers["followup_deauville_max"] = f_max
    if f_max <= cmr_max_score:
        reasons.append(f"highest Deauville score {f_max} <= {cmr_max_score}; no new lesion")
        return done(LuganoPetCategory.CMR, "LUGANO_PET.CMR")
    f_measured = measured_uptake(followup, m)
    f_val, f_les = hottest(f_measured)
    d_pct = percent_change(f_val, b_val)
    numbers[f"followup_hottest_{m.value}"] = f_val
    numbers["followup_hottest_lesion"] = f_les.track_id
    numbers["change_pct"] = d_pct
    reasons.append(f"Deauville {f_max}; hottest {m.value} {fmt(b_val)} ({b_les.name}) -> "
                   f"{fmt(f_val)} ({f_les.name}): {fmt_pct(d_pct)}")
    if more_than(d_pct, uptake_change_pct):
        reasons.append(f"uptake increased by more than {uptake_change_pct:g} %")
        return done(LuganoPetCategory.PMD, "LUGANO_PET.PMD.uptake_increase")
    if at_least(-d_pct, uptake_change_pct):
        reasons.append(f"uptake reduced by at least {uptake_change_pct:g} %; residual disease")
        return done(LuganoPetCategory.PMR, "LUGANO_PET.PMR.uptake_decrease")
    reasons.append(f"no significant change (within ±{uptake_change_pct:g} %)")
    return done(LuganoPetCategory.NMR, "LUGANO_PET.NMR")


def _area(les: LesionObservation | None, d: tuple[float, float]) -> float:
    """PPD (mm²) of ``d = _ppd(les)``: ``les.ppd_mm2`` when given (split lesion), else LDi x SDi."""
    if les is not None and not les.resolved and not les.too_small and les.ppd_mm2 is not None:
        return les.ppd_mm2
    return d[0] * d[1]


def _ppd(les: LesionObservation | None, too_small_mm: float) -> tuple[float, float] | None:
    """(LDi, SDi) in mm under the Lugano conventions, or None when not measured."""
    if les is None:
        return None
    if les.resolved:
        return 0.0, 0.0
    if les.too_small:
        return too_small_mm, too_small_mm
    if les.ld_mm is None or les.sa_mm is None:
        return None
    return les.ld_mm, les.sa_mm


def assess_lugano_ct(
    baseline: TimepointObservation,
    followup: TimepointObservation,
    *,
    previous: Sequence[TimepointObservation] = (),
    max_targets: int = 6,
    min_node_ldi_mm: float = 15.0,
    min_extranodal_ldi_mm: float = 10.0,
    cr_node_ldi_mm: float = 15.0,
    pr_decrease_pct: float = 50.0,
    too_small_mm: float = 5.0,
) -> Assessment:
    """Assess a follow-up CT against baseline with the Lugano 2014 CT-based response.

    PPD = LDi x SDi (``LesionObservation.ppd_mm2`` when given: the sum of the fragments'
    PPDs of a split lesion); SPD = Σ PPD over up to 6 target lesions (largest PPD first; nodes
    measurable if LDi > 15 mm, extranodal lesions if LDi > 10 mm). Too small to measure:
    5 x 5 mm; resolved: 0 x 0 mm. Response against the baseline SPD, progression of an
    individual lesion against its own nadir (baseline and ``previous``).

    Decision table (first matching row wins; tolerance 1e-9):

    ======  ========================================  ==============================================
    order   rule id                                   condition
    ======  ========================================  ==============================================
    0       ``LUGANO_CT.NE.no_ct``                    no CT at baseline or follow-up
    0       ``LUGANO_CT.NE.no_measurable``            no measurable baseline lesion
    1       ``LUGANO_CT.PD.new_lesion``               new node > 15 mm or new extranodal lesion
                                                      > 10 mm in any axis (unmeasured: counted)
    2       ``LUGANO_CT.PD.regrowth``                 a lesion resolved at a previous timepoint is
                                                      present again
    3       ``LUGANO_CT.PD.lesion_progression``       a lesion with LDi > 15 mm, PPD >= 1.5 x its
                                                      nadir PPD, and LDi or SDi up from nadir by
                                                      >= 5 mm (nadir LDi <= 20 mm) or >= 10 mm
                                                      (nadir LDi > 20 mm)
    4       ``LUGANO_CT.NE.target_not_assessed``      a target not reported / not measured
    5       ``LUGANO_CT.CR``                          nodes LDi <= 15 mm, extranodal lesions
                                                      resolved (targets and non-targets)
    6       ``LUGANO_CT.PR``                          SPD decrease >= 50 % from baseline
    7       ``LUGANO_CT.SD``                          none of the above
    ======  ========================================  ==============================================

    The size class of row 3 uses the lesion's LDi at its nadir (the sources say
    "lesions <= 2 cm" without naming the timepoint; emlesion choice). Smaller new lesions
    are reported as warnings (Lugano requires them to be unequivocal). Splenomegaly is
    not assessed.

    Parameters
    ----------
    baseline, followup : TimepointObservation
        The two CT timepoints.
    previous : sequence of TimepointObservation
        Timepoints in between (per-lesion nadir; regrowth).
    max_targets : int
        Lugano: up to 6 target lesions.
    min_node_ldi_mm, min_extranodal_ldi_mm : float
        Measurability (exclusive): 15 mm and 10 mm.
    cr_node_ldi_mm : float
        CR: target nodes regress to LDi <= 15 mm.
    pr_decrease_pct : float
        PR: SPD decrease of at least 50 %.
    too_small_mm : float
        Default dimension of a lesion too small to measure (5 mm).

    Returns
    -------
    Assessment
        Category :class:`LuganoCtCategory`.

    Notes
    -----
    Ties (target selection, largest product of perpendicular diameters first), the same rule
    in every emlesion response engine: the higher PPD ranks first; on an exact tie the
    smaller ``track_id`` in natural order wins (``T2`` before ``T10``: tracks are numbered
    in the order lesions are first seen). The choice never depends on the order in which the
    lesions are listed.

    References
    ----------
    .. [1] Cheson BD, Fisher RI, Barrington SF et al. Recommendations for initial
       evaluation, staging, and response assessment of Hodgkin and non-Hodgkin lymphoma:
       the Lugano classification. J Clin Oncol 2014;32:3059-3068.
    .. [2] Barrington SF et al. Role of imaging in the staging and response assessment of
       lymphoma: consensus of the International Conference on Malignant Lymphomas Imaging
       Working Group. J Clin Oncol 2014;32:3048-3058.
    .. [3] CIBMTR forms manual, lymphoma response criteria,
       https://www.manula.com/manuals/cibmtr/fim/1/en/topic/lymphoma-response-criteria
    """
    previous = tuple(previous)
    parameters: dict[str, Any] = {
        "max_targets": max_targets, "min_node_ldi_mm": min_node_ldi_mm,
        "min_extranodal_ldi_mm": min_extranodal_ldi_mm, "cr_node_ldi_mm": cr_node_ldi_mm,
        "pr_decrease_pct": pr_decrease_pct, "too_small_mm": too_small_mm,
        "previous": [p.label for p in previous],
    }
    thresholds: dict[str, Any] = {
        "pr_spd_decrease_pct_at_least": pr_decrease_pct,
        "cr_node_ldi_mm_at_most": cr_node_ldi_mm,
        "pd_lesion_ldi_mm_more_than": 15.0,
        "pd_lesion_ppd_increase_pct_at_least": 50.0,
        "pd_lesion_axis_increase_mm_at_least": {"nadir_ldi_at_most_20mm": 5.0,
                                                      "nadir_ldi_above_20mm": 10.0},
        "new_node_mm_more_than": min_node_ldi_mm,
        "new_extranodal_mm_more_than": min_extranodal_ldi_mm,
    }
    warn = check_order(baseline, followup, previous)
    reasons: list[str] = []
    numbers: dict[str, Any] = {}

    def done(category: LuganoCtCategory, rule: str) -> Assessment:
        return build(Criterion.LUGANO_CT, "assess_lugano_ct", baseline, followup, category,
                     rule, reasons, numbers, thresholds, warn, parameters)

    missing_ct = [tp.label for tp in (baseline, followup) if not tp.has_ct]
    if missing_ct:
        reasons.append(f"no CT at {', '.join(missing_ct)}: the CT-based Lugano response "
                       "needs CT measurements at both timepoints")
        return done(LuganoCtCategory.NE, "LUGANO_CT.NE.no_ct")

    def measurable(les: LesionObservation) -> bool:
        if les.resolved or les.too_small or les.ld_mm is None or les.sa_mm is None:
            return False
        limit = min_node_ldi_mm if les.is_lymph_node else min_extranodal_ldi_mm
        return more_than(les.ld_mm, limit)

    cands = [(_area(les, (les.ld_mm, les.sa_mm)), les) for les in baseline.lesions
             if measurable(les) if les.ld_mm is not None and les.sa_mm is not None]
    targets = [les for _, les in select_by_organ(cands, max_targets, None)]
    if not targets:
        reasons.append(f"no measurable lesion at baseline (node LDi > {min_node_ldi_mm:g} mm "
                       f"or extranodal LDi > {min_extranodal_ldi_mm:g} mm, both axes measured)")
        return done(LuganoCtCategory.NE, "LUGANO_CT.NE.no_measurable")
    numbers["targets"] = [t.track_id for t in targets]

    def spd(tp: TimepointObservation) -> tuple[float, list[str]]:
        total, missing = 0.0, []
        for t in targets:
            les_t = tp.lesion(t.track_id)
            d = _ppd(les_t, too_small_mm)
            if d is None:
                missing.append(t.track_id)
            else:
                total += _area(les_t, d)
        return total, missing

    b_spd, _ = spd(baseline)
    f_spd, f_missing = spd(followup)
    numbers["baseline_spd_mm2"] = b_spd
    numbers["followup_spd_mm2"] = f_spd

    # 1. new lesions
    small_new: list[str] = []
    counted_new: list[str] = []
    for les in new_lesions(baseline, followup):
        limit = min_node_ldi_mm if les.is_lymph_node else min_extranodal_ldi_mm
        axes = [v for v in (les.ld_mm, les.sa_mm) if v is not None]
        if les.too_small or (axes and not more_than(max(axes), limit)):
            small_new.append(les.name)
        else:
            counted_new.append(les.name + ("" if axes else " (size not measured)"))
    numbers["new_lesions"] = counted_new
    if small_new:
        warn.append(f"small new lesion(s) not counted (<= {min_node_ldi_mm:g} mm node / "
                    f"<= {min_extranodal_ldi_mm:g} mm extranodal; must be unequivocal): "
                    + ", ".join(small_new))
    if counted_new:
        reasons.append("new lesion(s): " + ", ".join(counted_new))
        return done(LuganoCtCategory.PD, "LUGANO_CT.PD.new_lesion")

    # 2./3. per-lesion progression against the lesion's own nadir
    history = [tp for tp in (baseline, *previous) if tp.has_ct]
    regrown: list[str] = []
    progressed: list[str] = []
    per_lesion: dict[str, dict[str, Any]] = {}
    for les_b in baseline.lesions:
        now_les = followup.lesion(les_b.track_id)
        now = _ppd(now_les, too_small_mm)
        past = [(tp.label, d, _area(tp.lesion(les_b.track_id), d)) for tp in history
                if (d := _ppd(tp.lesion(les_b.track_id), too_small_mm)) is not None]
        if now is None or not past:
            continue
        nadir_label, (n_ld, n_sd), n_ppd = min(past, key=lambda p: p[2])
        f_ppd = _area(now_les, now)
        row: dict[str, Any] = {"nadir_timepoint": nadir_label, "nadir_ppd_mm2": n_ppd,
                               "followup_ppd_mm2": f_ppd,
                               "ppd_change_from_nadir_pct": percent_change(f_ppd, n_ppd)}
        per_lesion[les_b.track_id] = row
        resolved_before = any(label != baseline.label and d == (0.0, 0.0)
                              for label, d, _ in past)
        if resolved_before and now != (0.0, 0.0):
            regrown.append(f"{les_b.name} (resolved at {nadir_label}, now "
                           f"{fmt(now[0], 1)} x {fmt(now[1], 1)} mm)")
            continue
        step = 5.0 if at_most(n_ld, 20.0) else 10.0
        if (more_than(now[0], 15.0) and at_least(row["ppd_change_from_nadir_pct"], 50.0)
                and (at_least(now[0] - n_ld, step) or at_least(now[1] - n_sd, step))):
            progressed.append(
                f"{les_b.name}: {fmt(n_ld, 1)} x {fmt(n_sd, 1)} mm at {nadir_label} -> "
                f"{fmt(now[0], 1)} x {fmt(now[1], 1)} mm (PPD "
                f"{fmt_pct(row['ppd_change_from_nadir_pct'])}, axis step {step:g} mm)")
    numbers["lesions"] = per_lesion
    if regrown:
        reasons.append("regrowth of previously resolved lesion(s): " + ", ".join(regrown))
        return done(LuganoCtCategory.PD, "LUGANO_CT.PD.regrowth")
    if progressed:
        reasons.append("individual lesion progression: " + "; ".join(progressed))
        return done(LuganoCtCategory.PD, "LUGANO_CT.PD.lesion_progression")
    if f_missing:
        reasons.append("target(s) not assessed at follow-up: " + ", ".join(f_missing))
        return done(LuganoCtCategory.NE, "LUGANO_CT.NE.target_not_assessed")

    d_pct = percent_change(f_spd, b_spd)
    numbers["spd_change_pct"] = d_pct
    reasons.append(f"SPD {fmt(b_spd, 0)} -> {fmt(f_spd, 0)} mm² ({fmt_pct(d_pct)})")

    def cleared(les: LesionObservation) -> bool:
        d = _ppd(followup.lesion(les.track_id), too_small_mm)
        if d is None:
            return False
        if les.is_lymph_node:
            return at_most(d[0], cr_node_ldi_mm)
        return d == (0.0, 0.0)

    persisting = [les.name for les in baseline.lesions if not cleared(les)]
    if not persisting:
        reasons.append(f"all nodes LDi <= {cr_node_ldi_mm:g} mm, no extranodal disease, no "
                       "new lesion")
        return done(LuganoCtCategory.CR, "LUGANO_CT.CR")
    if at_least(-d_pct, pr_decrease_pct):
        reasons.append(f"SPD decrease of at least {pr_decrease_pct:g} %; persisting: "
                       + ", ".join(persisting))
        return done(LuganoCtCategory.PR, "LUGANO_CT.PR")
    reasons.append(f"SPD decrease below {pr_decrease_pct:g} % and no progression")
    return done(LuganoCtCategory.SD, "LUGANO_CT.SD")


def assess_lugano(
    baseline: TimepointObservation,
    followup: TimepointObservation,
    *,
    previous: Sequence[TimepointObservation] = (),
    references: DeauvilleReferences | None = None,
    pet_options: dict[str, Any] | None = None,
    ct_options: dict[str, Any] | None = None,
) -> tuple[Assessment, Assessment]:
    """Both Lugano 2014 assessments: ``(PET-based, CT-based)``.

    ``pet_options`` / ``ct_options`` are passed to :func:`assess_lugano_pet` /
    :func:`assess_lugano_ct`. A timepoint without CT still gets the PET-based call; the
    CT-based call is then NE with the reason.

    References
    ----------
    .. [1] Cheson BD, Fisher RI, Barrington SF et al. Recommendations for initial
       evaluation, staging, and response assessment of Hodgkin and non-Hodgkin lymphoma:
       the Lugano classification. J Clin Oncol 2014;32:3059-3068.
    .. [2] Barrington SF et al. Role of imaging in the staging and response assessment of
       lymphoma: consensus of the International Conference on Malignant Lymphomas Imaging
       Working Group. J Clin Oncol 2014;32:3048-3058.
    .. [3] CIBMTR forms manual, lymphoma response criteria,
       https://www.manula.com/manuals/cibmtr/fim/1/en/topic/lymphoma-response-criteria
    """
    pet = assess_lugano_pet(baseline, followup, references=references, **(pet_options or {}))
    ct = assess_lugano_ct(baseline, followup, previous=previous, **(ct_options or {}))
    return pet, ct
