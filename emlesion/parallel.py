"""Parallel work inside emlesion: the cores a process may use, and calls run in worker
threads whose warnings reach the caller.

The study pipeline (:func:`emlesion.study.load_study`) processes its timepoints and registers
its follow-up CTs in threads. That pays on a multi-core machine because the heavy parts
release the GIL: SimpleITK while ITK runs, scipy.ndimage and NumPy in their C loops. Two
rules make it safe:

* A worker's emlesion warnings are held back in the worker (thread-local,
  :func:`emlesion.errors.deferred_warnings`) and emitted by the thread that asks for the
  result, in the order the caller asks; ``warnings.catch_warnings`` swaps process-global
  state and is not thread-safe before Python 3.14, so emlesion never uses it in code that
  runs in a worker.
* Each call gets its inputs and returns its result; workers share no mutable state.

References
----------
.. [1] Python documentation, :mod:`concurrent.futures`, ``warnings.catch_warnings``
   ("not thread-safe"), :mod:`contextvars`.
.. [2] SimpleITK, ``ProcessObject.SetGlobalDefaultNumberOfThreads`` (ITK's thread budget).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, Generic, TypeVar

import SimpleITK as sitk

from emlesion.errors import DeferredWarning, deferred_warnings, emit_warnings

__all__ = ["Deferred", "submit", "usable_cores"]

T = TypeVar("T")


def usable_cores() -> int:
    """CPU cores this process may run on, within ITK's global thread budget.

    A batch worker process limits ITK to its share of the cores
    (``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``, :func:`emlesion.batch.run_batch`); emlesion
    then runs its stages one after the other instead of in more threads than it has cores.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> usable_cores() >= 1
    True
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, int(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())))


_Outcome = tuple[Any, list[DeferredWarning], BaseException | None]


def _run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Outcome:
    with deferred_warnings() as held:
        try:
            return fn(*args, **kwargs), held, None
        except Exception as exc:  # re-raised by Deferred.result in the caller's thread
            return None, held, exc


class Deferred(Generic[T]):
    """The pending result of :func:`submit`: a value, the warnings emitted while it was
    computed, or the error it raised.

    Parameters
    ----------
    future : concurrent.futures.Future
        The running call (made by :func:`submit`).
    """

    def __init__(self, future: Future[_Outcome]) -> None:
        self._future = future
        self._emitted = False

    def done(self) -> bool:
        """True when the call has finished (:meth:`result` will not wait)."""
        return self._future.done()

    def result(self) -> T:
        """Wait for the call; emit its warnings here (once), then return or raise.

        Returns
        -------
        object
            What the function returned.

        Raises
        ------
        Exception
            What the function raised, after its earlier warnings were emitted.
        """
        value, held, exc = self._future.result()
        if not self._emitted:
            self._emitted = True
            emit_warnings(held)
        if exc is not None:
            raise exc
        out: T = value
        return out

    def __repr__(self) -> str:
        return f"Deferred({'done' if self.done() else 'running'})"


def submit(executor: Executor | None, fn: Callable[..., T], /, *args: Any,
           **kwargs: Any) -> Deferred[T]:
    """Run ``fn(*args, **kwargs)`` in ``executor``, holding back its emlesion warnings until
    :meth:`Deferred.result` is called.

    Parameters
    ----------
    executor : concurrent.futures.Executor or None
        Usually a ``ThreadPoolExecutor``; ``None`` runs the call now, in this thread (with
        the same deferred warnings, so a caller sees the same behaviour either way).
    fn : callable
        The work; it must not use ``warnings.catch_warnings``.
    *args, **kwargs
        Its arguments.

    Returns
    -------
    Deferred

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(2) as pool:
    ...     pending = [submit(pool, pow, k, 2) for k in range(4)]
    ...     [p.result() for p in pending]
    [0, 1, 4, 9]
    """
    if executor is None:
        future: Future[_Outcome] = Future()
        future.set_result(_run(fn, args, kwargs))
        return Deferred(future)
    return Deferred(executor.submit(_run, fn, args, kwargs))
