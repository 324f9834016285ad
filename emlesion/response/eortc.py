"""EORTC PET response criteria (Young et al. 1999)."""

from __future__ import annotations

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
)
from .assessment import Assessment, Criterion, EortcCategory
from .observations import TimepointObservation, UptakeMetric

__all__ = ["assess_eortc", "eortc_pmr_threshold"]

#: PMR after one cycle: a reduction of at least 15 % (inclusive; the paper gives 15-25 %).
PMR_ONE_CYCLE_PCT = 15.0
#: PMR after more than one cycle: a reduction of more than 25 % (exclusive).
PMR_MORE_CYCLES_PCT = 25.0
#: PMD: an increase of more than 25 % (exclusive).
PMD_INCREASE_PCT = 25.0
#: PMD: visible extension, more than 20 % in the longest dimension (exclusive).
PMD_EXTENT_PCT = 20.0


def eortc_pmr_threshold(cycles: int) -> tuple[float, bool]:
    """PMR threshold for a number of treatment cycles.

    Parameters
    ----------
    cycles : int
        Treatment cycles given before the follow-up scan (>= 1). A single CAR-T
        infusion is one cycle.

    Returns
    -------
    percent : float
        Minimum reduction in percent.
    inclusive : bool
        Whether a reduction of exactly ``percent`` qualifies ("a minimum of 15 %" after
        one cycle: yes; "greater than 25 %" after more: no).

    References
    ----------
    .. [1] Young H et al. Measurement of clinical and subclinical tumour response
       using [18F]-fluorodeoxyglucose and positron emission tomography: review and 1999 EORTC
       recommendations. Eur J Cancer 1999;35:1773-1782.
    """
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
        raise ResponseError(format_message(f"cycles must be an integer >= 1, got {cycles!r}",
                                           fix="pass the number of treatment cycles given"))
    if cycles == 1:
        return PMR_ONE_CYCLE_PCT, True
    return PMR_MORE_CYCLES_PCT, False


