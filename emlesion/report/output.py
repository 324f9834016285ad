"""Atomic writers of every output file: ``report.json``, ``lesions.csv``, the measure JSON
and CSV, ``report.html`` and ``dicom/``, and the one CSV format that all of them (and the
cohort tables of :mod:`emlesion.batch`) share.

Every file is written to a temporary file in the destination folder and renamed into place
with :func:`os.replace`, so a reader never sees a half-written file; outputs are refused
inside an input folder.

One library call per command: :func:`write_response_outputs` (``emlesion response`` and a
batch patient) and :func:`write_measure_outputs` (``emlesion measure``).

CSV cells (:func:`format_cell`): empty for ``None`` and non-finite numbers, ``true``/``false``
for booleans, the shortest repr that round-trips for floats (no rounding: the CSV holds the
same numbers as the JSON).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from emlesion import _atomic
from emlesion.errors import InconsistentStudyError, format_message
from emlesion.measure import BURDEN_COLUMNS
from emlesion.response import Assessment, Criterion
from emlesion.study import CSV_COLUMNS, LESION_CSV_COLUMNS, StageEvent, Study, Timepoint
from emlesion.study.model import ProgressCallback

__all__ = [
    "BURDEN_CSV_COLUMNS",
    "MEASURE_CSV_COLUMNS",
    "StderrProgress",
    "burden_rows",
    "check_output_location",
    "csv_text",
    "format_cell",
    "measure_rows",
    "write_all_outputs",
    "write_csv_atomic",
    "write_json_atomic",
    "write_measure_outputs",
    "write_response_outputs",
    "write_study_outputs",
]

#: Columns of ``burden.csv``: the timepoint, its date and the whole-body burden.
BURDEN_CSV_COLUMNS: tuple[str, ...] = ("timepoint", "date", *BURDEN_COLUMNS)
#: Columns of the ``emlesion measure --csv`` file: the date and the lesion columns.
MEASURE_CSV_COLUMNS: tuple[str, ...] = ("date", *LESION_CSV_COLUMNS)


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON (NaN refused: values must already be JSON-able)."""
    return _atomic.write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def format_cell(value: Any) -> str:
    """One CSV cell: ``""`` for None/NaN/inf, ``true``/``false``, floats as their repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """The CSV text of ``rows`` (header line first), cells by :func:`format_cell`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    cols = list(columns)
    writer.writerow(cols)
    for row in rows:
        writer.writerow([format_cell(row.get(c)) for c in cols])
    return buf.getvalue()


def write_csv_atomic(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]],
                     columns: Sequence[str]) -> Path:
    """Write ``rows`` as CSV (:func:`csv_text`) atomically."""
    return _atomic.write_text_atomic(path, csv_text(rows, columns))


def check_output_location(out_dir: str | os.PathLike[str],
                          inputs: Iterable[str | os.PathLike[str]]) -> Path:
    """Refuse an output folder that lies inside (or is) one of the input folders.

    Raises
    ------
    InconsistentStudyError
        When ``out_dir`` is an input folder or inside one.
    """
    out = Path(out_dir).resolve()
    for src in inputs:
        p = Path(src).resolve()
        if p.is_file():
            p = p.parent
        if out == p or p in out.parents:
            raise InconsistentStudyError(format_message(
                f"the output folder {out} lies inside the input folder {p}",
                fix="choose an output folder outside the DICOM input folders (emlesion never "
                    "writes into its inputs)"))
    return out


def burden_rows(study: Study) -> list[dict[str, Any]]:
    """One row per timepoint for ``burden.csv`` (columns :data:`BURDEN_CSV_COLUMNS`): the
    whole-body burden (:attr:`emlesion.study.Timepoint.burden`)."""
    return [{"timepoint": tp.label, "date": tp.date.isoformat() if tp.date else None,
             **tp.burden.row()} for tp in study.timepoints]


def write_study_outputs(study: Study, out_dir: str | os.PathLike[str],
                        report: Mapping[str, Any]) -> dict[str, Path]:
    """Write ``report.json`` (the given report dict), ``lesions.csv`` and ``burden.csv``
    (one row per timepoint: total MTV and TLG, lesion count, Dmax, SDmax, threshold rule)
    into ``out_dir``.

    Returns
    -------
    dict
        ``{"report.json": path, "lesions.csv": path, "burden.csv": path}``.
    """
    out = Path(out_dir)
    return {
        "report.json": write_json_atomic(out / "report.json", report),
        "lesions.csv": write_csv_atomic(out / "lesions.csv", study.lesions_rows(), CSV_COLUMNS),
        "burden.csv": write_csv_atomic(out / "burden.csv", burden_rows(study),
                                       BURDEN_CSV_COLUMNS),
    }


