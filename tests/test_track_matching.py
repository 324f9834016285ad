"""Lesion matching and tracking on hand-built label maps (no registration involved).

Every label map here is built from spheres (or boxes) at positions chosen by hand on a
2 mm isotropic grid whose voxel (0, 0, 0) sits at the LPS origin, so a voxel index
``(k, j, i)`` is at ``(2i, 2j, 2k)`` mm. The expected pairs follow from those positions
as explained next to each assertion.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from emlesion.errors import (
    GeometryWarning,
    InconsistentStudyError,
    InvalidParameterError,
    MaskError,
    UnknownKeyError,
)
from emlesion.io.geometry import Grid
from emlesion.io.labelmap import LabelMap
from emlesion.track import (
    EventKind,
    Registration,
    TimepointLesions,
    TrackingResult,
    TrackState,
    TransformType,
    match_lesions,
    track_lesions,
)

GRID = Grid((60, 40, 60), (0.0, 0.0, 0.0), (2.0, 2.0, 2.0))  # x, z in 0..118 mm, y in 0..78 mm


def spheres(*specs: tuple[int, tuple[float, float, float], float], grid: Grid = GRID) -> LabelMap:
    """Label map with ``(label, centre_mm (x, y, z), radius_mm)`` spheres (later wins)."""
    nz, ny, nx = grid.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    pts = grid.index_to_lps(np.stack([k, j, i], -1).reshape(-1, 3).astype(float))
    arr = np.zeros(nz * ny * nx, dtype=np.uint16)
    for label, centre, radius in specs:
        arr[np.linalg.norm(pts - np.asarray(centre), axis=1) <= radius] = label
    return LabelMap(arr.reshape(grid.shape), grid, source="hand-built")


def test_one_to_one_with_label_permutation() -> None:
    # Two lesions 60 mm apart; the follow-up numbers them the other way round and
    # shrinks them. Each follow-up sphere lies inside its baseline sphere (Dice > 0,
    # distance 0), so baseline 1 <-> follow-up 2 and baseline 2 <-> follow-up 1.
    base = spheres((1, (30, 40, 40), 10), (2, (90, 40, 40), 10))
    fu = spheres((2, (30, 40, 40), 6), (1, (90, 40, 40), 6))
    m = match_lesions(base, fu)
    assert m.pairs == {1: 2, 2: 1}
    assert m.new == () and m.resolved == () and m.events == ()
    # Dice of concentric spheres r=6 in r=10: 2*V6/(V6+V10) = 2*216/(216+1000) = 0.355
    # in the continuum; on a 2 mm grid the voxel counts differ by a few percent.
    for match in m.matches:
        assert match.distance_mm == pytest.approx(0.0, abs=1e-9)
        assert match.dice == pytest.approx(2 * 216 / 1216, abs=0.04)


def test_resolved_and_new() -> None:
    # Baseline lesion 2 (x=90) has nothing within 30 mm at follow-up -> resolved;
    # follow-up lesion 3 at (60, 40, 90) is 50+ mm from both baseline lesions -> new.
    base = spheres((1, (30, 40, 40), 8), (2, (90, 40, 40), 8))
    fu = spheres((1, (32, 40, 40), 8), (3, (60, 40, 90), 6))
    m = match_lesions(base, fu)
    assert m.pairs == {1: 1}
    assert m.resolved == (2,)
    assert m.new == (3,)
    # centroid distance 2 mm (hand placed)
    assert m.matches[0].distance_mm == pytest.approx(2.0, abs=1e-6)


def test_near_but_not_overlapping_is_matched_by_distance() -> None:
    # Follow-up lesion 20 mm away without overlap (radius 4 + 4 < 20): admissible because
    # 20 <= 30 mm; moved 40 mm it is not (40 > 30): resolved + new.
    base = spheres((1, (30, 40, 40), 4))
    assert match_lesions(base, spheres((1, (50, 40, 40), 4))).pairs == {1: 1}
    far = match_lesions(base, spheres((1, (70, 40, 40), 4)))
    assert far.pairs == {} and far.resolved == (1,) and far.new == (1,)
    # with a 50 mm gate the 40 mm pair is admissible again
    assert match_lesions(base, spheres((1, (70, 40, 40), 4)), max_distance_mm=50).pairs == {1: 1}


def test_optimal_assignment_beats_greedy_nearest_centroid() -> None:
    # Baseline A (label 1) at x=20, B (label 2) at x=40; follow-up P (label 1) at x=36,
    # Q (label 2) at x=57; radius 1.5 mm (one or two voxels each, no overlaps).
    # Centroid distances: A-P 16, A-Q 37, B-P 4, B-Q 17 (mm); gate 30 mm.
    # Greedy nearest-centroid takes B-P (4 mm) first; A-Q (37 mm) is then beyond the
    # gate, leaving A resolved and Q new: 1 match.
    # Optimal assignment: A-P (16) + B-Q (17) = 2 admissible matches.
    base = spheres((1, (20, 40, 40), 1.5), (2, (40, 40, 40), 1.5))
    fu = spheres((1, (36, 40, 40), 1.5), (2, (57, 40, 40), 1.5))
    # independent greedy check, plain numpy on the same centroids
    a = np.array([[20.0], [40.0]])
    b = np.array([[36.0], [57.0]])
    d = np.abs(a - b.T)
    greedy, used_r, used_c = [], set(), set()
    for flat in np.argsort(d, axis=None):
        r, c = np.unravel_index(flat, d.shape)
        if r not in used_r and c not in used_c and d[r, c] <= 30:
            greedy.append((int(r), int(c)))
            used_r.add(r)
            used_c.add(c)
    assert greedy == [(1, 0)]  # greedy: only B-P
    m = match_lesions(base, fu)
    assert m.pairs == {1: 1, 2: 2}
    assert m.new == () and m.resolved == ()
    assert [round(x.distance_mm) for x in m.matches] == [16, 17]


def test_split_keeps_fragments_on_parent() -> None:
    # Baseline: one elongated lesion (two touching spheres, label 1) along x from 20 to 80.
    # Follow-up: two separate pieces inside it (labels 4 and 5). Both overlap the
    # baseline lesion fully (fraction of the smaller = 1 >= 0.25) -> split of 1.
    # The larger piece (r=10 at x=35) has the better cost and is the primary match.
    base = spheres((1, (35, 40, 40), 14), (1, (65, 40, 40), 14))
    fu = spheres((4, (35, 40, 40), 10), (5, (68, 40, 40), 6))
    m = match_lesions(base, fu)
    assert m.pairs == {1: 4}
    assert m.new == ()  # the fragment is not a new lesion
    (split,) = m.splits
    assert split.kind is EventKind.SPLIT
    assert split.references == (1,) and split.candidates == (4, 5)


def test_merge_marks_secondary_reference() -> None:
    # Baseline: two lesions 24 mm apart (labels 1, 2). Follow-up: one lesion (label 7)
    # covering both. Each baseline lesion lies inside it (fraction 1) -> merge. The larger
    # baseline lesion (label 2, r=8) has the higher Dice with 7 and keeps it.
    base = spheres((1, (40, 40, 40), 6), (2, (64, 40, 40), 8))
    fu = spheres((7, (40, 40, 40), 10), (7, (64, 40, 40), 10))
    m = match_lesions(base, fu)
    assert m.pairs == {2: 7}
    assert m.resolved == ()  # merged, not resolved
    (merge,) = m.merges
    assert merge.references == (2, 1) and merge.candidates == (7,)


def test_small_touching_new_lesion_is_not_a_fragment() -> None:
    # A new lesion 16 mm beside a baseline lesion, no common voxel -> new, not a split.
    base = spheres((1, (40, 40, 40), 6))
    fu = spheres((1, (40, 40, 40), 6), (2, (40, 56, 40), 4))
    m = match_lesions(base, fu)
    assert m.pairs == {1: 1} and m.new == (2,) and m.splits == ()


def test_different_grids_are_refused() -> None:
    other = Grid((60, 40, 60), (1.0, 0.0, 0.0), (2.0, 2.0, 2.0))
    with pytest.raises(MaskError, match="different grids"):
        match_lesions(spheres((1, (30, 40, 40), 5)), spheres((1, (30, 40, 40), 5), grid=other))


def test_matching_to_dict_is_json() -> None:
    import json

    m = match_lesions(spheres((1, (30, 40, 40), 5)), spheres((1, (30, 40, 40), 5)))
    d = json.loads(json.dumps(m.to_dict()))
    assert d["matches"][0]["dice"] == pytest.approx(1.0)  # identical masks


# ---------------------------------------------------------------------- tracking
def _track(*tps: TimepointLesions) -> TrackingResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeometryWarning)
        return track_lesions(list(tps), register=False)


def test_three_timepoints_shrink_resolve_reappear_and_new() -> None:
    # Baseline: retroperitoneal (label 1) and pelvic (label 2) masses.
    # 1 month: both shrink; 3 months: 1 resolves, 2 is gone too but a lesion reappears
    # at the retroperitoneal site at 4 months, and a new lesion appears far away.
    t0 = spheres((1, (30, 30, 30), 12), (2, (90, 50, 60), 10))
    t1 = spheres((1, (30, 30, 30), 6), (2, (90, 50, 60), 5))
    t2 = spheres((1, (90, 50, 62), 3))  # only the pelvic one is left, relabelled 1
    t3 = spheres((3, (31, 30, 30), 4), (9, (60, 70, 100), 4))
    res = _track(
        TimepointLesions("baseline", t0),
        TimepointLesions("1mo", t1),
        TimepointLesions("3mo", t2),
        TimepointLesions("4mo", t3),
    )
    assert [t.id for t in res.tracks] == ["T1", "T2", "T3"]
    t1_ = res.track("T1")
    assert [p.state for p in t1_.points] == [
        TrackState.PRESENT,
        TrackState.PRESENT,
        TrackState.RESOLVED,
        TrackState.REAPPEARED,  # label 3 at 4mo is 1 mm from T1's last position
    ]
    assert t1_.label_at("4mo") == 3
    t2_ = res.track("T2")
    assert [p.state for p in t2_.points] == [
        TrackState.PRESENT,
        TrackState.PRESENT,
        TrackState.PRESENT,
        TrackState.RESOLVED,
    ]
    assert t2_.label_at("3mo") == 1
    # the far lesion (label 9 at 4mo) is new; ids continue after the baseline tracks.
    # Label 3 joined T1, so only label 9 opens a track (T3).
    t3_ = res.track("T3")
    assert [p.state for p in t3_.points][:3] == [TrackState.ABSENT] * 3
    assert t3_.state_at("4mo") is TrackState.NEW and t3_.label_at("4mo") == 9
    assert t3_.is_new and t3_.first_seen == "4mo"
    kinds = [(e.kind, e.timepoint, e.references) for e in res.events]
    assert (EventKind.REAPPEARANCE, "4mo", ("T1",)) in kinds
    assert res.track_of("4mo", 3) is t1_


def test_tracking_split_and_merge() -> None:
    t0 = spheres(
        (1, (35, 40, 40), 14), (1, (65, 40, 40), 14), (2, (40, 40, 90), 6), (3, (64, 40, 90), 8)
    )
    # 1 month: lesion 1 splits into 4 (primary) + 5; lesions 2 and 3 merge into 7.
    t1 = spheres(
        (4, (35, 40, 40), 10), (5, (68, 40, 40), 6), (7, (40, 40, 90), 10), (7, (64, 40, 90), 10)
    )
    res = _track(TimepointLesions("b", t0), TimepointLesions("m1", t1))
    assert len(res.tracks) == 3  # no new track for the fragment
    assert res.track("T1").labels_at("m1") == (4, 5)
    assert res.track("T3").labels_at("m1") == (7,)  # larger baseline lesion keeps the merge
    p = res.track("T2").point("m1")
    assert p.state is TrackState.MERGED and p.merged_into == "T3" and p.labels == ()
    assert {e.kind for e in res.events} == {EventKind.SPLIT, EventKind.MERGE}
    assert res.new_tracks("m1") == ()


def test_identity_fallback_warns_and_is_recorded() -> None:
    t0 = spheres((1, (30, 40, 40), 6))
    with pytest.warns(GeometryWarning, match="no CT at b, f"):
        res = track_lesions([("b", None, t0), ("f", None, t0)])
    assert res.registrations["f"].transform_type.value == "identity"
    assert any("no CT" in w for w in res.provenance[0].warnings)


def test_precomputed_registration_is_used() -> None:
    # Follow-up space = baseline shifted by +40 mm in x: T(p) = p + (40, 0, 0).
    # Without it the 40 mm apart lesions would not match (gate 30 mm).
    t0 = spheres((1, (30, 40, 40), 4))
    t1 = spheres((1, (70, 40, 40), 4))
    reg = Registration(TransformType.RIGID, (1, 0, 0, 0, 1, 0, 0, 0, 1), (40.0, 0.0, 0.0))
    res = track_lesions([("b", None, t0), ("f", None, t1)], registrations={"f": reg})
    assert res.track("T1").state_at("f") is TrackState.PRESENT
    assert res.aligned_labels["f"].voxel_counts() == t0.voxel_counts()  # exact 20-voxel shift
    res_id = _track(TimepointLesions("b", t0), TimepointLesions("f", t1))
    assert res_id.track("T1").state_at("f") is TrackState.RESOLVED


def test_tracking_rejects_duplicate_labels() -> None:
    t0 = spheres((1, (30, 40, 40), 4))
    with pytest.raises(InconsistentStudyError):
        track_lesions([("a", None, t0), ("a", None, t0)])
    with pytest.raises(InconsistentStudyError):
        track_lesions([])


def test_tracking_result_dict_and_repr() -> None:
    import json

    t0 = spheres((1, (30, 40, 40), 6))
    res = _track(TimepointLesions("b", t0), TimepointLesions("f", t0))
    d = json.loads(json.dumps(res.to_dict()))
    assert d["tracks"][0] == {
        "id": "T1",
        "points": [
            {"timepoint": "b", "state": "present", "labels": [1], "merged_into": None},
            {"timepoint": "f", "state": "present", "labels": [1], "merged_into": None},
        ],
    }
    assert "present[1]" in repr(res)
    assert res.table()[1]["state"] == "present"


def test_unknown_track_timepoint_and_bad_parameters_are_emlesion_errors() -> None:
    t0 = spheres((1, (30, 40, 40), 6))
    res = _track(TimepointLesions("b", t0), TimepointLesions("f", t0))
    with pytest.raises(UnknownKeyError, match=r"no track 'T9'.*Fix: use one of \['T1'\]"):
        res.track("T9")
    with pytest.raises(KeyError, match="has no timepoint 'x'"):  # still a KeyError
        res.track("T1").point("x")
    with pytest.raises(InvalidParameterError, match="max_distance_mm must be > 0"):
        match_lesions(t0, t0, max_distance_mm=0.0)
