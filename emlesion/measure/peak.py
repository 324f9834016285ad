"""SUVpeak: spherical-kernel means (IBSI global and local peaks, partial-voxel "exact" sphere).

Three incompatible definitions of the "peak" are in use, and the number of voxels inside a
"1 mL sphere" depends on the voxel spacing, so every peak computed here names its variant and
records its kernel voxel count.

* :attr:`PeakVariant.GLOBAL` -- IBSI "global intensity peak" (0F91): the mean over all voxels
  whose *centres* lie within ``radius_mm`` of a voxel centre, evaluated for every voxel centre of
  the lesion; the maximum is reported. This is the voxel-centre analogue of the PERCIST/EARL
  SUVpeak ("a 1 cm3 sphere placed within the tumour so as to maximise the enclosed mean").
* :attr:`PeakVariant.LOCAL` -- IBSI "local intensity peak" (VJGA): the same spherical mean
  centred on the hottest lesion voxel; when several voxels share the maximum, the highest mean
  is reported (IBSI). OHIF's TMTV tool uses this placement.
* :attr:`PeakVariant.EXACT` -- the sphere with partial-voxel weights: each voxel contributes
  with the fraction of its volume that lies inside the sphere (estimated by supersampling the
  voxel on an ``n x n x n`` grid of sub-voxel centres), so that the kernel volume is the sphere
  volume (1 mL for the default radius) whatever the spacing. The sphere centre is searched over
  the lesion voxel centres, as for the global peak. Slicer PET-IndiC also uses partial weights.

The sphere may include voxels outside the lesion (all three variants, as in IBSI). Near the
image border only voxels that exist in the image are averaged (the mean of the in-image part
of the sphere, weights renormalised); the kernel voxel count reported is the full kernel.

Distances are computed in index space scaled by ``spacing_mm``, which is exact for any
orthonormal direction matrix (the only kind :class:`emlesion.io.geometry.Grid` accepts).

References
----------
.. [1] Zwanenburg A. et al., "The Image Biomarker Standardization Initiative", Radiology 2020;
   reference manual, sections "Local intensity peak" (VJGA) and "Global intensity peak" (0F91).
.. [2] Wahl R.L. et al., "From RECIST to PERCIST", J Nucl Med 2009;50 Suppl 1:122S-150S.
.. [3] PMOD PERCIST documentation, "maximum average of a 1 mL sphere".
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from emlesion.errors import GeometryError, InvalidParameterError, MaskError, format_message

__all__ = [
    "PEAK_RADIUS_1ML_MM",
    "PEAK_RADIUS_1P2CM_MM",
    "PeakResult",
    "PeakVariant",
    "box_means",
    "check_spacing_radius",
    "intensity_peak",
    "peak_from_means",
    "sphere_kernel",
    "sphere_weights",
]

#: Radius (mm) of a 1 mL (1 cm3) sphere: (3 * 1000 mm3 / (4 pi))^(1/3) = 6.2035 mm.
PEAK_RADIUS_1ML_MM: float = (3000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
#: Radius (mm) of the 1.2 cm-diameter sphere of the PERCIST wording (0.905 mL).
PEAK_RADIUS_1P2CM_MM: float = 6.0

Spacing = tuple[float, float, float]


class PeakVariant(str, enum.Enum):
    """Closed set of SUVpeak definitions (see the module docstring)."""

    GLOBAL = "global"
    LOCAL = "local"
    EXACT = "exact"

    @classmethod
    def coerce(cls, value: PeakVariant | str) -> PeakVariant:
        """Accept a member or its value (case-insensitive)."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            allowed = ", ".join(v.value for v in cls)
            raise InvalidParameterError(
                format_message(f"unknown SUVpeak variant {value!r}", fix=f"use one of {allowed}")
            ) from None


