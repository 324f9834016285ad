"""Size measures of a lesion mask: extents, longest axial diameter, short axis, 3-D diameter.

Conventions (stated once, used everywhere in :mod:`emlesion.measure`):

* **Points** are voxel *centres*, in mm, at ``index * spacing``. Distances in index space
  scaled by the spacing are exact for the orthonormal direction matrices that
  :class:`emlesion.io.geometry.Grid` accepts. A single voxel therefore has diameter 0 and a
  row of ``n`` voxels has length ``(n - 1) * spacing`` (centre-to-centre); the axis-aligned
  extents instead use the voxel-edge convention ``n * spacing``.
* **Axial** means one slice of the array's first (z) axis, i.e. the acquisition plane; for the
  usual axial PET/CT series this is the transverse plane of RECIST and Lugano.
* **Longest axial diameter (LD)**: the largest distance between two voxel centres of the mask
  in the same slice, maximised over slices (computed on the slice's 2-D convex hull vertices,
  which contain the farthest pair). Ties between slices go to the larger short axis, then the
  lower slice index.
* **Short axis (SA)**: on the LD slice, the longest extent perpendicular to the LD: the
  largest ``|dv|`` over pairs of voxel centres whose separation along the LD direction ``u``
  is at most ``perpendicular_tolerance_mm`` (default half the in-plane pixel diagonal), with
  ``v`` the in-plane unit vector perpendicular to ``u``. For a chord of length ``L`` this
  accepts directions within ``atan(tolerance / L)`` of the perpendicular.
* **Maximum 3-D diameter**: the largest distance between voxel centres of the mask, computed
  on the vertices of the convex hull of the boundary voxel centres
  (:class:`scipy.spatial.ConvexHull`, then pairwise distances).

References
----------
.. [1] Eisenhauer E.A. et al., "New response evaluation criteria in solid tumours: revised
   RECIST guideline (version 1.1)", Eur J Cancer 2009;45:228-247 (longest diameter in the
   axial plane; short axis of nodes).
.. [2] Cheson B.D. et al., "Recommendations for initial evaluation, staging, and response
   assessment of Hodgkin and non-Hodgkin lymphoma: the Lugano classification", J Clin Oncol
   2014;32:3059-3068 (LDi, SDi perpendicular to LDi).
.. [3] IBSI reference manual, "Maximum 3D diameter" (L0JK).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist, squareform

__all__ = [
    "AxialDiameters",
    "axial_diameters",
    "extent_mm",
    "max_3d_diameter_mm",
]

Spacing = tuple[float, float, float]


@dataclass(frozen=True)
class AxialDiameters:
    """Longest axial diameter and its perpendicular short axis.

    Parameters
    ----------
    longest_mm : float
        Longest in-slice distance between voxel centres (mm).
    short_axis_mm : float
        Longest extent perpendicular to it on the same slice (mm).
    slice_index : int
        z index of the slice where the LD was found.
    endpoints_index : tuple
        The two LD end points as ``(z, y, x)`` voxel indices.
    perpendicular_tolerance_mm : float
        The tolerance used for "perpendicular".
    """

    longest_mm: float
    short_axis_mm: float
    slice_index: int
    endpoints_index: tuple[tuple[int, int, int], tuple[int, int, int]]
    perpendicular_tolerance_mm: float

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable dict."""
        return {
            "longest_mm": self.longest_mm,
            "short_axis_mm": self.short_axis_mm,
            "slice_index": self.slice_index,
            "endpoints_index": [list(p) for p in self.endpoints_index],
            "perpendicular_tolerance_mm": self.perpendicular_tolerance_mm,
        }


def extent_mm(mask: np.ndarray, spacing_mm: Spacing) -> tuple[float, float, float]:
    """Axis-aligned extents ``(x, y, z)`` in mm, voxel-edge convention.

    ``(max index - min index + 1) * spacing`` along each grid axis (LPS axes for an identity
    direction matrix). An empty mask gives zeros.

    Examples
    --------
    >>> m = np.zeros((4, 5, 6), bool); m[1:3, 1:4, 0:5] = True
    >>> extent_mm(m, (2.0, 3.0, 4.0))
    (10.0, 9.0, 8.0)
    """
    idx = np.nonzero(np.asarray(mask, dtype=bool))
    if idx[0].size == 0:
        return (0.0, 0.0, 0.0)
    n = [int(a.max() - a.min() + 1) for a in idx]  # z, y, x
    return (n[2] * float(spacing_mm[0]), n[1] * float(spacing_mm[1]), n[0] * float(spacing_mm[2]))


