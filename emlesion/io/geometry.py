"""Voxel grids in DICOM patient coordinates (LPS) and resampling between them.

Conventions (identical to SimpleITK/ITK, so that the round trip is exact):

* arrays are indexed ``(z, y, x)`` = (slice, row, column);
* ``origin_mm`` is the LPS position of the centre of voxel ``(0, 0, 0)``;
* ``spacing_mm`` is ``(x, y, z)`` = (column step, row step, slice step);
* ``direction`` is the 3 x 3 matrix, row-major, whose *columns* are the unit
  vectors of the x, y and z index axes in LPS.

A voxel ``(k, j, i)`` sits at ``origin + D @ (i*sx, j*sy, k*sz)``.

References
----------
.. [1] DICOM PS3.3 C.7.6.2.1.1, Image Position and Image Orientation (Patient).
.. [2] SimpleITK, ``ResampleImageFilter`` documentation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import SimpleITK as sitk

from emlesion.errors import GeometryError, format_message

__all__ = ["Grid", "ball_structure", "resample_array"]

Vec3 = tuple[float, float, float]
Mat3 = tuple[float, float, float, float, float, float, float, float, float]


@dataclass(frozen=True)
class Grid:
    """A regular 3-D voxel grid in LPS.

    Parameters
    ----------
    shape : tuple of int
        Array shape ``(nz, ny, nx)``.
    origin_mm : tuple of float
        LPS position (mm) of the centre of voxel ``(0, 0, 0)``.
    spacing_mm : tuple of float
        Voxel spacing (mm) along x (columns), y (rows) and z (slices).
    direction : tuple of 9 float
        Row-major 3 x 3 direction cosine matrix (ITK convention); must be orthonormal.
    """

    shape: tuple[int, int, int]
    origin_mm: Vec3
    spacing_mm: Vec3
    direction: Mat3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(v) for v in self.shape))
        object.__setattr__(self, "origin_mm", tuple(float(v) for v in self.origin_mm))
        object.__setattr__(self, "spacing_mm", tuple(float(v) for v in self.spacing_mm))
        object.__setattr__(self, "direction", tuple(float(v) for v in self.direction))
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise GeometryError(
                format_message(f"grid shape must be 3 positive ints, got {self.shape}")
            )
        if len(self.origin_mm) != 3 or not np.all(np.isfinite(self.origin_mm)):
            raise GeometryError(
                format_message(f"origin_mm must be 3 finite numbers, got {self.origin_mm}")
            )
        sp = np.asarray(self.spacing_mm)
        if sp.shape != (3,) or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
            raise GeometryError(
                format_message(f"spacing_mm must be 3 positive numbers, got {self.spacing_mm}")
            )
        d = np.asarray(self.direction)
        if d.shape != (9,):
            raise GeometryError(format_message(f"direction must have 9 entries, got {len(d)}"))
        if not np.allclose(d.reshape(3, 3).T @ d.reshape(3, 3), np.eye(3), atol=1e-4):
            raise GeometryError(
                format_message(
                    "direction matrix is not orthonormal (sheared or gantry-tilted grid)",
                    fix="resample the series onto an orthogonal grid first",
                )
            )

    # ------------------------------------------------------------------ derived
    @property
    def direction_matrix(self) -> np.ndarray:
        """The 3 x 3 direction matrix (columns are the x, y, z axis vectors in LPS)."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (mm^3 / 1000)."""
        sx, sy, sz = self.spacing_mm
        return sx * sy * sz / 1000.0

    @property
    def affine(self) -> np.ndarray:
        """4 x 4 matrix mapping ``(i, j, k, 1)`` (x, y, z index order) to LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.direction_matrix * np.asarray(self.spacing_mm)[None, :]
        a[:3, 3] = self.origin_mm
        return a

    def index_to_lps(self, zyx: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """LPS coordinates (mm) of voxel indices given in ``(z, y, x)`` order.

        Accepts one index triple or an ``(n, 3)`` array; returns ``(3,)`` or ``(n, 3)``
        in ``(x, y, z)`` LPS order.
        """
        idx = np.asarray(zyx, dtype=float)
        single = idx.ndim == 1
        ijk = np.atleast_2d(idx)[:, ::-1]
        pts = ijk @ self.affine[:3, :3].T + self.affine[:3, 3]
        return pts[0] if single else pts

    def lps_to_index(self, xyz: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Continuous voxel indices, in ``(z, y, x)`` order, of LPS points (mm)."""
        pts = np.asarray(xyz, dtype=float)
        single = pts.ndim == 1
        inv = np.linalg.inv(self.affine)
        ijk = np.atleast_2d(pts) @ inv[:3, :3].T + inv[:3, 3]
        out = ijk[:, ::-1]
        return out[0] if single else out

    def same_as(self, other: Grid, *, atol_mm: float = 1e-3, atol_direction: float = 1e-5) -> bool:
        """True when both grids have the same shape and geometry within tolerance."""
        return (
            self.shape == other.shape
            and np.allclose(self.origin_mm, other.origin_mm, atol=atol_mm)
            and np.allclose(self.spacing_mm, other.spacing_mm, atol=atol_mm)
            and np.allclose(self.direction, other.direction, atol=atol_direction)
        )

    # ------------------------------------------------------------------ SimpleITK
    def apply_to(self, image: sitk.Image) -> sitk.Image:
        """Set this grid's origin, spacing and direction on a SimpleITK image (in place)."""
        image.SetOrigin(self.origin_mm)
        image.SetSpacing(self.spacing_mm)
        image.SetDirection(self.direction)
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image) -> Grid:
        """The grid of a SimpleITK image (exact copy of its geometry)."""
        size = image.GetSize()
        return cls(
            shape=(size[2], size[1], size[0]),
            origin_mm=tuple(image.GetOrigin()),
            spacing_mm=tuple(image.GetSpacing()),
            direction=tuple(image.GetDirection()),
        )

    def reference_image(self) -> sitk.Image:
        """An empty SimpleITK image with this grid, for use as a resampling reference."""
        nz, ny, nx = self.shape
        img = sitk.Image(nx, ny, nz, sitk.sitkUInt8)
        return self.apply_to(img)


