"""RECIST 1.1 engine: target selection, sums, nodal rules, nadir, every boundary.

Rules (Eisenhauer 2009; EORTC RECIST FAQ): up to 5 targets, 2 per organ, all nodes one
organ; non-nodal measurable LD >= 10 mm, nodes SA >= 15 mm; PR >= 30 % decrease of the
baseline sum; PD >= 20 % and >= 5 mm over the nadir; CR all non-nodal gone and nodes
SA < 10 mm. Sums below are added by hand in the comments.
"""

from __future__ import annotations

import pytest

from emlesion.errors import ResponseError
from emlesion.response import (
    LesionObservation,
    RecistCategory,
    TimepointObservation,
    assess_recist,
    recist_lesion_size_mm,
    select_recist_targets,
)

pytestmark = pytest.mark.filterwarnings("ignore::emlesion.response.ResponseWarning")


def les(tid: str, ld: float | None = None, region: str = "", **kw: object) -> LesionObservation:
    return LesionObservation(tid, region=region or tid, ld_mm=ld, **kw)  # type: ignore[arg-type]


def node(tid: str, sa: float | None, **kw: object) -> LesionObservation:
    return LesionObservation(tid, region="pelvis", is_lymph_node=True, sa_mm=sa,
                             ld_mm=None if sa is None else sa + 5,
                             **kw)  # type: ignore[arg-type]


def tp(label: str, *lesions: LesionObservation, **kw: object) -> TimepointObservation:
    return TimepointObservation(label, None, lesions, **kw)  # type: ignore[arg-type]


# (baseline LDs A, B; follow-up LDs A, B; expected; rule)
TABLE = [
    ((60.0, 40.0), (42.0, 28.0), "PR", "RECIST.PR.sum_decrease"),  # 100 -> 70: -30 % exactly
    ((60.0, 40.0), (42.0, 28.1), "SD", "RECIST.SD"),               # 100 -> 70.1: -29.9 %
    ((15.0, 10.0), (18.0, 12.0), "PD", "RECIST.PD.sum_increase"),  # 25 -> 30: +20 %, +5 mm
    ((14.5, 10.0), (17.4, 12.0), "SD", "RECIST.SD"),               # 24.5 -> 29.4: +20 %, +4.9
    ((20.0, 10.0), (23.0, 12.0), "SD", "RECIST.SD"),               # 30 -> 35: +16.7 %, +5 mm
    ((60.0, 40.0), (0.0, 0.0), "CR", "RECIST.CR"),                 # both measured 0 mm
]


@pytest.mark.parametrize(("b", "f", "category", "rule"), TABLE)
def test_boundary_table(b: tuple[float, float], f: tuple[float, float], category: str,
                        rule: str) -> None:
    a = assess_recist(tp("T0", les("A", b[0]), les("B", b[1])),
                      tp("T1", les("A", f[0]), les("B", f[1])))
    assert a.category is RecistCategory(category)
    assert a.rule == rule
    assert a.numbers["baseline_sum_mm"] == pytest.approx(sum(b))
    assert a.numbers["followup_sum_mm"] == pytest.approx(sum(f))


def test_progression_is_judged_against_nadir() -> None:
    # baseline 100, T1 50 (nadir), T2 60: -40 % vs baseline but +20 %, +10 mm vs nadir -> PD
    t0 = tp("T0", les("A", 60.0), les("B", 40.0))
    t1 = tp("T1", les("A", 30.0), les("B", 20.0))
    t2 = tp("T2", les("A", 36.0), les("B", 24.0))
    a = assess_recist(t0, t2, previous=[t1])
    assert (a.category, a.nadir) == (RecistCategory.PD, "T1")
    assert a.numbers["nadir_sum_mm"] == 50.0
    assert a.numbers["change_from_nadir_pct"] == pytest.approx(20.0)
    # without the intermediate scan the same T2 is a PR (-40 %)
    assert assess_recist(t0, t2).category is RecistCategory.PR


def test_nodal_rules() -> None:
    # target: mass A LD 50 and node N SA 20 (measurable >= 15): sum 70
    b = tp("T0", les("A", 50.0), node("N", 20.0))
    # A gone (resolved -> 0 mm), node SA 9.9 < 10 -> CR with a non-zero sum of 9.9 mm
    cr = assess_recist(b, tp("T1", les("A", resolved=True), node("N", 9.9)))
    assert cr.category is RecistCategory.CR
    assert cr.numbers["followup_sum_mm"] == pytest.approx(9.9)
    # node SA exactly 10 is not normal -> not CR; 10 / 70 = -85.7 % -> PR
    pr = assess_recist(b, tp("T1", les("A", resolved=True), node("N", 10.0)))
    assert (pr.category, pr.rule) == (RecistCategory.PR, "RECIST.PR.sum_decrease")


