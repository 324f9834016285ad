"""Series discovery: walk a folder, read DICOM headers, group them into series with a role.

A PET/CT export folder typically holds several studies and many series side by side: the
attenuation-corrected PET, the non-attenuation-corrected PET, the CT, CT localizers
(scouts), DICOM SEG and RTSTRUCT objects, structured reports. :func:`discover` reads only
the headers (it stops before the pixel data), groups the files by SeriesInstanceUID, and
gives each group a :class:`SeriesRole`, so that loaders can pick the right series.

References
----------
.. [1] DICOM PS3.3 C.8.9.4.1.1 (Corrected Image: ``ATTN`` = attenuation corrected).
.. [2] DICOM PS3.3 C.7.6.1.1.2 (Image Type; ``LOCALIZER`` for CT scouts).
.. [3] DICOM PS3.4 Annex B (Storage SOP Class UIDs: SEG, RT Structure Set, SR).
.. [4] dicom2nifti, ``remove_localizers_by_imagetype`` (localizers share CT folders).
"""

from __future__ import annotations

import enum
import logging
import os
import re
import stat
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydicom.dataset import Dataset

from emlesion.errors import (
    DicomQuirkWarning,
    DicomReadError,
    InputFileWarning,
    SeriesNotFoundError,
    format_message,
    warn_external,
)
from emlesion.io.dicom import (
    LocatedHeader,
    header_text,
    open_regular_file,
    read_dataset,
    read_located,
)
from emlesion.io.volume import SeriesIdentity

__all__ = [
    "FileFacts",
    "SeriesInfo",
    "SeriesRole",
    "classify_role",
    "discover",
    "group_series",
    "iter_files",
    "looks_like_dicom",
    "warn_reader_warnings",
]

logger = logging.getLogger(__name__)

#: SOP Class UIDs of single-frame and multi-frame PET/CT images.
PET_IMAGE_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.128",  # PET Image Storage
    "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy Converted Enhanced PET Image Storage
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET Image Storage
})
CT_IMAGE_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT Image Storage
})
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
SR_SOP_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."

#: Files larger than this are read header-only through pydicom instead of being read whole.
_WHOLE_FILE_LIMIT_BYTES = 2 * 1024 * 1024
#: Folders with fewer files than this are scanned in the calling process.
_PARALLEL_MIN_FILES = 1000


class SeriesRole(str, enum.Enum):
    """What a series is for, as far as emlesion is concerned."""

    PET_AC = "pet_ac"
    """PET image, attenuation corrected (Corrected Image contains ``ATTN``)."""
    PET_NAC = "pet_nac"
    """PET image without attenuation correction."""
    CT = "ct"
    """CT image stack."""
    CT_LOCALIZER = "ct_localizer"
    """CT localizer / scout / projection image (Image Type ``LOCALIZER``)."""
    SEG = "seg"
    """DICOM Segmentation."""
    RTSTRUCT = "rtstruct"
    """RT Structure Set."""
    SR = "sr"
    """Structured report."""
    OTHER = "other"
    """Anything else (secondary captures, MIPs/reprojections, MR, presentation states, ...)."""

    @property
    def is_pet(self) -> bool:
        """True for PET image roles."""
        return self in (SeriesRole.PET_AC, SeriesRole.PET_NAC)


_ROLE_ORDER = list(SeriesRole)


def _text(ds: Dataset, keyword: str) -> str:
    return header_text(ds, keyword)


