"""``emlesion measure``: lesion measurements of one PET/CT timepoint.

::

    emlesion measure PET_DIR [--ct CT_DIR | --no-ct] [--mask MASK | --method NAME]
                     [--json OUT] [--csv OUT]

The lesions are found automatically (``--method``, default ``41%max``) or taken from a user
mask (DICOM SEG, RTSTRUCT or NIfTI). Without ``--ct`` the CT is looked for in ``PET_DIR``.

``--json OUT`` writes the public JSON contract (``-`` = stdout; schema
``emlesion/schemas/measure.schema.json``, documented in ``emlesion/schemas/README.md``)::

    {"format": "emlesion-measure", "format_version": 1, "emlesion_version": "...",
     "method": "41%max", "lesion_source": "segmentation", "suv_quantity": "SUVbw", ...,
     "liver": {"suv_mean": ..., "sul_mean": ..., ...} | null,
     "lesions": [{"label": 1, "name": "...", "region": "retroperitoneal", "side": "right",
                  "suv_max": ..., "suv_mean": ..., "suv_peak": ..., "sul_peak": ...,
                  "mtv_ml": ..., "tlg": ..., "centroid_mm": [x, y, z],
                  "extent_cm": [x, y, z], ...}],
     "definitions": {...}, "provenance": [...]}

``--csv OUT`` writes one row per lesion. Without ``--json -`` a table is printed on stdout;
progress goes to stderr. Errors: message on stderr, exit code 1.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "measure_dict", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``measure`` sub-command."""
    from emlesion.segment import Method

    p: argparse.ArgumentParser = subparsers.add_parser(
        "measure",
        help="find (or take) the lesions of one PET/CT timepoint and measure them",
        description="Measure the lesions of one PET(/CT) timepoint: SUVmax/mean/peak, SULpeak, "
                    "MTV, TLG, centroid, extents, region and side.",
    )
    p.add_argument("pet_dir", metavar="PET_DIR", help="folder of the PET DICOM series")
    ct = p.add_mutually_exclusive_group()
    ct.add_argument("--ct", metavar="CT_DIR",
                    help="folder of the CT series (default: the CT found in PET_DIR, if any)")
    ct.add_argument("--no-ct", action="store_true", help="do not use a CT even if present")
    les = p.add_mutually_exclusive_group()
    les.add_argument("--mask", metavar="MASK",
                     help="lesion mask (DICOM SEG, RTSTRUCT or NIfTI label map) instead of "
                          "automatic segmentation")
    les.add_argument("--method", metavar="NAME", default="41%max",
                     help="segmentation method: " + ", ".join(m.value for m in Method)
                          + " (default 41%%max)")
    p.add_argument("--sul", metavar="NAME", default="sul-janmahasatian",
                   help="lean-body normalisation for SULpeak (default sul-janmahasatian; "
                        "'none' to skip)")
    p.add_argument("--json", metavar="OUT", dest="json_out",
                   help="write the JSON result to OUT ('-' for stdout)")
    p.add_argument("--csv", metavar="OUT", dest="csv_out",
                   help="write one CSV row per lesion to OUT ('-' for stdout)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    return p


def measure_dict(tp: Any) -> dict[str, Any]:
    """The public ``emlesion measure`` JSON object of a :class:`~emlesion.study.Timepoint`."""
    from emlesion import __version__
    from emlesion.study import MEASURE_FORMAT, REPORT_FORMAT_VERSION

    body = tp.to_dict(provenance=True)
    for key in ("label", "days_since_baseline"):
        body.pop(key, None)
    prov = body.pop("provenance")
    return {
        "format": MEASURE_FORMAT,
        "format_version": REPORT_FORMAT_VERSION,
        "emlesion_version": __version__,
        "source": tp.source,
        **body,
        "definitions": dict(tp.measurements.definitions),
        "provenance": prov,
    }


def _lesion_csv_columns() -> list[str]:
    from emlesion.study import LESION_CSV_COLUMNS

    return ["date", *LESION_CSV_COLUMNS]


def _csv_rows(tp: Any) -> list[dict[str, Any]]:
    """One row per lesion: the ``date`` and lesion columns of :meth:`LesionRecord.row`."""
    cols = _lesion_csv_columns()
    return [{k: row[k] for k in cols} for row in (r.row() for r in tp.records())]


def _fmt(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def print_table(tp: Any, stream: Any) -> None:
    """Human table of the lesions of a timepoint."""
    q = tp.suv.units
    print(f"{tp.pet.identity.label}: {len(tp.measurements)} lesion(s), method {tp.method}, "
          f"{q}", file=stream)
    if tp.liver is not None:
        print(f"liver reference: {q}mean {tp.liver.suv_mean:.2f} (SD {tp.liver.suv_sd:.2f}), "
              f"SULmean {_fmt(tp.liver.sul_mean)}", file=stream)
    head = (f"{'label':>5}  {'name':<28} {'region':<16} {'side':<8} {'SUVmax':>7} "
            f"{'SUVpeak':>7} {'SULpeak':>7} {'MTV mL':>8} {'TLG':>8}")
    print(head, file=stream)
    for les in tp.lesion_dicts():
        print(f"{les['label']:>5}  {les['name'][:28]:<28} {les['region'] or '-':<16} "
              f"{les['side'] or '-':<8} {_fmt(les['suv_max']):>7} {_fmt(les['suv_peak']):>7} "
              f"{_fmt(les['sul_peak']):>7} {_fmt(les['mtv_ml'], 1):>8} {_fmt(les['tlg'], 1):>8}",
              file=stream)


def run(args: argparse.Namespace) -> int:
    """Run ``emlesion measure``; returns the exit code."""
    from emlesion.study import (
        StderrProgress,
        check_output_location,
        load_timepoint,
        write_csv_atomic,
        write_json_atomic,
    )

    inputs = [args.pet_dir] + ([args.ct] if args.ct else []) + ([args.mask] if args.mask else [])
    for out in (args.json_out, args.csv_out):
        if out and out != "-":
            check_output_location(Path(out).resolve().parent, inputs[:2])
    progress = None if args.quiet else StderrProgress()
    sul = None if str(args.sul).lower() == "none" else args.sul
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tp = load_timepoint(args.pet_dir, "timepoint", ct=args.ct, find_ct=not args.no_ct,
                            mask=args.mask, method=args.method, sul=sul, progress=progress)
        data = measure_dict(tp)
    if not args.quiet:
        for msg in dict.fromkeys(str(w.message) for w in caught):
            print(f"warning: {msg}", file=sys.stderr)
    if args.json_out == "-":
        import json

        print(json.dumps(data, indent=2, allow_nan=False))
    elif args.json_out:
        write_json_atomic(args.json_out, data)
    if args.csv_out:
        columns = _lesion_csv_columns()
        if args.csv_out == "-":
            import csv

            w = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
            w.writeheader()
            for row in _csv_rows(tp):
                w.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
        else:
            write_csv_atomic(args.csv_out, _csv_rows(tp), columns)
    if args.json_out != "-" and args.csv_out != "-":
        print_table(tp, sys.stdout)
    return 0
