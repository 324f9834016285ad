"""Body-size formulas used to normalise SUV: lean body mass, body surface area, ideal weight.

Pure functions of weight (kg), height (m) and sex. Sex is ``"M"``, ``"F"`` or ``"O"``;
for ``"O"`` (other) every sex-specific formula returns the mean of its male and female
values, as the IBSI SUV manual suggests [1]_.

* :func:`lbm_james128_kg`: M ``1.10 W − 128 (W/H)²``; F ``1.07 W − 148 (W/H)²`` [1]_ [3]_
* :func:`lbm_morgan_kg`: M ``1.10 W − 120 (W/H)²``; F ``1.07 W − 148 (W/H)²`` [1]_ [2]_
* :func:`lbm_janmahasatian_kg`: M ``9270 W / (6680 + 216 BMI)``;
  F ``9270 W / (8780 + 244 BMI)`` [1]_ [4]_
* :func:`bsa_dubois_m2`: ``0.007184 · W^0.425 · H^0.725`` (m²) [1]_ [2]_
* :func:`ibw_kg`: M ``48.0 + 1.06 (H − 152)``; F ``45.5 + 0.91 (H − 152)`` [2]_ [3]_

with W in kg, H in cm and BMI = W / H_m².

The IBW coefficients are the ones used by PixelMed and 3D Slicer (not the textbook Devine
formula); emlesion does not cap IBW at the actual weight (PixelMed behaviour; Slicer caps).
The James formulas are non-monotonic in weight (they peak at ``W = 1.10 H²/256`` for men);
Janmahasatian is the recommended lean body mass for PERCIST SUL on modern data [5]_.

References
----------
.. [1] Vácha et al., "Comprehensive Manual for SUV Computation and Digital Reference
   Objects" (IBSI), https://oncoray.github.io/suv_computation/suv.html.
.. [2] PixelMed ``com/pixelmed/dicom/SUVTransform.java`` (D. Clunie).
.. [3] QIICR Slicer-PETDICOMExtension ``SUVFactorCalculator.cxx``.
.. [4] Janmahasatian S et al., Clin Pharmacokinet 2005;44:1051-65.
.. [5] Tahari AK et al., J Nucl Med 2014;55:1481-4 (PMC4337860).
"""

from __future__ import annotations

from collections.abc import Callable

from emlesion.errors import InvalidAttributeError, format_message
from emlesion.suv.enums import Normalization

__all__ = [
    "bsa_dubois_m2",
    "ibw_kg",
    "lbm_james128_kg",
    "lbm_janmahasatian_kg",
    "lbm_morgan_kg",
    "normalize_sex",
    "sex_specific_body_mass_kg",
]


def normalize_sex(sex: str) -> str:
    """Return ``"M"``, ``"F"`` or ``"O"`` for a PatientSex value.

    Raises
    ------
    InvalidAttributeError
        For any other value (including empty).
    """
    s = str(sex).strip().upper()
    if s not in ("M", "F", "O"):
        raise InvalidAttributeError(
            format_message(
                f"PatientSex {sex!r} is not M, F or O; sex-specific body-size formulas need it",
                attribute="PatientSex (0010,0040)",
                fix="enter M, F or O, or pass sex= explicitly",
            )
        )
    return s


def _by_sex(sex: str, male: Callable[[], float], female: Callable[[], float]) -> float:
    s = normalize_sex(sex)
    if s == "M":
        return male()
    if s == "F":
        return female()
    return 0.5 * (male() + female())


def _check(weight_kg: float, height_m: float | None = None) -> None:
    if not weight_kg > 0:
        raise InvalidAttributeError(
            format_message(f"weight must be > 0 kg, got {weight_kg}",
                           attribute="PatientWeight (0010,1030)")
        )
    if height_m is not None and not height_m > 0:
        raise InvalidAttributeError(
            format_message(f"height must be > 0 m, got {height_m}",
                           attribute="PatientSize (0010,1020)")
        )


