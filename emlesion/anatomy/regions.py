"""Region (retroperitoneal / pelvic / other) and side (left / right / midline) of a lesion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from emlesion.anatomy.model import Anatomy, AnatomyLabel, Region, Side, voxel_centres_mm
from emlesion.errors import MaskError, format_message
from emlesion.io.geometry import Grid
from emlesion.provenance import jsonable

__all__ = [
    "MIDLINE_HALF_WIDTH_MM",
    "RETROPERITONEAL_ANTERIOR_MARGIN_MM",
    "RegionAssignment",
    "assign_region",
]

#: A lesion whose centroid lies within this distance of the spinal axis (x) is ``midline``.
MIDLINE_HALF_WIDTH_MM = 15.0
#: A lesion with more than this fraction of its voxels on each side of the axis is ``midline``.
MIDLINE_STRADDLE_FRACTION = 0.25
#: The retroperitoneal compartment extends this far anterior of the vertebral bodies.
RETROPERITONEAL_ANTERIOR_MARGIN_MM = 60.0
#: Margin (mm) around the bony-pelvis bounding box within which a lesion is ``pelvic``.
PELVIS_BOX_MARGIN_MM = 10.0
#: Organ-map structures that lie behind the posterior parietal peritoneum [G41]: where
#: they reach further forward than the vertebral-border plane, the retroperitoneum
#: extends to their anterior surface (Standring S, Gray's Anatomy 41st ed. 2016).
RETROPERITONEAL_ORGANS = (AnatomyLabel.KIDNEY_LEFT, AnatomyLabel.KIDNEY_RIGHT,
                          AnatomyLabel.PSOAS, AnatomyLabel.AORTA, AnatomyLabel.VENA_CAVA,
                          AnatomyLabel.ILIAC_VESSELS)


@dataclass(frozen=True)
class RegionAssignment:
    """Region and side of one lesion, with the numbers the rule used.

    Parameters
    ----------
    region : Region
    side : Side
    centroid_mm : tuple of float
        LPS centroid (mm) of the lesion mask.
    dx_mm : float
        Centroid x minus the spinal-axis x at the centroid's level (+ = patient left).
    fraction_left : float
        Fraction of the lesion voxels left (+x) of the axis.
    rule : str
        The branch of the rule that fired.
    """

    region: Region
    side: Side
    centroid_mm: tuple[float, float, float]
    dx_mm: float
    fraction_left: float
    rule: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "region": self.region.value,
            "side": self.side.value,
            "centroid_mm": jsonable(self.centroid_mm),
            "dx_mm": jsonable(self.dx_mm),
            "fraction_left": jsonable(self.fraction_left),
            "rule": self.rule,
        }


def _pelvis_box(anatomy: Anatomy) -> tuple[np.ndarray, np.ndarray] | None:
    """LPS (min, max) corners of the bony pelvis (bone at or below the iliac crests)."""
    pelvis = anatomy.mask(AnatomyLabel.PELVIS)
    if not pelvis.any():
        return None
    idx = np.argwhere(pelvis)
    pts = anatomy.grid.index_to_lps(idx.astype(float))
    return pts.min(axis=0), pts.max(axis=0)


def _organ_front_y(anatomy: Anatomy, z_mm: float) -> tuple[float, list[str]] | None:
    """Most anterior LPS y (mm) of the organ-map retroperitoneal organs on the slice at
    ``z_mm`` (``None`` when the map supplies none of them there)."""
    if not any(anatomy.from_organ_map(lab) for lab in RETROPERITONEAL_ORGANS):
        return None
    g = anatomy.grid
    k = round(float(g.lps_to_index((0.0, 0.0, z_mm))[0])) if \
        abs(g.direction_matrix[2, 2]) > 0.99 else None
    if k is None or not 0 <= k < g.shape[0]:
        return None
    sl = np.zeros(g.shape[1:], bool)
    used = []
    for lab in RETROPERITONEAL_ORGANS:
        if anatomy.from_organ_map(lab) and anatomy.mask(lab)[k].any():
            sl |= anatomy.mask(lab)[k]
            used.append(lab.value)
    if not sl.any():
        return None
    jj, ii = np.nonzero(sl)
    pts = g.index_to_lps(np.column_stack([np.full(jj.size, float(k)), jj, ii]).astype(float))
    return float(pts[:, 1].min()), used


def assign_region(mask: np.ndarray, grid: Grid, anatomy: Anatomy) -> RegionAssignment:
    """Region and side of a lesion mask by a fixed, documented rule.

    Parameters
    ----------
    mask : ndarray of bool
        The lesion, ``(z, y, x)`` on ``grid`` (any grid in the anatomy's frame of reference).
    grid : Grid
        Grid of ``mask``.
    anatomy : Anatomy
        Landmarks from :func:`~emlesion.anatomy.segment_anatomy`.

    Returns
    -------
    RegionAssignment

    Notes
    -----
    With ``c`` the lesion centroid (LPS), ``a(z)`` the spinal axis and ``v(z)`` the anterior
    vertebral border at the centroid's level:

    * **pelvic**: ``c_z`` at or below the **pelvic inlet** level
      (:attr:`Anatomy.pelvic_inlet_z_mm`, the arcuate-line level on the side walls) and
      ``c`` inside the bounding box of the bony pelvis enlarged by 10 mm in x and y.
    * **retroperitoneal**: ``c_z`` above the pelvic inlet level and ``c_y`` posterior to
      the coronal plane 60 mm anterior of the vertebral body/sacrum
      (``c_y >= v(z) - 60 mm``; the aorta, IVC, iliac vessels, para-aortic and common
      iliac nodes, kidneys and psoas lie behind it).
    * **other**: everything else (anterior abdomen, outside the bony pelvis, or landmarks
      missing). Without a pelvic inlet level the iliac-crest level is used.

    With an organ map (:attr:`Anatomy.organ_sources`) that supplies kidneys, psoas, aorta,
    vena cava or iliac vessels, the retroperitoneum also extends forward to the most
    anterior of those structures on the centroid's slice (the posterior parietal peritoneum
    lies on them: behind the peritoneum are the kidneys, psoas and great vessels): a
    centroid behind that surface is **retroperitoneal** even when it is more than 60 mm in
    front of the vertebra. The pelvic
    inlet level then comes from the map's hip bones and sacrum.

    Side: ``|c_x - a_x(z)| < 15 mm``, or more than 25 % of the voxels on each side of the
    axis, gives **midline**; otherwise **left** when ``c_x > a_x`` (LPS +x is the patient's
    left) else **right**.
    """
    m = np.asarray(mask, dtype=bool)
    if m.shape != grid.shape:
        raise MaskError(format_message(f"mask shape {m.shape} does not match grid {grid.shape}"))
    if not m.any():
        raise MaskError(format_message("cannot assign a region to an empty lesion mask"))
    idx = np.argwhere(m).astype(float)
    pts = grid.index_to_lps(idx)
    c = pts.mean(axis=0)
    centroid = (float(c[0]), float(c[1]), float(c[2]))
    mid = anatomy.midline_mm(centroid[2])
    if mid is None:
        xs, _, _ = voxel_centres_mm(anatomy.grid)
        body = anatomy.mask(AnatomyLabel.BODY)
        ax_x = float(np.broadcast_to(xs, anatomy.grid.shape)[body].mean()) if body.any() else 0.0
        ax_y = float("nan")
    else:
        ax_x, ax_y = mid
    # side -----------------------------------------------------------------
    # per-voxel axis x at each voxel's own level
    if mid is not None:
        vox_axis = np.array([anatomy.midline_mm(float(z))[0] for z in np.unique(pts[:, 2])])  # type: ignore[index]
        z_unique = np.unique(pts[:, 2])
        axis_per_voxel = vox_axis[np.searchsorted(z_unique, pts[:, 2])]
    else:
        axis_per_voxel = np.full(pts.shape[0], ax_x)
    frac_left = float(np.mean(pts[:, 0] > axis_per_voxel))
    dx = centroid[0] - ax_x
    if abs(dx) < MIDLINE_HALF_WIDTH_MM:
        side, side_rule = Side.MIDLINE, f"|dx|={abs(dx):.1f} mm < {MIDLINE_HALF_WIDTH_MM:g} mm"
    elif min(frac_left, 1.0 - frac_left) > MIDLINE_STRADDLE_FRACTION:
        side, side_rule = Side.MIDLINE, (f"straddles the axis ({frac_left:.0%} left, "
                                         f"{1 - frac_left:.0%} right)")
    else:
        side = Side.LEFT if dx > 0 else Side.RIGHT
        side_rule = f"dx={dx:+.1f} mm (LPS +x = patient left)"
    # region ---------------------------------------------------------------
    crest = anatomy.pelvic_inlet_z_mm
    level_name = "pelvic inlet"
    if crest is None:
        crest, level_name = anatomy.iliac_crest_z_mm, "iliac crest"
    box = _pelvis_box(anatomy)
    if crest is None:
        region, reg_rule = Region.OTHER, "iliac crests not found"
    elif centroid[2] <= crest:
        inside = box is not None and all(
            box[0][i] - PELVIS_BOX_MARGIN_MM <= centroid[i] <= box[1][i] + PELVIS_BOX_MARGIN_MM
            for i in (0, 1)
        )
        if inside:
            region, reg_rule = Region.PELVIC, (f"centroid z {centroid[2]:.0f} <= {level_name} "
                                               f"{crest:.0f} mm, inside the bony pelvis box")
        else:
            region, reg_rule = Region.OTHER, f"below the {level_name} but outside the bony pelvis"
    else:
        ant = anatomy.vertebral_anterior_mm(centroid[2])
        if ant is None:
            ant = ax_y - 20.0 if np.isfinite(ax_y) else None
        front = _organ_front_y(anatomy, centroid[2])
        if ant is not None and centroid[1] >= ant - RETROPERITONEAL_ANTERIOR_MARGIN_MM:
            region, reg_rule = Region.RETROPERITONEAL, (
                f"centroid z {centroid[2]:.0f} > {level_name} {crest:.0f} mm and y "
                f"{centroid[1]:.0f} >= anterior vertebral border {ant:.0f} - "
                f"{RETROPERITONEAL_ANTERIOR_MARGIN_MM:g} mm")
        elif front is not None and centroid[1] >= front[0]:
            region, reg_rule = Region.RETROPERITONEAL, (
                f"centroid z {centroid[2]:.0f} > {level_name} {crest:.0f} mm and y "
                f"{centroid[1]:.0f} >= anterior surface {front[0]:.0f} mm of "
                f"{', '.join(front[1])} (organ map) on its slice")
        else:
            region, reg_rule = Region.OTHER, (f"above the {level_name} but anterior to the "
                                              "retroperitoneum")
    return RegionAssignment(region, side, centroid, float(dx), frac_left,
                            f"{reg_rule}; side: {side_rule}")
