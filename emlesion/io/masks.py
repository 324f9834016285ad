"""Masks from DICOM SEG, DICOM RTSTRUCT and NIfTI label maps, on a reference grid.

:func:`load_mask` is the single entry point: it recognises the format (DICOM by
``SOPClassUID``, NIfTI by the ``.nii`` / ``.nii.gz`` suffix), reads the segments,
puts them on the grid of a reference image (usually the PET) and returns a
:class:`~emlesion.io.labelmap.LabelMap` whose labels carry the segment names.
The per-format readers are :func:`emlesion.io.seg.read_seg`,
:func:`emlesion.io.rtstruct.rasterize_rtstruct` and
:func:`emlesion.io.nifti.read_nifti_labels`.

Every reader maps the mask to the reference **by patient position** (LPS), never
by slice number, so a mask drawn on one series applies to any other series of
the same frame of reference (a cropped or resampled copy, the CT of a PET/CT).

Slice rule shared by SEG and RTSTRUCT
-------------------------------------
A SEG frame or an RTSTRUCT contour describes a plane. It stands for the slab of
half-width ``w`` around that plane, where ``w`` is half the spacing of the
mask's own planes (SEG ``SpacingBetweenSlices``, else the smallest gap between
distinct planes; for a single plane, half the reference slice spacing). A
reference slice takes the mask of the nearest plane of the segment whose
distance from the slice centre is at most ``w``. On the series the mask was
drawn on, this is "the slice the plane lies on", and it tolerates planes a few
hundredths of a millimetre off the slices; on a finer or coarser grid it is
nearest-neighbour interpolation along the slice normal.

Overlaps
--------
DICOM SEG segments and RTSTRUCT ROIs may overlap, a label array cannot. The
``overlap`` argument (:class:`Overlap`) says which segment keeps a shared voxel;
the rule and the number of voxels reassigned are recorded in the provenance and
reported with a :class:`MaskWarning`.

References
----------
.. [1] DICOM PS3.3 A.51 / C.8.20, Segmentation IOD and module.
.. [2] DICOM PS3.3 C.8.8.6, ROI Contour module (CLOSED_PLANAR contours, holes).
.. [3] NIfTI-1 data format, ``qform`` / ``sform`` (RAS+ world coordinates).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emlesion.errors import (
    DicomReadError,
    EmlesionError,
    MaskError,
    MaskWarning,
    SeriesNotFoundError,
    UnsupportedDataError,
    format_message,
    warn_external,
)
from emlesion.io.dicom import open_regular_file
from emlesion.io.geometry import Grid
from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import Volume
from emlesion.provenance import ProvenanceStep

__all__ = [
    "RTSTRUCT_SOP_CLASS_UID",
    "SEG_SOP_CLASS_UID",
    "MaskFormat",
    "MaskReference",
    "MaskSegment",
    "MaskWarning",
    "Overlap",
    "assign_planes_to_slices",
    "build_labelmap",
    "coerce_enum",
    "count_inside",
    "detect_mask_format",
    "load_mask",
    "plane_spacing_mm",
    "reference_of",
    "require_regular_file",
    "require_same_frame_of_reference",
    "select_segments",
    "slice_normal_positions_mm",
    "unique_segment_names",
    "warn_empty_segments",
    "warn_outside",
]

SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.481.3"


class MaskFormat(str, enum.Enum):
    """File formats :func:`load_mask` reads."""

    SEG = "seg"
    RTSTRUCT = "rtstruct"
    NIFTI = "nifti"


class Overlap(str, enum.Enum):
    """Which segment keeps a voxel claimed by several segments.

    ``ERROR`` refuses; ``FIRST`` / ``LAST`` follow the order of the segments in the
    file; ``SMALLEST`` (default of :func:`load_mask`) lets the smaller segment win,
    so a lesion nested inside a larger structure stays visible; ``LARGEST`` the
    opposite.
    """

    ERROR = "error"
    FIRST = "first"
    LAST = "last"
    SMALLEST = "smallest"
    LARGEST = "largest"


# ---------------------------------------------------------------------- shared helpers
# The building blocks the three readers (:mod:`emlesion.io.seg`, :mod:`emlesion.io.rtstruct`,
# :mod:`emlesion.io.nifti`) share; public so that a reader of another format can use them.
@dataclass(frozen=True)
class MaskSegment:
    """One segment on the reference grid before labels are assigned.

    Parameters
    ----------
    number : int
        Segment number (SEG SegmentNumber, RTSTRUCT ROINumber, NIfTI label value); it
        becomes the label value.
    name : str
        Segment name (made unique with :func:`unique_segment_names`).
    mask : ndarray of bool
        The segment on the reference grid (shape of the reference grid).
    """

    number: int
    name: str
    mask: np.ndarray  # bool, reference grid shape


@dataclass(frozen=True)
class MaskReference:
    """The image a mask is put on (:func:`reference_of`).

    Parameters
    ----------
    grid : Grid
        Its grid.
    frame_of_reference_uid : str
        Its FrameOfReferenceUID (empty for a bare grid: no check possible).
    label : str
        How messages name it.
    """

    grid: Grid
    frame_of_reference_uid: str
    label: str


def coerce_enum(value: Any, enum_cls: type[enum.Enum], argument: str) -> Any:
    """A member of ``enum_cls`` from a member or its (case-insensitive) value.

    Parameters
    ----------
    value : enum member or str
        What the caller passed.
    enum_cls : type of Enum
        The enumeration (:class:`Overlap`, ...).
    argument : str
        Name of the argument, for the message.

    Returns
    -------
    enum member

    Raises
    ------
    MaskError
        ``value`` is not one of the members.
    """
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(str(value).lower())
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_cls)
        raise MaskError(
            format_message(f"{argument}={value!r} is not one of {allowed}",
                           fix=f"pass one of {allowed}")
        ) from None


def reference_of(reference: Volume | Grid) -> MaskReference:
    """The :class:`MaskReference` of the image (or bare grid) a mask is put on.

    Parameters
    ----------
    reference : Volume or Grid
        The reference image (its frame of reference is checked) or its grid (not checked).

    Returns
    -------
    MaskReference

    Raises
    ------
    MaskError
        ``reference`` is neither a Volume nor a Grid.
    """
    if isinstance(reference, Volume):
        return MaskReference(reference.grid, reference.identity.frame_of_reference_uid,
                          reference.identity.label)
    if isinstance(reference, Grid):
        return MaskReference(reference, "", "reference grid")
    raise MaskError(
        format_message(
            f"reference must be an emlesion Volume or Grid, got {type(reference).__name__}",
            fix="load the image the mask belongs to with emlesion.io.load_pet (or pass its .grid)",
        )
    )


def require_same_frame_of_reference(
    mask_uids: Sequence[str], ref: MaskReference, source: str, check: bool
) -> None:
    """Refuse a mask whose FrameOfReferenceUID differs from the reference volume's.

    Parameters
    ----------
    mask_uids : sequence of str
        FrameOfReferenceUIDs the mask names (empty strings are ignored).
    ref : MaskReference
        The reference.
    source : str
        The mask file, for the message.
    check : bool
        False skips the check (the user knows the two are registered).

    Raises
    ------
    MaskError
        The mask names frames of reference, the reference has one, and it is not among them.
    """
    uids = {u for u in mask_uids if u}
    if not check or not ref.frame_of_reference_uid or not uids:
        return
    if ref.frame_of_reference_uid not in uids:
        raise MaskError(
            format_message(
                f"the mask is in frame of reference {sorted(uids)[0]} but the reference image "
                f"{ref.label} is in {ref.frame_of_reference_uid}: positions are not comparable",
                series=source,
                attribute="FrameOfReferenceUID (0020,0052)",
                fix="pass the image series the mask was drawn on (or one of its frame of "
                "reference); use check_frame_of_reference=False only if the two are known "
                "to be registered",
            )
        )


def slice_normal_positions_mm(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Unit normal of the reference slices and the position (mm) of each slice along it.

    Parameters
    ----------
    grid : Grid
        The reference grid.

    Returns
    -------
    normal : ndarray
        Unit slice normal (third column of the direction matrix), LPS.
    positions_mm : ndarray
        ``(nz,)`` position of each slice centre along ``normal`` (mm).
    """
    normal = grid.direction_matrix[:, 2]
    k = np.arange(grid.shape[0], dtype=float)
    z0 = float(np.dot(np.asarray(grid.origin_mm), normal))
    return normal, z0 + k * grid.spacing_mm[2]


