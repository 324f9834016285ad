"""compute_suv_image (the SUV image with its typed factors) and renormalize_suv_factors.

Synthetic headers of tests/suv_headers.py: W = 70 kg, H = 1.75 m, male, D = 370 MBq F-18
injected 10:00:00, scan 11:00:00 -> D_ref = 2.533142e8 Bq (hand computation in the docstring
of tests/test_suv_factors.py). The SUL of an SUVbw image must be the same conversion rescaled by
the body-size ratio, so it is compared bit for bit with an independent full computation.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from suv_headers import make_headers

from emlesion.errors import InvalidParameterError, MissingAttributeError, SUVWarning
from emlesion.io.geometry import Grid
from emlesion.io.volume import SeriesIdentity, Volume
from emlesion.suv import (
    Normalization,
    SUVImage,
    compute_suv,
    compute_suv_factors,
    compute_suv_image,
    renormalize_suv_factors,
)

D_REF_BQ = 2.533142e8  # tests/test_suv_factors.py docstring


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _volume(headers: list[Any], array: np.ndarray) -> Volume:
    return Volume(array, Grid(array.shape, (0, 0, 0), (2, 2, 3)),
                  SeriesIdentity(series_instance_uid="1.2.3.4.5", modality="PT"),
                  headers=tuple(headers), units=str(headers[0].Units))


# the conversion branches of compute_suv_factors: BQML START, BQML NONE (per-slice factors),
# BQML ADMIN, GML/BW (stored SUVbw)
BRANCHES = {
    "bqml-start": {},
    "bqml-none": {"per_slice": [{"AcquisitionTime": "110000"}, {"AcquisitionTime": "110500"},
                                {"AcquisitionTime": "111000"}],
                  "DecayCorrection": "NONE", "CorrectedImage": ["ATTN"]},
    "bqml-admin": {"DecayCorrection": "ADMIN"},
    "gml-bw": {"Units": "GML", "SUVType": "BW"},
}


@pytest.mark.parametrize("branch", sorted(BRANCHES))
@pytest.mark.parametrize("norm", [n for n in Normalization if n is not Normalization.BW])
def test_renormalized_factors_equal_a_full_computation(branch: str, norm: Normalization) -> None:
    headers = make_headers(3, **BRANCHES[branch])
    bw = _quiet(compute_suv_factors, headers, "bw")
    direct = _quiet(compute_suv_factors, headers, norm)
    derived = _quiet(renormalize_suv_factors, bw, norm, headers)
    assert derived.factors == direct.factors  # bit for bit: same arithmetic
    assert (derived.quantity, derived.normalization, derived.rule) == (
        direct.quantity, direct.normalization, direct.rule)
    assert (derived.body_size, derived.body_size_unit, derived.height_m, derived.sex) == (
        direct.body_size, direct.body_size_unit, direct.height_m, direct.sex)
    # the decay is not recomputed: same times and doses as the SUVbw factors
    assert (derived.reference_time, derived.injection_time, derived.elapsed_s,
            derived.decayed_dose_bq) == (bw.reference_time, bw.injection_time, bw.elapsed_s,
                                         bw.decayed_dose_bq)


def test_sul_factor_hand_value() -> None:
    # Janmahasatian male: 9270 * 70 / (6680 + 216 * 70 / 1.75^2) = 55.85715 kg
    bw = _quiet(compute_suv_factors, make_headers(), "bw")
    sul = renormalize_suv_factors(bw, "sul", make_headers())
    assert sul.quantity == "SULjanma"
    assert sul.body_size == pytest.approx(55857.15, rel=2e-6)
    assert sul.factor == pytest.approx(55857.15 / D_REF_BQ, rel=2e-6)
    assert renormalize_suv_factors(bw, "bw", make_headers()) is bw


def test_suv_image_carries_the_factors_and_derives_the_sul() -> None:
    headers = make_headers(3)
    arr = np.linspace(1000.0, 9000.0, 3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    pet = _volume(headers, arr)
    image = _quiet(compute_suv_image, pet, "bw")
    assert isinstance(image, SUVImage)
    assert image.factors.factors == _quiet(compute_suv_factors, headers, "bw").factors
    assert image.factors.elapsed_s == 3600.0  # 11:00:00 - 10:00:00
    np.testing.assert_array_equal(image.volume.array, _quiet(compute_suv, pet).array)
    sul = _quiet(image.renormalized, pet, "sul")
    assert sul.volume.units == sul.factors.quantity == "SULjanma"
    np.testing.assert_array_equal(sul.volume.array, _quiet(compute_suv, pet, "sul").array)
    assert sul.volume.provenance[-1].inputs["factors"] == list(sul.factors.factors)
    # the input volume is not modified
    np.testing.assert_array_equal(pet.array, np.linspace(1000.0, 9000.0, 60,
                                                         dtype=np.float32).reshape(3, 4, 5))


def test_renormalized_warnings_are_kept_once_and_new_ones_added() -> None:
    headers = make_headers(PatientWeight=70000, PatientSize=175)  # grams and centimetres
    with pytest.warns(SUVWarning, match="looks like grams"):
        bw = compute_suv_factors(headers, "bw")
    with pytest.warns(SUVWarning, match="looks like centimetres"):
        sul = renormalize_suv_factors(bw, "sul", headers)
    assert sum("grams" in w for w in sul.warnings) == 1
    assert sum("centimetres" in w for w in sul.warnings) == 1
    assert sul.height_m == pytest.approx(1.75)
    assert sul.body_size == pytest.approx(55857.15, rel=2e-6)


def test_renormalize_refuses_non_bw_factors_and_missing_height() -> None:
    headers = make_headers()
    sul = _quiet(compute_suv_factors, headers, "sul")
    with pytest.raises(InvalidParameterError, match="needs SUVbw factors"):
        renormalize_suv_factors(sul, "bsa-dubois", headers)
    no_height = make_headers(PatientSize=None)
    bw = _quiet(compute_suv_factors, no_height, "bw")
    with pytest.raises(MissingAttributeError, match="PatientSize"):
        renormalize_suv_factors(bw, "sul", no_height)
