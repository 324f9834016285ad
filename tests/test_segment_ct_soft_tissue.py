"""CT soft-tissue delineation of low-contrast lesions (emlesion.segment.delineate_on_ct and
its use by segment_lesions).

Synthetic PET/CT of one field, in LPS mm. PET: 4 mm voxels, 24 x 32 x 32, origin (0, 0, 0).
CT: 2 x 2 x 4 mm voxels, 24 x 64 x 64, origin (-1, -1, 0), so that each PET voxel holds
exactly 2 x 2 CT voxels. Tissues (true SUV, HU), drawn on the CT grid:

* fat everywhere (0.35, -100);
* the *nodule*: an ellipsoid centred (64, 64, 48) with semi-axes 8 x 11 x 16 mm (3.4, 40);
* the *bowel*: a tube of radius 12 mm along y, its axis at x = 84, z = 48, touching the
  nodule's +x side (SUV 2.2 +/- 20 % texture; mottled content: 25 % fat-like -100 HU, 10 %
  gas -900 HU, the rest 10 +/- 50 HU);
* the *vessel*: a tube of radius 6 mm along z at x = 50, y = 64, touching the nodule's -x
  side (1.6, 40).

PET = true SUV blurred by a Gaussian of 6.5 mm FWHM, averaged onto the PET voxels, with
Gaussian noise SD 0.05 (seed 7); CT noise is Gaussian, SD 12 HU (seed 8). The blood-pool
reference is (1.6, 0.1), the liver reference (1.0, 0.1) (PERCIST seed threshold 1.7).

Expected volume (independent of emlesion): the PET voxels at least half covered by the
nodule, counted on a 4 x 4 x 4 supersampling of each PET voxel (the truth convention of the
bundled sample).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from emlesion.io import Volume, load_mask, load_volume
from emlesion.io.geometry import Grid, resample_array
from emlesion.segment import (
    CTSoftTissueRule,
    ThresholdRule,
    delineate_on_ct,
    segment_lesions,
)

PET_GRID = Grid((24, 32, 32), (0.0, 0.0, 0.0), (4.0, 4.0, 4.0))
CT_GRID = Grid((24, 64, 64), (-1.0, -1.0, 0.0), (2.0, 2.0, 4.0))
NODULE_C = (64.0, 64.0, 48.0)
NODULE_AXES = (8.0, 11.0, 16.0)
BOWEL_X, BOWEL_Z, BOWEL_R = 84.0, 48.0, 12.0
VESSEL_X, VESSEL_Y, VESSEL_R = 50.0, 64.0, 6.0
BLOOD = (1.6, 0.1)
LIVER = (1.0, 0.1)


def _nodule(x: np.ndarray, y: np.ndarray, z: np.ndarray, scale: float = 1.0) -> np.ndarray:
    a, b, c = (s * scale for s in NODULE_AXES)
    return (((x - NODULE_C[0]) / a) ** 2 + ((y - NODULE_C[1]) / b) ** 2
            + ((z - NODULE_C[2]) / c) ** 2) <= 1.0


def _ct_coords() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k, j, i = np.indices(CT_GRID.shape, dtype=float)
    return -1.0 + 2.0 * i, -1.0 + 2.0 * j, 4.0 * k


def _phantom(nodule_suv: float = 3.4, scale: float = 1.0) -> tuple[Volume, Volume, np.ndarray]:
    x, y, z = _ct_coords()
    nod = _nodule(x, y, z, scale)
    bowel = ((x - BOWEL_X) ** 2 + (z - BOWEL_Z) ** 2 <= BOWEL_R ** 2) & ~nod
    vessel = ((x - VESSEL_X) ** 2 + (y - VESSEL_Y) ** 2 <= VESSEL_R ** 2) & ~nod & ~bowel
    rng = np.random.default_rng(6)
    suv = np.full(CT_GRID.shape, 0.35)
    hu = np.full(CT_GRID.shape, -100.0)
    texture = ndi.gaussian_filter(rng.standard_normal(CT_GRID.shape), 1.0)
    texture /= texture.std()
    suv[bowel] = 2.2 * (1.0 + 0.2 * texture[bowel])
    draw = rng.random(CT_GRID.shape)
    content = np.where(draw < 0.25, -100.0, np.where(draw < 0.35, -900.0,
                                                      10.0 + 50.0 * rng.standard_normal(
                                                          CT_GRID.shape)))
    hu[bowel] = content[bowel]
    suv[vessel], hu[vessel] = 1.6, 40.0
    suv[nod], hu[nod] = nodule_suv, 40.0
    # PET: 6.5 mm FWHM blur on the CT grid, 2 x 2 in-plane average, noise
    sigma = 6.5 / 2.3548
    blurred = ndi.gaussian_filter(suv, (sigma / 4.0, sigma / 2.0, sigma / 2.0))
    pet = blurred.reshape(24, 32, 2, 32, 2).mean(axis=(2, 4))
    pet = pet + 0.05 * np.random.default_rng(7).standard_normal(pet.shape)
    ct_noise = ndi.gaussian_filter(np.random.default_rng(8).standard_normal(CT_GRID.shape),
                                   0.7)
    hu = hu + 12.0 * ct_noise / ct_noise.std()
    # expected: PET voxels at least half covered (4 x 4 x 4 supersampling)
    k, j, i = np.indices((24 * 4, 32 * 4, 32 * 4), dtype=float)
    fx, fy, fz = (i + 0.5) - 2.0, (j + 0.5) - 2.0, (k + 0.5) - 2.0  # 1 mm samples
    cover = _nodule(fx, fy, fz, scale).reshape(24, 4, 32, 4, 32, 4).mean(axis=(1, 3, 5))
    return (Volume(pet.astype(np.float32), PET_GRID, units="SUVbw"),
            Volume(hu.astype(np.float32), CT_GRID, units="HU"), cover >= 0.5)


@pytest.fixture(scope="module")
def low() -> tuple[Volume, Volume, np.ndarray]:
    return _phantom()


def _segment(suv: Volume, ct: Volume | None, **kw: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return segment_lesions(suv, ct=ct, liver_reference=LIVER, blood_pool_reference=BLOOD,
                               **kw)  # type: ignore[arg-type]


def test_phantom_is_low_contrast_and_the_floor_leaks(low: tuple[Volume, Volume, np.ndarray]
                                                     ) -> None:
    suv, _ct, truth = low
    # 0.41 x SUVmax is below the blood-pool mean 1.6: the floor regime
    assert 0.41 * float(np.asarray(suv.array)[truth].max()) < BLOOD[0]
    seg = _segment(suv, None)
    les = seg.lesions  # type: ignore[attr-defined]
    assert [x.threshold_rule for x in les] == [ThresholdRule.BLOOD_POOL_FLOOR]
    # the floor threshold runs into the bowel: more than twice the nodule
    assert les[0].n_voxels > 2 * truth.sum()


def test_ct_delineates_the_nodule(low: tuple[Volume, Volume, np.ndarray]) -> None:
    suv, ct, truth = low
    seg = _segment(suv, ct)
    les = seg.lesions  # type: ignore[attr-defined]
    assert [x.threshold_rule for x in les] == [ThresholdRule.CT_SOFT_TISSUE]
    assert les[0].volume_reliable
    mask = seg.mask(les[0].label)  # type: ignore[attr-defined]
    # within 15 % of the half-covered PET voxels of the nodule (expected count in the module
    # docstring), and mostly the same voxels
    assert abs(int(mask.sum()) - int(truth.sum())) <= 0.15 * truth.sum()
    assert (mask & truth).sum() >= 0.85 * truth.sum()
    # the contour runs neither into the bowel (no lesion voxel whose centre is 6 mm inside it)
    # nor along the vessel: the vessel beside the nodule is soft tissue like it and takes the
    # nodule's spill-over, so one PET voxel of it at the interface may join, but nothing of
    # it beyond the nodule's cranio-caudal extent (z 32..64 mm, one voxel of margin)
    k, j, i = np.indices(PET_GRID.shape, dtype=float)
    x, y, z = 4.0 * i, 4.0 * j, 4.0 * k
    deep_bowel = (x - BOWEL_X) ** 2 + (z - BOWEL_Z) ** 2 <= (BOWEL_R - 6.0) ** 2
    assert not (mask & deep_bowel).any()
    in_vessel = (x - VESSEL_X) ** 2 + (y - VESSEL_Y) ** 2 <= VESSEL_R ** 2
    assert not (mask & in_vessel & ((z < NODULE_C[2] - NODULE_AXES[2] - 4.0)
                                    | (z > NODULE_C[2] + NODULE_AXES[2] + 4.0))).any()
    # voxels centred within 4 mm of the vessel axis: at most the interface column x = 52 mm
    # over the nodule's three central slices (z 44, 48, 52 mm)
    deep_vessel = (x - VESSEL_X) ** 2 + (y - VESSEL_Y) ** 2 <= 4.0 ** 2
    assert (mask & deep_vessel).sum() <= 3
    # the provenance tells how, with the measured CT noise (12 HU added, correlated)
    step = next(s for s in seg.provenance  # type: ignore[attr-defined]
                if s.operation == "emlesion.segment.percent_of_max")
    info = step.inputs["lesions"][0]["ct_soft_tissue"]
    assert 5.0 < info["ct_noise_hu"] < 14.0
    assert step.inputs["lesions"][0]["floor_n_voxels"] > 2 * truth.sum()


def test_switch_off_keeps_the_floor(low: tuple[Volume, Volume, np.ndarray]) -> None:
    suv, ct, _truth = low
    seg = _segment(suv, ct, ct_soft_tissue=False)
    assert [x.threshold_rule for x in seg.lesions] == [  # type: ignore[attr-defined]
        ThresholdRule.BLOOD_POOL_FLOOR]


def test_high_contrast_lesion_ignores_the_ct() -> None:
    # SUV 10: 0.41 x SUVmax is far above the blood pool; the CT changes nothing
    suv, ct, _truth = _phantom(nodule_suv=10.0)
    with_ct = _segment(suv, ct)
    without = _segment(suv, None)
    assert np.array_equal(np.asarray(with_ct.labels.array),  # type: ignore[attr-defined]
                          np.asarray(without.labels.array))  # type: ignore[attr-defined]
    assert with_ct.lesions[0].threshold_rule is ThresholdRule.RELATIVE  # type: ignore


def test_bowel_hot_spot_does_not_anchor(low: tuple[Volume, Volume, np.ndarray]) -> None:
    # make the hottest voxel of the region lie in the bowel: the nodule is still chosen
    # (largest homogeneous soft-tissue core) and the levels follow its own SUVmax
    suv, ct, truth = low
    a = np.array(suv.array)
    k, j, i = np.indices(PET_GRID.shape)
    hot = (k == 12) & (j == 16) & (i == 22)  # (88, 64, 48) mm: inside the bowel
    a[hot] = float(a[truth].max()) + 0.5
    cand = ndi.binary_dilation(truth, iterations=3) | hot
    out, info = delineate_on_ct(a, PET_GRID, ct, cand, (12, 16, 22), blood_pool_mean=BLOOD[0],
                                fraction=0.41, allowed=np.ones(a.shape, bool))
    assert out is not None
    assert not out[hot]
    assert info["lesion_suv_max"] < info["suv_max"]
    assert abs(int(out.sum()) - int(truth.sum())) <= 0.15 * truth.sum()


def test_no_ct_coverage_or_core_returns_none(low: tuple[Volume, Volume, np.ndarray]) -> None:
    suv, ct, truth = low
    a = np.asarray(suv.array)
    p = tuple(int(v) for v in np.unravel_index(int(np.argmax(np.where(truth, a, -1))), a.shape))
    far = Volume(np.asarray(ct.array), Grid(CT_GRID.shape, (1000.0, 1000.0, 0.0),
                                            CT_GRID.spacing_mm), units="HU")
    out, info = delineate_on_ct(a, PET_GRID, far, truth, p, blood_pool_mean=BLOOD[0],  # type: ignore[arg-type]
                                fraction=0.41, allowed=np.ones(a.shape, bool))
    assert out is None and "does not cover" in info["reason"]
    # a core below min_core_ml: none either (the nodule core is a few mL)
    out, info = delineate_on_ct(a, PET_GRID, ct, truth, p, blood_pool_mean=BLOOD[0],  # type: ignore[arg-type]
                                fraction=0.41, allowed=np.ones(a.shape, bool),
                                rule=CTSoftTissueRule(min_core_ml=50.0))
    assert out is None and "< 50 mL" in info["reason"]


def test_bowel_uptake_without_nodule_is_dropped() -> None:
    # the same field with a cold nodule (SUV 0.35): what is left above the PERCIST seed is the
    # bowel's textured uptake (SUV 2.2 +/- 20 %), low-contrast, with no soft-tissue core under
    # it and gas in it (10 % of its content at -900 HU): physiological, not a lesion
    suv, ct, _truth = _phantom(nodule_suv=0.35)
    assert float(np.asarray(suv.array).max()) < BLOOD[0] / 0.41  # floor regime
    without = _segment(suv, ct, ct_soft_tissue=False)
    assert [x.threshold_rule for x in without.lesions] == [  # type: ignore[attr-defined]
        ThresholdRule.BLOOD_POOL_FLOOR]
    seg = _segment(suv, ct)
    assert seg.lesions == ()  # type: ignore[attr-defined]
    step = next(s for s in seg.provenance  # type: ignore[attr-defined]
                if s.operation == "emlesion.segment.percent_of_max")
    assert step.inputs["dropped_as_bowel_uptake"] == 1
    dropped = step.inputs["lesions"][0]
    assert dropped["dropped"] == "bowel uptake"
    assert dropped["ct_soft_tissue"]["gas_ml"] >= 0.2


def test_real_pet_ct_geometry(shared_data: Path) -> None:
    """STS_001 cropped (TCIA Soft-tissue-Sarcoma, CC BY 3.0): a real GE PET (4.69 x 4.69 x
    3.27 mm, SUV) and CT (0.98 x 0.98 x 3.27 mm) on different grids. The thigh sarcoma is
    high-contrast, so segment_lesions never sends it here; called directly (blood-pool mean
    1.5 given), the delineation must work on these grids: a 7-voxel (6.8 mm) window, a CT noise
    of a real low-dose CT, and a result inside the PET GTV's neighbourhood on soft tissue."""
    root = shared_data / "sts-001-ge-pet" / "cropped"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pet = load_volume(root / "PET" / "image")
        ct = load_volume(root / "CT" / "image")
        gtv = load_mask(root / "PET" / "mask" / "RS.dcm", pet)
    a = np.asarray(pet.array)
    m = np.asarray(gtv.array) > 0
    p = tuple(int(v) for v in np.unravel_index(int(np.argmax(np.where(m, a, -1))), a.shape))
    out, info = delineate_on_ct(a, pet.grid, ct, m, p, blood_pool_mean=1.5,  # type: ignore[arg-type]
                                fraction=0.41, allowed=np.ones(a.shape, bool))
    assert out is not None
    assert info["window_voxels"] == 7  # 6 mm / 0.98 mm -> 6 -> odd 7
    assert 5.0 < info["ct_noise_hu"] < 60.0
    # the core stays within one PET voxel of the candidate, the rim adds a few mm
    assert not (out & ~ndi.binary_dilation(m, np.ones((3, 3, 3), bool), iterations=2)).any()
    # independent check: the CT (linearly resampled to the PET grid by SimpleITK) under the
    # result is soft tissue on average
    hu_pet = resample_array(np.asarray(ct.array), ct.grid, pet.grid, interpolation="linear",
                            default_value=-1024.0)
    assert 0.0 < float(hu_pet[out].mean()) < 100.0
