"""PET and CT readouts of a lesion site: numbers measured where a lesion is, or was.

A *site* is a region of one timepoint (see :mod:`emlesion.track.sites`): the segmented
lesion itself, or the footprint of a lesion seen earlier. These functions measure it:

* :func:`measure_pet_site` -> :class:`PetSiteReadout`: SUVmax, SUVpeak (IBSI global peak,
  1 mL sphere) and SULpeak in a VOI of the PET grid, whether or not a lesion was segmented.
* :func:`measure_ct_site` -> :class:`CtSiteReadout`: longest axial diameter and the
  perpendicular short axis on the CT grid, volume and mean HU of a
  :class:`~emlesion.segment.CTMass`; when the CT shows no mass, the readout says so (``found``
  false, 0 mm with the reason), never 0 mm by accident.

References
----------
.. [1] IBSI reference manual, features 0F91 (global intensity peak) and L0JK (maximum 3D
   diameter, edge convention of the mesh).
.. [2] Eisenhauer EA et al. RECIST 1.1. Eur J Cancer 2009;45:228-247 (longest axial diameter,
   short axis, fragments of a split lesion summed).
.. [3] Cheson BD et al. J Clin Oncol 2014;32:3059-3068 (Lugano: LDi, SDi, product of the
   perpendicular diameters per lesion).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from emlesion.errors import MaskError, format_message
from emlesion.io import Grid, Volume
from emlesion.measure.peak import PeakVariant, intensity_peak
from emlesion.measure.shape import DiameterConvention, axial_diameters
from emlesion.provenance import jsonable
from emlesion.segment import CTMass

__all__ = [
    "MIN_FRAGMENT_ML",
    "CtSiteReadout",
    "PetSiteReadout",
    "measure_ct_site",
    "measure_pet_site",
]

#: CT components smaller than this are not counted as separate fragments of a split mass
#: (about 5 x 5 x 4 mm: below the 5 mm "too small to measure" default of RECIST). Not
#: checkable on the real data (no real follow-up with a split mass;
#: benchmarks/audit_segment_real.py).
MIN_FRAGMENT_ML = 0.1


@dataclass(frozen=True)
class PetSiteReadout:
    """PET uptake in a site VOI (SUVbw and SUL).

    Parameters
    ----------
    suv_max : float
        Maximum SUVbw of the VOI.
    suv_peak : float
        IBSI global intensity peak (1 mL sphere, voxel-centre inclusion) over the VOI.
    sul_peak, sul_max : float, optional
        The same on the SUL image (PERCIST's SULpeak); ``None`` without a SUL image.
    voi_ml : float
        VOI volume (mL).
    n_voxels : int
        PET voxels of the VOI.
    voi : str
        ``"lesion"`` (the segmented lesion's own mask) or ``"footprint"`` (the former
        lesion's mapped footprint, where no lesion was segmented).
    peak_centre_index : tuple of int
        ``(z, y, x)`` PET index of the SUVpeak sphere centre (for figures).
    """

    suv_max: float
    suv_peak: float
    sul_peak: float | None
    sul_max: float | None
    voi_ml: float
    n_voxels: int
    voi: str = "lesion"
    peak_centre_index: tuple[int, int, int] = (0, 0, 0)

    def to_dict(self) -> dict[str, Any]:
        """The public ``pet`` object of a site (without the Deauville score)."""
        return {"suv_max": jsonable(self.suv_max), "suv_peak": jsonable(self.suv_peak),
                "sul_peak": jsonable(self.sul_peak), "voi_ml": jsonable(self.voi_ml)}

    def __repr__(self) -> str:
        sul = f", SULpeak {self.sul_peak:.2f}" if self.sul_peak is not None else ""
        return (f"PetSiteReadout({self.voi}: SUVmax {self.suv_max:.2f}, SUVpeak "
                f"{self.suv_peak:.2f}{sul}, {self.voi_ml:.1f} mL)")


@dataclass(frozen=True)
class CtSiteReadout:
    """CT measurement of the soft-tissue mass at a site.

    Parameters
    ----------
    found : bool
        False when nothing distinguishable from the surrounding tissue was found (then the
        diameters are 0 mm because the mass is absent, and ``reason`` says why).
    ld_mm, sa_mm : float
        Longest axial diameter and the perpendicular short axis on the CT grid (edge
        convention). A mass in several separate pieces (fragments of at least
        :data:`MIN_FRAGMENT_ML`) has the sums of the pieces' diameters (RECIST 1.1).
    ppd_mm2 : float
        Sum over the pieces of LD x SA (Lugano product of perpendicular diameters).
    volume_ml : float
        Mass volume on the CT grid.
    hu_mean : float, optional
        Mean HU of the mass; ``None`` when not found.
    n_fragments : int
        Pieces counted.
    method, reason : str
        How the mass was delineated, and what was found.
    ld_slice_z_mm : float, optional
        LPS z of the axial slice of the longest diameter.
    ld_endpoints_mm : tuple, optional
        LPS end points of the longest diameter (for figures).
    """

    found: bool
    ld_mm: float
    sa_mm: float
    ppd_mm2: float
    volume_ml: float
    hu_mean: float | None
    n_fragments: int = 0
    method: str = ""
    reason: str = ""
    ld_slice_z_mm: float | None = None
    ld_endpoints_mm: tuple[tuple[float, float, float], tuple[float, float, float]] | None = \
        field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The public ``ct`` object of a site."""
        return {"ld_mm": jsonable(self.ld_mm), "sa_mm": jsonable(self.sa_mm),
                "volume_ml": jsonable(self.volume_ml), "hu_mean": jsonable(self.hu_mean),
                "found": self.found, "n_fragments": self.n_fragments, "reason": self.reason}

    def __repr__(self) -> str:
        if not self.found:
            return f"CtSiteReadout(no mass: {self.reason})"
        return (f"CtSiteReadout({self.ld_mm:.1f} x {self.sa_mm:.1f} mm, {self.volume_ml:.1f} mL, "
                f"{self.hu_mean:.0f} HU, {self.n_fragments} piece(s))")


def measure_pet_site(
    suv: Volume,
    voi: np.ndarray,
    *,
    sul: Volume | None = None,
    voi_name: str = "lesion",
) -> PetSiteReadout | None:
    """SUVmax, SUVpeak and SULpeak in a VOI of the PET grid.

    Parameters
    ----------
    suv : Volume
        SUVbw image.
    voi : ndarray of bool
        The VOI on ``suv.grid``.
    sul : Volume, optional
        SUL image on the same grid.
    voi_name : str
        Recorded in :attr:`PetSiteReadout.voi`.

    Returns
    -------
    PetSiteReadout or None
        ``None`` for an empty VOI.
    """
    mask = np.asarray(voi, dtype=bool)
    if mask.shape != suv.shape:
        raise MaskError(format_message(
            f"site VOI shape {mask.shape} does not match the PET grid {suv.shape}",
            fix="build the site on the PET grid of this timepoint"))
    if not mask.any():
        return None
    img = np.asarray(suv.array)
    peak = intensity_peak(img, mask, suv.spacing_mm, variant=PeakVariant.GLOBAL)
    sul_peak = sul_max = None
    if sul is not None:
        simg = np.asarray(sul.array)
        sul_peak = float(intensity_peak(simg, mask, sul.spacing_mm,
                                        variant=PeakVariant.GLOBAL).value)
        sul_max = float(simg[mask].max())
    return PetSiteReadout(
        suv_max=float(img[mask].max()), suv_peak=float(peak.value), sul_peak=sul_peak,
        sul_max=sul_max, voi_ml=float(mask.sum()) * suv.grid.voxel_volume_ml,
        n_voxels=int(mask.sum()), voi=voi_name, peak_centre_index=peak.centre_index)


def measure_ct_site(
    mass: CTMass,
    *,
    convention: DiameterConvention | str = DiameterConvention.EDGE,
    min_fragment_ml: float = MIN_FRAGMENT_ML,
) -> CtSiteReadout:
    """LD, SA, volume and mean HU of a CT mass (native CT grid).

    Parameters
    ----------
    mass : CTMass
        From :func:`emlesion.segment.delineate_ct_mass`.
    convention : {"edge", "centre", "corner"}
        Diameter convention (default edge, see :mod:`emlesion.measure.shape`).
    min_fragment_ml : float
        Smallest separate piece counted as a fragment.

    Returns
    -------
    CtSiteReadout
        ``found`` false (0 mm, with the reason) when the CT shows no mass.
    """
    if not mass.found or mass.grid is None or mass.hu is None or not mass.mask.any():
        return CtSiteReadout(False, 0.0, 0.0, 0.0, 0.0, None, 0, mass.method,
                             mass.reason or "no soft-tissue mass on the CT")
    grid: Grid = mass.grid
    lab, _n = ndi.label(mass.mask, structure=ndi.generate_binary_structure(3, 1))
    sizes = np.bincount(lab.ravel())[1:] * grid.voxel_volume_ml
    keep = [i + 1 for i, v in enumerate(sizes) if v >= min_fragment_ml] or \
        [int(np.argmax(sizes)) + 1]
    ld = sa = ppd = 0.0
    best = None
    for i in keep:
        d = axial_diameters(lab == i, grid.spacing_mm, convention=convention)
        ld += d.longest_mm
        sa += d.short_axis_mm
        ppd += d.longest_mm * d.short_axis_mm
        if best is None or d.longest_mm > best.longest_mm:
            best = d
    assert best is not None
    ends = grid.index_to_lps(np.asarray(best.endpoints_position_index, float))
    z_mm = float(grid.index_to_lps(np.asarray([[float(best.slice_index), 0.0, 0.0]]))[0][2])
    kept = np.isin(lab, keep)
    return CtSiteReadout(
        found=True, ld_mm=float(ld), sa_mm=float(sa), ppd_mm2=float(ppd),
        volume_ml=float(kept.sum()) * grid.voxel_volume_ml,
        hu_mean=float(np.asarray(mass.hu)[kept].mean()), n_fragments=len(keep),
        method=mass.method, reason=mass.reason, ld_slice_z_mm=z_mm,
        ld_endpoints_mm=(tuple(float(v) for v in ends[0]),  # type: ignore[arg-type]
                         tuple(float(v) for v in ends[1])))
