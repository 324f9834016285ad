"""Lesion tracks across the timepoints of a longitudinal PET/CT study.

:func:`track_lesions` registers every follow-up CT to the baseline CT
(:func:`emlesion.track.register_ct`), brings each follow-up lesion label map onto the
baseline lesion grid through that transform, and matches the lesions of each
follow-up against **all tracks seen so far** (each at its most recent position) with
the matcher of :mod:`emlesion.track.matching`. Consequences of this design:

* a lesion that disappears and later comes back at the same place rejoins its old
  track (state ``REAPPEARED``, and a ``reappearance`` event), instead of opening a
  new track;
* a track whose lesion has shrunk keeps its most recent (smaller) position, so a
  follow-up is compared with the latest appearance, not with the baseline outline;
* a track id never changes: ``T1, T2, ...`` are given to the baseline lesions in
  ascending label order, then to new lesions in order of timepoint and label.

Per timepoint a track is in one :class:`TrackState`; splits keep every fragment on
the parent track (RECIST 1.1 sums fragments), merges keep the coalesced lesion on
one track and mark the others ``MERGED`` (see :mod:`emlesion.track.matching`).

References
----------
.. [1] Eisenhauer EA et al. New response evaluation criteria in solid tumours:
   revised RECIST guideline (version 1.1). Eur J Cancer 2009;45(2):228-247
   (new lesions, lesions that split or coalesce, reappearance after disappearance).
.. [2] Seymour L et al. iRECIST: guidelines for response criteria for use in trials
   testing immunotherapeutics. Lancet Oncol 2017;18(3):e143-e152 (reappearing and
   new lesions are recorded, not discarded).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emlesion.errors import (
    GeometryWarning,
    InconsistentStudyError,
    UnknownKeyError,
    format_message,
    warn_external,
)
from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import Volume
from emlesion.parallel import Deferred, submit, usable_cores
from emlesion.provenance import ProvenanceStep, record_warnings
from emlesion.track.matching import (
    DEFAULT_MAX_DISTANCE_MM,
    DEFAULT_MIN_FRACTION,
    EventKind,
    LesionEvent,
    MatchItem,
    items_from_labelmap,
    match_events,
    match_items,
)
from emlesion.track.registration import (
    Registration,
    TransformType,
    map_points,
    prepare_fixed_ct,
    register_ct,
    resample_labels,
)

__all__ = [
    "LesionTrack",
    "TimepointLesions",
    "TrackPoint",
    "TrackState",
    "TrackingResult",
    "track_lesions",
]


class TrackState(str, enum.Enum):
    """State of one track at one timepoint.

    * ``ABSENT``: the lesion has not appeared yet (timepoints before it was first seen).
    * ``PRESENT``: seen at baseline, or matched to the track at a follow-up.
    * ``NEW``: first seen at this follow-up, with no earlier track to join.
    * ``RESOLVED``: seen before, not found now (and not merged into another lesion).
    * ``REAPPEARED``: found again after having been ``RESOLVED``.
    * ``MERGED``: coalesced with the lesion of another track, which carries the
      measurement (see :attr:`TrackPoint.merged_into`).
    """

    ABSENT = "absent"
    PRESENT = "present"
    NEW = "new"
    RESOLVED = "resolved"
    REAPPEARED = "reappeared"
    MERGED = "merged"

    @property
    def detected(self) -> bool:
        """True when the track has its own lesion label(s) at this timepoint."""
        return self in (TrackState.PRESENT, TrackState.NEW, TrackState.REAPPEARED)


@dataclass(frozen=True)
class TimepointLesions:
    """The input of one timepoint.

    Parameters
    ----------
    label : str
        Timepoint label (e.g. ``"baseline"``, ``"1 month"``); unique within a study.
    lesions : LabelMap
        Lesion labels in this timepoint's frame of reference (usually the PET grid).
    ct : Volume, optional
        The CT of the same PET/CT session (same frame of reference as ``lesions``),
        used for registration; ``None`` when there is no CT.
    """

    label: str
    lesions: LabelMap
    ct: Volume | None = None


@dataclass(frozen=True)
class TrackPoint:
    """A track at one timepoint.

    Parameters
    ----------
    timepoint : str
        Timepoint label.
    state : TrackState
        See :class:`TrackState`.
    labels : tuple of int
        Lesion labels of this timepoint's own label map that belong to the track: one
        label normally, several after a split (primary first), none when not detected.
    merged_into : str, optional
        Track id that carries the coalesced lesion when ``state`` is ``MERGED``.
    """

    timepoint: str
    state: TrackState
    labels: tuple[int, ...] = ()
    merged_into: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", TrackState(self.state))
        object.__setattr__(self, "labels", tuple(int(v) for v in self.labels))

    @property
    def label(self) -> int | None:
        """The primary lesion label, or ``None`` when the track has none here."""
        return self.labels[0] if self.labels else None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "timepoint": self.timepoint,
            "state": self.state.value,
            "labels": list(self.labels),
            "merged_into": self.merged_into,
        }

    def __str__(self) -> str:
        if self.state is TrackState.MERGED:
            return f"merged->{self.merged_into}"
        labels = "+".join(map(str, self.labels))
        return f"{self.state.value}[{labels}]" if labels else self.state.value


@dataclass(frozen=True)
class LesionTrack:
    """One lesion followed across timepoints.

    Parameters
    ----------
    id : str
        Stable id (``"T1"``, ``"T2"``, ...).
    points : tuple of TrackPoint
        One point per timepoint, in study order.
    """

    id: str
    points: tuple[TrackPoint, ...]

    def point(self, timepoint: str) -> TrackPoint:
        """The point at ``timepoint`` (KeyError if unknown)."""
        for p in self.points:
            if p.timepoint == timepoint:
                return p
        raise UnknownKeyError(format_message(
            f"track {self.id} has no timepoint {timepoint!r}",
            fix=f"use one of {[p.timepoint for p in self.points]}"))

    def state_at(self, timepoint: str) -> TrackState:
        """State at ``timepoint``."""
        return self.point(timepoint).state

    def label_at(self, timepoint: str) -> int | None:
        """Primary lesion label at ``timepoint`` (``None`` when not detected)."""
        return self.point(timepoint).label

    def labels_at(self, timepoint: str) -> tuple[int, ...]:
        """All lesion labels of the track at ``timepoint`` (fragments included)."""
        return self.point(timepoint).labels

    @property
    def first_seen(self) -> str:
        """Timepoint at which the lesion was first detected."""
        return next(p.timepoint for p in self.points if p.state.detected)

    @property
    def is_new(self) -> bool:
        """True when the lesion was not present at baseline."""
        return self.points[0].state is TrackState.ABSENT

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {"id": self.id, "points": [p.to_dict() for p in self.points]}

    def __repr__(self) -> str:
        return (
            f"LesionTrack({self.id}: "
            + " -> ".join(f"{p.timepoint} {p}" for p in self.points)
            + ")"
        )


@dataclass(frozen=True, repr=False)
class TrackingResult:
    """Tracks, events and registrations of a longitudinal study.

    Parameters
    ----------
    timepoints : tuple of str
        Timepoint labels in study order; the first is the baseline (reference space).
    tracks : tuple of LesionTrack
        Baseline tracks in label order, then new tracks in order of appearance.
    events : tuple of LesionEvent
        Splits, merges and reappearances, with their timepoint; references are track
        ids, candidates are lesion labels of that timepoint.
    registrations : Mapping[str, Registration]
        Follow-up timepoint label -> transform from the baseline to that follow-up.
    aligned_labels : Mapping[str, LabelMap]
        Every timepoint's lesion labels on the baseline lesion grid (baseline as given).
    provenance : tuple of ProvenanceStep
        Parameters and warnings.
    """

    timepoints: tuple[str, ...]
    tracks: tuple[LesionTrack, ...]
    events: tuple[LesionEvent, ...] = ()
    registrations: Mapping[str, Registration] = field(default_factory=dict)
    aligned_labels: Mapping[str, LabelMap] = field(default_factory=dict)
    provenance: tuple[ProvenanceStep, ...] = ()

    @property
    def baseline(self) -> str:
        """Label of the baseline (reference) timepoint."""
        return self.timepoints[0]

    def track(self, track_id: str) -> LesionTrack:
        """The track with id ``track_id`` (KeyError if unknown)."""
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise UnknownKeyError(format_message(
            f"no track {track_id!r}", fix=f"use one of {[t.id for t in self.tracks]}"))

    def track_of(self, timepoint: str, label: int) -> LesionTrack | None:
        """The track that owns lesion ``label`` of ``timepoint`` (``None`` if none)."""
        for t in self.tracks:
            if int(label) in t.labels_at(timepoint):
                return t
        return None

    def new_tracks(self, timepoint: str) -> tuple[LesionTrack, ...]:
        """Tracks whose state at ``timepoint`` is ``NEW``."""
        return tuple(t for t in self.tracks if t.state_at(timepoint) is TrackState.NEW)

    def table(self) -> list[dict[str, Any]]:
        """One row per track and timepoint (track_id, timepoint, state, labels, merged_into)."""
        return [{"track_id": t.id, **p.to_dict()} for t in self.tracks for p in t.points]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (aligned label arrays are not included)."""
        return {
            "timepoints": list(self.timepoints),
            "tracks": [t.to_dict() for t in self.tracks],
            "events": [e.to_dict() for e in self.events],
            "registrations": {k: r.to_dict() for k, r in self.registrations.items()},
            "provenance": [p.to_dict() for p in self.provenance],
        }

    def __repr__(self) -> str:
        head = "track  " + "  ".join(f"{tp:>16}" for tp in self.timepoints)
        rows = [f"{t.id:<6} " + "  ".join(f"{p!s:>16}" for p in t.points) for t in self.tracks]
        ev = "".join(f"\n  event: {e.timepoint}: {e.description}" for e in self.events)
        return "TrackingResult(\n  " + "\n  ".join([head, *rows]) + ev + "\n)"


