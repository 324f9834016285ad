"""Targeted lesion searches at follow-up: where an earlier lesion was, not the whole scan.

:func:`segment_lesions` on the whole scan finds what its seed threshold finds. Two follow-up
situations need a search restricted to the place of an earlier lesion:

* **Residual search** (:func:`search_residual`). A tracked lesion that the whole-scan search
  no longer finds is looked for again inside its former footprint, dilated by a margin for
  the registration uncertainty, seeding at a fixed SUVbw (2.5 by default) instead of the
  liver threshold: the liver threshold decides *measurability at baseline*, while at
  follow-up PERCIST follows residual uptake whatever its level [1]_.
* **Search near earlier lesions** (:func:`segment_near_lesions`). Without a CT there is no
  anatomy to exclude physiological uptake (bladder, kidneys, ureters, heart, bowel), so a
  whole-scan search would report them as lesions; the follow-up is then searched only at the
  earlier lesions, keeping per earlier lesion the one containing, or nearest to, its
  centroid.

Both return label maps on the SUV grid that the caller measures and tracks like any other.
Mapping a footprint from an earlier timepoint's grid onto this one is tracking's job
(:func:`emlesion.track.map_mask`): these functions take masks and label maps already in the
scanner space of the follow-up.

References
----------
.. [1] Wahl RL et al. From RECIST to PERCIST. J Nucl Med 2009;50 Suppl 1:122S-150S.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from emlesion.anatomy import Anatomy, ReferenceRegionStats
from emlesion.anatomy.fov import padded_box
from emlesion.errors import InvalidParameterError, format_message
from emlesion.io.geometry import ball_structure
from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import Volume
from emlesion.provenance import ProvenanceStep, record_warnings
from emlesion.segment.lesions import (
    DEFAULT_EXCLUDE,
    Lesion,
    Method,
    PriorMask,
    Seed,
    segment_lesions,
)

__all__ = [
    "RESIDUAL_SEED",
    "ResidualFinding",
    "ResidualSearch",
    "search_residual",
    "segment_near_lesions",
]

#: Seed rule of the residual search (fixed SUVbw >= 2.5 inside the former footprint). Not
#: checkable on the real data (no real follow-up; benchmarks/audit_segment_real.py).
RESIDUAL_SEED = Method.SUV_2_5
#: Operation name of the residual search's provenance step.
RESIDUAL_OPERATION = "emlesion.segment.search_residual"


@dataclass(frozen=True)
class ResidualFinding:
    """One lesion added by :func:`search_residual`.

    Attributes
    ----------
    key : str
        The footprint's key (e.g. the track id of the lesion looked for).
    label : int
        Its label in :attr:`ResidualSearch.labels`.
    lesion : Lesion
        The lesion as :func:`segment_lesions` found it (its own label numbering).
    volume_ml : float
        Volume of the part added: the lesion minus the voxels already labelled.
    regrowth : tuple of dict or None
        On the first lesion added for a footprint by a percent-of-max method, the regrowth
        records of that search (:attr:`SegmentationResult.regrowth`); ``None`` otherwise.
    """

    key: str
    label: int
    lesion: Lesion
    volume_ml: float
    regrowth: tuple[dict[str, Any], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (the ``added`` entries of the provenance step)."""
        out: dict[str, Any] = {
            "track": self.key, "label": self.label, "name": self.lesion.name,
            "volume_ml": self.volume_ml, "suv_max": self.lesion.suv_max,
            "threshold_rule": self.lesion.threshold_rule.value}
        if self.regrowth is not None:
            out["segmentation"] = list(self.regrowth)
        return out


@dataclass(frozen=True, eq=False)
class ResidualSearch:
    """Result of :func:`search_residual`.

    Attributes
    ----------
    labels : LabelMap
        The input lesions plus the lesions found (new labels after the existing ones, names
        from :func:`segment_lesions`); its provenance ends with the search's step when
        something was added, and is the input's otherwise.
    added : tuple of ResidualFinding
        The lesions added, in the order of the footprints.
    step : ProvenanceStep or None
        The search's record (``None`` when nothing was added).
    """

    labels: LabelMap
    added: tuple[ResidualFinding, ...]
    step: ProvenanceStep | None


