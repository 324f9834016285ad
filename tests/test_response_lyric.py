"""LYRIC (Cheson 2016): indeterminate responses on top of the Lugano 2014 engines.

Definitions used for the expected values (Cheson BD et al. Blood 2016;128:2489, LYRIC table,
as tabulated in the J Nucl Med review table "Immune-modified 18F-FDG PET response criteria"):
IR1 = SPD up >= 50 % in the first 12 weeks; IR2 = SPD up < 50 % with (a) new lesion(s) or
(b) a lesion's PPD up >= 50 %; IR3 = FDG uptake up without a size or number increase meeting
progression. Confirmation (not verified against the paper's text, see assess_lyric): an IR1
/ IR2 becomes PD at an SPD increase >= 10 % over the SPD at the IR scan, or new lesions.

All SPDs below are hand-computed: one target node A 40 x 30 mm (PPD 1200 mm²) at baseline
unless stated. Lugano CT individual-lesion progression (Cheson 2014) needs LDi > 15 mm, PPD
>= +50 % from nadir and LDi or SDi up by >= 10 mm when the nadir LDi is > 20 mm. Deauville
references as in test_response_lugano: mediastinum SUVmax 2.0, liver 3.0, "markedly" 2 x liver
= 6.0 (score 5 above 6.0).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import warnings

import pytest

from emlesion.errors import ResponseError
from emlesion.response import (
    DEFAULT_CRITERIA,
    Criterion,
    LesionObservation,
    LyricBasis,
    LyricCategory,
    ReferenceUptake,
    ResponseWarning,
    TimepointObservation,
    assess_all,
    assess_lyric,
)

pytestmark = pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")

LIVER = ReferenceUptake(suv_max=3.0, suv_mean=2.0)
MED = ReferenceUptake(suv_max=2.0, suv_mean=1.5)
DAY0 = dt.date(2024, 1, 1)


def node(tid: str, ld: float, sa: float, suv: float | None = None,
         **kw: object) -> LesionObservation:
    return LesionObservation(tid, ld_mm=ld, sa_mm=sa, suv_max=suv, is_lymph_node=True,
                             **kw)  # type: ignore[arg-type]


def tp(label: str, day: int | None, *lesions: LesionObservation,
       **kw: object) -> TimepointObservation:
    kw.setdefault("liver", LIVER)
    kw.setdefault("blood_pool", MED)
    date = None if day is None else DAY0 + dt.timedelta(days=day)
    return TimepointObservation(label, date, lesions, **kw)  # type: ignore[arg-type]


T0 = tp("T0", 0, node("A", 40.0, 30.0))                  # SPD 1200
# 50 x 38.4 = 1920 = +60 %; LDi +10 mm (nadir LDi 40 > 20 -> 10 mm step): Lugano CT PD
FLARE = (node("A", 50.0, 38.4),)


# ---------------------------------------------------------------- IR1


def test_ir1_spd_up_60_pct_at_week_4() -> None:
    a = assess_lyric(T0, tp("W4", 28, *FLARE), basis="ct")
    # paper: SPD +>= 50 % in the first 12 weeks -> IR1 (1920 / 1200 = +60 %, day 28 <= 84)
    assert (a.category, a.rule) == (LyricCategory.IR1, "LYRIC.IR1.spd_increase")
    assert a.numbers["lugano_ct"]["rule"] == "LUGANO_CT.PD.lesion_progression"
    assert a.numbers["spd_change_from_nadir_pct"] == pytest.approx(60.0)
    assert a.numbers["days_since_therapy_start"] == 28
    # "without clinical deterioration" cannot be seen on images: assumed, with a warning
    assert any("clinical deterioration" in w for w in a.warnings)
    assert a.category.description.startswith("indeterminate response 1")


def test_same_flare_at_week_20_is_progression() -> None:
    a = assess_lyric(T0, tp("W20", 140, *FLARE), basis="ct")
    # day 140 > 84: IR1 does not apply, SPD +60 % is not < 50 % (no IR2) -> PD as Lugano
    assert (a.category, a.rule) == (LyricCategory.PD, "LYRIC.PD.spd_increase")


@pytest.mark.parametrize(("day", "category"), [
    (84, LyricCategory.IR1),   # 12 weeks exactly: still in the window (inclusive)
    (85, LyricCategory.PD),    # one day later: Lugano PD stands
])
def test_ir1_window_boundary(day: int, category: LyricCategory) -> None:
    assert assess_lyric(T0, tp("F", day, *FLARE), basis="ct").category is category


def test_ir1_window_counts_from_therapy_start() -> None:
    # CAR-T infused on day 10: the scan on day 90 is 80 days into therapy -> IR1
    start = DAY0 + dt.timedelta(days=10)
    a = assess_lyric(T0, tp("F", 90, *FLARE), basis="ct", therapy_start=start)
    assert a.category is LyricCategory.IR1
    assert a.numbers["days_since_therapy_start"] == 80
    # default start (baseline date): 90 days -> beyond the window -> PD
    assert assess_lyric(T0, tp("F", 90, *FLARE), basis="ct").category is LyricCategory.PD


def test_ir1_spd_measured_from_nadir() -> None:
    # T1 30 x 20 = 600 (PR, -50 %); T2 40 x 24 = 960: +60 % from the nadir 600 (and +50 %
    # PPD, LDi +10 mm from the nadir 30 mm: Lugano CT PD) although -20 % from baseline
    t1 = tp("T1", 28, node("A", 30.0, 20.0))
    a = assess_lyric(T0, tp("T2", 56, node("A", 40.0, 24.0)), [t1], basis="ct")
    assert a.category is LyricCategory.IR1
    assert a.numbers["nadir_spd_timepoint"] == "T1"
    assert a.numbers["spd_change_from_nadir_pct"] == pytest.approx(60.0)
    assert a.numbers["spd_change_from_baseline_pct"] == pytest.approx(-20.0)
    assert a.nadir == "T1"


# ---------------------------------------------------------------- IR2


def test_ir2a_new_lesion_with_spd_up_20_pct() -> None:
    # A 48 x 30 = 1440 (+20 %, LDi +8 mm < 10: no lesion PD); new node N LDi 20 > 15 mm
    a = assess_lyric(T0, tp("W4", 28, node("A", 48.0, 30.0), node("N", 20.0, 16.0)),
                     basis="ct")
    # paper: SPD up < 50 % with a new lesion -> IR2 (a)
    assert (a.category, a.rule) == (LyricCategory.IR2, "LYRIC.IR2.new_lesion")
    assert a.numbers["lugano_ct"]["rule"] == "LUGANO_CT.PD.new_lesion"
    assert a.numbers["new_lesions"] == ["N"]
    assert a.numbers["spd_change_from_nadir_pct"] == pytest.approx(20.0)


def test_ir2b_one_lesion_ppd_up_60_pct_spd_up_30_pct() -> None:
    # baseline A 40 x 30 = 1200, B 30 x 20 = 600: SPD 1800
    b = tp("T0", 0, node("A", 40.0, 30.0), node("B", 30.0, 20.0))
    # A 40 x 34.5 = 1380 (+15 %); B 40 x 24 = 960 (+60 %, LDi +10 mm): SPD 2340 = +30 %
    a = assess_lyric(b, tp("W8", 56, node("A", 40.0, 34.5), node("B", 40.0, 24.0)),
                     basis="ct")
    # paper: SPD up < 50 % with a lesion's PPD up >= 50 % -> IR2 (b)
    assert (a.category, a.rule) == (LyricCategory.IR2, "LYRIC.IR2.lesion_increase")
    assert a.numbers["spd_change_from_nadir_pct"] == pytest.approx(30.0)
    assert a.numbers["lesions"]["B"]["ppd_change_from_nadir_pct"] == pytest.approx(60.0)


# ---------------------------------------------------------------- IR3


def test_ir3_uptake_up_sizes_stable() -> None:
    b = tp("T0", 0, node("A", 40.0, 30.0, suv=10.0))
    # SUVmax 10 -> 14: +40 % (> 30 %), Deauville 5 (14 > 6.0): Lugano PET PMD; CT SD (0 %)
    a = assess_lyric(b, tp("W4", 28, node("A", 40.0, 30.0, suv=14.0)))
    # paper: uptake up without a size or number increase meeting PD -> IR3
    assert (a.category, a.rule) == (LyricCategory.IR3, "LYRIC.IR3.uptake_increase")
    assert a.numbers["lugano_pet"]["rule"] == "LUGANO_PET.PMD.uptake_increase"
    assert a.numbers["lugano_ct"]["category"] == "SD"
    assert a.numbers["hottest_uptake_change_pct"] == pytest.approx(40.0)


# ---------------------------------------------------------------- confirmation


W4_IR1 = tp("W4", 28, *FLARE)                             # IR1, SPD 1920


@pytest.mark.parametrize(("sa", "category", "rule"), [
    # 50 x 44.16 = 2208 = 1920 x 1.15: +15 % over the IR scan -> PD
    (44.16, LyricCategory.PD, "LYRIC.PD.confirmed_spd_increase"),
    # 50 x 42.24 = 2112 = 1920 x 1.10: +10 % exactly (inclusive) -> PD
    (42.24, LyricCategory.PD, "LYRIC.PD.confirmed_spd_increase"),
    # 50 x 40.32 = 2016 = +5 %: still Lugano PD vs the baseline nadir, not confirmed -> IR1
    (40.32, LyricCategory.IR1, "LYRIC.IR1.not_confirmed"),
])
def test_ir1_confirmation_by_spd(sa: float, category: LyricCategory, rule: str) -> None:
    a = assess_lyric(T0, tp("W10", 70, node("A", 50.0, sa)), [W4_IR1], basis="ct")
    assert (a.category, a.rule) == (category, rule)
    assert a.nadir == "W4"
    assert a.numbers["ir_reference_timepoint"] == "W4"
    assert a.numbers["previous_calls"] == {"W4": "IR1"}


@pytest.mark.parametrize(("ld", "sa", "category"), [
    (30.0, 20.0, LyricCategory.PR),   # 600 = -50 % from baseline (Lugano PR, inclusive)
    (40.0, 27.0, LyricCategory.SD),   # 1080 = -10 %: Lugano SD
])
def test_ir_then_shrinkage_resolves_to_lugano(ld: float, sa: float,
                                              category: LyricCategory) -> None:
    a = assess_lyric(T0, tp("W12", 84, node("A", ld, sa)), [W4_IR1], basis="ct")
    assert (a.category, a.rule) == (category, f"LYRIC.{category.value}.lugano_ct")
    assert any("IR1 at W4 not confirmed" in r for r in a.reasons)


def test_ir2_confirmed_by_a_further_new_lesion() -> None:
    w4 = tp("W4", 28, node("A", 48.0, 30.0), node("N", 20.0, 16.0))          # IR2 (a)
    # M: a node LDi 18 > 15 mm absent at W4 -> PD
    w10 = tp("W10", 70, node("A", 48.0, 30.0), node("N", 20.0, 16.0), node("M", 18.0, 12.0))
    a = assess_lyric(T0, w10, [w4], basis="ct")
    assert (a.category, a.rule) == (LyricCategory.PD, "LYRIC.PD.confirmed_new_lesion")
    assert a.numbers["new_lesions_since_ir"] == ["M"]
    # no lesion new since W4 and SPD unchanged (1440): N keeps Lugano at PD, the IR2 stands
    same = tp("W10", 70, node("A", 48.0, 30.0), node("N", 20.0, 16.0))
    b = assess_lyric(T0, same, [w4], basis="ct")
    assert (b.category, b.rule) == (LyricCategory.IR2, "LYRIC.IR2.not_confirmed")
    # a new node of LDi 12 mm (<= 15 mm) is not counted by Lugano: no confirmation
    small = tp("W10", 70, node("A", 48.0, 30.0), node("N", 20.0, 16.0), node("M", 12.0, 8.0))
    c = assess_lyric(T0, small, [w4], basis="ct")
    assert c.category is LyricCategory.IR2
    assert any("not counted by Lugano" in w for w in c.warnings)


def test_ir3_confirmed_by_size_progression() -> None:
    b = tp("T0", 0, node("A", 40.0, 30.0, suv=10.0))
    w4 = tp("W4", 28, node("A", 40.0, 30.0, suv=14.0))                       # IR3
    # still SUVmax 14 (PET PMD) and now 50 x 38.4 (Lugano CT individual-lesion PD)
    a = assess_lyric(b, tp("W8", 56, node("A", 50.0, 38.4, suv=14.0)), [w4])
    assert (a.category, a.rule) == (LyricCategory.PD, "LYRIC.PD.confirmed_size_progression")
    # uptake still up, sizes still stable: the IR3 stands
    c = assess_lyric(b, tp("W8", 56, node("A", 40.0, 30.0, suv=14.0)), [w4])
    assert (c.category, c.rule) == (LyricCategory.IR3, "LYRIC.IR3.not_confirmed")


def test_progression_after_pd_stays_pd() -> None:
    w10 = tp("W10", 70, node("A", 50.0, 44.16))            # PD confirmed (+15 % over W4)
    a = assess_lyric(T0, tp("W16", 112, node("A", 50.0, 44.16)), [W4_IR1, w10], basis="ct")
    assert (a.category, a.rule) == (LyricCategory.PD, "LYRIC.PD.after_pd")
    assert a.numbers["previous_calls"] == {"W4": "IR1", "W10": "PD"}


# ---------------------------------------------------------------- Lugano pass-through


@pytest.mark.parametrize(("suv", "category", "lugano_pet"), [
    (2.5, LyricCategory.CR, "CMR"),   # Deauville 3 (2.0 < 2.5 <= liver 3.0)
    (5.0, LyricCategory.PR, "PMR"),   # Deauville 4, 10 -> 5 = -50 % (<= -30 %)
    (9.0, LyricCategory.SD, "NMR"),   # Deauville 5, -10 %: no significant change
])
def test_pet_based_lugano_call_passes_through(suv: float, category: LyricCategory,
                                              lugano_pet: str) -> None:
    b = tp("T0", 0, node("A", 40.0, 30.0, suv=10.0))
    a = assess_lyric(b, tp("F", 28, node("A", 40.0, 30.0, suv=suv)))
    # Lugano 2014: PET-CT based response takes precedence (CT here: SD, SPD 0 %)
    assert (a.category, a.rule) == (category, f"LYRIC.{category.value}.lugano_pet")
    assert a.numbers["lugano_pet"]["category"] == lugano_pet
    assert a.numbers["lugano_basis_used"] == "lugano_pet"


@pytest.mark.parametrize(("ld", "sa", "category"), [
    (15.0, 10.0, LyricCategory.CR),   # node LDi 15 <= 15 mm
    (30.0, 20.0, LyricCategory.PR),   # 600 = -50 %
    (36.0, 30.0, LyricCategory.SD),   # 1080 = -10 %
])
def test_ct_based_lugano_call_passes_through(ld: float, sa: float,
                                             category: LyricCategory) -> None:
    a = assess_lyric(T0, tp("F", 28, node("A", ld, sa)), basis=LyricBasis.CT)
    assert (a.category, a.rule) == (category, f"LYRIC.{category.value}.lugano_ct")
    assert "lugano_pet" not in a.numbers


def test_no_pet_falls_back_to_ct() -> None:
    a = assess_lyric(T0, tp("F", 28, node("A", 30.0, 20.0), has_pet=False))
    assert (a.category, a.rule) == (LyricCategory.PR, "LYRIC.PR.lugano_ct")
    assert any("no evaluable PET-based call" in w for w in a.warnings)


def test_ct_progression_under_pet_non_progression_is_not_ir() -> None:
    b = tp("T0", 0, node("A", 40.0, 30.0, suv=10.0))
    # SUVmax unchanged (NMR) while the node grows to 50 x 38.4 (Lugano CT PD)
    a = assess_lyric(b, tp("F", 28, node("A", 50.0, 38.4, suv=10.0)))
    assert a.category is LyricCategory.SD
    assert any("CT-based call is PD" in w for w in a.warnings)
    # the same with basis="ct" (histology not FDG-avid): IR1
    assert assess_lyric(b, tp("F", 28, node("A", 50.0, 38.4, suv=10.0)),
                        basis="ct").category is LyricCategory.IR1


def test_not_evaluable_without_pet_and_ct() -> None:
    a = assess_lyric(T0, tp("F", 28, node("A", 30.0, 20.0), has_pet=False, has_ct=False))
    assert (a.category, a.rule) == (LyricCategory.NE, "LYRIC.NE.no_lugano_call")
    assert not a.evaluable


# ---------------------------------------------------------------- options and errors


def test_without_dates_ir1_is_not_assigned() -> None:
    a = assess_lyric(tp("T0", None, node("A", 40.0, 30.0)), tp("F", None, *FLARE),
                     basis="ct")
    assert a.category is LyricCategory.PD
    assert any("IR1 window" in w for w in a.warnings)


def test_bad_options_raise() -> None:
    with pytest.raises(ResponseError, match="unknown LYRIC basis"):
        assess_lyric(T0, tp("F", 28, *FLARE), basis="mri")
    with pytest.raises(ResponseError, match="before the start of therapy"):
        assess_lyric(T0, tp("F", 28, *FLARE), therapy_start=DAY0 + dt.timedelta(days=30))
    with pytest.raises(ResponseError, match="must be positive"):
        assess_lyric(T0, tp("F", 28, *FLARE), ir1_window_days=0)


# ---------------------------------------------------------------- registration


def test_registered_criterion_and_assess_all() -> None:
    assert Criterion.coerce("LYRIC") is Criterion.LYRIC
    assert Criterion.LYRIC.full_name == "LYRIC (Cheson 2016)"
    assert "lyric" in DEFAULT_CRITERIA
    study = [T0, W4_IR1, tp("W10", 70, node("A", 50.0, 44.16))]
    out = assess_all(study, criteria=["lyric"], options={"lyric": {"basis": "ct"}})
    assert [(a.timepoint, a.category) for a in out] == [("W4", LyricCategory.IR1),
                                                      ("W10", LyricCategory.PD)]
    d = json.loads(json.dumps(out[0].to_dict()))
    assert (d["criterion"], d["category"]) == ("lyric", "IR1")
    assert d["category_description"].startswith("indeterminate response 1")


@pytest.mark.filterwarnings("default")
def test_warnings_point_at_the_caller_once() -> None:
    # the Lugano engines' warnings come through the LYRIC call, once, from the caller's line
    b = tp("T0", 0, node("A", 40.0, 30.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        assess_lyric(b, tp("F", 28, *FLARE, has_pet=False))
    found = [w for w in caught if issubclass(w.category, ResponseWarning)]
    assert found
    for w in found:
        assert os.path.realpath(w.filename) == os.path.realpath(__file__)
        assert w.lineno == line
        assert str(w.message).startswith("LYRIC (Cheson 2016) F: ")
    assert len({str(w.message) for w in found}) == len(found)
