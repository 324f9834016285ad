"""IBSI SUV digital reference objects: SUVbw inside each DRO mask, through the API and the CLI.

Expected values: ``DRO/DRO_list.csv`` of the IBSI SUV DROs (Vácha et al., oncoray/
suv_computation): SUVbw min / median / max = 0.20 / 1.00 / 4.00 (two decimals) for every
DRO, the GML and CM2ML ones after conversion back to SUVbw.

One exception, by arithmetic: DRO_2_3 stores SUVbsa (Units CM2ML) quantised to steps of
0.01 cm²/mL: stored min / median / max = 0.05 / 0.26 / 1.05. Back to SUVbw:
    BSA = 0.007184 * 70^0.425 * 175^0.725 = 1.848143 m² = 18481.43 cm²
    SUVbw = SUVbsa * 70000 g / 18481.43 cm² = SUVbsa * 3.787582
    0.05 * 3.787582 = 0.1894 ; 0.26 * 3.787582 = 0.9848 ; 1.05 * 3.787582 = 3.9770
so no conversion can round to 0.20 / 1.00 / 4.00; 0.1894 / 0.9848 / 3.9770 is expected.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from emlesion.cli import main
from emlesion.io import load_pet
from emlesion.io.masks import load_mask
from emlesion.suv import compute_suv

pytestmark = pytest.mark.data

DRO_IDS = ["DRO_0_0", "DRO_1_0", "DRO_2_0", "DRO_2_1", "DRO_2_2", "DRO_2_3", "DRO_2_4",
           "DRO_2_5", "DRO_3_0", "DRO_3_1", "DRO_3_2", "DRO_3_3", "DRO_3_4", "DRO_4_0",
           "DRO_4_1", "DRO_4_2", "DRO_5_0"]

# DRO_2_3 arithmetic (module docstring): SUVbsa steps * W[g] / BSA[cm²]
BSA_CM2 = 0.007184 * 70**0.425 * 175**0.725 * 1e4
DRO_2_3_EXPECTED = tuple(round(v * 70000 / BSA_CM2, 4) for v in (0.05, 0.26, 1.05))

# the rule each DRO exercises (DRO_list.csv descriptions)
EXPECTED_RULE = {
    "DRO_0_0": "BQML/START: SeriesDateTime (QIBA step 1)",
    "DRO_1_0": "BQML/START: SeriesDateTime (QIBA step 1)",
    "DRO_2_0": "GML/BW: stored SUVbw",
    "DRO_2_1": "GML/LBMJAMES128: converted back to SUVbw",
    "DRO_2_2": "GML/IBW: converted back to SUVbw",
    "DRO_2_3": "CM2ML/BSA: converted back to SUVbw",
    "DRO_2_4": "CNTS: Philips SUV scale factor",
    "DRO_2_5": "CNTS/START: SeriesDateTime (QIBA step 1); Philips activity concentration",
    "DRO_3_0": "BQML/START: SeriesDateTime (QIBA step 1)",
    "DRO_3_1": "BQML/ADMIN",
    "DRO_3_2": "BQML/START: frame back-computation (QIBA step 3)",
    "DRO_3_3": "BQML/START: SeriesDateTime (QIBA step 1)",
    "DRO_3_4": "BQML/NONE",
    "DRO_4_0": "BQML/START: SeriesDateTime (QIBA step 1)",
    "DRO_4_1": "BQML/START: SeriesDateTime (QIBA step 1)",
    "DRO_4_2": "BQML/START: SeriesDateTime (QIBA step 1)",
    "DRO_5_0": "BQML/START: SeriesDateTime (QIBA step 1)",
}

# warnings each DRO must raise (a fragment each), and none for the others
EXPECTED_WARNINGS = {
    "DRO_2_4": ["no private creator"],
    "DRO_2_5": ["no private creator"],
    "DRO_3_0": ["looks like MBq"],
    "DRO_3_3": ["differs from the frame-based time"],  # SeriesTime 11:00, acquisition 11:30
    "DRO_4_2": ["previous day (2025-01-01T23:30:00+00:00)"],
}


def expected(dro: str) -> tuple[float, float, float]:
    if dro == "DRO_2_3":
        assert DRO_2_3_EXPECTED == (0.1894, 0.9848, 3.977)
        return DRO_2_3_EXPECTED
    return (0.20, 1.00, 4.00)


def rounded(values: np.ndarray, dro: str) -> tuple[float, float, float]:
    digits = 4 if dro == "DRO_2_3" else 2
    v = np.asarray(values, dtype=np.float64)
    return (round(float(v.min()), digits), round(float(np.median(v)), digits),
            round(float(v.max()), digits))


@pytest.fixture(scope="module")
def dro_root(shared_data: Path) -> Path:
    return shared_data / "ibsi-suv-dro" / "DRO"


@pytest.mark.parametrize("dro", DRO_IDS)
def test_dro_api(dro_root: Path, dro: str) -> None:
    folder = dro_root / dro
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pet = load_pet(folder / "PT")
        suv = compute_suv(pet, normalization="bw")
    mask = load_mask(folder / "mask" / "DRO_mask.nii.gz", reference=suv)
    inside = suv.array[mask.array > 0]
    assert inside.size > 0
    assert rounded(inside, dro) == expected(dro)
    step = suv.provenance[-1]
    assert suv.units == "SUVbw"
    assert step.rule is not None and step.rule.startswith(EXPECTED_RULE[dro])
    fragments = EXPECTED_WARNINGS.get(dro, [])
    assert len(step.warnings) == len(fragments), step.warnings
    for frag in fragments:
        assert any(frag in w for w in step.warnings), (frag, step.warnings)


@pytest.mark.parametrize("dro", DRO_IDS)
def test_dro_cli_json(dro_root: Path, dro: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = dro_root / dro
    code = main(["suv", str(folder / "PT"), "--mask", str(folder / "mask" / "DRO_mask.nii.gz"),
                 "--json"])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out)
    assert doc["normalization"] == "bw"
    assert doc["rule"].startswith(EXPECTED_RULE[dro])
    assert isinstance(doc["factor"], (float, list))
    assert isinstance(doc["warnings"], list)
    stats = doc["stats"]
    assert set(stats) >= {"min", "median", "max", "mean", "voxels"}
    digits = 4 if dro == "DRO_2_3" else 2
    got = (round(stats["min"], digits), round(stats["median"], digits),
           round(stats["max"], digits))
    assert got == expected(dro)
    # independent voxel count: the NIfTI mask read with SimpleITK (same grid as the PET)
    nifti = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "mask" / "DRO_mask.nii.gz")))
    assert nifti.shape == (20, 256, 256)
    assert stats["voxels"] == int((nifti > 0).sum())