def search_residual(
    suv: Volume,
    lesions: LabelMap,
    footprints: Mapping[str, np.ndarray],
    *,
    margin_mm: float,
    method: Method | str = Method.PERCENT_41,
    seed_method: Method | str = RESIDUAL_SEED,
    anatomy: Anatomy | None = None,
    ct: Volume | None = None,
    liver_reference: ReferenceRegionStats | None = None,
    blood_pool_reference: ReferenceRegionStats | None = None,
    exclude: Sequence[str] | None = None,
) -> ResidualSearch:
    """Look again for lesions inside former lesion footprints, at a lower seed threshold.

    For each footprint (a boolean mask on the SUV grid, e.g. a lost track's last lesion mask
    mapped onto this timepoint), :func:`segment_lesions` runs inside the footprint dilated by
    ``margin_mm``, seeded by ``seed_method``; the voxels of each lesion found that are not
    labelled yet become a new label.

    Parameters
    ----------
    suv : Volume
        SUVbw image of the follow-up.
    lesions : LabelMap
        The lesions already found on ``suv``'s grid (kept unchanged).
    footprints : mapping of str to ndarray of bool
        Key (e.g. track id) -> footprint on ``suv.grid``, searched in this order.
    margin_mm : float
        Dilation of each footprint (registration uncertainty), >= 0.
    method : Method or str
        Segmentation method (default 41 % of SUVmax).
    seed_method : Method or str
        Seed rule (default :data:`RESIDUAL_SEED`, SUVbw >= 2.5).
    anatomy, ct : optional
        As for :func:`segment_lesions` (physiological exclusions, CT soft-tissue boundary).
    liver_reference, blood_pool_reference : ReferenceRegionStats, optional
        Reference statistics already computed on ``suv`` (else computed from ``anatomy``).
    exclude : sequence of str, optional
        Anatomy labels removed before segmentation (default
        :data:`~emlesion.segment.DEFAULT_EXCLUDE`; a study with a user organ map adds the
        great vessels it supplies).

    Returns
    -------
    ResidualSearch

    Raises
    ------
    InvalidParameterError
        A negative margin, a footprint or label map not on ``suv``'s grid.

    References
    ----------
    .. [1] Wahl RL et al. From RECIST to PERCIST. J Nucl Med 2009;50 Suppl 1:122S-150S.

    Examples
    --------
    >>> found = search_residual(suv, labels, {"T2": footprint}, margin_mm=15.0)  # doctest: +SKIP
    >>> [(f.key, f.label, f.lesion.threshold_rule.value) for f in found.added]  # doctest: +SKIP
    [('T2', 3, 'blood-pool floor')]
    """
    if margin_mm < 0:
        raise InvalidParameterError(format_message(
            f"margin_mm must be >= 0, got {margin_mm}", fix="pass a margin in mm"))
    grid = suv.grid
    if lesions.array.shape != grid.shape:
        raise InvalidParameterError(format_message(
            f"lesion labels of shape {lesions.array.shape} are not on the SUV grid "
            f"{grid.shape}", series=suv.identity.series_instance_uid or None,
            fix="resample the labels onto the SUV grid"))
    arr = np.array(lesions.array, dtype=np.uint16)
    names = dict(lesions.names)
    added: list[ResidualFinding] = []
    method = Method(method)
    seed = Method(seed_method)
    ball = ball_structure(margin_mm, grid.spacing_mm)
    with record_warnings() as rec:
        for key, footprint in footprints.items():
            fp = np.asarray(footprint, bool)
            if fp.shape != grid.shape:
                raise InvalidParameterError(format_message(
                    f"footprint {key!r} has shape {fp.shape}, not the SUV grid {grid.shape}",
                    fix="map the footprint onto the SUV grid (emlesion.track.map_mask)"))
            if not fp.any():
                continue
            region = _dilate_in_box(fp, ball) if margin_mm > 0 else fp
            seg = segment_lesions(suv, method=method, anatomy=anatomy, ct=ct,
                                  region=PriorMask(region, grid), seed_method=seed,
                                  liver_reference=liver_reference,
                                  blood_pool_reference=blood_pool_reference,
                                  exclude=DEFAULT_EXCLUDE if exclude is None else tuple(exclude))
            first = True
            seg_arr = np.asarray(seg.labels.array)
            for les in seg.lesions:
                m = (seg_arr == les.label) & (arr == 0)
                if not m.any():
                    continue
                new = int(arr.max()) + 1
                arr[m] = new
                names[new] = les.name
                added.append(ResidualFinding(
                    key, new, les, float(m.sum() * suv.voxel_volume_ml),
                    seg.regrowth if first and method.is_relative else None))
                first = False
    if not added:
        return ResidualSearch(lesions, (), None)
    step = ProvenanceStep(
        RESIDUAL_OPERATION,
        rule=f"former lesion footprint, dilated {margin_mm:g} mm; "
             f"segment_lesions({method.value}, seeds {seed.value}) inside it",
        inputs={"added": [f.to_dict() for f in added]}, warnings=rec.as_tuple())
    labels = LabelMap(arr, lesions.grid, names, lesions.source, (*lesions.provenance, step))
    return ResidualSearch(labels, tuple(added), step)


