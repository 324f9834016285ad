"""Cohort tables: every lesion, every assessment and every patient's status of a batch.

The tables are built by the batch driver only (a single writer) from the ``report.json`` of
each finished patient folder, so that a freshly computed patient and a patient resumed from an
earlier run give the same rows. They are rewritten atomically (temporary file, then
``os.replace``) while the batch runs and once at its end:

``cohort_lesions.csv``
    One row per patient x timepoint x track (:data:`LESION_COLUMNS`): the patient's
    ``lesions.csv`` rows with the patient id and timepoint index in front.
``cohort_assessments.csv``
    One row per patient x follow-up x criterion (:data:`ASSESSMENT_COLUMNS`), reasons and
    warnings joined with `` | ``; a failed patient has one row with ``status`` ``failed``
    and its error.
``cohort_status.csv``
    One row per patient (:data:`STATUS_COLUMNS`): completed, completed_with_warnings,
    resumed or failed, the error type and message, the warnings that can change the numbers,
    the pipeline seconds.

A ``.parquet`` copy of each table is written when :mod:`pyarrow` is importable.

Rows are sorted by patient id, then timepoint order (the manifest order), then track order
(lesions) or report order of the criteria (assessments), so that two runs of the same cohort
give byte-identical tables whatever the order in which the workers finished.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emlesion._atomic import atomic_path, write_bytes_atomic
from emlesion.batch.manifest import PatientJob
from emlesion.batch.patient import REPORT_FILE, PatientResult, PatientStatus
from emlesion.errors import InvalidParameterError, UnknownKeyError, format_message
from emlesion.report import csv_text
from emlesion.study.record import RECORD_COLUMNS

#: The per-patient table the cohort lesion rows are read from.
LESIONS_FILE = "lesions.csv"

__all__ = [
    "ASSESSMENT_COLUMNS",
    "LESION_COLUMNS",
    "STATUS_COLUMNS",
    "TABLE_NAMES",
    "CohortResult",
    "assessment_rows",
    "lesion_rows",
    "status_row",
    "write_cohort_tables",
]

#: Columns of ``cohort_lesions.csv`` and their types (``str``, ``int``, ``float`` or
#: ``bool``): the patient, the timepoint index, then exactly the columns of every patient's
#: ``lesions.csv`` (:data:`emlesion.study.record.RECORD_COLUMNS`, one row per track and
#: timepoint), then the timepoint's liver reference and segmentation method.
LESION_COLUMNS: Mapping[str, str] = {
    "patient_id": "str",
    "timepoint_index": "int",
    **RECORD_COLUMNS,
    "liver_suv_mean": "float",
    "liver_sul_mean": "float",
    "method": "str",
}

#: Columns of ``cohort_assessments.csv`` and their types.
ASSESSMENT_COLUMNS: Mapping[str, str] = {
    "patient_id": "str",
    "status": "str",
    "timepoint_index": "int",
    "timepoint": "str",
    "reference": "str",
    "criterion": "str",
    "category": "str",
    "category_description": "str",
    "reasons": "str",
    "rule": "str",
    "warnings": "str",
    "error_type": "str",
    "error": "str",
}

#: Columns of ``cohort_status.csv`` and their types.
STATUS_COLUMNS: Mapping[str, str] = {
    "patient_id": "str",
    "status": "str",
    "n_timepoints": "int",
    "n_lesions": "int",
    "n_assessments": "int",
    "seconds": "float",
    "error_type": "str",
    "error": "str",
    "warnings": "str",
    "output_dir": "str",
    "worker": "str",
}

#: Table stem -> columns.
TABLE_NAMES: Mapping[str, Mapping[str, str]] = {
    "cohort_lesions": LESION_COLUMNS,
    "cohort_assessments": ASSESSMENT_COLUMNS,
    "cohort_status": STATUS_COLUMNS,
}

_JOIN = " | "


def lesion_rows(job: PatientJob, report: Mapping[str, Any],
                lesions_csv: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of ``cohort_lesions.csv`` for one patient: its ``lesions.csv`` rows, typed.

    The patient's ``lesions.csv`` (written by :func:`emlesion.report.write_study_outputs`,
    one row per track and timepoint) is the one source, so that the cohort table and the
    patient table never disagree; ``report.json`` adds the timepoint's liver reference and
    method. Sorted by timepoint order (the job's), keeping the file's order within a
    timepoint (tracks in their order).
    """
    order = {label: i for i, label in enumerate(job.labels)}
    context = {tp.get("label"): tp for tp in report.get("timepoints", [])}
    with open(lesions_csv, newline="", encoding="utf-8") as fh:
        own = list(csv.DictReader(fh))
    rows: list[dict[str, Any]] = []
    for raw in own:
        label = raw.get("timepoint")
        tp = context.get(label, {})
        liver = tp.get("liver") or {}
        row: dict[str, Any] = {"patient_id": job.patient_id,
                               "timepoint_index": order.get(str(label), len(order))}
        row.update({k: _typed(raw.get(k), kind) for k, kind in RECORD_COLUMNS.items()})
        row.update({"liver_suv_mean": liver.get("suv_mean"),
                    "liver_sul_mean": liver.get("sul_mean"), "method": tp.get("method")})
        rows.append(row)
    rows.sort(key=lambda r: r["timepoint_index"])  # stable: keeps the track order
    return rows


