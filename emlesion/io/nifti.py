"""Read NIfTI label maps onto a reference grid (RAS world coordinates converted to LPS).

NIfTI stores world coordinates in RAS+ (x to the patient's Right-to-Left is
*negative*), DICOM and emlesion in LPS. The affine is converted by negating its
first two rows; then the labels are copied (identical grid) or resampled by
nearest neighbour (any other grid of the same space).

References
----------
.. [1] R. W. Cox et al., "A (sort of) new image data format standard: NIfTI-1",
   NIfTI-1 header ``nifti1.h``: ``qform_code``, ``sform_code``, RAS+ world space.
.. [2] nibabel documentation, "Coordinate systems and affines".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emlesion.errors import (
    EmlesionError,
    GeometryError,
    GeometryWarning,
    MaskError,
    UnsupportedDataError,
    format_message,
    warn_external,
)
from emlesion.io.geometry import Grid, resample_array
from emlesion.io.labelmap import LabelMap
from emlesion.io.masks import (
    MaskSegment,
    Overlap,
    build_labelmap,
    count_inside,
    reference_of,
    require_regular_file,
    select_segments,
    warn_empty_segments,
    warn_outside,
)
from emlesion.io.volume import Volume
from emlesion.provenance import record_warnings

__all__ = ["nifti_grid", "read_nifti_labels"]

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_UNIT_TO_MM = {"mm": 1.0, "unknown": 1.0, "meter": 1000.0, "micron": 0.001}


def nifti_grid(header: Any, shape: tuple[int, int, int], source: str = "") -> tuple[Grid, str]:
    """The LPS :class:`Grid` of a NIfTI image and the rule used to choose its affine.

    Parameters
    ----------
    header : nibabel Nifti1Header or Nifti2Header
        The header (``img.header``).
    shape : tuple of int
        The spatial shape ``(ni, nj, nk)`` of the NIfTI array (NIfTI index order).
    source : str
        File name, for messages.

    Returns
    -------
    grid : Grid
        Grid in emlesion's ``(z, y, x)`` = NIfTI ``(k, j, i)`` convention.
    rule : str
        Which affine was used (``"sform (code 1)"`` ...).

    Notes
    -----
    The sform is used when its code is non-zero, else the qform; when both are set
    and differ by more than 0.01 mm the sform wins and a
    :class:`~emlesion.errors.GeometryWarning` is emitted (nibabel's choice; ITK prefers
    the qform in some cases, so such files are ambiguous). A file with neither code
    set has no position in space and is refused.
    """
    sform, scode = header.get_sform(coded=True)
    qform, qcode = header.get_qform(coded=True)
    if sform is not None and scode:
        affine, rule = np.asarray(sform, float), f"sform (code {int(scode)})"
        if qform is not None and qcode and not np.allclose(qform, sform, atol=1e-2):
            warn_external(
                format_message(
                    "the NIfTI sform and qform disagree; the sform is used",
                    series=source,
                    attribute="sform/qform",
                    fix="check the mask against the image; rewrite the NIfTI with one affine",
                ),
                GeometryWarning,
            )
    elif qform is not None and qcode:
        affine, rule = np.asarray(qform, float), f"qform (code {int(qcode)})"
    else:
        raise UnsupportedDataError(
            format_message(
                "the NIfTI has neither sform nor qform set (codes 0): its position in space "
                "is unknown",
                series=source,
                attribute="sform_code/qform_code",
                fix="write the label map with the affine of the image it was drawn on",
            )
        )
    unit = str(header.get_xyzt_units()[0])
    scale = _UNIT_TO_MM.get(unit, 1.0)
    lps = _RAS_TO_LPS @ affine
    columns = lps[:3, :3] * scale
    spacing = np.linalg.norm(columns, axis=0)
    if np.any(spacing <= 0) or not np.all(np.isfinite(lps)):
        raise GeometryError(
            format_message("the NIfTI affine has a zero or non-finite column", series=source,
                           attribute=rule, fix="rewrite the NIfTI with a valid affine")
        )
    direction = columns / spacing[None, :]
    grid = Grid(
        shape=(shape[2], shape[1], shape[0]),
        origin_mm=(float(lps[0, 3] * scale), float(lps[1, 3] * scale), float(lps[2, 3] * scale)),
        spacing_mm=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        direction=tuple(float(v) for v in direction.ravel()),  # type: ignore[arg-type]
    )
    return grid, f"{rule}, RAS->LPS" + (f", units {unit}" if scale != 1.0 else "")


def _load(path: Path) -> tuple[np.ndarray, Any]:
    import nibabel as nib

    require_regular_file(path)
    try:
        img: Any = nib.load(str(path))
        data = np.asarray(img.dataobj)
    except Exception as exc:  # truncated gzip, bad header, wrong file type ...
        raise MaskError(
            format_message(
                f"cannot read {path.name} as NIfTI ({type(exc).__name__}: {exc})",
                series=str(path),
                fix="check that the file is a complete .nii or .nii.gz (re-export it)",
            )
        ) from exc
    return data, img.header


def read_nifti_labels(
    path: str | Path,
    reference: Volume | Grid,
    *,
    segments: Sequence[int | str] | None = None,
    names: Mapping[int, str] | None = None,
    fractional_threshold: float = 0.5,
) -> LabelMap:
    """Read a NIfTI label map (integer labels, or a 0..1 probability map) onto a grid.

    Parameters
    ----------
    path : str or Path
        ``.nii`` or ``.nii.gz`` file (never written to).
    reference : Volume or Grid
        The grid to put the labels on; NIfTI carries no frame of reference UID, so the
        caller vouches that the file is in the reference's patient space.
    segments : sequence of int or str, optional
        Label values (or names from ``names``) to keep. Default: all non-zero values.
    names : mapping of int to str, optional
        Names of the labels; default ``"label <n>"``.
    fractional_threshold : float
        A floating-point map whose values lie in [0, 1] and are not all 0/1 is a
        probability map: voxels ``>= fractional_threshold`` get label 1.

    Returns
    -------
    LabelMap
        Labels on the reference grid. Copied when the NIfTI grid equals the reference
        grid (within 1e-3 mm), else nearest-neighbour resampled (identity transform).

    Raises
    ------
    MaskError
        Unreadable file, non-integer labels, negative labels, 4-D data.
    UnsupportedDataError
        No sform/qform.
    """
    p = Path(path)
    source = str(p)
    ref = reference_of(reference)
    with record_warnings() as rec:
        data, header = _load(p)
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise MaskError(
                format_message(
                    f"the NIfTI array has shape {data.shape}; a 3-D label map is needed",
                    series=source,
                    fix="split multi-volume (4-D) files into one label map per volume",
                )
            )
        kind = "labels"
        if data.dtype.kind == "f":
            n_bad = int(np.count_nonzero(~np.isfinite(data)))
            if n_bad:
                raise MaskError(
                    format_message(
                        f"the NIfTI holds {n_bad:,} NaN or infinite value(s): not a label map",
                        series=source,
                        fix="replace them (0 for background) and store integer labels",
                    )
                )
            finite = data
            if np.all(finite == np.round(finite)):
                data = finite
            elif finite.min() >= 0.0 and finite.max() <= 1.0:
                data = (finite >= fractional_threshold).astype(np.uint8)
                kind = f"probability map, threshold {fractional_threshold}"
            else:
                raise MaskError(
                    format_message(
                        "the NIfTI holds non-integer values outside 0..1: not a label map",
                        series=source,
                        fix="threshold the map into integer labels first",
                    )
                )
        elif data.dtype.kind not in "iub":
            raise MaskError(
                format_message(f"NIfTI data type {data.dtype} is not a label type", series=source,
                               fix="store labels as integers")
            )
        if data.size and data.min() < 0:
            raise MaskError(
                format_message("the NIfTI label map has negative values", series=source,
                               fix="store labels as non-negative integers (0 = background)")
            )
        if data.size and data.max() > np.iinfo(np.uint16).max:
            raise MaskError(
                format_message(f"label {int(data.max())} exceeds 65535", series=source,
                               fix="relabel the map with smaller integers")
            )
        grid, rule = nifti_grid(header, data.shape, source)
        labels = np.ascontiguousarray(np.asarray(data, dtype=np.uint16).transpose(2, 1, 0))
        if grid.same_as(ref.grid, atol_mm=1e-3, atol_direction=1e-5):
            on_ref = labels
            placement = "same grid as the reference: copied"
        else:
            try:
                on_ref = resample_array(labels, grid, ref.grid, interpolation="nearest",
                                        default_value=0)
            except EmlesionError:
                raise
            except Exception as exc:
                raise MaskError(
                    format_message(f"resampling the NIfTI onto the reference failed ({exc})",
                                   series=source, fix="check the NIfTI affine")
                ) from exc
            placement = "nearest-neighbour resampled onto the reference grid"
        present = [int(v) for v in np.unique(labels) if v]
        label_names = {n: str((names or {}).get(n, f"label {n}")) for n in present}
        available = [(n, label_names[n]) for n in present]
        wanted = select_segments(available, segments, source, "label value")
        segs = [MaskSegment(n, label_names[n], on_ref == n) for n in wanted]
        if not segs:
            raise MaskError(
                format_message("the NIfTI label map is empty (all zero)", series=source,
                               fix="check that the right file was passed")
            )
        warn_empty_segments(segs, source, "labels outside the reference grid", kind="NIfTI")
        if placement.startswith("nearest"):
            own = np.isin(labels, wanted) if segments is not None else labels > 0
            points = grid.index_to_lps(np.argwhere(own))
            warn_outside(len(points), count_inside(points, ref.grid), source)
    inputs = {
        "affine": rule,
        "nifti_shape_zyx": grid.shape,
        "nifti_spacing_mm": grid.spacing_mm,
        "nifti_origin_mm": grid.origin_mm,
        "values": kind,
    }
    return build_labelmap(
        segs, ref, overlap=Overlap.ERROR, source=source,
        operation="emlesion.io.nifti.read_nifti_labels",
        rule=f"NIfTI {rule}; {placement}", inputs=inputs, recorded=rec.as_tuple(),
    )
