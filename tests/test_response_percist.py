"""PERCIST 1.0 engine: hand-built cases covering every boundary.

Unless stated otherwise the reference tissue is liver SULmean 1.0, SD 0.1 (measurability
threshold 1.5 x 1.0 + 2 x 0.1 = 1.7 SUL) and blood pool SULmean 0.8, SD 0.1 (CMR band
0.8 + 2 x 0.1 = 1.0 SUL), so that low baseline values stay measurable and the 0.8 SUL
boundary can be reached. Expected categories follow the decision table of
``assess_percist`` (Wahl 2009: PMR >= 30 % and >= 0.8 SUL; PMD > 30 % and > 0.8 SUL).
"""

from __future__ import annotations

import json

import pytest

from emlesion.errors import ResponseError
from emlesion.response import (
    LesionObservation,
    PercistCategory,
    ReferenceUptake,
    ResponseWarning,
    TimepointObservation,
    assess_percist,
    percist_measurability_threshold,
)

pytestmark = pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")

LIVER = ReferenceUptake(sul_mean=1.0, sul_sd=0.1)
BLOOD = ReferenceUptake(sul_mean=0.8, sul_sd=0.1)


def les(tid: str, sul: float | None = None, region: str = "retroperitoneum",
        **kw: object) -> LesionObservation:
    return LesionObservation(tid, region=region, sul_peak=sul, **kw)  # type: ignore[arg-type]


def tp(label: str, *lesions: LesionObservation, liver: ReferenceUptake | None = LIVER,
       blood: ReferenceUptake | None = BLOOD, uptake: float | None = 60.0,
       **kw: object) -> TimepointObservation:
    return TimepointObservation(label, None, lesions, liver, blood, uptake,
                                **kw)  # type: ignore[arg-type]


# (baseline SULpeak, follow-up SULpeak, expected category, expected rule); changes by hand
BOUNDARY_TABLE = [
    (10.0, 7.0, "PMR", "PERCIST.PMR.uptake_decrease"),     # -30 % exactly, -3.0 SUL
    (10.0, 7.01, "SMD", "PERCIST.SMD"),                    # -29.9 %
    (2.5, 1.7, "PMR", "PERCIST.PMR.uptake_decrease"),      # -32 %, -0.8 SUL exactly
    (2.5, 1.71, "SMD", "PERCIST.SMD"),                     # -31.6 %, -0.79 SUL
    (8 / 3, 8 / 3 - 0.8, "PMR", "PERCIST.PMR.uptake_decrease"),  # -30 % and -0.8 exactly
    (10.0, 13.0, "SMD", "PERCIST.SMD"),                    # +30 % exactly: PMD is exclusive
    (10.0, 13.01, "PMD", "PERCIST.PMD.uptake_increase"),   # +30.1 %, +3.01
    (2.0, 2.8, "SMD", "PERCIST.SMD"),                      # +40 %, +0.8 exactly
    (2.0, 2.81, "PMD", "PERCIST.PMD.uptake_increase"),     # +40.5 %, +0.81
    (3.0, 3.9, "SMD", "PERCIST.SMD"),                      # +30 % exactly, +0.9
    (10.0, 0.9, "CMR", "PERCIST.CMR.background"),          # < liver 1.0 and <= blood 1.0
    (10.0, 1.0, "PMR", "PERCIST.PMR.uptake_decrease"),     # = liver mean: not "below liver"
]


@pytest.mark.parametrize(("b", "f", "category", "rule"), BOUNDARY_TABLE)
def test_boundary_table(b: float, f: float, category: str, rule: str) -> None:
    a = assess_percist(tp("T0", les("A", b)), tp("T1", les("A", f)))
    assert a.category is PercistCategory(category)
    assert a.rule == rule
    assert a.numbers["change_abs"] == pytest.approx(f - b)
    assert a.numbers["change_pct"] == pytest.approx(100 * (f - b) / b)


def test_cmr_needs_blood_pool_band() -> None:
    # 0.95 < liver 1.0 but blood pool band is 0.5 + 2 x 0.1 = 0.7 -> not CMR; -90.5 % -> PMR
    blood = ReferenceUptake(sul_mean=0.5, sul_sd=0.1)
    a = assess_percist(tp("T0", les("A", 10.0)), tp("T1", les("A", 0.95), blood=blood))
    assert a.category is PercistCategory.PMR
    assert a.thresholds["cmr_blood_pool_SUL_at_most"] == pytest.approx(0.7)


