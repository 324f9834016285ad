"""Load a PET or CT series into a :class:`~emlesion.io.volume.Volume`.

Rules (see the domain reference, section 5):

* slices are sorted by their position ``d = n . IPP`` along the normal
  ``n = row cosine x column cosine`` of ImageOrientationPatient, never by file name or
  InstanceNumber [1]_;
* every slice gets its own RescaleSlope and RescaleIntercept (CT in HU, PET in its
  stored ``Units``) [2]_;
* the slice step is the median of the steps between sorted positions; steps within
  ``spacing_rtol`` / ``spacing_atol_mm`` of it are accepted as a regular grid (a
  :class:`~emlesion.errors.GeometryWarning` when a step deviates by more than
  ``spacing_warn_mm``), steps close to ``k`` times the median are missing slices, anything
  else is irregular spacing [3]_;
* mixed orientations, duplicate positions, gantry tilt (slices not stacked along the
  normal), differing matrix sizes or pixel spacings, fewer than two slices and unreadable
  pixel data are errors whose message names the series, the attribute and the fix.

Multi-frame objects (Enhanced CT/PET, Legacy Converted Enhanced CT/PET, any instance with
NumberOfFrames > 1) are rejected with :class:`~emlesion.errors.UnsupportedDataError`; the
message says how to convert them to single-frame images.

Index 0 of the array is the slice with the smallest ``d``; the grid's direction columns are
the row cosine, the column cosine and ``n``; the origin is the ImagePositionPatient of
slice 0. This is the geometry SimpleITK's ``ImageSeriesReader`` produces for the same files.

References
----------
.. [1] DICOM PS3.3 C.7.6.2.1.1 (Image Position/Orientation) and C.8.9.4.1.9 (PET Image
   Index: slices ordered along the normal).
.. [2] DICOM PS3.3 C.11.1.1.2 (Modality LUT: output = slope x stored value + intercept).
.. [3] dicom2nifti, ``common.validate_slice_increment`` (rtol 5 %, atol 0.1 mm).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from emlesion.errors import (
    DicomQuirkWarning,
    DicomReadError,
    GeometryError,
    GeometryWarning,
    InvalidAttributeError,
    InvalidParameterError,
    MissingAttributeError,
    SeriesNotFoundError,
    UnsupportedDataError,
    format_message,
    warn_external,
)
from emlesion.io.dicom import (
    DicomFile,
    LocatedHeader,
    decode_pixels,
    header_text,
    open_regular_file,
    read_file,
)
from emlesion.io.discover import (
    FileFacts,
    SeriesInfo,
    SeriesRole,
    _short,
    classify_role,
    group_series,
    iter_files,
    looks_like_dicom,
    warn_reader_warnings,
)
from emlesion.io.geometry import Grid
from emlesion.io.nifti_image import PetDeclaration, is_nifti_path, load_nifti_image
from emlesion.io.volume import SeriesIdentity, SliceInfo, Volume
from emlesion.provenance import ProvenanceStep, record_warnings

__all__ = [
    "COSINE_NORM_TOLERANCE",
    "SPACING_RANGE_MM",
    "GeometryTolerances",
    "load_ct",
    "load_pet",
    "load_volume",
]

logger = logging.getLogger(__name__)

Source = str | os.PathLike[str] | SeriesInfo | Sequence[str | os.PathLike[str]]

_ENHANCED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT",
    "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT",
    "1.2.840.10008.5.1.4.1.1.130": "Enhanced PET",
    "1.2.840.10008.5.1.4.1.1.128.1": "Legacy Converted Enhanced PET",
}
#: Accepted range of PixelSpacing and of the slice spacing, in mm. Clinical CT pixels are
#: about 0.2-1.5 mm (a 512 matrix over a 10-70 cm field of view) and PET pixels 1-8 mm
#: (128-400 matrices over 50-80 cm); slices are 0.5-10 mm apart (domain reference 5;
#: DICOM PS3.3 C.7.6.2, C.8.9.4). The range is wide on purpose, 20x below and 4x above
#: those, so that only a unit mistake or a corrupt value (1e30, 1e-9) is refused: a
#: spacing outside it would make lesion volumes meaningless (1e61 mL from 1e30 mm).
SPACING_RANGE_MM: tuple[float, float] = (0.01, 40.0)
#: Largest accepted deviation of the length of an ImageOrientationPatient cosine from 1
#: (PS3.3 C.7.6.2.1.1: the cosines are unit vectors; exported values are rounded to a few
#: decimals, so 1 % covers rounding and nothing else).
COSINE_NORM_TOLERANCE: float = 0.01
_TAGS = {
    "ImagePositionPatient": "(0020,0032)",
    "ImageOrientationPatient": "(0020,0037)",
    "PixelSpacing": "(0028,0030)",
    "Rows": "(0028,0010)",
    "Columns": "(0028,0011)",
    "RescaleSlope": "(0028,1053)",
    "RescaleIntercept": "(0028,1052)",
    "Units": "(0054,1001)",
    "NumberOfFrames": "(0028,0008)",
    "SOPClassUID": "(0008,0016)",
}


def _attr(keyword: str) -> str:
    return f"{keyword} {_TAGS.get(keyword, '')}".strip()


@dataclass(frozen=True)
class GeometryTolerances:
    """Tolerances of the slice-geometry checks (``tolerances=`` of the loaders).

    Pass one instance to :func:`load_pet`, :func:`load_ct` or :func:`load_volume`; change
    one field with :func:`dataclasses.replace`. The defaults follow dicom2nifti [1]_.

    Parameters
    ----------
    orientation : float
        Largest accepted difference between the ImageOrientationPatient cosines of any
        slice and those of the first slice (default 1e-3, dicom2nifti's value).
    spacing_rtol, spacing_atol_mm : float
        A step between sorted slice positions is regular when
        ``|step - median| <= spacing_atol_mm + spacing_rtol * median`` (defaults 0.05 and
        0.1 mm, dicom2nifti's test).
    spacing_warn_mm : float
        Regular steps deviating from the median by more than this emit a GeometryWarning
        (default 0.01 mm).
    duplicate_mm : float
        Two slices closer than this along the normal are duplicates (default 0.01 mm).
    tilt_deg : float
        Largest accepted angle between the normal and the direction in which the slice
        positions progress (default 0.1 degree); above it the series is gantry tilted.

    References
    ----------
    .. [1] dicom2nifti, ``common.validate_slice_increment`` (atol 0.1 mm, rtol 5 %) and its
       orientation check (cosines equal within 1e-3).

    Examples
    --------
    >>> from dataclasses import replace
    >>> replace(GeometryTolerances(), spacing_atol_mm=3.0).spacing_atol_mm
    3.0
    """

    orientation: float = 1e-3
    spacing_rtol: float = 0.05
    spacing_atol_mm: float = 0.1
    spacing_warn_mm: float = 0.01
    duplicate_mm: float = 0.01
    tilt_deg: float = 0.1

    def to_dict(self) -> dict[str, float]:
        """A JSON-serialisable dict."""
        return {
            "orientation": self.orientation,
            "spacing_rtol": self.spacing_rtol,
            "spacing_atol_mm": self.spacing_atol_mm,
            "spacing_warn_mm": self.spacing_warn_mm,
            "duplicate_mm": self.duplicate_mm,
            "tilt_deg": self.tilt_deg,
        }


#: Names of the :class:`GeometryTolerances` fields (the deprecated individual keywords).
_TOLERANCE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(GeometryTolerances))


def _tolerances(
    tolerances: GeometryTolerances | None, deprecated: Mapping[str, float], function: str
) -> GeometryTolerances:
    """The tolerances of a loader call: ``tolerances=`` or, deprecated, individual keywords.

    The individual keywords (``spacing_atol_mm=3.0`` ...) still work for one release, with a
    :class:`DeprecationWarning` naming the replacement; unknown keywords raise the
    ``TypeError`` Python raises for any unexpected keyword argument.
    """
    if not deprecated:
        return tolerances if tolerances is not None else GeometryTolerances()
    unknown = [k for k in deprecated if k not in _TOLERANCE_FIELDS]
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")
    given = ", ".join(f"{k}={v!r}" for k, v in deprecated.items())
    if tolerances is not None:
        raise InvalidParameterError(format_message(
            f"{function}() got both tolerances= and the individual tolerance keyword(s) {given}",
            fix=f"pass only tolerances=GeometryTolerances({given}) (or dataclasses.replace "
            "of your tolerances)"))
    warn_external(format_message(
        f"the individual geometry tolerance keyword(s) of {function}() ({given}) are "
        "deprecated and will be removed in the next release",
        fix=f"pass tolerances=GeometryTolerances({given}) "
        "(from emlesion.io import GeometryTolerances)"), DeprecationWarning)
    return GeometryTolerances(**{k: float(v) for k, v in deprecated.items()})


# ---------------------------------------------------------------------------- selection
@dataclass(frozen=True)
class _Unread:
    """A file that could not be loaded: why, and its header when that much was readable."""

    path: str
    problem: str
    header: Dataset | None


def _read_all(
    paths: Sequence[str], located: Mapping[str, LocatedHeader] | None = None
) -> tuple[list[DicomFile], list[_Unread], list[str]]:
    """Read every file: (DICOM files read, DICOM files that failed, non-DICOM files).

    A file that fails to load (truncated pixel data, not a regular file, unreadable) is not
    dropped: it is returned with its problem, and with its header when the header alone can
    be read, so that the caller can tell whether it belongs to the series being loaded.
    A file whose header discovery already read (``located``) is not parsed again unless it
    changed since (:meth:`~emlesion.io.dicom.LocatedHeader.reopen`).
    """
    out: list[DicomFile] = []
    broken: list[_Unread] = []
    ignored: list[str] = []
    for p in paths:
        try:
            known = located.get(p) if located else None
            again = known.reopen() if known is not None else None
            out.append(again if again is not None else read_file(p, lazy_pixels=True))
        except DicomReadError as exc:
            if not looks_like_dicom(p) and _opens(p):
                logger.debug("ignoring non-DICOM file %s", p)
                ignored.append(p)
                continue
            head: Dataset | None
            try:
                head = read_file(p, with_pixels=False).header
            except DicomReadError:
                head = None
            broken.append(_Unread(p, _short(exc), head))
    return out, broken, ignored


def _opens(path: str) -> bool:
    try:
        with open_regular_file(path):
            return True
    except OSError:
        return False


def _name_files(items: Sequence[_Unread], limit: int = 5) -> str:
    shown = "; ".join(u.problem for u in items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


@dataclass(frozen=True)
class _Selection:
    """The files of the series to load, and the files around it that could not be read."""

    files: list[DicomFile]
    info: SeriesInfo | None
    where: str
    unplaced: tuple[_Unread, ...] = ()
    """DICOM files (or files that could not be opened) whose series is unknown."""
    not_dicom: tuple[str, ...] = ()
    """Files beside the series that are not DICOM at all."""

    def suspects(self) -> str:
        """Text naming the files that might be the missing slices (for gap errors)."""
        parts = []
        if self.unplaced:
            parts.append(f"{len(self.unplaced)} file(s) could not be read: "
                         + _name_files(self.unplaced))
        if self.not_dicom:
            names = ", ".join(os.path.basename(p) for p in self.not_dicom[:5])
            more = f" and {len(self.not_dicom) - 5} more" if len(self.not_dicom) > 5 else ""
            parts.append(f"{len(self.not_dicom)} file(s) beside the series are not DICOM "
                         f"(no DICM marker): {names}{more}")
        return ("; " + "; ".join(parts)) if parts else ""


def _select(
    files: list[DicomFile],
    roles: tuple[SeriesRole, ...],
    what: str,
    where: str,
    series_uid: str | None,
    modalities: tuple[str, ...],
) -> tuple[list[DicomFile], SeriesInfo]:
    """Group ``files`` into series and choose the one to load."""
    facts: list[FileFacts] = []
    identities: dict[tuple[str, SeriesRole], SeriesIdentity] = {}
    for f in files:
        uid = header_text(f.header, "SeriesInstanceUID")
        role = classify_role(f.header)
        ident = identities.get((uid, role))
        if ident is None:  # one identity per series: pydicom attribute access is slow
            ident = identities[uid, role] = SeriesIdentity.from_dataset(f.header)
        corrected = header_text(f.header, "CorrectedImage")
        facts.append(
            FileFacts(
                path=f.path,
                series_uid=uid,
                role=role,
                sop_class_uid=header_text(f.header, "SOPClassUID"),
                identity=ident,
                units=header_text(f.header, "Units"),
                corrected_image=tuple(v for v in corrected.split("\\") if v),
            )
        )
    series = group_series(facts)
    listing = "; ".join(
        f"{s.role.value} {s.modality} '{s.series_description}' ({s.n_instances} files, "
        f"uid {s.series_instance_uid})"
        for s in series
    ) or "none"
    if series_uid is not None:
        chosen = [s for s in series if s.series_instance_uid == series_uid]
        chosen_img = [s for s in chosen if s.role in roles] or [
            s for s in chosen if s.modality in modalities and s.role is not SeriesRole.OTHER
        ]
        if not chosen_img:
            raise SeriesNotFoundError(
                format_message(
                    f"no {what} series with SeriesInstanceUID {series_uid} in {where} "
                    f"(found: {listing})",
                    series=series_uid,
                    attribute="SeriesInstanceUID (0020,000E)",
                    fix="pass one of the listed UIDs, or use emlesion info to list the series",
                )
            )
        info = chosen_img[0]
    else:
        candidates = [s for s in series if s.role is roles[0]]
        if not candidates:
            others = [s for s in series if s.role in roles[1:]]
            if others:
                raise SeriesNotFoundError(
                    format_message(
                        f"no {roles[0].value} series in {where}, only {others[0].role.value} "
                        f"(found: {listing})",
                        series=where,
                        fix=f"pass series_uid='{others[0].series_instance_uid}' to load it "
                        "anyway (PET without attenuation correction cannot give SUVs)"
                        if others[0].role.is_pet
                        else f"pass series_uid='{others[0].series_instance_uid}'",
                    )
                )
            raise SeriesNotFoundError(
                format_message(
                    f"no {what} series in {where} (found: {listing})",
                    series=where,
                    fix=f"point the loader at the folder or files of the {what} series",
                )
            )
        if len(candidates) > 1:
            raise SeriesNotFoundError(
                format_message(
                    f"{len(candidates)} {roles[0].value} series in {where}, cannot choose: "
                    + "; ".join(
                        f"'{s.series_description}' ({s.n_instances} files, study "
                        f"{s.study_date or '?'}, uid {s.series_instance_uid})"
                        for s in candidates
                    ),
                    series=where,
                    fix="pass series_uid=<SeriesInstanceUID> to choose one",
                )
            )
        info = candidates[0]
    keep = set(info.files)
    return [f for f in files if f.path in keep], info


def _resolve(
    source: Source,
    roles: tuple[SeriesRole, ...],
    what: str,
    series_uid: str | None,
    modalities: tuple[str, ...],
) -> _Selection:
    if isinstance(source, SeriesInfo):
        if series_uid is not None and series_uid != source.series_instance_uid:
            raise SeriesNotFoundError(
                format_message(
                    f"series_uid {series_uid} differs from the SeriesInfo given",
                    series=source.series_instance_uid,
                    fix="pass either a SeriesInfo or series_uid, not both",
                )
            )
        paths: list[str] = list(source.files)
        where = f"'{source.series_description}' ({source.series_instance_uid})"
        series_uid = source.series_instance_uid
    elif isinstance(source, (str, os.PathLike)):
        paths = iter_files(source)
        where = os.fspath(source)
    else:
        paths = [os.fspath(p) for p in source]
        where = f"{len(paths)} file(s)" + (f" in {os.path.dirname(paths[0])}" if paths else "")
    if not paths:
        raise SeriesNotFoundError(
            format_message(f"no files to load in {where}", fix="check the path")
        )
    located = ({h.file.path: h for h in source._located}
               if isinstance(source, SeriesInfo) else None)
    files, broken, ignored = _read_all(paths, located)
    try:
        chosen, info = _select(files, roles, what, where, series_uid, modalities)
    except SeriesNotFoundError as exc:
        if broken:
            raise DicomReadError(format_message(
                f"{len(broken)} file(s) in {where} cannot be read, so no {what} series could "
                f"be chosen: {_name_files(broken)}", series=where,
                fix="copy the files again from the source")) from exc
        raise
    members = [u for u in broken if u.header is not None
               and header_text(u.header, "SeriesInstanceUID") == info.series_instance_uid]
    if members:
        raise DicomReadError(format_message(
            f"{len(members)} of the {len(chosen) + len(members)} file(s) of the series cannot "
            f"be loaded: {_name_files(members)}",
            series=f"{info.series_instance_uid} '{info.series_description}'",
            fix="copy the series again from the source (the files named are damaged); "
            "emlesion does not build a volume with slices left out"))
    unplaced = tuple(u for u in broken if u.header is None)
    if isinstance(source, SeriesInfo):
        loaded = {f.path for f in chosen}
        lost = [p for p in source.files if p not in loaded]
        if lost:
            shown = ", ".join(lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
            raise DicomReadError(format_message(
                f"{len(lost)} of the {len(source.files)} file(s) that discovery assigned to "
                f"the series were not loaded (they no longer read as members of it): {shown}"
                + _Selection(chosen, info, where, unplaced, tuple(ignored)).suspects(),
                series=where,
                fix="the files changed since discovery or are damaged; discover the folder "
                "again, or copy the series again from the source"))
    if unplaced:  # they may be slices of this series: never build a volume without them
        raise DicomReadError(format_message(
            f"{len(unplaced)} DICOM file(s) in {where} cannot be read, so emlesion cannot "
            f"tell whether they belong to the series: {_name_files(unplaced)}",
            series=f"{info.series_instance_uid} '{info.series_description}'",
            fix="copy the files again from the source, or remove them from the folder if "
            "they are not part of the study"))
    return _Selection(chosen, info, where, unplaced, tuple(ignored))


# ---------------------------------------------------------------------------- per-slice facts
def _floats(ds: Dataset, keyword: str, n: int, series: str, path: str) -> np.ndarray:
    text = header_text(ds, keyword)
    if not text:
        raise MissingAttributeError(
            format_message(
                f"{os.path.basename(path)} has no {keyword}",
                series=series,
                attribute=_attr(keyword),
                fix="the slice cannot be placed in space; remove the file or re-export the series",
            )
        )
    try:
        arr = np.array([float(v) for v in text.split("\\")], dtype=float)
    except ValueError as exc:
        raise InvalidAttributeError(
            format_message(
                f"{os.path.basename(path)}: {keyword} {text!r} is not numeric",
                series=series,
                attribute=_attr(keyword),
                fix="repair the header or remove the file",
            )
        ) from exc
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise InvalidAttributeError(
            format_message(
                f"{os.path.basename(path)}: {keyword} must hold {n} finite numbers, got {text!r}",
                series=series,
                attribute=_attr(keyword),
                fix="repair the header or remove the file",
            )
        )
    return arr


def _opt_float(ds: Dataset, keyword: str) -> float | None:
    text = header_text(ds, keyword)
    if not text:
        return None
    try:
        return float(text.split("\\")[0])
    except ValueError:
        return None


def _opt_int(ds: Dataset, keyword: str) -> int | None:
    text = header_text(ds, keyword)
    if not text:
        return None
    try:
        return int(float(text.split("\\")[0]))
    except ValueError:
        return None


def _rescale(ds: Dataset, series: str, path: str) -> tuple[float, float]:
    slope = _opt_float(ds, "RescaleSlope")
    intercept = _opt_float(ds, "RescaleIntercept")
    for kw, raw in (("RescaleSlope", slope), ("RescaleIntercept", intercept)):
        if raw is None and header_text(ds, kw):
            raise InvalidAttributeError(
                format_message(
                    f"{os.path.basename(path)}: {kw} {header_text(ds, kw)!r} is not a number",
                    series=series,
                    attribute=_attr(kw),
                    fix="repair the header",
                )
            )
    slope = 1.0 if slope is None else slope
    intercept = 0.0 if intercept is None else intercept
    if slope < 0.0:
        raise InvalidAttributeError(
            format_message(
                f"{os.path.basename(path)}: RescaleSlope {slope} is negative; it would turn "
                "activity or attenuation upside down (negative SUVs, inverted HU)",
                series=series,
                attribute=_attr("RescaleSlope"),
                fix="repair the header (PET and CT rescale slopes are positive) or export the "
                "series again",
            )
        )
    if slope == 0.0 or not math.isfinite(slope) or not math.isfinite(intercept):
        raise InvalidAttributeError(
            format_message(
                f"{os.path.basename(path)}: RescaleSlope {slope} / RescaleIntercept {intercept} "
                "would give meaningless values",
                series=series,
                attribute=_attr("RescaleSlope"),
                fix="repair the header or remove the slice",
            )
        )
    return slope, intercept


def _check_multiframe(files: list[DicomFile], series: str) -> None:
    for f in files:
        sop = header_text(f.header, "SOPClassUID")
        frames = _opt_int(f.header, "NumberOfFrames") or 1
        if sop in _ENHANCED_SOP_CLASSES or frames > 1:
            kind = _ENHANCED_SOP_CLASSES.get(sop, f"multi-frame ({frames} frames)")
            raise UnsupportedDataError(
                format_message(
                    f"{os.path.basename(f.path)} is a {kind} object; emlesion reads single-frame "
                    "image series only",
                    series=series,
                    attribute=_attr("SOPClassUID") if sop in _ENHANCED_SOP_CLASSES
                    else _attr("NumberOfFrames"),
                    fix="convert it to single-frame images first, e.g. with dcm4che "
                    "'emf2sf' or dicom3tools 'dcuncat', or export classic single-frame "
                    "images from the scanner/PACS",
                )
            )


def _check_modality(files: list[DicomFile], series: str) -> None:
    """Every slice of one series has the same Modality (a CT slice in a PET series is an
    error, whatever its SOP class says)."""
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(header_text(f.header, "Modality").upper(),
                          []).append(os.path.basename(f.path))
    if len(groups) > 1:
        desc = "; ".join(f"{m or '(empty)'}: {len(v)} slice(s), e.g. {', '.join(v[:3])}"
                         for m, v in sorted(groups.items(), key=lambda kv: -len(kv[1])))
        raise InvalidAttributeError(format_message(
            f"the slices of one series disagree on Modality ({desc})",
            series=series, attribute="Modality (0008,0060)",
            fix="the series mixes images of different modalities; remove the odd slices or "
            "copy the series again from the source"))


def _check_slice_count(files: list[DicomFile], stack: _Stack, series: str,
                       suspects: str) -> None:
    """PET: the number of slices loaded must equal NumberOfSlices (0054,0081).

    The gap check sees slices missing between others; slices missing at either end of the
    stack leave no gap. A PET image states how many slices its volume has (PET Image
    Module, Type 1 [1]_), with ImageIndex (0054,1330) numbering them, so a shorter stack is
    detected and the missing indices named.

    References
    ----------
    .. [1] DICOM PS3.3 C.8.9.4 (PET Image Module: Number of Slices, Image Index).
    """
    if header_text(files[0].header, "Modality").upper() != "PT":
        return
    declared = {_opt_int(f.header, "NumberOfSlices") for f in files}
    if len(declared) != 1:
        return  # absent on some slices or inconsistent: nothing reliable to compare with
    n_declared = declared.pop()
    if n_declared is None or n_declared <= len(files):
        return
    indices = {_opt_int(f.header, "ImageIndex") for f in files}
    missing_text = ""
    if None not in indices:
        missing = [i for i in range(1, n_declared + 1) if i not in indices]
        missing_text = f"; ImageIndex values missing: {_ranges(missing)}"
    raise GeometryError(format_message(
        f"the series declares {n_declared} slices (NumberOfSlices) but {len(files)} were "
        f"found: {n_declared - len(files)} slice(s) missing (the stack spans "
        f"{stack.grid.shape[0]} slices of {stack.grid.spacing_mm[2]:.3f} mm){missing_text}"
        + suspects,
        series=series, attribute="NumberOfSlices (0054,0081)",
        fix="copy the complete series again; the export or transfer lost files"))


def _ranges(values: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    out: list[str] = []
    start = prev = None
    for v in values:
        if start is None:
            start = prev = v
        elif prev is not None and v == prev + 1:
            prev = v
        else:
            out.append(f"{start}-{prev}" if start != prev else f"{start}")
            start = prev = v
    if start is not None:
        out.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ", ".join(out)


# ---------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _Stack:
    order: np.ndarray  # indices of files in z order
    grid: Grid
    positions_mm: np.ndarray  # IPP per file, in z order
    steps_mm: np.ndarray
    rule: str
    inputs: dict[str, Any]


def _fmt_iop(v: np.ndarray) -> str:
    return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"


def _geometry(files: list[DicomFile], series: str, tol: GeometryTolerances,
              suspects: str = "") -> _Stack:
    """Check the slices' geometry and stack them along the normal (module docstring)."""
    n_files = len(files)
    if n_files < 2:
        raise GeometryError(
            format_message(
                f"a volume needs at least two slices, found {n_files}",
                series=series,
                fix="point the loader at the whole series (all its files)",
            )
        )
    heads = [f.header for f in files]
    iops = np.array([_floats(h, "ImageOrientationPatient", 6, series, f.path)
                     for h, f in zip(heads, files)])
    ipps = np.array([_floats(h, "ImagePositionPatient", 3, series, f.path)
                     for h, f in zip(heads, files)])
    spacings = np.array([_floats(h, "PixelSpacing", 2, series, f.path)
                         for h, f in zip(heads, files)])
    _check_same_plane_grid(files, iops, spacings, series, tol)
    row, col = _unit_cosines(files, iops, spacings, series)
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    order, d_sorted, steps = _sort_along_normal(files, ipps, normal, series, tol)
    pos = ipps[order]
    tilt_deg = _check_tilt(pos, normal, series, tol)
    median, max_dev = _slice_spacing(files, order, d_sorted, steps, series, tol, suspects)
    sx, sy = float(spacings[0, 1]), float(spacings[0, 0])
    direction = np.column_stack([row, col, normal]).reshape(-1)
    grid = Grid(
        shape=(n_files, int(heads[0].Rows), int(heads[0].Columns)),
        origin_mm=tuple(pos[0]),
        spacing_mm=(sx, sy, median),
        direction=tuple(direction),
    )
    rule = (
        "sorted by position along the normal (row x column cosine); slice spacing = median "
        "step"
    )
    inputs = {
        "n_slices": n_files,
        "slice_spacing_mm": median,
        "slice_step_min_mm": float(steps.min()),
        "slice_step_max_mm": float(steps.max()),
        "slice_step_max_deviation_mm": max_dev,
        "tilt_deg": tilt_deg,
        "tolerances": tol.to_dict(),
    }
    return _Stack(order, grid, pos, steps, rule, inputs)


def _check_same_plane_grid(files: list[DicomFile], iops: np.ndarray, spacings: np.ndarray,
                           series: str, tol: GeometryTolerances) -> None:
    """Every slice has the orientation, matrix size and PixelSpacing of the first."""
    heads = [f.header for f in files]
    dev = np.max(np.abs(iops - iops[0]), axis=1)
    if np.any(dev > tol.orientation):
        groups: dict[str, list[str]] = {}
        for v, f in zip(iops, files):
            groups.setdefault(_fmt_iop(np.round(v, 3)), []).append(os.path.basename(f.path))
        desc = "; ".join(f"{k}: {len(v)} slice(s), e.g. {v[0]}" for k, v in groups.items())
        raise GeometryError(
            format_message(
                f"slices have different orientations ({desc})",
                series=series,
                attribute=_attr("ImageOrientationPatient"),
                fix="the files mix several stacks (a localizer, another reconstruction); "
                "load the files of one stack only, or raise orientation= if the difference "
                "is rounding",
            )
        )
    sizes = {(_opt_int(h, "Rows"), _opt_int(h, "Columns")) for h in heads}
    if len(sizes) > 1:
        raise GeometryError(
            format_message(
                "slices have different matrix sizes "
                + ", ".join(f"{r}x{c}" for r, c in sorted(sizes, key=str)),
                series=series,
                attribute=f"{_attr('Rows')} / {_attr('Columns')}",
                fix="the files mix several series or reconstructions; load one of them",
            )
        )
    if np.any(np.abs(spacings - spacings[0]) > 1e-4 * np.maximum(1.0, spacings[0])):
        raise GeometryError(
            format_message(
                "slices have different PixelSpacing values "
                + ", ".join(sorted({f"{a:.4g}\\{b:.4g}" for a, b in spacings})),
                series=series,
                attribute=_attr("PixelSpacing"),
                fix="the files mix several reconstructions; load one of them",
            )
        )


def _unit_cosines(files: list[DicomFile], iops: np.ndarray, spacings: np.ndarray,
                  series: str) -> tuple[np.ndarray, np.ndarray]:
    """The row and column cosines of the first slice, normalised, once checked: unit length
    (within COSINE_NORM_TOLERANCE), PixelSpacing within SPACING_RANGE_MM, perpendicular."""
    row = iops[0, :3]
    col = iops[0, 3:]
    norms = (float(np.linalg.norm(row)), float(np.linalg.norm(col)))
    if any(abs(n - 1.0) > COSINE_NORM_TOLERANCE for n in norms):
        raise GeometryError(
            format_message(
                f"the row and column cosines {_fmt_iop(iops[0])} have lengths "
                f"{norms[0]:.4g} and {norms[1]:.4g}, not 1",
                series=series,
                attribute=_attr("ImageOrientationPatient"),
                fix="repair the header: ImageOrientationPatient holds two unit vectors "
                "(1\\0\\0\\0\\1\\0 for axial slices), or export the series again",
            )
        )
    row = row / norms[0]
    col = col / norms[1]
    lo, hi = SPACING_RANGE_MM
    bad_spacing = [f for f, sp in zip(files, spacings) if not np.all((sp >= lo) & (sp <= hi))]
    if bad_spacing:
        sp = spacings[files.index(bad_spacing[0])]
        raise GeometryError(
            format_message(
                f"PixelSpacing {sp[0]:.6g}\\{sp[1]:.6g} mm of "
                f"{os.path.basename(bad_spacing[0].path)} ({len(bad_spacing)} slice(s)) is "
                f"outside the range {lo}-{hi} mm of human PET/CT images",
                series=series,
                attribute=_attr("PixelSpacing"),
                fix="repair the header (PixelSpacing is in mm, row spacing then column "
                "spacing) or export the series again",
            )
        )
    if abs(float(row @ col)) > 1e-3:
        raise GeometryError(
            format_message(
                f"row and column cosines are not perpendicular ({_fmt_iop(iops[0])})",
                series=series,
                attribute=_attr("ImageOrientationPatient"),
                fix="repair the header",
            )
        )
    return row, col


def _sort_along_normal(files: list[DicomFile], ipps: np.ndarray, normal: np.ndarray,
                       series: str, tol: GeometryTolerances
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, d_sorted, steps)``: the slices sorted by ``d = n . IPP`` (InstanceNumber
    breaks ties), their sorted positions and the steps between them; duplicates refused."""
    heads = [f.header for f in files]
    d = ipps @ normal
    instance = [(_opt_int(h, "InstanceNumber") or 0) for h in heads]
    order = np.lexsort((np.array(instance), d))
    d_sorted = d[order]
    steps = np.diff(d_sorted)
    dup = np.nonzero(steps < tol.duplicate_mm)[0]
    if dup.size:
        pairs = []
        for i in dup[:5]:
            a, b = files[order[i]], files[order[i + 1]]
            pairs.append(
                f"{os.path.basename(a.path)} / {os.path.basename(b.path)} at {d_sorted[i]:.3f} mm "
                f"(SOPInstanceUID {header_text(a.header, 'SOPInstanceUID')} / "
                f"{header_text(b.header, 'SOPInstanceUID')})"
            )
        more = f" and {dup.size - 5} more" if dup.size > 5 else ""
        raise GeometryError(
            format_message(
                f"{dup.size} pair(s) of slices share a position along the normal: "
                + "; ".join(pairs) + more,
                series=series,
                attribute=_attr("ImagePositionPatient"),
                fix="the files hold duplicates, a second reconstruction or dynamic/gated "
                "frames; remove the extra files or load one reconstruction via series_uid",
            )
        )
    return order, d_sorted, steps


def _check_tilt(pos: np.ndarray, normal: np.ndarray, series: str,
                tol: GeometryTolerances) -> float:
    """The angle (degrees) between the normal and the direction the sorted slice positions
    progress in; a gantry-tilted (or sheared) stack is refused."""
    span = pos[-1] - pos[0]
    along = float(span @ normal)
    lateral = float(np.linalg.norm(span - along * normal))
    tilt_deg = math.degrees(math.atan2(lateral, abs(along)))
    if tilt_deg > tol.tilt_deg:
        raise GeometryError(
            format_message(
                f"the slice positions progress at {tilt_deg:.2f} degrees from the slice normal "
                "(gantry tilt or sheared stack)",
                series=series,
                attribute=f"{_attr('ImagePositionPatient')} vs {_attr('ImageOrientationPatient')}",
                fix="resample the series onto an orthogonal grid first (e.g. dcm2niix corrects "
                "gantry tilt), or raise tilt_deg= if the angle is negligible for your use",
            )
        )
    return tilt_deg


def _slice_spacing(files: list[DicomFile], order: np.ndarray, d_sorted: np.ndarray,
                   steps: np.ndarray, series: str, tol: GeometryTolerances,
                   suspects: str) -> tuple[float, float]:
    """``(median step, largest deviation from it)``: the slice spacing, once the steps are
    checked (within SPACING_RANGE_MM; no missing slices; regular within the tolerances,
    with a GeometryWarning above ``spacing_warn_mm``)."""
    lo, hi = SPACING_RANGE_MM
    median = float(np.median(steps))
    if not lo <= median <= hi:
        raise GeometryError(
            format_message(
                f"the slices are {median:.6g} mm apart (median step of ImagePositionPatient "
                f"along the normal), outside the range {lo}-{hi} mm of human PET/CT images",
                series=series,
                attribute=_attr("ImagePositionPatient"),
                fix="repair ImagePositionPatient (in mm) or export the series again",
            )
        )
    limit = tol.spacing_atol_mm + tol.spacing_rtol * median
    deviation = np.abs(steps - median)
    bad = np.nonzero(deviation > limit)[0]
    if bad.size:
        ratios = steps[bad] / median
        k = np.rint(ratios)
        missing = (k >= 2) & (np.abs(steps[bad] - k * median) <= limit)
        if np.all(missing):
            where = "; ".join(
                f"{int(kk) - 1} between {os.path.basename(files[order[i]].path)} "
                f"({d_sorted[i]:.2f} mm) and {os.path.basename(files[order[i + 1]].path)} "
                f"({d_sorted[i + 1]:.2f} mm)"
                for i, kk in zip(bad[:5], k[:5])
            )
            n_missing = int(np.sum(k - 1))
            raise GeometryError(
                format_message(
                    f"{n_missing} slice(s) missing (steps of {median:.3f} mm expected): {where}"
                    + suspects,
                    series=series,
                    attribute=_attr("ImagePositionPatient"),
                    fix="copy the complete series again; the export or transfer lost files",
                )
            )
        shown = ", ".join(f"{s:.3f}" for s in steps[bad][:8])
        raise GeometryError(
            format_message(
                f"irregular slice spacing: {bad.size} step(s) of {shown} mm differ from the "
                f"median {median:.3f} mm by more than {limit:.3f} mm",
                series=series,
                attribute=_attr("ImagePositionPatient"),
                fix="resample the series to a regular slice spacing first (e.g. SimpleITK "
                "or dcm2niix), or widen spacing_rtol=/spacing_atol_mm= if the deviation is "
                "acceptable",
            )
        )
    max_dev = float(deviation.max()) if deviation.size else 0.0
    if max_dev > tol.spacing_warn_mm:
        n_dev = int(np.sum(deviation > tol.spacing_warn_mm))
        warn_external(
            format_message(
                f"slice steps range from {steps.min():.3f} to {steps.max():.3f} mm; "
                f"{n_dev} step(s) deviate by more than {tol.spacing_warn_mm} mm (at most "
                f"{max_dev:.3f} mm) from the median {median:.4f} mm used as the slice spacing",
                series=series,
                attribute=_attr("ImagePositionPatient"),
            ),
            GeometryWarning,
        )
    return median, max_dev


# ---------------------------------------------------------------------------- public
def load_volume(
    source: Source,
    *,
    modality: str | None = None,
    series_uid: str | None = None,
    tolerances: GeometryTolerances | None = None,
    _operation: str = "emlesion.io.load_volume",
    **deprecated_tolerances: float,
) -> Volume:
    """Load one single-frame PET or CT series as a :class:`Volume`.

    Parameters
    ----------
    source : folder, SeriesInfo or list of files
        A folder (walked recursively; when it holds several series the one to load is
        chosen by role, see :func:`load_pet` and :func:`load_ct`), a
        :class:`~emlesion.io.discover.SeriesInfo` from :func:`~emlesion.io.discover.discover`,
        or the files of the series.
    modality : {"PT", "CT"}, optional
        Which kind of series to pick when ``source`` holds several. Default: the only PET
        or CT image series present.
    series_uid : str, optional
        Choose the series with this SeriesInstanceUID explicitly.
    tolerances : GeometryTolerances, optional
        Geometry tolerances (default ``GeometryTolerances()``: 1e-3, 0.05, 0.1 mm, 0.01 mm,
        0.01 mm, 0.1 degree).
    **deprecated_tolerances : float
        The fields of :class:`GeometryTolerances` as individual keywords
        (``spacing_atol_mm=3.0``): deprecated, still accepted for one release with a
        :class:`DeprecationWarning`; pass ``tolerances=`` instead.

    Returns
    -------
    Volume
        float32 values ``(z, y, x)`` after each slice's own rescale (HU for CT, the stored
        ``Units`` for PET), the LPS grid, identity, per-slice facts, the headers without
        pixel data in z order, and a provenance step.

    Raises
    ------
    SeriesNotFoundError
        No (or no unique) series of the wanted kind.
    GeometryError
        Mixed orientations, duplicates, gantry tilt, missing slices, irregular spacing,
        differing matrix sizes, fewer than two slices.
    UnsupportedDataError
        Multi-frame (Enhanced / Legacy Converted Enhanced) objects.
    DicomReadError
        A file is truncated or its pixel data cannot be decoded.
    MissingAttributeError, InvalidAttributeError
        A geometry or rescale attribute is absent or malformed.
    InvalidParameterError
        Both ``tolerances=`` and individual tolerance keywords were given.
    """
    tol = _tolerances(tolerances, deprecated_tolerances, _operation.rsplit(".", 1)[-1])
    mod = (modality or "").upper() or None
    if mod == "PT":
        roles: tuple[SeriesRole, ...] = (SeriesRole.PET_AC, SeriesRole.PET_NAC)
        modalities: tuple[str, ...] = ("PT",)
        what = "PET"
    elif mod == "CT":
        roles, what, modalities = (SeriesRole.CT,), "CT", ("CT",)
    elif mod is None:
        roles = (SeriesRole.PET_AC, SeriesRole.CT, SeriesRole.PET_NAC)
        what, modalities = "PET or CT", ("PT", "CT")
    else:
        raise UnsupportedDataError(
            format_message(f"modality {modality!r} is not supported", fix="use 'PT' or 'CT'")
        )
    with record_warnings() as rec:
        if mod is None and not isinstance(source, SeriesInfo) and series_uid is None:
            selection = _resolve_any(source, what)
        else:
            selection = _resolve(source, roles, what, series_uid, modalities)
        volume = _build(selection, tol, _operation)
    step = volume.provenance[-1]
    return replace(
        volume, provenance=(ProvenanceStep(step.operation, step.rule, step.inputs, rec.as_tuple()),)
    )


def _resolve_any(source: Source, what: str) -> _Selection:
    """Without a modality: the unique PET-AC or CT series (error when both are present)."""
    try:
        return _resolve(source, (SeriesRole.PET_AC,), what, None, ("PT",))
    except SeriesNotFoundError as pet_error:
        try:
            return _resolve(source, (SeriesRole.CT,), what, None, ("CT",))
        except SeriesNotFoundError:
            raise pet_error from None


def load_pet(
    source: Source,
    *,
    series_uid: str | None = None,
    tolerances: GeometryTolerances | None = None,
    declaration: PetDeclaration | None = None,
    **deprecated_tolerances: float,
) -> Volume:
    """Load a PET series (values in its stored ``Units``, e.g. Bq/mL for BQML).

    When ``source`` holds several series the attenuation-corrected PET is chosen; a
    non-attenuation-corrected PET is loaded only when named with ``series_uid``.

    Parameters
    ----------
    source : folder, SeriesInfo or list of files
        See :func:`load_volume`.
    series_uid : str, optional
        SeriesInstanceUID of the PET series to load.
    tolerances : GeometryTolerances, optional
        Geometry tolerances (default ``GeometryTolerances()``).
    **deprecated_tolerances : float
        The fields of :class:`GeometryTolerances` as individual keywords: deprecated (one
        more release, with a :class:`DeprecationWarning`); pass ``tolerances=`` instead.
    declaration : PetDeclaration, optional
        For a NIfTI ``source`` (``.nii``/``.nii.gz``, read by
        :func:`emlesion.io.nifti_image.load_nifti_image`): the declared quantity (SUVbw, or
        Bq/mL with weight, dose and times). Required for NIfTI, ignored for DICOM.

    Returns
    -------
    Volume
        ``units`` is the PET ``Units`` value (``"BQML"``, ``"CNTS"``, ``"GML"``, ...), or
        the declared units of a NIfTI PET.

    Examples
    --------
    >>> pet = load_pet("study/PT")  # doctest: +SKIP
    >>> pet.units, pet.shape  # doctest: +SKIP
    ('BQML', (545, 168, 168))
    """
    if is_nifti_path(source):
        return load_nifti_image(source, "PT", declaration=declaration)  # type: ignore[arg-type]
    tol = _tolerances(tolerances, deprecated_tolerances, "load_pet")
    return load_volume(source, modality="PT", series_uid=series_uid, tolerances=tol,
                       _operation="emlesion.io.load_pet")


def load_ct(
    source: Source,
    *,
    series_uid: str | None = None,
    tolerances: GeometryTolerances | None = None,
    **deprecated_tolerances: float,
) -> Volume:
    """Load a CT series in Hounsfield units (localizers in the folder are ignored).

    Parameters
    ----------
    source : folder, SeriesInfo or list of files
        See :func:`load_volume`.
    series_uid : str, optional
        SeriesInstanceUID of the CT series to load.
    tolerances : GeometryTolerances, optional
        Geometry tolerances (default ``GeometryTolerances()``).
    **deprecated_tolerances : float
        The fields of :class:`GeometryTolerances` as individual keywords: deprecated (one
        more release, with a :class:`DeprecationWarning`); pass ``tolerances=`` instead.

    Returns
    -------
    Volume
        ``units`` is ``"HU"``. A ``.nii``/``.nii.gz`` ``source`` is read by
        :func:`emlesion.io.nifti_image.load_nifti_image` (values taken as HU).
    """
    if is_nifti_path(source):
        return load_nifti_image(source, "CT")  # type: ignore[arg-type]
    tol = _tolerances(tolerances, deprecated_tolerances, "load_ct")
    return load_volume(source, modality="CT", series_uid=series_uid, tolerances=tol,
                       _operation="emlesion.io.load_ct")


def _build(selection: _Selection, tol: GeometryTolerances, operation: str) -> Volume:
    files, info, where = selection.files, selection.info, selection.where
    series = info.series_instance_uid if info is not None else where
    if info is not None and info.series_description:
        series = f"{info.series_instance_uid} '{info.series_description}'"
    _check_multiframe(files, series)
    _check_modality(files, series)
    warn_reader_warnings([(f.path, f.reader_warnings) for f in files if f.reader_warnings],
                         series, len(files))
    stack = _geometry(files, series, tol, selection.suspects())
    _check_slice_count(files, stack, series, selection.suspects())
    nz, ny, nx = stack.grid.shape
    modality = header_text(files[0].header, "Modality").upper()
    is_pet = modality == "PT"
    out = np.empty((nz, ny, nx), dtype=np.float32)
    slices: list[SliceInfo] = []
    headers: list[Dataset] = []
    units_seen: dict[str, int] = {}
    nonzero_intercepts = 0
    for k, idx in enumerate(stack.order):
        f = files[int(idx)]
        h = f.header
        pos = stack.positions_mm[k]
        slope, intercept = _rescale(h, series, f.path)
        stored = decode_pixels(f, series=series)
        if stored.shape != (ny, nx):
            raise GeometryError(
                format_message(
                    f"{os.path.basename(f.path)}: pixel array {stored.shape} does not match "
                    f"Rows x Columns {ny}x{nx}",
                    series=series,
                    attribute=f"{_attr('Rows')} / {_attr('Columns')}",
                    fix="the file is damaged; copy it again from the source",
                )
            )
        if slope == 1.0 and intercept == 0.0:
            out[k] = stored
        else:
            out[k] = stored * slope + intercept  # float64 arithmetic, one rounding to float32
        if is_pet:
            units = header_text(h, "Units")
            units_seen[units] = units_seen.get(units, 0) + 1
            if intercept != 0.0:
                nonzero_intercepts += 1
        slices.append(
            SliceInfo(
                sop_instance_uid=header_text(h, "SOPInstanceUID"),
                position_mm=(float(pos[0]), float(pos[1]), float(pos[2])),
                rescale_slope=slope,
                rescale_intercept=intercept,
                instance_number=_opt_int(h, "InstanceNumber"),
                acquisition_date=header_text(h, "AcquisitionDate"),
                acquisition_time=header_text(h, "AcquisitionTime"),
                acquisition_datetime=header_text(h, "AcquisitionDateTime"),
                frame_reference_time_ms=_opt_float(h, "FrameReferenceTime"),
                actual_frame_duration_ms=_opt_float(h, "ActualFrameDuration"),
                image_index=_opt_int(h, "ImageIndex"),
                decay_factor=_opt_float(h, "DecayFactor"),
                filename=f.path,
            )
        )
        headers.append(h)
    if is_pet:
        if len(units_seen) > 1:
            raise InvalidAttributeError(
                format_message(
                    "slices disagree on Units: "
                    + ", ".join(f"{u or '(empty)'} x{n}" for u, n in units_seen.items()),
                    series=series,
                    attribute=_attr("Units"),
                    fix="the files mix several reconstructions; load one of them via series_uid",
                )
            )
        units = next(iter(units_seen))
        if not units:
            warn_external(
                format_message("PET Units is empty; the voxel values have unknown units",
                               series=series, attribute=_attr("Units")),
                DicomQuirkWarning,
            )
        if nonzero_intercepts:
            warn_external(
                format_message(
                    f"{nonzero_intercepts} PET slice(s) have a non-zero RescaleIntercept "
                    "(the standard says it is always 0 for PET); it was applied",
                    series=series,
                    attribute=_attr("RescaleIntercept"),
                ),
                DicomQuirkWarning,
            )
    elif modality == "CT":
        units = "HU"
    else:
        units = header_text(files[0].header, "RescaleType")
    inputs = {
        "source": where,
        "n_files": len(files),
        "series_instance_uid": header_text(files[0].header, "SeriesInstanceUID"),
        **stack.inputs,
    }
    step = ProvenanceStep(operation, stack.rule, inputs)
    return Volume(
        array=out,
        grid=stack.grid,
        identity=SeriesIdentity.from_dataset(headers[0]),
        slices=tuple(slices),
        headers=tuple(headers),
        units=units,
        provenance=(step,),
    )
