"""The per-patient job of a batch: run the study pipeline and publish the results atomically.

:func:`process_patient` is the only function a worker runs. It never raises for a problem of
the patient's data: any exception becomes a failed :class:`PatientResult` carrying the error
type and message, so that one bad study cannot stop a cohort.

Output layout and atomicity
---------------------------
A patient's results live in ``OUT/patients/<patient_id>/``. The worker writes every file into
a private staging folder ``OUT/patients/.<patient_id>.tmp-<uuid>/``, writes the completion
marker ``DONE.json`` (job hash, emlesion version, SHA-256 and size of every file) last, and
only then renames the staging folder to its final name (:func:`emlesion._atomic.publish_dir`,
one ``rename(2)``, atomic on POSIX file systems). An interrupted batch therefore leaves either
no patient folder or a staging folder (removed at the next run), never a half-written folder
that looks complete.

A patient folder counts as complete (:func:`completed_result`) when its ``DONE.json`` parses,
its job hash equals the current job's (same folders, masks and options, same emlesion
version) and every listed file exists with the recorded size and SHA-256.

References
----------
.. [1] POSIX ``rename(2)``: the rename of a directory is atomic on one file system.
.. [2] Dask distributed, "Futures" (tasks are plain functions; exceptions travel back to the
   client), https://distributed.dask.org/en/stable/client.html
"""

from __future__ import annotations

import datetime as _dt
import enum
import hashlib
import json
import os
import shutil
import socket
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emlesion._atomic import publish_dir
from emlesion._version import __version__
from emlesion.batch.manifest import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    ManifestError,
    PatientJob,
)
from emlesion.errors import (
    EmlesionError,
    InvalidParameterError,
    ResponseWarning,
    format_message,
)
from emlesion.io.organs import ORGANS_AUTO

__all__ = [
    "DONE_FILE",
    "DONE_FORMAT",
    "OPTION_NAMES",
    "REPORT_FILE",
    "PatientResult",
    "PatientStatus",
    "completed_result",
    "job_sha256",
    "parse_options",
    "patient_dir",
    "process_patient",
    "warning_changes_numbers",
]

#: Name of the completion marker written last into a patient folder.
DONE_FILE = "DONE.json"
#: ``format`` value of ``DONE.json``.
DONE_FORMAT = "emlesion-batch-done"
#: Version of the ``DONE.json`` contract.
DONE_FORMAT_VERSION = 1
#: The per-patient report the cohort tables are built from.
REPORT_FILE = "report.json"
#: Sub-folder of the batch output that holds one folder per patient.
PATIENTS_DIR = "patients"


class PatientStatus(str, enum.Enum):
    """Outcome of one patient in a batch."""

    COMPLETED = "completed"
    """Processed in this run without any warning that can change a number; the results are
    in the patient folder."""
    COMPLETED_WITH_WARNINGS = "completed_with_warnings"
    """Processed in this run, but the inputs raised warnings that can change the numbers
    (:func:`warning_changes_numbers`: a tolerated header, geometry, SUV, mask or file
    problem);
    the results are in the patient folder and the warnings in
    :attr:`PatientResult.warnings`. Review before use."""
    RESUMED = "resumed"
    """A complete and valid result of an earlier run was reused (not recomputed)."""
    FAILED = "failed"
    """The pipeline raised; the error is recorded and no patient folder was published."""

    @property
    def ok(self) -> bool:
        """True when the patient has results."""
        return self is not PatientStatus.FAILED


