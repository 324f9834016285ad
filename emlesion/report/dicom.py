"""DICOM outputs with highdicom: a lesion SEG and a TID 1500 measurement report per timepoint.

Two layers:

* :func:`build_segmentation` and :func:`build_measurement_report` work on explicit inputs
  (the SUV :class:`~emlesion.io.Volume` with its DICOM headers, the lesion
  :class:`~emlesion.io.LabelMap`, per-lesion measurement rows and tracking identifiers);
* :func:`write_dicom_outputs` is the adapter used by ``emlesion response ... --out OUTDIR``:
  ``write_dicom_outputs(study, out_dir, *, assessments=None) -> list[Path]`` writes, for each
  timepoint, ``<label>_seg.dcm`` and ``<label>_sr.dcm``.

SEG
    BINARY Segmentation Storage on the PET grid, one segment per lesion (segment numbers
    1..N in ascending lesion label order), Segmented Property Category
    (49755003, SCT, "Morphologically Abnormal Structure") and Type (52988006, SCT, "Lesion")
    (both members of CID 7150 / CID 7151 per pydicom's code dictionary). Source images are
    the PET instances, from the headers kept in :attr:`Volume.headers` (highdicom needs the
    metadata only, not the pixel data). Each segment carries the lesion's Tracking UID and
    Tracking ID.
SR
    Comprehensive 3D SR, TID 1500 Measurement Report, one TID 1411 Volumetric ROI
    measurement group per lesion, each with

    * TrackingIdentifier (112039, DCM) and TrackingUniqueIdentifier: the lesion track id and a
      UID derived deterministically (UUID version 5 -> ``2.25.<int>``, ISO/IEC 9834-8) from
      PatientID, the baseline StudyInstanceUID and the track id, hence identical at every
      timepoint of the same track;
    * TimePointContext (TID 1502): the timepoint label, its order (1 = baseline) and its type
      (CID 6146: Baseline for the first timepoint, Posttreatment for the others);
    * ReferencedSegment: the lesion's segment in the SEG of the same timepoint;
    * Finding type (52988006, SCT, "Lesion");
    * measurements (TID 300), codes verified in pydicom's DICOM code dictionary:

      - SUVmax: concept (126401, DCM, "SUVbw") (CID 7180/7469), Derivation (121401, DCM)
        = (56851009, SCT, "Maximum"), unit ``g/ml{SUVbw}`` (UCUM, CID 7181);
      - SUVmean: same concept and unit, Derivation (373098007, SCT, "Mean");
      - SUVpeak: same concept and unit, Derivation (126031, DCM, "Peak Value Within ROI")
        (CID 7464);
      - MTV: (126032, DCM, "Metabolic Volume") (CID 7466, PET ROI measurements), unit ``ml``;
      - TLG: (126033, DCM, "Total Lesion Glycolysis") (CID 7466), unit ``g`` (``cm2`` for
        SUVbsa).

      For lean-body or other normalisations the concept and unit follow the image
      (SUVlbm(Janma) 126405, SUVlbm(James128) 126406, SUVlbm 126402, SUVbsa 126403, SUVibw
      126404 with the matching ``g/ml{...}`` units). SUVpeak is the IBSI global intensity
      peak on a 1 mL sphere (``suv_peak_global``); MTV is voxel counting; TLG = SUVmean x MTV.

A track seen before and not found at a timepoint (resolved or merged) gets a TID 1501
group with the same tracking identifier, Metabolic Volume 0 ml and TLG 0.

Site readouts
    Every track read at its site at every timepoint from its first appearance
    (:class:`emlesion.response.SiteReading`, :attr:`emlesion.study.Study.sites`), segmented
    or not, gets one more TID 1501 *Measurement and Qualitative Evaluation Group* per track
    and timepoint. A site without a segmented lesion has no SEG segment, which a TID 1411
    group requires, and highdicom's TID 1410 group requires an image region (the site mask
    is not kept in the reading, and a site without a CT mass has no outline to draw), so
    the site group is the TID 1501 group that highdicom builds without any ROI reference
    (:class:`highdicom.sr.MeasurementsAndQualitativeEvaluations`); the geometry that exists
    is attached to the measurements themselves (SCOORD3D, below). It carries the same Tracking
    Identifier and Tracking UID as the lesion's groups, the TimePointContext, Finding
    (52988006, SCT, "Lesion") and Measurement Method :data:`SITE_READOUT_METHOD`, which
    tells the site groups from the lesion and absent-track groups. Its content:

    * SUVmax and SUVpeak of the site VOI (the codes of the lesion groups above); the
      SUVpeak is INFERRED FROM a SCOORD3D POINT, the peak sphere centre (PET frame of
      reference);
    * SULpeak: the SUL image's concept (e.g. 126405, DCM, "SUVlbm(Janma)") and unit,
      Derivation Peak Value Within ROI (left out when the SUL quantity is not given);
    * Deauville score: NUM :data:`DEAUVILLE_SCORE`, unit ``{score}`` (UCUM annotation; no
      concept for the Deauville five-point scale in pydicom's PS3.16 code dictionary);
    * when the CT shows a mass: (103339001, SCT, "Long axis") INFERRED FROM a SCOORD3D
      POLYLINE of its two LPS end points (CT frame of reference), (103340004, SCT, "Short
      axis"), both ``mm``; (118565006, SCT, "Volume") ``ml``; (112031, DCM, "Attenuation
      Coefficient") with Derivation Mean, ``[hnsf'U]``. When the CT shows no mass these are
      left out (never 0 mm), and the qualitative evaluation below says "Absent";
    * qualitative evaluations (CODE): :data:`SITE_STATE` = the state (code meaning exactly
      the :class:`~emlesion.response.SiteState` text, e.g. "metabolically resolved");
      :data:`CT_MASS` = (52101004, SCT, "Present") / (272519000, SCT, "Absent") when the site
      was read on CT; :data:`SITE_RELIABLE` = (373066001, SCT, "Yes") / (373067005, SCT,
      "No").

    The concepts without a code in that dictionary are in the private coding scheme
    :data:`SITE_SCHEME` (``99EMLESION``, a ``99``-prefixed private designator, PS3.3 section
    8.2), declared in the SR's Coding Scheme Identification Sequence. The reasons
    (sentences) are not in the SR; they are in report.json and the HTML report.

Response assessment
    Each follow-up SR holds one more TID 1501 group, Measurement Method
    :data:`RESPONSE_METHOD`, Tracking Identifier ``"response"`` (one UID for the patient's
    study, the same at every follow-up), with the response category of every criterion
    assessed at that follow-up as a qualitative evaluation (CODE): the concept names the
    criterion (:data:`RESPONSE_CONCEPTS`, e.g. ``("RESPPERCIST", "99EMLESION", "PERCIST 1.0
    response category")``) and the value is the category (:data:`RESPONSE_CATEGORY_CODES`,
    e.g. ``("PMR", "99EMLESION", "PMR: partial metabolic response")``); then a TEXT item per
    criterion (:data:`RESPONSE_REASON_CONCEPTS`) with the comparison (the reference
    timepoint, the nadir when it differs) and the main reason
    (:func:`emlesion.report.html.main_reason`). PS3.16 codes the RECIST 1.1 *method*
    (126081, DCM, CID 6147) and lesion-level responses (CID 6143), but no time-point
    category of PERCIST, EORTC, Lugano, LYRIC or RECIST, hence the private scheme.

A timepoint without any lesion gets no SEG (a DICOM SEG must hold at least one segment),
and no SR either when it has neither an absent track nor a site readout (highdicom
requires one measurement group).

References
----------
.. [1] DICOM PS3.3 A.51 (Segmentation IOD), PS3.16 TID 1500, TID 1411, TID 1502, TID 300,
   CID 6146, CID 7150, CID 7151, CID 7180, CID 7181, CID 7464, CID 7466.
.. [2] Herz C. et al., "highdicom: a Python library for standardized encoding of image
   annotations and machine learning model outputs", J Digit Imaging 2022;35:1719-1737.
.. [3] Fedorov A. et al., "DICOM for quantitative imaging biomarker development: a standards
   based approach to sharing clinical data and structured PET/CT analysis results in head
   and neck cancer research", PeerJ 2016;4:e2057 (PET SUV measurements in TID 1500).
"""

