"""Exports of issue 16 item 4 on the bundled sample_scans: NIfTI label maps that round-trip
through ``emlesion measure --mask``, CSV values at a stated precision, ``suv --json`` with
one factor, and the ``response`` options ``--nifti`` / ``--treatment-date``.

Expected values come from the study itself (``sample_study``, the session fixture) and from
``emlesion measure`` run on the files written here (an independent reader: the NIfTI is read
back by nibabel through ``emlesion.io``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from emlesion.cli import main
from emlesion.report import CSV_DECIMALS, write_study_outputs
from emlesion.report.nifti import study_label_map, write_study_nifti
from emlesion.study import CSV_COLUMNS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def _run(argv: list[str]) -> tuple[int, str, str]:
    so, se = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(so), \
            contextlib.redirect_stderr(se):
        warnings.simplefilter("ignore")
        code = main(argv)
    return code, so.getvalue(), se.getvalue()


@pytest.fixture(scope="module")
def nifti_dir(sample_study: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nifti")
    write_study_nifti(sample_study, out)
    return out


def test_one_label_map_per_timepoint_on_the_pet_grid(sample_study: Any,
                                                     nifti_dir: Path) -> None:
    from emlesion.io import load_mask

    for tp in sample_study.timepoints:
        path = nifti_dir / f"{tp.label}_lesions.nii.gz"
        side = json.loads((nifti_dir / f"{tp.label}_lesions.json").read_text())
        img: Any = nib.load(str(path))
        grid = tp.suv.grid
        # NIfTI (i, j, k) = PET (x, y, z); RAS affine = LPS affine with x, y negated
        assert img.shape == grid.shape[::-1]
        assert np.allclose(img.affine, np.diag([-1.0, -1.0, 1.0, 1.0]) @ grid.affine)
        assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
        labels, entries = study_label_map(sample_study, tp.label)
        # read back through emlesion.io onto the PET: the same voxels, value = track number
        if entries:
            back = load_mask(path, reference=tp.suv)
            assert np.array_equal(np.asarray(back.array), labels)
        else:
            assert not np.asarray(img.dataobj).any()
        assert side["timepoint"] == tp.label and side["grid"] == "PET"
        for value, entry in side["labels"].items():
            tid = entry["track_id"]
            assert tid == f"T{value}"  # track numbers as labels
            mask_labels = entry["lesion_labels"]
            assert all(sample_study.track_id_of(tp.label, lab) == tid for lab in mask_labels)
            want = sum(tp.measurement(lab).mtv_ml for lab in mask_labels)
            assert entry["mtv_ml"] == pytest.approx(want, rel=1e-12)
    # sample_scans: both tracks segmented at baseline and month 1, nothing at month 3
    counts = [len(json.loads((nifti_dir / f"{k}_lesions.json").read_text())["labels"])
              for k in sample_study.labels]
    assert counts == [2, 2, 0]


def test_measure_mask_on_the_label_map_gives_the_same_volumes(
        sample_study: Any, sample_scans_dir: Path, nifti_dir: Path, tmp_path: Path) -> None:
    # acceptance: emlesion measure --mask on the exported map of month 1 (the timepoint
    # whose lesions were found after registration and residual search) gives the volumes
    # of the study, track by track
    tp = sample_study.timepoint("month1")
    out = tmp_path / "m1.json"
    code, _, err = _run(["measure", str(sample_scans_dir / "month1"), "--mask",
                         str(nifti_dir / "month1_lesions.nii.gz"), "--json", str(out),
                         "--quiet"])
    assert code == 0, err
    got = {les["label"]: les["mtv_ml"] for les in json.loads(out.read_text())["lesions"]}
    want = {int(sample_study.track_id_of("month1", lab)[1:]): tp.measurement(lab).mtv_ml
            for lab in tp.lesions.labels}
    assert set(got) == set(want) == {1, 2}
    for value, mtv in want.items():
        assert got[value] == pytest.approx(mtv, rel=1e-9)


def test_measure_nifti_round_trip(sample_scans_dir: Path, tmp_path: Path) -> None:
    # emlesion measure --nifti, then --mask on its own output: the same lesions, same volumes
    # (the second JSON goes to another folder: measure refuses to write beside its mask)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "auto.json", tmp_path / "b" / "again.json"
    nii = tmp_path / "a" / "baseline_lesions.nii.gz"
    code, _, err = _run(["measure", str(sample_scans_dir / "baseline"), "--json", str(first),
                         "--nifti", str(nii), "--quiet"])
    assert code == 0, err
    side = json.loads((tmp_path / "a" / "baseline_lesions.json").read_text())
    auto = {les["label"]: les for les in json.loads(first.read_text())["lesions"]}
    assert set(side["labels"]) == {str(k) for k in auto}
    code, _, err = _run(["measure", str(sample_scans_dir / "baseline"), "--mask", str(nii),
                         "--json", str(second), "--quiet"])
    assert code == 0, err
    again = {les["label"]: les for les in json.loads(second.read_text())["lesions"]}
    assert set(again) == set(auto) and len(auto) == 2  # truth.json: two baseline masses
    for lab, les in auto.items():
        assert again[lab]["n_voxels"] == les["n_voxels"]
        assert again[lab]["mtv_ml"] == pytest.approx(les["mtv_ml"], rel=1e-12)
        assert again[lab]["suv_max"] == pytest.approx(les["suv_max"], rel=1e-6)
        assert side["labels"][str(lab)]["mtv_ml"] == pytest.approx(les["mtv_ml"], rel=1e-12)


def test_measure_outputs_are_published_as_one_set(sample_study: Any, tmp_path: Path) -> None:
    # JSON, CSV, NIfTI and its sidecar: all or none. A folder where the sidecar must go
    # makes the last rename fail; nothing is left behind, not even the files renamed first.
    from emlesion.errors import OutputError
    from emlesion.report import publish_measure_outputs

    tp = sample_study.timepoints[0]
    paths = {"json_path": tmp_path / "m.json", "csv_path": tmp_path / "m.csv",
             "nifti_path": tmp_path / "m_lesions.nii.gz"}
    (tmp_path / "m_lesions.json").mkdir()  # where the sidecar goes
    with pytest.raises(OutputError):
        publish_measure_outputs(tp, **paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_lesions.json"]
    (tmp_path / "m_lesions.json").rmdir()
    written = publish_measure_outputs(tp, **paths)
    assert sorted(written) == ["csv", "json", "nifti", "nifti_sidecar"]
    img = nib.load(str(written["nifti"]))
    assert np.array_equal(np.asarray(img.dataobj).transpose(2, 1, 0),
                          np.asarray(tp.lesions.array))
    side = json.loads(written["nifti_sidecar"].read_text())
    assert set(side["labels"]) == {str(k) for k in tp.lesions.labels}


def test_measure_nifti_refuses_a_wrong_name_before_the_work(sample_scans_dir: Path,
                                                            tmp_path: Path) -> None:
    code, _, err = _run(["measure", str(sample_scans_dir / "baseline"), "--nifti",
                         str(tmp_path / "labels.txt"), "--quiet"])
    assert code == 1
    assert "is not a NIfTI file name" in err and ".nii.gz" in err
    assert not list(tmp_path.iterdir())


def test_response_nifti_and_treatment_date_options(
        sample_study: Any, sample_scans_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the options reach the writers: load_study is replaced by the session's study (the
    # pipeline itself is tested in tests/test_cli_response.py)
    import emlesion.study

    monkeypatch.setattr(emlesion.study, "load_study", lambda *a, **k: sample_study)
    dirs = [str(sample_scans_dir / k) for k in sample_study.labels]
    out = tmp_path / "out"
    code, stdout, err = _run(["response", *dirs, "--out", str(out), "--nifti",
                              "--treatment-date", "2024-03-14", "--no-dicom", "--quiet"])
    assert code == 0, err
    names = sorted(p.name for p in (out / "nifti").iterdir())
    assert names == sorted(f"{k}_lesions.{ext}" for k in sample_study.labels
                           for ext in ("nii.gz", "json"))
    assert "wrote 3 NIfTI label map(s)" in stdout
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<th>Days since treatment</th>" in page and "Treatment date 2024-03-14." in page
    # a date that is not one fails before any work, naming the option
    code, _, err = _run(["response", *dirs, "--out", str(tmp_path / "bad"),
                         "--treatment-date", "14/03/2024", "--quiet"])
    assert code == 1 and "--treatment-date" in err and "YYYY-MM-DD" in err
    assert not (tmp_path / "bad").exists()


# --------------------------------------------------------------------------- CSV precision


def test_lesions_csv_values_at_the_stated_precision(sample_study: Any, tmp_path: Path) -> None:
    paths = write_study_outputs(sample_study, tmp_path, {"format": "test"})
    with open(paths["lesions.csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    full = sample_study.lesions_rows()  # the full-precision values (= report.json)
    assert len(rows) == len(full) and list(rows[0]) == list(CSV_COLUMNS)
    checked = 0
    for got, want in zip(rows, full):
        for col, decimals in CSV_DECIMALS.items():
            if col not in got or want[col] is None:
                continue
            text = got[col]
            # fixed point with exactly the stated decimals, the value rounded
            assert re.fullmatch(rf"-?\d+\.\d{{{decimals}}}", text), (col, text)
            assert float(text) == pytest.approx(float(want[col]), abs=0.5 * 10 ** -decimals
                                                + 1e-12), (col, text, want[col])
            checked += 1
    assert checked > 100
    # e.g. the baseline retroperitoneal MTV: 1390 voxels x 0.064 mL = 88.96 mL (hand-computed)
    t1 = next(r for r in rows if r["timepoint"] == "baseline" and r["track_id"] == "T1")
    assert t1["n_voxels"] == "1390" and t1["mtv_ml"] == "88.960"


def test_readme_documents_the_precision_of_every_column() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("CSV precision (decimals per column):"):]
    block = block[:block.index("\n\n")]
    stated: dict[str, int] = {}
    for cols, n in re.findall(r"((?:`[a-z0-9_]+`(?:,\s)?)+): (\d)\sdecimals?", block):
        for col in re.findall(r"`([a-z0-9_]+)`", cols):
            stated[col] = int(n)
    assert stated == dict(CSV_DECIMALS)


# --------------------------------------------------------------------------- suv --json


def test_suv_json_gives_one_factor_when_all_slices_agree(sample_scans_dir: Path) -> None:
    code, out, err = _run(["suv", str(sample_scans_dir / "baseline" / "PT"), "--json"])
    assert code == 0, err
    doc = json.loads(out)
    # sample_scans baseline: BQML, DecayCorrection START, one series time -> one factor
    assert isinstance(doc["factor"], float)
    prov = doc["provenance"]
    assert "factors" not in prov and prov["n_slices"] == 96
    assert prov["factor"] == doc["factor"]
    assert out.count(repr(doc["factor"])[:10]) == 2  # top level and provenance, not 96 times
