"""Rasterise DICOM RT Structure Sets (RTSTRUCT) onto a reference grid.

Contours are placed by patient position: their LPS points are mapped to the
continuous voxel index space of the reference grid, so the structure set of one
series applies to every series of the same frame of reference (cropped,
resampled). The in-plane rule and the slice rule are stated in
:func:`rasterize_rtstruct`.

References
----------
.. [1] DICOM PS3.3 C.8.8.6, ROI Contour module (ContourData, CLOSED_PLANAR, holes
   by nested contours).
.. [2] DICOM PS3.3 C.8.8.5, Structure Set module (ROINumber, ROIName,
   ReferencedFrameOfReferenceUID).
.. [3] J. D. Foley et al., *Computer Graphics: Principles and Practice*, scan-line
   scan-line polygon fill, even-odd rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emlesion.errors import (
    DicomReadError,
    InvalidAttributeError,
    MaskError,
    UnsupportedDataError,
    format_message,
    warn_external,
)
from emlesion.io.geometry import Grid
from emlesion.io.labelmap import LabelMap
from emlesion.io.masks import (
    RTSTRUCT_SOP_CLASS_UID,
    MaskSegment,
    MaskWarning,
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
    unique_segment_names,
    warn_empty_segments,
    warn_outside,
)
from emlesion.io.volume import Volume
from emlesion.provenance import record_warnings

__all__ = ["polygon_mask", "rasterize_rtstruct"]

#: Contours whose planes are closer than this (mm) along the slice normal are one plane.
PLANE_CLUSTER_TOLERANCE_MM = 0.1
#: A contour may deviate this much (mm) from a plane parallel to the reference slices.
PLANARITY_TOLERANCE_MM = 0.1


def _expand_rows(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edge index and row of every integer row ``first[e] <= row <= last[e]`` of every edge."""
    count = np.maximum(last - first + 1, 0)
    edge = np.repeat(np.arange(len(first)), count)
    offsets = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return edge, first[edge] + offsets


