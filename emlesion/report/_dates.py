"""Dates of the report: the DICOM DA display form and the treatment date option.

Kept free of heavy imports, so that the command line can check ``--treatment-date`` before
any work and :mod:`emlesion.report.output` can use it without matplotlib.
"""

from __future__ import annotations

import datetime as _dt

from emlesion.errors import InvalidParameterError, format_message

__all__ = ["format_dicom_date", "parse_treatment_date"]


def parse_treatment_date(value: _dt.date | str | None) -> _dt.date | None:
    """A treatment date from a :class:`datetime.date`, an ISO ``YYYY-MM-DD`` or a DICOM
    ``YYYYMMDD`` string.

    Raises
    ------
    InvalidParameterError
        When the text is not a date.
    """
    if value is None or isinstance(value, _dt.date):
        if isinstance(value, _dt.datetime):
            return value.date()
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return _dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise InvalidParameterError(format_message(
        f"treatment date {text!r} is not a date", attribute="treatment_date",
        fix="give the date as YYYY-MM-DD (e.g. --treatment-date 2024-03-05)"))


def format_dicom_date(value: str | None) -> str:
    """A DICOM DA value (``YYYYMMDD``) as ISO ``YYYY-MM-DD``; other text unchanged.

    Parameters
    ----------
    value : str or None
        The attribute value as stored (e.g. PatientBirthDate ``"19890517"``).

    Returns
    -------
    str
        ``"1989-05-17"``; an empty or malformed value is returned as given (stripped).

    Examples
    --------
    >>> format_dicom_date("19890517")
    '1989-05-17'
    """
    text = "" if value is None else str(value).strip()
    try:
        return _dt.datetime.strptime(text, "%Y%m%d").date().isoformat()
    except ValueError:
        return text
