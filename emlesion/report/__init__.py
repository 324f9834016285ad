"""Reports, the end of the data flow: the JSON documents, the CSV tables, the self-contained
HTML report and the DICOM SEG + TID 1500 SR outputs.

One call per command: :func:`write_response_outputs` (``emlesion response``, a batch
patient) and :func:`write_measure_outputs` (``emlesion measure``). The documents:
:func:`report_dict` (``report.json``), :func:`measure_dict` (the measure JSON), with the
format constants :data:`REPORT_FORMAT`, :data:`MEASURE_FORMAT`, :data:`REPORT_FORMAT_VERSION`
and :data:`SUV_PEAK_DEFINITION`; the one CSV format: :func:`csv_text`,
:func:`format_cell`, :func:`write_csv_atomic`.

Entry points used by ``emlesion response ... --out OUTDIR``:

:func:`write_html_report`
    ``write_html_report(study, assessments, path, *, deidentify=False, title=None,
    treatment_date=None) -> Path`` writes ``OUTDIR/report.html`` (no external asset, every
    DICOM string escaped): the summary first (calls per follow-up, trend), every track at
    every timepoint with % change against baseline and nadir, the acquisition table with
    the PERCIST comparability flags, MIPs, a PET/CT fusion of every site at every timepoint
    (:attr:`emlesion.study.Study.sites`), the time course and the reasons.
:func:`write_dicom_outputs`
    ``write_dicom_outputs(study, out_dir, *, assessments=None) -> list[Path]`` writes, per
    timepoint, ``<label>_seg.dcm`` (DICOM SEG, one segment per lesion on the PET grid) and
    ``<label>_sr.dcm`` (Comprehensive 3D SR, TID 1500, one measurement group per lesion with
    a TrackingIdentifier stable across timepoints, plus one site-readout group per track:
    SUVmax, SUVpeak, SULpeak, Deauville, CT LD/SA/volume/mean HU and the site state; at a
    follow-up, one response group with each criterion's category).

:func:`write_study_nifti` (``emlesion response --nifti``)
    one NIfTI label map per timepoint on its PET grid (track numbers as labels) with a JSON
    sidecar; :func:`write_timepoint_nifti` (``emlesion measure --nifti``) the same for one
    timepoint with its lesion labels.

Building blocks on explicit inputs (no :mod:`emlesion.study` needed): :func:`render_html`
with :class:`TimepointView`; :func:`build_segmentation`, :func:`build_measurement_report`
with :class:`TrackingInfo` and :func:`tracking_uid`; the figures of
:mod:`emlesion.report.figures`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name -> defining module. Loaded on first access, so that reading the documents
#: (``report_dict``) does not pull in matplotlib and highdicom (the HTML and DICOM writers).
_LAZY: dict[str, str] = {
    "BURDEN_CSV_COLUMNS": "emlesion.report.output",
    "CSV_DECIMALS": "emlesion.report.output",
    "DEIDENTIFIED": "emlesion.report.html",
    "MEASURE_CSV_COLUMNS": "emlesion.report.output",
    "MEASURE_FORMAT": "emlesion.report.documents",
    "REPORT_FORMAT": "emlesion.report.documents",
    "REPORT_FORMAT_VERSION": "emlesion.report.documents",
    "SUV_PEAK_DEFINITION": "emlesion.report.documents",
    "StderrProgress": "emlesion.report.output",
    "TimepointView": "emlesion.report.html",
    "TrackingInfo": "emlesion.report.dicom",
    "build_measurement_report": "emlesion.report.dicom",
    "build_segmentation": "emlesion.report.dicom",
    "burden_rows": "emlesion.report.output",
    "check_output_dir": "emlesion.report.output",
    "check_output_file": "emlesion.report.output",
    "check_output_location": "emlesion.report.output",
    "csv_text": "emlesion.report.output",
    "format_cell": "emlesion.report.output",
    "header_from_identity": "emlesion.report.html",
    "measure_dict": "emlesion.report.documents",
    "measure_rows": "emlesion.report.output",
    "normalise_assessments": "emlesion.report.html",
    "output_error": "emlesion.report.output",
    "publish_measure_outputs": "emlesion.report.output",
    "publish_response_outputs": "emlesion.report.output",
    "quantity_codes": "emlesion.report.dicom",
    "render_html": "emlesion.report.html",
    "report_dict": "emlesion.report.documents",
    "site_state_label": "emlesion.report.html",
    "timepoint_object": "emlesion.report.documents",
    "tracking_uid": "emlesion.report.dicom",
    "tracks_array": "emlesion.report.documents",
    "write_all_outputs": "emlesion.report.output",
    "write_csv_atomic": "emlesion.report.output",
    "write_dicom_outputs": "emlesion.report.dicom",
    "write_html_report": "emlesion.report.html",
    "write_json_atomic": "emlesion.report.output",
    "write_measure_outputs": "emlesion.report.output",
    "write_response_outputs": "emlesion.report.output",
    "write_study_nifti": "emlesion.report.nifti",
    "write_study_outputs": "emlesion.report.output",
    "write_timepoint_nifti": "emlesion.report.nifti",
}

if TYPE_CHECKING:  # pragma: no cover
    from emlesion.report.dicom import (
        TrackingInfo,
        build_measurement_report,
        build_segmentation,
        quantity_codes,
        tracking_uid,
        write_dicom_outputs,
    )
    from emlesion.report.documents import (
        MEASURE_FORMAT,
        REPORT_FORMAT,
        REPORT_FORMAT_VERSION,
        SUV_PEAK_DEFINITION,
        measure_dict,
        report_dict,
        timepoint_object,
        tracks_array,
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
    from emlesion.report.nifti import write_study_nifti, write_timepoint_nifti
    from emlesion.report.output import (
        BURDEN_CSV_COLUMNS,
        CSV_DECIMALS,
        MEASURE_CSV_COLUMNS,
        StderrProgress,
        burden_rows,
        check_output_dir,
        check_output_file,
        check_output_location,
        csv_text,
        format_cell,
        measure_rows,
        output_error,
        publish_measure_outputs,
        publish_response_outputs,
        write_all_outputs,
        write_csv_atomic,
        write_json_atomic,
        write_measure_outputs,
        write_response_outputs,
        write_study_outputs,
    )

__all__ = [
    "BURDEN_CSV_COLUMNS",
    "CSV_DECIMALS",
    "DEIDENTIFIED",
    "MEASURE_CSV_COLUMNS",
    "MEASURE_FORMAT",
    "REPORT_FORMAT",
    "REPORT_FORMAT_VERSION",
    "SUV_PEAK_DEFINITION",
    "StderrProgress",
    "TimepointView",
    "TrackingInfo",
    "build_measurement_report",
    "build_segmentation",
    "burden_rows",
    "check_output_dir",
    "check_output_file",
    "check_output_location",
    "csv_text",
    "format_cell",
    "header_from_identity",
    "measure_dict",
    "measure_rows",
    "normalise_assessments",
    "output_error",
    "publish_measure_outputs",
    "publish_response_outputs",
    "quantity_codes",
    "render_html",
    "report_dict",
    "site_state_label",
    "timepoint_object",
    "tracking_uid",
    "tracks_array",
    "write_all_outputs",
    "write_csv_atomic",
    "write_dicom_outputs",
    "write_html_report",
    "write_json_atomic",
    "write_measure_outputs",
    "write_response_outputs",
    "write_study_nifti",
    "write_study_outputs",
    "write_timepoint_nifti",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emlesion.report' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