def classify_role(ds: Dataset) -> SeriesRole:
    """The :class:`SeriesRole` of one instance, from its SOP class, Modality and Image Type.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The header of the instance.

    Returns
    -------
    SeriesRole

    References
    ----------
    .. [1] DICOM PS3.3 C.8.9.4.1.1 (Corrected Image), C.8.22.6 (Attenuation Corrected
       (0018,9759) of Enhanced PET), C.7.6.1.1.2 (Image Type).
    """
    sop = _text(ds, "SOPClassUID")
    modality = _text(ds, "Modality").upper()
    if sop == SEG_SOP_CLASS or modality == "SEG":
        return SeriesRole.SEG
    if sop == RTSTRUCT_SOP_CLASS or modality == "RTSTRUCT":
        return SeriesRole.RTSTRUCT
    if sop.startswith(SR_SOP_CLASS_PREFIX) or modality == "SR":
        return SeriesRole.SR
    image_type = _text(ds, "ImageType").upper().split("\\")
    if sop in PET_IMAGE_SOP_CLASSES or (modality == "PT" and not sop):
        if "REPROJECTION" in _text(ds, "SeriesType").upper():
            return SeriesRole.OTHER  # MIPs / reprojections are not volumes
        corrected = _text(ds, "CorrectedImage").upper().split("\\")
        if "ATTN" in corrected or _text(ds, "AttenuationCorrected").upper() == "YES":
            return SeriesRole.PET_AC
        return SeriesRole.PET_NAC
    if sop in CT_IMAGE_SOP_CLASSES or (modality == "CT" and not sop):
        if "LOCALIZER" in image_type or "PROJECTION IMAGE" in _text(ds, "ImageType").upper():
            return SeriesRole.CT_LOCALIZER
        return SeriesRole.CT
    return SeriesRole.OTHER


@dataclass(frozen=True)
class SeriesInfo:
    """One series found by :func:`discover` (header facts only; no pixel data read).

    Parameters
    ----------
    series_instance_uid : str
        SeriesInstanceUID (0020,000E).
    role : SeriesRole
        What the series is (PET AC/NAC, CT, localizer, SEG, RTSTRUCT, SR, other). A series
        whose instances have different roles (e.g. a localizer inside a CT series) is
        split into one :class:`SeriesInfo` per role.
    modality : str
        Modality (0008,0060).
    sop_class_uid : str
        SOPClassUID (0008,0016) of the first instance.
    sop_class_name : str
        Its name, e.g. ``"Positron Emission Tomography Image Storage"``.
    manufacturer : str
        Manufacturer (0008,0070).
    series_description : str
        SeriesDescription (0008,103E).
    series_number : int, optional
        SeriesNumber (0020,0011).
    n_instances : int
        Number of files (instances) in the series.
    identity : SeriesIdentity
        Patient, study and series identity (from the first instance).
    units : str
        PET Units (0054,1001) of the first instance; empty for other modalities.
    corrected_image : tuple of str
        PET CorrectedImage (0028,0051) values of the first instance.
    files : tuple of str
        Paths of the instances, sorted by path (not a geometric order).

    Notes
    -----
    :func:`discover` keeps the headers it read of image series (PET, CT) in the private
    attribute ``_located``, so that the loader does not parse them again
    (``emlesion.io.dicom.LocatedHeader.reopen`` reads again any file changed since).
    They are not part of the value (equality, repr, ``to_dict``) and are left out when the
    object is pickled or copied (a process pool reads the files itself).
    """

    series_instance_uid: str
    role: SeriesRole
    modality: str
    sop_class_uid: str
    sop_class_name: str
    manufacturer: str
    series_description: str
    series_number: int | None
    n_instances: int
    identity: SeriesIdentity = field(default_factory=SeriesIdentity)
    units: str = ""
    corrected_image: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    #: Set by :func:`discover` on its own objects (not a dataclass field: not compared,
    #: not shown, not in ``to_dict``/``jsonable``, not copied by ``dataclasses.replace``).
    _located: ClassVar[tuple[LocatedHeader, ...]] = ()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_located", None)  # headers stay in the process that read them
        return state

    @property
    def study_instance_uid(self) -> str:
        """StudyInstanceUID (0020,000D)."""
        return self.identity.study_instance_uid

    @property
    def study_date(self) -> str:
        """StudyDate (0008,0020) as stored."""
        return self.identity.study_date

    @property
    def patient_id(self) -> str:
        """PatientID (0010,0020)."""
        return self.identity.patient_id

    def to_dict(self, *, include_files: bool = True) -> dict[str, Any]:
        """A JSON-serialisable dict (``include_files=False`` leaves out the file list)."""
        from emlesion.provenance import jsonable

        out: dict[str, Any] = {
            "series_instance_uid": self.series_instance_uid,
            "role": self.role.value,
            "modality": self.modality,
            "sop_class_uid": self.sop_class_uid,
            "sop_class_name": self.sop_class_name,
            "manufacturer": self.manufacturer,
            "series_description": self.series_description,
            "series_number": self.series_number,
            "n_instances": self.n_instances,
            "units": self.units,
            "corrected_image": list(self.corrected_image),
            "identity": jsonable(self.identity),
        }
        if include_files:
            out["files"] = list(self.files)
        return out

    def __repr__(self) -> str:
        desc = f" '{self.series_description}'" if self.series_description else ""
        return (
            f"SeriesInfo({self.role.value}: {self.modality}{desc}, {self.n_instances} "
            f"instance(s), {self.manufacturer or 'unknown manufacturer'}, "
            f"uid={self.series_instance_uid})"
        )


