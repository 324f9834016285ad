"""Synthetic PET headers (pydicom Datasets without pixel data) for the SUV engine tests.

The default header is a plain BQML / DecayCorrection START series with round numbers:
weight 70 kg, height 1.75 m, male, 370 MBq of F-18 (half-life 6586.2 s) injected at
10:00:00, series and acquisition at 11:00:00 on 2025-01-01 (elapsed 3600 s), a 300 s frame
with FrameReferenceTime 150 s. Keyword arguments override or delete (value ``None``)
attributes; names of the Radiopharmaceutical Information Sequence item are routed there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

RP_KEYWORDS = {
    "RadiopharmaceuticalStartTime",
    "RadiopharmaceuticalStartDateTime",
    "RadionuclideTotalDose",
    "RadionuclideHalfLife",
    "RadionuclideCodeSequence",
    "Radiopharmaceutical",
}

DEFAULTS: dict[str, Any] = {
    "Modality": "PT",
    "SeriesInstanceUID": "1.2.3.4.5",
    "SeriesDate": "20250101",
    "SeriesTime": "110000",
    "AcquisitionDate": "20250101",
    "AcquisitionTime": "110000",
    "Units": "BQML",
    "DecayCorrection": "START",
    "CorrectedImage": ["NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN"],
    "PatientWeight": "70",
    "PatientSize": "1.75",
    "PatientSex": "M",
    "RescaleSlope": "1",
    "RescaleIntercept": "0",
    "FrameReferenceTime": "150000",
    "ActualFrameDuration": "300000",
    "Radiopharmaceutical": "FDG",
    "RadiopharmaceuticalStartTime": "100000",
    "RadiopharmaceuticalStartDateTime": "20250101100000",
    "RadionuclideTotalDose": "370000000",
    "RadionuclideHalfLife": "6586.2",
}

F18_CODE = {"CodeValue": "C-111A1", "CodingSchemeDesignator": "SRT",
            "CodeMeaning": "^18^Fluorine"}


def make_header(**overrides: Any) -> Dataset:
    """One synthetic PET header; ``None`` deletes an attribute.

    Private elements: ``philips={0x00: "0.0005", 0x09: "0.5"}`` adds the Philips block
    (creator "Philips PET Private Group", or literal elements when ``philips_creator=None``);
    ``ge_scan_datetime="2025..."`` adds the GEMS_PETD_01 scan datetime.
    """
    philips: Mapping[int, str] | None = overrides.pop("philips", None)
    philips_creator = overrides.pop("philips_creator", "Philips PET Private Group")
    ge_scan: str | None = overrides.pop("ge_scan_datetime", None)
    values = {**DEFAULTS, "RadionuclideCodeSequence": [F18_CODE], **overrides}
    ds = Dataset()
    rp = Dataset()
    for kw, value in values.items():
        if value is None:
            continue
        target = rp if kw in RP_KEYWORDS else ds
        if kw == "RadionuclideCodeSequence":
            items = []
            for code in value:
                item = Dataset()
                for k, v in code.items():
                    setattr(item, k, v)
                items.append(item)
            rp.RadionuclideCodeSequence = DicomSequence(items)
            continue
        setattr(target, kw, value)
    if "RadiopharmaceuticalInformationSequence" not in overrides:
        ds.RadiopharmaceuticalInformationSequence = DicomSequence([rp])
    if philips:
        if philips_creator is None:
            for offset, v in philips.items():
                ds.add_new(0x70531000 + offset, "DS", v)
        else:
            block = ds.private_block(0x7053, philips_creator, create=True)
            for offset, v in philips.items():
                block.add_new(offset, "DS", v)
    if ge_scan is not None:
        ds.private_block(0x0009, "GEMS_PETD_01", create=True).add_new(0x0D, "DT", ge_scan)
    return ds


def make_headers(n: int = 3, per_slice: Sequence[Mapping[str, Any]] | None = None,
                 **common: Any) -> list[Dataset]:
    """``n`` headers sharing ``common`` overrides, each with its own ``per_slice[k]``."""
    out = []
    for k in range(n):
        extra = dict(per_slice[k]) if per_slice else {}
        out.append(make_header(**{**common, **extra}))
    return out
