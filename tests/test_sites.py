"""Site readouts: every tracked lesion read at every later timepoint, on PET and on CT.

Hand-built two-timepoint studies (no sample data): a 4 mm PET grid and a 2 x 2 x 4 mm CT
grid in one frame of reference (identity registration unless a test says otherwise). The
baseline is a hot soft-tissue ball of radius 14 mm in fat; the follow-ups are built so that
each expected value follows from the construction (comments give the arithmetic):

* the PET has no blur, so a site's SUVmax is the uptake painted in it;
* references: blood pool SUVmean 1.6 / SUVmax 2.0, liver SUVmean 2.1 / SUVmax 2.7, so the
  Deauville boundaries are 2.0 (mediastinum), 2.7 (liver) and 5.4 (2 x liver).
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import numpy as np
import pytest

from emlesion.io import LabelMap, Volume
from emlesion.io.geometry import Grid
from emlesion.measure import measure_lesions
from emlesion.report import tracks_array
from emlesion.response import LesionObservation, TimepointObservation, assess_lugano_ct
from emlesion.response.sites import SiteState, classify_site
from emlesion.study import Study, Timepoint
from emlesion.study.model import ReferenceStats
from emlesion.study.sites import read_sites
from emlesion.track import Registration, RegistrationQuality, TrackingResult, TrackState
from emlesion.track.tracking import LesionTrack, TrackPoint

PET_GRID = Grid((24, 32, 32), (0.0, 0.0, 0.0), (4.0, 4.0, 4.0))
CT_GRID = Grid((24, 64, 64), (-1.0, -1.0, 0.0), (2.0, 2.0, 4.0))
CENTRE = (64.0, 64.0, 48.0)
BLOOD = ReferenceStats("blood_pool", 1.6, 0.1, 1.28, 0.08, 20, (0.0, 0.0, 0.0), 10.0,
                       suv_max=2.0, sul_max=1.6)
LIVER = ReferenceStats("liver", 2.1, 0.2, 1.68, 0.16, 200, (0.0, 0.0, 0.0), 15.0,
                       suv_max=2.7, sul_max=2.16)


def _ball(grid: Grid, radius_mm: float) -> np.ndarray:
    k, j, i = np.indices(grid.shape, dtype=float)
    ox, oy, oz = grid.origin_mm
    sx, sy, sz = grid.spacing_mm
    x, y, z = ox + sx * i, oy + sy * j, oz + sz * k
    return ((x - CENTRE[0]) ** 2 + (y - CENTRE[1]) ** 2 + (z - CENTRE[2]) ** 2) <= radius_mm ** 2


def _timepoint(label: str, *, pet_radius: float, uptake: float, ct_radius: float,
               segmented: bool, with_ct: bool = True, day: int = 0) -> Timepoint:
    """PET: ``uptake`` in a ball of ``pet_radius`` (0.5 elsewhere); CT: 40 HU ball of
    ``ct_radius`` in fat (-100 HU), a muscle slab at x < 20 mm (50 HU), CT noise SD 8 HU."""
    pet = np.full(PET_GRID.shape, 0.5, np.float32)
    ball = _ball(PET_GRID, pet_radius) if pet_radius > 0 else np.zeros(PET_GRID.shape, bool)
    pet[ball] = uptake
    hu = np.full(CT_GRID.shape, -100.0)
    hu[:, :, :10] = 50.0
    if ct_radius > 0:
        hu[_ball(CT_GRID, ct_radius)] = 40.0
    hu += 8.0 * np.random.default_rng(3).standard_normal(hu.shape)
    suv = Volume(pet, PET_GRID, units="SUVbw")
    sul = Volume(pet * 0.8, PET_GRID, units="SULjanma")
    ct = Volume(hu.astype(np.float32), CT_GRID, units="HU") if with_ct else None
    labels = LabelMap((ball & segmented).astype(np.uint16), PET_GRID, {1: "mass"})
    table = measure_lesions(suv, labels, ct=ct, sul=sul, peak_variants=("global",))
    return Timepoint(label=label, date=dt.date(2024, 3, 1) + dt.timedelta(days=day), pet=suv,
                     ct=ct, suv=suv, sul=sul, anatomy=None, liver=LIVER, blood_pool=BLOOD,
                     lesions=labels, measurements=table)


def _study(followup: Timepoint, *, registration: Registration | None = None) -> Study:
    base = _timepoint("baseline", pet_radius=14.0, uptake=9.0, ct_radius=14.0, segmented=True)
    fu_state = TrackState.PRESENT if followup.measurements.labels else TrackState.RESOLVED
    fu_labels = (1,) if followup.measurements.labels else ()
    track = LesionTrack("T1", (TrackPoint("baseline", TrackState.PRESENT, (1,)),
                               TrackPoint(followup.label, fu_state, fu_labels)))
    reg = registration or Registration.identity(fixed_label="baseline",
                                                moving_label=followup.label)
    tracking = TrackingResult(("baseline", followup.label), (track,),
                              registrations={followup.label: reg})
    tps = (base, followup)
    sites, step = read_sites(tps, tracking)
    return Study(tps, tracking, "P", (step,), sites)


def test_regressed_below_threshold_above_liver_is_residual_uptake_deauville_4() -> None:
    # follow-up: a 9 mm ball with SUV 3.2 that the threshold did not segment. 3.2 lies
    # between the liver SUVmax 2.7 and 2 x 2.7 = 5.4 -> Deauville 4 (positive) -> residual
    fu = _timepoint("month1", pet_radius=9.0, uptake=3.2, ct_radius=9.0, segmented=False,
                    day=30)
    study = _study(fu)
    reading = study.site("T1", "month1")
    assert reading is not None
    assert reading.state is SiteState.RESIDUAL_UPTAKE
    assert reading.pet is not None and reading.pet.suv_max == pytest.approx(3.2)
    assert reading.deauville == 4
    assert any("3.20" in r and "Deauville 4" in r for r in reading.reasons)
    # the PET criteria see residual disease, not a resolved lesion
    _, obs = study.observations()
    les = obs.lesion("T1")
    assert les is not None and not les.pet_resolved and les.suv_max == pytest.approx(3.2)
    lugano_pet = {a.criterion.value: a for a in study.assess(["lugano_pet"])}["lugano_pet"]
    assert lugano_pet.category.value != "CMR"
    assert not any("no lesion left at its site" in r for r in lugano_pet.reasons)


@pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")
def test_site_below_blood_pool_is_metabolically_resolved() -> None:
    # follow-up PET is background (0.5 <= mediastinum 2.0) -> Deauville 2; the CT keeps a
    # residual 17 mm mass (ball of radius 8.5 mm)
    fu = _timepoint("month3", pet_radius=0.0, uptake=0.0, ct_radius=8.5, segmented=False,
                    day=90)
    study = _study(fu)
    reading = study.site("T1", "month3")
    assert reading is not None and reading.state is SiteState.METABOLICALLY_RESOLVED
    assert reading.deauville in (1, 2)
    assert reading.pet is not None and reading.pet.suv_max == pytest.approx(0.5)
    # CT: a 17 mm ball digitised on 2 mm pixels reads 16-18 mm edge to edge
    assert reading.ct is not None and reading.ct.found
    assert 15.0 <= reading.ct.ld_mm <= 19.0
    assert 15.0 <= reading.ct.sa_mm <= 19.0
    assert reading.ct.hu_mean == pytest.approx(40.0, abs=4.0)
    calls = {a.criterion.value: a for a in study.assess(["percist", "recist", "lugano_ct"])}
    # PET: resolved; CT: the residual mass is measured, so RECIST is PR, never CR
    assert calls["percist"].category.value == "CMR"
    # the CMR sentence quotes the former site's uptake (SUL image = 0.8 x SUV: 0.5 -> 0.40)
    assert any("former sites" in r and "SULpeak 0.40" in r and "Deauville 2" in r
               for r in calls["percist"].reasons), calls["percist"].reasons
    assert calls["recist"].category.value == "PR"
    assert any(f"{reading.ct.ld_mm:.1f} mm" in r for r in calls["recist"].reasons)
    # Lugano CT: an extranodal residual mass is not "absent" -> not CR
    assert calls["lugano_ct"].category.value != "CR"


def test_recist_cr_only_when_the_ct_shows_no_mass() -> None:
    fu = _timepoint("month3", pet_radius=0.0, uptake=0.0, ct_radius=0.0, segmented=False,
                    day=90)
    study = _study(fu)
    reading = study.site("T1", "month3")
    assert reading is not None and reading.ct is not None and not reading.ct.found
    assert reading.ct.ld_mm == 0.0 and reading.ct.reason  # 0 mm with the reason, not by accident
    calls = {a.criterion.value: a for a in study.assess(["recist", "lugano_ct"])}
    assert calls["recist"].category.value == "CR"
    assert calls["lugano_ct"].category.value == "CR"


def test_lugano_ct_residual_node_and_extranodal_mass() -> None:
    # Lugano 2014 (Cheson): CR = target nodes LDi <= 15 mm and no extranodal disease.
    def tp(label: str, ld: float, sa: float, node: bool) -> TimepointObservation:
        return TimepointObservation(label, lesions=(LesionObservation(
            "T1", "mass", "retroperitoneal", is_lymph_node=node, ld_mm=ld, sa_mm=sa,
            metabolically_resolved=label != "b"),))
    for node, ld, sa, expected in ((False, 17.0, 14.0, "PR"), (True, 14.0, 12.0, "CR")):
        a = assess_lugano_ct(tp("b", 50.0, 40.0, node), tp("f", ld, sa, node))
        assert a.category.value == expected, (node, a.reasons)


def test_timepoint_without_ct_has_null_ct_and_ne_ct_criteria() -> None:
    fu = _timepoint("month1", pet_radius=9.0, uptake=3.2, ct_radius=9.0, segmented=False,
                    with_ct=False, day=30)
    study = _study(fu)
    reading = study.site("T1", "month1")
    assert reading is not None and reading.ct is None
    assert tracks_array(study)[0]["sites"]["month1"]["ct"] is None
    calls = {a.criterion.value: a for a in study.assess(["recist", "lugano_ct"])}
    for name in ("recist", "lugano_ct"):
        assert calls[name].category.value == "NE"
        assert any("no CT" in r for r in calls[name].reasons)


def test_failed_registration_marks_readouts_unreliable() -> None:
    quality = RegistrationQuality(-0.2, -0.3, 0.5, 0.55, 0.9, 0.8, False)
    bad = Registration("rigid", (1, 0, 0, 0, 1, 0, 0, 0, 1), (0.0, 0.0, 0.0), "baseline",
                       "month1", quality)
    fu = _timepoint("month1", pet_radius=9.0, uptake=3.2, ct_radius=9.0, segmented=False,
                    day=30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = _study(fu, registration=bad)
    reading = study.site("T1", "month1")
    assert reading is not None and not reading.reliable
    assert any("unreliable" in str(w.message) for w in caught)
    assert any("quality check" in r for r in reading.reasons)
    # reported, but not used: the follow-up does not report T1 (not measured, not resolved)
    _, obs = study.observations()
    assert obs.lesion("T1") is None
    assert tracks_array(study)[0]["sites"]["month1"]["reliable"] is False


def test_site_outside_the_field_of_view_is_not_evaluable() -> None:
    # the follow-up patient moved 200 mm cranially (registration offset): the former lesion
    # maps outside the follow-up grid (z extent 96 mm)
    moved = Registration("rigid", (1, 0, 0, 0, 1, 0, 0, 0, 1), (0.0, 0.0, 200.0), "baseline",
                         "month1")
    fu = _timepoint("month1", pet_radius=0.0, uptake=0.0, ct_radius=0.0, segmented=False,
                    day=30)
    study = _study(fu, registration=moved)
    reading = study.site("T1", "month1")
    assert reading is not None and reading.state is SiteState.NOT_EVALUABLE
    assert any("field of view" in r for r in reading.reasons)
    _, obs = study.observations()
    assert obs.lesion("T1") is None


def test_report_dict_and_rows_carry_the_sites() -> None:
    fu = _timepoint("month3", pet_radius=0.0, uptake=0.0, ct_radius=8.5, segmented=False,
                    day=90)
    study = _study(fu)
    entry: dict[str, Any] = tracks_array(study)[0]
    assert set(entry["sites"]) == {"baseline", "month3"}
    month3 = entry["sites"]["month3"]
    reading = study.site("T1", "month3")
    assert reading is not None and reading.ct is not None and reading.pet is not None
    assert month3["state"] == "metabolically resolved"
    assert month3["ct"]["ld_mm"] == pytest.approx(reading.ct.ld_mm)
    assert month3["pet"]["suv_max"] == pytest.approx(reading.pet.suv_max)
    assert month3["pet"]["deauville"] == reading.deauville
    rows = [r for r in study.lesions_rows() if r["track_id"] == "T1"]
    assert [r["timepoint"] for r in rows] == ["baseline", "month3"]
    assert rows[1]["state"] == "metabolically resolved" and rows[1]["label"] is None
    assert rows[1]["ct_ld_mm"] == pytest.approx(reading.ct.ld_mm)


def test_classify_site_validates_its_parameter() -> None:
    from emlesion.errors import ResponseError

    with pytest.raises(ResponseError, match="residual_uptake_min_score"):
        classify_site("T1", "m", segmented=False, pet=None, ct=None, blood_pool=None,
                      liver=None, residual_uptake_min_score=6)


@pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")
def test_positive_footprint_uptake_without_ct_mass_is_not_residual_disease() -> None:
    # follow-up: SUV 3.2 (Deauville 4) in the footprint, but the CT is fat only: the uptake
    # belongs to whatever now fills the site (on the generator seeds 9 and 15, the sigmoid
    # colon over the resolved pelvic mass: SUVmax 3.03 / 3.24 above the liver SUVmax)
    fu = _timepoint("month3", pet_radius=9.0, uptake=3.2, ct_radius=0.0, segmented=False,
                    day=90)
    study = _study(fu)
    reading = study.site("T1", "month3")
    assert reading is not None and reading.ct is not None and not reading.ct.found
    assert reading.deauville == 4  # reported for the footprint, with its number
    assert reading.state is SiteState.METABOLICALLY_RESOLVED
    assert any("no soft-tissue mass" in r for r in reading.reasons)
    calls = {a.criterion.value: a for a in study.assess(["percist", "lugano_pet", "recist"])}
    assert calls["percist"].category.value == "CMR"
    assert calls["lugano_pet"].category.value == "CMR"
    assert calls["recist"].category.value == "CR"
    assert any("no lesion left at its site" in r for r in calls["lugano_pet"].reasons)
