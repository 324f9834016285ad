"""The anatomy constants of the segmentation modules against the real scans of ../shared/data.

Every expected value is a quantity measured by ``benchmarks/audit_segment_real.py`` (its
table is in the session-5 report and quoted in each constant's ``#:`` comment); each test
asserts that the real quantity lies on the safe side of the constant with most of the margin
measured there (the margin is rounded down, so that a small change of a loader does not fail
the test, while a change of the constant or of the rule that removes the margin does).
Violations found by the audit and left unchanged (BONE_MIN_HU, the duodenum against
CTSoftTissueRule.min_core_ml) are pinned: the assertion fails when the constant is changed, so
that its comment is updated too. The kidney minimum volume was changed (20 -> 5 mL): its
test failed before the change.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from emlesion.segment import auto
from emlesion.segment.ctguided import (
    ADIPOSE_MAX_HU,
    BONE_MIN_HU,
    NOISE_WINDOW_MEAN_HU,
    CTSoftTissueRule,
)

pytestmark = pytest.mark.data


def _audit() -> Any:
    bench = str(Path(__file__).resolve().parent.parent / "benchmarks")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import audit_segment_real

    return audit_segment_real


@pytest.fixture(scope="module")
def qin(shared_data: Path) -> dict[str, Any]:
    return dict(_audit().pet_measures("qin", shared_data))


@pytest.fixture(scope="module")
def sts(shared_data: Path) -> dict[str, Any]:
    return dict(_audit().pet_measures("sts", shared_data))


@pytest.fixture(scope="module")
def ct(shared_data: Path) -> dict[str, Any]:
    return dict(_audit().ct_measures(shared_data))


def test_body_min_suv(qin: dict[str, Any], sts: dict[str, Any]) -> None:
    # audit: QIN expert minimum 0.354 SUV (lesion 4's cold core); air of both FOVs 0.0 SUV
    assert qin["expert_min_suv"] >= auto.BODY_MIN_SUV + 0.15
    assert qin["air_p999_suv"] < auto.BODY_MIN_SUV
    assert sts["air_p999_suv"] < auto.BODY_MIN_SUV
    # audit: 6 of 5095 STS GTV voxels (necrotic core) below 0.2: reported, no effect on
    # the body extent the constant sets
    assert sts["expert_below_body"] <= 6
    assert sts["expert_below_body"] / sts["expert_voxels"] < 0.002


def test_brain_landmark_and_core_removal(qin: dict[str, Any], sts: dict[str, Any]) -> None:
    # audit, QIN: brain 1317 mL at SUV 4.0, its top 18 mm below the body top
    assert qin["brain4_ml"] >= auto.BRAIN_MIN_ML + 1200.0
    assert qin["brain4_top_mm"] <= auto.BRAIN_TOP_MM - 10.0
    assert qin["brain4_expert"] == 0
    # audit, STS (brain cut by the FOV at the skull base): 53 mL at 2.5, found as the vertex
    assert sts["brain25_ml"] >= auto.BRAIN_MIN_ML
    assert sts["landmarks"]["brain_found"]
    core = qin["brain_core"]
    # audit, QIN: the expert lesions leave the brain above SUV 2.7 (core level 4.0); none
    # of the 6245 expert voxels of the 2.5 candidate removed; nearest 23.7 mm away
    core_level = max(2.5 + auto.BRAIN_CORE_ABOVE_SUV, auto.BRAIN_CORE_MIN_SUV)
    assert core["join_suv"] <= core_level - 1.0
    assert core["expert_in_candidate"] > 6000
    assert core["expert_removed"] == 0
    assert core["expert_to_removed_mm"] >= auto.BRAIN_HALO_MM + 10.0


def test_heart_and_bladder_windows(qin: dict[str, Any], sts: dict[str, Any]) -> None:
    # audit, QIN: heart 85 mL, 405 mm below the vertex, 53 mm left; found by the rule
    (heart,) = qin["heart4"]
    assert heart["rule"] == "heart"
    assert heart["volume_ml"] >= auto.HEART_MIN_ML + 30.0
    lo, hi = auto.HEART_BELOW_VERTEX_MM
    assert lo + 90.0 <= heart["below_vertex_mm"] <= hi - 90.0
    assert auto.HEART_DX_MM[0] + 25.0 <= heart["dx_mm"] <= auto.HEART_DX_MM[1] - 25.0
    # audit: bladder QIN 121 mL (SUVmax 90), 853 mm below the vertex; STS 73 mL (SUVmax
    # 67), 57 mm inside the inferior 30 %; both 2 mm off the centre line
    for m, min_ml in ((qin, 100.0), (sts, 50.0)):
        (bladder,) = m["bladder4"]
        assert bladder["rule"] == "bladder"
        assert bladder["volume_ml"] >= auto.BLADDER_MIN_ML + min_ml
        assert abs(bladder["dx_mm"]) <= auto.BLADDER_MAX_DX_MM - 35.0
    assert qin["bladder4"][0]["below_vertex_mm"] >= auto.BLADDER_BELOW_VERTEX_MM[0] + 100.0
    assert sts["bladder4"][0]["low_margin_mm"] >= 50.0


def test_kidney_rule_finds_the_real_kidneys(qin: dict[str, Any], sts: dict[str, Any]) -> None:
    # audit, QIN: kidneys (SUV >= 2.5, 104-131 mL) 559-601 mm below the vertex, 66-75 mm
    # lateral: inside the rule's windows by >= 99 mm and >= 26 mm
    assert len(qin["kidneys4"]) == 2 and len(sts["kidneys4"]) == 2
    for k in qin["kidneys4"]:
        lo, hi = auto.KIDNEY_BELOW_VERTEX_MM
        assert lo + 90.0 <= k["below_vertex_mm"] <= hi - 90.0
        assert auto.KIDNEY_LATERAL_MM[0] + 20.0 <= abs(k["dx_mm"]) <= auto.KIDNEY_LATERAL_MM[1]
    # audit: at SUV 4.0 the largest part of each kidney is 15.3-17.2 mL (QIN), 6.0 and
    # 22.1 mL (STS); each must reach the minimum volume (with 20 mL, 3 of 4 did not) and be
    # recognised as kidney (failed before KIDNEY_ML was lowered to 5 mL)
    for k in qin["kidneys4"] + sts["kidneys4"]:
        assert k["volume_ml"] >= auto.KIDNEY_ML[0] + 1.0
        assert k["rule"] == "kidney"


def test_zone_limit_holds_the_head_and_neck_lesions(qin: dict[str, Any]) -> None:
    # audit: the 11 QIN expert lesions lie 155-271 mm below the vertex (neck limit 280 mm)
    neck_limit = auto.ZONE_LIMITS_MM[1][0]
    assert max(qin["expert_below_vertex_mm"]) <= neck_limit - 5.0
    assert len(qin["expert_below_vertex_mm"]) == 11


def test_seeded_search_radius_reaches_every_expert_voxel(qin: dict[str, Any],
                                                         sts: dict[str, Any]) -> None:
    # audit: farthest expert voxel from the hottest voxel 56 mm (QIN), 89 mm (STS); the
    # 60 mm search box doubles once
    assert max(qin["expert_reach_mm"]) <= 60.0
    assert max(sts["expert_reach_mm"]) <= 2 * 60.0 - 25.0


def test_ct_hu_constants(ct: dict[str, Any]) -> None:
    rule = CTSoftTissueRule()
    org, sarcoma = ct["organs"], ct["sts"]
    soft = ("liver", "spleen", "autochthon_left", "autochthon_right", "aorta",
            "inferior_vena_cava")
    # audit: trunk-CT fat (smoothed) 99.9th percentile -77 HU; soft tissue windows >= 8 HU;
    # the STS sarcoma's windows >= 18 HU (5th percentile)
    assert ct["fat_smoothed_p999_hu"] <= ADIPOSE_MAX_HU - 40.0
    assert ct["fat_smoothed_p999_hu"] <= rule.rim_min_hu - 40.0
    assert min(org[o]["window_p5_hu"] for o in soft) >= ADIPOSE_MAX_HU + 35.0
    assert ct["fat_median_hu"] <= rule.min_hu - 75.0
    # audit: soft organs at most 57 HU (95th percentile of window means)
    assert max(org[o]["window_p95_hu"] for o in soft) <= BONE_MIN_HU - 90.0
    # the reported violation (not changed, see BONE_MIN_HU): trabecular T12/L1 117-123 HU
    assert org["vertebrae_L1"]["window_p50_hu"] < BONE_MIN_HU
    # audit: sarcoma window means 18-38 HU (5th-95th), 98 % inside hu_range; its window SD
    # 1.0 x the CT noise; its homogeneous core 235 mL
    assert sarcoma["window_p5_hu"] >= rule.hu_range[0] + 2.0
    assert sarcoma["window_p95_hu"] <= rule.hu_range[1] - 30.0
    assert sarcoma["in_hu_range"] >= 0.95
    assert sarcoma["sd_ratio_p50"] <= rule.noise_factor - 0.4
    assert sarcoma["largest_core_ml"] >= rule.min_core_ml + 200.0
    # audit: lung lower lobes 95th percentile -483 HU (gas limit -400)
    for lobe in ("lung_lower_lobe_left", "lung_lower_lobe_right"):
        assert org[lobe]["p95_hu"] <= rule.gas_hu - 75.0
    # audit: colon's largest homogeneous fragment 0.54 mL; the duodenum's 1.22 mL exceeds
    # min_core_ml (reported, not changed)
    assert org["colon"]["largest_homogeneous_ml"] <= rule.min_core_ml - 0.4
    assert org["duodenum"]["largest_homogeneous_ml"] > rule.min_core_ml
    # audit: liver, spleen, aorta, IVC window means 25-57 HU, inside the noise window
    solid = ("liver", "spleen", "aorta", "inferior_vena_cava")
    assert min(org[o]["window_p5_hu"] for o in solid) >= NOISE_WINDOW_MEAN_HU[0] + 4.0
    assert max(org[o]["window_p95_hu"] for o in solid) <= NOISE_WINDOW_MEAN_HU[1] - 20.0
    # audit: median gas within 21 mm of a colon voxel 0.76 mL (BOWEL_GAS_ML 0.2)
    assert ct["colon_gas_ml_p25_p50"][1] >= 0.2 + 0.5
