"""Provenance records: which rule fired, on which inputs, with which warnings.

Every result object of emlesion (volumes, SUV images, masks, measurements,
assessments) carries a tuple of :class:`ProvenanceStep`. A step is immutable and
JSON-serialisable through :meth:`ProvenanceStep.to_dict`, so that a report can
show *why* a number is what it is, in the spirit of TorchIO's transform
history.

Warnings raised while a step runs are both emitted through :mod:`warnings`
(so that the caller sees them) and stored in the step, using
:class:`WarningRecorder`.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np

__all__ = ["ProvenanceStep", "WarningRecorder", "jsonable", "record_warnings"]


def jsonable(value: Any) -> Any:
    """Convert ``value`` to plain JSON types (dict, list, str, float, int, bool, None).

    Enums become their value, numpy scalars and arrays become Python numbers and
    lists, dates become ISO strings, dataclasses become dicts, non-finite floats
    become ``None``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return jsonable(value.to_dict())
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class ProvenanceStep:
    """One operation in the history of a result.

    Parameters
    ----------
    operation : str
        Dotted name of the public function that ran, e.g. ``"emlesion.suv.compute_suv"``.
    rule : str, optional
        The rule or branch that fired, e.g. ``"BQML/START: SeriesDateTime (QIBA step 1)"``.
    inputs : Mapping[str, Any]
        The inputs the rule used (JSON-able values, units in the key names).
    warnings : tuple of str
        Messages of the warnings emitted while the operation ran.
    """

    operation: str
    rule: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "operation": self.operation,
            "rule": self.rule,
            "inputs": jsonable(dict(self.inputs)),
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        extra = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        rule = f": {self.rule}" if self.rule else ""
        return f"ProvenanceStep({self.operation}{rule}{extra})"


class WarningRecorder:
    """Collects the messages of warnings emitted inside :func:`record_warnings`."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return iter(self.messages)

    def as_tuple(self) -> tuple[str, ...]:
        """The recorded messages, in order, without duplicates."""
        return tuple(dict.fromkeys(self.messages))


@contextmanager
def record_warnings() -> Iterator[WarningRecorder]:
    """Record the emlesion warnings emitted in the block and re-emit them to the caller.

    The warnings that emlesion emits (through :func:`emlesion.errors.warn_external`) in
    the block are held back (:func:`emlesion.errors.deferred_warnings`), their messages
    stored for a :class:`ProvenanceStep`, and re-emitted after the block, also when the
    block raised, so that the filters set by the caller
    (``warnings.simplefilter("error")``, pytest's ``pytest.warns``) still apply.

    The recording is local to the current thread: unlike ``warnings.catch_warnings``
    (process-global state, not thread-safe before Python 3.14) it neither sees nor steals
    the warnings of another thread, so stages can run in parallel threads. Warnings that
    third-party code emits with :func:`warnings.warn` pass through unchanged.

    References
    ----------
    .. [1] Python documentation, ``warnings.catch_warnings``.

    Examples
    --------
    >>> from emlesion.errors import SUVWarning, warn_external
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as shown:
    ...     warnings.simplefilter("always")
    ...     with record_warnings() as rec:
    ...         warn_external("dose looks like MBq", SUVWarning)
    >>> rec.as_tuple(), [str(w.message) for w in shown]
    (('dose looks like MBq',), ['dose looks like MBq'])
    """
    from emlesion.errors import EmlesionWarning, deferred_warnings, emit_warnings

    recorder = WarningRecorder()
    held: list[Any] = []
    try:
        with deferred_warnings() as held:
            yield recorder
    finally:
        # re-emitted even when the block raised: warnings issued before an error still
        # reach the caller
        recorder.messages.extend(w.message for w in held
                                 if issubclass(w.category, EmlesionWarning))
        emit_warnings(held)
