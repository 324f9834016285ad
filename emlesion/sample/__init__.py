"""A deterministic generator of a realistic three-timepoint FDG PET/CT case with known truth.

The clinical pattern is an extramedullary relapse of B-cell acute lymphoblastic
leukaemia treated with CD19 CAR-T cells: two FDG-avid masses (right retroperitoneal,
left pelvic wall) at baseline, a PERCIST partial metabolic response at one month and a
complete metabolic response at three months. Each timepoint is written as real DICOM
(PET Image Storage, CT Image Storage and a CT localizer) in a different vendor SUV
convention, with a ``truth.json`` and NIfTI truth masks. The committed
``sample_scans/`` folder is ``generate_sample_study("sample_scans", seed=2024)``.

Examples
--------
>>> from emlesion.sample import generate_sample_study
>>> study = generate_sample_study("my_sample", seed=2024)  # doctest: +SKIP
>>> study.truth["expected_response"]["month1"]["percist"]["category"]  # doctest: +SKIP
'PMR'
"""

from __future__ import annotations

from emlesion.sample.schedule import TIMEPOINTS, VendorConvention, schedule_for
from emlesion.sample.study import (
    DEFAULT_SEED,
    SampleStudy,
    SimulatedTimepoint,
    generate_sample_study,
    pixel_sha256,
    simulate_timepoint,
)

__all__ = [
    "DEFAULT_SEED",
    "TIMEPOINTS",
    "SampleStudy",
    "SimulatedTimepoint",
    "VendorConvention",
    "generate_sample_study",
    "pixel_sha256",
    "schedule_for",
    "simulate_timepoint",
]