from __future__ import annotations

import math
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from emlesion._atomic import atomic_path
from emlesion.errors import MaskError, UnsupportedDataError, format_message
from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import Volume
from emlesion.response.assessment import (
    Assessment,
    Criterion,
    EortcCategory,
    LuganoCtCategory,
    LuganoPetCategory,
    LyricCategory,
    PercistCategory,
    RecistCategory,
)
from emlesion.response.sites import SiteReading, SiteState

if TYPE_CHECKING:
    from emlesion.study import Study

__all__ = [
    "CT_MASS",
    "DEAUVILLE_SCORE",
    "MANUFACTURER",
    "RESPONSE_CATEGORY_CODES",
    "RESPONSE_CONCEPTS",
    "RESPONSE_METHOD",
    "RESPONSE_REASON_CONCEPTS",
    "SITE_READOUT_METHOD",
    "SITE_RELIABLE",
    "SITE_SCHEME",
    "SITE_STATE",
    "SITE_STATE_CODES",
    "TrackingInfo",
    "build_measurement_report",
    "build_segmentation",
    "quantity_codes",
    "tracking_uid",
    "write_dataset_atomic",
    "write_dicom_outputs",
]

#: Manufacturer / ManufacturerModelName written into the SEG and SR.
MANUFACTURER = "emlesion"

