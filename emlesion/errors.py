"""Errors and warnings raised by emlesion.

Every error is an :class:`EmlesionError` *and* a built-in exception class
(``KeyError``, ``ValueError``, ``OSError`` ...), so callers can catch either
the emlesion hierarchy or the familiar built-in. Messages follow one pattern,
built by :func:`format_message`::

    <what went wrong> [series <uid or path>] [attribute <Keyword (gggg,eeee)>]. Fix: <likely fix>

Tolerated deviations are reported as subclasses of :class:`EmlesionWarning`
and, in addition, recorded in the provenance of the result they affected
(see :mod:`emlesion.provenance`).

References
----------
.. [1] pydicom, ``pydicom/errors.py`` (small error module, built-in bases).
.. [2] Z-Rad ``DataStructureWarning`` (warnings for tolerated data quirks).
.. [3] Python documentation, ``warnings.warn`` (``stacklevel``, ``skip_file_prefixes``),
   https://docs.python.org/3/library/warnings.html#warnings.warn
"""

from __future__ import annotations

import contextvars
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = [
    "DeferredWarning",
    "DicomQuirkWarning",
    "DicomReadError",
    "EmlesionError",
    "EmlesionWarning",
    "GeometryError",
    "GeometryWarning",
    "InconsistentStudyError",
    "InputFileWarning",
    "InvalidAttributeError",
    "InvalidParameterError",
    "MaskError",
    "MaskWarning",
    "MissingAttributeError",
    "OutputError",
    "ResponseError",
    "ResponseWarning",
    "SUVError",
    "SUVWarning",
    "SegmentationError",
    "SeriesNotFoundError",
    "UnknownKeyError",
    "UnsupportedDataError",
    "deferred_warnings",
    "emit_warnings",
    "external_stacklevel",
    "format_message",
    "warn_external",
]


def format_message(
    problem: str,
    *,
    series: str | None = None,
    attribute: str | None = None,
    fix: str | None = None,
) -> str:
    """Build an error or warning message in the house format.

    Parameters
    ----------
    problem : str
        What went wrong, as one sentence without a final full stop.
    series : str, optional
        SeriesInstanceUID, series description or folder the problem belongs to.
    attribute : str, optional
        DICOM keyword and tag, e.g. ``"PatientWeight (0010,1030)"``.
    fix : str, optional
        The most likely fix, addressed to the user.

    Returns
    -------
    str
        The message.

    Examples
    --------
    >>> format_message("PatientWeight is missing", series="1.2.3",
    ...                attribute="PatientWeight (0010,1030)", fix="enter it")
    'PatientWeight is missing [series 1.2.3] [attribute PatientWeight (0010,1030)]. Fix: enter it'
    """
    parts = [problem.rstrip(".")]
    if series:
        parts.append(f"[series {series}]")
    if attribute:
        parts.append(f"[attribute {attribute}]")
    text = " ".join(parts)
    if fix:
        text += f". Fix: {fix}"
    return text


class EmlesionError(Exception):
    """Base class of every error raised by emlesion."""


class DicomReadError(EmlesionError, OSError):
    """A file could not be parsed as DICOM, or its pixel data could not be decoded
    (truncated, corrupt, unsupported transfer syntax without a decoder)."""


class SeriesNotFoundError(EmlesionError, FileNotFoundError):
    """No series of the requested kind was found at a path."""


class MissingAttributeError(EmlesionError, KeyError):
    """A DICOM attribute required for a computation is absent, empty or zero."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class InvalidAttributeError(EmlesionError, ValueError):
    """A DICOM attribute is present but its value is malformed or out of range."""


class InvalidParameterError(EmlesionError, ValueError):
    """An argument given to an emlesion function is outside its allowed values: an unknown
    option name, a negative radius, a count below 1, a missing companion argument.

    The data is not at fault (see :class:`InvalidAttributeError` for a malformed header,
    :class:`GeometryError` for a grid); the call is."""


class UnknownKeyError(EmlesionError, KeyError):
    """A name or id looked up in an emlesion object is not there: a track id, a timepoint
    label, a lesion label, a table column, a DICOM keyword."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class UnsupportedDataError(EmlesionError, ValueError):
    """The data is valid DICOM but uses a convention emlesion refuses to guess about
    (for example PET ``Units`` PROPCPS)."""


class GeometryError(EmlesionError, ValueError):
    """Slices do not form a regular 3-D grid (orientation, spacing, tilt, size)."""


class SUVError(EmlesionError, ValueError):
    """An SUV cannot be computed reliably from the header (no SUV is better than a wrong SUV)."""


class MaskError(EmlesionError, ValueError):
    """A mask (SEG, RTSTRUCT, NIfTI or array) does not match its reference image or is empty."""


class SegmentationError(EmlesionError, ValueError):
    """A segmentation request cannot be carried out as specified."""


class InconsistentStudyError(EmlesionError, ValueError):
    """Timepoints of a longitudinal study disagree (patient, dates, modality)."""


class ResponseError(EmlesionError, ValueError):
    """Measurements handed to a response engine are incomplete or inconsistent."""


class OutputError(EmlesionError, OSError):
    """An output path cannot be written: it is not a writable folder or file name, it lies
    inside (or is the parent of) an input, it is an existing non-empty folder without
    ``--force``, or the file system refused the write (read-only, full, permissions).

    Nothing of the run is published when this is raised (see :mod:`emlesion._atomic`)."""


class EmlesionWarning(UserWarning):
    """Base class of every warning emitted by emlesion."""


class DicomQuirkWarning(EmlesionWarning):
    """A DICOM file deviates from the standard in a way emlesion tolerates
    (missing private creator, non-zero PET rescale intercept, ...)."""


class GeometryWarning(EmlesionWarning):
    """A tolerated geometry irregularity (slightly irregular spacing, tiny tilt)."""


