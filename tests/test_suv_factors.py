"""Rules and rejections of emlesion.suv.compute_suv_factors on synthetic headers.

Default synthetic header (tests/suv_headers.py): W = 70 kg, H = 1.75 m, male, D = 370 MBq
F-18 (T½ = 6586.2 s) injected 10:00:00, series/acquisition 11:00:00 -> elapsed 3600 s.
Hand computation of the baseline SUVbw factor (also domain-reference section 1.9):
  2^(-3600/6586.2) = exp(-0.693147*0.546597) = exp(-0.378872) = 0.684633
  D_ref = 370e6 * 0.684633 = 2.533142e8 Bq ;  F = 70000 g / 2.533142e8 Bq = 2.763367e-4 g/Bq
"""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings

import numpy as np
import pytest
from suv_headers import make_header, make_headers

from emlesion.errors import (
    DicomQuirkWarning,
    InvalidAttributeError,
    MissingAttributeError,
    SUVError,
    SUVWarning,
    UnsupportedDataError,
)
from emlesion.io.geometry import Grid
from emlesion.io.volume import SeriesIdentity, Volume
from emlesion.suv import (
    DEFAULT_SUL,
    Normalization,
    ReferenceTimeRule,
    compute_suv,
    compute_suv_factors,
    frame_average_time_s,
)

UTC = dt.timezone.utc
F_BW = 2.763367e-4  # hand computation in the module docstring
LN2 = math.log(2.0)


