"""NIfTI exports of the lesion masks: one label map per timepoint with a JSON sidecar.

``emlesion response --nifti`` writes ``OUTDIR/nifti/<timepoint>_lesions.nii.gz`` for every
timepoint (:func:`write_study_nifti`), ``emlesion measure --nifti OUT.nii.gz`` the lesions
of its one timepoint (:func:`write_timepoint_nifti`). Each label map

* lies on the PET grid of its timepoint (same shape, spacing, orientation), so that reading
  it back onto that PET copies it voxel for voxel (:func:`emlesion.io.load_mask`, also
  ``emlesion measure --mask``) and gives the same lesion volumes;
* has the affine of the PET grid converted from DICOM LPS to NIfTI RAS+ (the first two
  rows negated), as both the sform and the qform (code 1, scanner coordinates) [1]_ [2]_;
* holds integer labels, 0 = background: in a study, the **track number** (``T3`` -> 3,
  every fragment of a split lesion gets its track's number, so a label means the same
  lesion at every timepoint); a lesion no track owns gets the next free number; for
  ``emlesion measure``, the lesion labels of its output.

The sidecar ``<same name>.json`` (``format`` ``"emlesion-labelmap"``, ``format_version`` 1)
names every label: ``{"labels": {"3": {"track_id": "T3", "names": [...], "lesion_labels":
[...], "mtv_ml": ...}}, "timepoint", "date", "pet_series_instance_uid",
"frame_of_reference_uid", "grid": {"shape_zyx", "spacing_mm", "origin_mm"}, ...}``.

The files are written atomically (temporary file, then rename); gzip with a zero time
stamp, so the same masks give the same bytes.

References
----------
.. [1] R. W. Cox et al., NIfTI-1 header ``nifti1.h``: ``qform_code``/``sform_code``, RAS+.
.. [2] nibabel documentation, "Coordinate systems and affines".
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emlesion import _atomic
from emlesion.errors import InvalidParameterError, MaskError, format_message
from emlesion.io.geometry import Grid

if TYPE_CHECKING:
    from emlesion.study import Study, Timepoint

__all__ = [
    "LABELMAP_FORMAT",
    "label_nifti_bytes",
    "nifti_affine",
    "sidecar_path",
    "study_label_map",
    "timepoint_sidecar",
    "write_label_nifti",
    "write_study_nifti",
    "write_timepoint_nifti",
]

#: ``format`` value of the JSON sidecar.
LABELMAP_FORMAT = "emlesion-labelmap"
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_TRACK_NUMBER = re.compile(r"T(\d+)$")


def nifti_affine(grid: Grid) -> np.ndarray:
    """The NIfTI (RAS+) affine of a grid: ``diag(-1, -1, 1, 1) @ grid.affine`` (LPS)."""
    return _LPS_TO_RAS @ grid.affine


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The JSON sidecar of a NIfTI path: ``x.nii.gz`` / ``x.nii`` -> ``x.json``."""
    p = Path(path)
    name = p.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return p.with_name(name[: -len(ext)] + ".json")
    raise InvalidParameterError(format_message(
        f"{p} is not a NIfTI file name", fix="end the output name with .nii.gz or .nii"))


