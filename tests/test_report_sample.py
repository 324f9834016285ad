"""End to end on the bundled sample_scans: study -> report.html and SEG/SR per timepoint.

The study is loaded with the truth lesion masks of the sample (``truth_lesions.nii.gz``,
given as user masks, as ``emlesion response --masks`` does), so that the numbers in the
outputs can be compared with ``truth.json``: lesion volumes within 15 % (the acceptance
criterion), tracking identifiers stable across the three timepoints.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
import pytest

from emlesion.report import tracks_array, write_dicom_outputs, write_html_report
from emlesion.report.dicom import RESPONSE_METHOD, SITE_READOUT_METHOD

pytestmark = pytest.mark.slow

LABELS = ("baseline", "month1", "month3")


@pytest.fixture(scope="module")
def outputs(sample_scans_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from emlesion.study import load_study

    study = load_study(
        {k: sample_scans_dir / k for k in LABELS},
        masks={k: sample_scans_dir / k / "truth_lesions.nii.gz" for k in LABELS},
    )
    out = tmp_path_factory.mktemp("sample_report")
    html_path = write_html_report(study, None, out / "report.html", deidentify=True)
    files = write_dicom_outputs(study, out)
    truth = json.loads((sample_scans_dir / "truth.json").read_text())
    return {"study": study, "html": html_path, "files": files, "truth": truth, "out": out}


def _truth_volumes(truth: dict[str, Any]) -> dict[tuple[str, int], float]:
    return {(tp, les["label"]): float(les["volume_ml"])
            for tp, d in truth["timepoints"].items() for les in d["lesions"] if les["present"]}


def test_report_volumes_within_15_percent_of_truth(outputs: dict[str, Any]) -> None:
    page = outputs["html"].read_text(encoding="utf-8")
    body = page.split('<table class="lesions">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)[1:]
    shown: dict[tuple[str, int], float] = {}
    for r in rows:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.S)
        if cells[4] == "&ndash;":  # a former lesion's site: nothing segmented there
            continue
        label = int(cells[4].rsplit(" ", 1)[1])  # NIfTI label names are "label <n>"
        shown[(cells[1], label)] = float(cells[11])  # MTV (mL) column
    expected = _truth_volumes(outputs["truth"])
    # truth.json: baseline 2 lesions, month1 2, month3 the retroperitoneal scar only
    assert set(shown) == set(expected) and len(expected) == 5
    for key, volume in expected.items():
        assert abs(shown[key] - volume) <= 0.15 * volume, (key, shown[key], volume)


def test_report_is_deidentified_and_complete(outputs: dict[str, Any]) -> None:
    page = outputs["html"].read_text(encoding="utf-8")
    patient = outputs["truth"]["patient"]
    assert patient["patient_name"] not in page and patient["patient_id"] not in page
    assert patient["birth_date"].replace("-", "") not in page
    # 3 MIPs + 1 time course + one fusion per site at every timepoint (every track read at
    # every timepoint from its first appearance); 7 tables (header, timepoints, calls,
    # lesions, acquisition, sites, response); far below 5 MB
    study = outputs["study"]
    n_sites = sum(len(by_tp) for by_tp in study.sites.values())
    assert n_sites == 2 * len(LABELS)  # both tracks at every timepoint
    assert page.count("<img ") == 3 + 1 + n_sites
    # the seven tables of the reader-first layout plus the whole-body burden table
    assert page.count("<table") == 8 and '<section id="burden">' in page
    assert len(page.encode()) < 5_000_000
    assert "PERCIST 1.0" in page  # response table filled by Study.assess()


def test_seg_and_sr_of_every_timepoint_read_back(outputs: dict[str, Any]) -> None:
    out: Path = outputs["out"]
    names = sorted(p.name for p in outputs["files"])
    assert names == sorted(f"{k}_{kind}.dcm" for k in LABELS for kind in ("seg", "sr"))
    expected = _truth_volumes(outputs["truth"])
    tracks = {t["id"]: t for t in tracks_array(outputs["study"])}
    track_uids: dict[str, set[str]] = {}
    for tp in LABELS:
        seg = hd.seg.segread(out / f"{tp}_seg.dcm")
        n_present = sum(1 for (t, _) in expected if t == tp)
        assert seg.number_of_segments == n_present
        sr = hd.sr.srread(out / f"{tp}_sr.dcm")
        groups = list(sr.content.get_volumetric_roi_measurement_groups())
        assert len(groups) == n_present  # one measurement group per lesion
        for g in groups:
            track_uids.setdefault(g.tracking_identifier, set()).add(g.tracking_uid)
            mtv = [m for m in g.get_measurements() if m.name.value == "126032"]
            label = int(tracks[g.tracking_identifier][tp])
            truth_ml = expected[(tp, label)]
            assert abs(float(mtv[0].value) - truth_ml) <= 0.15 * truth_ml
        ds = pydicom.dcmread(out / f"{tp}_sr.dcm")
        assert ds.Modality == "SR"
    # the retroperitoneal lesion (T1) is present at the three timepoints with one UID
    assert {k: len(v) for k, v in track_uids.items()} == {"T1": 1, "T2": 1}
    # the pelvic lesion resolved at month3: reported there as an absent track, same UID
    # (the site-readout groups, one per track and timepoint, are told apart by their
    # Measurement Method and tested in tests/test_report_sites.py)
    sr3 = hd.sr.srread(out / "month3_sr.dcm")
    absent, sites = [], {}
    for g in sr3.content.get_image_measurement_groups():
        if g.method is not None and g.method.value == SITE_READOUT_METHOD.value:
            sites[g.tracking_identifier] = g.tracking_uid
        elif g.method is None or g.method.value != RESPONSE_METHOD.value:
            absent.append(g)
    assert [g.tracking_identifier for g in absent] == ["T2"]
    assert {absent[0].tracking_uid} == track_uids["T2"]
    assert sites == {tid: next(iter(uids)) for tid, uids in track_uids.items()}


def test_sr_of_each_follow_up_holds_the_response_categories(outputs: dict[str, Any]) -> None:
    # write_dicom_outputs without assessments records Study.assess(): read back with
    # highdicom, the PERCIST category is truth.json's expected response (PMR, then CMR)
    import warnings

    out: Path = outputs["out"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calls = outputs["study"].assess()
    expected = outputs["truth"]["expected_response"]
    for tp in LABELS:
        sr = hd.sr.srread(out / f"{tp}_sr.dcm")
        groups = [g for g in sr.content.get_image_measurement_groups()
                  if g.method is not None and g.method.value == RESPONSE_METHOD.value]
        if tp == "baseline":
            assert groups == []  # nothing to compare the baseline with
            continue
        assert len(groups) == 1
        got = {e.name.meaning: e.value.value for e in groups[0].get_qualitative_evaluations()
               if e.name.scheme_designator == "99EMLESION"}
        assert got == {f"{a.criterion.full_name} response category": a.category.value
                       for a in calls if a.timepoint == tp}
        assert got["PERCIST 1.0 response category"] == expected[tp]["percist"]["category"]
