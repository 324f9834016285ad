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
:class:`Study`
    :meth:`~Study.assess` (response criteria), :meth:`~Study.to_report_dict` (the public
    ``report.json``, schema ``emlesion/schemas/report.schema.json``),
    :meth:`~Study.lesions_rows` (``lesions.csv``: one row per track and timepoint),
    :attr:`~Study.sites` (every track read at its site at every timepoint, on PET and CT).
"""

from __future__ import annotations

from emlesion.study.build import DEFAULT_METHOD, RESIDUAL_MARGIN_MM, load_study, load_timepoint
from emlesion.study.model import (
    CSV_COLUMNS,
    LESION_CSV_COLUMNS,
    MEASURE_FORMAT,
    REPORT_FORMAT,
    REPORT_FORMAT_VERSION,
    SITE_CSV_COLUMNS,
    SUV_PEAK_DEFINITION,
    LesionSource,
    ReferenceStats,
    StageEvent,
    Study,
    Timepoint,
)
from emlesion.study.output import (
    StderrProgress,
    check_output_location,
    write_csv_atomic,
    write_json_atomic,
    write_study_outputs,
)

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_METHOD",
    "LESION_CSV_COLUMNS",
    "MEASURE_FORMAT",
    "REPORT_FORMAT",
    "REPORT_FORMAT_VERSION",
    "RESIDUAL_MARGIN_MM",
    "SITE_CSV_COLUMNS",
    "SUV_PEAK_DEFINITION",
    "LesionSource",
    "ReferenceStats",
    "StageEvent",
    "StderrProgress",
    "Study",
    "Timepoint",
    "check_output_location",
    "load_study",
    "load_timepoint",
    "schema_path",
    "write_csv_atomic",
    "write_json_atomic",
    "write_study_outputs",
]


def schema_path(name: str) -> str:
    """Path of a bundled JSON Schema: ``"report"`` or ``"measure"``."""
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent / "schemas" / f"{name}.schema.json")
