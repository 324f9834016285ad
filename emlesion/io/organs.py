"""Organ maps in: TotalSegmentator outputs and DICOM SEG organ segmentations as a LabelMap.

Accepted forms (:func:`load_organ_map`):

* a **multilabel NIfTI** in TotalSegmentator's class numbering (``--ml`` output). Its label
  names come from the file's CIFTI/Caret XML header extension when present (TotalSegmentator
  writes one), else from the class table named by ``classes``: ``"total"`` (v2, 117
  classes, the default) or ``"total_v1"`` (v1, 104 classes);
* a **folder of per-organ masks** ``<organ>.nii.gz`` (TotalSegmentator's default output);
  the file name is the organ name;
* a **DICOM SEG** whose SegmentLabel values are organ names (TotalSegmentator's
  ``--output_type dicom``, or any SEG with organ segments).

The map is put on the reference grid (nearest neighbour). NIfTI has no frame of reference:
the caller vouches that the map was computed on this CT. The names are matched to
emlesion's structures by :data:`emlesion.anatomy.TOTALSEGMENTATOR_NAMES`.

References
----------
.. [1] Wasserthal J et al. TotalSegmentator: robust segmentation of 104 anatomic structures
   in CT images. Radiol Artif Intell 2023;5:e230024 (v1 classes); TotalSegmentator v2 class
   map, ``totalsegmentator/map_to_binary.py`` (class numbers of ``total`` and ``total_v1``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from emlesion.errors import MaskError, UnsupportedDataError, deferred_warnings, format_message
from emlesion.io.geometry import Grid
from emlesion.io.labelmap import LabelMap
from emlesion.io.nifti_image import is_nifti_path
from emlesion.io.volume import Volume
from emlesion.provenance import ProvenanceStep

__all__ = [
    "ORGANS_AUTO",
    "ORGAN_CLASS_TABLES",
    "load_organ_map",
    "normalise_organ_name",
    "run_totalsegmentator",
]

#: The ``--organs`` value that runs TotalSegmentator on the CT.
ORGANS_AUTO = "auto"

_V2_TEXT = (
    "spleen kidney_right kidney_left gallbladder liver stomach pancreas adrenal_gland_right "
    "adrenal_gland_left lung_upper_lobe_left lung_lower_lobe_left lung_upper_lobe_right "
    "lung_middle_lobe_right lung_lower_lobe_right esophagus trachea thyroid_gland small_bowel "
    "duodenum colon urinary_bladder prostate kidney_cyst_left kidney_cyst_right sacrum "
    "vertebrae_S1 vertebrae_L5 vertebrae_L4 vertebrae_L3 vertebrae_L2 vertebrae_L1 "
    "vertebrae_T12 vertebrae_T11 vertebrae_T10 vertebrae_T9 vertebrae_T8 vertebrae_T7 "
    "vertebrae_T6 vertebrae_T5 vertebrae_T4 vertebrae_T3 vertebrae_T2 vertebrae_T1 "
    "vertebrae_C7 vertebrae_C6 vertebrae_C5 vertebrae_C4 vertebrae_C3 vertebrae_C2 "
    "vertebrae_C1 heart aorta pulmonary_vein brachiocephalic_trunk subclavian_artery_right "
    "subclavian_artery_left common_carotid_artery_right common_carotid_artery_left "
    "brachiocephalic_vein_left brachiocephalic_vein_right atrial_appendage_left "
    "superior_vena_cava inferior_vena_cava portal_vein_and_splenic_vein iliac_artery_left "
    "iliac_artery_right iliac_vena_left iliac_vena_right humerus_left humerus_right "
    "scapula_left scapula_right clavicula_left clavicula_right femur_left femur_right "
    "hip_left hip_right spinal_cord gluteus_maximus_left gluteus_maximus_right "
    "gluteus_medius_left gluteus_medius_right gluteus_minimus_left gluteus_minimus_right "
    "autochthon_left autochthon_right iliopsoas_left iliopsoas_right brain skull"
)
_V2 = _V2_TEXT.split() + [f"rib_left_{i}" for i in range(1, 13)] \
    + [f"rib_right_{i}" for i in range(1, 13)] + ["sternum", "costal_cartilages"]

_V1_TEXT = (
    "spleen kidney_right kidney_left gallbladder liver stomach aorta inferior_vena_cava "
    "portal_vein_and_splenic_vein pancreas adrenal_gland_right adrenal_gland_left "
    "lung_upper_lobe_left lung_lower_lobe_left lung_upper_lobe_right lung_middle_lobe_right "
    "lung_lower_lobe_right vertebrae_L5 vertebrae_L4 vertebrae_L3 vertebrae_L2 vertebrae_L1 "
    "vertebrae_T12 vertebrae_T11 vertebrae_T10 vertebrae_T9 vertebrae_T8 vertebrae_T7 "
    "vertebrae_T6 vertebrae_T5 vertebrae_T4 vertebrae_T3 vertebrae_T2 vertebrae_T1 "
    "vertebrae_C7 vertebrae_C6 vertebrae_C5 vertebrae_C4 vertebrae_C3 vertebrae_C2 "
    "vertebrae_C1 esophagus trachea heart_myocardium heart_atrium_left heart_ventricle_left "
    "heart_atrium_right heart_ventricle_right pulmonary_artery brain iliac_artery_left "
    "iliac_artery_right iliac_vena_left iliac_vena_right small_bowel duodenum colon"
)
_V1_TAIL = ("humerus_left humerus_right scapula_left scapula_right clavicula_left clavicula_right "
       "femur_left femur_right hip_left hip_right sacrum face gluteus_maximus_left "
       "gluteus_maximus_right gluteus_medius_left gluteus_medius_right gluteus_minimus_left "
       "gluteus_minimus_right autochthon_left autochthon_right iliopsoas_left iliopsoas_right "
       "urinary_bladder")
_V1 = _V1_TEXT.split() + [f"rib_left_{i}" for i in range(1, 13)] \
    + [f"rib_right_{i}" for i in range(1, 13)] + _V1_TAIL.split()

#: TotalSegmentator class numbering of the multilabel output: ``"total"`` (v2, 117 classes)
#: and ``"total_v1"`` (v1, 104 classes), label value -> name.
ORGAN_CLASS_TABLES: Mapping[str, Mapping[int, str]] = {
    "total": {i + 1: n for i, n in enumerate(_V2)},
    "total_v1": {i + 1: n for i, n in enumerate(_V1)},
}
assert len(ORGAN_CLASS_TABLES["total"]) == 117 and len(ORGAN_CLASS_TABLES["total_v1"]) == 104

_CARET_LABEL = re.compile(r'<Label\s+Key="(\d+)"[^>]*>\s*<!\[CDATA\[([^\]]*)\]\]>')


def _header_names(path: Path) -> dict[int, str] | None:
    """Label names of a NIfTI's Caret/CIFTI XML extension (TotalSegmentator writes it)."""
    import nibabel as nib

    try:
        img: Any = nib.load(str(path))
    except Exception:
        return None
    for ext in img.header.extensions:
        try:
            text = ext.get_content()
            text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        except Exception:
            continue
        found = {int(k): v.strip() for k, v in _CARET_LABEL.findall(text)}
        if found:
            return found
    return None