# ---------------------------------------------------------------------------- walking
def iter_files(
    path: str | os.PathLike[str], *, skipped: list[tuple[str, str]] | None = None
) -> list[str]:
    """All regular files under ``path`` (recursively, any name), sorted; or ``[path]``.

    Only regular files are listed: named pipes, devices and sockets (which would block a
    read or never end) are left out, and a symbolic link is followed only when it points
    to a regular file. What was left out, and why, is appended to ``skipped``; without
    ``skipped`` an :class:`~emlesion.errors.InputFileWarning` names them.

    Parameters
    ----------
    path : str or path-like
        A folder (walked recursively; links to folders are not followed) or one file.
    skipped : list of (str, str), optional
        Receives ``(path, reason)`` of every entry that is not a regular file.

    Returns
    -------
    list of str

    Raises
    ------
    SeriesNotFoundError
        ``path`` does not exist, or is itself a named pipe, device or socket.
    """
    root = Path(path)
    try:
        mode = os.stat(root).st_mode
    except OSError:
        mode = None
    if mode is None or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        what = "does not exist" if mode is None else "is not a regular file or a folder"
        raise SeriesNotFoundError(
            format_message(f"{root} {what}",
                           fix="check the path (typo, unmounted drive?)" if mode is None
                           else "point emlesion at a folder of DICOM files or at one file")
        )
    if stat.S_ISREG(mode):
        return [os.fspath(root)]
    out: list[str] = []
    left_out: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                entry_mode = os.stat(full).st_mode  # follows links
            except OSError as exc:
                left_out.append((full, f"cannot be examined ({exc.strerror or exc})"))
                continue
            if stat.S_ISREG(entry_mode):
                out.append(full)
            else:
                link = " (through a symbolic link)" if os.path.islink(full) else ""
                left_out.append((full, f"is not a regular file{link}"))
    out.sort()
    if skipped is not None:
        skipped.extend(left_out)
    elif left_out:
        _warn_left_out(left_out, os.fspath(root))
    return out


def _warn_left_out(left_out: Sequence[tuple[str, str]], where: str) -> None:
    shown = "; ".join(f"{p} {why}" if p else why for p, why in left_out[:5])
    more = f" and {len(left_out) - 5} more" if len(left_out) > 5 else ""
    warn_external(
        format_message(
            f"{len(left_out)} file(s) under {where} were left out: {shown}{more}",
            series=where,
            fix="remove them from the input folder if they should not be there; otherwise "
            "replace them with readable copies of the DICOM files",
        ),
        InputFileWarning,
    )


