"""Lesion sites: where a tracked lesion is looked for at every later timepoint.

*Measure the lesion, not the threshold.* Once a lesion has been tracked, every later scan is
read at its site, whether or not a threshold segmentation finds it again: a regressing mass
whose uptake fell below the segmentation threshold, or a residual soft-tissue mass without
uptake, must be measured, not dropped.

The **site** of a track at a timepoint is the union of the track's lesion masks at every
earlier timepoint where it was detected, mapped onto this timepoint's PET grid through the CT
registrations that tracking computed (earlier timepoint -> baseline -> this timepoint), and
dilated by :data:`SITE_MARGIN_MM` for the registration uncertainty. It is clipped to the body
and excludes the physiological organs given (bladder, kidneys, ureters, heart, brain, bowel:
the structures that :func:`emlesion.segment.segment_lesions` excludes). The undilated union
is the **footprint**, the region the former lesion occupied.

A site whose footprint lies for less than :data:`MIN_FIELD_OF_VIEW_FRACTION` inside the
follow-up field of view is *not evaluable*; a site mapped through a registration whose
quality check failed is flagged unreliable (:attr:`TrackSite.reliable`).

Public API
----------
:func:`build_track_sites`
    Tracks + per-timepoint context -> ``{track_id: {timepoint: TrackSite}}``.
:func:`map_mask`
    One boolean mask from one timepoint's grid onto another's, through the registrations.
:func:`registration_map`
    The map between two timepoints' spaces that :func:`map_mask` takes.

:class:`TrackSite`, :class:`SiteContext`

References
----------
.. [1] Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised RECIST
   guideline (version 1.1). Eur J Cancer 2009;45:228-247 (every target lesion is measured at
   every follow-up; a lesion that disappeared is recorded as 0 mm, one too small to measure
   as 5 mm: it is never simply left out).
.. [2] Wahl RL et al. From RECIST to PERCIST. J Nucl Med 2009;50 Suppl 1:122S-150S (the
   residual uptake of a responding lesion is followed, whatever its level).
.. [3] Boellaard R et al. FDG PET/CT: EANM procedure guidelines for tumour imaging: version
   2.0. Eur J Nucl Med Mol Imaging 2015;42:328-54 (PET spatial resolution of modern systems,
   FWHM about 4-7 mm).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from emlesion.errors import GeometryError, InconsistentStudyError, format_message
from emlesion.io import Grid, LabelMap
from emlesion.io.geometry import ball_structure
from emlesion.provenance import jsonable
from emlesion.track.registration import Registration
from emlesion.track.tracking import TrackingResult, TrackState

__all__ = [
    "MIN_FIELD_OF_VIEW_FRACTION",
    "SITE_MARGIN_MM",
    "SiteContext",
    "TrackSite",
    "build_track_sites",
    "map_mask",
    "registration_map",
]

#: Margin (mm) added around the mapped footprint of a tracked lesion for the uncertainty of
#: the rigid CT-to-CT registration at the lesion. The recovered patient shift of the bundled
#: sample is within 0.5 mm at the lesions, and rigid registration of abdominal follow-up CTs
#: is typically accurate to a few millimetres near the spine and pelvis but not in mobile
#: organs; 5 mm is about one PET voxel (4 mm) plus that residual, and below the PET FWHM
#: (about 6 mm), so the margin does not reach tissue whose uptake could not spill into the
#: footprint anyway [3]. The PET readout uses the footprint without this margin: on the real
#: QIN-HEADNECK PET a 5 mm margin raised the SUVmax of 2 of the 11 expert lesions (+8.7 %,
#: +53.9 %) from hotter neighbours (``benchmarks/eval_sites_real.py``).
SITE_MARGIN_MM = 5.0
#: A site whose footprint lies for less than this fraction inside the follow-up PET field of
#: view is not evaluable (most of the former lesion was not scanned).
MIN_FIELD_OF_VIEW_FRACTION = 0.5


@dataclass(frozen=True)
class SiteContext:
    """What :func:`build_track_sites` needs of one timepoint.

    Parameters
    ----------
    label : str
        Timepoint label (as in the :class:`~emlesion.track.TrackingResult`).
    lesions : LabelMap
        The timepoint's lesion labels (its PET grid).
    body : ndarray of bool, optional
        Body mask on ``lesions.grid``; the site is clipped to it.
    exclude : ndarray of bool, optional
        Physiological organs on ``lesions.grid``; removed from the site.
    """

    label: str
    lesions: LabelMap
    body: np.ndarray | None = None
    exclude: np.ndarray | None = None

    @property
    def grid(self) -> Grid:
        """The PET grid of the timepoint."""
        return self.lesions.grid


@dataclass(frozen=True, eq=False, repr=False)
class TrackSite:
    """Where one track is read at one timepoint.

    Parameters
    ----------
    track_id, timepoint : str
        The track and the timepoint.
    mask : ndarray of bool
        The site (footprint dilated by ``margin_mm``, clipped to the body, organs removed) on
        the timepoint's PET grid. At the first appearance of the track it is the lesion's own
        mask.
    footprint : ndarray of bool
        The union of the earlier masks mapped here, without margin (the lesion's own mask at
        its first appearance).
    grid : Grid
        The grid of ``mask`` and ``footprint``.
    sources : tuple of str
        Timepoints whose masks form the footprint (empty at the first appearance).
    margin_mm : float
        Dilation applied.
    field_of_view_fraction : float
        Fraction of the mapped footprint voxels that fall inside this timepoint's grid.
    evaluable : bool
        False when the site lies outside the field of view (``reason`` says why).
    reliable : bool
        False when a registration used to map the site failed its quality check.
    reason : str
        How the site was made, or why it is not evaluable / not reliable.
    """

    track_id: str
    timepoint: str
    mask: np.ndarray = field(repr=False)
    footprint: np.ndarray = field(repr=False)
    grid: Grid = field(repr=False)
    sources: tuple[str, ...] = ()
    margin_mm: float = SITE_MARGIN_MM
    field_of_view_fraction: float = 1.0
    evaluable: bool = True
    reliable: bool = True
    reason: str = ""

    def __post_init__(self) -> None:
        for name in ("mask", "footprint"):
            arr = np.asarray(getattr(self, name), dtype=bool)
            if arr.shape != self.grid.shape:
                raise GeometryError(format_message(
                    f"site {self.track_id}@{self.timepoint}: {name} shape {arr.shape} does not "
                    f"match its grid {self.grid.shape}"))
            arr = arr.copy()
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "sources", tuple(self.sources))

    @property
    def voi_ml(self) -> float:
        """Volume of the site mask (mL)."""
        return float(self.mask.sum()) * self.grid.voxel_volume_ml

    @property
    def first_appearance(self) -> bool:
        """True at the timepoint where the track first appears (the site is the lesion)."""
        return not self.sources

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (the masks are not included)."""
        return {
            "track_id": self.track_id,
            "timepoint": self.timepoint,
            "sources": list(self.sources),
            "margin_mm": jsonable(self.margin_mm),
            "voi_ml": jsonable(self.voi_ml),
            "footprint_ml": jsonable(float(self.footprint.sum()) * self.grid.voxel_volume_ml),
            "field_of_view_fraction": jsonable(self.field_of_view_fraction),
            "evaluable": self.evaluable,
            "reliable": self.reliable,
            "reason": self.reason,
        }

    def __repr__(self) -> str:
        state = "" if self.evaluable else ", NOT EVALUABLE"
        state += "" if self.reliable else ", unreliable"
        src = "+".join(self.sources) or "own lesion"
        return (f"TrackSite({self.track_id}@{self.timepoint}: {self.voi_ml:.1f} mL from {src}"
                f"{state})")


