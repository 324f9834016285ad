"""Shared command-line options of the image inputs: NIfTI PET declaration, organ maps."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_nifti_pet_options", "add_organ_options", "organ_sources", "pet_declaration"]


def add_nifti_pet_options(p: argparse.ArgumentParser) -> None:
    """``--pet-units`` and ``--pet-sidecar`` (a NIfTI PET must declare its quantity)."""
    p.add_argument("--pet-units", choices=("SUVbw", "BQML"), metavar="SUVbw|BQML",
                   help="quantity of a NIfTI PET (required for .nii/.nii.gz): SUVbw, or BQML "
                        "(Bq/mL; needs --pet-sidecar with weight, dose and times)")
    p.add_argument("--pet-sidecar", metavar="JSON",
                   help="JSON sidecar of a NIfTI PET: units, weight_kg, injected_dose_mbq, "
                        "injection_time, scan_time (ISO 8601), decay_correction, height_m, sex")


def add_organ_options(p: argparse.ArgumentParser, *, per_timepoint: bool) -> None:
    """``--organs`` (one map, or one per timepoint) and ``--organ-classes``."""
    if per_timepoint:
        p.add_argument("--organs", nargs="+", metavar="PATH",
                       help="one organ map per timepoint (TotalSegmentator multilabel NIfTI, "
                            "per-organ folder or DICOM SEG with organ names), 'auto' to run "
                            "TotalSegmentator (optional extra), or 'none' (classical rules)")
    else:
        p.add_argument("--organs", metavar="PATH",
                       help="organ map (TotalSegmentator multilabel NIfTI, its per-organ "
                            "folder, or a DICOM SEG with organ names), or 'auto' to run "
                            "TotalSegmentator (optional extra emlesion[organs]); its organs "
                            "replace the classical ones")
    p.add_argument("--organ-classes", choices=("total", "total_v1"),
                   help="class numbering of a multilabel NIfTI organ map without label names "
                        "in its header (default total = TotalSegmentator v2)")


def pet_declaration(pet: Any, units: str | None, sidecar: str | None) -> Any:
    """The :class:`~emlesion.io.PetDeclaration` of a NIfTI PET (``None`` for DICOM)."""
    from emlesion.errors import InvalidParameterError, format_message
    from emlesion.io.nifti_image import PetDeclaration, is_nifti_path

    if not is_nifti_path(pet):
        if units or sidecar:
            raise InvalidParameterError(format_message(
                "--pet-units/--pet-sidecar apply to a NIfTI PET only", series=str(pet),
                attribute="--pet-units", fix="a DICOM PET's quantity comes from its header; "
                "drop the option"))
        return None
    return PetDeclaration.from_options(units, sidecar, units_source="--pet-units")


def organ_sources(values: list[str] | None) -> list[str | None] | None:
    """``--organs`` values per timepoint (``none`` -> classical rules)."""
    if values is None:
        return None
    return [None if v.lower() == "none" else v for v in values]
