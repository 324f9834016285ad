"""Bad and unusual inputs of :func:`emlesion.study.load_study` (issue 7 acceptance).

The inputs are copies of ``sample_scans`` timepoints in ``tmp_path`` with one header value
changed by pydicom (PatientID, StudyDate), a timepoint without its CT, and two studies in one
folder. The originals are never modified.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import warnings
from pathlib import Path

import pydicom
import pytest

from emlesion.errors import InconsistentStudyError
from emlesion.report import check_output_location, write_json_atomic
from emlesion.study import load_study


def _copy(src: Path, dst: Path, subfolders: tuple[str, ...] = ("PT", "CT"), **changes: str) -> Path:
    for sub in subfolders:
        shutil.copytree(src / sub, dst / sub)
        if changes:
            for f in sorted((dst / sub).iterdir()):
                ds = pydicom.dcmread(f)
                for key, value in changes.items():
                    setattr(ds, key, value)
                ds.save_as(f)
    return dst


def test_different_patients_is_an_error(sample_scans_dir: Path, tmp_path: Path) -> None:
    other = _copy(sample_scans_dir / "month1", tmp_path / "m1", PatientID="SOMEONE-ELSE")
    with pytest.raises(InconsistentStudyError, match="different patients") as err:
        load_study({"baseline": sample_scans_dir / "baseline", "month1": other}, track=False)
    assert "SOMEONE-ELSE" in str(err.value) and "allow_different_patients" in str(err.value)


def test_different_patients_override(sample_scans_dir: Path, tmp_path: Path) -> None:
    other = _copy(sample_scans_dir / "month1", tmp_path / "m1", PatientID="SOMEONE-ELSE")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = load_study({"baseline": sample_scans_dir / "baseline", "month1": other},
                           allow_different_patients=True, track=False)
    assert study.labels == ("baseline", "month1")
    check = study.provenance[0]
    assert check.inputs["mismatched"]  # recorded, with a warning message
    assert any("SOMEONE-ELSE" in w for w in check.warnings)


def test_followup_before_baseline_is_an_error(sample_scans_dir: Path, tmp_path: Path) -> None:
    early = _copy(sample_scans_dir / "month1", tmp_path / "m1", StudyDate="20240101")
    with pytest.raises(InconsistentStudyError, match="before the baseline"):
        load_study({"baseline": sample_scans_dir / "baseline", "month1": early}, track=False)


def test_timepoint_without_ct(sample_scans_dir: Path, tmp_path: Path) -> None:
    pet_only = _copy(sample_scans_dir / "month1", tmp_path / "m1", subfolders=("PT",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = load_study({"baseline": sample_scans_dir / "baseline", "month1": pet_only},
                           residual_search=False)
        calls = {a.criterion.value: a for a in study.assess()}
    tp = study.timepoint("month1")
    assert tp.ct is None and tp.anatomy is None and tp.liver is None
    # PET criteria still evaluated: without anatomy the lesions are searched at the baseline
    # lesions only (bladder and kidneys cannot be excluded), and both masses are found again
    assert [les["name"] for les in tp.lesion_dicts()] == ["near retroperitoneal right 1",
                                                          "near pelvic left 1"]
    assert any("new lesions elsewhere are not detected" in w
               for step in tp.provenance for w in step.warnings)
    # the PET-only brain rule takes the hot right kidney at the cranial edge of this
    # abdomen-pelvis PET for a brain (measured: 199 mL, x -100..-46 mm); it is not a midline
    # organ, so nothing is excluded (the sample has no head: truth.json, README)
    brain_step = next(s for s in tp.provenance if s.operation == "emlesion.study.pet_only_brain")
    assert "no brain found" in (brain_step.rule or "")
    assert re.search(r"not a midline organ: centroid \d+ mm right of the body centre",
                     brain_step.inputs["brain_rule"])
    # truth: hottest SULpeak 8.39 -> 3.27 (-61 %), the same PERCIST PMR as with the CT
    assert calls["percist"].category.value == "PMR"
    assert calls["eortc"].category.value == "PMR"
    # CT criteria: not evaluable, with the reason
    for key in ("recist", "lugano_ct"):
        assert calls[key].category.value == "NE"
        assert any("CT" in r for r in calls[key].reasons), calls[key].reasons
    # without anatomy, region and side are unknown (null) rather than guessed
    assert all(les["region"] is None for les in tp.lesion_dicts())


def test_folder_with_several_studies(sample_scans_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "export"
    # deliberately named so that the alphabetical order is not the chronological order
    _copy(sample_scans_dir / "month1", root / "a_study")
    _copy(sample_scans_dir / "baseline", root / "b_study")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = load_study(root, track=False)
    assert study.labels == ("baseline", "followup1")
    # truth.json study dates: baseline 2024-03-12, month1 2024-04-15 (34 days later)
    assert study.baseline.date == dt.date(2024, 3, 12)
    assert study.timepoints[1].days_since_baseline == 34
    assert study.timepoints[1].ct is not None


def test_reserved_and_duplicate_labels(sample_scans_dir: Path) -> None:
    with pytest.raises(InconsistentStudyError, match="unique"):
        load_study([sample_scans_dir / "baseline", sample_scans_dir / "month1"],
                   labels=["a", "a"])
    with pytest.raises(InconsistentStudyError, match="mask"):
        load_study({"baseline": sample_scans_dir / "baseline"}, masks=[None, None])


def test_outputs_never_inside_inputs(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    with pytest.raises(InconsistentStudyError, match="inside the input"):
        check_output_location(src / "out", [src])
    assert check_output_location(tmp_path / "out", [src]) == (tmp_path / "out").resolve()
    path = write_json_atomic(tmp_path / "out" / "x.json", {"a": 1})
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temp file left behind
