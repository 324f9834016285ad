"""Tolerant low-level DICOM reading: safe ``dcmread``, a fast header scanner, pixel decoding
and private-element lookup.

Everything here turns the many ways a file can be broken (not DICOM, truncated, a
compressed transfer syntax without a decoder) into :class:`~emlesion.errors.DicomReadError`
whose message names the file, so that no caller ever sees a bare traceback from deep inside
pydicom.

Fast path
---------
pydicom parses every undefined-length sequence eagerly, building nested ``Dataset`` objects
that most callers never look at; for a series of hundreds of small PET slices that parse
dominates the load time. :func:`read_file` therefore scans uncompressed little-endian files
(Implicit and Explicit VR Little Endian, the syntaxes of practically every PET/CT slice)
itself: it records every top-level element as a pydicom ``RawDataElement`` (undefined-length
sequences are kept as raw bytes and parsed by pydicom on first access, exactly as pydicom
already does for defined-length sequences) and keeps the pixel bytes apart. Any file the
scanner does not fully understand (no ``DICM`` prefix, big endian, deflated, encapsulated
pixel data, a malformed element) is handed to :func:`pydicom.dcmread` instead, so the
fast path never changes what is read, only how quickly.

References
----------
.. [1] DICOM PS3.5 section 7 (data element encoding) and 7.5 (nesting of data sets).
.. [2] DICOM PS3.10 section 7 (DICOM File Format: preamble, ``DICM``, File Meta Information).
.. [3] DICOM PS3.5 section 7.8.1 (private data element tags and private creators).
.. [4] pydicom, ``pydicom/filereader.py`` (``data_element_generator``, deferred conversion).
"""

from __future__ import annotations

import logging
import os
import stat
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR, keyword_dict
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import as_pixel_options
from pydicom.tag import BaseTag
from pydicom.uid import UID

from emlesion.errors import (
    DicomQuirkWarning,
    DicomReadError,
    InvalidAttributeError,
    InvalidParameterError,
    UnknownKeyError,
    format_message,
    warn_external,
)

