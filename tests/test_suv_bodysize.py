"""Body-size formulas of emlesion.suv.bodysize against hand-computed values.

Reference patient of the IBSI DROs: W = 70 kg, H = 1.75 m (175 cm), BMI = 70 / 1.75² =
22.857142857. (W/H)² with H in cm = (70/175)² = 0.16.
"""

from __future__ import annotations

import pytest

from emlesion.errors import InvalidAttributeError
from emlesion.suv import bodysize


def test_lbm_james128() -> None:
    # M: 1.10*70 - 128*0.16 = 77 - 20.48 = 56.52
    assert bodysize.lbm_james128_kg(70, 1.75, "M") == pytest.approx(56.52, rel=1e-12)
    # F: 1.07*70 - 148*0.16 = 74.9 - 23.68 = 51.22
    assert bodysize.lbm_james128_kg(70, 1.75, "F") == pytest.approx(51.22, rel=1e-12)
    # O: (56.52 + 51.22) / 2 = 53.87
    assert bodysize.lbm_james128_kg(70, 1.75, "O") == pytest.approx(53.87, rel=1e-12)


def test_lbm_morgan_coefficient_120() -> None:
    # M: 1.10*70 - 120*0.16 = 77 - 19.2 = 57.8 ; F identical to James: 51.22
    assert bodysize.lbm_morgan_kg(70, 1.75, "M") == pytest.approx(57.8, rel=1e-12)
    assert bodysize.lbm_morgan_kg(70, 1.75, "F") == pytest.approx(51.22, rel=1e-12)


def test_lbm_janmahasatian() -> None:
    # M: 9270*70 / (6680 + 216*22.857142857) = 648900 / 11617.142857 = 55.857...
    assert bodysize.lbm_janmahasatian_kg(70, 1.75, "M") == pytest.approx(
        648900 / (6680 + 216 * 70 / 1.75**2), rel=1e-12)
    assert bodysize.lbm_janmahasatian_kg(70, 1.75, "M") == pytest.approx(55.8572, abs=1e-4)
    # F: 648900 / (8780 + 244*22.857142857) = 648900 / 14357.142857 = 45.1970
    assert bodysize.lbm_janmahasatian_kg(70, 1.75, "F") == pytest.approx(45.1970, abs=1e-4)
    # O: (55.8572 + 45.1970) / 2 = 50.5271
    assert bodysize.lbm_janmahasatian_kg(70, 1.75, "O") == pytest.approx(50.5271, abs=1e-4)


def test_bsa_dubois() -> None:
    # 70**0.425 = exp(0.425*ln 70) = exp(1.805610) = 6.083684
    # 175**0.725 = exp(0.725*ln 175) = exp(3.744470) = 42.286582
    # 0.007184 * 6.083684 * 42.286582 = 1.848143 m²
    assert bodysize.bsa_dubois_m2(70, 1.75) == pytest.approx(1.848143, abs=1e-6)


def test_ibw() -> None:
    # M: 48.0 + 1.06*(175-152) = 48 + 24.38 = 72.38 ; F: 45.5 + 0.91*23 = 66.43
    assert bodysize.ibw_kg(1.75, "M") == pytest.approx(72.38, rel=1e-12)
    assert bodysize.ibw_kg(1.75, "F") == pytest.approx(66.43, rel=1e-12)
    # O (IBSI DRO_2_2): (72.38 + 66.43) / 2 = 69.405
    assert bodysize.ibw_kg(1.75, "O") == pytest.approx(69.405, rel=1e-12)


def test_james_is_non_monotonic() -> None:
    # male peak at W = 1.10 H²/256 = 1.10*175²/256 = 131.59 kg; heavier gives less LBM
    assert bodysize.lbm_james128_kg(170, 1.75, "M") < bodysize.lbm_james128_kg(131.6, 1.75, "M")


@pytest.mark.parametrize("sex", ["", "X", "male"])
def test_bad_sex(sex: str) -> None:
    with pytest.raises(InvalidAttributeError, match="PatientSex"):
        bodysize.lbm_james128_kg(70, 1.75, sex)


def test_bad_weight_height() -> None:
    with pytest.raises(InvalidAttributeError, match="PatientWeight"):
        bodysize.bsa_dubois_m2(0, 1.75)
    with pytest.raises(InvalidAttributeError, match="PatientSize"):
        bodysize.ibw_kg(-1.0, "M")
