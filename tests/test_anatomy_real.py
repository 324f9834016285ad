"""CT-only anatomy on a real CT against TotalSegmentator's labels (issue 17 item 3).

Expected values: the Dice measured by ``benchmarks/eval_anatomy_real.py`` on the
TotalSegmentator example CT (labelled slab = slices 82-111), minus 0.05; see its docstring.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

#: Measured Dice (benchmarks/eval_anatomy_real.py docstring) minus 0.05.
FLOORS = {"liver": 0.892 - 0.05, "spleen": 0.837 - 0.05, "kidney_left": 0.836 - 0.05,
          "kidney_right": 0.810 - 0.05, "aorta": 0.719 - 0.05, "spine": 0.821 - 0.05}


@pytest.mark.data
@pytest.mark.slow
def test_ct_only_anatomy_on_real_ct(shared_data: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from eval_anatomy_real import evaluate

    res = evaluate(shared_data / "totalsegmentator-example-ct")
    for organ, floor in FLOORS.items():
        assert res[organ]["dice"] >= floor, (organ, res[organ])
        assert res[organ]["centroid_mm"] < 10.0, (organ, res[organ])  # about 3 voxels
    assert res["body"]["labelled_inside"] > 0.999