def test_measurability_threshold_inclusive() -> None:
    # 1.5 x 1.0 + 2 x 0.1 = 1.7 exactly; 1.7 is measurable, 1.69 is not
    thr, text = percist_measurability_threshold(tp("T0"))
    assert thr == pytest.approx(1.7)
    assert "1.5 x liver SULmean 1.00 + 2 x SD 0.10" in text
    ok = assess_percist(tp("T0", les("A", 1.7)), tp("T1", les("A", 1.7)))
    assert ok.category is PercistCategory.SMD
    ne = assess_percist(tp("T0", les("A", 1.69)), tp("T1", les("A", 0.5)))
    assert ne.category is PercistCategory.NE
    assert ne.rule == "PERCIST.NE.baseline_not_measurable"
    assert "1.69 < threshold 1.70" in ne.reasons[-1]


def test_blood_pool_measurability() -> None:
    # 2.0 x 0.8 + 2 x 0.1 = 1.8
    thr, _ = percist_measurability_threshold(tp("T0"), reference="blood_pool")
    assert thr == pytest.approx(1.8)
    a = assess_percist(tp("T0", les("A", 1.75)), tp("T1", les("A", 1.0)),
                       measurability_reference="blood_pool")
    assert a.rule == "PERCIST.NE.baseline_not_measurable"


def test_missing_liver_is_ne_with_reason() -> None:
    a = assess_percist(tp("T0", les("A", 5.0), liver=None), tp("T1", les("A", 1.0)))
    assert a.category is PercistCategory.NE
    assert a.rule == "PERCIST.NE.no_reference"
    assert "liver SULmean not measured" in a.reasons[0]


def test_new_lesion_is_pmd_even_when_target_responds() -> None:
    a = assess_percist(tp("T0", les("A", 10.0)), tp("T1", les("A", 2.0), les("N", 3.0)))
    assert a.category is PercistCategory.PMD
    assert a.rule == "PERCIST.PMD.new_lesion"
    assert a.numbers["new_lesions"] == ["N"]
    # a new track reported as resolved is not a new lesion
    b = assess_percist(tp("T0", les("A", 10.0)),
                       tp("T1", les("A", 2.0), les("N", resolved=True)))
    assert b.category is PercistCategory.PMR


def test_resolved_lesions() -> None:
    # everything resolved -> CMR without uptake numbers
    a = assess_percist(tp("T0", les("A", 10.0), les("B", 4.0, region="pelvis")),
                       tp("T1", les("A", resolved=True), les("B", resolved=True)))
    assert (a.category, a.rule) == (PercistCategory.CMR, "PERCIST.CMR.no_residual_uptake")
    # A resolved, B remains: follow-up target is B (4.0 -> 3.0): vs baseline hottest 10.0:
    # -70 %, -7.0 -> PMR
    b = assess_percist(tp("T0", les("A", 10.0), les("B", 4.0, region="pelvis")),
                       tp("T1", les("A", resolved=True), les("B", 3.0, region="pelvis")))
    assert b.category is PercistCategory.PMR
    assert b.numbers["followup_lesions"] == ["B"]
    assert b.numbers["lesions"]["A"]["resolved"] is True


def test_hottest_lesion_changes_identity() -> None:
    # baseline hottest A 5.0; follow-up A 1.5, B 3.0 -> 3.2 (+6.7 %): target B 3.2;
    # (3.2 - 5.0) / 5.0 = -36 %, -1.8 SUL -> PMR
    a = assess_percist(tp("T0", les("A", 5.0), les("B", 3.0, region="pelvis")),
                       tp("T1", les("A", 1.5), les("B", 3.2, region="pelvis")))
    assert a.category is PercistCategory.PMR
    assert a.numbers["baseline_lesions"] == ["A"]
    assert a.numbers["followup_lesions"] == ["B"]
    assert a.numbers["change_pct"] == pytest.approx(-36.0)


def test_other_lesion_increase_blocks_pmr() -> None:
    # A 10 -> 2, B 3 -> 4.2 (+40 % > 30 %): target 4.2 is -58 % but PMR is blocked -> SMD
    a = assess_percist(tp("T0", les("A", 10.0), les("B", 3.0, region="pelvis")),
                       tp("T1", les("A", 2.0), les("B", 4.2, region="pelvis")))
    assert (a.category, a.rule) == (PercistCategory.SMD, "PERCIST.SMD.other_lesion_increase")
    assert a.numbers["lesions"]["B"]["change_pct"] == pytest.approx(40.0)


