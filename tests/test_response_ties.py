"""One tie-break rule for every response engine: two lesions of exactly equal value.

Rule (``emlesion.response._common.TIE_BREAK_RULE``): the higher value ranks first; on an
exact tie the smaller ``track_id`` in natural order (``T2`` before ``T10``) wins. Each case
is run with the lesions listed in both orders, so that it also shows the choice does not
follow the input order. The ids are chosen so that the two earlier behaviours would fail:
PERCIST/RECIST/Lugano CT took the smallest id in *string* order (``"T10" < "T2"``), EORTC
and Lugano PET the largest (``"T2" > "T1"``).
"""

from __future__ import annotations

import pytest

from emlesion.response import (
    EortcCategory,
    LesionObservation,
    ReferenceUptake,
    TimepointObservation,
    assess_eortc,
    assess_lugano_ct,
    assess_lugano_pet,
    assess_percist,
    select_recist_targets,
)
from emlesion.response._common import hottest, rank_key, track_id_order

pytestmark = pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")

ORDERS = [pytest.param(False, id="listed-in-id-order"), pytest.param(True, id="reversed")]


def _tp(label: str, lesions: list[LesionObservation], reverse: bool,
        **kw: object) -> TimepointObservation:
    ordered = tuple(reversed(lesions)) if reverse else tuple(lesions)
    return TimepointObservation(label, None, ordered, **kw)  # type: ignore[arg-type]


def test_natural_track_order() -> None:
    # tracker ids are T1, T2, ... in the order first seen; T10 comes after T2
    assert sorted(["T10", "T2", "T1"], key=track_id_order) == ["T1", "T2", "T10"]
    a = LesionObservation("T10", suv_max=4.0)
    b = LesionObservation("T2", suv_max=4.0)
    c = LesionObservation("T3", suv_max=4.5)
    # higher value first whatever the id; then the smaller id
    assert sorted([(4.0, a), (4.0, b), (4.5, c)], key=rank_key) == [(4.5, c), (4.0, b),
                                                                    (4.0, a)]
    assert hottest([(4.0, a), (4.0, b)])[1].track_id == "T2"


@pytest.mark.parametrize("reverse", ORDERS)
def test_percist_equal_sulpeak(reverse: bool) -> None:
    # liver SULmean 1.0, SD 0.1 -> measurability 1.5 x 1.0 + 2 x 0.1 = 1.7; both 5.0 qualify
    liver = ReferenceUptake(sul_mean=1.0, sul_sd=0.1)
    blood = ReferenceUptake(sul_mean=0.8, sul_sd=0.1)
    base = _tp("b", [LesionObservation("T2", sul_peak=5.0),
                     LesionObservation("T10", sul_peak=5.0)], reverse, liver=liver,
               blood_pool=blood)
    fu = _tp("f", [LesionObservation("T2", sul_peak=3.0),
                   LesionObservation("T10", sul_peak=3.0)], reverse, liver=liver,
             blood_pool=blood)
    a = assess_percist(base, fu)
    assert a.numbers["baseline_lesions"] == ["T2"]
    assert a.numbers["followup_lesions"] == ["T2"]


@pytest.mark.parametrize("reverse", ORDERS)
def test_eortc_equal_suvmax(reverse: bool) -> None:
    blood = ReferenceUptake(suv_mean=1.5, suv_sd=0.25)
    base = _tp("b", [LesionObservation("T1", suv_max=10.0),
                     LesionObservation("T2", suv_max=10.0)], reverse, blood_pool=blood)
    # T1 falls 10 -> 5 (-50 %), T2 rises 10 -> 12 (+20 %): the target decides the call
    fu = _tp("f", [LesionObservation("T1", suv_max=5.0),
                   LesionObservation("T2", suv_max=12.0)], reverse, blood_pool=blood)
    a = assess_eortc(base, fu)
    assert a.numbers["target_lesion"] == "T1"
    # -50 % <= -15 % (one cycle): PMR; with T2 as target it would be +20 %: SMD
    assert a.category is EortcCategory.PMR
    assert a.numbers["change_pct"] == pytest.approx(-50.0)


@pytest.mark.parametrize("reverse", ORDERS)
def test_lugano_pet_equal_suvmax(reverse: bool) -> None:
    refs = {"liver": ReferenceUptake(suv_max=3.0, suv_mean=2.0),
            "blood_pool": ReferenceUptake(suv_max=2.0, suv_mean=1.5)}
    base = _tp("b", [LesionObservation("T1", suv_max=10.0),
                     LesionObservation("T2", suv_max=10.0)], reverse, **refs)
    fu = _tp("f", [LesionObservation("T1", suv_max=4.0),
                   LesionObservation("T2", suv_max=4.0)], reverse, **refs)
    a = assess_lugano_pet(base, fu)
    assert a.numbers["baseline_hottest_lesion"] == "T1"
    assert a.numbers["followup_hottest_lesion"] == "T1"


@pytest.mark.parametrize("reverse", ORDERS)
def test_recist_equal_ld(reverse: bool) -> None:
    base = _tp("b", [LesionObservation("T2", region="liver", ld_mm=20.0),
                     LesionObservation("T10", region="lung", ld_mm=20.0)], reverse)
    targets = select_recist_targets(base, max_targets=1)
    assert [t.track_id for t in targets] == ["T2"]


@pytest.mark.parametrize("reverse", ORDERS)
def test_lugano_ct_equal_ppd(reverse: bool) -> None:
    # both nodes 20 x 12 mm: PPD 240 mm^2 each
    base = _tp("b", [LesionObservation("T2", is_lymph_node=True, ld_mm=20.0, sa_mm=12.0),
                     LesionObservation("T10", is_lymph_node=True, ld_mm=20.0, sa_mm=12.0)],
               reverse, has_ct=True)
    a = assess_lugano_ct(base, base, max_targets=1)
    assert a.numbers["targets"] == ["T2"]
