"""``emlesion suv`` command line: human output, normalisation option, errors and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest

from emlesion.cli import main

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def dro(shared_data: Path) -> Path:
    return shared_data / "ibsi-suv-dro" / "DRO"


def test_human_output_with_mask(dro: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = dro / "DRO_3_0"  # dose stored in MBq
    code = main(["suv", str(folder / "PT"), "--mask", str(folder / "mask" / "DRO_mask.nii.gz")])
    out = capsys.readouterr().out
    assert code == 0
    assert "SUVbw (g/mL) from Units BQML, DecayCorrection START" in out
    assert "BQML/START: SeriesDateTime (QIBA step 1)" in out
    assert "warning: RadionuclideTotalDose 368.08 looks like MBq" in out
    # IBSI DRO_3_0 expected 0.20 / 1.00 / 4.00 (DRO_list.csv)
    assert "min 0.2000  median 1.0000  max 4.0000" in out


def test_json_per_slice_factor_list(dro: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # DRO_3_4 (DecayCorrection NONE, two acquisition times): one factor per slice
    assert main(["suv", str(dro / "DRO_3_4" / "PT"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc["factor"], list) and len(doc["factor"]) == 20
    assert len(set(doc["factor"])) == 2  # 11:00 and 11:05 acquisitions
    assert "stats" not in doc


def test_json_sul_normalization(dro: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suv", str(dro / "DRO_0_0" / "PT"), "--json", "-n", "sul"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["normalization"] == "sul-janmahasatian"
    assert doc["quantity"] == "SULjanma"
    # DRO_0_0 patient: W 70 kg, H 1.75 m, sex O -> Janmahasatian LBM 50.52706 kg, so
    # SUL factor = SUVbw factor * 50.52706 / 70 (bodysize tests show the arithmetic)
    assert main(["suv", str(dro / "DRO_0_0" / "PT"), "--json"]) == 0
    bw = json.loads(capsys.readouterr().out)
    assert doc["factor"] == pytest.approx(bw["factor"] * 50.527061 / 70, rel=1e-6)


def test_error_exit_code_and_message(dro: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    # a copy of DRO_0_0 relabelled Units PROPCPS must be refused (exit 1, message on stderr)
    pt = tmp_path / "PT"
    pt.mkdir()
    for src in sorted((dro / "DRO_0_0" / "PT").glob("*.dcm")):
        ds = pydicom.dcmread(src)
        ds.Units = "PROPCPS"
        ds.save_as(pt / src.name)
    assert main(["suv", str(pt), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "emlesion suv: error: Units PROPCPS cannot be converted to SUV" in captured.err
    assert "Units (0054,1001)" in captured.err


def test_unknown_normalization(dro: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a usage error: exit code 2 at parse time, before the series is read
    with pytest.raises(SystemExit) as exc:
        main(["suv", str(dro / "DRO_0_0" / "PT"), "-n", "lbm"])
    assert exc.value.code == 2
    assert "unknown SUV normalisation 'lbm'" in capsys.readouterr().err


def test_input_folder_untouched(dro: Path, tmp_path: Path) -> None:
    src = tmp_path / "PT"
    shutil.copytree(dro / "DRO_2_4" / "PT", src)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in src.iterdir())
    assert main(["suv", str(src), "--json"]) == 0
    assert sorted((p.name, p.stat().st_mtime_ns) for p in src.iterdir()) == before
