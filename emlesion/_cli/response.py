"""``emlesion response``: a longitudinal PET/CT study to tracked lesions and response calls.

::

    emlesion response BASELINE_DIR MONTH1_DIR MONTH3_DIR --out OUTDIR
                      [--labels baseline,month1,month3]
                      [--criteria percist,eortc,recist,lugano,lyric]
                      [--masks MASK|auto ...] [--method NAME]
                      [--allow-different-patients] [--no-residual-search]
                      [--nifti] [--treatment-date YYYY-MM-DD]
                      [--organs PATH|auto|none ...] [--organ-classes total|total_v1]
                      [--threads N]

One folder per timepoint, baseline first (or a single folder holding several studies,
grouped by StudyInstanceUID and ordered by date). Lesions are found automatically (as
``emlesion measure`` does) or taken from one user mask per timepoint (``auto`` = segment that
timepoint). ``--organs`` gives one organ map per timepoint (TotalSegmentator multilabel
NIfTI, per-organ folder or DICOM SEG; ``auto`` runs TotalSegmentator, ``none`` keeps the
classical rules). Writes ``OUTDIR/report.json`` (schema ``emlesion/schemas/report.schema.json``;
keys ``timepoints``, ``tracks``, ``assessments``), ``OUTDIR/lesions.csv`` (one row per
lesion per timepoint), ``OUTDIR/report.html`` (:func:`emlesion.report.write_html_report`) and
``OUTDIR/dicom/`` (DICOM SEG + TID 1500 SR per timepoint,
:func:`emlesion.report.write_dicom_outputs`) and, with ``--nifti``, ``OUTDIR/nifti/`` (one
label map per timepoint, :func:`emlesion.report.nifti.write_study_nifti`), all atomically;
progress on stderr; a summary table on stdout.
Errors (different patients, follow-up dated before baseline, ...): message on stderr, exit
code 1.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from emlesion._cli._common import (
    UsageError,
    criteria_type,
    labels_type,
    method_type,
    normalization_type,
    positive_int,
    safe_text,
)
from emlesion._cli._inputs import add_organ_options, organ_sources, pet_declaration

__all__ = ["add_parser", "print_summary", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``response`` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "response",
        help="track lesions across timepoints and assess response (PERCIST, EORTC, RECIST, "
             "Lugano)",
        description="Run the whole pipeline on each timepoint, track the lesions and assess "
                    "every follow-up against the baseline.",
    )
    p.add_argument("dirs", metavar="DIR", nargs="+",
                   help="one folder per timepoint, baseline first (or one folder holding "
                        "several studies)")
    p.add_argument("--out", "-o", metavar="OUTDIR", required=True,
                   help="output folder (report.json, lesions.csv, ...); never inside an input "
                        "nor a parent of one; must be new or empty unless --force")
    p.add_argument("--force", action="store_true",
                   help="replace an existing non-empty OUTDIR as a whole (no old file is kept)")
    p.add_argument("--labels", type=labels_type, metavar="A,B,C",
                   help="timepoint labels (default: the folder names when distinct)")
    p.add_argument("--criteria", type=criteria_type,
                   default=["percist", "eortc", "recist", "lugano", "lyric"], metavar="LIST",
                   help="criteria: percist, eortc, recist, lugano (= lugano_pet + lugano_ct), "
                        "lugano_pet, lugano_ct, lyric (default percist,eortc,recist,lugano,"
                        "lyric)")
    p.add_argument("--masks", nargs="+", metavar="MASK",
                   help="one lesion mask per timepoint (DICOM SEG, RTSTRUCT, NIfTI) or 'auto'")
    p.add_argument("--method", default="41%max", metavar="NAME", type=method_type,
                   help="segmentation method for automatic lesions (default 41%%max)")
    p.add_argument("--sul", default="sul-janmahasatian", metavar="NAME",
                   type=normalization_type(allow_none=True),
                   help="lean-body normalisation for SUL (default sul-janmahasatian; 'none' "
                        "to skip)")
    p.add_argument("--allow-different-patients", action="store_true",
                   help="accept timepoints whose PatientID differs")
    p.add_argument("--no-residual-search", action="store_true",
                   help="do not look again for residual uptake where a tracked lesion was lost")
    p.add_argument("--transform", choices=("rigid", "affine"), default="rigid",
                   help="CT registration transform for tracking (default rigid)")
    p.add_argument("--deidentify", action="store_true",
                   help="leave the patient identity out of report.json and report.html")
    p.add_argument("--no-html", action="store_true", help="do not write report.html")
    p.add_argument("--no-dicom", action="store_true",
                   help="do not write the DICOM SEG and TID 1500 SR files (OUTDIR/dicom/)")
    p.add_argument("--nifti", action="store_true",
                   help="also write OUTDIR/nifti/<timepoint>_lesions.nii.gz: one label map per "
                        "timepoint on its PET grid, track numbers as labels (T3 -> 3), with a "
                        "JSON sidecar naming them")
    p.add_argument("--treatment-date", metavar="YYYY-MM-DD",
                   help="start of treatment (e.g. the CAR-T infusion): report.html then gives "
                        "the days since treatment of every scan")
    add_organ_options(p, per_timepoint=True)
    p.add_argument("--threads", type=positive_int, metavar="N", default=None,
                   help="worker threads of the study pipeline (default: the usable cores; 1 = "
                        "the stages one after the other; the results are the same)")
    p.add_argument("--cts", nargs="+", metavar="CT",
                   help="one CT per timepoint (folder or NIfTI in HU; 'none' = the CT beside "
                        "the PET), e.g. with NIfTI PETs as DIR")
    p.add_argument("--pet-units", choices=("SUVbw", "BQML"), metavar="SUVbw|BQML",
                   help="quantity of NIfTI PETs given as DIR (required for .nii/.nii.gz)")
    p.add_argument("--pet-sidecars", nargs="+", metavar="JSON",
                   help="one JSON sidecar per NIfTI PET timepoint ('none' to skip): units, "
                        "weight_kg, injected_dose_mbq, injection_time, scan_time, height_m, sex")
    return p


def print_summary(study: Any, assessments: Any, stream: Any) -> None:
    """Short terminal summary: lesions per timepoint and the category per criterion."""
    crit_keys: list[str] = []
    calls: dict[tuple[str, str], str] = {}
    for a in assessments:
        if a.criterion.value not in crit_keys:
            crit_keys.append(a.criterion.value)
        calls[(a.timepoint, a.criterion.value)] = a.category.value
    head = f"{'timepoint':<12} {'date':<10} {'day':>4} {'lesions':>7} {'MTV mL':>7}  " + " ".join(
        f"{k:>10}" for k in crit_keys)
    print(head, file=stream)
    for tp in study.timepoints:
        mtv = sum(float(m.mtv_ml) for m in tp.measurements.rows)
        day = "-" if tp.days_since_baseline is None else str(tp.days_since_baseline)
        date = tp.date.isoformat() if tp.date else "-"
        cells = " ".join(f"{calls.get((tp.label, k), '-'):>10}" for k in crit_keys)
        print(f"{safe_text(tp.label)[:12]:<12} {date:<10} {day:>4} {len(tp.measurements):>7} "
              f"{mtv:>7.1f}  {cells}", file=stream)
    if study.tracking is not None:
        for track in study.tracking.tracks:
            states = ", ".join(f"{p.timepoint} {p}" for p in track.points)
            print(f"track {safe_text(track.id)}: {safe_text(states)}", file=stream)


def run(args: argparse.Namespace) -> int:
    """Run ``emlesion response``; returns the exit code."""
    from emlesion.report import StderrProgress, check_output_dir, publish_response_outputs
    from emlesion.study import load_study

    n = len(args.dirs)
    if n > 1 and args.labels is not None and len(args.labels) != n:
        raise UsageError(f"{len(args.labels)} label(s) in --labels for {n} folder(s): give "
                         "one label per folder")
    if args.masks and n > 1 and len(args.masks) != n:
        raise UsageError(f"{len(args.masks)} mask(s) in --masks for {n} folder(s): give one "
                         "mask (or 'auto') per folder")
    inputs = list(args.dirs) + [m for m in (args.masks or []) if m != "auto"]
    from emlesion.io.nifti_image import is_nifti_path

    organs = organ_sources(args.organs)
    cts = organ_sources(args.cts)
    sidecars = organ_sources(args.pet_sidecars) or [None] * len(args.dirs)
    if len(sidecars) != len(args.dirs):
        raise UsageError(f"{len(sidecars)} sidecar(s) in --pet-sidecars for {n} folder(s): "
                         "give one per timepoint ('none' for DICOM)")
    declarations = [pet_declaration(d, args.pet_units if is_nifti_path(d) else None, sc)
                     for d, sc in zip(args.dirs, sidecars)]
    inputs += [c for c in (cts or []) if c]
    inputs += [o for o in (organs or []) if o not in (None, "auto")]
    inputs += [sc for sc in sidecars if sc]
    out_dir = check_output_dir(args.out, inputs, force=args.force)
    if n == 1:
        source: Any = args.dirs[0]
    elif args.labels is not None:
        source = dict(zip(args.labels, args.dirs))
    else:
        source = list(args.dirs)
    labels = args.labels if n == 1 else None
    masks = None
    if args.masks:
        masks = [None if m == "auto" else Path(m) for m in args.masks]
    from emlesion.report._dates import parse_treatment_date

    treatment_date = parse_treatment_date(args.treatment_date)  # a bad date fails first
    progress = None if args.quiet else StderrProgress()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = load_study(
            source, labels=labels, masks=masks, method=args.method, sul=args.sul,
            allow_different_patients=args.allow_different_patients, transform=args.transform,
            residual_search=not args.no_residual_search, progress=progress,
            organs=organs, organ_classes=args.organ_classes, cts=cts,
            pet_declarations=declarations if any(declarations) else None,
            threads=args.threads)
        assessments = study.assess(args.criteria)
    with warnings.catch_warnings(record=True) as caught_report:
        warnings.simplefilter("always")
        paths, _ = publish_response_outputs(
            study, out_dir, force=args.force, assessments=assessments, html=not args.no_html,
            dicom=not args.no_dicom, deidentify=args.deidentify, progress=progress,
            nifti=args.nifti, treatment_date=treatment_date)
    caught = [*caught, *caught_report]
    if not args.quiet:
        for msg in dict.fromkeys(str(w.message) for w in caught):
            print(f"warning: {safe_text(msg)}", file=sys.stderr)
    print_summary(study, assessments, sys.stdout)
    shown = [p for k, p in paths.items() if not k.startswith(("dicom", "nifti"))]
    for path in shown:
        print(f"wrote {safe_text(path)}", file=sys.stdout)
    n_dicom = sum(1 for k in paths if k.startswith("dicom"))
    if n_dicom:
        print(f"wrote {n_dicom} DICOM file(s) in {safe_text(out_dir / 'dicom')}",
              file=sys.stdout)
    n_nifti = sum(1 for k in paths if k.startswith("nifti"))
    if n_nifti:
        print(f"wrote {n_nifti // 2} NIfTI label map(s) and their JSON sidecars in "
              f"{safe_text(out_dir / 'nifti')}", file=sys.stdout)
    return 0