def looks_like_dicom(path: str) -> bool:
    """True when ``path`` carries the ``DICM`` marker of a DICOM Part 10 file.

    Only the 132-byte preamble and marker are read (DICOM PS3.10 section 7.1); a file that
    cannot be opened, or is not a regular file, is not DICOM. Used to tell a truncated
    DICOM file (worth a warning) from an unrelated file (ignored).

    Parameters
    ----------
    path : str
        File path.

    Returns
    -------
    bool
    """
    try:
        with open_regular_file(path) as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def read_header(path: str, *, problems: list[str] | None = None,
                reader_warnings: list[str] | None = None) -> Dataset | None:
    """Header of ``path`` without pixel data, or None for a non-DICOM file (debug-logged).

    A file that carries the ``DICM`` marker but cannot be parsed (probably a truncated
    DICOM file), or that cannot be opened, is skipped too; its problem is appended to
    ``problems`` (or logged as a warning without it). pydicom's warnings about the file go
    to ``reader_warnings``.
    """
    ds, _ = _read_head(path, problems, reader_warnings)
    return ds


def _read_head(path: str, problems: list[str] | None, reader_warnings: list[str] | None
               ) -> tuple[Dataset | None, LocatedHeader | None]:
    """:func:`read_header`, and the located header when the whole file was read."""
    try:
        if os.path.getsize(path) > _WHOLE_FILE_LIMIT_BYTES:
            return read_dataset(path, stop_before_pixels=True,
                                reader_warnings=reader_warnings), None
        located = read_located(path)
        if reader_warnings is not None:
            reader_warnings.extend(located.file.reader_warnings)
        return located.file.header, located
    except (DicomReadError, OSError) as exc:
        if looks_like_dicom(path) or not _opens(path):
            if problems is not None:
                problems.append(_short(exc))
            else:
                logger.warning("skipping unreadable DICOM file %s: %s", path, exc)
        else:
            logger.debug("ignoring non-DICOM file %s: %s", path, exc)
        return None, None


def _short(exc: Exception) -> str:
    """The problem part of an emlesion message (without its [series]/[attribute] and fix),
    for messages that list several files."""
    text = str(exc).split(". Fix: ")[0]
    return re.sub(r" \[(series|attribute) [^\]]*\]", "", text)


def _opens(path: str) -> bool:
    """True when ``path`` can be opened for reading (a file that cannot is worth a warning:
    it may be a DICOM file of the study)."""
    try:
        with open_regular_file(path):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class FileFacts:
    """The few header facts discovery needs, cheap to send between processes.

    One per DICOM file; :func:`group_series` groups them into :class:`SeriesInfo` objects.

    Parameters
    ----------
    path : str
        The file.
    series_uid : str
        SeriesInstanceUID.
    role : SeriesRole
        What the series is (:func:`classify_role`).
    sop_class_uid : str
        SOPClassUID.
    identity : SeriesIdentity
        Patient, study and series identity of the header.
    units : str
        PET ``Units`` (empty for other modalities).
    corrected_image : tuple of str
        The values of ``CorrectedImage``.
    """

    path: str
    series_uid: str
    role: SeriesRole
    sop_class_uid: str
    identity: SeriesIdentity
    units: str
    corrected_image: tuple[str, ...]
    reader_warnings: tuple[str, ...] = ()


#: One file's outcome: its facts, or None and the problem (empty for a non-DICOM file).
_Outcome = tuple[FileFacts | None, str]


#: Roles of the series whose headers discovery hands to the loader (SeriesInfo._located).
_LOCATED_ROLES = frozenset({SeriesRole.PET_AC, SeriesRole.PET_NAC, SeriesRole.CT})
#: Most headers discovery keeps for the loader (about 20-40 kB each in memory).
_LOCATED_MAX_FILES = 2000


def _located_outcome(path: str) -> tuple[_Outcome, LocatedHeader | None]:
    """One file's outcome, and its located header when it may be kept for the loader."""
    problems: list[str] = []
    caught: list[str] = []
    ds, located = _read_head(path, problems, caught)
    if ds is None:
        return (None, problems[0] if problems else ""), None
    return _facts_of(path, ds, caught), located


