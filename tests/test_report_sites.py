"""Site readouts in the reports: the HTML site table and fusions, the TID 1500 site groups.

Two layers, as for the other report tests:

* fast tests on a small synthetic three-timepoint study whose :class:`SiteReading` objects
  are built here (every display state: present, new, residual mass, resolved, residual
  uptake, not evaluable), rendered with :func:`emlesion.report.render_html` and encoded with
  :func:`emlesion.report.build_measurement_report` on the synthetic PET headers of
  ``tests/test_report_dicom.py``;
* slow end-to-end tests on the bundled ``sample_scans`` study (the session-scoped
  ``sample_study`` fixture of ``conftest.py``, default automatic segmentation: at month 3
  nothing is segmented, the retroperitoneal site keeps a CT mass and the pelvic site is
  metabolically resolved without one). Expected
  values are the study's own :attr:`Study.sites` and its ``report.json`` tracks, and
  ``truth.json`` for which track is which lesion and for the CT size of the month-3 scar.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import highdicom as hd
import matplotlib.image as mpimg
import numpy as np
import pydicom
import pytest

from emlesion.errors import ResponseWarning
from emlesion.io import Grid, LabelMap, SeriesIdentity, Volume
from emlesion.measure import CtSiteReadout, PetSiteReadout
from emlesion.report import (
    TimepointView,
    TrackingInfo,
    build_measurement_report,
    build_segmentation,
    header_from_identity,
    render_html,
    tracking_uid,
    tracks_array,
)
from emlesion.report.dicom import SITE_READOUT_METHOD, SITE_SCHEME, write_dataset_atomic
from emlesion.response.sites import SiteReading, SiteState
from tests.test_report_dicom import make_timepoint
from tests.test_report_html import _CHECK_SCRIPT, _chromium, _parse, _run_chromium

# --------------------------------------------------------------------------- synthetic study

LABELS = ("baseline", "month1", "month3")
DATES = dict(zip(LABELS, (dt.date(2024, 1, 8), dt.date(2024, 2, 12), dt.date(2024, 4, 15))))
SHAPE = (24, 32, 32)  # PET (z, y, x), 4 mm voxels
PET_GRID = Grid(SHAPE, (-64.0, -64.0, -48.0), (4.0, 4.0, 4.0))
# native CT: 2 mm in plane, same slices and the same outer edges as the PET grid
CT_GRID = Grid((24, 64, 64), (-65.0, -65.0, -48.0), (2.0, 2.0, 4.0))
# lesion centres (PET index z, y, x) and radius (voxels)
CENTRES = {"T1": (12, 10, 10), "T2": (8, 22, 22), "T3": (16, 16, 24)}
# which tracks are segmented at which timepoint, with their label
SEGMENTED = {"baseline": {"T1": 1, "T2": 2}, "month1": {"T1": 1, "T3": 3}, "month3": {}}
UPTAKE = {("T1", "baseline"): 9.0, ("T2", "baseline"): 7.0, ("T1", "month1"): 5.0,
          ("T3", "month1"): 6.0, ("T3", "month3"): 4.5}
EVIL_REASON = "not segmented <b>but</b> uptake & mass"


def _lps(tid: str) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in PET_GRID.index_to_lps(np.asarray(CENTRES[tid], float)))
    return x, y, z


def _pet(tid: str, suv_max: float, voi: str = "lesion") -> PetSiteReadout:
    return PetSiteReadout(suv_max=suv_max, suv_peak=0.85 * suv_max, sul_peak=0.7 * suv_max,
                          sul_max=0.8 * suv_max, voi_ml=12.345, n_voxels=193, voi=voi,
                          peak_centre_index=CENTRES[tid])


def _ct(tid: str, ld_mm: float, sa_mm: float) -> CtSiteReadout:
    x, y, z = _lps(tid)
    ends = ((x - ld_mm / 2, y, z), (x + ld_mm / 2, y, z))
    return CtSiteReadout(found=True, ld_mm=ld_mm, sa_mm=sa_mm, ppd_mm2=ld_mm * sa_mm,
                         volume_ml=ld_mm * sa_mm * sa_mm / 2000.0, hu_mean=38.4, n_fragments=1,
                         method="ct", reason="soft tissue", ld_slice_z_mm=z,
                         ld_endpoints_mm=ends)


NO_MASS = CtSiteReadout(found=False, ld_mm=0.0, sa_mm=0.0, ppd_mm2=0.0, volume_ml=0.0,
                        hu_mean=None, n_fragments=0, method="ct",
                        reason="no soft-tissue mass contained in the site")
S = SiteState
READINGS: dict[str, dict[str, SiteReading]] = {
    "T1": {
        "baseline": SiteReading("T1", "baseline", S.PRESENT, _pet("T1", 9.0),
                                _ct("T1", 30.456, 21.04), 5, True, ("segmented",)),
        "month1": SiteReading("T1", "month1", S.PRESENT, _pet("T1", 5.0),
                              _ct("T1", 24.95, 17.3), 4, True, ("segmented",)),
        "month3": SiteReading("T1", "month3", S.METABOLICALLY_RESOLVED,
                              _pet("T1", 1.7349, "footprint"), _ct("T1", 17.088, 15.215), 2,
                              True, (EVIL_REASON, "second sentence")),
    },
    "T2": {
        "baseline": SiteReading("T2", "baseline", S.PRESENT, _pet("T2", 7.0),
                                _ct("T2", 28.0, 20.0), 5, True, ("segmented",)),
        "month1": SiteReading("T2", "month1", S.METABOLICALLY_RESOLVED,
                              _pet("T2", 2.5862, "footprint"), NO_MASS, 3, True,
                              ("metabolically resolved",)),
        "month3": SiteReading("T2", "month3", S.NOT_EVALUABLE, None, None, None, True,
                              ("outside the PET field of view",)),
    },
    "T3": {
        "month1": SiteReading("T3", "month1", S.NEW, _pet("T3", 6.0), _ct("T3", 20.0, 14.0),
                              5, True, ("new lesion",)),
        "month3": SiteReading("T3", "month3", S.RESIDUAL_UPTAKE, _pet("T3", 4.5, "footprint"),
                              NO_MASS, 4, False, ("residual uptake",)),
    },
}
# the state column as the report reads it (metabolically resolved: CT mass -> residual mass)
SHOWN_STATE = {("T1", "baseline"): "present", ("T1", "month1"): "present",
               ("T1", "month3"): "residual mass", ("T2", "baseline"): "present",
               ("T2", "month1"): "resolved", ("T2", "month3"): "not evaluable",
               ("T3", "month1"): "new", ("T3", "month3"): "residual uptake"}
TRACKS = [{"id": tid, **{lab: SEGMENTED[lab].get(tid) for lab in LABELS}}
          for tid in ("T1", "T2", "T3")]


def _view(label: str) -> TimepointView:
    z, y, x = np.indices(SHAPE)
    body = ((y - 16) / 14.0) ** 2 + ((x - 16) / 14.0) ** 2 <= 1.0
    suv = np.where(body, 1.0, 0.0).astype(np.float32)
    lab = np.zeros(SHAPE, np.uint16)
    for tid, c in CENTRES.items():
        ball = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= 2.5 ** 2
        if (tid, label) in UPTAKE:
            suv[ball] = UPTAKE[(tid, label)]
        if tid in SEGMENTED[label]:
            lab[ball] = SEGMENTED[label][tid]
    ident = SeriesIdentity(patient_name="Doe^Site", patient_id="P-S", modality="PT",
                           series_description="PET", frame_of_reference_uid="1.2.3")
    _, cy, cx = np.indices(CT_GRID.shape)
    ct = np.where(((cy - 32) / 28.0) ** 2 + ((cx - 32) / 28.0) ** 2 <= 1.0, 40.0, -1000.0)
    sites = {tid: by_tp[label] for tid, by_tp in READINGS.items() if label in by_tp}
    names = {v: f"lesion {v}" for v in SEGMENTED[label].values()}
    return TimepointView(
        label, Volume(suv, PET_GRID, ident, units="SUVbw"), LabelMap(lab, PET_GRID, names),
        DATES[label], Volume(ct.astype(np.float32), CT_GRID,
                             SeriesIdentity(modality="CT", frame_of_reference_uid="1.2.3"),
                             units="HU"),
        (), None, sites)


@pytest.fixture(scope="module")
def views() -> list[TimepointView]:
    return [_view(label) for label in LABELS]


@pytest.fixture(scope="module")
def page(views: list[TimepointView]) -> str:
    return render_html(header_from_identity(views[0].suv.identity), views, TRACKS, ())


# --------------------------------------------------------------------------- helpers


def _section(page: str, ident: str) -> str:
    start = page.index(f'<section id="{ident}">')
    return page[start:page.index("</section>", start)]


def _site_rows(page: str) -> dict[tuple[str, str], list[str]]:
    """(track, timepoint) -> the raw HTML of the cells of the site table."""
    body = page.split('<table class="sites">', 1)[1].split("</table>", 1)[0]
    out: dict[tuple[str, str], list[str]] = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        assert (cells[0], cells[1]) not in out
        out[(cells[0], cells[1])] = cells
    return out


def _text(cell: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()


def _site_images(page: str) -> list[tuple[str, np.ndarray]]:
    """(alt text, decoded RGBA array) of every site fusion image."""
    out = []
    for alt_src in re.findall(r'<figure class="site"><img src="([^"]+)" alt="([^"]*)">', page):
        src, alt = alt_src
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        out.append((html.unescape(alt), mpimg.imread(io.BytesIO(png), format="png")))
    return out


def _expected_cells(r: SiteReading) -> list[str]:
    """Columns 4-10 as the report must show them, formatted from the SiteReading values."""
    pet, ct = r.pet, r.ct
    cells = ([f"{pet.suv_max:.2f}", f"{pet.suv_peak:.2f}", f"{pet.sul_peak:.2f}"]
             if pet is not None and pet.sul_peak is not None else ["\u2013"] * 3)
    cells.append(str(r.deauville) if r.deauville is not None else "\u2013")
    if ct is None:
        cells += ["\u2013"] * 3
    elif ct.found:
        assert ct.hu_mean is not None
        cells += [f"{ct.ld_mm:.1f} \u00d7 {ct.sa_mm:.1f}", f"{ct.volume_ml:.1f}",
                  f"{ct.hu_mean:.0f}"]
    else:
        cells += ["no mass", "\u2013", "\u2013"]
    return cells


# --------------------------------------------------------------------------- HTML, synthetic


def test_site_table_has_a_row_per_track_and_timepoint(page: str) -> None:
    rows = _site_rows(page)
    expected = {(tid, lab) for tid, by_tp in READINGS.items() for lab in by_tp}
    assert set(rows) == expected
    for (tid, lab), cells in rows.items():
        r = READINGS[tid][lab]
        state = _text(cells[2])
        assert state.startswith(SHOWN_STATE[(tid, lab)])
        if SHOWN_STATE[(tid, lab)] != r.state.value:  # the report.json state stays visible
            assert r.state.value in state
        assert ("unreliable" in state) is (not r.reliable)
        assert [_text(c) for c in cells[3:10]] == _expected_cells(r)
        assert _text(cells[10]) == r.reasons[0]  # the first reason only
    # track-major order, timepoints in study order
    order = list(rows)
    assert order == [(tid, lab) for tid in ("T1", "T2", "T3") for lab in LABELS
                     if lab in READINGS[tid]]


def test_site_table_headers_carry_units_and_reasons_are_escaped(page: str) -> None:
    head = page.split('<table class="sites">', 1)[1].split("</thead>", 1)[0]
    headers = [_text(h) for h in re.findall(r"<th>(.*?)</th>", head)]
    assert headers[:3] == ["Track", "Timepoint", "State"] and headers[-1] == "Reason"
    units = {"SUVmax": "(g/mL)", "SUVpeak": "(g/mL)", "SULpeak": "(g/mL)",
             "Deauville": "(score 1\u20135)", "CT LD \u00d7 SA": "(mm)", "CT volume": "(mL)",
             "CT mean": "(HU)"}
    assert headers[3:-1] == [f"{k} {v}" for k, v in units.items()]
    sites = _section(page, "sites")
    assert "not segmented &lt;b&gt;but&lt;/b&gt; uptake &amp; mass" in sites
    assert "<b>" not in sites
    assert "second sentence" not in sites


def test_one_fusion_per_site_at_every_timepoint(page: str) -> None:
    images = _site_images(page)
    # every reading with a PET or CT readout, baseline and former sites included,
    # track-major (one row of images per track), timepoints in study order
    located = [(tid, lab) for tid, by_tp in READINGS.items() for lab, r in by_tp.items()
               if r.pet is not None or (r.ct is not None and r.ct.found)]
    assert len(images) == len(located) == 7
    for (tid, lab), (alt, pic) in zip(located, images):
        assert f"{tid} / {lab}: {SHOWN_STATE[(tid, lab)]}" in alt
        assert pic.shape[1] >= 300 and pic.shape[0] >= 250  # at least 300 px wide
        assert pic[..., :3].std() > 0.05  # a picture, not a blank canvas
    # the not-evaluable site without any readout is named in a note, not drawn
    sites = _section(page, "sites")
    assert "T2 / month3: not evaluable" in sites


def _green_pixels(pic: np.ndarray) -> int:
    """Pixels of the LD line colour (#00ff66): no grey CT, hot map or colour bar has them."""
    r, g, b = pic[..., 0], pic[..., 1], pic[..., 2]
    return int(np.count_nonzero((g > 0.8) & (r < 0.3) & (b > 0.2) & (b < 0.6)))


def test_ld_line_drawn_only_where_the_ct_found_a_mass(page: str) -> None:
    images = {alt.split(" (")[0].removeprefix("site fusion "): pic
              for alt, pic in _site_images(page)}
    assert _green_pixels(images["T1 / month3: residual mass"]) > 20
    assert _green_pixels(images["T1 / month1: present"]) > 20
    assert _green_pixels(images["T2 / month1: resolved"]) == 0
    assert _green_pixels(images["T3 / month3: residual uptake"]) == 0


def _lesion_rows(page: str) -> dict[tuple[str, str], list[str]]:
    body = page.split('<table class="lesions">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.S) for r in rows]
    return {(c[0], c[1]): c for c in cells}


def test_lesion_table_has_every_track_at_every_timepoint(page: str) -> None:
    rows = _lesion_rows(page)
    # every track from its first appearance, segmented or not (month3: none segmented)
    assert list(rows) == [(tid, lab) for tid in ("T1", "T2", "T3") for lab in LABELS
                          if lab in READINGS[tid]]
    for key, cells in rows.items():
        assert _text(cells[3]) == SHOWN_STATE[key]
    # the residual mass at month3: uptake of the site readout, no metabolic volume left,
    # the CT mass; SULpeak 0.7 x SUVmax (see _pet): 6.3 at baseline, 3.5 at month1 (nadir),
    # 0.7 x 1.7349 = 1.2144 at month3: -80.7 % vs baseline, -65.3 % vs the nadir
    t1 = rows[("T1", "month3")]
    assert _text(t1[5]) == "1.73" and _text(t1[8]) == "1.21"
    assert _text(t1[9]) == "\u221280.7" and _text(t1[10]) == "\u221265.3"
    assert _text(t1[11]) == "0.00" and _text(t1[16]) == "17.1 \u00d7 15.2"
    # residual uptake is not resolved: its volume is unknown, not 0
    assert _text(rows[("T3", "month3")][11]) == "\u2013"
    # a track first seen at month1 is new there: no baseline to compare with
    assert _text(rows[("T3", "month1")][9]) == "new"
    # the not-evaluable site has no readout at all
    assert [_text(c) for c in rows[("T2", "month3")][5:9]] == ["\u2013"] * 4


def test_without_sites_the_section_says_so(views: list[TimepointView]) -> None:
    from dataclasses import replace

    bare = [replace(v, sites={}) for v in views]
    text = render_html(header_from_identity(bare[0].suv.identity), bare, TRACKS, ())
    assert '<table class="sites">' not in text
    assert "No site readouts" in _section(text, "sites")
    assert '<figure class="site">' not in text
    # each segmented lesion is still shown, through its SUVmax voxel: T1, T2 at baseline,
    # T1, T3 at month1, none at month3
    alts = re.findall(r'<figure class="lesion"><img src="[^"]+" alt="([^"]*)">', text)
    assert [a.split(":")[0] for a in alts] == [
        "lesion fusion T1 / baseline", "lesion fusion T1 / month1",
        "lesion fusion T2 / baseline", "lesion fusion T3 / month1"]


def test_site_report_renders_in_headless_chromium(page: str, tmp_path: Path) -> None:
    exe = _chromium()
    if exe is None:
        reason = "chromium is not installed (.ci/run installs it); structure checked above"
        if os.environ.get("EMLESION_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason + "; EMLESION_REQUIRE_CHROMIUM=1 forbids skipping", pytrace=False)
        pytest.skip(reason)
    text = page.replace("style-src 'unsafe-inline'", "style-src 'unsafe-inline'; "
                        "script-src 'unsafe-inline'", 1)
    copy = tmp_path / "sites.html"
    copy.write_text(text.replace("</body>", _CHECK_SCRIPT + "</body>"), encoding="utf-8")
    res = _run_chromium(exe, copy, tmp_path, "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    body = next(a for t, a in _parse(res.stdout).tags if t == "body")
    n = page.count("<img ")
    assert body.get("data-images") == str(n) and body.get("data-decoded") == str(n)
    assert not [ln for ln in res.stderr.splitlines() if ":CONSOLE" in ln]


# --------------------------------------------------------------------------- SR, synthetic


def _info(tid: str) -> TrackingInfo:
    return TrackingInfo(tid, tracking_uid(tid, patient_id="P-001"))


def _site_groups(sr: Any) -> dict[str, Any]:
    groups = [g for g in sr.content.get_image_measurement_groups()
              if g.method is not None and g.method.value == SITE_READOUT_METHOD.value]
    out = {g.tracking_identifier: g for g in groups}
    assert len(out) == len(groups)  # one site group per track
    return out


def _values(group: Any) -> dict[tuple[str, str | None], tuple[float, str]]:
    out = {}
    for m in group.get_measurements():
        if m.name.value == "126073":  # Time Point Order (TID 1502), not a measurement
            continue
        key = (m.name.value, m.derivation.value if m.derivation is not None else None)
        assert key not in out
        out[key] = (float(m.value), m.unit.value)
    return out


def _evaluations(group: Any) -> dict[str, str]:
    return {q.name.meaning: q.value.meaning for q in group.get_qualitative_evaluations()}


def _expected_measurements(r: SiteReading, sul: bool = True) -> dict[tuple[str, str | None],
                                                                    tuple[float, str]]:
    """The site group's TID 300 content, from the codes of the module docstring."""
    out: dict[tuple[str, str | None], tuple[float, str]] = {}
    if r.pet is not None:
        out[("126401", "56851009")] = (r.pet.suv_max, "g/ml{SUVbw}")
        out[("126401", "126031")] = (r.pet.suv_peak, "g/ml{SUVbw}")
        if sul and r.pet.sul_peak is not None:
            out[("126405", "126031")] = (r.pet.sul_peak, "g/ml{SUVlbm(Janma)}")
    if r.deauville is not None:
        out[("DEAUVILLE", None)] = (float(r.deauville), "{score}")
    if r.ct is not None and r.ct.found:
        assert r.ct.hu_mean is not None
        out[("103339001", None)] = (r.ct.ld_mm, "mm")
        out[("103340004", None)] = (r.ct.sa_mm, "mm")
        out[("118565006", None)] = (r.ct.volume_ml, "ml")
        out[("112031", "373098007")] = (r.ct.hu_mean, "[hnsf'U]")
    return out


@pytest.fixture(scope="module")
def synthetic_srs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SRs of the synthetic readings: month1 with a lesion, month3 with sites only."""
    from emlesion.measure import measure_lesions

    out = tmp_path_factory.mktemp("site_sr")
    suv, lesions = make_timepoint(0.8, with_second=False)
    rows = [r.to_dict() for r in measure_lesions(suv, lesions, peak_variants=("global",))]
    track = {4: _info("T1")}
    seg = build_segmentation(suv, lesions, tracking=track)
    files = {}
    for order, label in ((2, "month1"), (3, "month3")):
        sites = [(_info(tid), READINGS[tid][label]) for tid in ("T1", "T2", "T3")
                 if label in READINGS[tid]]
        lesion_rows = rows if label == "month1" else []
        sr = build_measurement_report(
            suv, lesion_rows, seg if lesion_rows else None, lesions=lesions, tracking=track,
            time_point=label, time_point_order=order, sites=sites, sul_units="SULjanma",
            ct_frame_of_reference_uid="1.2.826.0.1.3680043.8.498.1")
        files[label] = write_dataset_atomic(sr, out / f"{label}_sr.dcm")
    return files


def test_sr_site_groups_carry_the_readings(synthetic_srs: dict[str, Path]) -> None:
    for label, path in synthetic_srs.items():
        sr = hd.sr.srread(path)
        groups = _site_groups(sr)
        expected = {tid for tid, by_tp in READINGS.items() if label in by_tp}
        assert set(groups) == expected
        for tid, g in groups.items():
            r = READINGS[tid][label]
            assert g.tracking_uid == _info(tid).uid  # same UID as the lesion's groups
            assert g.finding_type is not None and g.finding_type.value == "52988006"
            got = _values(g)
            want = _expected_measurements(r)
            assert set(got) == set(want)
            for key, (value, unit) in want.items():
                assert got[key][0] == pytest.approx(value, rel=1e-6), (tid, label, key)
                assert got[key][1] == unit
            ev = _evaluations(g)
            assert ev["Lesion site state"] == r.state.value
            assert ev["Site readout reliable"] == ("Yes" if r.reliable else "No")
            if r.ct is None:
                assert "Soft-tissue mass on CT at the site" not in ev
            else:
                assert ev["Soft-tissue mass on CT at the site"] == (
                    "Present" if r.ct.found else "Absent")
        # the lesion's own volumetric group is still there at month1, none at month3
        n_vol = len(list(sr.content.get_volumetric_roi_measurement_groups()))
        assert n_vol == (1 if label == "month1" else 0)
        ds = pydicom.dcmread(path)
        schemes = [i.CodingSchemeDesignator for i in ds.CodingSchemeIdentificationSequence]
        assert schemes == [SITE_SCHEME]


def test_sr_long_axis_carries_its_end_points(synthetic_srs: dict[str, Path]) -> None:
    g = _site_groups(hd.sr.srread(synthetic_srs["month3"]))["T1"]
    ld = [m for m in g.get_measurements() if m.name.value == "103339001"]
    assert len(ld) == 1
    coords = ld[0].referenced_coordinates
    assert len(coords) == 1 and coords[0].graphic_type.value == "POLYLINE"
    ends = READINGS["T1"]["month3"].ct.ld_endpoints_mm  # type: ignore[union-attr]
    assert np.allclose(np.asarray(coords[0].value, float).reshape(-1, 3), np.asarray(ends))
    # the pelvic-like site (no CT mass) has no diameter at all, never 0 mm
    g2 = _site_groups(hd.sr.srread(synthetic_srs["month1"]))["T2"]
    assert not [m for m in g2.get_measurements() if m.name.value in ("103339001", "103340004")]


def test_sr_without_sul_units_leaves_the_sulpeak_out(tmp_path: Path) -> None:
    suv, _ = make_timepoint(1.0, with_second=False)
    r = READINGS["T1"]["month3"]
    path = write_dataset_atomic(
        build_measurement_report(suv, [], None, tracking={}, time_point="month3",
                                 sites=[(_info("T1"), r)]), tmp_path / "sr.dcm")
    sr = hd.sr.srread(path)
    got = _values(_site_groups(sr)["T1"])
    assert set(got) == set(_expected_measurements(r, sul=False))


# --------------------------------------------------------------------------- bundled sample

SAMPLE_LABELS = ("baseline", "month1", "month3")


@pytest.fixture(scope="module")
def sample(sample_study: Any, sample_scans_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sample study (session fixture, defaults), its report.html and SEG/SR files."""
    from emlesion.report import write_dicom_outputs, write_html_report

    study = sample_study
    assert study.labels == SAMPLE_LABELS
    out = tmp_path_factory.mktemp("sample_sites")
    with warnings.catch_warnings():  # scanner-change warnings of Study.assess()
        warnings.simplefilter("ignore", ResponseWarning)
        page = write_html_report(study, None, out / "report.html").read_text(encoding="utf-8")
    files = write_dicom_outputs(study, out)
    truth = json.loads((sample_scans_dir / "truth.json").read_text())
    return {"study": study, "page": page, "files": files, "out": out, "truth": truth}


def _truth_track_names(sample: dict[str, Any]) -> dict[str, str]:
    """Track id -> truth lesion name, by the nearest truth SUVpeak centre at baseline."""
    study = sample["study"]
    truth = sample["truth"]["timepoints"]["baseline"]["lesions"]
    grid = study.baseline.suv.grid
    out = {}
    for tid, by_tp in study.sites.items():
        r = by_tp["baseline"]
        centre = grid.index_to_lps(np.asarray(r.pet.peak_centre_index, float))
        out[tid] = min(truth, key=lambda les: float(np.linalg.norm(
            np.subtract(les["suv_peak_center_mm"], centre))))["name"]
    assert len(set(out.values())) == len(out)
    return out


@pytest.mark.slow
def test_sample_html_rows_match_report_json(sample: dict[str, Any]) -> None:
    study = sample["study"]
    rows = _site_rows(sample["page"])
    json_sites = {t["id"]: t["sites"] for t in tracks_array(study)}  # report.json tracks
    expected = {(tid, lab) for tid, by_tp in study.sites.items() for lab in by_tp}
    n_truth = len(sample["truth"]["timepoints"]["baseline"]["lesions"])
    assert set(rows) == expected and len(expected) == n_truth * len(SAMPLE_LABELS)
    for (tid, lab), cells in rows.items():
        r = study.site(tid, lab)
        j = json_sites[tid][lab]
        assert j["state"] == r.state.value
        state = _text(cells[2])
        if r.state is SiteState.METABOLICALLY_RESOLVED:
            assert state.startswith("residual mass" if r.ct.found else "resolved")
            assert "metabolically resolved" in state
        else:
            assert state.startswith(r.state.value)
        pet, ct = j["pet"], j["ct"]
        assert [_text(c) for c in cells[3:7]] == [
            f"{pet['suv_max']:.2f}", f"{pet['suv_peak']:.2f}", f"{pet['sul_peak']:.2f}",
            str(pet["deauville"])]
        if ct["found"]:
            assert _text(cells[7]) == f"{ct['ld_mm']:.1f} \u00d7 {ct['sa_mm']:.1f}"
            assert _text(cells[8]) == f"{ct['volume_ml']:.1f}"
            assert _text(cells[9]) == f"{ct['hu_mean']:.0f}"
        else:
            assert _text(cells[7]) == "no mass"
        assert _text(cells[10]) == j["reasons"][0]
    # month 3: nothing segmented, both sites still shown (not "No lesion.")
    assert not study.timepoint("month3").lesions.labels
    assert {tid for tid, lab in rows if lab == "month3"} == set(study.sites)


@pytest.mark.slow
def test_sample_html_one_fusion_per_site_at_every_timepoint(sample: dict[str, Any]) -> None:
    study = sample["study"]
    page = sample["page"]
    images = _site_images(page)
    # track-major: one row of images per track, baseline and former sites included
    follow = [(tid, lab) for tid in study.sites for lab in SAMPLE_LABELS
              if lab in study.sites[tid]]
    assert len(images) == len(follow) == 2 * len(SAMPLE_LABELS)
    for (tid, lab), (alt, pic) in zip(follow, images):
        assert alt.startswith(f"site fusion {tid} / {lab}: ")
        assert pic.shape[1] >= 300
    names = _truth_track_names(sample)
    retro = next(t for t, n in names.items() if n.startswith("retroperitoneal"))
    alt_retro = next(a for a, _ in images if a.startswith(f"site fusion {retro} / month3"))
    ld = study.site(retro, "month3").ct.ld_mm
    assert f"CT LD {ld:.1f} mm" in alt_retro
    # the page stays self-contained and below 5 MB
    assert len(page.encode()) < 5_000_000 and "<script" not in page.lower()


@pytest.mark.slow
def test_sample_sr_carries_the_month3_sites(sample: dict[str, Any]) -> None:
    study = sample["study"]
    out: Path = sample["out"]
    truth = {les["name"]: les for les in sample["truth"]["timepoints"]["month3"]["lesions"]}
    names = _truth_track_names(sample)
    for lab in SAMPLE_LABELS:
        groups = _site_groups(hd.sr.srread(out / f"{lab}_sr.dcm"))
        assert set(groups) == {tid for tid, by_tp in study.sites.items() if lab in by_tp}
        for tid, g in groups.items():
            r = study.site(tid, lab)
            got = _values(g)
            want = _expected_measurements(r)
            assert set(got) == set(want)
            for key, (value, unit) in want.items():
                assert got[key] == (pytest.approx(value, rel=1e-6), unit)
            assert _evaluations(g)["Lesion site state"] == r.state.value
    month3 = _site_groups(hd.sr.srread(out / "month3_sr.dcm"))
    assert set(month3) == set(names)  # both tracks, although nothing was segmented
    for tid, name in names.items():
        les = truth[name]
        g = _values(month3[tid])
        ev = _evaluations(month3[tid])
        if les["present"]:  # the retroperitoneal scar: a CT mass the size of the truth's
            assert ev["Soft-tissue mass on CT at the site"] == "Present"
            assert g[("103339001", None)][0] == pytest.approx(les["ct"]["ld_mm"], abs=2.0)
        else:  # the pelvic site: metabolically resolved, no CT mass, no diameter
            assert ev["Lesion site state"] == SiteState.METABOLICALLY_RESOLVED.value
            assert ev["Soft-tissue mass on CT at the site"] == "Absent"
            assert ("103339001", None) not in g
