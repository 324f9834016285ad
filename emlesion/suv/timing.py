"""DICOM DA / TM / DT parsing with time zones, for the SUV decay arithmetic.

Every function returns *timezone-aware* :class:`datetime.datetime` values, so that
date-times from different attributes can be subtracted safely: a DT value carrying
its own UTC offset keeps it; any other value gets the offset of the dataset's
``TimezoneOffsetFromUTC (0008,0201)``, or UTC when that is absent [1]_.

Malformed values raise :class:`emlesion.errors.InvalidAttributeError` naming the
attribute: a wrong time silently turns into a wrong SUV.

References
----------
.. [1] DICOM PS3.5 section 6.2 (value representations DA, TM, DT) and PS3.3 C.12.1.1.8
   (Timezone Offset From UTC). PixelMed ``SUVTransform.java`` appends the
   TimezoneOffsetFromUTC to DT values that lack an offset before subtracting.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from emlesion.errors import InvalidAttributeError, format_message

__all__ = [
    "combine_date_time",
    "dt_utc_offset",
    "parse_da",
    "parse_dt",
    "parse_tm",
    "parse_utc_offset",
]

_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DA_LEGACY = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")
# HH[MM[SS[.F{1,6}]]], optionally with the ACR-NEMA colons HH:MM:SS
_TM = re.compile(r"^(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?$")
# YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]
_DT = re.compile(
    r"^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?"
    r"([+-]\d{4})?$"
)
_OFFSET = re.compile(r"^([+-])(\d{2})(\d{2})$")


def _invalid(value: Any, vr: str, attribute: str, series: str | None, why: str = "") -> Exception:
    extra = f" ({why})" if why else ""
    return InvalidAttributeError(
        format_message(
            f"malformed {vr} value {str(value)!r}{extra}",
            series=series,
            attribute=attribute,
            fix=f"correct the {vr} value in the header (DICOM PS3.5 6.2)",
        )
    )


def parse_utc_offset(
    value: Any, *, attribute: str = "TimezoneOffsetFromUTC (0008,0201)", series: str | None = None
) -> _dt.timezone:
    """Parse a ``&ZZXX`` UTC offset such as ``"+0100"`` or ``"-0530"``.

    Parameters
    ----------
    value : str
        The offset; empty or None means UTC.
    attribute : str
        Keyword and tag named in the error message.
    series : str, optional
        Series named in the error message.

    Returns
    -------
    datetime.timezone

    Raises
    ------
    InvalidAttributeError
        When the value is not ``&ZZXX`` or lies outside -1200..+1400.

    Examples
    --------
    >>> parse_utc_offset("+0130")
    datetime.timezone(datetime.timedelta(seconds=5400))
    """
    text = "" if value is None else str(value).strip()
    if not text:
        return _dt.timezone.utc
    m = _OFFSET.match(text)
    if not m:
        raise _invalid(text, "UTC offset", attribute, series)
    sign = -1 if m.group(1) == "-" else 1
    hours, minutes = int(m.group(2)), int(m.group(3))
    if minutes >= 60 or not (-12 * 60 <= sign * (hours * 60 + minutes) <= 14 * 60):
        raise _invalid(text, "UTC offset", attribute, series, "out of range")
    return _dt.timezone(sign * _dt.timedelta(hours=hours, minutes=minutes))


def parse_da(value: Any, *, attribute: str, series: str | None = None) -> _dt.date:
    """Parse a DICOM DA value (``YYYYMMDD``; the ACR-NEMA ``YYYY.MM.DD`` is accepted).

    Parameters
    ----------
    value : str
        The DA string.
    attribute : str
        Keyword and tag named in the error message, e.g. ``"SeriesDate (0008,0021)"``.
    series : str, optional
        Series named in the error message.

    Returns
    -------
    datetime.date

    Raises
    ------
    InvalidAttributeError
        When the value is empty or not a valid calendar date.

    Examples
    --------
    >>> parse_da("20250101", attribute="SeriesDate (0008,0021)")
    datetime.date(2025, 1, 1)
    """
    text = "" if value is None else str(value).strip()
    m = _DA.match(text) or _DA_LEGACY.match(text)
    if not m:
        raise _invalid(text, "DA", attribute, series)
    try:
        return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise _invalid(text, "DA", attribute, series, str(exc)) from None


def parse_tm(value: Any, *, attribute: str, series: str | None = None) -> _dt.time:
    """Parse a DICOM TM value (``HH[MM[SS[.FFFFFF]]]``, ACR-NEMA colons accepted).

    Parameters
    ----------
    value : str
        The TM string.
    attribute : str
        Keyword and tag named in the error message.
    series : str, optional
        Series named in the error message.

    Returns
    -------
    datetime.time
        Naive time of day (a leap second ``60`` is clamped to ``59.999999``).

    Raises
    ------
    InvalidAttributeError
        When the value is empty or malformed.

    Examples
    --------
    >>> parse_tm("101530.25", attribute="SeriesTime (0008,0031)")
    datetime.time(10, 15, 30, 250000)
    """
    text = "" if value is None else str(value).strip()
    m = _TM.match(text)
    if not m:
        raise _invalid(text, "TM", attribute, series)
    hh = int(m.group(1))
    mm = int(m.group(2) or 0)
    ss = int(m.group(3) or 0)
    us = int((m.group(4) or "0").ljust(6, "0"))
    if ss == 60:  # leap second, allowed by PS3.5
        ss, us = 59, 999999
    if hh > 23 or mm > 59 or ss > 59:
        raise _invalid(text, "TM", attribute, series, "out of range")
    return _dt.time(hh, mm, ss, us)


def parse_dt(
    value: Any,
    *,
    attribute: str,
    series: str | None = None,
    default_tz: _dt.tzinfo = _dt.timezone.utc,
) -> _dt.datetime:
    """Parse a DICOM DT value (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``, components optional from the right).

    Parameters
    ----------
    value : str
        The DT string. Trailing spaces (seen in GE and Siemens headers) are ignored.
    attribute : str
        Keyword and tag named in the error message.
    series : str, optional
        Series named in the error message.
    default_tz : datetime.tzinfo
        Zone of values without their own UTC offset (the dataset's TimezoneOffsetFromUTC).

    Returns
    -------
    datetime.datetime
        Timezone-aware date-time.

    Raises
    ------
    InvalidAttributeError
        When the value is empty or malformed.

    Examples
    --------
    >>> parse_dt("20250101100000.000000+0100", attribute="RadiopharmaceuticalStartDateTime")
    datetime.datetime(2025, 1, 1, 10, 0, tzinfo=datetime.timezone(datetime.timedelta(seconds=3600)))
    """
    text = "" if value is None else str(value).strip()
    m = _DT.match(text)
    if not m:
        raise _invalid(text, "DT", attribute, series)
    year = int(m.group(1))
    month = int(m.group(2) or 1)
    day = int(m.group(3) or 1)
    hh = int(m.group(4) or 0)
    mm = int(m.group(5) or 0)
    ss = int(m.group(6) or 0)
    us = int((m.group(7) or "0").ljust(6, "0"))
    if ss == 60:
        ss, us = 59, 999999
    tz = default_tz
    if m.group(8):
        tz = parse_utc_offset(m.group(8), attribute=attribute, series=series)
    try:
        return _dt.datetime(year, month, day, hh, mm, ss, us, tzinfo=tz)
    except ValueError as exc:
        raise _invalid(text, "DT", attribute, series, str(exc)) from None


def combine_date_time(
    date_value: Any,
    time_value: Any,
    *,
    date_attribute: str,
    time_attribute: str,
    series: str | None = None,
    tz: _dt.tzinfo = _dt.timezone.utc,
) -> _dt.datetime:
    """Combine a DA and a TM value into one aware date-time.

    Parameters
    ----------
    date_value, time_value : str
        The DA and TM strings.
    date_attribute, time_attribute : str
        Keyword and tag of each, named in error messages.
    series : str, optional
        Series named in error messages.
    tz : datetime.tzinfo
        Zone of the values (the dataset's TimezoneOffsetFromUTC, default UTC).

    Returns
    -------
    datetime.datetime

    Examples
    --------
    >>> combine_date_time("20250102", "003000", date_attribute="SeriesDate",
    ...                   time_attribute="SeriesTime").isoformat()
    '2025-01-02T00:30:00+00:00'
    """
    day = parse_da(date_value, attribute=date_attribute, series=series)
    tod = parse_tm(time_value, attribute=time_attribute, series=series)
    return _dt.datetime.combine(day, tod, tzinfo=tz)


def dt_utc_offset(
    value: Any, *, attribute: str, series: str | None = None
) -> _dt.timezone | None:
    """The explicit ``&ZZXX`` suffix of a DICOM DT value, or None when it has none.

    Parameters
    ----------
    value : str
        The DT string (may be empty).
    attribute : str
        Keyword and tag named in the error message.
    series : str, optional
        Series named in the error message.

    Returns
    -------
    datetime.timezone or None

    Raises
    ------
    InvalidAttributeError
        When the value is present but malformed.

    Examples
    --------
    >>> dt_utc_offset("20250101100000+0100", attribute="AcquisitionDateTime")
    datetime.timezone(datetime.timedelta(seconds=3600))
    >>> dt_utc_offset("20250101100000", attribute="AcquisitionDateTime") is None
    True
    """
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    m = _DT.match(text)
    if not m:
        raise _invalid(text, "DT", attribute, series)
    if not m.group(8):
        return None
    return parse_utc_offset(m.group(8), attribute=attribute, series=series)
