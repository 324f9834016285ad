"""How load_study composes the stages on the bundled sample: typed results, not provenance.

* The uptake time is the SUV engine's elapsed time (``SUVFactors.elapsed_s``); it is compared
  with ``truth.json`` in tests/test_study.py.
* The SUL image is the SUVbw conversion rescaled by the body-size ratio: compared here with an
  independent full ``compute_suv(pet, "sul")``, bit for bit.
* The liver and blood-pool statistics given to the segmentation are the timepoint's own.
* The residual search (emlesion.segment.search_residual) runs where a track was lost, inside
  the track's footprint mapped by emlesion.track.map_mask through registration_map.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from emlesion.segment import ThresholdRule
from emlesion.study import Study
from emlesion.suv import compute_suv
from emlesion.track import MapTo, map_points, registration_map

pytestmark = pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")


def test_sul_image_equals_a_full_sul_conversion(sample_study: Study) -> None:
    for tp in sample_study.timepoints:
        assert tp.sul is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            direct = compute_suv(tp.pet, "sul")
        assert tp.sul.units == direct.units == "SULjanma"
        np.testing.assert_array_equal(np.asarray(tp.sul.array), np.asarray(direct.array))


def test_segmentation_used_the_timepoint_reference_statistics(sample_study: Study) -> None:
    tp = sample_study.timepoint("baseline")
    assert tp.liver is not None and tp.blood_pool is not None
    liver = tp.liver.suv_stats(tp.suv.units)
    # the same numbers a fresh computation on the liver VOI gives (anatomy.reference_stats)
    assert tp.anatomy is not None and tp.anatomy.liver_reference is not None
    fresh = tp.anatomy.liver_reference.reference_stats(tp.suv)
    assert (liver.mean, liver.sd, liver.n_voxels, liver.units) == (
        fresh.mean, fresh.sd, fresh.n_voxels, fresh.units)
    # and the segmentation's candidate step used that liver threshold (1.5 mean + 2 SD)
    cand = next(s for s in tp.lesions.provenance if s.operation == "emlesion.segment.candidates")
    assert cand.inputs["threshold"] == pytest.approx(liver.percist_threshold, rel=1e-12)


def test_registration_map_agrees_with_map_points(sample_study: Study) -> None:
    tracking = sample_study.tracking
    assert tracking is not None
    np.testing.assert_array_equal(registration_map(tracking, "month1", "month1"), np.eye(4))
    pts = np.array([[10.0, -20.0, 30.0], [-50.0, 5.0, -100.0]])
    # month3 points -> month1 space: through the baseline with the two registrations
    m = registration_map(tracking, "month1", "month3")
    via = map_points(tracking.registrations["month1"],
                     map_points(tracking.registrations["month3"], pts, to=MapTo.FIXED),
                     to=MapTo.MOVING)
    np.testing.assert_allclose(pts @ m[:3, :3].T + m[:3, 3], via, atol=1e-9)


def test_residual_search_lesion_is_recorded_and_measured(sample_study: Study) -> None:
    # month 1: the pelvic lesion T2 is below the liver threshold; the residual search finds it
    # (a low-contrast lesion delineated on the CT; tests/test_study_sites.py checks its size
    # against truth.json)
    tp = sample_study.timepoint("month1")
    step = next(s for s in tp.provenance if s.operation == "emlesion.segment.search_residual")
    (added,) = step.inputs["added"]
    assert added["track"] == "T2"
    label = int(added["label"])
    assert tp.threshold_rules[label] is ThresholdRule.CT_SOFT_TISSUE
    assert tp.lesions.provenance[-1] is step
    row = next(r for r in tp.measurements.rows if r.label == label)
    assert float(row.mtv_ml) == pytest.approx(added["volume_ml"], rel=1e-12)
    assert sample_study.tracking is not None
    assert label in sample_study.tracking.track("T2").point("month1").labels
