"""Thread-local warning recording and the parallel study pipeline (emlesion.parallel).

``load_study`` processes timepoints and registers follow-ups in worker threads. These tests
check the two properties that make it safe: a thread's emlesion warnings are recorded by
that thread only and reach the caller in timepoint order, and the parallel pipeline gives
the same study as the one-thread pipeline (the reference: the order of the serial code).
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emlesion.errors import (
    DeferredWarning,
    GeometryWarning,
    SUVWarning,
    deferred_warnings,
    emit_warnings,
    warn_external,
)
from emlesion.io.dicom import _pydicom_warnings
from emlesion.parallel import submit, usable_cores
from emlesion.provenance import record_warnings
from emlesion.report import report_dict
from emlesion.study import StageEvent, Study, load_study


def test_deferred_warnings_are_local_to_their_thread() -> None:
    # Two threads record at the same time; the barrier makes each emit while the other's
    # block is open. With warnings.catch_warnings (process-global) each would also catch
    # the other's warning, or lose its own when the other restores the global state.
    barrier = threading.Barrier(2)
    seen: dict[str, tuple[str, ...]] = {}

    def work(name: str) -> None:
        with record_warnings() as rec:
            barrier.wait()
            warn_external(f"from {name}", SUVWarning)
            barrier.wait()
        seen[name] = rec.as_tuple()

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert seen == {"a": ("from a",), "b": ("from b",)}
    # each was re-emitted once, after its block (to the process-wide handler)
    assert sorted(str(w.message) for w in shown) == ["from a", "from b"]


def test_nested_blocks_pass_warnings_outwards() -> None:
    with deferred_warnings() as outer:
        with record_warnings() as rec:
            warn_external("inner", GeometryWarning)
        warn_external("outer", SUVWarning)
    assert rec.as_tuple() == ("inner",)
    assert outer == [DeferredWarning("inner", GeometryWarning),
                     DeferredWarning("outer", SUVWarning)]
    with pytest.warns(SUVWarning, match="outer"):
        emit_warnings(outer[1:])


def test_submit_emits_worker_warnings_in_the_callers_order_then_raises() -> None:
    def job(k: int) -> int:
        warn_external(f"job {k}", SUVWarning)
        if k == 2:
            raise ValueError("job 2 failed")
        return k * k

    with ThreadPoolExecutor(2) as pool:
        pending = [submit(pool, job, k) for k in range(3)]
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            values = [pending[1].result(), pending[0].result()]
            with pytest.raises(ValueError, match="job 2 failed"):
                pending[2].result()
            assert pending[1].result() == 1  # a second result() does not emit again
    assert values == [1, 0]
    assert [str(w.message) for w in shown] == ["job 1", "job 0", "job 2"]
    # the warnings name the caller's frame (this file), not the worker's
    assert {Path(w.filename).name for w in shown} == {"test_parallel.py"}


def test_submit_without_executor_runs_now_with_the_same_behaviour() -> None:
    calls: list[int] = []
    d = submit(None, lambda: calls.append(1) or "done")
    assert calls == [1] and d.done()
    assert d.result() == "done"


def test_reading_collects_only_its_own_threads_warnings() -> None:
    # While the main thread reads a file (emlesion.io.dicom collects pydicom's warnings),
    # a worker thread's warning is not reported as a quirk of that file: it reaches the
    # handler in place.
    started, done = threading.Event(), threading.Event()

    def other() -> None:
        started.wait()
        warnings.warn("worker's own warning", RuntimeWarning, stacklevel=1)
        done.set()

    collected: list[str] = []
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        t = threading.Thread(target=other)
        t.start()
        with _pydicom_warnings(collected):
            started.set()
            done.wait()
            warnings.warn("a pydicom quirk", UserWarning, stacklevel=1)
        t.join()
    assert collected == ["a pydicom quirk"]
    assert [str(w.message) for w in shown] == ["worker's own warning"]


def _digest(study: Study) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the PERCIST comparability warnings
        rep = report_dict(study, study.assess())
    for reg in rep.get("registrations", {}).values():
        reg.pop("duration_s", None)
    arrays = {tp.label: np.asarray(tp.lesions.array) for tp in study.timepoints}
    return {"report": rep, "arrays": arrays}


def test_threads_must_be_positive(sample_scans_dir: Path) -> None:
    from emlesion.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="threads must be >= 1, got 0"):
        load_study({"baseline": sample_scans_dir / "baseline"}, threads=0)


@pytest.mark.slow
def test_parallel_study_equals_the_one_thread_study(
    sample_study: Study, sample_scans_dir: Path
) -> None:
    # The session study ran on every usable core; with threads=1 load_study runs every
    # stage in this thread, in timepoint order (the code path of a batch worker). Same
    # lesions, measurements, provenance, tracks, sites and categories; the registrations
    # agree to float noise (ITK sums in another order in another thread).
    if usable_cores() < 2:
        pytest.skip("one usable core: the session study already ran in one thread")
    events: list[tuple[str, str | None, str]] = []

    def progress(event: StageEvent) -> None:
        events.append((event.stage, event.timepoint, threading.current_thread().name))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial = load_study({n: sample_scans_dir / n for n in ("baseline", "month1", "month3")},
                            progress=progress, threads=1)
    assert {name for *_, name in events} == {threading.current_thread().name}
    a, b = _digest(sample_study), _digest(serial)
    for label, arr in a["arrays"].items():
        np.testing.assert_array_equal(arr, b["arrays"][label], err_msg=label)
    regs_a = a["report"].pop("registrations")
    regs_b = b["report"].pop("registrations")
    for label in regs_a:
        np.testing.assert_allclose(regs_a[label]["offset_mm"], regs_b[label]["offset_mm"],
                                   atol=1e-6)
    assert a["report"] == b["report"]