def assess_eortc(
    baseline: TimepointObservation,
    followup: TimepointObservation,
    *,
    cycles: int = 1,
    metric: str | UptakeMetric = UptakeMetric.SUVMAX,
    pmr_threshold_pct: float | None = None,
    cmr_reference: str = "blood_pool",
    cmr_sd: float = 2.0,
) -> Assessment:
    """Assess a follow-up PET against baseline with the EORTC 1999 criteria.

    The target is the tumour region defined at baseline: the hottest baseline lesion
    (by ``metric``), followed by its ``track_id``. Other tracked lesions are reported
    in ``numbers["lesions"]`` and warned about when they would change the call.

    Decision table (first matching row wins; Δ% = target change vs baseline,
    tolerance 1e-9):

    ======  ====================================  =============================================
    order   rule id                               condition
    ======  ====================================  =============================================
    0       ``EORTC.NE.no_pet``                   no PET at baseline or follow-up
    0       ``EORTC.NE.no_baseline_uptake``       no baseline lesion with a measured ``metric``
    1       ``EORTC.PMD.new_lesion``              a new lesion (track_id absent at baseline)
    2       ``EORTC.CMR.resolved``                every baseline lesion resolved
    2       ``EORTC.CMR.background``              every baseline lesion resolved or <= normal
                                                  tissue (``cmr_reference`` mean + ``cmr_sd``
                                                  SD)
    3       ``EORTC.NE.target_not_assessed``      target lesion not reported / not measured
    4       ``EORTC.PMD.uptake_increase``         Δ% > +25 %
    4       ``EORTC.PMD.extent_increase``         target LD (CT) up > 20 %
    5       ``EORTC.PMR.target_resolved``         target resolved, other disease remains
    5       ``EORTC.PMR.uptake_decrease``         one cycle: Δ% <= -15 %; more cycles:
                                                  Δ% < -25 % (or ``pmr_threshold_pct``,
                                                  inclusive)
    6       ``EORTC.SMD``                         none of the above
    ======  ====================================  =============================================

    Parameters
    ----------
    baseline, followup : TimepointObservation
        The two scans. EORTC progression is judged against baseline only.
    cycles : int
        Treatment cycles before the follow-up (domain reference decision 8.10: the
        cycle-dependent PMR cut has no natural mapping for one CAR-T infusion; the
        default 1 treats the infusion as one cycle).
    metric : str or UptakeMetric
        EORTC did not fix the SUV statistic; default ``"SUVmax"``.
    pmr_threshold_pct : float, optional
        Override of the PMR reduction (inclusive).
    cmr_reference : {"blood_pool", "liver"}
        Normal tissue for "indistinguishable from surrounding normal tissue".
    cmr_sd : float
        Width of the "indistinguishable" band in reference SDs (emlesion choice).

    Returns
    -------
    Assessment
        Category :class:`EortcCategory`.

    Notes
    -----
    Ties (the target, the hottest baseline lesion), the same rule in every emlesion response
    engine: the higher ``metric`` value ranks first; on an exact tie the smaller
    ``track_id`` in natural order wins (``T2`` before ``T10``: tracks are numbered in the
    order lesions are first seen). The choice never depends on the order in which the
    lesions are listed.

    References
    ----------
    .. [1] Young H et al. Measurement of clinical and subclinical tumour response
       using [18F]-fluorodeoxyglucose and positron emission tomography: review and 1999 EORTC
       recommendations. Eur J Cancer 1999;35:1773-1782.
    .. [2] Criteria table in BMC Cancer 2012;12:502, Table 2,
       http://www.biomedcentral.com/1471-2407/12/502/table/T2
    """
    m = UptakeMetric.coerce(metric)
    default_pct, inclusive = eortc_pmr_threshold(cycles)
    if pmr_threshold_pct is not None:
        pmr_pct, inclusive = float(pmr_threshold_pct), True
    else:
        pmr_pct = default_pct
    if cmr_reference not in ("blood_pool", "liver"):
        raise ResponseError(format_message(f"unknown cmr_reference {cmr_reference!r}",
                                           fix="use 'blood_pool' or 'liver'"))
    norm = m.normalisation
    parameters: dict[str, Any] = {"cycles": cycles, "metric": m.value,
                                  "pmr_threshold_pct": pmr_threshold_pct,
                                  "cmr_reference": cmr_reference, "cmr_sd": cmr_sd}
    thresholds: dict[str, Any] = {
        ("pmr_decrease_pct_at_least" if inclusive else "pmr_decrease_pct_more_than"): pmr_pct,
        "pmd_increase_pct_more_than": PMD_INCREASE_PCT,
        "pmd_ld_increase_pct_more_than": PMD_EXTENT_PCT,
    }
    warn = check_order(baseline, followup, ())
    reasons: list[str] = []
    numbers: dict[str, Any] = {}

    def done(category: EortcCategory, rule: str) -> Assessment:
        return build(Criterion.EORTC, "assess_eortc", baseline, followup, category, rule,
                     reasons, numbers, thresholds, warn, parameters)

    missing_pet = [tp.label for tp in (baseline, followup) if not tp.has_pet]
    if missing_pet:
        reasons.append(f"no PET at {', '.join(missing_pet)}: EORTC needs PET at both scans")
        return done(EortcCategory.NE, "EORTC.NE.no_pet")
    measured = measured_uptake(baseline, m)
    if not measured:
        reasons.append(f"no baseline lesion with a measured {m.value}")
        return done(EortcCategory.NE, "EORTC.NE.no_baseline_uptake")
    b_val, target = hottest(measured)
    numbers["target_lesion"] = target.track_id
    numbers[f"baseline_{m.value}"] = b_val
    reasons.append(f"target (hottest baseline lesion) {target.name}: {m.value} {fmt(b_val)}")

    # reference tissue for CMR
    region = followup.blood_pool if cmr_reference == "blood_pool" else followup.liver
    ref_mean = region.statistic(norm, "mean") if region is not None else None
    ref_sd = region.statistic(norm, "sd") if region is not None else None
    cmr_limit = None if ref_mean is None else ref_mean + cmr_sd * (ref_sd or 0.0)
    thresholds[f"cmr_{cmr_reference}_{norm}_at_most"] = cmr_limit

    table: dict[str, dict[str, Any]] = {}
    all_background = True
    all_resolved = True
    for les_b in baseline.lesions:
        les_f = followup.lesion(les_b.track_id)
        vb = les_b.uptake(m)
        vf = None if les_f is None or les_f.pet_resolved else les_f.uptake(m)
        row: dict[str, Any] = {"baseline": vb, "followup": vf, "reported": les_f is not None,
                               "resolved": bool(les_f is not None and les_f.pet_resolved)}
        if vb is not None and vf is not None:
            row["change_pct"] = percent_change(vf, vb)
        table[les_b.track_id] = row
        if les_f is not None and les_f.pet_resolved:
            continue
        all_resolved = False
        if vf is None or cmr_limit is None or not at_most(vf, cmr_limit):
            all_background = False
    numbers["lesions"] = table

    new = new_lesions(baseline, followup)
    numbers["new_lesions"] = [les.track_id for les in new]
    if new:
        reasons.append("new lesion(s) at follow-up: " + ", ".join(les.name for les in new))
        return done(EortcCategory.PMD, "EORTC.PMD.new_lesion")
    if all_resolved:
        reasons.append("every baseline lesion resolved; no new lesion")
        return done(EortcCategory.CMR, "EORTC.CMR.resolved")
    if cmr_limit is None:
        warn.append(f"follow-up {cmr_reference} {norm}mean not measured: CMR by uptake level "
                    "not checked")
    elif all_background:
        reasons.append(f"every remaining baseline lesion {m.value} <= {cmr_reference} "
                       f"{fmt(cmr_limit)} (mean + {cmr_sd:g} SD): indistinguishable from "
                       "normal tissue; no new lesion")
        return done(EortcCategory.CMR, "EORTC.CMR.background")

    les_f = followup.lesion(target.track_id)
    if les_f is not None and les_f.pet_resolved:
        numbers["change_pct"] = -100.0
        reasons.append(f"target {target.name} resolved (-100 %) but other baseline disease "
                       "remains above normal tissue")
        return done(EortcCategory.PMR, "EORTC.PMR.target_resolved")
    f_val = None if les_f is None else les_f.uptake(m)
    if les_f is None or f_val is None:
        reasons.append(f"target {target.name} "
                       + ("not reported" if les_f is None else f"has no {m.value}")
                       + " at follow-up")
        return done(EortcCategory.NE, "EORTC.NE.target_not_assessed")
    d_pct = percent_change(f_val, b_val)
    numbers[f"followup_{m.value}"] = f_val
    numbers["change_abs"] = f_val - b_val
    numbers["change_pct"] = d_pct
    reasons.append(f"target {m.value} {fmt(b_val)} -> {fmt(f_val)} ({fmt_pct(d_pct)})")
    for tid, row in table.items():
        if tid != target.track_id and more_than(row.get("change_pct", 0.0), PMD_INCREASE_PCT):
            warn.append(f"non-target lesion {tid} {m.value} rose {fmt_pct(row['change_pct'])}")

    if more_than(d_pct, PMD_INCREASE_PCT):
        reasons.append(f"increase of more than {PMD_INCREASE_PCT:g} % in the baseline tumour "
                       "region")
        return done(EortcCategory.PMD, "EORTC.PMD.uptake_increase")
    if target.ld_mm and les_f.ld_mm is not None:
        ld_pct = percent_change(les_f.ld_mm, target.ld_mm)
        numbers["ld_change_pct"] = ld_pct
        if more_than(ld_pct, PMD_EXTENT_PCT):
            reasons.append(f"longest dimension {fmt(target.ld_mm, 1)} -> "
                           f"{fmt(les_f.ld_mm, 1)} mm ({fmt_pct(ld_pct)}): more than "
                           f"{PMD_EXTENT_PCT:g} %")
            return done(EortcCategory.PMD, "EORTC.PMD.extent_increase")
    pmr = at_least(-d_pct, pmr_pct) if inclusive else more_than(-d_pct, pmr_pct)
    if pmr:
        reasons.append(f"reduction {'of at least' if inclusive else 'of more than'} "
                       f"{pmr_pct:g} % after {cycles} cycle(s)")
        return done(EortcCategory.PMR, "EORTC.PMR.uptake_decrease")
    reasons.append(f"change {fmt_pct(d_pct)} within the stable band (PMR needs "
                   f"{'>=' if inclusive else '>'} {pmr_pct:g} % reduction, PMD > "
                   f"{PMD_INCREASE_PCT:g} % increase)")
    return done(EortcCategory.SMD, "EORTC.SMD")