# ---------------------------------------------------------------------------- mapping
def _to_baseline(registrations: Mapping[str, Registration], label: str,
                 baseline: str) -> np.ndarray:
    """4 x 4 homogeneous map from ``label``'s space to the baseline space."""
    if label == baseline:
        return np.eye(4)
    reg = registrations.get(label)
    if reg is None:
        raise InconsistentStudyError(format_message(
            f"no registration of timepoint {label!r} to the baseline {baseline!r}",
            fix="track the study with emlesion.track.track_lesions first"))
    return np.linalg.inv(reg.homogeneous)


def _between(registrations: Mapping[str, Registration], source: str, target: str,
             baseline: str) -> np.ndarray:
    """4 x 4 map of points from the ``target`` space to the ``source`` space.

    Registrations map baseline (fixed) points into a follow-up (moving) space, ``q = A p + o``.
    A target point goes to the baseline (inverse of the target's registration) and from
    there into the source (the source's registration)."""
    target_to_base = _to_baseline(registrations, target, baseline)
    base_to_source = np.linalg.inv(_to_baseline(registrations, source, baseline))
    out: np.ndarray = base_to_source @ target_to_base
    return out


def registration_map(tracking: TrackingResult, source: str, target: str) -> np.ndarray:
    """4 x 4 map of LPS points from timepoint ``target``'s space into ``source``'s.

    Composed through the baseline from the registrations of ``tracking`` (baseline points
    map into a follow-up's space): the ``target_to_source`` argument of :func:`map_mask` that
    brings a mask of ``source`` onto ``target``'s grid.

    Parameters
    ----------
    tracking : TrackingResult
        Holds the registrations (baseline -> each follow-up).
    source, target : str
        Timepoint labels.

    Returns
    -------
    ndarray
        ``(4, 4)`` homogeneous matrix (the identity when ``source == target``).

    Raises
    ------
    InconsistentStudyError
        No registration for ``source`` or ``target`` (and it is not the baseline).

    Examples
    --------
    >>> m = registration_map(tracking, "baseline", "month3")  # doctest: +SKIP
    >>> mapped, fov = map_mask(mask, base_grid, month3_grid, m)  # doctest: +SKIP
    """
    if source == target:
        return np.eye(4)
    return _between(tracking.registrations, source, target, tracking.baseline)


