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

Sections: study header (optionally de-identified: PatientName, PatientID and
PatientBirthDate are replaced by ``"de-identified"``), coronal PET MIPs per timepoint with
lesion contours and labels, axial PET/CT fusion slices through each lesion's SUVmax voxel,
the per-lesion table, the lesion sites (every track at every timepoint from its first
appearance, segmented or not: state, PET uptake, Deauville score, CT mass, with an axial
PET/CT fusion of each site at every follow-up), the SULpeak/MTV time course per track and
the response table with the reasons behind every category. Display conventions:
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emlesion import _atomic
from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import SeriesIdentity, Volume
from emlesion.report.figures import (
    DEFAULT_SUV_WINDOW,
    contour_colour,
    coronal_mip_png,
    fusion_png,
    png_data_uri,
    site_fusion_png,
    timecourse_png,
)

if TYPE_CHECKING:
    from emlesion.response.sites import SiteReading
    from emlesion.study import Study

__all__ = [
    "DEIDENTIFIED",
    "TimepointView",
    "header_from_identity",
    "normalise_assessments",
    "render_html",
    "site_state_label",
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
    """

    label: str
    suv: Volume
    lesions: LabelMap
    date: _dt.date | None = None
    ct: Volume | None = None
    rows: tuple[Mapping[str, Any], ...] = ()
    liver: Mapping[str, Any] | None = field(default=None)
    sites: Mapping[str, SiteReading] = field(default_factory=dict)


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
    has_sul = any(r.get("sul_peak") is not None for tp in timepoints for r in tp.rows)
    if has_sul:
        return ("sul_peak",), "SULpeak"
    return ("suv_peak_global", "suv_peak"), "SUVpeak"


_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:1.6em}h3{font-size:1em;margin:.8em 0 .3em}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
.figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
figure{margin:0}figcaption{font-size:.8em;color:#444;text-align:center}
.cat{font-weight:bold}.note{font-size:.8em;color:#555}ul{margin:0;padding-left:1.2em}
.warn{color:#8a4b00}table.sites td.n{white-space:nowrap}
"""


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
        an optional ``"fragments": {"<timepoint label>": [labels]}`` maps split lesions).
    assessments : sequence
        :class:`~emlesion.response.Assessment` objects or their dict forms
        (:func:`normalise_assessments`).
    deidentify : bool
        Replace PatientName, PatientID and PatientBirthDate with ``"de-identified"``.
    title : str, optional
        Page title (default "PET/CT response report").
    suv_window : (float, float)
        SUV display range of the MIPs and the fusion overlays.
    generated : datetime, optional
        Time stamp shown in the footer (default now).

    Returns
    -------
    str
        The HTML document.
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

    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(page_title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(page_title)}</h1>",
    ]

    # ---- header
    parts.append('<section id="header"><table class="header"><tbody>')
    for key, text in _HEADER_LABELS:
        if key in hdr or key in IDENTIFYING_KEYS:
            parts.append(f"<tr><th>{_e(text)}</th><td>{_e(hdr.get(key, ''))}</td></tr>")
    parts.append("</tbody></table>")
    parts.append('<table class="timepoints"><thead><tr><th>Timepoint</th><th>Date</th>'
                 "<th>Day</th><th>PET series</th><th>SUV units</th><th>Lesions</th>"
                 "<th>Liver SULmean</th></tr></thead><tbody>")
    for tp, day in zip(timepoints, days):
        liver = tp.liver or {}
        parts.append(
            f"<tr><td>{_e(tp.label)}</td><td>{_e(tp.date.isoformat() if tp.date else '')}</td>"
            f'<td class="n">{_num(day, 0)}</td>'
            f"<td>{_e(tp.suv.identity.series_description)}</td><td>{_e(tp.suv.units)}</td>"
            f'<td class="n">{len(tp.lesions.labels)}</td>'
            f'<td class="n">{_num(_get(liver, "sul_mean", "mean"))}</td></tr>'
        )
    parts.append("</tbody></table></section>")

    # ---- coronal MIPs
    parts.append('<section id="mips"><h2>Coronal PET maximum-intensity projections</h2>'
                 '<p class="note">Radiological convention (patient right on the image left), '
                 f"inverted grey scale, SUV {suv_window[0]:g}&ndash;{suv_window[1]:g}; "
                 "lesion contours are the projections of the lesion masks.</p>"
                 '<div class="figs">')
    for tp in timepoints:
        names: dict[int, str] = {}
        colours: dict[int, str] = {}
        for i, lab in enumerate(tp.lesions.labels):
            tid = tmap[tp.label].get(lab)
            names[lab] = tid or tp.lesions.name(lab)
            colours[lab] = track_colour.get(tid or "", contour_colour(len(track_ids) + i))
        png = coronal_mip_png(tp.suv.array, tp.suv.grid, tp.lesions.array, names,
                              suv_window=suv_window, colours=colours)
        cap = tp.label + (f" ({tp.date.isoformat()})" if tp.date else "")
        parts.append(f'<figure><img src="{png_data_uri(png)}" alt="{_e("coronal MIP " + cap)}">'
                     f"<figcaption>{_e(cap)}</figcaption></figure>")
    parts.append("</div></section>")

    # ---- fusion slices
    parts.append('<section id="lesions"><h2>Axial PET/CT fusion through each lesion</h2>'
                 '<p class="note">Axial slice through the lesion SUVmax voxel; CT resampled onto '
                 "the PET grid (linear), soft-tissue window W400/L40 HU; SUV in a hot colour map "
                 "at 50 % opacity; lesion contour in cyan.</p>")
    for tp in timepoints:
        ct_arr = _ct_on_pet(tp)
        parts.append(f"<h3>{_e(tp.label)}</h3><div class=\"figs\">")
        if not tp.lesions.labels and tp.sites:
            parts.append('<p class="note">No lesion segmented; the sites of the tracked lesions '
                         "are read and shown under &ldquo;Lesion sites&rdquo; below.</p>")
        elif not tp.lesions.labels:
            parts.append('<p class="note">No lesion.</p>')
        for lab in tp.lesions.labels:
            mask = tp.lesions.mask(lab)
            tid = tmap[tp.label].get(lab)
            cap = f"{tid + ' / ' if tid else ''}{tp.lesions.name(lab)}"
            png = fusion_png(tp.suv.array, tp.suv.grid, mask, ct=ct_arr, suv_window=suv_window)
            parts.append(f'<figure><img src="{png_data_uri(png)}" '
                         f'alt="{_e("fusion " + tp.label + " " + cap)}">'
                         f"<figcaption>{_e(cap)}</figcaption></figure>")
        if ct_arr is None and tp.lesions.labels:
            parts.append('<p class="note">No CT of the same frame of reference: PET only.</p>')
        parts.append("</div>")
    parts.append("</section>")

    # ---- lesion table
    peak_keys, peak_name = _peak_key(timepoints)
    parts.append('<section id="lesion-table"><h2>Lesion measurements</h2>'
                 '<table class="lesions"><thead><tr><th>Timepoint</th><th>Track</th>'
                 "<th>Lesion</th><th>Region</th><th>SUVmax</th><th>SUVpeak</th><th>SUVmean</th>"
                 "<th>SULpeak</th><th>MTV (mL)</th><th>TLG</th><th>LD (mm)</th><th>SA (mm)</th>"
                 "</tr></thead><tbody>")
    n_unreliable = 0
    for tp in timepoints:
        for row in tp.rows:
            row_label = row.get("label")
            tid = tmap[tp.label].get(int(row_label)) if row_label is not None else None
            region = " ".join(str(v) for v in (row.get("side"), row.get("region")) if v)
            unreliable = row.get("volume_reliable") is False
            n_unreliable += unreliable
            dagger = ('<sup class="warn" title="MTV unreliable: boundary at the blood-pool '
                      'floor">&dagger;</sup>' if unreliable else "")
            parts.append(
                f"<tr><td>{_e(tp.label)}</td><td>{_e(tid or '')}</td>"
                f"<td>{_e(row.get('name', row_label))}</td><td>{_e(region)}</td>"
                f'<td class="n">{_num(row.get("suv_max"))}</td>'
                f'<td class="n">{_num(_get(row, "suv_peak_global", "suv_peak"))}</td>'
                f'<td class="n">{_num(row.get("suv_mean"))}</td>'
                f'<td class="n">{_num(row.get("sul_peak"))}</td>'
                f'<td class="n">{_num(row.get("mtv_ml"))}{dagger}</td>'
                f'<td class="n">{_num(row.get("tlg"), 1)}{dagger}</td>'
                f'<td class="n">{_num(row.get("longest_axial_diameter_mm"), 1)}</td>'
                f'<td class="n">{_num(row.get("short_axis_mm"), 1)}</td></tr>'
            )
    parts.append("</tbody></table>"
                 '<p class="note">SUVpeak: IBSI global intensity peak, 1 mL sphere; MTV: voxel '
                 "count &times; voxel volume; TLG = SUVmean &times; MTV; LD/SA: longest axial "
                 "diameter and short axis on the PET grid.</p>")
    if n_unreliable:
        parts.append('<p class="note warn" id="volume-reliability">&dagger; MTV and TLG '
                     "unreliable: the lesion&#x27;s 41 %/50 % of SUVmax fell below the "
                     "blood-pool mean, so its boundary was set at the blood-pool mean "
                     "(background level) and the contour may include adjacent physiological "
                     "uptake (bowel, vessels). Check the contour; a lesion mask gives a "
                     "reliable volume.</p>")
    parts.append("</section>")

    # ---- lesion sites
    parts.extend(_site_section(timepoints, track_ids, tmap, suv_window))

    # ---- time course
    series: dict[str, list[tuple[float, float | None, float | None]]] = {}
    for t in tracks:
        tid = str(t.get("id", ""))
        pts: list[tuple[float, float | None, float | None]] = []
        for tp, day in zip(timepoints, days):
            frag = {k for k, v in tmap[tp.label].items() if v == tid}
            found = [r for r in tp.rows if r.get("label") is not None and int(r["label"]) in frag]
            peaks = [float(p) for p in (_get(r, *peak_keys) for r in found) if p is not None]
            mtvs = [float(r["mtv_ml"]) for r in found if r.get("mtv_ml") is not None]
            # a split lesion: hottest fragment's peak, summed volume (as the response engines);
            # a track resolved (or merged into another) has no metabolic volume left: 0 mL
            state = (t.get("states") or {}).get(tp.label)
            mtv = sum(mtvs) if mtvs else (0.0 if state in ("resolved", "merged") else None)
            pts.append((day, max(peaks) if peaks else None, mtv))
        series[tid] = pts
    parts.append(f'<section id="time-course"><h2>{_e(peak_name)} and MTV per lesion track</h2>')
    if series:
        png = timecourse_png(series, peak_label=peak_name, x_label=x_label, colours=track_colour)
        parts.append(f'<figure><img src="{png_data_uri(png)}" '
                     f'alt="{_e(peak_name + " and MTV time course")}"></figure>')
    else:
        parts.append('<p class="note">No lesion track.</p>')
    parts.append("</section>")

    # ---- response
    rows = normalise_assessments(assessments)
    parts.append('<section id="response"><h2>Response assessment</h2>'
                 '<table class="response"><thead><tr><th>Timepoint</th><th>Reference</th>'
                 "<th>Criterion</th><th>Category</th><th>Reasons</th></tr></thead><tbody>")
    for r in rows:
        reasons = "".join(f"<li>{_e(x)}</li>" for x in r["reasons"])
        warns = "".join(f'<li class="warn">{_e(x)}</li>' for x in r["warnings"])
        desc = f" <span class=\"note\">({_e(r['description'])})</span>" if r["description"] else ""
        rule = f'<div class="note">rule {_e(r["rule"])}</div>' if r["rule"] else ""
        parts.append(
            f"<tr><td>{_e(r['timepoint'])}</td><td>{_e(r['reference'])}</td>"
            f"<td>{_e(r['criterion'])}</td><td><span class=\"cat\">{_e(r['category'])}</span>"
            f"{desc}</td><td><ul>{reasons}{warns}</ul>{rule}</td></tr>"
        )
    if not rows:
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


