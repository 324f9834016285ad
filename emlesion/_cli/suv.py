"""``emlesion suv``: SUV factor(s), provenance and optional mask statistics of a PET series.

Human output (default) prints the factor(s), the rule, the provenance and every warning.
``--json`` prints exactly one JSON object on stdout (the public contract, documented in
the README)::

    {"normalization": "bw", "quantity": "SUVbw", "factor": 0.000277 | [per slice ...],
     "rule": "...", "warnings": [...], "provenance": {...},
     "stats": {"min": ..., "median": ..., "max": ..., "mean": ..., "voxels": ...}}

``factor`` is one number when every slice has the same factor (the ``provenance`` then
leaves the per-slice list out), else one factor per slice. ``stats`` is present only with
``--mask``. Errors go to stderr with exit code 1.
"""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any

import numpy as np

from emlesion._cli._common import normalization_type, safe_text

__all__ = ["add_parser", "json_provenance", "mask_stats", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``suv`` sub-command."""
    from emlesion.suv.enums import Normalization

    p: argparse.ArgumentParser = subparsers.add_parser(
        "suv",
        help="convert a PET series to SUV and print the factor(s) and their provenance",
        description="Compute vendor-correct SUV factors of a PET series (QIBA / IBSI rules) "
                    "and, with --mask, the SUV statistics inside the mask.",
    )
    p.add_argument("pet_dir", metavar="PET_DIR", help="folder of the PET DICOM series")
    p.add_argument("--mask", metavar="MASK",
                   help="DICOM SEG, RTSTRUCT or NIfTI mask; statistics over all labels > 0")
    p.add_argument("--normalization", "-n", default="bw", metavar="NAME",
                   type=normalization_type(allow_none=False),
                   help="body-size normalisation: "
                        + ", ".join(m.value for m in Normalization)
                        + " (alias 'sul' = sul-janmahasatian); default bw")
    p.add_argument("--reference-time", choices=("qiba", "frame"), default="qiba",
                   help="scan reference time rule for DecayCorrection START (default qiba)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (normalization, factor, rule, warnings[, stats])")
    return p


def mask_stats(values: np.ndarray) -> dict[str, float | int | None]:
    """``min``, ``median``, ``max``, ``mean`` and ``voxels`` of the values inside a mask."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"min": None, "median": None, "max": None, "mean": None, "voxels": 0}
    return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max()),
            "mean": float(v.mean()), "voxels": int(v.size)}


def json_provenance(factors: Any) -> dict[str, Any]:
    """The ``provenance`` object of ``suv --json``: :meth:`SUVFactors.to_dict` with the
    per-slice ``factors`` list left out when every slice has the same factor (``factor``
    then holds it once; ``n_slices`` says how many slices share it)."""
    prov: dict[str, Any] = factors.to_dict()
    prov["n_slices"] = len(factors.factors)
    if factors.factor is not None:
        prov.pop("factors", None)
    return prov


def run(args: argparse.Namespace) -> int:
    """Run ``emlesion suv``; returns the exit code."""
    from emlesion.io import load_pet
    from emlesion.suv import apply_suv_factors, compute_suv_factors

    with warnings.catch_warnings():
        # warnings are part of the output (and of the JSON); do not print them twice
        warnings.simplefilter("ignore")
        pet = load_pet(args.pet_dir)
        factors = compute_suv_factors(pet, args.normalization,
                                      reference_time=args.reference_time)
        stats = None
        if args.mask:
            from emlesion.io.masks import load_mask

            suv = apply_suv_factors(pet, factors)
            labels = load_mask(args.mask, reference=suv)
            stats = mask_stats(suv.array[labels.array > 0])
    load_warnings = [w for step in pet.provenance for w in step.warnings]
    all_warnings = list(dict.fromkeys([*load_warnings, *factors.warnings]))
    f = factors.factor
    if args.json:
        out: dict[str, Any] = {
            "normalization": factors.normalization.value,
            "quantity": factors.quantity,
            "factor": f if f is not None else list(factors.factors),
            "rule": factors.rule,
            "warnings": all_warnings,
            "provenance": json_provenance(factors),
        }
        if stats is not None:
            out["stats"] = stats
        print(json.dumps(out, indent=2))
        return 0
    print(f"{safe_text(pet.identity.label)}: {len(factors.factors)} slices")
    print(safe_text(factors))
    for w in load_warnings:
        print(f"  warning (load): {safe_text(w)}")
    if f is None:
        for k, fk in enumerate(factors.factors):
            print(f"  slice {k:4d}  factor {fk:.8g}")
    if stats is not None:
        if stats["voxels"]:
            print(f"{factors.quantity} inside mask ({stats['voxels']} voxels): "
                  f"min {stats['min']:.4f}  median {stats['median']:.4f}  "
                  f"max {stats['max']:.4f}  mean {stats['mean']:.4f}")
        else:
            print("mask is empty on the PET grid")
    return 0
