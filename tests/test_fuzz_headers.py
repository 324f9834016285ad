"""Header-value fuzzing of the SUV engine and of the loader (issue 15, item 9).

Properties, for any generated header values:

* no exception other than an :class:`~emlesion.errors.EmlesionError` escapes
  :func:`~emlesion.suv.compute_suv_factors`, :func:`~emlesion.io.load_pet` or
  :func:`~emlesion.io.dicom.read_file`;
* when SUV factors are produced, every input they came from lies inside the documented
  bounds (weight, dose, half-life, elapsed time, positive slopes) and every factor is finite
  and positive;
* when a volume is produced, its spacing lies in ``SPACING_RANGE_MM``, its values are finite
  and its shape is what the headers say.

Budget: ``max_examples`` 300 (SUV engine), 80 (loader headers) and 150 (file bytes),
derandomized (the same examples in every run), no per-example deadline (the machine is
shared). Measured: 20 s for the file on the 2-core machine under a load average of 16
(about 5 s per test), so well under the 60 s target of the issue on an idle machine.

The first runs found two escapes, now fixed: a FrameReferenceTime of 6.4e13 ms overflowed
``datetime`` (OverflowError), and a flipped byte in a VR (``b"A\x80"``) passed the fast
scanner's VR check and raised UnicodeDecodeError.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from emlesion.errors import EmlesionError
from emlesion.io import load_pet
from emlesion.io.dicom import read_file
from emlesion.io.loader import SPACING_RANGE_MM
from emlesion.suv import compute_suv_factors
from emlesion.suv.factors import (
    DOSE_RANGE_BQ,
    HALF_LIFE_RANGE_S,
    MAX_ELAPSED_HALF_LIVES,
    WEIGHT_RANGE_KG,
)
from tests.dicom_synth import SeriesSpec, write_series
from tests.suv_headers import make_headers

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True, database=None)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -1.0, 1e-30, 1e30, 70.0, 109.77, 6586.2, 7e4, 3.7e8, 1e12]),
    st.integers(min_value=-10**9, max_value=10**12).map(float),
)
ds_text = numbers.map(lambda v: f"{v:.6g}")  # what a DS element can hold (<= 16 characters)
optional_ds = st.one_of(st.none(), ds_text, st.just(""))
times = st.sampled_from(["110000", "100000", "235959", "000000", "2500", "1100", "", "999999"])
datetimes = st.sampled_from(["20250101100000", "20241231100000", "20250101120000",
                             "20250101", "", "20250101100000+0100", "19000101000000"])
SUV_FIELDS: dict[str, Any] = {
    "PatientWeight": optional_ds,
    "PatientSize": optional_ds,
    "PatientSex": st.sampled_from(["M", "F", "O", "", "X", None]),
    "RadionuclideTotalDose": optional_ds,
    "RadionuclideHalfLife": optional_ds,
    "RescaleSlope": optional_ds,
    "RescaleIntercept": st.sampled_from(["0", "1", "-5", None]),
    "Units": st.sampled_from(["BQML", "CNTS", "GML", "CM2ML", "PROPCPS", "", None]),
    "DecayCorrection": st.sampled_from(["START", "ADMIN", "NONE", "", "LATER", None]),
    "SeriesTime": times,
    "AcquisitionTime": times,
    "RadiopharmaceuticalStartDateTime": datetimes,
    "RadiopharmaceuticalStartTime": times,
    "FrameReferenceTime": optional_ds,
    "ActualFrameDuration": optional_ds,
}


@st.composite
def suv_headers(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    keys = draw(st.lists(st.sampled_from(sorted(SUV_FIELDS)), max_size=6, unique=True))
    common = {k: draw(SUV_FIELDS[k]) for k in keys}
    per_slice: list[dict[str, Any]] = [{}, {}, {}]
    if draw(st.booleans()):
        k = draw(st.sampled_from(sorted(SUV_FIELDS)))
        per_slice[draw(st.integers(0, 2))] = {k: draw(SUV_FIELDS[k])}
    return common, per_slice


def _build(common: dict[str, Any], per_slice: list[dict[str, Any]]) -> list[Any]:
    """The headers, or skip the example when pydicom itself refuses a value (test setup)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return make_headers(3, per_slice, **common)
    except (ValueError, TypeError, OverflowError):
        assume(False)
        raise AssertionError("unreachable") from None


