"""``emlesion info PATH [--json]``: list the DICOM series found under a folder.

Human output (default) is an aligned table, one row per series (a localizer inside a CT
series gets its own row), grouped by patient and study::

    ROLE     MOD  FILES  MANUFACTURER  DESCRIPTION       SERIES UID            STUDY DATE  PATIENT
    pet_ac   PT     545  SIEMENS       PET HeadNeck_0    1.3.6.1.4...144903    20030304    QIN-...

``--json`` prints exactly one JSON object on stdout::

    {"path": "...", "series": [SeriesInfo.to_dict(), ...]}

Errors go to stderr with exit code 1 (no series found, path missing).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from emlesion._cli._common import positive_int, safe_text

__all__ = ["add_parser", "format_table", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``info`` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "info",
        help="list the DICOM series (PET, CT, SEG, RTSTRUCT, ...) found under a folder",
        description="Walk PATH recursively, read the DICOM headers (not the pixels) and list "
                    "the series found, with their role (pet_ac, pet_nac, ct, ct_localizer, "
                    "seg, rtstruct, sr, other).",
    )
    p.add_argument("path", metavar="PATH", help="folder (searched recursively) or DICOM file")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object {path, series: [...]} with every header fact "
                        "and file list")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="processes reading headers (default: automatic)")
    return p


def _short_uid(uid: str, width: int = 24) -> str:
    """Shorten a UID to ``width`` characters keeping its start and end."""
    if len(uid) <= width:
        return uid
    keep = width - 3
    head = keep // 2
    return f"{uid[:head]}...{uid[-(keep - head):]}"


def _clip(text: str, width: int) -> str:
    text = safe_text(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 1] + "~"


def format_table(series: Sequence[Any]) -> str:
    """Format :class:`~emlesion.io.SeriesInfo` objects as an aligned text table."""
    header = ("ROLE", "MOD", "FILES", "MANUFACTURER", "DESCRIPTION", "SERIES UID",
              "STUDY DATE", "PATIENT")
    rows = [
        (
            s.role.value,
            _clip(s.modality or "?", 8),
            str(s.n_instances),
            _clip(s.manufacturer, 16),
            _clip(s.series_description, 44),
            _short_uid(safe_text(s.series_instance_uid)),
            _clip(s.identity.study_date or "-", 10),
            _clip(s.identity.patient_id or s.identity.patient_name or "-", 24),
        )
        for s in series
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    right = {2}  # numbers right-aligned

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def run(args: argparse.Namespace) -> int:
    """Run ``emlesion info``; returns the exit code."""
    from emlesion.io import discover

    series = discover(args.path, workers=args.workers)
    if args.json:
        print(json.dumps({"path": str(args.path), "series": [s.to_dict() for s in series]},
                         indent=2))
        return 0
    studies = {s.identity.study_instance_uid for s in series}
    print(f"{len(series)} series in {len(studies)} stud{'y' if len(studies) == 1 else 'ies'} "
          f"under {safe_text(args.path)}")
    print(format_table(series))
    return 0