def label_nifti_bytes(path: str | os.PathLike[str], labels: np.ndarray, grid: Grid) -> bytes:
    """The bytes of the NIfTI file that :func:`write_label_nifti` writes at ``path``.

    Parameters
    ----------
    path : path-like
        The destination (``.nii.gz``: gzip with a zero time stamp; ``.nii``: plain).
    labels : ndarray of int
        Labels on ``grid`` (0 = background, at most 65535).
    grid : Grid
        The grid of ``labels``.

    Returns
    -------
    bytes
    """
    import nibabel as nib

    arr = np.asarray(labels)
    if arr.shape != grid.shape:
        raise MaskError(format_message(
            f"label map shape {arr.shape} differs from the grid shape {grid.shape}",
            fix="pass the labels of that grid"))
    if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.uint16).max):
        raise MaskError(format_message("labels must lie in 0..65535",
                                       fix="relabel with smaller non-negative integers"))
    sidecar_path(path)  # checks the extension
    affine = nifti_affine(grid)
    img = nib.Nifti1Image(np.ascontiguousarray(arr.astype(np.uint16).transpose(2, 1, 0)),
                          affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = b"emlesion lesion label map"
    raw: bytes = img.to_bytes()
    if str(path).endswith(".gz"):
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
            gz.write(raw)
        raw = buf.getvalue()
    return raw


def write_label_nifti(
    path: str | os.PathLike[str],
    labels: np.ndarray,
    grid: Grid,
    sidecar: Mapping[str, Any],
) -> tuple[Path, Path]:
    """Write a label map ``(z, y, x)`` on ``grid`` as NIfTI, and its JSON sidecar.

    Parameters
    ----------
    path : path-like
        ``.nii.gz`` (gzip, zero time stamp) or ``.nii``.
    labels : ndarray of int
        Labels on ``grid`` (0 = background, at most 65535).
    grid : Grid
        The grid of ``labels`` (its LPS affine becomes the RAS+ sform and qform).
    sidecar : Mapping
        The JSON document written beside it (:func:`sidecar_path`).

    Returns
    -------
    (Path, Path)
        The NIfTI file and the sidecar.
    """
    side = sidecar_path(path)  # checks the extension first
    raw = label_nifti_bytes(path, labels, grid)
    out = _atomic.write_bytes_atomic(path, raw)
    text = json.dumps(sidecar, indent=2, allow_nan=False) + "\n"
    return out, _atomic.write_text_atomic(side, text)


def _grid_info(grid: Grid) -> dict[str, Any]:
    return {"shape_zyx": list(grid.shape), "spacing_mm": list(grid.spacing_mm),
            "origin_mm": list(grid.origin_mm), "direction": list(grid.direction)}


def _base_sidecar(tp: Timepoint, image: str) -> dict[str, Any]:
    from emlesion._version import __version__

    ident = tp.suv.identity
    return {
        "format": LABELMAP_FORMAT,
        "format_version": 1,
        "emlesion_version": __version__,
        "image": image,
        "timepoint": tp.label,
        "date": tp.date.isoformat() if tp.date is not None else None,
        "grid": "PET",
        "pet_series_instance_uid": ident.series_instance_uid,
        "frame_of_reference_uid": ident.frame_of_reference_uid,
        "coordinates": "NIfTI RAS+ (sform = qform, code 1) = DICOM LPS of the PET grid with "
                       "x and y negated",
        "geometry": _grid_info(tp.suv.grid),
    }


def study_label_map(study: Study, label: str) -> tuple[np.ndarray, dict[int, dict[str, Any]]]:
    """Track-numbered label map of timepoint ``label`` and the description of each value.

    Returns
    -------
    labels : ndarray of uint16
        On the PET grid; value ``n`` = track ``Tn`` (all its fragments), lesions no track
        owns numbered after the highest track number.
    entries : dict
        Value -> ``{"track_id", "names", "lesion_labels", "mtv_ml"}`` (``track_id`` null
        for a lesion no track owns).
    """
    tp = study.timepoint(label)
    src = np.asarray(tp.lesions.array)
    rows = {int(r["label"]): r for r in tp.lesion_dicts()}
    by_track: dict[str, list[int]] = {}
    free: list[int] = []
    for lab in tp.lesions.labels:
        tid = study.track_id_of(label, lab)
        if tid is None:
            free.append(int(lab))
        else:
            by_track.setdefault(tid, []).append(int(lab))
    numbers: dict[str, int] = {}
    for tid in by_track:
        m = _TRACK_NUMBER.fullmatch(tid)
        if m is not None and int(m.group(1)) not in numbers.values():
            numbers[tid] = int(m.group(1))
    next_free = max([*numbers.values(), 0]) + 1
    for tid in by_track:
        if tid not in numbers:
            numbers[tid] = next_free
            next_free += 1
    out = np.zeros(src.shape, dtype=np.uint16)
    entries: dict[int, dict[str, Any]] = {}
    groups: list[tuple[int, str | None, list[int]]] = [
        (numbers[tid], tid, labs) for tid, labs in by_track.items()]
    for lab in free:
        groups.append((next_free, None, [lab]))
        next_free += 1
    if next_free - 1 > np.iinfo(np.uint16).max:
        raise MaskError(format_message("more than 65535 tracks at one timepoint",
                                       series=tp.suv.identity.series_instance_uid or None))
    for value, tid, labs in sorted(groups):
        out[np.isin(src, labs)] = value
        mtvs = [rows[lab]["mtv_ml"] for lab in labs if lab in rows]
        entries[value] = {"track_id": tid, "names": [tp.lesions.name(lab) for lab in labs],
                          "lesion_labels": labs,
                          "mtv_ml": float(sum(mtvs)) if mtvs else None}
    return out, entries


def write_study_nifti(study: Study, out_dir: str | os.PathLike[str]) -> list[Path]:
    """``<out_dir>/<timepoint>_lesions.nii.gz`` and its sidecar for every timepoint.

    A timepoint without a segmented lesion gets an all-zero map (its sidecar lists no
    label), so that every timepoint has its file.

    Returns
    -------
    list of Path
        NIfTI then sidecar, per timepoint in study order.
    """
    out = Path(out_dir)
    written: list[Path] = []
    for tp in study.timepoints:
        name = f"{_safe(tp.label)}_lesions.nii.gz"
        labels, entries = study_label_map(study, tp.label)
        side = _base_sidecar(tp, name)
        side["labels"] = {str(k): v for k, v in entries.items()}
        side["label_meaning"] = "track number: value n is track Tn at every timepoint"
        written.extend(write_label_nifti(out / name, labels, tp.suv.grid, side))
    return written


def write_timepoint_nifti(tp: Timepoint, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The lesions of one timepoint (their own labels) as NIfTI on its PET grid + sidecar.

    The ``emlesion measure --nifti OUT`` output: the labels are those of the measure JSON
    and CSV (``label``).
    """
    return write_label_nifti(path, np.asarray(tp.lesions.array), tp.suv.grid,
                             timepoint_sidecar(tp, path))


def timepoint_sidecar(tp: Timepoint, path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON sidecar of :func:`write_timepoint_nifti` for the NIfTI file ``path``."""
    rows = {int(r["label"]): r for r in tp.lesion_dicts()}
    side = _base_sidecar(tp, Path(path).name)
    side["labels"] = {str(lab): {"track_id": None, "names": [tp.lesions.name(lab)],
                                 "lesion_labels": [int(lab)],
                                 "mtv_ml": rows[lab]["mtv_ml"] if lab in rows else None}
                      for lab in tp.lesions.labels}
    side["label_meaning"] = "lesion label of the emlesion measure output"
    return side


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "timepoint"
