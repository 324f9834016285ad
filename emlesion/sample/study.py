"""Generate the three-timepoint sample study: simulate, quantise, write DICOM and truth.

References
----------
.. [1] QIBA vendor-neutral SUV pseudo-code (2018) for the header arithmetic.
.. [2] Wahl RL et al. J Nucl Med 2009;50 Suppl 1:122S-150S (PERCIST 1.0).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from emlesion._atomic import publish_dir
from emlesion._version import __version__
from emlesion.errors import InvalidParameterError, format_message
from emlesion.sample.dicom_writer import (
    SeriesGeometry,
    StudyUIDs,
    format_ds,
    quantise_per_slice,
    write_ct_series,
    write_localizer,
    write_pet_series,
)
from emlesion.sample.phantom import (
    FINE_SPACING_MM,
    FOV_TOP_Z_MM,
    LESIONS,
    PET_SHAPE,
    PET_SPACING_MM,
    PSF_FWHM_MM,
    LesionState,
    Tissue,
    lesion_states,
    render_lesion_masks,
    simulate_images,
)
from emlesion.sample.schedule import (
    F18_HALF_LIFE_S,
    INFUSION_DATE,
    TIMEPOINTS,
    Patient,
    TimepointSchedule,
    VendorConvention,
    schedule_for,
)
from emlesion.sample.truth import (
    DEAUVILLE_LIVER_FACTOR,
    PEAK_RADIUS_MM,
    ct_lesion_metrics,
    deauville_score,
    lesion_metrics,
    percist_category,
    site_uptake,
    sphere_statistics,
)

__all__ = [
    "DEFAULT_SEED",
    "SampleStudy",
    "SimulatedTimepoint",
    "generate_sample_study",
    "pixel_sha256",
    "simulate_timepoint",
]

#: The seed of the committed ``sample_scans/``.
DEFAULT_SEED: int = 2024

#: Subcutaneous fat thickness (mm) per timepoint: the patient loses weight.
_FAT_MM = {"baseline": 22.0, "month1": 21.0, "month3": 20.0}
#: Body-coordinate centres of the liver reference sphere (right lobe, midway dome to
#: inferior margin) and of the blood-pool cylinder (abdominal aorta).
_LIVER_REF_BODY_MM = (-80.0, -10.0, -90.0)
_AORTA_REF_BODY_MM = (12.0, 12.0, -60.0)

_PET_GEOMETRY = SeriesGeometry(
    origin_mm=(
        -200.0 + PET_SPACING_MM[0] / 2,
        -200.0 + PET_SPACING_MM[1] / 2,
        FOV_TOP_Z_MM - PET_SHAPE[0] * PET_SPACING_MM[2] + PET_SPACING_MM[2] / 2,
    ),
    spacing_mm=PET_SPACING_MM,
    shape=PET_SHAPE,
)
#: Shape (z, y, x) of the fine 2 mm simulation grid.
_FINE_SHAPE = (PET_SHAPE[0] * 2, PET_SHAPE[1] * 2, PET_SHAPE[2] * 2)
_CT_GEOMETRY = SeriesGeometry(
    origin_mm=(
        -200.0 + FINE_SPACING_MM / 2,
        -200.0 + FINE_SPACING_MM / 2,
        _PET_GEOMETRY.origin_mm[2],
    ),
    spacing_mm=(FINE_SPACING_MM, FINE_SPACING_MM, PET_SPACING_MM[2]),
    shape=(PET_SHAPE[0], PET_SHAPE[1] * 2, PET_SHAPE[2] * 2),
)


def pixel_sha256(stored: np.ndarray) -> str:
    """SHA-256 of stored pixel values: little-endian, slices caudal to cranial, (z, y, x)."""
    arr = np.ascontiguousarray(stored)
    return hashlib.sha256(arr.astype(arr.dtype.newbyteorder("<")).tobytes()).hexdigest()


@dataclass(frozen=True, eq=False)
class SimulatedTimepoint:
    """One simulated timepoint, before it is written to disk.

    Attributes
    ----------
    name : str
    schedule : TimepointSchedule
    uids : StudyUIDs
    pet_stored, pet_slopes
        Stored int16 PET values ``(z, y, x)`` (z caudal to cranial) and per-slice slopes.
    suv_factor : float
        Factor from ``stored x slope`` to SUVbw a QIBA engine obtains from the headers.
    philips_suv_factor : str or None
        The (7053,1000) text for the Philips convention.
    pet_suv : ndarray
        SUVbw as decoded (``stored x slope x suv_factor``).
    ct_stored : ndarray
        Stored CT values (uint16, HU + 1024).
    localizer : ndarray
        Localizer pixels (uint16).
    lesion_masks : ndarray
        Truth labels on the PET grid (0 background, ``LesionSpec.label`` per lesion).
    lesion_masks_ct : ndarray
        Truth labels on the CT grid (CT voxels at least half covered by the lesion).
    truth : dict
        The timepoint's section of ``truth.json``.
    """

    name: str
    schedule: TimepointSchedule
    uids: StudyUIDs
    pet_stored: np.ndarray
    pet_slopes: list[str]
    suv_factor: float
    philips_suv_factor: str | None
    pet_suv: np.ndarray
    ct_stored: np.ndarray
    localizer: np.ndarray
    lesion_masks: np.ndarray
    lesion_masks_ct: np.ndarray
    truth: dict[str, Any] = field(default_factory=dict)


def _header_suv_factor(sched: TimepointSchedule) -> float:
    """SUVbw per Bq/mL as a QIBA engine derives it from the written header texts."""
    weight_g = float(format_ds(sched.weight_kg)) * 1000.0
    dose = float(format_ds(sched.injected_dose_bq))
    half_life = float(format_ds(F18_HALF_LIFE_S))
    dt_s = (sched.scan_start - sched.injection).total_seconds()
    return weight_g / (dose * 2.0 ** (-dt_s / half_life))


def _body_to_lps(p: Sequence[float], sched: TimepointSchedule) -> tuple[float, float, float]:
    s = sched.patient_shift_mm
    return (p[0] + s[0], p[1] + s[1], p[2] + FOV_TOP_Z_MM + s[2])


def _localizer(ct_hu: np.ndarray) -> np.ndarray:
    """Coronal projection radiograph (rows head to feet, 2 mm pixels) from the CT."""
    mu = np.clip(ct_hu + 1000.0, 0.0, None) / 1000.0  # relative attenuation
    proj = mu.sum(axis=1) * 2.0  # line integral (mm water-equivalent) along y, (z, x)
    img = np.repeat(proj[::-1], 2, axis=0)  # head first, 2 mm rows
    return np.asarray(np.clip(np.rint(img * 6.0), 0, 4095).astype(np.uint16))


def _hot_structures(
    labels_fine: np.ndarray, suv: np.ndarray, sched: TimepointSchedule
) -> list[dict[str, Any]]:
    """Physiological hot structures that a lesion detector must not call lesions."""
    nz, ny, nx = labels_fine.shape
    x_lps = _CT_GEOMETRY.origin_mm[0] + np.arange(nx) * FINE_SPACING_MM
    right = (x_lps < sched.patient_shift_mm[0])[None, None, :]
    groups = [
        ("urinary_bladder", "urine", "midline", labels_fine == Tissue.BLADDER),
        (
            "kidney_right",
            "renal parenchyma and collecting system",
            "right",
            np.isin(labels_fine, [Tissue.KIDNEY, Tissue.RENAL_PELVIS]) & right,
        ),
        (
            "kidney_left",
            "renal parenchyma and collecting system",
            "left",
            np.isin(labels_fine, [Tissue.KIDNEY, Tissue.RENAL_PELVIS]) & ~right,
        ),
        (
            "bowel",
            "small bowel and colon (mild physiological uptake)",
            "both",
            np.isin(labels_fine, [Tissue.BOWEL, Tissue.COLON, Tissue.RECTUM]),
        ),
        ("liver", "normal liver (reference organ)", "right", labels_fine == Tissue.LIVER),
    ]
    out = []
    for name, kind, side, fine in groups:
        frac = fine.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2).mean(axis=(1, 3, 5))
        mask = frac >= 0.5
        idx = np.argwhere(mask)
        centre = _PET_GEOMETRY.origin_mm + idx[:, ::-1].mean(axis=0) * np.asarray(PET_SPACING_MM)
        out.append(
            {
                "name": name,
                "kind": kind,
                "side": side,
                "volume_ml": round(float(mask.sum()) * 0.064, 2),
                "centroid_mm": [round(float(v), 1) for v in centre],
                "suv_max": round(float(suv[mask].max()), 3),
                "suv_mean": round(float(suv[mask].mean()), 3),
            }
        )
    return out


def _gap_to_hot_mm(labels_fine: np.ndarray, lesion_fine: np.ndarray) -> float | None:
    """Smallest distance (mm) from a lesion to the kidneys or the bladder (fine grid)."""
    if not lesion_fine.any():
        return None
    idx = np.argwhere(lesion_fine)
    lo = np.maximum(idx.min(axis=0) - 30, 0)
    hi = idx.max(axis=0) + 31
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    hot = np.isin(labels_fine[sl], [Tissue.KIDNEY, Tissue.RENAL_PELVIS, Tissue.BLADDER])
    if not hot.any():
        return 60.0  # farther than the 60 mm search margin
    dist = ndimage.distance_transform_edt(~hot, sampling=FINE_SPACING_MM)
    return round(float(dist[lesion_fine[sl]].min()), 1)


def _ct_fraction(fine: np.ndarray) -> np.ndarray:
    """Fraction of each CT voxel (2 fine slices in z) covered by a fine-grid mask."""
    nz, ny, nx = fine.shape
    return np.asarray(fine.reshape(nz // 2, 2, ny, nx).mean(axis=1))


def _pet_fraction(fine: np.ndarray) -> np.ndarray:
    """Fraction of each PET voxel (2 x 2 x 2 fine voxels) covered by a fine-grid mask."""
    nz, ny, nx = fine.shape
    return np.asarray(fine.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2).mean(axis=(1, 3, 5)))


def _former_footprint(name: str, index: int, seed: int, shift_mm: Sequence[float]) -> np.ndarray:
    """PET-grid footprint of where lesion ``index`` was before timepoint ``name``.

    The union of the lesion's fine masks at the earlier timepoints, each rendered with the
    patient shift of ``name`` (same body-coordinate shapes, this scan's position), then the
    PET voxels at least half covered (the PET truth-mask rule).
    """
    earlier: list[LesionState] = [
        lesion_states(t)[index] for t in TIMEPOINTS[: TIMEPOINTS.index(name)]
    ]
    union = np.zeros(_FINE_SHAPE, dtype=bool)
    for fine in render_lesion_masks(earlier, seed, shift_mm):
        union |= fine
    return np.asarray(_pet_fraction(union.astype(float)) >= 0.5)


def _site_truth(
    suv: np.ndarray,
    region: np.ndarray,
    region_name: str,
    present: bool,
    sul: float,
    liver: dict[str, Any],
    blood: dict[str, Any],
) -> dict[str, Any]:
    """PET uptake truth at a lesion site, with its Deauville score and activity call."""
    site: dict[str, Any] = {"region": region_name}
    site.update(site_uptake(suv, region, _PET_GEOMETRY.origin_mm, _PET_GEOMETRY.spacing_mm, sul))
    x = site["suv_max"]
    site["deauville"] = (
        None if x is None else deauville_score(x, blood["suv_max"], liver["suv_max"])
    )
    site["state"] = "present" if present else "resolved"
    site["metabolically_active"] = None if x is None else bool(x > blood["suv_mean"])
    return site


def simulate_timepoint(name: str, seed: int = DEFAULT_SEED) -> SimulatedTimepoint:
    """Simulate one timepoint of the sample study and compute its truth (no files written).

    Parameters
    ----------
    name : str
        ``"baseline"``, ``"month1"`` or ``"month3"``.
    seed : int
        Study seed; the committed sample uses :data:`DEFAULT_SEED`.

    Returns
    -------
    SimulatedTimepoint
    """
    if name not in TIMEPOINTS:
        raise InvalidParameterError(
            format_message(f"unknown timepoint {name!r}", fix=f"use one of {', '.join(TIMEPOINTS)}")
        )
    sched = schedule_for(name)
    uids = StudyUIDs.derive(seed, name)
    images = simulate_images(name, seed, sched.patient_shift_mm, _FAT_MM[name])
    suv_per_bqml = _header_suv_factor(sched)
    philips_text: str | None = None
    if sched.vendor is VendorConvention.PHILIPS_CNTS:
        philips_text = format_ds(sched.philips_activity_scale_bqml_per_count * suv_per_bqml)
        factor = float(philips_text)
    else:
        factor = suv_per_bqml
    stored, slopes = quantise_per_slice(images.pet_suv / factor)
    slope_arr = np.array([float(s) for s in slopes])[:, None, None]
    suv = stored.astype(np.float64) * slope_arr * factor
    ct_stored = (np.rint(images.ct_hu) + 1024).astype(np.uint16)
    localizer = _localizer(images.ct_hu)

    sul = sched.sul_per_suvbw
    origin, spacing = _PET_GEOMETRY.origin_mm, _PET_GEOMETRY.spacing_mm
    labels = np.zeros(PET_SHAPE, dtype=np.uint8)
    labels_ct = np.zeros(_CT_GEOMETRY.shape, dtype=np.uint8)
    hu_stored = ct_stored.astype(np.float64) - 1024.0
    lesions = []
    sites: list[tuple[np.ndarray, str, bool]] = []
    for index, (state, frac, fine) in enumerate(
        zip(lesion_states(name), images.lesion_fraction_pet, images.lesion_fine_masks)
    ):
        mask = frac >= 0.5
        labels[mask] = state.spec.label
        mask_ct = _ct_fraction(fine.astype(float)) >= 0.5
        labels_ct[mask_ct] = state.spec.label
        entry: dict[str, Any] = {
            "name": state.spec.name,
            "label": state.spec.label,
            "region": state.spec.region,
            "side": state.spec.side,
            "status": state.status,
            "present": bool(mask.any()),
            "tissue": "scar" if state.tissue is Tissue.SCAR else "viable tumour",
            "shape_volume_ml": round(float(fine.sum()) * FINE_SPACING_MM**3 / 1000.0, 3),
            "ct_hu_nominal": state.hu if state.present else None,
        }
        entry.update(lesion_metrics(suv, mask, origin, spacing, sul))
        entry["gap_to_kidney_or_bladder_mm"] = _gap_to_hot_mm(images.fine_labels, fine)
        entry["ct"] = ct_lesion_metrics(
            hu_stored, mask_ct, _CT_GEOMETRY.origin_mm, _CT_GEOMETRY.spacing_mm
        )
        if mask.any():
            sites.append((mask, "lesion", True))
        else:
            footprint = _former_footprint(name, index, seed, sched.patient_shift_mm)
            sites.append((footprint, "former footprint", False))
        lesions.append(entry)
    liver = sphere_statistics(suv, _body_to_lps(_LIVER_REF_BODY_MM, sched), 15.0, origin, spacing)
    liver["sul_mean"] = round(liver["suv_mean"] * sul, 4)
    liver["sul_sd"] = round(liver["suv_sd"] * sul, 4)
    liver["definition"] = "3 cm sphere (voxel centres within 15 mm) in the right liver lobe"
    blood = _blood_pool(suv, _body_to_lps(_AORTA_REF_BODY_MM, sched))
    blood["sul_mean"] = round(blood["suv_mean"] * sul, 4)
    blood["sul_sd"] = round(blood["suv_sd"] * sul, 4)
    for entry, (region, region_name, present) in zip(lesions, sites):
        entry["site"] = _site_truth(suv, region, region_name, present, sul, liver, blood)

    truth: dict[str, Any] = {
        "folder": name,
        "study_date": sched.study_date.isoformat(),
        "day_after_infusion": sched.day_after_infusion,
        "vendor_convention": sched.vendor.value,
        "manufacturer": sched.manufacturer,
        "study_instance_uid": uids.study,
        "frame_of_reference_uid": uids.frame_of_reference,
        "series": {
            "PT": {
                "folder": f"{name}/PT",
                "series_instance_uid": uids.pet_series,
                "n_files": PET_SHAPE[0],
                "pixel_sha256": pixel_sha256(stored),
            },
            "CT": {
                "folder": f"{name}/CT",
                "series_instance_uid": uids.ct_series,
                "n_files": PET_SHAPE[0],
                "pixel_sha256": pixel_sha256(ct_stored),
            },
            "LOCALIZER": {
                "folder": f"{name}/LOCALIZER",
                "series_instance_uid": uids.localizer_series,
                "n_files": 1,
                "pixel_sha256": pixel_sha256(localizer),
            },
        },
        "patient_shift_mm": list(sched.patient_shift_mm),
        "weight_kg": sched.weight_kg,
        "height_m": sched.height_m,
        "injected_dose_bq": sched.injected_dose_bq,
        "injection_datetime": sched.injection.isoformat(),
        "scan_reference_datetime": sched.scan_start.isoformat(),
        "series_datetime": sched.series_time.isoformat(),
        "uptake_time_s": sched.uptake_time_s,
        "decayed_dose_bq": round(sched.decayed_dose_bq, 1),
        "suvbw_per_bqml": suv_per_bqml,
        "suv_rule": _suv_rule(sched),
        "philips_suv_scale_factor": philips_text,
        "philips_activity_scale_factor": (
            format_ds(sched.philips_activity_scale_bqml_per_count) if philips_text else None
        ),
        "suv_factor_per_stored_unit": factor,
        "lbm_kg_janmahasatian": round(sched.lean_body_mass_kg, 4),
        "sul_per_suvbw": round(sul, 6),
        "pet_grid": {
            "origin_mm": list(origin),
            "spacing_mm": list(spacing),
            "shape_zyx": list(PET_SHAPE),
        },
        "ct_grid": {
            "origin_mm": list(_CT_GEOMETRY.origin_mm),
            "spacing_mm": list(_CT_GEOMETRY.spacing_mm),
            "shape_zyx": list(_CT_GEOMETRY.shape),
        },
        "truth_mask": f"{name}/truth_lesions.nii.gz",
        "ct_truth_mask": f"{name}/truth_lesions_ct.nii.gz",
        "lesions": lesions,
        "liver_reference": liver,
        "blood_pool_reference": blood,
        "percist_measurability_threshold_sul": round(
            1.5 * liver["sul_mean"] + 2.0 * liver["sul_sd"], 4
        ),
        "physiological_hot_structures": _hot_structures(images.fine_labels, suv, sched),
    }
    return SimulatedTimepoint(
        name,
        sched,
        uids,
        stored,
        slopes,
        factor,
        philips_text,
        suv,
        ct_stored,
        localizer,
        labels,
        labels_ct,
        truth,
    )


def _blood_pool(suv: np.ndarray, center: Sequence[float]) -> dict[str, Any]:
    """Mean, SD and maximum SUV in a 1 cm diameter x 2 cm cylinder along z in the aorta."""
    nz, ny, nx = suv.shape
    ox, oy, oz = _PET_GEOMETRY.origin_mm
    sx, sy, sz = _PET_GEOMETRY.spacing_mm
    z = oz + np.arange(nz) * sz
    y = oy + np.arange(ny) * sy
    x = ox + np.arange(nx) * sx
    sel = (np.abs(z - center[2]) <= 10.0)[:, None, None] & (
        ((y - center[1]) ** 2)[None, :, None] + ((x - center[0]) ** 2)[None, None, :] <= 25.0
    )
    vals = suv[sel]
    return {
        "center_mm": [round(float(c), 2) for c in center],
        "n_voxels": int(sel.sum()),
        "suv_mean": round(float(vals.mean()), 4),
        "suv_sd": round(float(vals.std(ddof=1)), 4),
        "suv_max": round(float(vals.max()), 4),
        "definition": "cylinder 1 cm diameter x 2 cm along z in the abdominal aorta",
    }


def _suv_rule(sched: TimepointSchedule) -> str:
    if sched.vendor is VendorConvention.SIEMENS_BQML:
        return (
            "BQML/START: t_ref = SeriesDate/Time (not after the earliest AcquisitionTime, "
            "QIBA step 1); SUVbw = slope x stored x weight_g / (dose x 2^(-(t_ref - t_inj)/T½))"
        )
    if sched.vendor is VendorConvention.PHILIPS_CNTS:
        return "CNTS: SUVbw = slope x stored x Philips SUV Scale Factor (7053,1000)"
    return (
        "BQML/START: SeriesTime is after AcquisitionTime (post-processed), so t_ref = GE "
        "private scan_datetime (0009,xx0D) of GEMS_PETD_01 (QIBA step 2); step 3 "
        "(FrameReferenceTime back-computation) gives the same t_ref"
    )


def _expected_responses(tps: dict[str, SimulatedTimepoint]) -> dict[str, Any]:
    if "baseline" not in tps:
        return {}
    base = tps["baseline"].truth

    def hottest(t: dict[str, Any]) -> tuple[str | None, float | None]:
        present = [les for les in t["lesions"] if les["present"]]
        if not present:
            return None, None
        best = max(present, key=lambda les: les["sul_peak"])
        return best["name"], float(best["sul_peak"])

    b_name, b_peak = hottest(base)
    assert b_peak is not None
    out: dict[str, Any] = {}
    for name in ("month1", "month3"):
        if name not in tps:
            continue
        t = tps[name].truth
        f_name, f_peak = hottest(t)
        call = percist_category(
            b_peak, f_peak, t["liver_reference"]["sul_mean"], t["blood_pool_reference"]["sul_mean"]
        )
        call["baseline_hottest_lesion"] = b_name
        call["followup_hottest_lesion"] = f_name
        call["baseline_liver_sul_mean"] = base["liver_reference"]["sul_mean"]
        call["followup_liver_sul_mean"] = t["liver_reference"]["sul_mean"]
        call["followup_blood_pool_sul_mean"] = t["blood_pool_reference"]["sul_mean"]
        call["baseline_measurable"] = b_peak >= base["percist_measurability_threshold_sul"]
        out[name] = {"percist": call}
    return out


@dataclass(frozen=True)
class SampleStudy:
    """Result of :func:`generate_sample_study`."""

    path: Path
    seed: int
    timepoints: tuple[str, ...]
    truth: dict[str, Any]
    size_bytes: int
    seconds_per_timepoint: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (without the full truth)."""
        return {
            "path": str(self.path),
            "seed": self.seed,
            "timepoints": list(self.timepoints),
            "size_bytes": self.size_bytes,
            "seconds_per_timepoint": self.seconds_per_timepoint,
        }

    def __repr__(self) -> str:
        return (
            f"SampleStudy({self.path}, seed={self.seed}, timepoints={list(self.timepoints)}, "
            f"{self.size_bytes / 1e6:.1f} MB)"
        )


def write_timepoint(tp: SimulatedTimepoint, folder: Path, *, compress: bool = True) -> None:
    """Write one simulated timepoint (PT, CT, LOCALIZER and the truth NIfTI) into ``folder``."""
    patient = Patient()
    write_pet_series(
        folder / "PT",
        tp.pet_stored,
        tp.pet_slopes,
        _PET_GEOMETRY,
        tp.schedule,
        patient,
        tp.uids,
        philips_suv_factor=tp.philips_suv_factor,
        compress=compress,
    )
    write_ct_series(
        folder / "CT", tp.ct_stored, _CT_GEOMETRY, tp.schedule, patient, tp.uids, compress=compress
    )
    top_left = (_CT_GEOMETRY.origin_mm[0], 0.0, FOV_TOP_Z_MM - FINE_SPACING_MM / 2)
    write_localizer(
        folder / "LOCALIZER",
        tp.localizer,
        (FINE_SPACING_MM, FINE_SPACING_MM),
        top_left,
        tp.schedule,
        patient,
        tp.uids,
        compress=compress,
    )
    _write_label_nifti(tp.lesion_masks, folder / "truth_lesions.nii.gz", _PET_GEOMETRY)
    _write_label_nifti(
        tp.lesion_masks_ct,
        folder / "truth_lesions_ct.nii.gz",
        _CT_GEOMETRY,
        descrip=b"emlesion sample truth lesions CT grid",
    )


def _write_label_nifti(
    labels: np.ndarray,
    path: Path,
    geometry: SeriesGeometry,
    *,
    descrip: bytes = b"emlesion sample truth lesions",
) -> None:
    """Labels (z, y, x) on ``geometry``'s grid to NIfTI with the LPS->RAS affine."""
    affine = np.eye(4)
    affine[:3, :3] = np.diag(geometry.spacing_mm)
    affine[:3, 3] = geometry.origin_mm
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    img = nib.Nifti1Image(np.ascontiguousarray(labels.transpose(2, 1, 0)).astype(np.uint8), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header["descrip"] = descrip
    # write uncompressed bytes into a gzip stream with mtime 0 so the file is reproducible
    import gzip

    raw = img.to_bytes()
    with open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(raw)


def _study_truth(seed: int, tps: dict[str, SimulatedTimepoint]) -> dict[str, Any]:
    patient = Patient()
    return {
        "format": "emlesion-sample-truth",
        "format_version": 1,
        "generator": f"emlesion.sample (emlesion {__version__})",
        "command": f"emlesion sample OUTDIR --seed {seed}",
        "seed": seed,
        "synthetic": True,
        "clinical_story": (
            "Adult man with extramedullary relapse of B-cell acute lymphoblastic leukaemia "
            "after allogeneic stem-cell transplantation, treated with donor-derived CD19 CAR-T "
            f"cells on {INFUSION_DATE.isoformat()}. FDG PET/CT two days before the infusion "
            "shows a right retroperitoneal and a left pelvic-wall mass; one month after, a "
            "partial metabolic response; three months after, a complete metabolic response "
            "with a small retroperitoneal scar."
        ),
        "patient": {
            "patient_id": patient.patient_id,
            "patient_name": patient.patient_name,
            "birth_date": patient.birth_date.isoformat(),
            "sex": patient.sex,
        },
        "infusion_date": INFUSION_DATE.isoformat(),
        "conventions": {
            "coordinates": "DICOM LPS, mm; centroids are means of PET voxel centres",
            "arrays": "(z, y, x), slice 0 most caudal",
            "lesion_masks": (
                "PET-grid voxels at least half covered by the simulated lesion "
                "(2 mm sub-grid); NIfTI labels = lesion label"
            ),
            "extents_cm": "axis-aligned (transverse x, antero-posterior y, cranio-caudal z), "
            "voxel-edge convention (max - min + 1) x spacing",
            "suv": "SUVbw decoded from the stored pixels with the written headers",
            "suv_peak": (
                f"IBSI global intensity peak (0F91): max over lesion voxels of the mean "
                f"of voxels whose centres are within {PEAK_RADIUS_MM:.4f} mm"
            ),
            "sul": "Janmahasatian lean body mass: SUL = SUVbw x LBM / weight",
            "pixel_sha256": "SHA-256 of decoded stored values, little-endian, (z, y, x), "
            "z caudal to cranial",
            "psf": (
                f"Gaussian PSF {PSF_FWHM_MM} mm FWHM on a 2 mm grid, "
                "then 2x2x2 block average to 4 mm"
            ),
            "ct_truth_mask": (
                "CT-grid (2 x 2 x 4 mm) voxels at least half covered by the simulated lesion "
                "(the two 2 mm sub-slices of each CT slice); NIfTI truth_lesions_ct.nii.gz, "
                "labels = lesion label, same LPS->RAS affine convention as truth_lesions.nii.gz"
            ),
            "ct": (
                "per lesion and timepoint, on the CT truth mask: ld_mm = longest axial "
                "diameter, sa_mm = short axis, volume_ml = n_voxels x 0.016 mL, hu_mean = "
                "mean stored HU (stored value - 1024), ld_slice_z_mm = LPS z of the LD slice; "
                "zeros and nulls when the lesion is not present"
            ),
            "ct_diameters": (
                "edge convention: points = midpoints of the exposed pixel faces of a slice "
                "(a row of n pixels of spacing s reads n x s); LD = largest distance between "
                "two points of one axial slice, maximised over slices (ties: larger SA, then "
                "lower slice); SA = longest chord of the convex hull of that slice's points "
                "exactly perpendicular to the LD (largest over tied farthest pairs; a "
                "perpendicular diameter, not the caliper width)"
            ),
            "site": (
                "PET uptake at the lesion site, present or not: region 'lesion' = the PET "
                "truth mask of the timepoint; 'former footprint' = PET voxels at least half "
                "covered by the union of the lesion's shapes at the earlier timepoints, "
                "rendered at this timepoint's patient position; suv_max, suv_peak (IBSI "
                "0F91 as above), sul_peak, n_voxels, centroid_mm of the region; state = "
                "'present' or 'resolved'; metabolically_active = site suv_max > blood-pool "
                "suv_mean"
            ),
            "deauville": (
                "Deauville score from SUVmax: x = site suv_max, M = blood_pool_reference "
                "suv_max, L = liver_reference suv_max; 2 if x <= min(M, L), 3 if M < x <= L, "
                f"4 if L < x <= {DEAUVILLE_LIVER_FACTOR:g} L, 5 if x > "
                f"{DEAUVILLE_LIVER_FACTOR:g} L (1 is a visual call and is never given)"
            ),
        },
        "timepoints": {name: tp.truth for name, tp in tps.items()},
        "lesion_specs": [
            {
                "name": s.name,
                "label": s.label,
                "region": s.region,
                "side": s.side,
                "target_extents_cm": list(s.extents_cm),
            }
            for s in LESIONS
        ],
        "expected_response": _expected_responses(tps),
    }


def _readme(truth: dict[str, Any]) -> str:
    """The README.md written beside the generated study."""
    seed = truth["seed"]
    lines = [
        "# emlesion sample study (synthetic FDG PET/CT, three timepoints)",
        "",
        "**Synthetic data. No real patient.** Generated by `emlesion.sample` with",
        "",
        "```",
        f"emlesion sample sample_scans --seed {seed}",
        "```",
        "",
        "Regenerating with the same seed reproduces the pixel data exactly "
        "(`tests/test_sample.py` checks it).",
        "",
        "## Clinical story",
        "",
        truth["clinical_story"],
        "",
        "## Layout",
        "",
        "| folder | study date | SUV convention | content |",
        "|---|---|---|---|",
    ]
    for name, tp in truth["timepoints"].items():
        lines.append(
            f"| `{name}/` | {tp['study_date']} (day {tp['day_after_infusion']:+d}) | "
            f"{tp['vendor_convention']} ({tp['manufacturer']}-like) | `PT/` PET (96 slices, 4 mm), "
            "`CT/` low-dose CT (2 x 2 x 4 mm), `LOCALIZER/` topogram, `truth_lesions.nii.gz` "
            "(PET grid), `truth_lesions_ct.nii.gz` (CT grid) |"
        )
    lines += [
        "",
        "`truth.json` holds, per timepoint, the UIDs, the SUV header arithmetic, the lesions "
        "(volume, extents, centroid, SUVmax/mean/peak, SULpeak; CT longest axial diameter, "
        "short axis, volume and HU; the uptake at the lesion site, also after it resolved, "
        "with its Deauville score), the liver and blood-pool references, the physiological "
        "hot structures, and the expected PERCIST call per follow-up. Its `conventions` "
        "section defines every number.",
        "",
        "## Truth at a glance",
        "",
        "| timepoint | lesion | volume mL | extents cm (x, y, z) | SUVmax | SUVpeak | SULpeak "
        "| CT LD x SA mm | Deauville |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, tp in truth["timepoints"].items():
        for les in tp["lesions"]:
            site = les["site"]
            score = "-" if site["deauville"] is None else str(site["deauville"])
            if not les["present"]:
                former = (
                    ""
                    if site["suv_max"] is None
                    else f" ({site['region']} SUVmax {site['suv_max']:.2f})"
                )
                lines.append(
                    f"| {name} | {les['name']} | 0 ({les['status']}) | - | - | - | - | - | "
                    f"{score}{former} |"
                )
                continue
            ext = " x ".join(f"{v:.1f}" for v in les["extents_cm"])
            ct = les["ct"]
            lines.append(
                f"| {name} | {les['name']} | {les['volume_ml']:.1f} | {ext} | "
                f"{les['suv_max']:.2f} | {les['suv_peak']:.2f} | {les['sul_peak']:.2f} | "
                f"{ct['ld_mm']:.1f} x {ct['sa_mm']:.1f} | {score} |"
            )
    lines += [
        "",
        "| timepoint | liver SUVmean (SD) | liver SULmean | liver SUVmax | blood-pool SUVmean "
        "| blood-pool SUVmax |",
        "|---|---|---|---|---|---|",
    ]
    for name, tp in truth["timepoints"].items():
        liv, bp = tp["liver_reference"], tp["blood_pool_reference"]
        lines.append(
            f"| {name} | {liv['suv_mean']:.2f} ({liv['suv_sd']:.2f}) | {liv['sul_mean']:.2f} | "
            f"{liv['suv_max']:.2f} | {bp['suv_mean']:.2f} | {bp['suv_max']:.2f} |"
        )
    lines += [
        "",
        "CT LD x SA: longest axial diameter and perpendicular short axis of the CT truth mask "
        "(edge convention). Deauville: site SUVmax against the blood-pool and liver SUVmax "
        f"(5 above {DEAUVILLE_LIVER_FACTOR:g} x liver); for a resolved lesion, at its former "
        "footprint.",
    ]
    lines.append("")
    for name, resp in truth["expected_response"].items():
        p = resp["percist"]
        lines.append(
            f"- Expected PERCIST at {name}: **{p['category']}** (hottest-lesion SULpeak "
            f"{p['baseline_sul_peak']:.2f} -> {p['followup_sul_peak'] or 0:.2f}, "
            f"{p['change_pct']:+.1f} %)."
        )
    lines += [
        "",
        "## How it is made",
        "",
        "A digital abdomen-pelvis phantom (body outline with subcutaneous fat, abdominal wall, "
        "lumbar spine, sacrum and pelvic bones, liver, spleen, stomach, kidneys with hot "
        "collecting systems, aorta and IVC, psoas, small bowel and colon with gas, bladder, "
        "rectum) is built on a 2 mm grid with FDG SUVs and non-contrast HU per tissue. The two "
        "masses are ellipsoids deformed by low-order harmonics, with a cooler core and a "
        "cranio-caudal gradient. PET = true SUV blurred by a 6.5 mm FWHM Gaussian PSF, "
        "block-averaged to 4 mm, plus spatially correlated noise whose variance grows with "
        "the activity; stored as int16 with a per-slice RescaleSlope. The patient lies a few "
        "millimetres differently at each timepoint (`patient_shift_mm` in truth.json). Pixel "
        "data are RLE Lossless (decoded natively by pydicom and by GDCM/SimpleITK).",
        "",
        "## Licence",
        "",
        "Generated data, dedicated to the public domain (CC0 1.0). The generator is part of "
        "emlesion (MIT licence).",
        "",
    ]
    return "\n".join(lines)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def generate_sample_study(
    outdir: str | os.PathLike[str],
    *,
    seed: int = DEFAULT_SEED,
    timepoints: Sequence[str] = TIMEPOINTS,
    force: bool = False,
    compress: bool = True,
) -> SampleStudy:
    """Generate the synthetic three-timepoint FDG PET/CT study into ``outdir``.

    The study is built in a temporary folder next to ``outdir`` and renamed into place
    (:func:`emlesion._atomic.publish_dir`), so ``outdir`` is never left half-written.

    Parameters
    ----------
    outdir : path
        Output folder. It must not exist or be empty, unless ``force`` is set, in
        which case its previous content is replaced.
    seed : int
        Study seed (:data:`DEFAULT_SEED` reproduces the committed ``sample_scans/``).
    timepoints : sequence of str
        Subset of ``("baseline", "month1", "month3")`` to generate.
    force : bool
        Replace a non-empty ``outdir``.
    compress : bool
        Store pixel data as RLE Lossless (default) instead of uncompressed.

    Returns
    -------
    SampleStudy

    Raises
    ------
    FileExistsError
        ``outdir`` is not empty and ``force`` is False.
    """
    out = Path(outdir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise FileExistsError(
            format_message(
                f"{out} exists and is not empty", fix="choose a new folder or pass --force"
            )
        )
    unknown = [t for t in timepoints if t not in TIMEPOINTS]
    if unknown:
        raise InvalidParameterError(
            format_message(f"unknown timepoint(s) {unknown}", fix=f"use {', '.join(TIMEPOINTS)}")
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tps: dict[str, SimulatedTimepoint] = {}
        seconds: dict[str, float] = {}
        for name in TIMEPOINTS:
            if name not in timepoints:
                continue
            t0 = time.perf_counter()
            tp = simulate_timepoint(name, seed)
            write_timepoint(tp, tmp / name, compress=compress)
            seconds[name] = round(time.perf_counter() - t0, 2)
            tps[name] = tp
        truth = _study_truth(seed, tps)
        (tmp / "truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_readme(truth), encoding="utf-8")
        publish_dir(tmp, out, replace=force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SampleStudy(out, seed, tuple(tps), truth, _dir_size(out), seconds)
