"""Loading a series from discovery's SeriesInfo reuses the headers discovery read (issue 18).

What must hold: the volume equals the one loaded from the folder (array, SliceInfo, grid,
headers); a file changed after discovery is read again (never stale pixels or headers); a
truncated compressed file is refused with the same message as a fresh read; the reused
headers never cross a process boundary (pickling drops them). Also the two other speed
paths of the loader: the identity memo of ``SeriesIdentity.from_dataset`` and compressed
pixel data decoded by pydicom's decoder without a whole-header data set.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_synth import SeriesSpec, make_dataset, write_series

from emlesion.errors import DicomReadError
from emlesion.io import load_ct, load_pet
from emlesion.io.dicom import decode_pixels, read_file, read_located
from emlesion.io.discover import SeriesRole, discover
from emlesion.io.volume import SeriesIdentity


def _series(found: list, role: SeriesRole) -> object:
    (info,) = [s for s in found if s.role is role]
    return info


def test_discovered_headers_give_the_folder_volume(sample_scans_dir: Path) -> None:
    """sample_scans baseline (RLE Lossless PET and CT): SeriesInfo route == folder route."""
    base = sample_scans_dir / "baseline"
    found = discover(base)
    pet_info = _series(found, SeriesRole.PET_AC)
    ct_info = _series(found, SeriesRole.CT)
    # discovery kept one located header per file of the image series, none for the localizer
    assert len(pet_info._located) == pet_info.n_instances == 96
    assert len(ct_info._located) == ct_info.n_instances == 96
    assert _series(found, SeriesRole.CT_LOCALIZER)._located == ()
    for info, loader, folder in ((pet_info, load_pet, base / "PT"),
                                 (ct_info, load_ct, base / "CT")):
        a, b = loader(info), loader(folder)
        np.testing.assert_array_equal(a.array, b.array)
        assert a.slices == b.slices
        assert a.grid == b.grid
        assert a.identity == b.identity
        assert [str(h) for h in a.headers[:3]] == [str(h) for h in b.headers[:3]]


def test_file_changed_after_discovery_is_read_again(tmp_path: Path) -> None:
    """A slice rewritten between discover() and load_pet() is loaded with its new pixels."""
    spec = SeriesSpec(n=4)
    paths = write_series(tmp_path / "PT", spec)
    info = _series(discover(tmp_path), SeriesRole.PET_AC)
    assert len(info._located) == 4
    before = load_pet(info)
    ds = make_dataset(spec, 0)
    ds.PixelData = (np.asarray(ds.pixel_array) + 7).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(paths[0], enforce_file_format=True)
    st = os.stat(paths[0])
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a distinct mtime
    after = load_pet(info)
    # slice 0 (k = 0 is the lowest position) gained 7 stored units x RescaleSlope; the
    # others are unchanged (stored values: dicom_synth.stored_value)
    slope = after.slices[0].rescale_slope
    np.testing.assert_allclose(after.array[0], before.array[0] + np.float32(7 * slope))
    np.testing.assert_array_equal(after.array[1:], before.array[1:])


def test_truncated_compressed_file_after_discovery(sample_scans_dir: Path,
                                                   tmp_path: Path) -> None:
    """Encapsulated pixel data is checked when a located header is reopened: a file cut
    inside its RLE data reads as truncated, with read_file's message."""
    src = sorted((sample_scans_dir / "baseline" / "CT").iterdir())[0]
    cut = tmp_path / "cut.dcm"
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) - 500])
    located = read_located(cut)  # the header alone reads fine
    assert located.scanned and located.pixel_length == 0xFFFFFFFF
    with pytest.raises(DicomReadError) as fresh:
        read_file(cut, lazy_pixels=True)
    with pytest.raises(DicomReadError) as reopened:
        located.reopen()
    assert "is truncated" in str(reopened.value)
    assert str(reopened.value) == str(fresh.value)


def test_reopen_refuses_a_changed_file(tmp_path: Path) -> None:
    paths = write_series(tmp_path, SeriesSpec(n=2))
    located = read_located(paths[0])
    assert located.reopen() is not None
    with open(paths[0], "ab") as fh:  # one more byte: size and mtime differ
        fh.write(b"\0")
    assert located.reopen() is None


def test_pickled_series_info_drops_the_headers(sample_scans_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(sample_scans_dir / "baseline" / "PT", tmp_path / "PT")
    info = _series(discover(tmp_path), SeriesRole.PET_AC)
    assert len(info._located) == 96
    copy = pickle.loads(pickle.dumps(info))
    assert copy._located == ()
    assert copy == info  # the headers are not part of the value
    np.testing.assert_array_equal(load_pet(copy).array, load_pet(info).array)


def test_identity_memo_equals_a_fresh_read(sample_scans_dir: Path) -> None:
    """The memo keys on raw bytes: two slices of one series share one identity object,
    equal to the identity read without the memo; a converted data set is read directly."""
    files = sorted((sample_scans_dir / "month1" / "PT").iterdir())[:2]
    heads = [read_file(p, with_pixels=False).header for p in files]
    a, b = (SeriesIdentity.from_dataset(h) for h in heads)
    assert a is b
    assert a == SeriesIdentity._read(pydicom.dcmread(files[1], stop_before_pixels=True))
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    ds.PatientID = "OTHER"  # a converted element: not memoised, read as it is now
    assert SeriesIdentity.from_dataset(ds).patient_id == "OTHER"
    assert SeriesIdentity.from_dataset(ds).series_instance_uid == a.series_instance_uid


def test_rle_decoding_equals_pydicom(sample_scans_dir: Path) -> None:
    """Compressed slices decode to what pydicom's own Dataset.pixel_array gives."""
    for p in sorted((sample_scans_dir / "month3" / "CT").iterdir())[::20]:
        ds = pydicom.dcmread(p)
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5"  # RLE Lossless
        expected = ds.pixel_array
        got = decode_pixels(read_file(p, lazy_pixels=True))
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
