"""Lugano 2014 engines: quantified Deauville scale, PET-based and CT-based response.

References used in these cases: mediastinal blood pool SUVmax 2.0, liver SUVmax 3.0,
"markedly" factor 2 -> Deauville 2 <= 2.0 < 3 <= 3.0 < 4 <= 6.0 < 5 (Barrington 2014,
factor per domain reference 3.5). CT rules from Cheson 2014 (PR >= 50 % SPD decrease; CR
nodes LDi <= 15 mm; PD per lesion LDi > 15 mm, PPD +50 % from nadir, axis +5/+10 mm).
"""

from __future__ import annotations

import json

import pytest

from emlesion.response import (
    DeauvilleReferences,
    LesionObservation,
    LuganoCtCategory,
    LuganoPetCategory,
    ReferenceUptake,
    TimepointObservation,
    assess_lugano,
    assess_lugano_ct,
    assess_lugano_pet,
    deauville_score,
)

pytestmark = pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")

LIVER = ReferenceUptake(suv_max=3.0, suv_mean=2.0)
MED = ReferenceUptake(suv_max=2.0, suv_mean=1.5)


def pet(tid: str, suv: float | None = None, **kw: object) -> LesionObservation:
    return LesionObservation(tid, suv_max=suv, **kw)  # type: ignore[arg-type]


def ct(tid: str, ld: float, sa: float, node: bool = True, **kw: object) -> LesionObservation:
    return LesionObservation(tid, ld_mm=ld, sa_mm=sa, is_lymph_node=node,
                             **kw)  # type: ignore[arg-type]


def tp(label: str, *lesions: LesionObservation, **kw: object) -> TimepointObservation:
    kw.setdefault("liver", LIVER)
    kw.setdefault("blood_pool", MED)
    return TimepointObservation(label, None, lesions, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("suv", "score"), [
    (1.0, 2), (2.0, 2), (2.01, 3), (3.0, 3), (3.01, 4), (6.0, 4), (6.01, 5),
])
def test_deauville_boundaries(suv: float, score: int) -> None:
    s, text = deauville_score(pet("A", suv), tp("T"))
    assert s == score
    assert text.endswith(f"Deauville {score}")


def test_deauville_special_cases() -> None:
    assert deauville_score(pet("A", resolved=True), tp("T"))[0] == 1
    # mediastinum >= liver: compare with the liver; 2.9 <= liver 3.0 -> 2, 3.2 -> 4
    hot_med = tp("T", blood_pool=ReferenceUptake(suv_max=3.5))
    assert deauville_score(pet("A", 2.9), hot_med)[0] == 2
    assert deauville_score(pet("A", 3.2), hot_med)[0] == 4
    # configurable references: liver SUVmean 2.0 and factor 3 -> 6.5 > 6.0 -> 5
    refs = DeauvilleReferences(liver_statistic="mean", mediastinum_statistic="mean",
                               markedly_factor=3.0)
    assert deauville_score(pet("A", 6.5), tp("T"), refs)[0] == 5
    assert deauville_score(pet("A", 5.9), tp("T"), refs)[0] == 4
    assert deauville_score(pet("A"), tp("T"))[0] is None


# (baseline SUVmax 10 -> follow-up, expected, rule); follow-up scores are 4 or 5 (> 3.0)
PET_TABLE = [
    (7.0, "PMR", "LUGANO_PET.PMR.uptake_decrease"),   # -30 % exactly (inclusive)
    (7.01, "NMR", "LUGANO_PET.NMR"),                  # -29.9 %
    (13.0, "NMR", "LUGANO_PET.NMR"),                  # +30 % exactly (PMD exclusive)
    (13.01, "PMD", "LUGANO_PET.PMD.uptake_increase"),  # +30.1 %
    (3.0, "CMR", "LUGANO_PET.CMR"),                   # Deauville 3
]


@pytest.mark.parametrize(("f", "category", "rule"), PET_TABLE)
def test_pet_table(f: float, category: str, rule: str) -> None:
    a = assess_lugano_pet(tp("T0", pet("A", 10.0)), tp("T1", pet("A", f)))
    assert (a.category, a.rule) == (LuganoPetCategory(category), rule)