def test_progression_reference_nadir() -> None:
    t0 = tp("T0", les("A", 10.0))
    t1 = tp("T1", les("A", 2.0))
    t2 = tp("T2", les("A", 3.0))
    # default baseline: (3 - 10)/10 = -70 % -> PMR, and a warning that nadir would be PMD
    with pytest.warns(ResponseWarning, match="PMD with progression_reference='nadir'"):
        base = assess_percist(t0, t2, previous=[t1])
    assert base.category is PercistCategory.PMR
    assert base.nadir is None
    # nadir T1 = 2.0: (3 - 2)/2 = +50 %, +1.0 SUL -> PMD
    nad = assess_percist(t0, t2, previous=[t1], progression_reference="nadir")
    assert nad.category is PercistCategory.PMD
    assert nad.nadir == "T1"
    assert nad.numbers["progression_change_pct"] == pytest.approx(50.0)


def test_relapse_after_complete_resolution_against_nadir() -> None:
    # T1 all resolved -> nadir 0; T2 A = 3.0 -> +3.0 SUL from 0 -> PMD
    t0, t1, t2 = tp("T0", les("A", 10.0)), tp("T1", les("A", resolved=True)), \
        tp("T2", les("A", 3.0))
    a = assess_percist(t0, t2, previous=[t1], progression_reference="nadir")
    assert a.category is PercistCategory.PMD
    assert a.numbers["nadir_SULpeak"] == 0.0
    assert json.loads(json.dumps(a.to_dict()))["numbers"]["progression_change_pct"] is None


def test_comparability_warnings() -> None:
    # liver 1.0 -> 1.25: +25 % > 20 % -> warning; uptake 60 -> 76 min: 16 > 15 -> warning
    with pytest.warns(ResponseWarning) as rec:
        a = assess_percist(tp("T0", les("A", 10.0)),
                           tp("T1", les("A", 5.0), liver=ReferenceUptake(sul_mean=1.25,
                                                                         sul_sd=0.1),
                              uptake=76.0))
    assert len(a.warnings) == 2
    assert "liver SULmean changed from 1.00 to 1.25" in a.warnings[0]
    assert "differs by more than 15 min" in a.warnings[1]
    assert len(rec) == 2
    # liver 1.0 -> 1.2 (+20 %, +0.2 < 0.3) and 60 -> 75 min are within tolerance
    b = assess_percist(tp("T0", les("A", 10.0)),
                       tp("T1", les("A", 5.0), liver=ReferenceUptake(sul_mean=1.2, sul_sd=0.1),
                          uptake=75.0))
    assert b.warnings == ()
    # 2.0 -> 2.3: +15 % but +0.3 SUL (not < 0.3) -> warning
    c = assess_percist(tp("T0", les("A", 10.0), liver=ReferenceUptake(sul_mean=2.0, sul_sd=0.1)),
                       tp("T1", les("A", 5.0), liver=ReferenceUptake(sul_mean=2.3, sul_sd=0.1)))
    assert any("liver SULmean" in w for w in c.warnings)
    # the warnings never change the call
    assert a.category is b.category is c.category is PercistCategory.PMR


def test_scanner_change_warns() -> None:
    a = assess_percist(tp("T0", les("A", 10.0), scanner="A"), tp("T1", les("A", 5.0),
                                                                 scanner="B"))
    assert a.warnings == ("scanner/reconstruction changed (A -> B)",)


def test_no_pet_is_ne() -> None:
    a = assess_percist(tp("T0", les("A", 10.0)), tp("T1", les("A", 5.0), has_pet=False))
    assert (a.category, a.rule) == (PercistCategory.NE, "PERCIST.NE.no_pet")
    assert "no PET at T1" in a.reasons[0]


def test_followup_not_measured() -> None:
    a = assess_percist(tp("T0", les("A", 10.0)), tp("T1", les("A", None)))
    assert a.rule == "PERCIST.NE.followup_not_measured"


