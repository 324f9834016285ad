"""Reading DICOM PET/CT: series discovery, volume loading and the value objects they return.

Public API
----------
:func:`discover`
    Find the series under a folder (headers only) as :class:`SeriesInfo` with a
    :class:`SeriesRole`.
:func:`load_pet`, :func:`load_ct`, :func:`load_volume`
    Load a series as a :class:`Volume` (float32 ``(z, y, x)`` on an LPS :class:`Grid`).
:func:`find_private`
    Find a private element by its private creator (vendor SUV attributes).
:func:`resample_array`
    Resample an array between grids (linear for images, nearest neighbour for masks);
    see also :meth:`Volume.resample_to`.
"""

from __future__ import annotations

from emlesion.io.dicom import find_private
from emlesion.io.discover import SeriesInfo, SeriesRole, discover
from emlesion.io.geometry import Grid, resample_array
from emlesion.io.labelmap import LabelMap
from emlesion.io.loader import GeometryTolerances, load_ct, load_pet, load_volume
from emlesion.io.volume import SeriesIdentity, SliceInfo, Volume

__all__ = [
    "GeometryTolerances",
    "Grid",
    "LabelMap",
    "SeriesIdentity",
    "SeriesInfo",
    "SeriesRole",
    "SliceInfo",
    "Volume",
    "discover",
    "find_private",
    "load_ct",
    "load_pet",
    "load_volume",
    "resample_array",
]

try:  # written by another engineer; re-exported once present
    from emlesion.io.masks import load_mask  # noqa: F401

    __all__.append("load_mask")
except ModuleNotFoundError as _exc:  # pragma: no cover - depends on the build
    if _exc.name != "emlesion.io.masks":
        raise
