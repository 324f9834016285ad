"""CT and site-uptake truth of the sample generator (``truth.json`` keys ``ct`` and ``site``).

Where the expected values come from:

* hand-made masks: values worked out by hand in the comments (edge convention: the points
  of a slice are the midpoints of the exposed pixel faces);
* the committed ``sample_scans/``: ``truth.json`` is checked against independent readings
  written here (pydicom pixel data with the CT RescaleSlope/Intercept, the PET per-slice
  RescaleSlope times ``suv_factor_per_stored_unit``, which ``tests/test_sample.py`` checks
  against the headers; nibabel for the NIfTI masks), and the truth diameters are
  cross-checked against the library's own :func:`emlesion.measure.axial_diameters`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest

from emlesion.measure import axial_diameters
from emlesion.sample import TIMEPOINTS
from emlesion.sample.phantom import lesion_states, render_lesion_masks
from emlesion.sample.truth import (
    axial_diameters_edge,
    ct_lesion_metrics,
    deauville_score,
    edge_points_mm,
)

CT_SPACING_MM = (2.0, 2.0, 4.0)
NEW_CT_KEYS = {"ld_mm", "sa_mm", "volume_ml", "hu_mean", "n_voxels", "ld_slice_z_mm"}
NEW_SITE_KEYS = {
    "region",
    "suv_max",
    "suv_peak",
    "sul_peak",
    "n_voxels",
    "centroid_mm",
    "deauville",
    "state",
    "metabolically_active",
}


# ---------------------------------------------------------------------------- helpers
def _read_series(folder: Path) -> list[pydicom.Dataset]:
    dss = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    return sorted(dss, key=lambda ds: float(ds.ImagePositionPatient[2]))


def _labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(str(path))
    return np.asarray(img.dataobj).transpose(2, 1, 0), img.affine


def _ct_fraction(fine: np.ndarray) -> np.ndarray:
    """Coverage of a 2 x 2 x 4 mm CT voxel: the mean of its two 2 mm fine sub-slices."""
    nz, ny, nx = fine.shape
    return fine.reshape(nz // 2, 2, ny, nx).mean(axis=1)


def _pet_fraction(fine: np.ndarray) -> np.ndarray:
    """Coverage of a 4 mm PET voxel: the mean of its 2 x 2 x 2 fine voxels."""
    nz, ny, nx = fine.shape
    return fine.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2).mean(axis=(1, 3, 5))


def _deauville_by_hand(x: float, m: float, liver: float) -> int:
    """The rule of the brief: 2 if x <= min(M, L), 3 if M < x <= L, 4 if <= 2 L, else 5."""
    if x <= m and x <= liver:
        return 2
    if m < x <= liver:
        return 3
    return 4 if x <= 2.0 * liver else 5


@pytest.fixture(scope="module")
def truth(sample_scans_dir: Path) -> dict[str, Any]:
    return json.loads((sample_scans_dir / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ct_hu(sample_scans_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """HU volume (z, y, x) and IPP of the first slice of each committed CT series."""
    out = {}
    for tp in TIMEPOINTS:
        dss = _read_series(sample_scans_dir / tp / "CT")
        hu = np.stack(
            [
                ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope)
                + float(ds.RescaleIntercept)
                for ds in dss
            ]
        )
        out[tp] = (hu, np.array([float(v) for v in dss[0].ImagePositionPatient]))
    return out


@pytest.fixture(scope="module")
def pet_suv(sample_scans_dir: Path, truth: dict[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for tp in TIMEPOINTS:
        factor = truth["timepoints"][tp]["suv_factor_per_stored_unit"]
        dss = _read_series(sample_scans_dir / tp / "PT")
        out[tp] = np.stack(
            [ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) * factor for ds in dss]
        )
    return out


# ---------------------------------------------------------------------------- hand-made
def test_edge_points_of_one_pixel_are_its_four_face_midpoints() -> None:
    m = np.zeros((3, 3), bool)
    m[1, 1] = True  # centre at (2, 2) mm with 2 mm pixels
    pts = {tuple(p) for p in edge_points_mm(m, (2.0, 2.0)).tolist()}
    assert pts == {(3.0, 2.0), (1.0, 2.0), (2.0, 3.0), (2.0, 1.0)}


def test_single_pixel_and_row_read_edge_to_edge() -> None:
    one = np.zeros((1, 3, 3), bool)
    one[0, 1, 1] = True
    # face midpoints (+-1, 0), (0, +-1) mm: LD 2 mm, the perpendicular chord 2 mm
    assert axial_diameters_edge(one, CT_SPACING_MM) == {
        "ld_mm": 2.0,
        "sa_mm": 2.0,
        "slice_index": 0,
    }
    row = np.zeros((1, 3, 9), bool)
    row[0, 1, 1:8] = True
    # n = 7 pixels of 2 mm: the end faces are 7 x 2 = 14 mm apart; across the row, 2 mm
    d = axial_diameters_edge(row, CT_SPACING_MM)
    assert (d["ld_mm"], d["sa_mm"]) == pytest.approx((14.0, 2.0), abs=1e-12)


def test_rectangle_5_by_3_of_2_mm_pixels() -> None:
    m = np.zeros((1, 7, 9), bool)
    m[0, 2:5, 2:7] = True  # 3 rows x 5 columns, 10 x 6 mm by voxel edges
    d = axial_diameters_edge(m, CT_SPACING_MM)
    # Not sqrt(10^2 + 6^2) = 11.66 mm: that is the corner-to-corner diagonal (the "corner"
    # convention). The edge points are the face midpoints: the top and bottom faces at
    # y = -1 and 5 mm for x = 0, 2, ..., 8; the side faces at x = -1 and 9 mm for
    # y = 0, 2, 4. The farthest pair is a left-face point and the opposite right-face
    # point, (-1, 0) - (9, 4): hypot(10, 4) = 2 sqrt(29) = 10.770 mm (the corner pixels
    # cut the diagonal; a top-face to bottom-face pair gives only hypot(8, 6) = 10).
    assert d["ld_mm"] == pytest.approx(math.hypot(10.0, 4.0), abs=1e-9)
    # SA: the LD direction is u = (5, 2)/sqrt(29), its normal v = (-2, 5)/sqrt(29). The
    # longest chord along v through the hull runs from the bottom face (y = -1) to the
    # top face (y = 5): 6 mm in y, tilted atan(2/5) from the y axis, so
    # 6 / cos(atan(2/5)) = 6 sqrt(29) / 5 = 6.462 mm.
    assert d["sa_mm"] == pytest.approx(6.0 * math.sqrt(29.0) / 5.0, abs=1e-9)
    # The caliper width across the LD, max - min of p . v over the points, is reached at
    # (0, 5) and (8, -1), which lie 5.2 mm apart along the LD: (-4 * 0 + 10 * 5) -
    # (-4 * 8 + 10 * (-1)) = 92 over |(-4, 10)| = sqrt(116), 8.54 mm. It is not a
    # perpendicular diameter, and the truth does not use it.
    pts = edge_points_mm(m[0], (2.0, 2.0))
    proj = pts @ (np.array([-2.0, 5.0]) / math.sqrt(29.0))
    assert proj.max() - proj.min() == pytest.approx(92.0 / math.sqrt(116.0), abs=1e-9)
    assert d["sa_mm"] < proj.max() - proj.min()
    # the library (edge, perpendicular strip of half a pixel diagonal) on the same mask
    lib = axial_diameters(m, CT_SPACING_MM)
    assert lib.longest_mm == pytest.approx(d["ld_mm"], abs=1e-9)
    assert lib.short_axis_mm == pytest.approx(d["sa_mm"], abs=0.5)


def test_ld_slice_is_the_longest_and_ties_go_to_the_larger_short_axis() -> None:
    m = np.zeros((3, 8, 10), bool)
    m[0, 2, 1:6] = True  # 5-pixel row: LD 10 mm, SA 2 mm
    m[1, 1:4, 1:5] = True  # 3 x 4 pixels: LD hypot(8, 4) = 8.94 mm
    m[2, 4, 3:8] = True  # another 5-pixel row, same LD and SA as slice 0
    d = axial_diameters_edge(m, CT_SPACING_MM)
    assert d["slice_index"] == 0  # tie between slices 0 and 2: same SA, lower slice
    assert d["ld_mm"] == pytest.approx(10.0)
    m[2, 3, 4] = True  # slice 2 still has LD 10 mm (the pixel sits inside the row span)
    d = axial_diameters_edge(m, CT_SPACING_MM)
    assert d["ld_mm"] == pytest.approx(10.0)
    assert (d["slice_index"], d["sa_mm"]) == (2, pytest.approx(4.0))  # the larger SA wins


def test_ct_lesion_metrics_by_hand() -> None:
    hu = np.full((4, 6, 6), -100.0)
    m = np.zeros(hu.shape, bool)
    m[1, 1:4, 1:3] = True  # 6 voxels at 30 HU
    m[2, 2, 2] = True  # 1 voxel at 44 HU
    hu[1, 1:4, 1:3] = 30.0
    hu[2, 2, 2] = 44.0
    out = ct_lesion_metrics(hu, m, (0.0, 0.0, -100.0), CT_SPACING_MM)
    assert out["n_voxels"] == 7
    assert out["volume_ml"] == pytest.approx(7 * 2 * 2 * 4 / 1000.0)  # 0.016 mL per voxel
    assert out["hu_mean"] == pytest.approx((6 * 30.0 + 44.0) / 7, abs=0.005)
    # slice 1: 3 rows x 2 columns, pixel centres x = 2, 4 and y = 2, 4, 6 mm. Face
    # midpoints: top (2, 1), (4, 1); bottom (2, 7), (4, 7); sides x = 1 and 5 at
    # y = 2, 4, 6. Farthest pair: a top face to the bottom face of the other column,
    # (2, 1)-(4, 7), hypot(2, 6) = 6.325 mm (side to side corners give hypot(4, 4) = 5.66).
    # SA: along v = (-3, 1)/sqrt(10) the longest hull chord joins the two sides x = 1 and
    # x = 5: 4 mm in x, so 4 sqrt(10) / 3 = 4.216 mm. Slice 2 (one pixel) reads 2 mm.
    assert out["ld_mm"] == pytest.approx(round(math.hypot(2.0, 6.0), 3))
    assert out["sa_mm"] == pytest.approx(round(4.0 * math.sqrt(10.0) / 3.0, 3))
    assert out["ld_slice_z_mm"] == pytest.approx(-100.0 + 1 * 4.0)
    empty = ct_lesion_metrics(hu, np.zeros(hu.shape, bool), (0.0, 0.0, 0.0), CT_SPACING_MM)
    assert empty == {
        "ld_mm": 0.0,
        "sa_mm": 0.0,
        "volume_ml": 0.0,
        "hu_mean": None,
        "n_voxels": 0,
        "ld_slice_z_mm": None,
    }


def test_deauville_boundaries() -> None:
    # M = 1.8 (blood pool), L = 2.6 (liver); 2 L = 5.2
    assert deauville_score(1.8, 1.8, 2.6) == 2  # at the mediastinum
    assert deauville_score(1.81, 1.8, 2.6) == 3
    assert deauville_score(2.6, 1.8, 2.6) == 3  # at the liver
    assert deauville_score(2.61, 1.8, 2.6) == 4
    assert deauville_score(5.2, 1.8, 2.6) == 4  # exactly 2 x liver
    assert deauville_score(5.21, 1.8, 2.6) == 5
    # blood pool above the liver (M >= L): no score 3, x <= L is 2, above L is 4
    assert deauville_score(2.0, 2.4, 2.0) == 2
    assert deauville_score(2.2, 2.4, 2.0) == 4
    for x in np.linspace(0.0, 7.0, 141):
        for m, liver in ((1.8, 2.6), (2.4, 2.0), (2.0, 2.0)):
            assert deauville_score(float(x), m, liver) == _deauville_by_hand(float(x), m, liver)


# ---------------------------------------------------------------------------- committed
def test_committed_truth_holds_ct_and_site_for_every_lesion(
    sample_scans_dir: Path, truth: dict[str, Any]
) -> None:
    conv = truth["conventions"]
    assert {"ct_truth_mask", "ct", "ct_diameters", "site", "deauville"} <= set(conv)
    for tp in TIMEPOINTS:
        t = truth["timepoints"][tp]
        assert t["ct_truth_mask"] == f"{tp}/truth_lesions_ct.nii.gz"
        assert (sample_scans_dir / t["ct_truth_mask"]).is_file()
        assert "suv_max" in t["liver_reference"] and "suv_max" in t["blood_pool_reference"]
        for les in t["lesions"]:
            assert set(les["ct"]) == NEW_CT_KEYS, (tp, les["name"])
            assert set(les["site"]) == NEW_SITE_KEYS, (tp, les["name"])
            site = les["site"]
            if les["present"]:
                assert site["region"] == "lesion" and site["state"] == "present"
                assert les["ct"]["n_voxels"] > 0 and les["ct"]["sa_mm"] <= les["ct"]["ld_mm"]
            else:
                assert site["region"] == "former footprint" and site["state"] == "resolved"
                assert les["ct"] == {
                    "ld_mm": 0.0,
                    "sa_mm": 0.0,
                    "volume_ml": 0.0,
                    "hu_mean": None,
                    "n_voxels": 0,
                    "ld_slice_z_mm": None,
                }
    # the case has exactly one resolved lesion: the pelvic mass at month 3
    resolved = [
        (tp, les["name"])
        for tp in TIMEPOINTS
        for les in truth["timepoints"][tp]["lesions"]
        if not les["present"]
    ]
    assert resolved == [("month3", "pelvic_wall_left")]


def test_ct_truth_masks_are_the_half_covered_ct_voxels_of_the_rendered_shapes(
    sample_scans_dir: Path, truth: dict[str, Any], ct_hu: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    for tp in TIMEPOINTS:
        t = truth["timepoints"][tp]
        labels_ct, affine = _labels(sample_scans_dir / tp / "truth_lesions_ct.nii.gz")
        labels_pet, _ = _labels(sample_scans_dir / tp / "truth_lesions.nii.gz")
        hu, ipp0 = ct_hu[tp]
        assert labels_ct.shape == hu.shape == tuple(t["ct_grid"]["shape_zyx"])
        # LPS -> RAS affine on the CT grid: voxel (0, 0, 0) at the first CT slice position
        np.testing.assert_allclose(affine[:3, 3], [-ipp0[0], -ipp0[1], ipp0[2]])
        np.testing.assert_allclose(np.diag(affine)[:3], [-2.0, -2.0, 4.0])
        fine = render_lesion_masks(lesion_states(tp), truth["seed"], t["patient_shift_mm"])
        for les, f in zip(t["lesions"], fine):
            # both committed masks are the >= 0.5 coverage of the same rendered shape
            assert np.array_equal(labels_ct == les["label"], _ct_fraction(f) >= 0.5)
            assert np.array_equal(labels_pet == les["label"], _pet_fraction(f) >= 0.5)


def test_ct_truth_against_dicom_and_library_diameters(
    sample_scans_dir: Path, truth: dict[str, Any], ct_hu: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    for tp in TIMEPOINTS:
        t = truth["timepoints"][tp]
        labels_ct, _ = _labels(sample_scans_dir / tp / "truth_lesions_ct.nii.gz")
        hu, ipp0 = ct_hu[tp]
        for les in t["lesions"]:
            ct = les["ct"]
            mask = labels_ct == les["label"]
            assert int(mask.sum()) == ct["n_voxels"]
            if not les["present"]:
                assert not mask.any()
                continue
            assert ct["volume_ml"] == pytest.approx(mask.sum() * 0.016, abs=1e-4)
            assert float(hu[mask].mean()) == pytest.approx(ct["hu_mean"], abs=0.005)
            # the CT truth mask (>= half of two 2 mm sub-slices) is within 10 % of the
            # rendered shape volume (observed 0.3-9 %; the month-3 scar is the smallest)
            assert ct["volume_ml"] == pytest.approx(les["shape_volume_ml"], rel=0.10)
            # the truth diameters recomputed from the committed mask
            d = axial_diameters_edge(mask, CT_SPACING_MM)
            assert (round(d["ld_mm"], 3), round(d["sa_mm"], 3)) == (ct["ld_mm"], ct["sa_mm"])
            assert ipp0[2] + 4.0 * d["slice_index"] == pytest.approx(ct["ld_slice_z_mm"])
            # and the library (edge convention) on the same mask, within 0.5 mm
            lib = axial_diameters(mask, CT_SPACING_MM, convention="edge")
            assert lib.longest_mm == pytest.approx(ct["ld_mm"], abs=0.5), (tp, les["name"])
            assert lib.short_axis_mm == pytest.approx(ct["sa_mm"], abs=0.5), (tp, les["name"])


def test_site_uptake_and_deauville_against_dicom(
    sample_scans_dir: Path, truth: dict[str, Any], pet_suv: dict[str, np.ndarray]
) -> None:
    sphere_offsets = [  # 1 mL sphere on the 4 mm grid: 1 + 6 faces + 12 edges (<= 6.2035 mm)
        (dz, dy, dx)
        for dz in (-1, 0, 1)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dz * dz + dy * dy + dx * dx <= 2
    ]
    assert len(sphere_offsets) == 19
    for tp in TIMEPOINTS:
        t = truth["timepoints"][tp]
        suv = pet_suv[tp]
        padded = np.pad(suv, 1)
        labels, _ = _labels(sample_scans_dir / tp / "truth_lesions.nii.gz")
        origin = np.array(t["pet_grid"]["origin_mm"])
        zz, yy, xx = np.indices(suv.shape)
        pos = np.stack([xx, yy, zz], axis=-1) * 4.0 + origin
        # reference maxima: liver sphere (voxel centres within 15 mm), aorta cylinder
        liver, blood = t["liver_reference"], t["blood_pool_reference"]
        in_liver = np.linalg.norm(pos - np.array(liver["center_mm"]), axis=-1) <= 15.0
        assert float(suv[in_liver].max()) == pytest.approx(liver["suv_max"], abs=1e-3)
        c = np.array(blood["center_mm"])
        in_blood = (np.abs(pos[..., 2] - c[2]) <= 10.0) & (
            np.hypot(pos[..., 0] - c[0], pos[..., 1] - c[1]) <= 5.0
        )
        assert int(in_blood.sum()) == blood["n_voxels"]
        assert float(suv[in_blood].max()) == pytest.approx(blood["suv_max"], abs=1e-3)
        for index, les in enumerate(t["lesions"]):
            site = les["site"]
            if les["present"]:
                region = labels == les["label"]
                # same region as the lesion truth: the same numbers
                assert site["suv_max"] == les["suv_max"] and site["suv_peak"] == les["suv_peak"]
                assert site["sul_peak"] == les["sul_peak"]
            else:
                # the former footprint: the lesion's earlier shapes drawn where this scan
                # sees that part of the body, then the half-covered PET voxels
                earlier = [lesion_states(e)[index] for e in TIMEPOINTS[: TIMEPOINTS.index(tp)]]
                fine = render_lesion_masks(earlier, truth["seed"], t["patient_shift_mm"])
                region = _pet_fraction(np.logical_or.reduce(fine)) >= 0.5
                assert not (labels > 0)[region].any()  # nothing else was painted there
            assert int(region.sum()) == site["n_voxels"]
            np.testing.assert_allclose(pos[region].mean(axis=0), site["centroid_mm"], atol=0.01)
            assert float(suv[region].max()) == pytest.approx(site["suv_max"], abs=1e-3)
            peak = max(
                np.mean([padded[z + 1 + a, y + 1 + b, x + 1 + e] for a, b, e in sphere_offsets])
                for z, y, x in np.argwhere(region)
            )
            assert peak == pytest.approx(site["suv_peak"], abs=1e-3)
            assert site["sul_peak"] == pytest.approx(
                site["suv_peak"] * t["sul_per_suvbw"], abs=1e-3
            )
            assert site["deauville"] == _deauville_by_hand(
                site["suv_max"], blood["suv_max"], liver["suv_max"]
            )
            assert site["metabolically_active"] == (site["suv_max"] > blood["suv_mean"])


def test_clinical_course_in_deauville_terms(truth: dict[str, Any]) -> None:
    tps = truth["timepoints"]

    def score(tp: str, name: str) -> int:
        les = next(les for les in tps[tp]["lesions"] if les["name"] == name)
        return int(les["site"]["deauville"])

    # baseline masses above twice the liver (5); the month-3 scar at or below the blood pool
    assert score("baseline", "retroperitoneal_right") == 5
    assert score("baseline", "pelvic_wall_left") == 5
    assert score("month3", "retroperitoneal_right") == 2
    # the CT short axis shrinks at every visit for the tracked retroperitoneal mass
    sa = [
        next(les for les in tps[tp]["lesions"] if les["name"] == "retroperitoneal_right")["ct"][
            "sa_mm"
        ]
        for tp in TIMEPOINTS
    ]
    assert sa[0] > sa[1] > sa[2] > 0.0