def factors(headers: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
    """compute_suv_factors with warnings silenced (they are checked through .warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compute_suv_factors(headers, *args, **kwargs)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- BQML
def test_baseline_bqml_start() -> None:
    f = factors(make_headers())
    assert f.factor == pytest.approx(F_BW, rel=1e-6)
    assert f.rule == "BQML/START: SeriesDateTime (QIBA step 1)"
    assert f.reference_time_rule is ReferenceTimeRule.SERIES
    assert f.elapsed_s == 3600.0
    assert f.decayed_dose_bq == pytest.approx(2.533142e8, rel=1e-6)
    # domain reference 1.9: a 5000 Bq/mL voxel -> SUVbw 1.38
    assert round(5000 * f.factor, 2) == 1.38
    assert f.warnings == ()


def test_admin_uses_undecayed_dose() -> None:
    # F = 70000 / 370e6 = 1.891892e-4
    f = factors(make_headers(DecayCorrection="ADMIN"))
    assert f.factor == pytest.approx(1.891892e-4, rel=1e-6)
    assert f.rule.startswith("BQML/ADMIN")
    assert f.reference_time is None


def test_none_per_slice_frame_average() -> None:
    # slices acquired at 11:00 and 11:05 (300 s frames), image NOT decay corrected
    hs = make_headers(2, [{"AcquisitionTime": "110000"}, {"AcquisitionTime": "110500"}],
                      DecayCorrection="NONE", CorrectedImage=["ATTN", "SCAT"])
    f = factors(hs)
    lam = LN2 / 6586.2
    # frame-average factor: λT = 0.0315727 -> (1 - e^-λT)/λT = 0.984378
    avg = (1 - math.exp(-lam * 300)) / (lam * 300)
    assert avg == pytest.approx(0.984378, abs=1e-6)
    expected = [70000 / (370e6 * avg * math.exp(-lam * t)) for t in (3600, 3900)]
    assert f.factors == pytest.approx(expected, rel=1e-9)
    assert f.factor is None  # differs per slice
    assert f.rule.startswith("BQML/NONE")


def test_per_slice_slopes_raw_factors() -> None:
    hs = make_headers(3, [{"RescaleSlope": "4"}, {"RescaleSlope": "3"}, {"RescaleSlope": "4"}])
    f = factors(hs)
    assert f.factor == pytest.approx(F_BW, rel=1e-6)  # factors apply to rescaled values
    assert f.raw_factors == pytest.approx([4 * F_BW, 3 * F_BW, 4 * F_BW], rel=1e-6)


def test_nonzero_intercept_warns() -> None:
    with pytest.warns(DicomQuirkWarning, match="RescaleIntercept"):
        compute_suv_factors(make_headers(RescaleIntercept="5"))


# ----------------------------------------------------------------------------- reference time
def test_series_after_acquisition_uses_ge_private_found_by_creator() -> None:
    # SeriesTime 11:30 is after the acquisition (11:00): QIBA step 2, GE scan datetime 10:59:00.
    # The GEMS block sits at (0009,11xx) because another creator owns (0009,10xx).
    hs = []
    for _ in range(2):
        ds = make_header(SeriesTime="113000")
        ds.private_block(0x0009, "OTHER VENDOR", create=True).add_new(0x0D, "LO", "decoy")
        ds.private_block(0x0009, "GEMS_PETD_01", create=True).add_new(
            0x0D, "DT", "20250101105900")
        assert (0x0009, 0x110D) in ds
        hs.append(ds)
    f = factors(hs)
    assert f.reference_time_rule is ReferenceTimeRule.GE_PRIVATE
    assert f.reference_time == dt.datetime(2025, 1, 1, 10, 59, tzinfo=UTC)
    assert f.elapsed_s == 3540.0


def test_series_after_acquisition_backcomputes_from_frame() -> None:
    # QIBA step 3: t_ref = t_acq - FRT + T_ave = 11:00:00 - 150 s + 149.6053 s
    # T_ave = ln(λT / (1 - e^-λT)) / λ, λ = ln2/6586.2, T = 300 s  -> 149.6053 s
    f = factors(make_headers(SeriesTime="113000"))
    t_ave = frame_average_time_s(300, 6586.2)
    assert t_ave == pytest.approx(149.6053, abs=1e-4)
    assert f.reference_time_rule is ReferenceTimeRule.FRAME
    assert f.elapsed_s == pytest.approx(3600 - 150 + t_ave, abs=1e-5)


def test_last_resort_earliest_acquisition_warns() -> None:
    hs = make_headers(2, [{"AcquisitionTime": "110500"}, {"AcquisitionTime": "110000"}],
                      SeriesTime="113000", FrameReferenceTime=None)
    with pytest.warns(SUVWarning, match="earliest acquisition"):
        f = compute_suv_factors(hs)
    assert f.reference_time_rule is ReferenceTimeRule.EARLIEST_ACQUISITION
    assert f.reference_time == dt.datetime(2025, 1, 1, 11, 0, tzinfo=UTC)


def test_option_b_disagreement_warns_and_frame_method() -> None:
    # acquisition at 11:30 but SeriesTime 11:00: QIBA takes 11:00, the frame time is
    # 11:30 - 150 + 149.6053 s = 11:29:59.6 -> 1799.6 s apart (> 60 s) -> SUVWarning
    hs = make_headers(AcquisitionTime="113000")
    with pytest.warns(SUVWarning, match="differs from the frame-based time"):
        f = compute_suv_factors(hs)
    assert f.reference_time_rule is ReferenceTimeRule.SERIES
    assert f.reference_time_difference_s == pytest.approx(-1799.6053, abs=1e-3)
    g = factors(hs, reference_time="frame")
    assert g.reference_time_rule is ReferenceTimeRule.FRAME_OPTION_B
    assert g.elapsed_s == pytest.approx(5400 - 150 + 149.6053, abs=1e-3)


def test_option_b_needs_frame_timing() -> None:
    with pytest.raises(MissingAttributeError, match=r"FrameReferenceTime \(0054,1300\)"):
        factors(make_headers(FrameReferenceTime=None), reference_time="frame")


# ----------------------------------------------------------------------------- injection time
def test_start_datetime_preferred_over_time() -> None:
    # DT says 10:10, TM says 10:00: the DT wins -> elapsed 3000 s
    f = factors(make_headers(RadiopharmaceuticalStartDateTime="20250101101000"))
    assert f.elapsed_s == 3000.0
    assert f.injection_time_source == "RadiopharmaceuticalStartDateTime"


def test_time_only_on_series_date() -> None:
    f = factors(make_headers(RadiopharmaceuticalStartDateTime=None))
    assert f.elapsed_s == 3600.0
    assert f.injection_time_source == "RadiopharmaceuticalStartTime on SeriesDate"


def test_midnight_rule_once_with_warning() -> None:
    # scan 00:30 on 2 Jan, injected 23:30 (TM only) -> 1 Jan 23:30, elapsed 3600 s
    hs = make_headers(SeriesDate="20250102", AcquisitionDate="20250102", SeriesTime="003000",
                      AcquisitionTime="003000", RadiopharmaceuticalStartDateTime=None,
                      RadiopharmaceuticalStartTime="233000")
    with pytest.warns(SUVWarning, match="previous day"):
        f = compute_suv_factors(hs)
    assert f.elapsed_s == 3600.0


def test_timezone_offsets_honoured() -> None:
    # series 11:00 at +0100 (10:00 UTC); injection DT 09:00+0000 -> elapsed 3600 s
    hs = make_headers(TimezoneOffsetFromUTC="+0100",
                      RadiopharmaceuticalStartDateTime="20250101090000+0000")
    assert factors(hs).elapsed_s == 3600.0



def test_explicit_dt_offset_without_timezone_tag_is_not_mixed_with_utc() -> None:
    # Bug: RadiopharmaceuticalStartDateTime 10:00+0100 (= 09:00 UTC) next to SeriesTime
    # 11:00 without TimezoneOffsetFromUTC: the TM was taken as UTC, giving 7200 s (SUV 46 %
    # too high). DICOM PS3.3 C.12.1.1.8: DA/TM are local time; the only zone the instance
    # names is +0100, so series 11:00+0100 - injection 10:00+0100 = 3600 s, factor F_BW.
    hs = make_headers(RadiopharmaceuticalStartDateTime="20250101100000+0100")
    with pytest.warns(SUVWarning, match="TimezoneOffsetFromUTC"):
        f = compute_suv_factors(hs)
    assert f.elapsed_s == 3600.0
    assert f.factor == pytest.approx(F_BW, rel=1e-6)
    assert f.reference_time == dt.datetime(2025, 1, 1, 10, 0, tzinfo=UTC)


# ----------------------------------------------------------------------------- sanity
def test_dose_in_mbq_corrected_with_warning() -> None:
    with pytest.warns(SUVWarning, match="looks like MBq"):
        f = compute_suv_factors(make_headers(RadionuclideTotalDose="370"))
    assert f.injected_dose_bq == 370e6
    assert f.factor == pytest.approx(F_BW, rel=1e-6)


def test_weight_in_grams_corrected_with_warning() -> None:
    with pytest.warns(SUVWarning, match="looks like grams"):
        f = compute_suv_factors(make_headers(PatientWeight="70000"))
    assert f.weight_kg == 70.0
    assert f.factor == pytest.approx(F_BW, rel=1e-6)


def test_height_in_cm_corrected_with_warning() -> None:
    with pytest.warns(SUVWarning, match="looks like centimetres"):
        f = compute_suv_factors(make_headers(PatientSize="175"), "ibw")
    assert f.height_m == 1.75
    # IBW male 72.38 kg -> F = 72380 / 2.533142e8
    assert f.factor == pytest.approx(72380 / 2.533142e8, rel=1e-6)


def test_half_life_from_radionuclide_code() -> None:
    ga68 = [{"CodeValue": "C-131A1", "CodingSchemeDesignator": "SRT",
             "CodeMeaning": "^68^Gallium"}]
    with pytest.warns(SUVWarning, match="GA68"):
        f = compute_suv_factors(make_headers(RadionuclideHalfLife=None,
                                             RadionuclideCodeSequence=ga68))
    assert f.half_life_s == 4057.7
    # 70000 / (370e6 * 2^(-3600/4057.7)) = 70000 / (370e6 * 0.540662) = 3.49922e-4
    assert f.factor == pytest.approx(70000 / (370e6 * 2 ** (-3600 / 4057.7)), rel=1e-12)
    assert f.factor == pytest.approx(3.49922e-4, rel=1e-5)


# ----------------------------------------------------------------------------- rejections
def test_reject_missing_weight() -> None:
    with pytest.raises(MissingAttributeError, match=r"PatientWeight \(0010,1030\)") as e:
        factors(make_headers(PatientWeight=None))
    assert "[series 1.2.3.4.5]" in str(e.value)


def test_reject_zero_dose() -> None:
    with pytest.raises(MissingAttributeError, match=r"RadionuclideTotalDose is 0"):
        factors(make_headers(RadionuclideTotalDose="0"))


def test_reject_no_half_life_no_code() -> None:
    with pytest.raises(MissingAttributeError, match="names no known nuclide"):
        factors(make_headers(RadionuclideHalfLife=None, RadionuclideCodeSequence=[]))


def test_reject_no_attn() -> None:
    with pytest.raises(SUVError, match="lacks ATTN"):
        factors(make_headers(CorrectedImage=["DECY", "SCAT"]))


def test_reject_no_decy_for_start() -> None:
    with pytest.raises(SUVError, match="lacks DECY although DecayCorrection is START"):
        factors(make_headers(CorrectedImage=["ATTN", "SCAT"]))


def test_reject_propcps() -> None:
    with pytest.raises(UnsupportedDataError, match="Units PROPCPS cannot be converted"):
        factors(make_headers(Units="PROPCPS"))


def test_reject_injection_after_scan_after_midnight_rule() -> None:
    # SeriesDate 2 Jan 12:00 is after the acquisition (1 Jan 11:00, no frame timing) so the
    # reference is 1 Jan 11:00; TM 12:00 on the series date (2 Jan 12:00) is 25 h later,
    # one day earlier (1 Jan 12:00) is still after the scan -> refused
    hs = make_headers(SeriesDate="20250102", SeriesTime="120000", FrameReferenceTime=None,
                      RadiopharmaceuticalStartDateTime=None,
                      RadiopharmaceuticalStartTime="120000")
    with pytest.raises(SUVError, match="even after the midnight rule"):
        factors(hs)


def test_reject_injection_datetime_after_scan() -> None:
    with pytest.raises(SUVError, match="is after the scan reference time"):
        factors(make_headers(RadiopharmaceuticalStartDateTime="20250101113000"))


def test_reject_cnts_without_philips_factor() -> None:
    with pytest.raises(MissingAttributeError, match="Units CNTS without a non-zero Philips"):
        factors(make_headers(Units="CNTS"))


def test_reject_cnts_with_foreign_creator_only() -> None:
    # the 7053 group belongs to another creator: the element is never read by its number
    ds = make_header(Units="CNTS")
    ds.private_block(0x7053, "SOMEONE ELSE", create=True).add_new(0x00, "DS", "0.0005")
    with pytest.raises(MissingAttributeError, match="Philips"):
        factors([ds])


@pytest.mark.filterwarnings("ignore:Invalid value for VR DT")
def test_reject_malformed_dt() -> None:
    with pytest.raises(InvalidAttributeError,
                       match=r"malformed DT .*RadiopharmaceuticalStartDateTime \(0018,1078\)"):
        factors(make_headers(RadiopharmaceuticalStartDateTime="2025-01-01 10:00"))


def test_reject_missing_height_for_lbm() -> None:
    with pytest.raises(MissingAttributeError, match=r"PatientSize \(0010,1020\)"):
        factors(make_headers(PatientSize=None), "lbm-james128")


def test_reject_mixed_units() -> None:
    hs = make_headers(2, [{"Units": "BQML"}, {"Units": "CNTS"}])
    with pytest.raises(InvalidAttributeError, match="Units differs between slices"):
        factors(hs)


# ----------------------------------------------------------------------------- vendors
def test_cnts_philips_suv_factor_by_creator() -> None:
    f = factors(make_headers(Units="CNTS", philips={0x00: "0.0005", 0x09: "0.5"}))
    assert f.factor == 0.0005
    assert f.rule == "CNTS: Philips SUV scale factor (7053,xx00)"


def test_cnts_activity_factor_then_bqml() -> None:
    # A = counts * 0.5 Bq/mL; SUVbw factor = 0.5 * F_BW
    f = factors(make_headers(Units="CNTS", philips={0x09: "0.5"}))
    assert f.factor == pytest.approx(0.5 * F_BW, rel=1e-6)
    assert "activity concentration" in f.rule


def test_cnts_literal_fallback_warns() -> None:
    hs = make_headers(Units="CNTS", philips={0x00: "0.0005"}, philips_creator=None)
    with pytest.warns(DicomQuirkWarning, match="no private creator"):
        f = compute_suv_factors(hs)
    assert f.factor == 0.0005
    assert any("no private creator" in w for w in f.warnings)


def test_gml_lbmjames128_back_to_bw() -> None:
    # stored SUVlbm(James, M) -> SUVbw = SUVlbm * W / LBM = * 70 / 56.52 = * 1.238500
    f = factors(make_headers(Units="GML", SUVType="LBMJAMES128"))
    assert f.factor == pytest.approx(70 / 56.52, rel=1e-12)
    assert f.factor == pytest.approx(1.238500, rel=1e-6)


def test_cm2ml_back_to_bw() -> None:
    # SUVbw = SUVbsa * W[g] / BSA[cm²] = 70000 / 18481.430 = 3.787582
    f = factors(make_headers(Units="CM2ML", SUVType="BSA"))
    assert f.factor == pytest.approx(3.787582, rel=1e-6)


def test_gml_with_bsa_type_rejected() -> None:
    with pytest.raises(UnsupportedDataError, match="contradictory"):
        factors(make_headers(Units="GML", SUVType="BSA"))


def test_gml_empty_suv_type_assumes_bw_with_warning() -> None:
    with pytest.warns(SUVWarning, match="assuming BW"):
        f = compute_suv_factors(make_headers(Units="GML"))
    assert f.factor == 1.0


# ----------------------------------------------------------------------------- normalisations
@pytest.mark.parametrize(
    ("name", "sex", "body_g", "quantity"),
    [
        ("bw", "M", 70000.0, "SUVbw"),
        ("lbm-james128", "M", 56520.0, "SULjames128"),     # 1.10*70 - 128*0.16
        ("lbm-james128", "F", 51220.0, "SULjames128"),     # 1.07*70 - 148*0.16
        ("lbm-morgan", "M", 57800.0, "SULmorgan"),         # 1.10*70 - 120*0.16
        ("sul-janmahasatian", "M", 55857.15, "SULjanma"),  # 9270*70/(6680+216*22.857)
        ("sul-janmahasatian", "O", 50527.06, "SULjanma"),  # mean of 55857.15 and 45196.97
        ("ibw", "O", 69405.0, "SUVibw"),                   # (72.38 + 66.43)/2 kg
        ("bsa-dubois", "M", 18481.43, "SUVbsa"),           # 1.848143 m² in cm²
    ],
)
def test_normalizations(name: str, sex: str, body_g: float, quantity: str) -> None:
    # factor = body size / D_ref, D_ref = 2.533142e8 Bq
    f = factors(make_headers(PatientSex=sex), name)
    assert f.quantity == quantity
    assert f.body_size == pytest.approx(body_g, rel=2e-6)
    assert f.factor == pytest.approx(body_g / 2.533142e8, rel=2e-6)


def test_normalization_enum() -> None:
    assert [n.is_lean_body for n in Normalization] == [False, True, True, True, False, False]
    assert DEFAULT_SUL is Normalization.coerce("sul") is Normalization.SUL_JANMAHASATIAN
    assert Normalization.coerce("SUVbw") is Normalization.BW
    with pytest.raises(InvalidAttributeError, match="unknown SUV normalisation"):
        Normalization.coerce("lbm")


def test_sex_override() -> None:
    f = factors(make_headers(PatientSex=None), "lbm-james128", sex="F")
    assert f.body_size == pytest.approx(51220.0, rel=1e-9)


# ----------------------------------------------------------------------------- provenance / Volume
def test_to_dict_is_json_and_str_is_informative() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = compute_suv_factors(make_headers(RadionuclideTotalDose="370"), "sul")
    d = json.loads(json.dumps(f.to_dict()))
    assert d["normalization"] == "sul-janmahasatian"
    assert d["rule"].endswith("-> SULjanma")
    assert d["injection_time"] == "2025-01-01T10:00:00+00:00"
    assert d["reference_time_rule"] == "series"
    assert len(d["warnings"]) == 1 and "MBq" in d["warnings"][0]
    assert "SULjanma" in repr(f) and "1 warning" in repr(f)
    assert "decayed dose (Bq)" in str(f) and "warning:" in str(f)


def _volume(headers: list, array: np.ndarray, units: str = "BQML") -> Volume:
    return Volume(array, Grid(array.shape, (0, 0, 0), (2, 2, 3)),
                  SeriesIdentity(series_instance_uid="1.2.3.4.5", modality="PT"),
                  headers=tuple(headers), units=units)


def test_compute_suv_on_volume_slice_by_slice() -> None:
    hs = make_headers(2, [{"AcquisitionTime": "110000"}, {"AcquisitionTime": "110500"}],
                      DecayCorrection="NONE", CorrectedImage=["ATTN"])
    arr = np.full((2, 3, 4), 5000.0, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = compute_suv_factors(hs)
        suv = compute_suv(_volume(hs, arr))
    assert suv.units == "SUVbw"
    # independent: plain numpy multiplication of each slice by its factor
    np.testing.assert_allclose(suv.array[0], 5000 * f.factors[0], rtol=1e-6)
    np.testing.assert_allclose(suv.array[1], 5000 * f.factors[1], rtol=1e-6)
    step = suv.provenance[-1]
    assert step.operation == "emlesion.suv.compute_suv"
    assert step.inputs["factors"] == pytest.approx(list(f.factors))
    json.dumps(step.to_dict())


def test_compute_suv_records_warnings_in_provenance() -> None:
    hs = make_headers(RadionuclideTotalDose="370")
    with pytest.warns(SUVWarning):
        suv = compute_suv(_volume(hs, np.ones((3, 2, 2), np.float32)))
    assert any("MBq" in w for w in suv.provenance[-1].warnings)


def test_compute_suv_refuses_twice() -> None:
    hs = make_headers()
    with pytest.raises(UnsupportedDataError, match="refusing to convert twice"):
        factors_vol = _volume(hs, np.ones((3, 2, 2), np.float32), units="SUVbw")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compute_suv(factors_vol)


def test_no_headers() -> None:
    with pytest.raises(MissingAttributeError, match="no DICOM headers"):
        compute_suv_factors([])


def test_ge_private_literal_fallback_without_creator() -> None:
    # IBSI DRO_3_3 style: (0009,100D) present but group 0009 has no private creator
    hs = []
    for _ in range(2):
        ds = make_header(SeriesTime="113000")
        ds.add_new(0x0009100D, "DT", "20250101105900")
        hs.append(ds)
    with pytest.warns(DicomQuirkWarning, match="GE private scan datetime read from the literal"):
        f = compute_suv_factors(hs)
    assert f.reference_time_rule is ReferenceTimeRule.GE_PRIVATE
    assert f.elapsed_s == 3540.0


def test_reject_missing_injection_time() -> None:
    hs = make_headers(RadiopharmaceuticalStartDateTime=None, RadiopharmaceuticalStartTime=None)
    with pytest.raises(MissingAttributeError,
                       match=r"RadiopharmaceuticalStartDateTime \(0018,1078\)"):
        factors(hs)


def test_reject_missing_acquisition_time() -> None:
    with pytest.raises(MissingAttributeError, match=r"AcquisitionTime \(0008,0032\)"):
        factors(make_headers(AcquisitionTime=None))


def test_admin_needs_no_times() -> None:
    # ADMIN: the image is corrected to the injection time; no time attribute is read
    hs = make_headers(DecayCorrection="ADMIN", AcquisitionTime=None,
                      RadiopharmaceuticalStartDateTime=None, RadiopharmaceuticalStartTime=None)
    assert factors(hs).factor == pytest.approx(70000 / 370e6, rel=1e-12)
