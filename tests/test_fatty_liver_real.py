"""The fatty-liver range of the PET/CT liver rule on the real TotalSegmentator trunk CT
(benchmarks/eval_fatty_liver_real.py: the real liver's CT lowered by 25 HU to a median of
21 HU, a PET painted on the real anatomy with the liver and kidney SUVs of the real PETs)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

pytestmark = pytest.mark.data


def test_fatty_real_liver_keeps_its_percist_reference(shared_data: Path) -> None:
    import eval_fatty_liver_real as E

    before = E.evaluate(-25.0, fatty_range=False, data=shared_data)
    after = E.evaluate(-25.0, fatty_range=True, data=shared_data)
    # measured (script docstring): no liver and no reference with the first range alone ...
    assert before["liver_ml"] == 0.0 and not before["reference"]
    # ... 1000 mL, Dice 0.857 on the labelled slab, sphere 100 % inside the liver label at
    # SUVmean 2.31 (painted 2.3) with the fatty-liver range
    assert after["reference"] and after["dice"] > 0.82
    assert after["sphere_in_liver"] > 0.95
    assert after["sphere_suv_mean"] == pytest.approx(E.PAINTED_SUV["liver"], abs=0.05)
    assert after["gallbladder_in_liver_ml"] < 3.0  # measured 1.8 mL
