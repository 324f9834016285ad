"""Organ maps in (issue 17 item 2): TotalSegmentator multilabel NIfTI, per-organ folder,
DICOM SEG; the anatomy takes the supplied organs; ``--organs auto`` without the package.

Expected values: TotalSegmentator's own label table (the Caret XML extension of
``example_seg.nii.gz`` and ``totalsegmentator/map_to_binary.py``), the supplied masks
themselves (read with nibabel, RAS+ -> LPS by reversing the axes), the generator's tissue
labels (``tests/sample_organs.py``) and ``sample_scans/truth.json``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from emlesion.anatomy import AnatomyLabel, organ_target, segment_anatomy
from emlesion.cli import main
from emlesion.io import LabelMap, load_ct, load_pet
from emlesion.io.organs import ORGAN_CLASS_TABLES, _header_names, load_organ_map
from emlesion.suv import compute_suv

sys.path.insert(0, str(Path(__file__).parent))
from sample_organs import TS_V2, sample_organ_map

TS = "totalsegmentator-example-ct"


def _lps(path: Path) -> np.ndarray:
    """A RAS-aligned NIfTI array as emlesion's (z, y, x) array (same voxel order)."""
    return np.asarray(nib.load(str(path)).dataobj).transpose(2, 1, 0)


@pytest.mark.data
def test_class_tables_match_totalsegmentator(shared_data: Path) -> None:
    # the v2 table equals the label table TotalSegmentator wrote into its own output
    header = _header_names(shared_data / TS / "example_seg.nii.gz")
    assert header is not None and len(header) == 117
    assert dict(ORGAN_CLASS_TABLES["total"]) == header
    # v1 (map_to_binary.py "total_v1"): spot checks where v1 and v2 differ
    v1 = ORGAN_CLASS_TABLES["total_v1"]
    assert (v1[7], v1[8], v1[50], v1[55], v1[92], v1[104]) == (
        "aorta", "inferior_vena_cava", "brain", "small_bowel", "sacrum", "urinary_bladder")
    assert ORGAN_CLASS_TABLES["total"][7] == "pancreas"


@pytest.mark.data
@pytest.mark.slow
def test_supplied_totalsegmentator_labels_are_the_anatomy(shared_data: Path) -> None:
    """Acceptance: with the TotalSegmentator labels supplied, the anatomy masks equal them."""
    folder = shared_data / TS
    ct = load_ct(folder / "example_ct_sm.nii.gz")
    seg = _lps(folder / "example_seg.nii.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        organs = load_organ_map(folder / "example_seg.nii.gz", ct)
        an = segment_anatomy(ct, None, organ_labels=organs)
    assert an.grid.same_as(ct.grid)  # 3 mm CT: the working grid is the CT grid
    expected = {
        AnatomyLabel.LIVER: [5], AnatomyLabel.SPLEEN: [1], AnatomyLabel.KIDNEY_RIGHT: [2, 24],
        AnatomyLabel.KIDNEY_LEFT: [3, 23], AnatomyLabel.AORTA: [52],
        AnatomyLabel.VENA_CAVA: [62, 63], AnatomyLabel.PSOAS: [88, 89],
        AnatomyLabel.BOWEL: [6, 15, 18, 19, 20], AnatomyLabel.SPINE: list(range(26, 51)),
        AnatomyLabel.LUNGS: list(range(10, 15)),
    }
    for label, values in expected.items():
        want = np.isin(seg, values)
        assert want.any() or label is AnatomyLabel.PSOAS, label
        assert np.array_equal(an.mask(label), want), label
        assert an.from_organ_map(label) == bool(want.any()), label
    assert an.organ_sources["body"] == "classical rule"
    # provenance: which organ came from where
    step = next(s for s in an.provenance if s.operation == "emlesion.anatomy.organ_labels")
    assert step.inputs["organ_sources"]["liver"].startswith("organ map")
    # the PERCIST liver sphere lies inside the supplied liver
    assert an.liver_reference is not None
    centre = an.grid.lps_to_index(an.liver_reference.centre_mm)
    assert an.mask(AnatomyLabel.LIVER)[tuple(round(v) for v in centre)]
    # per-organ folder form: every mask equals its file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = load_organ_map(folder / "example_seg_fast", ct,
                              keep=lambda n: organ_target(n) is not None)
        an2 = segment_anatomy(ct, None, organ_labels=fast)
    for label, name in ((AnatomyLabel.LIVER, "liver"), (AnatomyLabel.SPLEEN, "spleen"),
                        (AnatomyLabel.AORTA, "aorta")):
        want = _lps(folder / "example_seg_fast" / f"{name}.nii.gz") > 0
        assert np.array_equal(an2.mask(label), want), name


def test_dicom_seg_organ_map(sample_scans_dir: Path, tmp_path: Path) -> None:
    from emlesion.report.dicom import build_segmentation

    suv = compute_suv(load_pet(sample_scans_dir / "baseline" / "PT"), "bw")
    arr = np.zeros(suv.shape, np.uint16)
    arr[40:50, 30:50, 20:40] = 1
    arr[30:38, 55:70, 60:70] = 2
    names = {1: "Liver", 2: "Kidney left"}
    seg = build_segmentation(suv, LabelMap(arr, suv.grid, names, "test"),
                             algorithm_type="MANUAL")
    path = tmp_path / "organs.dcm"
    seg.save_as(str(path))
    organs = load_organ_map(path, suv)
    got = {organs.name(v).lower(): np.asarray(organs.array) == v for v in organs.labels}
    assert set(got) == {"liver", "kidney left"}
    assert np.array_equal(got["liver"], arr == 1)
    assert np.array_equal(got["kidney left"], arr == 2)
    assert organ_target("Kidney left") is AnatomyLabel.KIDNEY_LEFT
    step = organs.provenance[-1]
    assert step.operation == "emlesion.io.load_organ_map" and "DICOM SEG" in step.rule


