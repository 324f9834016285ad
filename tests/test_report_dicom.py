"""Tests of emlesion.report.dicom: DICOM SEG + TID 1500 SR on synthetic PET headers.

The PET "series" is built here with pydicom (header attributes only, as the loader keeps
them in Volume.headers); three timepoints share a patient, each has its own study. Expected
values: the masks and measurement rows the test builds, and the codes cited in the module
docstring (pydicom.sr.codedict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import PositronEmissionTomographyImageStorage, generate_uid

from emlesion.errors import MaskError, UnsupportedDataError
from emlesion.io import Grid, LabelMap, SeriesIdentity, Volume
from emlesion.measure import measure_lesions
from emlesion.report import (
    TrackingInfo,
    build_measurement_report,
    build_segmentation,
    quantity_codes,
    tracking_uid,
)
from emlesion.report.dicom import write_dataset_atomic

SHAPE = (12, 16, 16)
SPACING = (4.0, 4.0, 3.0)
ORIGIN = (-30.0, -30.0, -100.0)


def pet_headers(study_uid: str, name: str = "Doe^Jane") -> list[Dataset]:
    """Single-frame PET headers of one axial series (no PixelData)."""
    series, frame = generate_uid(), generate_uid()
    out = []
    for k in range(SHAPE[0]):
        ds = Dataset()
        ds.SOPClassUID = PositronEmissionTomographyImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series
        ds.FrameOfReferenceUID = frame
        ds.Modality = "PT"
        ds.PatientName, ds.PatientID = name, "P-001"
        ds.PatientBirthDate, ds.PatientSex = "19600101", "F"
        ds.StudyDate, ds.StudyTime, ds.StudyID = "20240101", "120000", "1"
        ds.AccessionNumber, ds.ReferringPhysicianName = "", ""
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.Rows, ds.Columns = SHAPE[1], SHAPE[2]
        ds.PixelSpacing = [SPACING[1], SPACING[0]]
        ds.SliceThickness = SPACING[2]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [ORIGIN[0], ORIGIN[1], ORIGIN[2] + k * SPACING[2]]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        out.append(ds)
    return out


def make_timepoint(scale: float, with_second: bool = True) -> tuple[Volume, LabelMap]:
    grid = Grid(SHAPE, ORIGIN, SPACING)
    headers = pet_headers(generate_uid())
    img = np.ones(SHAPE, np.float32)
    lab = np.zeros(SHAPE, np.uint16)
    lab[3:6, 4:8, 4:8] = 4  # label values need not be 1..N
    img[3:6, 4:8, 4:8] = 6.0 * scale
    img[4, 5, 5] = 9.0 * scale
    if with_second:
        lab[8:10, 10:13, 9:12] = 9
        img[8:10, 10:13, 9:12] = 4.0 * scale
    vol = Volume(img, grid, SeriesIdentity.from_dataset(headers[0]), headers=headers,
                 units="SUVbw")
    return vol, LabelMap(lab, grid, {4: "node A", 9: "node\\B"})


TRACKS = {4: "T1", 9: "T2"}


def infos(labels: Any) -> dict[int, TrackingInfo]:
    return {lab: TrackingInfo(TRACKS[lab], tracking_uid(TRACKS[lab], patient_id="P-001"))
            for lab in labels}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """SEG and SR of three timepoints (T2 resolved at the third), written and read back."""
    out = tmp_path_factory.mktemp("dicom")
    result: dict[str, Any] = {"rows": {}, "masks": {}, "files": {}}
    for order, (label, scale, second) in enumerate(
        [("baseline", 1.0, True), ("month1", 0.8, True), ("month3", 0.5, False)], start=1
    ):
        suv, lesions = make_timepoint(scale, second)
        rows = [r.to_dict() for r in measure_lesions(suv, lesions, peak_variants=("global",))]
        track = infos(lesions.labels)
        seg = build_segmentation(suv, lesions, tracking=track)
        absent = [] if second else [TrackingInfo("T2", tracking_uid("T2", patient_id="P-001"))]
        sr = build_measurement_report(suv, rows, seg, lesions=lesions, tracking=track,
                                      time_point=label,
                                      time_point_order=order, absent_tracks=absent)
        seg_path = write_dataset_atomic(seg, out / f"{label}_seg.dcm")
        sr_path = write_dataset_atomic(sr, out / f"{label}_sr.dcm")
        result["rows"][label] = rows
        result["masks"][label] = lesions
        result["files"][label] = (seg_path, sr_path)
        result.setdefault("sources", {})[label] = suv.headers
    return result


def _groups(sr: Any) -> list[Any]:
    return list(sr.content.get_volumetric_roi_measurement_groups())


def _measurements(group: Any) -> dict[tuple[str, str | None], tuple[float, str]]:
    out = {}
    for m in group.get_measurements():
        if m.name.value == "126073":  # Time Point Order (a NUM of TID 1502), not a metric
            continue
        key = (m.name.value, m.derivation.value if m.derivation is not None else None)
        out[key] = (float(m.value), m.unit.value)
    return out


def _content_text(group: Any, meaning: str) -> list[str]:
    return [str(i.get("TextValue", "")) for i in group[0].ContentSequence
            if i.ConceptNameCodeSequence[0].CodeMeaning == meaning]


def test_seg_reads_back_with_one_segment_per_lesion(written: dict[str, Any]) -> None:
    for label in ("baseline", "month1", "month3"):
        seg_path, _ = written["files"][label]
        seg = hd.seg.segread(seg_path)
        lesions: LabelMap = written["masks"][label]
        assert seg.SegmentationType == "BINARY"
        assert seg.number_of_segments == len(lesions.labels)
        src_uids = [h.SOPInstanceUID for h in written["sources"][label]]
        stack = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=src_uids, ignore_spatial_locations=True
        )  # (slice, row, column, segment)
        for n, lab in enumerate(lesions.labels, start=1):
            assert np.array_equal(stack[..., n - 1] > 0, lesions.mask(lab))
            desc = seg.get_segment_description(n)
            assert desc.tracking_id == TRACKS[lab]
            assert desc.tracking_uid == tracking_uid(TRACKS[lab], patient_id="P-001")
            assert desc.segmented_property_type.value == "52988006"  # SCT Lesion
            assert desc.segmented_property_category.value == "49755003"  # SCT Morph. abnormal
        # the backslash of "node\\B" is not a valid LO character: replaced by a space
        labels = [seg.get_segment_description(n).segment_label
                  for n in seg.get_segment_numbers()]
        assert labels == ["node A", "node B"][: len(lesions.labels)]
        ds = pydicom.dcmread(seg_path)
        assert ds.PatientName == "Doe^Jane" and ds.Modality == "SEG"


def test_sr_one_group_per_lesion_with_stable_tracking(written: dict[str, Any]) -> None:
    uids: dict[str, set[str]] = {"T1": set(), "T2": set()}
    for order, label in enumerate(("baseline", "month1", "month3"), start=1):
        _, sr_path = written["files"][label]
        sr = hd.sr.srread(sr_path)
        assert isinstance(sr, hd.sr.Comprehensive3DSR)
        groups = _groups(sr)
        rows = {int(r["label"]): r for r in written["rows"][label]}
        assert len(groups) == len(rows)  # one volumetric group per lesion
        seg = pydicom.dcmread(written["files"][label][0])
        for g, lab in zip(groups, sorted(rows)):
            assert g.tracking_identifier == TRACKS[lab]
            uids[TRACKS[lab]].add(g.tracking_uid)
            ref = g.referenced_segment
            assert ref.referenced_sop_instance_uid == seg.SOPInstanceUID
            assert ref.referenced_segment_numbers == [sorted(rows).index(lab) + 1]
            # source images: exactly the PET slices the lesion lies in
            mask = written["masks"][label].mask(lab)
            expected = {written["sources"][label][k].SOPInstanceUID
                        for k in range(SHAPE[0]) if mask[k].any()}
            got = {i.referenced_sop_instance_uid for i in ref.source_images_for_segmentation}
            assert got == expected
            assert _content_text(g, "Time Point") == [label]
            m = _measurements(g)
            r = rows[lab]
            # codes: SUVbw 126401 with derivation Maximum/Mean/Peak; 126032 MTV; 126033 TLG
            assert m[("126401", "56851009")] == pytest.approx((r["suv_max"], "g/ml{SUVbw}"))
            assert m[("126401", "373098007")] == pytest.approx((r["suv_mean"], "g/ml{SUVbw}"))
            assert m[("126401", "126031")] == pytest.approx(
                (r["suv_peak_global"], "g/ml{SUVbw}"))
            assert m[("126032", None)] == pytest.approx((r["mtv_ml"], "ml"))
            assert m[("126033", None)] == pytest.approx((r["tlg"], "g"))
            assert len(m) == 5
        tpo = [i for i in groups[0][0].ContentSequence
               if i.ConceptNameCodeSequence[0].CodeMeaning == "Time Point Order"]
        assert float(tpo[0].MeasuredValueSequence[0].NumericValue) == order
        ds = pydicom.dcmread(sr_path)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
        assert ds.PatientID == "P-001"
    # the same track has the same Tracking UID at every timepoint, different tracks differ
    assert len(uids["T1"]) == 1 and len(uids["T2"]) == 1
    assert uids["T1"] != uids["T2"]


def test_sr_reports_a_resolved_track_with_zero_volume(written: dict[str, Any]) -> None:
    sr = hd.sr.srread(written["files"]["month3"][1])
    plain = list(sr.content.get_image_measurement_groups())
    assert len(plain) == 1
    g = plain[0]
    assert g.tracking_identifier == "T2"
    assert g.tracking_uid == tracking_uid("T2", patient_id="P-001")
    m = _measurements(g)
    assert m == {("126032", None): (0.0, "ml"), ("126033", None): (0.0, "g")}


def test_tlg_of_the_sr_is_suvmean_times_mtv(written: dict[str, Any]) -> None:
    # independent check on the baseline lesion 4: 3 x 4 x 4 = 48 voxels of 4 x 4 x 3 mm
    # (0.048 mL each) -> MTV 2.304 mL; 47 voxels of SUV 6 and one of 9 -> mean 6.0625;
    # TLG = 6.0625 x 2.304 = 13.968
    sr = hd.sr.srread(written["files"]["baseline"][1])
    m = _measurements(_groups(sr)[0])
    assert m[("126032", None)][0] == pytest.approx(2.304)
    assert m[("126401", "373098007")][0] == pytest.approx(6.0625)
    assert m[("126033", None)][0] == pytest.approx(13.968)
    assert m[("126401", "56851009")][0] == pytest.approx(9.0)


def test_quantity_codes_follow_the_normalisation() -> None:
    assert [c.value for c in quantity_codes("SULjanma")] == ["126405", "g/ml{SUVlbm(Janma)}",
                                                              "g"]
    assert [c.value for c in quantity_codes("SUVbsa")] == ["126403", "cm2/ml{SUVbsa}", "cm2"]
    with pytest.raises(UnsupportedDataError, match="BQML"):
        quantity_codes("BQML")


def test_errors_without_headers_lesions_or_grid() -> None:
    suv, lesions = make_timepoint(1.0)
    bare = Volume(suv.array, suv.grid, units="SUVbw")
    with pytest.raises(UnsupportedDataError, match="no DICOM headers"):
        build_segmentation(bare, lesions)
    empty = LabelMap(np.zeros(SHAPE, np.uint16), suv.grid)
    with pytest.raises(MaskError, match="at least one lesion"):
        build_segmentation(suv, empty)
    other = LabelMap(lesions.array[:, :, :8], Grid((12, 16, 8), ORIGIN, SPACING))
    with pytest.raises(MaskError, match="not on the PET grid"):
        build_segmentation(suv, other)
    with pytest.raises(MaskError, match="no lesion and no earlier lesion"):
        build_measurement_report(suv, [], None, tracking={}, time_point="x")


def test_tracking_uid_is_deterministic_and_valid() -> None:
    a = tracking_uid("T1", patient_id="P", baseline_study_uid="1.2")
    assert a == tracking_uid("T1", patient_id="P", baseline_study_uid="1.2")
    assert a != tracking_uid("T1", patient_id="Q", baseline_study_uid="1.2")
    assert a.startswith("2.25.") and len(a) <= 64
    assert pydicom.uid.UID(a).is_valid


def test_written_files_are_complete_part10(written: dict[str, Any]) -> None:
    for seg_path, sr_path in written["files"].values():
        for p in (seg_path, sr_path):
            assert Path(p).read_bytes()[128:132] == b"DICM"
            assert not list(Path(p).parent.glob(".*.tmp"))


def test_sr_records_the_response_category_of_every_criterion(tmp_path: Path) -> None:
    from emlesion.report.dicom import (
        RESPONSE_CATEGORY_CODES,
        RESPONSE_CONCEPTS,
        RESPONSE_METHOD,
        RESPONSE_REASON_CONCEPTS,
    )
    from emlesion.response import (
        Assessment,
        Criterion,
        EortcCategory,
        LuganoCtCategory,
        LuganoPetCategory,
        PercistCategory,
        RecistCategory,
    )

    suv, lesions = make_timepoint(0.8)
    rows = [r.to_dict() for r in measure_lesions(suv, lesions, peak_variants=("global",))]
    track = infos(lesions.labels)
    seg = build_segmentation(suv, lesions, tracking=track)
    calls = [  # one call per criterion, each with its own category (hand-chosen)
        Assessment(Criterion.PERCIST, "month1", "baseline", PercistCategory.PMR, "P.PMR",
                   reasons=("threshold 3.05", "SULpeak 8.39 -> 3.27: -61.0 %",
                            "decrease of at least 30 %")),
        Assessment(Criterion.EORTC, "month1", "baseline", EortcCategory.SMD, "E.SMD",
                   reasons=("target SUVmax 11.6 -> 10.9 (-6.0 %)",)),
        Assessment(Criterion.RECIST, "month1", "baseline", RecistCategory.PD, "R.PD",
                   reasons=("sum 91.2 -> 120.0 mm (+31.6 %)",), nadir="month1"),
        Assessment(Criterion.LUGANO_PET, "month1", "baseline", LuganoPetCategory.CMR, "L.CMR",
                   reasons=("highest Deauville score 3 <= 3; no new lesion",)),
        Assessment(Criterion.LUGANO_CT, "month1", "baseline", LuganoCtCategory.NE, "L.NE",
                   reasons=("no CT",)),
    ]
    sr = build_measurement_report(suv, rows, seg, lesions=lesions, tracking=track,
                                  time_point="month1", time_point_order=2, responses=calls)
    back = hd.sr.srread(write_dataset_atomic(sr, tmp_path / "month1_sr.dcm"))
    groups = [g for g in back.content.get_image_measurement_groups()
              if g.method is not None and g.method.value == RESPONSE_METHOD.value]
    assert len(groups) == 1
    group = groups[0]
    assert group.tracking_identifier == "response"
    got = {e.name.meaning: (e.value.value, e.value.meaning)
           for e in group.get_qualitative_evaluations()
           if e.name.scheme_designator == "99EMLESION"}  # not the TID 1502 Time Point Type
    assert got == {
        "PERCIST 1.0 response category": ("PMR", "PMR: partial metabolic response"),
        "EORTC 1999 response category": ("SMD", "SMD: stable metabolic disease"),
        "RECIST 1.1 response category": ("PD", "PD: progressive disease"),
        "Lugano 2014 (PET-based) response category": ("CMR",
                                                      "CMR: complete metabolic response"),
        "Lugano 2014 (CT-based) response category": ("NE", "NE: not evaluable"),
    }
    assert RESPONSE_CONCEPTS[Criterion.PERCIST].value == "RESPPERCIST"
    assert RESPONSE_CATEGORY_CODES["PMR"].scheme_designator == "99EMLESION"
    # the TEXT items: reference (and nadir when it differs) and the measured change
    assert _content_text(group, RESPONSE_REASON_CONCEPTS[Criterion.PERCIST].meaning) == [
        "PMR vs baseline: SULpeak 8.39 -> 3.27: -61.0 %"]
    assert _content_text(group, RESPONSE_REASON_CONCEPTS[Criterion.RECIST].meaning) == [
        "PD vs baseline (nadir month1): sum 91.2 -> 120.0 mm (+31.6 %)"]
    # the private scheme is declared
    ds = pydicom.dcmread(tmp_path / "month1_sr.dcm")
    assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99EMLESION"


def test_seg_and_sr_of_a_pet_without_patient_birth_date(tmp_path: Path) -> None:
    # Found by the bad-input suite: a PET without PatientBirthDate (Type 2 in PS3.3 C.7.1.1,
    # omitted by some exporters) crashed the SEG writer inside highdicom. The SEG now carries
    # it empty, and the loaded volume's own headers are not modified.
    suv, lesions = make_timepoint(1.0)
    for ds in suv.headers:
        del ds.PatientBirthDate
    seg = build_segmentation(suv, lesions, tracking=infos(lesions.labels))
    assert seg.PatientBirthDate == "" and seg.PatientID == "P-001"
    assert all("PatientBirthDate" not in ds for ds in suv.headers)
