"""Per-lesion volume-reliability flag (``threshold_rule`` / ``volume_reliable``).

A 41 % lesion whose ``0.41 x SUVmax`` is below the blood-pool SUVmean is delineated at the
blood-pool floor (:func:`emlesion.segment.segment_lesions` Notes); its MTV is flagged
unreliable in the segmentation result, ``report.json``, ``lesions.csv`` and ``report.html``.

Expected values: the synthetic lesions are Gaussian blobs on a uniform background of SUV 1,
so each lesion's SUVmax is ``1 + amplitude`` (sampled exactly at the blob centre voxel) and
the expected labels are recomputed here with plain scipy (the connected component of
``SUV >= max(0.41 x SUVmax, blood-pool mean)`` containing the maximum: each blob is isolated
on a flat background, so the VOI enlargement converges on that whole component). The sample
study facts (month-1 pelvic nodule SUVmax 3.28, 21.5 mL against 7.9 mL true) are from
``tests/test_study_volumes.py``.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage as ndi

from emlesion.io import LabelMap, Volume
from emlesion.io.geometry import Grid
from emlesion.segment import (
    SegmentationResult,
    SegmentationWarning,
    ThresholdRule,
    classify_threshold_rule,
    segment_lesions,
)

BLOOD_MEAN, BLOOD_SD = 1.5, 0.2
SPACING_MM = 4.0
SIGMA_MM = 10.0
#: (centre index (z, y, x), amplitude): SUVmax 10.0 (0.41 x 10 = 4.1 > 1.5, relative) and
#: SUVmax 3.0 (0.41 x 3 = 1.23 < 1.5, floor; 3.0 > 2.5 so the SUV 2.5 seed finds it)
BLOBS = (((12, 12, 10), 9.0), ((12, 12, 45), 2.0))
#: segmentation result and the warnings it raised
Floored = tuple[SegmentationResult, list[warnings.WarningMessage]]


def _blob_volume() -> Volume:
    grid = Grid((24, 24, 56), (0.0, 0.0, 0.0), (SPACING_MM,) * 3)
    z, y, x = np.indices(grid.shape).astype(float) * SPACING_MM
    img = np.ones(grid.shape)
    for (cz, cy, cx), amp in BLOBS:
        r2 = ((z - cz * SPACING_MM) ** 2 + (y - cy * SPACING_MM) ** 2
              + (x - cx * SPACING_MM) ** 2)
        img += amp * np.exp(-r2 / (2 * SIGMA_MM ** 2))
    return Volume(img.astype(np.float32), grid, units="SUVbw")


def _expected_labels(a: np.ndarray, floor: float | None) -> np.ndarray:
    """Independent 41 % labels: component of a >= max(0.41 x max, floor) holding the max."""
    out = np.zeros(a.shape, np.uint16)
    for k, (centre, _amp) in enumerate(BLOBS, start=1):  # BLOBS is hottest first
        suv_max = float(a[centre])
        t = 0.41 * suv_max if floor is None else max(0.41 * suv_max, floor)
        lab, _ = ndi.label(a >= t, structure=np.ones((3, 3, 3), bool))
        out[lab == lab[centre]] = k
    return out


@pytest.fixture(scope="module")
def suv() -> Volume:
    return _blob_volume()


@pytest.fixture(scope="module")
def floored(suv: Volume) -> Floored:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = segment_lesions(suv, exclude=(), blood_pool_reference=(BLOOD_MEAN, BLOOD_SD))
    return result, list(caught)


def test_blob_suvmax_is_background_plus_amplitude(suv: Volume) -> None:
    a = np.asarray(suv.array)
    for centre, amp in BLOBS:
        assert float(a[centre]) == pytest.approx(1.0 + amp, rel=1e-6)


def test_high_contrast_relative_low_contrast_floor(floored: Floored) -> None:
    result, _ = floored
    hot, faint = result.lesions
    assert hot.suv_max == pytest.approx(10.0, rel=1e-6)
    assert hot.threshold_rule is ThresholdRule.RELATIVE and hot.volume_reliable
    assert hot.threshold == pytest.approx(4.1, rel=1e-6)        # 0.41 x 10
    assert faint.suv_max == pytest.approx(3.0, rel=1e-6)
    assert faint.threshold_rule is ThresholdRule.BLOOD_POOL_FLOOR
    assert not faint.volume_reliable
    assert faint.threshold == pytest.approx(BLOOD_MEAN)          # floor, not 0.41 x 3 = 1.23
    d = faint.to_dict()
    assert d["threshold_rule"] == "blood-pool floor" and d["volume_reliable"] is False
    assert hot.to_dict()["threshold_rule"] == "41%/50% of SUVmax"
    assert hot.to_dict()["volume_reliable"] is True


def test_one_warning_per_floor_limited_lesion(floored: Floored) -> None:
    result, caught = floored
    msgs = [str(w.message) for w in caught
            if issubclass(w.category, SegmentationWarning) and "blood-pool floor" in str(w.message)]
    assert len(msgs) == 1
    faint = result.lesions[1]
    assert msgs[0].startswith(f"lesion {faint.name}: SUVmax 3.00 is below blood-pool mean / 41%")
    assert "(bowel, vessels)" in msgs[0] and "pass a lesion mask" in msgs[0]
    # recorded in the provenance too
    assert any("blood-pool floor" in w for w in result.provenance[-1].warnings)


def test_labels_unchanged(suv: Volume, floored: Floored) -> None:
    result, _ = floored
    a = np.asarray(suv.array, dtype=np.float64)
    expected = _expected_labels(a, BLOOD_MEAN)
    assert np.array_equal(np.asarray(result.labels.array), expected)
    # the floor matters here: without it the faint lesion is larger (boundary 1.23 < 1.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        no_floor = segment_lesions(suv, exclude=(), blood_pool_reference=(BLOOD_MEAN, BLOOD_SD),
                                   blood_pool_floor=False)
    assert np.array_equal(np.asarray(no_floor.labels.array), _expected_labels(a, None))
    assert no_floor.lesions[1].n_voxels > result.lesions[1].n_voxels
    assert [les.threshold_rule for les in no_floor.lesions] == [ThresholdRule.RELATIVE] * 2
    assert not any("blood-pool floor" in str(w.message) for w in caught)


def test_fixed_and_percist_rules(suv: Volume) -> None:
    r = segment_lesions(suv, method="suv2.5", exclude=())
    assert [les.threshold_rule for les in r.lesions] == [ThresholdRule.FIXED] * 2
    r = segment_lesions(suv, method="percist-liver", exclude=(), liver_reference=(1.0, 0.1))
    # 1.5 x 1.0 + 2 x 0.1 = 1.7: both blobs, boundary from the liver
    assert [les.threshold_rule for les in r.lesions] == [ThresholdRule.PERCIST_LIVER] * 2
    assert all(les.volume_reliable for les in r.lesions)


def test_classify_threshold_rule_boundary() -> None:
    # 0.41 x 4.0 = 1.64 > 1.6 -> relative; 0.41 x 3.9 = 1.599 < 1.6 -> floor
    assert classify_threshold_rule("41%max", 4.0, 1.6) is ThresholdRule.RELATIVE
    assert classify_threshold_rule("41%max", 3.9, 1.6) is ThresholdRule.BLOOD_POOL_FLOOR
    # 0.50 x 3.9 = 1.95 > 1.6
    assert classify_threshold_rule("50%max", 3.9, 1.6) is ThresholdRule.RELATIVE
    assert classify_threshold_rule("41%max", 3.0, None) is ThresholdRule.RELATIVE  # no floor
    assert classify_threshold_rule("suv4.0", 3.0, 1.6) is ThresholdRule.FIXED


# --------------------------------------------------------------------------- study outputs
def _timepoint(label: str, method: str, mask_source: bool = False) -> Any:
    from emlesion.measure import measure_lesions
    from emlesion.study import LesionSource, ReferenceStats, Timepoint

    grid = Grid((10, 20, 20), (0, 0, 0), (4, 4, 4))
    img = np.ones(grid.shape, np.float32)
    lab = np.zeros(grid.shape, np.uint16)
    s = np.s_
    # uniform blocks: SUVmax 10 (0.41 x 10 = 4.1 > 1.5) and 3 (0.41 x 3 = 1.23 < 1.5)
    for value, (sl, uptake) in {1: (s[2:5, 2:8, 2:8], 10.0),
                                2: (s[2:5, 10:14, 10:14], 3.0)}.items():
        lab[sl], img[sl] = value, uptake
    suv = Volume(img, grid, units="SUVbw")
    labels = LabelMap(lab, grid, {1: "hot <b>", 2: "faint & low"})
    table = measure_lesions(suv, labels, peak_variants=("global",))
    blood = ReferenceStats("blood_pool", BLOOD_MEAN, BLOOD_SD, None, None, 10,
                           (0.0, 0.0, 0.0), 10.0)
    return Timepoint(label=label, date=None, pet=suv, ct=None, suv=suv, sul=None,
                     anatomy=None, liver=None, blood_pool=blood, lesions=labels,
                     measurements=table, method=method,
                     lesion_source=LesionSource.MASK if mask_source
                     else LesionSource.SEGMENTATION)


@pytest.fixture(scope="module")
def study() -> Any:
    from emlesion.study import Study

    return Study((_timepoint("b", "41%max"),))


def test_report_dict_flags_and_validates(study: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from emlesion.report import report_dict
    from emlesion.study import schema_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = json.loads(json.dumps(report_dict(study)))
    schema = json.loads(Path(schema_path("report")).read_text())
    jsonschema.Draft202012Validator(schema).validate(report)
    (tp,) = report["timepoints"]
    by_label = {les["label"]: les for les in tp["lesions"]}
    assert by_label[1]["threshold_rule"] == "41%/50% of SUVmax"
    assert by_label[1]["volume_reliable"] is True
    assert by_label[2]["threshold_rule"] == "blood-pool floor"
    assert by_label[2]["volume_reliable"] is False
    # the schema requires the flag: a lesion without it fails
    del tp["lesions"][0]["volume_reliable"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(report)
    measure_schema = json.loads(Path(schema_path("measure")).read_text())
    lesion_props = measure_schema["$defs"]["lesion"]["properties"]
    assert {"threshold_rule", "volume_reliable"} <= set(lesion_props)


def test_mask_and_unknown_method() -> None:
    tp = _timepoint("m", "mask", mask_source=True)
    assert [d["threshold_rule"] for d in tp.lesion_dicts()] == ["user mask"] * 2
    assert all(d["volume_reliable"] for d in tp.lesion_dicts())
    tp = _timepoint("u", "")
    assert [d["threshold_rule"] for d in tp.lesion_dicts()] == ["unknown"] * 2


def test_csv_rows_carry_the_flag(study: Any) -> None:
    from emlesion.study import CSV_COLUMNS

    assert "threshold_rule" in CSV_COLUMNS and "volume_reliable" in CSV_COLUMNS
    rows = {r["label"]: r for r in study.lesions_rows()}
    assert rows[1]["volume_reliable"] is True and rows[2]["volume_reliable"] is False
    assert rows[2]["threshold_rule"] == "blood-pool floor"


def test_html_marks_unreliable_volume(study: Any) -> None:
    from emlesion.report._study import study_views
    from emlesion.report.html import render_html

    header, views, tracks, _ = study_views(study)
    page = render_html(header, views, tracks, ())
    table = page[page.index('<section id="lesion-table">'):]
    table = table[:table.index("</section>")]
    # one row per (track, timepoint): the first cell is the track, the second the timepoint
    rows = re.findall(r"<tr(?: class=\"resolved\")?><td>[^<]*</td><td>b</td>.*?</tr>", table)
    assert len(rows) == 2
    hot = next(r for r in rows if "hot &lt;b&gt;" in r)      # names stay escaped
    faint = next(r for r in rows if "faint &amp; low" in r)
    assert "&dagger;" not in hot
    assert faint.count("&dagger;") == 2                          # MTV and TLG
    assert 'id="volume-reliability"' in table and "blood-pool mean" in table
    # no footnote when every volume is reliable
    reliable = [replace(views[0], rows=tuple({**r, "volume_reliable": True}
                                             for r in views[0].rows))]
    assert 'id="volume-reliability"' not in render_html(header, reliable, tracks, ())


# The month-1 pelvic nodule of the bundled sample (SUVmax 3.28, 0.41 x 3.28 below the blood-pool
# mean) is delineated on the CT (rule "CT soft tissue (low contrast)", reliable): asserted in
# tests/test_study_volumes.py on the study that file already loads.


def test_schemas_list_every_threshold_rule() -> None:
    # the public contracts enumerate exactly the ThresholdRule values (a new rule must be
    # added to both schemas)
    import emlesion

    root = Path(emlesion.__file__).parent / "schemas"
    for name in ("report.schema.json", "measure.schema.json"):
        text = (root / name).read_text()
        enums = re.findall(r'"threshold_rule": \{\s*"enum": \[([^\]]*)\]', text)
        assert enums, name
        for block in enums:
            values = set(json.loads("[" + block + "]"))
            assert values == {r.value for r in ThresholdRule}, name
