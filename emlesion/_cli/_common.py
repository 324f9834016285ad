"""Helpers shared by the sub-commands: option types checked at parse time (a bad value is a
usage error, exit code 2, before anything is loaded) and terminal-safe text.

Header strings (SeriesDescription, PatientID, segment labels, folder names) come from files
that anyone can write; printed raw, an escape sequence in them would drive the terminal
(clear the screen, recolour, rewrite earlier lines). :func:`safe_text` shows every control
character as a Python escape instead.

References
----------
.. [1] ECMA-48, "Control Functions for Coded Character Sets" (C0/C1 controls, CSI sequences).
.. [2] Unicode Standard Annex #9, "Unicode Bidirectional Algorithm" (the explicit directional
   formatting characters, general category Cf, that reorder displayed text).
"""

from __future__ import annotations

import argparse
import unicodedata
from collections.abc import Callable

from emlesion.errors import InvalidParameterError

__all__ = [
    "UsageError",
    "criteria_type",
    "labels_type",
    "method_type",
    "normalization_type",
    "positive_int",
    "safe_text",
]


class UsageError(InvalidParameterError):
    """Options that are each valid but do not fit together (e.g. 2 labels for 3 folders);
    :func:`emlesion.cli.main` reports it as a usage error, exit code 2, like argparse."""


def safe_text(text: object) -> str:
    """``str(text)`` with every control or format character shown as an escape.

    C0/C1 controls and DEL (Unicode category Cc) other than newline and tab, and format
    characters (Cf: bidirectional overrides, zero-width characters) become ``\\x1b``,
    ``\\u202e`` ...; everything else, including non-ASCII letters, is kept.

    Examples
    --------
    >>> safe_text("\\x1b[2J\\x1b[31mEVIL")
    '\\\\x1b[2J\\\\x1b[31mEVIL'
    >>> safe_text("Müller\\tline")
    'Müller\\tline'
    """
    out = []
    for ch in str(text):
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf"):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def positive_int(text: str) -> int:
    """An integer >= 1 (``--workers``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def method_type(text: str) -> str:
    """A segmentation method of :class:`emlesion.segment.Method` (its value)."""
    from emlesion.segment import Method

    key = text.strip().lower()
    for m in Method:
        if key == m.value:
            return m.value
    names = ", ".join(m.value for m in Method)
    raise argparse.ArgumentTypeError(f"unknown method {text!r}; use one of {names}")


def normalization_type(*, allow_none: bool) -> Callable[[str], str | None]:
    """Parser of an SUV normalisation name (aliases of
    :meth:`emlesion.suv.Normalization.coerce`); with ``allow_none``, ``none`` gives None."""

    def parse(text: str) -> str | None:
        from emlesion.errors import InvalidAttributeError
        from emlesion.suv.enums import Normalization

        if allow_none and text.strip().lower() == "none":
            return None
        try:
            return Normalization.coerce(text).value
        except InvalidAttributeError:
            names = ", ".join(m.value for m in Normalization)
            extra = ", none" if allow_none else ""
            raise argparse.ArgumentTypeError(
                f"unknown SUV normalisation {text!r}; use one of {names} (alias sul){extra}"
            ) from None

    return parse


def criteria_type(text: str) -> list[str]:
    """A comma-separated list of response criteria (``lugano`` = both Lugano calls)."""
    from emlesion.errors import EmlesionError
    from emlesion.response import Criterion

    items: list[str] = []
    bad: list[str] = []
    for t in (t.strip().lower() for t in text.split(",")):
        if not t:
            continue
        if t == "lugano":
            items.append(t)
            continue
        try:
            items.append(Criterion.coerce(t).value)
        except (EmlesionError, ValueError):
            bad.append(t)
    if not items or bad:
        allowed = [c.value for c in Criterion] + ["lugano"]
        raise argparse.ArgumentTypeError(
            f"unknown criteria {bad or [text]}; use a comma-separated list of "
            + ", ".join(allowed))
    return list(dict.fromkeys(items))


def labels_type(text: str) -> list[str]:
    """A comma-separated list of distinct timepoint labels (not a reserved word)."""
    from emlesion.study.model import RESERVED_LABELS

    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list of labels")
    if len(set(items)) != len(items):
        raise argparse.ArgumentTypeError(f"labels must be distinct, got {items}")
    reserved = sorted(set(items) & RESERVED_LABELS)
    if reserved:
        raise argparse.ArgumentTypeError(
            f"{reserved} cannot be timepoint labels (reserved: {sorted(RESERVED_LABELS)})")
    return items
