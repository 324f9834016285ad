"""Benchmark: CPU time of :func:`emlesion.anatomy.segment_anatomy`, per timepoint and per
named step, on the three ``sample_scans`` timepoints (and, with ``--ct-only``, the real
TotalSegmentator trunk CT through the CT-only rules).

``bench_study.py`` gives one anatomy figure per timepoint; this script says where that time
goes (body and bone, spinal axis, pelvic landmarks, each trunk organ, brain and heart,
references), to guide the next speed work. There is no peer: no other open toolkit derives
these landmarks and PERCIST references classically; compare with an older commit by running
this script from both checkouts, back to back (``cd <checkout> && python
benchmarks/bench_anatomy.py``), and compare the CPU times (the wall time follows the load).

Inputs are prepared as :mod:`emlesion.study` does: the CT in HU and the SUVbw PET of
``compute_suv_image(pet, Normalization.BW)``. The per-step times come from one extra run
under :mod:`cProfile` (CPU-time clock): they include the profiler's overhead, so they add up
to more than the unprofiled time; read them as shares.

Results (2026-12-02, 2 shared cores, issue 18; base 807c2e8 and this branch back to back,
best of 2 rounds, CPU): per sample timepoint 0.97-1.00 s -> 0.23-0.25 s; the CT-only
TotalSegmentator CT 6.7 s -> 1.3 s. Masks, landmarks, reference VOIs and provenance are
bit-identical (15 cases: the 3 timepoints, CT-only and PET-only runs, STS_001, QIN, the test
phantoms). In ``bench_study.py`` the anatomy stage went from 1.02-1.09 s to 0.25-0.29 s CPU
per timepoint.

Usage::

    python benchmarks/bench_anatomy.py [--sample sample_scans] [--rounds 3] [--ct-only] [--json]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from emlesion.anatomy import segment_anatomy  # noqa: E402
from emlesion.io import load_ct, load_pet  # noqa: E402
from emlesion.io.volume import Volume  # noqa: E402
from emlesion.suv import Normalization, compute_suv_image  # noqa: E402

#: The named steps of segment_anatomy and the organ rules inside them, in call order
#: (functions of emlesion/anatomy; a name missing from an older checkout is skipped).
STEPS = ("_working_frame", "_body_and_bone", "trunk_slices", "find_lungs", "_spinal_axis",
         "_spine", "_pelvic_landmarks", "_pelvic_levels", "_trunk_organs", "_bladder", "_liver",
         "_kidneys", "_ureters", "_aorta", "_brain_and_heart", "_organ_map_and_references",
         "_liver_reference")
TS_CT = REPO.parent / "shared" / "data" / "totalsegmentator-example-ct" / "example_ct.nii.gz"


def _cases(sample: Path, ct_only: bool) -> dict[str, tuple[Volume, Volume | None]]:
    cases: dict[str, tuple[Volume, Volume | None]] = {}
    for tp in ("baseline", "month1", "month3"):
        pet = load_pet(sample / tp / "PT")
        cases[tp] = (load_ct(sample / tp / "CT"), compute_suv_image(pet, Normalization.BW).volume)
    if ct_only and TS_CT.is_file():
        cases["totalsegmentator_ct_only"] = (load_ct(TS_CT), None)
    return cases


def _step_times(ct: Volume, pet: Volume | None) -> dict[str, float]:
    prof = cProfile.Profile(time.process_time)
    prof.runcall(segment_anatomy, ct, pet)
    stats: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for (path, _line, name), (_cc, _nc, _tt, cum, _callers) in stats.items():
        if name in STEPS and "anatomy" in path:
            out[name] = out.get(name, 0.0) + cum
    return {k: round(out[k], 4) for k in STEPS if k in out}


def run(sample: Path, rounds: int, ct_only: bool) -> dict[str, Any]:
    """CPU and wall time (best of ``rounds``) and per-step CPU time per case."""
    warnings.simplefilter("ignore")
    result: dict[str, Any] = {"cases": {}, "load_average": [round(v, 2) for v in os.getloadavg()]}
    for name, (ct, pet) in _cases(sample, ct_only).items():
        cpu, wall = [], []
        for _ in range(rounds):
            c0, w0 = time.process_time(), time.perf_counter()
            segment_anatomy(ct, pet)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        result["cases"][name] = {"cpu_s": round(min(cpu), 3), "wall_s": round(min(wall), 3),
                                 "steps_cpu_s_profiled": _step_times(ct, pet)}
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", default=str(REPO / "sample_scans"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ct-only", action="store_true",
                        help="also the TotalSegmentator CT without PET (shared data)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    res = run(Path(args.sample), max(1, args.rounds), args.ct_only)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    for name, r in res["cases"].items():
        print(f"{name:<26} cpu {r['cpu_s']:6.3f} s  wall {r['wall_s']:6.3f} s "
              f"(best of {args.rounds})")
        for step, t in r["steps_cpu_s_profiled"].items():
            print(f"    {step:<28} {t:6.3f} s (profiled)")
    print(f"load average {res['load_average']} -> {res['load_average_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
