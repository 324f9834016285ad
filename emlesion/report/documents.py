"""The public JSON documents: ``report.json`` (``emlesion response``) and the ``emlesion
measure`` JSON, with their format constants.

:mod:`emlesion.report` is the end of the data flow. The study (:mod:`emlesion.study`)
composes the pipeline and holds typed results (:class:`~emlesion.study.Timepoint`,
:class:`~emlesion.study.Study`, :class:`~emlesion.study.record.LesionRecord`); this module
turns them into the documents whose keys and units are a stable contract
(``emlesion/schemas/report.schema.json`` and ``measure.schema.json``, ``format_version`` 1):

* :func:`timepoint_object` -> one ``timepoints[]`` object;
* :func:`tracks_array` -> the ``tracks`` array (with every track's ``sites``);
* :func:`report_dict` -> the whole ``report.json``;
* :func:`measure_dict` -> the ``emlesion measure`` JSON of one timepoint.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

from emlesion._version import __version__
from emlesion.provenance import jsonable
from emlesion.response import DEFAULT_CRITERIA, Assessment, Criterion
from emlesion.study import Study, Timepoint

__all__ = [
    "MEASURE_FORMAT",
    "REPORT_FORMAT",
    "REPORT_FORMAT_VERSION",
    "SUV_PEAK_DEFINITION",
    "measure_dict",
    "report_dict",
    "timepoint_object",
    "tracks_array",
]

#: ``format`` value of ``report.json`` and of the ``emlesion measure`` JSON.
REPORT_FORMAT = "emlesion-report"
MEASURE_FORMAT = "emlesion-measure"
#: Version of both JSON contracts; bumped on any incompatible change.
REPORT_FORMAT_VERSION = 1
#: Which SUVpeak variant the public ``suv_peak`` / ``sul_peak`` keys hold.
SUV_PEAK_DEFINITION = (
    "IBSI global intensity peak (0F91): maximum over lesion voxel centres of the mean of the "
    "voxels whose centres lie within 6.2035 mm (1 mL sphere), sphere may leave the lesion"
)


def timepoint_object(tp: Timepoint, *, provenance: bool = True,
                     track_ids: Mapping[int, str | None] | None = None) -> dict[str, Any]:
    """The public per-timepoint object (``timepoints[]`` of report.json; measure JSON body).

    Parameters
    ----------
    tp : Timepoint
        The timepoint.
    provenance : bool
        Include its provenance steps.
    track_ids : mapping, optional
        Lesion label -> track id; adds ``track_id`` to every lesion object (reports).

    Returns
    -------
    dict
        ``label``, ``date``, ``days_since_baseline``, ``method``, ``lesion_source``,
        ``suv_quantity``, ``sul_quantity``, ``suv_peak_definition``, ``uptake_time_min``,
        ``has_ct``, ``scanner``, ``study_instance_uid``, ``pet_series_instance_uid``,
        ``ct_series_instance_uid``, ``liver``, ``blood_pool``, ``lesions`` (the
        :meth:`~emlesion.study.record.LesionRecord.lesion_object` of every lesion),
        ``burden`` (:meth:`emlesion.measure.WholeBodyBurden.to_dict`: total MTV and TLG,
        lesion count, Dmax, SDmax and the threshold rule) and, with ``provenance``,
        ``provenance``.
    """
    lesions = tp.lesion_dicts()
    if track_ids is not None:
        for les in lesions:
            les["track_id"] = track_ids.get(les["label"])
    out: dict[str, Any] = {
        "label": tp.label,
        "date": tp.date.isoformat() if tp.date is not None else None,
        "days_since_baseline": tp.days_since_baseline,
        "method": tp.method,
        "lesion_source": tp.lesion_source.value,
        "suv_quantity": tp.suv.units,
        "sul_quantity": tp.sul_quantity,
        "suv_peak_definition": SUV_PEAK_DEFINITION,
        "uptake_time_min": jsonable(tp.uptake_time_min),
        "has_ct": tp.has_ct,
        "scanner": tp.scanner,
        "study_instance_uid": tp.pet.identity.study_instance_uid,
        "pet_series_instance_uid": tp.pet.identity.series_instance_uid,
        "ct_series_instance_uid": (tp.ct.identity.series_instance_uid
                                   if tp.ct is not None else None),
        "liver": tp.liver.to_dict() if tp.liver is not None else None,
        "blood_pool": tp.blood_pool.to_dict() if tp.blood_pool is not None else None,
        "lesions": lesions,
        "burden": tp.burden.to_dict(),
    }
    if provenance:
        out["provenance"] = [p.to_dict() for p in tp.provenance]
    return out


def tracks_array(study: Study) -> list[dict[str, Any]]:
    """The ``tracks`` array of report.json.

    One object per track: ``id``; for each timepoint label, the (primary) lesion label or
    null; ``states`` and ``fragments`` per timepoint; ``sites``: per timepoint from the
    track's first appearance, :meth:`emlesion.response.SiteReading.to_dict` (``state``,
    ``pet``, ``ct``, ``reliable``, ``reasons``, ``site``).
    """
    out: list[dict[str, Any]] = []
    if study.tracking is None:
        tp = study.baseline
        for lab in tp.measurements.labels:
            tid = f"T{int(lab)}"
            out.append({"id": tid, tp.label: lab, "states": {tp.label: "present"},
                        "fragments": {tp.label: [lab]},
                        "sites": {k: r.to_dict() for k, r in study.sites.get(tid, {}).items()}})
        return out
    for track in study.tracking.tracks:
        entry: dict[str, Any] = {"id": track.id}
        for p in track.points:
            entry[p.timepoint] = p.label
        entry["states"] = {p.timepoint: p.state.value for p in track.points}
        entry["fragments"] = {p.timepoint: list(p.labels) for p in track.points}
        entry["sites"] = {k: r.to_dict() for k, r in study.sites.get(track.id, {}).items()}
        out.append(entry)
    return out


def _assessment_object(a: Assessment) -> dict[str, Any]:
    return {
        "criterion_name": a.criterion.full_name,
        "category": a.category.value,
        "category_description": a.category.description,
        "rule": a.rule,
        "reasons": list(a.reasons),
        "numbers": jsonable(dict(a.numbers)),
        "thresholds": jsonable(dict(a.thresholds)),
        "nadir": a.nadir,
        "warnings": list(a.warnings),
    }


def report_dict(
    study: Study,
    assessments: Sequence[Assessment] | None = None,
    *,
    criteria: Sequence[str | Criterion] = DEFAULT_CRITERIA,
    deidentify: bool = False,
    provenance: bool = True,
    treatment_date: _dt.date | None = None,
) -> dict[str, Any]:
    """The public ``report.json`` structure (schema ``emlesion/schemas/report.schema.json``).

    Parameters
    ----------
    study : Study
        The longitudinal study.
    assessments : sequence of Assessment, optional
        Result of :meth:`Study.assess`; computed with ``criteria`` when omitted.
    criteria : sequence of str
        Criteria used when ``assessments`` is omitted.
    deidentify : bool
        Leave out the PatientID.
    provenance : bool
        Include the per-timepoint and study provenance and the registrations.
    treatment_date : datetime.date, optional
        Start of treatment (``--treatment-date``): adds ``treatment_date`` (ISO) and, to
        every timepoint, ``days_since_treatment``.

    Returns
    -------
    dict
        ``format``, ``format_version``, ``emlesion_version``, ``patient_id``,
        ``timepoints`` (:func:`timepoint_object`, each lesion with its ``track_id``),
        ``tracks`` (:func:`tracks_array`), ``assessments`` (``timepoint``, ``reference``,
        one object per criterion with ``category``, ``reasons``, ``rule``, ``numbers``,
        ``thresholds``, ``nadir``, ``warnings``) and, with ``provenance``, ``provenance``
        and ``registrations``.

    Examples
    --------
    >>> from emlesion.report import report_dict   # doctest: +SKIP
    >>> report_dict(study)["assessments"][0]["percist"]["category"]   # doctest: +SKIP
    'PMR'
    """
    if assessments is None:
        assessments = study.assess(criteria)
    tps = [timepoint_object(tp, provenance=provenance,
                            track_ids={lab: study.track_id_of(tp.label, lab)
                                       for lab in tp.measurements.labels})
           for tp in study.timepoints]
    by_tp: dict[str, dict[str, Any]] = {}
    for a in assessments:
        entry = by_tp.setdefault(a.timepoint, {"timepoint": a.timepoint,
                                               "reference": a.baseline})
        entry[a.criterion.value] = _assessment_object(a)
    if treatment_date is not None:
        for obj, tp in zip(tps, study.timepoints):
            obj["days_since_treatment"] = ((tp.date - treatment_date).days
                                           if tp.date is not None else None)
    out: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "format_version": REPORT_FORMAT_VERSION,
        "emlesion_version": __version__,
        "patient_id": None if deidentify else study.patient_id,
        **({"treatment_date": treatment_date.isoformat()} if treatment_date else {}),
        "timepoints": tps,
        "tracks": tracks_array(study),
        "assessments": list(by_tp.values()),
    }
    if provenance:
        steps = list(study.provenance)
        if study.tracking is not None:
            steps.extend(study.tracking.provenance)
        out["provenance"] = [s.to_dict() for s in steps]
        if study.tracking is not None:
            out["registrations"] = {k: r.to_dict()
                                    for k, r in study.tracking.registrations.items()}
    return out


def measure_dict(tp: Timepoint) -> dict[str, Any]:
    """The public ``emlesion measure`` JSON object of one timepoint (``measure.schema.json``).

    Keys: ``format`` (``"emlesion-measure"``), ``format_version``, ``emlesion_version``,
    ``source``, the :func:`timepoint_object` keys without ``label`` and
    ``days_since_baseline``, ``definitions`` (column -> definition with its source) and
    ``provenance``.
    """
    body = timepoint_object(tp, provenance=True)
    for key in ("label", "days_since_baseline"):
        body.pop(key, None)
    prov = body.pop("provenance")
    return {
        "format": MEASURE_FORMAT,
        "format_version": REPORT_FORMAT_VERSION,
        "emlesion_version": __version__,
        "source": tp.source,
        **body,
        "definitions": dict(tp.measurements.definitions),
        "provenance": prov,
    }
