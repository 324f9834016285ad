"""Read DICOM Segmentation (SEG) objects onto a reference grid.

Frames are mapped to the reference **by position** (each frame's
ImagePositionPatient and the shared or per-frame orientation and pixel
spacing), not by ReferencedSOPInstanceUID: this works when the SEG references
another instance set of the same frame of reference (a cropped or resampled
copy), and for SEGs whose source references lack SpatialLocationsPreserved.
highdicom parses the object and decodes the frames.

References
----------
.. [1] DICOM PS3.3 A.51 (Segmentation IOD) and C.8.20 (Segmentation Image module:
   SegmentationType BINARY / FRACTIONAL / LABELMAP, MaximumFractionalValue).
.. [2] DICOM PS3.3 C.7.6.16.2 (Plane Position, Plane Orientation, Pixel Measures
   functional groups).
.. [3] C. P. Bridge et al., "Highdicom: a Python library for standardized encoding of
   image annotations and machine learning model outputs in pathology and radiology",
   J Digit Imaging 35, 1719-1737 (2022).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from emlesion.errors import (
    DicomReadError,
    InvalidAttributeError,
    MissingAttributeError,
    UnsupportedDataError,
    format_message,
)
from emlesion.io.geometry import Grid
from emlesion.io.labelmap import LabelMap
from emlesion.io.masks import (
    SEG_SOP_CLASS_UID,
    MaskSegment,
    Overlap,
    assign_planes_to_slices,
    build_labelmap,
    coerce_enum,
    count_inside,
    plane_spacing_mm,
    reference_of,
    require_regular_file,
    require_same_frame_of_reference,
    select_segments,
    slice_normal_positions_mm,
    unique_segment_names,
    warn_empty_segments,
    warn_outside,
)
from emlesion.io.volume import Volume
from emlesion.provenance import record_warnings

__all__ = ["read_seg"]

#: Frame planes closer than this (mm) along the normal count as one plane.
PLANE_CLUSTER_TOLERANCE_MM = 0.1


def _functional(ds: Any, frame: Any, sequence: str, source: str, attribute: str) -> Any:
    """The first item of a functional group sequence, per-frame before shared."""
    for group in (frame, (ds.get("SharedFunctionalGroupsSequence") or [None])[0]):
        if group is not None and sequence in group and len(group[sequence].value):
            return group[sequence].value[0]
    raise MissingAttributeError(
        format_message(
            f"the SEG has no {sequence} (neither per-frame nor shared)",
            series=source,
            attribute=attribute,
            fix="repair or re-export the SEG; emlesion places frames by position",
        )
    )


def _floats(item: Any, keyword: str, count: int, source: str, attribute: str) -> np.ndarray:
    try:
        values = np.asarray([float(v) for v in item.get(keyword)], dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidAttributeError(
            format_message(f"{keyword} is missing or not numeric", series=source,
                           attribute=attribute, fix="repair or re-export the SEG")
        ) from exc
    if values.shape != (count,) or not np.all(np.isfinite(values)):
        raise InvalidAttributeError(
            format_message(f"{keyword} must have {count} finite values, got {values.tolist()}",
                           series=source, attribute=attribute, fix="repair or re-export the SEG")
        )
    return values


def _read(path: Path) -> Any:
    import highdicom as hd

    require_regular_file(path)
    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:
        raise DicomReadError(
            format_message(
                f"cannot read the DICOM SEG {path.name} ({type(exc).__name__}: {exc})",
                series=str(path),
                fix="check that the file is a complete, valid DICOM Segmentation (re-export it)",
            )
        ) from exc
    if str(seg.get("SOPClassUID", "")) != SEG_SOP_CLASS_UID:  # pragma: no cover - segread checks
        raise UnsupportedDataError(
            format_message(f"{path.name} is not a DICOM Segmentation", series=str(path),
                           attribute="SOPClassUID (0008,0016)",
                           fix="call emlesion.io.load_mask to detect the format")
        )
    return seg


def _segmentation_type(seg: Any, source: str) -> str:
    """SegmentationType (BINARY, FRACTIONAL or LABELMAP), else UnsupportedDataError."""
    seg_type = str(seg.get("SegmentationType", "")).upper()
    if seg_type not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        raise UnsupportedDataError(
            format_message(
                f"SegmentationType {seg_type or 'missing'} is not BINARY, FRACTIONAL "
                "or LABELMAP",
                series=source, attribute="SegmentationType (0062,0001)",
                fix="re-export the segmentation as a standard DICOM SEG",
            )
        )
    return seg_type


def _segment_names(seg: Any, segments: Sequence[int | str] | None,
                   source: str) -> dict[int, str]:
    """``{SegmentNumber: unique name}`` of the segments to read."""
    available = [
        (int(item.SegmentNumber),
         str(item.get("SegmentLabel", "")) or f"segment {int(item.SegmentNumber)}")
        for item in seg.get("SegmentSequence", [])
    ]
    wanted = select_segments(available, segments, source, "SegmentLabel (0062,0005)")
    return unique_segment_names([(n, name) for n, name in available if n in wanted])


def _stored_frames(seg: Any, source: str) -> np.ndarray:
    """The stored frames, ``(frames, rows, columns)``."""
    try:
        frames = seg.get_stored_frames()
    except Exception as exc:
        raise DicomReadError(
            format_message(
                f"cannot decode the SEG pixel data ({type(exc).__name__}: {exc})",
                series=source, attribute="PixelData (7FE0,0010)",
                fix="the file is truncated or its transfer syntax has no decoder installed; "
                "re-export it uncompressed",
            )
        ) from exc
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    return frames


@dataclass(frozen=True, eq=False)
class _PlacedFrames:
    """The SEG frames with their plane geometry and the rule that makes a pixel "on"."""

    frames: np.ndarray
    seg_type: str
    positions: np.ndarray  # ImagePositionPatient per frame
    frame_segment: np.ndarray  # ReferencedSegmentNumber per frame (0: LABELMAP)
    geometry: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # row, column cosine, spacing
    frame_mm: np.ndarray  # frame position along the reference slice normal
    max_fraction: float = 255.0
    fractional_threshold: float = 0.5

    def on(self, values: np.ndarray, number: int) -> np.ndarray:
        """Pixels of ``values`` (a frame or a resampled frame) that belong to ``number``."""
        if self.seg_type == "BINARY":
            return values > 0
        if self.seg_type == "FRACTIONAL":
            return values / self.max_fraction >= self.fractional_threshold
        return values == number

    def frames_of(self, number: int) -> np.ndarray:
        """Indices of the frames that hold segment ``number``."""
        if self.seg_type == "LABELMAP":
            return np.arange(len(self.positions))
        return np.flatnonzero(self.frame_segment == number)

    def points(self, own: np.ndarray, number: int) -> np.ndarray | None:
        """LPS positions (mm) of the "on" pixels of frames ``own``; None when there are none."""
        points: list[np.ndarray] = []
        for fi in own:
            rr, cc = np.nonzero(self.on(self.frames[fi], number))
            if rr.size:
                row_dir, col_dir, spacing = self.geometry[int(fi)]
                points.append(self.positions[fi][None, :] + (cc * spacing[1])[:, None] * row_dir
                              + (rr * spacing[0])[:, None] * col_dir)
        return np.concatenate(points) if points else None


def _place_frames(seg: Any, frames: np.ndarray, seg_type: str, ref_normal: np.ndarray,
                  source: str) -> _PlacedFrames:
    """Read each frame's plane (position, orientation, spacing, segment) from its functional
    groups; refuse frames not parallel to the reference slices."""
    per_frame = list(seg.get("PerFrameFunctionalGroupsSequence", []))
    if len(per_frame) != frames.shape[0]:
        raise InvalidAttributeError(
            format_message(
                f"{len(per_frame)} per-frame functional groups for {frames.shape[0]} frames",
                series=source, attribute="PerFrameFunctionalGroupsSequence (5200,9230)",
                fix="repair or re-export the SEG",
            )
        )
    positions = np.empty((len(per_frame), 3))
    frame_segment = np.zeros(len(per_frame), dtype=np.int64)  # 0: LABELMAP frame
    geometry: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for f, fg in enumerate(per_frame):
        pos_item = _functional(seg, fg, "PlanePositionSequence", source,
                               "ImagePositionPatient (0020,0032)")
        positions[f] = _floats(pos_item, "ImagePositionPatient", 3, source,
                               "ImagePositionPatient (0020,0032)")
        ori_item = _functional(seg, fg, "PlaneOrientationSequence", source,
                               "ImageOrientationPatient (0020,0037)")
        ori = _floats(ori_item, "ImageOrientationPatient", 6, source,
                      "ImageOrientationPatient (0020,0037)")
        pix_item = _functional(seg, fg, "PixelMeasuresSequence", source,
                               "PixelSpacing (0028,0030)")
        spacing = _floats(pix_item, "PixelSpacing", 2, source, "PixelSpacing (0028,0030)")
        row_dir, col_dir = ori[:3], ori[3:]
        normal = np.cross(row_dir, col_dir)
        if abs(abs(float(np.dot(normal, ref_normal))) - 1.0) > 1e-4:
            raise UnsupportedDataError(
                format_message(
                    "the SEG frames are not parallel to the reference slices",
                    series=source, attribute="ImageOrientationPatient (0020,0037)",
                    fix="use as reference the series the SEG was made on (or resample the "
                    "SEG onto it first)",
                )
            )
        geometry.append((row_dir, col_dir, spacing))
        if seg_type != "LABELMAP":
            ident = _functional(seg, fg, "SegmentIdentificationSequence", source,
                                "ReferencedSegmentNumber (0062,000B)")
            frame_segment[f] = int(ident.ReferencedSegmentNumber)
    return _PlacedFrames(frames, seg_type, positions, frame_segment, geometry,
                         positions @ ref_normal)


def _plane_half_width_mm(seg: Any, frame_mm: np.ndarray, grid: Grid) -> float:
    """Half the SEG's slice spacing: SpacingBetweenSlices, else the smallest gap between
    frame planes, else the reference slice spacing."""
    shared = (seg.get("SharedFunctionalGroupsSequence") or [None])[0]
    measures = shared.get("PixelMeasuresSequence") if shared is not None else None
    spacing_between = None
    if measures and measures[0].get("SpacingBetweenSlices"):
        spacing_between = abs(float(measures[0].SpacingBetweenSlices))
    if not spacing_between:
        spacing_between = plane_spacing_mm(np.unique(np.round(frame_mm, 6)),
                                           PLANE_CLUSTER_TOLERANCE_MM)
    return 0.5 * (spacing_between or grid.spacing_mm[2])


def _slice_sampler(placed: _PlacedFrames, grid: Grid) -> Callable[[int, int], np.ndarray]:
    """``sample(f, kslice)``: frame ``f`` resampled (nearest pixel) onto reference slice
    ``kslice`` (LABELMAP frames, shared by every segment, are cached)."""
    frames = placed.frames
    ref_dir = grid.direction_matrix
    origin = np.asarray(grid.origin_mm)
    ny, nx = grid.shape[1:]
    jj, ii = np.meshgrid(np.arange(ny, dtype=float), np.arange(nx, dtype=float), indexing="ij")
    # in-plane offsets (mm) of reference voxel centres from the slice origin, as vectors
    in_plane = (ii[..., None] * grid.spacing_mm[0] * ref_dir[:, 0]
                + jj[..., None] * grid.spacing_mm[1] * ref_dir[:, 1])
    cache: dict[tuple[int, int], np.ndarray] = {}

    def sample(f: int, kslice: int) -> np.ndarray:
        if (f, kslice) in cache:
            return cache[(f, kslice)]
        row_dir, col_dir, spacing = placed.geometry[f]
        centre0 = origin + kslice * grid.spacing_mm[2] * ref_dir[:, 2] - placed.positions[f]
        rel = in_plane + centre0
        col = np.floor(rel @ row_dir / spacing[1] + 0.5).astype(np.int64)
        row = np.floor(rel @ col_dir / spacing[0] + 0.5).astype(np.int64)
        ok = (row >= 0) & (row < frames.shape[1]) & (col >= 0) & (col < frames.shape[2])
        out = np.zeros((ny, nx), dtype=frames.dtype)
        out[ok] = frames[f][row[ok], col[ok]]
        if placed.seg_type == "LABELMAP":
            cache[(f, kslice)] = out
        return out

    return sample


def _segment_mask(placed: _PlacedFrames, number: int, own: np.ndarray, grid: Grid,
                  slice_mm: np.ndarray, half_width_mm: float,
                  sample: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """Segment ``number`` on the grid: each slice takes the nearest frame plane within
    ``half_width_mm``; frames of the segment on the same plane are combined (logical or)."""
    mask = np.zeros(grid.shape, dtype=bool)
    if not own.size:
        return mask
    frame_mm = placed.frame_mm
    assignment = assign_planes_to_slices(frame_mm[own], slice_mm, half_width_mm)
    for kslice in np.flatnonzero(assignment >= 0):
        target = frame_mm[own[assignment[kslice]]]
        same_plane = own[np.abs(frame_mm[own] - target) <= PLANE_CLUSTER_TOLERANCE_MM]
        for f in same_plane:
            mask[kslice] |= placed.on(sample(int(f), int(kslice)), number)
    return mask


def read_seg(
    path: str | Path,
    reference: Volume | Grid,
    *,
    segments: Sequence[int | str] | None = None,
    overlap: Overlap | str = Overlap.SMALLEST,
    fractional_threshold: float = 0.5,
    check_frame_of_reference: bool = True,
) -> LabelMap:
    """Read a DICOM SEG (BINARY, FRACTIONAL or LABELMAP, any number of segments) onto a grid.

    Parameters
    ----------
    path : str or Path
        The SEG file (never written to).
    reference : Volume or Grid
        The image or grid to put the segments on (any series of the SEG's frame of
        reference whose slices are parallel to the SEG frames).
    segments : sequence of int or str, optional
        Segments to keep, by SegmentNumber or SegmentLabel (case-insensitive).
    overlap : Overlap or str
        Which segment keeps a voxel claimed by several (default ``"smallest"``).
    fractional_threshold : float
        FRACTIONAL segments: a pixel belongs when ``value / MaximumFractionalValue``
        is at least this (default 0.5).
    check_frame_of_reference : bool
        Refuse a SEG whose FrameOfReferenceUID differs from the reference volume's.

    Returns
    -------
    LabelMap
        Label = SegmentNumber, name = SegmentLabel (labels used by several segments get
        ``" #<SegmentNumber>"`` appended, e.g. ``"Neoplasm, Secondary #3"``).

    Notes
    -----
    Frames are placed by position: a reference slice takes, for each segment, the
    frame nearest along the slice normal within half the SEG's slice spacing
    (``SpacingBetweenSlices``, else the smallest gap between frame planes); within the
    slice, each reference voxel takes the value of the frame pixel nearest to its
    centre. When the SEG was made on the reference series this is an exact copy
    (frames a few hundredths of a millimetre off their slice are tolerated). Frames
    must be parallel to the reference slices.

    Raises
    ------
    DicomReadError, MissingAttributeError, InvalidAttributeError, UnsupportedDataError,
    MaskError
    """
    p = Path(path)
    source = str(p)
    overlap_rule = coerce_enum(overlap, Overlap, "overlap")
    ref = reference_of(reference)
    grid = ref.grid
    if not 0.0 < float(fractional_threshold) <= 1.0:
        raise InvalidAttributeError(
            format_message(f"fractional_threshold must lie in (0, 1], got {fractional_threshold}",
                           fix="pass e.g. 0.5")
        )
    with record_warnings() as rec:
        seg = _read(p)
        seg_type = _segmentation_type(seg, source)
        require_same_frame_of_reference([str(seg.get("FrameOfReferenceUID", ""))], ref, source,
                                  check_frame_of_reference)
        names = _segment_names(seg, segments, source)
        frames = _stored_frames(seg, source)
        ref_normal, slice_mm = slice_normal_positions_mm(grid)
        placed = _place_frames(seg, frames, seg_type, ref_normal, source)
        half_width_mm = _plane_half_width_mm(seg, placed.frame_mm, grid)
        placed = replace(placed, fractional_threshold=fractional_threshold,
                         max_fraction=float(seg.get("MaximumFractionalValue", 255) or 255))
        sample = _slice_sampler(placed, grid)
        segs: list[MaskSegment] = []
        empty_in_file: list[int] = []
        n_total = n_inside = 0
        for number, name in names.items():
            own = placed.frames_of(number)
            pts = placed.points(own, number)
            if pts is None:
                empty_in_file.append(number)
            else:
                n_total += len(pts)
                n_inside += count_inside(pts, grid)
            mask = _segment_mask(placed, number, own, grid, slice_mm, half_width_mm, sample)
            segs.append(MaskSegment(number, name, mask))
        warn_empty_segments(segs, source, "frames outside the grid or on no slice",
                            empty_in_file=empty_in_file, kind="SEG")
        warn_outside(n_total, n_inside, source)
    rule = (
        f"SEG {seg_type}: frames placed by ImagePositionPatient; slice = nearest frame plane "
        f"within {half_width_mm:.3f} mm; in-plane nearest pixel"
        + (f"; fraction >= {fractional_threshold}" if seg_type == "FRACTIONAL" else "")
    )
    inputs = {
        "sop_instance_uid": str(seg.get("SOPInstanceUID", "")),
        "series_description": str(seg.get("SeriesDescription", "")),
        "segmentation_type": seg_type,
        "frame_of_reference_uid": str(seg.get("FrameOfReferenceUID", "")),
        "frames": int(placed.frames.shape[0]),
        "plane_half_width_mm": half_width_mm,
    }
    return build_labelmap(
        segs, ref, overlap=overlap_rule, source=source,
        operation="emlesion.io.seg.read_seg", rule=rule, inputs=inputs, recorded=rec.as_tuple(),
    )
