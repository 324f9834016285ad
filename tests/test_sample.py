"""Tests of emlesion.sample and of the committed sample_scans/ study.

The expected values come from the committed ``sample_scans/truth.json`` and are checked
against independent plain pydicom/numpy/nibabel/SimpleITK readings written in this file
(SUV factor from the header values per QIBA, per-slice RescaleSlope, 1 mL sphere by
explicit neighbour offsets), never against emlesion's own readers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from emlesion.cli import main as cli_main
from emlesion.sample import DEFAULT_SEED, TIMEPOINTS, generate_sample_study
from emlesion.sample.schedule import decay_weighted_average_time_s, lean_body_mass_janmahasatian_kg
from emlesion.sample.truth import percist_category, spherical_kernel

SERIES = ("PT", "CT", "LOCALIZER")


# ---------------------------------------------------------------------------- helpers
def _read_series(folder: Path) -> list[pydicom.Dataset]:
    dss = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    return sorted(dss, key=lambda ds: float(ds.ImagePositionPatient[2]))


def _decoded_hash(dss: list[pydicom.Dataset]) -> str:
    """SHA-256 of the decoded stored values, slices in increasing z (truth.json convention)."""
    arr = np.stack([ds.pixel_array for ds in dss])
    return hashlib.sha256(arr.astype(arr.dtype.newbyteorder("<")).tobytes()).hexdigest()


def _dicom_dt(text: str) -> dt.datetime:
    return dt.datetime.strptime(text.split("+")[0][:21].ljust(21, "0")[:21], "%Y%m%d%H%M%S.%f")


def _date_time(date: str, time: str) -> dt.datetime:
    return _dicom_dt(date + time.split(".")[0].ljust(6, "0") + ".0")


def _private(ds: pydicom.Dataset, group: int, creator: str, element: int) -> Any:
    """Value of a private element found through its private creator (never the literal tag)."""
    for blk_elem in range(0x10, 0x100):
        tag = (group << 16) | blk_elem
        if tag in ds and str(ds[tag].value).strip() == creator:
            return ds[(group << 16) | (blk_elem << 8) | element].value
    raise KeyError(creator)


def _suv_factor(dss: list[pydicom.Dataset]) -> float:
    """QIBA SUVbw factor per (slope x stored) unit, computed here from the header values."""
    ds = dss[0]
    if ds.Units == "CNTS":
        return float(_private(ds, 0x7053, "Philips PET Private Group", 0x00))
    assert ds.Units == "BQML" and ds.DecayCorrection == "START"
    assert "ATTN" in ds.CorrectedImage and "DECY" in ds.CorrectedImage
    series = _date_time(ds.SeriesDate, ds.SeriesTime)
    earliest = min(_date_time(d.AcquisitionDate, d.AcquisitionTime) for d in dss)
    # QIBA step 1 (SeriesDateTime not after the earliest acquisition), else step 2 (GE private)
    ge_scan = _private(ds, 0x0009, "GEMS_PETD_01", 0x0D) if series > earliest else None
    t_ref = series if ge_scan is None else _dicom_dt(ge_scan)
    rp = ds.RadiopharmaceuticalInformationSequence[0]
    t_inj = _dicom_dt(rp.RadiopharmaceuticalStartDateTime)
    d_ref = float(rp.RadionuclideTotalDose) * 2.0 ** (
        -(t_ref - t_inj).total_seconds() / float(rp.RadionuclideHalfLife)
    )
    return float(ds.PatientWeight) * 1000.0 / d_ref


def _suv_volume(dss: list[pydicom.Dataset]) -> np.ndarray:
    f = _suv_factor(dss)
    return np.stack([ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) * f for ds in dss])


def _labels_from_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(str(path))
    return np.asarray(img.dataobj).transpose(2, 1, 0), img.affine


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def truth(sample_scans_dir: Path) -> dict[str, Any]:
    return json.loads((sample_scans_dir / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pet(sample_scans_dir: Path) -> dict[str, list[pydicom.Dataset]]:
    return {tp: _read_series(sample_scans_dir / tp / "PT") for tp in TIMEPOINTS}


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("regen") / "sample"
    generate_sample_study(out, seed=DEFAULT_SEED)
    return out


# ---------------------------------------------------------------------------- layout
def test_committed_layout_three_studies_one_pet_one_ct_one_localizer(
    sample_scans_dir: Path, truth: dict[str, Any]
) -> None:
    assert truth["seed"] == DEFAULT_SEED
    assert list(truth["timepoints"]) == list(TIMEPOINTS)
    studies, patients = set(), set()
    for tp in TIMEPOINTS:
        by_series: dict[str, list[pydicom.Dataset]] = {}
        for name in SERIES:
            by_series[name] = [
                pydicom.dcmread(p, stop_before_pixels=True)
                for p in (sample_scans_dir / tp / name).glob("*.dcm")
            ]
        assert [len(by_series[s]) for s in SERIES] == [96, 96, 1]
        for name, dss in by_series.items():
            assert len({ds.SeriesInstanceUID for ds in dss}) == 1, name
            assert {ds.StudyInstanceUID for ds in dss} == {
                truth["timepoints"][tp]["study_instance_uid"]
            }
            assert {ds.FrameOfReferenceUID for ds in dss} == {
                truth["timepoints"][tp]["frame_of_reference_uid"]
            }
            patients |= {(ds.PatientID, str(ds.PatientName), ds.PatientBirthDate) for ds in dss}
        assert by_series["PT"][0].SOPClassUID == pydicom.uid.PositronEmissionTomographyImageStorage
        assert by_series["CT"][0].SOPClassUID == pydicom.uid.CTImageStorage
        assert "LOCALIZER" in by_series["LOCALIZER"][0].ImageType
        assert len({ds.SOPInstanceUID for s in SERIES for ds in by_series[s]}) == 193
        studies.add(by_series["PT"][0].StudyInstanceUID)
    assert len(studies) == 3 and len(patients) == 1


def test_committed_sample_size_under_20_mb(sample_scans_dir: Path) -> None:
    size = sum(p.stat().st_size for p in sample_scans_dir.rglob("*") if p.is_file())
    assert size <= 20 * 1024 * 1024


# ---------------------------------------------------------------------------- regeneration
@pytest.mark.slow  # the sample study generated again
def test_regeneration_reproduces_committed_pixels_and_truth(
    sample_scans_dir: Path, regenerated: Path, truth: dict[str, Any]
) -> None:
    for tp in TIMEPOINTS:
        for name in SERIES:
            committed = _decoded_hash(_read_series(sample_scans_dir / tp / name))
            again = _decoded_hash(_read_series(regenerated / tp / name))
            assert committed == again, (tp, name)
            # truth.json records the same hash, computed before encoding
            assert committed == truth["timepoints"][tp]["series"][name]["pixel_sha256"]
        a, _ = _labels_from_nifti(sample_scans_dir / tp / "truth_lesions.nii.gz")
        b, _ = _labels_from_nifti(regenerated / tp / "truth_lesions.nii.gz")
        assert np.array_equal(a, b)
    assert json.loads((regenerated / "truth.json").read_text(encoding="utf-8")) == truth


@pytest.mark.slow  # the sample study generated again
def test_regenerated_files_are_bit_identical(sample_scans_dir: Path, regenerated: Path) -> None:
    # deterministic UIDs and fixed times: the PET files are byte for byte the committed ones
    for p in sorted((sample_scans_dir / "month3" / "PT").glob("*.dcm"))[:5]:
        assert p.read_bytes() == (regenerated / "month3" / "PT" / p.name).read_bytes()


def test_generate_refuses_non_empty_outdir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert cli_main(["sample", str(tmp_path), "--seed", "1"]) == 1
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]  # untouched, no temp left over
    with pytest.raises(FileExistsError):
        generate_sample_study(tmp_path)


# ---------------------------------------------------------------------------- truth vs DICOM
def test_truth_lesions_agree_with_plain_pydicom_reading(
    sample_scans_dir: Path, truth: dict[str, Any], pet: dict[str, list[pydicom.Dataset]]
) -> None:
    for tp in TIMEPOINTS:
        t = truth["timepoints"][tp]
        dss = pet[tp]
        suv = _suv_volume(dss)
        labels, _ = _labels_from_nifti(sample_scans_dir / tp / "truth_lesions.nii.gz")
        assert labels.shape == suv.shape
        ipp0 = np.array([float(v) for v in dss[0].ImagePositionPatient])
        spacing = np.array(
            [
                float(dss[0].PixelSpacing[1]),
                float(dss[0].PixelSpacing[0]),
                float(dss[1].ImagePositionPatient[2]) - ipp0[2],
            ]
        )
        kernel_offsets = np.argwhere(spherical_kernel(tuple(spacing))) - 1  # 3x3x3 kernel, centre 1
        assert len(kernel_offsets) == 19  # 1 + 6 faces (4 mm) + 12 edges (5.66 mm) <= 6.2035 mm
        padded = np.pad(suv, 1)
        for les in t["lesions"]:
            mask = labels == les["label"]
            if not les["present"]:
                assert not mask.any() and les["volume_ml"] == 0.0
                continue
            vals = suv[mask]
            assert int(mask.sum()) == les["n_voxels"]
            assert mask.sum() * np.prod(spacing) / 1000.0 == pytest.approx(
                les["volume_ml"], abs=1e-3
            )
            assert vals.max() == pytest.approx(les["suv_max"], abs=1e-3)
            assert vals.mean() == pytest.approx(les["suv_mean"], abs=1e-3)
            idx = np.argwhere(mask)
            centroid = ipp0 + idx[:, ::-1].mean(axis=0) * spacing
            np.testing.assert_allclose(centroid, les["centroid_mm"], atol=0.01)
            ext_cm = (idx.max(axis=0) - idx.min(axis=0) + 1)[::-1] * spacing / 10.0
            np.testing.assert_allclose(ext_cm, les["extents_cm"], atol=0.005)
            # IBSI global peak by explicit neighbour offsets (no convolution)
            peak = max(
                np.mean(
                    [padded[z + 1 + dz, y + 1 + dy, x + 1 + dx] for dz, dy, dx in kernel_offsets]
                )
                for z, y, x in idx
            )
            assert peak == pytest.approx(les["suv_peak"], abs=1e-3)
            assert les["sul_peak"] == pytest.approx(les["suv_peak"] * t["sul_per_suvbw"], abs=1e-3)


def test_truth_suv_conversion_and_references(
    truth: dict[str, Any], pet: dict[str, list[pydicom.Dataset]]
) -> None:
    for tp in TIMEPOINTS:
        t = truth["timepoints"][tp]
        dss = pet[tp]
        assert _suv_factor(dss) == pytest.approx(t["suv_factor_per_stored_unit"], rel=1e-9)
        assert float(dss[0].PatientWeight) == t["weight_kg"]
        # Janmahasatian LBM, male: 9270 W / (6680 + 216 W / H^2)
        w, h = t["weight_kg"], t["height_m"]
        assert t["lbm_kg_janmahasatian"] == pytest.approx(
            9270 * w / (6680 + 216 * w / h**2), abs=1e-3
        )
        # liver reference: voxel centres within 15 mm of the recorded centre
        suv = _suv_volume(dss)
        ipp0 = np.array([float(v) for v in dss[0].ImagePositionPatient])
        zz, yy, xx = np.indices(suv.shape)
        pos = np.stack([xx, yy, zz], axis=-1) * 4.0 + ipp0
        liver = t["liver_reference"]
        sel = np.linalg.norm(pos - np.array(liver["center_mm"]), axis=-1) <= 15.0
        assert sel.sum() == liver["n_voxels"]
        assert suv[sel].mean() == pytest.approx(liver["suv_mean"], abs=1e-3)
        assert 2.0 <= liver["suv_mean"] <= 2.5  # PERCIST-normal liver, as specified
        # the bladder is the hottest structure and is not a lesion
        bladder = next(
            h for h in t["physiological_hot_structures"] if h["name"] == "urinary_bladder"
        )
        assert bladder["suv_max"] == pytest.approx(suv.max(), abs=1e-3)


def test_sampled_clinical_course(truth: dict[str, Any]) -> None:
    tps = truth["timepoints"]
    base = {les["name"]: les for les in tps["baseline"]["lesions"]}
    m1 = {les["name"]: les for les in tps["month1"]["lesions"]}
    retro, pelvic = base["retroperitoneal_right"], base["pelvic_wall_left"]
    assert (retro["region"], retro["side"], pelvic["region"], pelvic["side"]) == (
        "retroperitoneal",
        "right",
        "pelvic",
        "left",
    )
    assert 8.0 <= retro["suv_max"] <= 12.0 and 8.0 <= pelvic["suv_max"] <= 12.0
    # sizes "about" the case report (3.5 x 4.7 x 12.6 and 2.5 x 4.3 x 8.8 cm), 4 mm voxels
    np.testing.assert_allclose(retro["extents_cm"], [3.5, 4.7, 12.6], atol=0.6)
    np.testing.assert_allclose(pelvic["extents_cm"], [2.5, 4.3, 8.8], atol=0.6)
    assert 0.40 <= m1["retroperitoneal_right"]["volume_ml"] / retro["volume_ml"] <= 0.50
    # real gaps to the kidney/bladder so that segmentation can separate them
    assert (
        retro["gap_to_kidney_or_bladder_mm"] >= 15 and pelvic["gap_to_kidney_or_bladder_mm"] >= 15
    )
    # PERCIST recomputed here from the truth SULpeaks (Wahl 2009: PMR >= 30 % and >= 0.8 SUL)
    b = max(les["sul_peak"] for les in base.values())
    f1 = max(les["sul_peak"] for les in m1.values())
    assert (b - f1) / b >= 0.30 and b - f1 >= 0.8
    m3 = [les for les in tps["month3"]["lesions"] if les["present"]]
    assert all(les["sul_peak"] <= tps["month3"]["liver_reference"]["sul_mean"] for les in m3)
    assert truth["expected_response"]["month1"]["percist"]["category"] == "PMR"
    assert truth["expected_response"]["month3"]["percist"]["category"] == "CMR"


def test_headers_timing_is_consistent_with_qiba_step3(
    pet: dict[str, list[pydicom.Dataset]], truth: dict[str, Any]
) -> None:
    # t_ref = AcquisitionTime - FrameReferenceTime/1000 + T_ave (QIBA step 3 / IBSI option B)
    lam = math.log(2) / 6586.2
    for tp in TIMEPOINTS:
        expected = dt.datetime.fromisoformat(truth["timepoints"][tp]["scan_reference_datetime"])
        acq_times = set()
        for ds in pet[tp]:
            T = float(ds.ActualFrameDuration) / 1000.0
            t_ave = math.log(lam * T / (1 - math.exp(-lam * T))) / lam
            t_acq = _date_time(ds.AcquisitionDate, ds.AcquisitionTime)
            t_ref = t_acq - dt.timedelta(seconds=float(ds.FrameReferenceTime) / 1000.0 - t_ave)
            assert abs((t_ref - expected).total_seconds()) < 0.01
            assert float(ds.DecayFactor) == pytest.approx(
                math.exp(lam * float(ds.FrameReferenceTime) / 1000.0), rel=1e-5
            )
            acq_times.add(ds.AcquisitionTime)
        assert len(acq_times) == 3  # three bed positions
    ge = pet["month3"][0]
    assert _date_time(ge.SeriesDate, ge.SeriesTime) > _date_time(
        ge.AcquisitionDate, ge.AcquisitionTime
    )


def test_simpleitk_reads_pet_ct_and_nifti_geometry(
    sample_scans_dir: Path, pet: dict[str, list[pydicom.Dataset]]
) -> None:
    reader = sitk.ImageSeriesReader()
    for tp in ("baseline", "month1"):
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(sample_scans_dir / tp / "PT")))
        img = reader.Execute()
        assert img.GetSize() == (100, 100, 96)
        np.testing.assert_allclose(img.GetSpacing(), (4.0, 4.0, 4.0))
        # GDCM applies each file's RescaleSlope: compare with pydicom (slope x stored)
        plain = np.stack([ds.pixel_array * float(ds.RescaleSlope) for ds in pet[tp]])
        np.testing.assert_allclose(sitk.GetArrayFromImage(img), plain, rtol=1e-5, atol=1e-3)
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(sample_scans_dir / tp / "CT")))
        ct = sitk.GetArrayFromImage(reader.Execute())
        assert ct.shape == (96, 200, 200) and ct.min() >= -1024
        liver_hu = ct[70:75, 90:110, 50:70]  # right lobe on the CT grid (2 mm): liver HU ~58
        assert 45 <= float(liver_hu.mean()) <= 70
        loc = sitk.ReadImage(str(sample_scans_dir / tp / "LOCALIZER" / "LOC_0001.dcm"))
        assert loc.GetSize()[:2] == (200, 192)
    # NIfTI: LPS -> RAS affine (x and y negated), voxel (0,0,0) at the first PET slice position
    _, affine = _labels_from_nifti(sample_scans_dir / "baseline" / "truth_lesions.nii.gz")
    ipp0 = [float(v) for v in pet["baseline"][0].ImagePositionPatient]
    np.testing.assert_allclose(affine[:3, 3], [-ipp0[0], -ipp0[1], ipp0[2]])
    np.testing.assert_allclose(np.diag(affine)[:3], [-4.0, -4.0, 4.0])


def test_percist_helper_boundaries() -> None:
    # hand-made: 10 -> 7 is exactly -30 % and -3.0 SUL (inclusive PMR); 1.0 -> 0.75 is -25 %
    assert percist_category(10.0, 7.0, 2.0, 1.5)["category"] == "PMR"
    assert percist_category(10.0, 7.1, 2.0, 1.5)["category"] == "SMD"
    assert percist_category(2.0, 1.4, 1.0, 0.9)["category"] == "SMD"  # -30 % but only -0.6 SUL
    assert percist_category(5.0, 7.0, 2.0, 1.5)["category"] == "PMD"  # +40 %, +2.0 SUL
    assert percist_category(8.0, None, 2.0, 1.5)["category"] == "CMR"
    assert percist_category(8.0, 1.2, 2.0, 1.5)["category"] == "CMR"


def test_schedule_formulas() -> None:
    # T_ave for T = 120 s, λ = ln2/6586.2: T/2 - λT²/12 ≈ 60 - 0.063 = 59.937 s; a real Siemens
    # series (shared calculate-suv vendor headers) stores FrameReferenceTime 59936.854672596 ms
    # for a 120 s frame that starts at SeriesTime
    assert decay_weighted_average_time_s(120.0) * 1000 == pytest.approx(59936.854672596, abs=1e-6)
    # Janmahasatian male, 72 kg, 1.78 m: BMI 22.7244; 667440 / (6680 + 4908.47) = 57.595 kg
    assert lean_body_mass_janmahasatian_kg(72.0, 1.78, "M") == pytest.approx(57.595, abs=1e-3)