__all__ = [
    "DEFAULT_MAX_DICOM_FILE_BYTES",
    "MAX_FILE_BYTES_ENV",
    "DicomFile",
    "decode_pixels",
    "find_private",
    "header_text",
    "max_dicom_file_bytes",
    "open_regular_file",
    "read_dataset",
    "read_file",
    "tag_label",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_NATIVE_SYNTAXES = {_IMPLICIT_LE: True, _EXPLICIT_LE: False}  # uid -> is_implicit_VR
_PIXEL_DATA = 0x7FE00010
_FLOAT_PIXEL_DATA = 0x7FE00008
_DOUBLE_PIXEL_DATA = 0x7FE00009
_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
_IMPLICIT_HEAD = struct.Struct("<HHL")  # group, element, 32-bit length
_EXPLICIT_HEAD = struct.Struct("<HH2sH")  # group, element, VR, 16-bit length
#: The VRs of PS3.5 6.2, bytes -> str (decoded once, not per element).
_VR_NAMES = {v.encode("ascii"): v for v in (
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF",
    "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN",
    "UR", "US", "UT", "UV")}
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<L")
_TAG = struct.Struct("<HH")
_UNDEFINED = 0xFFFFFFFF
_EXPLICIT_BE = "1.2.840.10008.1.2.2"
_RLE_LOSSLESS = "1.2.840.10008.1.2.5"
_BITS_STORED = 0x00280101
_HIGH_BIT = 0x00280102
_DEFLATED_LE = "1.2.840.10008.1.2.1.99"
#: Media Storage SOP Class of a DICOMDIR (its data set has no SOPClassUID, PS3.10 8.6).
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

#: Largest DICOM file emlesion reads, in bytes (512 MiB). Every file is read whole into
#: memory (or parsed by pydicom), so a cap keeps a hostile or mistaken input (a huge
#: unrelated file, a sparse file) from exhausting memory. The largest objects emlesion
#: reads are single-frame slices (a 1024 x 1024 CT slice of 16 bits is 2 MiB) and
#: multi-frame SEG objects (the 545-frame QIN SEG is a few MiB; a binary SEG of a 1000-slice
#: 512 x 512 CT is 32 MiB), so 512 MiB leaves a wide margin. Override it with the
#: environment variable ``EMLESION_MAX_DICOM_FILE_BYTES`` (an integer number of bytes).
DEFAULT_MAX_DICOM_FILE_BYTES: int = 512 * 1024 * 1024
#: Environment variable overriding :data:`DEFAULT_MAX_DICOM_FILE_BYTES`.
MAX_FILE_BYTES_ENV = "EMLESION_MAX_DICOM_FILE_BYTES"


class _ScanError(Exception):
    """Internal: the fast scanner cannot handle this file; use pydicom instead."""


class _Truncated(_ScanError):
    """Internal: the file ends inside an element (objectively truncated)."""


class _PixelsTruncated(_ScanError):
    """Internal: the encapsulated (compressed) pixel data ends before its delimiter."""


# ---------------------------------------------------------------------------- safe opening
def max_dicom_file_bytes() -> int:
    """The size cap of one DICOM file: :data:`DEFAULT_MAX_DICOM_FILE_BYTES` or the value of
    the environment variable ``EMLESION_MAX_DICOM_FILE_BYTES``.

    Returns
    -------
    int
        Bytes.

    Raises
    ------
    InvalidParameterError
        The environment variable is not a positive integer.
    """
    text = os.environ.get(MAX_FILE_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_DICOM_FILE_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise InvalidParameterError(format_message(
            f"{MAX_FILE_BYTES_ENV}={text!r} is not a positive integer number of bytes",
            fix=f"unset it (default {DEFAULT_MAX_DICOM_FILE_BYTES}) or give e.g. "
            f"{MAX_FILE_BYTES_ENV}=1073741824"))
    return value


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def open_regular_file(path: PathLike) -> IO[bytes]:
    """Open ``path`` for binary reading only if it is a regular file within the size cap.

    The file is opened without blocking (a named pipe would otherwise wait forever for a
    writer) and checked on the open descriptor, so a symbolic link is followed only to a
    regular file (a link to ``/dev/zero`` or a FIFO is refused) and the check cannot be
    raced by swapping the path.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    binary file object
        Open for reading; the caller closes it.

    Raises
    ------
    DicomReadError
        The path does not exist, cannot be opened, is not a regular file (FIFO, device,
        socket, folder) or is larger than :func:`max_dicom_file_bytes`.
    """
    spath = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(spath, flags)
    except FileNotFoundError as exc:
        raise DicomReadError(format_message(f"cannot open {spath} (it does not exist)",
                                            fix="check the path")) from exc
    except OSError as exc:
        raise DicomReadError(format_message(
            f"cannot open {spath} ({exc.strerror or exc})",
            fix="check the file's permissions (it must be readable by this user)")) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DicomReadError(format_message(
                f"{spath} is {_kind(info.st_mode)}, not a regular file; emlesion reads only "
                "regular files", fix="remove it from the input folder, or point emlesion at "
                "a copy of the DICOM files"))
        cap = max_dicom_file_bytes()
        if info.st_size > cap:
            raise DicomReadError(format_message(
                f"{spath} holds {info.st_size} bytes, more than the {cap} bytes emlesion "
                "reads from one DICOM file", fix="remove the file from the input if it is not "
                f"part of the study, or raise the cap with {MAX_FILE_BYTES_ENV}=<bytes>"))
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# ---------------------------------------------------------------------------- pydicom's warnings
_READING = threading.local()


class _ReadingFilter(logging.Filter):
    """Drop pydicom's log records while emlesion reads a file: they arrive as warnings too,
    are recorded there and reported once per series."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_READING, "active", False)


logging.getLogger("pydicom").addFilter(_ReadingFilter())


#: Modules whose warnings are always shown (never hidden by the once-per-location
#: registry) while a file is read: a quirk repeated in the next series must be seen again.
_READING_MODULES = r"(pydicom|emlesion\.io)(\.|$)"


@contextmanager
def _pydicom_warnings(out: list[str]) -> Iterator[None]:
    """Collect the warnings emitted in this thread while it reads a file (pydicom's), and
    silence pydicom's log records.

    :func:`emlesion.study.load_study` processes earlier timepoints in worker threads while
    it reads the next one, so only this thread's warnings are collected; another thread's
    pass on to the handler in place, and only the reading modules' warnings are forced to
    "always" (the other threads' keep the caller's filters).
    """
    previous = getattr(_READING, "active", False)
    _READING.active = True
    reader = threading.get_ident()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("always", module=_READING_MODULES)
            shown = warnings.showwarning

            def collect(message: Warning | str, category: type[Warning], filename: str,
                        lineno: int, file: Any = None, line: str | None = None) -> None:
                if threading.get_ident() == reader:
                    out.append(str(message))
                else:
                    shown(message, category, filename, lineno, file, line)

            warnings.showwarning = collect
            yield
    finally:
        _READING.active = previous


def tag_label(keyword: str, tag: int) -> str:
    """Format an attribute for messages: ``"RescaleSlope (0028,1053)"``."""
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


# ---------------------------------------------------------------------------- header values
#: VRs whose values use the default (ASCII) repertoire, so raw bytes can be decoded directly.
_ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})
_TAG_CACHE: dict[str, int] = {}


def _tag_of(keyword: str) -> int:
    tag = _TAG_CACHE.get(keyword)
    if tag is None:
        found = keyword_dict.get(keyword)
        if found is None:
            raise UnknownKeyError(format_message(
                f"unknown DICOM keyword {keyword!r}", attribute=keyword,
                fix="use a keyword of the DICOM data dictionary (pydicom.datadict.keyword_dict), "
                "spelled as in PS3.6, e.g. 'PatientWeight'"))
        tag = _TAG_CACHE[keyword] = int(found)
    return tag


#: One BaseTag object per tag value, shared by every header the scanner builds and by
#: :func:`header_text`: a dict lookup with the very key object stored skips pydicom's
#: Python-level ``BaseTag.__eq__``. Bounded, so that files full of odd private tags cannot
#: grow it without end (tags beyond the bound get a fresh BaseTag, as before).
_BASE_TAGS: dict[int, BaseTag] = {}
_BASE_TAGS_MAX = 8192
_KEYWORD_TAGS: dict[str, BaseTag] = {}


def _interned(tag: int) -> BaseTag:
    """The shared BaseTag of ``tag`` (see ``_BASE_TAGS``)."""
    key = _BASE_TAGS.get(tag)
    if key is None:
        key = BaseTag(tag)
        if len(_BASE_TAGS) < _BASE_TAGS_MAX:
            _BASE_TAGS[tag] = key
    return key


def header_text(ds: Dataset, keyword: str) -> str:
    """The value of a header attribute as text; ``""`` when absent, empty or malformed.

    The one reader of header strings in emlesion (:mod:`emlesion.io`, :mod:`emlesion.suv`).
    Values are decoded tolerantly: each value is stripped of its padding (spaces, NUL bytes
    and other surrounding white space, insignificant in every string VR [1]_), multiple
    values are joined with a backslash (``"ORIGINAL\\PRIMARY"``; empty values keep their
    place), bytes (an ``UN`` element) are decoded as Latin-1, and a value pydicom cannot
    convert reads as ``""``. Values of ASCII-only VRs (CS, DS, IS, UI, DA, TM, DT, AE, AS)
    that pydicom has not converted yet are decoded straight from their bytes, with the same
    result; this is what makes reading a few attributes of hundreds of slices cheap.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The header (or a sequence item).
    keyword : str
        A DICOM keyword, e.g. ``"ImagePositionPatient"``.

    Returns
    -------
    str

    Raises
    ------
    UnknownKeyError
        ``keyword`` is not a DICOM keyword (a ``KeyError``).

    References
    ----------
    .. [1] DICOM PS3.5 section 6.2 (Value Representations: leading/trailing spaces and
       trailing NUL padding are not significant).

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.ImageType = ["ORIGINAL ", "PRIMARY"]
    >>> print(header_text(ds, "ImageType"), repr(header_text(ds, "PatientName")))
    ORIGINAL\\PRIMARY ''
    """
    key = _KEYWORD_TAGS.get(keyword)
    if key is None:
        key = _KEYWORD_TAGS[keyword] = _interned(_tag_of(keyword))
    tag = int(key)
    elem = ds._dict.get(key)
    if elem is None:
        return ""
    if isinstance(elem, RawDataElement):
        vr = elem.VR if elem.VR is not None else _dictionary_vr(tag)
        if vr in _ASCII_VRS:
            return _text_of(elem.value)
        if vr == "US" and elem.value is not None and len(elem.value) == 2:
            return str(struct.unpack("<H" if elem.is_little_endian else ">H", elem.value)[0])
    try:
        value = ds[tag].value
    except Exception:  # malformed value: callers treat it as absent
        return ""
    return _text_of(value)


#: Padding stripped from each string value (DICOM pads with spaces, UI with NUL).
_PADDING = " \t\r\n\x00"


def _text_of(value: Any) -> str:
    """Text of a raw or converted element value (see :func:`header_text`)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        if b"\\" not in value:  # one value: the common case
            return value.decode("latin-1").strip(_PADDING)
        value = value.decode("latin-1").split("\\")
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(_one_text(v) for v in value)
    return _one_text(value)


def _one_text(value: Any) -> str:
    """One value as stripped text (bytes, e.g. one value of an ``UN`` element, as Latin-1)."""
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return text.strip(_PADDING)


_VR_CACHE: dict[int, str] = {}


def _dictionary_vr(tag: int) -> str:
    vr = _VR_CACHE.get(tag)
    if vr is None:
        try:
            vr = str(dictionary_VR(tag))
        except KeyError:
            vr = "UN"
        _VR_CACHE[tag] = vr
    return vr


# ---------------------------------------------------------------------------- safe dcmread
def read_dataset(
    path: PathLike,
    *,
    stop_before_pixels: bool = False,
    specific_tags: list[Any] | None = None,
    force: bool = False,
    reader_warnings: list[str] | None = None,
) -> FileDataset:
    """Read a DICOM file with pydicom, raising :class:`DicomReadError` on any failure.

    Only regular files within the size cap are opened (:func:`open_regular_file`). The
    warnings pydicom emits are collected (into ``reader_warnings`` when given, so that a
    caller can report them once per series) instead of being printed once per file; a
    warning that the file ends before a delimiter is an error (the file is truncated, and
    pydicom would return an empty or partial data set). A data set that does not parse
    under its transfer syntax (no SOPClassUID although the File Meta Information names an
    image SOP class, e.g. a false Big Endian claim) is an error too.

    Parameters
    ----------
    path : str or path-like
        The file.
    stop_before_pixels : bool
        Stop before the pixel data (header only).
    specific_tags : list, optional
        Only read these tags (see :func:`pydicom.dcmread`).
    force : bool
        Read files lacking the ``DICM`` prefix / File Meta Information.
    reader_warnings : list of str, optional
        Receives pydicom's warnings about the file (each prefixed with nothing; the caller
        names the file).

    Returns
    -------
    pydicom.dataset.FileDataset

    Raises
    ------
    DicomReadError
        The file does not exist, is not a regular file, exceeds the size cap, is not DICOM,
        or is truncated or corrupt.
    """
    spath = os.fspath(path)
    caught: list[str] = []
    with open_regular_file(spath) as fh:
        try:
            with _pydicom_warnings(caught):
                ds = pydicom.dcmread(
                    fh,
                    stop_before_pixels=stop_before_pixels,
                    specific_tags=specific_tags,
                    force=force,
                )
        except InvalidDicomError as exc:
            raise DicomReadError(
                format_message(
                    f"{spath} is not a DICOM file ({exc})",
                    fix="point emlesion at a folder of DICOM Part 10 files",
                )
            ) from exc
        except Exception as exc:
            raise DicomReadError(
                format_message(
                    f"cannot parse {spath} as DICOM ({type(exc).__name__}: {exc})",
                    fix="the file is probably truncated or corrupt; copy it again from the "
                    "source",
                )
            ) from exc
    ds.filename = spath
    truncated = [m for m in caught if "End of file reached" in m or "truncated" in m.lower()]
    if truncated:
        raise DicomReadError(format_message(
            f"{spath} is truncated: {truncated[0]} ({os.path.getsize(spath)} bytes)",
            fix="copy the file again from the source; the transfer was incomplete"))
    if specific_tags is None:
        _check_parsed(ds, spath, caught)
    if reader_warnings is not None:
        reader_warnings.extend(caught)
    return ds


def _check_parsed(ds: Dataset, path: str, caught: list[str]) -> None:
    """Raise when a data set read by pydicom lacks the SOPClassUID its File Meta names.

    pydicom parses a data set under the transfer syntax of the File Meta Information; when
    that syntax is false (Big Endian claimed for little-endian data) it returns a few
    nonsense elements instead of failing. Every image, SEG and RTSTRUCT data set carries
    SOPClassUID (PS3.3 C.12.1, Type 1); only a DICOMDIR does not.
    """
    meta = getattr(ds, "file_meta", None)
    media_sop = header_text(meta, "MediaStorageSOPClassUID") if meta is not None else ""
    if not media_sop or media_sop == _DICOMDIR_SOP_CLASS or header_text(ds, "SOPClassUID"):
        return
    syntax = header_text(meta, "TransferSyntaxUID") if meta is not None else ""
    hint = ""
    if syntax == _EXPLICIT_BE:
        hint = ("; the TransferSyntaxUID claims Explicit VR Big Endian, but the data set "
                "does not parse as big endian (it is probably little endian)")
    detail = f"; pydicom said: {caught[0]}" if caught else ""
    raise DicomReadError(format_message(
        f"{path}: the data set does not parse under its transfer syntax {syntax or '?'} "
        f"(SOPClassUID is missing although MediaStorageSOPClassUID is {media_sop}; "
        f"{len(ds)} element(s) read){hint}{detail}",
        attribute="TransferSyntaxUID (0002,0010)",
        fix="re-export the file, or correct TransferSyntaxUID in its File Meta Information "
        "(e.g. dcmodify -m '(0002,0010)=1.2.840.10008.1.2.1' for Explicit VR Little Endian)"))


# ---------------------------------------------------------------------------- fast scanner
def _element_header(buf: bytes, pos: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
    """Return ``(tag, vr, length, header_size)`` of the element starting at ``pos``."""
    group, elem = _TAG.unpack_from(buf, pos)
    tag = group << 16 | elem
    if implicit or group == 0xFFFE:
        return tag, None, _U32.unpack_from(buf, pos + 4)[0], 8
    vr = buf[pos + 4 : pos + 6]
    if vr in _LONG_VRS:
        return tag, vr, _U32.unpack_from(buf, pos + 8)[0], 12
    if len(vr) != 2 or not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):  # two letters A-Z
        raise _ScanError(f"invalid VR {vr!r} at byte {pos}")
    return tag, vr, _U16.unpack_from(buf, pos + 6)[0], 8


def _skip_dataset(buf: bytes, pos: int, implicit: bool, n: int) -> int:
    """Skip an undefined-length item's data set; return the position after its delimiter."""
    unpack_implicit = _IMPLICIT_HEAD.unpack_from
    while True:
        if pos + 8 > n:
            raise _Truncated("item without delimiter")
        if implicit:  # the common case, inlined: one struct call per element
            group, elem, length = unpack_implicit(buf, pos)
            tag, hdr = group << 16 | elem, 8
        else:
            tag, _vr, length, hdr = _element_header(buf, pos, implicit)
        if tag == _ITEM_DELIM:
            return pos + 8
        pos += hdr
        if length == _UNDEFINED:
            pos = _skip_sequence(buf, pos, implicit, n)
        else:
            pos += length
            if pos > n:
                raise _Truncated("element runs past the end of the file")


def _skip_sequence(buf: bytes, pos: int, implicit: bool, n: int) -> int:
    """Skip an undefined-length sequence value; return the position after its delimiter."""
    while True:
        if pos + 8 > n:
            raise _Truncated("sequence without delimiter")
        group, elem = _TAG.unpack_from(buf, pos)
        tag = group << 16 | elem
        length = _U32.unpack_from(buf, pos + 4)[0]
        if tag == _SEQ_DELIM:
            return pos + 8
        if tag != _ITEM:
            raise _ScanError(f"expected an item tag at byte {pos}")
        if length == _UNDEFINED:
            pos = _skip_dataset(buf, pos + 8, implicit, n)
        else:
            pos += 8 + length
            if pos > n:
                raise _Truncated("item runs past the end of the file")


def _scan(
    buf: bytes,
    pos: int,
    implicit: bool,
    *,
    stop_at_group_end: int | None = None,
    encapsulated: bool = False,
) -> tuple[dict[BaseTag, RawDataElement | DataElement], int, int, int]:
    """Scan top-level elements from ``pos``.

    Returns ``(elements, pixel_tag, pixel_offset, pixel_length)``; ``pixel_tag`` is 0 when
    there is no pixel data. Stops at the pixel data (elements after it are not kept), or
    after the last element of group 2 when ``stop_at_group_end`` is given (file meta).
    With ``encapsulated`` (a compressed transfer syntax) the pixel data must have undefined
    length; its ``pixel_length`` is then ``0xFFFFFFFF``.
    """
    n = len(buf)
    out: dict[BaseTag, RawDataElement | DataElement] = {}
    unpack_implicit = _IMPLICIT_HEAD.unpack_from
    unpack_explicit = _EXPLICIT_HEAD.unpack_from
    unpack_u32 = _U32.unpack_from
    vr_names = _VR_NAMES
    base_tags = _BASE_TAGS
    new_tuple = tuple.__new__
    raw_element = RawDataElement
    while pos + 8 <= n:
        if stop_at_group_end is not None and _U16.unpack_from(buf, pos)[0] != stop_at_group_end:
            break
        # one struct call per element header (this loop runs ~200 times per slice)
        vr_str: str | None
        if implicit:
            group, elem, length = unpack_implicit(buf, pos)
            vr_str, hdr = None, 8
        else:
            group, elem, vr, length = unpack_explicit(buf, pos)
            if group == 0xFFFE:
                length = unpack_u32(buf, pos + 4)[0]
                vr_str, hdr = None, 8
            else:
                vr_str = vr_names.get(vr)
                if vr_str is None:
                    if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):  # two letters A-Z
                        raise _ScanError(f"invalid VR {vr!r} at byte {pos}")
                    vr_str = vr.decode("ascii")
                if vr in _LONG_VRS:
                    length = unpack_u32(buf, pos + 8)[0]
                    hdr = 12
                else:
                    hdr = 8
        tag = group << 16 | elem
        value_pos = pos + hdr
        if tag in (_PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA):
            if length == _UNDEFINED:
                if tag != _PIXEL_DATA or not encapsulated:
                    raise _ScanError("encapsulated (compressed) pixel data")
                return out, tag, value_pos, _UNDEFINED
            if encapsulated:
                raise _ScanError("defined-length pixel data in a compressed transfer syntax")
            if value_pos + length > n:
                raise _ScanError("pixel data truncated")
            return out, tag, value_pos, length
        if length == _UNDEFINED:
            if vr_str not in (None, "SQ", "UN"):
                raise _ScanError(f"undefined length with VR {vr_str}")
            end = _skip_sequence(buf, value_pos, implicit, n)
            seq_value = buf[value_pos : end - 8]
            key = base_tags.get(tag) or _interned(tag)
            out[key] = new_tuple(raw_element, (key, "SQ", len(seq_value), seq_value, value_pos,
                                               implicit, True))
            pos = end
            continue
        end = value_pos + length
        if end > n:
            raise _Truncated(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) truncated")
        value: bytes | None = buf[value_pos:end] if length else None
        key = base_tags.get(tag) or _interned(tag)
        # tuple.__new__ builds the RawDataElement (a NamedTuple) without a Python frame
        out[key] = new_tuple(raw_element, (key, vr_str, length, value, value_pos, implicit,
                                           True))
        pos = end
    if pos != n and stop_at_group_end is None:
        raise _Truncated(f"{n - pos} byte(s) after the last complete element")
    return out, 0, pos, 0


def _pixels_truncated(path: str, exc: Exception, n_bytes: int) -> DicomReadError:
    """The error for encapsulated pixel data that ends before its sequence delimiter."""
    return DicomReadError(format_message(
        f"{path} is truncated: {exc} ({n_bytes} bytes)", attribute="PixelData (7FE0,0010)",
        fix="copy the file again from the source; the transfer was incomplete"))


def _fast_read(
    path: str, buf: bytes, *, check_pixels: bool = True
) -> tuple[FileDataset, int, int] | None:
    """Parse ``buf`` with the fast scanner; None when the file needs pydicom.

    Returns ``(header, pixel_offset, pixel_length)``; ``pixel_length`` is ``0xFFFFFFFF``
    for encapsulated pixel data, whose items are checked for completeness only with
    ``check_pixels`` (a header-only read does not look at the pixel data).
    """
    if len(buf) < 144 or buf[128:132] != b"DICM":
        return None
    try:
        meta_raw, _, pos, _ = _scan(buf, 132, False, stop_at_group_end=0x0002)
        if pos + 8 > len(buf):  # the file ends inside or right after group 0002 (PS3.10 7.1)
            raise _Truncated("the file ends in the File Meta Information, before the data set")
        ts_raw = meta_raw.get(BaseTag(0x00020010))
        if ts_raw is None or ts_raw.value is None:
            return None
        syntax = ts_raw.value.decode("ascii", "replace").strip("\x00 ")
        if syntax in (_EXPLICIT_BE, _DEFLATED_LE) or not syntax.startswith("1.2.840.10008.1.2"):
            return None
        # every other standard syntax is Explicit VR Little Endian; the compressed ones
        # encapsulate the pixel data (PS3.5 A.4)
        encapsulated = syntax not in _NATIVE_SYNTAXES
        implicit = _NATIVE_SYNTAXES.get(syntax, False)
        try:
            elements, pixel_tag, pixel_pos, pixel_len = _scan(
                buf, pos, implicit, encapsulated=encapsulated)
            if pixel_len == _UNDEFINED and check_pixels:
                _encapsulated_length(buf, pixel_pos)
        except struct.error as exc:
            raise _Truncated(str(exc)) from exc
    except _PixelsTruncated as exc:
        raise _pixels_truncated(path, exc, len(buf)) from exc
    except _Truncated as exc:
        raise DicomReadError(
            format_message(
                f"{path} is truncated: the file ends inside the header ({exc}, "
                f"{len(buf)} bytes)",
                fix="copy the file again from the source; the transfer was incomplete",
            )
        ) from exc
    except (_ScanError, struct.error, ValueError) as exc:  # ValueError: undecodable bytes
        logger.debug("fast scanner falls back to pydicom for %s: %s", path, exc)
        return None
    ds = FileDataset(path, elements, buf[:128], FileMetaDataset(meta_raw), implicit, True)
    ds.set_original_encoding(implicit, True, ds._character_set)
    if pixel_tag in (_FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA):
        return None  # rare; let pydicom decode float pixel data
    if pixel_tag != _PIXEL_DATA:
        return ds, -1, 0
    return ds, pixel_pos, pixel_len


def _encapsulated_length(buf: bytes, pos: int) -> int:
    """Length of the items of encapsulated pixel data starting at ``pos`` (PS3.5 A.4).

    The value runs up to the Sequence Delimitation Item, which is not included (pydicom
    stores the same bytes as the element value).

    Raises
    ------
    _PixelsTruncated
        The file ends before the delimiter (a truncated compressed file).
    _ScanError
        Something other than an item inside the pixel data.
    """
    n = len(buf)
    start = pos
    count = 0
    while True:
        if pos + 8 > n:
            raise _PixelsTruncated(
                f"its compressed pixel data ends after {count} complete item(s), without "
                "the sequence delimiter")
        group, elem = _TAG.unpack_from(buf, pos)
        tag = group << 16 | elem
        length = _U32.unpack_from(buf, pos + 4)[0]
        if tag == _SEQ_DELIM:
            return pos - start
        if tag != _ITEM or length == _UNDEFINED:
            raise _ScanError(f"no item tag inside the encapsulated pixel data at byte {pos}")
        pos += 8 + length
        count += 1
        if pos > n:
            raise _PixelsTruncated(
                f"item {count} of its compressed pixel data runs past the end of the file")


# ---------------------------------------------------------------------------- one file
@dataclass(frozen=True, eq=False)
class DicomFile:
    """One DICOM file: its header (without pixel data) and, if read, its pixel bytes.

    Parameters
    ----------
    path : str
        Where the file was read from.
    header : pydicom.dataset.FileDataset
        All elements before the pixel data (the pixel data element itself is removed).
    pixel_bytes : bytes, optional
        The native (uncompressed) pixel data value, when the file is uncompressed.
    pixel_element : pydicom.dataelem.DataElement, optional
        The pixel data element of a compressed file (decoded through pydicom).
    pixel_offset, pixel_length : int
        Byte offset and length of native pixel data left on disk (``lazy_pixels=True``);
        ``pixel_offset`` is -1 when not applicable.
    reader_warnings : tuple of str
        The warnings pydicom emitted while reading the file (reported once per series by
        the loader, not once per file).
    """

    path: str
    header: FileDataset
    pixel_bytes: bytes | None = None
    pixel_element: DataElement | None = None
    pixel_offset: int = -1
    pixel_length: int = 0
    reader_warnings: tuple[str, ...] = ()

    @property
    def has_pixels(self) -> bool:
        """True when pixel data was read or can be read lazily."""
        return (self.pixel_bytes is not None or self.pixel_element is not None
                or self.pixel_offset >= 0)

    def native_pixel_bytes(self) -> bytes | None:
        """The native pixel bytes, read from disk now when they were left there."""
        if self.pixel_bytes is not None or self.pixel_offset < 0:
            return self.pixel_bytes
        try:
            with open_regular_file(self.path) as fh:
                fh.seek(self.pixel_offset)
                return fh.read(self.pixel_length)
        except OSError as exc:
            raise DicomReadError(
                format_message(f"cannot read the pixel data of {self.path} "
                               f"({exc.strerror or exc})",
                               fix="the file was moved or deleted while loading")
            ) from exc

    def pixels(self, *, series: str | None = None) -> np.ndarray:
        """Decode the stored values of a single-frame image (no rescale), shape ``(rows, cols)``.

        Raises
        ------
        DicomReadError
            No pixel data, or it cannot be decoded.
        """
        return decode_pixels(self, series=series)


#: What identifies the content of a file between two reads: size, modification time (ns),
#: inode and device (``os.stat``).
FileSignature = tuple[int, int, int, int]


def _signature(info: os.stat_result) -> FileSignature:
    return (info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)


def _read_whole(spath: str) -> tuple[bytes, FileSignature]:
    """The bytes of a regular file (within the size cap) and its signature."""
    with open_regular_file(spath) as fh:
        try:
            # read(n) allocates n bytes up front: ask for the size checked at opening (a
            # file that grew since is read up to that size and found truncated or intact)
            info = os.fstat(fh.fileno())
            buf = fh.read(info.st_size)
        except OSError as exc:
            message = format_message(f"cannot read {spath} ({exc.strerror or exc})",
                                     fix="check the file and the drive it is on")
            raise DicomReadError(message) from exc
    return buf, _signature(info)


@dataclass(frozen=True, eq=False)
class LocatedHeader:
    """A header read without pixel data, with where its pixel data is in the file.

    Discovery reads every header once; the loader turns a located header into the
    :class:`DicomFile` :func:`read_file` would give (:meth:`reopen`) without parsing the
    header again, as long as the file is unchanged (same :data:`FileSignature`).

    Parameters
    ----------
    file : DicomFile
        The header-only read (as ``read_file(path, with_pixels=False)``).
    signature : FileSignature
        Size, modification time, inode and device of the file when it was read.
    pixel_offset, pixel_length : int
        Byte offset and length of the pixel data value found by the fast scanner
        (``pixel_length`` 0xFFFFFFFF: encapsulated, items not checked yet); ``pixel_offset``
        is -1 when the file has no pixel data.
    scanned : bool
        True when the fast scanner read the file (False: pydicom did, and nothing is known
        about the pixel data).
    """

    file: DicomFile
    signature: FileSignature
    pixel_offset: int = -1
    pixel_length: int = 0
    scanned: bool = False

    def reopen(self) -> DicomFile | None:
        """The :class:`DicomFile` of ``read_file(path, lazy_pixels=True)``, or None when the
        file must be read again (changed since, read by pydicom, or encapsulated pixel data
        the scanner cannot follow).

        Native pixel data stays on disk (``lazy_pixels``); encapsulated pixel data is read
        from its offset and checked for completeness as :func:`read_file` checks it.

        Raises
        ------
        DicomReadError
            The encapsulated pixel data is truncated (the message of :func:`read_file`).
        """
        path = self.file.path
        if not self.scanned:
            return None
        try:
            if _signature(os.stat(path)) != self.signature:
                return None
        except OSError:
            return None
        if self.pixel_offset < 0:
            return self.file
        header = self.file.header
        if self.pixel_length != _UNDEFINED:
            return DicomFile(path, header, pixel_offset=self.pixel_offset,
                             pixel_length=self.pixel_length)
        try:
            with open_regular_file(path) as fh:
                if _signature(os.fstat(fh.fileno())) != self.signature:
                    return None
                fh.seek(self.pixel_offset)
                tail = fh.read(self.signature[0] - self.pixel_offset)
        except (OSError, DicomReadError):
            return None  # read again, and fail there with read_file's message
        try:
            length = _encapsulated_length(tail, 0)
        except _PixelsTruncated as exc:
            raise _pixels_truncated(path, exc, self.signature[0]) from exc
        except (_ScanError, struct.error):
            return None  # read_file hands such a file to pydicom
        encapsulated = DataElement(BaseTag(_PIXEL_DATA), "OB", tail[:length],
                                   is_undefined_length=True)
        return DicomFile(path, header, None, encapsulated)


def read_located(path: PathLike) -> LocatedHeader:
    """Read the header of one DICOM file (as ``read_file(path, with_pixels=False)``) and
    remember where its pixel data is, for :meth:`LocatedHeader.reopen`.

    Raises
    ------
    DicomReadError
        The file cannot be opened, is not DICOM, or its header is truncated/corrupt.
    """
    spath = os.fspath(path)
    buf, signature = _read_whole(spath)
    fast = _fast_read(spath, buf, check_pixels=False)
    if fast is not None:
        ds, pixel_pos, pixel_len = fast
        return LocatedHeader(DicomFile(spath, ds), signature, pixel_pos, pixel_len, True)
    caught: list[str] = []
    ds = read_dataset(spath, stop_before_pixels=True, reader_warnings=caught)
    for tag in (_PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA):
        if tag in ds:
            del ds[tag]
    return LocatedHeader(DicomFile(spath, ds, None, None, reader_warnings=tuple(caught)),
                         signature)


def read_file(path: PathLike, *, with_pixels: bool = True, lazy_pixels: bool = False) -> DicomFile:
    """Read one DICOM file tolerantly (fast scanner, pydicom fallback).

    Parameters
    ----------
    path : str or path-like
        The file (any name; no ``.dcm`` suffix needed).
    with_pixels : bool
        Keep the pixel data (False = header only, like ``stop_before_pixels``).
    lazy_pixels : bool
        With ``with_pixels``, leave uncompressed pixel data on disk and remember where it
        is; :func:`decode_pixels` reads it when needed. This keeps the memory of a series
        load at about one copy of the output volume.

    Returns
    -------
    DicomFile
        The header without pixel data and, when requested, the pixel bytes.

    Raises
    ------
    DicomReadError
        The file cannot be opened, is not DICOM, or is truncated/corrupt.
    """
    spath = os.fspath(path)
    if not with_pixels:
        return read_located(spath).file
    buf, _ = _read_whole(spath)
    fast = _fast_read(spath, buf)
    if fast is not None:
        ds, pixel_pos, pixel_len = fast
        if pixel_pos < 0:
            return DicomFile(spath, ds)
        if pixel_len == _UNDEFINED:  # an encapsulated (compressed) image
            end = pixel_pos + _encapsulated_length(buf, pixel_pos)
            encapsulated = DataElement(BaseTag(_PIXEL_DATA), "OB", buf[pixel_pos:end],
                                       is_undefined_length=True)
            return DicomFile(spath, ds, None, encapsulated)
        if lazy_pixels:
            return DicomFile(spath, ds, pixel_offset=pixel_pos, pixel_length=pixel_len)
        return DicomFile(spath, ds, buf[pixel_pos : pixel_pos + pixel_len])
    caught: list[str] = []
    ds = read_dataset(spath, stop_before_pixels=False, reader_warnings=caught)
    element: DataElement | None = None
    for tag in (_PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA):
        if tag in ds:
            element = ds[tag]
            del ds[tag]
    syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", ""))
    if (
        element is not None
        and element.tag == _PIXEL_DATA
        and syntax in _NATIVE_SYNTAXES
        and isinstance(element.value, bytes)
    ):
        # native data, possibly truncated
        return DicomFile(spath, ds, element.value, reader_warnings=tuple(caught))
    return DicomFile(spath, ds, None, element, reader_warnings=tuple(caught))


# ---------------------------------------------------------------------------- pixels
def _int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    text = header_text(ds, keyword).split("\\")[0]
    if not text:
        if default is not None:
            return default
        raise DicomReadError(
            format_message(
                f"{keyword} is missing, so the pixel data cannot be decoded",
                series=getattr(ds, "filename", None) or None,
                attribute=keyword,
                fix="the file is incomplete; export the series again",
            )
        )
    try:
        return int(text)
    except ValueError as exc:
        raise DicomReadError(
            format_message(
                f"{keyword} {text!r} is not an integer, so the pixel data cannot be decoded",
                series=getattr(ds, "filename", None) or None,
                attribute=keyword,
                fix="repair the header or export the series again",
            )
        ) from exc


def decode_pixels(file: DicomFile, *, series: str | None = None) -> np.ndarray:
    """Stored pixel values of a single-frame, single-sample image, shape ``(rows, cols)``.

    Uncompressed data is decoded with :func:`numpy.frombuffer` (BitsAllocated 8/16/32,
    PixelRepresentation 0/1, little endian); anything else goes through pydicom's
    ``pixel_array`` (which needs a decoder plugin for compressed syntaxes).

    Raises
    ------
    DicomReadError
        The pixel data is absent, has the wrong size, or cannot be decoded.
    """
    ds = file.header
    where = series or file.path
    native = file.native_pixel_bytes()
    if native is not None:
        rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
        bits = _int(ds, "BitsAllocated")
        rep = _int(ds, "PixelRepresentation", 0)
        samples = _int(ds, "SamplesPerPixel", 1)
        frames = _int(ds, "NumberOfFrames", 1)
        if bits not in (8, 16, 32) or samples != 1 or frames != 1:
            raise DicomReadError(
                format_message(
                    f"{file.path}: unsupported pixel layout (BitsAllocated {bits}, "
                    f"SamplesPerPixel {samples}, NumberOfFrames {frames})",
                    series=where,
                    attribute="BitsAllocated (0028,0100)",
                    fix="emlesion reads single-frame grey-scale PET/CT slices",
                )
            )
        dtype = np.dtype(f"<{'i' if rep == 1 else 'u'}{bits // 8}")
        need = rows * cols * dtype.itemsize
        if len(native) < need:
            raise DicomReadError(
                format_message(
                    f"{file.path}: pixel data holds {len(native)} bytes, "
                    f"{rows}x{cols} pixels of {bits} bits need {need}",
                    series=where,
                    attribute="PixelData (7FE0,0010)",
                    fix="the file is truncated; copy it again from the source",
                )
            )
        if len(native) > need + 1:  # one padding byte makes an odd length even
            warn_external(
                format_message(
                    f"{file.path}: pixel data holds {len(native)} bytes, {rows}x{cols} pixels "
                    f"of {bits} bits need {need}; only the first {need} bytes are used",
                    series=where,
                    attribute="PixelData (7FE0,0010)",
                    fix="check Rows, Columns, BitsAllocated and NumberOfFrames; the header "
                    "may not describe the pixel data",
                ),
                DicomQuirkWarning,
            )
        arr = np.frombuffer(native, dtype=dtype, count=rows * cols).reshape(rows, cols)
        bits_stored = _int(ds, "BitsStored", bits)
        _check_bits_stored(arr, bits_stored, bits, rep == 1, file.path, where)
        if bits_stored < bits:
            arr = _mask_bits(arr, bits_stored, signed=rep == 1)
        return arr
    if file.pixel_element is None:
        raise DicomReadError(
            format_message(
                f"{file.path} has no pixel data",
                series=where,
                attribute="PixelData (7FE0,0010)",
                fix="remove non-image files from the series or choose another series",
            )
        )
    syntax_uid = str(getattr(file.header.file_meta, "TransferSyntaxUID", ""))
    bits_alloc = _int(ds, "BitsAllocated", 0)
    bits_stored = _int(ds, "BitsStored", bits_alloc)
    signed = _int(ds, "PixelRepresentation", 0) == 1
    # RLE segments hold whole bytes, so emlesion can decode all BitsAllocated bits and check
    # BitsStored itself (pydicom would mask the extra bits away silently); JPEG codestreams
    # carry their own precision
    raw_bits = syntax_uid == _RLE_LOSSLESS and bits_alloc in (8, 16, 32) and (
        0 < bits_stored < bits_alloc)
    try:
        arr = np.asarray(_pydicom_pixels(file, file.pixel_element, syntax_uid, raw_bits))
    except Exception as exc:
        syntax = str(getattr(file.header.file_meta, "TransferSyntaxUID", "?"))
        raise DicomReadError(
            format_message(
                f"{file.path}: cannot decode pixel data with transfer syntax {syntax} "
                f"({type(exc).__name__}: {exc})",
                series=where,
                attribute="PixelData (7FE0,0010)",
                fix="install the decoders (pip install 'emlesion[codecs]') or convert the "
                "files to an uncompressed syntax (e.g. gdcmconv --raw)"
                if syntax not in _NATIVE_SYNTAXES
                else "the file is probably truncated or damaged; copy it again from the source",
            )
        ) from exc
    if arr.ndim != 2:
        raise DicomReadError(
            format_message(
                f"{file.path}: expected a single-frame grey-scale image, got pixel array "
                f"shape {arr.shape}",
                series=where,
                fix="emlesion reads single-frame grey-scale PET/CT slices",
            )
        )
    if raw_bits:
        _check_bits_stored(arr, bits_stored, bits_alloc, signed, file.path, where)
        arr = _mask_bits(arr, bits_stored, signed=signed)
    return arr


def _pydicom_pixels(file: DicomFile, element: DataElement, syntax_uid: str,
                    raw_bits: bool) -> np.ndarray:
    """Decode pixel data that is not native through pydicom's decoders.

    Compressed ``PixelData`` goes straight to the decoder of its transfer syntax, with the
    options pydicom derives from the Image Pixel elements (groups 0028 and 7FE0 of the
    header): the same call ``Dataset.pixel_array`` makes, without building a data set of
    the whole header (whose per-frame overhead was most of the time of a compressed series
    load). Anything else (float pixel data, a syntax without a decoder) goes through
    ``Dataset.pixel_array`` on the whole header, which raises pydicom's own errors.
    With ``raw_bits`` BitsStored/HighBit are set to all BitsAllocated bits first.
    """
    header = file.header
    decoder = None
    if element.tag == _PIXEL_DATA and syntax_uid not in _NATIVE_SYNTAXES:
        try:
            decoder = get_decoder(UID(syntax_uid))
        except NotImplementedError:
            decoder = None
    if decoder is not None:
        pixel_module = Dataset({tag: elem for tag, elem in header._dict.items()
                                if tag >> 16 in (0x0028, 0x7FE0)})
        if raw_bits:
            _set_all_bits(pixel_module, _int(header, "BitsAllocated", 0))
        opts: dict[str, Any] = as_pixel_options(pixel_module, use_pdh=False)
        opts["pixel_keyword"] = "PixelData"
        opts["pixel_vr"] = element.VR
        return decoder.as_array(element.value, index=None, validate=True, raw=False,
                                decoding_plugin="", **opts)[0]
    implicit, little = header.original_encoding
    # a shallow copy of the element dict, raw elements as they are: ``dict(header)`` would
    # convert every element through pydicom
    full = FileDataset(
        file.path,
        dict(header._dict),
        header.preamble,
        header.file_meta,
        bool(implicit) if implicit is not None else False,
        bool(little) if little is not None else True,
    )
    full[element.tag] = element
    if raw_bits:
        _set_all_bits(full, _int(header, "BitsAllocated", 0))
    return full.pixel_array


def _set_all_bits(ds: Dataset, bits_allocated: int) -> None:
    """BitsStored = BitsAllocated, HighBit = BitsAllocated - 1 (decode every bit)."""
    ds[_BITS_STORED] = DataElement(BaseTag(_BITS_STORED), "US", bits_allocated)
    ds[_HIGH_BIT] = DataElement(BaseTag(_HIGH_BIT), "US", bits_allocated - 1)


def _check_bits_stored(arr: np.ndarray, bits_stored: int, bits_allocated: int, signed: bool,
                       path: str, where: str) -> None:
    """Raise when stored values use bits above BitsStored (PS3.5 8.1.1: the bits above
    HighBit carry no pixel value).

    Masking them away, as pydicom does, turns an image whose BitsStored is wrong (8 stated,
    16 used) into a scrambled image without a word. Signed values may be stored
    sign-extended (all upper bits equal) or with the upper bits zero; both are accepted.
    """
    if not 0 < bits_stored <= bits_allocated:
        raise InvalidAttributeError(format_message(
            f"{path}: BitsStored {bits_stored} is not between 1 and BitsAllocated "
            f"{bits_allocated}", series=where, attribute="BitsStored (0028,0101)",
            fix="repair the header (BitsStored is at most BitsAllocated)"))
    if bits_stored >= bits_allocated or arr.size == 0:
        return
    u = arr.view(arr.dtype.str.replace("i", "u"))
    high = u >> np.array(bits_stored, dtype=u.dtype)
    all_ones = (1 << (bits_allocated - bits_stored)) - 1
    bad = (high != 0) & (high != all_ones) if signed else high != 0
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        top = int(u.max())
        raise InvalidAttributeError(format_message(
            f"{path}: {n_bad} pixel(s) use bits above BitsStored {bits_stored} (largest stored "
            f"word {top} = 0x{top:X}, BitsAllocated {bits_allocated}); masking them would "
            "scramble the image", series=where, attribute="BitsStored (0028,0101)",
            fix=f"repair BitsStored/HighBit (probably {bits_allocated}/{bits_allocated - 1}) "
            "or export the series again"))


def _mask_bits(arr: np.ndarray, bits_stored: int, *, signed: bool) -> np.ndarray:
    """Keep the low ``bits_stored`` bits (sign-extended when signed), as pydicom does."""
    u = arr.view(arr.dtype.str.replace("i", "u"))
    mask = (1 << bits_stored) - 1
    if not np.any(u & ~np.array(mask, dtype=u.dtype)) and not signed:
        return arr
    low = u & mask
    if not signed:
        return low
    sign = 1 << (bits_stored - 1)
    return (low.astype(np.int64) ^ sign) - sign


# ---------------------------------------------------------------------------- private tags
def find_private(
    ds: Dataset,
    group: int,
    creator: str,
    element_offset: int,
    *,
    literal_block: int | None = None,
    label: str | None = None,
    series: str | None = None,
    warn: bool = True,
) -> DataElement | None:
    """Find a private element by its private creator, wherever its block was placed.

    The one private-tag lookup of emlesion (:mod:`emlesion.io`, :mod:`emlesion.suv`). The
    creator ``(gggg,00xx)`` reserves block ``xx``, and the element sits at ``(gggg,xxee)``
    where ``ee`` is ``element_offset`` [1]_. The creator is a string matched by value [1]_;
    since real files vary its case and padding, it is matched tolerantly: surrounding
    spaces/NULs are ignored and case is folded (:meth:`str.casefold`). When several blocks
    match, a creator equal to ``creator`` with its case (padding still ignored) is
    preferred, then the lowest block; if the preferred block lacks the element the next
    matching block is tried. A group whose blocks all belong to other creators yields None:
    an element is never read by its literal number there.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The data set (or sequence item) to search.
    group : int
        The odd private group, e.g. ``0x0009``.
    creator : str
        The private creator, e.g. ``"GEMS_PETD_01"``.
    element_offset : int
        The element number within the block, ``0x00``-``0xFF`` (the low byte is used if
        a full element such as ``0x100D`` is given).
    literal_block : int, optional
        When the group carries no private creator at all, accept the element at the
        literal tag ``(group, literal_block << 8 | element_offset)`` and emit a
        :class:`~emlesion.errors.DicomQuirkWarning`. IBSI DRO_2_4 and DRO_2_5 store the
        Philips (7053,1000)/(7053,1009) elements this way [2]_, and the domain reference
        prescribes this fallback for that case only [3]_.
    label : str, optional
        Human name of the element in the warning (default ``"private element"``).
    series : str, optional
        Series named in the warning (default: the data set's SeriesInstanceUID).
    warn : bool
        Emit the warning of the literal fallback.

    Returns
    -------
    pydicom.dataelem.DataElement or None
        The element, or None when absent.

    Raises
    ------
    InvalidParameterError
        ``group`` is even (not a private group; a ``ValueError``).

    References
    ----------
    .. [1] DICOM PS3.5 section 7.8.1, Private Data Element Tags.
    .. [2] IBSI SUV DRO list (``DRO/DRO_list.csv``), DRO_2_4 and DRO_2_5.
    .. [3] ``domain-reference.md`` section 1.1, "Private tags".

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
    >>> block.add_new(0x0D, "DT", "20240101120000")
    >>> find_private(ds, 0x0009, "gems_petd_01 ", 0x0D).value
    '20240101120000'
    """
    if group % 2 != 1:
        raise InvalidParameterError(format_message(
            f"private groups are odd, got 0x{group:04X}", attribute=f"({group:04X},xxxx)",
            fix="pass the odd group of the private block (DICOM PS3.5 7.8.1), e.g. 0x0009"))
    offset = element_offset & 0xFF
    creators = _private_creators(ds, group)
    wanted = creator.strip(_PADDING)
    folded = wanted.casefold()
    matches = sorted((name != wanted, block) for block, name in creators.items()
                     if name.casefold() == folded)
    for _, block in matches:
        target = (group << 16) | (block << 8) | offset
        if target in ds:
            return ds[target]
    if creators or literal_block is None:
        return None
    target = (group << 16) | (literal_block << 8) | offset
    if target not in ds:
        return None
    if warn:
        where = f"({group:04X},{(literal_block << 8) | offset:04X})"
        warn_external(
            format_message(
                f"{label or 'private element'} read from the literal element {where}: it is "
                f"present without its private creator {creator!r} (group {group:04X} has no "
                "private creator at all)",
                series=series or header_text(ds, "SeriesInstanceUID") or None,
                attribute=f"private creator ({group:04X},{literal_block:04X})",
                fix="tolerated (IBSI DROs 2_4/2_5 do the same); check the value",
            ),
            DicomQuirkWarning,
        )
    return ds[target]


def _private_creators(ds: Dataset, group: int) -> dict[int, str]:
    """``{block: creator}`` of the group's private creators, padding stripped.

    A creator element whose value cannot be read still reserves its block (as ``""``).
    """
    out: dict[int, str] = {}
    for block in range(0x10, 0x100):
        tag = (group << 16) | block
        if tag not in ds:
            continue
        try:
            value = ds[tag].value
        except Exception:  # malformed creator: the block stays reserved, matches nothing
            value = ""
        out[block] = _text_of(value)
    return out
