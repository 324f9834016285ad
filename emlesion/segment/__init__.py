"""Lesion segmentation on SUV images: fixed, relative and PERCIST-liver thresholds inside a
search region, connected components, and exclusion of physiological uptake.

Public API
----------
:func:`segment_lesions`
    SUV (+ anatomy or CT) -> :class:`SegmentationResult` (named lesion labels with region and
    side, thresholds and every choice in the provenance).
"""

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
    "segment_lesions",
]