def _hull_points(points: np.ndarray) -> np.ndarray:
    """The convex hull vertices of ``points`` (all points when the set is tiny or degenerate)."""
    dim = points.shape[1]
    if points.shape[0] <= dim + 1:
        return points
    try:
        hull = ConvexHull(points)
    except QhullError:
        try:  # coplanar / collinear input: joggle; vertices are still indices of input points
            hull = ConvexHull(points, qhull_options="QJ")
        except QhullError:
            return points
    return points[hull.vertices]


def _farthest_pair(points: np.ndarray) -> tuple[float, int, int]:
    """Largest pairwise distance and the indices of the pair (0 for a single point)."""
    if points.shape[0] < 2:
        return 0.0, 0, 0
    d = squareform(pdist(points))
    flat = int(np.argmax(d))
    i, j = divmod(flat, d.shape[1])
    return float(d[i, j]), i, j


def _max_strip_width(u: np.ndarray, v: np.ndarray, tol: float) -> float:
    """max over pairs with |u_i - u_j| <= tol of |v_i - v_j| (exact, O(n log n)).

    Any such pair lies in a window ``[u_k, u_k + tol]`` starting at its lower point, and any
    two points of such a window qualify, so the answer is the largest (max v - min v) over the
    windows; range max/min use a sparse table.
    """
    n = u.size
    if n < 2:
        return 0.0
    order = np.argsort(u, kind="stable")
    us, vs = u[order], v[order]
    end = np.searchsorted(us, us + tol, side="right")  # window [k, end_k)
    length = end - np.arange(n)
    level = np.floor(np.log2(length)).astype(np.int64)
    tmax, tmin = [vs], [vs]
    k = 1
    while (1 << k) <= n:
        prev_max, prev_min, half = tmax[-1], tmin[-1], 1 << (k - 1)
        tmax.append(np.maximum(prev_max[:-half], prev_max[half:]))
        tmin.append(np.minimum(prev_min[:-half], prev_min[half:]))
        k += 1
    best = 0.0
    for lv in np.unique(level):
        sel = np.flatnonzero(level == lv)
        a, b = sel, end[sel] - (1 << int(lv))
        hi = np.maximum(tmax[lv][a], tmax[lv][b])
        lo = np.minimum(tmin[lv][a], tmin[lv][b])
        best = max(best, float(np.max(hi - lo)))
    return best


def _slice_points(mask2d: np.ndarray, sx: float, sy: float) -> tuple[np.ndarray, np.ndarray]:
    jj, ii = np.nonzero(mask2d)
    pts = np.column_stack([ii * sx, jj * sy]).astype(np.float64)
    return pts, np.column_stack([jj, ii])


