"""The anatomy constants of emlesion/anatomy/ct.py against the real scans of ../shared/data.

Every measured value below is the one ``benchmarks/audit_ct_real.py`` printed at this commit
(its docstring has the table); each test asserts that the real quantity (a) still measures
what the audit found (so a silent change of the data or of the measurement shows) and (b)
lies on the right side of the constant, by at least the margin the audit found minus a
small tolerance. Scans: TS-CT = TotalSegmentator example trunk CT and its organ labels of
slices 82-111; QIN / STS = the QIN-HEADNECK-0139 and STS_001 whole-body FDG PETs (organs in
the hand-placed boxes of ``audit_ct_real.PET_BOXES``). Known violations that were not fixed
(see the audit) are strict xfails: they start to fail when the constant is corrected.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from emlesion.anatomy import ct as C

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def audit() -> Any:
    import audit_ct_real

    return audit_ct_real


@pytest.fixture(scope="module")
def ct(shared_data: Path, audit: Any) -> dict[str, float]:
    return dict(audit.measure_ct(shared_data))


@pytest.fixture(scope="module")
def rules(shared_data: Path, audit: Any) -> dict[str, float]:
    return dict(audit.measure_ct_rules(shared_data))


@pytest.fixture(scope="module")
def pets(shared_data: Path, audit: Any) -> dict[str, dict[str, float]]:
    return dict(audit.measure_pets(shared_data))


# (key, value measured by audit_ct_real.py on the TS-CT labels, bound, side): side "min"
# means measured >= bound, "max" measured <= bound
CT_ROWS = [
    ("body_labelled_inside", 1.0, 1.0, "min"),  # BODY_HU: every labelled voxel in the body
    ("vert_interior_hu_median", 114.0, C.BONE_HU, "max"),  # BONE_HU: trabecular below [S11]
    ("vertebra_bone_min_ml", 15.5, C.BONE_MIN_COMPONENT_ML, "min"),
    ("gallbladder_hu_p95", 25.0, C.FLUID_HU[1], "max"),  # bile
    ("gallbladder_hu_p05", -22.0, C.FLUID_HU[0], "min"),
    ("liver_inner_hu_p95", 67.0, C.SOFT_HU[1], "max"),
    ("spleen_inner_hu_p95", 54.0, C.SOFT_HU[1], "max"),
    ("kidney_inner_hu_p95", 39.0, C.SOFT_HU[1], "max"),
    ("muscle_inner_hu_p95", 52.0, C.SOFT_HU[1], "max"),
    ("axis_offset_from_body_x_max_mm", 3.68, C.SPINE_MAX_MIDLINE_OFFSET_MM, "max"),
    ("vert_anterior_minus_body_y_min_mm", 1.74, -C.SPINE_ANTERIOR_MARGIN_MM, "min"),
    # SPINE_MIN_AREA_MM2 was 80: the disc-level slice (63 mm^2) was dropped (fails there)
    ("spine_strip_area_min_mm2", 63.0, C.SPINE_MIN_AREA_MM2, "min"),
    ("axis_x_dev_from_median_max_mm", 1.33, C.SPINE_OUTLIER_MM, "max"),
    ("kidney_left_absdx_min_mm", 39.9, C.KIDNEY_DX_MM[0], "min"),
    ("kidney_right_absdx_min_mm", 35.2, C.KIDNEY_DX_MM[0], "min"),
    ("kidney_left_absdx_max_mm", 103.0, C.KIDNEY_DX_MM[1], "max"),
    ("kidney_right_absdx_max_mm", 105.0, C.KIDNEY_DX_MM[1], "max"),
    ("kidney_left_dy_min_mm", -46.1, C.KIDNEY_DY_MM[0], "min"),
    ("kidney_left_dy_max_mm", 25.3, C.KIDNEY_DY_MM[1], "max"),
    ("kidney_left_dy_p95_mm", 17.8, C.CT_KIDNEY_MAX_DY_MM, "max"),
    ("kidney_right_dy_p95_mm", 15.2, C.CT_KIDNEY_MAX_DY_MM, "max"),
    ("kidney_top_z_diff_mm", 9.0, C.KIDNEY_MAX_SHIFT_Z_MM, "max"),
    ("kidney_centroid_y_diff_mm", 3.16, C.KIDNEY_MAX_SHIFT_Y_MM, "max"),
    ("kidney_inner_hu_p05", -13.0, C.CT_KIDNEY_HU[0], "min"),
    ("kidney_inner_hu_p95", 39.0, C.CT_KIDNEY_HU[1], "max"),
    ("aorta_inner_hu_p05", 21.0, C.AORTA_HU[0], "min"),
    ("aorta_inner_hu_p95", 62.0, C.AORTA_HU[1], "max"),
    ("aorta_inner_mean33_p05", 25.7, C.CT_AORTA_HU[0], "min"),
    ("aorta_inner_mean33_p95", 49.9, C.CT_AORTA_HU[1], "max"),
    ("aorta_area_min_mm2", 252.0, C.AORTA_AREA_MM2[0], "min"),
    ("aorta_area_max_mm2", 477.0, C.AORTA_AREA_MM2[1], "max"),
    ("aorta_inscribed_radius_min_mm", 8.49, C.CT_AORTA_MIN_RADIUS_MM, "min"),
    ("aorta_centre_dx_min_mm", 10.0, C.AORTA_DX_MM[0], "min"),
    ("aorta_centre_dx_max_mm", 14.3, C.AORTA_DX_MM[1], "max"),
    ("aorta_anterior_of_vertebra_max_mm", 36.0, C.AORTA_MAX_ANTERIOR_MM, "max"),
    ("aorta_step_max_mm_per_slice", 1.8, C.AORTA_MAX_STEP_MM_PER_SLICE, "max"),
    ("liver_inner_mean3_p05", 34.8, C.CT_LIVER_HU[0], "min"),
    ("liver_inner_mean3_p95", 55.3, C.CT_LIVER_HU[1], "max"),
    ("spleen_inner_mean3_p05", 27.1, C.CT_SPLEEN_HU[0], "min"),
    ("spleen_inner_mean3_p95", 41.4, C.CT_SPLEEN_HU[1], "max"),
    ("spleen_absdx_min_mm", 45.0, C.CT_SPLEEN_MIN_DX_MM, "min"),
    ("spleen_centroid_dx_mm", 109.0, C.CT_SPLEEN_MIN_CENTROID_DX_MM, "min"),
]

# (scan, key, value measured by audit_ct_real.py, bound, side) on the PETs
PET_ROWS = [
    ("QIN PET", "bladder_suvmax", 89.9, C.BLADDER_MIN_SUV, "min"),
    ("STS PET", "bladder_suvmax", 66.5, C.BLADDER_MIN_SUV, "min"),
    ("QIN PET", "bladder_core_ml", 21.1, C.BLADDER_MIN_CORE_ML, "min"),
    ("STS PET", "bladder_core_ml", 17.5, C.BLADDER_MIN_CORE_ML, "min"),
    ("QIN PET", "bladder_core_absdx_mm", 0.92, C.BLADDER_CORE_MAX_MIDLINE_MM, "max"),
    ("STS PET", "bladder_core_absdx_mm", 1.08, C.BLADDER_CORE_MAX_MIDLINE_MM, "max"),
    ("QIN PET", "bladder_iso_absdx_max_mm", 28.4, C.BLADDER_MAX_MIDLINE_MM, "max"),
    ("STS PET", "bladder_iso_absdx_max_mm", 22.7, C.BLADDER_MAX_MIDLINE_MM, "max"),
    ("QIN PET", "liver_smooth_p01", 2.11, C.LIVER_SUV[0], "min"),
    ("QIN PET", "liver_smooth_p99", 3.0, C.LIVER_SUV[1], "max"),
    ("STS PET", "liver_smooth_p01", 1.82, C.LIVER_SUV[0], "min"),
    ("STS PET", "liver_smooth_p99", 2.31, C.LIVER_SUV[1], "max"),
    ("QIN PET", "liver_dev_p95", 0.161, C.LIVER_UNIFORM_FRACTION, "max"),
    ("STS PET", "liver_dev_p95", 0.109, C.LIVER_UNIFORM_FRACTION, "max"),
    ("QIN PET", "kidney_left_median", 4.39, C.KIDNEY_MIN_SUV, "min"),
    ("QIN PET", "kidney_right_median", 7.34, C.KIDNEY_MIN_SUV, "min"),
    ("STS PET", "kidney_left_median", 2.22, C.KIDNEY_MIN_SUV, "min"),
    ("STS PET", "kidney_right_median", 4.45, C.KIDNEY_MIN_SUV, "min"),
    ("QIN PET", "kidney_left_absdx_mm", 61.1, C.KIDNEY_DX_MM[0], "min"),
    ("QIN PET", "kidney_right_absdx_mm", 71.3, C.KIDNEY_DX_MM[0], "min"),
    ("STS PET", "kidney_left_absdx_mm", 54.4, C.KIDNEY_DX_MM[0], "min"),
    ("STS PET", "kidney_right_absdx_mm", 72.1, C.KIDNEY_DX_MM[0], "min"),
    ("STS PET", "ureter_suv_median", 6.37, C.URETER_MIN_SUV, "min"),
    ("STS PET", "ureter_area_max_mm2", 132.0, C.URETER_MAX_AREA_MM2, "max"),
    ("STS PET", "ureter_absdx_max_mm", 37.2, C.URETER_MAX_MIDLINE_MM, "max"),
]


def _check(measured: float, recorded: float, bound: float, side: str) -> None:
    # the audit's value (3 significant digits printed; 2 % or 0.5 absolute)
    assert measured == pytest.approx(recorded, rel=0.02, abs=0.5), (measured, recorded)
    margin = (measured - bound) if side == "min" else (bound - measured)
    recorded_margin = (recorded - bound) if side == "min" else (bound - recorded)
    assert margin >= 0.0, (measured, bound, side)
    assert margin >= recorded_margin - 0.5 - 0.02 * abs(recorded), (margin, recorded_margin)


@pytest.mark.parametrize(("key", "recorded", "bound", "side"), CT_ROWS,
                         ids=[r[0] for r in CT_ROWS])
def test_ct_quantity_on_the_right_side(ct: dict[str, float], key: str, recorded: float,
                                       bound: float, side: str) -> None:
    _check(ct[key], recorded, bound, side)


@pytest.mark.parametrize(("scan", "key", "recorded", "bound", "side"), PET_ROWS,
                         ids=[f"{r[0][:3]}-{r[1]}" for r in PET_ROWS])
def test_pet_quantity_on_the_right_side(pets: dict[str, dict[str, float]], scan: str, key: str,
                                        recorded: float, bound: float, side: str) -> None:
    _check(pets[scan][key], recorded, bound, side)


def test_ct_pet_voxels_match_the_pet_smoothing(pets: dict[str, dict[str, float]]) -> None:
    # PET_SMOOTHING_SIGMA_MM "about one PET voxel": QIN 3.39 mm, STS 4.69 mm (DICOM headers)
    assert pets["QIN PET"]["voxel_x_mm"] == pytest.approx(3.394, abs=1e-3)
    assert pets["STS PET"]["voxel_x_mm"] == pytest.approx(4.6875, abs=1e-4)
    for p in pets.values():
        assert 0.5 <= p["voxel_x_mm"] / C.PET_SMOOTHING_SIGMA_MM <= 2.0


def test_urine_is_fluid_on_the_real_ct(rules: dict[str, float]) -> None:
    # FLUID_HU upper bound and BLADDER_CORE_MAX_HU: urine of the real, unlabelled bladder
    # (15 mm sphere at audit_ct_real.CT_BLADDER_CENTRE): median 19 HU, p95 34 HU
    assert rules["urine_hu_median"] == pytest.approx(19.0, abs=1.0)
    assert rules["urine_hu_p95"] == pytest.approx(34.0, abs=1.0)
    assert rules["urine_hu_p95"] <= C.FLUID_HU[1]
    assert rules["urine_hu_median"] <= C.BLADDER_CORE_MAX_HU - 10.0


def test_sacral_promontory_is_not_the_symphysis(rules: dict[str, float]) -> None:
    # SYMPHYSIS_MIN_ANTERIOR_MM was 60 mm: the sacral promontory (S1, z 214 mm, 62 mm in
    # front of the spinal axis, seen on the mid-sagittal plane) passed for the symphysis and
    # raised the pelvic inlet to 251 mm. The true symphysis is not on a trunk slice of this
    # CT, so none is found and the inlet lies the default 45 mm below the crest (271 mm).
    assert rules["midline_bone_anterior_max_mm"] == pytest.approx(62.0, abs=2.0)
    assert rules["midline_bone_anterior_z_mm"] == pytest.approx(214.3, abs=0.1)
    assert rules["midline_bone_anterior_max_mm"] < C.SYMPHYSIS_MIN_ANTERIOR_MM
    assert rules["crest_z_mm"] == pytest.approx(271.3, abs=0.1)
    assert rules["symphysis_found"] == 0.0
    assert rules["inlet_z_mm"] == pytest.approx(271.3 - C.INLET_DEFAULT_DEPTH_MM, abs=0.1)


def test_ct_only_bladder_rejects_an_off_midline_bowel_loop(rules: dict[str, float]) -> None:
    # The real bladder lies on slices cut by the image edge (not trunk slices, not searched);
    # before the midline condition the CT-only rule returned a 34 mL fluid-filled bowel loop
    # centred 48 mm left of the midline (slices 36-45) as the bladder.
    assert rules["bladder_centre_trunk"] == 0.0
    assert rules["bladder_ml"] == 0.0


def test_ct_only_organs_still_match_the_labels(rules: dict[str, float]) -> None:
    # Dice on the labelled slab (example_seg_fast masks), as printed by audit_ct_real.py
    expected = {"liver": 0.889, "spleen": 0.839, "kidney_left": 0.840,
                "kidney_right": 0.813, "aorta": 0.714}
    for organ, dice in expected.items():
        assert rules[f"dice_{organ}"] == pytest.approx(dice, abs=0.005), organ


@pytest.mark.xfail(reason="LIVER_HU lower bound 38 HU cuts the real normal liver's low tail "
                   "(interior 3-voxel mean p05 34.8 HU); not changed: 25 HU changes the "
                   "generator seeds' PERCIST/Deauville results (benchmarks/audit_ct_real.py)")
def test_real_liver_within_liver_hu(ct: dict[str, float]) -> None:
    assert ct["liver_inner_mean3_p05"] == pytest.approx(34.8, abs=0.5)
    assert ct["liver_inner_mean3_p05"] >= C.LIVER_HU[0]


@pytest.mark.xfail(reason="URETER_MIN_LENGTH_MM 50 mm exceeds the real STS ureter segment "
                   "(45.8 mm at SUV >= 3); not changed: shorter lengths took a pelvic-wall "
                   "nodule for a ureter on generator seeds 12 and 15")
def test_real_ureter_segment_long_enough(pets: dict[str, dict[str, float]]) -> None:
    assert pets["STS PET"]["ureter_hot_run_mm"] == pytest.approx(45.8, abs=0.1)
    assert pets["STS PET"]["ureter_hot_run_mm"] >= C.URETER_MIN_LENGTH_MM
