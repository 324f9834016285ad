"""The :class:`Volume` value object: a float32 image on an LPS grid plus its DICOM facts."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import SimpleITK as sitk
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from emlesion.errors import GeometryError, format_message
from emlesion.io.geometry import Grid, resample_array
from emlesion.provenance import ProvenanceStep

__all__ = ["SeriesIdentity", "SliceInfo", "Volume", "is_suv_units"]


def is_suv_units(units: str) -> bool:
    """True when a :attr:`Volume.units` string names an SUV image.

    An emlesion SUV image (``"SUVbw"``, ``"SULjanma"`` ...: starts with ``SUV`` or ``SUL``)
    or a PET stored as an SUV in g/mL (DICOM ``Units`` ``GML``, mass-based ``SUVType``:
    PS3.3 C.8.9.1.1.3; :mod:`emlesion.suv` refuses GML with a BSA type), case-insensitive.

    Examples
    --------
    >>> [is_suv_units(u) for u in ("SUVbw", "SULjanma", "GML", "BQML", "")]
    [True, True, True, False, False]
    """
    u = units.strip().upper()
    return u.startswith(("SUV", "SUL")) or u == "GML"


@dataclass(frozen=True)
class SeriesIdentity:
    """Who and what a series belongs to (values as stored in DICOM; empty when absent)."""

    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_instance_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    series_instance_uid: str = ""
    series_number: int | None = None
    series_description: str = ""
    series_date: str = ""
    series_time: str = ""
    frame_of_reference_uid: str = ""
    modality: str = ""
    sop_class_uid: str = ""
    manufacturer: str = ""
    manufacturer_model_name: str = ""

    @classmethod
    def from_dataset(cls, ds: Dataset) -> SeriesIdentity:
        """Read the identity attributes of one instance.

        The instances of a series carry the same identity bytes, and converting 18 elements
        through pydicom costs more than scanning the whole header, so the result is
        memoised on the raw (not yet converted) bytes of the elements it reads and of
        SpecificCharacterSet: the same bytes give the same identity, computed once.
        """
        key = _identity_key(ds)
        if key is None:
            return cls._read(ds)
        found = _IDENTITY_MEMO.get(key)
        if found is None:
            found = cls._read(ds)
            if len(_IDENTITY_MEMO) >= _IDENTITY_MEMO_SIZE:
                _IDENTITY_MEMO.clear()
            _IDENTITY_MEMO[key] = found
        return found

    @classmethod
    def _read(cls, ds: Dataset) -> SeriesIdentity:
        def s(kw: str) -> str:
            v = ds.get(kw, "")
            return "" if v is None else str(v)

        number = ds.get("SeriesNumber", None)
        try:
            series_number = int(number) if number not in (None, "") else None
        except (TypeError, ValueError):
            series_number = None
        return cls(
            patient_id=s("PatientID"),
            patient_name=s("PatientName"),
            patient_birth_date=s("PatientBirthDate"),
            patient_sex=s("PatientSex"),
            study_instance_uid=s("StudyInstanceUID"),
            study_date=s("StudyDate"),
            study_time=s("StudyTime"),
            study_description=s("StudyDescription"),
            series_instance_uid=s("SeriesInstanceUID"),
            series_number=series_number,
            series_description=s("SeriesDescription"),
            series_date=s("SeriesDate"),
            series_time=s("SeriesTime"),
            frame_of_reference_uid=s("FrameOfReferenceUID"),
            modality=s("Modality"),
            sop_class_uid=s("SOPClassUID"),
            manufacturer=s("Manufacturer"),
            manufacturer_model_name=s("ManufacturerModelName"),
        )

    @property
    def study_date_parsed(self) -> _dt.date | None:
        """StudyDate as a :class:`datetime.date`, or None when absent or malformed."""
        try:
            return _dt.datetime.strptime(self.study_date[:8], "%Y%m%d").date()
        except ValueError:
            return None

    @property
    def label(self) -> str:
        """A short human label: ``"PT 'PET AC' (1.2.3...)"``."""
        desc = f" '{self.series_description}'" if self.series_description else ""
        return (
            f"{self.modality or '?'}{desc} ({self.series_instance_uid or 'no SeriesInstanceUID'})"
        )


#: Tags read by :meth:`SeriesIdentity.from_dataset`.
_IDENTITY_TAGS: tuple[int, ...] = (
    0x00100020, 0x00100010, 0x00100030, 0x00100040, 0x0020000D, 0x00080020,
    0x00080030, 0x00081030, 0x0020000E, 0x00200011, 0x0008103E, 0x00080021, 0x00080031,
    0x00200052, 0x00080060, 0x00080016, 0x00080070, 0x00081090,
)
_IDENTITY_MEMO: dict[tuple[Any, ...], SeriesIdentity] = {}
_IDENTITY_MEMO_SIZE = 256


def _identity_key(ds: Dataset) -> tuple[Any, ...] | None:
    """The raw bytes (with VR and encoding) of the identity elements of ``ds`` and the
    character set pydicom decodes them with; None when one of them has already been
    converted by pydicom (then it is read, not memoised)."""
    elements = getattr(ds, "_dict", None)
    if not isinstance(elements, dict):
        return None
    try:
        charset = str(ds._character_set)
    except Exception:  # a malformed SpecificCharacterSet: read, do not memoise
        return None
    key: list[Any] = [type(ds), charset]
    for tag in _IDENTITY_TAGS:
        elem = elements.get(tag)
        if elem is None:
            key.append(None)
        elif isinstance(elem, RawDataElement):
            key.append((elem.value, elem.VR, elem.is_implicit_VR, elem.is_little_endian))
        else:
            return None
    return tuple(key)


@dataclass(frozen=True)
class SliceInfo:
    """Per-slice header facts, in the order of the volume's z axis.

    Times are the raw DICOM strings (DA, TM, DT) so that the SUV engine can apply its own
    parsing rules (midnight, time zones) and report the exact inputs it used.
    """

    sop_instance_uid: str
    position_mm: tuple[float, float, float]
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    instance_number: int | None = None
    acquisition_date: str = ""
    acquisition_time: str = ""
    acquisition_datetime: str = ""
    frame_reference_time_ms: float | None = None
    actual_frame_duration_ms: float | None = None
    image_index: int | None = None
    decay_factor: float | None = None
    filename: str = ""


@dataclass(frozen=True, eq=False, repr=False)
class Volume:
    """A 3-D image in LPS with its DICOM identity, per-slice facts and history.

    Parameters
    ----------
    array : ndarray
        Voxel values, ``(z, y, x)``. Stored read-only as float32 (HU for CT; the stored
        ``Units`` for PET, e.g. Bq/mL for BQML, after each slice's own rescale).
    grid : Grid
        Geometry (origin, spacing, direction, shape).
    identity : SeriesIdentity
        Patient, study and series identity.
    slices : tuple of SliceInfo
        Per-slice facts, one per z index (empty for volumes not read from DICOM).
    headers : tuple of pydicom Dataset
        The header of each slice (pixel data removed), one per z index; the SUV engine
        reads vendor attributes from them. Empty for volumes not read from DICOM.
    units : str
        What the voxel values are: ``"HU"`` for CT, the PET ``Units`` value as stored
        (``"BQML"``, ``"CNTS"``, ``"GML"``, ...) after rescale, or the SUV quantity after
        :func:`emlesion.suv.compute_suv` (e.g. ``"SUVbw"``). Empty when unknown.
    provenance : tuple of ProvenanceStep
        History of the operations that produced this volume.

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.zeros((2, 3, 4)), Grid((2, 3, 4), (0, 0, 0), (1, 1, 2)))
    >>> v.shape, v.spacing_mm
    ((2, 3, 4), (1.0, 1.0, 2.0))
    """

    array: np.ndarray
    grid: Grid
    identity: SeriesIdentity = field(default_factory=SeriesIdentity)
    slices: tuple[SliceInfo, ...] = ()
    headers: tuple[Dataset, ...] = ()
    units: str = ""
    provenance: tuple[ProvenanceStep, ...] = ()

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim != 3:
            raise GeometryError(format_message(f"a Volume needs a 3-D array, got {arr.ndim}-D"))
        if arr.dtype != np.float32:
            arr = arr.astype(np.float32)
        if arr.flags.writeable and arr.base is not None:
            arr = arr.copy()  # never alias a caller's buffer that we then make read-only
        arr.flags.writeable = False
        object.__setattr__(self, "array", arr)
        if tuple(arr.shape) != self.grid.shape:
            raise GeometryError(
                format_message(
                    f"array shape {arr.shape} does not match grid shape {self.grid.shape}",
                    series=self.identity.series_instance_uid or None,
                )
            )
        for name in ("slices", "headers"):
            items = getattr(self, name)
            object.__setattr__(self, name, tuple(items))
            if items and len(items) != arr.shape[0]:
                raise GeometryError(
                    format_message(
                        f"{len(items)} {name} for {arr.shape[0]} slices",
                        series=self.identity.series_instance_uid or None,
                    )
                )
        object.__setattr__(self, "provenance", tuple(self.provenance))

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(nz, ny, nx)``."""
        return self.grid.shape

    @property
    def origin_mm(self) -> tuple[float, float, float]:
        """LPS position (mm) of the centre of voxel (0, 0, 0)."""
        return self.grid.origin_mm

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Spacing (mm) along x (columns), y (rows), z (slices)."""
        return self.grid.spacing_mm

    @property
    def direction(self) -> tuple[float, ...]:
        """Row-major 3 x 3 direction cosines (ITK convention)."""
        return self.grid.direction

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL."""
        return self.grid.voxel_volume_ml

    @property
    def modality(self) -> str:
        """DICOM Modality of the source series (``"PT"``, ``"CT"``, ...)."""
        return self.identity.modality

    # ------------------------------------------------------------------ conversions
    def to_sitk(self) -> sitk.Image:
        """A SimpleITK image with the same voxels and exactly the same geometry."""
        img = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        return self.grid.apply_to(img)

    @classmethod
    def from_sitk(
        cls,
        image: sitk.Image,
        *,
        identity: SeriesIdentity | None = None,
        provenance: Sequence[ProvenanceStep] = (),
    ) -> Volume:
        """Build a Volume from a 3-D SimpleITK image (geometry copied exactly)."""
        if image.GetDimension() != 3:
            raise GeometryError(
                format_message(f"expected a 3-D image, got {image.GetDimension()}-D")
            )
        return cls(
            array=sitk.GetArrayFromImage(image),
            grid=Grid.from_sitk(image),
            identity=identity or SeriesIdentity(),
            provenance=(*tuple(provenance), ProvenanceStep("emlesion.io.Volume.from_sitk")),
        )

    def with_array(self, array: np.ndarray, step: ProvenanceStep) -> Volume:
        """A copy with new voxel values (same grid and identity) and one more history step."""
        return replace(self, array=array, provenance=(*self.provenance, step))

    def resample_to(
        self,
        reference: Volume | Grid,
        *,
        interpolation: Literal["linear", "nearest", "bspline"] = "linear",
        default_value: float | None = None,
    ) -> Volume:
        """Resample onto another volume's grid (identity transform, same frame of reference).

        Parameters
        ----------
        reference : Volume or Grid
            Target grid.
        interpolation : {"linear", "nearest", "bspline"}
            Linear for images (default); nearest neighbour for label-like data.
        default_value : float, optional
            Value outside this volume's field of view; default -1024 for CT, else 0.

        Returns
        -------
        Volume
            Same identity, no per-slice facts (slices no longer correspond), one more step.
        """
        target = reference.grid if isinstance(reference, Volume) else reference
        if default_value is None:
            default_value = -1024.0 if self.modality == "CT" else 0.0
        out = resample_array(
            self.array, self.grid, target, interpolation=interpolation, default_value=default_value
        )
        step = ProvenanceStep(
            "emlesion.io.Volume.resample_to",
            rule=f"{interpolation} interpolation, identity transform",
            inputs={
                "target_shape": target.shape,
                "target_spacing_mm": target.spacing_mm,
                "default_value": default_value,
            },
        )
        return Volume(out, target, self.identity, (), (), self.units, (*self.provenance, step))

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        sp = "x".join(f"{s:.3g}" for s in self.spacing_mm)
        org = ", ".join(f"{o:.1f}" for o in self.origin_mm)
        return (
            f"Volume({self.identity.label}, units={self.units or '?'}, shape={self.shape}, "
            f"spacing_mm={sp}, "
            f"origin_mm=({org}), range=[{float(self.array.min()):.4g}, "
            f"{float(self.array.max()):.4g}], steps={len(self.provenance)})"
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (identity, geometry and history; no voxel data)."""
        from emlesion.provenance import jsonable

        return {
            "identity": jsonable(self.identity),
            "units": self.units,
            "shape": list(self.shape),
            "origin_mm": list(self.origin_mm),
            "spacing_mm": list(self.spacing_mm),
            "direction": list(self.direction),
            "provenance": [p.to_dict() for p in self.provenance],
        }
