"""Read every tracked lesion's site at every timepoint, on PET and on CT.

The composition of :func:`emlesion.track.build_track_sites` (where),
:func:`emlesion.segment.delineate_ct_mass` and :mod:`emlesion.measure.site` (what is
there) and :func:`emlesion.response.classify_site` (what it means). :func:`read_sites` is
called by :func:`emlesion.study.load_study`; its result is :attr:`Study.sites`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from emlesion.anatomy import Anatomy, AnatomyLabel
from emlesion.errors import ResponseWarning, format_message, warn_external
from emlesion.measure import CtSiteReadout, PetSiteReadout, measure_ct_site, measure_pet_site
from emlesion.provenance import ProvenanceStep, record_warnings
from emlesion.response.lugano import DeauvilleReferences
from emlesion.response.sites import (
    DEFAULT_RESIDUAL_UPTAKE_MIN_SCORE,
    SiteReading,
    classify_site,
)
from emlesion.segment import DEFAULT_EXCLUDE, CTMassRule, delineate_ct_mass, exclusion_labels
from emlesion.study.model import Timepoint
from emlesion.track import TrackingResult, TrackState
from emlesion.track.sites import SITE_MARGIN_MM, SiteContext, TrackSite, build_track_sites

__all__ = ["read_sites"]

def _context(tp: Timepoint) -> SiteContext:
    anatomy: Anatomy | None = tp.anatomy
    if anatomy is None:
        return SiteContext(tp.label, tp.lesions)
    grid = tp.lesions.grid
    same = anatomy.grid.same_as(grid)

    def mask(label: AnatomyLabel) -> np.ndarray:
        return anatomy.mask(label) if same else anatomy.mask_on(label, grid)

    body = mask(AnatomyLabel.BODY) if anatomy.has(AnatomyLabel.BODY) else None
    exclude = np.zeros(grid.shape, bool)
    # the organs that lesion segmentation excludes (its default list), nothing else
    for labels in exclusion_labels(DEFAULT_EXCLUDE).values():
        for label in labels:
            if anatomy.has(label):
                exclude |= mask(label)
    return SiteContext(tp.label, tp.lesions, body, exclude)


def _lesion_readout(tp: Timepoint, labels: tuple[int, ...]) -> PetSiteReadout | None:
    """The PET readout of a segmented lesion, from the measurements it already has.

    Over the union of a track's fragments, SUVmax and the global peaks are the largest of the
    fragments' (the IBSI global peak is a maximum over the mask's voxels), and the VOI is
    the sum of their volumes; nothing is measured again. When the table has no global peak
    (measured without it), the union is measured.
    """
    rows = [tp.measurement(lab) for lab in labels]
    if any(m.suv_peak_global is None for m in rows):
        own = np.isin(np.asarray(tp.lesions.array), labels)
        return measure_pet_site(tp.suv, own, sul=tp.sul, voi_name="lesion")
    best = max(rows, key=lambda m: float(m.suv_peak_global or 0.0))
    centre = (0, 0, 0)
    if best.suv_peak_global_centre_mm is not None:
        idx = np.rint(tp.suv.grid.lps_to_index(np.asarray(best.suv_peak_global_centre_mm)))
        centre = (int(idx[0]), int(idx[1]), int(idx[2]))
    sul_peaks = [m.sul_peak for m in rows if m.sul_peak is not None]
    sul_maxes = [m.sul_max for m in rows if m.sul_max is not None]
    return PetSiteReadout(
        suv_max=max(m.suv_max for m in rows), suv_peak=float(best.suv_peak_global or 0.0),
        sul_peak=max(sul_peaks) if sul_peaks else None,
        sul_max=max(sul_maxes) if sul_maxes else None,
        voi_ml=sum(m.mtv_ml for m in rows), n_voxels=sum(m.n_voxels for m in rows),
        voi="lesion", peak_centre_index=centre)


def _read_one(tp: Timepoint, site: TrackSite, labels: tuple[int, ...], state: TrackState,
              new: bool, refs: DeauvilleReferences, min_score: int,
              ct_rule: CTMassRule) -> SiteReading:
    segmented = state.detected
    own = np.isin(np.asarray(tp.lesions.array), labels) if labels else \
        np.zeros(tp.lesions.grid.shape, bool)
    pet: PetSiteReadout | None = None
    ct: CtSiteReadout | None = None
    if site.evaluable:
        if segmented:
            pet = _lesion_readout(tp, labels)
        else:
            voi = site.footprint & site.mask
            pet = measure_pet_site(tp.suv, voi if voi.any() else site.mask, sul=tp.sul,
                                   voi_name="footprint")
        if tp.ct is not None:
            mass = delineate_ct_mass(tp.ct, tp.lesions.grid, own if segmented else site.mask,
                                     own if segmented else site.footprint,
                                     pet_lesion=segmented, rule=ct_rule)
            if mass.grid is not None:
                ct = measure_ct_site(mass)
            else:  # the CT does not cover the site
                ct = CtSiteReadout(False, 0.0, 0.0, 0.0, 0.0, None, 0, mass.method, mass.reason)
    blood = tp.blood_pool.to_uptake() if tp.blood_pool is not None else None
    liver = tp.liver.to_uptake() if tp.liver is not None else None
    return classify_site(
        site.track_id, tp.label, segmented=segmented, new=new,
        merged=state is TrackState.MERGED, pet=pet, ct=ct, blood_pool=blood, liver=liver,
        evaluable=site.evaluable, reliable=site.reliable, site_reason=site.reason,
        references=refs, residual_uptake_min_score=min_score, site=site.to_dict())


def read_sites(
    timepoints: Sequence[Timepoint],
    tracking: TrackingResult | None,
    *,
    margin_mm: float = SITE_MARGIN_MM,
    references: DeauvilleReferences | None = None,
    residual_uptake_min_score: int = DEFAULT_RESIDUAL_UPTAKE_MIN_SCORE,
    ct_rule: CTMassRule | None = None,
) -> tuple[dict[str, dict[str, SiteReading]], ProvenanceStep]:
    """PET and CT readouts of every track's site at every timepoint from its first appearance.

    Parameters
    ----------
    timepoints : sequence of Timepoint
        The study's timepoints, in order.
    tracking : TrackingResult or None
        The tracks (``None`` for a single timepoint: each lesion is its own track ``T<label>``).
    margin_mm : float
        Site margin (registration uncertainty), see :data:`emlesion.track.SITE_MARGIN_MM`.
    references : DeauvilleReferences, optional
        Deauville quantification (lesion statistic, reference statistics, "markedly" factor).
    residual_uptake_min_score : int
        Lowest Deauville score read as residual uptake where nothing was segmented.
    ct_rule : CTMassRule, optional
        Parameters of the CT delineation.

    Returns
    -------
    sites : dict
        ``{track_id: {timepoint_label: SiteReading}}``.
    step : ProvenanceStep
        ``emlesion.study.sites``: parameters, counts per state, and the warnings (a site
        mapped through a failed registration is reported but flagged unreliable and not used
        by the response criteria, with a :class:`~emlesion.errors.ResponseWarning`).
    """
    refs = references or DeauvilleReferences()
    rule = ct_rule or CTMassRule()
    out: dict[str, dict[str, SiteReading]] = {}
    with record_warnings() as rec:
        if tracking is None:
            tp = timepoints[0]
            arr = np.asarray(tp.lesions.array)
            for lab in tp.measurements.labels:
                own = arr == lab
                site = TrackSite(f"T{int(lab)}", tp.label, own, own, tp.lesions.grid, (), 0.0,
                                 1.0, True, True, "the lesion's own mask (single timepoint)")
                out[site.track_id] = {tp.label: _read_one(
                    tp, site, (int(lab),), TrackState.PRESENT, False, refs,
                    residual_uptake_min_score, rule)}
        else:
            sites = build_track_sites([_context(tp) for tp in timepoints], tracking,
                                      margin_mm=margin_mm)
            by_label = {tp.label: tp for tp in timepoints}
            for track in tracking.tracks:
                readings: dict[str, SiteReading] = {}
                for label, site in sites.get(track.id, {}).items():
                    point = track.point(label)
                    readings[label] = _read_one(
                        by_label[label], site, point.labels, point.state,
                        point.state is TrackState.NEW, refs, residual_uptake_min_score, rule)
                    if not site.reliable:
                        warn_external(format_message(
                            f"site readouts of track {track.id} at {label} are unreliable: "
                            f"{site.reason}; they are reported but not used by the response "
                            "criteria",
                            fix="check the CT registration overlay (emlesion.track."
                                "resample_volume) or supply masks for this timepoint"),
                            ResponseWarning)
                out[track.id] = readings
    counts: dict[str, int] = {}
    for readings in out.values():
        for r in readings.values():
            counts[r.state.value] = counts.get(r.state.value, 0) + 1
    inputs: dict[str, Any] = {
        "margin_mm": margin_mm, "deauville": refs.to_dict(),
        "residual_uptake_min_score": residual_uptake_min_score,
        "ct_rule": rule.describe(), "states": counts}
    step = ProvenanceStep(
        "emlesion.study.sites",
        rule=(f"every track read at every timepoint from its first appearance: PET in the "
              f"lesion (segmented) or the former lesion's mapped footprint; CT mass at the site "
              f"(margin {margin_mm:g} mm); Deauville {refs.lesion_metric.value} vs blood-pool "
              f"{refs.mediastinum_statistic} and liver {refs.liver_statistic}, residual uptake "
              f"from Deauville {residual_uptake_min_score}"),
        inputs=inputs, warnings=rec.as_tuple())
    return out, step
