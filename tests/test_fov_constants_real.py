"""The field-of-view constants of :mod:`emlesion.anatomy.fov` against the real scans.

Every expected value is a measurement of ``benchmarks/audit_fov_real.py`` on
``../shared/data`` (its docstring holds the table); each assertion keeps the real quantity
on the right side of the constant with the margin found there, less a tolerance of about
one voxel (3 mm on the TS CT, 3.4-4.7 mm on the PETs) or 5 % of a volume. TS CT = the
TotalSegmentator example trunk CT (organ labels on slices 82-111); QIN, STS = the
whole-body FDG PETs (PET-only path); STS crop = the IBSI-1 PET/CT crop of a thigh.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from emlesion.anatomy import fov as F

pytestmark = pytest.mark.data

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _audit() -> Any:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import audit_fov_real

    return audit_fov_real


@pytest.fixture(scope="module")
def ts_ct(shared_data: Path) -> dict[str, Any]:
    return dict(_audit().measure_ts_ct(shared_data))


@pytest.fixture(scope="module")
def qin(shared_data: Path) -> dict[str, Any]:
    return dict(_audit().measure_pet("qin", shared_data))


@pytest.fixture(scope="module")
def sts(shared_data: Path) -> dict[str, Any]:
    return dict(_audit().measure_pet("sts", shared_data))


@pytest.fixture(scope="module")
def sts_crop(shared_data: Path) -> dict[str, Any]:
    return dict(_audit().measure_sts_crop(shared_data))


def test_trunk_width_and_area_on_the_real_trunk_ct(ts_ct: dict[str, Any]) -> None:
    # audit: TS CT trunk sections >= 330 mm and 665 cm^2 (margins +130 mm, +415 cm^2)
    assert ts_ct["width_min_mm"] >= F.TRUNK_MIN_WIDTH_MM + 127.0
    assert ts_ct["area_min_cm2"] >= F.TRUNK_MIN_AREA_CM2 + 400.0
    # audit: the 53 slices wider than the 366 mm reconstruction field touch the image edge
    # 21-183 mm and are not trunk, 59 are trunk (the split at TRUNCATION_MAX_MM itself
    # holds by definition: only these counts are evidence)
    assert (ts_ct["n_trunk"], ts_ct["n_cut"]) == (59, 53)


def test_non_trunk_sections_of_the_real_scans(sts: dict[str, Any], qin: dict[str, Any],
                                              sts_crop: dict[str, Any]) -> None:
    # audit: STS PET outline: neck 150 mm, one thigh 188 mm (margins +50, +12.5 mm), trunk
    # >= 323 mm; the rule takes none of its head/neck/thigh slices for trunk
    assert sts["neck_width_mm"] <= F.TRUNK_MIN_WIDTH_MM - 45.0
    assert sts["thigh_width_max_mm"] <= F.TRUNK_MIN_WIDTH_MM - 8.0
    assert sts["trunk_width_min_mm"] >= F.TRUNK_MIN_WIDTH_MM + 118.0
    assert sts["rule_trunk_on_non_trunk"] == 0
    # audit: STS crop (CT): a thigh cut by the crop, 192 mm wide at most, touching the
    # image edge over >= 206 mm: no trunk slice, no region
    assert sts_crop["width_mm"][1] <= F.TRUNK_MIN_WIDTH_MM - 5.0
    assert sts_crop["edge_mm"][0] > F.TRUNCATION_MAX_MM + 180.0
    assert sts_crop["n_trunk"] == 0 and sts_crop["regions"] == []
    # audit: the QIN head (124 kg, ears included) reaches 204 mm on its PET outline, which
    # lies about 5 mm (sts_crop) outside the body on each side: marginal, not violated
    assert F.TRUNK_MIN_WIDTH_MM - 2 * sts_crop["pet_outside_ct_mm"][0] \
        <= qin["head_width_max_mm"] <= F.TRUNK_MIN_WIDTH_MM + 2 * sts_crop["pet_outside_ct_mm"][0]


def test_lung_constants_on_the_real_trunk_ct(ts_ct: dict[str, Any]) -> None:
    # audit: labelled lung bases median -794 HU, P95 -502 HU (98.3 % below -400 HU);
    # subcutaneous fat P1 -165 HU (margins +102 HU and +235 HU)
    assert ts_ct["lung_hu_p95"] <= F.LUNG_HU_MAX - 95.0
    assert ts_ct["lung_below_max_fraction"] >= 0.98
    assert ts_ct["fat_hu_p1"] >= F.LUNG_HU_MAX + 225.0
    # audit: colon gas of 174 mL on one side, 105 mm long, is larger and longer than the
    # component and extent bounds but 126 mL short of the per-side bound: no lungs found
    (gas,) = ts_ct["air_components"]
    assert gas["in_lung_labels_ml"] == 0.0
    assert gas["ml"] >= F.LUNG_MIN_COMPONENT_ML and gas["extent_mm"] >= F.LUNG_MIN_EXTENT_MM
    assert max(ts_ct["air_side_ml"]) <= F.LUNG_MIN_SIDE_ML - 120.0
    assert not ts_ct["lungs_found"]
    # ... and the 30 mm of lung bases in the field (70 / 41 mL) are below the component
    # bound: the rule misses them, harmless here since the heart is outside the field
    assert max(ts_ct["lung_label_ml"]) < F.LUNG_MIN_COMPONENT_ML
    assert ts_ct["heart_label_ml"] == 0.0


def test_ct_brain_rule_and_blood_hu_on_the_real_trunk_ct(ts_ct: dict[str, Any]) -> None:
    # audit: the bony pelvic ring encloses 3285 mm^2 (passes the skull-area test), but the
    # candidate is dropped by its volume and its distance from the top of the body
    assert ts_ct["ring_inner_max_mm2"] >= F.SKULL_MIN_INNER_AREA_MM2
    assert not ts_ct["brain_found"]
    assert "outside 150-2500 mL" in ts_ct["brain_rule"]
    # audit: unenhanced blood (aorta label) P1 -14 HU, P99 79 HU, inside HEART_HU (+6 HU,
    # +21 HU)
    lo, _median, hi = ts_ct["aorta_hu"]
    assert lo >= F.HEART_HU[0] + 5.0 and hi <= F.HEART_HU[1] - 15.0


def test_pet_only_brain_on_qin(qin: dict[str, Any]) -> None:
    # audit: QIN brain 1387 mL (height 134 mm, bottom 150 mm below the body top), top 18 mm
    # below the body top, median SUV 8.0 = 15.9 x the body median, centroid 0.5 mm from
    # the body centre, 48 % on its smaller side, none of the 9282 expert lesion voxels
    assert qin["brain_found"]
    assert qin["brain_ml"] == pytest.approx(1387.2, rel=0.05)
    assert F.BRAIN_MIN_ML + 1100.0 <= qin["brain_ml"] <= F.BRAIN_MAX_ML - 1000.0
    assert qin["brain_top_gap_mm"] <= F.BRAIN_TOP_MARGIN_MM - 38.0
    assert qin["brain_ratio"] >= F.BRAIN_MIN_UPTAKE_RATIO + 13.0
    assert abs(qin["brain_offset_mm"]) <= F.BRAIN_MAX_MIDLINE_OFFSET_MM - 27.0
    assert qin["brain_side_fraction"] >= F.BRAIN_MIN_SIDE_FRACTION + 0.15
    assert qin["expert_voxels_in_brain"] == 0 and qin["expert_voxels"] == 9282
    assert qin["brain_height_mm"] <= F.BRAIN_PET_REFERENCE_DEPTH_MM - 12.0
    assert qin["brain_bottom_depth_mm"] <= F.BRAIN_PET_SEARCH_DEPTH_MM - 145.0
    # level 3.78 = 0.35 x P99.5 10.8, below the brain's smoothed median 7.7 (+3.9 SUV)
    assert qin["level"] == pytest.approx(F.BRAIN_PET_FRACTION * qin["ref_p995"])
    assert qin["brain_smooth_median"] >= qin["level"] + 3.5


def test_pet_only_brain_on_fields_cut_from_qin(shared_data: Path) -> None:
    crops = _audit().measure_qin_crops(shared_data)
    # audit: the abdomen-pelvis field (kidneys and liver at its cranial end) has no brain:
    # its cranial hot regions lie 77-91 mm off the body centre, none on the other side
    assert not crops["abdomen"]["brain_found"]
    assert "is not a midline organ" in crops["abdomen"]["rule"]
    # audit: the head-and-neck field finds the same 1387 mL brain
    assert crops["head_neck"]["brain_ml"] == pytest.approx(1387.2, rel=0.05)


def test_pet_only_brain_cut_at_the_skull_base_is_not_kept(sts: dict[str, Any]) -> None:
    # audit: the STS field starts at the skull base; its 59 mL of brain (median SUV 4.6 =
    # 8.0 x the body) are below BRAIN_MIN_ML and not kept (a known limit, reported)
    assert not sts["brain_found"]
    assert sts["top_region_ml"] == pytest.approx(59.0, rel=0.05)
    assert sts["top_region_ml"] < F.BRAIN_MIN_ML
    assert sts["top_region_ratio"] >= F.BRAIN_MIN_UPTAKE_RATIO + 5.0


def test_pet_body_outline(qin: dict[str, Any], sts: dict[str, Any],
                          sts_crop: dict[str, Any]) -> None:
    # audit: on the STS crop the PET body matches the CT body (> -500 HU): Dice 0.957, the
    # PET outline about one voxel (4.7 mm) outside it
    assert sts_crop["body_dice"] >= 0.95
    assert sts_crop["pet_outside_ct_mm"][0] <= 5.0
    # audit: the floor PET_BODY_MIN_SUV decides on both PETs; body 118 L for 124 kg (QIN,
    # vertex to thighs), 59.5 L for 71 kg (STS, skull base to knees)
    assert qin["body_level_suv"] == sts["body_level_suv"] == F.PET_BODY_MIN_SUV
    assert 0.9 <= qin["body_l"] / qin["weight_kg"] <= 1.0
    assert 0.8 <= sts["body_l"] / sts["weight_kg"] <= 0.9


def test_myocardium_levels_on_a_pet_only_proxy_heart(qin: dict[str, Any],
                                                    sts: dict[str, Any]) -> None:
    # audit (proxy heart: SUV >= 4 in the thorax window, no CT heart): myocardium median
    # SUV 7.2 / 6.0, above the 2.5 floor (+4.7 / +3.5); the LV cavity (blood with spill-in)
    # 3.4 / 2.75, with myocardium / cavity 2.1 / 2.2 > 1.6 (+0.51 / +0.60)
    for r, margin_suv, margin_ratio in ((qin, 4.5, 0.45), (sts, 3.3, 0.5)):
        h = r["heart"]
        assert h["found"]
        assert h["myo_median"] >= F.MYOCARDIUM_MIN_SUV + margin_suv
        assert h["myo_median"] / h["cavity_median"] >= F.MYOCARDIUM_MEDIAN_RATIO + margin_ratio
