"""Threshold-based lesion segmentation with exclusion of physiological uptake.

:func:`segment_lesions` applies one of five documented threshold methods to an SUV image
inside a search region, keeps connected components above a minimum volume, removes the
urinary bladder, kidneys, ureters (and heart, brain and bowel when their masks exist),
and labels every lesion with its anatomical region and side.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from emlesion.anatomy import (
    Anatomy,
    AnatomyLabel,
    ReferenceRegionStats,
    Region,
    RegionAssignment,
    Side,
    assign_region,
    segment_anatomy,
)
from emlesion.anatomy.fov import padded_box
from emlesion.anatomy.model import voxel_centres_mm
from emlesion.errors import EmlesionWarning, SegmentationError, format_message, warn_external
from emlesion.io.geometry import Grid, resample_array
from emlesion.io.geometry import ball_structure as _ball
from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import Volume, is_suv_units
from emlesion.provenance import ProvenanceStep, jsonable, record_warnings
from emlesion.segment.ctguided import CTSoftTissueRule, delineate_on_ct

__all__ = [
    "BOWEL_GAS_ML",
    "DEFAULT_EXCLUDE",
    "LOW_UPTAKE_LABELS",
    "Box",
    "Lesion",
    "Method",
    "PriorMask",
    "SearchRegion",
    "Seed",
    "SegmentationResult",
    "SegmentationWarning",
    "ThresholdRule",
    "WholeScan",
    "classify_threshold_rule",
    "exclusion_labels",
    "segment_lesions",
]


class SegmentationWarning(EmlesionWarning):
    """A segmentation choice fell back to a weaker rule (no anatomy, no liver reference...)."""


class Method(str, enum.Enum):
    """Threshold methods (domain reference section 2.3).

    ``SUV_2_5`` / ``SUV_4_0``: fixed SUV >= 2.5 / 4.0. ``PERCENT_41`` / ``PERCENT_50``:
    >= 41 % / 50 % of each lesion's own SUVmax, grown inside the lesion's VOI and keeping the
    component that contains the maximum. ``PERCIST_LIVER``: >= 1.5 x liver mean + 2 x liver SD
    (3 cm liver sphere; strictly on SUL).
    """

    SUV_2_5 = "suv2.5"
    SUV_4_0 = "suv4.0"
    PERCENT_41 = "41%max"
    PERCENT_50 = "50%max"
    PERCIST_LIVER = "percist-liver"

    @property
    def is_relative(self) -> bool:
        """True for the percent-of-SUVmax methods."""
        return self in (Method.PERCENT_41, Method.PERCENT_50)


_FIXED = {Method.SUV_2_5: 2.5, Method.SUV_4_0: 4.0}
#: Low-contrast uptake without a soft-tissue core on the CT but with at least this much gas
#: (mL, outside the lungs) under it is physiological bowel uptake (see segment_lesions Notes).
#: Chosen on the generator seeds. Real (benchmarks/audit_segment_real.py, TotalSegmentator
#: trunk CT): gas within a 21 mm cube around a colon wall/content voxel is 0.76 mL at the
#: median, 0.13 mL at the 25th percentile (this rule recognises about 70 % of colon
#: positions; the rest stays a low-contrast candidate). No real PET/CT with bowel uptake.
BOWEL_GAS_ML = 0.2
_FRACTION = {Method.PERCENT_41: 0.41, Method.PERCENT_50: 0.50}


class ThresholdRule(str, enum.Enum):
    """The rule that placed one lesion's boundary (domain reference section 2.3).

    ``FIXED``: a fixed SUV (2.5 or 4.0). ``PERCIST_LIVER``: 1.5 x liver mean + 2 x liver SD.
    ``RELATIVE``: 41 % / 50 % of the lesion's SUVmax. ``BLOOD_POOL_FLOOR``: a percent method
    whose ``fraction x SUVmax`` fell below the blood-pool SUVmean, so the boundary was put at
    the blood-pool mean (see :func:`segment_lesions` Notes); the boundary is then at
    background level and the contour can take in adjacent physiological uptake (bowel,
    vessels), so the lesion's MTV is flagged unreliable. ``CT_SOFT_TISSUE``: such a
    low-contrast lesion delineated instead along its CT soft-tissue boundary
    (:func:`emlesion.segment.ctguided.delineate_on_ct`; needs the CT). ``USER_MASK``: the
    lesion came from a user mask, no threshold. ``UNKNOWN``: the method was not recorded
    (e.g. a hand-built timepoint); no evidence of a floor, so the volume is not flagged.
    """

    FIXED = "fixed SUV"
    PERCIST_LIVER = "PERCIST liver"
    RELATIVE = "41%/50% of SUVmax"
    BLOOD_POOL_FLOOR = "blood-pool floor"
    CT_SOFT_TISSUE = "CT soft tissue (low contrast)"
    USER_MASK = "user mask"
    UNKNOWN = "unknown"

    @property
    def volume_reliable(self) -> bool:
        """False for :attr:`BLOOD_POOL_FLOOR` (boundary at background level)."""
        return self is not ThresholdRule.BLOOD_POOL_FLOOR


def classify_threshold_rule(method: Method | str, suv_max: float | None,
                            blood_pool_mean: float | None) -> ThresholdRule:
    """The :class:`ThresholdRule` that :func:`segment_lesions` applies to a lesion.

    Parameters
    ----------
    method : Method or str
        Segmentation method.
    suv_max : float or None
        The lesion's SUVmax (same quantity as ``blood_pool_mean``).
    blood_pool_mean : float or None
        Blood-pool SUVmean used as the floor; ``None`` when no floor was applied.

    Returns
    -------
    ThresholdRule
        ``BLOOD_POOL_FLOOR`` for a percent method when ``fraction x suv_max`` is below
        ``blood_pool_mean`` (the test of ``_regrow``), else the method's own rule.

    Examples
    --------
    >>> classify_threshold_rule("41%max", 3.28, 1.6).value   # 0.41 x 3.28 = 1.34 < 1.6
    'blood-pool floor'
    >>> classify_threshold_rule("41%max", 10.0, 1.6).value   # 4.1 >= 1.6
    '41%/50% of SUVmax'
    """
    method = Method(method)
    if method in _FIXED:
        return ThresholdRule.FIXED
    if method is Method.PERCIST_LIVER:
        return ThresholdRule.PERCIST_LIVER
    if (suv_max is not None and blood_pool_mean is not None and math.isfinite(suv_max)
            and math.isfinite(blood_pool_mean)
            and _FRACTION[method] * suv_max < blood_pool_mean):
        return ThresholdRule.BLOOD_POOL_FLOOR
    return ThresholdRule.RELATIVE

#: Physiological uptake excluded by default; ``"kidneys"`` means both kidneys.
#: (``"iliac_vessels"`` is not in the default list: no automatic mask exists for it yet, and
#: a user mask of it is excluded when named in ``exclude``.)
DEFAULT_EXCLUDE: tuple[str, ...] = ("bladder", "kidneys", "ureters", "heart", "brain", "bowel")
#: Excluded structures whose uptake is at or near the background (bowel wall and content,
#: iliac blood pool). Their voxels are removed, but they get no spill-over halo (their
#: spill-over is below any lesion threshold, and a halo would swallow the part of a real
#: lesion that abuts them, e.g. a pelvic node against the sigmoid colon, and drop it as
#: spill-over); instead a lesion keeps the supra-threshold voxels of these masks that touch
#: it (one-voxel partial-volume rim), see :func:`segment_lesions` Notes.
#: Aorta and vena cava (blood pool) likewise, when excluded (from a user organ map).
LOW_UPTAKE_LABELS: frozenset[AnatomyLabel] = frozenset({AnatomyLabel.BOWEL,
                                                     AnatomyLabel.ILIAC_VESSELS,
                                                     AnatomyLabel.AORTA,
                                                     AnatomyLabel.VENA_CAVA})
_EXCLUDE_LABELS: dict[str, tuple[AnatomyLabel, ...]] = {
    "kidneys": (AnatomyLabel.KIDNEY_LEFT, AnatomyLabel.KIDNEY_RIGHT),
    "kidney": (AnatomyLabel.KIDNEY_LEFT, AnatomyLabel.KIDNEY_RIGHT),
    "ureter": (AnatomyLabel.URETERS,),
}


# ---------------------------------------------------------------------------- search regions
@dataclass(frozen=True)
class WholeScan:
    """Search the whole scan (inside the body when an anatomy is available)."""

    def describe(self) -> dict[str, Any]:
        """JSON-able description."""
        return {"kind": "whole scan"}


@dataclass(frozen=True)
class Box:
    """Search inside an axis-aligned LPS box; corners in mm ``(x, y, z)``."""

    min_mm: tuple[float, float, float]
    max_mm: tuple[float, float, float]

    def describe(self) -> dict[str, Any]:
        """JSON-able description."""
        return {"kind": "box", "min_mm": list(self.min_mm), "max_mm": list(self.max_mm)}


@dataclass(frozen=True)
class Seed:
    """Keep only the lesion containing (or, failing that, nearest within ``radius_mm`` to) an
    LPS point in mm."""

    point_mm: tuple[float, float, float]
    radius_mm: float = 15.0

    def describe(self) -> dict[str, Any]:
        """JSON-able description."""
        return {"kind": "seed", "point_mm": list(self.point_mm), "radius_mm": self.radius_mm}


@dataclass(frozen=True, eq=False)
class PriorMask:
    """Search inside a prior mask (e.g. last timepoint's lesion, a user VOI), resampled
    nearest-neighbour onto the SUV grid."""

    mask: np.ndarray
    grid: Grid

    def describe(self) -> dict[str, Any]:
        """JSON-able description."""
        return {"kind": "prior mask", "voxels": int(np.count_nonzero(self.mask)),
                "shape": list(self.grid.shape)}


SearchRegion = WholeScan | Box | Seed | PriorMask


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Lesion:
    """One segmented lesion.

    Parameters
    ----------
    label : int
        Value in :attr:`SegmentationResult.labels` (1 = hottest lesion).
    name : str
        ``"<region> <side> <n>"``, e.g. ``"retroperitoneal right 1"``.
    region, side : Region, Side
        From :func:`emlesion.anatomy.assign_region`.
    n_voxels : int
    volume_ml : float
        ``n_voxels x voxel volume`` (voxel counting, native SUV grid).
    suv_max : float
        Maximum of the SUV image in the lesion (native grid).
    threshold : float
        SUV threshold that delineated this lesion.
    assignment : RegionAssignment
        Centroid and the rule that gave region and side.
    threshold_rule : ThresholdRule, default ``RELATIVE``
        Rule that placed the boundary; ``BLOOD_POOL_FLOOR`` marks an unreliable volume
        (see :attr:`volume_reliable`).
    """

    label: int
    name: str
    region: Region
    side: Side
    n_voxels: int
    volume_ml: float
    suv_max: float
    threshold: float
    assignment: RegionAssignment
    threshold_rule: ThresholdRule = ThresholdRule.RELATIVE

    @property
    def centroid_mm(self) -> tuple[float, float, float]:
        """LPS centroid (mm)."""
        return self.assignment.centroid_mm

    @property
    def volume_reliable(self) -> bool:
        """False when the boundary is the blood-pool floor (MTV may include adjacent
        physiological uptake)."""
        return self.threshold_rule.volume_reliable

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "label": self.label,
            "name": self.name,
            "region": self.region.value,
            "side": self.side.value,
            "n_voxels": self.n_voxels,
            "volume_ml": jsonable(self.volume_ml),
            "suv_max": jsonable(self.suv_max),
            "threshold": jsonable(self.threshold),
            "threshold_rule": self.threshold_rule.value,
            "volume_reliable": self.volume_reliable,
            "assignment": self.assignment.to_dict(),
        }


@dataclass(frozen=True, eq=False, repr=False)
class SegmentationResult:
    """Output of :func:`segment_lesions`.

    Parameters
    ----------
    labels : LabelMap
        Lesion labels on the SUV grid, named ``"<region> <side> <n>"``.
    lesions : tuple of Lesion
        One entry per label, hottest first.
    method : Method
    liver_reference : ReferenceRegionStats or None
        Liver statistics used (PERCIST method or candidate seeding).
    excluded : tuple of str
        Physiological structures whose masks were actually removed.
    provenance : tuple of ProvenanceStep
        Every choice made (method, thresholds, search region, connectivity, exclusions,
        dropped components).
    regrowth : tuple of dict
        Percent-of-max methods: one JSON-able record per candidate grown, in growing order
        (SUVmax, threshold, VOI enlargements, convergence, CT soft-tissue delineation, or why
        it was dropped); the ``lesions`` of the ``emlesion.segment.percent_of_max`` step.
        Empty for the other methods.
    """

    labels: LabelMap
    lesions: tuple[Lesion, ...]
    method: Method
    liver_reference: ReferenceRegionStats | None = None
    excluded: tuple[str, ...] = ()
    provenance: tuple[ProvenanceStep, ...] = field(default=())
    regrowth: tuple[dict[str, Any], ...] = ()

    @property
    def total_volume_ml(self) -> float:
        """Sum of lesion volumes (mL)."""
        return float(sum(les.volume_ml for les in self.lesions))

    def mask(self, label: int | None = None) -> np.ndarray:
        """Boolean mask of one lesion, or of all lesions when ``label`` is None."""
        arr = np.asarray(self.labels.array)
        return arr > 0 if label is None else arr == int(label)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (no voxel data)."""
        return {
            "method": self.method.value,
            "lesions": [les.to_dict() for les in self.lesions],
            "total_volume_ml": jsonable(self.total_volume_ml),
            "liver_reference": self.liver_reference.to_dict() if self.liver_reference else None,
            "excluded": list(self.excluded),
            "provenance": [p.to_dict() for p in self.provenance],
        }

    def __repr__(self) -> str:
        shown = ", ".join(f"{les.name!r} {les.volume_ml:.1f}mL SUVmax {les.suv_max:.2f}"
                          for les in self.lesions[:4])
        more = f", +{len(self.lesions) - 4} more" if len(self.lesions) > 4 else ""
        return (f"SegmentationResult({self.method.value}: {len(self.lesions)} lesion(s) "
                f"[{shown}{more}])")


# ---------------------------------------------------------------------------- helpers
def _warn_if_not_suv(suv: Volume) -> None:
    """A :class:`SegmentationWarning` when ``suv`` is not an SUV image (fixed SUV thresholds
    are meaningless on it): :func:`emlesion.io.volume.is_suv_units`."""
    if not is_suv_units(suv.units):
        warn_external(format_message(
            f"image units {suv.units or 'unknown'} are not an SUV; fixed SUV thresholds "
            "are meaningless on it", series=suv.identity.series_instance_uid or None,
            fix="pass the output of emlesion.suv.compute_suv"), SegmentationWarning)


def _structure(connectivity: int) -> np.ndarray:
    rank = {6: 1, 18: 2, 26: 3}.get(int(connectivity))
    if rank is None:
        raise SegmentationError(format_message(f"connectivity must be 6, 18 or 26, got "
                                               f"{connectivity}"))
    return ndi.generate_binary_structure(3, rank)


def exclusion_labels(
    exclude: Iterable[str | AnatomyLabel] = DEFAULT_EXCLUDE,
) -> dict[str, tuple[AnatomyLabel, ...]]:
    """The anatomy labels behind each excluded structure name (``"kidneys"`` -> both kidneys).

    Raises
    ------
    SegmentationError
        An unknown name.

    Examples
    --------
    >>> exclusion_labels(["kidneys"])["kidneys"][0].value
    'kidney_left'
    """
    out: dict[str, tuple[AnatomyLabel, ...]] = {}
    for item in exclude:
        key = item.value if isinstance(item, AnatomyLabel) else str(item).lower()
        if key in _EXCLUDE_LABELS:
            out[key] = _EXCLUDE_LABELS[key]
        else:
            try:
                out[key] = (AnatomyLabel(key),)
            except ValueError:
                raise SegmentationError(format_message(
                    f"unknown structure to exclude: {item!r}",
                    fix=f"use names of emlesion.anatomy.AnatomyLabel or 'kidneys'; default "
                    f"{DEFAULT_EXCLUDE}")) from None
    return out


def _search_mask(region: SearchRegion, grid: Grid, body: np.ndarray | None) -> np.ndarray:
    if isinstance(region, (WholeScan, Seed)):
        return body.copy() if body is not None else np.ones(grid.shape, bool)
    if isinstance(region, Box):
        xs, ys, zs = voxel_centres_mm(grid)
        lo = np.minimum(region.min_mm, region.max_mm)
        hi = np.maximum(region.min_mm, region.max_mm)
        m = ((xs >= lo[0]) & (xs <= hi[0]) & (ys >= lo[1]) & (ys <= hi[1]) & (zs >= lo[2])
             & (zs <= hi[2]))
        return np.broadcast_to(m, grid.shape).copy()
    if isinstance(region, PriorMask):
        arr = np.asarray(region.mask)
        if arr.shape != region.grid.shape:
            raise SegmentationError(format_message(
                f"prior mask shape {arr.shape} does not match its grid {region.grid.shape}"))
        return resample_array(arr.astype(np.uint8), region.grid, grid, interpolation="nearest",
                              default_value=0).astype(bool)
    raise SegmentationError(format_message(f"unknown search region {region!r}",
                                           fix="use WholeScan, Box, Seed or PriorMask"))


def _attach_halo(core: np.ndarray, cand: np.ndarray, halo: np.ndarray, reach: np.ndarray,
                 structure: np.ndarray) -> np.ndarray:
    """Core plus the candidate voxels in the organ halo that lie within ``reach`` of it and
    stay connected to it."""
    if not halo.any():
        return core
    # inside the core's bounding box grown by the reach's half-size (issue 18): the grown
    # region lies there, so labelling the box gives the whole-volume components
    box = padded_box(core, tuple(int(n) // 2 + 1 for n in reach.shape))
    assert box is not None  # core is one labelled component
    c = core[box]
    near = cand[box] & halo[box] & ndi.binary_dilation(c, reach)
    lab, _ = ndi.label(c | near, structure=structure)
    keep = np.unique(lab[c])
    out = np.zeros(core.shape, bool)
    out[box] = np.isin(lab, keep[keep > 0])
    return out


def _add_rim(lesion: np.ndarray, a: np.ndarray, threshold: float,
             low_organ: np.ndarray) -> np.ndarray:
    """The lesion plus the supra-threshold voxels of the low-uptake masks (bowel, iliac
    vessels) that touch it (26-neighbourhood): the partial-volume rim of a lesion that abuts
    them, which a 4 mm mask boundary cannot split. Never more than one voxel deep, so the
    contour cannot run along the structure."""
    if not low_organ.any() or not lesion.any():
        return lesion
    rim = low_organ & (a >= threshold) & ndi.binary_dilation(lesion, np.ones((3, 3, 3), bool))
    return lesion | rim


# ---------------------------------------------------------------------------- main
def segment_lesions(
    suv: Volume,
    *,
    method: Method | str = Method.PERCENT_41,
    anatomy: Anatomy | None = None,
    ct: Volume | None = None,
    region: SearchRegion | None = None,
    min_volume_ml: float = 1.0,
    connectivity: int = 26,
    exclude: Sequence[str | AnatomyLabel] = DEFAULT_EXCLUDE,
    liver_reference: ReferenceRegionStats | tuple[float, float] | None = None,
    seed_method: Method | str | None = None,
    voi_margin_mm: float = 15.0,
    halo_mm: float = 10.0,
    max_halo_fraction: float = 0.5,
    voi_max_iterations: int = 4,
    blood_pool_reference: ReferenceRegionStats | tuple[float, float] | None = None,
    blood_pool_floor: bool = True,
    ct_soft_tissue: bool = True,
    ct_rule: CTSoftTissueRule | None = None,
) -> SegmentationResult:
    """Segment lesions on an SUV image by a documented threshold rule.

    Parameters
    ----------
    suv : Volume
        SUV (or SUL) image on its native PET grid; statistics never use an interpolated PET.
    method : Method or str, default ``"41%max"``
        Threshold rule (see :class:`Method`). The default, 41 % of each lesion's SUVmax
        grown from liver-threshold candidates, is the classic MTV method (domain
        reference 2.3) and met the 15 % MTV acceptance on the synthetic test phantom.
    anatomy : Anatomy, optional
        Organ masks and landmarks. When absent and ``ct`` is given, computed with
        :func:`emlesion.anatomy.segment_anatomy` (CT + this SUV image).
    ct : Volume, optional
        CT of the same timepoint: computes ``anatomy`` when it is not given, and delineates
        low-contrast lesions (``ct_soft_tissue``).
    region : SearchRegion, optional
        :class:`WholeScan` (default; inside the body), :class:`Box`, :class:`Seed` or
        :class:`PriorMask`.
    min_volume_ml : float, default 1.0
        Lesions smaller than this are dropped (recorded).
    connectivity : {6, 18, 26}, default 26
        Voxel connectivity of the connected components (26 = faces, edges and corners).
    exclude : sequence of str, default :data:`DEFAULT_EXCLUDE`
        Physiological structures removed before thresholding (names of
        :class:`~emlesion.anatomy.AnatomyLabel`, or ``"kidneys"``). Structures without a
        mask in the anatomy are listed in the provenance as unavailable.
    liver_reference : ReferenceRegionStats or (mean, sd), optional
        Liver statistics on the same quantity as ``suv``. Default: the anatomy's 3 cm liver
        sphere measured on ``suv``.
    seed_method : Method, optional
        For the percent methods, the rule that finds candidate lesions: default
        ``percist-liver`` when a liver reference exists, else ``suv2.5``.
    voi_margin_mm : float, default 15
        Percent methods: each candidate is regrown inside the candidate dilated by this;
        the VOI is then enlarged to the grown lesion dilated by this margin until the lesion
        no longer reaches the VOI border (see Notes).
    halo_mm : float, default 10
        Width of the spill-over halo around excluded organs (about 1.5 x the PET FWHM
        [unverified]; not checkable on the real data: no real PET/CT with organ masks,
        ``benchmarks/audit_segment_real.py``).
    max_halo_fraction : float, default 0.5
        A component with more than this fraction of its voxels in the halo is taken as
        spill-over from the organ and dropped.
    voi_max_iterations : int, default 4
        Percent methods: at most this many VOI enlargements per lesion (so the VOI reaches
        at most ``(1 + voi_max_iterations) x voi_margin_mm`` beyond the seed candidate); a
        lesion still touching its VOI after them is kept and a warning records a possible
        leak into adjacent uptake.
    blood_pool_reference : ReferenceRegionStats or (mean, sd), optional
        Blood-pool statistics on the same quantity as ``suv``. Default: the anatomy's
        aortic blood-pool VOI measured on ``suv``.
    blood_pool_floor : bool, default True
        Percent methods: never place a lesion boundary below the blood-pool mean (see
        Notes). Without a blood-pool reference no floor is applied (recorded).

    ct_soft_tissue : bool, default True
        Percent methods, with ``ct``: a lesion whose ``fraction x SUVmax`` falls below the
        blood-pool floor is delineated along its CT soft-tissue boundary
        (:func:`emlesion.segment.ctguided.delineate_on_ct`, see Notes); ``False`` keeps the
        floor threshold.
    ct_rule : CTSoftTissueRule, optional
        Parameters of that delineation (default :class:`CTSoftTissueRule()`).

    Returns
    -------
    SegmentationResult

    Raises
    ------
    SegmentationError
        Unknown method, connectivity, exclusion or search region; PERCIST method without a
        liver reference.

    Notes
    -----
    Exclusion of physiological uptake (the kidneys, ureters and urinary bladder are the
    main sources of threshold leakage for retroperitoneal and pelvic masses):

    1. voxels inside an excluded organ mask never belong to a lesion;
    2. the *halo* is the organ masks dilated by ``halo_mm`` minus the organs; candidate
       *cores* are the supra-threshold voxels outside organs and halo, and each core keeps
       the supra-threshold halo voxels within ``halo_mm`` of it that stay connected to it
       (so a lesion touching a kidney keeps its full extent, while the spill-over shell
       around the bladder is not attached to a distant lesion);
    3. supra-threshold components that lie mostly (> ``max_halo_fraction``) in the halo are
       organ spill-over and dropped, as are cores below ``min_volume_ml``;
    4. the heart found by :func:`emlesion.anatomy.segment_anatomy` (which also returns its
       PET-avid part, ``myocardium``) is removed whole, myocardium included, but its halo
       surrounds the myocardium only (empty when the myocardium is not avid); a
       user-supplied heart mask without a myocardium entry gets a halo like any organ;
    5. the low-uptake structures of :data:`LOW_UPTAKE_LABELS` (bowel, iliac vessels) get no
       halo: their uptake is near the background, so their spill-over is below any lesion
       threshold, while a 10 mm halo around the colon would hold most of a small pelvic node
       that abuts it and drop the node as spill-over. Their voxels are removed like any
       organ's (the contour cannot run along them), and each lesion then takes back the
       supra-threshold voxels of these masks that touch it (26-neighbourhood, one voxel
       deep): the partial-volume rim of a lesion lying against them.

    Percent methods: candidates come from ``seed_method``; for each candidate, hottest
    first, the threshold is ``fraction x SUVmax`` of the candidate, applied inside the
    candidate dilated by ``voi_margin_mm`` (organs removed, voxels of hotter lesions
    removed), and the component containing the SUVmax voxel is kept, then halo-trimmed as
    above. Two rules keep this faithful to the manual 41 % workflow (threshold applied
    inside a lesion VOI, keeping the component of the maximum; domain reference 2.3):

    * *The VOI must enclose the lesion.* A candidate is only the part of the lesion above
      the seed threshold: at follow-up, when SUVmax is barely above the PERCIST liver
      threshold, it is a few millilitres near the maximum, and a fixed margin around it
      truncates an elongated lesion (measured on the sample study: a 9.6 cm long
      retroperitoneal mass at month 1 lost a quarter of its 41 % volume). As a reader
      enlarges a VOI that the contour touches, the VOI is replaced by the grown lesion
      dilated by ``voi_margin_mm`` (still inside the search region, outside organs and
      hotter lesions) and the lesion regrown, until the lesion no longer reaches the VOI
      border or ``voi_max_iterations`` is reached. The threshold (from the SUVmax) is then
      re-derived if the enlarged lesion contains a hotter voxel.
    * *No boundary below the blood pool.* A voxel at or below the blood-pool SUVmean
      cannot be told apart from vascular background (PERCIST takes uptake at or below the
      blood pool as complete metabolic response), and a contour below it runs along
      vessels and similar physiological uptake. With ``blood_pool_floor`` the threshold
      is ``max(fraction x SUVmax, blood-pool mean)``; a lesion whose SUVmax does not
      exceed the blood-pool mean is not delineated. The floor only acts on lesions with
      ``SUVmax < blood-pool mean / fraction`` (about 4.5 SUV for 41 %), so high-contrast
      lesions keep the plain relative threshold.
    * *Low-contrast lesions go to the CT.* When the floor places the boundary, the contour is at
      background level: it runs into the bowel and the vessels beside the lesion (on the
      bundled sample a 7.9 mL pelvic nodule of SUVmax 3.3 against the sigmoid colon came out
      at 21.5 mL), and it also cuts the lesion's own partial-volume rim, which lies below the
      floor. With ``ct`` and ``ct_soft_tissue``, such a lesion is delineated instead along the
      homogeneous soft tissue that carries its uptake on the CT
      (:func:`emlesion.segment.ctguided.delineate_on_ct`); it is recorded per lesion in the
      provenance, and ``threshold_rule`` is :attr:`ThresholdRule.CT_SOFT_TISSUE`; the rest of
      the floor region (the adjacent uptake) is not searched again for other lesions. When
      the CT cannot delineate it (no homogeneous soft-tissue core under the uptake), the floor
      result stays, flagged :attr:`ThresholdRule.BLOOD_POOL_FLOOR` -- unless the CT shows
      intraluminal gas under the uptake (at least :data:`BOWEL_GAS_ML` mL below -400 HU,
      outside the lungs): low-grade uptake in gas-containing bowel without a soft-tissue
      nodule is physiological, and the candidate is dropped (counted in the provenance as
      ``dropped_as_bowel_uptake``). On generator seeds 2025, 13 and 15 this removes a 2-28 mL
      colon "lesion" at the resolved pelvic site at month 3.
      A floor-limited lesion has ``threshold_rule`` :attr:`ThresholdRule.BLOOD_POOL_FLOOR`
      and ``volume_reliable`` False, and one :class:`SegmentationWarning` names it: its
      boundary is at background level, so the contour can run into adjacent physiological
      uptake (on the sample study without the CT rule, a pelvic nodule of SUVmax 3.3 measured
      21.5 mL against a true 7.9 mL).

    References
    ----------
    .. [1] Wahl RL et al. From RECIST to PERCIST. J Nucl Med 2009;50 Suppl 1:122S-150S.
    .. [2] Ilyas H et al. Defining the optimal method for measuring baseline metabolic tumour
       volume in diffuse large B cell lymphoma. Eur J Nucl Med Mol Imaging 2018;45:1142-54.
    .. [3] Boellaard R et al. FDG PET/CT: EANM procedure guidelines for tumour imaging:
       version 2.0. Eur J Nucl Med Mol Imaging 2015;42:328-54 (41 % / A50 % thresholds).
    .. [4] Burggraaff CN et al. / PMC7139791: fixed relative thresholds overestimate volume
       at low lesion-to-background ratio (domain reference 2.3).
    .. [5] Bagci U et al. Joint segmentation of anatomical and functional images. Med Image
       Anal 2013;17:929-45 (PET-CT co-segmentation; the CT rule for low-contrast lesions).
    """
    method = _parse_method(method)
    region = region if region is not None else WholeScan()
    structure = _structure(connectivity)
    grid = suv.grid
    steps: list[ProvenanceStep] = []
    with record_warnings() as rec:
        _warn_if_not_suv(suv)
        if anatomy is None and ct is not None:
            anatomy = segment_anatomy(ct, suv)
            steps.append(ProvenanceStep("emlesion.anatomy.segment_anatomy",
                                        rule="computed from the CT and this SUV image"))
        a = np.asarray(suv.array, dtype=np.float64)
        vox_ml = grid.voxel_volume_ml
        # --- exclusions ------------------------------------------------------
        ex = _exclusions(anatomy, grid, exclude, halo_mm, max_halo_fraction)
        organ, low_organ, halo, reach = ex.organ, ex.low_organ, ex.halo, ex.reach
        steps.append(ex.step)
        # --- search region ---------------------------------------------------
        body = anatomy.mask_on(AnatomyLabel.BODY, grid) if (
            anatomy is not None and anatomy.has(AnatomyLabel.BODY)) else None
        search = _search_mask(region, grid, body)
        steps.append(ProvenanceStep("emlesion.segment.search_region", rule=type(region).__name__,
                                    inputs={**region.describe(),
                                            "volume_ml": float(search.sum() * vox_ml),
                                            "connectivity": connectivity,
                                            "min_volume_ml": min_volume_ml}))
        allowed = search & ~organ
        # --- reference regions ------------------------------------------------
        liver, blood = _references(suv, anatomy, liver_reference, blood_pool_reference)
        if method is Method.PERCIST_LIVER and liver is None:
            raise SegmentationError(format_message(
                "the PERCIST liver threshold needs a liver reference and none was found",
                series=suv.identity.series_instance_uid or None,
                fix="pass liver_reference=(mean, sd), anatomy=, or ct="))
        # --- candidates ------------------------------------------------------
        seed, t_seed = _seed_threshold(method, seed_method, liver)
        cand = (a >= t_seed) & allowed
        rim_zone = low_organ & search
        lesions, cand_step = _candidates(a, grid, cand, halo, rim_zone, reach, structure, seed,
                                         t_seed, min_volume_ml, max_halo_fraction)
        steps.append(cand_step)
        # --- percent-of-max regrowth ------------------------------------------
        regrowth: tuple[dict[str, Any], ...] = ()
        if method.is_relative:
            lesions, details, regrow_step = _percent_of_max(
                a, suv, lesions, method, blood, blood_pool_floor=blood_pool_floor,
                allowed=allowed, halo=halo, reach=reach, structure=structure,
                rim_zone=rim_zone, anatomy=anatomy, ct=ct, ct_soft_tissue=ct_soft_tissue,
                ct_rule=ct_rule, voi_margin_mm=voi_margin_mm,
                voi_max_iterations=voi_max_iterations, min_volume_ml=min_volume_ml)
            steps.append(regrow_step)
            regrowth = tuple(details)
        elif method is Method.PERCIST_LIVER:
            assert liver is not None
            steps.append(ProvenanceStep(
                "emlesion.segment.percist_liver",
                rule="1.5 x liver mean + 2 x liver SD",
                inputs={"liver_mean": liver.mean, "liver_sd": liver.sd,
                        "liver_n_voxels": liver.n_voxels, "threshold": t_seed,
                        "units": suv.units}))
        # --- seed search region -------------------------------------------------
        if isinstance(region, Seed):
            lesions = _pick_seed(lesions, region, grid)
            if not lesions:
                warn_external(format_message(
                    f"no lesion contains or lies within {region.radius_mm:g} mm of the seed "
                    f"{region.point_mm}"), SegmentationWarning)
        # --- labels, regions, names -----------------------------------------------
        arr, out, names = _label(lesions, a, grid, anatomy, method, suv)
    step = ProvenanceStep(
        "emlesion.segment.segment_lesions",
        rule=f"method {method.value}, connectivity {connectivity}, min volume "
        f"{min_volume_ml:g} mL",
        inputs={"method": method.value, "seed_method": seed.value, "n_lesions": len(out),
                "suv_series": suv.identity.series_instance_uid, "units": suv.units},
        warnings=rec.as_tuple())
    steps.append(step)
    label_map = LabelMap(arr, grid, names, source=f"emlesion.segment:{method.value}",
                         provenance=tuple(steps))
    return SegmentationResult(label_map, tuple(out), method, liver, ex.used, tuple(steps),
                              regrowth)


@dataclass(frozen=True)
class _Exclusion:
    """The organ masks removed before segmentation and the halo around the avid ones."""

    organ: np.ndarray
    low_organ: np.ndarray
    halo: np.ndarray
    reach: np.ndarray
    used: tuple[str, ...]
    step: ProvenanceStep


def _exclusions(anatomy: Anatomy | None, grid: Grid, exclude: Sequence[str | AnatomyLabel],
                halo_mm: float, max_halo_fraction: float) -> _Exclusion:
    """Step 1 of :func:`segment_lesions`: organ voxels, low-uptake organs, avid-organ halo."""
    wanted = exclusion_labels(exclude)
    organ = np.zeros(grid.shape, bool)
    hot_organ = np.zeros(grid.shape, bool)
    low_organ = np.zeros(grid.shape, bool)
    used: list[str] = []
    missing: list[str] = []
    for ex_name, ex_labels in wanted.items():
        found = False
        for ex_label in ex_labels:
            if anatomy is not None and anatomy.has(ex_label):
                m_organ = anatomy.mask_on(ex_label, grid)
                organ |= m_organ
                if ex_label in LOW_UPTAKE_LABELS:
                    low_organ |= m_organ
                elif (ex_label is AnatomyLabel.HEART
                      and AnatomyLabel.MYOCARDIUM in anatomy.masks):
                    # classical heart with PET: the halo surrounds only its avid part
                    # (myocardial uptake is variable; the blood pool is not avid)
                    m_myo = anatomy.mask_on(AnatomyLabel.MYOCARDIUM, grid)
                    organ |= m_myo
                    hot_organ |= m_myo
                else:
                    hot_organ |= m_organ
                found = True
        (used if found else missing).append(ex_name)
    if wanted and anatomy is None:
        names_not_excluded = ", ".join(sorted(wanted))
        warn_external(format_message(
            f"no CT anatomy: the physiological uptake of {names_not_excluded} is NOT "
            "excluded, and lesion regions and sides are unknown",
            fix="give the PET's CT (--ct CT_DIR on the command line, ct= or anatomy= in "
                "the API)"), SegmentationWarning)
    reach = _ball(halo_mm, grid.spacing_mm)
    halo = (ndi.binary_dilation(hot_organ, reach) & ~organ) if hot_organ.any() \
        else np.zeros(grid.shape, bool)
    step = ProvenanceStep(
        "emlesion.segment.exclusion",
        rule=f"organ voxels removed; halo {halo_mm:g} mm around the avid organs (none "
        f"around {', '.join(sorted(x.value for x in LOW_UPTAKE_LABELS))}); components > "
        f"{max_halo_fraction:.0%} in halo dropped as spill-over",
        inputs={"excluded": used, "unavailable": missing,
                "organ_volume_ml": float(organ.sum() * grid.voxel_volume_ml)})
    return _Exclusion(organ, low_organ, halo, reach, tuple(used), step)


def _references(
    suv: Volume, anatomy: Anatomy | None,
    liver_reference: ReferenceRegionStats | tuple[float, float] | None,
    blood_pool_reference: ReferenceRegionStats | tuple[float, float] | None,
) -> tuple[ReferenceRegionStats | None, ReferenceRegionStats | None]:
    """Step 2 of :func:`segment_lesions`: the liver and blood-pool statistics, as given
    (statistics or ``(mean, sd)``) or measured on ``suv`` in the anatomy's VOIs."""
    liver: ReferenceRegionStats | None
    if isinstance(liver_reference, tuple):
        liver = ReferenceRegionStats(float(liver_reference[0]), float(liver_reference[1]),
                                     0, (math.nan, math.nan, math.nan), math.nan,
                                     "liver", suv.units)
    else:
        liver = liver_reference
    if liver is None and anatomy is not None and anatomy.liver_reference is not None:
        liver = anatomy.liver_reference.reference_stats(suv)
    blood: ReferenceRegionStats | None
    if isinstance(blood_pool_reference, tuple):
        blood = ReferenceRegionStats(float(blood_pool_reference[0]),
                                     float(blood_pool_reference[1]), 0,
                                     (math.nan, math.nan, math.nan), math.nan,
                                     "blood_pool", suv.units)
    else:
        blood = blood_pool_reference
    if blood is None and anatomy is not None and anatomy.blood_pool_reference is not None:
        blood = anatomy.blood_pool_reference.reference_stats(suv)
    return liver, blood


def _seed_threshold(method: Method, seed_method: Method | str | None,
                    liver: ReferenceRegionStats | None) -> tuple[Method, float]:
    """Step 3 of :func:`segment_lesions`: the seed rule and its SUV threshold."""
    if method.is_relative:
        seed = Method(seed_method) if seed_method is not None else (
            Method.PERCIST_LIVER if liver is not None else Method.SUV_2_5)
        if seed.is_relative or (seed is Method.PERCIST_LIVER and liver is None):
            raise SegmentationError(format_message(
                f"seed_method {seed.value} cannot seed a percent-of-max method",
                fix="use suv2.5, suv4.0 or percist-liver"))
    else:
        seed = method
    if seed in _FIXED:
        return seed, _FIXED[seed]
    assert liver is not None  # checked by the caller (PERCIST_LIVER) or above (seed)
    return seed, liver.percist_threshold


def _percent_of_max(
    a: np.ndarray, suv: Volume, lesions: list[tuple[np.ndarray, float, ThresholdRule]],
    method: Method, blood: ReferenceRegionStats | None, *, blood_pool_floor: bool,
    allowed: np.ndarray, halo: np.ndarray, reach: np.ndarray, structure: np.ndarray,
    rim_zone: np.ndarray, anatomy: Anatomy | None, ct: Volume | None, ct_soft_tissue: bool,
    ct_rule: CTSoftTissueRule | None, voi_margin_mm: float, voi_max_iterations: int,
    min_volume_ml: float,
) -> tuple[list[tuple[np.ndarray, float, ThresholdRule]], list[dict[str, Any]], ProvenanceStep]:
    """Step 5 of :func:`segment_lesions` (percent-of-max methods): each candidate regrown at
    ``max(fraction x its SUVmax, blood-pool floor)``, hottest first; floor-limited
    low-contrast lesions delineated on the CT or dropped as bowel uptake (Notes there)."""
    grid = suv.grid
    vox_ml = grid.voxel_volume_ml
    frac = _FRACTION[method]
    floor = blood.mean if (blood_pool_floor and blood is not None) else None
    taken = np.zeros(grid.shape, bool)
    grown: list[tuple[np.ndarray, float, ThresholdRule]] = []
    voi_ball = _ball(voi_margin_mm, grid.spacing_mm)
    details: list[dict[str, Any]] = []
    below_floor = 0
    bowel_uptake = 0
    lungs = (anatomy.mask_on(AnatomyLabel.LUNGS, grid)
             if anatomy is not None and anatomy.has(AnatomyLabel.LUNGS)
             else np.zeros(grid.shape, bool))
    for m, _t, _r in sorted(lesions, key=lambda x: -float(a[x[0]].max())):
        m = m & ~taken
        if not m.any():
            continue
        g, t, info = _regrow(a, m, allowed & ~taken, halo, reach, structure, voi_ball,
                             frac, floor, voi_max_iterations)
        if g is None:
            below_floor += 1
            continue
        if not info["converged"]:
            warn_external(format_message(
                f"the {frac:.0%} region of the lesion with SUVmax {info['suv_max']:.3g} "
                f"still reaches its VOI after {voi_max_iterations} enlargements: "
                "possible leak into adjacent physiological uptake",
                series=suv.identity.series_instance_uid or None,
                fix="check the contour; pass a lesion mask or a tighter search region"),
                SegmentationWarning)
        g = _add_rim(g, a, t, rim_zone & ~taken)
        rule = classify_threshold_rule(method, float(info["suv_max"]), floor)
        floored = rule is ThresholdRule.BLOOD_POOL_FLOOR
        # the floor region is also consumed when the CT replaces it: the rest of it is
        # the adjacent physiological uptake, not another lesion
        consumed = g
        if floored and ct is not None and ct_soft_tissue:
            assert floor is not None
            peak = np.unravel_index(int(np.argmax(np.where(g, a, -np.inf))), a.shape)
            on_ct, ct_info = delineate_on_ct(
                a, grid, ct, g, (int(peak[0]), int(peak[1]), int(peak[2])),
                blood_pool_mean=floor, fraction=frac, allowed=allowed & ~taken,
                rule=ct_rule, gas_region=g & ~lungs)
            info["ct_soft_tissue"] = ct_info
            if on_ct is not None:
                info["floor_n_voxels"] = int(g.sum())
                g = on_ct
                rule = ThresholdRule.CT_SOFT_TISSUE
                info["n_voxels"] = int(g.sum())
            elif (ct_info.get("core_ml") is not None
                  and ct_info.get("gas_ml", 0.0) >= BOWEL_GAS_ML):
                # no soft-tissue nodule under the uptake, and bowel gas in it
                info["dropped"] = "bowel uptake"
                details.append(info)
                bowel_uptake += 1
                taken |= consumed
                centre = grid.index_to_lps(np.asarray(peak, dtype=float))
                warn_external(format_message(
                    f"low-contrast uptake (SUVmax {float(a[peak]):.2f} at LPS "
                    f"({centre[0]:.0f}, {centre[1]:.0f}, {centre[2]:.0f}) mm) dropped "
                    f"as bowel uptake: no soft-tissue core on the CT "
                    f"({ct_info['core_ml']:.2f} mL), {ct_info['gas_ml']:.2f} mL of gas "
                    "under it",
                    series=suv.identity.series_instance_uid or None,
                    fix="pass a lesion mask if this is a lesion, or "
                    "ct_soft_tissue=False"), SegmentationWarning)
                continue
        if g.sum() * vox_ml < min_volume_ml:
            continue
        taken |= g | consumed
        grown.append((g, t, rule))
        details.append(info)
    step = ProvenanceStep(
        "emlesion.segment.percent_of_max",
        rule=f"max({frac:.0%} of each lesion's SUVmax, blood-pool mean) inside a VOI "
        f"= candidate + {voi_margin_mm:g} mm, enlarged to lesion + {voi_margin_mm:g} mm "
        f"until the lesion stops reaching it (<= {voi_max_iterations} times); "
        "component containing the max",
        inputs={"fraction": frac, "thresholds": [t for _, t, _ in grown],
                "blood_pool_floor": floor,
                "blood_pool_floor_rule": (
                    "blood-pool SUVmean" if floor is not None else
                    "none (disabled)" if not blood_pool_floor else
                    "none (no blood-pool reference)"),
                "not_delineated_below_floor": below_floor,
                "dropped_as_bowel_uptake": bowel_uptake,
                "lesions": details})
    return grown, details, step


def _label_maxima(a: np.ndarray, lab: np.ndarray, n: int) -> np.ndarray:
    """SUVmax of labels ``1..n`` (as ``ndi.maximum(a, lab, range(1, n + 1))``, on the
    labelled voxels only: scipy sorts every voxel of the arrays it is given)."""
    inside = lab > 0
    return np.asarray(ndi.maximum(a[inside], lab[inside], np.arange(1, n + 1)), dtype=float)


def _candidates(
    a: np.ndarray, grid: Grid, cand: np.ndarray, halo: np.ndarray, rim_zone: np.ndarray,
    reach: np.ndarray, structure: np.ndarray, seed: Method, t_seed: float, min_volume_ml: float,
    max_halo_fraction: float,
) -> tuple[list[tuple[np.ndarray, float, ThresholdRule]], ProvenanceStep]:
    """Step 4 of :func:`segment_lesions`: seed components outside the halo, hottest first,
    with their halo part attached; small ones and organ spill-over dropped."""
    core = cand & ~halo
    lab, n = ndi.label(core, structure=structure)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    full_lab, n_full = ndi.label(cand, structure=structure)
    # voxels and halo voxels per connected component of the candidates, counted once
    full_sizes = np.bincount(full_lab.ravel(), minlength=n_full + 1)
    full_in_halo = np.bincount(full_lab[halo], minlength=n_full + 1)
    seed_rule = ThresholdRule.FIXED if seed in _FIXED else ThresholdRule.PERCIST_LIVER
    lesions: list[tuple[np.ndarray, float, ThresholdRule]] = []
    dropped_small = dropped_spill = 0
    vox_ml = grid.voxel_volume_ml
    order: list[int] = ([int(v) + 1 for v in np.argsort(-_label_maxima(a, lab, n))]
                        if n else [])
    for i in order:
        if sizes[i] * vox_ml < min_volume_ml:
            dropped_small += 1
            continue
        c = lab == i
        m = _attach_halo(c, cand, halo, reach, structure)
        comp_ids = np.unique(full_lab[c])
        comp_ids = comp_ids[comp_ids > 0]
        if full_in_halo[comp_ids].sum() > max_halo_fraction * full_sizes[comp_ids].sum():
            dropped_spill += 1
            continue
        lesions.append((_add_rim(m, a, t_seed, rim_zone), t_seed, seed_rule))
    step = ProvenanceStep(
        "emlesion.segment.candidates",
        rule=f"{seed.value}: SUV >= {t_seed:.4g}",
        inputs={"threshold": t_seed, "cores": int(n), "kept": len(lesions),
                "dropped_below_min_volume": dropped_small,
                "dropped_as_organ_spill_over": dropped_spill})
    return lesions, step


def _label(
    lesions: list[tuple[np.ndarray, float, ThresholdRule]], a: np.ndarray, grid: Grid,
    anatomy: Anatomy | None, method: Method, suv: Volume,
) -> tuple[np.ndarray, list[Lesion], dict[int, str]]:
    """Last step of :func:`segment_lesions`: labels by decreasing SUVmax, region, side and
    name of each lesion; a warning per floor-limited lesion."""
    lesions.sort(key=lambda x: -float(a[x[0]].max()))
    arr = np.zeros(grid.shape, np.uint16)
    out: list[Lesion] = []
    counters: dict[tuple[Region, Side], int] = {}
    names: dict[int, str] = {}
    vox_ml = grid.voxel_volume_ml
    for k, (m, t, rule) in enumerate(lesions, start=1):
        if anatomy is not None:
            ra = assign_region(m, grid, anatomy)
        else:
            ra = _no_anatomy_assignment(m, grid)
        key = (ra.region, ra.side)
        counters[key] = counters.get(key, 0) + 1
        name = _lesion_name(ra, counters[key])
        arr[m & (arr == 0)] = k
        names[k] = name
        out.append(Lesion(k, name, ra.region, ra.side, int(m.sum()),
                          float(m.sum() * vox_ml), float(a[m].max()), float(t), ra, rule))
        if rule is ThresholdRule.BLOOD_POOL_FLOOR:
            frac = _FRACTION[method]
            warn_external(format_message(
                f"lesion {name}: SUVmax {float(a[m].max()):.2f} is below blood-pool mean / "
                f"{frac:.0%} ({t:.2f} / {frac:g} = {t / frac:.2f}); its boundary is the "
                f"blood-pool floor (SUV {t:.2f}) and its MTV may include adjacent "
                "physiological uptake (bowel, vessels)",
                series=suv.identity.series_instance_uid or None,
                fix="check the contour; pass a lesion mask or a tighter search region"),
                SegmentationWarning)
    return arr, out, names


def _regrow(
    a: np.ndarray, cand: np.ndarray, allowed: np.ndarray, halo: np.ndarray, reach: np.ndarray,
    structure: np.ndarray, voi_ball: np.ndarray, frac: float, floor: float | None,
    max_iterations: int,
) -> tuple[np.ndarray | None, float, dict[str, Any]]:
    """Grow one lesion at ``max(frac x SUVmax, floor)`` from a candidate, enlarging the VOI
    until the lesion no longer reaches it (see :func:`segment_lesions` Notes).

    Returns the lesion mask (None when its SUVmax does not exceed the floor), the
    threshold and a JSON-able record of the iterations.

    The labelling and the dilations run inside the bounding box of the current VOI grown
    by the VOI ball (issue 18): the lesion lies inside its VOI and one enlargement reaches
    at most the ball's half-size beyond it, so the result is the whole-volume result.
    """
    pad = tuple(int(n) // 2 + 1 for n in voi_ball.shape)
    voi = np.zeros(a.shape, bool)
    box = padded_box(cand, pad)
    assert box is not None  # the caller skips empty candidates
    voi[box] = ndi.binary_dilation(cand[box], voi_ball) & allowed[box]
    p = np.unravel_index(int(np.argmax(np.where(cand, a, -np.inf))), a.shape)
    g = cand
    t = math.nan
    converged = False
    iterations = 0
    while True:
        suv_max = float(a[p])
        t = frac * suv_max
        if floor is not None and t < floor:
            if suv_max <= floor:
                return None, floor, {"suv_max": suv_max, "threshold": floor}
            t = floor
        box = padded_box(voi, pad)
        if box is not None and voi[p] and a[p] >= t:
            gl, _ = ndi.label((a[box] >= t) & voi[box], structure=structure)
            gb = gl == gl[tuple(int(i) - int(b.start) for i, b in zip(p, box))]
            g = np.zeros(a.shape, bool)
            g[box] = gb
        else:  # the peak is outside its own region (never seen): whole-volume labelling
            gl, _ = ndi.label((a >= t) & voi, structure=structure)
            g = gl == gl[p]
            box = tuple(slice(None) for _ in a.shape)
            gb = g
        wider = voi.copy()
        wider[box] |= ndi.binary_dilation(gb, voi_ball) & allowed[box]
        hotter = g & (a > a[p])
        if hotter.any():  # the enlarged lesion holds a hotter voxel: re-derive the threshold
            p = np.unravel_index(int(np.argmax(np.where(g, a, -np.inf))), a.shape)
        elif np.array_equal(wider, voi):
            converged = True
            break
        if iterations >= max_iterations:
            break
        voi = wider
        iterations += 1
    inner = g & ~halo
    il, _ = ndi.label(inner, structure=structure)
    if inner[p]:
        inner = il == il[p]
    if inner.any():
        g = _attach_halo(inner, g, halo, reach, structure)
    return g, t, {"suv_max": float(a[p]), "threshold": t, "voi_enlargements": iterations,
                  "converged": converged, "n_voxels": int(g.sum())}


def _pick_seed(lesions: list[tuple[np.ndarray, float, ThresholdRule]], seed: Seed,
               grid: Grid) -> list[tuple[np.ndarray, float, ThresholdRule]]:
    idx = np.rint(grid.lps_to_index(seed.point_mm)).astype(int)
    inside = all(0 <= idx[i] < grid.shape[i] for i in range(3))
    if inside:
        for m, t, rule in lesions:
            if m[tuple(idx)]:
                return [(m, t, rule)]
    best: tuple[float, int] | None = None
    p = np.asarray(seed.point_mm, dtype=float)
    for j, (m, _t, _r) in enumerate(lesions):
        pts = grid.index_to_lps(np.argwhere(m).astype(float))
        d = float(np.min(np.linalg.norm(pts - p, axis=1)))
        if d <= seed.radius_mm and (best is None or d < best[0]):
            best = (d, j)
    return [lesions[best[1]]] if best is not None else []


def _parse_method(method: Method | str) -> Method:
    """``method`` as a :class:`Method`, or a SegmentationError naming the valid ones."""
    try:
        return Method(method)
    except ValueError:
        raise SegmentationError(format_message(
            f"unknown segmentation method {method!r}",
            fix=f"use one of {[m.value for m in Method]}")) from None


def _lesion_name(ra: RegionAssignment, n: int) -> str:
    """``"<region> <side> <n>"``, or ``"lesion <n>"`` when region and side are unknown."""
    if ra.region is Region.UNKNOWN and ra.side is Side.UNKNOWN:
        return f"lesion {n}"
    return f"{ra.region.value} {ra.side.value} {n}"


def _no_anatomy_assignment(m: np.ndarray, grid: Grid) -> RegionAssignment:
    pts = grid.index_to_lps(np.argwhere(m).astype(float))
    c = pts.mean(axis=0)
    return RegionAssignment(Region.UNKNOWN, Side.UNKNOWN,
                            (float(c[0]), float(c[1]), float(c[2])), math.nan, math.nan,
                            "no anatomy: region and side unknown")
