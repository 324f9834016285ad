"""SUVpeak kernels and variants on synthetic images with hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emlesion.errors import GeometryError, InvalidParameterError
from emlesion.measure import (
    PEAK_RADIUS_1ML_MM,
    PEAK_RADIUS_1P2CM_MM,
    PeakVariant,
    intensity_peak,
    sphere_kernel,
    sphere_weights,
)


def test_radius_of_one_ml_sphere() -> None:
    # (3 * 1000 / (4 pi))^(1/3) = 6.2035 mm (domain-reference 2.1)
    assert abs(PEAK_RADIUS_1ML_MM - 6.2035) < 5e-5
    assert 4 / 3 * math.pi * PEAK_RADIUS_1ML_MM**3 == pytest.approx(1000.0)
    # 1.2 cm diameter sphere = 0.905 mL (domain-reference 2.1)
    assert 4 / 3 * math.pi * PEAK_RADIUS_1P2CM_MM**3 / 1000 == pytest.approx(0.905, abs=5e-4)


@pytest.mark.parametrize(
    ("spacing", "count"),
    [
        # voxel counts of the 6.2 mm centre-inclusion sphere from domain-reference 2.1 [D]
        ((4.0, 4.0, 4.0), 19),
        ((4.07, 4.07, 3.0), 21),
        ((3.65, 3.65, 3.27), 27),
        ((2.0, 2.0, 2.0), 123),
        # QIN-HEADNECK grid 3.394 x 3.394 x 2.025 mm, by hand: |dx|,|dy| <= 1;
        # centre column |dz| <= 3 (7), 4 edge columns |dz| <= 2 (4 x 5), 4 corner columns
        # |dz| <= 1 (4 x 3): 7 + 20 + 12 = 39
        ((3.3940266832237, 3.3940266832237, 2.025), 39),
    ],
)
def test_kernel_voxel_counts(spacing: tuple[float, float, float], count: int) -> None:
    k = sphere_kernel(spacing)
    assert int(k.sum()) == count
    assert k.shape == tuple(2 * math.floor(PEAK_RADIUS_1ML_MM / s) + 1 for s in spacing[::-1])
    assert np.array_equal(k, k[::-1, ::-1, ::-1])  # centred and symmetric


def test_anisotropic_kernel_membership() -> None:
    # spacing (1, 1, 3): offset dz=2 lies at 6 mm (inside 6.2035), dz=2 & dy=2 at
    # sqrt(36 + 4) = 6.32 mm (outside), dz=0 & dx=6 at 6 mm (inside), dx=6 & dy=1 at 6.08 (inside)
    k = sphere_kernel((1.0, 1.0, 3.0))
    assert k.shape == (5, 13, 13)
    c = (2, 6, 6)
    assert k[c[0] + 2, c[1], c[2]]
    assert not k[c[0] + 2, c[1] + 2, c[2]]
    assert k[c[0], c[1], c[2] + 6]
    assert k[c[0], c[1] + 1, c[2] + 6]


@pytest.mark.parametrize(
    "spacing", [(4.0, 4.0, 4.0), (2.0, 2.0, 2.0), (3.394, 3.394, 2.025), (1.0, 1.0, 3.0)]
)
def test_exact_weights_integrate_to_sphere_volume(spacing: tuple[float, float, float]) -> None:
    # sum of partial-voxel weights x voxel volume approximates 4/3 pi r^3 = 1 mL
    w = sphere_weights(spacing)
    vol_ml = w.sum() * np.prod(spacing) / 1000
    assert vol_ml == pytest.approx(1.0, rel=0.015)
    assert w.max() == 1.0 and w.min() >= 0.0
    assert w[tuple(s // 2 for s in w.shape)] == 1.0


def _hot_voxel_cube() -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((11, 11, 11))
    img[3:8, 3:8, 3:8] = 1.0
    img[3, 3, 3] = 20.0  # hot voxel at a corner of the 5x5x5 cube
    mask = np.zeros(img.shape, bool)
    mask[3:8, 3:8, 3:8] = True
    return img, mask


def test_hot_voxel_in_cube_local_vs_global() -> None:
    # 4 mm isotropic: the kernel is the 19 offsets with |d|^2 <= 2 (voxel units).
    # Local: centred on the hot corner voxel; in-cube neighbours are the 3 face and 3 edge
    # neighbours pointing inwards -> (20 + 6) / 19. Global: best centre is an edge neighbour
    # such as (4, 4, 3): 14 kernel voxels in the cube, including the hot one -> (20 + 13) / 19.
    # (Centre (4, 4, 4) has all 19 in the cube but excludes the hot voxel: mean 1.)
    img, mask = _hot_voxel_cube()
    sp = (4.0, 4.0, 4.0)
    local = intensity_peak(img, mask, sp, variant="local")
    glob = intensity_peak(img, mask, sp, variant=PeakVariant.GLOBAL)
    assert local.value == pytest.approx(26 / 19, rel=1e-12)
    assert local.centre_index == (3, 3, 3)
    assert glob.value == pytest.approx(33 / 19, rel=1e-12)
    assert sorted(glob.centre_index) == [3, 4, 4]
    assert local.kernel_voxels == glob.kernel_voxels == 19
    assert glob.kernel_volume_ml == pytest.approx(19 * 64 / 1000)


def test_local_peak_ties_take_highest_mean() -> None:
    # two voxels share the maximum 10; one sits in zeros, the other among 5s (IBSI: highest
    # result). 4 mm grid, 19-voxel kernel: (10 + 18 * 5) / 19 = 100 / 19
    img = np.zeros((15, 15, 15))
    img[8:13, 8:13, 8:13] = 5.0
    img[10, 10, 10] = 10.0
    img[3, 3, 3] = 10.0
    mask = np.zeros(img.shape, bool)
    mask[3, 3, 3] = mask[10, 10, 10] = True
    p = intensity_peak(img, mask, (4.0, 4.0, 4.0), variant="local")
    assert p.value == pytest.approx(100 / 19, rel=1e-12)
    assert p.centre_index == (10, 10, 10)


def test_uniform_region_peaks_equal_the_uniform_value() -> None:
    # sphere of radius 12 mm filled with 5 in a background of 1, 2 mm grid: every variant's
    # best sphere lies fully inside the uniform region, so all peaks are 5
    z, y, x = np.mgrid[-10:11, -10:11, -10:11] * 2.0
    inside = x**2 + y**2 + z**2 <= 12.0**2
    img = np.where(inside, 5.0, 1.0)
    for v in PeakVariant:
        assert intensity_peak(img, inside, (2.0, 2.0, 2.0), variant=v).value == pytest.approx(
            5.0, rel=1e-12
        )


def test_image_border_uses_in_image_voxels_only() -> None:
    # uniform image 3, lesion = the corner voxel: the sphere is clipped by the image border;
    # the mean over the voxels that exist is 3. Zero padding would give 3 * 7 / 19 on 4 mm:
    # only the centre, 3 face and 3 edge offsets of the 19 lie inside the image.
    img = np.full((6, 6, 6), 3.0)
    mask = np.zeros(img.shape, bool)
    mask[0, 0, 0] = True
    for v in PeakVariant:
        assert intensity_peak(img, mask, (4.0, 4.0, 4.0), variant=v).value == pytest.approx(3.0)


def test_exact_and_global_peaks_agree_on_a_linear_ramp() -> None:
    # a linear ramp along x: a symmetric kernel's mean equals the centre value for both
    # kernels, so both peaks equal the ramp at the best lesion voxel (x index 6 -> 6.0)
    img = np.broadcast_to(np.arange(10.0)[None, None, :], (9, 9, 10)).copy()
    mask = np.zeros(img.shape, bool)
    mask[4, 4, 2:7] = True
    for v in ("global", "exact"):
        assert intensity_peak(img, mask, (2.0, 2.0, 2.0), variant=v).value == pytest.approx(6.0)


def test_bad_inputs() -> None:
    img = np.zeros((3, 3, 3))
    with pytest.raises(ValueError, match="unknown SUVpeak variant"):
        intensity_peak(img, img > 0, (1, 1, 1), variant="median")
    with pytest.raises(ValueError, match="empty"):
        intensity_peak(img, img > 0, (1, 1, 1))
    with pytest.raises(ValueError, match="spacing_mm"):
        sphere_kernel((0.0, 1.0, 1.0))
    with pytest.raises(GeometryError, match=r"spacing_mm.*Fix: pass the voxel spacing"):
        sphere_kernel((0.0, 1.0, 1.0))
    with pytest.raises(InvalidParameterError, match="peak radius"):
        sphere_kernel((1.0, 1.0, 1.0), -1.0)
