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
import sys
from typing import Any

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
    p.add_argument("--workers", "-w", type=int, metavar="N",
                   help="local worker processes (default: the usable CPUs; ignored with "
                        "--scheduler)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="default option of every patient (a manifest cell wins), e.g. "
                        "track=false, method=50%%max, criteria=percist;recist (repeatable)")
    p.add_argument("--no-html", action="store_true", help="no report.html per patient")
    p.add_argument("--no-dicom", action="store_true",
                   help="no DICOM SEG/SR per patient")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
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
    if args.workers is not None and args.workers < 1:
        print("emlesion batch: error: --workers must be at least 1", file=sys.stderr)
        return 2
    options: dict[str, str] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            print(f"emlesion batch: error: --option {item!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        options[key.strip()] = value.strip()
    if args.no_html:
        options["html"] = "false"
    if args.no_dicom:
        options["dicom"] = "false"
    result = run_batch(
        args.manifest,
        args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.no_progress,
        parquet=not args.no_parquet,
        options=options,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(f"{len(result.results)} patient(s): {result.n_completed} completed, "
              f"{result.n_resumed} resumed, {result.n_failed} failed in {result.seconds:.1f} s")
        for r in result.failed:
            print(f"  FAILED {r.patient_id}: {r.error_type}: {r.error}")
        for name in sorted(result.tables):
            print(f"  {result.tables[name]}")
    return 1 if (args.strict and result.n_failed) else 0
