"""Longitudinal PET/CT studies: the pipeline composed per timepoint and across timepoints.

Sits after :mod:`emlesion.track` and with :mod:`emlesion.response` in the data flow; the
lower modules never import it.

Public API
----------
:func:`load_study`
    One folder per timepoint (``{"baseline": p0, "month1": p1, "month3": p2}``), a list of
    folders, or one folder holding several studies -> :class:`Study` (ordered timepoints,
    consistency checks, lesion tracks).
:func:`load_timepoint`
    One PET/CT folder -> :class:`Timepoint` (PET, CT, SUVbw and SUL images, anatomy, liver
    and blood-pool references, lesion labels and measurements).
:func:`check_pet_ct_pair`, :func:`check_distinct_timepoints`
    The input sanity checks both functions apply: one PET/CT session per timepoint (same
    PatientID and FrameOfReferenceUID), no series or study at two timepoints.
:class:`Study`
    :meth:`~Study.assess` (response criteria), :attr:`~Study.records` (one typed
    :class:`~emlesion.study.record.LesionRecord` per track and timepoint),
    :meth:`~Study.lesions` and :meth:`~Study.assessments` (pandas DataFrames),
    :meth:`~Study.lesions_rows` (the rows of ``lesions.csv``), :attr:`~Study.sites` (every
    track read at its site at every timepoint, on PET and CT).

The files and public documents (``report.json``, ``lesions.csv``, the measure JSON,
``report.html``, DICOM SEG/SR) are written by :mod:`emlesion.report`, the end of the flow;
this package imports nothing from it.
"""

from __future__ import annotations

from emlesion.study.build import (
    DEFAULT_METHOD,
    RESIDUAL_MARGIN_MM,
    check_distinct_timepoints,
    check_pet_ct_pair,
    load_study,
    load_timepoint,
)
from emlesion.study.model import (
    CSV_COLUMNS,
    LESION_CSV_COLUMNS,
    SITE_CSV_COLUMNS,
    LesionSource,
    ProgressCallback,
    ReferenceStats,
    StageEvent,
    Study,
    Timepoint,
)
from emlesion.study.record import LesionRecord

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_METHOD",
    "LESION_CSV_COLUMNS",
    "RESIDUAL_MARGIN_MM",
    "SITE_CSV_COLUMNS",
    "LesionRecord",
    "LesionSource",
    "ProgressCallback",
    "ReferenceStats",
    "StageEvent",
    "Study",
    "Timepoint",
    "check_distinct_timepoints",
    "check_pet_ct_pair",
    "load_study",
    "load_timepoint",
    "schema_path",
]


def schema_path(name: str) -> str:
    """Path of a bundled JSON Schema: ``"report"`` or ``"measure"``."""
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent / "schemas" / f"{name}.schema.json")
