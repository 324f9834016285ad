"""LesionTable as a table: sul_mean, table(properties=...), to_pandas(), laziness, errors."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from emlesion.errors import MaskError
from emlesion.io.geometry import Grid
from emlesion.io.volume import Volume
from emlesion.measure import LesionTable, measure_lesions
from emlesion.measure import lesions as lesions_mod

SHAPE = (14, 16, 18)
LABELS = (2, 3, 7)


def _vol(arr: np.ndarray, units: str) -> Volume:
    return Volume(arr, Grid(arr.shape, (-10.0, 4.0, 30.0), (2.0, 2.5, 3.0)), units=units)


def _images() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SUVbw and an independent (not proportional) SUL image, float32, and labels 2, 3, 7.

    Label 2 is a block, label 3 an irregular blob touching the image border, label 7 two
    disconnected pieces (one label, one lesion).
    """
    rng = np.random.default_rng(20240611)
    suv = rng.uniform(0.5, 9.0, SHAPE).astype(np.float32)
    sul = rng.uniform(0.3, 7.0, SHAPE).astype(np.float32)
    lab = np.zeros(SHAPE, np.uint16)
    lab[2:6, 3:8, 4:9] = 2
    blob = rng.uniform(size=SHAPE) < 0.6
    blob[:, :, :12] = False
    blob[:8] = False
    lab[blob] = 3
    lab[9:11, 10:12, 1:3] = 7
    lab[12:14, 1:3, 5:7] = 7
    return suv, sul, lab


def _table(**kw: object) -> LesionTable:
    suv, sul, lab = _images()
    return measure_lesions(_vol(suv, "SUVbw"), lab, sul=_vol(sul, "SULjanma"), **kw)  # type: ignore[arg-type]


def _same(a: object, b: object) -> bool:
    """Equal (numpy scalars as Python values), or both NaN."""
    a = a.item() if isinstance(a, np.generic) else a
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# --------------------------------------------------------------------------- sul_mean


def test_sul_mean_equals_hand_computed_mean() -> None:
    _, sul, lab = _images()
    t = _table()
    assert t.labels == LABELS
    assert "sul_mean" in t.column_names and "sul_mean" in t.fields
    for i, label in enumerate(LABELS):
        # by hand: exactly rounded sum over the voxel list, divided by the count
        voxels = [float(sul[z, y, x]) for z, y, x in np.argwhere(lab == label)]
        hand = math.fsum(voxels) / len(voxels)
        assert t["sul_mean"][i] == pytest.approx(hand, rel=1e-12, abs=0)
        assert t.row(label).sul_mean == t["sul_mean"][i]
        # the full-volume expression of the former Timepoint.sul_mean, accumulated in
        # float64 as sul_mean (and suv_mean) are: 1e-12
        former = np.asarray(sul)[np.asarray(lab) == label]
        assert t["sul_mean"][i] == pytest.approx(float(former.mean(dtype=np.float64)),
                                                 rel=1e-12, abs=0)
        # as it was written (float32 image, so numpy accumulated in float32): equal to
        # float32 rounding only (3.1e-8 relative at most on this volume)
        assert t["sul_mean"][i] == pytest.approx(float(former.mean()), rel=1e-6)
        # the one-pass labelled mean over the whole volume (float64 input: scipy keeps the
        # float32 precision of a float32 input)
        assert t["sul_mean"][i] == pytest.approx(
            float(ndimage.mean(sul.astype(np.float64), labels=lab, index=label)),
            rel=1e-12, abs=0,
        )
        # it is the SUL image that is averaged, not the SUV image
        assert abs(t["sul_mean"][i] - t["suv_mean"][i]) > 1e-3
    # computed with the other SUL columns, whichever is asked for first
    t2 = _table()
    assert t2["sul_max"][0] == pytest.approx(float(sul[lab == 2].max()))
    assert t2["sul_mean"].tolist() == t["sul_mean"].tolist()


def test_sul_mean_none_without_sul_and_equal_to_suv_mean_for_lean_body_image() -> None:
    suv, _, lab = _images()
    t = measure_lesions(_vol(suv, "SUVbw"), lab)
    assert "sul_mean" not in t.column_names
    assert all(r.sul_mean is None for r in t.rows)
    assert t.rows[0].to_dict()["sul_mean"] is None
    # the measured image is itself lean-body: SULmean is its mean, bit for bit
    t2 = measure_lesions(_vol(suv, "SULjanma"), lab)
    assert t2["sul_mean"].tolist() == t2["suv_mean"].tolist()


def test_sul_mean_definition() -> None:
    d = _table().definitions["sul_mean"]
    assert d.startswith("SULmean: mean voxel value")
    assert "lean-body" in d and "PERCIST" in d
    suv, _, lab = _images()
    assert "sul_mean" not in measure_lesions(_vol(suv, "SUVbw"), lab).definitions


# --------------------------------------------------------------------------- to_pandas


