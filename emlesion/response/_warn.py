"""Warnings that point at the user's code, not at an emlesion line (not public API).

``warnings.warn(..., stacklevel=n)`` needs the caller to know how deep it is below the
user's code; the response engines are reached directly, through
:func:`emlesion.response.assess_all`, through :meth:`emlesion.study.Study.assess` or the
CLI, so no fixed ``n`` is right. :func:`external_stacklevel` walks the stack instead and
returns the level of the first frame whose file lies outside the ``emlesion`` package
(Python 3.12's ``skip_file_prefixes`` does the same; emlesion supports 3.11).

This is a general helper: it belongs beside the warning classes in
:mod:`emlesion.errors`, and lives here until it can move there.

References
----------
.. [1] Python documentation, ``warnings.warn`` (``stacklevel``, ``skip_file_prefixes``),
   https://docs.python.org/3/library/warnings.html#warnings.warn
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["external_stacklevel", "warn_external"]

#: Directory of the emlesion package, with a trailing separator.
_PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "")


def _inside_package(filename: str) -> bool:
    return os.path.realpath(filename).startswith(_PACKAGE_DIR)


def external_stacklevel() -> int:
    """The ``stacklevel`` at which the caller's ``warnings.warn`` names the first frame
    outside the emlesion package.

    Level 1 is the function calling this one (and then ``warnings.warn``); each emlesion
    frame above it adds one. When every frame is inside emlesion (``python -m emlesion``
    without an outer script) the outermost frame is used.

    Returns
    -------
    int
        A value for ``warnings.warn(..., stacklevel=...)``.
    """
    frame = sys._getframe(1)
    level = 1
    while _inside_package(frame.f_code.co_filename):
        if frame.f_back is None:
            break
        frame = frame.f_back
        level += 1
    return level


def warn_external(message: str, category: type[Warning]) -> None:
    """``warnings.warn(message, category)`` attributed to the first frame outside emlesion.

    Parameters
    ----------
    message : str
        The warning message.
    category : type of Warning
        Usually a subclass of :class:`emlesion.errors.EmlesionWarning`.
    """
    warnings.warn(message, category, stacklevel=external_stacklevel())