def ball_structure(radius_mm: float, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Boolean ball of ``radius_mm`` on a voxel grid, in ``(z, y, x)`` order.

    A voxel belongs when its centre lies within ``radius_mm`` of the central voxel's centre
    (with a 1e-6 mm² tolerance so that centres exactly on the sphere are included).

    Parameters
    ----------
    radius_mm : float
        Ball radius in mm; 0 gives the single central voxel.
    spacing_mm : tuple of float
        Voxel spacing ``(x, y, z)`` in mm, as :attr:`Grid.spacing_mm`.

    Returns
    -------
    ndarray of bool
        Shape ``(2 rz + 1, 2 ry + 1, 2 rx + 1)`` with ``r = floor(radius / spacing)``.

    Examples
    --------
    >>> int(ball_structure(4.0, (4.0, 4.0, 4.0)).sum())  # centre + 6 face neighbours
    7
    """
    sx, sy, sz = spacing_mm
    rz, ry, rx = (max(math.floor(radius_mm / s), 0) for s in (sz, sy, sx))
    z, y, x = np.ogrid[-rz : rz + 1, -ry : ry + 1, -rx : rx + 1]
    ball: np.ndarray = ((z * sz) ** 2 + (y * sy) ** 2 + (x * sx) ** 2) <= radius_mm**2 + 1e-6
    return ball


def resample_array(
    array: np.ndarray,
    source: Grid,
    target: Grid,
    *,
    interpolation: Literal["linear", "nearest", "bspline"] = "linear",
    default_value: float = 0.0,
) -> np.ndarray:
    """Resample ``array`` from ``source`` grid onto ``target`` grid in physical space.

    Uses an identity transform (both grids in the same frame of reference).

    Parameters
    ----------
    array : ndarray
        Data on ``source``, shape ``source.shape``.
    source, target : Grid
        Grids of the input and of the output.
    interpolation : {"linear", "nearest", "bspline"}
        ``"nearest"`` for label masks (labels are never blended), ``"linear"`` for images.
    default_value : float
        Value for target voxels outside the source (e.g. -1024 for CT, 0 for PET).

    Returns
    -------
    ndarray
        Array of shape ``target.shape`` and the dtype of ``array``.
    """
    if array.shape != source.shape:
        raise GeometryError(
            format_message(f"array shape {array.shape} does not match its grid {source.shape}")
        )
    if source.same_as(target, atol_mm=1e-6, atol_direction=1e-9):
        return array.copy()
    img = source.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(array)))
    interp = {
        "linear": sitk.sitkLinear,
        "nearest": sitk.sitkNearestNeighbor,
        "bspline": sitk.sitkBSpline,
    }[interpolation]
    out = sitk.Resample(
        img,
        target.reference_image(),
        sitk.Transform(),
        interp,
        float(default_value),
        img.GetPixelID(),
    )
    return sitk.GetArrayFromImage(out).astype(array.dtype, copy=False)
