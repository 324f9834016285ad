"""The clinical schedule of the sample study: patient, dates, doses, vendor conventions.

Everything in this module is a fixed, documented choice, so that a generated study is
the same on every machine. Times are whole seconds and dates are fixed (no wall clock).

The SUV arithmetic mirrors what a QIBA-correct engine derives from the headers that
:mod:`emlesion.sample.dicom_writer` writes, so that the truth of the sample is the SUV a
reader obtains.

References
----------
.. [1] QIBA, "Vendor-neutral pseudo-code for SUV calculation" (D. Clunie, 2018).
.. [2] Vácha et al., IBSI "Comprehensive Manual for SUV Computation and Digital
   Reference Objects" (Philips SUV scale factor, GE scan_datetime).
.. [3] DICOM PS3.3 C.8.9.4.1.5, Frame Reference Time (decay-weighted average time T_ave).
.. [4] Janmahasatian S et al. Clin Pharmacokinet 2005;44:1051-65 (lean body mass).
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
from dataclasses import dataclass

from emlesion.errors import InvalidParameterError, format_message

__all__ = [
    "F18_HALF_LIFE_S",
    "INFUSION_DATE",
    "TIMEPOINTS",
    "BedPosition",
    "Patient",
    "TimepointSchedule",
    "VendorConvention",
    "decay_weighted_average_time_s",
    "lean_body_mass_janmahasatian_kg",
    "schedule_for",
]

#: Half-life of F-18 in seconds, as written in RadionuclideHalfLife (IBSI Table 10).
F18_HALF_LIFE_S: float = 6586.2

#: Day of the CAR-T infusion (day 0). Baseline is two days before it.
INFUSION_DATE: _dt.date = _dt.date(2024, 3, 14)

#: Timepoint names, in order, as used for folder names and in truth.json.
TIMEPOINTS: tuple[str, ...] = ("baseline", "month1", "month3")


class VendorConvention(str, enum.Enum):
    """How a timepoint's PET series expresses its pixel values and reference time."""

    #: Siemens-like: Units BQML, SeriesTime = start of the whole-body scan (QIBA step 1).
    SIEMENS_BQML = "siemens-bqml"
    #: Philips-like: Units CNTS with the private SUV and activity scale factors
    #: (7053,1000)/(7053,1009) under "Philips PET Private Group".
    PHILIPS_CNTS = "philips-cnts"
    #: GE-like: Units BQML, SeriesTime re-written by post-processing (after the
    #: acquisition); the true scan start is in the GEMS_PETD_01 scan_datetime (0009,xx0D).
    GE_BQML_POSTPROCESSED = "ge-bqml-postprocessed"


@dataclass(frozen=True)
class Patient:
    """The (fictitious) patient, identical at every timepoint."""

    patient_id: str = "EMLESION-SAMPLE-001"
    patient_name: str = "SYNTHETIC^CART^PATIENT"
    birth_date: _dt.date = _dt.date(1989, 5, 17)
    sex: str = "M"


@dataclass(frozen=True)
class BedPosition:
    """One bed position of the cropped scan.

    Parameters
    ----------
    index : int
        1-based bed number in the whole-body acquisition (bed 1, the thighs, lies
        outside the cropped field of view).
    first_slice, last_slice : int
        PET slice indices (0 = most caudal) covered by this bed, inclusive.
    start : datetime
        AcquisitionDate/Time of the bed.
    duration_s : float
        ActualFrameDuration of the bed in seconds.
    """

    index: int
    first_slice: int
    last_slice: int
    start: _dt.datetime
    duration_s: float


@dataclass(frozen=True)
class TimepointSchedule:
    """Clinical facts of one timepoint (what goes into the PET header).

    ``scan_start`` is the QIBA scan reference time: the start of the first bed of the
    whole-body acquisition; images are decay corrected to it (DecayCorrection START).
    """

    name: str
    day_after_infusion: int
    vendor: VendorConvention
    weight_kg: float
    height_m: float
    injected_dose_bq: float
    injection: _dt.datetime
    scan_start: _dt.datetime
    bed_duration_s: float
    bed_gap_s: float
    series_time: _dt.datetime
    patient_shift_mm: tuple[float, float, float]
    manufacturer: str
    model_name: str
    philips_activity_scale_bqml_per_count: float = 0.0

    @property
    def study_date(self) -> _dt.date:
        """StudyDate of the timepoint."""
        return self.scan_start.date()

    @property
    def uptake_time_s(self) -> float:
        """Seconds from injection to the scan reference time."""
        return (self.scan_start - self.injection).total_seconds()

    @property
    def decayed_dose_bq(self) -> float:
        """Injected activity decayed to the scan reference time (Bq), QIBA D_ref."""
        return self.injected_dose_bq * 2.0 ** (-self.uptake_time_s / F18_HALF_LIFE_S)

    @property
    def suvbw_per_bqml(self) -> float:
        """SUVbw factor F = weight (g) / D_ref (Bq), in g/Bq (mL per Bq for SUV g/mL)."""
        return self.weight_kg * 1000.0 / self.decayed_dose_bq

    @property
    def lean_body_mass_kg(self) -> float:
        """Janmahasatian lean body mass of the timepoint (kg)."""
        return lean_body_mass_janmahasatian_kg(self.weight_kg, self.height_m, "M")

    @property
    def sul_per_suvbw(self) -> float:
        """Conversion SUL (Janmahasatian) = SUVbw x LBM / weight."""
        return self.lean_body_mass_kg / self.weight_kg

    def beds(self, n_slices: int, n_beds: int = 3) -> tuple[BedPosition, ...]:
        """The bed positions of the cropped field of view, caudal bed first.

        The whole-body scan runs caudo-cranially; bed 1 (thighs) is not in the crop,
        so the first cropped bed starts one bed period after ``scan_start``.
        """
        per_bed = n_slices // n_beds
        period = self.bed_duration_s + self.bed_gap_s
        out = []
        for b in range(n_beds):
            first = b * per_bed
            last = n_slices - 1 if b == n_beds - 1 else (b + 1) * per_bed - 1
            start = self.scan_start + _dt.timedelta(seconds=(b + 1) * period)
            out.append(BedPosition(b + 2, first, last, start, self.bed_duration_s))
        return tuple(out)


