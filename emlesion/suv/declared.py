"""SUV of a PET whose quantity was declared by the user (a NIfTI PET, no DICOM header).

:func:`emlesion.suv.compute_suv` calls :func:`declared_suv` for a volume read by
:func:`emlesion.io.load_pet` from a NIfTI file. The arithmetic is the body-weight SUV
definition, with the declared values in place of the DICOM attributes:

* ``SUVbw`` declared: the voxels are used as they are;
* ``BQML`` declared: ``SUVbw = C x weight_g / (A_inj x 2^(-(t_scan - t_inj) / T_half))``
  for an image decay-corrected to the scan start (``START``), ``A_inj`` undecayed for
  ``ADMIN``;
* other normalisations (SUL, BSA, IBW) rescale SUVbw by ``body size / weight`` with the
  formulas of :mod:`emlesion.suv.bodysize`, from the declared height and sex.

The header-derived rules (QIBA decay-correction chain, vendor private factors, midnight and
time-zone rules, CorrectedImage checks) are *not applicable*; the provenance step says so.

References
----------
.. [1] Boellaard R et al. FDG PET/CT: EANM procedure guidelines for tumour imaging: version
   2.0. Eur J Nucl Med Mol Imaging 2015;42:328-354 (SUV definition).
.. [2] Kinahan PE, Fletcher JW. PET/CT standardized uptake values (SUVs) in clinical practice
   and assessing response to therapy. Semin Ultrasound CT MR 2010;31:496-505.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from emlesion.errors import MissingAttributeError, SUVError, format_message
from emlesion.provenance import ProvenanceStep
from emlesion.suv import bodysize
from emlesion.suv.enums import Normalization

if TYPE_CHECKING:
    from emlesion.io.nifti_image import PetDeclaration
    from emlesion.io.volume import Volume

__all__ = ["declared_suv"]

OPERATION = "emlesion.suv.compute_suv"


def _body_size_g(norm: Normalization, decl: PetDeclaration, series: str) -> float:
    w = decl.weight_kg
    if w is None:
        raise MissingAttributeError(format_message(
            f"{norm.quantity} of a NIfTI PET needs the body weight", series=series,
            attribute="weight_kg", fix="add weight_kg to the PET sidecar (--pet-sidecar)"))
    if norm is Normalization.BW:
        return w * 1000.0
    h = decl.height_m
    if h is None:
        raise MissingAttributeError(format_message(
            f"{norm.quantity} of a NIfTI PET needs the height", series=series,
            attribute="height_m", fix="add height_m to the PET sidecar (--pet-sidecar)"))
    if norm is Normalization.BSA_DUBOIS:
        return bodysize.bsa_dubois_m2(w, h) * 1e4
    if decl.sex is None:
        raise MissingAttributeError(format_message(
            f"{norm.quantity} of a NIfTI PET needs the sex (sex-specific formula)",
            series=series, attribute="sex", fix="add \"sex\": \"M\" or \"F\" to the sidecar"))
    s = bodysize.normalize_sex(decl.sex)
    kg = bodysize.sex_specific_body_mass_kg(norm, w, h, s)
    if not kg > 0:
        raise SUVError(format_message(
            f"{norm.quantity} body size is {kg:.4g} kg (formula outside its range)",
            series=series, fix="check weight and height, or use another normalisation"))
    return kg * 1000.0


def declared_suv(pet: Volume, normalization: str | Normalization, decl: PetDeclaration) -> Volume:
    """SUV image of a PET whose quantity was declared (see the module notes).

    Parameters
    ----------
    pet : Volume
        A PET read from NIfTI (``units`` = the declared ``SUVbw`` or ``BQML``).
    normalization : str or Normalization
        As in :func:`emlesion.suv.compute_suv`.
    decl : PetDeclaration
        The declaration recorded when the volume was loaded.

    Returns
    -------
    Volume
        ``units`` = the quantity (``"SUVbw"``, ``"SULjanma"`` ...), one more provenance step
        ``emlesion.suv.compute_suv`` whose inputs record the declaration and
        ``header_rules: "not applicable ..."``.

    Raises
    ------
    MissingAttributeError
        Weight, height or sex missing for the requested normalisation.
    SUVError
        The volume's units differ from the declaration (converted twice?).
    """
    from emlesion.io.nifti_image import HEADER_RULES_NOT_APPLICABLE, NiftiPetUnits

    norm = Normalization.coerce(normalization)
    series = decl.source or pet.identity.series_description
    if pet.units != decl.units.value:
        raise SUVError(format_message(
            f"the volume's units are {pet.units!r}, the declaration says {decl.units.value}; "
            "refusing to convert twice", series=series,
            fix="pass the volume returned by emlesion.io.load_pet"))
    inputs: dict[str, object] = {"declaration": decl.to_dict(), "quantity": norm.quantity,
                                 "header_rules": HEADER_RULES_NOT_APPLICABLE}
    if decl.units is NiftiPetUnits.SUVBW:
        if norm is Normalization.BW:
            factor, rule = 1.0, "declared SUVbw (NIfTI): voxels used as they are"
        else:
            w = decl.weight_kg
            size_g = _body_size_g(norm, decl, series)
            factor = size_g / (float(w) * 1000.0)  # type: ignore[arg-type]
            rule = (f"declared SUVbw (NIfTI) x {norm.quantity} body size / body weight "
                    f"({size_g / 1000.0:.4g} kg / {w:g} kg)")
    else:
        size_g = _body_size_g(norm, decl, series)
        dose = float(decl.injected_dose_bq)  # type: ignore[arg-type]
        if decl.decay_correction == "START":
            elapsed = (decl.scan_time - decl.injection_time).total_seconds()  # type: ignore[operator]
            decayed = dose * math.pow(2.0, -elapsed / decl.half_life_s)
            inputs["elapsed_s"] = elapsed
            inputs["decay_correction"] = "START"
            when = f"dose decayed over {elapsed:.0f} s (T1/2 {decl.half_life_s:g} s)"
        else:
            decayed = dose
            inputs["decay_correction"] = "ADMIN"
            when = "image decay-corrected to injection (ADMIN): dose not decayed"
        factor = size_g / decayed
        rule = (f"declared BQML (NIfTI): C x {norm.quantity} body size {size_g / 1000.0:.4g} kg "
                f"/ injected activity; {when}")
    inputs["factor"] = factor
    out = np.asarray(pet.array, dtype=np.float32) * np.float32(factor) if factor != 1.0 \
        else np.array(pet.array, dtype=np.float32)
    step = ProvenanceStep(OPERATION, rule=rule, inputs=inputs)
    return replace(pet, array=out, units=norm.quantity, provenance=(*pet.provenance, step))
