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
:func:`segment_at`
    One-click segmentation: one mask per clicked point (LPS mm or :class:`VoxelIndex`).
:func:`split_touching`
    Touching lesions separated at their local SUV maxima (marker-controlled watershed).
:func:`detect_lesions`
    Whole-body automatic detection on a PET without CT (physiological uptake located from
    the PET alone; limits in :mod:`emlesion.segment.auto`).
:func:`delineate_ct_mass`
    The soft-tissue mass at a tracked lesion's site on the CT, with or without PET uptake
    (the CT readout of every site at every timepoint).
"""

from emlesion.segment.auto import (
    DEFAULT_AUTO_METHOD,
    PetOnlyLandmarks,
    PetZone,
    detect_lesions,
    pet_only_landmarks,
)
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
from emlesion.segment.seeded import DEFAULT_SEEDED_METHOD, VoxelIndex, segment_at
from emlesion.segment.split import (
    DEFAULT_COMPACTNESS,
    DEFAULT_MIN_PROMINENCE_SUV,
    split_touching,
)

__all__ = [
    "DEFAULT_AUTO_METHOD",
    "DEFAULT_COMPACTNESS",
    "DEFAULT_EXCLUDE",
    "DEFAULT_MIN_PROMINENCE_SUV",
    "DEFAULT_SEEDED_METHOD",
    "RESIDUAL_SEED",
    "Box",
    "CTMass",
    "CTMassRule",
    "CTSoftTissueRule",
    "Lesion",
    "Method",
    "PetOnlyLandmarks",
    "PetZone",
    "PriorMask",
    "ResidualFinding",
    "ResidualSearch",
    "SearchRegion",
    "Seed",
    "SegmentationResult",
    "SegmentationWarning",
    "ThresholdRule",
    "VoxelIndex",
    "WholeScan",
    "classify_threshold_rule",
    "delineate_ct_mass",
    "delineate_on_ct",
    "detect_lesions",
    "exclusion_labels",
    "pet_only_landmarks",
    "search_residual",
    "segment_at",
    "segment_lesions",
    "segment_near_lesions",
    "split_touching",
]