def _facts_of(path: str, ds: Dataset, caught: list[str]) -> _Outcome:
    try:
        uid = _text(ds, "SeriesInstanceUID")
        if not uid:
            logger.debug("ignoring %s: no SeriesInstanceUID (not a series instance)", path)
            return None, ""
        corrected = _text(ds, "CorrectedImage")
        return FileFacts(
            path=path,
            series_uid=uid,
            role=classify_role(ds),
            sop_class_uid=_text(ds, "SOPClassUID"),
            identity=SeriesIdentity.from_dataset(ds),
            units=_text(ds, "Units"),
            corrected_image=tuple(v for v in corrected.split("\\") if v),
            reader_warnings=tuple(caught),
        ), ""
    except Exception as exc:  # a malformed header value must not abort discovery
        return None, f"{path} has a malformed header ({type(exc).__name__}: {exc})"


def _facts_chunk(paths: Sequence[str]) -> list[_Outcome]:
    return [_located_outcome(p)[0] for p in paths]


def _facts_located(paths: Sequence[str]) -> tuple[list[_Outcome], dict[str, LocatedHeader]]:
    """The outcomes of ``paths``, and the located headers of the files of image series."""
    outcomes: list[_Outcome] = []
    located: dict[str, LocatedHeader] = {}
    for p in paths:
        outcome, head = _located_outcome(p)
        outcomes.append(outcome)
        facts = outcome[0]
        if head is not None and facts is not None and facts.role in _LOCATED_ROLES:
            located[p] = head
    return outcomes, located


def _attach_located(found: list[SeriesInfo], located: dict[str, LocatedHeader]
                    ) -> list[SeriesInfo]:
    """Hand the located headers of each series to its SeriesInfo (see ``_located``)."""
    if not located or len(located) > _LOCATED_MAX_FILES:
        return found
    for info in found:
        heads = tuple(located[p] for p in info.files if p in located)
        if heads:
            object.__setattr__(info, "_located", heads)
    return found


def _warn_reader_warnings(facts: Sequence[FileFacts], found: Sequence[SeriesInfo]) -> None:
    """One DicomQuirkWarning per series for pydicom's warnings about its files."""
    by_uid: dict[str, list[FileFacts]] = {}
    for f in facts:
        if f.reader_warnings:
            by_uid.setdefault(f.series_uid, []).append(f)
    for uid, members in by_uid.items():
        warn_reader_warnings([(f.path, f.reader_warnings) for f in members], uid,
                             sum(s.n_instances for s in found if s.series_instance_uid == uid))


def warn_reader_warnings(
    per_file: Sequence[tuple[str, Sequence[str]]], series: str, n_files: int
) -> None:
    """Report pydicom's warnings about the files of one series as one DicomQuirkWarning.

    pydicom warns once per file (for example about an invalid value), so a series of 500
    slices would print 500 lines; emlesion collects them and says how many files each
    message concerns, naming the first file.

    Parameters
    ----------
    per_file : sequence of (str, sequence of str)
        Each file and the warnings pydicom emitted while reading it.
    series : str
        The series, named in the message.
    n_files : int
        Number of files of the series.
    """
    counts: dict[str, list[str]] = {}
    for path, messages in per_file:
        for m in dict.fromkeys(messages):
            key = m.replace(path, "<file>")
            counts.setdefault(key, []).append(path)
    if not counts:
        return
    parts = [f"{key!r} in {len(paths)} of {n_files} file(s) (e.g. {os.path.basename(paths[0])})"
             for key, paths in list(counts.items())[:5]]
    more = f"; and {len(counts) - 5} other message(s)" if len(counts) > 5 else ""
    warn_external(
        format_message(
            "pydicom reported problems while reading the series: " + "; ".join(parts) + more,
            series=series,
            fix="the values pydicom warns about were read as pydicom reads them; check them "
            "if they matter for the result",
        ),
        DicomQuirkWarning,
    )


def _sop_class_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name if uid else ""
    return "" if name == uid else name


