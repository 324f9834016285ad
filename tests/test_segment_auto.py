"""Whole-body PET-only detection (detect_lesions) on a synthetic body with the physiological
uptake a PET shows: brain at the top, heart, bladder low in the midline, and three lesions
(one alone, two touching through a bridge of SUV 5). Piecewise-constant, no blur: the truth
is the voxel sets the phantom was built from.
"""

from __future__ import annotations

import numpy as np
import pytest

from emlesion.errors import SegmentationError
from emlesion.io.geometry import Grid
from emlesion.io.volume import SeriesIdentity, Volume
from emlesion.segment import detect_lesions, pet_only_landmarks

SP = 4.0  # mm, isotropic
SHAPE = (250, 50, 50)  # z (1000 mm), y, x
ORIGIN = (-100.0, -100.0, -1000.0)  # LPS of voxel (0, 0, 0); the top slice is z = -4 mm


def _ball(centre_mm: tuple[float, float, float], r_mm: float) -> np.ndarray:
    z, y, x = np.mgrid[0:SHAPE[0], 0:SHAPE[1], 0:SHAPE[2]].astype(float)
    px, py, pz = (ORIGIN[0] + x * SP, ORIGIN[1] + y * SP, ORIGIN[2] + z * SP)
    return ((px - centre_mm[0]) ** 2 + (py - centre_mm[1]) ** 2
            + (pz - centre_mm[2]) ** 2) <= r_mm ** 2


@pytest.fixture(scope="module")
def phantom() -> tuple[Volume, dict[str, np.ndarray]]:
    a = np.zeros(SHAPE)
    a[:, 5:45, 5:45] = 1.0  # body 160 x 160 mm, the whole z range; centre line x = y = -2
    parts = {
        "brain": _ball((-2.0, -2.0, -70.0), 64.0),          # reaches the top slice
        "heart": _ball((28.0, -10.0, -400.0), 36.0),        # 330 mm below the vertex, left
        "bladder": _ball((-2.0, -2.0, -900.0), 28.0),       # inferior 30 %, midline
        "lesion": _ball((-62.0, -30.0, -650.0), 12.0),      # right, anterior
        "node_a": _ball((40.0, 30.0, -300.0), 10.0),
        "node_b": _ball((40.0, 30.0, -272.0), 10.0),        # 28 mm from node_a
    }
    bridge = _ball((40.0, 30.0, -286.0), 6.0) & ~parts["node_a"] & ~parts["node_b"]
    a[bridge] = 5.0
    for name, suv in (("brain", 8.0), ("heart", 6.0), ("bladder", 20.0), ("lesion", 10.0),
                      ("node_a", 12.0), ("node_b", 8.0)):
        a[parts[name]] = suv
    grid = Grid(SHAPE, ORIGIN, (SP, SP, SP))  # type: ignore[arg-type]
    vol = Volume(a.astype(np.float32), grid,
                 SeriesIdentity(modality="PT", series_instance_uid="1.2.3.auto"), units="SUVbw")
    return vol, parts


def test_landmarks_find_the_brain_as_vertex(phantom: tuple[Volume, dict[str, np.ndarray]]) -> None:
    vol, _parts = phantom
    lm = pet_only_landmarks(vol)
    assert lm.brain_found
    assert lm.body_top_mm == pytest.approx(-4.0)  # origin -1000 + 249 x 4
    assert lm.vertex_mm == pytest.approx(-8.0)    # brain top: centre -70 + 64 -> slice -8 mm


def test_physiological_uptake_excluded_lesions_found_and_split(
        phantom: tuple[Volume, dict[str, np.ndarray]]) -> None:
    vol, parts = phantom
    res = detect_lesions(vol)  # suv4.0
    assert set(res.excluded) == {"brain", "heart", "bladder"}
    pred = np.asarray(res.labels.array)
    for organ in ("brain", "heart", "bladder"):
        assert not pred[parts[organ]].any()
    # the lone lesion: its ball exactly (SUV 10 on a background of 1)
    hit = np.unique(pred[parts["lesion"]])
    assert len(hit) == 1 and hit[0] > 0
    assert np.array_equal(pred == hit[0], parts["lesion"])
    # the touching nodes: one component at SUV >= 4 (through the bridge of 5), two lesions
    la = np.unique(pred[parts["node_a"]])
    lb = np.unique(pred[parts["node_b"]])
    assert len(la) == 1 and len(lb) == 1 and la[0] > 0 and lb[0] > 0 and la[0] != lb[0]
    assert len(res.lesions) == 3
    bridge_n = int(((pred == la[0]) | (pred == lb[0])).sum()
                   - parts["node_a"].sum() - parts["node_b"].sum())
    assert bridge_n == int(((np.asarray(vol.array) == 5.0)).sum())  # bridge shared out whole


def test_without_exclusion_the_organs_are_lesions(
        phantom: tuple[Volume, dict[str, np.ndarray]]) -> None:
    vol, parts = phantom
    res = detect_lesions(vol, exclude_physiological=False)
    pred = np.asarray(res.labels.array)
    assert pred[parts["bladder"]].all() and pred[parts["heart"]].all()
    with pytest.raises(SegmentationError, match="no liver reference"):
        detect_lesions(vol, method="percist-liver")
