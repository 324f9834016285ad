"""Adapters from :class:`emlesion.study.Study` to the explicit inputs of the report writers.

Kept apart so that :mod:`emlesion.report.html` and :mod:`emlesion.report.dicom` can be used
(and tested) without a full study. Attributes read: ``Study.timepoints``, ``Study.baseline``,
``Study.patient_id``, ``Study.tracks_list()``, ``Study.track_id_of()``, ``Study.assess()``;
``Timepoint.label``, ``date``, ``pet``, ``ct``, ``suv``, ``lesions``, ``liver``,
``lesion_dicts()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import Volume
from emlesion.report.dicom import TrackingInfo, tracking_uid
from emlesion.report.html import TimepointView, header_from_identity

__all__ = ["DicomInputs", "absent_tracks", "dicom_inputs", "study_views", "track_infos"]


def study_views(
    study: Any,
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
        )
        for tp in study.timepoints
    ]
    return header, views, list(study.tracks_list()), study.assess


def track_infos(study: Any, timepoint: Any) -> dict[int, TrackingInfo]:
    """Label -> :class:`TrackingInfo` of every lesion of one timepoint.

    The UID is derived from the PatientID, the baseline StudyInstanceUID and the track id
    (:func:`emlesion.report.dicom.tracking_uid`), so it is the same at every timepoint of a
    track. A lesion without a track gets the identifier ``"<timepoint>-L<label>"``.
    """
    base = study.baseline.pet.identity
    patient = study.patient_id or base.patient_id
    out: dict[int, TrackingInfo] = {}
    for lab in timepoint.lesions.labels:
        tid = study.track_id_of(timepoint.label, lab) or f"{timepoint.label}-L{lab}"
        out[int(lab)] = TrackingInfo(
            tid, tracking_uid(tid, patient_id=patient, baseline_study_uid=base.study_instance_uid)
        )
    return out


def absent_tracks(study: Any, label: str) -> tuple[TrackingInfo, ...]:
    """Tracks whose state at timepoint ``label`` is ``resolved`` or ``merged``."""
    base = study.baseline.pet.identity
    patient = study.patient_id or base.patient_id
    out = []
    for t in study.tracks_list():
        state = (t.get("states") or {}).get(label)
        if state in ("resolved", "merged"):
            tid = str(t["id"])
            out.append(TrackingInfo(tid, tracking_uid(
                tid, patient_id=patient, baseline_study_uid=base.study_instance_uid)))
    return tuple(out)


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


def dicom_inputs(study: Any) -> list[DicomInputs]:
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
        )
        for i, tp in enumerate(study.timepoints, start=1)
    ]
