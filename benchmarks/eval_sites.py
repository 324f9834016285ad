"""Evaluation: site readouts (CT diameters, states, Deauville) and the response categories of
``emlesion response`` against the generator truth, on the committed sample and other seeds.

For every seed the three-timepoint study goes through :func:`emlesion.study.load_study`
(sites read at every timepoint, :attr:`~emlesion.study.Study.sites`). Each truth lesion takes
the track of the baseline lesion that overlaps its truth mask (``truth_lesions.nii.gz``) the
most, as ``eval_segmentation.py`` matches lesions; tracks matched to no truth lesion are listed.

* **CT diameters**: the site readout's ``ct.ld_mm``/``sa_mm`` minus the truth ``ct.ld_mm``/
  ``sa_mm`` (CT truth mask, edge convention), where both the truth and the readout have a mass;
  ``ct.found`` against the truth (truth LD 0 = no mass). ``obsLD`` is the LD the CT criteria
  were given (:meth:`Study.observations`; ``res`` = resolved, 0 mm).
* **RECIST 1.1 and Lugano CT**: the truth categories are the same engines
  (:func:`emlesion.response.assess_all`) on observations built from the truth diameters: one
  :class:`~emlesion.response.LesionObservation` per truth lesion (track id = its name, region
  from the truth, not a lymph node as in the pipeline; ``resolved`` when the truth LD is 0),
  ``has_ct``, 4 mm slices. PERCIST is compared with the generator's ``expected_response``.
* **PET criteria**: PERCIST, EORTC and Lugano PET of this checkout against another checkout
  (``--baseline-code``, run in a subprocess with ``PYTHONPATH``). Site states are checked
  against the truth: a present lesion at Deauville 4-5 is ``present``/``new``/``residual
  uptake``, at 1-3 also ``metabolically resolved``; an absent one is ``metabolically
  resolved`` whatever its footprint's score. Deauville against the truth ``site.deauville``.

Usage::

    python benchmarks/eval_sites.py [--seeds 2024 7 ...] [--work /tmp/emlesion-seeds]
        [--baseline-code DIR] [--json OUT] | --replay OUT

Seed 2024 uses ``sample_scans/``; other seeds are generated (30-150 s each) into ``--work``
unless already there. Exit 1 when a RECIST, Lugano CT or PERCIST category differs from the
truth or a PET category changed against ``--baseline-code``.

Results (2026-12-02, main at 8c2bc82; seeds 2024 7 11 2025 1 5 6 9 12 13 14 15; 30-80 s per
seed per pipeline)::

    git archive b2e8341 | tar -x -C /tmp/emlesion-base     # the code before the site readouts
    python benchmarks/eval_sites.py --baseline-code /tmp/emlesion-base --json /tmp/sites.json

Every truth lesion is matched (T1 retroperitoneal, T2 pelvic); no other track. CT diameter
error, reported - truth, mm (12 seeds; month 3 pelvic: the lesion is gone on every seed)::

    site             timepoint  CT found   LD mean  |mean|  max|e|   SA mean  |mean|  max|e|
    retroperitoneal  baseline    12/12      +0.14    0.96    1.98     -1.31    1.31    2.32
    retroperitoneal  month1      12/12      +0.88    1.72    3.95     -1.12    1.31    3.31
    retroperitoneal  month3      12/12      -1.80    1.80    4.69     -0.13    0.81    3.66
    pelvic           baseline    12/12      -0.55    1.47    4.00     -0.54    1.28    2.15
    pelvic           month1      12/12      -0.49    2.17    5.65     +0.63    2.32    4.82
    pelvic           month3      11/12        -       -       -         -       -       -

The largest LD error is the seed-12 month-1 pelvic nodule (29.7 vs 24.1 mm, the colon
fragments of its MTV in ``eval_segmentation.py``); the month-3 retroperitoneal scar is never
over-measured (0.0 to -4.7 mm, 13.4 vs 18.1 mm on seed 6). The one CT "found" disagreement:
seed 13 month 3, a 22.8 x 16.5 mm mass read at the resolved pelvic site (truth: nothing; the
colon there). It is handed to RECIST/Lugano as a metabolically resolved lesion with those
diameters (month-3 sum 39 vs 17 mm, SPD 592 vs 246 mm²; the call stays PR).

Categories at month 1 and month 3 (24 follow-ups per criterion)::

    criterion   agree with truth   old code (b2e8341)   changed vs old code
    RECIST      21/24              9/24                 12 (month 3 CR -> PR on all 12 seeds)
    Lugano CT   19/24              6/24                 15 (month 3 CR -> PR x 12; month 1 x 3)
    PERCIST     24/24              24/24                 0
    EORTC       -                  -                     0
    Lugano PET  -                  -                     0

The old code had no reading of the month-3 scar (not segmented on PET: the track was resolved,
0 mm: RECIST and Lugano CR); the CT readout measures it (truth 16.5-19.0 mm: PR). The
disagreements are all at month 1, where the truth sits near the cut-offs (RECIST -31.6 to
-34.5 % against PR at -30 %; Lugano SPD -47.4 to -50.2 % against PR at -50 %) and diameter
errors of up to 5.7 mm move the change by -6.6 to +11.7 points (sum of LD mm / SPD mm²,
reported vs truth)::

    seed  criterion  reported                           truth
    2025  RECIST     SD  88.7 -> 66.2 mm (-25.4 %)      PR  92.7 -> 62.6 mm (-32.5 %)
    12    RECIST     SD  90.4 -> 68.6 mm (-24.2 %)      PR  92.4 -> 61.8 mm (-33.1 %)
    15    RECIST     SD  86.8 -> 63.8 mm (-26.6 %)      PR  90.7 -> 60.6 mm (-33.2 %)
    7     Lugano CT  PR  2640 -> 1180 mm² (-55.3 %)     SD  2756 -> 1412 mm² (-48.7 %)
    6     Lugano CT  PR  2624 -> 1184 mm² (-54.9 %)     SD  2745 -> 1385 mm² (-49.5 %)
    9     Lugano CT  PR  2788 -> 1296 mm² (-53.5 %)     SD  2790 -> 1421 mm² (-49.1 %)
    14    Lugano CT  PR  2760 -> 1364 mm² (-50.6 %)     SD  2810 -> 1478 mm² (-47.4 %)
    15    Lugano CT  SD  2572 -> 1584 mm² (-38.4 %)     PR  2758 -> 1374 mm² (-50.2 %)

The old code gave the same three RECIST SDs. The baseline SPD is 3.4 % below the truth on
average (-8.3 to +1.3 %; short axes -1.3 mm on the retroperitoneal mass).

Deauville equals the truth on 70 of 72 sites; the site state is as expected on 72 of 72. The
two Deauville differences are the month-3 resolved pelvic footprint at the liver level: seed 11
SUVmax 3.056 (truth 3.055) against a liver SUVmax of 3.200 (truth VOI 3.043), Deauville 3 vs
4; seed 13 SUVmax 2.926 against 2.944 (truth 2.916), 3 vs 4. With the code before f2c9de4 the
footprints of seeds 9 and 15 (SUVmax 3.03 / 3.24, Deauville 4, no CT mass) were read as
residual uptake and turned PERCIST, EORTC and Lugano PET from CMR into PMR at month 3 (6
changes, PERCIST 22/24 against the truth); since f2c9de4 they are metabolically resolved and
no PET category changes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from emlesion.response import (  # noqa: E402
    Assessment,
    LesionObservation,
    TimepointObservation,
    assess_all,
)
from emlesion.sample import generate_sample_study  # noqa: E402
from emlesion.study import Study, load_study  # noqa: E402

LABELS = ("baseline", "month1", "month3")
FOLLOWUPS = LABELS[1:]
SEEDS = (2024, 7, 11, 2025, 1, 5, 6, 9, 12, 13, 14, 15)
CT_CRITERIA = ("recist", "lugano_ct")
PET_CRITERIA = ("percist", "eortc", "lugano_pet")
ALL_CRITERIA = ("percist", "eortc", "recist", "lugano_pet", "lugano_ct")
#: Slice thickness of the generated CT (the truth observations use it for RECIST).
CT_SLICE_MM = 4.0


def expected_states(truth_present: bool, truth_deauville: int | None) -> tuple[str, ...]:
    """Site states consistent with the truth. A present lesion whose site is Deauville 4-5 is
    disease on PET (segmented, or residual uptake); at Deauville 1-3 it may be segmented or
    read as metabolically resolved. An absent lesion is metabolically resolved whatever the
    score of its footprint (the generator fills it with normal tissue: colon, vessels)."""
    if not truth_present:
        return ("metabolically resolved",)
    if truth_deauville is not None and int(truth_deauville) >= 4:
        return ("present", "new", "residual uptake")
    return ("present", "new", "metabolically resolved")


# The same study through another checkout of emlesion (``--baseline-code``): categories of
# every criterion at every follow-up, printed as one JSON line after the marker.
BASELINE_MARKER = "@@EVAL_SITES_JSON@@"
BASELINE_SCRIPT = r"""
import json, sys, time, warnings
import emlesion
from emlesion.study import load_study
req = json.loads(sys.argv[1])
out = {"emlesion_file": emlesion.__file__, "seeds": {}}
for seed, root in req["roots"]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = load_study({k: root + "/" + k for k in req["labels"]})
        found = study.assess(req["criteria"])
    out["seeds"][str(seed)] = [
        {"timepoint": a.timepoint, "criterion": a.criterion.value,
         "category": a.category.value, "rule": a.rule,
         "numbers": {k: v for k, v in a.numbers.items()
                     if v is None or isinstance(v, (bool, int, float, str))}}
        for a in found]
    print(f"baseline code, seed {seed}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
print(req["marker"] + json.dumps(out))
"""


# --------------------------------------------------------------------------- data
def truth_mask(root: Path, timepoint: str) -> np.ndarray:
    """Truth labels of one timepoint as a ``(z, y, x)`` array (the NIfTI is stored x, y, z)."""
    img: Any = nib.load(root / timepoint / "truth_lesions.nii.gz")
    labels: np.ndarray = np.asarray(img.get_fdata()).astype(int).transpose(2, 1, 0)
    return labels


def study_root(seed: int, work: Path) -> Path:
    """``sample_scans`` for seed 2024, else a generated copy under ``work``."""
    if seed == 2024:
        return REPO / "sample_scans"
    root = work / f"seed{seed}"
    if not (root / "truth.json").exists():
        generate_sample_study(root, seed=seed)
    return root


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _scalars(numbers: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in numbers.items()
            if v is None or isinstance(v, (bool, int, float, str))}


def category_of(assessments: Iterable[Assessment]) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(timepoint, criterion): {category, rule, numbers}}`` (scalar numbers only)."""
    return {(a.timepoint, a.criterion.value): {"category": a.category.value, "rule": a.rule,
                                               "numbers": _scalars(a.numbers)}
            for a in assessments}


# --------------------------------------------------------------------------- matching
def match_tracks(study: Study, root: Path,
                 truth: Mapping[str, Any]) -> tuple[dict[str, str | None], list[str]]:
    """Track of every truth lesion, and the tracks matched to none.

    A truth lesion present at baseline takes the track of the baseline lesion with the
    largest overlap with its truth mask; a lesion first present at a follow-up, the track of
    that timepoint's lesion. The other tracks are returned as unmatched (false positives:
    they enter RECIST and Lugano as targets or new lesions).
    """
    matches: dict[str, str | None] = {}
    for label in LABELS:
        tp = study.timepoint(label)
        tm = truth_mask(root, label)
        labels = np.asarray(tp.lesions.array)
        for t in truth["timepoints"][label]["lesions"]:
            if t["name"] in matches or not t["present"]:
                continue
            inside = labels[tm == int(t["label"])]
            counts: dict[str, int] = {}
            for lab, n in zip(*np.unique(inside[inside > 0], return_counts=True)):
                tid = study.track_id_of(label, int(lab))
                if tid is not None:
                    counts[tid] = counts.get(tid, 0) + int(n)
            taken = {v for v in matches.values() if v is not None}
            free = {k: v for k, v in counts.items() if k not in taken}
            matches[t["name"]] = max(free, key=lambda k: free[k]) if free else None
    for t in truth["timepoints"][LABELS[0]]["lesions"]:
        matches.setdefault(t["name"], None)
    matched = {v for v in matches.values() if v is not None}
    unmatched = [tid for tid in study.sites if tid not in matched]
    return matches, unmatched


# --------------------------------------------------------------------------- rows
def site_rows(study: Study, truth: Mapping[str, Any], matches: Mapping[str, str | None],
              unmatched: Sequence[str]) -> list[dict[str, Any]]:
    """One row per truth lesion (and unmatched track) and timepoint: site readout vs truth."""
    obs = {o.label: o for o in study.observations()}
    rows: list[dict[str, Any]] = []
    for label in LABELS:
        t_tp = truth["timepoints"][label]
        tp = study.timepoint(label)
        refs = {"truth_liver_suv_max": _f(t_tp["liver_reference"].get("suv_max")),
                "liver_suv_max": _f(tp.liver.suv_max) if tp.liver is not None else None,
                "truth_blood_pool_suv_max": _f(t_tp["blood_pool_reference"].get("suv_max")),
                "blood_pool_suv_max": (_f(tp.blood_pool.suv_max)
                                       if tp.blood_pool is not None else None)}
        for t in t_tp["lesions"]:
            tid = matches.get(t["name"])
            reading = study.site(tid, label) if tid is not None else None
            t_ct, t_site = t.get("ct") or {}, t.get("site") or {}
            t_ld, t_sa = float(t_ct.get("ld_mm", 0.0)), float(t_ct.get("sa_mm", 0.0))
            ct = reading.ct if reading is not None else None
            pet = reading.pet if reading is not None else None
            o = obs[label].lesion(tid) if tid is not None else None
            found = ct.found if ct is not None else None
            both = found is True and t_ld > 0
            expected = expected_states(bool(t["present"]), t_site.get("deauville"))
            rows.append({
                "timepoint": label, "lesion": t["name"], "region": t["region"], "track": tid,
                "state": reading.state.value if reading is not None else None,
                "expected_states": list(expected),
                "state_ok": reading is not None and reading.state.value in expected,
                "reliable": reading.reliable if reading is not None else None,
                "truth_present": bool(t["present"]), "truth_site_state": t_site.get("state"),
                "truth_suv_max": _f(t_site.get("suv_max")),
                "suv_max": _f(pet.suv_max) if pet is not None else None,
                "truth_deauville": t_site.get("deauville"),
                "deauville": reading.deauville if reading is not None else None,
                **refs,
                "truth_ct_found": t_ld > 0, "ct_found": found,
                "truth_ld_mm": t_ld, "ld_mm": _f(ct.ld_mm) if ct is not None else None,
                "truth_sa_mm": t_sa, "sa_mm": _f(ct.sa_mm) if ct is not None else None,
                "ld_error_mm": float(ct.ld_mm) - t_ld if both and ct is not None else None,
                "sa_error_mm": float(ct.sa_mm) - t_sa if both and ct is not None else None,
                "ct_fragments": ct.n_fragments if ct is not None else None,
                "ct_reason": ct.reason if ct is not None else None,
                # what RECIST / Lugano CT were given for this track
                "obs_ld_mm": o.ld_mm if o is not None else None,
                "obs_sa_mm": o.sa_mm if o is not None else None,
                "obs_resolved": o.resolved if o is not None else None,
                "obs_metabolically_resolved": o.metabolically_resolved if o is not None else None,
            })
        for tid in unmatched:
            reading = study.site(tid, label)
            if reading is None:
                continue
            o = obs[label].lesion(tid)
            ct, pet = reading.ct, reading.pet
            rows.append({
                "timepoint": label, "lesion": f"(unmatched {tid})", "region": None,
                "track": tid, "state": reading.state.value, "reliable": reading.reliable,
                "state_ok": False, "truth_present": False,
                "suv_max": _f(pet.suv_max) if pet else None, **refs,
                "deauville": reading.deauville, "ct_found": ct.found if ct else None,
                "ld_mm": _f(ct.ld_mm) if ct else None, "sa_mm": _f(ct.sa_mm) if ct else None,
                "obs_ld_mm": o.ld_mm if o is not None else None,
                "obs_sa_mm": o.sa_mm if o is not None else None,
                "obs_resolved": o.resolved if o is not None else None,
            })
    return rows


def truth_observations(truth: Mapping[str, Any]) -> list[TimepointObservation]:
    """The truth CT diameters as response inputs: one lesion per truth lesion (track id =
    name) from its first presence; ``resolved`` when its CT truth LD is 0."""
    out: list[TimepointObservation] = []
    seen: set[str] = set()
    for label in LABELS:
        t_tp = truth["timepoints"][label]
        lesions: list[LesionObservation] = []
        for t in t_tp["lesions"]:
            ld = float((t.get("ct") or {}).get("ld_mm", 0.0))
            sa = float((t.get("ct") or {}).get("sa_mm", 0.0))
            if ld <= 0 and t["name"] not in seen:
                continue  # not yet there
            seen.add(t["name"])
            common: dict[str, Any] = {"track_id": t["name"], "label": t["name"],
                                      "region": t["region"]}
            lesions.append(LesionObservation(**common, resolved=True) if ld <= 0 else
                           LesionObservation(**common, ld_mm=ld, sa_mm=sa))
        out.append(TimepointObservation(
            label=label, date=dt.date.fromisoformat(t_tp["study_date"]),
            lesions=tuple(lesions), has_pet=False, has_ct=True,
            ct_slice_thickness_mm=CT_SLICE_MM))
    return out


def _ct_numbers(criterion: str, numbers: Mapping[str, Any]) -> dict[str, Any]:
    keys = (("baseline_sum_mm", "followup_sum_mm", "nadir_sum_mm", "change_from_baseline_pct")
            if criterion == "recist" else
            ("baseline_spd_mm2", "followup_spd_mm2", "spd_change_pct"))
    return {k: numbers.get(k) for k in keys}


def category_rows(new: Mapping[tuple[str, str], dict[str, Any]],
                  truth_cats: Mapping[tuple[str, str], dict[str, Any]],
                  old: Mapping[tuple[str, str], dict[str, Any]] | None) -> list[dict[str, Any]]:
    """One row per follow-up and criterion: new pipeline, truth (CT criteria from the truth
    diameters; PERCIST from the generator's ``expected_response``), old code."""
    rows: list[dict[str, Any]] = []
    for label in FOLLOWUPS:
        for crit in ALL_CRITERIA:
            n = new[(label, crit)]
            row: dict[str, Any] = {"timepoint": label, "criterion": crit,
                                   "category": n["category"], "rule": n["rule"]}
            if crit in CT_CRITERIA:
                t = truth_cats[(label, crit)]
                row.update({"truth_category": t["category"], "truth_rule": t["rule"],
                            "agree": n["category"] == t["category"],
                            "numbers": _ct_numbers(crit, n["numbers"]),
                            "truth_numbers": _ct_numbers(crit, t["numbers"])})
            else:
                row["numbers"] = n["numbers"]
                tc = truth_cats.get((label, crit))
                if tc is not None:
                    row.update({"truth_category": tc["category"], "truth_rule": tc["rule"],
                                "agree": n["category"] == tc["category"]})
            if old is not None:
                o = old.get((label, crit))
                row.update({"old_category": o["category"] if o else None,
                            "old_rule": o["rule"] if o else None,
                            "changed": (o is None) or o["category"] != n["category"]})
                if crit in CT_CRITERIA and o is not None:
                    row["old_numbers"] = _ct_numbers(crit, o["numbers"])
                if "truth_category" in row and o is not None:
                    row["old_agree"] = o["category"] == row["truth_category"]
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- old code
def run_baseline_code(code: Path, roots: Sequence[tuple[int, Path]]
                      ) -> dict[int, dict[tuple[str, str], dict[str, Any]]]:
    """Categories of every criterion from another checkout, one subprocess for all seeds."""
    req = {"roots": [[seed, str(root)] for seed, root in roots], "labels": list(LABELS),
           "criteria": list(ALL_CRITERIA), "marker": BASELINE_MARKER}
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.run([sys.executable, "-c", BASELINE_SCRIPT, json.dumps(req)],
                          cwd=str(code), env=env, stdout=subprocess.PIPE, text=True,
                          check=True)
    line = next(s for s in proc.stdout.splitlines() if s.startswith(BASELINE_MARKER))
    out = json.loads(line[len(BASELINE_MARKER):])
    where = Path(out["emlesion_file"]).resolve()
    if not where.is_relative_to(code.resolve()):
        raise RuntimeError(f"--baseline-code {code}: the subprocess imported {where}")
    return {int(seed): {(a["timepoint"], a["criterion"]): a for a in found}
            for seed, found in out["seeds"].items()}


# --------------------------------------------------------------------------- summary
def _stats(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "mean_abs": None, "max_abs": None}
    arr = np.asarray(values, float)
    return {"n": len(values), "mean": float(arr.mean()), "mean_abs": float(np.abs(arr).mean()),
            "max_abs": float(np.abs(arr).max()), "min": float(arr.min()),
            "max": float(arr.max())}


def summarise(sites: Sequence[dict[str, Any]],
              cats: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """CT errors, found agreement, Deauville and state agreement per site and timepoint;
    category agreement counts."""
    truth_rows = [r for r in sites if r["region"] is not None]
    per_site: list[dict[str, Any]] = []
    for region in sorted({r["region"] for r in truth_rows}, reverse=True):
        for label in LABELS:
            rs = [r for r in truth_rows if r["region"] == region and r["timepoint"] == label]
            ld = [r["ld_error_mm"] for r in rs if r["ld_error_mm"] is not None]
            sa = [r["sa_error_mm"] for r in rs if r["sa_error_mm"] is not None]
            scored = [r for r in rs if r["deauville"] is not None]
            read = [r for r in rs if r["state"] is not None]
            per_site.append({
                "region": region, "timepoint": label, "n": len(rs),
                "ld_error_mm": _stats(ld), "sa_error_mm": _stats(sa),
                "ct_found_agree": sum(r["ct_found"] == r["truth_ct_found"] for r in read),
                "ct_read": len(read),
                "deauville_agree": sum(r["deauville"] == r["truth_deauville"] for r in scored),
                "deauville_scored": len(scored),
                "state_ok": sum(bool(r["state_ok"]) for r in rs),
                "states": _count(r["state"] for r in rs),
                "truth_deauville": _count(r["truth_deauville"] for r in rs),
                "deauville": _count(r["deauville"] for r in rs),
            })
    crit: dict[str, Any] = {}
    for c in ALL_CRITERIA:
        rs = [r for r in cats if r["criterion"] == c]
        entry: dict[str, Any] = {"n": len(rs)}
        if any("agree" in r for r in rs):
            entry["agree"] = sum(bool(r.get("agree")) for r in rs)
            if any("old_agree" in r for r in rs):
                entry["old_agree"] = sum(bool(r.get("old_agree")) for r in rs)
        if any("changed" in r for r in rs):
            entry["changed_vs_old"] = sum(r["changed"] for r in rs)
        crit[c] = entry
    return {"per_site": per_site, "criteria": crit}


def _count(values: Iterable[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- printing
def _n(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "y" if value else "n"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _brief(criterion: str, numbers: Mapping[str, Any]) -> str:
    keys = {"recist": ("baseline_sum_mm", "followup_sum_mm", "change_from_baseline_pct"),
            "lugano_ct": ("baseline_spd_mm2", "followup_spd_mm2", "spd_change_pct"),
            "percist": ("baseline_SULpeak", "followup_SULpeak", "liver_SULmean_followup",
                        "change_pct")}.get(criterion, tuple(numbers))
    return ", ".join(f"{k} {_n(numbers[k], 2)}" for k in keys if k in numbers)


def print_report(sites: Sequence[dict[str, Any]], cats: Sequence[dict[str, Any]],
                 summary: Mapping[str, Any]) -> None:
    """The per-row tables, then the summaries."""
    print("Site readouts (truth / reported; CT LD and SA in mm, error = reported - truth; "
          "obsLD = the LD the CT criteria used)")
    print(f"{'seed':>5} {'tp':8} {'lesion':21} {'track':5} {'state':22} {'D':>3} "
          f"{'SUVmax':>11} {'CT':>3} {'LD':>11} {'errLD':>6} {'SA':>11} {'errSA':>6} "
          f"{'obsLD':>6}")
    for r in sites:
        obs_ld = "res" if r.get("obs_resolved") else _n(r["obs_ld_mm"])
        print(f"{r['seed']:>5} {r['timepoint']:8} {r['lesion'][:21]:21} {_n(r['track']):5} "
              f"{_n(r['state'])[:22]:22} "
              f"{_n(r.get('truth_deauville'))}/{_n(r['deauville'])} "
              f"{_n(r.get('truth_suv_max'), 2):>5}/{_n(r['suv_max'], 2):<5} "
              f"{_n(r.get('truth_ct_found'))}/{_n(r['ct_found'])} "
              f"{_n(r.get('truth_ld_mm')):>5}/{_n(r['ld_mm']):<5} "
              f"{_n(r.get('ld_error_mm')):>6} "
              f"{_n(r.get('truth_sa_mm')):>5}/{_n(r['sa_mm']):<5} "
              f"{_n(r.get('sa_error_mm')):>6} {obs_ld:>6}")
    print()
    print("CT diameters per site and timepoint (mm, reported - truth, where both found)")
    print(f"{'site':16} {'tp':8} {'found ok':>8} {'n':>3} {'LD mean':>8} {'LD |mean|':>9} "
          f"{'LD max|e|':>9} {'SA mean':>8} {'SA |mean|':>9} {'SA max|e|':>9}")
    for s in summary["per_site"]:
        ld, sa = s["ld_error_mm"], s["sa_error_mm"]
        print(f"{s['region']:16} {s['timepoint']:8} {s['ct_found_agree']:>3}/{s['ct_read']:<4} "
              f"{ld['n']:>3} {_n(ld['mean'], 2):>8} {_n(ld['mean_abs'], 2):>9} "
              f"{_n(ld['max_abs'], 2):>9} {_n(sa['mean'], 2):>8} {_n(sa['mean_abs'], 2):>9} "
              f"{_n(sa['max_abs'], 2):>9}")
    print()
    print("Deauville and site states per site and timepoint (truth: site.deauville)")
    for s in summary["per_site"]:
        print(f"{s['region']:16} {s['timepoint']:8} Deauville equal {s['deauville_agree']}/"
              f"{s['deauville_scored']}, state as expected {s['state_ok']}/{s['n']}; "
              f"truth D {s['truth_deauville']}, reported D {s['deauville']}; "
              f"states {s['states']}")
    print()
    print("Response categories (reported, truth: CT criteria from the truth diameters with "
          "the sum of LD / SPD baseline->follow-up reported vs truth, PERCIST from "
          "expected_response; old = the --baseline-code call)")
    for r in cats:
        line = f"{r['seed']:>5} {r['timepoint']:7} {r['criterion']:10} {r['category']:4}"
        if r["criterion"] in CT_CRITERIA:
            key = "followup_sum_mm" if r["criterion"] == "recist" else "followup_spd_mm2"
            base = "baseline_sum_mm" if r["criterion"] == "recist" else "baseline_spd_mm2"
            line += (f" truth {r['truth_category']:4} {'ok ' if r['agree'] else 'NO '}"
                     f"{_n(r['numbers'][base], 0)}->{_n(r['numbers'][key], 0)} vs truth "
                     f"{_n(r['truth_numbers'][base], 0)}->{_n(r['truth_numbers'][key], 0)}")
        elif "truth_category" in r:
            line += f" truth {r['truth_category']:4} {'ok ' if r['agree'] else 'NO '}"
        if "old_category" in r:
            line += f"  old {_n(r['old_category']):4}{' CHANGED' if r['changed'] else ''}"
        print(line)
    print()
    print("Summary")
    for c, e in summary["criteria"].items():
        parts = [f"{c:10} n={e['n']}"]
        if "agree" in e:
            parts.append(f"agree with truth {e['agree']}/{e['n']}")
        if "old_agree" in e:
            parts.append(f"(old code {e['old_agree']}/{e['n']})")
        if "changed_vs_old" in e:
            parts.append(f"changed vs old code {e['changed_vs_old']}")
        print("  " + ", ".join(parts))
    for r in sites:
        problems = []
        if r["region"] is not None and r["ct_found"] != r["truth_ct_found"]:
            problems.append("CT found" if r["ct_found"] else "CT not found")
        if r["region"] is not None and r["deauville"] != r["truth_deauville"]:
            problems.append("Deauville")
        if not r["state_ok"]:
            problems.append("state")
        if problems:
            print(f"  SITE seed {r['seed']} {r['timepoint']} {r['lesion']}: "
                  f"{', '.join(problems)}: {r['state']} (expected "
                  f"{' or '.join(r.get('expected_states') or ['-'])}), Deauville "
                  f"{_n(r.get('truth_deauville'))}/{_n(r['deauville'])}, SUVmax "
                  f"{_n(r.get('truth_suv_max'), 3)}/{_n(r['suv_max'], 3)} vs liver SUVmax "
                  f"{_n(r['truth_liver_suv_max'], 3)}/{_n(r['liver_suv_max'], 3)}, blood pool "
                  f"{_n(r['truth_blood_pool_suv_max'], 3)}/{_n(r['blood_pool_suv_max'], 3)}; "
                  f"CT {_n(r.get('truth_ld_mm'))} x {_n(r.get('truth_sa_mm'))} / "
                  f"{_n(r['ld_mm'])} x {_n(r['sa_mm'])} mm (truth / reported)")
    for r in cats:
        if "agree" in r and not r["agree"]:
            print(f"  DISAGREE seed {r['seed']} {r['timepoint']} {r['criterion']}: "
                  f"{r['category']} ({r['rule']}; {_brief(r['criterion'], r['numbers'])}) vs "
                  f"truth {r['truth_category']} ({r['truth_rule']}; "
                  f"{_brief(r['criterion'], r.get('truth_numbers') or {})})")
        if r.get("changed"):
            kind = "PET" if r["criterion"] in PET_CRITERIA else "CT"
            print(f"  {kind} CHANGED seed {r['seed']} {r['timepoint']} {r['criterion']}: old "
                  f"{r['old_category']} ({r['old_rule']}) -> new {r['category']} ({r['rule']})")


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Print the tables; exit 1 when a RECIST, Lugano CT or PERCIST category disagrees with
    the truth or a PET category changed against ``--baseline-code``."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--work", type=Path, default=Path("/tmp/emlesion-seeds"))
    ap.add_argument("--baseline-code", type=Path, default=None,
                    help="another emlesion checkout (e.g. /work/base): its categories on the "
                         "same seeds, run in a subprocess with PYTHONPATH")
    ap.add_argument("--json", type=Path, default=None, help="write all rows to this file")
    ap.add_argument("--replay", type=Path, default=None,
                    help="print the tables of a --json file instead of running")
    args = ap.parse_args(argv)
    if args.replay is not None:
        saved = json.loads(args.replay.read_text())
        print_report(saved["sites"], saved["categories"], saved["summary"])
        return 0
    roots = [(seed, study_root(seed, args.work)) for seed in args.seeds]
    all_sites: list[dict[str, Any]] = []
    new_cats: dict[int, dict[tuple[str, str], dict[str, Any]]] = {}
    truth_cats: dict[int, dict[tuple[str, str], dict[str, Any]]] = {}
    tracks: dict[int, dict[str, Any]] = {}
    for seed, root in roots:
        t0 = time.perf_counter()
        truth = json.loads((root / "truth.json").read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = load_study({k: root / k for k in LABELS})
            new_cats[seed] = category_of(study.assess(list(ALL_CRITERIA)))
            truth_cats[seed] = category_of(assess_all(truth_observations(truth),
                                                      list(CT_CRITERIA)))
        for label, expected in (truth.get("expected_response") or {}).items():
            if "percist" in expected:  # the generator's own PERCIST call
                truth_cats[seed][(label, "percist")] = {
                    "category": expected["percist"]["category"],
                    "rule": expected["percist"].get("reason", ""), "numbers": {}}
        matches, unmatched = match_tracks(study, root, truth)
        tracks[seed] = {"matches": matches, "unmatched": unmatched}
        for r in site_rows(study, truth, matches, unmatched):
            all_sites.append({"seed": seed, **r})
        print(f"seed {seed}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    old = run_baseline_code(args.baseline_code, roots) if args.baseline_code else None
    all_cats: list[dict[str, Any]] = []
    for seed, _ in roots:
        for r in category_rows(new_cats[seed], truth_cats[seed],
                               old.get(seed) if old is not None else None):
            all_cats.append({"seed": seed, **r})
    summary = summarise(all_sites, all_cats)
    if args.json is not None:
        args.json.write_text(json.dumps({
            "command": " ".join(["python", "benchmarks/eval_sites.py", *(argv or sys.argv[1:])]),
            "date": dt.date.today().isoformat(), "seeds": list(args.seeds),
            "baseline_code": str(args.baseline_code) if args.baseline_code else None,
            "tracks": {str(k): v for k, v in tracks.items()},
            "sites": all_sites, "categories": all_cats, "summary": summary}, indent=1))
    print_report(all_sites, all_cats, summary)
    bad = [r for r in all_cats if ("agree" in r and not r["agree"])
           or (r["criterion"] in PET_CRITERIA and r.get("changed"))]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
