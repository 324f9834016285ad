"""EORTC 1999 engine: SUV change bands and the cycle-dependent PMR cut.

Expected values from Young et al. 1999 as restated in BMC Cancer 12:502 Table 2:
PMR >= 15 % after one cycle, > 25 % after more; PMD > 25 % increase or > 20 % in the
longest dimension or new lesions. Blood pool SUVmean 1.5, SD 0.25 -> CMR band
1.5 + 2 x 0.25 = 2.0.
"""

from __future__ import annotations

import pytest

from emlesion.errors import ResponseError
from emlesion.response import (
    EortcCategory,
    LesionObservation,
    ReferenceUptake,
    TimepointObservation,
    assess_eortc,
    eortc_pmr_threshold,
)

pytestmark = pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")

BLOOD = ReferenceUptake(suv_mean=1.5, suv_sd=0.25)


def les(tid: str, suv: float | None = None, **kw: object) -> LesionObservation:
    return LesionObservation(tid, suv_max=suv, **kw)  # type: ignore[arg-type]


def tp(label: str, *lesions: LesionObservation, **kw: object) -> TimepointObservation:
    kw.setdefault("blood_pool", BLOOD)
    return TimepointObservation(label, None, lesions, **kw)  # type: ignore[arg-type]


# (cycles, follow-up SUVmax from baseline 10.0, expected, rule)
TABLE = [
    (1, 8.5, "PMR", "EORTC.PMR.uptake_decrease"),   # -15 % exactly: "a minimum of 15 %"
    (1, 8.51, "SMD", "EORTC.SMD"),                  # -14.9 %
    (2, 7.5, "SMD", "EORTC.SMD"),                   # -25 % exactly: needs "greater than 25 %"
    (2, 7.49, "PMR", "EORTC.PMR.uptake_decrease"),  # -25.1 %
    (3, 8.5, "SMD", "EORTC.SMD"),                   # -15 % is not enough after 3 cycles
    (1, 12.5, "SMD", "EORTC.SMD"),                  # +25 % exactly: PMD is "> 25 %"
    (1, 12.51, "PMD", "EORTC.PMD.uptake_increase"),  # +25.1 %
    (1, 1.9, "CMR", "EORTC.CMR.background"),        # <= 1.5 + 2 x 0.25 = 2.0
    (1, 2.0, "CMR", "EORTC.CMR.background"),        # on the band edge (inclusive)
    (1, 2.01, "PMR", "EORTC.PMR.uptake_decrease"),  # just above the band, -79.9 %
]


@pytest.mark.parametrize(("cycles", "f", "category", "rule"), TABLE)
def test_bands(cycles: int, f: float, category: str, rule: str) -> None:
    a = assess_eortc(tp("T0", les("A", 10.0)), tp("T1", les("A", f)), cycles=cycles)
    assert a.category is EortcCategory(category)
    assert a.rule == rule
    if rule != "EORTC.CMR.background":
        assert a.numbers["change_pct"] == pytest.approx(100 * (f - 10.0) / 10.0)


def test_pmr_threshold_by_cycles() -> None:
    assert eortc_pmr_threshold(1) == (15.0, True)
    assert eortc_pmr_threshold(4) == (25.0, False)
    with pytest.raises(ResponseError, match="cycles"):
        eortc_pmr_threshold(0)
    with pytest.raises(ResponseError):
        assess_eortc(tp("T0", les("A", 1.0)), tp("T1"), cycles=0)


def test_override_is_inclusive() -> None:
    a = assess_eortc(tp("T0", les("A", 10.0)), tp("T1", les("A", 8.0)), pmr_threshold_pct=20)
    assert a.category is EortcCategory.PMR
    assert a.thresholds["pmr_decrease_pct_at_least"] == 20.0


def test_extent_increase() -> None:
    # LD 40 -> 48 mm = +20 % exactly: not "> 20 %" -> SMD; 48.1 -> PMD.extent_increase
    b = tp("T0", les("A", 10.0, ld_mm=40.0))
    assert assess_eortc(b, tp("T1", les("A", 10.0, ld_mm=48.0))).category is EortcCategory.SMD
    a = assess_eortc(b, tp("T1", les("A", 10.0, ld_mm=48.1)))
    assert (a.category, a.rule) == (EortcCategory.PMD, "EORTC.PMD.extent_increase")


def test_new_and_resolved_lesions() -> None:
    b = tp("T0", les("A", 10.0), les("B", 5.0))
    new = assess_eortc(b, tp("T1", les("A", 5.0), les("B", 3.0), les("N", 4.0)))
    assert (new.category, new.numbers["new_lesions"]) == (EortcCategory.PMD, ["N"])
    gone = assess_eortc(b, tp("T1", les("A", resolved=True), les("B", resolved=True)))
    assert (gone.category, gone.rule) == (EortcCategory.CMR, "EORTC.CMR.resolved")
    # A (target) resolved, B 3.0 still above the 2.0 band: -100 % in the target region but
    # not CMR -> PMR
    part = assess_eortc(b, tp("T1", les("A", resolved=True), les("B", 3.0)))
    assert (part.category, part.rule) == (EortcCategory.PMR, "EORTC.PMR.target_resolved")


def test_target_is_baseline_region_not_followup_hottest() -> None:
    # A 10 -> 7 (-30 %), B 4 -> 9 (+125 %): EORTC follows A -> PMR, warns about B
    a = assess_eortc(tp("T0", les("A", 10.0), les("B", 4.0)),
                     tp("T1", les("A", 7.0), les("B", 9.0)))
    assert a.category is EortcCategory.PMR
    assert a.numbers["target_lesion"] == "A"
    assert any("non-target lesion B" in w for w in a.warnings)


def test_not_evaluable() -> None:
    assert assess_eortc(tp("T0", les("A", 10.0)),
                        tp("T1", les("A", 5.0), has_pet=False)).rule == "EORTC.NE.no_pet"
    assert assess_eortc(tp("T0", les("A")), tp("T1", les("A", 5.0))).rule == \
        "EORTC.NE.no_baseline_uptake"
    missing = assess_eortc(tp("T0", les("A", 10.0), les("B", 6.0)), tp("T1", les("B", 3.0)))
    assert missing.rule == "EORTC.NE.target_not_assessed"
    assert "not reported" in missing.reasons[-1]
