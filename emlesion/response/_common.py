"""Helpers shared by the response engines (not public API).

Floating-point policy
---------------------
Percent and absolute changes are computed in double precision, then compared with
a tolerance of ``TOLERANCE = 1e-9`` (in the unit of the compared quantity: percent,
SUL, mm). A value within ``1e-9`` of a threshold counts as *on* the threshold, so an
inclusive rule fires and an exclusive rule does not. Example: ``(1.89 - 2.7) / 2.7``
is ``-0.30000000000000004`` in binary floating point; it is exactly the PERCIST 30 %
boundary and must behave as such. Measurement noise is many orders of magnitude larger
than ``1e-9``, so the tolerance never changes a real call.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from emlesion.errors import warn_external
from emlesion.provenance import ProvenanceStep

from .assessment import Assessment, Category, Criterion, ResponseWarning
from .observations import LesionObservation, TimepointObservation, UptakeMetric

TOLERANCE = 1e-9


def at_least(value: float, threshold: float) -> bool:
    """``value >= threshold`` up to :data:`TOLERANCE`."""
    return value >= threshold - TOLERANCE


def more_than(value: float, threshold: float) -> bool:
    """``value > threshold`` beyond :data:`TOLERANCE`."""
    return value > threshold + TOLERANCE


def at_most(value: float, threshold: float) -> bool:
    """``value <= threshold`` up to :data:`TOLERANCE`."""
    return value <= threshold + TOLERANCE


def less_than(value: float, threshold: float) -> bool:
    """``value < threshold`` beyond :data:`TOLERANCE`."""
    return value < threshold - TOLERANCE


def percent_change(new: float, reference: float) -> float:
    """``100 * (new - reference) / reference``; ``+inf`` from zero to a positive value."""
    if reference == 0.0:
        if new == 0.0:
            return 0.0
        return math.inf if new > 0 else -math.inf
    return 100.0 * (new - reference) / reference


def fmt(value: float | None, digits: int = 2) -> str:
    """Format a number for a reason sentence (``"n/a"`` for None, ``"inf"`` kept)."""
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def fmt_pct(value: float | None) -> str:
    """Format a signed percentage."""
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "+inf %" if value > 0 else "-inf %"
    return f"{value:+.1f} %"


def new_lesions(baseline: TimepointObservation,
                followup: TimepointObservation) -> list[LesionObservation]:
    """Lesions at follow-up whose ``track_id`` is absent at baseline and that are not resolved
    (on PET: :attr:`LesionObservation.pet_resolved`)."""
    return [
        lesion for lesion in followup.lesions
        if lesion.track_id not in baseline.track_ids and not lesion.pet_resolved
    ]


def measured_uptake(tp: TimepointObservation,
                    metric: UptakeMetric) -> list[tuple[float, LesionObservation]]:
    """``(value, lesion)`` of every lesion of ``tp`` that is not resolved and has ``metric``."""
    return [(v, les) for les in tp.lesions
            if not les.pet_resolved and (v := les.uptake(metric)) is not None]


#: The one tie-break rule of every engine, quoted in their docstrings.
TIE_BREAK_RULE = ("the higher value ranks first; on an exact tie the smaller track_id (in "
                  "natural order, T2 before T10: the lesion first seen) wins")


def track_id_order(track_id: str) -> tuple[str | int, ...]:
    """Natural sort key of a ``track_id``: digit runs compare as numbers.

    Tracks are numbered in the order lesions are first seen (``T1, T2, ..., T10``), so the
    smallest key is the lesion seen first; plain string order would put ``T10`` before
    ``T2``. Text and number parts alternate, so keys of any two ids compare without a
    type error.

    Examples
    --------
    >>> sorted(["T10", "T2", "T1"], key=track_id_order)
    ['T1', 'T2', 'T10']
    """
    parts = re.split(r"(\d+)", track_id)
    return tuple(int(p) if k % 2 else p for k, p in enumerate(parts))


def rank_key(item: tuple[float, LesionObservation]) -> tuple[float, tuple[str | int, ...]]:
    """Sort key ranking ``(value, lesion)`` pairs by :data:`TIE_BREAK_RULE`.

    Higher values first; an exact tie goes to the smaller :func:`track_id_order`. The
    order depends only on the values and ids, never on the order of the lesions in the
    input (dict or list order).
    """
    value, lesion = item
    return (-value, track_id_order(lesion.track_id))


def hottest(measured: Sequence[tuple[float, LesionObservation]]) -> tuple[float, LesionObservation]:
    """The ``(value, lesion)`` ranked first by :func:`rank_key` (highest value; on a tie,
    the smallest ``track_id``)."""
    return min(measured, key=rank_key)


def select_by_organ(candidates: Sequence[tuple[float, LesionObservation]], max_total: int,
                    max_per_organ: int | None) -> list[tuple[float, LesionObservation]]:
    """Greedy pick of the largest values, at most ``max_per_organ`` per organ.

    ``candidates`` are ``(value, lesion)``, ranked by :func:`rank_key` (ties: the smallest
    ``track_id``), so that the selection is deterministic.
    """
    ordered = sorted(candidates, key=rank_key)
    chosen: list[tuple[float, LesionObservation]] = []
    per_organ: dict[str, int] = {}
    for value, lesion in ordered:
        if len(chosen) >= max_total:
            break
        key = lesion.organ_key
        if max_per_organ is not None and per_organ.get(key, 0) >= max_per_organ:
            continue
        per_organ[key] = per_organ.get(key, 0) + 1
        chosen.append((value, lesion))
    return chosen


def check_order(baseline: TimepointObservation, followup: TimepointObservation,
                previous: Sequence[TimepointObservation]) -> list[str]:
    """Warnings when dates are not increasing (baseline, previous..., follow-up)."""
    out: list[str] = []
    series = [baseline, *previous, followup]
    for a, b in itertools.pairwise(series):
        if a.date is not None and b.date is not None and b.date < a.date:
            out.append(f"timepoint {b.label} ({b.date}) is dated before {a.label} ({a.date})")
    return out


def build(
    criterion: Criterion,
    operation: str,
    baseline: TimepointObservation,
    followup: TimepointObservation,
    category: Category,
    rule: str,
    reasons: Iterable[str],
    numbers: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    warning_messages: Iterable[str],
    parameters: Mapping[str, Any],
    nadir: str | None = None,
) -> Assessment:
    """Assemble an :class:`Assessment` and emit its warnings as :class:`ResponseWarning`,
    attributed to the first frame outside emlesion (:func:`emlesion.errors.external_stacklevel`)."""
    messages = tuple(dict.fromkeys(warning_messages))
    for message in messages:
        # attributed to the user's line that called the engine (directly, through
        # assess_all, Study.assess or the CLI), not to an emlesion line
        warn_external(f"{criterion.full_name} {followup.label}: {message}", ResponseWarning)
    step = ProvenanceStep(
        operation=f"emlesion.response.{operation}",
        rule=rule,
        inputs={"baseline": baseline.label, "followup": followup.label, "nadir": nadir,
                **parameters},
        warnings=messages,
    )
    return Assessment(
        criterion=criterion,
        timepoint=followup.label,
        baseline=baseline.label,
        category=category,
        rule=rule,
        reasons=tuple(reasons),
        numbers=numbers,
        thresholds=thresholds,
        nadir=nadir,
        warnings=messages,
        parameters=parameters,
        provenance=(step,),
    )
