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
"""

from emlesion.segment.ctguided import CTSoftTissueRule, delineate_on_ct
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
    segment_lesions,
)

__all__ = [
    "DEFAULT_EXCLUDE",
    "Box",
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
    "delineate_on_ct",
    "segment_lesions",
]