# (concept name, unit of the SUV, unit of TLG) per Volume.units quantity.
# Concepts: DCM 126401..126406 (CID 7180 / 7469); units: CID 7181 (UCUM), verified in
# pydicom.sr.codedict (codes.DCM.Suvbw, codes.UCUM.StandardizedUptakeValueBodyWeight, ...).
_G = Code("g", "UCUM", "gram")
_CM2 = Code("cm2", "UCUM", "square centimeter")
_ML = Code("ml", "UCUM", "milliliter")
_QUANTITIES: dict[str, tuple[Code, Code, Code]] = {
    "suvbw": (codes.DCM.Suvbw, codes.UCUM.StandardizedUptakeValueBodyWeight, _G),
    "suljanma": (codes.DCM.SuvlbmJanma, codes.UCUM.StandardizedUptakeValueLeanBodyMassJanma, _G),
    "suljames128": (
        codes.DCM.SuvlbmJames128,
        codes.UCUM.StandardizedUptakeValueLeanBodyMassJames128Multiplier,
        _G,
    ),
    "sulmorgan": (codes.DCM.Suvlbm, Code("g/ml{SUVlbm}", "UCUM", "Standardized Uptake Value "
                                         "lean body mass"), _G),
    "suvbsa": (codes.DCM.Suvbsa, codes.UCUM.StandardizedUptakeValueBodySurfaceArea, _CM2),
    "suvibw": (codes.DCM.Suvibw, codes.UCUM.StandardizedUptakeValueIdealBodyWeight, _G),
}

#: Private (local) coding scheme designator of the site-readout concepts PS3.16 lacks.
SITE_SCHEME = "99EMLESION"
#: Measurement Method of a site-readout group (tells it from the lesion and absent groups).
SITE_READOUT_METHOD = Code("SITEREADOUT", SITE_SCHEME, "Lesion site readout")
#: Concept of the site state (qualitative evaluation).
SITE_STATE = Code("SITESTATE", SITE_SCHEME, "Lesion site state")
#: Concept of the Deauville five-point score (NUM, unit ``{score}``).
DEAUVILLE_SCORE = Code("DEAUVILLE", SITE_SCHEME, "Deauville five-point score")
#: Concept of "the CT shows a soft-tissue mass at the site" (value SCT Present / Absent).
CT_MASS = Code("CTMASS", SITE_SCHEME, "Soft-tissue mass on CT at the site")
#: Concept of "the site readout is reliable" (value SCT Yes / No).
SITE_RELIABLE = Code("SITERELIABLE", SITE_SCHEME, "Site readout reliable")
#: Coded value of each site state; the code meaning is the state's text.
SITE_STATE_CODES: dict[SiteState, Code] = {
    SiteState.PRESENT: Code("PRESENT", SITE_SCHEME, SiteState.PRESENT.value),
    SiteState.NEW: Code("NEW", SITE_SCHEME, SiteState.NEW.value),
    SiteState.RESIDUAL_UPTAKE: Code("RESIDUALUPTAKE", SITE_SCHEME,
                                    SiteState.RESIDUAL_UPTAKE.value),
    SiteState.METABOLICALLY_RESOLVED: Code("METABRESOLVED", SITE_SCHEME,
                                           SiteState.METABOLICALLY_RESOLVED.value),
    SiteState.MERGED: Code("MERGED", SITE_SCHEME, SiteState.MERGED.value),
    SiteState.NOT_EVALUABLE: Code("NOTEVALUABLE", SITE_SCHEME, SiteState.NOT_EVALUABLE.value),
}
#: Measurement Method of the response group of a follow-up SR.
RESPONSE_METHOD = Code("RESPONSE", SITE_SCHEME, "Treatment response assessment")
#: Concept of each criterion's response category; the code meaning names the criterion.
RESPONSE_CONCEPTS: dict[Criterion, Code] = {
    c: Code("RESP" + c.name.replace("_", ""), SITE_SCHEME, f"{c.full_name} response category")
    for c in Criterion
}
#: Concept of the TEXT item with each criterion's comparison and main reason.
RESPONSE_REASON_CONCEPTS: dict[Criterion, Code] = {
    c: Code("WHY" + c.name.replace("_", ""), SITE_SCHEME, f"{c.full_name} main reason")
    for c in Criterion
}
#: Coded value of each response category (the criteria's own abbreviations); the code
#: meaning is ``"<abbreviation>: <description>"`` (64 characters at most).
RESPONSE_CATEGORY_CODES: dict[str, Code] = {
    c.value: Code(c.value, SITE_SCHEME, f"{c.value}: {c.description}"[:64])
    for enum_ in (PercistCategory, EortcCategory, RecistCategory, LuganoPetCategory,
                  LuganoCtCategory, LyricCategory)
    for c in enum_
}
_SCORE = Code("{score}", "UCUM", "score")
_MM = Code("mm", "UCUM", "millimeter")
_HU = Code("[hnsf'U]", "UCUM", "Hounsfield unit")


