"""Site readouts on the bundled sample: every track at every timepoint, on PET and on CT.

Expected values come from ``sample_scans/truth.json`` (the generator's truth: per lesion and
timepoint, ``ct`` = the CT truth mask's LD/SA on the CT grid, ``site`` = the uptake of the
lesion, or of the former lesion's footprint once it is gone, and its Deauville score) and from
the acceptance criteria of the follow-up issue (SUVmax within 5 %, LD within 4 mm, RECIST not
CR at month 3 while a residual mass is on the CT).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emlesion.response.sites import SiteState
from emlesion.study import Study

LABELS = ("baseline", "month1", "month3")
#: truth lesion name -> track id (T1 retroperitoneal, T2 pelvic: baseline label order)
TRACKS = {"retroperitoneal_right": "T1", "pelvic_wall_left": "T2"}

pytestmark = pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")


@pytest.fixture(scope="module")
def truth(sample_scans_dir: Path) -> dict[str, Any]:
    return json.loads((sample_scans_dir / "truth.json").read_text())


def _truth(truth: dict[str, Any], tp: str, name: str) -> dict[str, Any]:
    return next(les for les in truth["timepoints"][tp]["lesions"] if les["name"] == name)


def test_tracks_are_the_truth_lesions(sample_study: Study, truth: dict[str, Any]) -> None:
    assert sample_study.tracking is not None
    for name, tid in TRACKS.items():
        label = sample_study.tracking.track(tid).label_at("baseline")
        assert label is not None
        tp = sample_study.baseline
        assert tp.regions[label].region.value == _truth(truth, "baseline", name)["region"]


def test_every_track_has_a_site_at_every_timepoint(sample_study: Study) -> None:
    assert set(sample_study.sites) == set(TRACKS.values())
    for tid in TRACKS.values():
        assert list(sample_study.sites[tid]) == list(LABELS)


def test_month1_pelvic_site_uptake_and_deauville(sample_study: Study,
                                                 truth: dict[str, Any]) -> None:
    t = _truth(truth, "month1", "pelvic_wall_left")["site"]
    reading = sample_study.site("T2", "month1")
    assert reading is not None and reading.pet is not None
    assert reading.pet.suv_max == pytest.approx(t["suv_max"], rel=0.05)
    assert reading.deauville == t["deauville"]


@pytest.mark.parametrize("tp", LABELS)
def test_ct_longest_diameters_within_4_mm(sample_study: Study, truth: dict[str, Any],
                                          tp: str) -> None:
    for name, tid in TRACKS.items():
        t = _truth(truth, tp, name)["ct"]
        reading = sample_study.site(tid, tp)
        assert reading is not None and reading.ct is not None
        if t["ld_mm"] == 0.0:  # resolved on the CT too
            assert not reading.ct.found and reading.ct.ld_mm == 0.0, reading.ct
        else:
            assert reading.ct.found, (tid, tp, reading.ct)
            assert reading.ct.ld_mm == pytest.approx(t["ld_mm"], abs=4.0), (tid, tp)
            assert reading.ct.sa_mm == pytest.approx(t["sa_mm"], abs=4.0), (tid, tp)


def test_month3_residual_mass_measured_and_recist_not_cr(sample_study: Study,
                                                         truth: dict[str, Any]) -> None:
    t = _truth(truth, "month3", "retroperitoneal_right")
    reading = sample_study.site("T1", "month3")
    assert reading is not None and reading.ct is not None and reading.ct.found
    # the scar has no uptake above the blood pool: metabolically resolved, residual mass
    assert reading.state is SiteState.METABOLICALLY_RESOLVED and reading.residual_mass
    assert reading.deauville == t["site"]["deauville"]
    assert reading.ct.ld_mm == pytest.approx(t["ct"]["ld_mm"], abs=4.0)
    calls = {(a.timepoint, a.criterion.value): a for a in sample_study.assess()}
    assert calls[("month3", "recist")].category.value != "CR"
    assert calls[("month3", "lugano_ct")].category.value != "CR"
    # the PET calls are those of the truth: PMR at month 1, CMR at month 3
    assert calls[("month3", "percist")].category.value == truth["expected_response"][
        "month3"]["percist"]["category"]
    assert calls[("month3", "lugano_pet")].category.value == "CMR"
    # the RECIST reason quotes the CT number it used
    assert any(f"{reading.ct.ld_mm:.1f}" in r for r in calls[("month3", "recist")].reasons)


def test_resolved_pelvic_site_reads_its_footprint(sample_study: Study,
                                                  truth: dict[str, Any]) -> None:
    t = _truth(truth, "month3", "pelvic_wall_left")["site"]
    reading = sample_study.site("T2", "month3")
    assert reading is not None and reading.pet is not None
    assert reading.pet.voi == "footprint"
    assert reading.pet.suv_max == pytest.approx(t["suv_max"], rel=0.10)
    assert reading.deauville == t["deauville"]
    assert reading.state is SiteState.METABOLICALLY_RESOLVED
    # every sentence agrees with the numbers: Lugano PET must not say "no uptake above
    # background" for a site whose footprint has SUVmax above the mediastinum
    calls = {(a.timepoint, a.criterion.value): a for a in sample_study.assess(["lugano_pet"])}
    text = " ".join(calls[("month3", "lugano_pet")].reasons)
    assert f"Deauville {reading.deauville}" in text
    assert "no lesion left at its site" not in text