def test_to_pandas_one_row_per_label_equal_to_columns() -> None:
    t = _table()
    cols = t.columns
    df = t.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == len(LABELS)
    assert df.index.name == "label" and df.index.tolist() == list(LABELS)
    assert df.index.dtype == np.int64
    assert "label" not in df.columns  # the label is the index, not a column as well
    back = df.reset_index()
    assert list(back.columns) == list(cols) == list(t.column_names)
    assert {"centroid_x_mm", "centroid_y_mm", "centroid_z_mm", "sul_mean"} <= set(df.columns)
    n_checked = 0
    for name, arr in cols.items():
        assert len(back[name]) == len(arr)
        for i, expected in enumerate(arr.tolist()):
            assert _same(back[name].iloc[i], expected), (name, i)
            n_checked += 1
    assert n_checked == len(cols) * len(LABELS)
    # same numbers through df.loc by label
    assert df.loc[7, "suv_max"] == cols["suv_max"][2]
    assert df.loc[3, "name"] == "label 3"


def test_table_without_properties_is_columns() -> None:
    t = _table(peak_variants=("global",))
    a, b = t.table(), t.columns
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_properties_subset_computes_only_their_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    t = _table()
    expected = {c: t.columns[c] for c in ("suv_max", "mtv_ml")}
    # fresh table; every metric group except "intensity" now fails when computed
    computed: list[str] = []

    def forbidden(group: str) -> property:
        def get(self: object) -> dict[str, object]:
            computed.append(group)
            raise AssertionError(f"group {group!r} was computed")
        return property(get)

    for group in lesions_mod._GROUP_FIELDS:
        if group != "intensity":
            monkeypatch.setattr(lesions_mod._Lesion, f"_g_{group}", forbidden(group))
    t = _table()

    d = t.table(["suv_max", "mtv_ml"])
    assert list(d) == ["suv_max", "mtv_ml"]
    df = t.to_pandas(properties=["suv_max", "mtv_ml"])
    assert list(df.columns) == ["suv_max", "mtv_ml"]
    assert df.index.tolist() == list(LABELS)
    for c in ("suv_max", "mtv_ml"):
        assert d[c].tolist() == expected[c].tolist() == df[c].tolist()
    assert computed == []
    # properties are checked before anything is computed
    with pytest.raises(MaskError):
        t.table(["suv_peak_global", "nope"])
    assert computed == []
    # control: the patch does bite when another group is asked for
    with pytest.raises(AssertionError, match="peak_global"):
        t.to_pandas(["suv_peak_global"])
    with pytest.raises(AssertionError, match="sul"):
        t.table(["sul_mean"])
    assert computed == ["peak_global", "sul"]


def test_properties_groups_are_cached_between_calls() -> None:
    t = _table()
    t.to_pandas(["sul_mean"])
    lesion = t._lesions[0]
    assert "_g_sul" in vars(lesion)
    assert not {"_g_axial", "_g_diameter_3d", "_g_peak_exact"} & set(vars(lesion))


def test_properties_vectors_order_names_and_label() -> None:
    t = _table()
    d = t.table(["centroid_mm", "suv_max", "suv_max", "extent_y_cm"])
    assert list(d) == [
        "centroid_x_mm", "centroid_y_mm", "centroid_z_mm", "suv_max", "extent_y_cm",
    ]
    np.testing.assert_array_equal(d["extent_y_cm"], t["extent_y_cm"])
    assert list(t.table("tlg")) == ["tlg"]  # one name as a plain string
    assert list(t.table(["label", "name"])) == ["label", "name"]
    df = t.to_pandas(["label", "name"])
    assert list(df.columns) == ["name"] and df.index.tolist() == list(LABELS)
    assert t.table([]) == {}
    assert t.to_pandas([]).shape == (len(LABELS), 0)


def test_unknown_property_is_a_clear_mask_error() -> None:
    t = _table(peak_variants=("global",))
    with pytest.raises(MaskError, match=r"unknown lesion property 'suv_maxx'") as err:
        t.to_pandas(["suv_max", "suv_maxx"])
    msg = str(err.value)
    assert "valid properties of this table: label, name, suv_units, n_voxels, suv_max" in msg
    assert "sul_mean" in msg and "centroid_mm" in msg
    assert isinstance(err.value, ValueError)
    with pytest.raises(MaskError, match=r"properties 'a', 'b'"):
        t.table(["a", "b"])
    # a real field that this table does not have (no CT, local peak not requested)
    with pytest.raises(MaskError, match=r"'hu_mean'.*ct="):
        t.table(["hu_mean"])
    with pytest.raises(MaskError, match="suv_peak_local"):
        t.to_pandas(["suv_peak_local"])
    with pytest.raises(MaskError, match="3"):
        t.table([3])  # type: ignore[list-item]


def test_empty_table_gives_empty_frame() -> None:
    suv, _, _ = _images()
    t = measure_lesions(_vol(suv, "SUVbw"), np.zeros(SHAPE, np.uint16))
    df = t.to_pandas()
    assert len(df) == 0 and df.index.name == "label"
    assert list(df.reset_index().columns) == list(t.column_names)
    assert list(t.to_pandas(["suv_max"]).columns) == ["suv_max"]


def test_import_emlesion_measure_does_not_import_pandas() -> None:
    code = "import sys, emlesion.measure; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
