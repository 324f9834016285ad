"""Diameters and extents on synthetic masks with hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emlesion.measure import axial_diameters, extent_mm, max_3d_diameter_mm


def _ellipse(a: float, b: float, angle_deg: float = 0.0, half: int = 25) -> np.ndarray:
    y, x = np.mgrid[-half : half + 1, -half : half + 1].astype(float)
    t = math.radians(angle_deg)
    u = math.cos(t) * x + math.sin(t) * y
    v = -math.sin(t) * x + math.cos(t) * y
    return ((u / a) ** 2 + (v / b) ** 2 <= 1.0)[None]


def test_axis_aligned_ellipse() -> None:
    # semi-axes 20 and 10 pixel units on a 1 mm grid, centred on a voxel: the voxel centres
    # (+-20, 0) and (0, +-10) are in the mask and no centre lies farther out -> LD 40, SA 20
    d = axial_diameters(_ellipse(20, 10), (1.0, 1.0, 1.0))
    assert d.longest_mm == 40.0
    assert d.short_axis_mm == 20.0
    assert d.slice_index == 0


def test_axis_aligned_ellipse_anisotropic_pixels() -> None:
    # same ellipse in index units with 0.5 mm columns and 2 mm rows: LD along x = 40 * 0.5
    # = 20 mm, extent along y = 20 * 2 = 40 mm: the y axis is now the longest
    d = axial_diameters(_ellipse(20, 10), (0.5, 2.0, 1.0))
    assert d.longest_mm == 40.0
    assert d.short_axis_mm == 20.0


def test_rotated_ellipse_short_axis_is_perpendicular() -> None:
    # 45 degree rotation: lattice centres cannot hit the true end points exactly;
    # LD is within one pixel diagonal of 40 and SA within one of 20
    d = axial_diameters(_ellipse(20, 10, 45.0), (1.0, 1.0, 1.0))
    assert 40 - math.sqrt(2) <= d.longest_mm <= 40.0
    assert 20 - math.sqrt(2) <= d.short_axis_mm <= 20.0 + 1e-9
    (_, y0, x0), (_, y1, x1) = d.endpoints_index
    angle = math.degrees(math.atan2(y1 - y0, x1 - x0)) % 180
    assert abs(angle - 45) < 6  # lattice end points: (12, 10) -> (38, 40) is 40.9 degrees


def test_thin_line_has_zero_short_axis() -> None:
    # 5 voxels in a row, 2 mm columns: centre-to-centre length 4 * 2 = 8 mm; width 0
    m = np.zeros((3, 3, 9), bool)
    m[1, 1, 2:7] = True
    d = axial_diameters(m, (2.0, 2.0, 5.0))
    assert d.longest_mm == 8.0
    assert d.short_axis_mm == 0.0
    assert d.slice_index == 1
    assert max_3d_diameter_mm(m, (2.0, 2.0, 5.0)) == 8.0


def test_ld_picks_the_slice_with_the_longest_diameter() -> None:
    m = np.zeros((4, 12, 12), bool)
    m[0, 2:5, 2:5] = True  # 3 x 3: diagonal 2 * sqrt(2)
    m[2, 1:11, 5:7] = True  # 10 x 2: diagonal sqrt(9^2 + 1^2)
    d = axial_diameters(m, (1.0, 1.0, 1.0))
    assert d.slice_index == 2
    assert d.longest_mm == pytest.approx(math.hypot(9, 1))


def test_single_voxel_and_empty() -> None:
    m = np.zeros((3, 3, 3), bool)
    assert axial_diameters(m, (1, 1, 1)).slice_index == -1
    assert max_3d_diameter_mm(m, (1, 1, 1)) == 0.0
    assert extent_mm(m, (1, 1, 1)) == (0.0, 0.0, 0.0)
    m[1, 1, 1] = True
    d = axial_diameters(m, (1, 1, 1))
    assert (d.longest_mm, d.short_axis_mm) == (0.0, 0.0)
    assert max_3d_diameter_mm(m, (1, 1, 1)) == 0.0
    # voxel-edge convention: one voxel of 2 x 3 x 4 mm has extents 2, 3, 4 mm
    assert extent_mm(m, (2.0, 3.0, 4.0)) == (2.0, 3.0, 4.0)


def test_ellipsoid_max_3d_diameter() -> None:
    # semi-axes 20, 10, 8 (1 mm grid): the centres (+-20, 0, 0) are the farthest pair -> 40
    z, y, x = np.mgrid[-9:10, -12:13, -22:23].astype(float)
    m = (x / 20) ** 2 + (y / 10) ** 2 + (z / 8) ** 2 <= 1
    assert max_3d_diameter_mm(m, (1.0, 1.0, 1.0)) == 40.0
    # anisotropic spacing scales index distances: z semi-axis 8 voxels x 6 mm = 48 mm
    assert max_3d_diameter_mm(m, (1.0, 1.0, 6.0)) == 96.0


def test_max_3d_diameter_matches_brute_force_on_random_blob() -> None:
    # independent check: all pairwise voxel-centre distances
    rng = np.random.default_rng(7)
    m = rng.random((6, 7, 8)) > 0.7
    sp = (0.9, 1.3, 2.5)
    pts = np.argwhere(m)[:, ::-1] * np.array(sp)
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)).max()
    assert max_3d_diameter_mm(m, sp) == pytest.approx(d, rel=1e-12)