def assign_planes_to_slices(
    plane_positions_mm: np.ndarray,
    slice_positions_mm: np.ndarray,
    half_width_mm: float,
) -> np.ndarray:
    """For each reference slice, the index of the nearest plane within ``half_width_mm``, or -1.

    Ties (a slice exactly between two planes) go to the plane listed first after sorting
    by position, i.e. the one at lower position. This is the slice rule of the module
    notes, shared by SEG frames and RTSTRUCT contours.

    Parameters
    ----------
    plane_positions_mm : ndarray
        Position (mm) of each mask plane along the slice normal.
    slice_positions_mm : ndarray
        Position (mm) of each reference slice along the normal
        (:func:`slice_normal_positions_mm`).
    half_width_mm : float
        Half-width of the slab a plane stands for (1e-6 mm tolerance).

    Returns
    -------
    ndarray of int64
        ``(nz,)`` plane index per slice, -1 where no plane is close enough.
    """
    out = np.full(slice_positions_mm.shape, -1, dtype=np.int64)
    if plane_positions_mm.size == 0:
        return out
    order = np.argsort(plane_positions_mm, kind="stable")
    sorted_pos = plane_positions_mm[order]
    distance = np.abs(slice_positions_mm[:, None] - sorted_pos[None, :])
    nearest = np.argmin(distance, axis=1)
    ok = distance[np.arange(len(slice_positions_mm)), nearest] <= half_width_mm + 1e-6
    out[ok] = order[nearest[ok]]
    return out