def _normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _folder(folder: Path, ref: Volume | Grid, keep: Callable[[str], bool] | None) -> LabelMap:
    from emlesion.io.nifti import read_nifti_labels

    grid = ref.grid if isinstance(ref, Volume) else ref
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and is_nifti_path(p))
    if not files:
        raise MaskError(format_message(
            "the organ folder holds no .nii/.nii.gz mask", series=str(folder),
            fix="pass TotalSegmentator's output folder (one <organ>.nii.gz per organ), a "
                "multilabel NIfTI or a DICOM SEG"))
    arr = np.zeros(grid.shape, np.uint16)
    names: dict[int, str] = {}
    used: list[str] = []
    empty: list[str] = []
    skipped = 0
    for p in files:
        organ = re.sub(r"\.nii(\.gz)?$", "", p.name, flags=re.IGNORECASE)
        if keep is not None and not keep(_normalise(organ)):
            skipped += 1
            continue
        data = _binary_on(p, grid, read_nifti_labels)
        if data is None:
            empty.append(organ)
            continue
        value = len(names) + 1
        arr[data & (arr == 0)] = value
        names[value] = organ
        used.append(organ)
    if not names:
        raise MaskError(format_message(
            "no mask of the organ folder has a known organ name with voxels on the image",
            series=str(folder),
            fix="name the files as TotalSegmentator does (liver.nii.gz, kidney_left.nii.gz ...)"))
    step = ProvenanceStep("emlesion.io.load_organ_map", rule="folder of per-organ NIfTI masks "
                          "(file name = organ), nearest neighbour onto the reference grid; "
                          "first file (alphabetical) keeps an overlapping voxel",
                          inputs={"source": str(folder), "organs": used,
                                  "empty_on_reference": empty,
                                  "files_not_used": skipped})
    return LabelMap(arr, grid, names, str(folder), (step,))


def _binary_on(path: Path, grid: Grid, reader: Any) -> np.ndarray | None:
    # the reader's warnings (an organ partly or wholly outside the PET field of view) are
    # normal here and dropped; deferred_warnings, not warnings.catch_warnings, which is not
    # thread-safe (the study processes timepoints in parallel threads)
    with deferred_warnings():
        try:
            lm = reader(path, grid)
        except MaskError as exc:
            if "empty" in str(exc):
                return None
            raise
    m = np.asarray(lm.array) > 0
    return m if m.any() else None


