"""SUV engine: vendor-correct conversion of PET images to SUV, with provenance.

Public API
----------
compute_suv
    PET :class:`~emlesion.io.volume.Volume` -> SUV Volume (``units`` ``"SUVbw"`` ...).
compute_suv_image
    The same, with the typed :class:`SUVFactors` (:class:`SUVImage`); ``.renormalized()``
    derives the SUL from the same factors.
compute_suv_factors
    Per-slice factors (:class:`SUVFactors`) from a Volume or a sequence of pydicom Datasets.
Normalization
    ``bw``, ``lbm-james128``, ``lbm-morgan``, ``sul-janmahasatian``, ``bsa-dubois``, ``ibw``.

Body-size formulas are in :mod:`emlesion.suv.bodysize`, DA/TM/DT parsing in
:mod:`emlesion.suv.timing`.
"""

from __future__ import annotations

from emlesion.suv.convert import SUVImage, apply_suv_factors, compute_suv, compute_suv_image
from emlesion.suv.enums import (
    DEFAULT_SUL,
    DecayCorrection,
    Normalization,
    PETUnits,
    ReferenceTimeMethod,
    SUVType,
)
from emlesion.suv.factors import (
    ReferenceTimeRule,
    SUVFactors,
    compute_suv_factors,
    frame_average_time_s,
    renormalize_suv_factors,
)

__all__ = [
    "DEFAULT_SUL",
    "DecayCorrection",
    "Normalization",
    "PETUnits",
    "ReferenceTimeMethod",
    "ReferenceTimeRule",
    "SUVFactors",
    "SUVImage",
    "SUVType",
    "apply_suv_factors",
    "compute_suv",
    "compute_suv_factors",
    "compute_suv_image",
    "frame_average_time_s",
    "renormalize_suv_factors",
]
