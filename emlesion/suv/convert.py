"""Convert a PET :class:`~emlesion.io.volume.Volume` to an SUV volume, slice by slice."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from emlesion.errors import UnsupportedDataError, format_message
from emlesion.provenance import ProvenanceStep, record_warnings
from emlesion.suv.enums import Normalization, PETUnits, ReferenceTimeMethod
from emlesion.suv.factors import REFERENCE_TIME_TOLERANCE_S, SUVFactors, compute_suv_factors

if TYPE_CHECKING:
    from emlesion.io.volume import Volume

__all__ = ["apply_suv_factors", "compute_suv"]

OPERATION = "emlesion.suv.compute_suv"


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
    step = ProvenanceStep(OPERATION, rule=factors.rule, inputs=factors.to_dict(),
                          warnings=factors.warnings)
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
    with record_warnings():
        factors = compute_suv_factors(
            pet, normalization, reference_time=reference_time, sex=sex, height_m=height_m,
            reference_time_tolerance_s=reference_time_tolerance_s)
    return apply_suv_factors(pet, factors)