def _site_section(
    timepoints: Sequence[TimepointView], track_ids: Sequence[str],
    tmap: Mapping[str, Mapping[int, str]], suv_window: tuple[float, float],
) -> list[str]:
    """The ``<section id="sites">``: the site table and the follow-up site fusions."""
    parts = ['<section id="sites"><h2>Lesion sites at every timepoint</h2>']
    order = _site_order(timepoints, track_ids)
    if not order:
        parts.append('<p class="note">No site readouts (the study was built without '
                     "them).</p></section>")
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
    parts.append(
        '<p class="note">Follow-up sites: axial slice through the CT longest diameter when the '
        "CT shows a mass (green line), otherwise through the SUVpeak centre (dashed circle: "
        "the 1 mL peak sphere, when in the slice); native CT in a soft-tissue window "
        "(W400/L40 HU) under the SUV in a hot colour map at 50 % opacity; segmented lesion "
        "contour in cyan.</p>")
    for tp in timepoints[1:]:
        here = [tid for tid in order if tid in tp.sites]
        if not here:
            continue
        parts.append(f'<h3>{_e(tp.label)}</h3><div class="figs">')
        for tid in here:
            labels = sorted(k for k, v in tmap.get(tp.label, {}).items() if v == tid)
            parts.append(_site_figure(tp, tid, tp.sites[tid], labels, suv_window))
        parts.append("</div>")
    parts.append("</section>")
    return parts


def _same_frame(tp: TimepointView) -> bool:
    """True when the CT of ``tp`` may be shown under its PET (same frame of reference)."""
    if tp.ct is None:
        return False
    a = tp.ct.identity.frame_of_reference_uid
    b = tp.suv.identity.frame_of_reference_uid
    return not (a and b and a != b)


def _ct_on_pet(tp: TimepointView) -> np.ndarray | None:
    if tp.ct is None or not _same_frame(tp):
        return None
    return tp.ct.resample_to(tp.suv.grid, interpolation="linear").array


def write_html_report(
    study: Study,
    assessments: Sequence[Any] | None,
    path: str | os.PathLike[str],
    *,
    deidentify: bool = False,
    title: str | None = None,
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

    Returns
    -------
    Path
        The written file.
    """
    from emlesion.report._study import study_views

    header, views, tracks, default_assessments = study_views(study)
    if assessments is None:
        assessments = default_assessments()
    text = render_html(header, views, tracks, assessments, deidentify=deidentify, title=title)
    return _atomic.write_text_atomic(path, text)