def segment_near_lesions(
    suv: Volume,
    prior: LabelMap,
    *,
    radius_mm: float,
    method: Method | str = Method.PERCENT_41,
    anatomy: Anatomy | None = None,
) -> LabelMap:
    """Per earlier lesion, the follow-up lesion containing or nearest to its centroid.

    The search used without CT: each lesion of ``prior`` gives a seed at its centroid in
    scanner (LPS) coordinates, and :func:`segment_lesions` keeps the lesion containing it,
    or the nearest one within ``radius_mm``. New lesions elsewhere are not detected.

    Parameters
    ----------
    suv : Volume
        SUVbw image of the follow-up.
    prior : LabelMap
        Earlier lesions, on any grid in the same frame of reference.
    radius_mm : float
        Largest distance (mm) from the centroid to the lesion kept.
    method : Method or str
        Segmentation method (default 41 % of SUVmax).
    anatomy : Anatomy, optional
        Usually the PET-only anatomy (brain excluded), or ``None``.

    Returns
    -------
    LabelMap
        On ``suv.grid``, one label per lesion found, named ``"near <earlier name>"``; the
        provenance holds the steps of every search.

    Notes
    -----
    Without CT the kidneys, ureters and bladder are not excluded, so a percent-of-max VOI
    keeps its fixed margin (``voi_max_iterations=0``): an enlarged VOI could follow a
    contour into them.

    Examples
    --------
    >>> near = segment_near_lesions(suv, baseline_labels, radius_mm=20.0)  # doctest: +SKIP
    >>> sorted(near.names.values())  # doctest: +SKIP
    ['near pelvic left 1', 'near retroperitoneal right 1']
    """
    arr = np.zeros(suv.shape, np.uint16)
    names: dict[int, str] = {}
    steps: list[ProvenanceStep] = []
    prior_arr = np.asarray(prior.array)
    for lab in prior.labels:
        centroid = prior.grid.index_to_lps(np.argwhere(prior_arr == lab).astype(float)).mean(0)
        point = (float(centroid[0]), float(centroid[1]), float(centroid[2]))
        seg = segment_lesions(suv, method=method, anatomy=anatomy, region=Seed(point, radius_mm),
                              voi_max_iterations=0)
        steps.extend(seg.provenance)
        seg_arr = np.asarray(seg.labels.array)
        for les in seg.lesions:
            m = (seg_arr == les.label) & (arr == 0)
            if m.any():
                new = int(arr.max()) + 1
                arr[m] = new
                names[new] = f"near {prior.name(lab)}"
    return LabelMap(arr, suv.grid, names, "emlesion.segment (no CT, near baseline lesions)",
                    tuple(steps))


def _dilate_in_box(mask: np.ndarray, ball: np.ndarray) -> np.ndarray:
    """``ndi.binary_dilation(mask, ball)``, computed in the mask's bounding box grown by the
    ball's half-size + 1 voxel (:func:`emlesion.anatomy.fov.padded_box`), where the
    whole-volume result lies (issue 18: no whole-volume dilation per footprint)."""
    box = padded_box(mask, tuple(int(n) // 2 + 1 for n in ball.shape))
    assert box is not None  # called for a non-empty footprint only
    out = np.zeros(mask.shape, bool)
    out[box] = ndi.binary_dilation(mask[box], structure=ball)
    return out
