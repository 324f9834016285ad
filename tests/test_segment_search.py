"""emlesion.segment.search: the residual search and the search near earlier lesions.

Synthetic SUV image (hand-built, values known by construction): 24^3 voxels of 4 mm
(0.064 mL), background SUVbw 1.0; lesion A, a 3 x 3 x 3 cube of SUV 8.0 already labelled;
lesion B, a 4 x 4 x 4 cube of SUV 3.0 that the liver-seeded search is supposed to have missed.
With 41 % of SUVmax (1.23 for B) above the background 1.0, each lesion is exactly its cube:
B = 64 voxels = 4.096 mL.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from emlesion.errors import InvalidParameterError
from emlesion.io import Grid, LabelMap, Volume
from emlesion.io.volume import SeriesIdentity
from emlesion.segment import (
    RESIDUAL_SEED,
    Method,
    ThresholdRule,
    search_residual,
    segment_near_lesions,
)

SHAPE = (24, 24, 24)
GRID = Grid(SHAPE, (0.0, 0.0, 0.0), (4.0, 4.0, 4.0))
A = (slice(4, 7), slice(4, 7), slice(4, 7))
B = (slice(14, 18), slice(14, 18), slice(14, 18))


def _suv() -> Volume:
    arr = np.ones(SHAPE, np.float32)
    arr[A] = 8.0
    arr[B] = 3.0
    return Volume(arr, GRID, SeriesIdentity(series_instance_uid="1.2.3", modality="PT"),
                  units="SUVbw")


def _existing() -> LabelMap:
    arr = np.zeros(SHAPE, np.uint16)
    arr[A] = 1
    return LabelMap(arr, GRID, {1: "lesion A"}, "test")


def _mask(where: tuple[slice, slice, slice]) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[where] = True
    return m


def _quiet_search(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no anatomy: the segmentation warns about it
        return search_residual(*args, **kwargs)  # type: ignore[arg-type]


def test_residual_search_adds_the_missed_lesion_and_keeps_the_others() -> None:
    existing = _existing()
    before = existing.array.copy()
    # footprints: background far from both lesions, all of B, lesion A (already labelled:
    # nothing new), and an empty footprint (skipped)
    found = _quiet_search(_suv(), existing, {
        "T-bg": _mask((slice(2, 3), slice(20, 21), slice(20, 21))),
        "T-B": _mask(B),
        "T-A": _mask(A),
        "T-empty": np.zeros(SHAPE, bool),
    }, margin_mm=4.0, method=Method.PERCENT_41)
    assert [(f.key, f.label) for f in found.added] == [("T-B", 2)]
    f = found.added[0]
    assert f.volume_ml == pytest.approx(64 * 0.064)  # the 4^3 cube
    assert f.lesion.suv_max == pytest.approx(3.0)
    assert f.lesion.threshold == pytest.approx(0.41 * 3.0)
    assert f.lesion.threshold_rule is ThresholdRule.RELATIVE
    out = np.asarray(found.labels.array)
    assert (out[B] == 2).all() and int((out == 2).sum()) == 64
    np.testing.assert_array_equal(out[out != 2], before[out != 2])  # lesion A unchanged
    np.testing.assert_array_equal(existing.array, before)  # input not modified
    assert found.labels.names == {1: "lesion A", 2: f.lesion.name}
    assert found.step is not None and found.labels.provenance[-1] is found.step
    record = found.step.inputs["added"][0]
    assert record["track"] == "T-B" and record["volume_ml"] == pytest.approx(4.096)
    assert record["segmentation"][0]["suv_max"] == pytest.approx(3.0)  # the regrowth record
    assert RESIDUAL_SEED.value in found.step.rule


def test_residual_search_without_finding_returns_the_input() -> None:
    existing = _existing()
    found = _quiet_search(_suv(), existing,
                          {"T-bg": _mask((slice(2, 3), slice(20, 21), slice(20, 21)))},
                          margin_mm=8.0)
    assert found.added == () and found.step is None and found.labels is existing


def test_residual_search_bad_input() -> None:
    with pytest.raises(InvalidParameterError, match="margin_mm"):
        search_residual(_suv(), _existing(), {}, margin_mm=-1.0)
    with pytest.raises(InvalidParameterError, match=r"footprint 'T1'.*map_mask"):
        search_residual(_suv(), _existing(), {"T1": np.ones((2, 2, 2), bool)}, margin_mm=0.0)


def test_segment_near_lesions_keeps_the_lesion_at_each_earlier_centroid() -> None:
    prior_arr = np.zeros(SHAPE, np.uint16)
    prior_arr[15:17, 15:17, 15:17] = 1  # inside B
    prior_arr[20:22, 2:4, 2:4] = 2  # background, 40+ mm from A and B
    prior = LabelMap(prior_arr, GRID, {1: "pelvic left 1", 2: "nowhere"}, "test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        near = segment_near_lesions(_suv(), prior, radius_mm=20.0)
    assert near.names == {1: "near pelvic left 1"}
    out = np.asarray(near.array)
    assert (out[B] == 1).all() and int((out == 1).sum()) == 64
    assert near.grid == GRID