def plane_spacing_mm(positions_mm: np.ndarray, cluster_tol_mm: float) -> float | None:
    """Smallest gap between distinct planes (planes closer than ``cluster_tol_mm`` are one).

    Parameters
    ----------
    positions_mm : ndarray
        Plane positions along the slice normal (mm), any order.
    cluster_tol_mm : float
        Gaps up to this are not gaps (the same plane).

    Returns
    -------
    float or None
        The spacing (mm), ``None`` for fewer than two distinct planes.
    """
    if positions_mm.size < 2:
        return None
    unique = np.sort(positions_mm)
    gaps = np.diff(unique)
    gaps = gaps[gaps > cluster_tol_mm]
    return float(gaps.min()) if gaps.size else None


def select_segments(
    available: Sequence[tuple[int, str]],
    segments: Sequence[int | str] | None,
    source: str,
    attribute: str,
) -> list[int]:
    """Segment numbers to keep, in file order, from numbers or (case-insensitive) names.

    Parameters
    ----------
    available : sequence of (int, str)
        ``(number, name)`` of every segment of the file, in file order.
    segments : int, str, sequence of them, or None
        What the user asked for; ``None`` keeps every segment.
    source : str
        The mask file, for the message.
    attribute : str
        The DICOM attribute that lists the segments, for the message.

    Returns
    -------
    list of int

    Raises
    ------
    MaskError
        A requested number or name is not in the file.
    """
    if segments is None:
        return [n for n, _ in available]
    if isinstance(segments, (str, int)):
        segments = [segments]
    by_number = {n for n, _ in available}
    wanted: set[int] = set()
    for item in segments:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if int(item) not in by_number:
                raise MaskError(_missing_segment_message(item, available, source, attribute))
            wanted.add(int(item))
            continue
        matches = [n for n, name in available if name.casefold() == str(item).casefold()]
        if not matches:
            raise MaskError(_missing_segment_message(item, available, source, attribute))
        wanted.update(matches)
    return [n for n, _ in available if n in wanted]


def _missing_segment_message(
    item: object, available: Sequence[tuple[int, str]], source: str, attribute: str
) -> str:
    listing = ", ".join(f"{n}: {name!r}" for n, name in available) or "none"
    return format_message(
        f"segment {item!r} is not in the mask (available: {listing})",
        series=source,
        attribute=attribute,
        fix="pass segment numbers or names from the list above",
    )