def assessment_rows(job: PatientJob, report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of ``cohort_assessments.csv`` for one patient, from its ``report.json`` dict.

    One row per follow-up and criterion, sorted by timepoint order (criteria in report
    order).
    """
    order = {label: i for i, label in enumerate(job.labels)}
    rows: list[dict[str, Any]] = []
    for entry in report.get("assessments", []):
        tp = entry.get("timepoint")
        for criterion, value in entry.items():
            if not isinstance(value, Mapping):
                continue
            rows.append({
                "patient_id": job.patient_id,
                "status": PatientStatus.COMPLETED.value,
                "timepoint_index": order.get(tp, len(order)),
                "timepoint": tp,
                "reference": entry.get("reference"),
                "criterion": criterion,
                "category": value.get("category"),
                "category_description": value.get("category_description"),
                "reasons": _JOIN.join(str(r) for r in value.get("reasons", [])),
                "rule": value.get("rule"),
                "warnings": _JOIN.join(str(w) for w in value.get("warnings", [])),
                "error_type": None,
                "error": None,
            })
    rows.sort(key=lambda r: r["timepoint_index"])  # stable: keeps the criteria order
    return rows


def _failed_assessment_row(result: PatientResult) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ASSESSMENT_COLUMNS)
    row.update(patient_id=result.patient_id, status=result.status.value,
               error_type=result.error_type, error=result.error)
    return row


def status_row(result: PatientResult, job: PatientJob, n_lesions: int | None,
               n_assessments: int | None) -> dict[str, Any]:
    """The ``cohort_status.csv`` row of one patient."""
    return {
        "patient_id": result.patient_id,
        "status": result.status.value,
        "n_timepoints": len(job.timepoints),
        "n_lesions": n_lesions,
        "n_assessments": n_assessments,
        "seconds": round(result.seconds, 3),
        "error_type": result.error_type,
        "error": result.error,
        "warnings": _JOIN.join(result.warnings) or None,
        "output_dir": result.output_dir,
        "worker": result.worker,
    }


def read_report(result: PatientResult) -> dict[str, Any]:
    """The ``report.json`` of a successful result."""
    if result.output_dir is None:
        raise InvalidParameterError(format_message(
            f"patient {result.patient_id!r} has no output folder",
            fix="read the report of a completed patient only"))
    data: dict[str, Any] = json.loads(
        (Path(result.output_dir) / REPORT_FILE).read_text(encoding="utf-8"))
    return data


# ---------------------------------------------------------------------------- writing
def _csv_bytes(rows: Sequence[Mapping[str, Any]], columns: Iterable[str]) -> bytes:
    return csv_text(rows, list(columns)).encode("utf-8")


def _typed(value: Any, kind: str) -> Any:
    if value is None or value == "":
        return None
    if kind == "float":
        f = float(value)
        return f if math.isfinite(f) else None
    if kind == "int":
        return int(value)
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).strip().lower() == "true"
    return str(value)


def _write_parquet(path: Path, rows: Sequence[Mapping[str, Any]],
                   columns: Mapping[str, str]) -> bool:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(),
             "bool": pa.bool_()}
    arrays = [pa.array([_typed(r.get(c), k) for r in rows], type=types[k])
              for c, k in columns.items()]
    table = pa.Table.from_arrays(arrays, names=list(columns))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return True


def write_cohort_tables(
    out_dir: str | os.PathLike[str],
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    parquet: bool = True,
) -> dict[str, Path]:
    """Write the cohort tables atomically; returns ``{file name: path}`` of what was written.

    Parameters
    ----------
    out_dir : path
        Batch output folder.
    tables : mapping
        ``{"cohort_lesions": rows, "cohort_assessments": rows, "cohort_status": rows}``
        (rows already sorted).
    parquet : bool
        Also write ``.parquet`` copies when :mod:`pyarrow` is importable.
    """
    out = Path(out_dir)
    written: dict[str, Path] = {}
    for stem, rows in tables.items():
        columns = TABLE_NAMES[stem]
        path = out / f"{stem}.csv"
        write_bytes_atomic(path, _csv_bytes(rows, columns))
        written[path.name] = path
        if parquet and _write_parquet(out / f"{stem}.parquet", rows, columns):
            written[f"{stem}.parquet"] = out / f"{stem}.parquet"
    return written


@dataclass
class CohortTables:
    """Rows of the cohort tables, kept per patient by the driver (mutable, driver-only)."""

    lesions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    assessments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, job: PatientJob, result: PatientResult) -> None:
        """Record the result of one patient (reads its report.json when it succeeded).

        A report that cannot be read turns the result into a failure row.
        """
        pid = job.patient_id
        if result.ok:
            report = read_report(result)
            assert result.output_dir is not None  # read_report checked it
            self.lesions[pid] = lesion_rows(job, report,
                                            Path(result.output_dir) / LESIONS_FILE)
            self.assessments[pid] = assessment_rows(job, report)
            self.status[pid] = status_row(result, job, len(self.lesions[pid]),
                                          len(self.assessments[pid]))
        else:
            self.lesions[pid] = []
            self.assessments[pid] = [_failed_assessment_row(result)]
            self.status[pid] = status_row(result, job, None, None)

    def status_rows(self) -> list[dict[str, Any]]:
        """The status table, sorted by patient id."""
        return [self.status[p] for p in sorted(self.status)]

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """The three tables, sorted by patient id (rows within a patient already sorted)."""
        ids = sorted(self.status)
        return {
            "cohort_lesions": [r for p in ids for r in self.lesions.get(p, [])],
            "cohort_assessments": [r for p in ids for r in self.assessments.get(p, [])],
            "cohort_status": [self.status[p] for p in ids],
        }


@dataclass(frozen=True)
class CohortResult:
    """Outcome of :func:`emlesion.batch.run_batch`.

    Parameters
    ----------
    out_dir : str
        Batch output folder.
    results : tuple of PatientResult
        One per patient, sorted by patient id.
    tables : Mapping[str, str]
        File name -> path of the cohort tables written.
    seconds : float
        Wall time of the batch.
    n_workers : int
        Workers of the cluster used (0 when every patient was resumed).
    threads_per_worker : int
        Threads of each patient's study pipeline (0 when every patient was resumed).
    scheduler : str, optional
        Scheduler address when a remote cluster was used, ``None`` for the local pool.
    dashboard_link : str, optional
        Dask dashboard of the cluster, when it has one.
    """

    out_dir: str
    results: tuple[PatientResult, ...]
    tables: Mapping[str, str]
    seconds: float
    n_workers: int = 0
    scheduler: str | None = None
    dashboard_link: str | None = None
    threads_per_worker: int = 0

    def _count(self, status: PatientStatus) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def n_completed(self) -> int:
        """Patients computed in this run."""
        return self._count(PatientStatus.COMPLETED)

    @property
    def n_completed_with_warnings(self) -> int:
        """Patients computed in this run whose inputs raised warnings that can change the
        numbers (:attr:`PatientStatus.COMPLETED_WITH_WARNINGS`)."""
        return self._count(PatientStatus.COMPLETED_WITH_WARNINGS)

    @property
    def n_resumed(self) -> int:
        """Patients whose earlier valid results were reused."""
        return self._count(PatientStatus.RESUMED)

    @property
    def n_failed(self) -> int:
        """Patients whose pipeline raised."""
        return self._count(PatientStatus.FAILED)

    @property
    def failed(self) -> tuple[PatientResult, ...]:
        """The failed results."""
        return tuple(r for r in self.results if not r.ok)

    @property
    def studies_per_minute(self) -> float:
        """Patients computed (completed or failed) in this run per minute of wall time."""
        n = self.n_completed + self.n_completed_with_warnings + self.n_failed
        return 60.0 * n / self.seconds if self.seconds > 0 else math.nan

    def result(self, patient_id: str) -> PatientResult:
        """The result of ``patient_id`` (KeyError when unknown)."""
        for r in self.results:
            if r.patient_id == patient_id:
                return r
        raise UnknownKeyError(format_message(
            f"no patient {patient_id!r} in this batch result",
            fix=f"use one of {[r.patient_id for r in self.results]}"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return {
            "out_dir": self.out_dir,
            "seconds": round(self.seconds, 3),
            "n_workers": self.n_workers,
            "threads_per_worker": self.threads_per_worker,
            "scheduler": self.scheduler,
            "dashboard_link": self.dashboard_link,
            "n_completed": self.n_completed,
            "n_completed_with_warnings": self.n_completed_with_warnings,
            "n_resumed": self.n_resumed,
            "n_failed": self.n_failed,
            "tables": dict(self.tables),
            "results": [r.to_dict() for r in self.results],
        }

    def __repr__(self) -> str:
        return (f"CohortResult({self.out_dir}: {len(self.results)} patient(s), "
                f"{self.n_completed} completed, {self.n_resumed} resumed, {self.n_failed} failed, "
                f"{self.seconds:.1f} s)")