@dataclass(frozen=True)
class PeakResult:
    """One spherical-mean peak.

    Parameters
    ----------
    variant : PeakVariant
        Which definition was used.
    value : float
        The peak (units of the image).
    centre_index : tuple of int
        ``(z, y, x)`` index of the voxel the winning sphere is centred on.
    kernel_voxels : int
        Number of voxels with non-zero weight in the full (not border-clipped) kernel.
    kernel_volume_ml : float
        Sum of the kernel weights times the voxel volume (mL): the sphere volume actually
        averaged over (voxel count x voxel volume for the centre-inclusion kernels).
    radius_mm : float
        Sphere radius.
    """

    variant: PeakVariant
    value: float
    centre_index: tuple[int, int, int]
    kernel_voxels: int
    kernel_volume_ml: float
    radius_mm: float

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable dict."""
        return {
            "variant": self.variant.value,
            "value": self.value,
            "centre_index": list(self.centre_index),
            "kernel_voxels": self.kernel_voxels,
            "kernel_volume_ml": self.kernel_volume_ml,
            "radius_mm": self.radius_mm,
        }


def check_spacing_radius(spacing_mm: Spacing, radius_mm: float) -> tuple[Spacing, float]:
    """Validate a voxel spacing and a peak-sphere radius (shared by the peak functions).

    Parameters
    ----------
    spacing_mm : sequence of 3 float
        Voxel spacing ``(x, y, z)`` in mm.
    radius_mm : float
        Sphere radius in mm.

    Returns
    -------
    spacing_mm : tuple of 3 float
    radius_mm : float
        The same values as floats.

    Raises
    ------
    GeometryError
        ``spacing_mm`` is not 3 finite positive numbers.
    InvalidParameterError
        ``radius_mm`` is negative or not finite.
    """
    sp = tuple(float(s) for s in spacing_mm)
    if len(sp) != 3 or not all(math.isfinite(s) and s > 0 for s in sp):
        raise GeometryError(format_message(
            f"spacing_mm must be 3 positive numbers, got {spacing_mm}",
            fix="pass the voxel spacing of the image grid (Grid.spacing_mm, x y z in mm)"))
    r = float(radius_mm)
    if not (math.isfinite(r) and r >= 0):
        raise InvalidParameterError(
            format_message(f"peak radius must be a finite number >= 0, got {radius_mm}",
                           fix="pass radius_mm in mm, e.g. PEAK_RADIUS_1ML_MM (1 mL sphere)")
        )
    return (sp[0], sp[1], sp[2]), r


@lru_cache(maxsize=32)
def _sphere_kernel_cached(spacing_mm: Spacing, radius_mm: float) -> np.ndarray:
    sx, sy, sz = spacing_mm
    hx, hy, hz = (math.floor(radius_mm / s) for s in (sx, sy, sz))
    z = (np.arange(-hz, hz + 1) * sz)[:, None, None]
    y = (np.arange(-hy, hy + 1) * sy)[None, :, None]
    x = (np.arange(-hx, hx + 1) * sx)[None, None, :]
    kernel = (z * z + y * y + x * x) <= radius_mm * radius_mm
    kernel.flags.writeable = False
    return kernel


def sphere_kernel(spacing_mm: Spacing, radius_mm: float = PEAK_RADIUS_1ML_MM) -> np.ndarray:
    """Voxel-centre-inclusion sphere: True where a voxel centre lies within ``radius_mm``.

    Parameters
    ----------
    spacing_mm : tuple of float
        Voxel spacing ``(x, y, z)`` in mm.
    radius_mm : float
        Sphere radius; default the 1 mL sphere (6.2035 mm).

    Returns
    -------
    (2hz+1, 2hy+1, 2hx+1) ndarray of bool
        Read-only, indexed ``(z, y, x)``, centred; ``kernel.sum()`` is the kernel voxel count.

    Examples
    --------
    >>> int(sphere_kernel((4.0, 4.0, 4.0)).sum())  # 1 + 6 + 12 offsets with |d|^2 <= 2
    19
    >>> int(sphere_kernel((2.0, 2.0, 2.0)).sum())
    123
    """
    sp, r = check_spacing_radius(spacing_mm, radius_mm)
    return _sphere_kernel_cached(sp, r)


@lru_cache(maxsize=16)
def _sphere_weights_cached(spacing_mm: Spacing, radius_mm: float, subsamples: int) -> np.ndarray:
    n = subsamples
    frac = (np.arange(n) + 0.5) / n - 0.5  # sub-voxel centre offsets, in voxel units
    sq: list[np.ndarray] = []
    for s in spacing_mm[::-1]:  # z, y, x
        h = math.ceil(radius_mm / s + 0.5)
        pos = (np.arange(-h, h + 1)[:, None] + frac[None, :]) * s  # (cells, n) mm
        sq.append(pos * pos)
    zz, yy, xx = sq
    # inside[kz, a, jy, b, ix, c]: sub-sample (a, b, c) of cell (kz, jy, ix) inside the sphere
    d2 = (
        zz[:, :, None, None, None, None]
        + yy[None, None, :, :, None, None]
        + xx[None, None, None, None, :, :]
    )
    inside = d2 <= radius_mm * radius_mm
    weights = inside.sum(axis=(1, 3, 5), dtype=np.int64).astype(np.float64) / float(n**3)
    # trim all-zero outer shells, keeping the kernel centred (odd size)
    nz_idx = np.nonzero(weights)
    if nz_idx[0].size == 0:
        weights = np.ones((1, 1, 1))
    else:
        trims = []
        for axis, idx in enumerate(nz_idx):
            c = weights.shape[axis] // 2
            trims.append(int(max(abs(idx.min() - c), abs(idx.max() - c))))
        cz, cy, cx = (d // 2 for d in weights.shape)
        tz, ty, tx = trims
        weights = weights[
            cz - tz : cz + tz + 1, cy - ty : cy + ty + 1, cx - tx : cx + tx + 1
        ].copy()
    weights.flags.writeable = False
    return weights


def sphere_weights(
    spacing_mm: Spacing, radius_mm: float = PEAK_RADIUS_1ML_MM, *, subsamples: int = 10
) -> np.ndarray:
    """Partial-voxel weights of a sphere centred on a voxel centre.

    The weight of a voxel is the fraction of its ``subsamples**3`` regularly spaced sub-voxel
    centres (midpoint rule) that lie within ``radius_mm`` of the sphere centre. With the
    default ``subsamples=10`` the kernel volume ``weights.sum() * voxel volume`` is within
    1.5 % of the sphere volume on PET grids (2-4 mm voxels; 0.01 % on
    3.39 x 3.39 x 2.03 mm, 1.4 % on 4 mm isotropic).

    Parameters
    ----------
    spacing_mm : tuple of float
        Voxel spacing ``(x, y, z)`` in mm.
    radius_mm : float
        Sphere radius; default the 1 mL sphere.
    subsamples : int
        Sub-voxel samples per axis (``subsamples**3`` per voxel).

    Returns
    -------
    ndarray of float64
        Read-only weights in ``[0, 1]``, indexed ``(z, y, x)``, odd-sized and centred.
    """
    sp, r = check_spacing_radius(spacing_mm, radius_mm)
    if int(subsamples) < 1:
        raise InvalidParameterError(format_message(
            f"subsamples must be >= 1, got {subsamples}",
            fix="pass a positive number of sub-samples per voxel axis"))
    return _sphere_weights_cached(sp, r, int(subsamples))


def box_means(
    image: np.ndarray,
    box: tuple[slice, slice, slice],
    local_mask: np.ndarray,
    kernel: np.ndarray,
) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """Kernel-weighted means of the in-image voxels around every voxel of a lesion box.

    ``box`` is the lesion bounding box (slices into ``image``) and ``local_mask`` the lesion
    mask inside it. The box is padded by the kernel half-size and clipped to the image; the
    correlation uses zero padding for both the values and the weights, so that voxels outside
    the image are left out of both the sum and the normaliser. Returns the means at the lesion
    voxels (in C order of ``local_mask``) and the padded box.

    Parameters
    ----------
    image : ndarray
        The whole image ``(z, y, x)``.
    box : tuple of 3 slice
        Bounding box of the lesion in ``image``.
    local_mask : ndarray of bool
        The lesion inside ``box`` (shape of ``image[box]``).
    kernel : ndarray
        Sphere weights (:func:`sphere_kernel` or :func:`sphere_weights`), odd-sized.

    Returns
    -------
    means : ndarray of float64
        Kernel-weighted mean around each lesion voxel.
    padded : tuple of 3 slice
        The padded, clipped box the correlation ran on.
    """
    half = [k // 2 for k in kernel.shape]
    pz, py, px = (
        slice(max(b.start - h, 0), min(b.stop + h, n))
        for b, h, n in zip(box, half, image.shape)
    )
    padded = (pz, py, px)
    sub = np.asarray(image[padded], dtype=np.float64)
    w = np.asarray(kernel, dtype=np.float64)
    sums = ndimage.correlate(sub, w, mode="constant", cval=0.0)
    norm = ndimage.correlate(np.ones_like(sub), w, mode="constant", cval=0.0)
    inner = tuple(slice(b.start - p.start, b.stop - p.start) for b, p in zip(box, padded))
    means = sums[inner][local_mask] / norm[inner][local_mask]
    return means, padded


def peak_from_means(
    variant: PeakVariant,
    means: np.ndarray,
    values: np.ndarray,
    coords: np.ndarray,
) -> tuple[float, tuple[int, int, int]]:
    """Pick the global (max of means) or local (mean at the hottest voxel, ties: highest).

    Parameters
    ----------
    variant : PeakVariant
        ``LOCAL`` takes the sphere centred on the hottest voxel; any other variant the
        highest sphere mean.
    means : ndarray
        Sphere mean per lesion voxel (:func:`box_means`).
    values : ndarray
        Voxel value per lesion voxel, same order.
    coords : ndarray
        ``(n, 3)`` ``(z, y, x)`` index per lesion voxel, same order.

    Returns
    -------
    value : float
        The peak.
    centre : tuple of 3 int
        Index of the voxel the winning sphere is centred on.
    """
    if variant is PeakVariant.LOCAL:
        hottest = np.flatnonzero(values == values.max())
        i = int(hottest[np.argmax(means[hottest])])
    else:
        i = int(np.argmax(means))
    c = coords[i]
    return float(means[i]), (int(c[0]), int(c[1]), int(c[2]))


def intensity_peak(
    image: np.ndarray,
    mask: np.ndarray,
    spacing_mm: Spacing,
    *,
    variant: PeakVariant | str = PeakVariant.GLOBAL,
    radius_mm: float = PEAK_RADIUS_1ML_MM,
    subsamples: int = 10,
) -> PeakResult:
    """Spherical-mean intensity peak of one lesion (SUVpeak / SULpeak).

    Parameters
    ----------
    image : (Z, Y, X) ndarray
        Intensities (e.g. SUV) on the lesion's grid; never resampled.
    mask : (Z, Y, X) ndarray of bool
        The lesion; must contain at least one voxel.
    spacing_mm : tuple of float
        Voxel spacing ``(x, y, z)`` in mm.
    variant : {"global", "local", "exact"}
        See :class:`PeakVariant`.
    radius_mm : float
        Sphere radius; default 6.2035 mm (1 mL). :data:`PEAK_RADIUS_1P2CM_MM` (6.0 mm) gives the
        1.2 cm-diameter sphere of the PERCIST paper (0.905 mL).
    subsamples : int
        Sub-voxel samples per axis for the ``"exact"`` weights.

    Returns
    -------
    PeakResult

    Notes
    -----
    The means are computed in float64 by correlating the lesion's bounding box, padded by the
    kernel radius, with the kernel (:func:`scipy.ndimage.correlate`); the cost is proportional
    to box size x kernel size, instead of lesion voxels x box size for a brute-force search.

    References
    ----------
    .. [1] IBSI reference manual, "Local intensity peak" (VJGA), "Global intensity peak" (0F91).

    Examples
    --------
    >>> img = np.zeros((9, 9, 9)); img[4, 4, 4] = 19.0
    >>> m = np.zeros(img.shape, bool); m[4, 4, 4] = True
    >>> intensity_peak(img, m, (4.0, 4.0, 4.0), variant="local").value  # 19 / 19 voxels
    1.0
    """
    v = PeakVariant.coerce(variant)
    img = np.asarray(image)
    msk = np.asarray(mask, dtype=bool)
    if img.shape != msk.shape or img.ndim != 3:
        raise MaskError(format_message(f"mask shape {msk.shape} does not match image {img.shape}"))
    objects = ndimage.find_objects(msk.astype(np.uint8))
    if not objects or objects[0] is None:
        raise MaskError(format_message("the lesion mask is empty"))
    box = objects[0]
    return _peak_in_box(img, box, msk[box], spacing_mm, v, radius_mm, subsamples)


def _peak_in_box(
    image: np.ndarray,
    box: tuple[slice, slice, slice],
    local_mask: np.ndarray,
    spacing_mm: Spacing,
    variant: PeakVariant,
    radius_mm: float,
    subsamples: int,
) -> PeakResult:
    sp, r = check_spacing_radius(spacing_mm, radius_mm)
    if variant is PeakVariant.EXACT:
        kernel: np.ndarray = sphere_weights(sp, r, subsamples=subsamples)
    else:
        kernel = sphere_kernel(sp, r)
    means, _ = box_means(image, box, local_mask, kernel)
    values = np.asarray(image[box])[local_mask]
    coords = np.argwhere(local_mask) + np.array([b.start for b in box])
    value, centre = peak_from_means(variant, means, values, coords)
    voxel_ml = sp[0] * sp[1] * sp[2] / 1000.0
    return PeakResult(
        variant=variant,
        value=value,
        centre_index=centre,
        kernel_voxels=int(np.count_nonzero(kernel)),
        kernel_volume_ml=float(np.sum(kernel, dtype=np.float64) * voxel_ml),
        radius_mm=r,
    )
