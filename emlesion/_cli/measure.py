"""``emlesion measure``: lesion measurements of one PET/CT timepoint.

::

    emlesion measure PET_DIR [--ct CT_DIR | --no-ct] [--mask MASK | --method NAME]
                     [--json OUT] [--csv OUT] [--nifti OUT.nii.gz] [--organs PATH|auto]
    emlesion measure PET.nii.gz --pet-units SUVbw|BQML [--pet-sidecar JSON]
                     [--ct CT.nii.gz] ...

The lesions are found automatically (``--method``, default ``41%max``) or taken from a user
mask (DICOM SEG, RTSTRUCT or NIfTI). Without ``--ct`` the CT is looked for in ``PET_DIR``.
A NIfTI PET must declare its quantity (``--pet-units``; Bq/mL needs ``--pet-sidecar``); its CT
is taken only from ``--ct``. ``--organs`` supplies a TotalSegmentator organ map
(:func:`emlesion.io.organs.load_organ_map`) whose organs replace the classical ones.

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
from typing import Any

from emlesion._cli._common import method_type, normalization_type, safe_text
from emlesion._cli._inputs import add_nifti_pet_options, add_organ_options, pet_declaration

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``measure`` sub-command."""
    from emlesion.segment import Method

    p: argparse.ArgumentParser = subparsers.add_parser(
        "measure",
        help="find (or take) the lesions of one PET/CT timepoint and measure them",
        description="Measure the lesions of one PET(/CT) timepoint: SUVmax/mean/peak, SULpeak, "
                    "MTV, TLG, centroid, extents, region and side.",
    )
    p.add_argument("pet_dir", metavar="PET_DIR",
                   help="folder of the PET DICOM series, or a NIfTI PET (.nii/.nii.gz)")
    ct = p.add_mutually_exclusive_group()
    ct.add_argument("--ct", metavar="CT_DIR",
                    help="folder of the CT series or a NIfTI CT in HU (default: the CT found "
                         "in PET_DIR, if any)")
    ct.add_argument("--no-ct", action="store_true", help="do not use a CT even if present")
    les = p.add_mutually_exclusive_group()
    les.add_argument("--mask", metavar="MASK",
                     help="lesion mask (DICOM SEG, RTSTRUCT or NIfTI label map) instead of "
                          "automatic segmentation")
    les.add_argument("--method", metavar="NAME", default="41%max", type=method_type,
                     help="segmentation method: "
                          + ", ".join(m.value for m in Method).replace("%", "%%")
                          + " (default 41%%max)")
    p.add_argument("--sul", metavar="NAME", default="sul-janmahasatian",
                   type=normalization_type(allow_none=True),
                   help="lean-body normalisation for SULpeak (default sul-janmahasatian; "
                        "'none' to skip)")
    p.add_argument("--json", metavar="OUT", dest="json_out",
                   help="write the JSON result to OUT ('-' for stdout)")
    p.add_argument("--csv", metavar="OUT", dest="csv_out",
                   help="write one CSV row per lesion to OUT ('-' for stdout)")
    p.add_argument("--nifti", metavar="OUT.nii.gz", dest="nifti_out",
                   help="write the lesion label map (PET grid, the labels of the JSON/CSV) to "
                        "OUT.nii.gz and its JSON sidecar OUT.json")
    add_nifti_pet_options(p)
    add_organ_options(p, per_timepoint=False)
    return p


def _fmt(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def print_table(tp: Any, stream: Any) -> None:
    """Human table of the lesions of a timepoint."""
    q = tp.suv.units
    print(f"{safe_text(tp.pet.identity.label)}: {len(tp.measurements)} lesion(s), "
          f"method {tp.method}, "
          f"{q}", file=stream)
    if tp.liver is not None:
        print(f"liver reference: {q}mean {tp.liver.suv_mean:.2f} (SD {tp.liver.suv_sd:.2f}), "
              f"SULmean {_fmt(tp.liver.sul_mean)}", file=stream)
    head = (f"{'label':>5}  {'name':<28} {'region':<16} {'side':<8} {'SUVmax':>7} "
            f"{'SUVpeak':>7} {'SULpeak':>7} {'MTV mL':>8} {'TLG':>8}")
    print(head, file=stream)
    for les in tp.lesion_dicts():
        print(f"{les['label']:>5}  {safe_text(les['name'])[:28]:<28} {les['region'] or '-':<16} "
              f"{les['side'] or '-':<8} {_fmt(les['suv_max']):>7} {_fmt(les['suv_peak']):>7} "
              f"{_fmt(les['sul_peak']):>7} {_fmt(les['mtv_ml'], 1):>8} {_fmt(les['tlg'], 1):>8}",
              file=stream)


def run(args: argparse.Namespace) -> int:
    """Run ``emlesion measure``; returns the exit code."""
    from emlesion.report import (
        MEASURE_CSV_COLUMNS,
        StderrProgress,
        check_output_file,
        csv_text,
        measure_dict,
        measure_rows,
        publish_measure_outputs,
    )
    from emlesion.study import load_timepoint

    inputs = [args.pet_dir] + ([args.ct] if args.ct else []) + ([args.mask] if args.mask else [])
    inputs += [p for p in (args.pet_sidecar, args.organs) if p not in (None, "auto")]
    declaration = pet_declaration(args.pet_dir, args.pet_units, args.pet_sidecar)
    # every output checked before any work: not an input, not inside one, writable
    json_path = (check_output_file(args.json_out, inputs)
                 if args.json_out not in (None, "-") else None)
    csv_path = (check_output_file(args.csv_out, inputs)
                if args.csv_out not in (None, "-") else None)
    if json_path is not None and json_path == csv_path:
        from emlesion.errors import OutputError, format_message

        raise OutputError(format_message(
            f"--json and --csv name the same file {json_path}",
            fix="give two different file names"))
    nifti_path = (check_output_file(args.nifti_out, inputs)
                  if args.nifti_out is not None else None)
    if nifti_path is not None:
        from emlesion.report.nifti import sidecar_path

        sidecar_path(nifti_path)  # refuse a name that is not .nii(.gz) before the work
    progress = None if args.quiet else StderrProgress()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tp = load_timepoint(args.pet_dir, "timepoint", ct=args.ct, find_ct=not args.no_ct,
                            mask=args.mask, method=args.method, sul=args.sul, progress=progress,
                            pet_declaration=declaration, organs=args.organs,
                            organ_classes=args.organ_classes)
        data = measure_dict(tp)
    if not args.quiet:
        for msg in dict.fromkeys(str(w.message) for w in caught):
            print(f"warning: {safe_text(msg)}", file=sys.stderr)
    # the JSON, the CSV and the NIfTI with its sidecar are published together, or none
    publish_measure_outputs(tp, json_path=json_path, csv_path=csv_path, data=data,
                            nifti_path=nifti_path)
    if args.json_out == "-":
        import json

        print(json.dumps(data, indent=2, allow_nan=False))
    if args.csv_out == "-":
        sys.stdout.write(csv_text(measure_rows(tp), MEASURE_CSV_COLUMNS))
    if args.json_out != "-" and args.csv_out != "-":
        print_table(tp, sys.stdout)
    return 0