def quantity_codes(units: str) -> tuple[Code, Code, Code]:
    """DICOM concept name, SUV unit and TLG unit of an SUV image's ``Volume.units``.

    Raises
    ------
    UnsupportedDataError
        The image is not an SUV image (e.g. still in Bq/mL).

    Examples
    --------
    >>> name, unit, tlg = quantity_codes("SUVbw")
    >>> name.value, unit.value, tlg.value
    ('126401', 'g/ml{SUVbw}', 'g')
    """
    key = units.strip().lower()
    if key not in _QUANTITIES:
        raise UnsupportedDataError(
            format_message(
                f"cannot encode measurements of an image in units {units!r} in a TID 1500 report",
                fix="pass the SUV image from emlesion.suv.compute_suv (SUVbw, SULjanma, ...)",
            )
        )
    return _QUANTITIES[key]


@dataclass(frozen=True)
class TrackingInfo:
    """Tracking identifier of one lesion: the human id (``"T1"``) and its stable UID."""

    identifier: str
    uid: str

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-serialisable dict."""
        return {"identifier": self.identifier, "uid": self.uid}


def tracking_uid(track_id: str, *, patient_id: str = "", baseline_study_uid: str = "") -> str:
    """A UID for a lesion track, identical whenever it is derived from the same inputs.

    ``2.25.<int>`` of a name-based UUID (version 5, OID namespace) of
    ``"emlesion-track|<patient_id>|<baseline_study_uid>|<track_id>"`` (ISO/IEC 9834-8).

    Examples
    --------
    >>> tracking_uid("T1", patient_id="P1") == tracking_uid("T1", patient_id="P1")
    True
    >>> tracking_uid("T1", patient_id="P1") == tracking_uid("T2", patient_id="P1")
    False
    """
    name = f"emlesion-track|{patient_id}|{baseline_study_uid}|{track_id}"
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def _lo(text: str, limit: int = 64) -> str:
    """A value valid for the LO value representation (no backslash or control characters)."""
    clean = re.sub(r"[\\\x00-\x1f]", " ", text).strip()
    return clean[:limit] or "lesion"


def _source_images(suv: Volume) -> list[Dataset]:
    if not suv.headers:
        raise UnsupportedDataError(
            format_message(
                "the PET volume has no DICOM headers, so no SEG or SR can reference it",
                series=suv.identity.series_instance_uid or None,
                fix="load the PET with emlesion.io.load_pet (resampled volumes lose them)",
            )
        )
    missing = [k for k in _TYPE2_PATIENT_STUDY if any(k not in ds for ds in suv.headers)]
    if not missing:
        return list(suv.headers)
    # Type 2 attributes of the Patient and General Study modules (DICOM PS3.3 C.7.1.1,
    # C.7.2.1) that highdicom copies from the source images; absent in some real headers
    # (e.g. no PatientBirthDate), they are empty (Type 2: present, may be empty) in copies of
    # the headers, never in the loaded volume's own datasets.
    out = []
    for ds in suv.headers:
        copy = Dataset()
        copy.update(ds)
        if hasattr(ds, "file_meta"):
            copy.file_meta = ds.file_meta
        for keyword in missing:
            if keyword not in copy:
                setattr(copy, keyword, "")
        out.append(copy)
    return out


#: Type 2 Patient / General Study attributes that the SEG and SR copy from the PET.
_TYPE2_PATIENT_STUDY: tuple[str, ...] = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "StudyID", "AccessionNumber", "ReferringPhysicianName")


def _check_grid(suv: Volume, lesions: LabelMap) -> None:
    if not lesions.grid.same_as(suv.grid):
        raise MaskError(
            format_message(
                "the lesion label map is not on the PET grid",
                series=lesions.source or None,
                fix="resample it with lesions.resample_to(suv.grid)",
            )
        )


def build_segmentation(
    suv: Volume,
    lesions: LabelMap,
    *,
    tracking: Mapping[int, TrackingInfo] | None = None,
    series_number: int = 901,
    series_description: str = "emlesion lesions",
    algorithm_type: str = "SEMIAUTOMATIC",
    sop_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
) -> hd.seg.Segmentation:
    """A BINARY DICOM SEG of the lesions, one segment per label, on the PET grid.

    Parameters
    ----------
    suv : Volume
        PET (SUV) volume loaded from DICOM; its :attr:`~Volume.headers` are the source images.
    lesions : LabelMap
        Lesion labels on the grid of ``suv`` (at least one label).
    tracking : mapping, optional
        Label -> :class:`TrackingInfo`, written as the segment's Tracking ID and UID.
    series_number : int
        SeriesNumber of the SEG.
    series_description : str
        SeriesDescription of the SEG.
    algorithm_type : {"SEMIAUTOMATIC", "AUTOMATIC", "MANUAL"}
        Segment Algorithm Type; for the non-manual types the algorithm is identified as
        emlesion, family "Histogram Analysis" (CID 7162; SUV thresholding).
    sop_instance_uid, series_instance_uid : str, optional
        UIDs to use (default: new UIDs).

    Returns
    -------
    highdicom.seg.Segmentation
        Segment ``n`` is the ``n``-th lesion label in ascending order.

    Raises
    ------
    MaskError
        No lesion, or the labels are not on the PET grid.
    UnsupportedDataError
        The PET volume has no DICOM headers.
    """
    from emlesion._version import __version__

    _check_grid(suv, lesions)
    sources = _source_images(suv)
    labels = lesions.labels
    if not labels:
        raise MaskError(format_message("a DICOM SEG needs at least one lesion",
                                       series=lesions.source or None))
    lut = np.zeros(int(max(labels)) + 1, dtype=np.uint8 if len(labels) < 256 else np.uint16)
    for n, lab in enumerate(labels, start=1):
        lut[lab] = n
    pixel_array = lut[lesions.array]
    algo_type = hd.seg.SegmentAlgorithmTypeValues(algorithm_type.upper())
    algorithm = None
    if algo_type is not hd.seg.SegmentAlgorithmTypeValues.MANUAL:
        algorithm = hd.AlgorithmIdentificationSequence(
            name=MANUFACTURER, version=__version__, family=codes.cid7162.HistogramAnalysis
        )
    descriptions = []
    for n, lab in enumerate(labels, start=1):
        info = (tracking or {}).get(lab)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=n,
                segment_label=_lo(lesions.name(lab)),
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=codes.SCT.Lesion,
                algorithm_type=algo_type,
                algorithm_identification=algorithm,
                tracking_uid=info.uid if info else None,
                tracking_id=_lo(info.identifier) if info else None,
            )
        )
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_instance_uid or generate_uid(),
        series_number=int(series_number),
        sop_instance_uid=sop_instance_uid or generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER,
        software_versions=__version__,
        device_serial_number="0",
        series_description=_lo(series_description),
        content_label="LESIONS",
        content_description=_lo(series_description),
    )


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _measurements(row: Mapping[str, Any], units: str) -> list[hd.sr.Measurement]:
    concept, unit, tlg_unit = quantity_codes(units)
    out: list[hd.sr.Measurement] = []
    spec: list[tuple[tuple[str, ...], Code, Code, Code | None]] = [
        (("suv_max",), concept, unit, codes.SCT.Maximum),
        (("suv_mean",), concept, unit, codes.SCT.Mean),
        (("suv_peak_global", "suv_peak"), concept, unit, codes.DCM.PeakValueWithinROI),
        (("mtv_ml",), codes.DCM.MetabolicVolume, _ML, None),
        (("tlg",), codes.DCM.TotalLesionGlycolysis, tlg_unit, None),
    ]
    for keys, name, u, derivation in spec:
        value = next((v for v in (_finite(row.get(k)) for k in keys) if v is not None), None)
        if value is None:
            continue
        out.append(hd.sr.Measurement(name=name, value=value, unit=u, derivation=derivation))
    return out


def _referenced_segment(
    segmentation: Dataset,
    number: int,
    sources: Sequence[Dataset],
    labels: np.ndarray | None,
    label: int,
) -> hd.sr.ReferencedSegment:
    """ReferencedSegment of segment ``number`` with the PET instances holding the lesion.

    Built directly: ``ReferencedSegment.from_segmentation`` (highdicom 0.28) looks for the
    segment number in the per-frame functional groups only, and a single-segment SEG keeps it
    in the shared functional groups.
    """
    if labels is not None:
        slices = [k for k in range(labels.shape[0]) if np.any(labels[k] == label)]
    else:
        slices = list(range(len(sources)))
    return hd.sr.ReferencedSegment(
        sop_class_uid=segmentation.SOPClassUID,
        sop_instance_uid=segmentation.SOPInstanceUID,
        segment_number=number,
        source_images=[
            hd.sr.SourceImageForSegmentation(sources[k].SOPClassUID, sources[k].SOPInstanceUID)
            for k in slices
        ],
    )


def _coordinates(points: Any, graphic_type: str,
                 frame_of_reference_uid: str | None) -> list[hd.sr.CoordinatesForMeasurement3D]:
    """SCOORD3D of a measurement, or nothing without a frame of reference or points."""
    if not frame_of_reference_uid or points is None:
        return []
    data = np.asarray(points, dtype=float).reshape(-1, 3)
    if not np.all(np.isfinite(data)):
        return []
    return [hd.sr.CoordinatesForMeasurement3D(graphic_type=graphic_type, graphic_data=data,
                                              frame_of_reference_uid=frame_of_reference_uid)]


def _site_measurements(
    reading: SiteReading,
    units: str,
    *,
    sul_units: str | None,
    pet_grid: Any,
    pet_frame_uid: str | None,
    ct_frame_uid: str | None,
) -> list[hd.sr.Measurement]:
    """TID 300 measurements of one site readout (see the module docstring)."""
    concept, unit, _ = quantity_codes(units)
    out: list[hd.sr.Measurement] = []
    pet, ct = reading.pet, reading.ct
    if pet is not None:
        peak_mm = (pet_grid.index_to_lps(np.asarray(pet.peak_centre_index, dtype=float))
                   if pet_grid is not None else None)
        suv_max, suv_peak = _finite(pet.suv_max), _finite(pet.suv_peak)
        if suv_max is not None:
            out.append(hd.sr.Measurement(name=concept, value=suv_max, unit=unit,
                                         derivation=codes.SCT.Maximum))
        if suv_peak is not None:
            out.append(hd.sr.Measurement(
                name=concept, value=suv_peak, unit=unit, derivation=codes.DCM.PeakValueWithinROI,
                referenced_coordinates=_coordinates(peak_mm, "POINT", pet_frame_uid) or None))
        sul_peak = _finite(pet.sul_peak)
        if sul_peak is not None and sul_units:
            sul_concept, sul_unit, _ = quantity_codes(sul_units)
            out.append(hd.sr.Measurement(name=sul_concept, value=sul_peak, unit=sul_unit,
                                         derivation=codes.DCM.PeakValueWithinROI))
    if reading.deauville is not None:
        out.append(hd.sr.Measurement(name=DEAUVILLE_SCORE, value=float(reading.deauville),
                                     unit=_SCORE))
    if ct is not None and ct.found:
        ld, sa = _finite(ct.ld_mm), _finite(ct.sa_mm)
        volume, hu = _finite(ct.volume_ml), _finite(ct.hu_mean)
        if ld is not None:
            out.append(hd.sr.Measurement(
                name=codes.SCT.LongAxis, value=ld, unit=_MM,
                referenced_coordinates=_coordinates(ct.ld_endpoints_mm, "POLYLINE",
                                                    ct_frame_uid) or None))
        if sa is not None:
            out.append(hd.sr.Measurement(name=codes.SCT.ShortAxis, value=sa, unit=_MM))
        if volume is not None:
            out.append(hd.sr.Measurement(name=codes.SCT.Volume, value=volume, unit=_ML))
        if hu is not None:
            out.append(hd.sr.Measurement(name=codes.DCM.AttenuationCoefficient, value=hu,
                                         unit=_HU, derivation=codes.SCT.Mean))
    return out


def _site_group(
    info: TrackingInfo,
    reading: SiteReading,
    tp_context: hd.sr.TimePointContext,
    units: str,
    *,
    sul_units: str | None,
    pet_grid: Any,
    pet_frame_uid: str | None,
    ct_frame_uid: str | None,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """The TID 1501 site-readout group of one track at one timepoint."""
    evaluations = [hd.sr.QualitativeEvaluation(SITE_STATE, SITE_STATE_CODES[reading.state])]
    if reading.ct is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(
            CT_MASS, codes.SCT.Present if reading.ct.found else codes.SCT.Absent))
    evaluations.append(hd.sr.QualitativeEvaluation(
        SITE_RELIABLE, codes.SCT.Yes if reading.reliable else codes.SCT.No))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=info.uid,
                                                     identifier=_lo(info.identifier)),
        time_point_context=tp_context,
        finding_type=codes.SCT.Lesion,
        method=SITE_READOUT_METHOD,
        measurements=_site_measurements(reading, units, sul_units=sul_units, pet_grid=pet_grid,
                                        pet_frame_uid=pet_frame_uid, ct_frame_uid=ct_frame_uid),
        qualitative_evaluations=evaluations,
    )


def _response_group(
    info: TrackingInfo,
    responses: Sequence[Assessment],
    tp_context: hd.sr.TimePointContext,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """The TID 1501 response group of one follow-up (see the module docstring)."""
    from emlesion.report.html import main_reason

    evaluations = [hd.sr.QualitativeEvaluation(RESPONSE_CONCEPTS[a.criterion],
                                               RESPONSE_CATEGORY_CODES[a.category.value])
                   for a in responses]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=info.uid,
                                                     identifier=_lo(info.identifier)),
        time_point_context=tp_context,
        method=RESPONSE_METHOD,
        qualitative_evaluations=evaluations,
    )
    container = group[0]
    for a in responses:
        versus = f"vs {a.baseline}" + (f" (nadir {a.nadir})" if a.nadir and a.nadir != a.baseline
                                       else "")
        text = f"{a.category.value} {versus}: {main_reason(a.reasons)}"
        container.ContentSequence.append(hd.sr.TextContentItem(
            name=RESPONSE_REASON_CONCEPTS[a.criterion], value=text[:1024],
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    return group


def _coding_scheme() -> Dataset:
    """The Coding Scheme Identification item of :data:`SITE_SCHEME`."""
    from emlesion._version import __version__

    item = Dataset()
    item.CodingSchemeDesignator = SITE_SCHEME
    item.CodingSchemeName = "emlesion lesion site readout concepts"
    item.CodingSchemeVersion = _lo(__version__, 16)
    item.CodingSchemeResponsibleOrganization = MANUFACTURER
    return item


def build_measurement_report(
    suv: Volume,
    rows: Sequence[Mapping[str, Any]],
    segmentation: Dataset | None,
    *,
    lesions: LabelMap | None = None,
    tracking: Mapping[int, TrackingInfo],
    time_point: str,
    time_point_order: int | None = None,
    absent_tracks: Sequence[TrackingInfo] = (),
    sites: Sequence[tuple[TrackingInfo, SiteReading]] = (),
    responses: Sequence[Assessment] = (),
    response_tracking: TrackingInfo | None = None,
    sul_units: str | None = None,
    ct_frame_of_reference_uid: str | None = None,
    series_number: int = 902,
    series_description: str = "emlesion measurements",
    procedure_reported: Code = codes.SCT.PETCTFDGImagingOfWholeBody,
    sop_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
) -> hd.sr.Comprehensive3DSR:
    """A Comprehensive 3D SR (TID 1500) with one measurement group per lesion.

    Parameters
    ----------
    suv : Volume
        PET (SUV) volume loaded from DICOM (evidence; ``units`` chooses the SUV codes).
    rows : sequence of Mapping
        One mapping per lesion with ``label`` and the metrics (keys of
        :class:`emlesion.measure.LesionMeasurement`: ``suv_max``, ``suv_mean``,
        ``suv_peak_global``, ``mtv_ml``, ``tlg``). Missing or non-finite values are left out.
    segmentation : pydicom Dataset, optional
        The SEG of the same timepoint (:func:`build_segmentation`); segment ``n`` must be
        the ``n``-th label of ``rows`` in ascending order. Required when ``rows`` is not
        empty (a volumetric group needs its region).
    lesions : LabelMap, optional
        The lesion labels (on the PET grid): each ReferencedSegment then lists only the PET
        instances the lesion lies in (default: every PET instance).
    tracking : mapping
        Label -> :class:`TrackingInfo` (every label of ``rows``).
    time_point : str
        Timepoint label (TID 1502 Time Point).
    time_point_order : int, optional
        1 for the baseline, 2, 3 ... for the follow-ups.
    absent_tracks : sequence of TrackingInfo
        Tracks seen before and not found at this timepoint (resolved, or merged into
        another lesion): each gets a TID 1501 measurement group (no ROI) with the same
        tracking identifier, Metabolic Volume 0 ml and Total Lesion Glycolysis 0.
    sites : sequence of (TrackingInfo, SiteReading)
        Site readouts of this timepoint (one per track from its first appearance): each gets
        a TID 1501 site-readout group (see the module docstring), whether or not a lesion
        was segmented there.
    responses : sequence of Assessment
        The response calls of this timepoint (one per criterion): a TID 1501 response group
        with each criterion's category (see the module docstring).
    response_tracking : TrackingInfo, optional
        Tracking identifier of the response group (default ``"response"`` with a UID from
        the PET's PatientID and StudyInstanceUID).
    sul_units : str, optional
        ``Volume.units`` of the SUL image the site SULpeak was read on (e.g.
        ``"SULjanma"``); without it the SULpeak is left out.
    ct_frame_of_reference_uid : str, optional
        Frame of reference of the CT the site diameters were measured on; the CT long axis
        then carries its end points (SCOORD3D). The PET frame of reference is read from
        ``suv``.
    series_number, series_description : int, str
        Series attributes of the SR.
    procedure_reported : Code
        Procedure Reported (CID 100); default (443271005, SCT, "PET/CT FDG imaging of whole
        body").
    sop_instance_uid, series_instance_uid : str, optional
        UIDs to use (default: new UIDs).

    Returns
    -------
    highdicom.sr.Comprehensive3DSR
        With a Coding Scheme Identification Sequence declaring :data:`SITE_SCHEME` when
        ``sites`` or ``responses`` is not empty.
    """
    from emlesion._version import __version__

    sources = _source_images(suv)
    ordered = sorted(rows, key=lambda r: int(r["label"]))
    seg_numbers: dict[int, int] = {}
    if ordered:
        if segmentation is None:
            raise MaskError(format_message("lesion measurements need the SEG of the timepoint"))
        seg_labels = sorted(int(r["label"]) for r in ordered)
        seg_numbers = {lab: n for n, lab in enumerate(seg_labels, start=1)}
    tp_type = None
    if time_point_order is not None:
        tp_type = codes.cid6146.Baseline if time_point_order == 1 else codes.cid6146.Posttreatment
    tp_context = hd.sr.TimePointContext(
        time_point=_lo(time_point), time_point_type=tp_type, time_point_order=time_point_order
    )
    label_array = lesions.array if lesions is not None else None
    groups: list[
        hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
        | hd.sr.MeasurementsAndQualitativeEvaluations
    ] = []
    for row in ordered:
        lab = int(row["label"])
        info = tracking.get(lab)
        if info is None:
            raise MaskError(format_message(f"no tracking identifier for lesion label {lab}"))
        assert segmentation is not None
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=info.uid, identifier=_lo(info.identifier)
                ),
                referenced_segment=_referenced_segment(
                    segmentation, seg_numbers[lab], sources, label_array, lab
                ),
                time_point_context=tp_context,
                finding_type=codes.SCT.Lesion,
                measurements=_measurements(row, suv.units),
            )
        )
    _, _, tlg_unit = quantity_codes(suv.units)
    for info in absent_tracks:
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=info.uid, identifier=_lo(info.identifier)
                ),
                time_point_context=tp_context,
                finding_type=codes.SCT.Lesion,
                measurements=[
                    hd.sr.Measurement(name=codes.DCM.MetabolicVolume, value=0.0, unit=_ML),
                    hd.sr.Measurement(name=codes.DCM.TotalLesionGlycolysis, value=0.0,
                                      unit=tlg_unit),
                ],
            )
        )
    pet_frame_uid = (suv.identity.frame_of_reference_uid
                     or str(sources[0].get("FrameOfReferenceUID", "")) or None)
    for info, reading in sites:
        groups.append(_site_group(info, reading, tp_context, suv.units, sul_units=sul_units,
                                  pet_grid=suv.grid, pet_frame_uid=pet_frame_uid,
                                  ct_frame_uid=ct_frame_of_reference_uid or None))
    if responses:
        ident = suv.identity
        info = response_tracking or TrackingInfo("response", tracking_uid(
            "response", patient_id=ident.patient_id, baseline_study_uid=ident.study_instance_uid))
        groups.append(_response_group(info, responses, tp_context))
    if not groups:
        raise MaskError(
            format_message(
                f"timepoint {time_point!r} has no lesion and no earlier lesion to report as "
                "absent, and no site readout; a TID 1500 report needs at least one "
                "measurement group"
            )
        )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=tracking_uid("device", patient_id=MANUFACTURER), name=MANUFACTURER,
            model_name=f"{MANUFACTURER} {__version__}",
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=procedure_reported,
        imaging_measurements=groups,
    )
    evidence = sources + ([segmentation] if segmentation is not None else [])
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=series_instance_uid or generate_uid(),
        series_number=int(series_number),
        sop_instance_uid=sop_instance_uid or generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description=_lo(series_description),
    )
    if sites or responses:
        sr.CodingSchemeIdentificationSequence = [_coding_scheme()]
    return sr


def write_dataset_atomic(ds: Dataset, path: str | os.PathLike[str]) -> Path:
    """Write a DICOM dataset to ``path`` atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return Path(path)


def _safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "timepoint"


def write_dicom_outputs(
    study: Study,
    out_dir: str | os.PathLike[str],
    *,
    assessments: Sequence[Any] | None = None,
) -> list[Path]:
    """Write ``<label>_seg.dcm`` and ``<label>_sr.dcm`` for every timepoint of a study.

    Parameters
    ----------
    study : emlesion.study.Study
        The loaded, measured and tracked study.
    out_dir : path-like
        Output folder (created; files written atomically).
    assessments : sequence of Assessment, optional
        The response calls (default ``study.assess()``): each follow-up's SR records every
        criterion's category in its response group (see the module docstring).

    Returns
    -------
    list of Path
        The files written, per timepoint SEG (when it has lesions) then SR (when it has a
        lesion, an absent track or a site readout).
    """
    from emlesion.report._study import _tracking_info, dicom_inputs

    calls = list(study.assess() if assessments is None else assessments)
    calls = [a for a in calls if isinstance(a, Assessment)]
    response_info = _tracking_info(study, "response")
    out = Path(out_dir)
    written: list[Path] = []
    for item in dicom_inputs(study):
        responses = [a for a in calls if a.timepoint == item.label]
        seg = None
        name = _safe_name(item.label)
        if item.lesions.labels:
            seg = build_segmentation(item.suv, item.lesions, tracking=item.tracking)
            written.append(write_dataset_atomic(seg, out / f"{name}_seg.dcm"))
        if not item.lesions.labels and not item.absent and not item.sites and not responses:
            continue
        sr = build_measurement_report(
            item.suv, item.rows, seg, lesions=item.lesions, tracking=item.tracking,
            time_point=item.label,
            time_point_order=item.order, absent_tracks=item.absent, sites=item.sites,
            responses=responses, response_tracking=response_info,
            sul_units=item.sul_units, ct_frame_of_reference_uid=item.ct_frame_of_reference_uid,
        )
        written.append(write_dataset_atomic(sr, out / f"{name}_sr.dcm"))
    return written
