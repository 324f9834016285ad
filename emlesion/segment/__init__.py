"""Lesion segmentation on SUV images: fixed, relative and PERCIST-liver thresholds inside a
search region, connected components, and exclusion of physiological uptake.

Public API
----------
:func:`segment_lesions`
    SUV (+ anatomy or CT) -> :class:`SegmentationResult` (named lesion labels with region and
    side, thresholds and every choice in the provenance).
:func:`delineate_on_ct`
    The CT soft-tissue boundary of a low-contrast PET lesion (used by :func:`segment_lesions`
    when the blood-pool floor would place the boundary).
:func:`search_residual`, :func:`segment_near_lesions`
    Follow-up searches restricted to where earlier lesions were (a lost lesion's footprint
    at a lower seed threshold; without CT, only at the earlier lesions).
:func:`delineate_ct_mass`
    The soft-tissue mass at a tracked lesion's site on the CT, with or without PET uptake
    (the CT readout of every site at every timepoint).
"""

from emlesion.segment.ctguided import (
    CTMass,
    CTMassRule,
    CTSoftTissueRule,
    delineate_ct_mass,
    delineate_on_ct,
)
from emlesion.segment.lesions import (
    DEFAULT_EXCLUDE,
    Box,
    Lesion,
    Method,
    PriorMask,
    SearchRegion,
    Seed,
    SegmentationResult,
    SegmentationWarning,
    ThresholdRule,
    WholeScan,
    classify_threshold_rule,
    exclusion_labels,
    segment_lesions,
)
from emlesion.segment.search import (
    RESIDUAL_SEED,
    ResidualFinding,
    ResidualSearch,
    search_residual,
    segment_near_lesions,
)

__all__ = [
    "DEFAULT_EXCLUDE",
    "RESIDUAL_SEED",
    "Box",
    "CTMass",
    "CTMassRule",
    "CTSoftTissueRule",
    "Lesion",
    "Method",
    "PriorMask",
    "ResidualFinding",
    "ResidualSearch",
    "SearchRegion",
    "Seed",
    "SegmentationResult",
    "SegmentationWarning",
    "ThresholdRule",
    "WholeScan",
    "classify_threshold_rule",
    "delineate_ct_mass",
    "delineate_on_ct",
    "exclusion_labels",
    "search_residual",
    "segment_lesions",
    "segment_near_lesions",
]
