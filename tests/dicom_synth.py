"""A small factory of synthetic single-frame CT/PET DICOM series, written with pydicom.

Used by the io tests to build series with chosen positions, orientations, rescale slopes
and defects (gaps, duplicates, tilt, localizers, truncated files) in ``tmp_path``.
Pixel values are deterministic: the stored value of pixel ``(r, c)`` in slice ``k`` is
``stored_value(k, r, c)``, so tests can compute the expected rescaled values themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

PET_SOP = "1.2.840.10008.5.1.4.1.1.128"
CT_SOP = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_SOP = "1.2.840.10008.5.1.4.1.1.2.1"
SEG_SOP = "1.2.840.10008.5.1.4.1.1.66.4"

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def stored_value(k: int, rows: int = 4, cols: int = 5) -> np.ndarray:
    """Stored (pre-rescale) values of slice ``k``: ``100*k + 10*r + c`` (int16)."""
    r, c = np.mgrid[0:rows, 0:cols]
    return (100 * k + 10 * r + c).astype(np.int16)


@dataclass
class SeriesSpec:
    """What to write. ``positions`` are ImagePositionPatient per slice (default axial stack)."""

    modality: str = "PT"
    n: int = 5
    rows: int = 4
    cols: int = 5
    pixel_spacing: tuple[float, float] = (2.0, 3.0)  # (row spacing, column spacing)
    orientation: tuple[float, ...] = AXIAL
    origin: tuple[float, float, float] = (-10.0, -20.0, 30.0)
    step_mm: float = 4.0
    positions: Sequence[Sequence[float]] | None = None
    orientations: Sequence[Sequence[float]] | None = None
    slopes: Sequence[float] | None = None
    intercepts: Sequence[float] | None = None
    units: str = "BQML"
    corrected_image: tuple[str, ...] = ("ATTN", "DECY")
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL")
    series_uid: str = field(default_factory=generate_uid)
    study_uid: str = "1.2.826.0.1.3680043.8.498.1"
    series_description: str = "synthetic"
    sop_class: str | None = None
    implicit: bool = False
    rows_per_slice: Sequence[int] | None = None
    number_of_frames: int | None = None

    def position(self, k: int) -> list[float]:
        """ImagePositionPatient of slice ``k``."""
        if self.positions is not None:
            return [float(v) for v in self.positions[k]]
        o = np.asarray(self.orientation, dtype=float)
        normal = np.cross(o[:3], o[3:])
        return [float(v) for v in np.asarray(self.origin) + k * self.step_mm * normal]


def make_dataset(spec: SeriesSpec, k: int) -> Dataset:
    """The dataset of slice ``k`` (with pixel data)."""
    sop = spec.sop_class or (PET_SOP if spec.modality == "PT" else CT_SOP)
    rows = spec.rows_per_slice[k] if spec.rows_per_slice is not None else spec.rows
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if spec.implicit else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = spec.modality
    ds.Manufacturer = "emlesion-synth"
    ds.PatientID = "SYN-001"
    ds.PatientName = "Synthetic^Phantom"
    ds.StudyInstanceUID = spec.study_uid
    ds.StudyDate = "20240102"
    ds.SeriesInstanceUID = spec.series_uid
    ds.SeriesDescription = spec.series_description
    ds.SeriesNumber = 1 if spec.modality == "PT" else 2
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    # InstanceNumber deliberately runs against the geometric order
    ds.InstanceNumber = spec.n - k
    ds.ImageType = list(spec.image_type)
    orient = spec.orientations[k] if spec.orientations is not None else spec.orientation
    ds.ImageOrientationPatient = [float(v) for v in orient]
    ds.ImagePositionPatient = spec.position(k)
    ds.PixelSpacing = list(spec.pixel_spacing)
    ds.SliceThickness = spec.step_mm
    ds.Rows = rows
    ds.Columns = spec.cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    slope = spec.slopes[k] if spec.slopes is not None else 1.0
    intercept = spec.intercepts[k] if spec.intercepts is not None else (
        -1024.0 if spec.modality == "CT" else 0.0)
    ds.RescaleSlope = f"{slope:.10g}"
    ds.RescaleIntercept = f"{intercept:.10g}"
    if spec.number_of_frames is not None:
        ds.NumberOfFrames = spec.number_of_frames
    if spec.modality == "PT":
        ds.Units = spec.units
        ds.CorrectedImage = list(spec.corrected_image)
        ds.DecayCorrection = "START"
        ds.SeriesType = ["WHOLE BODY", "IMAGE"]
        ds.AcquisitionDate = "20240102"
        ds.AcquisitionTime = f"1200{k:02d}"
        ds.FrameReferenceTime = 1000.0 * k
        ds.ActualFrameDuration = 120000
        ds.ImageIndex = k + 1
        ds.DecayFactor = 1.0 + 0.01 * k
        ds.PatientWeight = 70.0
        item = Dataset()
        item.RadionuclideTotalDose = 3.7e8
        item.RadionuclideHalfLife = 6586.2
        item.RadiopharmaceuticalStartDateTime = "20240102110000"
        ds.RadiopharmaceuticalInformationSequence = [item]
    ds.PixelData = stored_value(k, rows, spec.cols).tobytes()
    return ds


def write_series(
    folder: Path, spec: SeriesSpec, *, names: Sequence[str] | None = None
) -> list[Path]:
    """Write the series into ``folder`` (created); returns the paths, in slice order ``k``.

    File names default to shuffled, meaningless names so that nothing can rely on them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.n)
    default = [f"IM{v:04d}" for v in rng.permutation(np.arange(1000, 1000 + spec.n))]
    names = list(names) if names is not None else default
    paths = []
    for k in range(spec.n):
        ds = make_dataset(spec, k)
        path = folder / names[k]
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_seg(folder: Path, *, series_uid: str | None = None) -> Path:
    """A header-only stand-in for a DICOM SEG instance (enough for discovery)."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SEG_SOP
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SEG_SOP
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "SEG"
    ds.Manufacturer = "emlesion-synth"
    ds.PatientID = "SYN-001"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesDescription = "lesions"
    ds.SeriesNumber = 3
    path = folder / "seg"
    ds.save_as(path, enforce_file_format=True)
    return path
