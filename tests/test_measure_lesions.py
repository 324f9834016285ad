"""measure_lesions / LesionTable on synthetic volumes with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydicom.dataset import Dataset
from scipy import ndimage

from emlesion.errors import GeometryError, MaskError
from emlesion.io.geometry import Grid
from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import SeriesIdentity, Volume
from emlesion.measure import LesionMeasurement, measure_lesions

Vec3 = tuple[float, float, float]


def _vol(
    arr: np.ndarray,
    spacing: Vec3 = (2.0, 2.0, 2.0),
    origin: Vec3 = (0.0, 0.0, 0.0),
    units: str = "SUVbw",
    direction: tuple[float, ...] = (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0),
) -> Volume:
    grid = Grid(arr.shape, origin, spacing, direction)  # type: ignore[arg-type]
    return Volume(arr, grid, units=units)


def _sphere(radius_mm: float, half: int, spacing: float) -> np.ndarray:
    z, y, x = np.mgrid[-half : half + 1, -half : half + 1, -half : half + 1] * spacing
    return x**2 + y**2 + z**2 <= radius_mm**2


def _threshold_41(image: np.ndarray) -> np.ndarray:
    """Tiny 41 %-of-max segmentation: voxels >= 0.41 max, component holding the max."""
    comp, _ = ndimage.label(image >= 0.41 * image.max())
    return comp == comp[np.unravel_index(np.argmax(image), image.shape)]


def test_uniform_sphere_volume_and_peaks() -> None:
    # 15 mm sphere of SUV 6 in background 1, 2 mm grid
    inside = _sphere(15.0, 12, 2.0)
    img = np.where(inside, 6.0, 1.0).astype(np.float32)
    t = measure_lesions(_vol(img), inside, diameter_convention="centre")
    n = int(inside.sum())  # voxel count, independent
    assert t["n_voxels"][0] == n
    assert t["mtv_ml"][0] == pytest.approx(n * 8 / 1000, rel=1e-12)
    # voxel counting approximates 4/3 pi r^3 = 14.137 mL within 2 % at r = 7.5 voxels
    assert t["mtv_ml"][0] == pytest.approx(4 / 3 * math.pi * 15**3 / 1000, rel=0.02)
    for col in ("suv_peak_global", "suv_peak_local", "suv_peak_exact", "suv_max", "suv_mean"):
        assert t[col][0] == pytest.approx(6.0, rel=1e-7)
    assert t["suv_std"][0] == pytest.approx(0.0, abs=1e-6)
    assert t["tlg"][0] == pytest.approx(6.0 * n * 8 / 1000, rel=1e-7)
    # diameters between voxel centres (index units, r = 7.5 voxels, |p|^2 <= 56.25):
    # 3-D: the largest lattice |p|^2 is 56 = 6^2 + 4^2 + 2^2 -> 2 * 2 mm * sqrt(56);
    # axial: 56, 55, 54 are not sums of two squares, 53 = 7^2 + 2^2 -> 2 * 2 mm * sqrt(53)
    assert t["max_3d_diameter_mm"][0] == pytest.approx(4 * math.sqrt(56))
    assert t["longest_axial_diameter_mm"][0] == pytest.approx(4 * math.sqrt(53))
    # SA: (-2, 7) is exactly perpendicular to (7, 2) and also in the mask -> SA = LD
    assert t["short_axis_mm"][0] == pytest.approx(4 * math.sqrt(53))


def test_blurred_sphere_41_percent_threshold_recovers_volume() -> None:
    # 20 mm radius sphere of activity 10 in zero background, 2 mm grid, Gaussian blur of
    # 8 mm FWHM (sigma = 8 / 2.3548 / 2 voxels). The 41 % threshold recovers the true
    # volume 4/3 pi 20^3 = 33.51 mL within 10 % (issue 6.1 acceptance).
    inside = _sphere(20.0, 20, 2.0)
    img = ndimage.gaussian_filter(np.where(inside, 10.0, 0.0), sigma=8 / 2.3548 / 2)
    seg = _threshold_41(img)
    t = measure_lesions(_vol(img.astype(np.float32)), seg)
    true_ml = 4 / 3 * math.pi * 20**3 / 1000
    assert t["mtv_ml"][0] == pytest.approx(true_ml, rel=0.10)
    assert t["suv_mean"][0] < t["suv_max"][0]  # the blurred edge is inside the 41 % mask


def test_centroid_extents_lps_with_flipped_direction() -> None:
    # x axis flipped: LPS x = origin_x - i * sx. Box i = 2..5, j = 1..3, k = 0..1,
    # spacing (2, 3, 4): centre index (3.5, 2, 0.5) -> LPS (100 - 7, 20 + 6, -10 + 2)
    arr = np.zeros((4, 6, 8), np.float32)
    lab = np.zeros(arr.shape, np.uint16)
    lab[0:2, 1:4, 2:6] = 3
    v = _vol(arr, spacing=(2.0, 3.0, 4.0), origin=(100.0, 20.0, -10.0),
             direction=(-1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    row = measure_lesions(v, lab).row(3)
    assert row.centroid_mm == pytest.approx((93.0, 26.0, -8.0))
    # voxel-edge extents: 4 x 2 mm, 3 x 3 mm, 2 x 4 mm -> (0.8, 0.9, 0.8) cm
    assert row.extent_cm == pytest.approx((0.8, 0.9, 0.8))
    assert row.n_voxels == 24
    assert row.mtv_ml == pytest.approx(24 * 24 / 1000)


def test_table_api_rows_columns_definitions_json() -> None:
    img = np.ones((12, 12, 12), np.float32)
    img[2:5, 2:5, 2:5] = 4.0
    lab = np.zeros(img.shape, np.uint16)
    lab[2:5, 2:5, 2:5] = 1
    lab[7:10, 7:10, 7:10] = 5
    lm = LabelMap(lab, Grid(img.shape, (0, 0, 0), (2, 2, 2)), names={1: "node", 5: "mass"})
    t = measure_lesions(_vol(img), lm, peak_variants=("global",))
    assert t.labels == (1, 5)
    assert list(t["name"]) == ["node", "mass"]
    assert list(t["suv_max"]) == [4.0, 1.0]
    assert "suv_peak_local" not in t.column_names  # only requested variants
    with pytest.raises(KeyError, match="hu_mean"):
        t["hu_mean"]
    cols = t.columns
    assert {len(v) for v in cols.values()} == {2}
    assert all(isinstance(v, np.ndarray) and v.ndim == 1 for v in cols.values())
    assert set(cols) <= set(t.definitions)  # every column names its definition
    assert "0F91" in t.definitions["suv_peak_global"]
    rows = list(t)
    assert all(isinstance(r, LesionMeasurement) for r in rows)
    assert rows[1].suv_peak_local is None and rows[1].hu_mean is None
    with pytest.raises(AttributeError):
        rows[0].suv_max = 0.0  # type: ignore[misc]
    json.dumps(t.to_dict())
    json.dumps(rows[0].to_dict())
    assert t.provenance[0].operation == "emlesion.measure.measure_lesions"
    assert "LesionTable(2 lesions" in repr(t)
    assert measure_lesions(_vol(img), lab, only_labels=[5]).labels == (5,)


def test_sul_columns() -> None:
    rng = np.random.default_rng(3)
    img = rng.uniform(1, 5, (10, 10, 10)).astype(np.float32)
    lab = np.zeros(img.shape, np.uint16)
    lab[3:7, 3:7, 3:7] = 1
    suv = _vol(img)
    # no SUL image and SUVbw units: no SUL columns
    assert "sul_peak" not in measure_lesions(suv, lab).column_names
    # SUL image = 0.8 x SUV (float32): SULpeak = 0.8 x SUVpeak(global), SULmax = 0.8 x SUVmax
    t = measure_lesions(suv, lab, sul=_vol(img * np.float32(0.8), units="SULjanma"))
    assert t["sul_peak"][0] == pytest.approx(0.8 * t["suv_peak_global"][0], rel=1e-6)
    assert t["sul_max"][0] == pytest.approx(0.8 * t["suv_max"][0], rel=1e-6)
    # the image itself is lean-body: SUL columns equal the SUV columns
    t2 = measure_lesions(_vol(img, units="SULjanma"), lab, sul_peak_variant="local")
    assert t2["sul_peak"][0] == t2["suv_peak_local"][0]
    assert t2["sul_max"][0] == t2["suv_max"][0]


def _ct_with_padding() -> tuple[Volume, Volume, np.ndarray, np.ndarray]:
    # PET 2 mm grid, CT 1 mm grid shifted by -0.5 mm: every PET voxel holds exactly 2x2x2
    # CT voxel centres (nearest neighbour maps them to it)
    pet = np.ones((10, 10, 10), np.float32)
    lab = np.zeros(pet.shape, np.uint16)
    lab[3:7, 3:7, 3:7] = 1  # 4^3 PET voxels -> 8^3 CT voxels at indices 6..13
    hu = np.broadcast_to(np.arange(20.0, dtype=np.float32)[None, None, :] * 5, (20, 20, 20))
    hu = hu.copy()
    hu[6, 6, 6:9] = -3024.0  # padding (stored -2000, slope 1, intercept -1024)
    headers = []
    for _ in range(20):
        ds = Dataset()
        ds.PixelPaddingValue = -2000
        ds.RescaleSlope = 1
        ds.RescaleIntercept = -1024
        headers.append(ds)
    ct = Volume(hu, Grid(hu.shape, (-0.5, -0.5, -0.5), (1.0, 1.0, 1.0)),
                identity=SeriesIdentity(modality="CT"), headers=tuple(headers), units="HU")
    ct_mask = np.zeros(hu.shape, bool)
    ct_mask[6:14, 6:14, 6:14] = True
    return _vol(pet), ct, lab, ct_mask


def test_ct_statistics_exclude_padding_and_use_ct_grid() -> None:
    suv, ct, lab, ct_mask = _ct_with_padding()
    t = measure_lesions(suv, lab, ct=ct, diameter_convention="centre")
    keep = ct_mask & (ct.array != -3024.0)
    vals = ct.array[keep].astype(np.float64)  # independent numpy: 512 - 3 voxels
    assert t["ct_n_voxels"][0] == 509
    assert t["hu_mean"][0] == pytest.approx(vals.mean(), rel=1e-12)
    assert t["hu_std"][0] == pytest.approx(vals.std(), rel=1e-12)
    # 8 x 8 CT voxels at 1 mm: centre diagonal sqrt(7^2 + 7^2); PET 4 x 4 at 2 mm: sqrt(6^2+6^2)
    assert t["ct_longest_axial_diameter_mm"][0] == pytest.approx(7 * math.sqrt(2))
    assert t["ct_short_axis_mm"][0] == pytest.approx(7 * math.sqrt(2))
    assert t["longest_axial_diameter_mm"][0] == pytest.approx(6 * math.sqrt(2))
    # an explicit padding HU overrides the headers: nothing equals -1 here, all 512 kept
    assert measure_lesions(suv, lab, ct=ct, ct_padding_hu=-1.0)["ct_n_voxels"][0] == 512


def test_default_edge_convention_on_pet_and_ct_grids() -> None:
    # same geometry as above, default convention "edge" (edge to edge):
    # PET 4 x 4 voxels of 2 mm: edge points (-0.5, 0..3), (3.5, 0..3), (0..3, -0.5),
    # (0..3, 3.5) voxels; farthest pair (-0.5, 0)-(3.5, 3): hypot(4, 3) voxels = 10 mm;
    # the same pair pattern on the CT, 8 x 8 voxels of 1 mm: hypot(8, 7) mm;
    # 3-D PET: face centres (-0.5, 0, 0)-(3.5, 3, 3) voxels = sqrt(16 + 9 + 9) x 2 mm
    suv, ct, lab, _ = _ct_with_padding()
    t = measure_lesions(suv, lab, ct=ct)
    assert t["longest_axial_diameter_mm"][0] == pytest.approx(2 * math.hypot(4, 3))
    assert t["ct_longest_axial_diameter_mm"][0] == pytest.approx(math.hypot(8, 7))
    assert t["max_3d_diameter_mm"][0] == pytest.approx(2 * math.sqrt(34))
    # edge >= centre + s / sqrt(2) and <= centre + s (bounds in emlesion.measure.shape tests)
    c = measure_lesions(suv, lab, ct=ct, diameter_convention="centre")
    assert 6 * math.sqrt(2) + math.sqrt(2) <= t["longest_axial_diameter_mm"][0] <= (
        6 * math.sqrt(2) + 2)
    assert c["longest_axial_diameter_mm"][0] == pytest.approx(6 * math.sqrt(2))
    # the convention is recorded: definitions and provenance
    assert "convention 'edge'" in t.definitions["longest_axial_diameter_mm"]
    assert "'edge'" in t.definitions["ct_short_axis_mm"]
    assert "L0JK" in t.definitions["max_3d_diameter_mm"]
    assert "'centre'" in c.definitions["short_axis_mm"]
    assert t.provenance[0].inputs["diameter_convention"] == "edge"
    assert c.provenance[0].inputs["diameter_convention"] == "centre"
    json.dumps(t.to_dict())


def test_one_voxel_lesion_is_not_measured_as_gone() -> None:
    # a present one-voxel lesion on a 4 mm grid: RECIST/Lugano would read LD = 0 mm as
    # "disappeared"; edge to edge it is one voxel, 4 mm, LD = SA = max 3-D = 4 mm
    img = np.ones((5, 5, 5), np.float32)
    lab = np.zeros(img.shape, np.uint16)
    lab[2, 2, 2] = 1
    row = measure_lesions(_vol(img, spacing=(4.0, 4.0, 4.0)), lab).row(1)
    assert (row.longest_axial_diameter_mm, row.short_axis_mm, row.max_3d_diameter_mm) == (
        4.0, 4.0, 4.0)
    old = measure_lesions(_vol(img, spacing=(4.0, 4.0, 4.0)), lab, diameter_convention="centre")
    assert old.row(1).longest_axial_diameter_mm == 0.0
    with pytest.raises(ValueError, match="diameter convention"):
        measure_lesions(_vol(img), lab, diameter_convention="mesh")


def test_input_errors() -> None:
    img = np.ones((6, 6, 6), np.float32)
    lab = np.zeros(img.shape, np.uint16)
    lab[2, 2, 2] = 1
    suv = _vol(img)
    with pytest.raises(MaskError, match="not on the SUV image grid"):
        measure_lesions(suv, LabelMap(lab, Grid(img.shape, (1, 0, 0), (2, 2, 2))))
    with pytest.raises(MaskError, match="does not match"):
        measure_lesions(suv, lab[:5])
    with pytest.raises(MaskError, match="integers"):
        measure_lesions(suv, lab.astype(float))
    with pytest.raises(MaskError, match="not present"):
        measure_lesions(suv, lab, only_labels=[2])
    with pytest.raises(GeometryError, match="SUL image"):
        measure_lesions(suv, lab, sul=_vol(img, spacing=(1.0, 1.0, 1.0)))
    with pytest.raises(ValueError, match="unknown SUVpeak variant"):
        measure_lesions(suv, lab, peak_variants=("max",))
    empty = measure_lesions(suv, np.zeros(img.shape, np.uint16))
    assert len(empty) == 0 and empty["suv_max"].shape == (0,)
