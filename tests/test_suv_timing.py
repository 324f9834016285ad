"""DA / TM / DT parsing of emlesion.suv.timing (expected values written out by hand)."""

from __future__ import annotations

import datetime as dt

import pytest

from emlesion.errors import InvalidAttributeError
from emlesion.suv.timing import combine_date_time, parse_da, parse_dt, parse_tm, parse_utc_offset

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("110000", dt.time(11, 0, 0)),
        ("110000.000000", dt.time(11, 0, 0)),
        ("095621", dt.time(9, 56, 21)),
        ("084500.00", dt.time(8, 45, 0)),
        ("123514.999995", dt.time(12, 35, 14, 999995)),
        ("1015", dt.time(10, 15)),          # HHMM, seconds omitted (PS3.5 allows)
        ("10", dt.time(10)),
        ("10:15:30", dt.time(10, 15, 30)),  # ACR-NEMA form
        ("235960", dt.time(23, 59, 59, 999999)),  # leap second clamped
        (" 101530.5 ", dt.time(10, 15, 30, 500000)),
    ],
)
def test_parse_tm(text: str, expected: dt.time) -> None:
    assert parse_tm(text, attribute="SeriesTime (0008,0031)") == expected


@pytest.mark.parametrize("text", ["", "2500", "1099", "ab1200", "12:3", "101530.1234567"])
def test_parse_tm_rejects(text: str) -> None:
    with pytest.raises(InvalidAttributeError, match=r"SeriesTime \(0008,0031\)"):
        parse_tm(text, attribute="SeriesTime (0008,0031)")


def test_parse_da() -> None:
    assert parse_da("20250102", attribute="SeriesDate") == dt.date(2025, 1, 2)
    assert parse_da("2025.01.02", attribute="SeriesDate") == dt.date(2025, 1, 2)
    with pytest.raises(InvalidAttributeError, match="malformed DA"):
        parse_da("20250230", attribute="SeriesDate (0008,0021)")


def test_parse_dt_offsets_and_precision() -> None:
    # "+0100": 10:00 local is 09:00 UTC
    t = parse_dt("20250101100000.000000+0100", attribute="X")
    assert t.astimezone(UTC) == dt.datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
    # trailing space as written by GE / Siemens; no offset -> default zone (UTC)
    assert parse_dt("20201217084500.00 ", attribute="X") == dt.datetime(2020, 12, 17, 8, 45,
                                                                      tzinfo=UTC)
    # reduced precision: YYYYMMDDHH
    assert parse_dt("2025010110", attribute="X") == dt.datetime(2025, 1, 1, 10, tzinfo=UTC)
    # default zone from TimezoneOffsetFromUTC
    tz = parse_utc_offset("-0500")
    assert parse_dt("20250101100000", attribute="X", default_tz=tz).astimezone(UTC).hour == 15


@pytest.mark.parametrize("text", ["2025-01-01T10:00", "20251301100000", "20250101250000",
                                  "20250101100000+2500", "notadate"])
def test_parse_dt_malformed_names_attribute(text: str) -> None:
    attribute = "RadiopharmaceuticalStartDateTime (0018,1078)"
    match = r"RadiopharmaceuticalStartDateTime \(0018,1078\)"
    with pytest.raises(InvalidAttributeError, match=match):
        parse_dt(text, attribute=attribute, series="1.2.3")


def test_combine_date_time_crosses_zones() -> None:
    # 00:30 on 2 Jan at +0100 is 23:30 on 1 Jan UTC
    t = combine_date_time("20250102", "003000", date_attribute="d", time_attribute="t",
                          tz=parse_utc_offset("+0100"))
    assert t.astimezone(UTC) == dt.datetime(2025, 1, 1, 23, 30, tzinfo=UTC)


def test_parse_utc_offset() -> None:
    assert parse_utc_offset("") is UTC
    assert parse_utc_offset("+0530").utcoffset(None) == dt.timedelta(hours=5, minutes=30)
    with pytest.raises(InvalidAttributeError, match="UTC offset"):
        parse_utc_offset("0100")
