"""Writing the sample study as PET Image Storage, CT Image Storage and CT localizer files.

Every value written is deterministic: UIDs are derived from the seed with
:func:`pydicom.uid.generate_uid` ``entropy_srcs``, and every date and time is taken from
the fixed schedule (no wall clock). The PET headers carry every attribute a QIBA
SUV engine needs, in the vendor convention of the timepoint.

References
----------
.. [1] DICOM PS3.3 A.21 (PET Image IOD), C.8.9.1 (PET Series), C.8.9.2 (PET Isotope),
   C.8.9.4 (PET Image), A.3 (CT Image IOD).
.. [2] QIBA vendor-neutral SUV pseudo-code (2018); IBSI SUV manual (Philips private SUV
   factors, GE GEMS_PETD_01 scan_datetime).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    PositronEmissionTomographyImageStorage,
    RLELossless,
    generate_uid,
)

from emlesion._version import __version__
from emlesion.errors import InvalidParameterError, format_message
from emlesion.sample.schedule import (
    F18_HALF_LIFE_S,
    Patient,
    TimepointSchedule,
    VendorConvention,
    decay_weighted_average_time_s,
)

__all__ = [
    "PET_STORED_MAX",
    "SeriesGeometry",
    "StudyUIDs",
    "format_ds",
    "quantise_per_slice",
    "write_ct_series",
    "write_localizer",
    "write_pet_series",
]

#: Largest stored PET value: slopes are chosen so that each slice's maximum maps here.
PET_STORED_MAX: int = 32000


def format_ds(value: float, digits: int = 10) -> str:
    """A Decimal String of at most 16 characters that represents ``value`` closely."""
    for d in range(digits, 0, -1):
        text = f"{value:.{d}g}"
        if len(text) <= 16:
            return text
    raise InvalidParameterError(format_message(  # pragma: no cover
        f"cannot format {value!r} as a DICOM Decimal String of 16 characters",
        fix="pass a finite number"))


def _da(d: _dt.date) -> str:
    return d.strftime("%Y%m%d")


def _tm(t: _dt.datetime) -> str:
    return t.strftime("%H%M%S.%f")


def _dt_str(t: _dt.datetime) -> str:
    return t.strftime("%Y%m%d%H%M%S.%f")


@dataclass(frozen=True)
class StudyUIDs:
    """The UIDs of one timepoint, derived deterministically from the seed."""

    study: str
    frame_of_reference: str
    pet_series: str
    ct_series: str
    localizer_series: str
    seed: int
    timepoint: str

    @classmethod
    def derive(cls, seed: int, timepoint: str) -> StudyUIDs:
        """UIDs for ``timepoint`` of the study generated with ``seed``."""

        def uid(*parts: object) -> str:
            return str(
                generate_uid(
                    entropy_srcs=["emlesion-sample", str(seed), timepoint, *map(str, parts)]
                )
            )

        return cls(
            uid("study"),
            uid("for"),
            uid("series", "PT"),
            uid("series", "CT"),
            uid("series", "LOC"),
            seed,
            timepoint,
        )

    def instance(self, modality: str, number: int) -> str:
        """SOPInstanceUID of instance ``number`` of a series."""
        return str(
            generate_uid(
                entropy_srcs=[
                    "emlesion-sample",
                    str(self.seed),
                    self.timepoint,
                    "instance",
                    modality,
                    str(number),
                ]
            )
        )


@dataclass(frozen=True)
class SeriesGeometry:
    """Axial grid of a series: LPS centre of voxel (0, 0, 0), spacing (x, y, z), shape (z, y, x).

    Slice index 0 is the most caudal slice.
    """

    origin_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]
    shape: tuple[int, int, int]

    def slice_position(self, k: int) -> tuple[float, float, float]:
        """ImagePositionPatient of slice ``k``."""
        return (self.origin_mm[0], self.origin_mm[1], self.origin_mm[2] + k * self.spacing_mm[2])


def quantise_per_slice(
    values: np.ndarray, stored_max: int = PET_STORED_MAX
) -> tuple[np.ndarray, list[str]]:
    """Per-slice int16 quantisation: ``values[k] ≈ float(slope[k]) * stored[k]``.

    The slope of each slice maps the slice maximum to ``stored_max`` and is rounded
    to its DS text *before* quantising, so that decoding with the written slope is
    exact up to rounding of the stored integers.

    Returns
    -------
    stored : ndarray of int16
    slopes : list of str
        RescaleSlope of each slice, as written.
    """
    stored = np.zeros(values.shape, dtype=np.int16)
    slopes: list[str] = []
    for k in range(values.shape[0]):
        vmax = float(values[k].max())
        slope_text = format_ds(vmax / stored_max, 8) if vmax > 0 else "1"
        slope = float(slope_text)
        stored[k] = np.clip(np.rint(values[k] / slope), 0, 32767).astype(np.int16)
        slopes.append(slope_text)
    return stored, slopes


def _file_dataset(sop_class: str, sop_instance: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationVersionName = f"EMLESION_{__version__}"[:16]
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    return ds


def _common(ds: Dataset, patient: Patient, sched: TimepointSchedule, uids: StudyUIDs) -> None:
    """Patient, study, equipment and frame-of-reference attributes shared by all series."""
    study_time = sched.scan_start - _dt.timedelta(minutes=4)
    ds.StudyDate = _da(sched.study_date)
    ds.StudyTime = _tm(study_time)
    ds.InstanceCreationDate = _da(sched.study_date)
    ds.InstanceCreationTime = _tm(sched.series_time + _dt.timedelta(minutes=2))
    ds.AccessionNumber = f"EMS{sched.study_date.strftime('%Y%m%d')}"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "PET-CT FDG whole body (synthetic emlesion sample)"
    ds.StudyID = f"{sched.day_after_infusion:+d}".replace("+", "P").replace("-", "M")
    ds.StudyInstanceUID = uids.study
    ds.FrameOfReferenceUID = uids.frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.PatientName = patient.patient_name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = _da(patient.birth_date)
    ds.PatientSex = patient.sex
    age = (
        sched.study_date.year
        - patient.birth_date.year
        - (
            (sched.study_date.month, sched.study_date.day)
            < (patient.birth_date.month, patient.birth_date.day)
        )
    )
    ds.PatientAge = f"{age:03d}Y"
    ds.PatientWeight = format_ds(sched.weight_kg)
    ds.PatientSize = format_ds(sched.height_m)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Synthetic data generated by emlesion.sample; no real patient"
    ds.Manufacturer = sched.manufacturer
    ds.ManufacturerModelName = sched.model_name
    ds.InstitutionName = "emlesion synthetic sample"
    ds.StationName = "EMLESION"
    ds.SoftwareVersions = f"emlesion {__version__}"
    ds.PatientPosition = "FFS"


def _image_pixel(ds: Dataset, rows: int, cols: int, *, signed: bool, bits_stored: int) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0


def _save(ds: Dataset, arr: np.ndarray, path: Path, compress: bool) -> None:
    if compress:
        ds.compress(RLELossless, np.ascontiguousarray(arr), generate_instance_uid=False)
    else:
        ds.PixelData = np.ascontiguousarray(arr).tobytes()
    ds.save_as(path, enforce_file_format=True)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def write_pet_series(
    folder: Path,
    stored: np.ndarray,
    slopes: Sequence[str],
    geometry: SeriesGeometry,
    sched: TimepointSchedule,
    patient: Patient,
    uids: StudyUIDs,
    *,
    philips_suv_factor: str | None = None,
    compress: bool = False,
) -> list[Path]:
    """Write a PET Image Storage series, one file per slice, in the timepoint's convention.

    Parameters
    ----------
    folder : Path
        Output folder (created).
    stored, slopes
        Stored int16 values ``(z, y, x)`` and per-slice RescaleSlope texts
        (see :func:`quantise_per_slice`). Units are Bq/mL for BQML, counts for CNTS.
    geometry : SeriesGeometry
    sched : TimepointSchedule
    patient : Patient
    uids : StudyUIDs
    philips_suv_factor : str, optional
        (7053,1000) SUV Scale Factor text; required for the Philips CNTS convention.
    compress : bool
        Write RLE Lossless instead of Explicit VR Little Endian.

    Returns
    -------
    list of Path
    """
    folder.mkdir(parents=True, exist_ok=True)
    nz, ny, nx = stored.shape
    vendor = sched.vendor
    lam = math.log(2.0) / F18_HALF_LIFE_S
    beds = sched.beds(nz)
    paths = []
    for k in range(nz):
        number = nz - k  # instance 1 is the most cranial slice
        bed = next(b for b in beds if b.first_slice <= k <= b.last_slice)
        ds = _file_dataset(PositronEmissionTomographyImageStorage, uids.instance("PT", number))
        _common(ds, patient, sched, uids)
        ds.Modality = "PT"
        ds.SeriesInstanceUID = uids.pet_series
        ds.SeriesNumber = 3
        ds.SeriesDescription = "PET WB AC FDG (synthetic emlesion sample)"
        ds.SeriesDate = _da(sched.series_time.date())
        ds.SeriesTime = _tm(sched.series_time)
        ds.AcquisitionDate = _da(bed.start.date())
        ds.AcquisitionTime = _tm(bed.start)
        ds.ContentDate = _da(bed.start.date())
        ds.ContentTime = _tm(bed.start)
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.InstanceNumber = number
        ds.BodyPartExamined = "WHOLEBODY"
        # PET Series module
        ds.Units = "CNTS" if vendor is VendorConvention.PHILIPS_CNTS else "BQML"
        ds.CountsSource = "EMISSION"
        ds.SeriesType = ["WHOLE BODY", "IMAGE"]
        ds.CorrectedImage = ["NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN"]
        ds.DecayCorrection = "START"
        ds.RandomsCorrectionMethod = "DLYD"
        ds.AttenuationCorrectionMethod = "CT-based"
        ds.ScatterCorrectionMethod = "Model-based"
        ds.ReconstructionMethod = "OSEM 3i21s PSF (simulated)"
        ds.ReconstructionDiameter = format_ds(geometry.spacing_mm[0] * nx)
        ds.CollimatorType = "NONE"
        ds.NumberOfSlices = nz
        ds.NumberOfTimeSlices = 1
        ds.FieldOfViewShape = "CYLINDRICAL RING"
        # PET Isotope module
        rp = Dataset()
        rp.Radiopharmaceutical = "Fluorodeoxyglucose"
        rp.RadiopharmaceuticalRoute = "Intravenous route"
        rp.RadiopharmaceuticalVolume = "10"
        rp.RadiopharmaceuticalStartTime = _tm(sched.injection)
        rp.RadiopharmaceuticalStartDateTime = _dt_str(sched.injection)
        rp.RadionuclideTotalDose = format_ds(sched.injected_dose_bq)
        rp.RadionuclideHalfLife = format_ds(F18_HALF_LIFE_S)
        rp.RadionuclidePositronFraction = "0.9673"
        rp.RadionuclideCodeSequence = DicomSequence([_code("C-111A1", "SRT", "^18^Fluorine")])
        rp.RadiopharmaceuticalCodeSequence = DicomSequence(
            [_code("C-B1031", "SRT", "Fluorodeoxyglucose F^18^")]
        )
        ds.RadiopharmaceuticalInformationSequence = DicomSequence([rp])
        # NM/PET patient orientation
        orient = _code("F-10450", "SRT", "recumbent")
        orient.PatientOrientationModifierCodeSequence = DicomSequence(
            [_code("F-10340", "SRT", "supine")]
        )
        ds.PatientOrientationCodeSequence = DicomSequence([orient])
        ds.PatientGantryRelationshipCodeSequence = DicomSequence(
            [_code("G-5191", "SRT", "headfirst")]
        )
        # image plane and pixels
        ds.ImagePositionPatient = [format_ds(v) for v in geometry.slice_position(k)]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.PixelSpacing = [format_ds(geometry.spacing_mm[1]), format_ds(geometry.spacing_mm[0])]
        ds.SliceThickness = format_ds(geometry.spacing_mm[2])
        ds.SliceLocation = format_ds(geometry.slice_position(k)[2])
        _image_pixel(ds, ny, nx, signed=True, bits_stored=16)
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = slopes[k]
        ds.RescaleType = ds.Units
        # PET image module: timing consistent with the series reference time
        t_ave = decay_weighted_average_time_s(bed.duration_s)
        frt_s = (bed.start - sched.scan_start).total_seconds() + t_ave
        ds.FrameReferenceTime = format_ds(round(frt_s * 1000.0, 3))
        ds.ActualFrameDuration = round(bed.duration_s * 1000)
        ds.DecayFactor = format_ds(round(math.exp(lam * frt_s), 6))
        ds.ImageIndex = number
        ds.DoseCalibrationFactor = "1"
        ds.SliceSensitivityFactor = "1"
        ds.PrimaryPromptsCountsAccumulated = 0
        ds.ConvolutionKernel = "GAUSS PSF SIM"
        # vendor-specific private attributes
        if vendor is VendorConvention.SIEMENS_BQML:
            blk = ds.private_block(0x0071, "SIEMENS MED PT", create=True)
            blk.add_new(0x22, "DT", _dt_str(sched.scan_start))
        elif vendor is VendorConvention.PHILIPS_CNTS:
            if philips_suv_factor is None:
                raise InvalidParameterError(format_message(
                    "the Philips CNTS convention needs philips_suv_factor",
                    attribute="Philips SUV factor (7053,1000)",
                    fix="pass philips_suv_factor (the SUV per count the private tag carries)"))
            blk = ds.private_block(0x7053, "Philips PET Private Group", create=True)
            blk.add_new(0x00, "DS", philips_suv_factor)
            blk.add_new(0x09, "DS", format_ds(sched.philips_activity_scale_bqml_per_count))
        else:
            blk = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
            blk.add_new(0x0D, "DT", _dt_str(sched.scan_start))
            blk.add_new(0x36, "LO", "FDG -- fluorodeoxyglucose")
            blk.add_new(0x3B, "DT", _dt_str(sched.injection))
            blk.add_new(0x3F, "FL", F18_HALF_LIFE_S)
        path = folder / f"PT_{number:04d}.dcm"
        _save(ds, stored[k], path, compress)
        paths.append(path)
    return paths


def write_ct_series(
    folder: Path,
    stored: np.ndarray,
    geometry: SeriesGeometry,
    sched: TimepointSchedule,
    patient: Patient,
    uids: StudyUIDs,
    *,
    compress: bool = False,
) -> list[Path]:
    """Write the low-dose CT as CT Image Storage, stored = HU + 1024 (uint16, 12 bits).

    The CT is acquired just before the PET (helical, caudo-cranial like the PET).
    """
    folder.mkdir(parents=True, exist_ok=True)
    nz, ny, nx = stored.shape
    ct_time = sched.scan_start - _dt.timedelta(minutes=3)
    paths = []
    for k in range(nz):
        number = nz - k
        ds = _file_dataset(CTImageStorage, uids.instance("CT", number))
        _common(ds, patient, sched, uids)
        ds.Modality = "CT"
        ds.SeriesInstanceUID = uids.ct_series
        ds.SeriesNumber = 2
        ds.SeriesDescription = "CT low dose AC 4.0 mm (synthetic emlesion sample)"
        ds.SeriesDate = _da(ct_time.date())
        ds.SeriesTime = _tm(ct_time)
        t = ct_time + _dt.timedelta(seconds=round(k * 0.25, 2))
        ds.AcquisitionDate = _da(t.date())
        ds.AcquisitionTime = _tm(t)
        ds.ContentDate = _da(t.date())
        ds.ContentTime = _tm(t)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = number
        ds.BodyPartExamined = "WHOLEBODY"
        ds.ScanOptions = "HELICAL MODE"
        ds.KVP = "120"
        ds.XRayTubeCurrent = 40
        ds.ExposureTime = 500
        ds.ConvolutionKernel = "B30f-like"
        ds.ReconstructionDiameter = format_ds(geometry.spacing_mm[0] * nx)
        ds.ImagePositionPatient = [format_ds(v) for v in geometry.slice_position(k)]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.PixelSpacing = [format_ds(geometry.spacing_mm[1]), format_ds(geometry.spacing_mm[0])]
        ds.SliceThickness = format_ds(geometry.spacing_mm[2])
        ds.SliceLocation = format_ds(geometry.slice_position(k)[2])
        _image_pixel(ds, ny, nx, signed=False, bits_stored=12)
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        path = folder / f"CT_{number:04d}.dcm"
        _save(ds, stored[k], path, compress)
        paths.append(path)
    return paths


def write_localizer(
    folder: Path,
    image: np.ndarray,
    pixel_spacing_mm: tuple[float, float],
    top_left_mm: tuple[float, float, float],
    sched: TimepointSchedule,
    patient: Patient,
    uids: StudyUIDs,
    *,
    compress: bool = False,
) -> Path:
    """Write the CT localizer (topogram): one coronal projection image, its own series.

    ``image`` is ``(rows, columns)`` uint16; rows run head to feet, columns patient
    right to left; ``pixel_spacing_mm`` is (row spacing, column spacing).
    """
    folder.mkdir(parents=True, exist_ok=True)
    ds = _file_dataset(CTImageStorage, uids.instance("LOC", 1))
    _common(ds, patient, sched, uids)
    t = sched.scan_start - _dt.timedelta(minutes=5)
    ds.Modality = "CT"
    ds.SeriesInstanceUID = uids.localizer_series
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Topogram 0.6 (synthetic emlesion sample)"
    ds.SeriesDate = _da(t.date())
    ds.SeriesTime = _tm(t)
    ds.AcquisitionDate = _da(t.date())
    ds.AcquisitionTime = _tm(t)
    ds.ContentDate = _da(t.date())
    ds.ContentTime = _tm(t)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "WHOLEBODY"
    ds.ScanOptions = "SURVIEW"
    ds.KVP = "120"
    ds.XRayTubeCurrent = 35
    ds.ImagePositionPatient = [format_ds(v) for v in top_left_mm]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "0", "-1"]
    ds.PixelSpacing = [format_ds(pixel_spacing_mm[0]), format_ds(pixel_spacing_mm[1])]
    ds.SliceThickness = ""
    rows, cols = image.shape
    _image_pixel(ds, rows, cols, signed=False, bits_stored=12)
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.WindowCenter = "1000"
    ds.WindowWidth = "2000"
    path = folder / "LOC_0001.dcm"
    _save(ds, image, path, compress)
    return path
