"""PET and CT images from NIfTI files (autoPET / nnU-Net style), RAS converted to LPS.

A NIfTI image carries a geometry (sform/qform, RAS+ world space) and voxel values, but none
of the DICOM attributes the SUV engine reads (Units, DecayCorrection, PatientWeight, the
radiopharmaceutical dose and times). So a NIfTI PET is only accepted with a *declared*
quantity, :class:`PetDeclaration`: either the voxels already are SUVbw, or they are Bq/mL and
the body weight, the injected activity and the times are declared (a JSON sidecar,
:meth:`PetDeclaration.from_json`). Nothing is guessed from the value range. The
header-derived SUV rules (QIBA vendor-neutral pseudo-code: DecayCorrection, vendor private
factors, midnight rule, ...) are not applicable to such an image; the provenance of the
loaded volume and of :func:`emlesion.suv.compute_suv` say so.

A NIfTI CT is read as HU (scl_slope/scl_inter applied).

References
----------
.. [1] R. W. Cox et al., "A (sort of) new image data format standard: NIfTI-1",
   ``nifti1.h``: sform/qform, RAS+ world space.
.. [2] Gatidis S et al. A whole-body FDG-PET/CT dataset with manually annotated tumor lesions
   (autoPET). Sci Data 2022;9:601 (NIfTI SUV and CT images per study).
.. [3] QIBA FDG-PET/CT Profile; D. Clunie, QIBA SUV vendor-neutral pseudo-code (2018): the
   DICOM rules that a NIfTI cannot carry.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emlesion.errors import (
    EmlesionWarning,
    InvalidParameterError,
    UnsupportedDataError,
    format_message,
    warn_external,
)
from emlesion.io.nifti import nifti_grid
from emlesion.io.volume import SeriesIdentity, Volume
from emlesion.provenance import ProvenanceStep, record_warnings

__all__ = [
    "F18_HALF_LIFE_S",
    "NIFTI_OPERATION",
    "NiftiImageWarning",
    "NiftiPetUnits",
    "PetDeclaration",
    "is_nifti_path",
    "load_nifti_image",
    "pet_declaration_of",
    "save_nifti_image",
]

#: Provenance operation of a volume read from NIfTI (its inputs hold the declaration).
NIFTI_OPERATION = "emlesion.io.load_nifti_image"
#: Fluorine-18 half-life (s): 109.77 min, the value of DICOM PS3.16 CID 4020 usage and
#: NIST/DDEP tables; the default of :attr:`PetDeclaration.half_life_s`.
F18_HALF_LIFE_S = 6586.2
#: What the provenance says about the DICOM-header SUV rules for a NIfTI PET.
HEADER_RULES_NOT_APPLICABLE = ("not applicable: a NIfTI carries no DICOM PET header (Units, "
                               "DecayCorrection, dose, times, vendor factors); the quantity "
                               "was declared by the user")
#: A CT whose minimum is above this value (HU) has no air in it: probably not HU.
CT_AIR_CHECK_HU = -500.0

_SIDECAR_KEYS = ("units", "weight_kg", "injected_dose_bq", "injected_dose_mbq",
                 "injection_time", "scan_time", "decay_correction", "half_life_s",
                 "height_m", "sex")


class NiftiImageWarning(EmlesionWarning):
    """A NIfTI image was accepted with a tolerated oddity (e.g. a CT without air)."""


class NiftiPetUnits(str, enum.Enum):
    """Declared quantity of a NIfTI PET (``--pet-units``)."""

    SUVBW = "SUVbw"
    BQML = "BQML"

    @classmethod
    def coerce(cls, value: str | NiftiPetUnits) -> NiftiPetUnits:
        """Accept the member, its value or ``"Bq/mL"`` (case-insensitive)."""
        if isinstance(value, NiftiPetUnits):
            return value
        key = str(value).strip().lower().replace("/", "")
        for m in cls:
            if key == m.value.lower():
                return m
        raise InvalidParameterError(format_message(
            f"unknown PET units {value!r} for a NIfTI PET", attribute="--pet-units",
            fix="declare SUVbw (the voxels are SUVbw) or BQML (Bq/mL, with weight, dose and "
                "times in a JSON sidecar)"))


def _parse_time(value: Any, key: str, source: str) -> _dt.datetime:
    try:
        t = _dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidParameterError(format_message(
            f"{key} {value!r} is not an ISO 8601 date-time", series=source, attribute=key,
            fix="write e.g. \"2024-03-12T09:41:00\" (same time zone for both times)")) from None
    return t


@dataclass(frozen=True)
class PetDeclaration:
    """What the voxels of a NIfTI PET are, declared by the user (never guessed).

    Parameters
    ----------
    units : NiftiPetUnits
        ``SUVbw`` (the voxels are body-weight SUV) or ``BQML`` (activity concentration).
    weight_kg : float, optional
        Body weight (kg); required for ``BQML``, and for SUL/LBM normalisations.
    injected_dose_bq : float, optional
        Injected activity (Bq) at ``injection_time``; required for ``BQML``.
    injection_time, scan_time : datetime, optional
        Injection time and the time the image is decay-corrected to (scan start for
        ``decay_correction="START"``); required for ``BQML`` with ``START``.
    decay_correction : {"START", "ADMIN"}
        ``START``: the image is decay-corrected to the scan start (the dose is decayed from
        injection to ``scan_time``); ``ADMIN``: corrected to the injection time (no decay).
    half_life_s : float
        Radionuclide half-life (default F-18, :data:`F18_HALF_LIFE_S`).
    height_m : float, optional
        Height (m), for SUL (lean body mass) and BSA normalisations.
    sex : str, optional
        ``M``, ``F`` or ``O``, for the sex-specific lean-body-mass formulas.
    source : str
        Where the declaration came from (sidecar path, ``"command line"``).
    """

    units: NiftiPetUnits
    weight_kg: float | None = None
    injected_dose_bq: float | None = None
    injection_time: _dt.datetime | None = None
    scan_time: _dt.datetime | None = None
    decay_correction: str = "START"
    half_life_s: float = F18_HALF_LIFE_S
    height_m: float | None = None
    sex: str | None = None
    source: str = "command line"

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", NiftiPetUnits.coerce(self.units))
        dc = str(self.decay_correction).strip().upper()
        if dc not in ("START", "ADMIN"):
            raise InvalidParameterError(format_message(
                f"decay_correction {self.decay_correction!r} is not supported for a NIfTI PET",
                series=self.source, attribute="decay_correction",
                fix="declare START (decay-corrected to the scan start) or ADMIN (to the "
                    "injection); convert an uncorrected image first"))
        object.__setattr__(self, "decay_correction", dc)
        for key in ("weight_kg", "injected_dose_bq", "half_life_s", "height_m"):
            v = getattr(self, key)
            if v is not None and not (math.isfinite(float(v)) and float(v) > 0):
                raise InvalidParameterError(format_message(
                    f"{key} must be a positive number, got {v!r}", series=self.source,
                    attribute=key, fix=f"correct {key} in the declaration"))
        if self.units is NiftiPetUnits.BQML:
            need = ["weight_kg", "injected_dose_bq"]
            if dc == "START":
                need += ["injection_time", "scan_time"]
            missing = [k for k in need if getattr(self, k) is None]
            if missing:
                raise InvalidParameterError(format_message(
                    f"a Bq/mL NIfTI PET needs {', '.join(missing)} to become an SUV",
                    series=self.source, attribute=", ".join(missing),
                    fix="write them in the JSON sidecar (--pet-sidecar), e.g. {\"units\": "
                        "\"BQML\", \"weight_kg\": 72, \"injected_dose_mbq\": 250, "
                        "\"injection_time\": \"2024-03-12T08:40:00\", \"scan_time\": "
                        "\"2024-03-12T09:41:00\"}; or give an SUVbw image"))
            if dc == "START" and self.injection_time is not None and self.scan_time is not None:
                a, b = self.injection_time, self.scan_time
                if (a.tzinfo is None) != (b.tzinfo is None):
                    raise InvalidParameterError(format_message(
                        "injection_time and scan_time mix a time zone and no time zone",
                        series=self.source, attribute="injection_time, scan_time",
                        fix="give both with the same time-zone offset, or both without"))
                if b < a:
                    raise InvalidParameterError(format_message(
                        f"scan_time {b.isoformat()} is before injection_time {a.isoformat()}",
                        series=self.source, attribute="scan_time",
                        fix="check the two times (and their dates)"))

    @classmethod
    def from_options(cls, units: str | NiftiPetUnits | None = None,
                     sidecar: str | os.PathLike[str] | None = None, *,
                     units_source: str = "command line") -> PetDeclaration | None:
        """The declaration given by a sidecar and/or declared units, or ``None`` for neither.

        As ``--pet-units``/``--pet-sidecar`` of the command line and the ``pet_units``
        option / ``pet_sidecar`` column of a batch manifest: the sidecar when given (its
        units must agree with ``units``, see :meth:`from_json`), else ``units`` alone.
        ``None`` lets :func:`emlesion.io.load_pet` explain that a NIfTI PET's quantity must
        be declared.

        Parameters
        ----------
        units : str or NiftiPetUnits, optional
            Declared units (``"SUVbw"`` or ``"BQML"``).
        sidecar : path, optional
            JSON sidecar (never written to).
        units_source : str
            Where ``units`` came from, recorded as :attr:`source` without a sidecar.

        Returns
        -------
        PetDeclaration or None

        Examples
        --------
        >>> PetDeclaration.from_options("suvbw", units_source="--pet-units").units
        <NiftiPetUnits.SUVBW: 'SUVbw'>
        >>> PetDeclaration.from_options() is None
        True
        """
        if sidecar:
            return cls.from_json(sidecar, units=units)
        if units is None:
            return None
        return cls(units=NiftiPetUnits.coerce(units), source=units_source)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str],
                  units: str | NiftiPetUnits | None = None) -> PetDeclaration:
        """Read a JSON sidecar.

        Keys (all optional but ``units`` unless given here): ``units`` (``"SUVbw"`` or
        ``"BQML"``), ``weight_kg``, ``injected_dose_bq`` or ``injected_dose_mbq``,
        ``injection_time`` and ``scan_time`` (ISO 8601), ``decay_correction``
        (``"START"``/``"ADMIN"``), ``half_life_s``, ``height_m``, ``sex``. Unknown keys are an
        error (a misspelt key must not be silently ignored).

        Parameters
        ----------
        path : path
            The sidecar (never written to).
        units : str, optional
            Declared units from the command line; must agree with the sidecar's.
        """
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidParameterError(format_message(
                f"cannot read the PET sidecar {p.name} as JSON ({exc})", series=str(p),
                fix="pass a JSON object file (see emlesion.io.PetDeclaration.from_json)")) from exc
        if not isinstance(data, Mapping):
            raise InvalidParameterError(format_message(
                "the PET sidecar is not a JSON object", series=str(p),
                fix="write {\"units\": ..., \"weight_kg\": ...}"))
        unknown = sorted(set(data) - set(_SIDECAR_KEYS))
        if unknown:
            raise InvalidParameterError(format_message(
                f"unknown key(s) in the PET sidecar: {', '.join(unknown)}", series=str(p),
                fix=f"use only {', '.join(_SIDECAR_KEYS)}"))
        declared = data.get("units")
        if units is not None and declared is not None and \
                NiftiPetUnits.coerce(units) is not NiftiPetUnits.coerce(declared):
            raise InvalidParameterError(format_message(
                f"--pet-units {units} contradicts the sidecar's units {declared!r}",
                series=str(p), attribute="units", fix="declare the units once, consistently"))
        chosen = units if units is not None else declared
        if chosen is None:
            raise InvalidParameterError(format_message(
                "the PET quantity is not declared", series=str(p), attribute="units",
                fix="add \"units\": \"SUVbw\" or \"BQML\" to the sidecar, or pass --pet-units"))
        dose = data.get("injected_dose_bq")
        if data.get("injected_dose_mbq") is not None:
            if dose is not None:
                raise InvalidParameterError(format_message(
                    "both injected_dose_bq and injected_dose_mbq are given", series=str(p),
                    fix="give the dose once"))
            dose = float(data["injected_dose_mbq"]) * 1e6

        def num(key: str) -> float | None:
            v = data.get(key)
            if v is None:
                return None
            try:
                return float(v)
            except (TypeError, ValueError):
                raise InvalidParameterError(format_message(
                    f"{key} {v!r} is not a number", series=str(p), attribute=key,
                    fix=f"write {key} as a number")) from None

        return cls(
            units=NiftiPetUnits.coerce(chosen),
            weight_kg=num("weight_kg"),
            injected_dose_bq=float(dose) if dose is not None else None,
            injection_time=_parse_time(data["injection_time"], "injection_time", str(p))
            if data.get("injection_time") else None,
            scan_time=_parse_time(data["scan_time"], "scan_time", str(p))
            if data.get("scan_time") else None,
            decay_correction=str(data.get("decay_correction", "START")),
            half_life_s=num("half_life_s") or F18_HALF_LIFE_S,
            height_m=num("height_m"),
            sex=str(data["sex"]) if data.get("sex") else None,
            source=str(p),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (recorded in the provenance)."""
        return {
            "units": self.units.value, "weight_kg": self.weight_kg,
            "injected_dose_bq": self.injected_dose_bq,
            "injection_time": self.injection_time.isoformat() if self.injection_time else None,
            "scan_time": self.scan_time.isoformat() if self.scan_time else None,
            "decay_correction": self.decay_correction, "half_life_s": self.half_life_s,
            "height_m": self.height_m, "sex": self.sex, "source": self.source,
        }


