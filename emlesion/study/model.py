"""The :class:`Timepoint` and :class:`Study` value objects of a longitudinal PET/CT study.

A :class:`Timepoint` is one PET/CT session taken through the whole pipeline (PET, CT, SUV and
SUL images, anatomy, liver and blood-pool reference statistics, lesion labels and their
measurements). A :class:`Study` is the ordered tuple of timepoints of one patient plus the
lesion tracks that link them; it builds the observations of :mod:`emlesion.response`, runs
the response criteria and holds one typed record per lesion and timepoint
(:attr:`Study.records`), of which the public documents are projections
(:func:`emlesion.report.report_dict`, schema ``emlesion/schemas/report.schema.json``).

Build them with :func:`emlesion.study.load_timepoint` and :func:`emlesion.study.load_study`.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from emlesion.anatomy import Anatomy, ReferenceRegionStats, RegionAssignment
from emlesion.errors import InconsistentStudyError, UnknownKeyError, format_message
from emlesion.io import LabelMap, Volume
from emlesion.measure import LesionMeasurement, LesionTable, WholeBodyBurden, whole_body_burden
from emlesion.provenance import ProvenanceStep, jsonable
from emlesion.response import (
    DEFAULT_CRITERIA,
    Assessment,
    Criterion,
    LesionObservation,
    ReferenceUptake,
    TimepointObservation,
    assess_all,
)
from emlesion.response.sites import SiteReading, SiteState
from emlesion.segment import Method, ThresholdRule, classify_threshold_rule
from emlesion.study.record import LESION_COLUMNS, RECORD_COLUMNS, SITE_COLUMNS, LesionRecord
from emlesion.track import TrackingResult, TrackState

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CSV_COLUMNS",
    "LESION_CSV_COLUMNS",
    "RESERVED_LABELS",
    "SITE_CSV_COLUMNS",
    "LesionSource",
    "ProgressCallback",
    "ReferenceStats",
    "StageEvent",
    "Study",
    "Timepoint",
]

#: Timepoint labels that would clash with the keys of a track object in report.json.
RESERVED_LABELS = frozenset({"id", "states", "fragments", "sites"})


class LesionSource(str, enum.Enum):
    """Where the lesion labels of a timepoint came from."""

    SEGMENTATION = "segmentation"
    """:func:`emlesion.segment.segment_lesions` (``method`` names the threshold rule)."""
    MASK = "mask"
    """A user mask (DICOM SEG, RTSTRUCT or NIfTI) loaded with :func:`emlesion.io.load_mask`."""


@dataclass(frozen=True)
class StageEvent:
    """Progress of one pipeline stage, sent to the ``progress`` callback of the builders.

    Parameters
    ----------
    stage : str
        Per timepoint ``"load"``, ``"suv"``, ``"anatomy"``, ``"lesions"``, ``"measure"``,
        ``"residual"``; study-wide ``"track"`` (registration and lesion matching),
        ``"re-track after residual search"`` (the matching repeated with the same
        registrations when the residual search added lesions), ``"sites"`` (the PET and CT
        readouts of every track's site), and, from
        :func:`~emlesion.study.output.write_all_outputs`, ``"report.html"`` and ``"dicom"``.
    timepoint : str, optional
        Timepoint label, ``None`` for study-wide stages.
    seconds : float, optional
        Wall time of the stage; ``None`` when the stage starts.
    """

    stage: str
    timepoint: str | None = None
    seconds: float | None = None

    @property
    def finished(self) -> bool:
        """True for the event sent when the stage ends."""
        return self.seconds is not None


ProgressCallback = Callable[[StageEvent], None]


@dataclass(frozen=True)
class ReferenceStats:
    """Uptake of a normal reference VOI in SUVbw and SUL.

    Parameters
    ----------
    region : str
        ``"liver"`` (PERCIST 3 cm sphere, right lobe) or ``"blood_pool"`` (1 x 2 cm aortic
        cylinder).
    suv_mean, suv_sd : float
        Mean and sample SD (ddof=1) of SUVbw in the VOI (g/mL).
    sul_mean, sul_sd : float, optional
        The same on the lean-body-mass (SUL) image; ``None`` when no SUL could be computed.
    n_voxels : int
        PET voxels whose centre lies in the VOI.
    centre_mm : tuple of float
        LPS centre (mm).
    radius_mm : float
        Sphere or cylinder radius (mm).
    method : str
        How the VOI was placed (the anatomy rule).
    suv_max, sul_max : float, optional
        Maximum in the VOI (Deauville/Lugano compare lesions with the reference maximum).

    References
    ----------
    .. [1] Wahl RL et al. From RECIST to PERCIST. J Nucl Med 2009;50 Suppl 1:122S-150S.
    """

    region: str
    suv_mean: float
    suv_sd: float
    sul_mean: float | None
    sul_sd: float | None
    n_voxels: int
    centre_mm: tuple[float, float, float]
    radius_mm: float
    method: str = ""
    suv_max: float | None = None
    sul_max: float | None = None

    def to_uptake(self) -> ReferenceUptake:
        """The :class:`emlesion.response.ReferenceUptake` of this VOI."""
        return ReferenceUptake(suv_mean=self.suv_mean, suv_sd=self.suv_sd, suv_max=self.suv_max,
                               sul_mean=self.sul_mean, sul_sd=self.sul_sd, sul_max=self.sul_max,
                               method=self.method)

    def suv_stats(self, units: str = "SUVbw") -> ReferenceRegionStats:
        """The SUVbw statistics as :func:`emlesion.segment.segment_lesions` takes them
        (``liver_reference=`` / ``blood_pool_reference=``), so they are not computed again.

        Parameters
        ----------
        units : str
            Units of the SUV image the statistics were computed on.
        """
        return ReferenceRegionStats(mean=self.suv_mean, sd=self.suv_sd, n_voxels=self.n_voxels,
                                    centre_mm=self.centre_mm, radius_mm=self.radius_mm,
                                    region=self.region, units=units)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (the ``liver`` / ``blood_pool`` objects of the JSON outputs)."""
        return {
            "suv_mean": jsonable(self.suv_mean),
            "suv_sd": jsonable(self.suv_sd),
            "sul_mean": jsonable(self.sul_mean),
            "sul_sd": jsonable(self.sul_sd),
            "suv_max": jsonable(self.suv_max),
            "sul_max": jsonable(self.sul_max),
            "n_voxels": int(self.n_voxels),
            "centre_mm": jsonable(self.centre_mm),
            "radius_mm": jsonable(self.radius_mm),
            "method": self.method,
        }

    def __repr__(self) -> str:
        sul = f", SULmean={self.sul_mean:.3f}" if self.sul_mean is not None else ""
        return (f"ReferenceStats({self.region}: SUVmean={self.suv_mean:.3f} "
                f"(SD {self.suv_sd:.3f}){sul}, {self.n_voxels} voxels)")


def _vec(value: Any) -> list[float] | None:
    return None if value is None else [float(v) for v in value]


@dataclass(frozen=True, eq=False, repr=False)
class Timepoint:
    """One PET/CT session taken through the emlesion pipeline.

    Parameters
    ----------
    label : str
        Unique name within the study (``"baseline"``, ``"month1"``, ...).
    date : datetime.date, optional
        StudyDate of the PET (SeriesDate when StudyDate is absent).
    pet : Volume
        PET in its stored ``Units``.
    ct : Volume or None
        CT of the same session (``None`` when the timepoint has no CT).
    suv : Volume
        SUVbw image on the PET grid.
    sul : Volume or None
        Lean-body-mass SUV (SUL, Janmahasatian by default) on the PET grid; ``None`` when
        PatientSize/PatientSex are missing (PERCIST then cannot be assessed in SUL).
    anatomy : Anatomy or None
        Organs and landmarks from the CT. Without CT: the PET-only anatomy (body and brain)
        when a brain was found in the field of view (it was then excluded from the lesion
        segmentation), else ``None``; ``ct is None`` tells the two apart.
    liver, blood_pool : ReferenceStats or None
        Reference uptake (SUVbw and SUL).
    lesions : LabelMap
        Lesion labels on the PET grid.
    measurements : LesionTable
        Measurements of every label of ``lesions``.
    regions : Mapping[int, RegionAssignment]
        Region and side of each label (absent for a label without anatomy).
    lesion_source : LesionSource
        Segmentation or user mask.
    method : str
        Segmentation method value (``"41%max"`` ...) or ``"mask"``.
    uptake_time_min : float, optional
        Injection-to-scan time (minutes): scan start (SeriesDate/SeriesTime) minus the
        injection time the SUV engine used.
    days_since_baseline : int, optional
        Set by :class:`Study` (0 for the baseline); ``None`` when a date is missing.
    source : str
        Folder(s) the timepoint was read from.
    provenance : tuple of ProvenanceStep
        Loading, SUV, anatomy, segmentation and measurement steps.
    threshold_rules : mapping of int to ThresholdRule, optional
        Per lesion label, the boundary rule that :func:`~emlesion.segment.segment_lesions`
        recorded (see :meth:`threshold_rule`).
    """

    label: str
    date: _dt.date | None
    pet: Volume
    ct: Volume | None
    suv: Volume
    sul: Volume | None
    anatomy: Anatomy | None
    liver: ReferenceStats | None
    blood_pool: ReferenceStats | None
    lesions: LabelMap
    measurements: LesionTable
    regions: Mapping[int, RegionAssignment] = field(default_factory=dict)
    lesion_source: LesionSource = LesionSource.SEGMENTATION
    method: str = ""
    uptake_time_min: float | None = None
    days_since_baseline: int | None = None
    threshold_rules: Mapping[int, ThresholdRule] = field(default_factory=dict)
    source: str = ""
    provenance: tuple[ProvenanceStep, ...] = ()

    def __post_init__(self) -> None:
        if not str(self.label).strip():
            raise InconsistentStudyError(format_message("a timepoint needs a non-empty label"))
        object.__setattr__(self, "lesion_source", LesionSource(self.lesion_source))
        object.__setattr__(self, "regions", {int(k): v for k, v in dict(self.regions).items()})
        object.__setattr__(self, "provenance", tuple(self.provenance))

    # ------------------------------------------------------------------ identity
    @property
    def patient_id(self) -> str:
        """PatientID of the PET series."""
        return self.pet.identity.patient_id

    @property
    def has_ct(self) -> bool:
        """True when the timepoint has a CT."""
        return self.ct is not None

    @property
    def sul_quantity(self) -> str | None:
        """``Volume.units`` of the SUL image (e.g. ``"SULjanma"``), or None."""
        return self.sul.units if self.sul is not None else None

    @property
    def scanner(self) -> str:
        """Manufacturer and model of the PET scanner."""
        ident = self.pet.identity
        return " ".join(v for v in (ident.manufacturer, ident.manufacturer_model_name) if v)

    @cached_property
    def burden(self) -> WholeBodyBurden:
        """Whole-body burden of this timepoint's lesions (total MTV and TLG, count, Dmax,
        SDmax; :func:`emlesion.measure.whole_body_burden`), with :attr:`method` as the
        threshold rule and the BSA from the PET's PatientWeight and PatientSize.

        Computed on first access and kept (the timepoint is immutable; a copy made with
        :func:`dataclasses.replace` computes its own)."""
        weight = height = None
        if self.pet.headers:
            ds = self.pet.headers[0]
            try:
                weight = float(ds.get("PatientWeight")) if ds.get("PatientWeight") else None
                height = float(ds.get("PatientSize")) if ds.get("PatientSize") else None
            except (TypeError, ValueError):
                weight = height = None
        rule = "mask" if self.lesion_source is LesionSource.MASK else (self.method or "unknown")
        return whole_body_burden(list(self.measurements), threshold_rule=rule,
                                 weight_kg=weight, height_m=height)

    # ------------------------------------------------------------------ lesions
    def measurement(self, label: int) -> LesionMeasurement:
        """The measurement of lesion ``label``."""
        return self.measurements.row(label)

    def sul_mean(self, label: int) -> float | None:
        """Mean SUL inside lesion ``label`` (``None`` without a SUL image).

        The ``sul_mean`` column of :attr:`measurements`, computed once with the other SUL
        metrics (kept as a method for compatibility)."""
        return self.measurement(label).sul_mean

    def threshold_rule(self, label: int) -> ThresholdRule:
        """The rule that placed the boundary of lesion ``label``.

        ``USER_MASK`` for a user mask; the rule recorded by
        :func:`~emlesion.segment.segment_lesions` (:attr:`threshold_rules`, e.g.
        ``CT_SOFT_TISSUE`` for a low-contrast lesion delineated on the CT); otherwise
        :func:`emlesion.segment.classify_threshold_rule` of the method, the lesion's SUVmax
        and the blood-pool SUVmean (SUVbw, the quantity and floor
        :func:`~emlesion.segment.segment_lesions` used; no floor without a blood-pool
        reference). ``BLOOD_POOL_FLOOR`` means an unreliable MTV; ``UNKNOWN`` when
        :attr:`method` is not a :class:`~emlesion.segment.Method` value.
        """
        if self.lesion_source is LesionSource.MASK:
            return ThresholdRule.USER_MASK
        if int(label) in self.threshold_rules:
            return self.threshold_rules[int(label)]
        if self.method not in {m.value for m in Method}:
            return ThresholdRule.UNKNOWN
        floor = self.blood_pool.suv_mean if self.blood_pool is not None else None
        return classify_threshold_rule(self.method, self.measurement(label).suv_max, floor)

    def record(self, label: int, *, track_id: str | None = None, state: str = "present",
               site: SiteReading | None = None,
               labels: Sequence[int] | None = None) -> LesionRecord:
        """The :class:`~emlesion.study.record.LesionRecord` of lesion ``label`` here
        (``labels``: all fragments of its track, ``label`` first; default ``(label,)``)."""
        return LesionRecord(
            timepoint=self.label, date=self.date, days_since_baseline=self.days_since_baseline,
            track_id=track_id, state=state,
            labels=tuple(int(v) for v in (labels if labels is not None else (label,))),
            measurement=self.measurement(label), assignment=self.regions.get(int(label)),
            threshold_rule=self.threshold_rule(label), site=site)

    def records(self) -> tuple[LesionRecord, ...]:
        """One record per segmented lesion, in label order (no track: a single timepoint)."""
        return tuple(self.record(lab) for lab in self.measurements.labels)

    def lesion_dict(self, m: LesionMeasurement) -> dict[str, Any]:
        """The public JSON object of one lesion (see ``emlesion/schemas/measure.schema.json``)."""
        return self.record(m.label).lesion_object()

    def lesion_dicts(self) -> list[dict[str, Any]]:
        """One public JSON object per lesion, in label order."""
        return [r.lesion_object() for r in self.records()]

    def __repr__(self) -> str:
        date = self.date.isoformat() if self.date else "no date"
        day = f", day {self.days_since_baseline}" if self.days_since_baseline is not None else ""
        liver = f", liver SUVmean {self.liver.suv_mean:.2f}" if self.liver else ""
        return (f"Timepoint({self.label!r}, {date}{day}, {len(self.measurements)} lesion(s), "
                f"method={self.method!r}, CT={'yes' if self.ct is not None else 'no'}{liver})")


def _untracked_id(label: int) -> str:
    """Track id of lesion ``label`` when the study is not tracked: ``"T<label>"``."""
    return f"T{int(label)}"


def _observation_of(tp: Timepoint, track_id: str, labels: Sequence[int]) -> LesionObservation:
    """Combine the fragments of one track at one timepoint into a LesionObservation.

    Uptake statistics take the hottest fragment, volumes and TLG are summed, CT diameters
    are summed over fragments (RECIST 1.1 sums the fragments of a split lesion) and the
    Lugano PPD is the sum of the fragments' PPDs (Cheson 2014).
    """
    rows = [tp.measurement(lab) for lab in labels]
    primary = rows[0]
    assign = tp.regions.get(primary.label)

    def best(values: Sequence[float | None]) -> float | None:
        vals = [float(v) for v in values if v is not None and np.isfinite(v)]
        return max(vals) if vals else None

    def total(values: Sequence[float | None]) -> float | None:
        vals = [float(v) for v in values if v is not None and np.isfinite(v)]
        return sum(vals) if len(vals) == len(values) and vals else None

    mtv = total([r.mtv_ml for r in rows])
    tlg = total([r.tlg for r in rows])
    suv_mean = tlg / mtv if tlg is not None and mtv else None
    sul_means = [r.sul_mean for r in rows]
    sul_mean: float | None = None
    if mtv:
        weighted = [v * r.mtv_ml for v, r in zip(sul_means, rows) if v is not None]
        sul_mean = sum(weighted) / mtv if len(weighted) == len(rows) else None
    has_ct = tp.has_ct
    # Lugano: a split lesion's PPD is the sum of the fragments' PPDs (not the product of
    # the summed diameters, which RECIST uses for its sum of LDs)
    ppd = total([None if r.ct_longest_axial_diameter_mm is None or r.ct_short_axis_mm is None
                 else r.ct_longest_axial_diameter_mm * r.ct_short_axis_mm for r in rows])
    return LesionObservation(
        track_id=track_id,
        label=primary.name,
        region=assign.region.value if assign is not None else "",
        suv_max=best([r.suv_max for r in rows]),
        suv_peak=best([r.suv_peak_global for r in rows]),
        suv_mean=suv_mean,
        sul_max=best([r.sul_max for r in rows]),
        sul_peak=best([r.sul_peak for r in rows]),
        sul_mean=sul_mean,
        mtv_ml=mtv,
        tlg_g=tlg,
        ld_mm=total([r.ct_longest_axial_diameter_mm for r in rows]) if has_ct else None,
        sa_mm=total([r.ct_short_axis_mm for r in rows]) if has_ct else None,
        ppd_mm2=ppd if has_ct else None,
    )


def _with_site_ct(obs: LesionObservation, reading: SiteReading | None) -> LesionObservation:
    """A segmented lesion's observation with the CT diameters of its site readout.

    The CT readout delineates the soft-tissue mass on the CT grid (RECIST/Lugano measure the
    CT); when it is missing (no site readouts, no CT) the PET mask's CT diameters stay.
    When the CT shows no soft tissue inside the PET lesion, the diameters stay too (the PET
    lesion is there; the CT readout's reason is in the site record).
    """
    if reading is None or reading.ct is None or not reading.ct.found or obs.ld_mm is None:
        return obs
    from dataclasses import replace as _replace

    ct = reading.ct
    return _replace(obs, ld_mm=ct.ld_mm, sa_mm=ct.sa_mm, ppd_mm2=ct.ppd_mm2,
                    deauville=reading.deauville)


@dataclass(frozen=True, eq=False, repr=False)
class Study:
    """The ordered timepoints of one patient and the lesion tracks that link them.

    Parameters
    ----------
    timepoints : tuple of Timepoint
        Baseline first, follow-ups in chronological order; ``days_since_baseline`` set.
    tracking : TrackingResult or None
        Lesion tracks (``None`` only for a single-timepoint study).
    patient_id : str
        PatientID shared by the timepoints (the baseline's when the check was overridden).
    provenance : tuple of ProvenanceStep
        Study-level steps (consistency checks, tracking, residual search, site readouts).
    sites : mapping
        ``{track_id: {timepoint_label: SiteReading}}``: every track read at its site at every
        timepoint from its first appearance, on PET and on CT (see
        :func:`emlesion.study.sites.read_sites`). Empty when the study was built without
        them; the response observations then fall back to the segmented lesions only.

    Notes
    -----
    The public JSON structure is produced by :func:`emlesion.report.report_dict`; its keys
    and units are a stable contract (``emlesion/schemas/report.schema.json``,
    ``format_version`` 1).
    """

    timepoints: tuple[Timepoint, ...]
    tracking: TrackingResult | None = None
    patient_id: str = ""
    provenance: tuple[ProvenanceStep, ...] = ()
    sites: Mapping[str, Mapping[str, SiteReading]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tps = tuple(self.timepoints)
        if not tps:
            raise InconsistentStudyError(format_message("a study needs at least one timepoint"))
        labels = [tp.label for tp in tps]
        if len(set(labels)) != len(labels):
            raise InconsistentStudyError(format_message(
                f"timepoint labels must be unique, got {labels}", fix="pass distinct --labels"))
        bad = sorted(set(labels) & RESERVED_LABELS)
        if bad:
            raise InconsistentStudyError(format_message(
                f"timepoint label(s) {bad} are reserved (keys of the track objects)",
                fix="choose other labels"))
        object.__setattr__(self, "timepoints", tps)
        object.__setattr__(self, "provenance", tuple(self.provenance))

    # ------------------------------------------------------------------ access
    @property
    def labels(self) -> tuple[str, ...]:
        """Timepoint labels in study order."""
        return tuple(tp.label for tp in self.timepoints)

    @property
    def baseline(self) -> Timepoint:
        """The first timepoint."""
        return self.timepoints[0]

    def timepoint(self, label: str) -> Timepoint:
        """The timepoint called ``label`` (KeyError when unknown)."""
        for tp in self.timepoints:
            if tp.label == label:
                return tp
        raise UnknownKeyError(format_message(f"no timepoint {label!r}",
                                             fix=f"use one of {self.labels}"))

    def __len__(self) -> int:
        return len(self.timepoints)

    def track_id_of(self, timepoint: str, label: int) -> str | None:
        """Track id of lesion ``label`` of ``timepoint`` (``None`` without tracking)."""
        if self.tracking is None:
            return _untracked_id(label) if len(self.timepoints) == 1 else None
        track = self.tracking.track_of(timepoint, label)
        return track.id if track is not None else None

    # ------------------------------------------------------------------ response
    def site(self, track_id: str, timepoint: str) -> SiteReading | None:
        """The :class:`~emlesion.response.SiteReading` of a track at a timepoint (or None)."""
        return self.sites.get(track_id, {}).get(timepoint)

    def _last_seen(self, track_id: str, before: int) -> tuple[str, str]:
        """Name and region of a track's lesion at its last detection before ``before``."""
        assert self.tracking is not None
        track = self.tracking.track(track_id)
        for tp in reversed(self.timepoints[:before]):
            p = track.point(tp.label)
            if p.state.detected and p.labels:
                assign = tp.regions.get(p.labels[0])
                return (tp.measurement(p.labels[0]).name,
                        assign.region.value if assign is not None else "")
        return "", ""

    def observations(self) -> tuple[TimepointObservation, ...]:
        """The :class:`emlesion.response.TimepointObservation` of every timepoint.

        Per track and timepoint, from the track's first appearance:

        * **segmented** (``present``/``new``/``reappeared``): a :class:`LesionObservation`
          with the lesion's PET measurements (fragments of a split combined: hottest uptake,
          summed MTV and TLG) and the CT diameters of its site readout (the soft-tissue
          mass on the CT: RECIST LD/SA and the Lugano PPD are CT measurements);
        * **residual uptake** (not segmented, Deauville >= 4 at the footprint): the site's
          SUVmax/SUVpeak/SULpeak and its CT diameters; the PET criteria see residual disease;
        * **metabolically resolved**: ``metabolically_resolved=True`` (the PET criteria
          count it as resolved) with the CT diameters of a residual mass, or
          ``resolved=True`` (0 mm) when the CT shows none;
        * **merged**: ``resolved=True`` (its measurement is carried by the other track);
        * **not evaluable**, or a site mapped through a failed registration: no observation
          (the criteria then say "not reported"/NE instead of using an unreliable number).

        Without site readouts (:attr:`sites` empty), a track not found again is
        ``resolved=True``. ``ld_mm``/``sa_mm`` are ``None`` without a CT (CT criteria NE).
        """
        out: list[TimepointObservation] = []
        for k, tp in enumerate(self.timepoints):
            lesions: list[LesionObservation] = []
            if self.tracking is not None:
                for track in self.tracking.tracks:
                    obs = self._track_observation(track.id, k)
                    if obs is not None:
                        lesions.append(obs)
            else:
                lesions = [_with_site_ct(_observation_of(tp, _untracked_id(lab), [lab]),
                                         self.site(_untracked_id(lab), tp.label))
                           for lab in tp.measurements.labels]
            ct_thickness = None
            if tp.ct is not None:
                thick = tp.ct.headers[0].get("SliceThickness", None) if tp.ct.headers else None
                try:
                    ct_thickness = float(thick) if thick not in (None, "") else None
                except (TypeError, ValueError):
                    ct_thickness = None
                if ct_thickness is None or ct_thickness <= 0:
                    ct_thickness = float(tp.ct.spacing_mm[2])
            out.append(TimepointObservation(
                label=tp.label,
                date=tp.date,
                lesions=tuple(lesions),
                liver=tp.liver.to_uptake() if tp.liver is not None else None,
                blood_pool=tp.blood_pool.to_uptake() if tp.blood_pool is not None else None,
                uptake_time_min=tp.uptake_time_min,
                has_pet=True,
                has_ct=tp.has_ct,
                ct_slice_thickness_mm=ct_thickness,
                scanner=tp.scanner or None,
            ))
        return tuple(out)

    def _track_observation(self, track_id: str, k: int) -> LesionObservation | None:
        assert self.tracking is not None
        tp = self.timepoints[k]
        point = self.tracking.track(track_id).point(tp.label)
        reading = self.site(track_id, tp.label)
        if point.state.detected:
            return _with_site_ct(_observation_of(tp, track_id, point.labels), reading)
        if point.state not in (TrackState.RESOLVED, TrackState.MERGED):
            return None  # not yet seen
        if point.state is TrackState.MERGED or not self.sites:
            return LesionObservation(track_id=track_id, resolved=True)
        if reading is None or not reading.usable:
            return None  # not evaluable / unreliable: not measured, never "resolved"
        name, region = self._last_seen(track_id, k)
        pet = reading.pet
        ct = reading.ct if tp.has_ct else None
        mass = ct is not None and ct.found
        common: dict[str, Any] = {
            "track_id": track_id, "label": name, "region": region,
            "deauville": reading.deauville,
            "ld_mm": (ct.ld_mm if mass else 0.0) if ct is not None else None,
            "sa_mm": (ct.sa_mm if mass else 0.0) if ct is not None else None,
            "ppd_mm2": (ct.ppd_mm2 if mass else 0.0) if ct is not None else None,
        }
        uptake: dict[str, Any] = {}
        if pet is not None:
            uptake = {"suv_max": pet.suv_max, "suv_peak": pet.suv_peak,
                      "sul_max": pet.sul_max, "sul_peak": pet.sul_peak}
        if reading.state is SiteState.RESIDUAL_UPTAKE:
            return LesionObservation(**common, **uptake)
        # metabolically resolved: a CT mass stays measured; no CT mass -> disappeared
        if ct is not None and not mass:
            # uptake that classify_site attributed to the tissue now at the site (bowel,
            # vessels) is not handed to the criteria as the lesion's
            own = reading.lesion_uptake
            return LesionObservation(track_id=track_id, label=name, region=region,
                                     deauville=reading.deauville if own else None,
                                     resolved=True, **(uptake if own else {}))
        return LesionObservation(**common, **uptake, metabolically_resolved=True)

    def assess(
        self,
        criteria: Sequence[str | Criterion] = DEFAULT_CRITERIA,
        *,
        options: Mapping[str | Criterion, Mapping[str, Any]] | None = None,
    ) -> list[Assessment]:
        """Assess every follow-up against the baseline with :func:`emlesion.response.assess_all`.

        Parameters
        ----------
        criteria : sequence of str
            ``"percist"``, ``"eortc"``, ``"recist"``, ``"lugano"`` (PET and CT calls),
            ``"lugano_pet"``, ``"lugano_ct"``.
        options : mapping, optional
            Per-criterion engine options, e.g. ``{"eortc": {"cycles": 1}}``.

        Returns
        -------
        list of Assessment
            By follow-up, then by criterion.
        """
        return assess_all(self.observations(), criteria, options=options)

    # ------------------------------------------------------------------ outputs
    # ------------------------------------------------------------------ outputs
    @cached_property
    def records(self) -> tuple[LesionRecord, ...]:
        """Every lesion record of the study, built once: one per track and timepoint.

        Timepoints in study order; within a timepoint, the tracks in their order (baseline
        tracks first), from each track's first appearance, whether or not a lesion was
        segmented there (``state`` from the site readout, else the track state); then any
        lesion no track owns (``state`` ``"untracked"``). A single-timepoint study has one
        record per lesion (track ``T<label>``).
        """
        out: list[LesionRecord] = []
        for tp in self.timepoints:
            if self.tracking is None:
                out += [tp.record(lab, track_id=_untracked_id(lab),
                                  site=self.site(_untracked_id(lab), tp.label))
                        for lab in tp.measurements.labels]
                continue
            seen: set[int] = set()
            for track in self.tracking.tracks:
                p = track.point(tp.label)
                reading = self.site(track.id, tp.label)
                if reading is None and not p.labels:
                    continue
                state = reading.state.value if reading is not None else p.state.value
                if p.labels:
                    out.append(tp.record(p.labels[0], track_id=track.id, state=state,
                                         site=reading, labels=p.labels))
                else:
                    out.append(LesionRecord(tp.label, tp.date, tp.days_since_baseline,
                                            track.id, state, (), site=reading))
                seen.update(p.labels)
            out += [tp.record(lab, state="untracked") for lab in tp.measurements.labels
                    if lab not in seen]
        return tuple(out)

    def lesions_rows(self) -> list[dict[str, Any]]:
        """One row per track and timepoint for ``lesions.csv`` (columns :data:`CSV_COLUMNS`):
        :meth:`LesionRecord.row` of every record of :attr:`records`."""
        return [r.row() for r in self.records]

    def lesions(self) -> pd.DataFrame:
        """:meth:`lesions_rows` as a :class:`pandas.DataFrame` (columns :data:`CSV_COLUMNS`).

        One row per lesion (track) per timepoint, with the same columns and values as
        ``lesions.csv``; missing values are ``None``/NaN.

        Examples
        --------
        >>> df = study.lesions()  # doctest: +SKIP
        >>> df.loc[df.timepoint == "month3", ["track_id", "state", "ct_ld_mm"]]  # doctest: +SKIP
        """
        import pandas as pd

        return pd.DataFrame(self.lesions_rows(), columns=list(CSV_COLUMNS))

    def assessments(
        self,
        criteria: Sequence[str | Criterion] = DEFAULT_CRITERIA,
        *,
        options: Mapping[str | Criterion, Mapping[str, Any]] | None = None,
    ) -> pd.DataFrame:
        """The response calls as a :class:`pandas.DataFrame`: one row per follow-up and criterion.

        Columns: ``timepoint``, ``reference``, ``criterion``, ``category``,
        ``category_description``, ``rule``, ``reasons`` (joined with " | "), ``warnings``.
        """
        import pandas as pd

        rows = [{"timepoint": a.timepoint, "reference": a.baseline,
                 "criterion": a.criterion.value, "category": a.category.value,
                 "category_description": a.category.description, "rule": a.rule,
                 "reasons": " | ".join(a.reasons), "warnings": " | ".join(a.warnings)}
                for a in self.assess(criteria, options=options)]
        return pd.DataFrame(rows, columns=["timepoint", "reference", "criterion", "category",
                                           "category_description", "rule", "reasons",
                                           "warnings"])

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{tp.label} ({tp.date.isoformat() if tp.date else '?'}, {len(tp.measurements)} les.)"
            for tp in self.timepoints)
        n = len(self.tracking.tracks) if self.tracking is not None else 0
        return f"Study({len(self.timepoints)} timepoints: {parts}; {n} track(s))"


#: Lesion columns of ``lesions.csv`` (the segmented lesion; empty where none was segmented).
LESION_CSV_COLUMNS: tuple[str, ...] = tuple(LESION_COLUMNS)
#: Site columns of ``lesions.csv`` (every track at every timepoint from its first appearance).
SITE_CSV_COLUMNS: tuple[str, ...] = tuple(SITE_COLUMNS)
#: Columns of ``lesions.csv``, in order: one row per track and timepoint
#: (:data:`emlesion.study.record.RECORD_COLUMNS`).
CSV_COLUMNS: tuple[str, ...] = tuple(RECORD_COLUMNS)