def axial_diameters(
    mask: np.ndarray,
    spacing_mm: Spacing,
    *,
    perpendicular_tolerance_mm: float | None = None,
) -> AxialDiameters:
    """Longest axial diameter (LD) and perpendicular short axis (SA) of a mask.

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool
        The lesion.
    spacing_mm : tuple of float
        Voxel spacing ``(x, y, z)`` in mm.
    perpendicular_tolerance_mm : float, optional
        Maximum separation along the LD of two voxel centres that count as lying on one
        perpendicular line; default half the in-plane pixel diagonal,
        ``0.5 * hypot(sx, sy)``.

    Returns
    -------
    AxialDiameters

    Notes
    -----
    See the module docstring for the conventions (voxel centres; ties). An empty mask gives
    zeros and slice index -1.

    References
    ----------
    .. [1] RECIST 1.1 (longest diameter in the axial plane), Lugano 2014 (LDi and SDi).

    Examples
    --------
    >>> m = np.zeros((1, 5, 9), bool); m[0, 1:4, 2:7] = True   # 3 rows x 5 columns
    >>> d = axial_diameters(m, (1.0, 1.0, 1.0))
    >>> round(d.longest_mm, 4), round(d.short_axis_mm, 4)  # (4, 2) and its normal (-1, 2)
    (4.4721, 2.2361)
    """
    msk = np.asarray(mask, dtype=bool)
    sx, sy = float(spacing_mm[0]), float(spacing_mm[1])
    tol = 0.5 * math.hypot(sx, sy) if perpendicular_tolerance_mm is None else float(
        perpendicular_tolerance_mm
    )
    zs = np.flatnonzero(msk.any(axis=(1, 2)))
    if zs.size == 0:
        return AxialDiameters(0.0, 0.0, -1, ((0, 0, 0), (0, 0, 0)), tol)
    candidates: list[tuple[float, int, np.ndarray, np.ndarray]] = []
    for z in (int(v) for v in zs):
        pts, idx = _slice_points(msk[z], sx, sy)
        hull_sel = _hull_indices(pts)
        d, i, j = _farthest_pair(pts[hull_sel])
        candidates.append((d, int(z), idx[hull_sel[i]], idx[hull_sel[j]]))
    best_d = max(c[0] for c in candidates)
    ties = [c for c in candidates if c[0] >= best_d - 1e-9]
    best: tuple[float, float, int, np.ndarray, np.ndarray] | None = None
    for d, zt, p, q in ties:
        sa = _short_axis(msk[zt], sx, sy, p, q, tol)
        if best is None or sa > best[1] + 1e-9:
            best = (d, sa, zt, p, q)
    assert best is not None
    d, sa, zb, p, q = best
    return AxialDiameters(
        longest_mm=d,
        short_axis_mm=sa,
        slice_index=zb,
        endpoints_index=((zb, int(p[0]), int(p[1])), (zb, int(q[0]), int(q[1]))),
        perpendicular_tolerance_mm=tol,
    )


def _hull_indices(points: np.ndarray) -> np.ndarray:
    """Indices of the 2-D or 3-D convex hull vertices (all indices for tiny/degenerate sets)."""
    n, dim = points.shape
    if n <= dim + 1:
        return np.arange(n)
    try:
        return np.asarray(ConvexHull(points).vertices)
    except QhullError:
        try:
            return np.asarray(ConvexHull(points, qhull_options="QJ").vertices)
        except QhullError:
            return np.arange(n)


def _short_axis(
    mask2d: np.ndarray, sx: float, sy: float, p: np.ndarray, q: np.ndarray, tol: float
) -> float:
    """Longest extent perpendicular to the segment p-q (row, col indices) on one slice."""
    dvec = np.array([(q[1] - p[1]) * sx, (q[0] - p[0]) * sy], dtype=np.float64)
    norm = float(np.hypot(dvec[0], dvec[1]))
    if norm == 0.0:
        return 0.0
    u = dvec / norm
    v = np.array([-u[1], u[0]])
    pts, _ = _slice_points(mask2d, sx, sy)
    return _max_strip_width(pts @ u, pts @ v, tol)


def max_3d_diameter_mm(mask: np.ndarray, spacing_mm: Spacing) -> float:
    """Largest distance (mm) between two voxel centres of a mask.

    Only boundary voxels (mask minus its 6-connected erosion) can be hull vertices; their
    convex hull vertices are compared pairwise.

    References
    ----------
    .. [1] IBSI reference manual, "Maximum 3D diameter" (L0JK) (there on mesh vertices).

    Examples
    --------
    >>> m = np.zeros((3, 3, 3), bool); m[0, 0, 0] = m[2, 2, 2] = True
    >>> round(max_3d_diameter_mm(m, (1.0, 1.0, 1.0)), 4)  # 2 * sqrt(3)
    3.4641
    """
    msk = np.asarray(mask, dtype=bool)
    boundary = msk & ~ndimage.binary_erosion(msk, border_value=0)
    zyx = np.argwhere(boundary)
    if zyx.shape[0] == 0:
        return 0.0
    pts = zyx[:, ::-1].astype(np.float64) * np.asarray(spacing_mm, dtype=np.float64)
    return _farthest_pair(_hull_points(pts))[0]