@dataclass(frozen=True)
class PatientResult:
    """What a worker returns for one patient.

    Parameters
    ----------
    patient_id : str
    status : PatientStatus
    seconds : float
        Wall time of the pipeline on the worker (for a resumed patient: the time recorded
        when it was computed).
    output_dir : str, optional
        The published patient folder (``None`` when failed).
    files : tuple of str
        Files of the patient folder (relative names, ``DONE.json`` excluded).
    error_type : str, optional
        Qualified class name of the exception of a failed patient.
    error : str, optional
        Its message (house format for emlesion errors).
    traceback : str, optional
        The formatted traceback (for the error log, not the cohort table).
    worker : str
        ``host:pid`` of the process that computed the result.
    warnings : tuple of str
        The distinct warnings that can change the numbers (see
        :func:`warning_changes_numbers`), as ``Category: message``; kept in ``DONE.json``,
        so that a resumed result still carries them.
    """

    patient_id: str
    status: PatientStatus
    seconds: float = 0.0
    output_dir: str | None = None
    files: tuple[str, ...] = ()
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    worker: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the patient has results."""
        return self.status.ok

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return {
            "patient_id": self.patient_id,
            "status": self.status.value,
            "seconds": round(self.seconds, 3),
            "output_dir": self.output_dir,
            "files": list(self.files),
            "error_type": self.error_type,
            "error": self.error,
            "worker": self.worker,
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        what = f"{self.error_type}: {self.error}" if not self.ok else f"{len(self.files)} file(s)"
        return (f"PatientResult({self.patient_id!r}, {self.status.value}, "
                f"{self.seconds:.1f} s, {what})")


# ---------------------------------------------------------------------------- options
def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "y", "on"):
        return True
    if v in ("0", "false", "no", "n", "off"):
        return False
    raise InvalidParameterError(format_message(
        f"{value!r} is not a yes/no value", fix="use one of true/false, yes/no, 1/0, on/off"))


def _criteria(value: str) -> tuple[str, ...]:
    from emlesion.response import Criterion

    names = tuple(v for v in value.replace(";", " ").replace("|", " ").split() if v)
    allowed = {c.value for c in Criterion} | {"lugano"}
    bad = [n for n in names if n.lower() not in allowed]
    if bad or not names:
        raise InvalidParameterError(format_message(
            f"unknown criteria {bad or [value]}", fix=f"use {', '.join(sorted(allowed))}"))
    return tuple(n.lower() for n in names)


def _sul(value: str) -> str | None:
    return None if value.strip().lower() in ("none", "off", "no") else value


def _method(value: str) -> str:
    from emlesion.segment import Method

    return Method(value).value


def _treatment_date(value: str) -> _dt.date:
    from emlesion.report.html import parse_treatment_date

    when = parse_treatment_date(value)
    assert when is not None  # None only for None
    return when


def _pet_units(value: str) -> str:
    from emlesion.io.nifti_image import NiftiPetUnits

    return NiftiPetUnits.coerce(value).value


#: Options a manifest may set per patient (extra columns), with their parsers.
#: ``method``, ``sul``, ``track``, ``transform``, ``residual_search``, ``residual_margin_mm``
#: and ``allow_different_patients`` go to :func:`emlesion.study.load_study`; ``criteria``
#: (separated by ``;`` or spaces) to :meth:`emlesion.study.Study.assess`; ``deidentify``
#: leaves the PatientID out of the reports; ``html`` and ``dicom`` (default yes) write
#: ``report.html`` and ``dicom/`` (SEG + SR per timepoint) as ``emlesion response`` does;
#: ``nifti`` (default no) also writes ``nifti/`` (one label map per timepoint, track numbers
#: as labels) and ``treatment_date`` (``YYYY-MM-DD``, e.g. the patient's CAR-T infusion)
#: adds the days since treatment to the reports, as ``--nifti`` and ``--treatment-date`` of
#: ``emlesion response`` do; ``pet_units`` (``SUVbw`` or ``BQML``) declares the quantity of
#: the patient's NIfTI PETs (``--pet-units``; the ``pet_sidecar`` column gives the rest).
OPTION_NAMES: Mapping[str, Callable[[str], Any]] = {
    "method": _method,
    "sul": _sul,
    "track": _bool,
    "transform": str,
    "residual_search": _bool,
    "residual_margin_mm": float,
    "allow_different_patients": _bool,
    "criteria": _criteria,
    "deidentify": _bool,
    "html": _bool,
    "dicom": _bool,
    "nifti": _bool,
    "treatment_date": _treatment_date,
    "pet_units": _pet_units,
}


def parse_options(job: PatientJob) -> dict[str, Any]:
    """The typed options of ``job``.

    Raises
    ------
    ManifestError
        Unknown option name or malformed value (the message names the patient and rows).
    """
    out: dict[str, Any] = {}
    rows = ", ".join(str(tp.row) for tp in job.timepoints)
    for name, text in job.options:
        parser = OPTION_NAMES.get(name)
        if parser is None:
            raise ManifestError(format_message(
                f"patient {job.patient_id!r} (rows {rows}): unknown manifest column/option "
                f"{name!r}", fix=f"known options: {', '.join(OPTION_NAMES)}; fixed columns: "
                f"{', '.join((*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS))}"))
        try:
            out[name] = parser(text)
        except ValueError as exc:
            raise ManifestError(format_message(
                f"patient {job.patient_id!r} (rows {rows}): bad value {text!r} for option "
                f"{name!r}: {exc}")) from None
    return out


# ---------------------------------------------------------------------------- files
def patient_dir(out_dir: str | os.PathLike[str], patient_id: str) -> Path:
    """The final folder of ``patient_id`` in the batch output ``out_dir``."""
    return Path(out_dir) / PATIENTS_DIR / patient_id


def job_sha256(job: PatientJob) -> str:
    """Hash recorded in ``DONE.json``: the job definition plus the emlesion version."""
    text = json.dumps({"job": job.sha256(), "emlesion": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _list_files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != DONE_FILE
    )


def completed_result(job: PatientJob, out_dir: str | os.PathLike[str]) -> PatientResult | None:
    """The result of an earlier run of ``job`` when its patient folder is complete and valid.

    Returns
    -------
    PatientResult or None
        Status :attr:`PatientStatus.RESUMED` when ``DONE.json`` exists, has this job's hash
        and every file it lists exists with the recorded size and SHA-256; ``None`` otherwise
        (the patient must be (re)computed).
    """
    folder = patient_dir(out_dir, job.patient_id)
    try:
        done = json.loads((folder / DONE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(done, dict) or done.get("format") != DONE_FORMAT:
        return None
    if done.get("job_sha256") != job_sha256(job):
        return None
    files = done.get("files")
    if not isinstance(files, dict) or REPORT_FILE not in files:
        return None
    for name, info in files.items():
        path = folder / name
        try:
            if path.stat().st_size != info["size_bytes"] or _file_sha256(path) != info["sha256"]:
                return None
        except (OSError, KeyError, TypeError):
            return None
    return PatientResult(
        patient_id=job.patient_id,
        status=PatientStatus.RESUMED,
        seconds=float(done.get("seconds", 0.0)),
        output_dir=str(folder),
        files=tuple(sorted(files)),
        worker=str(done.get("worker", "")),
        warnings=tuple(str(w) for w in done.get("warnings", []) or []),
    )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- pipeline
def warning_changes_numbers(category: type[Warning]) -> bool:
    """True for a warning that can change a measured number (the batch status rule).

    Counted: every warning about the *inputs* that the pipeline worked around, because the
    numbers were then computed from a corrected or incomplete input: tolerated header,
    geometry, SUV and mask deviations (:class:`~emlesion.errors.DicomQuirkWarning`,
    :class:`~emlesion.errors.GeometryWarning`, :class:`~emlesion.errors.SUVWarning`,
    :class:`~emlesion.errors.MaskWarning`, any other :class:`~emlesion.errors.EmlesionWarning`
    of the readers), warnings of pydicom (malformed values) and of the arithmetic
    (``RuntimeWarning``).

    Not counted: the notes of the analysis itself, which are part of every report and change
    no input value: :class:`~emlesion.errors.ResponseWarning` (two timepoints not strictly
    comparable), :class:`emlesion.segment.SegmentationWarning` (a contour to check),
    :class:`emlesion.anatomy.AnatomyWarning` (a landmark or organ not found), and the API
    notices of libraries (``DeprecationWarning``, ``PendingDeprecationWarning``,
    ``FutureWarning``).
    """
    from emlesion.anatomy import AnatomyWarning
    from emlesion.segment import SegmentationWarning

    return not issubclass(category, (ResponseWarning, SegmentationWarning, AnatomyWarning,
                                     DeprecationWarning, PendingDeprecationWarning,
                                     FutureWarning))


def _run_study(job: PatientJob, folder: Path, threads: int) -> tuple[str, ...]:
    """Run the study pipeline of ``job`` and write its outputs into ``folder``.

    The same outputs as ``emlesion response`` (:func:`emlesion.report.write_response_outputs`:
    ``report.json``, ``lesions.csv``, ``report.html``, ``dicom/``) unless the options
    ``html``/``dicom`` are off, and ``nifti/`` with the option ``nifti``. Returns the
    distinct warnings that can change the numbers (:func:`warning_changes_numbers`), as
    ``Category: message``.
    """
    from emlesion.parallel import usable_cores
    from emlesion.report import check_output_location, write_response_outputs
    from emlesion.study import load_study

    opts = parse_options(job)
    criteria = opts.pop("criteria", None)
    deidentify = bool(opts.pop("deidentify", False))
    html = bool(opts.pop("html", True))
    dicom = bool(opts.pop("dicom", True))
    nifti = bool(opts.pop("nifti", False))
    treatment_date = opts.pop("treatment_date", None)
    declarations = _pet_declarations(job, opts.pop("pet_units", None))
    check_output_location(folder, [*job.folders.values(), *job.masks.values(),
                                   *(v for v in job.organs.values() if v != ORGANS_AUTO),
                                   *job.cts.values(), *job.pet_sidecars.values()])
    with warnings.catch_warnings(record=True) as caught:
        # Recorded, not printed: from every worker they would only garble the driver's
        # terminal. Tolerated deviations are also in report.json (provenance, assessment
        # warnings); those that can change a number mark the patient for review.
        warnings.simplefilter("always")
        study = load_study(job.folders, masks=job.masks or None, organs=job.organs or None,
                           cts=job.cts or None, pet_declarations=declarations,
                           threads=min(threads, usable_cores()), **opts)
        write_response_outputs(study, folder, criteria=criteria, html=html, dicom=dicom,
                               deidentify=deidentify, nifti=nifti, treatment_date=treatment_date)
    found = (f"{w.category.__name__}: {' '.join(str(w.message).split())}"
             for w in caught if warning_changes_numbers(w.category))
    return tuple(dict.fromkeys(found))


def _pet_declarations(job: PatientJob, units: str | None) -> dict[str, Any] | None:
    """The declared quantity of each NIfTI PET of ``job`` (``None`` without NIfTI PETs).

    As ``emlesion response --pet-units/--pet-sidecars``: the sidecar when given (its units,
    or ``pet_units``), else ``pet_units`` alone; a DICOM timepoint with either is an error.
    """
    from emlesion.io.nifti_image import PetDeclaration, is_nifti_path

    out: dict[str, Any] = {}
    for tp in job.timepoints:
        if not is_nifti_path(tp.folder):
            if tp.pet_sidecar:
                raise ManifestError(format_message(
                    f"patient {job.patient_id!r} (row {tp.row}): a pet_sidecar applies to a "
                    "NIfTI PET only", series=tp.folder,
                    fix="a DICOM PET's quantity comes from its header; empty the cell"))
            out[tp.label] = None
        else:
            out[tp.label] = PetDeclaration.from_options(
                units, tp.pet_sidecar, units_source="manifest option pet_units")
    return out if any(v is not None for v in out.values()) else None


def process_patient(job: PatientJob, out_dir: str | os.PathLike[str], *,
                    threads: int = 1) -> PatientResult:
    """Process one patient: run the study pipeline and publish its folder atomically.

    This is the task a batch submits, one per patient; it runs on a worker. It never raises
    for a problem of the data (bad DICOM, missing tag, inconsistent study, any exception of
    the pipeline): the exception is returned as a :attr:`PatientStatus.FAILED` result, and no
    patient folder is published.

    Parameters
    ----------
    job : PatientJob
        The patient's timepoints, masks and options.
    out_dir : path
        The batch output folder (must be reachable by the worker).
    threads : int
        Threads of the study pipeline (the ``threads`` of :func:`emlesion.study.load_study`,
        capped by :func:`emlesion.parallel.usable_cores`). A local batch gives each worker
        its share of the cores, so that one worker on a two-core machine uses both cores
        and two workers use one each. Not part of the job: the results do not depend on it.

    Returns
    -------
    PatientResult
        :attr:`PatientStatus.COMPLETED` with the published folder (or
        :attr:`PatientStatus.COMPLETED_WITH_WARNINGS` when warnings that can change the
        numbers were raised), or :attr:`PatientStatus.FAILED` with the error type and
        message.
    """
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    final = patient_dir(out_dir, job.patient_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{job.patient_id}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        staging.mkdir()
        number_warnings = _run_study(job, staging, threads)
        files = _list_files(staging)
        seconds = time.perf_counter() - t0
        done = {
            "format": DONE_FORMAT,
            "format_version": DONE_FORMAT_VERSION,
            "patient_id": job.patient_id,
            "job_sha256": job_sha256(job),
            "job": job.to_dict(),
            "emlesion_version": __version__,
            "seconds": round(seconds, 3),
            "worker": worker,
            "warnings": list(number_warnings),
            "files": {
                name: {"sha256": _file_sha256(staging / name),
                       "size_bytes": (staging / name).stat().st_size}
                for name in files
            },
        }
        _write_json(staging / DONE_FILE, done)  # last: marks the folder complete
        publish_dir(staging, final, replace=True)  # an older folder failed the resume check
    except Exception as exc:  # one patient's failure must not stop the cohort
        shutil.rmtree(staging, ignore_errors=True)
        cls = type(exc)
        module = "" if cls.__module__ == "builtins" else cls.__module__ + "."
        message = str(exc) if isinstance(exc, EmlesionError) else (str(exc) or repr(exc))
        return PatientResult(
            patient_id=job.patient_id,
            status=PatientStatus.FAILED,
            seconds=time.perf_counter() - t0,
            error_type=module + cls.__qualname__,
            error=" ".join(message.split()),
            traceback="".join(traceback.format_exception(exc)),
            worker=worker,
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PatientResult(
        patient_id=job.patient_id,
        status=(PatientStatus.COMPLETED_WITH_WARNINGS if number_warnings
                else PatientStatus.COMPLETED),
        seconds=seconds,
        output_dir=str(final),
        files=tuple(files),
        worker=worker,
        warnings=number_warnings,
    )