def test_pet_cmr_max_score_two() -> None:
    # score 3 (2.5) with cmr_max_score=2 -> not CMR; -75 % -> PMR
    a = assess_lugano_pet(tp("T0", pet("A", 10.0)), tp("T1", pet("A", 2.5)), cmr_max_score=2)
    assert a.category is LuganoPetCategory.PMR


def test_pet_new_lesions() -> None:
    b = tp("T0", pet("A", 10.0))
    avid = assess_lugano_pet(b, tp("T1", pet("A", 2.0), pet("N", 4.0)))  # N: Deauville 4
    assert (avid.category, avid.rule) == (LuganoPetCategory.PMD, "LUGANO_PET.PMD.new_lesion")
    faint = assess_lugano_pet(b, tp("T1", pet("A", 2.0), pet("N", 1.8)))  # N: Deauville 2
    assert faint.category is LuganoPetCategory.CMR
    assert any("new lesion N has Deauville 2" in w for w in faint.warnings)


def test_pet_resolved_and_identity_change() -> None:
    b = tp("T0", pet("A", 10.0), pet("B", 5.0))
    gone = assess_lugano_pet(b, tp("T1", pet("A", resolved=True), pet("B", resolved=True)))
    assert gone.category is LuganoPetCategory.CMR
    assert gone.numbers["followup_deauville_max"] == 1
    # hottest changes from A (10) to B (5.5): -45 % -> PMR, lesion ids reported
    a = assess_lugano_pet(b, tp("T1", pet("A", 2.0), pet("B", 5.5)))
    assert a.category is LuganoPetCategory.PMR
    assert (a.numbers["baseline_hottest_lesion"], a.numbers["followup_hottest_lesion"]) == \
        ("A", "B")


def test_pet_not_evaluable() -> None:
    assert assess_lugano_pet(tp("T0", pet("A", 10.0)), tp("T1", pet("A", 5.0), has_pet=False)
                             ).rule == "LUGANO_PET.NE.no_pet"
    a = assess_lugano_pet(tp("T0", pet("A", 10.0)), tp("T1", pet("A", 5.0), liver=None))
    assert a.rule == "LUGANO_PET.NE.not_scored"


# CT: baseline target node 40 x 30 (PPD 1200); (follow-up LDi, SDi, expected, rule)
CT_TABLE = [
    (30.0, 20.0, "PR", "LUGANO_CT.PR"),   # 600: -50 % exactly (inclusive)
    (30.0, 20.1, "SD", "LUGANO_CT.SD"),   # 603: -49.75 %
    (15.0, 10.0, "CR", "LUGANO_CT.CR"),   # node LDi 15 <= 15 mm
    (15.1, 10.0, "PR", "LUGANO_CT.PR"),   # LDi 15.1: not CR; 151 / 1200 = -87 %
]


@pytest.mark.parametrize(("ld", "sa", "category", "rule"), CT_TABLE)
def test_ct_table(ld: float, sa: float, category: str, rule: str) -> None:
    a = assess_lugano_ct(tp("T0", ct("N", 40.0, 30.0)), tp("T1", ct("N", ld, sa)))
    assert (a.category, a.rule) == (LuganoCtCategory(category), rule)
    assert a.numbers["baseline_spd_mm2"] == 1200.0


def test_ct_extranodal_must_resolve_for_cr() -> None:
    b = tp("T0", ct("M", 40.0, 30.0, node=False))
    assert assess_lugano_ct(b, tp("T1", ct("M", 8.0, 5.0, node=False))).category \
        is LuganoCtCategory.PR
    assert assess_lugano_ct(b, tp("T1", ct("M", 0, 0, node=False, resolved=True))).category \
        is LuganoCtCategory.CR


