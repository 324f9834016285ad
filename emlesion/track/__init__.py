"""Lesion tracking across timepoints: CT registration, lesion matching, tracks.

* :func:`register_ct` registers a follow-up CT to the baseline CT (rigid or affine,
  Mattes mutual information) and returns a :class:`Registration` (fixed-to-moving
  transform, quality figure, time, provenance); :func:`map_points` and
  :func:`resample_labels` (and :func:`resample_volume` for display) use it to bring
  follow-up lesions and images into the baseline space.
* :func:`match_lesions` matches two label maps on one grid (overlap + centroid
  distance, optimal assignment; splits and merges reported).
* :func:`track_lesions` builds :class:`LesionTrack` objects over a whole study.
* :func:`build_track_sites` gives every track a :class:`TrackSite` at every timepoint from
  its first appearance: the union of its earlier masks mapped through the registrations
  (:func:`map_mask`), with a margin, where the lesion is read whether or not it is found.
"""

from __future__ import annotations

from emlesion.track.matching import (
    DEFAULT_MAX_DISTANCE_MM,
    DEFAULT_MIN_FRACTION,
    EventKind,
    LesionEvent,
    LesionMatch,
    Matching,
    match_lesions,
)
from emlesion.track.registration import (
    Initializer,
    MapTo,
    PlausibilityBound,
    PreparedCT,
    Registration,
    RegistrationQuality,
    TransformPlausibility,
    TransformType,
    map_points,
    prepare_fixed_ct,
    register_ct,
    resample_labels,
    resample_volume,
)
from emlesion.track.sites import (
    MIN_FIELD_OF_VIEW_FRACTION,
    SITE_MARGIN_MM,
    SiteContext,
    TrackSite,
    build_track_sites,
    map_mask,
    registration_map,
)
from emlesion.track.tracking import (
    LesionTrack,
    TimepointLesions,
    TrackingResult,
    TrackPoint,
    TrackState,
    track_lesions,
)

__all__ = [
    "DEFAULT_MAX_DISTANCE_MM",
    "DEFAULT_MIN_FRACTION",
    "MIN_FIELD_OF_VIEW_FRACTION",
    "SITE_MARGIN_MM",
    "EventKind",
    "Initializer",
    "LesionEvent",
    "LesionMatch",
    "LesionTrack",
    "MapTo",
    "Matching",
    "PlausibilityBound",
    "PreparedCT",
    "Registration",
    "RegistrationQuality",
    "SiteContext",
    "TimepointLesions",
    "TrackPoint",
    "TrackSite",
    "TrackState",
    "TrackingResult",
    "TransformPlausibility",
    "TransformType",
    "build_track_sites",
    "map_mask",
    "map_points",
    "match_lesions",
    "prepare_fixed_ct",
    "register_ct",
    "registration_map",
    "resample_labels",
    "resample_volume",
    "track_lesions",
]
