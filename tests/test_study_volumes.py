"""Issue 8 acceptance on the bundled sample: the automatic lesion volumes in the report are
within 15 % of the truth, for every metabolically active lesion at every timepoint.

The study goes through the path of ``emlesion response`` (:func:`emlesion.study.load_study`
with the default 41 % method, then :func:`emlesion.report.report_dict`).

Expected values come from ``sample_scans/truth.json`` (``volume_ml``: PET voxels at least half
covered by the simulated lesion, written by the generator independently of the pipeline) and
the truth masks ``<timepoint>/truth_lesions.nii.gz`` (used only to say which report lesion is
which truth lesion: a report lesion belongs to a truth lesion when their masks overlap).

Metabolically resolved lesions: the truth keeps the month-3 retroperitoneal scar as
``present`` (it is visible on CT) without a metabolic-activity flag. The documented criterion
here is PERCIST's complete metabolic response: a lesion whose SUVmax does not exceed the liver
SUVmean of its timepoint (truth ``liver_reference.suv_mean``) is not metabolically active; the
report must then list no lesion there (its MTV is 0, the track is resolved).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from emlesion.report import report_dict
from emlesion.study import Study

LABELS = ("baseline", "month1", "month3")


@pytest.fixture(scope="module")
def truth(sample_scans_dir: Path) -> dict[str, Any]:
    return json.loads((sample_scans_dir / "truth.json").read_text())


@pytest.fixture(scope="module")
def study(sample_study: Study) -> Study:
    return sample_study


@pytest.fixture(scope="module")
def report(study: Study) -> dict[str, Any]:
    return json.loads(json.dumps(report_dict(study, criteria=["percist"], provenance=False)))


def _active(les: dict[str, Any], tp: dict[str, Any]) -> bool:
    # documented criterion (module docstring): SUVmax above the liver SUVmean
    return bool(les["present"]) and les["suv_max"] > tp["liver_reference"]["suv_mean"]


def _truth_mask(root: Path, label: str) -> np.ndarray:
    # the NIfTI stores (x, y, z); the pipeline arrays are (z, y, x)
    img: Any = nib.load(root / label / "truth_lesions.nii.gz")
    return np.asarray(img.get_fdata()).astype(int).transpose(2, 1, 0)


def _matched(study: Study, root: Path, label: str, truth_label: int) -> list[int]:
    tp = next(t for t in study.timepoints if t.label == label)
    inside = _truth_mask(root, label) == truth_label
    return sorted(int(v) for v in np.unique(np.asarray(tp.lesions.array)[inside]) if v > 0)


def _reported(report: dict[str, Any], label: str, labels: list[int]) -> float:
    tp = next(t for t in report["timepoints"] if t["label"] == label)
    return float(sum(les["mtv_ml"] for les in tp["lesions"] if les["label"] in labels))


def test_which_truth_lesions_are_active(truth: dict[str, Any]) -> None:
    # truth.json: baseline SUVmax 11.62 / 10.01, month 1 4.83 / 3.28 (liver 2.34), month 3 scar
    # 1.45 <= liver 2.27 -> five present lesions, four active; the scar is the only inactive one
    flags = {(tp, les["name"]): _active(les, truth["timepoints"][tp])
             for tp in LABELS for les in truth["timepoints"][tp]["lesions"] if les["present"]}
    assert [k for k, v in flags.items() if not v] == [("month3", "retroperitoneal_right")]
    assert sum(flags.values()) == 4


@pytest.mark.slow
@pytest.mark.parametrize(("label", "name"), [
    ("baseline", "retroperitoneal_right"),
    ("baseline", "pelvic_wall_left"),
    ("month1", "retroperitoneal_right"),
    ("month1", "pelvic_wall_left"),
])
def test_active_lesion_volume_within_15_percent(study: Study, report: dict[str, Any],
                                                truth: dict[str, Any], sample_scans_dir: Path,
                                                label: str, name: str) -> None:
    t = next(les for les in truth["timepoints"][label]["lesions"] if les["name"] == name)
    assert _active(t, truth["timepoints"][label])
    labels = _matched(study, sample_scans_dir, label, t["label"])
    assert len(labels) == 1, labels  # found, as one lesion
    reported = _reported(report, label, labels)
    assert abs(reported - t["volume_ml"]) <= 0.15 * t["volume_ml"], (reported, t["volume_ml"])


@pytest.mark.slow
def test_resolved_scar_is_not_listed(study: Study, report: dict[str, Any],
                                     truth: dict[str, Any], sample_scans_dir: Path) -> None:
    t = next(les for les in truth["timepoints"]["month3"]["lesions"]
             if les["name"] == "retroperitoneal_right")
    assert not _active(t, truth["timepoints"]["month3"])  # 1.45 <= liver 2.27
    # metabolically resolved: no report lesion over the scar, MTV 0
    assert _matched(study, sample_scans_dir, "month3", t["label"]) == []
    month3 = next(tp for tp in report["timepoints"] if tp["label"] == "month3")
    assert month3["lesions"] == []  # and nothing else (the pelvic mass has resolved)
    assert all(track["month3"] is None for track in report["tracks"])


@pytest.mark.slow
def test_no_lesion_outside_the_truth_masks(study: Study, sample_scans_dir: Path) -> None:
    # bladder, kidneys and other physiological uptake are rejected: every automatic lesion
    # overlaps a truth lesion
    for tp in study.timepoints:
        tm = _truth_mask(sample_scans_dir, tp.label) > 0
        arr = np.asarray(tp.lesions.array)
        for lab in tp.lesions.labels:
            assert (tm & (arr == lab)).any(), (tp.label, tp.lesions.name(lab))


@pytest.mark.slow
def test_boundary_rules(report: dict[str, Any]) -> None:
    """Which rule placed each boundary (``threshold_rule``, ``volume_reliable``).

    The baseline masses are high-contrast (relative 41 %). The month-1 pelvic nodule has
    SUVmax 3.28 (truth.json 3.28): 0.41 x 3.28 = 1.34 is below the blood-pool mean, so the
    41 % threshold would be raised to the blood-pool floor and run into the sigmoid colon and
    the iliac vessels beside it (21.5 mL against 7.87 mL true before this rule); it is
    delineated on the CT instead (:func:`emlesion.segment.delineate_on_ct`), and its volume is
    not flagged."""
    tps = {tp["label"]: tp for tp in report["timepoints"]}
    base = tps["baseline"]["lesions"]
    assert base and all(les["volume_reliable"] for les in base)
    assert {les["threshold_rule"] for les in base} == {"41%/50% of SUVmax"}
    blood_m1 = tps["month1"]["blood_pool"]["suv_mean"]
    pelvic = [les for les in tps["month1"]["lesions"] if les["region"] == "pelvic"]
    assert len(pelvic) == 1
    assert pelvic[0]["suv_max"] == pytest.approx(3.28, abs=0.01)
    assert 0.41 * pelvic[0]["suv_max"] < blood_m1
    assert pelvic[0]["threshold_rule"] == "CT soft tissue (low contrast)"
    assert pelvic[0]["volume_reliable"] is True
