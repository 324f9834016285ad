"""``emlesion batch MANIFEST --out OUTDIR``: run a cohort on a local pool or a Dask cluster.

Progress goes to stderr; the summary (and with ``--json`` exactly one JSON object, the
:meth:`emlesion.batch.CohortResult.to_dict`) to stdout. Exit code 0 when the batch ran to its
end, even when some patients failed (they are listed in ``cohort_status.csv``); with
``--strict``, 1 when at least one patient failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from typing import Any

from emlesion._cli._common import UsageError, positive_int, safe_text

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``batch`` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "batch",
        help="process a cohort (CSV manifest) on a local process pool or a Dask cluster",
        description=(
            "Run the study pipeline (as 'emlesion response') for every patient of a manifest "
            "CSV (columns patient_id, timepoint, folder[, mask][, options]) and write one "
            "report folder per patient plus cohort tables. Without --scheduler the work runs on "
            "a local Dask cluster of worker processes; re-running skips finished patients."
        ),
    )
    p.add_argument("manifest", metavar="MANIFEST", help="CSV: one row per patient and timepoint")
    p.add_argument("--out", "-o", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--workers", "-w", type=positive_int, metavar="N",
                   help="local worker processes (default: the usable CPUs; ignored with "
                        "--scheduler)")
    p.add_argument("--threads-per-worker", type=positive_int, metavar="N",
                   help="threads of each patient's study pipeline (default: each local "
                        "worker's share of the CPUs; 1 with --scheduler)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="default option of every patient (a manifest cell wins), e.g. "
                        "track=false, method=50%%max, criteria=percist;recist (repeatable)")
    p.add_argument("--no-html", action="store_true", help="no report.html per patient")
    p.add_argument("--no-dicom", action="store_true",
                   help="no DICOM SEG/SR per patient")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress line on stderr (also with -q)")
    p.add_argument("--no-parquet", action="store_true",
                   help="do not write Parquet copies of the cohort tables")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--strict", action="store_true",
                   help="exit with code 1 when at least one patient failed")
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``emlesion batch``; returns the exit code."""
    from emlesion.batch import run_batch

    if getattr(args, "verbose", 0) < 2:
        # Dask configures its loggers at import (INFO: the cluster life cycle); keep the
        # terminal for the progress line unless -vv.
        with contextlib.suppress(ImportError):  # run_batch explains how to install it
            import distributed  # noqa: F401
        logging.getLogger("distributed").setLevel(logging.WARNING)
    from emlesion.batch.patient import OPTION_NAMES

    options: dict[str, str] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--option {item!r} is not KEY=VALUE")
        key, value = key.strip(), value.strip()
        parser = OPTION_NAMES.get(key)
        if parser is None:
            raise UsageError(f"--option {key!r} is not a batch option; known options: "
                             + ", ".join(OPTION_NAMES))
        try:  # checked now, before any patient is loaded
            parser(value)
        except ValueError as exc:
            raise UsageError(f"--option {key}={value!r}: {exc}") from None
        options[key] = value
    from emlesion.report import check_output_dir

    # a batch resumes into its own folder (force: not refused when non-empty); the inputs
    # against it are checked by run_batch, which reads the manifest
    check_output_dir(args.out, [], force=True)
    if args.no_html:
        options["html"] = "false"
    if args.no_dicom:
        options["dicom"] = "false"
    result = run_batch(
        args.manifest,
        args.out,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        scheduler=args.scheduler,
        progress=not (args.no_progress or args.quiet),
        parquet=not args.no_parquet,
        options=options,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(f"{len(result.results)} patient(s): {result.n_completed} completed, "
              f"{result.n_resumed} resumed, {result.n_failed} failed, "
              f"{result.n_completed_with_warnings} completed with warnings "
              f"in {result.seconds:.1f} s")
        for r in result.results:
            if r.warnings:
                print(f"  WARNINGS {safe_text(r.patient_id)} ({r.status.value}): "
                      + safe_text(" | ".join(r.warnings)))
        for r in result.failed:
            print(f"  FAILED {safe_text(r.patient_id)}: {r.error_type}: {safe_text(r.error)}")
        for name in sorted(result.tables):
            print(f"  {result.tables[name]}")
    return 1 if (args.strict and result.n_failed) else 0
