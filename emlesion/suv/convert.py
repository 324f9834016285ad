"""Convert a PET :class:`~emlesion.io.volume.Volume` to an SUV volume, slice by slice."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from emlesion.errors import (
    SUVError,
    SUVWarning,
    UnsupportedDataError,
    format_message,
    warn_external,
)
from emlesion.provenance import ProvenanceStep, record_warnings
from emlesion.suv.enums import Normalization, PETUnits, ReferenceTimeMethod
from emlesion.suv.factors import (
    REFERENCE_TIME_TOLERANCE_S,
    SUVFactors,
    compute_suv_factors,
    renormalize_suv_factors,
)

if TYPE_CHECKING:
    from emlesion.io.volume import Volume

__all__ = ["SUV_MAX_WARNING", "SUVImage", "apply_suv_factors", "compute_suv", "compute_suv_image"]

OPERATION = "emlesion.suv.compute_suv"


#: SUVmax above which a warning is emitted (stated reason, not a published cut-off): FDG
#: tumour SUVmax values lie mostly below 30 (the sample study's hottest lesion is 11.6);
#: 100 and more occur on real scans in urine (bladder, collecting system) or at an
#: extravasated injection site, and otherwise point to a wrong dose, weight, half-life or
#: time.
SUV_MAX_WARNING: float = 100.0


def _check_suv_max(suv: np.ndarray, pet: Volume, factors: SUVFactors) -> None:
    """SUVmax against the physical bound and the physiological range.

    Physical bound: a voxel cannot hold more than the whole (decay-corrected) injected
    activity, so ``SUV <= body size / voxel volume`` (body size in g, or cm² for BSA, as in
    the SUV formula; the activity concentration is at most dose / voxel volume). Above it
    the header is wrong and the SUVs are refused (SUVError). Above :data:`SUV_MAX_WARNING`
    an SUVWarning gives the reason a real scan can still produce it.
    """
    if suv.size == 0:
        return
    suv_max = float(np.nanmax(suv)) if np.isfinite(suv).any() else float("nan")
    if not np.isfinite(suv_max):
        raise SUVError(format_message(
            "the SUV image holds no finite value", series=pet.identity.series_instance_uid or None,
            fix="check the pixel data and the SUV header values"))
    sx, sy, sz = pet.grid.spacing_mm
    voxel_ml = sx * sy * sz / 1000.0
    size = factors.body_size
    bound = size / voxel_ml if size is not None and voxel_ml > 0 else float("inf")
    where = tuple(int(i) for i in np.unravel_index(int(np.nanargmax(suv)), suv.shape))
    if suv_max > bound:
        raise SUVError(format_message(
            f"{factors.quantity}max {suv_max:.4g} at voxel (z, y, x) {where} exceeds the "
            f"physical bound {bound:.4g} (the whole injected activity in one voxel of "
            f"{voxel_ml:.4g} mL): the header values are wrong",
            series=pet.identity.series_instance_uid or None,
            fix="check RadionuclideTotalDose (Bq), RadionuclideHalfLife (s), PatientWeight "
            "(kg), the injection and series times, and the Units/RescaleSlope of the image"))
    if suv_max > SUV_MAX_WARNING:
        warn_external(format_message(
            f"{factors.quantity}max {suv_max:.4g} at voxel (z, y, x) {where} is above "
            f"{SUV_MAX_WARNING:g}: real scans reach this only in the urinary bladder or at an "
            "extravasated injection site; elsewhere it points to a wrong dose, weight, "
            "half-life or time", series=pet.identity.series_instance_uid or None,
            fix="look at where the maximum is; if it is not bladder or injection site, check "
            "the SUV header values"), SUVWarning)


@dataclass(frozen=True, eq=False)
class SUVImage:
    """An SUV image and the typed factors that made it (result of :func:`compute_suv_image`).

    Attributes
    ----------
    volume : Volume
        The SUV image (``units`` ``factors.quantity``), as :func:`compute_suv` returns it.
    factors : SUVFactors
        The per-slice factors with their inputs: dose, decay, reference and injection times,
        body size. Read these rather than the provenance step of ``volume``, which records
        the same numbers as JSON for the audit trail.
    """

    volume: Volume
    factors: SUVFactors

    def renormalized(
        self,
        pet: Volume,
        normalization: str | Normalization,
        *,
        sex: str | None = None,
        height_m: float | None = None,
    ) -> SUVImage:
        """The same conversion to another body size (e.g. the SUL of an SUVbw image).

        The factors are those of this image rescaled by the body-size ratio
        (:func:`~emlesion.suv.factors.renormalize_suv_factors`): dose, decay and reference
        time are not computed again, so both images rest on the same numbers.

        Parameters
        ----------
        pet : Volume
            The PET volume this image was computed from (stored ``Units``).
        normalization : str or Normalization
            Target normalisation, e.g. ``"sul"``.
        sex, height_m : optional
            Override PatientSex and PatientSize (m).

        Returns
        -------
        SUVImage

        Raises
        ------
        InvalidParameterError
            This image is not SUVbw.
        MissingAttributeError, InvalidAttributeError, SUVError
            Height or sex missing or implausible for the target normalisation.
        """
        factors = renormalize_suv_factors(self.factors, normalization, pet, sex=sex,
                                          height_m=height_m)
        return SUVImage(apply_suv_factors(pet, factors), factors)


def apply_suv_factors(pet: Volume, factors: SUVFactors) -> Volume:
    """Multiply each slice of ``pet`` by its factor and record the provenance.

    Parameters
    ----------
    pet : Volume
        PET volume in its stored ``Units`` (rescaled per slice), e.g. from
        :func:`emlesion.io.load_pet`.
    factors : SUVFactors
        Factors computed from the same volume's headers (one per slice).

    Returns
    -------
    Volume
        Same grid, identity, slices and headers; ``units`` set to ``factors.quantity``;
        one more :class:`~emlesion.provenance.ProvenanceStep` holding ``factors.to_dict()``.

    Raises
    ------
    UnsupportedDataError
        When the number of factors is not the number of slices, or the volume is not in a
        stored PET unit (already an SUV, resampled, ...).
    """
    nz = pet.shape[0]
    if len(factors.factors) != nz:
        raise UnsupportedDataError(format_message(
            f"{len(factors.factors)} SUV factors for {nz} slices",
            series=pet.identity.series_instance_uid or None,
            fix="compute the factors from this volume's own headers"))
    if pet.units and pet.units.upper() not in {u.value for u in PETUnits}:
        raise UnsupportedDataError(format_message(
            f"the volume's units are {pet.units!r}, not a stored PET unit; refusing to convert "
            "twice", series=pet.identity.series_instance_uid or None,
            fix="convert the volume returned by emlesion.io.load_pet"))
    scale = np.asarray(factors.factors, dtype=np.float32)[:, None, None]
    out = np.empty(pet.array.shape, dtype=np.float32)
    np.multiply(pet.array, scale, out=out)
    with record_warnings() as rec:
        _check_suv_max(out, pet, factors)
    step = ProvenanceStep(OPERATION, rule=factors.rule, inputs=factors.to_dict(),
                          warnings=(*factors.warnings, *rec.as_tuple()))
    return replace(pet, array=out, units=factors.quantity,
                   provenance=(*pet.provenance, step))


def compute_suv(
    pet: Volume,
    normalization: str | Normalization = Normalization.BW,
    *,
    reference_time: str | ReferenceTimeMethod = ReferenceTimeMethod.QIBA,
    sex: str | None = None,
    height_m: float | None = None,
    reference_time_tolerance_s: float = REFERENCE_TIME_TOLERANCE_S,
) -> Volume:
    """Convert a PET volume to SUV, vendor-correct, or refuse with a clear reason.

    Parameters
    ----------
    pet : Volume
        PET volume from :func:`emlesion.io.load_pet` (stored ``Units``, rescaled per slice,
        one header per slice).
    normalization : str or Normalization
        ``"bw"`` (default), ``"lbm-james128"``, ``"lbm-morgan"``, ``"sul-janmahasatian"``
        (alias ``"sul"``), ``"bsa-dubois"`` or ``"ibw"``.
    reference_time : {"qiba", "frame"}
        Scan reference time rule for DecayCorrection START (see
        :func:`~emlesion.suv.compute_suv_factors`).
    sex : str, optional
        Overrides PatientSex for sex-specific body sizes.
    height_m : float, optional
        Overrides PatientSize (m).
    reference_time_tolerance_s : float
        Disagreement between the QIBA and frame-based times that triggers a warning.

    Returns
    -------
    Volume
        The SUV image (``units`` e.g. ``"SUVbw"``); its last provenance step,
        ``"emlesion.suv.compute_suv"``, holds the factors' ``to_dict()`` and every warning.

    Raises
    ------
    MissingAttributeError, InvalidAttributeError, UnsupportedDataError, SUVError
        See :func:`~emlesion.suv.compute_suv_factors`.

    See Also
    --------
    compute_suv_image : the same image with its typed :class:`~emlesion.suv.SUVFactors`.

    References
    ----------
    .. [1] QIBA SUV vendor-neutral pseudo-code (D. Clunie, 2018): the factor "must be
       applied on a per-frame basis" (per-slice RescaleSlope and times).
    .. [2] Vácha et al., IBSI SUV manual and digital reference objects.

    Examples
    --------
    >>> from emlesion.io import load_pet  # doctest: +SKIP
    >>> suv = compute_suv(load_pet("DRO_0_0/PT"), "bw")  # doctest: +SKIP
    >>> suv.units, suv.provenance[-1].rule  # doctest: +SKIP
    ('SUVbw', 'BQML/START: SeriesDateTime (QIBA step 1)')
    """
    if not pet.headers:
        from emlesion.io.nifti_image import pet_declaration_of

        decl = pet_declaration_of(pet)
        if decl is not None:  # a NIfTI PET: its quantity was declared, no header rules
            from emlesion.suv.declared import declared_suv

            return declared_suv(pet, normalization, decl)
    return compute_suv_image(
        pet, normalization, reference_time=reference_time, sex=sex, height_m=height_m,
        reference_time_tolerance_s=reference_time_tolerance_s).volume


def compute_suv_image(
    pet: Volume,
    normalization: str | Normalization = Normalization.BW,
    *,
    reference_time: str | ReferenceTimeMethod = ReferenceTimeMethod.QIBA,
    sex: str | None = None,
    height_m: float | None = None,
    reference_time_tolerance_s: float = REFERENCE_TIME_TOLERANCE_S,
) -> SUVImage:
    """:func:`compute_suv`, returning the typed factors with the image.

    Parameters and errors are those of :func:`compute_suv`.

    Returns
    -------
    SUVImage
        ``volume`` is what :func:`compute_suv` returns; ``factors`` the
        :class:`~emlesion.suv.SUVFactors` applied to it (reference and injection times,
        elapsed time, doses, body size...), for callers that need these numbers.

    References
    ----------
    .. [1] QIBA SUV vendor-neutral pseudo-code (D. Clunie, 2018).

    Examples
    --------
    >>> from emlesion.io import load_pet  # doctest: +SKIP
    >>> pet = load_pet("DRO_0_0/PT")  # doctest: +SKIP
    >>> image = compute_suv_image(pet, "bw")  # doctest: +SKIP
    >>> image.volume.units, image.factors.decay_correction  # doctest: +SKIP
    ('SUVbw', 'START')
    >>> image.renormalized(pet, "sul").volume.units  # doctest: +SKIP
    'SULjanma'
    """
    if not pet.headers:
        from emlesion.io.nifti_image import pet_declaration_of

        if pet_declaration_of(pet) is not None:
            raise UnsupportedDataError(format_message(
                "this PET was read from NIfTI with a declared quantity: it has no DICOM "
                "header, so there are no header-derived SUV factors",
                series=pet.identity.series_description or None,
                fix="use emlesion.suv.compute_suv, which applies the declaration"))
    factors = compute_suv_factors(
        pet, normalization, reference_time=reference_time, sex=sex, height_m=height_m,
        reference_time_tolerance_s=reference_time_tolerance_s)
    return SUVImage(apply_suv_factors(pet, factors), factors)
