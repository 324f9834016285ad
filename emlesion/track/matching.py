"""Lesion correspondence between two label maps in one space: optimal assignment,
splits and merges.

The matcher works on two sets of lesions already in the same (baseline) space: the
*reference* set (baseline lesions, or the tracks seen so far) and the *candidate* set
(lesions of a follow-up, brought onto the baseline grid by
:func:`emlesion.track.resample_labels`). It proceeds in three steps:

1. **Cost.** For every reference/candidate pair, ``cost = (1 - Dice) + d / d_max``,
   with ``d`` the distance (mm) between the centroids. A pair is *admissible* when the
   lesions overlap (at least one common voxel) or ``d <= d_max``; other pairs get a
   prohibitive cost.
2. **Optimal one-to-one assignment** (Hungarian / Jonker-Volgenant, SciPy
   ``linear_sum_assignment``) [1]_ [2]_. The prohibitive cost is larger than the sum of
   all admissible costs, so the assignment first maximises the *number* of admissible
   matches and then minimises their total cost. A greedy nearest-centroid matcher can
   match the closest pair first and leave the others unmatched; the optimal assignment
   cannot.
3. **Splits and merges.** Two lesions *overlap significantly* when their common
   volume is at least ``min_fraction`` of the smaller one. An unmatched candidate that
   overlaps significantly a matched reference is a **fragment** of that reference (a
   *split*); an unmatched reference that overlaps significantly a matched candidate
   has **merged** into it. Splits and merges are decided on overlap only (not on
   distance): a nearby but separate lesion is a new lesion, not a fragment.

What is left is **new** (unmatched candidates that are not fragments) or **resolved**
(unmatched references that did not merge).

The handling of splits and merges follows RECIST 1.1 [3]_: fragments of a split lesion
stay with their parent (their measurements are summed for the parent, they are not
new lesions); when lesions coalesce, the coalesced lesion is measured once, for the
track it was assigned to, and the other tracks are marked as merged into it.

References
----------
.. [1] Kuhn HW. The Hungarian method for the assignment problem. Naval Research
   Logistics Quarterly 1955;2:83-97.
.. [2] Crouse DF. On implementing 2D rectangular assignment algorithms. IEEE Trans
   Aerosp Electron Syst 2016;52(4):1679-1696 (the algorithm behind
   ``scipy.optimize.linear_sum_assignment``).
.. [3] Eisenhauer EA, Therasse P, Bogaerts J, et al. New response evaluation criteria
   in solid tumours: revised RECIST guideline (version 1.1). Eur J Cancer
   2009;45(2):228-247, section 4.3 notes "lesions that split or coalesce".
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from emlesion.errors import InvalidParameterError, MaskError, format_message
from emlesion.io.labelmap import LabelMap
from emlesion.provenance import ProvenanceStep, jsonable

__all__ = [
    "DEFAULT_MAX_DISTANCE_MM",
    "DEFAULT_MIN_FRACTION",
    "EventKind",
    "LesionEvent",
    "LesionMatch",
    "MatchItem",
    "MatchOutcome",
    "Matching",
    "items_from_labelmap",
    "match_events",
    "match_items",
    "match_lesions",
]

#: Default centroid distance (mm) below which two lesions may be matched without
#: overlapping. A project heuristic: above the residual error of a rigid CT
#: registration (a few mm) plus the centroid drift of a heterogeneously responding
#: mass, below the distance between distinct nodal/extramedullary sites.
DEFAULT_MAX_DISTANCE_MM = 30.0
#: Default overlap (fraction of the smaller lesion) for a split fragment or a merge.
DEFAULT_MIN_FRACTION = 0.25


class EventKind(str, enum.Enum):
    """Kinds of lesion events reported by the matcher and the tracker."""

    SPLIT = "split"
    MERGE = "merge"
    REAPPEARANCE = "reappearance"


@dataclass(frozen=True)
class LesionMatch:
    """One reference/candidate pair chosen by the optimal assignment.

    Parameters
    ----------
    reference, candidate : int or str
        Reference key (baseline label, or track id when tracking) and candidate label.
    dice : float
        Dice coefficient of the two masks on the common grid.
    distance_mm : float
        Distance between the centroids (mm).
    cost : float
        ``(1 - dice) + distance_mm / max_distance_mm``.
    """

    reference: int | str
    candidate: int
    dice: float
    distance_mm: float
    cost: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return dict(jsonable(self.__dict__))


@dataclass(frozen=True)
class LesionEvent:
    """A split, a merge or a reappearance.

    Parameters
    ----------
    kind : EventKind
        What happened.
    references : tuple
        Reference keys involved (baseline labels or track ids). For a merge, the first
        is the reference that keeps the coalesced lesion.
    candidates : tuple of int
        Candidate labels involved. For a split, the first is the primary continuation
        chosen by the assignment, the others are the fragments.
    timepoint : str
        Timepoint label (set by the tracker; empty for a two-map match).
    description : str
        One human-readable sentence.
    """

    kind: EventKind
    references: tuple[int | str, ...]
    candidates: tuple[int, ...]
    timepoint: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", EventKind(self.kind))
        object.__setattr__(self, "references", tuple(self.references))
        object.__setattr__(self, "candidates", tuple(int(c) for c in self.candidates))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return dict(jsonable(self.__dict__))


@dataclass(frozen=True)
class Matching:
    """Correspondence between a reference and a candidate label map.

    Parameters
    ----------
    matches : tuple of LesionMatch
        One-to-one pairs of the optimal assignment.
    new : tuple of int
        Candidate labels without a match that are not split fragments.
    resolved : tuple of int
        Reference labels without a match that did not merge.
    events : tuple of LesionEvent
        Splits (one reference, primary candidate + fragments) and merges (primary
        reference + merged references, one candidate).
    max_distance_mm, min_fraction : float
        Parameters used.
    provenance : tuple of ProvenanceStep
        How the matching was made.
    """

    matches: tuple[LesionMatch, ...]
    new: tuple[int, ...]
    resolved: tuple[int | str, ...]
    events: tuple[LesionEvent, ...] = ()
    max_distance_mm: float = DEFAULT_MAX_DISTANCE_MM
    min_fraction: float = DEFAULT_MIN_FRACTION
    provenance: tuple[ProvenanceStep, ...] = field(default=())

    @property
    def pairs(self) -> dict[int | str, int]:
        """Reference key -> matched candidate label."""
        return {m.reference: m.candidate for m in self.matches}

    @property
    def splits(self) -> tuple[LesionEvent, ...]:
        """The split events."""
        return tuple(e for e in self.events if e.kind is EventKind.SPLIT)

    @property
    def merges(self) -> tuple[LesionEvent, ...]:
        """The merge events."""
        return tuple(e for e in self.events if e.kind is EventKind.MERGE)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "matches": [m.to_dict() for m in self.matches],
            "new": list(self.new),
            "resolved": jsonable(self.resolved),
            "events": [e.to_dict() for e in self.events],
            "max_distance_mm": self.max_distance_mm,
            "min_fraction": self.min_fraction,
            "provenance": [p.to_dict() for p in self.provenance],
        }

    def __repr__(self) -> str:
        pairs = ", ".join(f"{m.reference}->{m.candidate}" for m in self.matches)
        return (
            f"Matching([{pairs}], new={list(self.new)}, resolved={list(self.resolved)}, "
            f"splits={len(self.splits)}, merges={len(self.merges)})"
        )


# ---------------------------------------------------------------------- core
@dataclass(frozen=True)
class MatchItem:
    """One lesion on the common grid: key, flat voxel indices (sorted) and centroid.

    The unit :func:`match_items` works on; :mod:`emlesion.track.tracking` builds items of
    tracks (key = track id) as well as of labels.

    Parameters
    ----------
    key : int or str
        Label value or track id.
    voxels : ndarray of int
        Sorted flat indices of its voxels on the common grid.
    centroid_mm : ndarray
        LPS centroid (mm).
    """

    key: int | str
    voxels: np.ndarray
    centroid_mm: np.ndarray


@dataclass
class MatchOutcome:
    """Raw result of :func:`match_items`, by position in the reference and candidate lists.

    Parameters
    ----------
    pairs : list of (int, int, float, float, float)
        ``(i, j, dice, distance_mm, cost)`` of each matched reference ``i`` and candidate
        ``j``.
    fragments : dict of int to int
        Candidate ``j`` -> reference ``i`` it split from.
    merged : dict of int to int
        Reference ``i`` -> candidate ``j`` it merged into.
    new : list of int
        Unmatched candidates.
    resolved : list of int
        Unmatched references.
    """

    pairs: list[tuple[int, int, float, float, float]]  # (i, j, dice, distance, cost)
    fragments: dict[int, int]  # candidate j -> reference i it split from
    merged: dict[int, int]  # reference i -> candidate j it merged into
    new: list[int]
    resolved: list[int]


def items_from_labelmap(labels: LabelMap) -> list[MatchItem]:
    """Items of every label (flat voxel indices and LPS centroid).

    Parameters
    ----------
    labels : LabelMap
        Lesion labels.

    Returns
    -------
    list of MatchItem
        One per label value, in increasing label order (key = the label value).
    """
    flat = labels.array.ravel()
    nz = np.flatnonzero(flat)
    values = flat[nz]
    order = np.argsort(values, kind="stable")
    nz, values = nz[order], values[order]
    keys, starts = np.unique(values, return_index=True)
    items = []
    shape = labels.grid.shape
    for k, (key, start) in enumerate(zip(keys, starts)):
        stop = starts[k + 1] if k + 1 < len(starts) else len(values)
        vox = np.sort(nz[start:stop])
        idx = np.column_stack(np.unravel_index(vox, shape)).astype(float)
        centroid = labels.grid.index_to_lps(idx.mean(axis=0))
        items.append(MatchItem(int(key), vox, centroid))
    return items


def match_items(
    refs: Sequence[MatchItem],
    cands: Sequence[MatchItem],
    *,
    max_distance_mm: float,
    min_fraction: float,
) -> MatchOutcome:
    """Optimal assignment plus split/merge detection (see the module docstring).

    Parameters
    ----------
    refs, cands : sequence of MatchItem
        Reference and candidate lesions on the same grid.
    max_distance_mm : float
        Centroid distance below which non-overlapping lesions may match.
    min_fraction : float
        Overlap fraction that makes a further candidate a fragment (split) or a further
        reference merged.

    Returns
    -------
    MatchOutcome
    """
    nr, nc = len(refs), len(cands)
    inter = np.zeros((nr, nc))
    dice = np.zeros((nr, nc))
    dist = np.zeros((nr, nc))
    for i, r in enumerate(refs):
        for j, c in enumerate(cands):
            n = (
                np.intersect1d(r.voxels, c.voxels, assume_unique=True).size
                if r.voxels.size and c.voxels.size
                else 0
            )
            inter[i, j] = n
            tot = r.voxels.size + c.voxels.size
            dice[i, j] = 2.0 * n / tot if tot else 0.0
            dist[i, j] = float(np.linalg.norm(r.centroid_mm - c.centroid_mm))
    cost = (1.0 - dice) + dist / max_distance_mm
    admissible = (inter > 0) | (dist <= max_distance_mm)
    pairs: list[tuple[int, int, float, float, float]] = []
    if nr and nc:
        big = float(cost[admissible].sum()) + 1.0 if admissible.any() else 1.0
        big *= 10.0
        costs = np.where(admissible, cost, big)
        rows, cols = linear_sum_assignment(costs)
        for i, j in zip(rows, cols):
            if admissible[i, j]:
                pairs.append(
                    (int(i), int(j), float(dice[i, j]), float(dist[i, j]), float(cost[i, j]))
                )
    matched_r = {p[0] for p in pairs}
    matched_c = {p[1] for p in pairs}
    sizes_r = np.array([r.voxels.size for r in refs], dtype=float)
    sizes_c = np.array([c.voxels.size for c in cands], dtype=float)
    smaller = np.minimum(sizes_r[:, None], sizes_c[None, :]) if nr and nc else np.zeros((nr, nc))
    significant = (inter > 0) & (inter >= min_fraction * np.maximum(smaller, 1.0))
    fragments: dict[int, int] = {}
    for j in range(nc):
        if j in matched_c:
            continue
        hits = [i for i in range(nr) if significant[i, j] and i in matched_r]
        if hits:
            fragments[j] = max(hits, key=lambda i: inter[i, j])
    merged: dict[int, int] = {}
    for i in range(nr):
        if i in matched_r:
            continue
        hits = [j for j in range(nc) if significant[i, j] and j in matched_c]
        if hits:
            merged[i] = max(hits, key=lambda j: inter[i, j])
    new = [j for j in range(nc) if j not in matched_c and j not in fragments]
    resolved = [i for i in range(nr) if i not in matched_r and i not in merged]
    return MatchOutcome(pairs, fragments, merged, new, resolved)


def match_lesions(
    reference: LabelMap,
    candidate: LabelMap,
    *,
    max_distance_mm: float = DEFAULT_MAX_DISTANCE_MM,
    min_fraction: float = DEFAULT_MIN_FRACTION,
) -> Matching:
    """Match the lesions of two label maps that live on the same grid.

    Parameters
    ----------
    reference : LabelMap
        Baseline lesions (reference set).
    candidate : LabelMap
        Follow-up lesions already brought onto the same grid (see
        :func:`emlesion.track.resample_labels`).
    max_distance_mm : float
        Largest centroid distance at which two non-overlapping lesions may still match
        (``d_max`` of the cost).
    min_fraction : float
        Overlap, as a fraction of the smaller lesion, that makes a split fragment or a
        merge.

    Returns
    -------
    Matching
        Pairs, new and resolved labels, split and merge events.

    Raises
    ------
    MaskError
        If the two label maps are not on the same grid.

    Notes
    -----
    See the module docstring for the cost, the assignment and the split/merge rules.

    References
    ----------
    .. [1] Crouse DF. IEEE Trans Aerosp Electron Syst 2016;52(4):1679-1696.
    .. [2] Eisenhauer EA et al. Eur J Cancer 2009;45(2):228-247 (RECIST 1.1: lesions
       that split or coalesce).

    Examples
    --------
    >>> m = match_lesions(baseline_labels, followup_in_baseline)  # doctest: +SKIP
    >>> m.pairs, m.new, m.resolved  # doctest: +SKIP
    """
    if not reference.grid.same_as(candidate.grid):
        raise MaskError(
            format_message(
                "reference and candidate label maps are on different grids",
                series=candidate.source or None,
                fix="bring the follow-up labels onto the baseline grid with "
                "emlesion.track.resample_labels first",
            )
        )
    if max_distance_mm <= 0 or not 0 < min_fraction <= 1:
        raise InvalidParameterError(format_message(
            f"max_distance_mm must be > 0 and min_fraction in (0, 1], got {max_distance_mm} "
            f"and {min_fraction}",
            fix=f"use the defaults ({DEFAULT_MAX_DISTANCE_MM:g} mm, {DEFAULT_MIN_FRACTION:g}) "
            "or values in those ranges"))
    refs = items_from_labelmap(reference)
    cands = items_from_labelmap(candidate)
    out = match_items(refs, cands, max_distance_mm=max_distance_mm, min_fraction=min_fraction)
    matches = tuple(
        LesionMatch(refs[i].key, int(cands[j].key), d, dist, c) for i, j, d, dist, c in out.pairs
    )
    events = match_events(out, [r.key for r in refs], [int(c.key) for c in cands], "label")
    step = ProvenanceStep(
        "emlesion.track.match_lesions",
        rule="cost (1 - Dice) + distance/max_distance; optimal assignment; "
        "splits/merges by overlap",
        inputs={
            "max_distance_mm": max_distance_mm,
            "min_fraction": min_fraction,
            "n_reference": len(refs),
            "n_candidate": len(cands),
        },
    )
    return Matching(
        matches,
        tuple(int(cands[j].key) for j in out.new),
        tuple(refs[i].key for i in out.resolved),
        events,
        float(max_distance_mm),
        float(min_fraction),
        (step,),
    )


def match_events(
    out: MatchOutcome,
    ref_keys: Sequence[int | str],
    cand_keys: Sequence[int],
    noun: str,
    timepoint: str = "",
) -> tuple[LesionEvent, ...]:
    """Split and merge events of an outcome, in a stable order.

    Parameters
    ----------
    out : MatchOutcome
        The outcome of :func:`match_items`.
    ref_keys, cand_keys : sequence
        Keys of the references and candidates, by position.
    noun : str
        What a reference is called in the messages (``"label"``, ``"track"``).
    timepoint : str, optional
        Timepoint the events happen at.

    Returns
    -------
    tuple of LesionEvent
    """
    primary_c = {i: j for i, j, *_ in out.pairs}
    primary_r = {j: i for i, j, *_ in out.pairs}
    events: list[LesionEvent] = []
    by_ref: dict[int, list[int]] = {}
    for j, i in out.fragments.items():
        by_ref.setdefault(i, []).append(j)
    for i in sorted(by_ref):
        cands = (cand_keys[primary_c[i]], *sorted(cand_keys[j] for j in by_ref[i]))
        events.append(
            LesionEvent(
                EventKind.SPLIT,
                (ref_keys[i],),
                cands,
                timepoint,
                f"{noun} {ref_keys[i]} split into candidate labels {', '.join(map(str, cands))} "
                f"(primary {cands[0]})",
            )
        )
    by_cand: dict[int, list[int]] = {}
    for i, j in out.merged.items():
        by_cand.setdefault(j, []).append(i)
    for j in sorted(by_cand):
        refs = (ref_keys[primary_r[j]], *sorted((ref_keys[i] for i in by_cand[j]), key=str))
        events.append(
            LesionEvent(
                EventKind.MERGE,
                refs,
                (cand_keys[j],),
                timepoint,
                f"{noun}s {', '.join(map(str, refs))} merged into candidate label {cand_keys[j]} "
                f"(kept by {refs[0]})",
            )
        )
    return tuple(events)