def load_organ_map(
    source: str | os.PathLike[str],
    reference: Volume | Grid,
    *,
    classes: str | None = None,
    keep: Callable[[str], bool] | None = None,
) -> LabelMap:
    """Read an organ map (TotalSegmentator multilabel NIfTI, per-organ folder, DICOM SEG).

    Parameters
    ----------
    source : path
        A ``.nii``/``.nii.gz`` multilabel map, a folder of ``<organ>.nii.gz`` masks, or a
        DICOM SEG file (or a folder holding one SEG). Never written to.
    reference : Volume or Grid
        The grid to put the organs on (the PET of the timepoint).
    classes : {"total", "total_v1"}, optional
        Class numbering of a multilabel NIfTI without names in its header. Default
        ``"total"`` (TotalSegmentator v2); names in the header always win.
    keep : callable, optional
        For a folder: read only the masks whose (lower-case) organ name it accepts (e.g.
        :func:`emlesion.anatomy.organ_target` ``is not None``); default all.

    Returns
    -------
    LabelMap
        Organ labels with their names; the provenance says which form was read and where
        the names came from.

    Raises
    ------
    MaskError
        Unreadable file, no known organ, empty map.
    UnsupportedDataError
        Unknown ``classes``.
    """
    from emlesion.io.masks import load_mask
    from emlesion.io.nifti import read_nifti_labels

    p = Path(os.fspath(source))
    if str(source) == ORGANS_AUTO:
        raise MaskError(format_message(
            "'auto' is not a file: run TotalSegmentator with run_totalsegmentator(ct)",
            fix="call emlesion.io.organs.run_totalsegmentator"))
    if not p.exists():
        raise MaskError(format_message(f"organ map {p} does not exist", series=str(p),
                                       fix="pass the TotalSegmentator output (file or folder)"))
    if classes is not None and classes not in ORGAN_CLASS_TABLES:
        raise UnsupportedDataError(format_message(
            f"unknown organ class table {classes!r}", attribute="--organ-classes",
            fix=f"use one of {', '.join(ORGAN_CLASS_TABLES)}"))
    if p.is_dir() and any(is_nifti_path(q) for q in p.iterdir()):
        return _folder(p, reference, keep)
    if p.is_file() and is_nifti_path(p):
        header = _header_names(p)
        if header:
            names, origin = header, "names from the NIfTI header extension (Caret XML)"
        else:
            table = classes or "total"
            names = dict(ORGAN_CLASS_TABLES[table])
            origin = (f"TotalSegmentator class table {table!r}"
                      + ("" if classes else " (default; pass classes='total_v1' for a v1 map)"))
        lm = read_nifti_labels(p, reference, names=names)
        step = ProvenanceStep("emlesion.io.load_organ_map",
                              rule=f"multilabel NIfTI organ map; {origin}",
                              inputs={"source": str(p), "classes": classes,
                                      "organs": [lm.name(v) for v in lm.labels]})
        return LabelMap(lm.array, lm.grid, dict(lm.names), lm.source,
                        (*lm.provenance, step))
    # DICOM SEG (file, or a folder holding one)
    lm = load_mask(p, reference, format="seg") if p.is_file() else load_mask(p, reference)
    step = ProvenanceStep("emlesion.io.load_organ_map", rule="DICOM SEG organ map; names from "
                          "SegmentLabel", inputs={"source": str(p),
                                                  "organs": [lm.name(v) for v in lm.labels]})
    return LabelMap(lm.array, lm.grid, dict(lm.names), lm.source, (*lm.provenance, step))


def run_totalsegmentator(ct: Volume, reference: Volume | Grid, workdir: str | os.PathLike[str]
                         ) -> LabelMap:
    """Run TotalSegmentator (optional extra ``emlesion[organs]``) on a CT: the ``auto`` map.

    Parameters
    ----------
    ct : Volume
        The CT in HU.
    reference : Volume or Grid
        Grid of the returned map (the PET).
    workdir : path
        A scratch folder for the CT NIfTI and the output (created; inputs are not touched).

    Raises
    ------
    UnsupportedDataError
        The ``totalsegmentator`` package (or its model weights) is not installed; the
        message says how to supply a map instead.
    """
    try:
        from totalsegmentator.python_api import totalsegmentator
    except ImportError:
        raise UnsupportedDataError(format_message(
            "--organs auto needs the TotalSegmentator package, which is not installed",
            attribute="--organs",
            fix="either install it (pip install 'emlesion[organs]', then let it download its "
                "weights once), or run TotalSegmentator yourself (TotalSegmentator -i ct.nii.gz "
                "-o organs --ml) and pass --organs organs.nii (a multilabel NIfTI), the output "
                "folder of per-organ masks, or a DICOM SEG with organ names")) from None
    from emlesion.io.nifti_image import save_nifti_image

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    ct_path = save_nifti_image(ct, work / "ct_for_totalsegmentator.nii.gz")
    out = work / "organs.nii.gz"
    try:
        totalsegmentator(str(ct_path), str(out), ml=True)
    except Exception as exc:  # missing weights, GPU/CPU errors
        raise UnsupportedDataError(format_message(
            f"TotalSegmentator failed ({type(exc).__name__}: {exc})", attribute="--organs",
            fix="check its installation and weights, or pass a precomputed map with "
                "--organs PATH")) from exc
    return load_organ_map(out, reference)


def normalise_organ_name(name: str) -> str:
    """Lower case, spaces and hyphens as underscores (``"Kidney left"`` -> ``kidney_left``)."""
    return _normalise(name)