def test_ct_individual_lesion_progression() -> None:
    # node 20 x 10 (PPD 200, nadir LDi 20 <= 20 -> 5 mm step): 25 x 12 = 300, +50 %, +5 mm
    b = tp("T0", ct("N", 20.0, 10.0))
    a = assess_lugano_ct(b, tp("T1", ct("N", 25.0, 12.0)))
    assert (a.category, a.rule) == (LuganoCtCategory.PD, "LUGANO_CT.PD.lesion_progression")
    # 24.9 x 12 = 298.8: +49.4 % -> no PD; SPD up -> SD
    assert assess_lugano_ct(b, tp("T1", ct("N", 24.9, 12.0))).category is LuganoCtCategory.SD
    # nadir LDi 30 (> 20 -> 10 mm step): 30 x 20 = 600 -> 36 x 25 = 900 (+50 %, +6/+5 mm)
    big = tp("T0", ct("N", 30.0, 20.0))
    assert assess_lugano_ct(big, tp("T1", ct("N", 36.0, 25.0))).category is LuganoCtCategory.SD
    assert assess_lugano_ct(big, tp("T1", ct("N", 40.0, 25.0))).category is LuganoCtCategory.PD


def test_ct_new_lesions_and_regrowth() -> None:
    b = tp("T0", ct("N", 40.0, 30.0))
    new = assess_lugano_ct(b, tp("T1", ct("N", 20.0, 10.0), ct("X", 16.0, 9.0)))
    assert (new.category, new.rule) == (LuganoCtCategory.PD, "LUGANO_CT.PD.new_lesion")
    small = assess_lugano_ct(b, tp("T1", ct("N", 20.0, 10.0), ct("X", 15.0, 9.0)))
    assert small.category is LuganoCtCategory.PR
    assert any("small new lesion" in w for w in small.warnings)
    # extranodal new lesion 10.5 mm > 10 mm -> PD
    assert assess_lugano_ct(b, tp("T1", ct("N", 20.0, 10.0), ct("X", 10.5, 6.0, node=False))
                            ).category is LuganoCtCategory.PD
    # M resolved at T1, present at T2 -> regrowth PD
    b2 = tp("T0", ct("N", 40.0, 30.0), ct("M", 30.0, 20.0, node=False))
    t1 = tp("T1", ct("N", 20.0, 10.0), ct("M", 0, 0, node=False, resolved=True))
    t2 = tp("T2", ct("N", 20.0, 10.0), ct("M", 6.0, 5.0, node=False))
    a = assess_lugano_ct(b2, t2, previous=[t1])
    assert (a.category, a.rule) == (LuganoCtCategory.PD, "LUGANO_CT.PD.regrowth")


def test_without_ct_pet_still_assessed() -> None:
    b = tp("T0", LesionObservation("A", suv_max=10.0, ld_mm=40.0, sa_mm=30.0))
    f = tp("T1", LesionObservation("A", suv_max=5.0), has_ct=False)
    p, c = assess_lugano(b, f)
    assert p.category is LuganoPetCategory.PMR  # 10 -> 5: -50 %, Deauville 4
    assert (c.category, c.rule) == (LuganoCtCategory.NE, "LUGANO_CT.NE.no_ct")
    assert "no CT at T1" in c.reasons[0]
    assert json.loads(json.dumps(c.to_dict()))["category_description"] == "not evaluable"


def test_pet_unreported_baseline_lesion_is_not_read_as_resolved() -> None:
    # Bug: with no follow-up lesion reported the highest Deauville score defaulted to 1 and
    # the call was CMR; a lesion not reported is "not measured" (observations docstring),
    # so it cannot be scored -> NE, as for a reported lesion without a value.
    a = assess_lugano_pet(tp("T0", pet("A", 10.0)), tp("T1"))
    assert (a.category, a.rule) == (LuganoPetCategory.NE, "LUGANO_PET.NE.not_scored")
    # B reported (Deauville 3, 2.5 <= liver 3.0) but A not reported -> still NE, not CMR
    b = assess_lugano_pet(tp("T0", pet("A", 10.0), pet("B", 5.0)), tp("T1", pet("B", 2.5)))
    assert b.category is LuganoPetCategory.NE
    assert "A" in b.reasons[-1]
