"""Atomic writers of every output file: ``report.json``, ``lesions.csv``, the measure JSON
and CSV, ``report.html`` and ``dicom/``, and the one CSV format that all of them (and the
cohort tables of :mod:`emlesion.batch`) share.

Every file is written to a temporary file in the destination folder and renamed into place
with :func:`os.replace`, so a reader never sees a half-written file; outputs are refused
inside an input folder.

One library call per command: :func:`write_response_outputs` (``emlesion response`` and a
batch patient) and :func:`write_measure_outputs` (``emlesion measure``).

CSV cells (:func:`format_cell`): empty for ``None`` and non-finite numbers, ``true``/``false``
for booleans; a float in a column of :data:`CSV_DECIMALS` is written with that many decimals
(fixed point: ``88.960``, not ``88.96000000000001``), any other float as the shortest repr
that round-trips. The JSON documents keep the full precision.
"""

from __future__ import annotations

import csv
import datetime as _dt
import errno
import io
import json
import math
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from emlesion import _atomic
from emlesion.errors import EmlesionError, InconsistentStudyError, OutputError, format_message
from emlesion.measure import BURDEN_COLUMNS
from emlesion.response import Assessment, Criterion
from emlesion.study import CSV_COLUMNS, LESION_CSV_COLUMNS, StageEvent, Study, Timepoint
from emlesion.study.model import ProgressCallback

__all__ = [
    "BURDEN_CSV_COLUMNS",
    "CSV_DECIMALS",
    "MEASURE_CSV_COLUMNS",
    "StderrProgress",
    "burden_rows",
    "check_output_dir",
    "check_output_file",
    "check_output_location",
    "csv_text",
    "format_cell",
    "measure_rows",
    "output_error",
    "publish_measure_outputs",
    "publish_response_outputs",
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


_SUV_DECIMALS = 3  # g/mL: 0.001, far below the test-retest SD of SUV (~10 %)
_VOLUME_DECIMALS = 3  # mL: 1 uL, below one PET voxel (~0.06-0.3 mL)
_MM_DECIMALS = 2  # mm: 0.01 mm, below any CT or PET voxel
#: Decimals written in the CSV tables per float column (``lesions.csv``, the measure CSV,
#: ``cohort_lesions.csv``); documented in the README's column list.
CSV_DECIMALS: Mapping[str, int] = {
    **dict.fromkeys(("suv_max", "suv_mean", "suv_peak", "sul_max", "sul_peak", "sul_mean",
                     "site_suv_max", "site_suv_peak", "site_sul_peak", "liver_suv_mean",
                     "liver_sul_mean"), _SUV_DECIMALS),
    **dict.fromkeys(("mtv_ml", "site_voi_ml", "ct_volume_ml"), _VOLUME_DECIMALS),
    "tlg": 2,  # g (SUV x mL)
    **dict.fromkeys(("centroid_x_mm", "centroid_y_mm", "centroid_z_mm",
                     "longest_axial_diameter_mm", "short_axis_mm",
                     "ct_longest_axial_diameter_mm", "ct_short_axis_mm", "ct_ld_mm",
                     "ct_sa_mm"), _MM_DECIMALS),
    **dict.fromkeys(("extent_x_cm", "extent_y_cm", "extent_z_cm"), 3),  # cm: 0.01 mm
    **dict.fromkeys(("hu_mean", "ct_hu_mean"), 1),  # HU
}


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON (NaN refused: values must already be JSON-able)."""
    return _atomic.write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def format_cell(value: Any, decimals: int | None = None) -> str:
    """One CSV cell: ``""`` for None/NaN/inf, ``true``/``false``, floats rounded.

    Parameters
    ----------
    value : Any
        The cell value.
    decimals : int, optional
        Fixed-point decimals of a float (or of a numeric string, e.g. a value read back
        from a CSV); default: the shortest repr that round-trips.

    Returns
    -------
    str

    Examples
    --------
    >>> format_cell(88.96000000000001, 3)
    '88.960'
    >>> format_cell(None), format_cell(True), format_cell(0.1 + 0.2)
    ('', 'true', '0.30000000000000004')
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if decimals is not None and isinstance(value, str) and value.strip():
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        if decimals is None:
            return repr(value)
        text = f"{value:.{decimals}f}"
        return text[1:] if text.startswith("-") and float(text) == 0.0 else text  # no "-0.000"
    return str(value)


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str],
             decimals: Mapping[str, int] | None = None) -> str:
    """The CSV text of ``rows`` (header line first), cells by :func:`format_cell`.

    ``decimals`` gives the decimals per float column (default :data:`CSV_DECIMALS`; ``{}``
    keeps the full precision).
    """
    prec = CSV_DECIMALS if decimals is None else decimals
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    cols = list(columns)
    writer.writerow(cols)
    for row in rows:
        writer.writerow([format_cell(row.get(c), prec.get(c)) for c in cols])
    return buf.getvalue()


