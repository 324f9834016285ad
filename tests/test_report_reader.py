"""The report an oncologist reads, on the bundled sample_scans, in headless Chromium.

Acceptance (issue 16, item 1): the summary with the four criteria (PERCIST, EORTC, RECIST,
Lugano) is the first content of ``report.html`` and lies above the first image, and every
track appears at every timepoint in the lesion table. Expected values come from
``sample_scans/truth.json`` (the infusion date, the PERCIST calls) and from the study itself
(``Study.assess()``, ``Study.sites``).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import pytest

from tests.test_report_html import _chromium, _parse, _run_chromium

pytestmark = pytest.mark.slow

#: Records the layout facts the test needs as data attributes of <body> (the CSP of the
#: copy is relaxed for this script only; the report itself has no script).
_LAYOUT_SCRIPT = """<script>window.addEventListener('load', () => {
const b = document.body, s = document.getElementById('summary');
const img = document.images[0];
b.dataset.first = b.firstElementChild.id;
b.dataset.summaryTop = s.getBoundingClientRect().top;
b.dataset.summaryBottom = s.getBoundingClientRect().bottom;
b.dataset.imgTop = img.getBoundingClientRect().top;
const rowsOf = sel => [...s.querySelectorAll(sel)].map(
  r => [...r.cells].map(c => c.innerText.trim()).join('|')).join(';');
b.dataset.criteria = [...s.querySelectorAll('table.calls thead th')].map(
  c => c.innerText.trim()).join('|');
b.dataset.calls = [...s.querySelectorAll('table.calls tbody tr')].map(
  r => r.cells[0].innerText.trim() + '=' + [...r.querySelectorAll('.cat')].map(
    c => c.innerText.trim()).join(',')).join(';');
b.dataset.timeline = rowsOf('table.timepoints tbody tr');
b.dataset.lesionRows = [...document.querySelectorAll('table.lesions tbody tr')]
  .map(r => r.cells[0].innerText + '|' + r.cells[1].innerText).join(';');
b.dataset.decoded = [...document.images].filter(i => i.complete && i.naturalWidth >= 300)
  .length;});</script>"""


@pytest.fixture(scope="module")
def written(sample_study: Any, sample_scans_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import warnings

    from emlesion.report import write_html_report

    truth = json.loads((sample_scans_dir / "truth.json").read_text())
    out = tmp_path_factory.mktemp("reader")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the scanner-change warnings of Study.assess()
        calls = sample_study.assess()
        path = write_html_report(sample_study, calls, out / "report.html",
                                 treatment_date=truth["infusion_date"])
    return {"path": path, "page": path.read_text(encoding="utf-8"), "calls": calls,
            "truth": truth, "out": out}


def _chromium_or_skip() -> str:
    exe = _chromium()
    if exe is None:
        reason = "chromium is not installed (.ci/run installs it)"
        if os.environ.get("EMLESION_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason + "; EMLESION_REQUIRE_CHROMIUM=1 forbids skipping", pytrace=False)
        pytest.skip(reason)
    return exe


def test_summary_first_above_the_images_with_every_call_and_track(
        written: dict[str, Any], sample_study: Any, tmp_path: Path) -> None:
    exe = _chromium_or_skip()
    page: str = written["page"]
    copy = tmp_path / "layout.html"
    text = page.replace("style-src 'unsafe-inline'", "style-src 'unsafe-inline'; "
                        "script-src 'unsafe-inline'", 1)
    copy.write_text(text.replace("</body>", _LAYOUT_SCRIPT + "</body>"), encoding="utf-8")
    res = _run_chromium(exe, copy, tmp_path, "--dump-dom", "--window-size=1280,1000")
    assert res.returncode == 0, res.stderr[-2000:]
    assert not [ln for ln in res.stderr.splitlines() if ":CONSOLE" in ln]
    body = next(a for t, a in _parse(res.stdout).tags if t == "body")
    # the summary is the first content and ends above the first image
    assert body["data-first"] == "summary"
    assert float(body["data-summary-top"] or "nan") < 100.0
    assert float(body["data-summary-bottom"] or "nan") <= float(body["data-img-top"] or "nan")
    # every image decodes and is at least 300 px wide (the time course is wider still)
    assert int(body["data-decoded"] or 0) == page.count("<img ")
    # the four criteria (Lugano: PET and CT) with their category at each follow-up, in the
    # order and with the values Study.assess() gave
    calls = written["calls"]
    criteria = list(dict.fromkeys(c.criterion.full_name for c in calls))
    assert (body["data-criteria"] or "").split("|") == ["Follow-up", *criteria]
    for name in ("PERCIST 1.0", "EORTC 1999", "RECIST 1.1", "Lugano 2014 (PET-based)",
                 "Lugano 2014 (CT-based)"):
        assert name in criteria
    shown = dict(r.split("=") for r in (body["data-calls"] or "").split(";"))
    follow_ups = list(dict.fromkeys(c.timepoint for c in calls))
    days = {tp.label: tp.days_since_baseline for tp in sample_study.timepoints}
    assert list(shown) == [f"{fu} (day {days[fu]})" for fu in follow_ups]
    for fu in follow_ups:
        assert shown[f"{fu} (day {days[fu]})"].split(",") == [
            c.category.value for c in calls if c.timepoint == fu]
    # truth.json: PERCIST PMR at month 1 and CMR at month 3
    expected = written["truth"]["expected_response"]
    assert [shown[f"{fu} (day {days[fu]})"].split(",")[0] for fu in ("month1", "month3")] == [
        expected["month1"]["percist"]["category"], expected["month3"]["percist"]["category"]]
    # days since the infusion (truth.json infusion_date): baseline 2 days before
    infusion = dt.date.fromisoformat(written["truth"]["infusion_date"])
    timeline = [r.split("|") for r in (body["data-timeline"] or "").split(";")]
    assert [r[3] for r in timeline] == [str((tp.date - infusion).days)
                                        for tp in sample_study.timepoints]
    assert timeline[0][3] == "-2"
    # every track at every timepoint in the lesion table (month 3: nothing segmented, both
    # former sites still listed)
    rows = (body["data-lesion-rows"] or "").split(";")
    expected_rows = [f"{tid}|{tp.label}" for tid in sample_study.sites
                     for tp in sample_study.timepoints]
    assert rows == expected_rows and len(rows) == 2 * 3
    # a screenshot of the first screen is the summary (not blank)
    shot = tmp_path / "first_screen.png"
    _run_chromium(exe, written["path"], tmp_path, f"--screenshot={shot}",
                  "--window-size=1280,1000", "--hide-scrollbars")
    pic = mpimg.imread(str(shot))
    assert pic.shape[:2] == (1000, 1280) and pic[..., :3].std() > 0.05


def test_acquisition_flags_the_scanner_changes(written: dict[str, Any],
                                               sample_study: Any) -> None:
    # sample_scans: a different vendor at each timepoint (Siemens, Philips, GE), uptake
    # times 62.5 / 61.7 / 62.2 min (within 15 min): only the scanner is flagged
    page = written["page"]
    table = page.split('<table class="acquisition">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr([^>]*)>(.*?)</tr>", table, flags=re.S)[1:]
    assert [r[0] for r in rows] == ["", ' class="flag"', ' class="flag"']
    base = sample_study.baseline
    for (_, row), tp in zip(rows, sample_study.timepoints):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        assert cells[2] == tp.scanner
        assert cells[4] == f"{tp.uptake_time_min:.0f}"
        if tp is not base:
            assert f"scanner changed ({base.scanner} -> {tp.scanner})" in cells[-1]
            assert "uptake time" not in cells[-1]
    # the injected activity and weight the SUV engine used (SUV provenance inputs)
    step = next(s for s in base.suv.provenance if s.operation == "emlesion.suv.compute_suv")
    first = re.findall(r"<td[^>]*>(.*?)</td>", rows[0][1], flags=re.S)
    assert first[5] == f"{step.inputs['injected_dose_bq'] / 1e6:.0f}"
    assert first[6] == f"{step.inputs['weight_kg']:.1f}"