@pytest.mark.skipif(importlib.util.find_spec("totalsegmentator") is not None,
                    reason="TotalSegmentator is installed: 'auto' would run it")
def test_organs_auto_without_totalsegmentator(sample_scans_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["measure", str(sample_scans_dir / "baseline"), "--organs", "auto",
                     "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "TotalSegmentator package, which is not installed" in err
    assert "--organs organs.nii" in err and "DICOM SEG" in err


@pytest.mark.slow
def test_sample_organ_map_same_lesions_as_heuristics(
        sample_scans_dir: Path, tmp_path: Path) -> None:
    """Acceptance: an organ map derived from the generator's tissue labels gives the same
    lesions, regions and sides as the heuristics (at baseline: those of truth.json), and a
    PERCIST liver reference at least as close to the truth. (The month-1 pelvic lesion,
    SUVmax 3.28, is below the liver threshold and is found by neither on one timepoint.)"""
    truth = json.loads((sample_scans_dir / "truth.json").read_text())
    for tp in ("baseline", "month1"):
        ref = nib.load(str(sample_scans_dir / tp / "truth_lesions.nii.gz"))
        # the map in its own folder: a mask's or map's folder counts as an input folder,
        # and the JSON outputs go to tmp_path
        (tmp_path / "maps").mkdir(exist_ok=True)
        path = tmp_path / "maps" / f"{tp}_organs.nii.gz"
        nib.save(nib.Nifti1Image(sample_organ_map(tp).transpose(2, 1, 0), ref.affine,
                                 ref.header), str(path))
        outs = {}
        for kind, extra in (("organs", ["--organs", str(path)]), ("heuristics", [])):
            out = tmp_path / f"{tp}_{kind}.json"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert main(["measure", str(sample_scans_dir / tp), "--json", str(out),
                             "--quiet", *extra]) == 0
            outs[kind] = json.loads(out.read_text())
        t = truth["timepoints"][tp]
        org, heur = outs["organs"], outs["heuristics"]
        got = [(les["region"], les["side"]) for les in org["lesions"]]
        assert got == [(les["region"], les["side"]) for les in heur["lesions"]], tp
        if tp == "baseline":  # both lesions above the PERCIST liver threshold (truth.json)
            assert got == [(les["region"], les["side"]) for les in t["lesions"]]
        for a, b in zip(org["lesions"], heur["lesions"]):
            assert a["suv_max"] == pytest.approx(b["suv_max"], abs=1e-3)
            assert a["mtv_ml"] == pytest.approx(b["mtv_ml"], rel=0.15)
        # the PERCIST liver reference is at least as close to the truth (within 0.01)
        liver = t["liver_reference"]["suv_mean"]
        err = {k: abs(d["liver"]["suv_mean"] - liver) for k, d in outs.items()}
        assert err["organs"] <= err["heuristics"] + 0.01, err
        assert set(TS_V2) >= {"liver", "aorta"}


def test_manifest_organs_column(tmp_path: Path) -> None:
    from emlesion.batch import Manifest

    text = ("patient_id,timepoint,folder,organs\n"
            "P1,baseline,P1/bl,P1/bl_organs.nii.gz\nP1,month1,P1/m1,auto\n"
            "P2,baseline,P2/bl,\n")
    m = Manifest.from_text(text, base_dir=tmp_path)
    p1, p2 = m.jobs
    assert p1.organs == {"baseline": str(tmp_path / "P1" / "bl_organs.nii.gz"),
                         "month1": "auto"}
    assert p2.organs == {} and p1.option_dict == {}
    # a patient without organ maps hashes as it did before the column existed
    plain = Manifest.from_text("patient_id,timepoint,folder\nP2,baseline,P2/bl\n",
                               base_dir=tmp_path)
    assert plain.jobs[0].sha256() == p2.sha256()


def test_multilabel_class_table_choice(tmp_path: Path) -> None:
    # a multilabel map without names in its header: label 7 is the pancreas in
    # TotalSegmentator v2 and the aorta in v1 (map_to_binary.py)
    data = np.zeros((6, 6, 6), np.uint8)
    data[1:3, 1:3, 1:3] = 7
    data[4:6, 4:6, 4:6] = 5
    path = tmp_path / "ml.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    from emlesion.io.nifti import nifti_grid

    grid, _ = nifti_grid(nib.load(str(path)).header, data.shape)
    v2 = load_organ_map(path, grid)
    v1 = load_organ_map(path, grid, classes="total_v1")
    assert {v2.name(v) for v in v2.labels} == {"pancreas", "liver"}
    assert {v1.name(v) for v in v1.labels} == {"aorta", "liver"}
    assert "default" in v2.provenance[-1].rule and "total_v1" in v1.provenance[-1].rule
    with pytest.raises(Exception, match="unknown organ class table"):
        load_organ_map(path, grid, classes="total_v3")