def write_csv_atomic(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]],
                     columns: Sequence[str]) -> Path:
    """Write ``rows`` as CSV (:func:`csv_text`) atomically."""
    return _atomic.write_text_atomic(path, csv_text(rows, columns))


def check_output_location(out_dir: str | os.PathLike[str],
                          inputs: Iterable[str | os.PathLike[str]]) -> Path:
    """Refuse an output folder that is an input folder, lies inside one, or holds one.

    A file input (a mask) stands for its folder: nothing is written beside a mask. An output
    folder that is a parent of an input would be replaced as a whole with ``--force``, so it
    is refused too.

    Raises
    ------
    InconsistentStudyError
        When ``out_dir`` is an input folder, inside one, or a parent of an input.
    """
    return _refuse_inputs(Path(out_dir), inputs, holds=True)


def _refuse_inputs(path: Path, inputs: Iterable[str | os.PathLike[str]], *,
                   holds: bool) -> Path:
    """The resolved ``path``; raises when it is or lies inside an input folder (a file input
    stands for its folder) or, with ``holds``, when it is a parent of an input."""
    out = path.resolve()
    for src in inputs:
        p = Path(src).resolve()
        if p.is_file():
            p = p.parent
        if out == p or p in out.parents:
            raise InconsistentStudyError(format_message(
                f"the output folder {out} lies inside the input folder {p}",
                fix="choose an output folder outside the DICOM input folders (emlesion never "
                    "writes into its inputs)"))
        if holds and out in p.parents:
            raise InconsistentStudyError(format_message(
                f"the output folder {out} holds the input folder {p}",
                fix="choose an output folder that is not a parent of the inputs (it is "
                    "replaced as a whole with --force)"))
    return out


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest existing ancestor."""
    for p in (path, *path.parents):
        if os.path.lexists(p):
            return p
    return Path(path.anchor or ".")


def _check_writable_folder(folder: Path, what: str) -> None:
    """Refuse when ``folder`` (or, when missing, its nearest existing ancestor) is not a
    folder emlesion can create files in. Probes by creating and removing a hidden file, so
    that read-only mounts and permissions are caught whoever runs the command."""
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise OutputError(format_message(
            f"cannot write {what}: {base} is not a folder",
            fix=f"choose an output path whose parent folders are folders ({base} is a file)"))
    try:
        fd, probe = tempfile.mkstemp(prefix=".emlesion-write-test-", dir=base)
    except OSError as exc:
        raise OutputError(format_message(
            f"cannot write {what}: the folder {base} is not writable ({exc.strerror})",
            fix="choose a writable output folder, or fix its permissions")) from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: str | os.PathLike[str],
                      inputs: Iterable[str | os.PathLike[str]]) -> Path:
    """Check an output file name before any work: not an input, not inside an input folder
    (a file input stands for its folder), not a folder, in a writable folder.

    Parameters
    ----------
    path : path
        The output file (missing parent folders are allowed: they are created on writing).
    inputs : iterable of path
        Input folders and files (PET, CT, masks).

    Returns
    -------
    Path
        The resolved output path.

    Raises
    ------
    InconsistentStudyError
        ``path`` lies inside an input folder or is a file input.
    OutputError
        ``path`` is a folder, or its folder cannot be written.
    """
    out = Path(path).resolve()
    if out.is_dir():
        raise OutputError(format_message(
            f"the output file {out} is an existing folder",
            fix="give a file name, e.g. " + os.fspath(out / "result.json")))
    _refuse_inputs(out.parent, inputs, holds=False)
    _check_writable_folder(out.parent, f"the output file {out}")
    return out


def check_output_dir(out_dir: str | os.PathLike[str],
                     inputs: Iterable[str | os.PathLike[str]], *, force: bool = False) -> Path:
    """Check an output folder before any work: not an input, not inside or a parent of one
    (:func:`check_output_location`), not a file, empty or missing unless ``force``, and its
    parent writable (the outputs are built in a hidden sibling, then published by rename).

    Parameters
    ----------
    out_dir : path
        The output folder.
    inputs : iterable of path
        Input folders and files.
    force : bool
        Accept an existing non-empty folder; it is then replaced as a whole by
        :func:`publish_response_outputs` (no file of the old folder survives).

    Returns
    -------
    Path
        The resolved output folder.

    Raises
    ------
    InconsistentStudyError
        ``out_dir`` is, lies inside, or holds an input.
    OutputError
        ``out_dir`` is a file, or a non-empty folder without ``force``, or cannot be written.
    """
    out = check_output_location(out_dir, inputs)
    if os.path.lexists(out) and not out.is_dir():
        raise OutputError(format_message(
            f"the output folder {out} exists and is not a folder",
            fix="choose another output folder name"))
    if out.is_dir() and not force and any(out.iterdir()):
        raise OutputError(format_message(
            f"the output folder {out} exists and is not empty",
            fix="choose a new or empty folder, or pass --force to replace it as a whole"))
    _check_writable_folder(out.parent, f"the output folder {out}")
    return out


def output_error(exc: OSError, path: str | os.PathLike[str]) -> OutputError:
    """An :class:`~emlesion.errors.OutputError` naming ``path`` and a fix for a failed write."""
    if isinstance(exc, OutputError):
        return exc
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename or os.fspath(path)
    fixes = {errno.ENOSPC: "free space on that file system, or write elsewhere",
             errno.EDQUOT: "free space (disk quota), or write elsewhere",
             errno.EROFS: "the file system is read-only: write elsewhere",
             errno.EACCES: "choose a writable output folder, or fix its permissions",
             errno.EPERM: "choose a writable output folder, or fix its permissions"}
    fix = fixes.get(exc.errno or 0, "check the output path and the file system")
    return OutputError(format_message(
        f"writing {os.fspath(path)} failed: {reason} ({where}); nothing was published",
        fix=fix))


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
    nifti: bool = False,
    treatment_date: _dt.date | str | None = None,
) -> dict[str, Path]:
    """Everything ``emlesion response`` and a batch patient write into ``out_dir``.

    :func:`write_study_outputs` (``report.json``, ``lesions.csv``), then ``report.html``
    (:func:`emlesion.report.write_html_report`, with ``treatment_date``) and ``dicom/``
    (DICOM SEG + TID 1500 SR per timepoint, :func:`emlesion.report.write_dicom_outputs`)
    unless ``html``/``dicom`` is off, and with ``nifti`` ``nifti/`` (one label map per
    timepoint, track numbers as labels, with a JSON sidecar:
    :func:`emlesion.report.nifti.write_study_nifti`). ``progress`` gets a
    :class:`StageEvent` (``"report.html"``, ``"dicom"``, ``"nifti"``) when each starts and
    ends.

    Returns
    -------
    dict
        ``{"report.json": path, "lesions.csv": path, "report.html": path,
        "dicom0": path, "dicom1": path, ..., "nifti0": path, ...}``.
    """
    out = Path(out_dir)
    paths = write_study_outputs(study, out, report)
    if html:
        from emlesion.report.html import write_html_report

        if progress is not None:
            progress(StageEvent("report.html", None, None))
        t0 = time.perf_counter()
        paths["report.html"] = write_html_report(study, assessments, out / "report.html",
                                                 deidentify=deidentify,
                                                 treatment_date=treatment_date)
        if progress is not None:
            progress(StageEvent("report.html", None, time.perf_counter() - t0))
    if dicom:
        from emlesion.report.dicom import write_dicom_outputs

        if progress is not None:
            progress(StageEvent("dicom", None, None))
        t0 = time.perf_counter()
        for k, path in enumerate(write_dicom_outputs(study, out / "dicom",
                                                     assessments=assessments)):
            paths[f"dicom{k}"] = path
        if progress is not None:
            progress(StageEvent("dicom", None, time.perf_counter() - t0))
    if nifti:
        from emlesion.report.nifti import write_study_nifti

        if progress is not None:
            progress(StageEvent("nifti", None, None))
        t0 = time.perf_counter()
        for k, path in enumerate(write_study_nifti(study, out / "nifti")):
            paths[f"nifti{k}"] = path
        if progress is not None:
            progress(StageEvent("nifti", None, time.perf_counter() - t0))
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
    nifti: bool = False,
    treatment_date: _dt.date | str | None = None,
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
    html, dicom, deidentify, progress, nifti, treatment_date
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
    from emlesion.report._dates import parse_treatment_date

    calls = list(assessments)
    when = parse_treatment_date(treatment_date)
    report = report_dict(study, calls, deidentify=deidentify, treatment_date=when)
    paths = write_all_outputs(study, out_dir, calls, report, html=html, dicom=dicom,
                              deidentify=deidentify, progress=progress, nifti=nifti,
                              treatment_date=when)
    return paths, calls


def write_measure_outputs(
    tp: Timepoint,
    *,
    json_path: str | os.PathLike[str] | None = None,
    csv_path: str | os.PathLike[str] | None = None,
    nifti_path: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """The ``emlesion measure`` outputs of one timepoint: the JSON, the CSV, the NIfTI.

    The JSON is :func:`emlesion.report.documents.measure_dict`; the CSV has one row per
    lesion with :data:`MEASURE_CSV_COLUMNS` (the date and the columns of
    :data:`emlesion.study.LESION_CSV_COLUMNS`); the NIfTI (``.nii.gz``) is the lesion label
    map on the PET grid with the labels of the JSON and CSV, plus its JSON sidecar
    (:func:`emlesion.report.nifti.write_timepoint_nifti`; keys ``"nifti"``,
    ``"nifti_sidecar"``).
    """
    from emlesion.report.documents import measure_dict

    paths: dict[str, Path] = {}
    if json_path is not None:
        paths["json"] = write_json_atomic(json_path, measure_dict(tp))
    if csv_path is not None:
        paths["csv"] = write_csv_atomic(csv_path, measure_rows(tp), MEASURE_CSV_COLUMNS)
    if nifti_path is not None:
        from emlesion.report.nifti import write_timepoint_nifti

        paths["nifti"], paths["nifti_sidecar"] = write_timepoint_nifti(tp, nifti_path)
    return paths


def publish_measure_outputs(
    tp: Timepoint,
    *,
    json_path: str | os.PathLike[str] | None = None,
    csv_path: str | os.PathLike[str] | None = None,
    data: Mapping[str, Any] | None = None,
    nifti_path: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """The ``emlesion measure`` outputs as one set: all files are published, or none.

    As :func:`write_measure_outputs`, but every document is rendered first, each is written
    to a temporary file beside its destination, and only when all are complete are they
    renamed into place; any failure removes the temporary files and leaves the destinations
    as they were.

    Parameters
    ----------
    tp : Timepoint
        The measured timepoint.
    json_path, csv_path : path, optional
        Destinations (check them first with :func:`check_output_file`).
    data : mapping, optional
        The already computed :func:`emlesion.report.documents.measure_dict` of ``tp``.
    nifti_path : path, optional
        The lesion label map (``.nii.gz`` or ``.nii``), with its JSON sidecar beside it
        (:func:`emlesion.report.nifti.write_timepoint_nifti`).

    Returns
    -------
    dict
        ``{"json": path, "csv": path, "nifti": path, "nifti_sidecar": path}`` for the
        files written.

    Raises
    ------
    OutputError
        A file could not be written (the message names it and a fix).
    """
    from emlesion.report.documents import measure_dict

    items: dict[str, tuple[Path, str | bytes]] = {}
    if json_path is not None:
        doc = measure_dict(tp) if data is None else data
        items["json"] = (Path(json_path), json.dumps(doc, indent=2, allow_nan=False) + "\n")
    if csv_path is not None:
        items["csv"] = (Path(csv_path), csv_text(measure_rows(tp), MEASURE_CSV_COLUMNS))
    if nifti_path is not None:
        from emlesion.report.nifti import label_nifti_bytes, sidecar_path, timepoint_sidecar

        items["nifti_sidecar"] = (sidecar_path(nifti_path), json.dumps(
            timepoint_sidecar(tp, nifti_path), indent=2, allow_nan=False) + "\n")
        items["nifti"] = (Path(nifti_path), label_nifti_bytes(
            nifti_path, tp.lesions.array, tp.suv.grid))
    try:
        with _atomic.atomic_paths([path for path, _ in items.values()]) as temps:
            for tmp, (_, content) in zip(temps, items.values()):
                if isinstance(content, bytes):
                    tmp.write_bytes(content)
                else:
                    with open(tmp, "w", encoding="utf-8", newline="") as fh:
                        fh.write(content)
    except OutputError:
        raise
    except OSError as exc:
        first = next(iter(items.values()))[0] if items else Path(".")
        raise output_error(exc, exc.filename or first) from None
    return {key: path for key, (path, _) in items.items()}

def publish_response_outputs(
    study: Study,
    out_dir: str | os.PathLike[str],
    *,
    force: bool = False,
    **options: Any,
) -> tuple[dict[str, Path], list[Assessment]]:
    """Everything ``emlesion response`` writes, published as one folder at once.

    The outputs (:func:`write_response_outputs`) are written into a hidden sibling of
    ``out_dir`` and published by one rename (:func:`emlesion._atomic.staged_dir`): a failure
    (full disk, a crash, an interrupt) leaves the previous ``out_dir`` or nothing, never a
    partial set.

    Parameters
    ----------
    study : Study
        The longitudinal study.
    out_dir : path
        Output folder (check it first with :func:`check_output_dir`).
    force : bool
        Replace an existing non-empty ``out_dir`` as a whole (no stale file survives);
        without it only a missing or empty folder is published over.
    **options
        Keyword arguments of :func:`write_response_outputs` (``assessments``, ``criteria``,
        ``html``, ``dicom``, ``deidentify``, ``progress`` ...).

    Returns
    -------
    paths : dict
        As :func:`write_all_outputs`, under ``out_dir``.
    assessments : list of Assessment
        The calls that were written.

    Raises
    ------
    OutputError
        Writing or publishing failed; the message names the path and a fix.
    """
    out = Path(out_dir)
    try:
        with _atomic.staged_dir(out, replace=force) as tmp:
            paths, calls = write_response_outputs(study, tmp, **options)
    except OutputError:
        raise
    except FileExistsError:
        raise OutputError(format_message(
            f"the output folder {out} is not empty (files appeared while emlesion ran): "
            "nothing was published",
            fix="choose a new or empty folder, or pass --force to replace it")) from None
    except OSError as exc:
        if isinstance(exc, EmlesionError):
            raise
        raise output_error(exc, out) from None
    return {k: out / os.path.relpath(p, tmp) for k, p in paths.items()}, calls


def measure_rows(tp: Timepoint) -> list[dict[str, Any]]:
    """One row per lesion of ``tp`` with :data:`MEASURE_CSV_COLUMNS`."""
    return [{k: row[k] for k in MEASURE_CSV_COLUMNS}
            for row in (r.row() for r in tp.records())]


class StderrProgress:
    """A ``progress`` callback that shows each pipeline stage while it runs.

    Finished stages print one line each, ``[   3.4 s] month1 anatomy 0.87 s`` (elapsed since
    creation, stage wall time), flushed immediately.

    * On a terminal (``stream.isatty()``) the running stages are shown on one line that is
      rewritten every ``interval_s`` with a spinner and their running times
      (``[   5.0 s] month1 anatomy 1 s, month3 register 0 s |``); a finished stage prints
      its line above it. :func:`emlesion.study.load_study` runs the stages of different
      timepoints side by side, so several can be running at once.
    * Elsewhere (a pipe, a log file, CI) no control character is written: a stage prints a
      plain ``... started`` line when it begins and its finished line when it ends.

    ``emlesion -q`` passes no progress callback at all.

    Parameters
    ----------
    stream : text stream, optional
        Default ``sys.stderr``.
    tty : bool, optional
        Force the terminal mode on or off (default: ``stream.isatty()``).
    interval_s : float
        Refresh interval of the running line on a terminal.
    """

    _active: ClassVar[weakref.WeakSet[StderrProgress]] = weakref.WeakSet()

    def __init__(self, stream: Any = None, *, tty: bool | None = None,
                 interval_s: float = 0.5) -> None:
        import sys

        self._stream = stream if stream is not None else sys.stderr
        if tty is None:
            isatty = getattr(self._stream, "isatty", None)
            tty = bool(isatty()) if callable(isatty) else False
        self._tty = tty
        self._interval_s = float(interval_s)
        self._t0 = time.perf_counter()
        self._clock = time.perf_counter
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._running: dict[str, float] = {}  # what -> start time, in start order
        StderrProgress._active.add(self)

    def _stamp(self) -> str:
        return f"[{self._clock() - self._t0:7.1f} s]"

    def __call__(self, event: Any) -> None:
        where = event.timepoint or "study"
        what = f"{where} {event.stage}"
        if not event.finished:
            if self._tty:
                with self._lock:
                    self._running[what] = self._clock()
                self._draw()
                if self._ticker is None:
                    self._stop.clear()
                    self._ticker = threading.Thread(target=self._tick, daemon=True,
                                                    name="emlesion-progress")
                    self._ticker.start()
            else:
                print(f"{self._stamp()} {what} started", file=self._stream, flush=True)
            return
        if not self._tty:
            print(f"{self._stamp()} {what} {event.seconds:.2f} s", file=self._stream,
                  flush=True)
            return
        with self._lock:
            self._running.pop(what, None)
            others = bool(self._running)
            self._stream.write(f"\r\033[K{self._stamp()} {what} {event.seconds:.2f} s\n")
            self._stream.flush()
        if others:
            self._draw()
        else:
            self._stop_ticker()

    def _draw(self, k: int = 0) -> None:
        with self._lock:
            if not self._running:
                return
            now = self._clock()
            spinner = "|/-\\"[k % 4]
            running = ", ".join(f"{what} {now - start:.0f} s"
                                for what, start in self._running.items())
            self._stream.write(f"\r\033[K{self._stamp()} {running} {spinner}")
            self._stream.flush()

    def _tick(self) -> None:
        k = 0
        while not self._stop.wait(self._interval_s):
            k += 1
            self._draw(k)

    def _stop_ticker(self) -> None:
        ticker = self._ticker
        if ticker is not None:
            self._stop.set()
            ticker.join()
            self._ticker = None

    def _end_running(self) -> None:
        """Stop the ticker and clear the running line (terminal mode)."""
        self._stop_ticker()
        with self._lock:
            if self._running:
                self._running.clear()
                self._stream.write("\r\033[K")
                self._stream.flush()

    def close(self) -> None:
        """Stop showing a running stage (e.g. when the pipeline raised)."""
        self._end_running()

    @classmethod
    def close_all(cls) -> None:
        """:meth:`close` every live instance: called by the CLI before it prints an error,
        so that the message does not land on a half-drawn progress line."""
        for progress in list(cls._active):
            progress.close()
