"""Cohort batch processing on one machine or on a Dask cluster.

``emlesion batch MANIFEST --out OUTDIR`` (or :func:`run_batch`) runs the study pipeline
(:func:`emlesion.study.load_study`, :meth:`~emlesion.study.Study.assess`,
:meth:`~emlesion.study.Study.to_report_dict`) once per patient of a manifest, as one Dask task
per patient, on a local process pool (a :class:`distributed.LocalCluster`) or on an existing
Dask scheduler: the same code path in both cases. Results stream to the output folder as they
finish: one report folder per patient, published atomically with a ``DONE.json`` marker, and
cohort tables of every lesion, every assessment and every patient's status. A failing patient
is recorded with its error and the batch goes on; re-running the same command skips patients
whose results are complete and valid.

Needs the optional extra ``batch`` (``pip install 'emlesion[batch]'``: Dask distributed).

Examples
--------
>>> from emlesion.batch import read_manifest, run_batch
>>> manifest = read_manifest("cohort.csv")  # doctest: +SKIP
>>> result = run_batch(manifest, "cohort_out", workers=4)  # doctest: +SKIP
>>> result.n_completed, result.n_failed  # doctest: +SKIP
(99, 1)
"""

from __future__ import annotations

from emlesion.batch.cohort import (
    ASSESSMENT_COLUMNS,
    LESION_COLUMNS,
    STATUS_COLUMNS,
    CohortResult,
    assessment_rows,
    lesion_rows,
    write_cohort_tables,
)
from emlesion.batch.manifest import (
    Manifest,
    ManifestError,
    PatientJob,
    TimepointSpec,
    read_manifest,
)
from emlesion.batch.patient import (
    DONE_FILE,
    OPTION_NAMES,
    PatientResult,
    PatientStatus,
    completed_result,
    parse_options,
    patient_dir,
    process_patient,
    warning_changes_numbers,
)
from emlesion.batch.runner import default_workers, run_batch

__all__ = [
    "ASSESSMENT_COLUMNS",
    "DONE_FILE",
    "LESION_COLUMNS",
    "OPTION_NAMES",
    "STATUS_COLUMNS",
    "CohortResult",
    "Manifest",
    "ManifestError",
    "PatientJob",
    "PatientResult",
    "PatientStatus",
    "TimepointSpec",
    "assessment_rows",
    "completed_result",
    "default_workers",
    "lesion_rows",
    "parse_options",
    "patient_dir",
    "process_patient",
    "read_manifest",
    "run_batch",
    "warning_changes_numbers",
    "write_cohort_tables",
]