def group_series(facts: Iterable[FileFacts]) -> list[SeriesInfo]:
    """Group per-file facts into :class:`SeriesInfo` objects (by series UID and role)."""
    groups: dict[tuple[str, SeriesRole], list[FileFacts]] = {}
    for f in facts:
        groups.setdefault((f.series_uid, f.role), []).append(f)
    out: list[SeriesInfo] = []
    for (uid, role), members in groups.items():
        members.sort(key=lambda f: f.path)
        first = members[0]
        ident = first.identity
        out.append(
            SeriesInfo(
                series_instance_uid=uid,
                role=role,
                modality=ident.modality,
                sop_class_uid=first.sop_class_uid,
                sop_class_name=_sop_class_name(first.sop_class_uid),
                manufacturer=ident.manufacturer,
                series_description=ident.series_description,
                series_number=ident.series_number,
                n_instances=len(members),
                identity=ident,
                units=first.units if role.is_pet else "",
                corrected_image=first.corrected_image if role.is_pet else (),
                files=tuple(f.path for f in members),
            )
        )
    out.sort(
        key=lambda s: (
            s.identity.patient_id,
            s.identity.study_date,
            s.identity.study_instance_uid,
            s.series_number if s.series_number is not None else 1 << 30,
            _ROLE_ORDER.index(s.role),
            s.series_instance_uid,
        )
    )
    return out


def discover(path: str | os.PathLike[str], *, workers: int | None = None) -> list[SeriesInfo]:
    """Find the DICOM series under a folder (recursively, any file names).

    Only headers are read, and only from regular files within the size cap
    (:func:`~emlesion.io.dicom.max_dicom_file_bytes`). Non-DICOM files are ignored (logged
    at debug level); entries that are not regular files (named pipes, devices, sockets,
    links to them), files that cannot be opened and files carrying the DICOM marker that
    cannot be parsed are left out with one :class:`~emlesion.errors.InputFileWarning`
    naming them. pydicom's own warnings are reported once per series.

    Parameters
    ----------
    path : str or path-like
        A folder (walked recursively) or a single file.
    workers : int, optional
        Number of processes reading headers. Default: 1 for fewer than 1000 files
        (a process pool does not pay for itself below that), else ``min(4, cpu_count)``.
        Parsing is CPU-bound Python, so threads would not help.

    Returns
    -------
    list of SeriesInfo
        Sorted by patient, study date, study, series number, role (images first) and
        series UID.

    Raises
    ------
    SeriesNotFoundError
        ``path`` does not exist or holds no DICOM series at all.

    Warns
    -----
    InputFileWarning
        Files left out (not regular, unreadable, truncated header, over the size cap).
    DicomQuirkWarning
        pydicom's warnings about the files of a series, one warning per series.

    Examples
    --------
    >>> for s in discover("study/"):  # doctest: +SKIP
    ...     print(s.role.value, s.modality, s.n_instances, s.series_description)
    pet_ac PT 545 PET HeadNeck_0
    seg SEG 1 tumor segmentation - User2 SemiAuto trial 2
    """
    left_out: list[tuple[str, str]] = []
    paths = iter_files(path, skipped=left_out)
    if workers is None:
        workers = 1 if len(paths) < _PARALLEL_MIN_FILES else min(4, os.cpu_count() or 1)
    outcomes: list[_Outcome]
    located: dict[str, LocatedHeader] = {}
    if workers <= 1 or len(paths) < 2 * workers:
        outcomes, located = _facts_located(paths)
    else:
        n_chunks = workers * 4
        chunks = [paths[i::n_chunks] for i in range(n_chunks)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = [f for part in pool.map(_facts_chunk, chunks) for f in part]
    facts = [f for f, _ in outcomes if f is not None]
    left_out.extend(("", problem) for f, problem in outcomes if f is None and problem)
    if left_out:
        _warn_left_out(left_out, os.fspath(path))
    found = group_series(facts)
    _warn_reader_warnings(facts, found)
    found = _attach_located(found, located)
    if not found:
        raise SeriesNotFoundError(
            format_message(
                f"no DICOM series found under {path} ({len(paths)} file(s) examined)",
                series=os.fspath(path),
                fix="point emlesion at the folder holding the exported DICOM files",
            )
        )
    return found
