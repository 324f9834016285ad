"""assess_all over a 3-timepoint study, value-object validation and Assessment output.

The study mimics the CAR-T case (right retroperitoneal and left pelvic-wall masses):
shrinkage at ~1 month and full resolution at ~3 months (domain reference 3.7 expects
PERCIST PMR then CMR, RECIST PR then CR).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from emlesion.errors import InconsistentStudyError, ResponseError
from emlesion.response import (
    Criterion,
    LesionObservation,
    ReferenceUptake,
    TimepointObservation,
    UptakeMetric,
    assess_all,
)

pytestmark = pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")

LIVER = ReferenceUptake(suv_mean=2.4, suv_sd=0.3, suv_max=3.2, sul_mean=1.8, sul_sd=0.2)
BLOOD = ReferenceUptake(suv_mean=1.6, suv_sd=0.2, suv_max=2.1, sul_mean=1.2, sul_sd=0.15)


def mass(tid: str, region: str, suv: float | None, sul: float | None, ld: float | None,
         sa: float | None, **kw: object) -> LesionObservation:
    return LesionObservation(tid, label=tid, region=region, suv_max=suv, sul_peak=sul,
                             ld_mm=ld, sa_mm=sa, **kw)  # type: ignore[arg-type]


def study(t2_has_ct: bool = True) -> list[TimepointObservation]:
    t0 = TimepointObservation("T0", dt.date(2024, 1, 10), (
        mass("RP", "retroperitoneum", 14.0, 9.0, 47.0, 35.0),
        mass("PW", "pelvic wall", 9.0, 6.0, 43.0, 25.0)), LIVER, BLOOD, 60.0)
    t1 = TimepointObservation("T1", dt.date(2024, 2, 12), (
        mass("RP", "retroperitoneum", 5.0, 3.5, 30.0, 20.0),
        mass("PW", "pelvic wall", 3.5, 2.4, 25.0, 15.0)), LIVER, BLOOD, 65.0)
    t2 = TimepointObservation("T2", dt.date(2024, 4, 15), (
        mass("RP", "retroperitoneum", None, None, None, None, resolved=True),
        mass("PW", "pelvic wall", None, None, None, None, resolved=True)),
        LIVER, BLOOD, 62.0, has_ct=t2_has_ct)
    return [t0, t1, t2]


def test_three_timepoint_case() -> None:
    calls = {(a.timepoint, a.criterion.value): a for a in assess_all(study())}
    assert len(calls) == 12  # 2 follow-ups x 6 calls (Lugano = PET + CT, plus LYRIC)
    got = {k: v.category.value for k, v in calls.items()}
    # T1: SULpeak 9.0 -> 3.5 = -61 %, -5.5; SUVmax 14 -> 5 = -64 %; RECIST 90 -> 55 = -38.9 %;
    # Lugano SPD 47*35 + 43*25 = 2720 -> 30*20 + 25*15 = 975 = -64 %; Deauville 4 (5 > 3.2)
    assert got[("T1", "percist")] == "PMR"
    assert got[("T1", "eortc")] == "PMR"
    assert got[("T1", "recist")] == "PR"
    assert got[("T1", "lugano_pet")] == "PMR"
    assert got[("T1", "lugano_ct")] == "PR"
    # T2: everything resolved
    assert got[("T2", "percist")] == "CMR"
    assert got[("T2", "eortc")] == "CMR"
    assert got[("T2", "recist")] == "CR"
    assert got[("T2", "lugano_pet")] == "CMR"
    assert got[("T2", "lugano_ct")] == "CR"
    # RECIST at T2 used T1 (55 mm) as nadir
    assert calls[("T2", "recist")].numbers["nadir_sum_mm"] == 55.0


def test_timepoint_without_ct() -> None:
    calls = {(a.timepoint, a.criterion.value): a for a in assess_all(study(t2_has_ct=False))}
    for crit in ("percist", "eortc", "lugano_pet"):
        assert calls[("T2", crit)].category.value == "CMR"
    for crit in ("recist", "lugano_ct"):
        a = calls[("T2", crit)]
        assert a.category.value == "NE"
        assert a.reasons[0].startswith("no CT at T2")


def test_criteria_and_options() -> None:
    out = assess_all(study(), criteria=["percist"],
                     options={"percist": {"progression_reference": "nadir"}})
    assert [a.criterion for a in out] == [Criterion.PERCIST, Criterion.PERCIST]
    assert out[1].parameters["progression_reference"] == "nadir"
    assert out[1].parameters["previous"] == ["T1"]
    assert assess_all(study()[:1]) == []
    with pytest.raises(ResponseError, match="unknown response criterion"):
        assess_all(study(), criteria=["who"])


def test_study_order_checked() -> None:
    t0, t1, t2 = study()
    with pytest.raises(InconsistentStudyError, match="dated before"):
        assess_all([t0, t2, t1])
    with pytest.raises(InconsistentStudyError, match="unique"):
        assess_all([t0, t0])


def test_json_output() -> None:
    for a in assess_all(study()):
        d = json.loads(json.dumps(a.to_dict()))
        assert d["category"] == a.category.value
        assert d["rule"] == a.rule
        assert d["provenance"][0]["operation"].startswith("emlesion.response.assess_")
        assert str(a).splitlines()[0].endswith(f"[rule {a.rule}]")


def test_observation_validation() -> None:
    with pytest.raises(ResponseError, match="appears twice"):
        TimepointObservation("T", lesions=(LesionObservation("A"), LesionObservation("A")))
    with pytest.raises(ResponseError, match="negative"):
        LesionObservation("A", ld_mm=-1.0)
    with pytest.raises(ResponseError, match="not finite"):
        LesionObservation("A", suv_max=float("nan"))
    with pytest.raises(ResponseError, match="both resolved and too_small"):
        LesionObservation("A", resolved=True, too_small=True)
    assert LesionObservation("A", is_lymph_node=True, region="neck").organ_key == "lymph nodes"
    assert UptakeMetric.coerce("sul_peak") is UptakeMetric.SULPEAK
    assert UptakeMetric.SULPEAK.field_name == "sul_peak"
    assert LesionObservation("A", sul_peak=3).uptake("SULpeak") == 3.0
    with pytest.raises(ResponseError, match="unknown uptake metric"):
        UptakeMetric.coerce("SUVfoo")
