"""Adapters from :class:`emlesion.study.Study` to the explicit inputs of the report writers.

Kept apart so that :mod:`emlesion.report.html` and :mod:`emlesion.report.dicom` can be used
(and tested) without a full study. Attributes read: ``Study.timepoints``, ``Study.baseline``,
``Study.patient_id``, the ``tracks`` array (:func:`emlesion.report.documents.tracks_array`),
``Study.track_id_of()``, ``Study.assess()``,
``Study.sites`` (``{track_id: {timepoint_label: SiteReading}}``);
``Timepoint.label``, ``date``, ``pet``, ``ct``, ``suv``, ``lesions``, ``liver``,
``lesion_dicts()``, ``scanner``, ``uptake_time_min`` and the PET headers and SUV provenance
(:func:`acquisition_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import Volume
from emlesion.report.dicom import TrackingInfo, tracking_uid
from emlesion.report.documents import tracks_array
from emlesion.report.html import TimepointView, header_from_identity
from emlesion.study import Study, Timepoint

__all__ = [
    "DicomInputs",
    "absent_tracks",
    "acquisition_of",
    "dicom_inputs",
    "site_readings",
    "study_views",
    "track_infos",
]


def _sites_of(study: Study, label: str) -> dict[str, Any]:
    """Track id -> :class:`~emlesion.response.SiteReading` of timepoint ``label``."""
    sites = getattr(study, "sites", None) or {}
    return {str(tid): by_tp[label] for tid, by_tp in sites.items() if label in by_tp}


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword, "") if ds is not None else ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return " ".join(str(v) for v in value)
    return str(value).strip()


def acquisition_of(tp: Timepoint, glucose_mmol_l: float | None = None) -> dict[str, Any]:
    """The acquisition facts of a timepoint's PET, as the report's acquisition table shows them.

    ``scanner`` (Manufacturer and ManufacturerModelName), ``reconstruction``
    (ReconstructionMethod, with ConvolutionKernel when present), ``uptake_time_min``
    (:attr:`Timepoint.uptake_time_min`), ``injected_activity_mbq`` and ``weight_kg`` (the
    values the SUV engine used, after its unit checks: the ``emlesion.suv.compute_suv``
    provenance step; else RadionuclideTotalDose and PatientWeight of the first header) and
    ``glucose_mmol_l`` (given by the caller; not a standard DICOM PET attribute).
    """
    ds = tp.pet.headers[0] if tp.pet.headers else None
    step = next((s for s in reversed(tp.suv.provenance)
                 if s.operation == "emlesion.suv.compute_suv"), None)
    inputs: Mapping[str, Any] = step.inputs if step is not None else {}
    dose_bq = inputs.get("injected_dose_bq")
    weight = inputs.get("weight_kg")
    if ds is not None and dose_bq is None:
        seq = ds.get("RadiopharmaceuticalInformationSequence")
        if seq:
            try:
                dose_bq = float(seq[0].get("RadionuclideTotalDose"))
            except (TypeError, ValueError):
                dose_bq = None
    if ds is not None and weight is None:
        try:
            weight = float(ds.get("PatientWeight"))
        except (TypeError, ValueError):
            weight = None
    recon = " / ".join(v for v in (_text(ds, "ReconstructionMethod"),
                                   _text(ds, "ConvolutionKernel")) if v)
    return {
        "scanner": tp.scanner,
        "reconstruction": recon,
        "uptake_time_min": tp.uptake_time_min,
        "injected_activity_mbq": float(dose_bq) / 1e6 if isinstance(dose_bq, (int, float))
        else None,
        "weight_kg": float(weight) if isinstance(weight, (int, float)) else None,
        "glucose_mmol_l": glucose_mmol_l,
    }


def study_views(
    study: Study,
    *,
    glucose_mmol_l: Mapping[str, float] | None = None,
) -> tuple[dict[str, str], list[TimepointView], list[dict[str, Any]], Callable[[], Sequence[Any]]]:
    """Header, timepoint views, tracks and a lazy default-assessment callable of a study."""
    header = header_from_identity(study.baseline.pet.identity)
    views = [
        TimepointView(
            label=tp.label,
            suv=tp.suv,
            lesions=tp.lesions,
            date=tp.date,
            ct=tp.ct,
            rows=tuple(tp.lesion_dicts()),
            liver=tp.liver.to_dict() if tp.liver is not None else None,
            sites=_sites_of(study, tp.label),
            acquisition=acquisition_of(tp, (glucose_mmol_l or {}).get(tp.label)),
            burden=tp.burden.row(),
        )
        for tp in study.timepoints
    ]
    return header, views, list(tracks_array(study)), study.assess


def _tracking_info(study: Study, track_id: str) -> TrackingInfo:
    """``track_id`` with its UID from the PatientID and the baseline StudyInstanceUID."""
    base = study.baseline.pet.identity
    return TrackingInfo(track_id, tracking_uid(
        track_id, patient_id=study.patient_id or base.patient_id,
        baseline_study_uid=base.study_instance_uid))


def track_infos(study: Study, timepoint: Timepoint) -> dict[int, TrackingInfo]:
    """Label -> :class:`TrackingInfo` of every lesion of one timepoint.

    The UID is derived from the PatientID, the baseline StudyInstanceUID and the track id
    (:func:`emlesion.report.dicom.tracking_uid`), so it is the same at every timepoint of a
    track. A lesion without a track gets the identifier ``"<timepoint>-L<label>"``.
    """
    return {
        int(lab): _tracking_info(
            study, study.track_id_of(timepoint.label, lab) or f"{timepoint.label}-L{lab}")
        for lab in timepoint.lesions.labels
    }


def absent_tracks(study: Study, label: str) -> tuple[TrackingInfo, ...]:
    """Tracks whose state at timepoint ``label`` is ``resolved`` or ``merged``."""
    return tuple(
        _tracking_info(study, str(t["id"])) for t in tracks_array(study)
        if (t.get("states") or {}).get(label) in ("resolved", "merged")
    )


def site_readings(study: Study, label: str) -> tuple[tuple[TrackingInfo, Any], ...]:
    """``(TrackingInfo, SiteReading)`` of every track read at timepoint ``label``.

    In the order of ``the tracks array`` (then any other track with a reading), with the
    same tracking UID as the track's lesion groups.
    """
    by_tp = _sites_of(study, label)
    order = [str(t["id"]) for t in tracks_array(study) if str(t["id"]) in by_tp]
    order += sorted(set(by_tp) - set(order))
    return tuple((_tracking_info(study, tid), by_tp[tid]) for tid in order)


@dataclass(frozen=True, eq=False)
class DicomInputs:
    """What :func:`emlesion.report.dicom.write_dicom_outputs` needs of one timepoint."""

    label: str
    order: int
    suv: Volume
    lesions: LabelMap
    rows: tuple[Mapping[str, Any], ...]
    tracking: Mapping[int, TrackingInfo]
    absent: tuple[TrackingInfo, ...] = ()
    sites: tuple[tuple[TrackingInfo, Any], ...] = ()
    sul_units: str | None = None
    ct_frame_of_reference_uid: str | None = None


def dicom_inputs(study: Study) -> list[DicomInputs]:
    """One :class:`DicomInputs` per timepoint of ``study``, in study order."""
    return [
        DicomInputs(
            label=tp.label,
            order=i,
            suv=tp.suv,
            lesions=tp.lesions,
            rows=tuple(tp.lesion_dicts()),
            tracking=track_infos(study, tp),
            absent=absent_tracks(study, tp.label),
            sites=site_readings(study, tp.label),
            sul_units=tp.sul.units if tp.sul is not None else None,
            ct_frame_of_reference_uid=(tp.ct.identity.frame_of_reference_uid or None
                                       if tp.ct is not None else None),
        )
        for i, tp in enumerate(study.timepoints, start=1)
    ]
