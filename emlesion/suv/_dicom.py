"""Header access helpers for the SUV engine: typed attribute reads, private blocks, nuclides.

Private to :mod:`emlesion.suv`. Every read names the attribute (keyword and tag) in the
error it raises, and private elements are always located through their private creator.
Header text and private creators are read by the shared implementations in
:mod:`emlesion.io.dicom` (:func:`~emlesion.io.dicom.header_text`,
:func:`~emlesion.io.dicom.find_private`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.tag import Tag

from emlesion.errors import InvalidAttributeError, format_message
from emlesion.io.dicom import find_private, header_text

__all__ = [
    "HALF_LIFE_S_BY_NUCLIDE",
    "PrivateElement",
    "attr",
    "get_float",
    "half_life_from_code",
    "private_value",
]

#: Keyword -> "Keyword (gggg,eeee)" labels used in messages.
_TAGS: dict[str, str] = {
    "Units": "(0054,1001)",
    "SUVType": "(0054,1006)",
    "DecayCorrection": "(0054,1102)",
    "CorrectedImage": "(0028,0051)",
    "SeriesDate": "(0008,0021)",
    "SeriesTime": "(0008,0031)",
    "AcquisitionDate": "(0008,0022)",
    "AcquisitionTime": "(0008,0032)",
    "AcquisitionDateTime": "(0008,002A)",
    "FrameReferenceTime": "(0054,1300)",
    "ActualFrameDuration": "(0018,1242)",
    "RadiopharmaceuticalInformationSequence": "(0054,0016)",
    "RadiopharmaceuticalStartTime": "(0018,1072)",
    "RadiopharmaceuticalStartDateTime": "(0018,1078)",
    "RadionuclideTotalDose": "(0018,1074)",
    "RadionuclideHalfLife": "(0018,1075)",
    "RadionuclideCodeSequence": "(0054,0300)",
    "PatientWeight": "(0010,1030)",
    "PatientSize": "(0010,1020)",
    "PatientSex": "(0010,0040)",
    "RescaleSlope": "(0028,1053)",
    "RescaleIntercept": "(0028,1052)",
    "TimezoneOffsetFromUTC": "(0008,0201)",
}


def attr(keyword: str) -> str:
    """``"PatientWeight (0010,1030)"`` for ``"PatientWeight"``."""
    tag = _TAGS.get(keyword)
    return f"{keyword} {tag}" if tag else keyword


def _to_float(value: Any, label: str, series: str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace").strip(" \x00")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        if len(value) == 0:
            return None
        value = value[0]
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InvalidAttributeError(
            format_message(f"value {value!r} is not a number", series=series, attribute=label,
                           fix="correct the header value")
        ) from None
    if not math.isfinite(out):
        raise InvalidAttributeError(
            format_message(f"value {value!r} is not finite", series=series, attribute=label,
                           fix="correct the header value")
        )
    return out


def get_float(ds: Dataset, keyword: str, series: str | None = None) -> float | None:
    """The attribute as a float; None when absent or empty.

    Raises
    ------
    InvalidAttributeError
        When the value is present but not a finite number.
    """
    if keyword not in ds:
        return None
    return _to_float(ds[keyword].value, attr(keyword), series)


@dataclass(frozen=True)
class PrivateElement:
    """A private element found in a header.

    Attributes
    ----------
    value : Any
        The element's value (bytes decoded as ASCII for UN elements).
    tag : str
        ``"(gggg,eeee)"`` where it was found.
    by_creator : bool
        True when located through its private creator; False for the literal-element
        fallback used when the group carries no private creator at all.
    """

    value: Any
    tag: str
    by_creator: bool


def private_value(
    ds: Dataset,
    group: int,
    creator: str,
    offset: int,
    *,
    label: str,
    series: str | None = None,
    warn: bool = True,
) -> PrivateElement | None:
    """Find a private element by its private creator (:func:`emlesion.io.dicom.find_private`).

    Parameters
    ----------
    ds : Dataset
        The header.
    group : int
        Odd group number, e.g. ``0x7053``.
    creator : str
        Private creator string, e.g. ``"Philips PET Private Group"``; matched ignoring
        padding and case, an exact-case match preferred.
    offset : int
        Element offset inside the block (``0x00`` .. ``0xFF``).
    label : str
        Human name used in the fallback warning.
    series : str, optional
        Series named in the warning.
    warn : bool
        Emit the :class:`~emlesion.errors.DicomQuirkWarning` of the literal fallback.

    Returns
    -------
    PrivateElement or None
        None when the element is absent, or when the group reserves its blocks to other
        creators only.

    Notes
    -----
    When the group carries no private creator at all (IBSI DROs 2_4 and 2_5, a frequent
    anonymiser side effect), the literal element ``(group, 0x1000 + offset)`` is read and a
    :class:`~emlesion.errors.DicomQuirkWarning` is emitted, as the domain reference
    prescribes.
    """
    elem = find_private(ds, group, creator, offset, literal_block=0x10, label=label,
                        series=series, warn=warn)
    if elem is None:
        return None
    tag = Tag(elem.tag)
    # find_private reads a literal element only when the group has no creator at all
    by_creator = Tag(group, tag.element >> 8) in ds
    return PrivateElement(_plain(elem.value), _fmt(tag), by_creator)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace").strip(" \x00")
    return value


def _fmt(tag: Any) -> str:
    t = Tag(tag)
    return f"({t.group:04X},{t.element:04X})"


def private_float(
    element: PrivateElement | None, label: str, series: str | None = None
) -> float | None:
    """A private element's value as a float (None when absent or empty)."""
    if element is None:
        return None
    return _to_float(element.value, f"{label} {element.tag}", series)


