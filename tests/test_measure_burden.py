"""Whole-body burden (total MTV and TLG, lesion count, Dmax, SDmax) of a timepoint.

Synthetic values are hand-computed (comments); the sample study checks that report.json and
burden.csv carry the burden of each timepoint's own lesions.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from emlesion.errors import InvalidParameterError
from emlesion.measure import LesionMeasurement, whole_body_burden


def _lesion(label: int, mtv_ml: float, suv_mean: float,
            centroid: tuple[float, float, float] | None) -> LesionMeasurement:
    return LesionMeasurement(label, f"L{label}", "SUVbw", 10, 2 * suv_mean, suv_mean, 0.5,
                             mtv_ml, mtv_ml * suv_mean, centroid_mm=centroid)


def test_burden_sums_and_dmax_sdmax_hand_computed() -> None:
    les = [_lesion(1, 10.0, 5.0, (0.0, 0.0, 0.0)),
           _lesion(2, 2.5, 4.0, (120.0, -50.0, 0.0)),       # 130 mm from L1 (5-12-13)
           _lesion(3, 4.0, 3.0, (0.0, 0.0, -600.0)),        # 600 mm from L1
           _lesion(4, 0.0, 0.0, (900.0, 900.0, 900.0))]     # MTV 0: not counted
    b = whole_body_burden(les, threshold_rule="41%max", weight_kg=80.0, height_m=1.80)
    assert b.n_lesions == 3
    assert b.tmtv_ml == pytest.approx(16.5)                  # 10 + 2.5 + 4
    assert b.tlg_total == pytest.approx(72.0)                # 50 + 10 + 12
    # farthest pair L2-L3: sqrt(120^2 + 50^2 + 600^2) = sqrt(376 900) = 613.92 mm
    assert b.dmax_mm == pytest.approx(math.sqrt(376900.0))
    # DuBois: 0.007184 x 80^0.425 x 180^0.725 = 1.9964 m2; SDmax = 0.61392 / 1.9964 m^-1
    bsa = 0.007184 * 80.0 ** 0.425 * 180.0 ** 0.725
    assert b.bsa_m2 == pytest.approx(bsa)
    assert b.sdmax_per_m == pytest.approx(math.sqrt(376900.0) / 1000.0 / bsa)
    assert b.to_dict()["threshold_rule"] == "41%max"


def test_burden_without_pairs_or_body_size_is_null() -> None:
    one = whole_body_burden([_lesion(1, 3.0, 2.0, (0.0, 0.0, 0.0))], threshold_rule="mask")
    assert (one.n_lesions, one.dmax_mm, one.sdmax_per_m, one.bsa_m2) == (1, None, None, None)
    none = whole_body_burden([], threshold_rule="suv4.0")
    assert (none.n_lesions, none.tmtv_ml, none.tlg_total) == (0, 0.0, 0.0)
    two = whole_body_burden([_lesion(1, 3.0, 2.0, (0.0, 0.0, 0.0)),
                             _lesion(2, 3.0, 2.0, (0.0, 30.0, 40.0))], threshold_rule="x")
    assert two.dmax_mm == pytest.approx(50.0) and two.sdmax_per_m is None  # no weight/height
    with pytest.raises(InvalidParameterError, match="no centroid"):
        whole_body_burden([_lesion(1, 3.0, 2.0, None), _lesion(2, 1.0, 2.0, None)],
                          threshold_rule="x")


def test_sample_study_report_and_csv_carry_the_burden(sample_study: object,
                                                      tmp_path: Path) -> None:
    from emlesion.report import report_dict
    from emlesion.report.output import write_study_outputs

    report = report_dict(sample_study, criteria=["percist"], provenance=False)  # type: ignore[arg-type]
    for tp in report["timepoints"]:
        b = tp["burden"]
        assert b["n_lesions"] == len([x for x in tp["lesions"] if x["mtv_ml"] > 0])
        assert b["tmtv_ml"] == pytest.approx(sum(x["mtv_ml"] for x in tp["lesions"]))
        assert b["threshold_rule"] == tp["method"]
    paths = write_study_outputs(sample_study, tmp_path, report)  # type: ignore[arg-type]
    with open(paths["burden.csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["timepoint"] for r in rows] == [tp["label"] for tp in report["timepoints"]]
    assert float(rows[0]["tmtv_ml"]) == pytest.approx(
        report["timepoints"][0]["burden"]["tmtv_ml"], rel=1e-6)
