"""Per-slice SUV factors from PET headers, vendor-correct, with the rule that set them.

:func:`compute_suv_factors` turns the headers of a PET series (a
:class:`~emlesion.io.volume.Volume` or a plain sequence of pydicom Datasets, one per
slice) into one factor per slice: multiplying slice ``k`` of the *rescaled* image
(``RescaleSlope·SV + RescaleIntercept``, in the stored ``Units``) by ``factors[k]`` gives
the requested SUV. The result, :class:`SUVFactors`, records every input, the rule that
fired and every warning, and is JSON-serialisable.

Decision procedure (QIBA vendor-neutral pseudo-code [1]_, extended as in the IBSI SUV
manual [2]_):

* ``Units`` BQML: ``SUVbw = A · W[g] / D_ref``; ``D_ref`` depends on DecayCorrection:
  START decays the dose to the scan reference time, ADMIN uses the injected dose,
  NONE decays to each slice's acquisition start and divides by the frame-average
  factor ``(1 − e^(−λT)) / (λT)``.
* CNTS (Philips): the private SUV scale factor (7053,xx00) gives SUVbw directly; else the
  activity concentration scale factor (7053,xx09) gives Bq/mL, continued as BQML.
* GML: already an SUV of ``SUVType``; converted back to SUVbw through that body size.
* CM2ML: SUVbsa, converted back to SUVbw through the DuBois body surface area.
* any other unit (CPS, PROPCPS, PROPCNTS, 1CM ...) is rejected.

The SUVbw is then re-normalised to the requested body size (lean body mass, BSA, IBW).

References
----------
.. [1] D. Clunie, QIBA "SUV vendor-neutral pseudo-code" (2018-06-26),
   https://qibawiki.rsna.org/images/8/86/SUV_vendorneutral_pseudocode_20180626_DAC.pdf.
.. [2] Vácha, Hofheinz, Braune, Löck, Zwanenburg, "Comprehensive Manual for SUV
   Computation and Digital Reference Objects" (IBSI),
   https://oncoray.github.io/suv_computation/suv.html.
.. [3] DICOM PS3.3 C.8.9.4.1.5 (Frame Reference Time; average-count time ``T_ave``).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from emlesion.errors import (
    DicomQuirkWarning,
    InvalidAttributeError,
    InvalidParameterError,
    MissingAttributeError,
    SUVError,
    SUVWarning,
    UnsupportedDataError,
    deferred_warnings,
    emit_warnings,
    format_message,
    warn_external,
)
from emlesion.io.dicom import header_text
from emlesion.provenance import jsonable, record_warnings
from emlesion.suv import bodysize
from emlesion.suv._dicom import (
    HALF_LIFE_S_BY_NUCLIDE,
    attr,
    get_float,
    half_life_from_code,
    private_float,
    private_value,
)
from emlesion.suv.enums import (
    DecayCorrection,
    Normalization,
    PETUnits,
    ReferenceTimeMethod,
    SUVType,
)
from emlesion.suv.timing import (
    combine_date_time,
    dt_utc_offset,
    parse_dt,
    parse_tm,
    parse_utc_offset,
)

if TYPE_CHECKING:
    from emlesion.io.volume import Volume

__all__ = [
    "DOSE_MBQ_THRESHOLD",
    "DOSE_RANGE_BQ",
    "HALF_LIFE_RANGE_S",
    "HALF_LIFE_RTOL",
    "MAX_ELAPSED_HALF_LIVES",
    "MAX_FRAME_TIME_MS",
    "REFERENCE_TIME_TOLERANCE_S",
    "WEIGHT_RANGE_KG",
    "ReferenceTimeRule",
    "SUVFactors",
    "compute_suv_factors",
    "frame_average_time_s",
    "renormalize_suv_factors",
]

#: Doses below this value (Bq) are taken to be MBq entered by mistake (IBSI Fig. 2:
#: FDG doses cluster near 4e2 and 4e8).
DOSE_MBQ_THRESHOLD: float = 1e5
#: Weights above this value (kg) are taken to be grams.
WEIGHT_G_THRESHOLD: float = 1000.0
#: Heights above this value (m) are taken to be centimetres.
HEIGHT_CM_THRESHOLD: float = 3.0
#: QIBA and frame-based reference times further apart than this (s) raise an SUVWarning.
REFERENCE_TIME_TOLERANCE_S: float = 60.0

#: Accepted PatientWeight after the grams correction, kg. A preterm newborn weighs from
#: about 0.4 kg; the heaviest documented people weighed about 600-635 kg. Outside this
#: range the value is a unit or entry mistake, and the SUV (proportional to it) would be
#: meaningless.
WEIGHT_RANGE_KG: tuple[float, float] = (0.3, 700.0)
#: Accepted injected activity after the MBq correction, Bq. Diagnostic PET activities are
#: about 14 MBq (EANM paediatric minimum for FDG) to 2.2 GBq (Rb-82 cardiac rest/stress);
#: the range is 14x below and 9x above that, so only a unit or entry mistake is refused.
DOSE_RANGE_BQ: tuple[float, float] = (1e6, 2e10)
#: Accepted RadionuclideHalfLife when no known nuclide code is given, s: from below the
#: shortest PET nuclide in use (Rb-82, 75 s) to above the longest (Ge-68 phantoms,
#: 2.34e7 s; domain reference 1.6).
HALF_LIFE_RANGE_S: tuple[float, float] = (60.0, 3e7)
#: Largest relative difference between RadionuclideHalfLife and the half-life of the
#: nuclide named by RadionuclideCodeSequence. Vendors round differently (F-18: 6586,
#: 6586.2, 6588 s; domain reference 1.6, IBSI Table 10): 0.03 %; 2 % is far above that and
#: far below any other nuclide or unit.
HALF_LIFE_RTOL: float = 0.02
#: Largest accepted time from injection to the scan reference time, in half-lives. After
#: 10 half-lives less than 0.1 % of the activity is left, too little for a PET image; a
#: longer time means a wrong date, time or half-life, and the decay correction (2**10 and
#: beyond) would multiply the SUVs by that error.
MAX_ELAPSED_HALF_LIVES: float = 10.0

#: Largest accepted FrameReferenceTime and ActualFrameDuration, ms (one day): no PET frame
#: or dynamic acquisition lasts that long; larger values are corrupt and would move the
#: reference time by years.
MAX_FRAME_TIME_MS: float = 86_400_000.0

PHILIPS_CREATOR = "Philips PET Private Group"
GE_CREATOR = "GEMS_PETD_01"


class ReferenceTimeRule(str, Enum):
    """Which rule set the scan reference time (DecayCorrection START)."""

    SERIES = "SeriesDateTime (QIBA step 1)"
    GE_PRIVATE = "GE private scan datetime (QIBA step 2)"
    FRAME = "frame back-computation (QIBA step 3)"
    EARLIEST_ACQUISITION = "earliest acquisition datetime (QIBA step 4)"
    FRAME_OPTION_B = "frame back-computation (IBSI option B)"


def frame_average_time_s(duration_s: float, half_life_s: float) -> float:
    """Time after the frame start at which the decaying activity equals its frame average.

    ``T_ave = (1/λ) · ln(λT / (1 − e^(−λT)))`` with ``λ = ln 2 / T½`` [1]_.

    Parameters
    ----------
    duration_s : float
        Frame duration T (s), > 0.
    half_life_s : float
        Half-life (s), > 0.

    Returns
    -------
    float
        ``T_ave`` in seconds, slightly less than ``T/2``.

    References
    ----------
    .. [1] DICOM PS3.3 C.8.9.4.1.5, example 2; QIBA SUV pseudo-code.

    Examples
    --------
    >>> round(frame_average_time_s(300.0, 6586.2), 2)  # a 5 min F-18 frame
    149.61
    """
    lam = math.log(2.0) / half_life_s
    x = lam * duration_s
    return math.log(x / -math.expm1(-x)) / lam


@dataclass(frozen=True)
class SUVFactors:
    """Per-slice SUV factors and the provenance of every number in them.

    ``SUV[k] = rescaled[k] · factors[k]``, where ``rescaled[k]`` is slice ``k`` after its own
    ``RescaleSlope``/``RescaleIntercept`` (the stored ``Units``).

    Attributes
    ----------
    normalization : Normalization
        Body-size normalisation of the result.
    quantity : str
        Name of the result, e.g. ``"SUVbw"``, ``"SULjanma"`` (the ``Volume.units`` value).
    factors : tuple of float
        One factor per slice, in the order of the input.
    rule : str
        The conversion branch and reference-time rule that fired.
    units : str
        Stored PET ``Units``.
    decay_correction : str
        Stored ``DecayCorrection``.
    suv_type : str
        Stored ``SUVType`` (GML / CM2ML; empty otherwise).
    reference_time_rule : ReferenceTimeRule or None
        Rule that set the scan reference time (START only).
    reference_time : datetime or None
        Time the dose was decayed to (START), or None.
    reference_time_frame : datetime or None
        Frame-based reference time (IBSI option B) when computable (START only).
    injection_time : datetime or None
        Injection date-time used (START and NONE).
    injection_time_source : str
        Attribute and rule that gave the injection time.
    elapsed_s : float or None
        ``reference_time − injection_time`` in seconds (START), 0 for ADMIN.
    injected_dose_bq, decayed_dose_bq : float or None
        Radionuclide total dose (after unit sanity) and the dose at the reference time.
    slice_decayed_dose_bq : tuple of float
        DecayCorrection NONE: per-slice effective dose (decay and frame average).
    half_life_s : float or None
        Half-life used.
    weight_kg, height_m : float or None
        Patient weight and height used (after unit sanity).
    sex : str
        PatientSex used for sex-specific formulas.
    body_size : float or None
        Normalising body size of the result (g, or cm² for BSA).
    body_size_unit : str
        ``"g"`` or ``"cm2"``.
    rescale_slopes : tuple of float
        Per-slice RescaleSlope (informative; ``factors`` apply to rescaled values).
    series : str
        SeriesInstanceUID.
    warnings : tuple of str
        Every warning emitted while computing.
    inputs : Mapping[str, Any]
        Raw header values that were used.
    """

    normalization: Normalization
    quantity: str
    factors: tuple[float, ...]
    rule: str
    units: str
    decay_correction: str
    suv_type: str = ""
    reference_time_rule: ReferenceTimeRule | None = None
    reference_time: _dt.datetime | None = None
    reference_time_frame: _dt.datetime | None = None
    injection_time: _dt.datetime | None = None
    injection_time_source: str = ""
    elapsed_s: float | None = None
    injected_dose_bq: float | None = None
    decayed_dose_bq: float | None = None
    slice_decayed_dose_bq: tuple[float, ...] = ()
    half_life_s: float | None = None
    weight_kg: float | None = None
    height_m: float | None = None
    sex: str = ""
    body_size: float | None = None
    body_size_unit: str = "g"
    rescale_slopes: tuple[float, ...] = ()
    series: str = ""
    warnings: tuple[str, ...] = ()
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def factor(self) -> float | None:
        """The single factor when every slice has the same one, else None."""
        if not self.factors:
            return None
        first = self.factors[0]
        return first if all(f == first for f in self.factors) else None

    @property
    def raw_factors(self) -> tuple[float, ...]:
        """Per-slice factors for *stored* pixel values: ``RescaleSlope[k] · factors[k]``
        (valid when every RescaleIntercept is 0)."""
        if not self.rescale_slopes:
            return self.factors
        return tuple(m * f for m, f in zip(self.rescale_slopes, self.factors))

    @property
    def reference_time_difference_s(self) -> float | None:
        """``reference_time − reference_time_frame`` in seconds, when both exist."""
        if self.reference_time is None or self.reference_time_frame is None:
            return None
        return (self.reference_time - self.reference_time_frame).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (datetimes as ISO strings)."""
        return {
            "normalization": self.normalization.value,
            "quantity": self.quantity,
            "quantity_unit": self.normalization.quantity_unit,
            "factor": self.factor if self.factor is not None else list(self.factors),
            "factors": list(self.factors),
            "rule": self.rule,
            "units": self.units,
            "decay_correction": self.decay_correction,
            "suv_type": self.suv_type,
            "reference_time_rule": (self.reference_time_rule.name.lower()
                                    if self.reference_time_rule else None),
            "reference_time": jsonable(self.reference_time),
            "reference_time_frame": jsonable(self.reference_time_frame),
            "reference_time_difference_s": self.reference_time_difference_s,
            "injection_time": jsonable(self.injection_time),
            "injection_time_source": self.injection_time_source,
            "elapsed_s": self.elapsed_s,
            "injected_dose_bq": self.injected_dose_bq,
            "decayed_dose_bq": self.decayed_dose_bq,
            "slice_decayed_dose_bq": list(self.slice_decayed_dose_bq),
            "half_life_s": self.half_life_s,
            "weight_kg": self.weight_kg,
            "height_m": self.height_m,
            "sex": self.sex,
            "body_size": self.body_size,
            "body_size_unit": self.body_size_unit,
            "series": self.series,
            "warnings": list(self.warnings),
            "inputs": jsonable(dict(self.inputs)),
        }

    def __repr__(self) -> str:
        f = self.factor
        fac = f"factor={f:.6g}" if f is not None else (
            f"factors=[{min(self.factors):.6g} .. {max(self.factors):.6g}] ({len(self.factors)})")
        extra = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        return f"SUVFactors({self.quantity}, {fac}, rule={self.rule!r}{extra})"

    def __str__(self) -> str:
        lines = [f"{self.quantity} ({self.normalization.quantity_unit}) from Units {self.units}, "
                 f"DecayCorrection {self.decay_correction}"]
        f = self.factor
        if f is not None:
            lines.append(f"  factor              {f:.8g}")
        else:
            lines.append(f"  factors             {len(self.factors)} slices, "
                         f"{min(self.factors):.8g} .. {max(self.factors):.8g}")
        lines.append(f"  rule                {self.rule}")
        rows: list[tuple[str, Any]] = [
            ("reference time", self.reference_time),
            ("frame-based time", self.reference_time_frame),
            ("injection time", self.injection_time),
            ("injection from", self.injection_time_source or None),
            ("elapsed (s)", self.elapsed_s),
            ("injected dose (Bq)", self.injected_dose_bq),
            ("decayed dose (Bq)", self.decayed_dose_bq),
            ("half-life (s)", self.half_life_s),
            ("weight (kg)", self.weight_kg),
            ("height (m)", self.height_m),
            ("sex", self.sex or None),
            (f"body size ({self.body_size_unit})", self.body_size),
        ]
        for name, value in rows:
            if value is None:
                continue
            text = value.isoformat() if isinstance(value, _dt.datetime) else (
                f"{value:.8g}" if isinstance(value, float) else str(value))
            lines.append(f"  {name:<19} {text}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------- engine
@dataclass(frozen=True)
class _SliceFacts:
    slope: float
    intercept: float
    acquisition_datetime: str
    acquisition_date: str
    acquisition_time: str
    frame_reference_time_ms: float | None
    actual_frame_duration_ms: float | None


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _headers_of(source: Volume | Sequence[Dataset]) -> tuple[list[Dataset], str]:
    seq: Sequence[Any] = source.headers if hasattr(source, "headers") else source
    headers = list(seq)
    if not headers:
        raise MissingAttributeError(
            format_message(
                "no DICOM headers to compute SUV from",
                fix="load the PET with emlesion.io.load_pet (it keeps one header per slice)",
            )
        )
    for i, ds in enumerate(headers):
        if not isinstance(ds, Dataset):
            raise InvalidAttributeError(
                format_message(f"header {i} is a {type(ds).__name__}, not a pydicom Dataset")
            )
    series = header_text(headers[0], "SeriesInstanceUID")
    return headers, series


class _Engine:
    """One SUV-factor computation (holds the headers and the series label)."""

    def __init__(self, headers: list[Dataset], series: str, norm: Normalization,
                 method: ReferenceTimeMethod, sex: str | None, height_m: float | None,
                 tolerance_s: float, slices: Sequence[Any] = ()) -> None:
        self.h = headers
        self.first = headers[0]
        self.series = series or None
        self.facts = self._slice_facts(slices)
        self._acq: list[_dt.datetime | None] | None = None
        self.norm = norm
        self.method = method
        self.sex_override = sex
        self.height_override = height_m
        self.tolerance_s = tolerance_s
        self.inputs: dict[str, Any] = {}
        tz_text = header_text(self.first, "TimezoneOffsetFromUTC")
        self.tz = parse_utc_offset(tz_text, series=self.series)
        if not tz_text:
            self.tz = self._zone_from_explicit_offset()

    def _zone_from_explicit_offset(self) -> _dt.timezone:
        """Zone of DA/TM values when TimezoneOffsetFromUTC is absent.

        DA/TM values are local time (PS3.3 C.12.1.1.8). Without TimezoneOffsetFromUTC the
        only zone an instance can name is the ``&ZZXX`` suffix of one of its DT values
        (RadiopharmaceuticalStartDateTime, AcquisitionDateTime); taking UTC instead would
        mix zones and shift the decay time by the offset.
        """
        seq = self.first.get("RadiopharmaceuticalInformationSequence")
        candidates = [("RadiopharmaceuticalStartDateTime",
                       header_text(seq[0], "RadiopharmaceuticalStartDateTime") if seq else ""),
                      ("AcquisitionDateTime", header_text(self.first, "AcquisitionDateTime"))]
        for keyword, text in candidates:
            try:
                zone = dt_utc_offset(text, attribute=attr(keyword), series=self.series)
            except InvalidAttributeError:
                continue  # reported where the value is used (not needed for ADMIN)
            if zone is not None:
                warn_external(format_message(
                    f"TimezoneOffsetFromUTC is absent; the DA/TM values are taken in the zone "
                    f"{zone} of {keyword} {text!r} rather than UTC", series=self.series,
                    attribute=attr("TimezoneOffsetFromUTC"),
                    fix="add TimezoneOffsetFromUTC (0008,0201) to the header"),
                    SUVWarning)
                return zone
        return _dt.timezone.utc

    # -------------------------------------------------------------- errors
    def missing(self, keyword: str, problem: str, fix: str) -> MissingAttributeError:
        return MissingAttributeError(
            format_message(problem, series=self.series, attribute=attr(keyword), fix=fix))

    def invalid(self, keyword: str, problem: str, fix: str) -> InvalidAttributeError:
        return InvalidAttributeError(
            format_message(problem, series=self.series, attribute=attr(keyword), fix=fix))

    # -------------------------------------------------------------- per-slice facts
    def _slice_facts(self, slices: Sequence[Any]) -> list[_SliceFacts]:
        """Per-slice numbers and time strings, from ``Volume.slices`` when available."""
        out = []
        if slices and len(slices) == len(self.h):
            for si in slices:
                out.append(_SliceFacts(
                    float(si.rescale_slope), float(si.rescale_intercept),
                    si.acquisition_datetime or "", si.acquisition_date or "",
                    si.acquisition_time or "", si.frame_reference_time_ms,
                    si.actual_frame_duration_ms))
            return out
        for ds in self.h:
            m = get_float(ds, "RescaleSlope", self.series)
            b = get_float(ds, "RescaleIntercept", self.series)
            out.append(_SliceFacts(
                1.0 if m is None else m, 0.0 if b is None else b,
                header_text(ds, "AcquisitionDateTime"), header_text(ds, "AcquisitionDate"),
                header_text(ds, "AcquisitionTime"),
                get_float(ds, "FrameReferenceTime", self.series),
                get_float(ds, "ActualFrameDuration", self.series)))
        return out

    def distinct(self, keyword: str) -> dict[Any, int]:
        """Raw value -> index of the first slice carrying it (converts only one per value)."""
        out: dict[Any, int] = {}
        for i, ds in enumerate(self.h):
            raw: Any = None
            if keyword in ds:
                elem = ds.get_item(keyword)
                raw = elem.value
                if isinstance(raw, list) or type(raw).__name__ == "MultiValue":
                    raw = tuple(str(v) for v in raw)
                elif not isinstance(raw, (bytes, str, int, float)) and raw is not None:
                    raw = str(raw)
            out.setdefault(raw, i)
        return out

    # -------------------------------------------------------------- consistency
    #: Per-series SUV inputs compared across all slices: (keyword, in the first item of
    #: RadiopharmaceuticalInformationSequence, numeric).
    SERIES_INPUTS: tuple[tuple[str, bool, bool], ...] = (
        ("Units", False, False), ("DecayCorrection", False, False),
        ("PatientWeight", False, True), ("PatientSize", False, True),
        ("PatientSex", False, False), ("Modality", False, False),
        ("RadionuclideTotalDose", True, True), ("RadionuclideHalfLife", True, True),
        ("RadiopharmaceuticalStartDateTime", True, False),
        ("RadiopharmaceuticalStartTime", True, False),
    )

    def _slice_name(self, k: int) -> str:
        name = getattr(self.h[k], "filename", None)
        return f"slice {k} ({_basename(name)})" if isinstance(name, str) and name else f"slice {k}"

    def check_consistency(self) -> None:
        """Every per-series SUV input must be the same on every slice.

        The factors are computed from one value of each (the first slice's); a slice that
        disagrees would otherwise be ignored, or, as the first slice, change every SUV.
        Values that differ only in their text (``70`` / ``70.0``) agree.
        """
        rp_items = self._rp_items()
        for keyword, in_rp, numeric in self.SERIES_INPUTS:
            groups: dict[Any, list[int]] = {}
            for k, ds in enumerate(self.h):
                source = rp_items[k] if in_rp else ds
                text = header_text(source, keyword) if source is not None else ""
                key: Any = text.upper()
                if numeric and text:
                    try:
                        key = round(float(text.split("\\")[0]), 9)
                    except ValueError:
                        key = text
                groups.setdefault(key, []).append(k)
            if len(groups) < 2:
                continue
            parts = []
            for key, ks in sorted(groups.items(), key=lambda kv: -len(kv[1])):
                shown = ", ".join(self._slice_name(k) for k in ks[:3])
                more = f" and {len(ks) - 3} more" if len(ks) > 3 else ""
                parts.append(f"{key if key != '' else '(empty)'} on {len(ks)} slice(s): "
                             f"{shown}{more}")
            raise self.invalid(keyword, f"{keyword} differs between slices: "
                               + "; ".join(parts),
                               "the SUV needs one value per series: correct the header of the "
                               "odd slices, or load one series at a time")

    def _rp_items(self) -> list[Dataset | None]:
        """The first RadiopharmaceuticalInformationSequence item of each slice.

        Slices whose sequence has the same raw bytes share one parsed item (pydicom parses a
        raw sequence on access, which is slow for hundreds of slices).
        """
        tag = BaseTag(0x00540016)
        cache: dict[bytes, Dataset | None] = {}
        out: list[Dataset | None] = []
        for ds in self.h:
            raw = ds._dict.get(tag)
            key = raw.value if isinstance(raw, RawDataElement) and isinstance(
                raw.value, bytes) else None
            if key is not None and key in cache:
                out.append(cache[key])
                continue
            try:
                seq = ds.get("RadiopharmaceuticalInformationSequence")
                item: Dataset | None = seq[0] if seq else None
            except Exception:  # malformed sequence: reported where the values are used
                item = None
            if key is not None:
                cache[key] = item
            out.append(item)
        return out

    # -------------------------------------------------------------- series-level
    def series_value(self, keyword: str) -> str:
        values = {header_text(self.h[i], keyword).upper() for i in self.distinct(keyword).values()}
        if len(values) > 1:
            raise self.invalid(keyword, f"{keyword} differs between slices: {sorted(values)}",
                               "load one series at a time")
        return values.pop()

    def units(self) -> PETUnits:
        value = self.series_value("Units")
        self.inputs["Units"] = value
        if not value:
            raise self.missing("Units", "Units is missing",
                               "the PET header must say what the pixel values are")
        try:
            return PETUnits(value)
        except ValueError:
            raise UnsupportedDataError(
                format_message(
                    f"Units {value} cannot be converted to SUV (only BQML, CNTS, GML, CM2ML)",
                    series=self.series, attribute=attr("Units"),
                    fix="export the series from the scanner in BQML (Bq/mL)",
                )
            ) from None

    def decay_correction(self) -> DecayCorrection:
        value = self.series_value("DecayCorrection")
        self.inputs["DecayCorrection"] = value
        if not value:
            raise self.missing("DecayCorrection", "DecayCorrection is missing",
                               "the header must say whether and to when the image is decay "
                               "corrected")
        try:
            return DecayCorrection(value)
        except ValueError:
            raise self.invalid("DecayCorrection", f"DecayCorrection {value!r} is not START, "
                               "ADMIN or NONE", "correct the header") from None

    def check_corrections(self, dc: DecayCorrection) -> None:
        for i in self.distinct("CorrectedImage").values():
            ds = self.h[i]
            terms = {t.upper() for t in header_text(ds, "CorrectedImage").split("\\") if t}
            if i == 0:
                self.inputs["CorrectedImage"] = sorted(terms)
            if "ATTN" not in terms:
                raise SUVError(format_message(
                    f"CorrectedImage {sorted(terms)} lacks ATTN: the image is not attenuation "
                    f"corrected (slice {i})", series=self.series,
                    attribute=attr("CorrectedImage"),
                    fix="use the attenuation-corrected PET series"))
            has_decay = bool(terms & {"DECY", "DECAY"})
            if dc is not DecayCorrection.NONE and not has_decay:
                raise SUVError(format_message(
                    f"CorrectedImage {sorted(terms)} lacks DECY although DecayCorrection is "
                    f"{dc.value} (slice {i})", series=self.series,
                    attribute=attr("CorrectedImage"),
                    fix="check the DecayCorrection and CorrectedImage attributes"))
            if dc is DecayCorrection.NONE and has_decay and i == 0:
                warn_external(format_message(
                    "CorrectedImage contains DECY although DecayCorrection is NONE; treating "
                    "the image as not decay corrected", series=self.series,
                    attribute=attr("CorrectedImage")), DicomQuirkWarning)
            if "DECAY" in terms and i == 0:
                warn_external(format_message(
                    "CorrectedImage uses the non-standard term DECAY (accepted as DECY)",
                    series=self.series, attribute=attr("CorrectedImage")),
                    DicomQuirkWarning)

    def check_intercepts(self) -> tuple[float, ...]:
        slopes = tuple(f.slope for f in self.facts)
        bad_slopes = [k for k, m in enumerate(slopes) if not (math.isfinite(m) and m > 0)]
        if bad_slopes:
            k = bad_slopes[0]
            raise self.invalid("RescaleSlope", f"RescaleSlope {slopes[k]} on "
                               f"{len(bad_slopes)} slice(s), e.g. {self._slice_name(k)}: PET "
                               "activity needs a positive slope (a negative one gives negative "
                               "SUVs)", "repair the header or export the series again")
        bad = sum(1 for f in self.facts if f.intercept != 0.0)
        if bad:
            warn_external(format_message(
                f"RescaleIntercept is not 0 on {bad} slice(s) (the PET standard says it is "
                "always 0); the factors apply to slope*SV + intercept", series=self.series,
                attribute=attr("RescaleIntercept")), DicomQuirkWarning)
        return tuple(slopes)

    # -------------------------------------------------------------- patient
    def weight_kg(self) -> float:
        w = get_float(self.first, "PatientWeight", self.series)
        self.inputs["PatientWeight"] = w
        if w is None or w == 0:
            raise self.missing("PatientWeight", f"PatientWeight is {'missing' if w is None else 0}"
                               " (QIBA: no SUV without the weight)",
                               "enter the patient's weight in kg in the header")
        if w < 0:
            raise self.invalid("PatientWeight", f"PatientWeight {w} is negative",
                               "enter the weight in kg")
        if w > WEIGHT_G_THRESHOLD:
            warn_external(format_message(
                f"PatientWeight {w:g} looks like grams; using {w / 1000:g} kg",
                series=self.series, attribute=attr("PatientWeight"),
                fix="store the weight in kg"), SUVWarning)
            w /= 1000.0
        lo, hi = WEIGHT_RANGE_KG
        if not lo <= w <= hi:
            raise self.invalid("PatientWeight", f"PatientWeight {w:g} kg is outside the human "
                               f"range {lo:g}-{hi:g} kg", "enter the patient's weight in kg")
        return w

    def height_m(self) -> float:
        if self.height_override is not None:
            self.inputs["height_m_override"] = self.height_override
            h: float | None = float(self.height_override)
        else:
            h = get_float(self.first, "PatientSize", self.series)
            self.inputs["PatientSize"] = h
        if h is None or h == 0:
            raise self.missing("PatientSize", "PatientSize (height) is missing or 0; the "
                               f"{self.norm.quantity} body size needs it",
                               "enter the height in m, pass height_m=, or use normalization bw")
        if h < 0:
            raise self.invalid("PatientSize", f"PatientSize {h} is negative", "enter metres")
        if h > HEIGHT_CM_THRESHOLD:
            warn_external(format_message(
                f"PatientSize {h:g} looks like centimetres; using {h / 100:g} m",
                series=self.series, attribute=attr("PatientSize"),
                fix="store the height in metres"), SUVWarning)
            h /= 100.0
        if not 0.3 <= h <= HEIGHT_CM_THRESHOLD:
            raise self.invalid("PatientSize", f"PatientSize {h:g} m is implausible",
                               "enter the height in metres")
        return h

    def sex(self) -> str:
        raw = self.sex_override if self.sex_override is not None else header_text(
            self.first, "PatientSex")
        self.inputs["PatientSex"] = raw
        if not raw:
            raise self.missing("PatientSex", f"PatientSex is missing; the {self.norm.quantity} "
                               "formula is sex-specific", "enter M, F or O, or pass sex=")
        try:
            return bodysize.normalize_sex(raw)
        except InvalidAttributeError:
            raise self.invalid("PatientSex", f"PatientSex {raw!r} is not M, F or O",
                               "enter M, F or O, or pass sex=") from None

    def body_size(self, norm: Normalization, w_kg: float) -> tuple[float, float | None, str]:
        """(body size in g or cm², height used, sex used) for a normalisation."""
        if norm is Normalization.BW:
            return w_kg * 1000.0, None, ""
        h = self.height_m()
        if norm is Normalization.BSA_DUBOIS:
            return bodysize.bsa_dubois_m2(w_kg, h) * 1e4, h, ""
        s = self.sex()
        kg = bodysize.sex_specific_body_mass_kg(norm, w_kg, h, s)
        if not kg > 0:
            raise SUVError(format_message(
                f"{norm.quantity} body size is {kg:.4g} kg for weight {w_kg:g} kg, height "
                f"{h:g} m, sex {s} (formula outside its range)", series=self.series,
                fix="check weight and height, or use another normalisation"))
        return kg * 1000.0, h, s

    # -------------------------------------------------------------- radiopharmaceutical
    def rp_item(self) -> Dataset:
        seq = self.first.get("RadiopharmaceuticalInformationSequence")
        if not seq:
            raise self.missing("RadiopharmaceuticalInformationSequence",
                               "RadiopharmaceuticalInformationSequence is missing or empty",
                               "the PET header must carry the injected dose and time")
        item: Dataset = seq[0]
        return item

    def dose_bq(self) -> float:
        d = get_float(self.rp_item(), "RadionuclideTotalDose", self.series)
        self.inputs["RadionuclideTotalDose"] = d
        if d is None or d == 0:
            raise self.missing("RadionuclideTotalDose",
                               f"RadionuclideTotalDose is {'missing' if d is None else 0}",
                               "enter the injected activity in Bq")
        if d < 0:
            raise self.invalid("RadionuclideTotalDose", f"RadionuclideTotalDose {d} is negative",
                               "enter the injected activity in Bq")
        if d < DOSE_MBQ_THRESHOLD:
            warn_external(format_message(
                f"RadionuclideTotalDose {d:g} looks like MBq; using {d * 1e6:g} Bq",
                series=self.series, attribute=attr("RadionuclideTotalDose"),
                fix="store the dose in Bq"), SUVWarning)
            d *= 1e6
        lo, hi = DOSE_RANGE_BQ
        if not lo <= d <= hi:
            raise self.invalid("RadionuclideTotalDose", f"RadionuclideTotalDose {d:g} Bq is "
                               f"outside the range of diagnostic PET activities ({lo:g}-{hi:g} "
                               "Bq)", "enter the injected activity in Bq")
        return d

    def half_life_s(self) -> float:
        item = self.rp_item()
        t = get_float(item, "RadionuclideHalfLife", self.series)
        self.inputs["RadionuclideHalfLife"] = t
        if t is not None and t < 0:
            raise self.invalid("RadionuclideHalfLife", f"RadionuclideHalfLife {t} is negative",
                               "enter the half-life in s")
        found = half_life_from_code(list(item.get("RadionuclideCodeSequence") or []))
        if t:
            self.check_half_life(t, found)
            return t
        if found is None:
            raise self.missing(
                "RadionuclideHalfLife",
                f"RadionuclideHalfLife is {'missing' if t is None else 0} and "
                "RadionuclideCodeSequence names no known nuclide",
                "enter the half-life in s or the radionuclide code")
        value, nuclide = found
        self.inputs["half_life_from_code"] = nuclide
        warn_external(format_message(
            f"RadionuclideHalfLife is {'missing' if t is None else 0}; using {value:g} s for "
            f"{nuclide} from RadionuclideCodeSequence", series=self.series,
            attribute=attr("RadionuclideHalfLife")), SUVWarning)
        return value

    def check_half_life(self, t: float, found: tuple[float, str] | None) -> None:
        """RadionuclideHalfLife (in seconds, PS3.3 C.8.9.1.1.3 [1]_) against the nuclide.

        With a known nuclide code the value must match its half-life within
        :data:`HALF_LIFE_RTOL`; without one it must lie in :data:`HALF_LIFE_RANGE_S`. In
        both cases a value that matches a known nuclide once read as minutes or hours (F-18:
        109.77 instead of 6586.2 s) is named as that unit mistake.

        References
        ----------
        .. [1] DICOM PS3.3 C.8.9.1 (Radiopharmaceutical Information: Radionuclide Half Life
           (0018,1075) "in seconds").
        """
        def matches(value: float, reference: float) -> bool:
            return abs(value - reference) <= HALF_LIFE_RTOL * reference

        candidates = ({found[1]: found[0]} if found is not None
                      else dict(HALF_LIFE_S_BY_NUCLIDE))
        if any(matches(t, ref) for ref in candidates.values()):
            if found is not None:
                self.inputs["half_life_nuclide"] = found[1]
            return
        unit_hint = ""
        for unit, factor in (("minutes", 60.0), ("hours", 3600.0)):
            for nuclide, ref in candidates.items():
                if matches(t * factor, ref):
                    unit_hint = (f"; {t:g} {unit} is the half-life of {nuclide} "
                                 f"({ref:g} s): the value was probably entered in {unit}")
                    break
            if unit_hint:
                break
        if found is not None:
            ref, nuclide = found
            raise self.invalid("RadionuclideHalfLife", f"RadionuclideHalfLife {t:g} s does not "
                               f"match {nuclide} ({ref:g} s), the nuclide named by "
                               f"RadionuclideCodeSequence{unit_hint}",
                               "enter the half-life in seconds (DICOM PS3.3 C.8.9.1), or "
                               "correct RadionuclideCodeSequence")
        lo, hi = HALF_LIFE_RANGE_S
        if unit_hint or not lo <= t <= hi:
            raise self.invalid("RadionuclideHalfLife", f"RadionuclideHalfLife {t:g} s is not a "
                               f"PET nuclide half-life (accepted {lo:g}-{hi:g} s){unit_hint}",
                               "enter the half-life in seconds (DICOM PS3.3 C.8.9.1)")

    def check_elapsed(self, elapsed_s: float, half_life_s: float) -> None:
        """The scan cannot be more than :data:`MAX_ELAPSED_HALF_LIVES` after injection."""
        if elapsed_s > MAX_ELAPSED_HALF_LIVES * half_life_s:
            raise SUVError(format_message(
                f"the scan reference time is {elapsed_s:g} s ({elapsed_s / half_life_s:.1f} "
                f"half-lives of {half_life_s:g} s) after the injection; after "
                f"{MAX_ELAPSED_HALF_LIVES:g} half-lives too little activity is left for an "
                "image, so a date, time or the half-life is wrong", series=self.series,
                attribute=attr("RadiopharmaceuticalStartDateTime"),
                fix="check the injection date/time, SeriesDate/SeriesTime and "
                "RadionuclideHalfLife (seconds)"))

    # -------------------------------------------------------------- times
    def series_datetime(self) -> _dt.datetime | None:
        d, t = header_text(self.first, "SeriesDate"), header_text(self.first, "SeriesTime")
        self.inputs["SeriesDate"], self.inputs["SeriesTime"] = d, t
        if not d or not t:
            return None
        return combine_date_time(d, t, date_attribute=attr("SeriesDate"),
                                 time_attribute=attr("SeriesTime"), series=self.series,
                                 tz=self.tz)

    def acquisition_datetimes(self) -> list[_dt.datetime | None]:
        if self._acq is not None:
            return self._acq
        out: list[_dt.datetime | None] = []
        series_date = header_text(self.first, "SeriesDate")
        cache: dict[tuple[str, str, str], _dt.datetime | None] = {}
        for f in self.facts:
            key = (f.acquisition_datetime, f.acquisition_date or series_date,
                   f.acquisition_time)
            if key not in cache:
                cache[key] = self._acq_datetime(*key)
            out.append(cache[key])
        self._acq = out
        return out

    def _acq_datetime(self, adt: str, d: str, t: str) -> _dt.datetime | None:
        if adt:
            return parse_dt(adt, attribute=attr("AcquisitionDateTime"), series=self.series,
                            default_tz=self.tz)
        if not t or not d:
            return None
        return combine_date_time(d, t, date_attribute=attr("AcquisitionDate"),
                                 time_attribute=attr("AcquisitionTime"), series=self.series,
                                 tz=self.tz)

    def frame_time(self, k: int, t_acq: _dt.datetime, half_life_s: float) -> _dt.datetime | None:
        """``t_acq − FrameReferenceTime + T_ave`` for slice k, or None without its inputs."""
        frt = self.facts[k].frame_reference_time_ms
        afd = self.facts[k].actual_frame_duration_ms
        if not frt or not afd or frt <= 0 or afd <= 0:
            return None
        if not (frt <= MAX_FRAME_TIME_MS and afd <= MAX_FRAME_TIME_MS):
            warn_external(format_message(
                f"FrameReferenceTime {frt:g} ms / ActualFrameDuration {afd:g} ms of slice {k} "
                f"exceed one day ({MAX_FRAME_TIME_MS:g} ms); the frame timing is ignored",
                series=self.series, attribute=attr("FrameReferenceTime"),
                fix="check the frame timing attributes"), SUVWarning)
            return None
        t_ave = frame_average_time_s(afd / 1000.0, half_life_s)
        self.inputs["frame_slice_index"] = k
        self.inputs["FrameReferenceTime_ms"] = frt
        self.inputs["ActualFrameDuration_ms"] = afd
        self.inputs["T_ave_s"] = t_ave
        return t_acq + _dt.timedelta(seconds=t_ave - frt / 1000.0)

    def ge_scan_datetime(self) -> _dt.datetime | None:
        for ds in self.h:
            el = private_value(ds, 0x0009, GE_CREATOR, 0x0D, label="GE private scan datetime",
                               series=self.series)
            if el is None or not str(el.value).strip():
                continue
            self.inputs["GE_scan_datetime"] = str(el.value).strip()
            return parse_dt(el.value, attribute=f"GE scan_datetime {el.tag}",
                            series=self.series, default_tz=self.tz)
        return None

    def reference_time(self, half_life_s: float
                       ) -> tuple[_dt.datetime, ReferenceTimeRule, _dt.datetime | None]:
        """Scan reference time for START: (time, rule, frame-based time or None)."""
        acq = self.acquisition_datetimes()
        known = [(t, k) for k, t in enumerate(acq) if t is not None]
        if not known:
            raise self.missing("AcquisitionTime", "no slice has an AcquisitionTime (or "
                               "AcquisitionDateTime)", "the header must carry the acquisition "
                               "times")
        t_first, k_first = min(known, key=lambda p: p[0])
        self.inputs["earliest_acquisition_datetime"] = t_first.isoformat()
        frame = self.frame_time(k_first, t_first, half_life_s)
        if self.method is ReferenceTimeMethod.FRAME:
            if frame is None:
                raise self.missing("FrameReferenceTime", "IBSI option B needs "
                                   "FrameReferenceTime > 0 and ActualFrameDuration > 0 on the "
                                   "earliest slice", "use reference_time='qiba'")
            return frame, ReferenceTimeRule.FRAME_OPTION_B, frame
        series_dt = self.series_datetime()
        if series_dt is not None and series_dt <= t_first:
            t, rule = series_dt, ReferenceTimeRule.SERIES
        else:
            if series_dt is None:
                warn_external(format_message(
                    "SeriesDate/SeriesTime missing; skipping QIBA step 1", series=self.series,
                    attribute=attr("SeriesTime")), SUVWarning)
            ge = self.ge_scan_datetime()
            if ge is not None:
                t, rule = ge, ReferenceTimeRule.GE_PRIVATE
            elif frame is not None:
                t, rule = frame, ReferenceTimeRule.FRAME
            else:
                t, rule = t_first, ReferenceTimeRule.EARLIEST_ACQUISITION
                warn_external(format_message(
                    "scan reference time taken from the earliest acquisition time (QIBA last "
                    "resort: SeriesDateTime is after it, no GE private time, no frame timing)",
                    series=self.series, attribute=attr("AcquisitionTime")),
                    SUVWarning)
        if frame is not None and abs((t - frame).total_seconds()) > self.tolerance_s:
            warn_external(format_message(
                f"scan reference time {t.isoformat()} ({rule.value}) differs from the "
                f"frame-based time {frame.isoformat()} (IBSI option B) by "
                f"{(t - frame).total_seconds():.1f} s", series=self.series,
                fix="check SeriesTime; reference_time='frame' uses the frame timing"),
                SUVWarning)
        return t, rule, frame

    def injection_time(self, t_ref: _dt.datetime) -> tuple[_dt.datetime, str]:
        item = self.rp_item()
        dt_text = header_text(item, "RadiopharmaceuticalStartDateTime")
        tm_text = header_text(item, "RadiopharmaceuticalStartTime")
        self.inputs["RadiopharmaceuticalStartDateTime"] = dt_text
        self.inputs["RadiopharmaceuticalStartTime"] = tm_text
        if dt_text:
            t_inj = parse_dt(dt_text, attribute=attr("RadiopharmaceuticalStartDateTime"),
                             series=self.series, default_tz=self.tz)
            if t_inj > t_ref:
                raise SUVError(format_message(
                    f"injection {t_inj.isoformat()} is after the scan reference time "
                    f"{t_ref.isoformat()}", series=self.series,
                    attribute=attr("RadiopharmaceuticalStartDateTime"),
                    fix="correct the injection or series date-time"))
            return t_inj, "RadiopharmaceuticalStartDateTime"
        if not tm_text:
            raise self.missing("RadiopharmaceuticalStartDateTime",
                               "neither RadiopharmaceuticalStartDateTime (0018,1078) nor "
                               "RadiopharmaceuticalStartTime (0018,1072) is present",
                               "enter the injection time")
        tod = parse_tm(tm_text, attribute=attr("RadiopharmaceuticalStartTime"),
                       series=self.series)
        series_date = header_text(self.first, "SeriesDate")
        if series_date:
            base = combine_date_time(series_date, "000000", date_attribute=attr("SeriesDate"),
                                     time_attribute=attr("SeriesTime"), series=self.series,
                                     tz=self.tz).date()
            source = "RadiopharmaceuticalStartTime on SeriesDate"
        else:
            base = t_ref.astimezone(self.tz).date()
            source = "RadiopharmaceuticalStartTime on the scan date"
        t_inj = _dt.datetime.combine(base, tod, tzinfo=self.tz)
        if t_inj > t_ref:
            t_inj -= _dt.timedelta(days=1)
            source += ", previous day (midnight rule)"
            warn_external(format_message(
                f"RadiopharmaceuticalStartTime {tm_text} is after the scan time on its date; "
                f"injection taken on the previous day ({t_inj.isoformat()})",
                series=self.series, attribute=attr("RadiopharmaceuticalStartTime")),
                SUVWarning)
        elapsed = (t_ref - t_inj).total_seconds()
        if elapsed < 0 or elapsed > 86400:
            raise SUVError(format_message(
                f"injection time {tm_text} cannot be placed before the scan reference time "
                f"{t_ref.isoformat()} within one day, even after the midnight rule",
                series=self.series, attribute=attr("RadiopharmaceuticalStartTime"),
                fix="add RadiopharmaceuticalStartDateTime with the full injection date-time"))
        return t_inj, source

    # -------------------------------------------------------------- philips
    def philips_factors(self) -> tuple[str, tuple[float, ...]]:
        """("suv" | "activity", per-slice factors) for Units CNTS."""
        suv: list[float | None] = []
        act: list[float | None] = []
        literal = False
        for ds in self.h:
            # the creator-less fallback is reported once below (literal), not per slice;
            # deferred_warnings is thread-local, unlike warnings.catch_warnings
            with deferred_warnings() as held:
                e_suv = private_value(ds, 0x7053, PHILIPS_CREATOR, 0x00,
                                      label="Philips SUV scale factor", series=self.series)
                e_act = private_value(ds, 0x7053, PHILIPS_CREATOR, 0x09,
                                      label="Philips activity concentration scale factor",
                                      series=self.series)
            emit_warnings(w for w in held if not issubclass(w.category, DicomQuirkWarning))
            literal |= any(e is not None and not e.by_creator for e in (e_suv, e_act))
            suv.append(private_float(e_suv, "Philips SUV scale factor", self.series))
            act.append(private_float(e_act, "Philips activity concentration scale factor",
                                     self.series))
        if literal:
            warn_external(format_message(
                "Philips factors read from the literal elements (7053,1000)/(7053,1009): group "
                f"7053 has no private creator ({PHILIPS_CREATOR!r} expected)",
                series=self.series, fix="tolerated (as in IBSI DROs 2_4 and 2_5)"),
                DicomQuirkWarning)
        if all(v for v in suv):
            self.inputs["Philips_SUV_scale_factor"] = suv[0] if len(set(suv)) == 1 else suv
            return "suv", tuple(float(v) for v in suv if v is not None)
        if all(v for v in act):
            self.inputs["Philips_activity_concentration_scale_factor"] = (
                act[0] if len(set(act)) == 1 else act)
            return "activity", tuple(float(v) for v in act if v is not None)
        raise MissingAttributeError(format_message(
            "Units CNTS without a non-zero Philips SUV scale factor (7053,xx00) or activity "
            "concentration scale factor (7053,xx09) on every slice: counts cannot be converted "
            "to SUV", series=self.series,
            attribute=f"Philips SUV Scale Factor (7053,xx00), creator {PHILIPS_CREATOR!r}",
            fix="export the series in BQML from the scanner"))

    # -------------------------------------------------------------- main
    def run(self) -> SUVFactors:
        self.check_consistency()
        units = self.units()
        dc = self.decay_correction()
        self.check_corrections(dc)
        slopes = self.check_intercepts()
        w_kg = self.weight_kg()
        dose = self.dose_bq()
        t_half = self.half_life_s()
        n = len(self.h)
        w_g = w_kg * 1000.0
        height: float | None = None
        sex = ""
        suv_type = ""
        details: dict[str, Any] = {}

        def bqml_to_bw(extra: tuple[float, ...]) -> tuple[list[float], str]:
            """SUVbw per unit of activity (mL/g... ) per slice, times `extra`."""
            if dc is DecayCorrection.ADMIN:
                details.update(decayed=dose, elapsed=0.0)
                return [e * w_g / dose for e in extra], "ADMIN: injected dose, not decayed"
            if dc is DecayCorrection.START:
                t_ref, rule, frame = self.reference_time(t_half)
                t_inj, source = self.injection_time(t_ref)
                elapsed = (t_ref - t_inj).total_seconds()
                self.check_elapsed(elapsed, t_half)
                d_ref = dose * 2.0 ** (-elapsed / t_half)
                details.update(t_ref=t_ref, rule=rule, frame=frame, t_inj=t_inj, source=source,
                               elapsed=elapsed, decayed=d_ref)
                return [e * w_g / d_ref for e in extra], f"START: {rule.value}"
            # NONE: per-slice acquisition time and frame-average factor (IBSI)
            acq = self.acquisition_datetimes()
            for k, t in enumerate(acq):
                if t is None:
                    raise self.missing("AcquisitionTime", f"slice {k} has no AcquisitionTime; "
                                       "DecayCorrection NONE needs it on every slice",
                                       "the header must carry acquisition times")
            t0 = min(t for t in acq if t is not None)
            t_inj, source = self.injection_time(t0)
            lam = math.log(2.0) / t_half
            eff: list[float] = []
            for k, t in enumerate(acq):
                assert t is not None
                afd = self.facts[k].actual_frame_duration_ms
                if afd is not None and not afd <= MAX_FRAME_TIME_MS:
                    raise self.invalid("ActualFrameDuration", f"ActualFrameDuration {afd:g} ms "
                                       f"on slice {k} exceeds one day", "correct the header")
                if not afd or afd <= 0:
                    raise self.missing("ActualFrameDuration", f"ActualFrameDuration missing or "
                                       f"0 on slice {k}; DecayCorrection NONE needs it",
                                       "the header must carry the frame duration")
                x = lam * afd / 1000.0
                avg = -math.expm1(-x) / x
                dt_s = (t - t_inj).total_seconds()
                self.check_elapsed(dt_s, t_half)
                eff.append(dose * avg * math.exp(-lam * dt_s))
            details.update(t_inj=t_inj, source=source, slice_decayed=tuple(eff))
            return ([e * w_g / d for e, d in zip(extra, eff)],
                    "NONE: per-slice acquisition time with the frame-average decay factor")

        ones = (1.0,) * n
        if units is PETUnits.BQML:
            to_bw, branch = bqml_to_bw(ones)
            rule = f"BQML/{branch}"
        elif units is PETUnits.CNTS:
            kind, phil = self.philips_factors()
            if kind == "suv":
                to_bw = list(phil)
                rule = "CNTS: Philips SUV scale factor (7053,xx00)"
            else:
                to_bw, branch = bqml_to_bw(phil)
                rule = f"CNTS/{branch}; Philips activity concentration scale factor (7053,xx09)"
        else:
            suv_type = self.series_value("SUVType")
            self.inputs["SUVType"] = suv_type
            default = "BW" if units is PETUnits.GML else "BSA"
            if not suv_type:
                warn_external(format_message(
                    f"SUVType is empty for Units {units.value}; assuming {default}",
                    series=self.series, attribute=attr("SUVType")), SUVWarning)
                suv_type = default
            try:
                stype = SUVType(suv_type)
            except ValueError:
                raise self.invalid("SUVType", f"SUVType {suv_type!r} is not a DICOM defined "
                                   "term", "correct the header") from None
            if (units is PETUnits.CM2ML) != (stype is SUVType.BSA):
                raise UnsupportedDataError(format_message(
                    f"Units {units.value} with SUVType {stype.value} is contradictory "
                    "(CM2ML goes with BSA, GML with the mass-based types)",
                    series=self.series, attribute=attr("SUVType"), fix="correct the header"))
            src_size, height, sex = self.body_size(stype.normalization, w_kg)
            to_bw = [w_g / src_size] * n
            rule = (f"{units.value}/{stype.value}: stored SUVbw" if stype is SUVType.BW else
                    f"{units.value}/{stype.value}: converted back to SUVbw through the "
                    f"{stype.normalization.quantity} body size")
        target_size, h2, s2 = self.body_size(self.norm, w_kg)
        height = h2 if h2 is not None else height
        sex = s2 or sex
        scale = 1.0 if self.norm is Normalization.BW else target_size / w_g
        factors = tuple(float(f * scale) for f in to_bw)
        if self.norm is not Normalization.BW:
            rule += f" -> {self.norm.quantity}"
        for k, f in enumerate(factors):
            if not (math.isfinite(f) and f > 0):
                raise SUVError(format_message(f"SUV factor of slice {k} is {f}",
                                              series=self.series, fix="check the header"))
        return SUVFactors(
            normalization=self.norm,
            quantity=self.norm.quantity,
            factors=factors,
            rule=rule,
            units=units.value,
            decay_correction=dc.value,
            suv_type=suv_type,
            reference_time_rule=details.get("rule"),
            reference_time=details.get("t_ref"),
            reference_time_frame=details.get("frame"),
            injection_time=details.get("t_inj"),
            injection_time_source=details.get("source", ""),
            elapsed_s=details.get("elapsed"),
            injected_dose_bq=dose,
            decayed_dose_bq=details.get("decayed"),
            slice_decayed_dose_bq=details.get("slice_decayed", ()),
            half_life_s=t_half,
            weight_kg=w_kg,
            height_m=height,
            sex=sex,
            body_size=target_size,
            body_size_unit=self.norm.body_size_unit,
            rescale_slopes=slopes,
            series=self.series or "",
            inputs=dict(self.inputs),
        )


def compute_suv_factors(
    source: Volume | Sequence[Dataset],
    normalization: str | Normalization = Normalization.BW,
    *,
    reference_time: str | ReferenceTimeMethod = ReferenceTimeMethod.QIBA,
    sex: str | None = None,
    height_m: float | None = None,
    reference_time_tolerance_s: float = REFERENCE_TIME_TOLERANCE_S,
) -> SUVFactors:
    """Compute the per-slice SUV factors of a PET series from its headers.

    Parameters
    ----------
    source : Volume or sequence of pydicom Dataset
        A PET :class:`~emlesion.io.volume.Volume` (its ``headers`` are used) or one header
        per slice, in the order of the slices the factors will be applied to.
    normalization : str or Normalization
        ``"bw"`` (default), ``"lbm-james128"``, ``"lbm-morgan"``, ``"sul-janmahasatian"``
        (alias ``"sul"``, the PERCIST default), ``"bsa-dubois"`` or ``"ibw"``.
    reference_time : {"qiba", "frame"}
        Scan reference time for DecayCorrection START: the QIBA chain (default; the
        frame-based time is computed too and a :class:`~emlesion.errors.SUVWarning` is
        emitted when the two differ by more than ``reference_time_tolerance_s``), or always
        the frame back-computation (IBSI option B).
    sex : str, optional
        Overrides PatientSex (M, F, O) for sex-specific body sizes.
    height_m : float, optional
        Overrides PatientSize (m) for height-dependent body sizes.
    reference_time_tolerance_s : float
        Disagreement (s) between QIBA and frame-based reference times that triggers a
        warning (default 60 s).

    Returns
    -------
    SUVFactors
        Per-slice factors for the rescaled values, with full provenance.

    Raises
    ------
    MissingAttributeError
        A required attribute is absent, empty or zero (PatientWeight, RadionuclideTotalDose,
        RadionuclideHalfLife without a known nuclide code, injection or acquisition times,
        Philips factors for CNTS, PatientSize/PatientSex when the normalisation needs them).
    InvalidAttributeError
        An attribute is malformed (e.g. a DT value), contradictory across slices or
        out of range.
    UnsupportedDataError
        Units other than BQML, CNTS, GML, CM2ML (e.g. PROPCPS), or contradictory SUVType.
    SUVError
        CorrectedImage lacks ATTN (or DECY when DecayCorrection is START/ADMIN), or the
        injection lies after the scan even after the midnight rule.

    Warns
    -----
    SUVWarning
        Dose in MBq, weight in g, height in cm (corrected); half-life taken from the
        nuclide code; midnight rule applied; reference times that disagree.
    DicomQuirkWarning
        Private elements read without their private creator; non-zero RescaleIntercept.

    References
    ----------
    .. [1] QIBA SUV vendor-neutral pseudo-code (D. Clunie, 2018).
    .. [2] Vácha et al., IBSI "Comprehensive Manual for SUV Computation and Digital
       Reference Objects".

    Examples
    --------
    >>> from tests.suv_headers import make_headers  # doctest: +SKIP
    >>> f = compute_suv_factors(make_headers(), "bw")  # doctest: +SKIP
    >>> f.quantity, f.rule  # doctest: +SKIP
    ('SUVbw', 'BQML/START: SeriesDateTime (QIBA step 1)')
    """
    norm = Normalization.coerce(normalization)
    try:
        method = ReferenceTimeMethod(str(getattr(reference_time, "value", reference_time)))
    except ValueError:
        raise InvalidAttributeError(format_message(
            f"unknown reference_time method {reference_time!r}",
            fix="use 'qiba' or 'frame'")) from None
    headers, series = _headers_of(source)
    slices: Sequence[Any] = getattr(source, "slices", ())
    with record_warnings() as rec:
        result = _Engine(headers, series, norm, method, sex, height_m,
                         reference_time_tolerance_s, slices).run()
    return replace(result, warnings=rec.as_tuple())


def renormalize_suv_factors(
    factors: SUVFactors,
    normalization: str | Normalization,
    source: Volume | Sequence[Dataset],
    *,
    sex: str | None = None,
    height_m: float | None = None,
) -> SUVFactors:
    """The same factors re-normalised to another body size, without recomputing the decay.

    ``SUV_new[k] = SUVbw[k] · size_new / W[g]`` is the last step of
    :func:`compute_suv_factors`; this function applies it to factors already computed, so
    that an SUVbw image and its SUL share one dose, decay and reference time. For SUVbw
    input the result equals ``compute_suv_factors(source, normalization)`` bit for bit.

    Parameters
    ----------
    factors : SUVFactors
        SUVbw factors (``normalization`` ``bw``) computed from ``source``.
    normalization : str or Normalization
        Target normalisation (e.g. ``"sul"``; see :func:`compute_suv_factors`).
    source : Volume or sequence of pydicom Dataset
        The headers the factors came from: PatientSize and PatientSex are read from the
        first one (with the unit checks of :func:`compute_suv_factors`).
    sex : str, optional
        Overrides PatientSex.
    height_m : float, optional
        Overrides PatientSize (m).

    Returns
    -------
    SUVFactors
        Target quantity and factors; height, sex and body size of the target; the rule gets
        ``" -> <quantity>"``; ``warnings`` holds those of ``factors`` and the new ones.

    Raises
    ------
    InvalidParameterError
        ``factors`` are not SUVbw factors, or have no weight.
    MissingAttributeError, InvalidAttributeError, SUVError
        Height or sex missing or implausible, or a body size outside its formula's range.

    References
    ----------
    .. [1] QIBA SUV vendor-neutral pseudo-code (D. Clunie, 2018): SUL and SUVbsa are SUVbw
       rescaled by the ratio of the body sizes.

    Examples
    --------
    >>> from tests.suv_headers import make_headers  # doctest: +SKIP
    >>> bw = compute_suv_factors(make_headers(), "bw")  # doctest: +SKIP
    >>> sul = renormalize_suv_factors(bw, "sul", make_headers())  # doctest: +SKIP
    >>> sul.factors == compute_suv_factors(make_headers(), "sul").factors  # doctest: +SKIP
    True
    """
    norm = Normalization.coerce(normalization)
    if factors.normalization is not Normalization.BW or not factors.weight_kg:
        raise InvalidParameterError(format_message(
            f"renormalize_suv_factors needs SUVbw factors with a weight, got "
            f"{factors.quantity} (weight {factors.weight_kg})", series=factors.series or None,
            fix="pass the factors of compute_suv_factors(source, 'bw')"))
    if norm is Normalization.BW:
        return factors
    headers, series = _headers_of(source)
    slices: Sequence[Any] = getattr(source, "slices", ())
    with record_warnings() as rec:
        engine = _Engine(headers, series, norm, ReferenceTimeMethod.QIBA, sex, height_m,
                         REFERENCE_TIME_TOLERANCE_S, slices)
        target_size, height, new_sex = engine.body_size(norm, factors.weight_kg)
    scale = target_size / (factors.weight_kg * 1000.0)
    new = tuple(float(f * scale) for f in factors.factors)
    return replace(
        factors, normalization=norm, quantity=norm.quantity, factors=new,
        rule=f"{factors.rule} -> {norm.quantity}",
        height_m=height if height is not None else factors.height_m,
        sex=new_sex or factors.sex, body_size=target_size, body_size_unit=norm.body_size_unit,
        inputs={**factors.inputs, **engine.inputs},
        warnings=tuple(dict.fromkeys((*factors.warnings, *rec.as_tuple()))))