def _interior(pts: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """Pixels whose centre is strictly inside (half-open scan-line rule on the boundary)."""
    toggles = np.zeros((ny, nx + 1), dtype=np.int32)
    y0, x0 = pts[:, 0], pts[:, 1]
    y1, x1 = np.roll(y0, -1), np.roll(x0, -1)
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    # rows j with lo <= j < hi: the edge crosses the line through the row's pixel centres
    first = np.maximum(np.ceil(lo).astype(np.int64), 0)
    last = np.minimum(np.ceil(hi).astype(np.int64) - 1, ny - 1)
    edge, rows = _expand_rows(first, last)
    if rows.size:
        t = (rows - y0[edge]) / (y1[edge] - y0[edge])
        xs = x0[edge] + t * (x1[edge] - x0[edge])
        cols = np.clip(np.ceil(xs), 0, nx).astype(np.int64)
        np.add.at(toggles, (rows, cols), 1)
    return (np.cumsum(toggles, axis=1) % 2).astype(bool)[:, :nx]


def _boundary(pts: np.ndarray, ny: int, nx: int, eps: float) -> np.ndarray:
    """Pixels whose centre lies on an edge of the polygon (within ``eps`` pixels)."""
    out = np.zeros((ny, nx), dtype=bool)
    y0, x0 = pts[:, 0], pts[:, 1]
    y1, x1 = np.roll(y0, -1), np.roll(x0, -1)
    flat = np.abs(y1 - y0) <= eps
    # sloped and vertical edges: every integer row they span, test the crossing column
    lo, hi = np.minimum(y0, y1)[~flat], np.maximum(y0, y1)[~flat]
    edge, rows = _expand_rows(np.ceil(lo - eps).astype(np.int64),
                              np.floor(hi + eps).astype(np.int64))
    if rows.size:
        ya, xa = y0[~flat][edge], x0[~flat][edge]
        yb, xb = y1[~flat][edge], x1[~flat][edge]
        xs = xa + (rows - ya) / (yb - ya) * (xb - xa)
        cols = np.rint(xs).astype(np.int64)
        ok = (np.abs(xs - cols) <= eps) & (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
        out[rows[ok], cols[ok]] = True
    # horizontal edges lying on a row of pixel centres
    for e in np.flatnonzero(flat):
        row = int(np.rint(y0[e]))
        if abs(y0[e] - row) > eps or not 0 <= row < ny:
            continue
        c0 = max(int(np.ceil(min(x0[e], x1[e]) - eps)), 0)
        c1 = min(int(np.floor(max(x0[e], x1[e]) + eps)), nx - 1)
        out[row, c0 : c1 + 1] = True
    return out


def polygon_mask(
    shape: tuple[int, int], polygons: Sequence[np.ndarray], *, edge_tolerance: float = 1e-6
) -> np.ndarray:
    """Even-odd fill of polygons given in continuous pixel index coordinates.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)`` of the output.
    polygons : sequence of ndarray
        Each ``(n, 2)`` array holds vertices as ``(row, column)`` continuous indices,
        where integer values are pixel centres. A polygon is closed implicitly.
    edge_tolerance : float
        A pixel centre closer than this (in pixels) to an edge lies on the edge.

    Returns
    -------
    ndarray of bool
        True where the pixel centre is inside an odd number of polygons (so a polygon
        drawn inside another is a hole, and disjoint polygons are islands).

    Notes
    -----
    Voxel-centre rule: pixel ``(j, i)`` belongs to a polygon when its centre ``(j, i)``
    lies inside the polygon **or on its boundary** (the polygon is a closed set). The
    rule is symmetric (no bias towards any side) and agrees with
    ``skimage.draw.polygon2mask`` and ``matplotlib.path.Path.contains_points``; a contour
    traced through the centres of boundary pixels keeps those pixels. So a square with
    corners at pixel centres ``(0, 0)`` and ``(2, 2)`` covers the 3 x 3 pixels
    ``(0..2, 0..2)``. Polygons are then combined by exclusive or: the boundary pixels
    of a hole belong to the hole.

    Examples
    --------
    >>> int(polygon_mask((4, 4), [np.array([[0, 0], [0, 2], [2, 2], [2, 0]])]).sum())
    9
    """
    ny, nx = shape
    result = np.zeros((ny, nx), dtype=bool)
    for poly in polygons:
        pts = np.asarray(poly, dtype=float)
        if pts.ndim != 2 or pts.shape[0] < 3:
            continue
        result ^= _interior(pts, ny, nx) | _boundary(pts, ny, nx, edge_tolerance)
    return result


@dataclass(frozen=True)
class _Contour:
    roi_number: int
    plane_index: float  # continuous slice index of the contour plane on the reference grid
    rows_cols: np.ndarray  # (n, 2) continuous (row, column) indices


def _read(path: Path) -> Any:
    import pydicom

    require_regular_file(path)
    try:
        ds = pydicom.dcmread(str(path))
        _ = ds.get("ROIContourSequence")  # force parsing of the sequences
        _ = ds.get("StructureSetROISequence")
    except Exception as exc:
        raise DicomReadError(
            format_message(
                f"cannot read the RTSTRUCT {path.name} ({type(exc).__name__}: {exc})",
                series=str(path),
                fix="check that the file is a complete DICOM file (re-export it)",
            )
        ) from exc
    if str(ds.get("SOPClassUID", "")) != RTSTRUCT_SOP_CLASS_UID:
        raise UnsupportedDataError(
            format_message(
                f"{path.name} is not an RT Structure Set "
                f"(SOPClassUID {ds.get('SOPClassUID', 'missing')})",
                series=str(path),
                attribute="SOPClassUID (0008,0016)",
                fix="pass an RTSTRUCT file, or call emlesion.io.load_mask to detect the format",
            )
        )
    return ds


def _contour_points(item: Any, roi_name: str, source: str) -> np.ndarray:
    data = item.get("ContourData")
    try:
        pts = np.asarray([float(v) for v in (data or [])], dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidAttributeError(
            format_message(
                f"ROI {roi_name!r} has a non-numeric ContourData value",
                series=source,
                attribute="ContourData (3006,0050)",
                fix="repair or re-export the structure set",
            )
        ) from exc
    if pts.size % 3 or not np.all(np.isfinite(pts)):
        raise InvalidAttributeError(
            format_message(
                f"ROI {roi_name!r} has ContourData of {pts.size} values, not x,y,z triplets",
                series=source,
                attribute="ContourData (3006,0050)",
                fix="repair or re-export the structure set",
            )
        )
    return pts.reshape(-1, 3)


def rasterize_rtstruct(
    path: str | Path,
    reference: Volume | Grid,
    *,
    segments: Sequence[int | str] | None = None,
    overlap: Overlap | str = Overlap.SMALLEST,
    check_frame_of_reference: bool = True,
) -> LabelMap:
    """Rasterise the ROIs of an RTSTRUCT onto the reference grid.

    Parameters
    ----------
    path : str or Path
        The RTSTRUCT file (never written to).
    reference : Volume or Grid
        The image or grid to rasterise on. Any series of the structure set's frame of
        reference works (the one it was drawn on, a cropped or resampled copy).
    segments : sequence of int or str, optional
        ROIs to keep, by ROINumber or ROIName (case-insensitive). Default: all.
    overlap : Overlap or str
        Which ROI keeps a voxel inside several ROIs (default ``"smallest"``).
    check_frame_of_reference : bool
        Refuse a structure set whose ReferencedFrameOfReferenceUID differs from the
        reference volume's FrameOfReferenceUID.

    Returns
    -------
    LabelMap
        Label = ROINumber, name = ROIName (names used twice get ``" #<ROINumber>"``).

    Notes
    -----
    * Placement: contour points (LPS mm) are mapped to continuous voxel indices with
      :meth:`Grid.lps_to_index`. Contours must be parallel to the reference slices
      (within 0.1 mm); contours closer than 0.1 mm along the normal share one plane.
    * In-plane voxel-centre rule: a voxel belongs to a plane's ROI when its **centre**
      lies inside or on an odd number of that plane's CLOSED_PLANAR contours (even-odd
      rule, so nested contours are holes); see :func:`polygon_mask`.
    * Slice rule: a plane represents the slab of half the structure set's plane spacing
      (smallest gap between distinct contour planes of all ROIs) around it; a reference
      slice takes the nearest plane of the ROI within that half-width. On the series the
      contours were drawn on this is the slice they lie on, even a few hundredths of a
      millimetre off.
    * POINT and OPEN_PLANAR / OPEN_NONPLANAR contours enclose no area and are skipped
      with a :class:`~emlesion.io.masks.MaskWarning`.

    Raises
    ------
    DicomReadError, InvalidAttributeError, UnsupportedDataError, MaskError
    """
    p = Path(path)
    source = str(p)
    overlap_rule = coerce_enum(overlap, Overlap, "overlap")
    ref = reference_of(reference)
    grid = ref.grid
    with record_warnings() as rec:
        ds = _read(p)
        rois: list[tuple[int, str]] = []
        frame_uids: list[str] = []
        for item in ds.get("StructureSetROISequence", []):
            try:
                number = int(item.ROINumber)
            except (AttributeError, TypeError, ValueError) as exc:
                raise InvalidAttributeError(
                    format_message(
                        "a StructureSetROISequence item has no valid ROINumber",
                        series=source,
                        attribute="ROINumber (3006,0022)",
                        fix="repair or re-export the structure set",
                    )
                ) from exc
            rois.append((number, str(item.get("ROIName", "")) or f"ROI {number}"))
            frame_uids.append(str(item.get("ReferencedFrameOfReferenceUID", "")))
        if not frame_uids or not any(frame_uids):
            frame_uids = [
                str(f.get("FrameOfReferenceUID", ""))
                for f in ds.get("ReferencedFrameOfReferenceSequence", [])
            ]
        if not rois:
            raise MaskError(
                format_message(
                    "the structure set defines no ROI",
                    series=source,
                    attribute="StructureSetROISequence (3006,0020)",
                    fix="pass a structure set that contains contours",
                )
            )
        require_same_frame_of_reference(frame_uids, ref, source, check_frame_of_reference)
        wanted = select_segments(rois, segments, source, "ROIName (3006,0026)")
        names = unique_segment_names([(n, name) for n, name in rois if n in wanted])

        inv = np.linalg.inv(grid.affine)
        sz = grid.spacing_mm[2]
        contours: list[_Contour] = []
        skipped: dict[str, int] = {}
        n_points = n_inside = 0
        with_contours: set[int] = set()
        for roi_item in ds.get("ROIContourSequence", []):
            number = int(roi_item.get("ReferencedROINumber", -1))
            if number not in names:
                continue
            for item in roi_item.get("ContourSequence", []) or []:
                with_contours.add(number)
                kind = str(item.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
                if kind != "CLOSED_PLANAR":
                    skipped[kind] = skipped.get(kind, 0) + 1
                    continue
                pts = _contour_points(item, names[number], source)
                if len(pts) < 3:
                    skipped["CLOSED_PLANAR with < 3 points"] = skipped.get(
                        "CLOSED_PLANAR with < 3 points", 0) + 1
                    continue
                ijk = pts @ inv[:3, :3].T + inv[:3, 3]  # (x, y, z) index order
                n_points += len(pts)
                n_inside += count_inside(pts, grid)
                k = ijk[:, 2]
                if float(np.ptp(k)) * sz > PLANARITY_TOLERANCE_MM:
                    raise UnsupportedDataError(
                        format_message(
                            f"a contour of ROI {names[number]!r} spans "
                            f"{float(np.ptp(k)) * sz:.2f} mm "
                            "along the reference slice normal: it is not parallel to the slices",
                            series=source,
                            attribute="ContourData (3006,0050)",
                            fix="rasterise on a reference whose slices are parallel to the "
                            "contours (the series the structure set was drawn on)",
                        )
                    )
                contours.append(_Contour(number, float(k.mean()), ijk[:, 1::-1].copy()))
        for kind, n in skipped.items():
            warn_external(
                format_message(
                    f"{n} contour(s) of type {kind} skipped: they enclose no area",
                    series=source,
                    attribute="ContourGeometricType (3006,0042)",
                ),
                MaskWarning,
            )

        all_planes_mm = np.array([c.plane_index * sz for c in contours])
        spacing = plane_spacing_mm(np.unique(np.round(all_planes_mm, 6)),
                                    PLANE_CLUSTER_TOLERANCE_MM)
        half_width_mm = 0.5 * (spacing if spacing is not None else sz)
        slice_mm = np.arange(grid.shape[0], dtype=float) * sz
        segs: list[MaskSegment] = []
        for number, name in names.items():
            mask = np.zeros(grid.shape, dtype=bool)
            mine = sorted((c for c in contours if c.roi_number == number),
                          key=lambda c: c.plane_index)
            planes: list[list[_Contour]] = []
            for c in mine:
                gap_mm = (c.plane_index - planes[-1][0].plane_index) * sz if planes else np.inf
                if gap_mm <= PLANE_CLUSTER_TOLERANCE_MM:
                    planes[-1].append(c)
                else:
                    planes.append([c])
            plane_mm = np.array([np.mean([c.plane_index for c in pl]) * sz for pl in planes])
            assignment = assign_planes_to_slices(plane_mm, slice_mm, half_width_mm)
            cache: dict[int, np.ndarray] = {}
            for kslice in np.flatnonzero(assignment >= 0):
                pi = int(assignment[kslice])
                if pi not in cache:
                    cache[pi] = polygon_mask(grid.shape[1:], [c.rows_cols for c in planes[pi]])
                mask[kslice] = cache[pi]
            segs.append(MaskSegment(number, name, mask))
        warn_empty_segments(segs, source, "contours outside the grid or on no slice",
                            empty_in_file=[n for n in names if n not in with_contours],
                            kind="RTSTRUCT")
        warn_outside(n_points, n_inside, source, "contour points")
    rule = (
        "RTSTRUCT: contours placed by LPS position; voxel centre inside or on the contour "
        f"(even-odd across contours); slice = nearest contour plane within {half_width_mm:.3f} mm"
    )
    inputs = {
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "structure_set_label": str(ds.get("StructureSetLabel", "")),
        "frame_of_reference_uid": next((u for u in frame_uids if u), ""),
        "plane_half_width_mm": half_width_mm,
        "contours": len(contours),
        "skipped_contours": skipped,
    }
    return build_labelmap(
        segs, ref, overlap=overlap_rule, source=source,
        operation="emlesion.io.rtstruct.rasterize_rtstruct", rule=rule, inputs=inputs,
        recorded=rec.as_tuple(),
    )