def lbm_james128_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass after James (DICOM SUV Type ``LBMJAMES128``).

    Parameters
    ----------
    weight_kg : float
        Body weight in kg.
    height_m : float
        Height in metres.
    sex : {"M", "F", "O"}
        ``"O"`` gives the mean of the male and female values.

    Returns
    -------
    float
        Lean body mass in kg.

    Examples
    --------
    >>> round(lbm_james128_kg(70, 1.75, "M"), 2)   # 1.10*70 - 128*(70/175)**2
    56.52
    """
    _check(weight_kg, height_m)
    ratio2 = (weight_kg / (height_m * 100.0)) ** 2
    return _by_sex(sex, lambda: 1.10 * weight_kg - 128.0 * ratio2,
                   lambda: 1.07 * weight_kg - 148.0 * ratio2)


def lbm_morgan_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass after Morgan / Sugawara (DICOM SUV Type ``LBM``; male coefficient 120).

    Parameters
    ----------
    weight_kg : float
        Body weight in kg.
    height_m : float
        Height in metres.
    sex : {"M", "F", "O"}

    Returns
    -------
    float
        Lean body mass in kg.

    Examples
    --------
    >>> round(lbm_morgan_kg(70, 1.75, "M"), 2)   # 1.10*70 - 120*(70/175)**2
    57.8
    """
    _check(weight_kg, height_m)
    ratio2 = (weight_kg / (height_m * 100.0)) ** 2
    return _by_sex(sex, lambda: 1.10 * weight_kg - 120.0 * ratio2,
                   lambda: 1.07 * weight_kg - 148.0 * ratio2)


def lbm_janmahasatian_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass after Janmahasatian 2005 (DICOM SUV Type ``LBMJANMA``).

    Parameters
    ----------
    weight_kg : float
        Body weight in kg.
    height_m : float
        Height in metres.
    sex : {"M", "F", "O"}

    Returns
    -------
    float
        Lean body mass in kg.

    Examples
    --------
    >>> round(lbm_janmahasatian_kg(70, 1.75, "M"), 3)  # BMI 22.857; 9270*70/(6680+216*BMI)
    55.857
    """
    _check(weight_kg, height_m)
    bmi = weight_kg / height_m**2
    return _by_sex(sex, lambda: 9270.0 * weight_kg / (6680.0 + 216.0 * bmi),
                   lambda: 9270.0 * weight_kg / (8780.0 + 244.0 * bmi))


def bsa_dubois_m2(weight_kg: float, height_m: float) -> float:
    """Body surface area after DuBois & DuBois.

    Parameters
    ----------
    weight_kg : float
        Body weight in kg.
    height_m : float
        Height in metres.

    Returns
    -------
    float
        Body surface area in m².

    Examples
    --------
    >>> round(bsa_dubois_m2(70, 1.75), 4)  # 0.007184 * 70**0.425 * 175**0.725
    1.8481
    """
    _check(weight_kg, height_m)
    return 0.007184 * weight_kg**0.425 * (height_m * 100.0) ** 0.725


def ibw_kg(height_m: float, sex: str) -> float:
    """Ideal body weight (PixelMed / Slicer coefficients, not capped at the actual weight).

    Parameters
    ----------
    height_m : float
        Height in metres.
    sex : {"M", "F", "O"}

    Returns
    -------
    float
        Ideal body weight in kg.

    Examples
    --------
    >>> round(ibw_kg(1.75, "M"), 2)  # 48.0 + 1.06*(175 - 152)
    72.38
    """
    _check(1.0, height_m)
    h_cm = height_m * 100.0
    return _by_sex(sex, lambda: 48.0 + 1.06 * (h_cm - 152.0), lambda: 45.5 + 0.91 * (h_cm - 152.0))


def sex_specific_body_mass_kg(norm: Normalization, weight_kg: float, height_m: float,
                              sex: str) -> float:
    """The body mass (kg) of a sex-specific normalisation: IBW or one of the LBM formulas.

    One dispatch for the DICOM-header SUV engine (:mod:`emlesion.suv.factors`) and the
    declared NIfTI route (:mod:`emlesion.suv.declared`); body weight and BSA are not
    sex-specific and are not handled here.

    Raises
    ------
    InvalidAttributeError
        ``norm`` is body weight or BSA.
    """
    if norm is Normalization.IBW:
        return ibw_kg(height_m, sex)
    if norm is Normalization.LBM_JAMES128:
        return lbm_james128_kg(weight_kg, height_m, sex)
    if norm is Normalization.LBM_MORGAN:
        return lbm_morgan_kg(weight_kg, height_m, sex)
    if norm is Normalization.SUL_JANMAHASATIAN:
        return lbm_janmahasatian_kg(weight_kg, height_m, sex)
    raise InvalidAttributeError(format_message(
        f"{norm.value} is not a sex-specific body mass",
        fix="use bsa_dubois_m2 or the body weight for this normalisation"))
