"""Run a cohort on a Dask cluster: a local process pool or an existing scheduler.

Both cases use the same code path (Dask ``distributed``): without a scheduler address,
:func:`run_batch` starts a :class:`distributed.LocalCluster` of worker processes sized to the
machine, each running one patient at a time with its share of the cores (one thread when
there are as many workers as cores; a lone worker on two cores runs its study pipeline in
two threads); with one, it connects a :class:`distributed.Client` to it.
One task per patient (:func:`emlesion.batch.patient.process_patient`) is submitted, and
results are collected with :func:`distributed.as_completed` as they finish. A worker thread
holds one patient's study at a time, so start remote workers with ``--nthreads 1`` (or a
memory limit that fits one study per thread).

The driver is the only writer of the cohort tables (see :mod:`emlesion.batch.cohort`); the
workers publish the patient folders themselves, so the output folder (and the input folders)
must be on a file system shared by the driver and the workers. The driver holds an exclusive
lock on ``OUT/.emlesion-batch.lock`` while it runs, so that two batches cannot write the same
output folder.

References
----------
.. [1] Dask distributed documentation, "Futures" and "as_completed",
   https://distributed.dask.org/en/stable/client.html
.. [2] Dask distributed, ``LocalCluster``,
   https://distributed.dask.org/en/stable/api.html#cluster
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from emlesion.batch.cohort import CohortResult, CohortTables, write_cohort_tables
from emlesion.batch.manifest import Manifest, PatientJob, read_manifest
from emlesion.batch.patient import (
    PATIENTS_DIR,
    PatientResult,
    PatientStatus,
    completed_result,
    parse_options,
    process_patient,
)
from emlesion.errors import (
    EmlesionError,
    InvalidParameterError,
    UnsupportedDataError,
    format_message,
)

__all__ = ["LOCK_FILE", "default_workers", "run_batch"]

_log = logging.getLogger(__name__)

#: Lock file held by the driver of a batch in the output folder.
LOCK_FILE = ".emlesion-batch.lock"
#: Log of the failed patients' tracebacks, in the output folder.
ERROR_LOG = "errors.log"


def default_workers() -> int:
    """Worker processes of a local batch: the CPUs this process may use (at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))  # type: ignore[attr-defined,unused-ignore]
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, n)


def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise UnsupportedDataError(format_message(
            "emlesion batch needs Dask distributed, which is not installed",
            fix="pip install 'emlesion[batch]'")) from exc
    return distributed


