"""Treatment-response engines: pure functions from lesion measurements to explained calls.

Inputs are the frozen value objects :class:`LesionObservation`,
:class:`ReferenceUptake` and :class:`TimepointObservation`; every engine returns an
:class:`Assessment` that names the category, the rule that fired, the numbers compared,
the thresholds and any comparability warnings.

=====================  ===========================  ========================================
criterion              engine                       categories
=====================  ===========================  ========================================
PERCIST 1.0            :func:`assess_percist`       CMR / PMR / SMD / PMD / NE
EORTC 1999             :func:`assess_eortc`         CMR / PMR / SMD / PMD / NE
RECIST 1.1             :func:`assess_recist`        CR / PR / SD / PD / NE
Lugano 2014 PET        :func:`assess_lugano_pet`    CMR / PMR / NMR / PMD / NE
Lugano 2014 CT         :func:`assess_lugano_ct`     CR / PR / SD / PD / NE
LYRIC (Cheson 2016)    :func:`assess_lyric`         CR / PR / SD / IR1 / IR2 / IR3 / PD / NE
=====================  ===========================  ========================================

:func:`assess_all` applies them to every follow-up of a study.

:func:`classify_site` turns the PET and CT readouts of a tracked lesion's site into a
:class:`SiteReading` (state, Deauville score, reasons): :mod:`emlesion.response.sites`.
"""

from __future__ import annotations

from .assessment import (
    Assessment,
    Category,
    Criterion,
    EortcCategory,
    LuganoCtCategory,
    LuganoPetCategory,
    LyricCategory,
    PercistCategory,
    RecistCategory,
    ResponseWarning,
)
from .eortc import assess_eortc, eortc_pmr_threshold
from .lugano import (
    DeauvilleReferences,
    assess_lugano,
    assess_lugano_ct,
    assess_lugano_pet,
    deauville_from_values,
    deauville_score,
)
from .lyric import LyricBasis, assess_lyric
from .observations import LesionObservation, ReferenceUptake, TimepointObservation, UptakeMetric
from .percist import (
    MeasurabilityReference,
    ProgressionReference,
    assess_percist,
    percist_measurability_threshold,
)
from .recist import assess_recist, recist_lesion_size_mm, select_recist_targets
from .series import DEFAULT_CRITERIA, assess_all
from .sites import DEFAULT_RESIDUAL_UPTAKE_MIN_SCORE, SiteReading, SiteState, classify_site

__all__ = [
    "DEFAULT_CRITERIA",
    "DEFAULT_RESIDUAL_UPTAKE_MIN_SCORE",
    "Assessment",
    "Category",
    "Criterion",
    "DeauvilleReferences",
    "EortcCategory",
    "LesionObservation",
    "LuganoCtCategory",
    "LuganoPetCategory",
    "LyricBasis",
    "LyricCategory",
    "MeasurabilityReference",
    "PercistCategory",
    "ProgressionReference",
    "RecistCategory",
    "ReferenceUptake",
    "ResponseWarning",
    "SiteReading",
    "SiteState",
    "TimepointObservation",
    "UptakeMetric",
    "assess_all",
    "assess_eortc",
    "assess_lugano",
    "assess_lugano_ct",
    "assess_lugano_pet",
    "assess_lyric",
    "assess_percist",
    "assess_recist",
    "classify_site",
    "deauville_from_values",
    "deauville_score",
    "eortc_pmr_threshold",
    "percist_measurability_threshold",
    "recist_lesion_size_mm",
    "select_recist_targets",
]