def map_mask(
    mask: np.ndarray,
    source_grid: Grid,
    target_grid: Grid,
    target_to_source: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Bring a boolean mask from one grid onto another through a rigid/affine map.

    Parameters
    ----------
    mask : ndarray of bool
        Mask on ``source_grid``.
    source_grid, target_grid : Grid
        Grids of the input and of the output.
    target_to_source : (4, 4) ndarray, optional
        Homogeneous map of LPS points from the target space to the source space (the
        resampling direction); identity when omitted (same frame of reference).

    Returns
    -------
    mapped : ndarray of bool
        Target voxels at least half covered by the mapped mask (linear interpolation of the
        0/1 mask, threshold 0.5). When that is empty but the mask lands in the field of view,
        the target voxel nearest to the mapped centroid, so that a small lesion is not lost.
    field_of_view_fraction : float
        Fraction of the source mask's voxel centres that map inside the target grid.
    """
    src = np.asarray(mask, dtype=bool)
    if src.shape != source_grid.shape:
        raise GeometryError(format_message(
            f"mask shape {src.shape} does not match its grid {source_grid.shape}"))
    m = np.eye(4) if target_to_source is None else np.asarray(target_to_source, float)
    idx = np.argwhere(src)
    if idx.size == 0:
        return np.zeros(target_grid.shape, bool), 0.0
    # field of view: source voxel centres mapped into the target (inverse map)
    pts = source_grid.index_to_lps(idx.astype(float))
    inv = np.linalg.inv(m)
    tpts = pts @ inv[:3, :3].T + inv[:3, 3]
    tidx = target_grid.lps_to_index(tpts)
    inside = np.all((tidx > -0.5) & (tidx < np.asarray(target_grid.shape) - 0.5), axis=1)
    fov = float(inside.mean())
    # resample the 0/1 mask, cropped to its bounding box (plus a voxel) for speed
    lo = np.maximum(idx.min(axis=0) - 1, 0)
    hi = np.minimum(idx.max(axis=0) + 2, np.asarray(src.shape))
    crop = src[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.float32)
    img = sitk.GetImageFromArray(crop)
    img.SetSpacing(source_grid.spacing_mm)
    img.SetDirection(source_grid.direction)
    img.SetOrigin(tuple(float(v) for v in source_grid.index_to_lps(
        np.asarray([[float(lo[0]), float(lo[1]), float(lo[2])]]))[0]))
    tx = sitk.AffineTransform(3)
    tx.SetMatrix(tuple(float(v) for v in m[:3, :3].ravel()))
    tx.SetTranslation(tuple(float(v) for v in m[:3, 3]))
    out = sitk.Resample(img, target_grid.reference_image(), tx, sitk.sitkLinear, 0.0,
                        sitk.sitkFloat32)
    mapped: np.ndarray = sitk.GetArrayFromImage(out) >= 0.5
    if not mapped.any() and inside.any():
        c = np.rint(tidx[inside].mean(axis=0)).astype(int)
        c = np.clip(c, 0, np.asarray(target_grid.shape) - 1)
        mapped[tuple(c)] = True
    return mapped, fov


# ---------------------------------------------------------------------------- sites
def build_track_sites(
    contexts: Sequence[SiteContext],
    tracking: TrackingResult,
    *,
    margin_mm: float = SITE_MARGIN_MM,
    min_field_of_view_fraction: float = MIN_FIELD_OF_VIEW_FRACTION,
) -> dict[str, dict[str, TrackSite]]:
    """The site of every track at every timepoint from its first appearance on.

    Parameters
    ----------
    contexts : sequence of SiteContext
        One per timepoint, in the order of ``tracking.timepoints``.
    tracking : TrackingResult
        Tracks and the registrations (baseline -> follow-up) that map the masks.
    margin_mm : float
        Dilation of the mapped footprint (default :data:`SITE_MARGIN_MM`).
    min_field_of_view_fraction : float
        Below this fraction of the footprint inside the follow-up grid, the site is not
        evaluable.

    Returns
    -------
    dict
        ``{track_id: {timepoint: TrackSite}}``; timepoints before a track's first appearance
        have no site.

    Notes
    -----
    At a timepoint where the track is detected, its own lesion mask is also part of the
    site, so that a growing lesion is read whole. A merged track (coalesced into another
    track's lesion) keeps its own footprint. The map from an earlier timepoint to a later one
    goes through the baseline (registrations are baseline -> follow-up), so a month-1 mask
    reaches month 3 as ``registration[month3] o registration[month1]^-1``.
    """
    labels = [c.label for c in contexts]
    if tuple(labels) != tuple(tracking.timepoints):
        raise InconsistentStudyError(format_message(
            f"site contexts {labels} do not match the tracked timepoints "
            f"{list(tracking.timepoints)}", fix="pass one SiteContext per tracked timepoint"))
    if not margin_mm >= 0:
        raise InconsistentStudyError(format_message(f"margin_mm must be >= 0, got {margin_mm}"))
    baseline = tracking.baseline
    regs = tracking.registrations
    failed = {k for k, r in regs.items() if r.quality is not None and not r.quality.passed}
    out: dict[str, dict[str, TrackSite]] = {}
    for track in tracking.tracks:
        sites: dict[str, TrackSite] = {}
        earlier: list[tuple[int, tuple[int, ...]]] = []  # (timepoint index, labels)
        for k, ctx in enumerate(contexts):
            point = track.point(ctx.label)
            own = np.isin(np.asarray(ctx.lesions.array), point.labels) if point.labels \
                else np.zeros(ctx.grid.shape, bool)
            if not earlier and not point.state.detected:
                continue  # before the first appearance
            if not earlier:
                sites[ctx.label] = TrackSite(
                    track.id, ctx.label, own, own, ctx.grid, (), 0.0, 1.0, True, True,
                    "the track's own lesion mask (first appearance)")
                earlier.append((k, point.labels))
                continue
            footprint = np.zeros(ctx.grid.shape, bool)
            fov_num = fov_den = 0.0
            unreliable: list[str] = []
            for j, labs in earlier:
                src = contexts[j]
                src_mask = np.isin(np.asarray(src.lesions.array), labs)
                try:
                    tmat = _between(regs, src.label, ctx.label, baseline)
                except InconsistentStudyError:
                    tmat = np.eye(4)
                    unreliable.append(f"no registration between {src.label} and {ctx.label}")
                mapped, fov = map_mask(src_mask, src.grid, ctx.grid, tmat)
                n = float(src_mask.sum())
                fov_num += fov * n
                fov_den += n
                footprint |= mapped
                unreliable += [f"registration of {t} failed its quality check"
                               for t in (src.label, ctx.label) if t in failed]
            fov_fraction = fov_num / fov_den if fov_den else 0.0
            site = footprint.copy()
            if margin_mm > 0 and site.any():
                site = ndi.binary_dilation(site, structure=ball_structure(
                    margin_mm, ctx.grid.spacing_mm))
            site |= own
            footprint |= own
            if ctx.body is not None:
                site &= np.asarray(ctx.body, bool) | own
            if ctx.exclude is not None:
                site &= ~np.asarray(ctx.exclude, bool) | own
            srcs = tuple(contexts[j].label for j, _ in earlier)
            evaluable = fov_fraction >= min_field_of_view_fraction and bool(site.any())
            reason = (f"union of the track's masks at {', '.join(srcs)} mapped through the CT "
                      f"registrations, dilated {margin_mm:g} mm, clipped to the body, organs "
                      "excluded")
            if not evaluable:
                reason = (f"not evaluable: only {100 * fov_fraction:.0f} % of the former lesion "
                          f"({', '.join(srcs)}) lies inside the field of view of {ctx.label} "
                          f"(at least {100 * min_field_of_view_fraction:.0f} % needed)")
            reliable = not unreliable
            if not reliable:
                reason += "; unreliable: " + "; ".join(dict.fromkeys(unreliable))
            sites[ctx.label] = TrackSite(track.id, ctx.label, site, footprint, ctx.grid, srcs,
                                         float(margin_mm), fov_fraction, evaluable, reliable,
                                         reason)
            if point.labels and (point.state.detected or point.state is TrackState.MERGED):
                earlier.append((k, point.labels))
        out[track.id] = sites
    return out