@contextlib.contextmanager
def _output_lock(out: Path) -> Iterator[None]:
    """Exclusive advisory lock on the output folder (released when the process dies)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock
        yield
        return
    fh = open(out / LOCK_FILE, "a+")  # noqa: SIM115 (held for the whole block)
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise EmlesionError(format_message(
                f"another emlesion batch is writing {out}", series=str(out),
                fix="wait for it to finish or choose another --out")) from None
        yield
    finally:
        fh.close()


def _remove_stale_staging(out: Path) -> int:
    """Remove staging/old folders left by an interrupted batch; returns how many."""
    patients = out / PATIENTS_DIR
    if not patients.is_dir():
        return 0
    n = 0
    for p in patients.iterdir():
        if p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


class _Progress:
    """A one-line text progress display on a stream (``\\r`` updates on a terminal)."""

    def __init__(self, total: int, resumed: int, stream: IO[str] | None) -> None:
        self.total = total
        self.done = resumed
        self.resumed = resumed
        self.failed = 0
        self.stream = stream
        self.t0 = time.perf_counter()
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def message(self, text: str) -> None:
        if self.stream is not None:
            if self.tty:
                self.stream.write("\n")
            self.stream.write(text + "\n")
            self.stream.flush()

    def line(self) -> str:
        elapsed = time.perf_counter() - self.t0
        computed = self.done - self.resumed
        remaining = self.total - self.done
        eta = elapsed / computed * remaining if computed else math.nan
        parts = [f"emlesion batch: {self.done}/{self.total} patients"]
        if self.resumed:
            parts.append(f"{self.resumed} resumed")
        parts.append(f"{self.failed} failed")
        parts.append(f"elapsed {_hms(elapsed)}")
        parts.append(f"ETA {_hms(eta)}" if remaining else "finished")
        return ", ".join(parts)

    def update(self, result: PatientResult | None = None) -> None:
        if result is not None:
            self.done += 1
            self.failed += not result.ok
        if self.stream is None:
            return
        if self.tty:
            self.stream.write("\r" + self.line().ljust(79))
        else:
            what = ""
            if result is not None:
                what = f" [{result.patient_id}: {result.status.value}"
                what += f" in {result.seconds:.1f} s]" if result.ok else f": {result.error}]"
            self.stream.write(self.line() + what + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _driver_failure(job: PatientJob, exc: BaseException) -> PatientResult:
    """A failed result for an error seen by the driver (worker killed, cancelled ...)."""
    cls = type(exc)
    module = "" if cls.__module__ == "builtins" else cls.__module__ + "."
    return PatientResult(
        patient_id=job.patient_id,
        status=PatientStatus.FAILED,
        error_type=module + cls.__qualname__,
        error=" ".join((str(exc) or repr(exc)).split()),
    )


def _append_error_log(out: Path, result: PatientResult) -> None:
    with open(out / ERROR_LOG, "a", encoding="utf-8") as fh:
        fh.write(f"=== {result.patient_id} ({result.worker}) {result.error_type}: {result.error}\n")
        if result.traceback:
            fh.write(result.traceback.rstrip() + "\n")


def run_batch(
    manifest: Manifest | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    scheduler: str | None = None,
    progress: bool | IO[str] = True,
    flush_interval_s: float = 10.0,
    parquet: bool = True,
    options: Mapping[str, str] | None = None,
) -> CohortResult:
    """Process a cohort: one study pipeline per patient, results streamed to ``out_dir``.

    Parameters
    ----------
    manifest : Manifest or path
        The cohort (see :mod:`emlesion.batch.manifest`).
    out_dir : path
        Output folder: ``patients/<id>/`` per patient (``report.json``, ``lesions.csv``,
        ``DONE.json``), the cohort tables ``cohort_lesions.csv``, ``cohort_assessments.csv``,
        ``cohort_status.csv`` (and ``.parquet`` copies with pyarrow) and ``errors.log``.
    workers : int, optional
        Worker processes of the local cluster (default: the usable CPUs, capped at the number
        of patients to compute). Ignored with ``scheduler``.
    threads_per_worker : int, optional
        Threads of each patient's study pipeline (the ``threads`` of
        :func:`emlesion.study.load_study`; ITK's thread budget on a local cluster). Default:
        on a local cluster, each worker's share of the usable cores (``cores // workers``,
        at least 1), so that one worker on two cores uses both; with ``scheduler``, 1 (one
        worker process per core, as the remote workers should be started). The results do
        not depend on it.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); the workers must see the
        input and output paths.
    progress : bool or text stream
        Progress line on stderr (``True``), on the given stream, or none (``False``).
    flush_interval_s : float
        Minimum seconds between two rewrites of the lesion and assessment tables while the
        batch runs (the status table is rewritten after every patient; all tables at the
        end). 0 rewrites everything after every patient.
    parquet : bool
        Write Parquet copies of the tables when pyarrow is importable.
    options : mapping of str to str, optional
        Default options of every patient (see :data:`emlesion.batch.patient.OPTION_NAMES`),
        e.g. ``{"html": "false"}``; a value set in the manifest wins.

    Returns
    -------
    CohortResult

    Raises
    ------
    ManifestError
        The manifest is malformed or a patient has an unknown option (checked before any
        work starts).
    InconsistentStudyError
        ``out_dir`` lies inside an input folder (emlesion never writes into its inputs).
    EmlesionError
        Another batch holds the output folder's lock.

    Notes
    -----
    Resuming: a patient whose folder holds a valid ``DONE.json`` for the same job (see
    :func:`emlesion.batch.patient.completed_result`) is not recomputed; its rows are read
    from its ``report.json``. Failed patients are retried by the next run.

    Examples
    --------
    >>> result = run_batch("cohort.csv", "out", workers=2)  # doctest: +SKIP
    >>> result.n_failed, result.tables["cohort_lesions.csv"]  # doctest: +SKIP
    (1, 'out/cohort_lesions.csv')
    """
    t0 = time.perf_counter()
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest)
    if options:
        manifest = dataclasses.replace(manifest, jobs=tuple(
            dataclasses.replace(job, options=tuple(sorted(
                {**{str(k): str(v) for k, v in options.items()}, **job.option_dict}.items())))
            for job in manifest.jobs))
    for job in manifest.jobs:
        parse_options(job)  # fail fast on a bad option, before any work
    if workers is not None and workers < 1:
        raise InvalidParameterError(format_message(f"workers must be >= 1, got {workers}",
                                                   fix="pass --workers 1 or more"))
    if threads_per_worker is not None and threads_per_worker < 1:
        raise InvalidParameterError(format_message(
            f"threads_per_worker must be >= 1, got {threads_per_worker}",
            fix="pass --threads-per-worker 1 or more, or leave it out"))
    stream: IO[str] | None
    if progress is True:
        stream = sys.stderr
    elif progress is False:
        stream = None
    else:
        stream = progress
    out = Path(out_dir)
    from emlesion.report import check_output_location

    check_output_location(out, [p for job in manifest.jobs
                                for p in (*job.folders.values(), *job.masks.values())])
    (out / PATIENTS_DIR).mkdir(parents=True, exist_ok=True)
    with _output_lock(out):
        n_stale = _remove_stale_staging(out)
        if n_stale:
            _log.info("removed %d staging folder(s) of an interrupted batch", n_stale)
        tables = CohortTables()
        results: dict[str, PatientResult] = {}
        pending: list[PatientJob] = []
        for job in manifest.jobs:
            done = completed_result(job, out)
            if done is None:
                pending.append(job)
                continue
            try:
                tables.add(job, done)
            except (OSError, ValueError):  # listed files valid but report unreadable
                pending.append(job)
                continue
            results[job.patient_id] = done
        bar = _Progress(len(manifest.jobs), len(results), stream)
        info: dict[str, Any] = {"n_workers": 0, "threads_per_worker": 0, "scheduler": scheduler,
                                "dashboard_link": None}
        written = write_cohort_tables(out, tables.rows(), parquet=parquet)
        if pending:
            _run_pending(pending, out, tables, results, bar, info, workers=workers,
                         threads_per_worker=threads_per_worker, scheduler=scheduler,
                         flush_interval_s=flush_interval_s, parquet=parquet)
            written = write_cohort_tables(out, tables.rows(), parquet=parquet)
        else:
            bar.update()
        bar.close()
    return CohortResult(
        out_dir=str(out),
        results=tuple(results[p] for p in sorted(results)),
        tables={name: str(path) for name, path in written.items()},
        seconds=time.perf_counter() - t0,
        n_workers=int(info["n_workers"]),
        threads_per_worker=int(info["threads_per_worker"]),
        scheduler=scheduler,
        dashboard_link=info["dashboard_link"],
    )


_TRIM_ENV = "MALLOC_TRIM_THRESHOLD_"
_TRIM_KEY = f"distributed.nanny.pre-spawn-environ.{_TRIM_ENV}"


@contextlib.contextmanager
def _client(workers: int, threads: int, scheduler: str | None) -> Iterator[Any]:
    """A Dask client on a new local cluster of ``workers`` processes, each with an ITK
    budget of ``threads``, or on ``scheduler``."""
    distributed = _require_distributed()
    if scheduler:
        with distributed.Client(scheduler, set_as_default=False) as client:
            yield client
        return
    # Dask already limits OpenMP/BLAS to one thread per worker process; ITK (CT
    # registration, resampling) would otherwise start one thread per core in every worker,
    # and workers sharing the machine would slow each other down. The budget also caps the
    # study pipeline's own threads (emlesion.parallel.usable_cores).
    # Dask's default MALLOC_TRIM_THRESHOLD_=65536 for its workers (to hand freed memory back
    # to the OS) also turns off glibc's dynamic mmap threshold, so every array above 128 KiB
    # is mapped and zero-filled anew: the two-timepoint sample study took 3.8 s instead of
    # 3.0 s in a worker (benchmarks/bench_batch.py). A worker holds one study at a time
    # (about 0.6 GB), so glibc's own (dynamic) thresholds are kept; a value set in the
    # environment still wins.
    import dask

    with dask.config.set({_TRIM_KEY: None}) if _TRIM_ENV not in os.environ \
            else contextlib.nullcontext(), distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: several batches may run on one machine
        silence_logs=logging.ERROR,
        env={"ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(threads)},
    ) as cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


def _run_pending(
    pending: list[PatientJob],
    out: Path,
    tables: CohortTables,
    results: dict[str, PatientResult],
    bar: _Progress,
    info: dict[str, Any],
    *,
    workers: int | None,
    threads_per_worker: int | None,
    scheduler: str | None,
    flush_interval_s: float,
    parquet: bool,
) -> None:
    distributed = _require_distributed()
    n_local = min(workers or default_workers(), len(pending))
    if threads_per_worker is not None:
        threads = threads_per_worker
    elif scheduler:
        threads = 1
    else:
        threads = max(1, default_workers() // n_local)
    with _client(n_local, threads, scheduler) as client:
        n_workers = len(client.scheduler_info().get("workers", {})) if scheduler else n_local
        info["n_workers"] = n_workers
        info["threads_per_worker"] = threads
        link = getattr(client, "dashboard_link", None)
        if link and (scheduler or _bokeh_available()):
            info["dashboard_link"] = link
        where = f"Dask scheduler {scheduler}" if scheduler else "a local Dask cluster"
        bar.message(f"emlesion batch: {len(pending)} patient(s) to compute on {where} "
                    f"({n_workers} worker(s), {threads} thread(s) each)"
                    + (f"; dashboard {info['dashboard_link']}" if info["dashboard_link"] else ""))
        bar.update()
        run = uuid.uuid4().hex[:8]
        by_key: dict[str, PatientJob] = {}
        futures = []
        for i, job in enumerate(pending):
            key = f"emlesion-patient-{job.patient_id}-{run}"
            by_key[key] = job
            futures.append(client.submit(process_patient, job, str(out), threads=threads,
                                         key=key, pure=False, priority=len(pending) - i,
                                         retries=0))
        last_flush = time.perf_counter()
        try:
            for future in distributed.as_completed(futures, loop=client.loop):
                job = by_key[future.key]
                try:
                    result: PatientResult = future.result()
                except Exception as exc:  # worker died (KilledWorker), cancelled ...
                    result = _driver_failure(job, exc)
                if result.ok:
                    try:
                        tables.add(job, result)
                    except (OSError, ValueError) as exc:
                        result = _driver_failure(job, exc)
                        tables.add(job, result)
                else:
                    tables.add(job, result)
                    _append_error_log(out, result)
                results[job.patient_id] = result
                future.release()
                bar.update(result)
                now = time.perf_counter()
                if now - last_flush >= flush_interval_s:
                    write_cohort_tables(out, tables.rows(), parquet=parquet)
                    last_flush = now
                else:
                    write_cohort_tables(out, {"cohort_status": tables.status_rows()},
                                        parquet=False)
        except BaseException:
            client.cancel(futures)
            write_cohort_tables(out, tables.rows(), parquet=parquet)
            raise


def _bokeh_available() -> bool:
    """True when the Dask dashboard can render (it needs bokeh)."""
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None
