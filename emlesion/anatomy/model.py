"""Value objects of :mod:`emlesion.anatomy`: organ labels, reference VOIs, the :class:`Anatomy`.

All coordinates are DICOM LPS millimetres: +x = patient left, +y = posterior, +z = head.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emlesion.anatomy.fov import FieldOfView
from emlesion.errors import MaskError, format_message
from emlesion.io.geometry import Grid
from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import Volume
from emlesion.provenance import ProvenanceStep, jsonable

__all__ = [
    "Anatomy",
    "AnatomyLabel",
    "ReferenceRegion",
    "ReferenceRegionStats",
    "Region",
    "Side",
    "voxel_centres_mm",
]


class AnatomyLabel(str, enum.Enum):
    """Organs and structures that :func:`emlesion.anatomy.segment_anatomy` can delineate.

    The integer written in :meth:`Anatomy.organ_labelmap` is :attr:`code`. New members are
    only ever appended, so that codes stay stable. ``MYOCARDIUM`` is the PET-avid part of
    ``HEART`` (may be empty: myocardial FDG uptake is variable). ``VENA_CAVA`` (inferior and
    superior) and ``PSOAS`` (iliopsoas) come only from a user organ map.
    """

    BODY = "body"
    BONE = "bone"
    SPINE = "spine"
    PELVIS = "pelvis"
    KIDNEY_LEFT = "kidney_left"
    KIDNEY_RIGHT = "kidney_right"
    URETERS = "ureters"
    BLADDER = "bladder"
    LIVER = "liver"
    SPLEEN = "spleen"
    AORTA = "aorta"
    HEART = "heart"
    BRAIN = "brain"
    BOWEL = "bowel"
    ILIAC_VESSELS = "iliac_vessels"
    LUNGS = "lungs"
    MYOCARDIUM = "myocardium"
    VENA_CAVA = "vena_cava"
    PSOAS = "psoas"

    @property
    def code(self) -> int:
        """Label value used in :meth:`Anatomy.organ_labelmap` (1-based, declaration order)."""
        return list(AnatomyLabel).index(self) + 1


class Region(str, enum.Enum):
    """Anatomical region of a lesion (rule in :func:`emlesion.anatomy.assign_region`)."""

    RETROPERITONEAL = "retroperitoneal"
    PELVIC = "pelvic"
    OTHER = "other"
    #: No anatomy to decide from (a PET without CT): not "other", which is a decision.
    UNKNOWN = "unknown"


class Side(str, enum.Enum):
    """Side of a lesion relative to the spinal axis (patient's left = +x in LPS)."""

    LEFT = "left"
    RIGHT = "right"
    MIDLINE = "midline"
    #: No spinal axis to decide from (a PET without CT).
    UNKNOWN = "unknown"


def voxel_centres_mm(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LPS coordinates of every voxel centre of ``grid``, as three ``(z, y, x)`` arrays (x, y, z).

    Uses broadcasting-friendly separable axes when the direction matrix is the identity,
    otherwise the full affine.
    """
    nz, ny, nx = grid.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij", sparse=True)
    a = grid.affine
    xs = a[0, 0] * i + a[0, 1] * j + a[0, 2] * k + a[0, 3]
    ys = a[1, 0] * i + a[1, 1] * j + a[1, 2] * k + a[1, 3]
    zs = a[2, 0] * i + a[2, 1] * j + a[2, 2] * k + a[2, 3]
    return xs, ys, zs


@dataclass(frozen=True)
class ReferenceRegionStats:
    """Statistics of an image inside a reference VOI (liver sphere, aortic blood pool).

    Parameters
    ----------
    mean, sd : float
        Mean and sample standard deviation (``ddof=1``) of the voxel values, in ``units``.
    n_voxels : int
        Number of voxels whose centre lies inside the VOI.
    centre_mm : tuple of float
        LPS centre of the VOI (mm).
    radius_mm : float
        Radius of the sphere or cylinder (mm).
    region : str
        ``"liver"`` or ``"blood_pool"``.
    units : str
        Units of the image the statistics were computed on (e.g. ``"SUVbw"``, ``"SULjames"``).
    """

    mean: float
    sd: float
    n_voxels: int
    centre_mm: tuple[float, float, float]
    radius_mm: float
    region: str = "liver"
    units: str = ""

    @property
    def percist_threshold(self) -> float:
        """PERCIST measurability threshold: ``1.5 x mean + 2 x sd`` for the liver,
        ``2.0 x mean + 2 x sd`` for the blood pool (Wahl 2009; PMOD manual)."""
        factor = 1.5 if self.region == "liver" else 2.0
        return factor * self.mean + 2.0 * self.sd

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        d: dict[str, Any] = jsonable(
            {
                "mean": self.mean,
                "sd": self.sd,
                "n_voxels": self.n_voxels,
                "centre_mm": self.centre_mm,
                "radius_mm": self.radius_mm,
                "region": self.region,
                "units": self.units,
            }
        )
        d["percist_threshold"] = jsonable(self.percist_threshold)
        return d


@dataclass(frozen=True)
class ReferenceRegion:
    """A reference VOI: a sphere (liver) or an axial cylinder (aortic blood pool).

    Parameters
    ----------
    name : str
        ``"liver"`` or ``"blood_pool"``.
    centre_mm : tuple of float
        LPS centre (mm).
    radius_mm : float
        Sphere or cylinder radius (mm). PERCIST: 3 cm diameter sphere -> 15 mm; blood pool:
        1 cm diameter cylinder -> 5 mm.
    length_mm : float, optional
        Cylinder length along z (mm); ``None`` for a sphere.
    rule : str
        How the centre was chosen.

    References
    ----------
    .. [1] Wahl RL et al. From RECIST to PERCIST. J Nucl Med 2009;50 Suppl 1:122S-150S.
    .. [2] PMOD PERCIST tool documentation (3 cm liver sphere; 1 cm x 2 cm aortic cylinder).
    """

    name: str
    centre_mm: tuple[float, float, float]
    radius_mm: float
    length_mm: float | None = None
    rule: str = ""

    def mask(self, grid: Grid) -> np.ndarray:
        """Boolean mask of the voxels of ``grid`` whose centre lies inside the VOI."""
        xs, ys, zs = voxel_centres_mm(grid)
        cx, cy, cz = self.centre_mm
        if self.length_mm is None:
            inside = (xs - cx) ** 2 + (ys - cy) ** 2 + (zs - cz) ** 2 <= self.radius_mm**2
        else:
            inside = ((xs - cx) ** 2 + (ys - cy) ** 2 <= self.radius_mm**2) & (
                np.abs(zs - cz) <= self.length_mm / 2.0
            )
        return np.broadcast_to(inside, grid.shape).copy()

    def reference_stats(self, image: Volume) -> ReferenceRegionStats:
        """Mean and SD of ``image`` inside the VOI, on the image's own grid (no interpolation).

        Parameters
        ----------
        image : Volume
            Usually the SUV (or SUL) image; PERCIST strictly needs SUL.

        Returns
        -------
        ReferenceRegionStats

        Raises
        ------
        MaskError
            When no voxel centre of ``image`` lies inside the VOI.
        """
        m = self.mask(image.grid)
        values = np.asarray(image.array, dtype=np.float64)[m]
        if values.size == 0:
            raise MaskError(
                format_message(
                    f"the {self.name} reference VOI (centre "
                    f"{tuple(round(c, 1) for c in self.centre_mm)} mm) contains no voxel "
                    "of the image",
                    series=image.identity.series_instance_uid or None,
                    fix="check that the image and the anatomy share a frame of reference",
                )
            )
        sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
        return ReferenceRegionStats(
            mean=float(values.mean()),
            sd=sd,
            n_voxels=int(values.size),
            centre_mm=self.centre_mm,
            radius_mm=self.radius_mm,
            region=self.name,
            units=image.units,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "name": self.name,
            "shape": "sphere" if self.length_mm is None else "cylinder",
            "centre_mm": jsonable(self.centre_mm),
            "radius_mm": self.radius_mm,
            "length_mm": self.length_mm,
            "rule": self.rule,
        }


def _readonly(mask: np.ndarray) -> np.ndarray:
    arr = np.array(mask, dtype=bool, copy=True)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False, repr=False)
class Anatomy:
    """Organ masks and landmarks of one timepoint, on one working grid.

    Parameters
    ----------
    grid : Grid
        The grid of every mask (the PET grid when a PET was given to
        :func:`~emlesion.anatomy.segment_anatomy`, else a CT-derived grid).
    masks : Mapping[AnatomyLabel, ndarray]
        Boolean masks (read-only), one per structure found. Structures overlap
        (``SPINE`` and ``PELVIS`` are parts of ``BONE``; everything lies in ``BODY``).
    spinal_axis_mm : ndarray
        ``(nz, 2)``: LPS ``(x, y)`` of the spinal canal/vertebral axis for each slice of
        ``grid`` (interpolated between slices where the spine was found; NaN outside).
    vertebral_anterior_y_mm : ndarray
        ``(nz,)``: LPS y of the anterior border of the vertebral body/sacrum per slice (NaN
        where unknown). Smaller y is more anterior.
    iliac_crest_z_mm : float or None
        LPS z (mm) of the top of the iliac crests (supracristal plane, about L4).
    pubic_symphysis_z_mm : float or None
        LPS z (mm) of the top of the pubic symphysis, when the scan covers it.
    pelvic_inlet_z_mm : float or None
        Axial level (mm) taken for the pelvic inlet, see :func:`segment_anatomy` notes.
    liver_reference, blood_pool_reference : ReferenceRegion or None
        PERCIST reference VOIs.
    field_of_view : FieldOfView or None
        The body regions the scan covers (head, thorax, trunk, pelvis).
    provenance : tuple of ProvenanceStep
        How each structure was found.
    organ_sources : Mapping[str, str]
        Where each mask came from, by :class:`AnatomyLabel` value: ``"classical rule"`` or
        ``"organ map <source>"`` (empty when not recorded).
    """

    grid: Grid
    masks: Mapping[AnatomyLabel, np.ndarray] = field(default_factory=dict)
    spinal_axis_mm: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    vertebral_anterior_y_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    iliac_crest_z_mm: float | None = None
    pubic_symphysis_z_mm: float | None = None
    pelvic_inlet_z_mm: float | None = None
    liver_reference: ReferenceRegion | None = None
    blood_pool_reference: ReferenceRegion | None = None
    field_of_view: FieldOfView | None = None
    provenance: tuple[ProvenanceStep, ...] = ()
    organ_sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        masks: dict[AnatomyLabel, np.ndarray] = {}
        for key, value in dict(self.masks).items():
            label = AnatomyLabel(key)
            arr = np.asarray(value)
            if arr.shape != self.grid.shape:
                raise MaskError(
                    format_message(
                        f"{label.value} mask shape {arr.shape} does not match grid "
                        f"{self.grid.shape}"
                    )
                )
            masks[label] = _readonly(arr)
        object.__setattr__(self, "masks", masks)
        nz = self.grid.shape[0]
        axis = np.asarray(self.spinal_axis_mm, dtype=float)
        if axis.size == 0:
            axis = np.full((nz, 2), np.nan)
        ant = np.asarray(self.vertebral_anterior_y_mm, dtype=float)
        if ant.size == 0:
            ant = np.full(nz, np.nan)
        if axis.shape != (nz, 2) or ant.shape != (nz,):
            raise MaskError(format_message("spinal axis arrays must have one entry per slice"))
        for arr in (axis, ant):
            arr.flags.writeable = False
        object.__setattr__(self, "spinal_axis_mm", axis)
        object.__setattr__(self, "vertebral_anterior_y_mm", ant)
        object.__setattr__(self, "provenance", tuple(self.provenance))
        object.__setattr__(self, "organ_sources", dict(self.organ_sources))

    def from_organ_map(self, label: AnatomyLabel | str) -> bool:
        """True when the mask of ``label`` came from a user organ map."""
        return self.organ_sources.get(AnatomyLabel(label).value, "").startswith("organ map")

    # ------------------------------------------------------------------ access
    def has(self, label: AnatomyLabel | str) -> bool:
        """True when a non-empty mask of ``label`` is available."""
        m = self.masks.get(AnatomyLabel(label))
        return m is not None and bool(m.any())

    def mask(self, label: AnatomyLabel | str) -> np.ndarray:
        """Boolean mask of ``label`` on :attr:`grid` (all False when not found)."""
        m = self.masks.get(AnatomyLabel(label))
        return m if m is not None else np.zeros(self.grid.shape, dtype=bool)

    def mask_on(self, label: AnatomyLabel | str, grid: Grid) -> np.ndarray:
        """Mask of ``label`` brought onto ``grid`` by nearest-neighbour resampling."""
        from emlesion.io.geometry import resample_array

        m = self.mask(label).astype(np.uint8)
        out = resample_array(m, self.grid, grid, interpolation="nearest", default_value=0)
        return out.astype(bool)

    @property
    def slice_z_mm(self) -> np.ndarray:
        """LPS z (mm) of each slice centre of :attr:`grid`."""
        nz = self.grid.shape[0]
        pts = self.grid.index_to_lps(np.column_stack([np.arange(nz), np.zeros(nz), np.zeros(nz)]))
        return np.asarray(pts)[:, 2]

    def midline_mm(self, z_mm: float) -> tuple[float, float] | None:
        """Spinal axis ``(x, y)`` in LPS mm at height ``z_mm`` (nearest known slice beyond the
        spine's extent; ``None`` when no spine was found)."""
        axis = self.spinal_axis_mm
        ok = np.isfinite(axis[:, 0])
        if not ok.any():
            return None
        zs = self.slice_z_mm[ok]
        order = np.argsort(zs)
        zs, xs, ys = zs[order], axis[ok, 0][order], axis[ok, 1][order]
        return float(np.interp(z_mm, zs, xs)), float(np.interp(z_mm, zs, ys))

    def vertebral_anterior_mm(self, z_mm: float) -> float | None:
        """LPS y (mm) of the anterior vertebral border at ``z_mm`` (nearest known slice beyond
        the spine's extent; ``None`` when unknown)."""
        ant = self.vertebral_anterior_y_mm
        ok = np.isfinite(ant)
        if not ok.any():
            return None
        zs = self.slice_z_mm[ok]
        order = np.argsort(zs)
        return float(np.interp(z_mm, zs[order], ant[ok][order]))

    def organ_labelmap(self) -> LabelMap:
        """All organ masks in one :class:`LabelMap` (value :attr:`AnatomyLabel.code`).

        Later, more specific structures overwrite earlier ones in this order: body, bone,
        pelvis, spine, then soft-tissue organs.
        """
        arr = np.zeros(self.grid.shape, dtype=np.uint16)
        names: dict[int, str] = {}
        for label in AnatomyLabel:
            if label in self.masks and self.masks[label].any():
                arr[self.masks[label]] = label.code
                names[label.code] = label.value
        return LabelMap(arr, self.grid, names, source="emlesion.anatomy",
                        provenance=self.provenance)

    # ------------------------------------------------------------------ display
    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: organ volumes (mL), landmarks, reference VOIs, provenance."""
        vox_ml = self.grid.voxel_volume_ml
        return {
            "grid": {"shape": list(self.grid.shape), "origin_mm": list(self.grid.origin_mm),
                     "spacing_mm": list(self.grid.spacing_mm)},
            "organs_volume_ml": {k.value: float(v.sum() * vox_ml) for k, v in self.masks.items()},
            "iliac_crest_z_mm": self.iliac_crest_z_mm,
            "pubic_symphysis_z_mm": self.pubic_symphysis_z_mm,
            "pelvic_inlet_z_mm": self.pelvic_inlet_z_mm,
            "liver_reference": self.liver_reference.to_dict() if self.liver_reference else None,
            "blood_pool_reference": (
                self.blood_pool_reference.to_dict() if self.blood_pool_reference else None
            ),
            "field_of_view": self.field_of_view.to_dict() if self.field_of_view else None,
            "organ_sources": dict(self.organ_sources),
            "provenance": [p.to_dict() for p in self.provenance],
        }

    def __repr__(self) -> str:
        vox_ml = self.grid.voxel_volume_ml
        organs = ", ".join(f"{k.value}={v.sum() * vox_ml:.0f}mL" for k, v in self.masks.items())

        def z(v: float | None) -> str:
            return "?" if v is None or not math.isfinite(v) else f"{v:.0f}"

        return (
            f"Anatomy({organs}; iliac_crest_z_mm={z(self.iliac_crest_z_mm)}, "
            f"pelvic_inlet_z_mm={z(self.pelvic_inlet_z_mm)}, "
            f"liver_ref={'yes' if self.liver_reference else 'no'}, shape={self.grid.shape})"
        )
