"""Ground-truth measurements of the sample study, computed with plain numpy/scipy.

These functions deliberately do not use :mod:`emlesion.measure`: the sample is the
yardstick against which the library's own measurements are checked. All values are
computed on the native PET grid from the SUV a reader obtains by decoding the stored
pixel values with the written headers.

Conventions (recorded in ``truth.json``):

* coordinates are DICOM LPS in mm; centroids are means of voxel-centre positions;
* extents are axis-aligned, voxel-edge convention: ``(max index - min index + 1) x spacing``
  along x (transverse), y (antero-posterior) and z (cranio-caudal);
* SUVpeak is the IBSI global intensity peak (0F91): the maximum, over lesion voxels, of
  the mean SUV of the voxels whose centres lie within 6.2035 mm (a 1 mL sphere) of that
  voxel's centre; the sphere may include voxels outside the lesion;
* SUL is Janmahasatian lean-body-mass SUV: ``SUL = SUVbw x LBM / weight``;
* CT diameters (:func:`axial_diameters_edge`) use the *edge* convention: the points of a
  slice are the midpoints of the exposed pixel faces (the faces between a mask pixel and
  a non-mask pixel), so a row of ``n`` pixels of spacing ``s`` reads ``n x s``. LD is the
  largest distance between two such points of one slice, maximised over the slices; SA is
  the longest chord of the convex hull of that slice's points exactly perpendicular to
  the LD;
* the Deauville score (:func:`deauville_score`) is quantified from SUVmax values.

References
----------
.. [1] IBSI, "Image biomarker standardisation initiative", feature 0F91 (global
   intensity peak) and VJGA (local intensity peak).
.. [2] Wahl RL et al. J Nucl Med 2009;50 Suppl 1:122S-150S (PERCIST 1.0).
.. [3] Eisenhauer EA et al. Eur J Cancer 2009;45:228-247 (RECIST 1.1: longest diameter in
   the axial plane, short axis perpendicular to it).
.. [4] Barrington SF et al. J Clin Oncol 2014;32:3048-3058 (Deauville five-point scale
   against mediastinal blood pool and liver in the Lugano classification).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist, squareform

__all__ = [
    "DEAUVILLE_LIVER_FACTOR",
    "PEAK_RADIUS_MM",
    "axial_diameters_edge",
    "ct_lesion_metrics",
    "deauville_score",
    "edge_points_mm",
    "lesion_metrics",
    "percist_category",
    "site_uptake",
    "sphere_statistics",
    "spherical_kernel",
    "voxel_centres_lps",
]

#: Radius (mm) of a 1 mL sphere: (3 / (4 pi))^(1/3) cm.
PEAK_RADIUS_MM: float = 10.0 * (3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
#: Deauville 5 ("markedly higher than liver") starts above this multiple of the liver SUVmax.
DEAUVILLE_LIVER_FACTOR: float = 2.0
#: Tolerance (mm) under which two distances or widths count as tied.
_TIE_MM: float = 1e-9


def spherical_kernel(spacing_mm: Sequence[float], radius_mm: float = PEAK_RADIUS_MM) -> np.ndarray:
    """Boolean ``(z, y, x)`` kernel of the voxels whose centres lie within ``radius_mm``.

    ``spacing_mm`` is (x, y, z). On a 4 mm isotropic grid the 1 mL kernel holds 19 voxels
    (centre, 6 face neighbours at 4 mm, 12 edge neighbours at 5.66 mm).
    """
    sx, sy, sz = spacing_mm
    n = [math.floor(radius_mm / s) for s in (sz, sy, sx)]
    zz, yy, xx = np.meshgrid(*(np.arange(-m, m + 1) for m in n), indexing="ij")
    d2 = (zz * sz) ** 2 + (yy * sy) ** 2 + (xx * sx) ** 2
    return np.asarray(d2 <= radius_mm**2 + 1e-9)


def voxel_centres_lps(
    index_zyx: np.ndarray, origin_mm: Sequence[float], spacing_mm: Sequence[float]
) -> np.ndarray:
    """LPS (x, y, z) of voxel indices ``(n, 3)`` in (z, y, x) order on an axial grid."""
    idx = np.asarray(index_zyx, dtype=float)
    return (
        np.asarray(origin_mm, float)[None, :]
        + idx[:, ::-1] * np.asarray(spacing_mm, float)[None, :]
    )


def _peak_map(suv: np.ndarray, spacing_mm: Sequence[float]) -> np.ndarray:
    """Mean SUV of the 1 mL sphere around every voxel (zero outside the image)."""
    kernel = spherical_kernel(spacing_mm)
    return np.asarray(
        ndimage.correlate(suv, kernel.astype(float) / kernel.sum(), mode="constant", cval=0.0)
    )


def lesion_metrics(
    suv: np.ndarray,
    mask: np.ndarray,
    origin_mm: Sequence[float],
    spacing_mm: Sequence[float],
    sul_per_suvbw: float,
) -> dict[str, Any]:
    """Volume, extents, centroid and SUV statistics of one lesion mask on the PET grid.

    Parameters
    ----------
    suv : ndarray
        SUVbw ``(z, y, x)`` as a reader decodes it.
    mask : ndarray of bool
        The lesion mask on the same grid.
    origin_mm, spacing_mm
        LPS centre of voxel (0, 0, 0) and spacing (x, y, z).
    sul_per_suvbw : float
        LBM / weight of the timepoint.

    Returns
    -------
    dict
        ``volume_ml, n_voxels, extents_cm, centroid_mm, suv_max, suv_max_voxel_mm,
        suv_mean, suv_sd, suv_peak, suv_peak_center_mm, suv_peak_kernel_voxels, sul_max,
        sul_mean, sul_peak, tlg_g``.
    """
    idx = np.argwhere(mask)
    vox_ml = float(np.prod(spacing_mm)) / 1000.0
    if idx.size == 0:
        return {"n_voxels": 0, "volume_ml": 0.0}
    vals = suv[mask]
    kernel = spherical_kernel(spacing_mm)
    peak_vals = _peak_map(suv, spacing_mm)[mask]
    i_peak = int(np.argmax(peak_vals))
    i_max = int(np.argmax(vals))
    lo, hi = idx.min(axis=0), idx.max(axis=0)
    ext_zyx = (hi - lo + 1) * np.asarray(spacing_mm, float)[::-1] / 10.0
    centres = voxel_centres_lps(idx, origin_mm, spacing_mm)
    suv_max = float(vals[i_max])
    suv_mean = float(vals.mean())
    suv_peak = float(peak_vals[i_peak])
    return {
        "n_voxels": int(idx.shape[0]),
        "volume_ml": round(idx.shape[0] * vox_ml, 4),
        "extents_cm": [round(float(v), 2) for v in ext_zyx[::-1]],
        "centroid_mm": [round(float(v), 2) for v in centres.mean(axis=0)],
        "suv_max": round(suv_max, 4),
        "suv_max_voxel_mm": [round(float(v), 2) for v in centres[i_max]],
        "suv_mean": round(suv_mean, 4),
        "suv_sd": round(float(vals.std(ddof=1)) if vals.size > 1 else 0.0, 4),
        "suv_peak": round(suv_peak, 4),
        "suv_peak_center_mm": [round(float(v), 2) for v in centres[i_peak]],
        "suv_peak_kernel_voxels": int(kernel.sum()),
        "sul_max": round(suv_max * sul_per_suvbw, 4),
        "sul_mean": round(suv_mean * sul_per_suvbw, 4),
        "sul_peak": round(suv_peak * sul_per_suvbw, 4),
        "tlg_g": round(suv_mean * idx.shape[0] * vox_ml, 3),
    }


def sphere_statistics(
    suv: np.ndarray,
    center_mm: Sequence[float],
    radius_mm: float,
    origin_mm: Sequence[float],
    spacing_mm: Sequence[float],
) -> dict[str, Any]:
    """Mean, SD and maximum of the voxels whose centres lie within ``radius_mm`` of ``center_mm``.

    ``center_mm`` is LPS; ``origin_mm`` and ``spacing_mm`` (x, y, z) describe the grid of
    ``suv``. Returns ``center_mm, radius_mm, n_voxels, suv_mean, suv_sd, suv_max``.
    """
    nz, ny, nx = suv.shape
    ox, oy, oz = origin_mm
    sx, sy, sz = spacing_mm
    z = oz + np.arange(nz) * sz
    y = oy + np.arange(ny) * sy
    x = ox + np.arange(nx) * sx
    d2 = (
        ((z - center_mm[2]) ** 2)[:, None, None]
        + ((y - center_mm[1]) ** 2)[None, :, None]
        + ((x - center_mm[0]) ** 2)[None, None, :]
    )
    sel = d2 <= radius_mm**2
    vals = suv[sel]
    return {
        "center_mm": [round(float(c), 2) for c in center_mm],
        "radius_mm": radius_mm,
        "n_voxels": int(sel.sum()),
        "suv_mean": round(float(vals.mean()), 4),
        "suv_sd": round(float(vals.std(ddof=1)), 4),
        "suv_max": round(float(vals.max()), 4),
    }


def percist_category(
    baseline_sulpeak: float,
    followup_sulpeak: float | None,
    followup_liver_sul_mean: float,
    followup_blood_sul_mean: float,
    new_lesions: bool = False,
) -> dict[str, Any]:
    """PERCIST 1.0 category from the hottest-lesion SULpeak of baseline and follow-up.

    CMR when no lesion remains above the liver mean and the blood-pool background
    (``followup_sulpeak`` is None when nothing is left); PMR for a decrease of at
    least 30 % and at least 0.8 SUL; PMD for an increase of more than 30 % and more
    than 0.8 SUL or new lesions; SMD otherwise.

    References
    ----------
    .. [1] Wahl RL et al. J Nucl Med 2009;50 Suppl 1:122S-150S, Table 3.
    """
    residual = 0.0 if followup_sulpeak is None else followup_sulpeak
    change = residual - baseline_sulpeak
    pct = 100.0 * change / baseline_sulpeak
    if (
        not new_lesions
        and residual <= followup_liver_sul_mean
        and residual <= followup_blood_sul_mean
    ):
        cat, why = (
            "CMR",
            (
                "hottest residual SULpeak at or below both the liver SULmean and the "
                "blood-pool SULmean"
            ),
        )
    elif not new_lesions and pct <= -30.0 and change <= -0.8:
        cat, why = "PMR", "hottest-lesion SULpeak fell by at least 30 % and at least 0.8 SUL"
    elif new_lesions or (pct > 30.0 and change > 0.8):
        cat, why = "PMD", "SULpeak rose by more than 30 % and more than 0.8 SUL, or new lesions"
    else:
        cat, why = "SMD", "neither response nor progression"
    return {
        "category": cat,
        "reason": why,
        "baseline_sul_peak": round(baseline_sulpeak, 4),
        "followup_sul_peak": None if followup_sulpeak is None else round(followup_sulpeak, 4),
        "change_sul": round(change, 4),
        "change_pct": round(pct, 2),
    }


# ---------------------------------------------------------------------------- CT diameters
def edge_points_mm(mask2d: np.ndarray, spacing_xy_mm: Sequence[float]) -> np.ndarray:
    """Midpoints of the exposed pixel faces of one slice, ``(n, 2)`` as (x, y) in mm.

    A face is exposed when it separates a mask pixel from a non-mask pixel (or from the
    outside of the array). Pixel ``(row, col)`` has its centre at
    ``(col x sx, row x sy)``; its four face midpoints are half a pixel away along x or y.
    A row of ``n`` pixels therefore spans ``n x sx`` between its two end faces (edge
    convention, the voxel-edge extent).

    Parameters
    ----------
    mask2d : ndarray of bool
        ``(y, x)`` slice.
    spacing_xy_mm : sequence of float
        ``(sx, sy)`` pixel spacing in mm.

    Returns
    -------
    ndarray
        Face midpoints (x, y) in mm; empty ``(0, 2)`` for an empty slice.

    References
    ----------
    .. [1] IBSI reference manual, morphological features: the mesh vertices of a binary
       mask lie at the centres of the faces between ROI and non-ROI voxels.
    """
    m = np.asarray(mask2d, dtype=bool)
    sx, sy = float(spacing_xy_mm[0]), float(spacing_xy_mm[1])
    padded = np.pad(m, 1)
    ny, nx = m.shape
    pts = []
    for drow, dcol in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        neighbour = padded[1 + drow : 1 + drow + ny, 1 + dcol : 1 + dcol + nx]
        rows, cols = np.nonzero(m & ~neighbour)
        pts.append(np.column_stack([(cols + 0.5 * dcol) * sx, (rows + 0.5 * drow) * sy]))
    return np.concatenate(pts, axis=0).astype(np.float64)


def _hull_perpendicular_chord(hull: np.ndarray, u: np.ndarray) -> float:
    """Longest chord of a convex polygon along ``v`` (the normal of the unit vector ``u``).

    ``hull`` holds the polygon vertices in order. The chord on the line ``p . u = t``
    runs between the lowest and the highest ``v`` where the line meets the boundary; its
    length is a concave, piecewise-linear function of ``t`` with kinks at the vertices,
    so its maximum is reached at a vertex: every vertex ``t`` is tried against every edge.
    """
    v = np.array([-u[1], u[0]])
    hu, hv = hull @ u, hull @ v
    ua, ub = hu, np.roll(hu, -1)
    va, vb = hv, np.roll(hv, -1)
    t = hu[:, None]  # (vertex, edge)
    span = ub - ua
    sloped = np.abs(span) > _TIE_MM
    frac = (t - ua[None, :]) / np.where(sloped, span, 1.0)[None, :]
    crosses = sloped[None, :] & (frac >= -_TIE_MM) & (frac <= 1.0 + _TIE_MM)
    at_vertex = np.abs(t - ua[None, :]) <= _TIE_MM  # also covers edges parallel to v
    cross_v = np.where(at_vertex, va[None, :], va[None, :] + frac * (vb - va)[None, :])
    valid = crosses | at_vertex
    hi = np.where(valid, cross_v, -np.inf).max(axis=1)
    lo = np.where(valid, cross_v, np.inf).min(axis=1)
    return float(np.max(hi - lo))


def _slice_ld_sa(points: np.ndarray) -> tuple[float, float]:
    """LD (farthest pair) and SA (perpendicular hull chord, largest over tied pairs)."""
    if points.shape[0] < 2:
        return 0.0, 0.0
    dist = squareform(pdist(points))
    ld = float(dist.max())
    hull = points[ConvexHull(points).vertices]  # polygon, counter-clockwise in 2-D
    sa = 0.0
    for i, j in zip(*np.nonzero(np.triu(dist >= ld - _TIE_MM, k=1))):
        u = (points[j] - points[i]) / dist[i, j]
        sa = max(sa, _hull_perpendicular_chord(hull, u))
    return ld, sa


def axial_diameters_edge(mask: np.ndarray, spacing_mm: Sequence[float]) -> dict[str, Any]:
    """Longest axial diameter and perpendicular short axis of a mask, edge convention.

    For every axial slice (first array axis), the points are the exposed-face midpoints
    (:func:`edge_points_mm`). The slice's LD is the largest distance between two of its
    points (all pairs compared). Its SA is the longest chord perpendicular to the LD of
    the convex hull of the slice's points: with ``u`` the unit vector of the LD and ``v``
    the in-plane unit vector perpendicular to it, the largest length, over the lines
    ``p . u = t``, of the part of such a line inside the hull (exactly perpendicular, no
    angular tolerance); when several pairs share the largest distance, the largest of
    their chords. The reported LD is the largest slice LD; slices whose LD ties (within
    1e-9 mm) go to the larger SA, then to the lower slice index.

    Parameters
    ----------
    mask : ndarray of bool
        ``(z, y, x)`` mask.
    spacing_mm : sequence of float
        ``(x, y, z)`` spacing in mm.

    Returns
    -------
    dict
        ``ld_mm``, ``sa_mm`` and ``slice_index`` (-1 and zeros for an empty mask).

    Notes
    -----
    The SA is a perpendicular *diameter* (RECIST, Lugano), not the caliper width
    ``max(p . v) - min(p . v)``: on a digitised slice the points that stick out most on
    either side of the LD usually lie at different positions along it, and the caliper
    width then exceeds every perpendicular chord (a 5 x 3 rectangle of 2 mm pixels has
    LD 10.77 mm, SA 6.46 mm and caliper width 8.54 mm). For a concave slice the hull
    chord can exceed the longest chord inside the mask. For a single pixel of spacing
    ``s``, LD = SA = ``s``.

    References
    ----------
    .. [1] Eisenhauer EA et al. Eur J Cancer 2009;45:228-247 (RECIST 1.1).
    .. [2] Cheson BD et al. J Clin Oncol 2014;32:3059-3068 (Lugano: LDi, SDi).

    Examples
    --------
    >>> m = np.zeros((1, 3, 3), bool); m[0, 1, 1] = True
    >>> axial_diameters_edge(m, (2.0, 2.0, 4.0))
    {'ld_mm': 2.0, 'sa_mm': 2.0, 'slice_index': 0}
    """
    msk = np.asarray(mask, dtype=bool)
    best: tuple[float, float, int] | None = None
    for z in np.flatnonzero(msk.any(axis=(1, 2))):
        ld, sa = _slice_ld_sa(edge_points_mm(msk[z], spacing_mm[:2]))
        if (
            best is None
            or ld > best[0] + _TIE_MM
            or (ld >= best[0] - _TIE_MM and sa > best[1] + _TIE_MM)
        ):
            best = (ld, sa, int(z))
    if best is None:
        return {"ld_mm": 0.0, "sa_mm": 0.0, "slice_index": -1}
    return {"ld_mm": best[0], "sa_mm": best[1], "slice_index": best[2]}


def ct_lesion_metrics(
    hu: np.ndarray,
    mask: np.ndarray,
    origin_mm: Sequence[float],
    spacing_mm: Sequence[float],
) -> dict[str, Any]:
    """CT truth of one lesion: LD, SA, volume, mean HU on the CT grid.

    Parameters
    ----------
    hu : ndarray
        CT in HU as stored (``stored - 1024``), ``(z, y, x)``.
    mask : ndarray of bool
        The CT truth mask on the same grid.
    origin_mm, spacing_mm
        LPS centre of voxel (0, 0, 0) and spacing (x, y, z) of the CT grid.

    Returns
    -------
    dict
        ``ld_mm, sa_mm`` (:func:`axial_diameters_edge`), ``volume_ml, hu_mean, n_voxels,
        ld_slice_z_mm`` (LPS z of the LD slice centre). An empty mask gives zeros and
        nulls.
    """
    n = int(np.count_nonzero(mask))
    if n == 0:
        return {
            "ld_mm": 0.0,
            "sa_mm": 0.0,
            "volume_ml": 0.0,
            "hu_mean": None,
            "n_voxels": 0,
            "ld_slice_z_mm": None,
        }
    d = axial_diameters_edge(mask, spacing_mm)
    return {
        "ld_mm": round(float(d["ld_mm"]), 3),
        "sa_mm": round(float(d["sa_mm"]), 3),
        "volume_ml": round(n * float(np.prod(spacing_mm)) / 1000.0, 4),
        "hu_mean": round(float(np.asarray(hu, float)[mask].mean()), 2),
        "n_voxels": n,
        "ld_slice_z_mm": round(float(origin_mm[2]) + d["slice_index"] * float(spacing_mm[2]), 2),
    }


# ---------------------------------------------------------------------------- site uptake
def site_uptake(
    suv: np.ndarray,
    region: np.ndarray,
    origin_mm: Sequence[float],
    spacing_mm: Sequence[float],
    sul_per_suvbw: float,
) -> dict[str, Any]:
    """SUVmax, SUVpeak and SULpeak of a region of the PET grid (lesion or former site).

    SUVpeak is the IBSI global intensity peak as in :func:`lesion_metrics` (the sphere
    may reach outside the region).

    Returns
    -------
    dict
        ``suv_max, suv_peak, sul_peak, n_voxels, centroid_mm`` (values None for an empty
        region).
    """
    idx = np.argwhere(region)
    if idx.size == 0:
        return {
            "suv_max": None,
            "suv_peak": None,
            "sul_peak": None,
            "n_voxels": 0,
            "centroid_mm": None,
        }
    suv_peak = float(_peak_map(suv, spacing_mm)[region].max())
    centres = voxel_centres_lps(idx, origin_mm, spacing_mm)
    return {
        "suv_max": round(float(suv[region].max()), 4),
        "suv_peak": round(suv_peak, 4),
        "sul_peak": round(suv_peak * sul_per_suvbw, 4),
        "n_voxels": int(idx.shape[0]),
        "centroid_mm": [round(float(v), 2) for v in centres.mean(axis=0)],
    }


def deauville_score(suv_max: float, blood_pool_suv_max: float, liver_suv_max: float) -> int:
    """Deauville five-point score quantified from SUVmax (2 to 5; 1 needs a reader).

    With ``x`` the site SUVmax, ``M`` the blood-pool (mediastinum) SUVmax and ``L`` the
    liver SUVmax: 2 if ``x <= min(M, L)``; 3 if ``M < x <= L``; 4 if
    ``L < x <= 2 L``; 5 if ``x > 2 L`` (:data:`DEAUVILLE_LIVER_FACTOR`). When ``M >= L``
    score 3 cannot occur and anything above ``L`` is 4 or 5. Score 1 (no uptake above
    background) is a visual call; uptake at or below the mediastinum scores 2 here.

    References
    ----------
    .. [1] Barrington SF et al. J Clin Oncol 2014;32:3048-3058 (Deauville scale: 1 no
       uptake, 2 <= mediastinum, 3 > mediastinum but <= liver, 4 moderately > liver,
       5 markedly > liver).
    .. [2] Meignan M, Gallamini A, Haioun C. Leuk Lymphoma 2009;50:1257-1260.

    Examples
    --------
    >>> deauville_score(1.5, 1.8, 2.6), deauville_score(2.0, 1.8, 2.6)
    (2, 3)
    >>> deauville_score(5.2, 1.8, 2.6), deauville_score(5.3, 1.8, 2.6)
    (4, 5)
    """
    x, m, liver = float(suv_max), float(blood_pool_suv_max), float(liver_suv_max)
    if x <= min(m, liver):
        return 2
    if x <= liver:
        return 3
    if x <= DEAUVILLE_LIVER_FACTOR * liver:
        return 4
    return 5