def write_all_outputs(
    study: Study,
    out_dir: str | os.PathLike[str],
    assessments: Sequence[Any],
    report: Mapping[str, Any],
    *,
    html: bool = True,
    dicom: bool = True,
    deidentify: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, Path]:
    """Everything ``emlesion response`` and a batch patient write into ``out_dir``.

    :func:`write_study_outputs` (``report.json``, ``lesions.csv``), then ``report.html``
    (:func:`emlesion.report.write_html_report`) and ``dicom/`` (DICOM SEG + TID 1500 SR per
    timepoint, :func:`emlesion.report.write_dicom_outputs`) unless ``html``/``dicom`` is off.
    ``progress`` gets a finished :class:`StageEvent` (``"report.html"``, ``"dicom"``) for each.

    Returns
    -------
    dict
        ``{"report.json": path, "lesions.csv": path, "report.html": path,
        "dicom0": path, "dicom1": path, ...}``.
    """
    out = Path(out_dir)
    paths = write_study_outputs(study, out, report)
    if html:
        from emlesion.report.html import write_html_report

        t0 = time.perf_counter()
        paths["report.html"] = write_html_report(study, assessments, out / "report.html",
                                                 deidentify=deidentify)
        if progress is not None:
            progress(StageEvent("report.html", None, time.perf_counter() - t0))
    if dicom:
        from emlesion.report.dicom import write_dicom_outputs

        t0 = time.perf_counter()
        for k, path in enumerate(write_dicom_outputs(study, out / "dicom",
                                                     assessments=assessments)):
            paths[f"dicom{k}"] = path
        if progress is not None:
            progress(StageEvent("dicom", None, time.perf_counter() - t0))
    return paths


def write_response_outputs(
    study: Study,
    out_dir: str | os.PathLike[str],
    *,
    criteria: Sequence[str | Criterion] | None = None,
    assessments: Sequence[Assessment] | None = None,
    html: bool = True,
    dicom: bool = True,
    deidentify: bool = False,
    progress: ProgressCallback | None = None,
) -> tuple[dict[str, Path], list[Assessment]]:
    """Everything ``emlesion response`` writes, in one call: assess, build, write.

    Parameters
    ----------
    study : Study
        The longitudinal study.
    out_dir : path
        Output folder.
    criteria : sequence of str, optional
        Response criteria (default :data:`emlesion.response.DEFAULT_CRITERIA`); ignored
        when ``assessments`` is given.
    assessments : sequence of Assessment, optional
        Precomputed :meth:`Study.assess` result.
    html, dicom, deidentify, progress
        As in :func:`write_all_outputs`.

    Returns
    -------
    paths : dict
        As :func:`write_all_outputs`.
    assessments : list of Assessment
        The calls that were written.
    """
    from emlesion.report.documents import report_dict

    if assessments is None:
        assessments = study.assess(criteria) if criteria else study.assess()
    calls = list(assessments)
    report = report_dict(study, calls, deidentify=deidentify)
    paths = write_all_outputs(study, out_dir, calls, report, html=html, dicom=dicom,
                              deidentify=deidentify, progress=progress)
    return paths, calls


def write_measure_outputs(
    tp: Timepoint,
    *,
    json_path: str | os.PathLike[str] | None = None,
    csv_path: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """The ``emlesion measure`` outputs of one timepoint: the JSON and/or the CSV.

    The JSON is :func:`emlesion.report.documents.measure_dict`; the CSV has one row per
    lesion with :data:`MEASURE_CSV_COLUMNS` (the date and the columns of
    :data:`emlesion.study.LESION_CSV_COLUMNS`).
    """
    from emlesion.report.documents import measure_dict

    paths: dict[str, Path] = {}
    if json_path is not None:
        paths["json"] = write_json_atomic(json_path, measure_dict(tp))
    if csv_path is not None:
        paths["csv"] = write_csv_atomic(csv_path, measure_rows(tp), MEASURE_CSV_COLUMNS)
    return paths


def measure_rows(tp: Timepoint) -> list[dict[str, Any]]:
    """One row per lesion of ``tp`` with :data:`MEASURE_CSV_COLUMNS`."""
    return [{k: row[k] for k in MEASURE_CSV_COLUMNS}
            for row in (r.row() for r in tp.records())]


class StderrProgress:
    """A ``progress`` callback printing one line per finished stage to a text stream.

    Lines look like ``[   3.4 s] month1 anatomy 0.87 s`` (elapsed since creation, stage
    wall time), flushed immediately, so long runs show where they are.
    """

    def __init__(self, stream: Any = None) -> None:
        import sys
        import time

        self._stream = stream if stream is not None else sys.stderr
        self._t0 = time.perf_counter()
        self._clock = time.perf_counter

    def __call__(self, event: Any) -> None:
        if not event.finished:
            return
        where = event.timepoint or "study"
        print(f"[{self._clock() - self._t0:7.1f} s] {where} {event.stage} {event.seconds:.2f} s",
              file=self._stream, flush=True)