def decay_weighted_average_time_s(duration_s: float, half_life_s: float = F18_HALF_LIFE_S) -> float:
    """Decay-weighted average time ``T_ave`` within a frame of length ``duration_s``.

    ``T_ave = (1/λ) ln(λT / (1 - exp(-λT)))`` with ``λ = ln 2 / T½``; FrameReferenceTime
    is the offset from the series reference time to ``AcquisitionTime + T_ave``.

    References
    ----------
    .. [1] DICOM PS3.3 C.8.9.4.1.5 (example 2); QIBA SUV pseudo-code, step 3.

    Examples
    --------
    >>> round(decay_weighted_average_time_s(120.0), 3)  # a little under T/2
    59.937
    """
    lam = math.log(2.0) / half_life_s
    t = lam * duration_s
    return math.log(t / (1.0 - math.exp(-t))) / lam


def lean_body_mass_janmahasatian_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass (kg) by Janmahasatian 2005, the SUL of modern PERCIST practice.

    ``BMI = W / H²``; male ``9270 W / (6680 + 216 BMI)``, female ``9270 W / (8780 + 244 BMI)``.

    References
    ----------
    .. [1] Janmahasatian S et al. Clin Pharmacokinet 2005;44:1051-65.

    Examples
    --------
    >>> round(lean_body_mass_janmahasatian_kg(72.0, 1.78, "M"), 2)
    57.6
    """
    bmi = weight_kg / height_m**2
    if sex.upper() == "F":
        return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)
    return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)


def _dt_at(day: _dt.date, hh: int, mm: int, ss: int) -> _dt.datetime:
    return _dt.datetime(day.year, day.month, day.day, hh, mm, ss)


def schedule_for(name: str) -> TimepointSchedule:
    """The fixed schedule of timepoint ``name`` (one of :data:`TIMEPOINTS`).

    Doses are about 3.7 MBq/kg, uptake times 62-63 min (within PERCIST's 15 min
    comparability window), and the patient loses weight after therapy.
    """
    if name == "baseline":
        day = INFUSION_DATE - _dt.timedelta(days=2)
        inj = _dt_at(day, 9, 12, 0)
        start = inj + _dt.timedelta(seconds=62 * 60 + 30)
        return TimepointSchedule(
            name=name,
            day_after_infusion=-2,
            vendor=VendorConvention.SIEMENS_BQML,
            weight_kg=72.0,
            height_m=1.78,
            injected_dose_bq=266_400_000.0,
            injection=inj,
            scan_start=start,
            bed_duration_s=120.0,
            bed_gap_s=12.0,
            series_time=start,
            patient_shift_mm=(0.0, 0.0, 0.0),
            manufacturer="SIEMENS",
            model_name="Biograph-like (synthetic)",
        )
    if name == "month1":
        day = INFUSION_DATE + _dt.timedelta(days=32)
        inj = _dt_at(day, 10, 5, 0)
        start = inj + _dt.timedelta(seconds=61 * 60 + 40)
        return TimepointSchedule(
            name=name,
            day_after_infusion=32,
            vendor=VendorConvention.PHILIPS_CNTS,
            weight_kg=70.5,
            height_m=1.78,
            injected_dose_bq=262_000_000.0,
            injection=inj,
            scan_start=start,
            bed_duration_s=90.0,
            bed_gap_s=10.0,
            series_time=start,
            patient_shift_mm=(4.0, -3.0, 6.0),
            manufacturer="Philips",
            model_name="Ingenuity TF-like (synthetic)",
            philips_activity_scale_bqml_per_count=3.7,
        )
    if name == "month3":
        day = INFUSION_DATE + _dt.timedelta(days=90)
        inj = _dt_at(day, 8, 48, 0)
        start = inj + _dt.timedelta(seconds=62 * 60 + 10)
        return TimepointSchedule(
            name=name,
            day_after_infusion=90,
            vendor=VendorConvention.GE_BQML_POSTPROCESSED,
            weight_kg=69.0,
            height_m=1.78,
            injected_dose_bq=255_000_000.0,
            injection=inj,
            scan_start=start,
            bed_duration_s=150.0,
            bed_gap_s=15.0,
            # post-processing re-wrote SeriesTime 41 min 34 s after the scan start
            series_time=start + _dt.timedelta(seconds=41 * 60 + 34),
            patient_shift_mm=(-3.0, 2.0, -5.0),
            manufacturer="GE MEDICAL SYSTEMS",
            model_name="Discovery-like (synthetic)",
        )
    raise InvalidParameterError(format_message(f"unknown timepoint {name!r}",
                                               fix=f"use one of {', '.join(TIMEPOINTS)}"))
