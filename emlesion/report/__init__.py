"""Reports: the self-contained HTML report and the DICOM SEG + TID 1500 SR outputs.

Entry points used by ``emlesion response ... --out OUTDIR``:

:func:`write_html_report`
    ``write_html_report(study, assessments, path, *, deidentify=False, title=None) -> Path``
    writes ``OUTDIR/report.html`` (no external asset, every DICOM string escaped), with
    every tracked lesion's site at every timepoint (table, and a PET/CT fusion per
    follow-up site) from :attr:`emlesion.study.Study.sites`.
:func:`write_dicom_outputs`
    ``write_dicom_outputs(study, out_dir, *, assessments=None) -> list[Path]`` writes, per
    timepoint, ``<label>_seg.dcm`` (DICOM SEG, one segment per lesion on the PET grid) and
    ``<label>_sr.dcm`` (Comprehensive 3D SR, TID 1500, one measurement group per lesion with
    a TrackingIdentifier stable across timepoints, plus one site-readout group per track:
    SUVmax, SUVpeak, SULpeak, Deauville, CT LD/SA/volume/mean HU and the site state).

Building blocks on explicit inputs (no :mod:`emlesion.study` needed): :func:`render_html`
with :class:`TimepointView`; :func:`build_segmentation`, :func:`build_measurement_report`
with :class:`TrackingInfo` and :func:`tracking_uid`; the figures of
:mod:`emlesion.report.figures`.
"""

from __future__ import annotations

from emlesion.report.dicom import (
    TrackingInfo,
    build_measurement_report,
    build_segmentation,
    quantity_codes,
    tracking_uid,
    write_dicom_outputs,
)
from emlesion.report.html import (
    DEIDENTIFIED,
    TimepointView,
    header_from_identity,
    normalise_assessments,
    render_html,
    site_state_label,
    write_html_report,
)

__all__ = [
    "DEIDENTIFIED",
    "TimepointView",
    "TrackingInfo",
    "build_measurement_report",
    "build_segmentation",
    "header_from_identity",
    "normalise_assessments",
    "quantity_codes",
    "render_html",
    "site_state_label",
    "tracking_uid",
    "write_dicom_outputs",
    "write_html_report",
]
