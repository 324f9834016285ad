"""Self-contained HTML report of a longitudinal PET/CT study.

Two layers:

* :func:`render_html` builds the page from explicit inputs (a header mapping, one
  :class:`TimepointView` per timepoint, the lesion tracks and the response assessments);
  it does not depend on :mod:`emlesion.study`.
* :func:`write_html_report` is the thin adapter used by ``emlesion response ... --out OUTDIR``:
  ``write_html_report(study, assessments, path, *, deidentify=False, title=None) -> Path``
  reads a :class:`emlesion.study.Study` and writes ``path`` atomically.

The page has no external asset: figures are base64 PNG ``data:`` URIs, the CSS is inline,
there is no script, and a Content-Security-Policy ``<meta>`` forbids loading anything but
``data:`` images. Every string that comes from DICOM or from the caller (patient and series
attributes, lesion names, timepoint labels, reasons) goes through :func:`html.escape`, so
a ``PatientName`` such as ``<script>...`` is shown as text, never interpreted as markup.

Sections, in reading order:

1. ``#summary``, the first content: title, patient (name, ID, birth date as ``YYYY-MM-DD``,
   sex; optionally de-identified: PatientName, PatientID and PatientBirthDate are replaced
   by ``"de-identified"``), the dates with the days since baseline (and since treatment
   when a ``treatment_date`` is given), one line per follow-up with each criterion's
   category and its main reason (:func:`main_reason`), the overall trend (hottest
   SULpeak and total MTV over the whole study, the calls over time, :func:`trend_label`)
   and the comparability flags;
2. ``#lesion-table``: every track at every timepoint from its first appearance, segmented
   or not (resolved sites and residual masses included, read at the site), with the %
   change of SULpeak and MTV against the baseline and against the nadir, units in every
   header;
3. ``#acquisition``: scanner, reconstruction, uptake time, injected activity, weight,
   glucose (when given), liver SULmean per timepoint, flagged against the PERCIST
   comparability limits (:data:`UPTAKE_TIME_LIMIT_MIN`, a scanner or reconstruction
   change, the liver SULmean limits);
4. ``#mips``: coronal PET MIPs per timepoint on one shared SUV scale with a colour bar,
   lesion contours labelled with their track;
5. ``#sites``: the site readout table and an axial PET/CT fusion (at least 300 px wide,
   SUV colour bar) of every track at every timepoint, former sites included;
6. ``#time-course``: SULpeak and MTV per track over the whole study;
7. ``#response``: every criterion's reasons, rule and warnings.

A print stylesheet (``@media print``) puts the summary on its own page, starts the image
sections on new pages and keeps table rows and figures whole. Display conventions:
:mod:`emlesion.report.figures`.

The site table shows the :class:`emlesion.response.SiteReading` values themselves (the
numbers of ``report.json``'s ``tracks[].sites``), rounded for display: SUV and SUL to 2
decimals, CT diameters and volume to 1, HU to 0. Its *state* column reads a metabolically
resolved site as ``residual mass`` when the CT still shows a soft-tissue mass there and as
``resolved`` when it does not (:func:`site_state_label`).

References
----------
.. [1] Wahl R.L. et al., J Nucl Med 2009;50 Suppl 1:122S-150S (PERCIST: SULpeak, reporting).
.. [2] OWASP Cross Site Scripting Prevention Cheat Sheet, rule 1 (HTML-escape untrusted data
   in element content and attribute values).
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emlesion import _atomic
from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import SeriesIdentity, Volume
from emlesion.report._dates import format_dicom_date, parse_treatment_date
from emlesion.report.figures import (
    DEFAULT_SUV_WINDOW,
    contour_colour,
    coronal_mip_png,
    png_data_uri,
    site_fusion_png,
    timecourse_png,
)

if TYPE_CHECKING:
    from emlesion.response.sites import SiteReading
    from emlesion.study import Study

__all__ = [
    "DEIDENTIFIED",
    "LIVER_SUL_LIMIT_ABS",
    "LIVER_SUL_LIMIT_FRACTION",
    "UPTAKE_TIME_LIMIT_MIN",
    "TimepointView",
    "format_dicom_date",
    "header_from_identity",
    "main_reason",
    "normalise_assessments",
    "parse_treatment_date",
    "render_html",
    "site_state_label",
    "trend_label",
    "write_html_report",
]

#: Text shown instead of the identifying attributes when de-identifying.
DEIDENTIFIED = "de-identified"
#: Header keys removed by de-identification (PatientName, PatientID, PatientBirthDate).
IDENTIFYING_KEYS = ("patient_name", "patient_id", "patient_birth_date")

_HEADER_LABELS = (
    ("patient_name", "Patient name"),
    ("patient_id", "Patient ID"),
    ("patient_birth_date", "Birth date"),
    ("patient_sex", "Sex"),
    ("study_description", "Study description"),
    ("manufacturer", "Scanner"),
)


@dataclass(frozen=True, eq=False)
class TimepointView:
    """What the report shows of one timepoint.

    Parameters
    ----------
    label : str
        Timepoint label (e.g. ``"baseline"``).
    suv : Volume
        SUV image (its ``units`` are shown, e.g. SUVbw).
    lesions : LabelMap
        Lesion labels on the grid of ``suv``.
    date : datetime.date, optional
        Scan date (days since baseline in the time course).
    ct : Volume, optional
        CT of the same frame of reference (resampled onto the PET grid for the fusion).
    rows : tuple of Mapping
        One mapping per lesion, keys of :class:`emlesion.measure.LesionMeasurement`
        (``label``, ``name``, ``suv_max``, ``suv_mean``, ``suv_peak_global``, ``sul_peak``,
        ``mtv_ml``, ``tlg``, ``longest_axial_diameter_mm``, ``short_axis_mm``) plus optional
        ``region``, ``side`` and ``volume_reliable`` (``False`` marks MTV and TLG with a
        dagger and a footnote on the blood-pool floor).
    liver : Mapping, optional
        Liver reference (e.g. ``{"sul_mean": 1.9, "sul_sd": 0.2}``).
    sites : Mapping, optional
        Track id -> :class:`emlesion.response.SiteReading` of this timepoint (the
        :attr:`emlesion.study.Study.sites` entries of the timepoint); empty when the study
        has no site readouts (the site section then says so).
    burden : Mapping, optional
        The whole-body burden of the timepoint
        (:meth:`emlesion.measure.WholeBodyBurden.row`: lesion count, TMTV, total TLG, Dmax,
        SDmax, threshold rule); the burden table is left out when no view has one.
    acquisition : Mapping, optional
        Acquisition facts of the PET (the acquisition table and the PERCIST comparability
        flags): ``scanner``, ``reconstruction``, ``uptake_time_min``,
        ``injected_activity_mbq``, ``weight_kg``, ``glucose_mmol_l``; missing keys are
        shown as not recorded.
    """

    label: str
    suv: Volume
    lesions: LabelMap
    date: _dt.date | None = None
    ct: Volume | None = None
    rows: tuple[Mapping[str, Any], ...] = ()
    liver: Mapping[str, Any] | None = field(default=None)
    sites: Mapping[str, SiteReading] = field(default_factory=dict)
    acquisition: Mapping[str, Any] = field(default_factory=dict)
    burden: Mapping[str, Any] | None = None


def header_from_identity(identity: SeriesIdentity) -> dict[str, str]:
    """The report header fields of a series identity (values as stored in DICOM)."""
    model = " ".join(v for v in (identity.manufacturer, identity.manufacturer_model_name) if v)
    return {
        "patient_name": identity.patient_name,
        "patient_id": identity.patient_id,
        "patient_birth_date": identity.patient_birth_date,
        "patient_sex": identity.patient_sex,
        "study_description": identity.study_description,
        "manufacturer": model,
    }


# --------------------------------------------------------------------------- helpers


def _e(value: Any) -> str:
    """HTML-escape any value (quotes too, so the result is safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "&ndash;"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return _e(value)
    if not math.isfinite(f):
        return "&ndash;"
    return f"{f:.{digits}f}"


def _get(row: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        v = row.get(k)
        if v is not None:
            return v
    return None


def site_state_label(reading: SiteReading) -> str:
    """The state of a site as the report shows it.

    ``present``, ``new``, ``residual uptake``, ``merged`` and ``not evaluable`` as in
    :class:`emlesion.response.SiteState`; a *metabolically resolved* site is shown as
    ``residual mass`` when the CT found a soft-tissue mass there, ``resolved`` when the CT
    shows none, and ``metabolically resolved`` without a CT readout.

    Parameters
    ----------
    reading : SiteReading
        One track at one timepoint.

    Returns
    -------
    str
    """
    state = str(getattr(reading.state, "value", reading.state))
    if state != "metabolically resolved" or reading.ct is None:
        return state
    return "residual mass" if reading.ct.found else "resolved"


def normalise_assessments(assessments: Sequence[Any]) -> list[dict[str, Any]]:
    """Flatten assessments to rows ``{timepoint, reference, criterion, category, ...}``.

    Accepts :class:`emlesion.response.Assessment` objects, their ``to_dict()`` mappings, or
    report.json-style grouped mappings ``{"timepoint", "reference", "<criterion>":
    {"category", "reasons", ...}, ...}``.
    """
    out: list[dict[str, Any]] = []
    for a in assessments:
        d = a.to_dict() if hasattr(a, "to_dict") else dict(a)
        if "criterion" in d and "category" in d:
            out.append(_assessment_row(d, d.get("timepoint"), d.get("baseline")))
            continue
        tp = d.get("timepoint")
        ref = d.get("reference", d.get("baseline"))
        for key, value in d.items():
            if isinstance(value, Mapping) and "category" in value:
                item = dict(value)
                item.setdefault("criterion", key)
                out.append(_assessment_row(item, tp, ref))
    return out


def _assessment_row(d: Mapping[str, Any], tp: Any, ref: Any) -> dict[str, Any]:
    nadir = d.get("nadir")
    reference = str(ref or "")
    if nadir and nadir != ref:
        reference += f" (nadir {nadir})"
    return {
        "timepoint": str(tp or ""),
        "reference": reference,
        "criterion": str(d.get("criterion_name") or d.get("criterion") or ""),
        "category": str(d.get("category") or ""),
        "description": str(d.get("category_description") or ""),
        "rule": str(d.get("rule") or ""),
        "reasons": [str(r) for r in d.get("reasons") or ()],
        "warnings": [str(w) for w in d.get("warnings") or ()],
    }


def _track_maps(
    tracks: Sequence[Mapping[str, Any]], labels: Sequence[str]
) -> dict[str, dict[int, str]]:
    """Per timepoint, lesion label -> track id."""
    out: dict[str, dict[int, str]] = {tp: {} for tp in labels}
    for t in tracks:
        tid = str(t.get("id", ""))
        fragments = t.get("fragments")
        for tp in labels:
            v = t.get(tp)
            if isinstance(fragments, Mapping) and fragments.get(tp):
                v = fragments[tp]  # every fragment of a split lesion belongs to the track
            if isinstance(v, Mapping):  # {"label": n, ...} form
                v = v.get("label")
            if isinstance(v, (list, tuple)):
                for item in v:
                    out[tp][int(item)] = tid
            elif v is not None:
                out[tp][int(v)] = tid
    return out


def _days(timepoints: Sequence[TimepointView]) -> tuple[list[float], str]:
    dates = [tp.date for tp in timepoints]
    if dates and all(d is not None for d in dates):
        d0 = dates[0]
        assert d0 is not None
        return [float((d - d0).days) for d in dates if d is not None], "days since baseline"
    return [float(i) for i in range(len(timepoints))], "timepoint index"


def _peak_key(timepoints: Sequence[TimepointView]) -> tuple[tuple[str, ...], str]:
    has_sul = (any(r.get("sul_peak") is not None for tp in timepoints for r in tp.rows)
               or any(r.pet is not None and r.pet.sul_peak is not None
                      for tp in timepoints for r in tp.sites.values()))
    if has_sul:
        return ("sul_peak",), "SULpeak"
    return ("suv_peak_global", "suv_peak"), "SUVpeak"


_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.2em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:1.6em}h3{font-size:1em;margin:.8em 0 .3em}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
figure{margin:0}figcaption{font-size:.8em;color:#444;text-align:center}
img{max-width:100%;height:auto}
.cat{font-weight:bold}.note{font-size:.8em;color:#555}ul{margin:0;padding-left:1.2em}
.warn{color:#8a4b00}tr.flag td{background:#fff4e0}
#summary{border:2px solid #456;padding:.6em 1em;background:#f7f9fb}
#summary table{background:#fff}table.calls td{min-width:7em}
table.calls .why{display:block;font-size:.8em;color:#444;font-weight:normal}
p.trend{font-size:1em;margin:.5em 0}tr.resolved td{color:#555}
table.lesions{font-size:.78em}
@page{size:A4 portrait;margin:12mm}
@media print{body{margin:0;max-width:none;font-size:9pt}
#summary{break-after:page;border:1px solid #456}
#mips,#sites,#time-course,#response{break-before:page}
h2,h3{break-after:avoid}tr,figure,table.header{break-inside:avoid}
thead{display:table-header-group}.figs{display:block}figure{display:inline-block;margin:.3em}
img{max-width:100%}footer{break-before:avoid}}
"""

#: PERCIST comparability limits between a follow-up and the baseline scan (domain reference
#: section 3.1, Wahl 2009 / O 2016 Table 2): uptake-time difference (min) and liver SULmean
#: difference (fraction and SUL units, both exceeded).
UPTAKE_TIME_LIMIT_MIN = 15.0
LIVER_SUL_LIMIT_FRACTION = 0.20
LIVER_SUL_LIMIT_ABS = 0.30

# categories, worst first, for the overall trend of the last follow-up
_PROGRESSION = {"PD", "PMD"}
_INDETERMINATE = {"IR1", "IR2", "IR3"}
_RESPONSE = {"CR", "CMR", "PR", "PMR"}
_STABLE = {"SD", "SMD", "NMR"}
#: A measured change in a reason sentence: a signed percentage ("-61.0 %", "+35 %").
_SIGNED_PERCENT = re.compile(r"[-+\u2212]\d+(?:\.\d+)?\s?%")


def main_reason(reasons: Sequence[str]) -> str:
    """The reason the summary shows for a call: the last measured change, else the last reason.

    The engines list their reasons from the inputs (thresholds, baseline values) to the
    conclusion. The last sentence with a *signed* percentage is the measured change that
    decided the category (e.g. ``"target SUVmax 11.62 -> 4.83 (-58.5 %)"``; the thresholds
    are unsigned, "at least 30 %"); without one the last sentence is the conclusion (e.g.
    ``"every baseline lesion resolved; no new lesion"``).

    Parameters
    ----------
    reasons : sequence of str
        :attr:`emlesion.response.Assessment.reasons`.

    Returns
    -------
    str
        Empty when there is no reason.

    Examples
    --------
    >>> main_reason(["baseline SUVmax 11.6", "SUVmax 11.6 -> 4.8 (-58.5 %)",
    ...              "reduction of at least 15 %"])
    'SUVmax 11.6 -> 4.8 (-58.5 %)'
    """
    items = [str(r) for r in reasons if str(r).strip()]
    measured = [r for r in items if _SIGNED_PERCENT.search(r)]
    if measured:
        return measured[-1]
    return items[-1] if items else ""


def trend_label(categories: Sequence[str]) -> str:
    """The overall trend word of one follow-up's calls.

    ``"progression"`` when any criterion calls PD/PMD; ``"indeterminate"`` for a LYRIC IR
    call; ``"complete metabolic response"`` when every PET call (CMR/PMR/SMD/PMD/NMR
    vocabulary) is CMR; ``"response"`` when any call is CR/CMR/PR/PMR; ``"stable"`` for
    SD/SMD/NMR only; ``"not evaluable"`` otherwise.

    Parameters
    ----------
    categories : sequence of str
        The category abbreviations of one follow-up (any criteria).

    Returns
    -------
    str
    """
    cats = {str(c) for c in categories}
    if cats & _PROGRESSION:
        return "progression"
    if cats & _INDETERMINATE:
        return "indeterminate"
    pet = cats & {"CMR", "PMR", "SMD", "NMR"}
    if pet == {"CMR"}:
        return "complete metabolic response"
    if cats & _RESPONSE:
        return "response"
    if cats & _STABLE:
        return "stable"
    return "not evaluable"


def _pct(value: float | None, ref: float | None) -> str:
    """Signed % change of ``value`` against ``ref`` (en dash when either is missing or 0)."""
    if value is None or ref is None or not math.isfinite(ref) or ref == 0:
        return "&ndash;"
    change = 100.0 * (value - ref) / ref
    sign = "+" if change > 0.05 else ("&minus;" if change < -0.05 else "")
    return f"{sign}{abs(change):.1f}"


@dataclass(frozen=True)
class _Cell:
    """One track at one timepoint, as the lesion table and the time course show it."""

    track: str
    timepoint: str
    day: float | None
    state: str
    names: str
    suv_max: float | None
    suv_mean: float | None
    suv_peak: float | None
    peak: float | None  # SULpeak (or SUVpeak without SUL): the PERCIST quantity
    mtv_ml: float | None
    tlg: float | None
    pet_ld_sa: tuple[float | None, float | None]
    ct: Any
    deauville: int | None
    unreliable: bool
    segmented: bool


def _f(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _cells(
    timepoints: Sequence[TimepointView],
    tracks: Sequence[Mapping[str, Any]],
    tmap: Mapping[str, Mapping[int, str]],
    days: Sequence[float],
    peak_keys: tuple[str, ...],
) -> list[_Cell]:
    """Every track at every timepoint from its first appearance, then untracked lesions.

    A track is shown at a timepoint when a lesion of it was segmented there or its site was
    read there. Several fragments (a split lesion): hottest fragment's SUV values, summed
    MTV and TLG (as the response engines). Without a segmented lesion, the uptake values are
    the site readout's and MTV/TLG are 0 when the track (or its site) resolved.
    """
    out: list[_Cell] = []
    tids = [str(t.get("id", "")) for t in tracks]
    states = {str(t.get("id", "")): dict(t.get("states") or {}) for t in tracks}
    site_only = sorted({tid for tp in timepoints for tid in tp.sites} - set(tids))
    for tid in [*tids, *site_only]:
        started = False
        for tp, day in zip(timepoints, days):
            labels = sorted(k for k, v in tmap.get(tp.label, {}).items() if v == tid)
            rows = [r for r in tp.rows if r.get("label") is not None
                    and int(r["label"]) in labels]
            site = tp.sites.get(tid)
            if not rows and site is None and not started:
                continue
            if not rows and site is None and states.get(tid, {}).get(tp.label) is None:
                continue
            started = True
            out.append(_cell(tp, tid, day, rows, site, states.get(tid, {}).get(tp.label),
                             peak_keys, segmented=bool(labels)))
    for tp, day in zip(timepoints, days):
        owned = set(tmap.get(tp.label, {}))
        for r in tp.rows:
            if r.get("label") is not None and int(r["label"]) not in owned:
                out.append(_cell(tp, "", day, [r], None, "untracked", peak_keys,
                                 segmented=True))
    return out


def _cell(tp: TimepointView, tid: str, day: float | None, rows: Sequence[Mapping[str, Any]],
          site: SiteReading | None, track_state: str | None,
          peak_keys: tuple[str, ...], *, segmented: bool) -> _Cell:
    def best(*keys: str) -> float | None:
        vals = [v for v in (_f(_get(r, *keys)) for r in rows) if v is not None]
        return max(vals) if vals else None

    def total(key: str) -> float | None:
        vals = [v for v in (_f(r.get(key)) for r in rows) if v is not None]
        return sum(vals) if vals else None

    if site is not None:
        state = site_state_label(site)
    else:
        state = track_state or ("present" if rows else "")
    pet = site.pet if site is not None else None
    peak_key = peak_keys[0]
    if rows:
        suv_max, suv_mean = best("suv_max"), best("suv_mean")
        suv_peak, peak = best("suv_peak_global", "suv_peak"), best(*peak_keys)
        mtv, tlg = total("mtv_ml"), total("tlg")
        first = rows[0]
        ld_sa = (_f(first.get("longest_axial_diameter_mm")), _f(first.get("short_axis_mm")))
    else:
        suv_max = _f(pet.suv_max) if pet is not None else None
        suv_mean = None
        suv_peak = _f(pet.suv_peak) if pet is not None else None
        peak = (_f(pet.sul_peak) if peak_key == "sul_peak" else suv_peak) if pet else None
        resolved = (track_state in ("resolved", "merged")
                    or state in ("resolved", "residual mass", "metabolically resolved",
                                 "merged"))
        mtv = tlg = 0.0 if resolved else None
        ld_sa = (None, None)
    names = ", ".join(dict.fromkeys(str(r.get("name", r.get("label"))) for r in rows))
    return _Cell(
        track=tid, timepoint=tp.label, day=day, state=state, names=names,
        suv_max=suv_max, suv_mean=suv_mean, suv_peak=suv_peak, peak=peak, mtv_ml=mtv, tlg=tlg,
        pet_ld_sa=ld_sa, ct=site.ct if site is not None else None,
        deauville=site.deauville if site is not None else None,
        unreliable=any(r.get("volume_reliable") is False for r in rows),
        segmented=segmented)


def _baseline_and_nadir(cells: Sequence[_Cell], attr: str, first_label: str) -> dict[
        tuple[str, str], tuple[float | None, float | None, bool]]:
    """(track, timepoint) -> (baseline value, nadir, new).

    The baseline value is the track's value at the study baseline (None for a track that
    appeared later); the nadir is the lowest value at the track's earlier timepoints; ``new``
    marks the first row of a track that appeared after the baseline.
    """
    out: dict[tuple[str, str], tuple[float | None, float | None, bool]] = {}
    history: dict[str, list[tuple[str, float | None]]] = {}
    for c in cells:
        if not c.track:
            continue
        seen = history.setdefault(c.track, [])
        earlier = [v for _, v in seen if v is not None]
        base = seen[0][1] if seen and seen[0][0] == first_label else None
        new = not seen and c.timepoint != first_label
        out[(c.track, c.timepoint)] = (base, min(earlier) if earlier else None, new)
        seen.append((c.timepoint, getattr(c, attr)))
    return out


def _ld_sa(ld: float | None, sa: float | None) -> str:
    if ld is None:
        return "&ndash;"
    return f"{_num(ld, 1)} &times; {_num(sa, 1)}"


def _ct_text(ct: Any) -> str:
    if ct is None:
        return "&ndash;"
    if not ct.found:
        return f'<span title="{_e(ct.reason)}">no mass</span>'
    return _ld_sa(_f(ct.ld_mm), _f(ct.sa_mm))


def _lesion_table(cells: Sequence[_Cell], peak_name: str, units: str, tlg_unit: str,
                  first_label: str) -> list[str]:
    peak_ref = _baseline_and_nadir(cells, "peak", first_label)
    mtv_ref = _baseline_and_nadir(cells, "mtv_ml", first_label)
    parts = [
        '<section id="lesion-table"><h2>Lesions at every timepoint</h2>'
        '<p class="note">One row per lesion track and timepoint from its first appearance, '
        "segmented or not (a former lesion is read at its site: state, uptake, CT); % change "
        "against the track&#x27;s value at the baseline and against its nadir (the lowest "
        "earlier value).</p>",
        '<table class="lesions"><thead><tr><th>Track</th><th>Timepoint</th><th>Day</th>'
        f"<th>State</th><th>Lesion</th><th>SUVmax ({_e(units)}, g/mL)</th>"
        "<th>SUVmean (g/mL)</th><th>SUVpeak (g/mL)</th>"
        f"<th>{_e(peak_name)} (g/mL)</th><th>{_e(peak_name)} vs baseline (%)</th>"
        f"<th>{_e(peak_name)} vs nadir (%)</th><th>MTV (mL)</th><th>MTV vs baseline (%)</th>"
        f"<th>MTV vs nadir (%)</th><th>TLG ({_e(tlg_unit)})</th>"
        "<th>PET LD &times; SA (mm)</th><th>CT LD &times; SA (mm)</th>"
        "<th>Deauville (1&ndash;5)</th></tr></thead><tbody>",
    ]
    n_unreliable = 0
    for c in cells:
        n_unreliable += c.unreliable
        dagger = ('<sup class="warn" title="MTV unreliable: boundary at the blood-pool '
                  'floor">&dagger;</sup>' if c.unreliable else "")
        pb, pn, is_new = peak_ref.get((c.track, c.timepoint), (None, None, False))
        mb, mn, _ = mtv_ref.get((c.track, c.timepoint), (None, None, False))
        new = "new" if is_new else "&ndash;"
        cls = ' class="resolved"' if not c.segmented else ""
        parts.append(
            f"<tr{cls}><td>{_e(c.track or '(untracked)')}</td><td>{_e(c.timepoint)}</td>"
            f'<td class="n">{_num(c.day, 0)}</td><td>{_e(c.state)}</td>'
            f"<td>{_e(c.names) if c.names else '&ndash;'}</td>"
            f'<td class="n">{_num(c.suv_max)}</td><td class="n">{_num(c.suv_mean)}</td>'
            f'<td class="n">{_num(c.suv_peak)}</td><td class="n">{_num(c.peak)}</td>'
            f'<td class="n">{new if pb is None else _pct(c.peak, pb)}</td>'
            f'<td class="n">{_pct(c.peak, pn)}</td>'
            f'<td class="n">{_num(c.mtv_ml)}{dagger}</td>'
            f'<td class="n">{new if mb is None else _pct(c.mtv_ml, mb)}</td>'
            f'<td class="n">{_pct(c.mtv_ml, mn)}</td>'
            f'<td class="n">{_num(c.tlg, 1)}{dagger}</td>'
            f'<td class="n">{_ld_sa(*c.pet_ld_sa)}</td><td class="n">{_ct_text(c.ct)}</td>'
            f'<td class="n">{_e(c.deauville) if c.deauville is not None else "&ndash;"}</td>'
            "</tr>")
    parts.append(
        "</tbody></table>"
        '<p class="note">SUVmax/SUVmean: in the segmented lesion (a former lesion: its site '
        "readout); SUVpeak: IBSI global intensity peak, 1 mL sphere; "
        f"{_e(peak_name)}: the same peak on the lean-body (SUL) image, PERCIST&#x27;s "
        "quantity; MTV: voxel count &times; voxel volume, 0 mL where the lesion resolved; "
        "TLG = SUVmean &times; MTV; PET LD &times; SA: longest axial diameter and "
        "perpendicular short axis of the PET mask; CT LD &times; SA: the soft-tissue mass at "
        "the site on CT (RECIST/Lugano); Deauville: five-point score of the site. "
        "&ndash;: not measured.</p>")
    if n_unreliable:
        parts.append('<p class="note warn" id="volume-reliability">&dagger; MTV and TLG '
                     "unreliable: the lesion&#x27;s 41 %/50 % of SUVmax fell below the "
                     "blood-pool mean, so its boundary was set at the blood-pool mean "
                     "(background level) and the contour may include adjacent physiological "
                     "uptake (bowel, vessels). Check the contour; a lesion mask gives a "
                     "reliable volume.</p>")
    parts.append("</section>")
    return parts


def _comparability(tp: TimepointView, base: TimepointView) -> list[str]:
    """The PERCIST comparability flags of a follow-up against the baseline (plain text)."""
    flags: list[str] = []
    a, b = dict(tp.acquisition), dict(base.acquisition)
    ut, ub = _f(a.get("uptake_time_min")), _f(b.get("uptake_time_min"))
    if ut is not None and ub is not None and abs(ut - ub) > UPTAKE_TIME_LIMIT_MIN:
        flags.append(f"uptake time {ut:.0f} min vs {ub:.0f} min at baseline: differs by "
                     f"{abs(ut - ub):.0f} min (limit {UPTAKE_TIME_LIMIT_MIN:.0f} min)")
    st, sb = str(a.get("scanner") or ""), str(b.get("scanner") or "")
    if st and sb and st != sb:
        flags.append(f"scanner changed ({sb} -> {st})")
    rt, rb = str(a.get("reconstruction") or ""), str(b.get("reconstruction") or "")
    if rt and rb and rt != rb:
        flags.append(f"reconstruction changed ({rb} -> {rt})")
    lt = _f(_get(tp.liver or {}, "sul_mean"))
    lb = _f(_get(base.liver or {}, "sul_mean"))
    if lt is not None and lb is not None and lb > 0:
        diff = abs(lt - lb)
        if diff > LIVER_SUL_LIMIT_ABS and diff / lb > LIVER_SUL_LIMIT_FRACTION:
            flags.append(f"liver SULmean {lt:.2f} vs {lb:.2f}: differs by {100 * diff / lb:.0f} "
                         f"% and {diff:.2f} (limits {100 * LIVER_SUL_LIMIT_FRACTION:.0f} % and "
                         f"{LIVER_SUL_LIMIT_ABS:.1f})")
    return flags


def _acquisition_table(timepoints: Sequence[TimepointView],
                       flags: Mapping[str, Sequence[str]]) -> list[str]:
    glucose = any(_f(dict(tp.acquisition).get("glucose_mmol_l")) is not None
                  for tp in timepoints)
    parts = [
        '<section id="acquisition"><h2>Acquisition of each timepoint</h2>'
        '<p class="note">PERCIST comparability with the baseline: uptake time within '
        f"&plusmn;{UPTAKE_TIME_LIMIT_MIN:.0f} min, the same scanner and reconstruction, liver "
        f"SULmean within {100 * LIVER_SUL_LIMIT_FRACTION:.0f} % or "
        f"{LIVER_SUL_LIMIT_ABS:.1f} (Wahl 2009; O 2016). A follow-up outside a limit is "
        "flagged; its PET calls stand but compare less reliably.</p>",
        '<table class="acquisition"><thead><tr><th>Timepoint</th><th>Date</th>'
        "<th>Scanner</th><th>Reconstruction</th><th>Uptake time (min)</th>"
        "<th>Injected activity (MBq)</th><th>Weight (kg)</th>"
        + ("<th>Glucose (mmol/L)</th>" if glucose else "")
        + "<th>Liver SULmean (g/mL)</th><th>PET series</th><th>SUV quantity</th>"
        "<th>Comparability with baseline</th></tr></thead><tbody>",
    ]
    for i, tp in enumerate(timepoints):
        a = dict(tp.acquisition)
        here = list(flags.get(tp.label, ()))
        if i == 0:
            comp = "reference"
        elif here:
            comp = "<ul>" + "".join(f'<li class="warn">{_e(x)}</li>' for x in here) + "</ul>"
        else:
            comp = "within the limits"
        dose = _f(a.get("injected_activity_mbq"))
        row_class = ' class="flag"' if here else ""
        parts.append(
            f"<tr{row_class}><td>{_e(tp.label)}</td>"
            f"<td>{_e(tp.date.isoformat() if tp.date else '')}</td>"
            f"<td>{_e(a.get('scanner') or '')}</td><td>{_e(a.get('reconstruction') or '')}</td>"
            f'<td class="n">{_num(a.get("uptake_time_min"), 0)}</td>'
            f'<td class="n">{_num(dose, 0)}</td>'
            f'<td class="n">{_num(a.get("weight_kg"), 1)}</td>'
            + (f'<td class="n">{_num(a.get("glucose_mmol_l"), 1)}</td>' if glucose else "")
            + f'<td class="n">{_num(_get(tp.liver or {}, "sul_mean", "mean"))}</td>'
            f"<td>{_e(tp.suv.identity.series_description)}</td><td>{_e(tp.suv.units)}</td>"
            f"<td>{comp}</td></tr>")
    parts.append("</tbody></table></section>")
    return parts


def _burden_table(timepoints: Sequence[TimepointView]) -> list[str]:
    """The whole-body burden per timepoint (TMTV, total TLG, count, Dmax, SDmax)."""
    if not any(tp.burden for tp in timepoints):
        return []
    parts = [
        '<section id="burden"><h2>Whole-body burden of each timepoint</h2>'
        '<p class="note">Total metabolic tumour volume (TMTV) and total lesion glycolysis of '
        "every lesion; Dmax is the largest distance between two lesion centroids and SDmax "
        "Dmax normalised by the body surface area (Cottereau 2020, 2021); the threshold rule "
        "is the segmentation that defined the lesions.</p>",
        '<table class="burden"><thead><tr><th>Timepoint</th><th>Lesions</th>'
        "<th>TMTV (mL)</th><th>Total TLG (g)</th><th>Dmax (mm)</th><th>SDmax (1/m)</th>"
        "<th>Threshold rule</th></tr></thead><tbody>",
    ]
    for tp in timepoints:
        b = dict(tp.burden or {})
        parts.append(
            f"<tr><td>{_e(tp.label)}</td><td class=\"n\">{_num(b.get('n_lesions'), 0)}</td>"
            f'<td class="n">{_num(b.get("tmtv_ml"), 1)}</td>'
            f'<td class="n">{_num(b.get("tlg_total"), 1)}</td>'
            f'<td class="n">{_num(b.get("dmax_mm"), 1)}</td>'
            f'<td class="n">{_num(b.get("sdmax_per_m"), 3)}</td>'
            f"<td>{_e(b.get('threshold_rule') or '')}</td></tr>")
    parts.append("</tbody></table></section>")
    return parts


def _summary(
    hdr: Mapping[str, str],
    title: str,
    timepoints: Sequence[TimepointView],
    days: Sequence[float],
    x_label: str,
    treatment_date: _dt.date | None,
    calls: Sequence[Mapping[str, Any]],
    cells: Sequence[_Cell],
    peak_name: str,
    flags: Mapping[str, Sequence[str]],
) -> list[str]:
    parts = [f'<section id="summary"><h1>{_e(title)}</h1>',
             '<table class="header"><tbody><tr>']
    for key, text in _HEADER_LABELS:
        if key in hdr or key in IDENTIFYING_KEYS:
            value = hdr.get(key, "")
            if key == "patient_birth_date" and value != DEIDENTIFIED:
                value = format_dicom_date(value)
            parts.append(f"<th>{_e(text)}</th><td>{_e(value)}</td>")
    parts.append("</tr></tbody></table>")
    # timeline
    dated = x_label == "days since baseline"
    parts.append('<table class="timepoints"><thead><tr><th>Timepoint</th><th>Date</th>'
                 "<th>Days since baseline</th>"
                 + ("<th>Days since treatment</th>" if treatment_date else "")
                 + "<th>Lesions segmented</th></tr></thead><tbody>")
    for tp, day in zip(timepoints, days):
        since = ((tp.date - treatment_date).days
                 if treatment_date is not None and tp.date is not None else None)
        parts.append(
            f"<tr><td>{_e(tp.label)}</td><td>{_e(tp.date.isoformat() if tp.date else '')}</td>"
            f'<td class="n">{_num(day, 0) if dated else "&ndash;"}</td>'
            + (f'<td class="n">{_num(since, 0)}</td>' if treatment_date else "")
            + f'<td class="n">{len(tp.lesions.labels)}</td></tr>')
    parts.append("</tbody></table>")
    if treatment_date is not None:
        parts.append(f'<p class="note">Treatment date {_e(treatment_date.isoformat())}.</p>')
    # one line per follow-up: each criterion's category and its main reason
    criteria: list[str] = list(dict.fromkeys(c["criterion"] for c in calls))
    follow_ups: list[str] = list(dict.fromkeys(c["timepoint"] for c in calls))
    by = {(c["timepoint"], c["criterion"]): c for c in calls}
    day_of = {tp.label: day for tp, day in zip(timepoints, days)}
    parts.append('<table class="calls"><thead><tr><th>Follow-up</th>'
                 + "".join(f"<th>{_e(c)}</th>" for c in criteria) + "</tr></thead><tbody>")
    for fu in follow_ups:
        fu_day = day_of.get(fu)
        when = f" (day {_num(fu_day, 0)})" if dated and fu_day is not None else ""
        cells_html = []
        for crit in criteria:
            c = by.get((fu, crit))
            if c is None:
                cells_html.append("<td>&ndash;</td>")
                continue
            desc = f' title="{_e(c["description"])}"' if c["description"] else ""
            cells_html.append(f'<td><span class="cat"{desc}>{_e(c["category"])}</span>'
                              f'<span class="why">{_e(main_reason(c["reasons"]))}</span></td>')
        parts.append(f"<tr><th>{_e(fu)}{_e(when)}</th>{''.join(cells_html)}</tr>")
    if not follow_ups:
        parts.append(f'<tr><td colspan="{len(criteria) + 1}">No follow-up assessed.</td></tr>')
    parts.append("</tbody></table>")
    # overall trend: numbers over the whole study, then the last follow-up's calls
    peaks, mtvs = [], []
    for tp in timepoints:
        here = [c for c in cells if c.timepoint == tp.label]
        vals = [c.peak for c in here if c.peak is not None]
        peaks.append(max(vals) if vals else None)
        vol = [c.mtv_ml for c in here if c.mtv_ml is not None]
        mtvs.append(sum(vol) if vol else None)
    seq = " &rarr; ".join
    bits = [f"hottest {_e(peak_name)} {seq(_num(p) for p in peaks)} g/mL",
            f"total MTV {seq(_num(m, 1) for m in mtvs)} mL",
            f"lesions segmented {seq(str(len(tp.lesions.labels)) for tp in timepoints)}"]
    if follow_ups:
        last = follow_ups[-1]
        word = trend_label([c["category"] for c in calls if c["timepoint"] == last])
        by_crit = "; ".join(
            f"{_e(crit)} " + seq(_e(by[(fu, crit)]["category"]) for fu in follow_ups
                                 if (fu, crit) in by) for crit in criteria)
        parts.append(f'<p class="trend"><strong>Overall trend: {_e(word)}</strong> at {_e(last)} '
                     f"&mdash; {'; '.join(bits)}. Calls over time: {by_crit}.</p>")
    else:
        parts.append(f'<p class="trend"><strong>Overall trend:</strong> {"; ".join(bits)}.</p>')
    flagged = [(label, f) for label, fs in flags.items() for f in fs]
    if flagged:
        parts.append('<p class="note warn">Comparability with the baseline: '
                     + "; ".join(f"{_e(label)}: {_e(f)}" for label, f in flagged)
                     + ' (see &ldquo;Acquisition&rdquo;).</p>')
    parts.append("</section>")
    return parts


# --------------------------------------------------------------------------- render


def render_html(
    header: Mapping[str, Any],
    timepoints: Sequence[TimepointView],
    tracks: Sequence[Mapping[str, Any]] = (),
    assessments: Sequence[Any] = (),
    *,
    deidentify: bool = False,
    title: str | None = None,
    suv_window: tuple[float, float] = DEFAULT_SUV_WINDOW,
    generated: _dt.datetime | None = None,
    treatment_date: _dt.date | None = None,
) -> str:
    """Render the report page.

    Parameters
    ----------
    header : Mapping
        Study header fields (see :func:`header_from_identity`); values are DICOM strings.
    timepoints : sequence of TimepointView
        Baseline first, then follow-ups in order.
    tracks : sequence of Mapping
        ``{"id": "T1", "<timepoint label>": lesion label or None, ...}`` (report.json form;
        an optional ``"fragments": {"<timepoint label>": [labels]}`` maps split lesions and
        ``"states": {"<timepoint label>": state}`` gives the track state).
    assessments : sequence
        :class:`~emlesion.response.Assessment` objects or their dict forms
        (:func:`normalise_assessments`).
    deidentify : bool
        Replace PatientName, PatientID and PatientBirthDate with ``"de-identified"``.
    title : str, optional
        Page title (default "PET/CT response report").
    suv_window : (float, float)
        SUV display range (g/mL) shared by every MIP and fusion image.
    generated : datetime, optional
        Time stamp shown in the footer (default now).
    treatment_date : datetime.date, optional
        Start of treatment (e.g. the CAR-T infusion): adds the days since treatment.

    Returns
    -------
    str
        The HTML document: the summary first (patient, dates, one line per follow-up with
        each criterion's category and main reason, the overall trend), then the lesion
        table, the acquisition table, the MIPs, the lesion sites with their images, the
        time course and the response details.
    """
    from emlesion._version import __version__

    hdr = {k: ("" if v is None else str(v)) for k, v in header.items()}
    if deidentify:
        for k in IDENTIFYING_KEYS:
            hdr[k] = DEIDENTIFIED
    page_title = title or "PET/CT response report"
    labels = [tp.label for tp in timepoints]
    tmap = _track_maps(tracks, labels)
    track_ids = [str(t.get("id", "")) for t in tracks]
    track_colour = {tid: contour_colour(i) for i, tid in enumerate(track_ids)}
    days, x_label = _days(timepoints)
    peak_keys, peak_name = _peak_key(timepoints)
    cells = _cells(timepoints, tracks, tmap, days, peak_keys)
    calls = normalise_assessments(assessments)
    flags = {tp.label: _comparability(tp, timepoints[0]) for tp in timepoints[1:]}
    units = timepoints[0].suv.units if timepoints else "SUV"
    tlg_unit = "cm\u00b2" if units.lower() == "suvbsa" else "g"

    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(page_title)}</title><style>{_CSS}</style></head><body>",
    ]
    parts += _summary(hdr, page_title, timepoints, days, x_label, treatment_date, calls, cells,
                      peak_name, flags)
    parts += _lesion_table(cells, peak_name, units, tlg_unit, labels[0] if labels else "")
    parts += _acquisition_table(timepoints, flags)
    parts += _burden_table(timepoints)

    # ---- coronal MIPs, one shared SUV scale
    parts.append('<section id="mips"><h2>Coronal PET maximum-intensity projections</h2>'
                 '<p class="note">Radiological convention (patient right on the image left), '
                 f"inverted grey scale, one SUV scale for every timepoint ({_e(units)} "
                 f"{suv_window[0]:g}&ndash;{suv_window[1]:g} g/mL, colour bar); lesion "
                 "contours are the projections of the lesion masks, labelled with their "
                 "track.</p><div class=\"figs\">")
    for tp in timepoints:
        names: dict[int, str] = {}
        colours: dict[int, str] = {}
        for i, lab in enumerate(tp.lesions.labels):
            tid = tmap[tp.label].get(lab)
            names[lab] = tid or tp.lesions.name(lab)
            colours[lab] = track_colour.get(tid or "", contour_colour(len(track_ids) + i))
        cap = tp.label + (f" ({tp.date.isoformat()})" if tp.date else "")
        png = coronal_mip_png(tp.suv.array, tp.suv.grid, tp.lesions.array, names,
                              suv_window=suv_window, colours=colours, height_in=3.8,
                              colorbar_label=f"{tp.suv.units} (g/mL)")
        parts.append(f'<figure><img src="{png_data_uri(png)}" alt="{_e("coronal MIP " + cap)}">'
                     f"<figcaption>{_e(cap)}</figcaption></figure>")
    parts.append("</div></section>")

    # ---- lesion sites: readout table and one fusion per track per timepoint
    parts.extend(_site_section(timepoints, track_ids, tmap, suv_window))

    # ---- time course over the whole study
    series: dict[str, list[tuple[float, float | None, float | None]]] = {}
    day_of = dict(zip(labels, days))
    for c in cells:
        if c.track:
            series.setdefault(c.track, []).append((day_of[c.timepoint], c.peak, c.mtv_ml))
    parts.append(f'<section id="time-course"><h2>{_e(peak_name)} and MTV per lesion track</h2>'
                 f'<p class="note">{_e(peak_name)}: of the segmented lesion, or of the site '
                 "readout where none was segmented; MTV 0 mL where the lesion resolved. The "
                 "x axis spans the whole study.</p>")
    if series:
        png = timecourse_png(series, peak_label=f"{peak_name} (g/mL)", x_label=x_label,
                             colours=track_colour, x_range=(min(days), max(days)))
        parts.append(f'<figure><img src="{png_data_uri(png)}" '
                     f'alt="{_e(peak_name + " and MTV time course")}"></figure>')
    else:
        parts.append('<p class="note">No lesion track.</p>')
    parts.append("</section>")

    # ---- response details
    parts.append('<section id="response"><h2>Response assessment: every reason</h2>'
                 '<table class="response"><thead><tr><th>Timepoint</th><th>Reference</th>'
                 "<th>Criterion</th><th>Category</th><th>Reasons</th></tr></thead><tbody>")
    for r in calls:
        reasons = "".join(f"<li>{_e(x)}</li>" for x in r["reasons"])
        warns = "".join(f'<li class="warn">{_e(x)}</li>' for x in r["warnings"])
        desc = f" <span class=\"note\">({_e(r['description'])})</span>" if r["description"] else ""
        rule = f'<div class="note">rule {_e(r["rule"])}</div>' if r["rule"] else ""
        parts.append(
            f"<tr><td>{_e(r['timepoint'])}</td><td>{_e(r['reference'])}</td>"
            f"<td>{_e(r['criterion'])}</td><td><span class=\"cat\">{_e(r['category'])}</span>"
            f"{desc}</td><td><ul>{reasons}{warns}</ul>{rule}</td></tr>"
        )
    if not calls:
        parts.append('<tr><td colspan="5">No follow-up assessed.</td></tr>')
    parts.append("</tbody></table></section>")

    stamp = (generated or _dt.datetime.now()).strftime("%Y-%m-%d %H:%M")
    parts.append(f'<footer class="note"><p>Generated by emlesion {_e(__version__)} on '
                 f"{_e(stamp)}. Not for diagnostic use without review.</p></footer>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _site_order(timepoints: Sequence[TimepointView], track_ids: Sequence[str]) -> list[str]:
    """Track ids with site readouts: the tracks' order first, then any other, sorted."""
    seen = {tid for tp in timepoints for tid in tp.sites}
    return [t for t in track_ids if t in seen] + sorted(seen - set(track_ids))


def _site_row(tp: TimepointView, tid: str, r: SiteReading) -> str:
    label = site_state_label(r)
    state = _e(label)
    if label != r.state.value:
        state += f' <span class="note">({_e(r.state.value)})</span>'
    if not r.reliable:
        state += (' <span class="warn" title="mapped through a registration whose quality '
                  'check failed">(unreliable)</span>')
    pet, ct = r.pet, r.ct
    if ct is None:
        ld_sa = vol = hu = "&ndash;"
    elif ct.found:
        ld_sa = f"{_num(ct.ld_mm, 1)} &times; {_num(ct.sa_mm, 1)}"
        vol, hu = _num(ct.volume_ml, 1), _num(ct.hu_mean, 0)
    else:
        ld_sa, vol, hu = f'<span title="{_e(ct.reason)}">no mass</span>', "&ndash;", "&ndash;"
    reason = _e(r.reasons[0]) if r.reasons else ""
    return (
        f"<tr><td>{_e(tid)}</td><td>{_e(tp.label)}</td><td>{state}</td>"
        f'<td class="n">{_num(pet.suv_max if pet else None, 2)}</td>'
        f'<td class="n">{_num(pet.suv_peak if pet else None, 2)}</td>'
        f'<td class="n">{_num(pet.sul_peak if pet else None, 2)}</td>'
        f'<td class="n">{_e(r.deauville) if r.deauville is not None else "&ndash;"}</td>'
        f'<td class="n">{ld_sa}</td><td class="n">{vol}</td><td class="n">{hu}</td>'
        f"<td>{reason}</td></tr>"
    )


def _site_figure(
    tp: TimepointView, tid: str, r: SiteReading, labels: Sequence[int],
    suv_window: tuple[float, float],
) -> str:
    """``<figure>`` of a site's axial PET/CT fusion, or a note when it cannot be located."""
    label = site_state_label(r)
    grid = tp.suv.grid
    peak = (np.asarray(grid.index_to_lps(np.asarray(r.pet.peak_centre_index, dtype=float)))
            if r.pet is not None else None)
    ct = r.ct
    ends = ct.ld_endpoints_mm if ct is not None and ct.found else None
    if ct is not None and ct.found and ct.ld_slice_z_mm is not None:
        z_mm = float(ct.ld_slice_z_mm)
        centre = (np.mean(np.asarray(ends, dtype=float), axis=0) if ends is not None
                  else (peak if peak is not None else None))
    elif peak is not None:
        z_mm, centre = float(peak[2]), peak
    else:
        return (f'<p class="note">{_e(tid)} / {_e(tp.label)}: {_e(label)} &ndash; no PET or CT '
                "readout to locate the site.</p>")
    if centre is None:
        centre = np.asarray(grid.index_to_lps(np.asarray(grid.shape, float) / 2.0))
    ct_vol = tp.ct if _same_frame(tp) else None
    mask = np.isin(np.asarray(tp.lesions.array), list(labels)) if labels else None
    title = f"{tid} \u00b7 {tp.label} \u00b7 {label}"
    png = site_fusion_png(
        tp.suv.array, grid, z_mm=z_mm, centre_xy_mm=(float(centre[0]), float(centre[1])),
        ct=ct_vol.array if ct_vol is not None else None,
        ct_grid=ct_vol.grid if ct_vol is not None else None, mask=mask,
        ld_endpoints_mm=ends, ld_mm=ct.ld_mm if ends is not None and ct is not None else None,
        peak_centre_mm=peak, title=title, suv_label=f"{tp.suv.units} (g/mL)",
        suv_window=suv_window)
    bits = []
    if r.pet is not None:
        bits.append(f"SUVmax {_num(r.pet.suv_max, 2)}")
    if ct is not None:
        bits.append(f"CT LD {_num(ct.ld_mm, 1)} mm" if ct.found else "no CT mass")
    cap = f"{tid} / {tp.label}: {label}" + (f" ({', '.join(bits)})" if bits else "")
    return (f'<figure class="site"><img src="{png_data_uri(png)}" '
            f'alt="{_e("site fusion " + cap)}"><figcaption>{_e(cap)}</figcaption></figure>')


def _lesion_figure(
    tp: TimepointView, caption_id: str, labels: Sequence[int],
    suv_window: tuple[float, float],
) -> str:
    """``<figure>`` of an axial PET/CT fusion through the SUVmax voxel of lesion ``labels``.

    Used where a segmented lesion has no site readout (a study built without them, or a
    lesion no track owns); the same display as the site images.
    """
    grid = tp.suv.grid
    mask = np.isin(np.asarray(tp.lesions.array), list(labels))
    if not mask.any():
        return ""
    vals = np.where(mask, np.asarray(tp.suv.array, dtype=np.float32), -np.inf)
    zyx = np.unravel_index(int(np.argmax(vals)), vals.shape)
    at = np.asarray(grid.index_to_lps(np.asarray(zyx, dtype=float)))
    names = ", ".join(tp.lesions.name(lab) for lab in labels)
    ct_vol = tp.ct if _same_frame(tp) else None
    title = f"{caption_id} \u00b7 {tp.label} \u00b7 {names}"
    png = site_fusion_png(
        tp.suv.array, grid, z_mm=float(at[2]), centre_xy_mm=(float(at[0]), float(at[1])),
        ct=ct_vol.array if ct_vol is not None else None,
        ct_grid=ct_vol.grid if ct_vol is not None else None, mask=mask, title=title,
        suv_label=f"{tp.suv.units} (g/mL)", suv_window=suv_window)
    suv_max = float(vals.max())
    cap = f"{caption_id} / {tp.label}: {names} (SUVmax {suv_max:.2f})"
    return (f'<figure class="lesion"><img src="{png_data_uri(png)}" '
            f'alt="{_e("lesion fusion " + cap)}"><figcaption>{_e(cap)}</figcaption></figure>')


def _site_images(
    timepoints: Sequence[TimepointView], track_ids: Sequence[str],
    tmap: Mapping[str, Mapping[int, str]], suv_window: tuple[float, float],
) -> list[str]:
    """One axial PET/CT fusion per track per timepoint (former sites included), one row per
    track, then the lesions no track owns."""
    parts = [
        '<div id="site-images"><h3>Axial PET/CT fusion of every site at every timepoint</h3>'
        '<p class="note">One row per lesion track, one image per timepoint. Axial slice '
        "through the CT longest diameter when the CT shows a mass (green line), otherwise "
        "through the SUVpeak centre (dashed circle: the 1 mL peak sphere, when in the slice) "
        "or, for a lesion without a site readout, through its SUVmax voxel; native CT in a "
        "soft-tissue window (W400/L40 HU) under the SUV in a hot colour map at 50 % opacity "
        "(one SUV scale for every image, colour bar); segmented lesion contour in cyan.</p>"]
    order = list(track_ids) + sorted({t for tp in timepoints for t in tp.sites}
                                     - set(track_ids))
    n = 0
    for tid in order:
        figs = []
        for tp in timepoints:
            labels = sorted(k for k, v in tmap.get(tp.label, {}).items() if v == tid)
            reading = tp.sites.get(tid)
            if reading is not None:
                figs.append(_site_figure(tp, tid, reading, labels, suv_window))
            elif labels:
                figs.append(_lesion_figure(tp, tid, labels, suv_window))
        figs = [f for f in figs if f]
        if figs:
            n += len(figs)
            parts.append(f'<h4>{_e(tid)}</h4><div class="figs">{"".join(figs)}</div>')
    for tp in timepoints:
        owned = set(tmap.get(tp.label, {}))
        free = [lab for lab in tp.lesions.labels if lab not in owned]
        figs = [_lesion_figure(tp, tp.lesions.name(lab), [lab], suv_window) for lab in free]
        figs = [f for f in figs if f]
        if figs:
            n += len(figs)
            parts.append(f"<h4>{_e(tp.label)}: lesions without a track</h4>"
                         f'<div class="figs">{"".join(figs)}</div>')
    if not n:
        parts.append('<p class="note">No lesion and no site to show.</p>')
    parts.append("</div>")
    return parts


def _site_section(
    timepoints: Sequence[TimepointView], track_ids: Sequence[str],
    tmap: Mapping[str, Mapping[int, str]], suv_window: tuple[float, float],
) -> list[str]:
    """The ``<section id="sites">``: the site readout table and the image of every site."""
    parts = ['<section id="sites"><h2>Lesion sites at every timepoint</h2>']
    order = _site_order(timepoints, track_ids)
    if not order:
        parts.append('<p class="note">No site readouts (the study was built without '
                     "them).</p>")
        parts.extend(_site_images(timepoints, track_ids, tmap, suv_window))
        parts.append("</section>")
        return parts
    units = timepoints[0].suv.units if timepoints else "SUV"
    parts.append(
        '<p class="note">Every tracked lesion read at its site at every timepoint from its '
        "first appearance, segmented or not: the segmented lesion&#x27;s own mask, or the "
        "former lesion&#x27;s footprint mapped through the CT registration. SUVmax/SUVpeak: "
        f"{_e(units)} of the site (SUVpeak: IBSI global peak, 1 mL sphere); SULpeak: lean body "
        "mass SUV; Deauville against the mediastinal blood pool and the liver; CT: the "
        "soft-tissue mass delineated at the site (longest axial diameter &times; "
        "perpendicular short axis, volume, mean attenuation). State <em>residual mass</em>: "
        "metabolically resolved with a mass on the CT; <em>resolved</em>: metabolically "
        "resolved without one.</p>")
    parts.append(
        '<table class="sites"><thead><tr><th>Track</th><th>Timepoint</th><th>State</th>'
        "<th>SUVmax (g/mL)</th><th>SUVpeak (g/mL)</th><th>SULpeak (g/mL)</th>"
        "<th>Deauville (score 1&ndash;5)</th><th>CT LD &times; SA (mm)</th>"
        "<th>CT volume (mL)</th><th>CT mean (HU)</th><th>Reason</th></tr></thead><tbody>")
    for tid in order:
        for tp in timepoints:
            r = tp.sites.get(tid)
            if r is not None:
                parts.append(_site_row(tp, tid, r))
    parts.append("</tbody></table>")
    parts.extend(_site_images(timepoints, track_ids, tmap, suv_window))
    parts.append("</section>")
    return parts


def _same_frame(tp: TimepointView) -> bool:
    """True when the CT of ``tp`` may be shown under its PET (same frame of reference)."""
    if tp.ct is None:
        return False
    a = tp.ct.identity.frame_of_reference_uid
    b = tp.suv.identity.frame_of_reference_uid
    return not (a and b and a != b)


def write_html_report(
    study: Study,
    assessments: Sequence[Any] | None,
    path: str | os.PathLike[str],
    *,
    deidentify: bool = False,
    title: str | None = None,
    treatment_date: _dt.date | str | None = None,
    glucose_mmol_l: Mapping[str, float] | None = None,
) -> Path:
    """Write the HTML report of a study (the ``emlesion response --out`` entry point).

    Parameters
    ----------
    study : emlesion.study.Study
        The loaded, measured and tracked study.
    assessments : sequence, optional
        Response assessments (:class:`~emlesion.response.Assessment` or dict forms);
        default ``study.assess()``.
    path : path-like
        Output file (written atomically).
    deidentify : bool
        Remove PatientName, PatientID and PatientBirthDate from the page.
    title : str, optional
        Page title.
    treatment_date : datetime.date or ISO string, optional
        Start of treatment (e.g. the CAR-T infusion): the summary then gives the days since
        treatment of every scan.
    glucose_mmol_l : mapping, optional
        Blood glucose (mmol/L) per timepoint label, shown in the acquisition table (DICOM
        has no standard PET attribute for it, so it is not read from the headers).

    Returns
    -------
    Path
        The written file.
    """
    from emlesion.report._study import study_views

    header, views, tracks, default_assessments = study_views(study, glucose_mmol_l=glucose_mmol_l)
    if assessments is None:
        assessments = default_assessments()
    text = render_html(header, views, tracks, assessments, deidentify=deidentify, title=title,
                       treatment_date=parse_treatment_date(treatment_date))
    return _atomic.write_text_atomic(path, text)
