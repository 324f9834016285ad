"""``emlesion measure``: JSON/CSV contract, user masks, exit codes.

Expected values come from ``sample_scans/truth.json`` (generator truth) and from plain numpy
on the truth NIfTI mask.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from emlesion.cli import main
from emlesion.study import schema_path


@pytest.fixture(scope="module")
def truth(sample_scans_dir: Path) -> dict[str, Any]:
    return json.loads((sample_scans_dir / "truth.json").read_text())


def _validate(data: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(Path(schema_path("measure")).read_text())
    jsonschema.Draft202012Validator(schema).validate(data)


def test_measure_auto_json_and_csv(sample_scans_dir: Path, tmp_path: Path,
                                   truth: dict[str, Any], capsys: pytest.CaptureFixture[str]
                                   ) -> None:
    out_json, out_csv = tmp_path / "m.json", tmp_path / "m.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["measure", str(sample_scans_dir / "baseline"), "--json", str(out_json),
                     "--csv", str(out_csv), "--quiet"])
    assert code == 0
    data = json.loads(out_json.read_text())
    _validate(data)
    assert data["format"] == "emlesion-measure" and data["method"] == "41%max"
    assert data["provenance"]
    # truth lesion_specs: retroperitoneal right and pelvic left, hottest first
    assert [(les["region"], les["side"]) for les in data["lesions"]] == [
        ("retroperitoneal", "right"), ("pelvic", "left")]
    t = truth["timepoints"]["baseline"]["lesions"]
    for les, tl in zip(data["lesions"], t):
        assert les["suv_max"] == pytest.approx(tl["suv_max"], abs=1e-3)
        assert les["mtv_ml"] == pytest.approx(tl["volume_ml"], rel=0.15)
        assert les["tlg"] == pytest.approx(les["suv_mean"] * les["mtv_ml"], rel=1e-9)
    rows = list(csv.DictReader(out_csv.open()))
    # the CSV holds the value at its stated precision (3 decimals for SUV, CSV_DECIMALS)
    assert len(rows) == 2 and rows[0]["suv_max"] == f"{data['lesions'][0]['suv_max']:.3f}"
    table = capsys.readouterr().out
    assert "retroperitoneal" in table and "SULpeak" in table


def test_measure_with_truth_mask(sample_scans_dir: Path, tmp_path: Path,
                                 truth: dict[str, Any], capsys: pytest.CaptureFixture[str]
                                 ) -> None:
    mask = sample_scans_dir / "baseline" / "truth_lesions.nii.gz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["measure", str(sample_scans_dir / "baseline"), "--mask", str(mask),
                     "--json", "-", "--quiet"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    _validate(data)
    assert data["method"] == "mask" and data["lesion_source"] == "mask"
    # independent: voxel count of each label in the NIfTI x voxel volume (4 mm)^3 = 0.064 mL
    labels = np.asarray(nib.load(mask).dataobj)
    counts = {int(v): int((labels == v).sum()) for v in np.unique(labels) if v}
    assert {les["label"]: les["n_voxels"] for les in data["lesions"]} == counts
    for les, tl in zip(data["lesions"], truth["timepoints"]["baseline"]["lesions"]):
        assert les["mtv_ml"] == pytest.approx(counts[les["label"]] * 0.064, rel=1e-9)
        assert les["mtv_ml"] == pytest.approx(tl["volume_ml"], abs=1e-6)
        # same mask and same IBSI global-peak definition as the generator's truth
        assert les["suv_peak"] == pytest.approx(tl["suv_peak"], abs=1e-3)
        assert les["extent_cm"] == pytest.approx(tl["extents_cm"], abs=1e-6)


def test_measure_errors(sample_scans_dir: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measure", str(tmp_path / "missing"), "--quiet"]) == 1
    assert "error" in capsys.readouterr().err
    # output inside the input folder is refused before anything is computed
    inside = sample_scans_dir / "baseline" / "out.json"
    assert main(["measure", str(sample_scans_dir / "baseline"), "--json", str(inside)]) == 1
    assert "inside the input folder" in capsys.readouterr().err
    assert not inside.exists()
    with pytest.raises(SystemExit) as exc:
        main(["measure", str(sample_scans_dir / "baseline"), "--mask", "m.nii", "--method",
              "suv2.5"])
    assert exc.value.code == 2
