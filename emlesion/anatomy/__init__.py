"""Anatomy from CT (and PET): body, skeleton, landmarks, organs, PERCIST reference regions.

Classical image processing only (HU and uptake thresholds, morphology, connected
components); no deep-learning model and no download. A user organ label map (e.g. a
TotalSegmentator output) refines the organs when supplied.

Public API
----------
:func:`segment_anatomy`
    CT (+ PET) -> :class:`Anatomy` (organ masks on the PET grid, spinal axis, iliac-crest and
    pelvic-inlet levels, liver reference sphere, aortic blood-pool cylinder).
:class:`FieldOfView`
    The body regions a scan covers (trunk, thorax, head, pelvis); organs are only searched
    where their region is in the field of view (rules in :mod:`emlesion.anatomy.fov`).
:func:`assign_region`
    Lesion mask -> :class:`RegionAssignment` (``retroperitoneal`` / ``pelvic`` / ``other``;
    ``left`` / ``right`` / ``midline``).
"""

from emlesion.anatomy.ct import (
    TOTALSEGMENTATOR_NAMES,
    AnatomyWarning,
    organ_target,
    segment_anatomy,
)
from emlesion.anatomy.fov import FieldOfView
from emlesion.anatomy.model import (
    Anatomy,
    AnatomyLabel,
    ReferenceRegion,
    ReferenceRegionStats,
    Region,
    Side,
)
from emlesion.anatomy.regions import RegionAssignment, assign_region

__all__ = [
    "TOTALSEGMENTATOR_NAMES",
    "Anatomy",
    "AnatomyLabel",
    "AnatomyWarning",
    "FieldOfView",
    "ReferenceRegion",
    "ReferenceRegionStats",
    "Region",
    "RegionAssignment",
    "Side",
    "assign_region",
    "organ_target",
    "segment_anatomy",
]
