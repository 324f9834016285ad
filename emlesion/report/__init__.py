"""Reports: the self-contained HTML report and the DICOM SEG + TID 1500 SR outputs.

Entry points used by ``emlesion response ... --out OUTDIR``:

:func:`write_html_report`
    ``write_html_report(study, assessments, path, *, deidentify=False, title=None) -> Path``
    writes ``OUTDIR/report.html`` (no external asset, every DICOM string escaped).
:func:`write_dicom_outputs`
    ``write_dicom_outputs(study, out_dir, *, assessments=None) -> list[Path]`` writes, per
    timepoint, ``<label>_seg.dcm`` (DICOM SEG, one segment per lesion on the PET grid) and
    ``<label>_sr.dcm`` (Comprehensive 3D SR, TID 1500, one measurement group per lesion with
    a TrackingIdentifier stable across timepoints).

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
    "tracking_uid",
    "write_dicom_outputs",
    "write_html_report",
]
