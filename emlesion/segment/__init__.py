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

__all__ = [
    "DEFAULT_EXCLUDE",
    "Box",
    "CTMass",
    "CTMassRule",
    "CTSoftTissueRule",
    "Lesion",
    "Method",
    "PriorMask",
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
    "segment_lesions",
]