def test_sum_of_up_to_five_with_organ_limit() -> None:
    # liver lesions 6, 5, 4 (only 2 per organ) + lung 3 -> baseline sum 6 + 5 + 3 = 14;
    # follow-up 4 + 3 + 2 (lung) = 9 -> -35.7 % (percent rule only) -> PMR
    b = tp("T0", les("L1", 6.0, "liver"), les("L2", 5.0, "liver"), les("L3", 4.0, "liver"),
           les("P1", 3.0, "lung"))
    f = tp("T1", les("L1", 4.0, "liver"), les("L2", 3.0, "liver"), les("L3", 2.9, "liver"),
           les("P1", 2.0, "lung"))
    a = assess_percist(b, f, target_lesions=5)
    assert a.numbers["baseline_SULpeak"] == pytest.approx(14.0)
    assert a.numbers["baseline_lesions"] == ["L1", "L2", "P1"]
    assert a.numbers["followup_SULpeak"] == pytest.approx(9.0)
    assert a.category is PercistCategory.PMR
    assert "pmr_decrease_abs_at_least" not in a.thresholds


def test_invalid_options() -> None:
    with pytest.raises(ResponseError, match="target_lesions"):
        assess_percist(tp("T0"), tp("T1"), target_lesions=6)
    with pytest.raises(ResponseError, match="progression reference"):
        assess_percist(tp("T0"), tp("T1"), progression_reference="best")


def test_other_metric_warns_and_is_used() -> None:
    b = tp("T0", LesionObservation("A", suv_max=10.0),
           liver=ReferenceUptake(suv_mean=1.0, suv_sd=0.1))
    f = tp("T1", LesionObservation("A", suv_max=6.0),
           liver=ReferenceUptake(suv_mean=1.0, suv_sd=0.1), blood=None)
    a = assess_percist(b, f, metric="suv_max")
    assert a.category is PercistCategory.PMR
    assert a.numbers["followup_SUVmax"] == 6.0
    assert any("defined on SULpeak" in w for w in a.warnings)


def test_to_dict_and_str() -> None:
    a = assess_percist(tp("T0", les("A", 10.0)), tp("T1", les("A", 7.0)))
    d = json.loads(json.dumps(a.to_dict()))
    assert d["category"] == "PMR"
    assert d["criterion"] == "percist"
    assert d["thresholds"]["pmr_decrease_pct_at_least"] == 30.0
    assert d["provenance"][0]["rule"] == "PERCIST.PMR.uptake_decrease"
    text = str(a)
    assert text.startswith("PERCIST 1.0 T1 vs T0: PMR (partial metabolic response)")
    assert "-30.0 %, -3.00 SUL" in text
    assert "PMR" in repr(a)


def test_unreported_baseline_lesion_is_not_read_as_resolved() -> None:
    # Bug: a follow-up that reports nothing (lesion() is None: "not measured", never zero,
    # observations module docstring) was called CMR.no_residual_uptake because "every
    # follow-up lesion resolved" was vacuously true. Not reported != resolved -> NE.
    a = assess_percist(tp("T0", les("A", 10.0)), tp("T1"))
    assert (a.category, a.rule) == (PercistCategory.NE, "PERCIST.NE.followup_not_measured")
    assert "A" in a.reasons[-1]
    # A (hottest, 10.0) not reported, B measured 4.0 -> 3.0: the call is made on B as for a
    # present-but-unmeasured lesion (-70 %, -7.0 SUL -> PMR) with a warning naming A
    b = assess_percist(tp("T0", les("A", 10.0), les("B", 4.0, region="pelvis")),
                       tp("T1", les("B", 3.0, region="pelvis")))
    assert b.category is PercistCategory.PMR
    assert any("without a measured SULpeak" in w and "A" in w for w in b.warnings)
    # reported as resolved (tracking: RESOLVED) is still CMR
    c = assess_percist(tp("T0", les("A", 10.0)), tp("T1", les("A", resolved=True)))
    assert c.category is PercistCategory.CMR


def test_nadir_skips_a_previous_scan_that_reports_no_lesion() -> None:
    # Bug: a previous scan reporting nothing gave a nadir of 0.0 (read as "all resolved"),
    # so 10 -> 3 (-70 %) became PMD against the nadir. Not reported is not measured: the
    # scan is skipped and the nadir stays the baseline 10.0 -> (3 - 10)/10 = -70 % -> PMR.
    a = assess_percist(tp("T0", les("A", 10.0)), tp("T2", les("A", 3.0)),
                       previous=[tp("T1")], progression_reference="nadir")
    assert a.numbers["nadir_SULpeak"] == 10.0
    assert a.numbers["nadir_timepoint"] == "T0"
    assert a.category is PercistCategory.PMR
    assert any("T1 skipped for the nadir" in w for w in a.warnings)
