"""Eight real multi-vendor PET headers (cornerstonejs/calculate-suv test metadata, MIT).

Each JSON file holds the per-instance header values of three instances of one series
(Siemens, GE, Philips BQML and CNTS). The expected SUVbw factors are the precomputed values
of calculate-suv's own test suite (``test/calculateSUV_SampleData.test.ts``, checked there to
1e-6 absolute): an independent implementation of the same QIBA pseudo-code.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from suv_headers import make_header

from emlesion.suv import ReferenceTimeRule, compute_suv_factors

pytestmark = pytest.mark.data

# calculate-suv test/calculateSUV_SampleData.test.ts, precomputedSUVFactors
EXPECTED_SUVBW = {
    "PHILIPS_BQML": 0.0007463747013889488,
    "PHILIPS_CNTS_AND_BQML_SUV": 0.000551,
    "PHILIPS_CNTS_AND_SUV": 0.000728,
    "SIEMENS": 0.00042748316187197236,
    "GE_MEDICAL_AND_BQML": 0.0005367387681819742,
    "BQML_AC_DT_lessThan_S_DT_SIEMENS": 0.0004069156854009332,
    "CPS_AND_BQML_AC_DT_-_S_DT": 0.00026503312764157046,
    "RADIOPHARM_DATETIME_UNDEFINED": 0.0003721089202818729,
}

# rule each series must take (reading its header values)
EXPECTED_RULE = {
    "PHILIPS_BQML": ReferenceTimeRule.SERIES,             # BQML: Philips factors ignored
    "PHILIPS_CNTS_AND_BQML_SUV": None,                    # CNTS: SUV scale factor wins
    "PHILIPS_CNTS_AND_SUV": None,
    "SIEMENS": ReferenceTimeRule.SERIES,
    "GE_MEDICAL_AND_BQML": ReferenceTimeRule.SERIES,
    # SeriesTime 12:35:15.000000 is 5 µs after AcquisitionTime; FRT 59.94 s, 120 s frame
    "BQML_AC_DT_lessThan_S_DT_SIEMENS": ReferenceTimeRule.FRAME,
    # SeriesTime 13:49:18 after AcquisitionTime 13:03:48 and FrameReferenceTime 0
    "CPS_AND_BQML_AC_DT_-_S_DT": ReferenceTimeRule.EARLIEST_ACQUISITION,
    "RADIOPHARM_DATETIME_UNDEFINED": ReferenceTimeRule.SERIES,
}

# attributes of the synthetic default header that the JSON instances do not carry
ABSENT = ("PatientSize", "RadiopharmaceuticalStartDateTime", "RadiopharmaceuticalStartTime",
          "FrameReferenceTime", "ActualFrameDuration", "RadionuclideCodeSequence",
          "SeriesInstanceUID", "RescaleSlope", "RescaleIntercept")


def headers_from_json(path: Path) -> list[Dataset]:
    out = []
    for inst in json.loads(path.read_text()):
        inst = dict(inst)
        group: dict[str, str] = inst.pop("PhilipsPETPrivateGroup", None) or {}
        philips = {}
        if "SUVScaleFactor" in group:
            philips[0x00] = group["SUVScaleFactor"].strip()
        if "ActivityConcentrationScaleFactor" in group:
            philips[0x09] = group["ActivityConcentrationScaleFactor"].strip()
        values: dict[str, Any] = dict.fromkeys(ABSENT)
        for k, v in inst.items():
            values[k] = str(v) if isinstance(v, (int, float)) else v
        out.append(make_header(**values, philips=philips or None))
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED_SUVBW))
def test_vendor_header_factor(shared_data: Path, name: str) -> None:
    path = shared_data / "calculate-suv-vendor-headers" / f"{name}-instances.json"
    headers = headers_from_json(path)
    assert len(headers) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = compute_suv_factors(headers, "bw")
    assert len(f.factors) == 3
    assert f.factors[0] == pytest.approx(EXPECTED_SUVBW[name], rel=1e-6)
    assert f.reference_time_rule is EXPECTED_RULE[name]
    if name.startswith("PHILIPS_CNTS"):
        assert f.rule == "CNTS: Philips SUV scale factor (7053,xx00)"
    if name == "CPS_AND_BQML_AC_DT_-_S_DT":
        assert any("earliest acquisition" in w for w in f.warnings)
