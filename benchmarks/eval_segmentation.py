"""Evaluation: automatic lesion volumes (MTV) of ``emlesion response`` against the generator truth,
on the committed sample study and on other generator seeds.

For every seed the three-timepoint study goes through :func:`emlesion.study.load_study` and
:func:`emlesion.report.report_dict` (the path of ``emlesion response``); each truth
lesion is matched to the report lesions whose mask overlaps its truth mask
(``truth_lesions.nii.gz``), and the table gives the reported MTV (sum over the matched labels,
with their count), the truth volume and the relative error.

A truth lesion whose SUVmax does not exceed the liver SUVmean of its timepoint (the month-3
retroperitoneal scar of the sample) is *metabolically resolved* (PERCIST complete metabolic
response: uptake at or below the liver and the blood pool); the expected report entry is then
"no lesion" (MTV 0), and a reported lesion there counts as a false positive.

Usage::

    python benchmarks/eval_segmentation.py [--seeds 2024 7 11 2025] [--work /tmp/emlesion-seeds]

Seed 2024 uses ``sample_scans/``; other seeds are generated (about 30 s each) into ``--work``
unless already there. Acceptance (issue 8): every metabolically active lesion within 15 %.

Results (2026-11-25, seeds 2024 7 11 2025 1 5 6 9 12 13 14 15; about 20 s per seed): every
baseline and month-1 retroperitoneal mass within -12.7 % to +1.4 %. The month-1 pelvic-wall
nodule (SUVmax 3.0-3.9, against the sigmoid colon and the iliac vessels; below blood-pool mean
/ 0.41) is delineated on the CT (:func:`emlesion.segment.delineate_on_ct`): within 15 % on 11 of
12 seeds (-14.7 % to +8.9 %; +8.9 % on the sample), +28.3 % on seed 12 (colon fragments
joined to the core). Before, its floor threshold gave +98 % to +394 %, and a ureter rule that
took the nodule's hot core for a ureter hid it on seeds 12 and 15. The month-3 colon false
positives at the resolved pelvic site (seeds 2025, 13 and 15: 1.9-28 mL) are dropped as bowel
uptake (low contrast, no soft-tissue core of 1 mL on the CT, gas under it). 71 of the 72
checks pass; the one failure is the seed-12 nodule.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from emlesion.report import report_dict  # noqa: E402
from emlesion.sample import generate_sample_study  # noqa: E402
from emlesion.study import Study, load_study  # noqa: E402

LABELS = ("baseline", "month1", "month3")
TOLERANCE = 0.15


def metabolically_active(truth_lesion: dict[str, Any], truth_tp: dict[str, Any]) -> bool:
    """True when a present truth lesion's SUVmax exceeds the liver SUVmean of its timepoint."""
    return bool(truth_lesion["present"]) and (
        float(truth_lesion["suv_max"]) > float(truth_tp["liver_reference"]["suv_mean"]))


def truth_mask(root: Path, timepoint: str) -> np.ndarray:
    """Truth labels of one timepoint as a ``(z, y, x)`` array (the NIfTI is stored x, y, z)."""
    img: Any = nib.load(root / timepoint / "truth_lesions.nii.gz")
    return np.asarray(img.get_fdata()).astype(int).transpose(2, 1, 0)


def volume_rows(study: Study, root: Path) -> list[dict[str, Any]]:
    """One row per truth lesion and timepoint: reported MTV (matched labels), truth, error."""
    truth = json.loads((root / "truth.json").read_text())
    report = report_dict(study, criteria=["percist"], provenance=False)
    rows: list[dict[str, Any]] = []
    for tp, tp_report in zip(study.timepoints, report["timepoints"]):
        t_tp = truth["timepoints"][tp.label]
        tm = truth_mask(root, tp.label)
        labels = np.asarray(tp.lesions.array)
        mtv = {les["label"]: float(les["mtv_ml"]) for les in tp_report["lesions"]}
        matched_all: set[int] = set()
        for t in t_tp["lesions"]:
            inside = tm == t["label"]
            matched = sorted(int(v) for v in np.unique(labels[inside]) if v > 0)
            matched_all.update(matched)
            reported = sum(mtv[m] for m in matched)
            active = metabolically_active(t, t_tp)
            expected = float(t["volume_ml"]) if active else 0.0
            err = (reported - expected) / expected if expected > 0 else None
            rows.append({"timepoint": tp.label, "lesion": t["name"], "active": active,
                         "truth_ml": float(t["volume_ml"]), "expected_ml": expected,
                         "reported_ml": reported, "n_labels": len(matched), "rel_error": err,
                         "ok": (abs(err) <= TOLERANCE) if err is not None else reported == 0.0})
        extra = [les for les in tp_report["lesions"] if les["label"] not in matched_all]
        for les in extra:
            rows.append({"timepoint": tp.label, "lesion": f"(unmatched) {les['name']}",
                         "active": False, "truth_ml": 0.0, "expected_ml": 0.0,
                         "reported_ml": float(les["mtv_ml"]), "n_labels": 1,
                         "rel_error": None, "ok": False})
    return rows


def study_root(seed: int, work: Path) -> Path:
    """``sample_scans`` for seed 2024, else a generated copy under ``work``."""
    if seed == 2024:
        return REPO / "sample_scans"
    root = work / f"seed{seed}"
    if not (root / "truth.json").exists():
        generate_sample_study(root, seed=seed)
    return root


def main(argv: list[str] | None = None) -> int:
    """Print the MTV table; exit 1 when a metabolically active lesion is off by > 15 %."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2024, 7, 11, 2025])
    ap.add_argument("--work", type=Path, default=Path("/tmp/emlesion-seeds"))
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    all_rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        root = study_root(seed, args.work)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = load_study({k: root / k for k in LABELS})
        rows = volume_rows(study, root)
        for r in rows:
            r["seed"] = seed
        all_rows.extend(rows)
        print(f"seed {seed}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if args.json:
        print(json.dumps(all_rows, indent=1))
    else:
        print(f"{'seed':>5} {'timepoint':9} {'lesion':34} {'truth mL':>9} {'expected':>9} "
              f"{'reported':>9} {'labels':>6} {'error':>8}  ok")
        for r in all_rows:
            err = f"{100 * r['rel_error']:+.1f} %" if r["rel_error"] is not None else "-"
            print(f"{r['seed']:>5} {r['timepoint']:9} {r['lesion'][:34]:34} {r['truth_ml']:9.2f} "
                  f"{r['expected_ml']:9.2f} {r['reported_ml']:9.2f} {r['n_labels']:6d} "
                  f"{err:>8}  {'yes' if r['ok'] else 'NO'}")
    return 0 if all(r["ok"] for r in all_rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
