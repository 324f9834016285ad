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
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from emlesion.errors import DicomReadError, SeriesNotFoundError, format_message
from emlesion.io.dicom import header_text, read_dataset, read_file
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
def iter_files(path: str | os.PathLike[str]) -> list[str]:
    """All regular files under ``path`` (recursively, any name), sorted; or ``[path]``.

    Raises
    ------
    SeriesNotFoundError
        ``path`` does not exist.
    """
    root = Path(path)
    if root.is_file():
        return [os.fspath(root)]
    if not root.is_dir():
        raise SeriesNotFoundError(
            format_message(f"{root} does not exist", fix="check the path (typo, unmounted drive?)")
        )
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out.extend(os.path.join(dirpath, name) for name in filenames)
    out.sort()
    return out


def looks_like_dicom(path: str) -> bool:
    """True when ``path`` carries the ``DICM`` marker of a DICOM Part 10 file.

    Only the 132-byte preamble and marker are read (DICOM PS3.10 section 7.1); a file that
    cannot be opened is not DICOM. Used to tell a truncated DICOM file (worth a warning)
    from an unrelated file (ignored).

    Parameters
    ----------
    path : str
        File path.

    Returns
    -------
    bool
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def read_header(path: str) -> Dataset | None:
    """Header of ``path`` without pixel data, or None for a non-DICOM file (debug-logged).

    A file that carries the ``DICM`` marker but cannot be parsed is logged as a warning
    (it is probably a truncated DICOM file) and also skipped.
    """
    try:
        if os.path.getsize(path) > _WHOLE_FILE_LIMIT_BYTES:
            return read_dataset(path, stop_before_pixels=True)
        return read_file(path, with_pixels=False).header
    except (DicomReadError, OSError) as exc:
        if looks_like_dicom(path):
            logger.warning("skipping unreadable DICOM file %s: %s", path, exc)
        else:
            logger.debug("ignoring non-DICOM file %s: %s", path, exc)
        return None


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


def _facts(path: str) -> FileFacts | None:
    ds = read_header(path)
    if ds is None:
        return None
    try:
        uid = _text(ds, "SeriesInstanceUID")
        if not uid:
            logger.debug("ignoring %s: no SeriesInstanceUID (not a series instance)", path)
            return None
        corrected = _text(ds, "CorrectedImage")
        return FileFacts(
            path=path,
            series_uid=uid,
            role=classify_role(ds),
            sop_class_uid=_text(ds, "SOPClassUID"),
            identity=SeriesIdentity.from_dataset(ds),
            units=_text(ds, "Units"),
            corrected_image=tuple(v for v in corrected.split("\\") if v),
        )
    except Exception as exc:  # a malformed header value must not abort discovery
        logger.warning("skipping DICOM file %s with malformed header: %s", path, exc)
        return None


def _facts_chunk(paths: Sequence[str]) -> list[FileFacts | None]:
    return [_facts(p) for p in paths]


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

    Only headers are read. Non-DICOM files are ignored (logged at debug level);
    unreadable files carrying the DICOM marker are skipped with a logged warning.

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

    Examples
    --------
    >>> for s in discover("study/"):  # doctest: +SKIP
    ...     print(s.role.value, s.modality, s.n_instances, s.series_description)
    pet_ac PT 545 PET HeadNeck_0
    seg SEG 1 tumor segmentation - User2 SemiAuto trial 2
    """
    paths = iter_files(path)
    if workers is None:
        workers = 1 if len(paths) < _PARALLEL_MIN_FILES else min(4, os.cpu_count() or 1)
    facts: list[FileFacts | None]
    if workers <= 1 or len(paths) < 2 * workers:
        facts = _facts_chunk(paths)
    else:
        n_chunks = workers * 4
        chunks = [paths[i::n_chunks] for i in range(n_chunks)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            facts = [f for part in pool.map(_facts_chunk, chunks) for f in part]
    found = group_series(f for f in facts if f is not None)
    if not found:
        raise SeriesNotFoundError(
            format_message(
                f"no DICOM series found under {path} ({len(paths)} file(s) examined)",
                series=os.fspath(path),
                fix="point emlesion at the folder holding the exported DICOM files",
            )
        )
    return found
