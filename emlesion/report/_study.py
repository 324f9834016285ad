"""Adapters from :class:`emlesion.study.Study` to the explicit inputs of the report writers.

Kept apart so that :mod:`emlesion.report.html` and :mod:`emlesion.report.dicom` can be used
(and tested) without a full study. Attributes read: ``Study.timepoints``, ``Study.baseline``,
``Study.patient_id``, the ``tracks`` array (:func:`emlesion.report.documents.tracks_array`),
``Study.track_id_of()``, ``Study.assess()``,
``Study.sites`` (``{track_id: {timepoint_label: SiteReading}}``);
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
from emlesion.report.documents import tracks_array
from emlesion.report.html import TimepointView, header_from_identity
from emlesion.study import Study, Timepoint

__all__ = [
    "DicomInputs",
    "absent_tracks",
    "dicom_inputs",
    "site_readings",
    "study_views",
    "track_infos",
]


def _sites_of(study: Study, label: str) -> dict[str, Any]:
    """Track id -> :class:`~emlesion.response.SiteReading` of timepoint ``label``."""
    sites = getattr(study, "sites", None) or {}
    return {str(tid): by_tp[label] for tid, by_tp in sites.items() if label in by_tp}


def study_views(
    study: Study,
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
