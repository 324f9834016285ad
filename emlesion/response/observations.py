"""Inputs of the response engines: per-lesion and per-timepoint observations.

The engines of :mod:`emlesion.response` never look at images. They read the
numbers produced upstream (:mod:`emlesion.measure`, :mod:`emlesion.track`) from the
frozen value objects defined here:

* :class:`LesionObservation` — one tracked lesion at one timepoint (PET uptake,
  CT diameters, flags for "resolved" and "too small to measure");
* :class:`ReferenceUptake` — uptake of a normal reference region (liver, blood pool);
* :class:`TimepointObservation` — one scan date with its lesions and references.

``None`` always means *not measured*; it is never read as zero.

Lesion identity across timepoints is given by ``track_id`` (tracking happens in
:mod:`emlesion.track`). A lesion whose ``track_id`` is absent at baseline is *new*.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from emlesion.errors import ResponseError, format_message
from emlesion.provenance import jsonable

__all__ = [
    "LesionObservation",
    "ReferenceUptake",
    "TimepointObservation",
    "UptakeMetric",
]


class UptakeMetric(str, enum.Enum):
    """Lesion uptake statistic an engine compares (PERCIST/QIBA spelling)."""

    SUVMAX = "SUVmax"
    SUVPEAK = "SUVpeak"
    SUVMEAN = "SUVmean"
    SULMAX = "SULmax"
    SULPEAK = "SULpeak"
    SULMEAN = "SULmean"

    @classmethod
    def coerce(cls, value: str | UptakeMetric) -> UptakeMetric:
        """Accept an enum member, its value (``"SULpeak"``) or field name (``"sul_peak"``)."""
        if isinstance(value, cls):
            return value
        text = str(value).strip()
        for member in cls:
            if text.lower() in (member.value.lower(), member.field_name, member.name.lower()):
                return member
        raise ResponseError(
            format_message(
                f"unknown uptake metric {value!r}",
                fix="use one of " + ", ".join(m.value for m in cls),
            )
        )

    @property
    def field_name(self) -> str:
        """Attribute of :class:`LesionObservation` holding this metric (``"sul_peak"``)."""
        return f"{self.value[:3].lower()}_{self.value[3:].lower()}"

    @property
    def normalisation(self) -> str:
        """``"SUV"`` (body weight) or ``"SUL"`` (lean body mass)."""
        return self.value[:3]

    @property
    def statistic(self) -> str:
        """``"max"``, ``"peak"`` or ``"mean"``."""
        return self.value[3:]


def _check_number(owner: str, name: str, value: Any, *, allow_negative: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ResponseError(
                format_message(f"{owner}: {name} must be a number or None, got {value!r}")
            ) from None
    if not math.isfinite(float(value)):
        raise ResponseError(
            format_message(f"{owner}: {name} is not finite ({value!r})",
                           fix="pass None for a value that was not measured")
        )
    if not allow_negative and float(value) < 0:
        raise ResponseError(format_message(f"{owner}: {name} is negative ({value!r})"))


def _coerce_floats(obj: Any, names: Iterable[str], owner: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _check_number(owner, name, value)
        if value is not None:
            object.__setattr__(obj, name, float(value))


@dataclass(frozen=True)
class LesionObservation:
    """One tracked lesion at one timepoint.

    Parameters
    ----------
    track_id : str
        Identity of the lesion across timepoints (from :mod:`emlesion.track`).
    label : str
        Human name, e.g. ``"right retroperitoneal mass"``.
    region : str
        Organ or body region, used for the "at most 2 per organ" rules. All lymph nodes
        count as one organ whatever ``region`` says (EORTC RECIST FAQ).
    is_lymph_node : bool
        The lesion is a lymph node (RECIST short-axis rules, Lugano nodal rules).
    suv_max, suv_peak, suv_mean : float, optional
        Body-weight SUV statistics (g/mL).
    sul_max, sul_peak, sul_mean : float, optional
        Lean-body-mass SUV statistics (SUL).
    mtv_ml : float, optional
        Metabolic tumour volume (mL).
    tlg_g : float, optional
        Total lesion glycolysis (g).
    ld_mm : float, optional
        Longest axial diameter on CT (mm), the RECIST LD and Lugano LDi.
    sa_mm : float, optional
        Short axis perpendicular to ``ld_mm`` on the same slice (mm), RECIST nodal SA
        and Lugano SDi.
    ppd_mm2 : float, optional
        Lugano product of perpendicular diameters (mm²) when it is not ``ld_mm x sa_mm``:
        a lesion split into fragments has the sum of the fragments' PPDs (Cheson 2014),
        while RECIST adds their diameters. ``None``: ``ld_mm x sa_mm``.
    resolved : bool
        The lesion was looked for and has disappeared (no focal uptake above
        background on PET; not visible on CT). RECIST records 0 mm for a vanished
        non-nodal lesion and Lugano 0 x 0 mm; a node keeps its ``sa_mm`` when given.
    too_small : bool
        CT: present but too small to measure; RECIST records 5 mm and Lugano 5 x 5 mm.
    metabolically_resolved : bool
        PET only: the lesion's site was read and its uptake is no longer focal disease
        (Deauville 1-3, see :func:`emlesion.response.classify_site`), while the CT may still
        show a residual mass, measured by ``ld_mm``/``sa_mm``. The PET engines treat it as
        resolved (:attr:`pet_resolved`); the CT engines read the diameters. The uptake values,
        when given, are those of the site and are reported, not compared.
    deauville : int, optional
        Deauville score of the site when it was computed upstream (site readouts); the Lugano
        PET engine recomputes it from the uptake values and its references otherwise.

    References
    ----------
    .. [1] Eisenhauer EA et al. New response evaluation criteria in solid tumours:
       revised RECIST guideline (version 1.1). Eur J Cancer 2009;45:228-247.
    .. [2] EORTC RECIST questions and clarifications,
       https://www.eortc.be/Recist/questions_clarifications.html
    .. [3] Cheson BD et al. Recommendations for initial evaluation, staging, and
       response assessment of Hodgkin and non-Hodgkin lymphoma: the Lugano
       classification. J Clin Oncol 2014;32:3059-3068.
    """

    track_id: str
    label: str = ""
    region: str = ""
    is_lymph_node: bool = False
    suv_max: float | None = None
    suv_peak: float | None = None
    suv_mean: float | None = None
    sul_max: float | None = None
    sul_peak: float | None = None
    sul_mean: float | None = None
    mtv_ml: float | None = None
    tlg_g: float | None = None
    ld_mm: float | None = None
    sa_mm: float | None = None
    ppd_mm2: float | None = None
    resolved: bool = False
    too_small: bool = False
    metabolically_resolved: bool = False
    deauville: int | None = None

    _NUMERIC = ("suv_max", "suv_peak", "suv_mean", "sul_max", "sul_peak", "sul_mean",
                "mtv_ml", "tlg_g", "ld_mm", "sa_mm", "ppd_mm2")

    def __post_init__(self) -> None:
        if not str(self.track_id).strip():
            raise ResponseError(format_message("a LesionObservation needs a non-empty track_id"))
        object.__setattr__(self, "track_id", str(self.track_id))
        _coerce_floats(self, self._NUMERIC, f"lesion {self.track_id}")
        if self.deauville is not None and (isinstance(self.deauville, bool)
                                           or int(self.deauville) not in range(1, 6)):
            raise ResponseError(format_message(
                f"lesion {self.track_id}: deauville must be 1 to 5, got {self.deauville!r}"))
        if self.resolved and self.too_small:
            raise ResponseError(
                format_message(f"lesion {self.track_id} cannot be both resolved and too_small")
            )

    @property
    def pet_resolved(self) -> bool:
        """True when PET shows no focal disease: ``resolved`` or ``metabolically_resolved``."""
        return self.resolved or self.metabolically_resolved

    @property
    def name(self) -> str:
        """``label`` when given, else ``track_id``."""
        return self.label or self.track_id

    @property
    def organ_key(self) -> str:
        """Key for the per-organ limits: ``"lymph nodes"`` for any node, else the region.

        A lesion without a region is its own organ.
        """
        if self.is_lymph_node:
            return "lymph nodes"
        return self.region.strip().lower() or f"<no region: {self.track_id}>"

    def uptake(self, metric: str | UptakeMetric) -> float | None:
        """The value of ``metric`` (``None`` when not measured)."""
        value: float | None = getattr(self, UptakeMetric.coerce(metric).field_name)
        return value

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class ReferenceUptake:
    """Uptake statistics of a normal reference region.

    Parameters
    ----------
    suv_mean, suv_sd, suv_max : float, optional
        Body-weight SUV mean, standard deviation and maximum in the region.
    sul_mean, sul_sd, sul_max : float, optional
        The same in SUL units.
    method : str
        How the region was drawn, e.g. ``"3 cm sphere, right liver lobe"`` (PERCIST) or
        ``"1 x 2 cm cylinder, descending thoracic aorta"`` (PERCIST blood pool).

    References
    ----------
    .. [1] Wahl RL, Jacene H, Kasamon Y, Lodge MA. From RECIST to PERCIST. J Nucl Med
       2009;50 Suppl 1:122S-150S.
    """

    suv_mean: float | None = None
    suv_sd: float | None = None
    suv_max: float | None = None
    sul_mean: float | None = None
    sul_sd: float | None = None
    sul_max: float | None = None
    method: str = ""

    def __post_init__(self) -> None:
        _coerce_floats(self, ("suv_mean", "suv_sd", "suv_max", "sul_mean", "sul_sd", "sul_max"),
                       "reference region")

    def statistic(self, normalisation: str, statistic: str) -> float | None:
        """Value of ``statistic`` (``"mean"``, ``"sd"``, ``"max"``) in ``"SUV"`` or ``"SUL"``."""
        norm = normalisation.strip().lower()
        stat = statistic.strip().lower()
        if norm not in ("suv", "sul") or stat not in ("mean", "sd", "max"):
            raise ResponseError(
                format_message(f"no reference statistic {normalisation!r}/{statistic!r}",
                               fix="use SUV|SUL and mean|sd|max")
            )
        value: float | None = getattr(self, f"{norm}_{stat}")
        return value

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class TimepointObservation:
    """All measurements of one scan date.

    Parameters
    ----------
    label : str
        Unique name of the timepoint, e.g. ``"T0 baseline"``, ``"T1 +1 month"``.
    date : datetime.date, optional
        Scan date; :func:`emlesion.response.assess_all` checks the order.
    lesions : tuple of LesionObservation
        Lesions observed (or looked for) at this timepoint; ``track_id`` unique.
    liver : ReferenceUptake, optional
        Normal liver (PERCIST: 3 cm sphere in the right lobe).
    blood_pool : ReferenceUptake, optional
        Blood pool (PERCIST: descending thoracic aorta; Deauville: mediastinum).
    uptake_time_min : float, optional
        Injection-to-scan time (min).
    has_pet, has_ct : bool
        Which modalities exist at this timepoint. A criterion whose modality is missing
        returns category NE with the reason.
    ct_slice_thickness_mm : float, optional
        CT slice thickness; RECIST raises the 10 mm measurability limit to twice the
        slice thickness when it exceeds 5 mm.
    scanner : str, optional
        Scanner / reconstruction identifier; PERCIST warns when it changes.
    """

    label: str
    date: _dt.date | None = None
    lesions: tuple[LesionObservation, ...] = ()
    liver: ReferenceUptake | None = None
    blood_pool: ReferenceUptake | None = None
    uptake_time_min: float | None = None
    has_pet: bool = True
    has_ct: bool = True
    ct_slice_thickness_mm: float | None = None
    scanner: str | None = None
    _by_id: dict[str, LesionObservation] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not str(self.label).strip():
            raise ResponseError(format_message("a TimepointObservation needs a non-empty label"))
        lesions = tuple(self.lesions)
        for lesion in lesions:
            if not isinstance(lesion, LesionObservation):
                raise ResponseError(
                    format_message(f"timepoint {self.label}: lesions must be LesionObservation, "
                                   f"got {type(lesion).__name__}")
                )
        by_id: dict[str, LesionObservation] = {}
        for lesion in lesions:
            if lesion.track_id in by_id:
                raise ResponseError(
                    format_message(f"timepoint {self.label}: track_id {lesion.track_id!r} "
                                   "appears twice", fix="merge or relabel the lesions")
                )
            by_id[lesion.track_id] = lesion
        object.__setattr__(self, "lesions", lesions)
        object.__setattr__(self, "_by_id", by_id)
        _coerce_floats(self, ("uptake_time_min", "ct_slice_thickness_mm"),
                       f"timepoint {self.label}")

    @property
    def track_ids(self) -> frozenset[str]:
        """The ``track_id`` of every lesion at this timepoint."""
        return frozenset(self._by_id)

    def lesion(self, track_id: str) -> LesionObservation | None:
        """The lesion with ``track_id``, or ``None`` when it was not reported."""
        return self._by_id.get(track_id)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            f.name: jsonable(getattr(self, f.name)) for f in fields(self) if f.name != "_by_id"
        }
