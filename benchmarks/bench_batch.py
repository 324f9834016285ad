"""Benchmark: cohort throughput of ``emlesion batch`` with 1 and 2 local workers, the scheduler
overhead, and the projected throughput of a 64-worker Dask cluster.

Usage::

    python benchmarks/bench_batch.py [--patients 12] [--cohort DIR] [--no-track] [--repeat N]
                                     [--json]

The cohort is ``--patients`` studies generated with :mod:`emlesion.sample` (seeds 201, 202
..., baseline and month 1; kept in ``--cohort DIR`` between runs). The default of 12 gives
the serial run about a minute of work, as the 6 slower studies of 807c2e8 did: with 6
studies of 5 s, the fixed start (cluster, each worker's imports and its first study's lazy
imports, about 2 s) is a fifteenth of the serial run, and the ratio moves by +-0.05 from
one run to the next (see the results). The same cohort is processed
three times in the same run, into fresh output folders, by a local Dask cluster:

* ``1 worker x 1 thread``: ``run_batch(workers=1, threads_per_worker=1)``, one
  single-threaded worker process: the serial baseline;
* ``2 workers x 1 thread``: ``run_batch(workers=2)``, the default on two cores (each worker's
  share of the cores is one);
* ``1 worker x 2 threads``: ``run_batch(workers=1)``, whose one worker gets both cores (its
  study pipeline runs its timepoints and registrations in two threads, ITK has two).

The throughput is studies (patients) per minute of end-to-end wall time, cluster start
included. The speed-up of the worker processes is the serial baseline's wall time over the
2-worker wall time (each worker a single-threaded process, as strong scaling is measured);
the 2-worker run is also compared with the one two-threaded worker, which tells whether
processes or the study pipeline's threads use two cores better.

Overheads measured in the same run:

* ``cluster_start_s``: starting a 2-worker ``LocalCluster`` and its client;
* ``task_overhead_s``: scheduler + client cost per task: 1000 no-op tasks submitted one by one
  with an explicit key and collected with ``as_completed`` (as the batch does), divided by 1000;
* ``driver_per_result_s``: the driver's own work per finished patient (read report.json, build
  its rows, rewrite the status table), measured on the finished cohort and on a status table
  scaled to 1000 patients.

Projection to W workers (one core each, shared file system fast enough):
each worker completes a study every ``c + task_overhead_s`` seconds, where ``c`` is the
per-study pipeline time measured on the serial run (no competition for the cores); the
scheduler and the single-writer driver handle results one at a time, every
``task_overhead_s + driver_per_result_s(1000)`` seconds. Hence::

    throughput(W) = 60 * min(W / (c + task_overhead_s),
                             1 / (task_overhead_s + driver_per_result_s))   [studies/min]

The file-system bandwidth (about 10 MB of DICOM read per two-timepoint study) is not modelled.

Results (2 idle cores; each line one run of this script):

* 807c2e8 (2026-12-02, 6 patients; one worker with two ITK threads against two with one):
  1 worker 59.5 s (6.05 studies/min, 9.5 s per study), 2 workers 34.7 s (10.39 studies/min,
  10.7 s per study): 1.72x.
* issue 18, second pass (2026-12-02, 6 patients, same two runs): 1 worker 29.2 s (12.32
  studies/min, 4.5 s per study), 2 workers 18.3 s (19.65 studies/min, 5.3 s per study):
  1.59x. That 1-worker run was not serial: its worker registered and resampled with two ITK
  threads (4.65 s per study against 5.13 s with one), so the ratio compared two processes
  with one partly threaded process, and the faster pipeline made the fixed start weigh more.
* 2026-12-03, three configurations (``threads_per_worker``; the bench script no longer
  imports emlesion at module level, which every spawned worker repeated: cluster start 1.5 ->
  0.5 s):

  - 12 patients, 2 repetitions, best of each: serial 58.8 s (12.25 studies/min, 4.7 s per
    study), 2 workers 32.9 s (21.88 studies/min, 5.0 s per study), 1 worker x 2 threads
    48.0 s (15.00 studies/min, 3.8 s per study): **speed-up 1.79x** (1.78x in the second
    repetition); 2 workers beat one two-threaded worker by 1.46x.
  - 6 patients, four runs: 1.76x, 1.74x, 1.66x, 1.74x (serial 31.2-32.9 s, 2 workers
    18.6-18.9 s; one two-threaded worker 26.2-27.2 s); with the module-level imports, three
    runs: 1.67x, 1.71x, 1.67x.

  Two single-threaded workers side by side take 5-7 % longer per study than one alone
  (memory bandwidth, the driver and the scheduler on the same two cores); the rest of the
  gap to 2x is the fixed start and the last study of the slower worker.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

# The Dask workers are spawned processes, which import this script again as their
# ``__mp_main__``: what it imports at module level each worker imports before its first task.
# ``emlesion batch`` runs from the console script, whose module imports almost nothing, so
# this script imports emlesion and Dask inside its functions, as the command does (at module
# level they added about 1 s to every worker's start).

TIMEPOINTS = ("baseline", "month1")
SERIAL, TWO, THREADED = "1 worker x 1 thread", "2 workers x 1 thread", "1 worker x 2 threads"
#: (workers, threads_per_worker) of each run; None = the runner's default (the worker's share)
CONFIGS: dict[str, tuple[int, int | None]] = {SERIAL: (1, 1), TWO: (2, None), THREADED: (1, None)}


def build_cohort(root: Path, n: int, track: bool) -> Path:
    """Generate (or reuse) ``n`` two-timepoint studies under ``root``; returns the manifest."""
    from emlesion.sample import generate_sample_study

    root.mkdir(parents=True, exist_ok=True)
    lines = ["patient_id,timepoint,folder,track"]
    for i in range(n):
        seed = 201 + i
        folder = root / f"seed{seed}"
        if not (folder / "truth.json").is_file():
            t0 = time.perf_counter()
            generate_sample_study(folder, seed=seed, timepoints=TIMEPOINTS, force=True)
            print(f"  generated seed {seed} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        flag = "true" if track else "false"
        for j, tp in enumerate(TIMEPOINTS):
            lines.append(f"B{seed},{tp},{folder / tp},{flag if j == 0 else ''}")
    manifest = root / ("manifest.csv" if track else "manifest_notrack.csv")
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def measure_overheads(n_tasks: int = 1000) -> dict[str, float]:
    """Cluster start time and scheduler + client cost per task (no-op tasks)."""
    import distributed

    t0 = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=40) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        start = time.perf_counter() - t0
        client.submit(operator.add, 0, 1, pure=False).result()  # warm the connections
        t1 = time.perf_counter()
        futures = [client.submit(operator.add, i, 1, key=f"noop-{i}", pure=False)
                   for i in range(n_tasks)]
        total = 0
        for fut in distributed.as_completed(futures, loop=client.loop):
            total += fut.result()
            fut.release()
        per_task = (time.perf_counter() - t1) / n_tasks
    assert total == sum(range(1, n_tasks + 1))
    return {"cluster_start_s": start, "task_overhead_s": per_task}


def driver_cost(manifest_path: Path, out: Path, scale_to: int = 1000) -> dict[str, float]:
    """Driver work per finished patient: rows from report.json + status-table rewrite."""
    from emlesion.batch import completed_result, read_manifest
    from emlesion.batch.cohort import CohortTables, write_cohort_tables

    manifest = read_manifest(manifest_path)
    done = [(job, completed_result(job, out)) for job in manifest.jobs]
    pairs = [(j, r) for j, r in done if r is not None]
    tables = CohortTables()
    scratch = Path(tempfile.mkdtemp(prefix="bench_batch_driver."))
    try:
        t0 = time.perf_counter()
        for job, res in pairs:
            tables.add(job, res)
            write_cohort_tables(scratch, {"cohort_status": tables.status_rows()}, parquet=False)
        per_result = (time.perf_counter() - t0) / max(len(pairs), 1)
        # The status rewrite grows with the cohort: time it with `scale_to` rows.
        rows = tables.status_rows()
        big = [dict(r, patient_id=f"{r['patient_id']}-{k}")
               for k in range(scale_to // max(len(rows), 1) + 1) for r in rows][:scale_to]
        t1 = time.perf_counter()
        reps = 20
        for _ in range(reps):
            write_cohort_tables(scratch, {"cohort_status": big}, parquet=False)
        status_big = (time.perf_counter() - t1) / reps
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "driver_per_result_s": per_result,
        # the per-result work that does not grow with the cohort, plus the status rewrite
        # of a `scale_to`-patient cohort (the full-table flush every 10 s is amortised away)
        f"driver_per_result_s_at_{scale_to}": per_result + status_big,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patients", type=int, default=12,
                   help="studies in the cohort (default 12)")
    p.add_argument("--cohort", default=None, help="folder to keep the generated studies in")
    p.add_argument("--no-track", action="store_true",
                   help="manifest option track=false (no CT registration: a faster pipeline)")
    p.add_argument("--workers", type=int, default=64, help="cluster size of the projection")
    p.add_argument("--repeat", type=int, default=1,
                   help="interleaved repetitions; the best wall time per worker count is kept")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)

    import logging

    import distributed

    from emlesion.batch import run_batch

    logging.getLogger("distributed").setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch."))
    try:
        cohort = Path(args.cohort) if args.cohort else tmp / "cohort"
        manifest = build_cohort(cohort, args.patients, track=not args.no_track)
        runs: dict[str, dict[str, Any]] = {}
        for rep in range(args.repeat):  # interleaved: shared-machine noise hits every config
            for name, (w, t) in CONFIGS.items():
                out = tmp / f"out-{w}x{t or 'share'}"
                shutil.rmtree(out, ignore_errors=True)
                r = run_batch(manifest, out, workers=w, threads_per_worker=t, progress=False,
                              parquet=False)
                if r.n_failed:
                    raise SystemExit(f"{r.n_failed} patient(s) failed: {r.failed}")
                per = [x.seconds for x in r.results]
                print(f"  run {rep + 1}, {name}: {r.seconds:.1f} s, "
                      f"{r.studies_per_minute:.2f} studies/min", file=sys.stderr)
                if name in runs and runs[name]["wall_s"] <= r.seconds:
                    continue  # keep the best run per configuration
                runs[name] = {"workers": r.n_workers, "threads_per_worker": r.threads_per_worker,
                              "wall_s": r.seconds, "studies_per_min": r.studies_per_minute,
                              "pipeline_s_median": statistics.median(per),
                              "pipeline_s_mean": statistics.fmean(per),
                              "lesions": (out / "cohort_lesions.csv").read_bytes()}
        tables = {name: v.pop("lesions") for name, v in runs.items()}
        lesions_equal = len(set(tables.values())) == 1
        over = measure_overheads()
        drv = driver_cost(manifest, tmp / "out-1x1")
        c = runs[SERIAL]["pipeline_s_mean"]
        o = over["task_overhead_s"]
        d = drv["driver_per_result_s_at_1000"]
        worker_bound = args.workers / (c + o)
        serial_bound = 1.0 / (o + d)
        projected = 60.0 * min(worker_bound, serial_bound)
        result = {
            "machine": {"cpus": os.cpu_count(), "loadavg": list(os.getloadavg()),
                        "python": platform.python_version(),
                        "distributed": distributed.__version__},
            "patients": args.patients,
            "timepoints_per_patient": len(TIMEPOINTS),
            "track": not args.no_track,
            "runs": runs,
            "speed_up_2_workers_vs_serial": runs[SERIAL]["wall_s"] / runs[TWO]["wall_s"],
            "speed_up_2_workers_vs_1_worker_2_threads": runs[THREADED]["wall_s"]
            / runs[TWO]["wall_s"],
            "identical_lesion_tables": lesions_equal,
            **over,
            **drv,
            "projection": {
                "workers": args.workers,
                "per_study_s": c,
                "worker_bound_studies_per_min": 60.0 * worker_bound,
                "scheduler_bound_studies_per_min": 60.0 * serial_bound,
                "studies_per_min": projected,
                "formula": "60 * min(W / (c + o), 1 / (o + d))",
            },
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"cohort: {args.patients} studies x {len(TIMEPOINTS)} timepoints, "
          f"track={'yes' if result['track'] else 'no'}; {result['machine']['cpus']} CPUs, "
          f"load average {result['machine']['loadavg'][0]:.2f}")
    for name, v in runs.items():
        print(f"  {name:<22} {v['wall_s']:7.1f} s  {v['studies_per_min']:6.2f} studies/min  "
              f"(pipeline {v['pipeline_s_mean']:.1f} s per study on the worker)")
    print(f"  speed-up, 2 workers vs the serial baseline: "
          f"{result['speed_up_2_workers_vs_serial']:.2f}x; vs 1 worker x 2 threads: "
          f"{result['speed_up_2_workers_vs_1_worker_2_threads']:.2f}x "
          f"(identical lesion tables: {lesions_equal})")
    print(f"  cluster start {over['cluster_start_s']:.2f} s; scheduler+client per task "
          f"{o * 1e3:.2f} ms; driver per result {drv['driver_per_result_s'] * 1e3:.1f} ms "
          f"({d * 1e3:.1f} ms at 1000 patients)")
    pr = result["projection"]
    print(f"  projected {pr['workers']} workers: {pr['studies_per_min']:.0f} studies/min = "
          f"60 * min({pr['workers']} / ({c:.1f} + {o:.4f}), 1 / ({o:.4f} + {d:.4f})) "
          f"[worker bound {pr['worker_bound_studies_per_min']:.0f}, scheduler/driver bound "
          f"{pr['scheduler_bound_studies_per_min']:.0f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
