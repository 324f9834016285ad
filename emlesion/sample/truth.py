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
* SUL is Janmahasatian lean-body-mass SUV: ``SUL = SUVbw x LBM / weight``.

References
----------
.. [1] IBSI, "Image biomarker standardisation initiative", feature 0F91 (global
   intensity peak) and VJGA (local intensity peak).
.. [2] Wahl RL et al. J Nucl Med 2009;50 Suppl 1:122S-150S (PERCIST 1.0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = [
    "PEAK_RADIUS_MM",
    "lesion_metrics",
    "percist_category",
    "sphere_statistics",
    "spherical_kernel",
    "voxel_centres_lps",
]

#: Radius (mm) of a 1 mL sphere: (3 / (4 pi))^(1/3) cm.
PEAK_RADIUS_MM: float = 10.0 * (3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


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
    peak_map = ndimage.correlate(
        suv, kernel.astype(float) / kernel.sum(), mode="constant", cval=0.0
    )
    peak_vals = peak_map[mask]
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
    """Mean and SD of the voxels whose centres lie within ``radius_mm`` of ``center_mm`` (LPS)."""
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