#: Half-lives (s) by nuclide: F-18, Ga-68, C-11 and N-13 as scanners write them (IBSI SUV
#: manual, Table 10); the others from the NNDC nuclear data tables.
HALF_LIFE_S_BY_NUCLIDE: dict[str, float] = {
    "F18": 6586.2,
    "C11": 1223.0,
    "N13": 598.0,
    "O15": 122.24,
    "GA68": 4057.7,
    "RB82": 75.45,
    "CU64": 45724.0,
    "ZR89": 282276.0,
    "I124": 360806.4,
    "GE68": 23410080.0,
}

#: SNOMED RT code values of the PET nuclides (DICOM CID 4020).
_NUCLIDE_BY_CODE: dict[str, str] = {
    "C-111A1": "F18",
    "C-105A1": "C11",
    "C-107A1": "N13",
    "C-B1038": "O15",
    "C-131A1": "GA68",
    "C-159A2": "RB82",
    "C-128A2": "GE68",
}

_ELEMENTS = {"FLUORINE": "F", "CARBON": "C", "NITROGEN": "N", "OXYGEN": "O", "GALLIUM": "GA",
             "RUBIDIUM": "RB", "COPPER": "CU", "ZIRCONIUM": "ZR", "IODINE": "I",
             "GERMANIUM": "GE"}


def _nuclide_from_meaning(meaning: str) -> str | None:
    text = meaning.upper()
    mass = re.search(r"\d+", text)
    if not mass:
        return None
    letters = re.sub(r"[^A-Z]", " ", text).split()
    for word in letters:
        sym = _ELEMENTS.get(word, word if word in _ELEMENTS.values() else None)
        if sym:
            key = f"{sym}{int(mass.group())}"
            if key in HALF_LIFE_S_BY_NUCLIDE:
                return key
    return None


def half_life_from_code(items: Sequence[Dataset]) -> tuple[float, str] | None:
    """Half-life (s) of the nuclide named in a Radionuclide Code Sequence.

    Parameters
    ----------
    items : sequence of Dataset
        Items of RadionuclideCodeSequence (0054,0300).

    Returns
    -------
    (float, str) or None
        The half-life in seconds and the nuclide it was taken from (e.g. ``"F18"``), or
        None when no item names a known PET nuclide.
    """
    for item in items:
        code = header_text(item, "CodeValue")
        nuclide = _NUCLIDE_BY_CODE.get(code)
        if nuclide is None:
            nuclide = _nuclide_from_meaning(header_text(item, "CodeMeaning"))
        if nuclide is not None:
            return HALF_LIFE_S_BY_NUCLIDE[nuclide], nuclide
    return None
