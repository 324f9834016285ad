"""Reading DICOM PET/CT: series discovery, volume loading and the value objects they return.

Public API
----------
:func:`discover`
    Find the series under a folder (headers only) as :class:`SeriesInfo` with a
    :class:`SeriesRole`.
:func:`load_pet`, :func:`load_ct`, :func:`load_volume`
    Load a series as a :class:`Volume` (float32 ``(z, y, x)`` on an LPS :class:`Grid`);
    ``load_pet``/``load_ct`` also read a NIfTI image (:func:`load_nifti_image`; a PET needs a
    :class:`PetDeclaration` of its quantity).
:func:`load_mask`
    Read a DICOM SEG, RTSTRUCT or NIfTI label map onto a reference grid as a
    :class:`LabelMap`.
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
from emlesion.io.masks import MaskFormat, Overlap, detect_mask_format, load_mask
from emlesion.io.nifti import read_nifti_labels
from emlesion.io.nifti_image import (
    NiftiPetUnits,
    PetDeclaration,
    load_nifti_image,
    save_nifti_image,
)
from emlesion.io.rtstruct import rasterize_rtstruct
from emlesion.io.seg import read_seg
from emlesion.io.volume import SeriesIdentity, SliceInfo, Volume, is_suv_units

__all__ = [
    "GeometryTolerances",
    "Grid",
    "LabelMap",
    "MaskFormat",
    "NiftiPetUnits",
    "Overlap",
    "PetDeclaration",
    "SeriesIdentity",
    "SeriesInfo",
    "SeriesRole",
    "SliceInfo",
    "Volume",
    "detect_mask_format",
    "discover",
    "find_private",
    "is_suv_units",
    "load_ct",
    "load_mask",
    "load_nifti_image",
    "load_pet",
    "load_volume",
    "rasterize_rtstruct",
    "read_nifti_labels",
    "read_seg",
    "resample_array",
    "save_nifti_image",
]