class SUVWarning(EmlesionWarning):
    """A tolerated SUV header problem that was corrected or worked around
    (dose in MBq, weight in grams, reference times that disagree)."""


class MaskWarning(EmlesionWarning):
    """A tolerated mask problem: overlapping segments resolved, an empty segment, a
    contour type that has no area, a segment outside the reference grid."""


class InputFileWarning(EmlesionWarning):
    """A file under an input folder was left out of discovery: not a regular file (a named
    pipe, a device, a socket, a link to one), unreadable, larger than the size cap, or a
    DICOM file that cannot be parsed. Loading a series never leaves out a file silently:
    a file that belongs to the series and cannot be read is an error."""


class ResponseWarning(EmlesionWarning):
    """Two timepoints are not strictly comparable (liver uptake, uptake time, scanner),
    or a lesion could not be used by a criterion; the assessment went ahead."""


# ---------------------------------------------------------------------------- attribution
#: Directory of the emlesion package, with a trailing separator.
_PACKAGE_DIR = os.path.join(os.path.dirname(os.path.realpath(__file__)), "")


def _inside_package(filename: str) -> bool:
    return os.path.realpath(filename).startswith(_PACKAGE_DIR)


def external_stacklevel() -> int:
    """The ``stacklevel`` at which the caller's ``warnings.warn`` names the first frame
    outside the emlesion package.

    ``warnings.warn(..., stacklevel=n)`` needs the caller to know how deep it sits below the
    user's code; emlesion functions are reached directly, through the study pipeline or the
    CLI, so no fixed ``n`` is right. This walks the stack instead (Python 3.12's
    ``skip_file_prefixes`` does the same; emlesion supports 3.11). Level 1 is the function
    calling this one (and then ``warnings.warn``); each emlesion frame above it adds one.
    When every frame is inside emlesion (``python -m emlesion``) the outermost frame is used.

    Returns
    -------
    int
        A value for ``warnings.warn(..., stacklevel=...)``.

    References
    ----------
    .. [1] Python documentation, ``warnings.warn``.
    """
    frame = sys._getframe(1)
    level = 1
    while _inside_package(frame.f_code.co_filename):
        if frame.f_back is None:
            break
        frame = frame.f_back
        level += 1
    return level


@dataclass(frozen=True)
class DeferredWarning:
    """A warning of :func:`warn_external` held back by :func:`deferred_warnings`.

    Parameters
    ----------
    message : str
        The warning message.
    category : type of Warning
        Its class.
    """

    message: str
    category: type[Warning]


#: The lists collecting deferred warnings in the current context (innermost last). A
#: :class:`contextvars.ContextVar`, so each thread (and each asyncio task) has its own:
#: ``warnings.catch_warnings`` swaps process-global state and is not thread-safe before
#: Python 3.14, which is why emlesion does not use it to record its own warnings.
_DEFERRED: contextvars.ContextVar[tuple[list[DeferredWarning], ...]] = contextvars.ContextVar(
    "emlesion_deferred_warnings", default=())


@contextmanager
def deferred_warnings() -> Iterator[list[DeferredWarning]]:
    """Hold back the warnings that :func:`warn_external` emits in this block, in this thread.

    The block's warnings are appended to the yielded list instead of being emitted; the
    caller decides what to do with them (record them in a provenance step, re-emit them
    with :func:`emit_warnings`, or drop them). Only the current thread (context) is
    affected: a worker thread running its own block does not see or steal them, which is
    what lets :func:`emlesion.study.load_study` process timepoints in parallel threads.
    Warnings that third-party code emits with :func:`warnings.warn` are not held back.

    Yields
    ------
    list of DeferredWarning
        Filled while the block runs, in emission order.

    References
    ----------
    .. [1] Python documentation, ``warnings.catch_warnings`` ("not thread-safe") and
       :mod:`contextvars`.

    Examples
    --------
    >>> with deferred_warnings() as held:
    ...     warn_external("weight looks like pounds", SUVWarning)
    >>> [(w.category.__name__, w.message) for w in held]
    [('SUVWarning', 'weight looks like pounds')]
    """
    held: list[DeferredWarning] = []
    token = _DEFERRED.set((*_DEFERRED.get(), held))
    try:
        yield held
    finally:
        _DEFERRED.reset(token)


def emit_warnings(held: Iterable[DeferredWarning]) -> None:
    """Emit held-back warnings, in order, as :func:`warn_external` would emit them here.

    Inside an enclosing :func:`deferred_warnings` block of this thread they are held by
    that block; otherwise they go to :func:`warnings.warn`, attributed to the first frame
    outside emlesion of the calling thread (so that the caller's filters, such as
    ``warnings.simplefilter("error")`` or ``pytest.warns``, apply).

    Parameters
    ----------
    held : iterable of DeferredWarning
        Usually the list of a finished :func:`deferred_warnings` block.
    """
    for w in held:
        _emit(w.message, w.category)


def _emit(message: str, category: type[Warning]) -> None:
    stack = _DEFERRED.get()
    if stack:
        stack[-1].append(DeferredWarning(message, category))
        return
    # the stack walk starts at this frame and skips every emlesion frame
    warnings.warn(message, category, stacklevel=external_stacklevel())


def warn_external(message: str, category: type[Warning]) -> None:
    """``warnings.warn(message, category)`` attributed to the first frame outside emlesion.

    Inside a :func:`deferred_warnings` block of the current thread (as inside
    :func:`emlesion.provenance.record_warnings`) the warning is held by the block instead.

    Parameters
    ----------
    message : str
        The warning message (usually built by :func:`format_message`).
    category : type of Warning
        Usually a subclass of :class:`EmlesionWarning`.
    """
    _emit(message, category)
