"""The :class:`LabelMap` value object: integer lesion/segment labels on a voxel grid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import SimpleITK as sitk

from emlesion.errors import MaskError, format_message
from emlesion.io.geometry import Grid, resample_array
from emlesion.provenance import ProvenanceStep

__all__ = ["LabelMap"]


@dataclass(frozen=True, eq=False, repr=False)
class LabelMap:
    """Integer labels on a grid; 0 is background.

    Parameters
    ----------
    array : ndarray
        Labels ``(z, y, x)``, stored read-only as uint16.
    grid : Grid
        Geometry of the labels (usually the PET grid).
    names : Mapping[int, str]
        Name of each label present (e.g. segment labels of a DICOM SEG, ROI names of
        an RTSTRUCT). Labels without a name are called ``"label <n>"``.
    source : str
        Where the labels came from (file path, method name).
    provenance : tuple of ProvenanceStep
        History of the operations that produced the labels.

    Notes
    -----
    Overlapping segments (possible in DICOM SEG and RTSTRUCT) cannot live in one label
    array; loaders resolve overlaps explicitly and record how in the provenance.
    """

    array: np.ndarray
    grid: Grid
    names: Mapping[int, str] = field(default_factory=dict)
    source: str = ""
    provenance: tuple[ProvenanceStep, ...] = ()

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim != 3:
            raise MaskError(
                format_message(
                    f"a LabelMap needs a 3-D array, got {arr.ndim}-D", series=self.source or None
                )
            )
        if arr.dtype != np.uint16:
            if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.uint16).max):
                raise MaskError(
                    format_message("labels must lie in 0..65535", series=self.source or None)
                )
            arr = arr.astype(np.uint16)
        elif arr.base is not None and arr.flags.writeable:
            arr = arr.copy()
        arr.flags.writeable = False
        object.__setattr__(self, "array", arr)
        if tuple(arr.shape) != self.grid.shape:
            raise MaskError(
                format_message(
                    f"label array shape {arr.shape} does not match grid shape {self.grid.shape}",
                    series=self.source or None,
                )
            )
        object.__setattr__(self, "names", {int(k): str(v) for k, v in dict(self.names).items()})
        object.__setattr__(self, "provenance", tuple(self.provenance))

    @property
    def labels(self) -> tuple[int, ...]:
        """The non-zero labels present in the array, ascending."""
        values = np.unique(self.array)
        return tuple(int(v) for v in values if v != 0)

    def name(self, label: int) -> str:
        """The name of ``label`` (``"label <n>"`` when it has none)."""
        return self.names.get(int(label), f"label {int(label)}")

    def mask(self, label: int) -> np.ndarray:
        """Boolean mask of one label."""
        return self.array == label

    def voxel_counts(self) -> dict[int, int]:
        """Number of voxels of each non-zero label."""
        counts = np.bincount(self.array.ravel())
        return {int(i): int(c) for i, c in enumerate(counts) if i and c}

    def resample_to(self, target: Grid) -> LabelMap:
        """Nearest-neighbour resampling onto ``target`` (labels are never blended)."""
        out = resample_array(
            self.array, self.grid, target, interpolation="nearest", default_value=0
        )
        step = ProvenanceStep(
            "emlesion.io.LabelMap.resample_to",
            rule="nearest neighbour, identity transform",
            inputs={"target_shape": target.shape, "target_spacing_mm": target.spacing_mm},
        )
        return replace(self, array=out, grid=target, provenance=(*self.provenance, step))

    def to_sitk(self) -> sitk.Image:
        """A SimpleITK UInt16 image with the same labels and geometry."""
        return self.grid.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(self.array)))

    def __repr__(self) -> str:
        counts = self.voxel_counts()
        shown = ", ".join(f"{k}:{self.name(k)!r}({counts[k]} vox)" for k in list(counts)[:4])
        more = f", +{len(counts) - 4} more" if len(counts) > 4 else ""
        return (
            f"LabelMap({len(counts)} labels [{shown}{more}], shape={self.grid.shape}, "
            f"source={self.source!r})"
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (names, voxel counts, history)."""
        return {
            "source": self.source,
            "shape": list(self.grid.shape),
            "labels": {
                str(k): {"name": self.name(k), "voxels": v} for k, v in self.voxel_counts().items()
            },
            "provenance": [p.to_dict() for p in self.provenance],
        }