@dataclass
class _Builder:
    id: str
    points: list[TrackPoint]
    voxels: np.ndarray
    centroid_mm: np.ndarray

    @property
    def last_state(self) -> TrackState:
        return self.points[-1].state


def _coerce(tp: TimepointLesions | Sequence[Any]) -> TimepointLesions:
    if isinstance(tp, TimepointLesions):
        return tp
    label, ct, lesions = tp
    return TimepointLesions(str(label), lesions, ct)


def track_lesions(
    timepoints: Sequence[TimepointLesions | tuple[str, Volume | None, LabelMap]],
    *,
    transform: TransformType | str = TransformType.RIGID,
    registrations: Mapping[str, Registration | Deferred[Registration]] | None = None,
    register: bool = True,
    max_distance_mm: float = DEFAULT_MAX_DISTANCE_MM,
    min_fraction: float = DEFAULT_MIN_FRACTION,
    register_kwargs: Mapping[str, Any] | None = None,
) -> TrackingResult:
    """Follow lesions from the baseline through every follow-up.

    Parameters
    ----------
    timepoints : sequence of TimepointLesions or (label, ct, lesions) tuples
        In study order; the first is the baseline and defines the reference space
        (its lesion grid).
    transform : {"rigid", "affine"}
        Transform searched by :func:`register_ct`.
    registrations : Mapping[str, Registration or Deferred], optional
        Precomputed baseline-to-follow-up transforms by follow-up label (skips
        registration for those timepoints), or registrations still running in worker
        threads (:func:`emlesion.parallel.submit` of :func:`register_ct`, as
        :func:`emlesion.study.load_study` starts them while it loads the other timepoints):
        they are waited for here, and their warnings recorded in this step.
    register : bool
        When False, scanner coordinates are trusted (identity transforms) for every
        follow-up without a precomputed registration.
    max_distance_mm, min_fraction : float
        Matching parameters (see :func:`emlesion.track.match_lesions`).
    register_kwargs : Mapping, optional
        Extra keyword arguments for :func:`register_ct`.

    Returns
    -------
    TrackingResult
        Tracks with a state per timepoint, events, registrations, aligned labels.

    Raises
    ------
    InconsistentStudyError
        If there are no timepoints or two timepoints share a label.

    Warns
    -----
    GeometryWarning
        When a follow-up falls back to the identity transform (no CT at the baseline or
        at the follow-up, or ``register=False``), when a registration fails its
        quality check, and when a lesion disappears on resampling (it is then matched
        by its mapped centroid only).

    Notes
    -----
    The follow-up lesion masks are resampled (nearest neighbour) onto the baseline
    lesion grid for the overlap terms; the centroids are computed on the native
    follow-up grid and mapped with the inverse transform (more accurate than the
    centroid of the resampled mask). The PET and CT of one session are assumed to
    share their frame of reference, as on a PET/CT scanner.

    References
    ----------
    .. [1] Eisenhauer EA et al. Eur J Cancer 2009;45(2):228-247 (RECIST 1.1).

    Examples
    --------
    >>> result = track_lesions([("baseline", ct0, les0), ("1 month", ct1, les1)])  # doctest: +SKIP
    >>> result.track("T1").state_at("1 month")  # doctest: +SKIP
    <TrackState.PRESENT: 'present'>
    """
    tps = [_coerce(tp) for tp in timepoints]
    if not tps:
        raise InconsistentStudyError(format_message("track_lesions needs at least one timepoint"))
    names = [tp.label for tp in tps]
    if len(set(names)) != len(names):
        raise InconsistentStudyError(
            format_message(
                f"timepoint labels must be unique, got {names}", fix="rename the timepoints"
            )
        )
    ttype = TransformType(transform)
    base = tps[0]
    ref_grid = base.lesions.grid
    regs: dict[str, Registration] = {}
    aligned: dict[str, LabelMap] = {base.label: base.lesions}
    events: list[LesionEvent] = []
    with record_warnings() as rec:
        given = {label: reg.result() if isinstance(reg, Deferred) else reg
                 for label, reg in (registrations or {}).items()}
        # the follow-ups registered in parallel are looked up like precomputed ones
        solved = {**given, **_register_in_parallel(tps, given, register, ttype, register_kwargs)}
        builders: list[_Builder] = []
        for item in items_from_labelmap(base.lesions):
            tid = f"T{len(builders) + 1}"
            builders.append(
                _Builder(
                    tid,
                    [TrackPoint(base.label, TrackState.PRESENT, (int(item.key),))],
                    item.voxels,
                    item.centroid_mm,
                )
            )
        for k, tp in enumerate(tps[1:], start=1):
            reg = _registration_for(tp, base, solved, register, ttype, register_kwargs)
            regs[tp.label] = reg
            moved = resample_labels(reg, tp.lesions, ref_grid)
            aligned[tp.label] = moved
            cands = _followup_items(tp, moved, reg)
            refs = [MatchItem(b.id, b.voxels, b.centroid_mm) for b in builders]
            out = match_items(
                refs, cands, max_distance_mm=max_distance_mm, min_fraction=min_fraction
            )
            events.extend(
                match_events(
                    out, [b.id for b in builders], [int(c.key) for c in cands], "track", tp.label
                )
            )
            fragments_of: dict[int, list[int]] = {}
            for j, i in out.fragments.items():
                fragments_of.setdefault(i, []).append(j)
            owner = {j: builders[i].id for i, j, *_ in out.pairs}
            n_before = len(builders)
            for i, j, *_ in out.pairs:
                b = builders[i]
                parts = [j, *sorted(fragments_of.get(i, []), key=lambda jj: int(cands[jj].key))]
                state = (
                    TrackState.REAPPEARED
                    if b.last_state is TrackState.RESOLVED
                    else TrackState.PRESENT
                )
                if state is TrackState.REAPPEARED:
                    events.append(
                        LesionEvent(
                            EventKind.REAPPEARANCE,
                            (b.id,),
                            (int(cands[j].key),),
                            tp.label,
                            f"track {b.id} reappeared as label {int(cands[j].key)} "
                            "after being resolved",
                        )
                    )
                b.points.append(
                    TrackPoint(tp.label, state, tuple(int(cands[jj].key) for jj in parts))
                )
                b.voxels, b.centroid_mm = _union([cands[jj] for jj in parts])
            for i, j in out.merged.items():
                builders[i].points.append(TrackPoint(tp.label, TrackState.MERGED, (), owner[j]))
            for i in out.resolved:
                builders[i].points.append(TrackPoint(tp.label, TrackState.RESOLVED))
            for j in sorted(out.new, key=lambda jj: int(cands[jj].key)):
                c = cands[j]
                absent = [TrackPoint(t.label, TrackState.ABSENT) for t in tps[:k]]
                builders.append(
                    _Builder(
                        f"T{len(builders) + 1}",
                        [*absent, TrackPoint(tp.label, TrackState.NEW, (int(c.key),))],
                        c.voxels,
                        c.centroid_mm,
                    )
                )
            assert all(len(b.points) == k + 1 for b in builders[:n_before])
    step = ProvenanceStep(
        "emlesion.track.track_lesions",
        rule="follow-ups registered to baseline; matched against all tracks at their "
        "latest position",
        inputs={
            "timepoints": names,
            "transform": ttype.value,
            "max_distance_mm": max_distance_mm,
            "min_fraction": min_fraction,
            "register": register,
            "precomputed_registrations": sorted(
                label for label, reg in (registrations or {}).items()
                if not isinstance(reg, Deferred)),
        },
        warnings=rec.as_tuple(),
    )
    return TrackingResult(
        tuple(names),
        tuple(LesionTrack(b.id, tuple(b.points)) for b in builders),
        tuple(events),
        regs,
        aligned,
        (step,),
    )


