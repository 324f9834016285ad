"""Atomic writers for the study outputs (``report.json``, ``lesions.csv``, ``measure.json``).

Every file is written to a temporary file in the destination folder and renamed into place
with :func:`os.replace`, so a reader never sees a half-written file; outputs are refused
inside an input folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from emlesion import _atomic
from emlesion.errors import InconsistentStudyError, format_message
from emlesion.study.model import CSV_COLUMNS, ProgressCallback, StageEvent, Study

__all__ = [
    "StderrProgress",
    "check_output_location",
    "write_all_outputs",
    "write_csv_atomic",
    "write_json_atomic",
    "write_study_outputs",
]


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON (NaN refused: values must already be JSON-able)."""
    return _atomic.write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_csv_atomic(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]],
                     columns: Sequence[str]) -> Path:
    """Write ``rows`` as CSV with a header line; ``None`` becomes an empty cell."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return _atomic.write_text_atomic(path, buf.getvalue())


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


def write_study_outputs(study: Study, out_dir: str | os.PathLike[str],
                        report: Mapping[str, Any]) -> dict[str, Path]:
    """Write ``report.json`` (the given report dict) and ``lesions.csv`` into ``out_dir``.

    Returns
    -------
    dict
        ``{"report.json": path, "lesions.csv": path}``.
    """
    out = Path(out_dir)
    return {
        "report.json": write_json_atomic(out / "report.json", report),
        "lesions.csv": write_csv_atomic(out / "lesions.csv", study.lesions_rows(), CSV_COLUMNS),
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
        from emlesion.report import write_html_report

        t0 = time.perf_counter()
        paths["report.html"] = write_html_report(study, assessments, out / "report.html",
                                                 deidentify=deidentify)
        if progress is not None:
            progress(StageEvent("report.html", None, time.perf_counter() - t0))
    if dicom:
        from emlesion.report import write_dicom_outputs

        t0 = time.perf_counter()
        for k, path in enumerate(write_dicom_outputs(study, out / "dicom",
                                                     assessments=assessments)):
            paths[f"dicom{k}"] = path
        if progress is not None:
            progress(StageEvent("dicom", None, time.perf_counter() - t0))
    return paths


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