@settings(FUZZ, max_examples=300)
@given(suv_headers())
def test_suv_engine_fuzz(case: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    common, per_slice = case
    headers = _build(common, per_slice)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            f = compute_suv_factors(headers)
        except EmlesionError:
            return
    assert all(math.isfinite(v) and v > 0 for v in f.factors)
    assert WEIGHT_RANGE_KG[0] <= f.weight_kg <= WEIGHT_RANGE_KG[1]
    assert all(m > 0 for m in f.rescale_slopes)
    if f.units in ("BQML",) or "activity concentration" in f.rule:
        assert DOSE_RANGE_BQ[0] <= f.injected_dose_bq <= DOSE_RANGE_BQ[1]
        assert HALF_LIFE_RANGE_S[0] <= f.half_life_s <= HALF_LIFE_RANGE_S[1]
        if f.elapsed_s is not None:
            assert f.elapsed_s <= MAX_ELAPSED_HALF_LIVES * f.half_life_s


# ---------------------------------------------------------------------------- loader
LOADER_FIELDS: dict[str, Any] = {
    "Rows": st.integers(0, 70000),
    "Columns": st.integers(0, 70000),
    "BitsAllocated": st.sampled_from([0, 1, 8, 12, 16, 32, 64]),
    "BitsStored": st.integers(0, 40),
    "PixelRepresentation": st.sampled_from([0, 1, 2]),
    "SamplesPerPixel": st.sampled_from([1, 3]),
    "PixelSpacing": st.lists(ds_text, min_size=1, max_size=3),
    "ImageOrientationPatient": st.lists(ds_text, min_size=5, max_size=7),
    "ImagePositionPatient": st.lists(ds_text, min_size=2, max_size=4),
    "RescaleSlope": ds_text,
    "RescaleIntercept": ds_text,
    "NumberOfFrames": st.sampled_from(["1", "2", "0", "x"]),
    "Modality": st.sampled_from(["PT", "CT", "MR", ""]),
    "NumberOfSlices": st.integers(0, 10),
    "ImageIndex": st.integers(-1, 10),
}


@st.composite
def loader_edits(draw: st.DrawFn) -> list[tuple[int, str, Any]]:
    keys = draw(st.lists(st.sampled_from(sorted(LOADER_FIELDS)), min_size=1, max_size=3))
    return [(draw(st.integers(0, 2)), k, draw(LOADER_FIELDS[k])) for k in keys]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    paths = write_series(tmp_path_factory.mktemp("fuzz") / "s", SeriesSpec(n=3))
    return [p.read_bytes() for p in paths]


def _write_edited(folder: Path, template: list[bytes], edits: list[tuple[int, str, Any]]) -> None:
    for k, raw in enumerate(template):
        (folder / f"IM{k}").write_bytes(raw)
    for k, keyword, value in edits:
        path = folder / f"IM{k}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path)
                setattr(ds, keyword, value)
                ds.save_as(path, enforce_file_format=True)
        except Exception:
            assume(False)  # pydicom cannot even write this value: not a loader input


@settings(FUZZ, max_examples=80)
@given(edits=loader_edits())
def test_loader_header_fuzz(template: list[bytes], edits: list[tuple[int, str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_edited(folder, template, edits)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                vol = load_pet(folder)
            except EmlesionError:
                return
    lo, hi = SPACING_RANGE_MM
    assert all(lo <= s <= hi for s in vol.grid.spacing_mm)
    assert vol.shape[0] == 3
    assert np.all(np.isfinite(vol.array))


@settings(FUZZ, max_examples=150)
@given(cut=st.integers(0, 2000), flips=st.lists(
    st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=8))
def test_file_bytes_fuzz(template: list[bytes], cut: int, flips: list[tuple[int, int]]) -> None:
    raw = bytearray(template[1])
    for pos, value in flips:
        if pos < len(raw):
            raw[pos] = value
    if cut:
        raw = raw[: len(raw) - cut]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "IM"
        path.write_bytes(bytes(raw))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                f = read_file(path)
                f.pixels()
            except EmlesionError:
                pass