def _register_in_parallel(
    tps: Sequence[TimepointLesions],
    given: Mapping[str, Registration],
    register: bool,
    ttype: TransformType,
    register_kwargs: Mapping[str, Any] | None,
) -> dict[str, Registration]:
    """Register the follow-ups to the baseline in worker threads when cores allow.

    SimpleITK releases the GIL while ITK runs, so two follow-ups registered in two
    threads use two cores. Each registration then gets ``cores // workers`` ITK threads
    (one on two cores): the metric evaluations of a registration are small (10-20
    thousand samples) and scale poorly across threads, so one registration per core is
    faster than two registrations one after the other with two threads each. The
    quality warnings are emitted here, in the caller's thread, in timepoint order
    (:func:`emlesion.parallel.submit`). The baseline CT, the fixed image of
    every registration, is prepared once (working image, coarse copy, sampling masks) and
    copied to each worker. Returns ``{}`` when fewer than
    two follow-ups need a registration or only one core is usable; they are then
    registered one by one by :func:`_registration_for`.
    """
    base = tps[0]
    todo = [
        tp for tp in tps[1:]
        if tp.label not in given and register and base.ct is not None and tp.ct is not None
    ]
    cores = usable_cores()
    if len(todo) < 2 or cores < 2:
        return {}
    workers = min(len(todo), cores)
    kwargs = dict(register_kwargs or {})
    kwargs.setdefault("number_of_threads", max(1, cores // workers))
    assert base.ct is not None
    base_ct = base.ct
    prepared = prepare_fixed_ct(base_ct, **kwargs)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emlesion-register") as pool:
        pending = [submit(pool, register_ct, base_ct, tp.ct, prepared_fixed=prepared,
                          transform=ttype, fixed_label=base.label, moving_label=tp.label,
                          **kwargs) for tp in todo]
        return {tp.label: d.result() for tp, d in zip(todo, pending)}


def _registration_for(
    tp: TimepointLesions,
    base: TimepointLesions,
    given: Mapping[str, Registration],
    register: bool,
    ttype: TransformType,
    register_kwargs: Mapping[str, Any] | None,
) -> Registration:
    if tp.label in given:
        return given[tp.label]
    if register and base.ct is not None and tp.ct is not None:
        return register_ct(
            base.ct,
            tp.ct,
            transform=ttype,
            fixed_label=base.label,
            moving_label=tp.label,
            **dict(register_kwargs or {}),
        )
    if not register:
        reason = "registration disabled (register=False)"
    else:
        missing = [t.label for t in (base, tp) if t.ct is None]
        reason = f"no CT at {', '.join(missing)}"
    warn_external(
        format_message(
            f"{reason}: follow-up {tp.label!r} is matched in scanner coordinates (identity "
            "transform); patient repositioning is not corrected",
            series=tp.lesions.source or None,
            fix="provide both CTs, or a precomputed Registration",
        ),
        GeometryWarning,
    )
    return Registration.identity(fixed_label=base.label, moving_label=tp.label, reason=reason)


def _followup_items(tp: TimepointLesions, moved: LabelMap, reg: Registration) -> list[MatchItem]:
    """Follow-up lesions: voxels on the baseline grid, centroids mapped from the native grid."""
    native = items_from_labelmap(tp.lesions)
    on_ref = {int(it.key): it.voxels for it in items_from_labelmap(moved)}
    items = []
    for it in native:
        centroid = map_points(reg, it.centroid_mm, to="fixed")
        vox = on_ref.get(int(it.key), np.zeros(0, dtype=np.intp))
        if vox.size == 0:
            warn_external(
                format_message(
                    f"lesion label {it.key} of {tp.label!r} vanished when resampled onto the "
                    "baseline grid; it is matched by its centroid only",
                    series=tp.lesions.source or None,
                ),
                GeometryWarning,
            )
        items.append(MatchItem(int(it.key), vox, centroid))
    return items


def _union(items: Sequence[MatchItem]) -> tuple[np.ndarray, np.ndarray]:
    """Voxels and volume-weighted centroid of several lesions (a split track)."""
    vox = np.unique(np.concatenate([it.voxels for it in items]))
    w = np.array([max(it.voxels.size, 1) for it in items], dtype=float)
    c = np.sum([wi * it.centroid_mm for wi, it in zip(w, items)], axis=0) / w.sum()
    return vox, c