def unique_segment_names(pairs: Sequence[tuple[int, str]]) -> dict[int, str]:
    """Names made unique: a name used by several segments gets ``" #<number>"`` appended.

    Parameters
    ----------
    pairs : sequence of (int, str)
        ``(number, name)`` of the segments.

    Returns
    -------
    dict of int to str
        Number -> unique name.

    Examples
    --------
    >>> unique_segment_names([(1, "node"), (2, "node"), (3, "liver")])
    {1: 'node #1', 2: 'node #2', 3: 'liver'}
    """
    counts: dict[str, int] = {}
    for _, name in pairs:
        counts[name] = counts.get(name, 0) + 1
    return {n: (f"{name} #{n}" if counts[name] > 1 else name) for n, name in pairs}


def _combine(
    segments: Sequence[MaskSegment],
    grid: Grid,
    overlap: Overlap,
    source: str,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Paint segments into one uint16 label array (label = segment number).

    Returns the array and a JSON-able summary of the overlap resolution. Emits a
    :class:`MaskWarning` when voxels were claimed by several segments.
    """
    labels = np.zeros(grid.shape, dtype=np.uint16)
    if not segments:
        return labels, {"overlap_voxels": 0}
    for seg in segments:
        if not 0 < seg.number <= np.iinfo(np.uint16).max:
            raise MaskError(
                format_message(
                    f"segment number {seg.number} ({seg.name!r}) cannot be a uint16 label",
                    series=source,
                    fix="select the segments to load with segments=[...]",
                )
            )
    claims = np.zeros(grid.shape, dtype=np.uint16)
    for seg in segments:
        claims += seg.mask
    shared = claims > 1
    n_shared = int(shared.sum())
    sizes = {seg.number: int(seg.mask.sum()) for seg in segments}
    if n_shared and overlap is Overlap.ERROR:
        pairs = [
            f"{a.name!r}/{b.name!r}: {int(np.count_nonzero(a.mask & b.mask))} voxels"
            for i, a in enumerate(segments)
            for b in segments[i + 1 :]
            if np.any(a.mask & b.mask)
        ]
        raise MaskError(
            format_message(
                f"{n_shared} voxels belong to several segments ({'; '.join(pairs)}) and a label "
                "map holds one label per voxel",
                series=source,
                fix="pass overlap='smallest', 'largest', 'first' or 'last', or load the "
                "overlapping segments separately with segments=[...]",
            )
        )
    # Paint lowest priority first, so that the highest-priority segment is painted last.
    order = list(segments)
    if overlap is Overlap.FIRST:
        order = order[::-1]
    elif overlap is Overlap.SMALLEST:
        order = sorted(order, key=lambda s: -sizes[s.number])
    elif overlap is Overlap.LARGEST:
        order = sorted(order, key=lambda s: sizes[s.number])
    for seg in order:
        labels[seg.mask] = seg.number
    kept = {seg.number: int(np.count_nonzero(labels == seg.number)) for seg in segments}
    lost = {seg.number: sizes[seg.number] - kept[seg.number] for seg in segments}
    summary: dict[str, Any] = {
        "overlap": overlap.value,
        "overlap_voxels": n_shared,
        "segment_voxels": sizes,
    }
    if n_shared:
        lost_text = ", ".join(
            f"{s.name!r} lost {lost[s.number]}" for s in segments if lost[s.number]
        )
        summary["voxels_lost"] = {k: v for k, v in lost.items() if v}
        warn_external(
            format_message(
                f"{n_shared} voxels belong to several segments; resolved by overlap="
                f"'{overlap.value}' ({lost_text})",
                series=source,
                fix="load overlapping segments separately with segments=[...] to keep each whole",
            ),
            MaskWarning,
        )
    return labels, summary


def require_regular_file(path: Path) -> None:
    """Refuse a mask path that is not a regular file within the size cap.

    Named pipes, devices, sockets and links to them would block or never end a read (see
    :func:`emlesion.io.dicom.open_regular_file`).

    Raises
    ------
    MaskError
        Not a regular file, unreadable, or above the size cap.
    """
    try:
        with open_regular_file(path):
            pass
    except DicomReadError as exc:
        raise MaskError(str(exc).replace(". Fix: ", f" [series {path}]. Fix: ", 1)
                        if ". Fix: " in str(exc) else str(exc)) from exc


def warn_outside(n_total: int, n_inside: int, source: str, what: str = "mask voxels") -> None:
    """Warn, with the fraction lost, when part of a mask lies outside the reference grid.

    Parameters
    ----------
    n_total : int
        Voxels (or contour points) of the mask in its own file.
    n_inside : int
        How many of them lie inside the reference grid.
    source : str
        The mask file, for the message.
    what : str
        What was counted.

    Warns
    -----
    MaskWarning
        When ``n_inside < n_total``.
    """
    if n_total <= 0 or n_inside >= n_total:
        return
    lost = n_total - n_inside
    warn_external(
        format_message(
            f"the mask lies partly outside the reference grid: {n_inside:,} of {n_total:,} "
            f"{what} kept ({100.0 * n_inside / n_total:.1f} %), {lost:,} "
            f"({100.0 * lost / n_total:.1f} %) outside and dropped",
            series=source,
            fix="pass the image the mask was drawn on (or one that covers the whole mask); "
            "the volumes measured from this mask miss the part outside",
        ),
        MaskWarning,
    )


def count_inside(points_lps: np.ndarray, grid: Grid) -> int:
    """How many LPS points (``(n, 3)`` mm) fall inside ``grid`` (voxel centres +- half a
    voxel)."""
    if len(points_lps) == 0:
        return 0
    idx = grid.lps_to_index(np.asarray(points_lps, dtype=float).reshape(-1, 3))
    upper = np.asarray(grid.shape, dtype=float) - 0.5
    inside = np.all((idx >= -0.5) & (idx < upper[None, :]), axis=1)
    return int(np.count_nonzero(inside))


def warn_empty_segments(segments: Sequence[MaskSegment], source: str, where: str,
                        *, empty_in_file: Sequence[int] = (), kind: str = "mask") -> None:
    """Warn about each empty segment; raise when every segment is empty.

    Parameters
    ----------
    segments : sequence of MaskSegment
        The segments on the reference grid.
    source : str
        The mask file, for the message.
    where : str
        What the reference grid is, for the message.
    empty_in_file : sequence of int
        Numbers of the segments that are empty in the file itself (no set voxel, no
        contour): they are reported as empty, not as lying outside the grid.
    kind : str
        What the file is ("SEG", "RTSTRUCT", "NIfTI"), for the message.

    Raises
    ------
    MaskError
        Every segment is empty on the reference grid (or in the file).

    Warns
    -----
    MaskWarning
        One per empty segment (through :func:`emlesion.errors.warn_external`).
    """
    empty = [s for s in segments if not s.mask.any()]
    in_file = set(empty_in_file)
    if segments and all(s.number in in_file for s in segments):
        raise MaskError(
            format_message(
                f"the {kind} is empty: none of its segments "
                f"({', '.join(repr(s.name) for s in segments[:5])}) has a voxel in the file",
                series=source,
                fix="export the segmentation again; the file holds no segmented voxel",
            )
        )
    for seg in [s for s in empty if s.number in in_file]:
        warn_external(
            format_message(
                f"segment {seg.number} ({seg.name!r}) is empty in the {kind} itself",
                series=source,
                fix="check the segmentation; this segment holds no voxel",
            ),
            MaskWarning,
        )
    all_empty = bool(segments) and len(empty) == len(segments)
    empty = [s for s in empty if s.number not in in_file]
    if all_empty:
        n_file = len(segments) - len(empty)
        also = f"; {n_file} of them are empty in the {kind} itself" if n_file else ""
        raise MaskError(
            format_message(
                f"no segment of the mask has a voxel on the reference grid ({where}){also}",
                series=source,
                fix="pass the image the mask was drawn on, or a series of the same frame of "
                "reference that covers the segmented region",
            )
        )
    for seg in empty:
        warn_external(
            format_message(
                f"segment {seg.number} ({seg.name!r}) has no voxel on the reference grid ({where})",
                series=source,
                fix="check that the reference image covers this segment",
            ),
            MaskWarning,
        )


def build_labelmap(
    segments: Sequence[MaskSegment],
    ref: MaskReference,
    *,
    overlap: Overlap,
    source: str,
    operation: str,
    rule: str,
    inputs: Mapping[str, Any],
    recorded: tuple[str, ...],
) -> LabelMap:
    """Combine segments into a :class:`LabelMap` with one provenance step.

    Parameters
    ----------
    segments : sequence of MaskSegment
        The segments (label value = segment number, label name = segment name).
    ref : MaskReference
        The reference (its grid is the label map's grid).
    overlap : Overlap
        Which segment keeps a voxel claimed by several (see the module notes).
    source : str
        The mask file.
    operation, rule : str
        Provenance operation and rule.
    inputs : Mapping
        Provenance inputs of the reader (the overlap summary is added).
    recorded : tuple of str
        Warnings the reader recorded before (kept in the step, in order, once each).

    Returns
    -------
    LabelMap

    Raises
    ------
    MaskError
        ``overlap`` is ERROR and segments overlap, or a segment number is not a uint16.
    """
    from emlesion.provenance import record_warnings

    with record_warnings() as rec:
        labels, summary = _combine(segments, ref.grid, overlap, source)
    names = {s.number: s.name for s in segments}
    step = ProvenanceStep(
        operation,
        rule=rule,
        inputs={**dict(inputs), **summary, "reference": ref.label,
                "reference_shape": ref.grid.shape},
        warnings=tuple(dict.fromkeys((*recorded, *rec.as_tuple()))),
    )
    return LabelMap(labels, ref.grid, names, source, (step,))


def _read_dicom_header(path: Path) -> Any:
    """Read a DICOM file without pixel data; raise DicomReadError on any parse failure."""
    import pydicom

    require_regular_file(path)
    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many types for corrupt files
        raise DicomReadError(
            format_message(
                f"cannot read {path.name} as DICOM ({type(exc).__name__}: {exc})",
                series=str(path),
                fix="check that the file is a complete DICOM file (re-export or re-download it)",
            )
        ) from exc


def _is_nifti(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def _find_mask_file(folder: Path) -> Path:
    """The single SEG, RTSTRUCT or NIfTI file in ``folder``."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    niftis = [p for p in files if _is_nifti(p)]
    dicoms: list[Path] = []
    for p in files:
        if _is_nifti(p):
            continue
        try:
            ds = _read_dicom_header(p)
        except DicomReadError:
            continue
        if str(ds.get("SOPClassUID", "")) in (SEG_SOP_CLASS_UID, RTSTRUCT_SOP_CLASS_UID):
            dicoms.append(p)
    found = niftis + dicoms
    if not found:
        raise SeriesNotFoundError(
            format_message(
                "no DICOM SEG, RTSTRUCT or NIfTI (.nii, .nii.gz) file in the folder",
                series=str(folder),
                fix="pass the mask file itself",
            )
        )
    if len(found) > 1:
        raise MaskError(
            format_message(
                f"{len(found)} mask files in the folder ({', '.join(p.name for p in found)})",
                series=str(folder),
                fix="pass the path of the one mask file to load",
            )
        )
    return found[0]


def detect_mask_format(path: str | Path) -> MaskFormat:
    """The format of a mask file: NIfTI by suffix, DICOM SEG / RTSTRUCT by ``SOPClassUID``.

    Parameters
    ----------
    path : str or Path
        A mask file.

    Returns
    -------
    MaskFormat

    Raises
    ------
    DicomReadError
        The file is neither NIfTI nor readable DICOM.
    UnsupportedDataError
        The file is DICOM of another class (an image, a dose, a plan ...).
    """
    p = Path(path)
    if _is_nifti(p):
        return MaskFormat.NIFTI
    ds = _read_dicom_header(p)
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class == SEG_SOP_CLASS_UID:
        return MaskFormat.SEG
    if sop_class == RTSTRUCT_SOP_CLASS_UID:
        return MaskFormat.RTSTRUCT
    raise UnsupportedDataError(
        format_message(
            f"{p.name} is DICOM {ds.get('Modality', '?')} with SOP class {sop_class or 'missing'}, "
            "not a Segmentation or RT Structure Set",
            series=str(p),
            attribute="SOPClassUID (0008,0016)",
            fix="pass a DICOM SEG, an RTSTRUCT or a NIfTI label map",
        )
    )


def load_mask(
    path: str | Path,
    reference: Volume | Grid,
    *,
    segments: Sequence[int | str] | None = None,
    overlap: Overlap | str = Overlap.SMALLEST,
    fractional_threshold: float = 0.5,
    format: MaskFormat | str | None = None,
    names: Mapping[int, str] | None = None,
    check_frame_of_reference: bool = True,
) -> LabelMap:
    """Load a DICOM SEG, RTSTRUCT or NIfTI label map onto the grid of ``reference``.

    Parameters
    ----------
    path : str or Path
        The mask file, or a folder that holds exactly one mask file.
    reference : Volume or Grid
        The image (usually the PET) whose grid the labels are put on. With a
        :class:`~emlesion.io.volume.Volume`, the mask's FrameOfReferenceUID is checked
        against the image's.
    segments : sequence of int or str, optional
        Segments to keep, by number (SEG SegmentNumber, RTSTRUCT ROINumber, NIfTI label
        value) or by name (case-insensitive). Default: all.
    overlap : Overlap or str
        Which segment keeps a voxel claimed by several segments (default ``"smallest"``).
    fractional_threshold : float
        A FRACTIONAL SEG or a probabilistic NIfTI voxel belongs to a segment when its
        value (scaled to 0..1) is at least this.
    format : MaskFormat or str, optional
        ``"seg"``, ``"rtstruct"`` or ``"nifti"``; detected from the file when omitted.
    names : mapping of int to str, optional
        Names of NIfTI labels (NIfTI has no segment names; default ``"label <n>"``).
        Ignored for DICOM, whose names come from the file.
    check_frame_of_reference : bool
        Refuse a DICOM mask whose FrameOfReferenceUID differs from the reference volume's.

    Returns
    -------
    LabelMap
        uint16 labels on ``reference``'s grid; label = segment number; ``names`` from
        SegmentLabel / ROIName. One provenance step names the reader and its rules.

    Raises
    ------
    MaskError
        Unknown segment, overlap with ``overlap="error"``, mask empty on the grid,
        frame of reference mismatch, unreadable NIfTI.
    DicomReadError
        Corrupt or truncated DICOM file.
    UnsupportedDataError
        A convention emlesion does not guess about (oblique planes, unknown NIfTI affine).
    SeriesNotFoundError
        A folder without any mask file.

    Warns
    -----
    MaskWarning
        Overlaps resolved, empty segments, contours without area skipped.

    See Also
    --------
    emlesion.io.seg.read_seg, emlesion.io.rtstruct.rasterize_rtstruct,
    emlesion.io.nifti.read_nifti_labels

    Examples
    --------
    >>> labels = load_mask("SEG/seg.dcm", pet)  # doctest: +SKIP
    >>> labels.names  # doctest: +SKIP
    {1: 'Neoplasm, Primary', 2: 'Neoplasm, Secondary #2', ...}
    """
    p = Path(path)
    if not p.exists():
        raise SeriesNotFoundError(
            format_message("mask path does not exist", series=str(p), fix="check the path")
        )
    if p.is_dir():
        p = _find_mask_file(p)
    fmt = detect_mask_format(p) if format is None else coerce_enum(format, MaskFormat, "format")
    try:
        if fmt is MaskFormat.SEG:
            from emlesion.io.seg import read_seg

            return read_seg(p, reference, segments=segments, overlap=overlap,
                            fractional_threshold=fractional_threshold,
                            check_frame_of_reference=check_frame_of_reference)
        if fmt is MaskFormat.RTSTRUCT:
            from emlesion.io.rtstruct import rasterize_rtstruct

            return rasterize_rtstruct(p, reference, segments=segments, overlap=overlap,
                                      check_frame_of_reference=check_frame_of_reference)
        from emlesion.io.nifti import read_nifti_labels

        return read_nifti_labels(p, reference, segments=segments, names=names,
                                 fractional_threshold=fractional_threshold)
    except EmlesionError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # last line of defence: never a bare dependency traceback
        raise MaskError(
            format_message(
                f"reading the {fmt.value} mask failed ({type(exc).__name__}: {exc})",
                series=str(p),
                fix="check that the file is complete and of the stated format; report the file "
                "to emlesion if it is",
            )
        ) from exc
