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


def _tracking_info(study: Any, track_id: str) -> TrackingInfo:
    """``track_id`` with its UID from the PatientID and the baseline StudyInstanceUID."""
    base = study.baseline.pet.identity
    return TrackingInfo(track_id, tracking_uid(
        track_id, patient_id=study.patient_id or base.patient_id,
        baseline_study_uid=base.study_instance_uid))


def track_infos(study: Any, timepoint: Any) -> dict[int, TrackingInfo]:
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


def absent_tracks(study: Any, label: str) -> tuple[TrackingInfo, ...]:
    """Tracks whose state at timepoint ``label`` is ``resolved`` or ``merged``."""
    return tuple(
        _tracking_info(study, str(t["id"])) for t in study.tracks_list()
        if (t.get("states") or {}).get(label) in ("resolved", "merged")
    )


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
