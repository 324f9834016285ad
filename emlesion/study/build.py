"""Builders: one PET/CT folder -> :class:`Timepoint`; several -> :class:`Study`.

The pipeline of one timepoint is ``load_pet``/``load_ct`` -> ``compute_suv`` (SUVbw and SUL)
-> ``segment_anatomy`` (from the CT; without CT its PET-only fallback, used for the brain) ->
liver and blood-pool reference statistics -> ``segment_lesions`` or ``load_mask`` ->
``measure_lesions``. A study then tracks the lesions
(``track_lesions``), optionally looks again for residual disease where a tracked lesion was
not found (see :func:`load_study`), and checks that the timepoints belong together.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from emlesion.anatomy import (
    Anatomy,
    AnatomyLabel,
    AnatomyWarning,
    RegionAssignment,
    assign_region,
    organ_target,
    segment_anatomy,
)
from emlesion.errors import (
    EmlesionError,
    InconsistentStudyError,
    InvalidParameterError,
    SeriesNotFoundError,
    format_message,
    warn_external,
)
from emlesion.io import (
    LabelMap,
    PetDeclaration,
    SeriesInfo,
    SeriesRole,
    Volume,
    discover,
    load_ct,
    load_pet,
)
from emlesion.io.nifti_image import is_nifti_path, pet_declaration_of
from emlesion.io.organs import ORGANS_AUTO, load_organ_map, run_totalsegmentator
from emlesion.measure import LesionTable, check_same_frame_of_reference, measure_lesions
from emlesion.parallel import Deferred, submit, usable_cores
from emlesion.provenance import ProvenanceStep, jsonable, record_warnings
from emlesion.response.sites import SiteReading
from emlesion.segment import (
    DEFAULT_EXCLUDE,
    RESIDUAL_SEED,
    Method,
    ThresholdRule,
    search_residual,
    segment_lesions,
    segment_near_lesions,
)
from emlesion.study.model import (
    RESERVED_LABELS,
    LesionSource,
    ProgressCallback,
    ReferenceStats,
    StageEvent,
    Study,
    Timepoint,
)
from emlesion.study.sites import read_sites as _read_sites
from emlesion.suv import (
    DEFAULT_SUL,
    DecayCorrection,
    Normalization,
    SUVFactors,
    compute_suv,
    compute_suv_image,
)
from emlesion.track import (
    PreparedCT,
    Registration,
    TimepointLesions,
    TrackingResult,
    TrackState,
    map_mask,
    prepare_fixed_ct,
    register_ct,
    registration_map,
    track_lesions,
)
from emlesion.track.sites import SITE_MARGIN_MM

__all__ = [
    "DEFAULT_METHOD", "NO_CT_MARGIN_MM", "RESIDUAL_MARGIN_MM", "RETRACK_STAGE",
    "check_distinct_timepoints", "check_pet_ct_pair", "load_study", "load_timepoint",
]

#: Default lesion segmentation (41 % of each lesion's SUVmax, liver-threshold seeds).
DEFAULT_METHOD = Method.PERCENT_41
#: Margin (mm) around a lost lesion's mapped position searched for residual disease.
RESIDUAL_MARGIN_MM = 15.0
#: Without a CT (no anatomy), a follow-up lesion must contain or lie within this distance (mm)
#: of a baseline lesion centroid.
NO_CT_MARGIN_MM = 20.0
#: Progress stage of the second lesion matching, after the residual search added lesions
#: (same registrations, so it only re-matches; the first matching is the stage ``"track"``).
RETRACK_STAGE = "re-track after residual search"

PathLike = str | os.PathLike[str]
MaskSource = PathLike | LabelMap
#: An organ map: a path (TotalSegmentator multilabel NIfTI, per-organ folder, DICOM SEG),
#: a loaded LabelMap, or ``"auto"`` (run TotalSegmentator when installed).
OrganSource = PathLike | LabelMap
#: Structures excluded from lesion segmentation, in addition to
#: :data:`emlesion.segment.DEFAULT_EXCLUDE`, when a user organ map supplies them: the great
#: vessels (blood-pool uptake, no halo). Liver and spleen are *not* excluded: they hold
#: lesions (hepatic and splenic involvement is scored by Lugano, Cheson 2014); they give
#: the PERCIST liver reference instead.
ORGAN_MAP_EXCLUDE: tuple[str, ...] = ("iliac_vessels", "aorta", "vena_cava")


# ---------------------------------------------------------------------------- helpers
@contextmanager
def _stage(progress: ProgressCallback | None, stage: str, timepoint: str | None) -> Iterator[None]:
    if progress is not None:
        progress(StageEvent(stage, timepoint, None))
    t0 = time.perf_counter()
    yield
    if progress is not None:
        progress(StageEvent(stage, timepoint, time.perf_counter() - t0))


def _study_date(pet: Volume) -> _dt.date | None:
    ident = pet.identity
    for value in (ident.study_date, ident.series_date):
        try:
            return _dt.datetime.strptime(value.strip()[:8], "%Y%m%d").date()
        except ValueError:
            continue
    return None


def _declared_uptake_time_min(decl: PetDeclaration | None) -> tuple[float | None, str]:
    """Injection-to-scan time of a NIfTI PET from its declaration (sidecar times)."""
    if decl is not None and decl.scan_time is not None and decl.injection_time is not None:
        elapsed_s = (decl.scan_time - decl.injection_time).total_seconds()
        if elapsed_s > 0:
            return elapsed_s / 60.0, "declared (PET sidecar): scan time - injection time"
    return None, "no PET header; the declaration gives no scan and injection times"


def _uptake_time_min(pet: Volume, factors: SUVFactors) -> tuple[float | None, str]:
    """Injection-to-scan time from the SUV factors (QIBA elapsed time), else the header.

    Scan start is SeriesDate/SeriesTime (the QIBA scan reference for DecayCorrection START);
    injection is the time the SUV engine used, or RadiopharmaceuticalStartDateTime /
    RadiopharmaceuticalStartTime when the engine needed none (e.g. Philips CNTS).
    """
    from emlesion.suv.timing import combine_date_time, parse_dt, parse_tm, parse_utc_offset

    elapsed = factors.elapsed_s
    if (factors.decay_correction == DecayCorrection.START.value and elapsed is not None
            and elapsed > 0):
        return float(elapsed) / 60.0, "SUV factors: reference time - injection time (START)"
    if not pet.headers:
        return None, "no PET header"
    ds = pet.headers[0]
    try:
        tz: _dt.tzinfo = _dt.timezone.utc
        if ds.get("TimezoneOffsetFromUTC"):
            tz = parse_utc_offset(ds.TimezoneOffsetFromUTC)
        start = combine_date_time(ds.get("SeriesDate", ""), ds.get("SeriesTime", ""),
                                  date_attribute="SeriesDate (0008,0021)",
                                  time_attribute="SeriesTime (0008,0031)", tz=tz)
        injection: _dt.datetime | None = None
        rule = ""
        if factors.injection_time is not None:
            injection = factors.injection_time
            rule = "SeriesDate/SeriesTime - injection time of the SUV factors"
        else:
            seq = ds.get("RadiopharmaceuticalInformationSequence")
            item = seq[0] if seq else None
            if item is not None and item.get("RadiopharmaceuticalStartDateTime"):
                injection = parse_dt(item.RadiopharmaceuticalStartDateTime,
                                     attribute="RadiopharmaceuticalStartDateTime (0018,1078)",
                                     default_tz=tz)
                rule = "SeriesDate/SeriesTime - RadiopharmaceuticalStartDateTime"
            elif item is not None and item.get("RadiopharmaceuticalStartTime"):
                tod = parse_tm(item.RadiopharmaceuticalStartTime,
                               attribute="RadiopharmaceuticalStartTime (0018,1072)")
                injection = _dt.datetime.combine(start.date(), tod, tzinfo=tz)
                rule = "SeriesTime - RadiopharmaceuticalStartTime (same day)"
        if injection is None:
            return None, "no injection time in the header"
        minutes = (start - injection).total_seconds() / 60.0
    except (EmlesionError, ValueError, TypeError) as exc:
        return None, f"uptake time not computable: {exc}"
    if not 0.0 < minutes < 24 * 60:
        return None, f"uptake time out of range ({minutes:.1f} min)"
    return minutes, rule


def _reference_stats(anatomy: Anatomy | None, which: str, suv: Volume,
                     sul: Volume | None) -> ReferenceStats | None:
    if anatomy is None:
        return None
    region = anatomy.liver_reference if which == "liver" else anatomy.blood_pool_reference
    if region is None:
        return None
    s = region.reference_stats(suv)
    sl = region.reference_stats(sul) if sul is not None else None
    inside = region.mask(suv.grid)
    return ReferenceStats(
        region=which, suv_mean=s.mean, suv_sd=s.sd,
        sul_mean=sl.mean if sl is not None else None,
        sul_sd=sl.sd if sl is not None else None,
        n_voxels=s.n_voxels, centre_mm=s.centre_mm, radius_mm=s.radius_mm, method=region.rule,
        suv_max=float(np.asarray(suv.array)[inside].max()),
        sul_max=float(np.asarray(sul.array)[inside].max()) if sul is not None else None,
    )


def _measure(suv: Volume, labels: LabelMap, ct: Volume | None, sul: Volume | None) -> LesionTable:
    return measure_lesions(suv, labels, ct=ct, sul=sul, peak_variants=("global",))


@dataclass(frozen=True)
class _Images:
    """The images of one timepoint before processing (cheap to load; checked first)."""

    label: str
    pet: Volume
    ct: Volume | None
    source: str
    steps: tuple[ProvenanceStep, ...]


def _load_images(
    pet_source: PathLike | SeriesInfo,
    label: str,
    ct_source: PathLike | SeriesInfo | None,
    find_ct: bool,
    pet_declaration: PetDeclaration | None = None,
) -> _Images:
    pet = load_pet(pet_source, declaration=pet_declaration)
    steps: list[ProvenanceStep] = []
    where = (pet_source.series_instance_uid if isinstance(pet_source, SeriesInfo)
             else os.fspath(pet_source))
    ct: Volume | None = None
    if ct_source is not None:
        ct = load_ct(ct_source)
        rule = "CT given explicitly"
    elif find_ct and is_nifti_path(pet_source):
        rule = "no CT: a NIfTI PET is a single file (pass the CT explicitly)"
    elif find_ct and not isinstance(pet_source, SeriesInfo):
        try:
            ct = load_ct(pet_source)
            rule = "CT found beside the PET"
        except SeriesNotFoundError as exc:
            rule = f"no CT: {exc}"
    else:
        rule = "no CT requested"
    if ct is not None:
        check_pet_ct_pair(pet, ct, label=label)
    steps.append(ProvenanceStep("emlesion.study.load_images", rule=rule, inputs={
        "source": where, "pet_series": pet.identity.series_instance_uid,
        "ct_series": ct.identity.series_instance_uid if ct is not None else None}))
    return _Images(label, pet, ct, where, tuple(steps))


def _regions_for(labels: LabelMap, anatomy: Anatomy | None) -> dict[int, RegionAssignment]:
    if anatomy is None:
        return {}
    if not labels.grid.same_as(anatomy.grid):
        pass  # assign_region works on any grid in the anatomy's frame of reference
    arr = np.asarray(labels.array)
    return {lab: assign_region(arr == lab, labels.grid, anatomy) for lab in labels.labels}


def _pet_only_anatomy(suv: Volume, label: str) -> tuple[Anatomy | None, ProvenanceStep]:
    """Without CT: the PET-only anatomy (body, brain), kept when a brain is found.

    :func:`emlesion.anatomy.segment_anatomy` with ``ct=None`` finds the brain as the large very
    hot region at the cranial end of the PET that straddles the body midline. When there is
    one, the returned anatomy makes :func:`emlesion.segment.segment_lesions` exclude the
    brain and its spill-over halo, inside the PET body outline. Otherwise ``None``: nothing is
    excluded, as before. The step records the decision and the anatomy rule behind it.
    """
    operation = "emlesion.study.pet_only_brain"
    with record_warnings() as rec:
        pet_anatomy = segment_anatomy(None, suv)
        brain = pet_anatomy.mask(AnatomyLabel.BRAIN)
        inputs: dict[str, Any] = {
            "brain_volume_ml": float(brain.sum() * pet_anatomy.grid.voxel_volume_ml),
            "head_z_mm": jsonable(pet_anatomy.field_of_view.head_z_mm
                                  if pet_anatomy.field_of_view is not None else None),
            "brain_rule": (pet_anatomy.field_of_view.brain_rule
                           if pet_anatomy.field_of_view is not None else None),
        }
        used: Anatomy | None = None
        if not brain.any():
            rule = ("no CT: no brain found on the PET (PET-only segment_anatomy: "
                    f"{inputs['brain_rule']}); nothing excluded from lesion segmentation")
        else:
            used = pet_anatomy
            rule = ("no CT: brain in the field of view (PET-only segment_anatomy, "
                    f"{inputs['brain_volume_ml']:.0f} mL, straddling the body midline) "
                    "excluded from lesion segmentation with its spill-over halo; lesions "
                    "searched inside the PET body outline")
            warn_external(format_message(
                f"no CT at timepoint {label!r}: only the brain (found on the PET) is "
                "excluded from lesion segmentation; bladder, kidneys, ureters, heart and "
                "bowel are NOT excluded", fix="supply the CT of this timepoint"),
                AnatomyWarning)
    step = ProvenanceStep(operation, rule=rule, inputs=inputs, warnings=rec.as_tuple())
    return used, step


def _organ_map(organs: OrganSource, images: _Images, suv: Volume, classes: str | None
               ) -> LabelMap:
    """The organ map of a timepoint on its PET grid (``"auto"``: TotalSegmentator)."""
    if isinstance(organs, LabelMap):
        return organs
    if str(organs) == ORGANS_AUTO:
        if images.ct is None:
            raise SeriesNotFoundError(format_message(
                f"--organs auto needs the CT of timepoint {images.label!r}",
                fix="supply the CT, or a precomputed organ map"))
        import tempfile

        with tempfile.TemporaryDirectory(prefix="emlesion-organs-") as work:
            return run_totalsegmentator(images.ct, suv, work)
    return load_organ_map(organs, suv, classes=classes,
                          keep=lambda name: organ_target(name) is not None)


def _exclusions(anatomy: Anatomy | None) -> tuple[str, ...]:
    """Default exclusions, plus the great vessels when a user organ map supplied them."""
    extra = tuple(x for x in ORGAN_MAP_EXCLUDE
                  if anatomy is not None and anatomy.from_organ_map(x))
    return (*DEFAULT_EXCLUDE, *extra)


def _process(
    images: _Images,
    *,
    mask: MaskSource | None,
    organs: OrganSource | None = None,
    organ_classes: str | None = None,
    method: Method | str,
    sul_normalization: Normalization | str | None,
    progress: ProgressCallback | None,
    prior: LabelMap | None = None,
    prior_margin_mm: float = 0.0,
) -> Timepoint:
    label = images.label
    pet, ct = images.pet, images.ct
    steps = list(images.steps)
    with _stage(progress, "suv", label):
        declaration = pet_declaration_of(pet) if not pet.headers else None
        suv_image = None if declaration is not None else compute_suv_image(pet, Normalization.BW)
        # a NIfTI PET with a declared quantity has no header factors: compute_suv applies
        # the declaration (emlesion.suv.declared)
        suv = suv_image.volume if suv_image is not None else compute_suv(pet, Normalization.BW)
        sul: Volume | None = None
        if sul_normalization is not None:
            try:
                sul = (suv_image.renormalized(pet, sul_normalization).volume
                       if suv_image is not None else compute_suv(pet, sul_normalization))
            except EmlesionError as exc:
                steps.append(ProvenanceStep("emlesion.study.sul", rule="no SUL image",
                                            warnings=(str(exc),)))
    anatomy: Anatomy | None = None
    if ct is not None:
        with _stage(progress, "anatomy", label):
            organ_map = _organ_map(organs, images, suv, organ_classes) if organs is not None \
                else None
            anatomy = segment_anatomy(ct, suv, organ_labels=organ_map)
    else:
        # PET-only fallback: the brain, when it is in the field of view (else None)
        with _stage(progress, "anatomy", label):
            anatomy, brain_step = _pet_only_anatomy(suv, label)
        steps.append(brain_step)
        if organs is not None:
            warn_external(format_message(
                f"the organ map of timepoint {label!r} is not used: it has no CT (the "
                "anatomy rules need the CT landmarks)", fix="supply the CT of this timepoint"),
                AnatomyWarning)
    # regions (retroperitoneal / pelvic, side) need the CT landmarks
    ct_anatomy = anatomy if ct is not None else None
    liver = _reference_stats(anatomy, "liver", suv, sul)
    blood = _reference_stats(anatomy, "blood_pool", suv, sul)
    rules: dict[int, ThresholdRule] = {}
    with _stage(progress, "lesions", label):
        if mask is not None:
            from emlesion.io.masks import load_mask

            lesions = (mask if isinstance(mask, LabelMap)
                       else load_mask(Path(os.fspath(mask)), suv))
            if not lesions.grid.same_as(suv.grid):
                lesions = lesions.resample_to(suv.grid)
            regions = _regions_for(lesions, ct_anatomy)
            source, method_name = LesionSource.MASK, "mask"
        else:
            if ct is None and prior is not None and prior.labels:
                lesions = segment_near_lesions(suv, prior, radius_mm=prior_margin_mm,
                                               method=method, anatomy=anatomy)
                regions = {}
                source, method_name = LesionSource.SEGMENTATION, Method(method).value
                steps.append(ProvenanceStep(
                    "emlesion.study.no_ct_search_region",
                    rule=f"no CT anatomy: one lesion searched per baseline lesion, the one "
                         f"containing or nearest (<= {prior_margin_mm:g} mm) to its centroid "
                         "(scanner coordinates)",
                    warnings=("no CT at this timepoint: physiological uptake (bladder, kidneys, "
                              "ureters, heart, bowel) cannot be excluded, so lesions were "
                              "searched only at the baseline lesions; new lesions elsewhere "
                              "are not detected",)))
            else:
                seg = segment_lesions(
                    suv, method=method, anatomy=anatomy, ct=ct,
                    liver_reference=liver.suv_stats(suv.units) if liver else None,
                    blood_pool_reference=blood.suv_stats(suv.units) if blood else None,
                    exclude=_exclusions(anatomy))
                lesions = seg.labels
                rules = {les.label: les.threshold_rule for les in seg.lesions}
                regions = ({les.label: les.assignment for les in seg.lesions}
                           if ct_anatomy is not None else {})
                source, method_name = LesionSource.SEGMENTATION, seg.method.value
    with _stage(progress, "measure", label):
        table = _measure(suv, lesions, ct, sul)
        _ = table.rows  # compute now (timed here, not lazily in the report)
    if suv_image is not None:
        uptake, uptake_rule = _uptake_time_min(pet, suv_image.factors)
    else:
        uptake, uptake_rule = _declared_uptake_time_min(declaration)
    steps.append(ProvenanceStep("emlesion.study.uptake_time", rule=uptake_rule,
                                inputs={"uptake_time_min": uptake}))
    steps.extend(s for s in (suv.provenance[-1:] + (anatomy.provenance[-1:] if anatomy else ())))
    steps.extend(lesions.provenance)
    steps.extend(table.provenance)
    return Timepoint(
        label=label, date=_study_date(pet), pet=pet, ct=ct, suv=suv, sul=sul, anatomy=anatomy,
        liver=liver, blood_pool=blood, lesions=lesions, measurements=table, regions=regions,
        lesion_source=source, method=method_name, uptake_time_min=uptake,
        source=images.source, provenance=tuple(steps), threshold_rules=rules,
    )


def _serialised(progress: ProgressCallback | None) -> ProgressCallback | None:
    """The callback, called under a lock: stages of different timepoints run in threads."""
    if progress is None:
        return None
    lock = threading.Lock()
    callback = progress

    def locked(event: StageEvent) -> None:
        with lock:
            callback(event)

    return locked


@contextmanager
def _pool(workers: int, name: str) -> Iterator[ThreadPoolExecutor | None]:
    """A thread pool of ``workers`` threads, or None (run in this thread) for one worker.

    On an error the queued calls are cancelled; running ones are waited for.
    """
    if workers < 2:
        yield None
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _register(progress: ProgressCallback | None, fixed: Volume, moving: Volume,
              prepared: Deferred[PreparedCT], *, transform: str, fixed_label: str,
              moving_label: str, threads: int) -> Registration:
    with _stage(progress, "register", moving_label):
        return register_ct(fixed, moving, transform=transform, fixed_label=fixed_label,
                           moving_label=moving_label, number_of_threads=threads,
                           prepared_fixed=prepared.result())


def _needs_prior(images: _Images, mask: MaskSource | None) -> bool:
    """A follow-up without CT and mask is searched at the baseline lesions (``prior``)."""
    return images.ct is None and mask is None


def _processed(
    images: Sequence[_Images],
    processing: Sequence[Deferred[Timepoint] | None],
    masks: Sequence[MaskSource | None],
    organs: Sequence[OrganSource | None],
    pool: ThreadPoolExecutor | None,
    options: Mapping[str, Any],
) -> list[Timepoint]:
    """The processed timepoints, in order: the running ones waited for, the ones that need
    the baseline lesions (``None`` in ``processing``) started now, side by side."""
    first = processing[0]
    assert first is not None  # the baseline never waits
    later = list(processing[1:])
    if any(d is None for d in later):
        prior = first.result().lesions
        later = [d if d is not None else submit(
            pool, _process, im, mask=m, organs=o, prior=prior, prior_margin_mm=NO_CT_MARGIN_MM,
            **options) for d, im, m, o in zip(later, images[1:], masks[1:], organs[1:])]
    return [first.result(), *(d.result() for d in later if d is not None)]


# ---------------------------------------------------------------------------- public
def load_timepoint(
    path: PathLike | SeriesInfo,
    label: str = "baseline",
    *,
    ct: PathLike | SeriesInfo | None = None,
    find_ct: bool = True,
    mask: MaskSource | None = None,
    method: Method | str = DEFAULT_METHOD,
    sul: Normalization | str | None = DEFAULT_SUL,
    progress: ProgressCallback | None = None,
    pet_declaration: PetDeclaration | None = None,
    organs: OrganSource | None = None,
    organ_classes: str | None = None,
) -> Timepoint:
    """Take one PET/CT session through the pipeline.

    Parameters
    ----------
    path : folder or SeriesInfo
        Folder holding the PET series (walked recursively; the attenuation-corrected PET is
        chosen), or a :class:`~emlesion.io.SeriesInfo` from :func:`emlesion.io.discover`.
    label : str
        Timepoint label.
    ct : folder or SeriesInfo, optional
        The CT series. Default: the CT found in ``path`` when ``find_ct``, else none.
    find_ct : bool
        Look for a CT beside the PET when ``ct`` is not given (a missing CT is not an
        error: the timepoint then has no CT anatomy, only the brain found on the PET is
        excluded from the lesion segmentation (see :func:`load_study`, Notes), and the CT
        criteria say "not evaluable").
    mask : path or LabelMap, optional
        User lesion mask (DICOM SEG, RTSTRUCT, NIfTI); replaces automatic segmentation.
    method : str
        Segmentation method of :func:`emlesion.segment.segment_lesions` (default
        ``"41%max"``); ignored with ``mask``.
    sul : str or None
        Lean-body-mass normalisation of the SUL image (default Janmahasatian); ``None``
        skips it.
    progress : callable, optional
        Receives a :class:`~emlesion.study.StageEvent` when each stage starts and ends.
    pet_declaration : PetDeclaration, optional
        The declared quantity of a NIfTI PET (``path`` a ``.nii``/``.nii.gz``; the CT then
        comes only from ``ct``); see :mod:`emlesion.io.nifti_image`.
    organs : path, LabelMap or "auto", optional
        A user organ map (TotalSegmentator multilabel NIfTI, per-organ folder or DICOM SEG;
        :func:`emlesion.io.organs.load_organ_map`) that replaces the classical organs it
        names; ``"auto"`` runs TotalSegmentator when installed. Needs the CT.
    organ_classes : {"total", "total_v1"}, optional
        Class numbering of a multilabel NIfTI without names in its header.

    Returns
    -------
    Timepoint
        ``days_since_baseline`` is ``None`` (set by :func:`load_study`).

    Raises
    ------
    SeriesNotFoundError
        No PET series under ``path``.
    SUVError, MissingAttributeError, InvalidAttributeError, UnsupportedDataError
        The SUVbw cannot be computed (see :func:`emlesion.suv.compute_suv`).
    MaskError
        The mask does not fit the PET.
    """
    with _stage(progress, "load", label):
        images = _load_images(path, label, ct, find_ct, pet_declaration)
    return _process(images, mask=mask, organs=organs, organ_classes=organ_classes,
                    method=method, sul_normalization=sul, progress=progress)


def _default_labels(paths: Sequence[PathLike]) -> list[str]:
    names = [Path(os.fspath(p)).resolve().name for p in paths]
    if len(set(names)) == len(names) and all(n and n not in RESERVED_LABELS for n in names):
        return names
    return ["baseline", *(f"followup{k}" for k in range(1, len(paths)))]


def _studies_in_folder(folder: PathLike) -> list[tuple[SeriesInfo, SeriesInfo | None]]:
    """(PET, CT) series of each study under ``folder``, ordered by StudyDate/StudyTime."""
    series = discover(folder)
    groups: dict[str, list[SeriesInfo]] = {}
    for s in series:
        groups.setdefault(s.study_instance_uid, []).append(s)
    found: list[tuple[tuple[str, str], SeriesInfo, SeriesInfo | None]] = []
    for members in groups.values():
        pets = [s for s in members if s.role is SeriesRole.PET_AC]
        if not pets:
            continue
        pet = max(pets, key=lambda s: s.n_instances)
        cts = [s for s in members if s.role is SeriesRole.CT
               and s.identity.frame_of_reference_uid == pet.identity.frame_of_reference_uid]
        cts = cts or [s for s in members if s.role is SeriesRole.CT]
        ct = max(cts, key=lambda s: s.n_instances) if cts else None
        ident = pet.identity
        found.append(((ident.study_date, ident.study_time), pet, ct))
    if not found:
        raise SeriesNotFoundError(format_message(
            f"no attenuation-corrected PET series under {folder}", series=os.fspath(folder),
            fix="point emlesion at the folder holding the exported PET/CT studies"))
    found.sort(key=lambda t: t[0])
    return [(pet, ct) for _, pet, ct in found]


def check_pet_ct_pair(pet: Volume, ct: Volume, *, label: str = "") -> None:
    """Refuse a PET and a CT that cannot belong to one PET/CT session.

    The CT supplies the anatomy, the attenuation map and the lesion diameters of the PET it
    is paired with; both must show the same patient (PatientID) in the same scanner
    coordinate system (FrameOfReferenceUID: a hybrid PET/CT acquisition shares one frame of
    reference, PS3.3 C.7.4.1). A value that is empty in either series is not compared.

    Parameters
    ----------
    pet, ct : Volume
        The PET and CT series of one timepoint.
    label : str
        Timepoint label for the message.

    Raises
    ------
    InconsistentStudyError
        Different PatientID.
    GeometryError
        Different FrameOfReferenceUID
        (:func:`emlesion.measure.check_same_frame_of_reference`, the check
        :func:`emlesion.measure.measure_lesions` applies too).

    References
    ----------
    .. [1] DICOM PS3.3, C.7.4.1 Frame of Reference Module: images that share a
       FrameOfReferenceUID are spatially related.
    """
    where = f"timepoint {label!r}: " if label else ""
    p, c = pet.identity, ct.identity
    series = f"PET {p.series_instance_uid}, CT {c.series_instance_uid}"
    if p.patient_id and c.patient_id and p.patient_id != c.patient_id:
        raise InconsistentStudyError(format_message(
            f"{where}the PET (PatientID {p.patient_id!r}) and the CT (PatientID "
            f"{c.patient_id!r}) belong to different patients", series=series,
            attribute="PatientID (0010,0020)",
            fix="pair the PET with the CT of the same patient and session (--ct)"))
    check_same_frame_of_reference(pet, ct)


def check_distinct_timepoints(pets: Mapping[str, Volume]) -> None:
    """Refuse the same PET series or the same study at two timepoints.

    Each timepoint of a longitudinal study is its own imaging session: a PET series
    (SeriesInstanceUID) or a study (StudyInstanceUID) found at two timepoints means that a
    folder was given twice (or copied), which would make a follow-up identical to the
    baseline. Empty UIDs are not compared.

    Parameters
    ----------
    pets : mapping
        Timepoint label -> its PET volume.

    Raises
    ------
    InconsistentStudyError
        Two timepoints share a SeriesInstanceUID or a StudyInstanceUID.
    """
    seen_series: dict[str, str] = {}
    seen_study: dict[str, str] = {}
    for label, pet in pets.items():
        ident = pet.identity
        for uid, seen, what, attribute in (
                (ident.series_instance_uid, seen_series, "PET series",
                 "SeriesInstanceUID (0020,000E)"),
                (ident.study_instance_uid, seen_study, "study",
                 "StudyInstanceUID (0020,000D)")):
            if not uid:
                continue
            if uid in seen:
                raise InconsistentStudyError(format_message(
                    f"timepoints {seen[uid]!r} and {label!r} are the same {what} {uid}: each "
                    "timepoint must be a different scan", series=uid, attribute=attribute,
                    fix="give each timepoint's own folder once (baseline first), not the same "
                        "folder or a copy of it twice"))
            seen[uid] = label


def _check_consistency(images: Sequence[_Images], allow_different_patients: bool,
                       dates: Sequence[_dt.date | None]) -> tuple[str, ProvenanceStep]:
    base = images[0]
    pid = base.pet.identity.patient_id
    mismatched: list[str] = []
    for im in images:
        for vol in (im.pet, im.ct):
            if vol is not None and vol.identity.patient_id != pid:
                mismatched.append(f"{im.label} {vol.modality}: {vol.identity.patient_id!r}")
    if mismatched and not allow_different_patients:
        raise InconsistentStudyError(format_message(
            f"the timepoints belong to different patients: baseline PatientID {pid!r}, "
            + "; ".join(mismatched),
            attribute="PatientID (0010,0020)",
            fix="check the folders, or pass allow_different_patients=True "
                "(--allow-different-patients) if the IDs differ only by re-identification"))
    base_date = dates[0]
    for im, d in zip(images[1:], dates[1:]):
        if base_date is not None and d is not None and d < base_date:
            raise InconsistentStudyError(format_message(
                f"follow-up {im.label!r} is dated {d.isoformat()}, before the baseline "
                f"{base.label!r} ({base_date.isoformat()})",
                attribute="StudyDate (0008,0020)",
                fix="pass the baseline first, or check the folders and their labels"))
    for (a, da), (b, db) in zip(zip(images, dates), zip(images[1:], dates[1:])):
        if da is not None and db is not None and db < da:
            raise InconsistentStudyError(format_message(
                f"timepoint {b.label!r} ({db.isoformat()}) is dated before {a.label!r} "
                f"({da.isoformat()})", attribute="StudyDate (0008,0020)",
                fix="pass the follow-ups in chronological order"))
    step = ProvenanceStep("emlesion.study.check_consistency",
                          rule="same PatientID at every timepoint; follow-ups not before baseline",
                          inputs={"patient_id": pid, "allow_different_patients":
                                  allow_different_patients, "mismatched": mismatched,
                                  "dates": [d.isoformat() if d else None for d in dates]},
                          warnings=tuple(f"different PatientID accepted: {m}"
                                         for m in mismatched))
    return pid, step


def _last_footprint(study_tps: Sequence[Timepoint], tracking: TrackingResult, track_id: str,
                    k: int) -> np.ndarray | None:
    """The last detected appearance of a track before timepoint ``k``, mapped onto ``k``'s
    PET grid through the registrations (:func:`emlesion.track.map_mask`)."""
    track = tracking.track(track_id)
    for j in range(k - 1, -1, -1):
        p = track.point(study_tps[j].label)
        if p.state.detected:
            src, target = study_tps[j], study_tps[k]
            mask = np.isin(np.asarray(src.lesions.array), p.labels)
            mapped, fov = map_mask(mask, src.lesions.grid, target.suv.grid,
                                   registration_map(tracking, src.label, target.label))
            return mapped if fov > 0 else None
    return None


def _residual_search(
    tps: list[Timepoint], tracking: TrackingResult, *, margin_mm: float,
    progress: ProgressCallback | None, pool: ThreadPoolExecutor | None = None,
) -> tuple[list[Timepoint], bool]:
    """Look again, at a lower seed threshold, where a tracked lesion was not found
    (:func:`emlesion.segment.search_residual` inside each lost track's last footprint).

    The follow-ups are searched side by side (in ``pool`` when given): a search keeps the
    lesions already found unchanged and only labels free voxels, so the footprints that a
    later follow-up takes from an earlier one are the same before and after that earlier
    one's search.
    """
    pending = [submit(pool, _residual_one, tps, tracking, k, margin_mm=margin_mm,
                      progress=progress) for k in range(1, len(tps))]
    found = [d.result() for d in pending]
    out = [tps[0], *(new if new is not None else tp for new, tp in zip(found, tps[1:]))]
    return out, any(new is not None for new in found)


def _residual_one(tps: Sequence[Timepoint], tracking: TrackingResult, k: int, *,
                  margin_mm: float, progress: ProgressCallback | None) -> Timepoint | None:
    """Timepoint ``k`` with the residual lesions added, or None when nothing was added."""
    tp = tps[k]
    if tp.lesion_source is not LesionSource.SEGMENTATION:
        return None
    lost = [t.id for t in tracking.tracks if t.state_at(tp.label) is TrackState.RESOLVED]
    if not lost:
        return None
    with _stage(progress, "residual", tp.label):
        footprints: dict[str, np.ndarray] = {}
        for tid in lost:
            fp = _last_footprint(tps, tracking, tid, k)
            if fp is not None:
                footprints[tid] = fp
        found = search_residual(
            tp.suv, tp.lesions, footprints, margin_mm=margin_mm, method=tp.method,
            seed_method=RESIDUAL_SEED, anatomy=tp.anatomy, ct=tp.ct,
            liver_reference=tp.liver.suv_stats(tp.suv.units) if tp.liver else None,
            blood_pool_reference=(tp.blood_pool.suv_stats(tp.suv.units)
                                  if tp.blood_pool else None),
            exclude=_exclusions(tp.anatomy))
        if found.step is None:
            return None
        rules = {**tp.threshold_rules,
                 **{f.label: f.lesion.threshold_rule for f in found.added}}
        regions = dict(tp.regions)
        if tp.ct is not None:  # regions need the CT landmarks
            regions.update({f.label: f.lesion.assignment for f in found.added})
        table = _measure(tp.suv, found.labels, tp.ct, tp.sul)
        _ = table.rows
        return replace(tp, lesions=found.labels, measurements=table, regions=regions,
                       threshold_rules=rules, provenance=(*tp.provenance, found.step))


def _per_timepoint(values: Mapping[str, Any] | Sequence[Any] | None, names: Sequence[str],
                   what: str, none_means: str) -> list[Any]:
    """One value per timepoint, from a mapping by label or a sequence in order (``None``
    entries stand for ``none_means``)."""
    if values is None:
        return [None] * len(names)
    if isinstance(values, Mapping):
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise InconsistentStudyError(format_message(
                f"{what} given for unknown timepoint(s) {unknown}", fix=f"use labels {names}"))
        return [values.get(n) for n in names]
    out = list(values)
    if len(out) != len(names):
        raise InconsistentStudyError(format_message(
            f"{len(out)} {what}(s) for {len(names)} timepoint(s)",
            fix=f"give one {what} per timepoint (None for {none_means})"))
    return out


def load_study(
    source: Mapping[str, PathLike] | Sequence[PathLike] | PathLike,
    *,
    labels: Sequence[str] | None = None,
    masks: Mapping[str, MaskSource | None] | Sequence[MaskSource | None] | None = None,
    method: Method | str = DEFAULT_METHOD,
    sul: Normalization | str | None = DEFAULT_SUL,
    allow_different_patients: bool = False,
    track: bool = True,
    transform: str = "rigid",
    residual_search: bool = True,
    residual_margin_mm: float = RESIDUAL_MARGIN_MM,
    read_sites: bool = True,
    site_margin_mm: float = SITE_MARGIN_MM,
    progress: ProgressCallback | None = None,
    organs: Mapping[str, OrganSource | None] | Sequence[OrganSource | None] | None = None,
    organ_classes: str | None = None,
    cts: Mapping[str, PathLike | None] | Sequence[PathLike | None] | None = None,
    pet_declarations: Mapping[str, PetDeclaration | None]
    | Sequence[PetDeclaration | None] | None = None,
    threads: int | None = None,
) -> Study:
    """Build a longitudinal :class:`Study`: every timepoint through the pipeline, then tracks.

    Parameters
    ----------
    source : mapping, sequence of folders, or one folder
        ``{"baseline": p0, "month1": p1, ...}`` (one folder per timepoint, in study order;
        the keys are the labels), a list of folders (labels from ``labels``, else the folder
        names when unique, else ``baseline, followup1, ...``), or one folder holding
        several studies (grouped by StudyInstanceUID, ordered by StudyDate/StudyTime).
    labels : sequence of str, optional
        Timepoint labels (not with a mapping).
    masks : mapping or sequence, optional
        User lesion mask per timepoint (by label, or in order); ``None`` entries are
        segmented automatically.
    method : str
        Segmentation method (default ``"41%max"``).
    sul : str or None
        SUL normalisation (default Janmahasatian).
    allow_different_patients : bool
        Accept timepoints whose PatientID differs (recorded as a warning in the provenance).
    track : bool
        Track lesions across timepoints (CT registration to the baseline).
    transform : {"rigid", "affine"}
        Registration transform.
    residual_search : bool
        After tracking, for each follow-up where a lesion of an earlier timepoint was not
        found, segment again inside that lesion's last mask mapped to the follow-up and
        dilated by ``residual_margin_mm``, seeding with SUVbw >= 2.5 instead of the liver
        threshold (the liver threshold decides *measurability at baseline*; at follow-up
        PERCIST follows residual uptake whatever its level;
        :func:`emlesion.segment.search_residual`, the mask mapped by
        :func:`emlesion.track.map_mask`). Found lesions are added, measured and the study is
        tracked again with the same registrations.
    residual_margin_mm : float
        Margin of the residual search (default 15 mm).
    read_sites : bool
        Read every track at its site at every timepoint from its first appearance, on PET
        and on CT (:func:`emlesion.study.sites.read_sites`; :attr:`Study.sites`): what the
        response criteria use for a lesion that the threshold no longer finds.
    site_margin_mm : float
        Site margin for the registration uncertainty (default
        :data:`emlesion.track.SITE_MARGIN_MM`).
    progress : callable, optional
        Receives a :class:`~emlesion.study.StageEvent` at the start and end of each stage.
    organs : mapping or sequence, optional
        User organ map per timepoint (by label, or in order; ``None`` entries use the
        classical rules), see :func:`load_timepoint`.
    organ_classes : {"total", "total_v1"}, optional
        Class numbering of multilabel NIfTI organ maps without names in their header.
    cts : mapping or sequence, optional
        The CT of each timepoint (by label, or in order; ``None``: the CT found beside the
        PET), e.g. NIfTI CTs for NIfTI PETs (not with one folder of several studies).
    pet_declarations : mapping or sequence, optional
        The declared quantity of each NIfTI PET (:class:`~emlesion.io.PetDeclaration`;
        ``None`` for DICOM timepoints).
    threads : int, optional
        Worker threads (default: the usable cores, :func:`emlesion.parallel.usable_cores`).
        Each timepoint is processed as soon as it is loaded and each follow-up CT registered
        as soon as it is loaded, side by side with the loading of the next timepoint; the
        result does not depend on it. ``1`` runs the stages one after the other in this
        thread (what the workers of :func:`emlesion.batch.run_batch` do: there the patients
        are the unit of parallel work; :func:`~emlesion.track.track_lesions` may still
        register two follow-ups in two threads when ITK has two cores). Warnings of the
        workers are emitted in this thread, in timepoint order; ``progress`` is called from
        the thread that runs the stage, one call at a time.

    Notes
    -----
    A follow-up without CT has no CT anatomy, so physiological uptake (bladder, kidneys,
    ureters, heart, bowel) cannot be excluded from an automatic segmentation. Its lesions are
    then searched only at the baseline lesions (per baseline lesion, the lesion containing, or
    nearest within :data:`NO_CT_MARGIN_MM` to, its centroid in scanner coordinates:
    :func:`emlesion.segment.segment_near_lesions`), and the
    provenance says that new lesions elsewhere are not detected; pass
    a mask for that timepoint to avoid this.

    The brain, however, is found on the PET alone (the PET-only fallback of
    :func:`emlesion.anatomy.segment_anatomy`, which accepts only a region straddling the body
    midline: :func:`emlesion.anatomy.fov.find_brain_pet`). At any timepoint without CT, when a
    brain is found, it is excluded from the segmentation with its spill-over halo (the
    search then stays inside the PET body outline) and ``Timepoint.anatomy`` is that PET-only
    anatomy; a lateral candidate (on an abdomen-only scan, a hot kidney at the cranial edge)
    is not a brain. The step ``emlesion.study.pet_only_brain`` of the timepoint's provenance
    records the decision and its numbers.

    Returns
    -------
    Study

    Raises
    ------
    InconsistentStudyError
        Different PatientID (without ``allow_different_patients``), a follow-up dated before
        the baseline or before the previous follow-up, duplicate or reserved labels.

    Examples
    --------
    >>> study = load_study({"baseline": "s/baseline", "month1": "s/month1"})  # doctest: +SKIP
    >>> [a.category.value for a in study.assess(["percist"])]  # doctest: +SKIP
    ['PMR']
    """
    pet_sources: list[PathLike | SeriesInfo]
    ct_sources: list[PathLike | SeriesInfo | None]
    if isinstance(source, Mapping):
        if labels is not None:
            raise InconsistentStudyError(format_message(
                "labels are given twice (mapping keys and labels=)", fix="pass one of them"))
        names = [str(k) for k in source]
        pet_sources = [source[k] for k in source]
        ct_sources = [None] * len(names)
    elif isinstance(source, (str, os.PathLike)):
        pairs = _studies_in_folder(source)
        pet_sources = [p for p, _ in pairs]
        ct_sources = [c for _, c in pairs]
        names = (list(labels) if labels is not None
                 else ["baseline", *(f"followup{k}" for k in range(1, len(pairs)))])
    else:
        paths = list(source)
        pet_sources = list(paths)
        ct_sources = [None] * len(paths)
        names = list(labels) if labels is not None else _default_labels(paths)
    if len(names) != len(pet_sources):
        raise InconsistentStudyError(format_message(
            f"{len(names)} label(s) for {len(pet_sources)} timepoint(s)",
            fix="give one label per timepoint"))
    if len(set(names)) != len(names):
        raise InconsistentStudyError(format_message(
            f"timepoint labels must be unique, got {names}", fix="pass distinct labels"))
    mask_list: list[MaskSource | None] = _per_timepoint(masks, names, "mask",
                                                        "automatic segmentation")
    organ_list = _per_timepoint(organs, names, "organ map", "the classical rules")
    decl_list = _per_timepoint(pet_declarations, names, "PET declaration", "a DICOM PET")
    if cts is not None:
        if isinstance(source, (str, os.PathLike)):
            raise InconsistentStudyError(format_message(
                "cts= is not accepted with one folder of several studies",
                fix="pass one PET per timepoint (a list or a mapping) with cts="))
        ct_sources = list(_per_timepoint(cts, names, "CT", "the CT beside the PET"))
    if threads is not None and threads < 1:
        raise InvalidParameterError(format_message(
            f"threads must be >= 1, got {threads}", fix="pass a positive number or None"))
    workers = usable_cores() if threads is None else int(threads)
    progress = _serialised(progress)
    options: dict[str, Any] = {"organ_classes": organ_classes, "method": method,
                               "sul_normalization": sul, "progress": progress}
    # A timepoint is processed in a worker thread as soon as it is loaded, and a follow-up's
    # registration starts as soon as its CT is loaded, both overlapping the loading of the
    # next timepoint (ITK, NumPy and scipy.ndimage release the GIL; reading the headers
    # holds it). One thread, in order, when one core is usable (a batch worker). Workers
    # hold their warnings back: they are emitted here, in timepoint order
    # (emlesion.parallel); loading and the checks stay in this thread.
    with _pool(workers, "emlesion-register") as reg_pool, \
            _pool(workers, "emlesion-timepoint") as tp_pool:
        images: list[_Images] = []
        pending: dict[str, Deferred[Registration]] = {}
        fixed: Deferred[PreparedCT] | None = None
        processing: list[Deferred[Timepoint] | None] = []
        for k, (name, pet_src, ct_src, decl) in enumerate(
                zip(names, pet_sources, ct_sources, decl_list)):
            with _stage(progress, "load", name):
                im = _load_images(pet_src, name, ct_src,
                                  find_ct=not isinstance(pet_src, SeriesInfo),
                                  pet_declaration=decl)
            images.append(im)
            base_ct = images[0].ct
            if track and k == 0 and base_ct is not None and len(names) > 1:
                # the baseline CT is the fixed image of every registration: prepared once
                fixed = submit(reg_pool, prepare_fixed_ct, base_ct)
            if track and k > 0 and base_ct is not None and im.ct is not None:
                # as track_lesions would: one ITK thread per registration when they run
                # side by side (one registration per core beats two threads each)
                pending[name] = submit(
                    reg_pool, _register, progress, base_ct, im.ct, fixed,
                    transform=transform, fixed_label=images[0].label, moving_label=name,
                    threads=max(1, workers // max(1, len(names) - 1)))
            # a follow-up without CT and mask is searched at the baseline lesions: later
            processing.append(None if k > 0 and _needs_prior(im, mask_list[k]) else submit(
                tp_pool, _process, im, mask=mask_list[k], organs=organ_list[k], **options))
        check_distinct_timepoints({im.label: im.pet for im in images})
        dates = [_study_date(im.pet) for im in images]
        patient_id, check = _check_consistency(images, allow_different_patients, dates)
        tps = _processed(images, processing, mask_list, organ_list, tp_pool, options)
        base_date = tps[0].date
        tps = [replace(tp, days_since_baseline=(tp.date - base_date).days
                       if tp.date is not None and base_date is not None else None) for tp in tps]
        steps = [check]
        tracking: TrackingResult | None = None
        if track and len(tps) > 1:
            inputs = [TimepointLesions(tp.label, tp.lesions, tp.ct) for tp in tps]
            with _stage(progress, "track", None):
                tracking = track_lesions(inputs, transform=transform, registrations=pending)
            if residual_search:
                tps, changed = _residual_search(tps, tracking, margin_mm=residual_margin_mm,
                                                progress=progress, pool=tp_pool)
                if changed:
                    # the second matching reuses the registrations: a short re-match, reported
                    # under its own name so that "track" appears once (the registration + match)
                    with _stage(progress, RETRACK_STAGE, None):
                        tracking = track_lesions(
                            [TimepointLesions(tp.label, tp.lesions, tp.ct) for tp in tps],
                            transform=transform, registrations=tracking.registrations)
        sites: dict[str, dict[str, SiteReading]] = {}
        if read_sites and (tracking is not None or len(tps) == 1):
            with _stage(progress, "sites", None):
                sites, site_step = _read_sites(tps, tracking, margin_mm=site_margin_mm)
            steps.append(site_step)
        return Study(tuple(tps), tracking, patient_id, tuple(steps), sites)