def test_node_measurability_and_non_targets() -> None:
    # node SA 14.9 is pathological but not measurable -> non-target; mass A is the target
    b = tp("T0", les("A", 30.0), node("N", 14.9))
    assert [t.track_id for t in select_recist_targets(b)] == ["A"]
    # target gone but non-target node still SA 12 (>= 10) -> PR (non-CR/non-PD non-target)
    a = assess_recist(b, tp("T1", les("A", resolved=True), node("N", 12.0)))
    assert (a.category, a.rule) == (RecistCategory.PR, "RECIST.PR.nontarget_persisting")
    # node normalised to 9 mm -> CR
    assert assess_recist(b, tp("T1", les("A", resolved=True), node("N", 9.0))).category \
        is RecistCategory.CR


def test_target_selection_limits() -> None:
    # liver 50, 40, 30 (2 kept), lung 20, nodes SA 25/22/18 in 3 regions (one organ: 2 kept),
    # bone 12 -> 5 targets: liver 50, 40; nodes 25, 22; lung 20
    b = tp("T0", les("L1", 50.0, "liver"), les("L2", 40.0, "liver"), les("L3", 30.0, "liver"),
           les("P", 20.0, "lung"), node("N1", 25.0),
           LesionObservation("N2", region="neck", is_lymph_node=True, sa_mm=22.0),
           LesionObservation("N3", region="axilla", is_lymph_node=True, sa_mm=18.0),
           les("O", 12.0, "bone"))
    assert [t.track_id for t in select_recist_targets(b)] == ["L1", "L2", "N1", "N2", "P"]


def test_slice_thickness_raises_measurability() -> None:
    # 8 mm slices: limit 2 x 8 = 16 mm; a 12 mm lesion is not measurable -> NE
    b = tp("T0", les("A", 12.0), ct_slice_thickness_mm=8.0)
    a = assess_recist(b, tp("T1", les("A", 6.0)))
    assert (a.category, a.rule) == (RecistCategory.NE, "RECIST.NE.no_measurable_disease")
    assert a.thresholds["measurable_ld_mm_at_least"] == 16.0
    # exactly 10 mm with thin slices is measurable (inclusive)
    assert select_recist_targets(tp("T0", les("A", 10.0)))[0].track_id == "A"


def test_lesion_size_conventions() -> None:
    assert recist_lesion_size_mm(les("A", resolved=True), is_node=False) == 0.0
    assert recist_lesion_size_mm(les("A", too_small=True), is_node=False) == 5.0
    assert recist_lesion_size_mm(les("A", 3.2), is_node=False) == 3.2  # recorded under 5 mm
    assert recist_lesion_size_mm(node("N", 7.0, resolved=True), is_node=True) == 7.0
    assert recist_lesion_size_mm(None, is_node=False) is None
    # too small counts 5 mm: 60 + 40 = 100 -> 5 + 20 = 25 -> -75 % -> PR, not CR
    a = assess_recist(tp("T0", les("A", 60.0), les("B", 40.0)),
                      tp("T1", les("A", too_small=True), les("B", 20.0)))
    assert a.numbers["followup_sum_mm"] == 25.0
    assert a.category is RecistCategory.PR


def test_new_lesion_and_missing_targets() -> None:
    b = tp("T0", les("A", 60.0), les("B", 40.0))
    new = assess_recist(b, tp("T1", les("A", 30.0), les("B", 20.0), les("N", 8.0)))
    assert (new.category, new.rule) == (RecistCategory.PD, "RECIST.PD.new_lesion")
    # B not reported, A 30 (sum 30 < 100): PD impossible to establish -> NE
    ne = assess_recist(b, tp("T1", les("A", 30.0)))
    assert (ne.category, ne.rule) == (RecistCategory.NE, "RECIST.NE.target_not_assessed")
    assert "B" in ne.reasons[-1]
    # B not reported but A alone is 125 >= 1.2 x 100 and +25 mm -> PD
    pd = assess_recist(b, tp("T1", les("A", 125.0)))
    assert (pd.category, pd.rule) == (RecistCategory.PD, "RECIST.PD.sum_increase")


def test_no_ct_is_ne_with_reason() -> None:
    a = assess_recist(tp("T0", les("A", 60.0)), tp("T1", les("A", 30.0), has_ct=False))
    assert (a.category, a.rule) == (RecistCategory.NE, "RECIST.NE.no_ct")
    assert a.reasons == ("no CT at T1: RECIST 1.1 needs CT measurements at both timepoints",)


def test_reader_targets() -> None:
    b = tp("T0", les("L1", 50.0, "liver"), les("L2", 40.0, "liver"), les("L3", 30.0, "liver"))
    a = assess_recist(b, tp("T1", les("L1", 50.0), les("L2", 40.0), les("L3", 3.0)),
                      target_ids=["L1", "L3"])
    # 50 + 30 = 80 -> 50 + 3 = 53: -33.75 % -> PR
    assert a.numbers["targets"] == ["L1", "L3"]
    assert a.category is RecistCategory.PR
    with pytest.raises(ResponseError, match="more than 2 targets"):
        assess_recist(b, tp("T1"), target_ids=["L1", "L2", "L3"])
    with pytest.raises(ResponseError, match="not a baseline lesion"):
        assess_recist(b, tp("T1"), target_ids=["X"])
