"""``emlesion sample OUTDIR [--seed N]``: generate the synthetic three-timepoint PET/CT study."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from emlesion.errors import format_message

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``sample`` sub-command."""
    from emlesion.sample.schedule import TIMEPOINTS

    p: argparse.ArgumentParser = subparsers.add_parser(
        "sample",
        help="generate the synthetic CAR-T FDG PET/CT sample study (3 timepoints, with truth)",
        description=(
            "Generate a deterministic synthetic FDG PET/CT study (baseline, month 1, month 3) "
            "as DICOM with truth.json and NIfTI truth masks. The bundled sample_scans/ is "
            "'emlesion sample sample_scans --seed 2024'."
        ),
    )
    p.add_argument("outdir", help="output folder (must not exist or be empty unless --force)")
    p.add_argument(
        "--seed", type=int, default=2024, help="study seed (default 2024, the bundled sample)"
    )
    p.add_argument(
        "--timepoint",
        action="append",
        choices=TIMEPOINTS,
        dest="timepoints",
        help="generate only this timepoint (repeatable; default all three)",
    )
    p.add_argument("--force", action="store_true", help="replace a non-empty OUTDIR")
    p.add_argument(
        "--uncompressed",
        action="store_true",
        help="write Explicit VR Little Endian instead of RLE Lossless",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``emlesion sample``; returns the exit code."""
    from emlesion.sample import TIMEPOINTS, generate_sample_study

    try:
        study = generate_sample_study(
            args.outdir,
            seed=args.seed,
            timepoints=tuple(args.timepoints or TIMEPOINTS),
            force=args.force,
            compress=not args.uncompressed,
        )
    except FileExistsError as exc:
        print(f"emlesion sample: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            "emlesion sample: error: " + format_message(str(exc), fix="check the output path"),
            file=sys.stderr,
        )
        return 1
    print(f"wrote {study.path} ({study.size_bytes / 1e6:.1f} MB, seed {study.seed})")
    for name, seconds in study.seconds_per_timepoint.items():
        tp = study.truth["timepoints"][name]
        print(f"  {name:9s} {tp['study_date']}  {tp['vendor_convention']:22s} {seconds:5.1f} s")
    for name, resp in study.truth.get("expected_response", {}).items():
        print(f"  expected PERCIST at {name}: {resp['percist']['category']}")
    return 0
