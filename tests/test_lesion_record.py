"""The typed lesion record and its projections (lesions.csv, Study.lesions(), JSON).

Expected values: the sample study's own measurements and site readouts (the record is a
projection, so each public form must carry exactly the same numbers), and the column list
:data:`emlesion.study.record.RECORD_COLUMNS` that the README prints.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

import pytest

from emlesion.report import CSV_DECIMALS, write_study_outputs
from emlesion.study import CSV_COLUMNS, Study
from emlesion.study.record import RECORD_COLUMNS, LesionRecord

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")


def _parse(text: str, kind: str) -> Any:
    if text == "":
        return None
    if kind == "float":
        return float(text)
    if kind == "int":
        return int(text)
    if kind == "bool":
        return {"true": True, "false": False}[text.lower()]
    return text


def _same(a: Any, b: Any, decimals: int | None = None) -> bool:
    """Equal values; a CSV float written with ``decimals`` equals the value rounded."""
    a_none = a is None or (isinstance(a, float) and math.isnan(a))
    b_none = b is None or (isinstance(b, float) and math.isnan(b))
    if a_none or b_none:
        return a_none and b_none
    if isinstance(a, float) or isinstance(b, float):
        tol = 1e-9 if decimals is None else 0.5 * 10.0 ** -decimals + 1e-12
        return float(a) == pytest.approx(float(b), rel=1e-9, abs=tol)
    return bool(a == b)


def test_columns_are_one_list() -> None:
    assert tuple(RECORD_COLUMNS) == CSV_COLUMNS
    # the README prints the same list, in order
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("`lesions.csv` has one row per track and timepoint,"):]
    block = block[:block.index("(empty cell")]
    tokens = [t.strip() for quoted in re.findall(r"`([^`]*)`", block)
              for t in quoted.split(",")]
    listed = [t for t in tokens if re.fullmatch(r"[a-z0-9_]+", t)]
    assert listed == list(RECORD_COLUMNS)


def test_dataframe_equals_lesions_csv_value_by_value(sample_study: Study,
                                                     tmp_path: Path) -> None:
    paths = write_study_outputs(sample_study, tmp_path, {"format": "test"})
    with open(paths["lesions.csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    df = sample_study.lesions()
    assert list(df.columns) == list(CSV_COLUMNS)
    assert list(rows[0]) == list(CSV_COLUMNS)
    # one row per track and timepoint from its first appearance
    assert len(df) == len(rows) == sum(len(s) for s in sample_study.sites.values())
    for i, row in enumerate(rows):
        for col, kind in RECORD_COLUMNS.items():
            got = _parse(row[col], kind)
            want = df.iloc[i][col]
            # the CSV holds the stated precision (CSV_DECIMALS), the DataFrame full values
            assert _same(got, want, CSV_DECIMALS.get(col)), (i, col, row[col], want)


def test_records_are_built_once_and_carry_both_readouts(sample_study: Study) -> None:
    recs = sample_study.records
    assert recs is sample_study.records  # cached: built once per study
    assert all(isinstance(r, LesionRecord) for r in recs)
    month3 = [r for r in recs if r.timepoint == "month3"]
    assert {r.track_id for r in month3} == {"T1", "T2"}
    for r in month3:  # nothing segmented at month 3, both sites still read
        assert not r.segmented and r.site is not None and r.site.pet is not None
    base = [r for r in recs if r.timepoint == "baseline"]
    for r in base:
        assert r.segmented and r.measurement is not None and r.site is not None
        obj = r.lesion_object()
        assert obj["suv_peak"] == r.measurement.suv_peak_global
        assert obj["sul_mean"] == r.measurement.sul_mean
        row = r.row()
        assert row["suv_max"] == obj["suv_max"] and row["site_suv_max"] == obj["suv_max"]


def test_sul_mean_is_the_measure_column(sample_study: Study) -> None:
    import numpy as np

    tp = sample_study.baseline
    assert tp.sul is not None
    for lab in tp.measurements.labels:
        values = np.asarray(tp.sul.array)[np.asarray(tp.lesions.array) == lab]
        want = float(values.astype(np.float64).mean())  # float64 mean of the float32 SUL
        assert tp.measurement(lab).sul_mean == pytest.approx(want, rel=1e-12)


def test_assessments_dataframe(sample_study: Study) -> None:
    df = sample_study.assessments()
    calls = sample_study.assess()
    assert len(df) == len(calls)
    assert list(df["category"]) == [a.category.value for a in calls]
    assert set(df["criterion"]) == {"percist", "eortc", "recist", "lugano_pet", "lugano_ct",
                                    "lyric"}
