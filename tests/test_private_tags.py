"""Tests of the one private-tag lookup (emlesion.io.dicom.find_private, used by the SUV engine
through emlesion.suv._dicom.private_value) and the one header-text reader (header_text).

Where the expected values come from: DICOM PS3.5 section 7.8.1 places the element with offset
``ee`` of the block reserved by creator ``(gggg,00xx)`` at ``(gggg,xxee)``; each test writes
a distinct value into every candidate element, so the value read back names the block chosen.
The creator matching rule under test (padding ignored, case folded, exact case preferred,
literal element only when the group has no creator at all) is the one documented in
find_private and in domain-reference.md section 1.1.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from suv_headers import make_headers

from emlesion.errors import DicomQuirkWarning
from emlesion.io.dicom import find_private, header_text
from emlesion.suv import compute_suv_factors
from emlesion.suv._dicom import PrivateElement, private_value

GE = "GEMS_PETD_01"


def _ds(creators: dict[int, str | bytes], elements: dict[int, str]) -> Dataset:
    """Group 0009 with the given creators ``{block: value}`` and DT elements ``{tag: value}``."""
    ds = Dataset()
    ds.SeriesInstanceUID = "1.2.3"
    for block, name in creators.items():
        ds.add_new(0x00090000 | block, "UN" if isinstance(name, bytes) else "LO", name)
    for tag, value in elements.items():
        ds.add_new(tag, "DT", value)
    return ds


def _value(ds: Dataset, creator: str = GE, offset: int = 0x0D) -> str | None:
    elem = find_private(ds, 0x0009, creator, offset)
    return None if elem is None else str(elem.value)


def test_exact_creator() -> None:
    ds = _ds({0x10: GE}, {0x0009100D: "20250101105900"})
    assert _value(ds) == "20250101105900"
    # the SUV adapter: same element, tag "(0009,100D)" (block 0x10, offset 0x0D), by creator
    assert private_value(ds, 0x0009, GE, 0x0D, label="GE") == PrivateElement(
        "20250101105900", "(0009,100D)", True)
    assert _value(ds, offset=0x3B) is None  # creator present, element absent


def test_creator_in_a_different_case() -> None:
    # block 0x12 reserved by "gems_petd_01": the element sits at (0009,120D)
    ds = _ds({0x12: "gems_petd_01"}, {0x0009120D: "20250101105900"})
    assert _value(ds) == "20250101105900"
    # and the other way round: asked in lower case, stored in upper case
    ds2 = _ds({0x10: GE}, {0x0009100D: "20250101105901"})
    assert _value(ds2, creator="gems_petd_01") == "20250101105901"
    el = private_value(ds, 0x0009, GE, 0x0D, label="GE")
    assert el is not None and el.tag == "(0009,120D)" and el.by_creator


@pytest.mark.parametrize("stored", [" GEMS_PETD_01 ", "GEMS_PETD_01\x00", b"GEMS_PETD_01\x00 "])
def test_padded_creator(stored: str | bytes) -> None:
    # leading/trailing spaces and NUL padding (also as raw UN bytes) are not part of the name
    ds = _ds({0x10: stored}, {0x0009100D: "20250101105900"})
    assert _value(ds) == "20250101105900"
    assert _value(ds, creator=" gems_petd_01  ") == "20250101105900"


def test_two_matching_blocks_prefer_exact_case() -> None:
    # 0x10 matches only after case folding, 0x11 matches exactly: 0x11 wins despite its
    # higher block number
    ds = _ds({0x10: "gems_petd_01", 0x11: GE},
             {0x0009100D: "19990101000000", 0x0009110D: "20250101105900"})
    assert _value(ds) == "20250101105900"
    # asked in lower case, the lower-case block is now the exact one
    assert _value(ds, creator="gems_petd_01") == "19990101000000"


def test_two_equal_blocks_lowest_first_then_next_when_element_missing() -> None:
    ds = _ds({0x10: GE, 0x11: GE}, {0x0009100D: "20250101105900", 0x0009110D: "19990101"})
    assert _value(ds) == "20250101105900"  # both exact: the lowest block, 0x10
    # offset 0x3B only in block 0x11: the next matching block is read
    ds.add_new(0x0009113B, "DT", "20250101100000")
    assert _value(ds, offset=0x3B) == "20250101100000"


def test_absent_creator_with_foreign_creators_never_reads_literal() -> None:
    # (0009,100D) belongs to another creator's block: never taken as GE's, even when a
    # literal fallback is allowed, and even in a block no creator reserves
    ds = _ds({0x10: "OTHER VENDOR"}, {0x0009100D: "19990101000000", 0x0009110D: "19990102"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert find_private(ds, 0x0009, GE, 0x0D, literal_block=0x10) is None
        assert find_private(ds, 0x0009, GE, 0x0D, literal_block=0x11) is None
        assert private_value(ds, 0x0009, GE, 0x0D, label="GE private scan datetime") is None


def test_absent_creator_empty_group_literal_fallback() -> None:
    # IBSI DRO_2_4 / DRO_3_3 style: the element without any creator in the group
    ds = _ds({}, {0x0009100D: "20250101105900"})
    assert find_private(ds, 0x0009, GE, 0x0D) is None  # no literal_block: no fallback
    with pytest.warns(DicomQuirkWarning, match=r"scan dt read from the literal element "
                      r"\(0009,100D\).*no private creator at all.*series 1\.2\.3") as rec:
        el = find_private(ds, 0x0009, GE, 0x0D, literal_block=0x10, label="scan dt")
    assert el is not None and el.value == "20250101105900"
    # attributed to this file (emlesion.errors.warn_external), also through the SUV wrapper
    assert [Path(w.filename).name for w in rec] == [Path(__file__).name]
    with pytest.warns(DicomQuirkWarning) as rec:
        private_value(ds, 0x0009, GE, 0x0D, label="GE")
    assert [Path(w.filename).name for w in rec] == [Path(__file__).name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pv = private_value(ds, 0x0009, GE, 0x0D, label="GE", warn=False)
    assert pv == PrivateElement("20250101105900", "(0009,100D)", False)
    assert find_private(_ds({}, {}), 0x0009, GE, 0x0D, literal_block=0x10) is None


def test_even_group_rejected() -> None:
    with pytest.raises(ValueError, match="odd"):
        find_private(Dataset(), 0x0008, GE, 0x0D)


def test_compute_suv_finds_philips_factor_under_a_differently_written_creator() -> None:
    # Units CNTS: SUVbw = stored value x Philips SUV scale factor (7053,xx00), so the factor
    # is the header value 0.0005 itself (as in test_suv_factors.test_cnts_literal_fallback_warns)
    hs = make_headers(Units="CNTS", philips={0x00: "0.0005"},
                      philips_creator="PHILIPS PET PRIVATE GROUP ")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DicomQuirkWarning)  # found by creator: no fallback
        f = compute_suv_factors(hs)
    assert f.factor == 0.0005


# ---------------------------------------------------------------------------- header_text
def test_header_text_strips_each_value_and_decodes_bytes() -> None:
    ds = Dataset()
    ds.ImageType = [" ORIGINAL ", "PRIMARY  ", ""]
    ds.add_new(0x00080070, "UN", b"ACME \\ PET\x00")  # Manufacturer stored as raw bytes
    ds.PatientWeight = "70 "
    assert header_text(ds, "ImageType") == "ORIGINAL\\PRIMARY\\"  # empty 3rd value kept
    assert header_text(ds, "Manufacturer") == "ACME\\PET"
    assert header_text(ds, "PatientWeight") == "70"
    assert header_text(ds, "PatientSize") == ""  # absent
    with pytest.raises(KeyError, match="NotAKeyword"):
        header_text(ds, "NotAKeyword")


def test_header_text_raw_and_converted_paths_agree() -> None:
    # a file read back by pydicom keeps its elements raw until accessed: header_text decodes
    # the raw bytes itself; after access it reads pydicom's converted value; both must agree
    ds = Dataset()
    ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
    ds.ImagePositionPatient = ["-250.0", " 12.5", "0"]
    ds.SeriesInstanceUID = "1.2.3"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    read = pydicom.dcmread(io.BytesIO(buf.getvalue()), force=True)
    keywords = ("ImageType", "ImagePositionPatient", "SeriesInstanceUID")
    raw = {kw: header_text(read, kw) for kw in keywords}
    for kw in keywords:
        _ = read[kw].value  # convert
    converted = {kw: header_text(read, kw) for kw in keywords}
    assert raw == converted == {"ImageType": "ORIGINAL\\PRIMARY\\",
                                "ImagePositionPatient": "-250.0\\12.5\\0",
                                "SeriesInstanceUID": "1.2.3"}