def is_nifti_path(source: Any) -> bool:
    """True for a path (str or PathLike) naming a ``.nii`` or ``.nii.gz`` file."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    name = os.fspath(source).lower()
    return name.endswith((".nii", ".nii.gz"))


def pet_declaration_of(volume: Volume) -> PetDeclaration | None:
    """The declaration of a PET volume read from NIfTI (``None`` for any other volume)."""
    for step in reversed(volume.provenance):
        if step.operation == NIFTI_OPERATION:
            d = step.inputs.get("declaration")
            if not isinstance(d, Mapping):
                return None
            times = {k: _dt.datetime.fromisoformat(d[k]) if d.get(k) else None
                     for k in ("injection_time", "scan_time")}
            return PetDeclaration(
                units=NiftiPetUnits.coerce(d["units"]), weight_kg=d.get("weight_kg"),
                injected_dose_bq=d.get("injected_dose_bq"), decay_correction=d["decay_correction"],
                half_life_s=d["half_life_s"], height_m=d.get("height_m"), sex=d.get("sex"),
                source=d.get("source", ""), **times)
    return None


def load_nifti_image(
    path: str | os.PathLike[str],
    modality: str,
    *,
    declaration: PetDeclaration | None = None,
) -> Volume:
    """Read a NIfTI PET or CT image as an LPS :class:`Volume`.

    Parameters
    ----------
    path : path
        ``.nii`` or ``.nii.gz`` (never written to).
    modality : {"PT", "CT"}
        What the image is.
    declaration : PetDeclaration
        Required for a PET: the declared quantity (see the module notes).

    Returns
    -------
    Volume
        float32 ``(z, y, x)`` = NIfTI ``(k, j, i)``; grid from the sform (else qform) with
        RAS+ converted to LPS; ``units`` ``"HU"`` for CT, the declared units for PET; no
        DICOM headers; ``identity.modality`` set and ``series_description`` = the file name.

    Raises
    ------
    UnsupportedDataError
        A PET without declaration, a non-3-D image, no sform/qform, an unreadable file.
    """
    p = Path(path)
    mod = str(modality).upper()
    if mod not in ("PT", "CT"):
        raise UnsupportedDataError(format_message(f"modality {modality!r} is not supported",
                                                  fix="use 'PT' or 'CT'"))
    if mod == "PT" and declaration is None:
        raise UnsupportedDataError(format_message(
            "a NIfTI PET carries no units, dose or times: its quantity must be declared",
            series=str(p), attribute="--pet-units",
            fix="pass --pet-units SUVbw (the voxels are SUVbw) or --pet-units BQML with "
                "--pet-sidecar JSON (weight, dose, times); API: "
                "load_pet(path, declaration=PetDeclaration(...))"))
    import nibabel as nib

    with record_warnings() as rec:
        try:
            img: Any = nib.load(str(p))
            data = np.asarray(img.get_fdata(dtype=np.float32))
        except Exception as exc:  # truncated gzip, wrong type ...
            raise UnsupportedDataError(format_message(
                f"cannot read {p.name} as a NIfTI image ({type(exc).__name__}: {exc})",
                series=str(p), fix="check that the file is a complete .nii or .nii.gz")) from exc
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise UnsupportedDataError(format_message(
                f"the NIfTI image has shape {data.shape}; a 3-D image is needed",
                series=str(p), fix="split a 4-D (dynamic) file and pass one frame"))
        grid, rule = nifti_grid(img.header, data.shape, str(p))
        arr = np.ascontiguousarray(data.transpose(2, 1, 0))
        if not np.all(np.isfinite(arr)):
            raise UnsupportedDataError(format_message(
                "the NIfTI image holds NaN or infinite voxels", series=str(p),
                fix="replace them (e.g. by 0 for PET, -1024 for CT) before loading"))
        if mod == "CT" and arr.size and float(arr.min()) > CT_AIR_CHECK_HU:
            warn_external(format_message(
                f"the NIfTI CT has no voxel below {CT_AIR_CHECK_HU:g} (min {float(arr.min()):g}): "
                "no air in the field of view, or values not in HU", series=str(p),
                fix="check that the CT is in Hounsfield units (apply the rescale)"),
                NiftiImageWarning)
    units = "HU" if mod == "CT" else declaration.units.value  # type: ignore[union-attr]
    inputs: dict[str, Any] = {"source": str(p), "modality": mod, "affine": rule,
                              "shape_zyx": grid.shape, "spacing_mm": grid.spacing_mm}
    if declaration is not None and mod == "PT":
        inputs["declaration"] = declaration.to_dict()
        inputs["suv_header_rules"] = HEADER_RULES_NOT_APPLICABLE
    step = ProvenanceStep(NIFTI_OPERATION, rule=f"NIfTI {rule}; units {units} "
                          + ("(HU)" if mod == "CT" else "(declared)"),
                          inputs=inputs, warnings=rec.as_tuple())
    identity = SeriesIdentity(modality=mod, series_description=p.name)
    return Volume(arr, grid, identity, (), (), units, (step,))


def save_nifti_image(volume: Volume, path: str | os.PathLike[str]) -> Path:
    """Write a :class:`Volume` as a float32 NIfTI-1 (LPS converted to RAS+, sform = qform).

    Parameters
    ----------
    volume : Volume
    path : path
        Output ``.nii`` / ``.nii.gz``; an existing file is refused (nothing is overwritten).

    Returns
    -------
    Path
    """
    import nibabel as nib

    p = Path(path)
    if p.exists():
        raise InvalidParameterError(format_message(f"{p} exists; refusing to overwrite it",
                                                   series=str(p), fix="choose a new file name"))
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ volume.grid.affine
    img = nib.Nifti1Image(np.asarray(volume.array, np.float32).transpose(2, 1, 0), ras)
    img.set_sform(ras, code=1)
    img.set_qform(ras, code=1)
    img.header.set_xyzt_units("mm")
    nib.save(img, str(p))
    return p
