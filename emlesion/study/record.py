"""One typed record per lesion (track) and timepoint, and its public projections.

A :class:`LesionRecord` is built once per tracked lesion per timepoint (from the track's first
appearance) by :attr:`emlesion.study.Study.records`, and once per segmented lesion by
:meth:`emlesion.study.Timepoint.records` (a single timepoint, no tracking). It holds:

* the segmented lesion, when there is one: its :class:`~emlesion.measure.LesionMeasurement`,
  its region/side (:class:`~emlesion.anatomy.RegionAssignment`) and the rule that placed its
  boundary (:class:`~emlesion.segment.ThresholdRule`);
* the site readout of the track at that timepoint (:class:`~emlesion.response.SiteReading`:
  state, PET and CT readouts, Deauville score), whether or not a lesion was segmented.

Every public form of a lesion is a projection of it, so that one quantity has one name
everywhere:

* :meth:`LesionRecord.lesion_object` -> the lesion object of ``report.json`` and of the
  ``emlesion measure`` JSON (``emlesion/schemas/measure.schema.json``);
* :meth:`LesionRecord.row` -> one row of ``lesions.csv``, of :meth:`Study.lesions` (a
  DataFrame) and, with the patient columns, of ``cohort_lesions.csv``: the columns are
  :data:`RECORD_COLUMNS`, in order;
* the response observations (:meth:`emlesion.study.Study.observations`).

The vocabulary is that of the JSON contracts (``format_version`` 1): ``suv_peak`` is the IBSI
global SUVpeak (``LesionMeasurement.suv_peak_global``), ``tlg`` is in g, the site's CT
diameters are ``ct_ld_mm``/``ct_sa_mm``. :data:`DEPRECATED_NAMES` maps the internal attribute
names that differ to the public key.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emlesion.anatomy import RegionAssignment
from emlesion.measure import LesionMeasurement
from emlesion.provenance import jsonable
from emlesion.response.sites import SiteReading
from emlesion.segment import ThresholdRule

__all__ = [
    "DEPRECATED_NAMES",
    "LESION_COLUMNS",
    "RECORD_COLUMNS",
    "SITE_COLUMNS",
    "LesionRecord",
]

#: Lesion columns (the segmented lesion; empty where none was segmented) -> value type.
LESION_COLUMNS: Mapping[str, str] = {
    "label": "int", "name": "str", "region": "str", "side": "str",
    "suv_max": "float", "suv_mean": "float", "suv_peak": "float",
    "sul_max": "float", "sul_peak": "float", "sul_mean": "float",
    "mtv_ml": "float", "tlg": "float", "n_voxels": "int",
    "threshold_rule": "str", "volume_reliable": "bool",
    "centroid_x_mm": "float", "centroid_y_mm": "float", "centroid_z_mm": "float",
    "extent_x_cm": "float", "extent_y_cm": "float", "extent_z_cm": "float",
    "longest_axial_diameter_mm": "float", "short_axis_mm": "float",
    "ct_longest_axial_diameter_mm": "float", "ct_short_axis_mm": "float", "hu_mean": "float",
}
#: Site columns (every track at every timepoint from its first appearance) -> value type.
SITE_COLUMNS: Mapping[str, str] = {
    "site_suv_max": "float", "site_suv_peak": "float", "site_sul_peak": "float",
    "deauville": "int", "site_voi_ml": "float",
    "ct_ld_mm": "float", "ct_sa_mm": "float", "ct_volume_ml": "float", "ct_hu_mean": "float",
    "site_reliable": "bool",
}
#: Every column of a record row, in order (``lesions.csv``, :meth:`Study.lesions`) -> type.
RECORD_COLUMNS: Mapping[str, str] = {
    "timepoint": "str", "date": "str", "days_since_baseline": "int", "track_id": "str",
    "state": "str", "fragments": "str",
    **LESION_COLUMNS, **SITE_COLUMNS,
}
#: Internal attribute name -> public key, where they differ (one vocabulary in the outputs).
DEPRECATED_NAMES: Mapping[str, str] = {
    "suv_peak_global": "suv_peak",
    "tlg_g": "tlg",
    "ld_mm": "ct_ld_mm",
    "sa_mm": "ct_sa_mm",
}


def _vec(value: Any) -> list[float] | None:
    return None if value is None else [float(v) for v in value]


@dataclass(frozen=True, repr=False)
class LesionRecord:
    """One lesion (track) at one timepoint: the segmented lesion, if any, and its site readout.

    Parameters
    ----------
    timepoint : str
        Timepoint label.
    date : datetime.date, optional
        Timepoint date.
    days_since_baseline : int, optional
        Days since the baseline scan.
    track_id : str, optional
        Track id (``None`` for a lesion no track owns).
    state : str
        The site state (``present``, ``new``, ``residual uptake``, ``metabolically
        resolved``, ``merged``, ``not evaluable``), else the track state, else
        ``"present"`` for a lesion of a single timepoint.
    labels : tuple of int
        Lesion labels of the track here (the fragments of a split; empty when none was
        segmented).
    measurement : LesionMeasurement, optional
        The segmented (primary) lesion's measurement.
    assignment : RegionAssignment, optional
        Its region and side (``None`` without CT anatomy).
    threshold_rule : ThresholdRule, optional
        What placed its boundary.
    site : SiteReading, optional
        The site readout (PET, CT, Deauville) of the track at this timepoint.
    """

    timepoint: str
    date: _dt.date | None
    days_since_baseline: int | None
    track_id: str | None
    state: str
    labels: tuple[int, ...] = ()
    measurement: LesionMeasurement | None = None
    assignment: RegionAssignment | None = None
    threshold_rule: ThresholdRule | None = None
    site: SiteReading | None = None

    # ------------------------------------------------------------------ access
    @property
    def segmented(self) -> bool:
        """True when a lesion was segmented (``measurement`` is set)."""
        return self.measurement is not None

    @property
    def label(self) -> int | None:
        """The (primary) lesion label, or ``None``."""
        return int(self.measurement.label) if self.measurement is not None else None

    @property
    def volume_reliable(self) -> bool | None:
        """False only when the boundary is the blood-pool floor (``None`` when not segmented)."""
        return self.threshold_rule.volume_reliable if self.threshold_rule is not None else None

    # ------------------------------------------------------------------ projections
    def lesion_object(self) -> dict[str, Any]:
        """The public lesion object (``measure.schema.json``; plus ``track_id`` in reports).

        Raises
        ------
        InconsistentStudyError
            When no lesion was segmented (a site without a lesion has no lesion object; its
            readout is in ``tracks[].sites``).
        """
        m = self.measurement
        if m is None:
            from emlesion.errors import InconsistentStudyError, format_message

            raise InconsistentStudyError(format_message(
                f"track {self.track_id} has no segmented lesion at {self.timepoint}",
                fix="read its site readout (LesionRecord.site) instead"))
        a = self.assignment
        rule = self.threshold_rule or ThresholdRule.UNKNOWN
        return {
            "label": int(m.label),
            "name": m.name,
            "region": a.region.value if a is not None else None,
            "side": a.side.value if a is not None else None,
            "region_rule": a.rule if a is not None else None,
            "n_voxels": int(m.n_voxels),
            "suv_max": jsonable(m.suv_max),
            "suv_mean": jsonable(m.suv_mean),
            "suv_peak": jsonable(m.suv_peak_global),
            "sul_max": jsonable(m.sul_max),
            "sul_peak": jsonable(m.sul_peak),
            "sul_mean": jsonable(m.sul_mean),
            "mtv_ml": jsonable(m.mtv_ml),
            "tlg": jsonable(m.tlg),
            "threshold_rule": rule.value,
            "volume_reliable": rule.volume_reliable,
            "centroid_mm": _vec(m.centroid_mm),
            "extent_cm": _vec(m.extent_cm),
            "longest_axial_diameter_mm": jsonable(m.longest_axial_diameter_mm),
            "short_axis_mm": jsonable(m.short_axis_mm),
            "ct_longest_axial_diameter_mm": jsonable(m.ct_longest_axial_diameter_mm),
            "ct_short_axis_mm": jsonable(m.ct_short_axis_mm),
            "hu_mean": jsonable(m.hu_mean),
        }

    def row(self) -> dict[str, Any]:
        """One flat row with the keys of :data:`RECORD_COLUMNS` (``None`` = not measured)."""
        out: dict[str, Any] = dict.fromkeys(RECORD_COLUMNS)
        out.update({
            "timepoint": self.timepoint,
            "date": self.date.isoformat() if self.date is not None else None,
            "days_since_baseline": self.days_since_baseline,
            "track_id": self.track_id,
            "state": self.state,
            "fragments": ";".join(str(v) for v in self.labels) or None,
        })
        if self.measurement is not None:
            les = self.lesion_object()
            for key in LESION_COLUMNS:
                if key.startswith(("centroid_", "extent_")):
                    base = "centroid_mm" if key.startswith("centroid_") else "extent_cm"
                    vec = les[base]
                    out[key] = vec["xyz".index(key.split("_")[1])] if vec is not None else None
                else:
                    out[key] = les[key]
        s = self.site
        if s is not None:
            out["site_reliable"] = s.reliable
            if s.pet is not None:
                out.update({"site_suv_max": s.pet.suv_max, "site_suv_peak": s.pet.suv_peak,
                            "site_sul_peak": s.pet.sul_peak, "deauville": s.deauville,
                            "site_voi_ml": s.pet.voi_ml})
            if s.ct is not None:
                out.update({"ct_ld_mm": s.ct.ld_mm, "ct_sa_mm": s.ct.sa_mm,
                            "ct_volume_ml": s.ct.volume_ml, "ct_hu_mean": s.ct.hu_mean})
        return out

    def __repr__(self) -> str:
        what = (f"label {self.label}, SUVmax {self.measurement.suv_max:.2f}"
                if self.measurement is not None else "no segmented lesion")
        site = f"; {self.site!r}" if self.site is not None else ""
        return (f"LesionRecord({self.track_id or '-'}@{self.timepoint}: {self.state}, "
                f"{what}{site})")
