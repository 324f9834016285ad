"""Classical (no deep learning, no download) anatomy from a PET/CT pair.

:func:`segment_anatomy` finds, with HU thresholds, PET uptake levels, morphology and
connected components: the body, the skeleton, the spine and its axis, the bony pelvis with
the iliac-crest, pubic-symphysis and pelvic-inlet levels, the urinary bladder, both
kidneys, the ureters, the liver with an automatic PERCIST reference sphere, and an aortic
blood-pool cylinder. An organ label map supplied by the user (for example a
TotalSegmentator output) replaces the organs it names.

Working grid
------------
Every mask of the returned :class:`~emlesion.anatomy.Anatomy` lies on **the PET grid** when a
PET is given (the CT is resampled onto it, linear interpolation, -1024 HU outside the CT
field of view); without a PET, on the CT grid coarsened to at least 3 mm voxels. The PET is
never interpolated.

Limits
------
Written for the low-dose, non-contrast CT of an abdomen-pelvis FDG PET/CT. Organs whose CT
contrast is poor without iodinated contrast (kidneys, liver, aorta) are found with the help
of the PET: kidneys as a bilateral, mirror-symmetric pair of moderately avid paraspinal
structures, the liver as the large, uniformly moderately avid right upper-quadrant organ,
the bladder as the hottest fluid-density structure in the low midline pelvis. Without PET,
CT-only rules take over (liver and spleen from their unenhanced HU ranges after an opening,
kidneys as the mirror-symmetric HU-window pair in front of the paraspinal muscles, the aorta
as the inscribed blood-density disc in front of the spine); they were checked on one real
unenhanced CT only (``benchmarks/eval_anatomy_real.py``). These trunk
organs are searched only on trunk slices of the field of view (a scan or crop of a limb,
the neck or the head yields none of them); brain, lungs, heart and myocardium come from
:mod:`emlesion.anatomy.fov` when the head or the lungs are in the field of view. Bowel
and the iliac vessels are only available from a user-supplied organ label map (a
CT-only bowel rule -- intraluminal gas, gas-adjacent mottled content, morphological
closing -- was evaluated on the synthetic sample study and rejected: at 4 mm it either
left gas-poor colon next to a pelvic node unmasked or removed a third of the node, and
did not generalise across generator seeds; see ``benchmarks/eval_segmentation.py``).
A missing or transplanted kidney, a very full or an empty bladder, a liver replaced by
tumour, or a lesion that is itself mirror-symmetric with a kidney will mislead the rules;
supply ``organ_labels`` then.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from emlesion.anatomy.fov import (
    PET_BODY_FRACTION,
    TRUNK_MIN_AREA_CM2,
    TRUNK_MIN_WIDTH_MM,
    FieldOfView,
    ball_dilation,
    fill_slices,
    find_brain_ct,
    find_brain_pet,
    find_heart,
    find_lungs,
    largest_component,
    padded_box,
    trunk_slices,
)
from emlesion.anatomy.model import (
    Anatomy,
    AnatomyLabel,
    ReferenceRegion,
    voxel_centres_mm,
)
from emlesion.errors import EmlesionWarning, MaskError, format_message, warn_external
from emlesion.io.geometry import Grid, resample_array
from emlesion.io.geometry import ball_structure as _ball
from emlesion.io.labelmap import LabelMap
from emlesion.io.organs import ORGAN_CLASS_TABLES
from emlesion.io.volume import Volume, is_suv_units
from emlesion.provenance import ProvenanceStep, record_warnings

__all__ = ["TOTALSEGMENTATOR_NAMES", "AnatomyWarning", "organ_target", "segment_anatomy"]

# ---------------------------------------------------------------------------- constants
# Every threshold of the rules below, with its unit in the name and its source. Values
# marked "chosen on the generator seeds" were tuned on the synthetic sample studies of
# :mod:`emlesion.sample` (``benchmarks/eval_segmentation.py``) and are not published values;
# the anatomy or physics quoted next to them is why they are plausible, not where they come
# from. Provenance rule strings are built from these names, so a changed constant changes
# the recorded rule.
#
# References used below:
#   [H73] Hounsfield GN. Computerized transverse axial scanning (tomography). Br J Radiol
#         1973;46:1016-1022 (air -1000 HU, water 0 HU by definition of the scale).
#   [K88] Kvist H et al. Total and visceral adipose-tissue volumes derived from measurements
#         with computed tomography in adult men and women. Am J Clin Nutr 1988;48:1351-1361
#         (adipose tissue -190..-30 HU).
#   [HU01] Hu S, Hoffman EA, Reinhardt JM. Automatic lung segmentation for accurate
#         quantitation of volumetric X-ray CT images. IEEE Trans Med Imaging 2001;20:490-498
#         (-500 HU initial air/tissue threshold).
#   [S11] Schreiber JJ et al. Hounsfield units for assessing bone mineral density and
#         strength. J Bone Joint Surg Am 2011;93:1057-1063 (trabecular vertebral bone mostly
#         below 200 HU; cortical bone far above).
#   [B05] Israel GM, Bosniak MA. An update of the Bosniak renal cyst classification system.
#         Urology 2005;66:484-488 (simple fluid 0-20 HU).
#   [P06] Park SH et al. Macrovesicular hepatic steatosis in living liver donors: use of CT
#         for quantitative and qualitative assessment. Radiology 2006;239:105-112 (unenhanced
#         liver below 40 HU = steatosis).
#   [NA76] New PF, Aronow S. Attenuation measurements of whole blood and blood fractions in
#         computed tomography. Radiology 1976;121:635-640 (unenhanced blood about 40-60 HU).
#   [H02] Hager A et al. Diameters of the thoracic aorta throughout life as measured with
#         helical computed tomography. J Thorac Cardiovasc Surg 2002;123:1060-1066.
#   [W09] Wahl RL et al. From RECIST to PERCIST. J Nucl Med 2009;50 Suppl 1:122S-150S.
#   [B15] Boellaard R et al. FDG PET/CT: EANM procedure guidelines for tumour imaging:
#         version 2.0. Eur J Nucl Med Mol Imaging 2015;42:328-354 (physiological urinary,
#         renal and hepatic FDG uptake; 2-4 mm PET voxels).
#   [G41] Standring S (ed). Gray's Anatomy, 41st ed. Elsevier 2016 (kidneys, ureters,
#         bladder, pelvic girdle, vertebral column).
#   [W07] Wang Y, Chiu E, Rosenberg J, Gambhir SS [author list unverified]. Standardized
#         uptake value atlas: characterization of physiological 2-deoxy-2-[18F]fluoro-D-
#         glucose uptake in normal tissues. Mol Imaging Biol 2007;9:83-90 (normal-organ
#         SUVs on FDG PET/CT, 98 patients; per-organ values not checked beyond the abstract).
#   [U18] [authors unverified] A novel use of attenuation value (Hounsfield unit) in
#         non-contrast CT: diagnosis of urinary tract infection. Int Urol Nephrol 2018
#         (doi:10.1007/s11255-018-1945-3; urine in the bladder, culture-negative: median
#         12 HU, range 0-32 HU).
#   [OB]  Obstetric pelvimetry: the true conjugate (sacral promontory to the top of the
#         pubic symphysis) is normally about 11 cm, contracted below 10 cm (Williams
#         Obstetrics [edition unverified]).
#
# Real-data audit: ``benchmarks/audit_ct_real.py`` measures, for the constants below, the
# bounded quantity on the real scans of ../shared/data (TS-CT = TotalSegmentator example
# trunk CT with its labels of slices 82-111; QIN / STS = the QIN-HEADNECK-0139 and
# STS_001 whole-body FDG PETs, organs located in hand-placed boxes); "real:" clauses quote
# it, with p05..p95 over an organ's interior (6 mm inside its label).

#: HU thresholds used by the rules (non-contrast CT). Body: above -500 HU, halfway between
#: air (-1000 HU) and water (0 HU) [H73], the initial air/tissue threshold of [HU01]
#: (real: every TS-CT labelled voxel lies in the body mask).
BODY_HU = -500.0
#: Bone: at least 200 HU. Cortical bone lies far above, trabecular vertebral bone mostly
#: below [S11]: the mask is the cortical shell and dense bone, all the rules need (real:
#: TS-CT vertebral interior median 114 HU).
BONE_HU = 200.0
#: Fluid (urine): the upper bound of fat (-30 HU [K88]) to 35 HU (simple fluid 0-20 HU
#: [B05], widened for low-dose CT noise; the upper bound was chosen on the generator seeds;
#: unenhanced urine reaches 32 HU [U18]). Real: TS-CT urine median 19, p95 34 HU (1 HU
#: margin), bile p05..p95 -22..25 HU.
FLUID_HU = (-30.0, 35.0)
#: Soft tissue: above fat (-30 HU [K88]) and up to 100 HU (unenhanced parenchyma, muscle and
#: blood lie at about 30-70 HU [NA76], [P06]); the upper bound is a choice, below bone
#: (real: TS-CT interior p95 liver 67, spleen 54, kidney 39, erector spinae 52 HU).
SOFT_HU = (-30.0, 100.0)
#: CT value given to working-grid voxels outside the CT field of view: air [H73], at the
#: bottom of the usual 12-bit CT range.
OUTSIDE_CT_HU = -1024.0

#: Without a PET the CT is resampled to voxels of at least this size (mm): a clinical
#: whole-body PET voxel is 2-4 mm [B15]; the value is a speed choice, not a published one.
WORKING_MIN_VOXEL_MM = 3.0
#: Bone components smaller than this (mL) are dropped as noise or calcification; chosen on
#: the generator seeds (the smallest bone the rules use, a vertebral body slice, is larger;
#: real: the one whole TS-CT vertebra of the labelled slab holds 15.5 mL >= 200 HU).
BONE_MIN_COMPONENT_ML = 1.0
#: Sigma (mm) of the 3-D Gaussian applied to the PET before the liver rule: about one PET
#: voxel [B15]; chosen on the generator seeds (real voxels: QIN 3.4 mm, STS 4.7 mm).
PET_SMOOTHING_SIGMA_MM = 4.0

#: Pelvic inlet (arcuate line on the lateral pelvic wall) placed this fraction of the way
#: from the iliac crests down to the top of the pubic symphysis, or this depth below the
#: crests when the symphysis is outside the field of view. Geometric estimate from the
#: pelvic girdle [G41], tuned on the generator seeds; not a published value (not verifiable
#: on the real data: no arcuate-line truth).
INLET_FRACTION = 0.35
INLET_DEFAULT_DEPTH_MM = 45.0

#: A spine spanning fewer millimetres than this (two vertebrae; an adult vertebral body is
#: roughly 20-35 mm tall [G41]) is dropped as implausible.
MIN_SPINE_LENGTH_MM = 40.0
#: Spine search strip: bone within this distance (mm, left-right) of the body's x-centre
#: (an adult vertebral body is about 40-50 mm wide [G41]; real: TS-CT vertebral centroids
#: within 3.7 mm of it) ...
SPINE_MAX_MIDLINE_OFFSET_MM = 30.0
#: ... and posterior of the body's y-centre less this margin (mm); chosen on the seeds
#: (real: the TS-CT vertebral-body front lies >= 1.7 mm posterior of the y-centre).
SPINE_ANTERIOR_MARGIN_MM = 10.0
#: Smallest in-plane area (mm^2, 0.5 cm^2) of a slice's spine component: rejects bone
#: specks, far below a vertebral cross-section [G41]. Was 0.8 cm^2 (generator seeds);
#: real: the TS-CT >= 200 HU strip is >= 135 mm^2 on 29 of 30 labelled slices but 63 mm^2
#: on one disc-level slice, which 80 mm^2 dropped (vertebra Dice 0.796 -> 0.821 at 50;
#: the 12 generator seeds' anatomy unchanged) (benchmarks/audit_ct_real.py).
SPINE_MIN_AREA_MM2 = 50.0
#: Trabecular bone of the vertebral body: about 100-250 HU in adults, below 110 HU in
#: osteoporosis [S11]; unenhanced soft tissue stays below 100 HU [NA76]. The spine component
#: grows into this range (same slice, within the midline strip) so that a vertebral body
#: whose cortex is thinner than the voxel is whole (real CT, benchmarks/eval_anatomy_real.py).
SPINE_TRABECULAR_HU = 100.0
#: The anterior vertebral border is the most anterior spine voxel within this distance
#: (mm) of the axis, i.e. on the vertebral body rather than a transverse process [G41].
SPINE_BODY_HALF_WIDTH_MM = 15.0
#: Running-median window (slices) and the distance (mm) from it beyond which a slice's axis
#: point is an outlier; chosen on the generator seeds (real: the TS-CT vertebral axis stays
#: within 1.3 mm of its 7-slice median).
SPINE_MEDIAN_WINDOW_SLICES = 7
SPINE_OUTLIER_MM = 20.0

#: Iliac crests: bone of at least this area (mm^2, 1 cm^2) on each side ...
ILIAC_MIN_AREA_MM2 = 100.0
#: ... farther than this (mm) from the spinal axis: lateral of the sacrum and the lumbar
#: vertebrae (iliac wings, acetabula, femora [G41]); chosen on the generator seeds (real:
#: TS-CT iliac bone median |dx| 96 mm on the crest slice the rule finds).
ILIAC_MIN_LATERAL_MM = 60.0
#: Largest gap (mm) tolerated in the bottom-up run of slices with bone on both sides
#: (the sacro-iliac notch, partial volume); chosen on the generator seeds (not verifiable:
#: no pelvic labels on the real CT).
ILIAC_RUN_MAX_GAP_MM = 12.0
#: Pubic symphysis: bone within this distance (mm) of the midline ...
SYMPHYSIS_MAX_MIDLINE_MM = 25.0
#: ... and more than this (mm) anterior of the spinal axis [G41]: the symphysis lies about
#: the true conjugate (about 11 cm [OB]) in front of the sacral promontory. Was 60 mm
#: (generator seeds); real: on the TS-CT the sacral promontory lies 62 mm in front of the
#: axis and was taken for the symphysis (placing the pelvic inlet >= 40 mm too high). The
#: seeds' symphysis lies 121-141 mm in front (their anatomy unchanged at 90)
#: (benchmarks/audit_ct_real.py).
SYMPHYSIS_MIN_ANTERIOR_MM = 90.0

#: Bladder search box: within this distance (mm) of the spinal axis (left-right) and
#: anterior of it; a full adult bladder is centred on the midline [G41]; chosen on the seeds
#: (real: bladder 50 %-of-max region within 28 mm (QIN) and 23 mm (STS) of the midline).
BLADDER_MAX_MIDLINE_MM = 70.0
#: Hot bladder candidates: PET >= max(this SUV, this fraction of the local maximum); urine
#: is the hottest physiological FDG activity of the pelvis [B15], [W07]; chosen on the
#: seeds (real: bladder SUVmax 90 (QIN), 67 (STS); the hot fraction is not verifiable).
BLADDER_MIN_SUV = 4.0
BLADDER_HOT_FRACTION = 0.3
#: The candidate's core is the part above this fraction of its maximum ...
BLADDER_CORE_FRACTION = 0.7
#: ... of at least this volume (mL; real: 21 mL (QIN), 18 mL (STS)) ...
BLADDER_MIN_CORE_ML = 2.0
#: ... whose median CT is below this (HU): fluid (0-20 HU [B05]; real: TS-CT urine median
#: 19 HU), not a soft-tissue lesion ...
BLADDER_CORE_MAX_HU = 30.0
#: ... and whose centre is within this distance (mm) of the midline; chosen on the seeds
#: (real: core centroid 0.9 mm (QIN), 1.1 mm (STS) from the body midline). The CT-only
#: bladder must be centred within it too: on the TS-CT, whose real bladder lies on slices
#: cut by the image edge (not trunk slices, not searched), a 34 mL bowel loop 48 mm left
#: of the midline was taken for the bladder.
BLADDER_CORE_MAX_MIDLINE_MM = 40.0
#: Bladder mask: the region above this fraction of the maximum (iso-contour) ...
BLADDER_ISO_FRACTION = 0.5
#: ... united with the CT fluid within this distance (mm) of it ...
BLADDER_FLUID_REACH_MM = 8.0
#: ... connected to the core dilated by this distance (mm); chosen on the generator seeds
#: (fraction and reaches not verifiable: no real PET/CT pelvis).
BLADDER_CORE_REACH_MM = 4.0
#: CT-only bladder: midline fluid opened by a ball of this radius (mm), kept when at least
#: this volume (mL; an adult bladder holds up to 400-600 mL [G41]); chosen on the seeds
#: (not verifiable: the TS-CT bladder is not on a trunk slice, see
#: BLADDER_CORE_MAX_MIDLINE_MM).
BLADDER_CT_OPENING_MM = 4.0
BLADDER_CT_MIN_ML = 20.0

#: Liver: CT range (HU) of the 3-voxel mean; unenhanced normal liver is above 40 HU [P06]
#: (the lower bound 38 HU tolerates noise), the upper bound is that of :data:`SOFT_HU`.
#: Real: TS-CT normal liver (median 46 HU) interior 3-voxel mean p05..p95 35..55 HU, so
#: 38 HU cuts its low tail and would cut most of a mildly steatotic liver; NOT changed:
#: 25 HU moves the liver sphere and PERCIST/Deauville results on the generator seeds
#: (benchmarks/audit_ct_real.py docstring). A liver not found in this range is searched
#: in :data:`LIVER_STEATOTIC_HU`.
LIVER_HU = (38.0, 100.0)
#: ... and when no liver of :data:`MIN_LIVER_ML` is found in that range, the rule is run once
#: more in this range (HU), for a fatty liver: unenhanced liver attenuation is below 40 HU
#: in macrovesicular steatosis [P06] and falls further as the fat fraction rises (a voxel's
#: HU is about the volume-weighted mean of its tissues, and fat lies at -190..-30 HU
#: [K88]); the lower bound stays above the adipose range, and the PET range and the
#: uniform-uptake test keep bowel and gallbladder out.
#: Real: the TotalSegmentator trunk CT's liver (median 46 HU) lowered by 15-50 HU, with a
#: PET painted at the real PETs' liver and kidney SUVs (benchmarks/eval_fatty_liver_real.py):
#: the first range alone finds no liver and no PERCIST reference; with this one the liver
#: has Dice 0.75-0.86 and its sphere lies wholly in the real liver (SUVmean 2.30-2.31 of
#: 2.3), but the right kidney (real HU -13..39) is merged into it when its uptake lies in the
#: liver's uniform band (84 of 108 mL): a warning says so. The generator seeds never reach
#: this range (their results are unchanged).
LIVER_STEATOTIC_HU = (-10.0, 100.0)
#: Size (voxels) of the cubic mean filter applied to the CT before the liver rule.
LIVER_HU_FILTER_VOXELS = 3
#: Smoothed PET range (SUV) of liver; normal liver FDG uptake lies at about SUV 2-3 [W09],
#: [B15], [W07]; the range was chosen on the generator seeds (real: 3 cm sphere, smoothed,
#: p01..p99 2.1..3.0 (QIN), 1.8..2.3 (STS)).
LIVER_SUV = (1.2, 4.0)
#: Uniform uptake: liver voxels within this fraction of the organ's median uptake (drops
#: kidney and lesions); chosen on the generator seeds (real: 95 % of a 3 cm liver sphere
#: within 16 % (QIN), 11 % (STS) of its median).
LIVER_UNIFORM_FRACTION = 0.35
#: A liver candidate smaller than this is dropped as implausible (an adult liver holds
#: about 1-2 L [G41]).
MIN_LIVER_ML = 300.0

#: Radius of the PERCIST liver sphere (3 cm diameter) and of the blood-pool cylinder (1 cm
#: diameter, 2 cm long) [W09].
LIVER_SPHERE_RADIUS_MM = 15.0
BLOOD_POOL_RADIUS_MM = 5.0
BLOOD_POOL_LENGTH_MM = 20.0
#: Liver sphere placement: in the right lobe (more than this (mm) right of the spinal
#: axis [W09] "right lobe"), ...
LIVER_RIGHT_LOBE_MM = 30.0
#: ... with a penalty of this many mm of depth per mm away from the dome-tip mid-level, ...
LIVER_MID_LEVEL_PENALTY_MM_PER_MM = 0.25
#: ... avoiding places whose local mean (cube of this side, mm: the sphere's diameter)
#: differs from the liver median by more than this fraction (penalty in mm of depth);
#: chosen on the generator seeds (placement preferences: not verifiable on the real data).
LIVER_LOCAL_MEAN_MM = 30.0
LIVER_HOTSPOT_FRACTION = 0.2
LIVER_HOTSPOT_PENALTY_MM = 20.0

#: Kidneys: paraspinal, |dx| in this range (mm; the renal hilum lies about 5 cm from the
#: median plane [G41]; real: TS-CT kidney labels 35..105 mm, PET renal pelves 54-72 mm) ...
KIDNEY_DX_MM = (25.0, 150.0)
#: ... dy (mm, posterior positive) in this range around the spinal axis (real: TS-CT
#: kidney labels -46..25 mm) ...
KIDNEY_DY_MM = (-90.0, 70.0)
#: ... and PET at least this SUV (renal FDG excretion [B15], [W07]); chosen on the seeds
#: (real: median of a 15 mm sphere at the renal pelvis 4.4 / 7.3 (QIN), 2.2 / 4.5 (STS)).
KIDNEY_MIN_SUV = 1.5
#: The mirrored right side is shifted up to this much (mm) cranio-caudally (the right
#: kidney usually lies lower than the left [G41]) and antero-posteriorly to overlap the left
#: (real: TS-CT upper poles 9 mm, centroids 3 mm apart).
KIDNEY_MAX_SHIFT_Z_MM = 40.0
KIDNEY_MAX_SHIFT_Y_MM = 12.0
#: A voxel has a mirror partner when the mirrored other side lies within this distance (mm).
KIDNEY_PARTNER_REACH_MM = 4.0
#: A kidney smaller than this (mL) is dropped (an adult kidney holds about 120-170 mL [G41]).
KIDNEY_MIN_ML = 20.0
#: Smallest |cosine| of the x axis with the LPS x direction for the spinal-axis column to be
#: used as the mirror plane (axis-aligned grid).
AXIS_ALIGNED_MIN_COSINE = 0.99

#: Shortest cranio-caudal extent (mm) of a hot thin tube taken for a ureter segment (the
#: ureter is 25-30 cm long [G41]; 50 mm was chosen on generator seeds 12 and 15). Real:
#: the STS ureter's SUV >= 3 segment above the bladder spans 45.8 mm, so the rule misses
#: it; NOT changed: at 30 mm a pelvic-wall nodule passed for a ureter on the seeds.
URETER_MIN_LENGTH_MM = 50.0
#: Ureter candidates: PET at least this SUV (urine [B15]; real: STS ureter median per-slice
#: maximum 6.4) ...
URETER_MIN_SUV = 3.0
#: ... within this distance (mm) of the spinal axis (real: STS ureter <= 37 mm) ...
URETER_MAX_MIDLINE_MM = 100.0
#: ... in components of at most this in-plane area (mm^2, 2 cm^2; the ureter is a few mm
#: wide [G41], the rest is PET blur); chosen on the generator seeds (real: STS ureter
#: SUV >= 3 spot <= 132 mm^2).
URETER_MAX_AREA_MM2 = 200.0

#: Aortic lumen rule: CT range of blood without contrast (HU, [NA76]; the lower bound
#: tolerates noise), lumen area range (mm^2, radius about 7-19 mm; the normal descending
#: aorta is about 2-3 cm wide [H02]), in-plane PET smoothing (mm), PET ceiling as a fraction
#: of the liver median (blood pool is cooler than liver on FDG [W09]; excludes the adjacent
#: liver and its spill-in), the distance kept between the cylinder and the ends of the
#: aortic track, and the lumen radius (relative to its running median) above which a slice
#: is taken as merged with a neighbour. Except the anatomy quoted, chosen on the seeds.
#: Real (TS-CT aorta label): interior p05..p95 21..62 HU, area 252..477 mm^2 per slice,
#: centre step <= 1.8 mm per 3 mm slice; the PET conditions are not verifiable (no PET
#: with the CT; the aorta cannot be told from the mediastinum on the PETs alone).
AORTA_HU = (-20.0, 100.0)
AORTA_AREA_MM2 = (150.0, 1200.0)
AORTA_PET_SIGMA_MM = 2.0
AORTA_LIVER_FRACTION = 0.9
AORTA_END_MARGIN_MM = 20.0
AORTA_MERGED_RATIO = 1.25
#: PET range (SUV) of the lumen: at least this, at most :data:`AORTA_LIVER_FRACTION` x the
#: liver median, or this ceiling without a liver; chosen on the generator seeds (not
#: verifiable on the real data, see above; normal blood pool below liver [W09], [W07]).
AORTA_MIN_SUV = 0.8
AORTA_MAX_SUV_WITHOUT_LIVER = 4.0
#: Search box: 0 to this (mm) anterior of the vertebral body, dx in this range (mm; the
#: descending aorta runs left of the vertebral bodies [G41]; real: TS-CT lumen 0..36 mm in
#: front of the vertebral body, centre dx 10..14 mm).
AORTA_MAX_ANTERIOR_MM = 45.0
AORTA_DX_MM = (-20.0, 45.0)
#: A component is round when its area is at most this multiple of the disc inscribed in it.
AORTA_MAX_AREA_TO_INSCRIBED_RATIO = 3.0
#: The lumen core: the part at least this fraction of the deepest in-plane depth.
AORTA_CORE_DEPTH_FRACTION = 0.5
#: Tracking: first pick within this distance (mm) of the median widest candidate, then
#: within this distance (mm) of the running median of the picks of +- this many slices.
AORTA_FIRST_PICK_MM = 15.0
AORTA_TRACK_PICK_MM = 8.0
AORTA_TRACK_WINDOW_SLICES = 5
#: Runs: the centre moves less than this (mm) per slice; steps of up to this many slices
#: (two missed slices) are bridged.
AORTA_MAX_STEP_MM_PER_SLICE = 6.0
AORTA_MAX_BRIDGE_SLICES = 3
#: Half-window (slices) of the running median of lumen radii for the merged-slice test.
AORTA_RADIUS_WINDOW_SLICES = 3
#: Ties of the cylinder margin within this fraction of the in-plane voxel size.
AORTA_TIE_VOXEL_FRACTION = 0.25

#: Organ names of a user label map (lower case, TotalSegmentator v1/v2 names and a few common
#: synonyms) and the structure each one feeds (see also :func:`organ_target`: every
#: ``vertebrae_*`` feeds the spine, every ``lung_*`` the lungs). The sacrum, S1 and the hip
#: bones form the bony pelvis (its landmarks: iliac crests, pubic symphysis, pelvic inlet);
#: iliopsoas and the great vessels bound the retroperitoneum [G41].
TOTALSEGMENTATOR_NAMES: Mapping[str, AnatomyLabel] = {
    "kidney_left": AnatomyLabel.KIDNEY_LEFT,
    "left_kidney": AnatomyLabel.KIDNEY_LEFT,
    "kidney_cyst_left": AnatomyLabel.KIDNEY_LEFT,
    "kidney_right": AnatomyLabel.KIDNEY_RIGHT,
    "right_kidney": AnatomyLabel.KIDNEY_RIGHT,
    "kidney_cyst_right": AnatomyLabel.KIDNEY_RIGHT,
    "urinary_bladder": AnatomyLabel.BLADDER,
    "bladder": AnatomyLabel.BLADDER,
    "ureter": AnatomyLabel.URETERS,
    "ureters": AnatomyLabel.URETERS,
    "ureter_left": AnatomyLabel.URETERS,
    "ureter_right": AnatomyLabel.URETERS,
    "liver": AnatomyLabel.LIVER,
    "spleen": AnatomyLabel.SPLEEN,
    "aorta": AnatomyLabel.AORTA,
    "heart": AnatomyLabel.HEART,
    "heart_myocardium": AnatomyLabel.HEART,
    "heart_atrium_left": AnatomyLabel.HEART,
    "heart_atrium_right": AnatomyLabel.HEART,
    "heart_ventricle_left": AnatomyLabel.HEART,
    "heart_ventricle_right": AnatomyLabel.HEART,
    "brain": AnatomyLabel.BRAIN,
    "small_bowel": AnatomyLabel.BOWEL,
    "duodenum": AnatomyLabel.BOWEL,
    "colon": AnatomyLabel.BOWEL,
    "stomach": AnatomyLabel.BOWEL,
    "esophagus": AnatomyLabel.BOWEL,
    "rectum": AnatomyLabel.BOWEL,
    "sigmoid": AnatomyLabel.BOWEL,
    "iliac_artery_left": AnatomyLabel.ILIAC_VESSELS,
    "iliac_artery_right": AnatomyLabel.ILIAC_VESSELS,
    "iliac_vena_left": AnatomyLabel.ILIAC_VESSELS,
    "iliac_vena_right": AnatomyLabel.ILIAC_VESSELS,
    "sacrum": AnatomyLabel.PELVIS,
    "hip_left": AnatomyLabel.PELVIS,
    "hip_right": AnatomyLabel.PELVIS,
    "vertebrae_s1": AnatomyLabel.PELVIS,
    "inferior_vena_cava": AnatomyLabel.VENA_CAVA,
    "superior_vena_cava": AnatomyLabel.VENA_CAVA,
    "vena_cava": AnatomyLabel.VENA_CAVA,
    "iliopsoas_left": AnatomyLabel.PSOAS,
    "iliopsoas_right": AnatomyLabel.PSOAS,
    "psoas_left": AnatomyLabel.PSOAS,
    "psoas_right": AnatomyLabel.PSOAS,
    "psoas_major_left": AnatomyLabel.PSOAS,
    "psoas_major_right": AnatomyLabel.PSOAS,
    "psoas": AnatomyLabel.PSOAS,
    "iliac_vessels": AnatomyLabel.ILIAC_VESSELS,
}


# CT-only organ rules (no PET; e.g. a CT alone or a NIfTI CT). Non-contrast HU ranges and
# positions relative to the spinal axis; checked on a real Siemens Biograph mCT trunk CT
# against TotalSegmentator labels (benchmarks/eval_anatomy_real.py).
#: Liver and spleen parenchyma, unenhanced: liver 50-65 HU normal, below 40 HU steatotic
#: [P06]; spleen about 8-10 HU below the liver (Boyce CJ et al., AJR 2010;194:623-628). The
#: lower bound takes mild steatosis and the 3 mm partial volume (real, chosen on this CT:
#: TS-CT interior 3-voxel mean p05..p95 liver 35..55, spleen 27..41 HU).
CT_LIVER_HU = (25.0, 90.0)
CT_SPLEEN_HU = (15.0, 80.0)
#: Opening radius (mm) that detaches the liver/spleen from the abdominal wall and the
#: diaphragm muscles (about 5-15 mm thick [G41]) before the largest component is taken.
CT_ORGAN_OPENING_MM = 9.0
#: Least volume (mL) of a CT-only spleen (normal spleen about 100-250 mL [G41]; real: the
#: TS-CT spleen holds 255 mL on the labelled slab alone).
CT_MIN_SPLEEN_ML = 50.0
#: The spleen lies in the left upper quadrant, lateral to the left kidney against the
#: lateral abdominal wall (ribs 9-11) [G41]: candidate voxels at dx >= the first value, and
#: the component's centroid at dx >= the second (the left kidney, whose centroid lies about
#: 70 mm from the axis, is not a spleen; real spleen centroid about 105 mm,
#: benchmarks/eval_anatomy_real.py; real: spleen label dx >= 45 mm).
CT_SPLEEN_MIN_DX_MM = 40.0
CT_SPLEEN_MIN_CENTROID_DX_MM = 85.0
#: Unenhanced renal parenchyma is about 30-40 HU (Israel & Bosniak [B05]); at 3 mm the
#: renal sinus fat and the perirenal fat lower it: range used (the upper bound overlaps
#: the lower part of the muscle range, about 40-60 HU). Without PET the paraspinal muscles
#: are as mirror-symmetric as the kidneys, so the search stops this far (mm) behind the
#: spinal axis: the kidneys lie in front of the erector spinae, their posterior surface
#: about level with the transverse processes [G41]. Both chosen on the one real CT of
#: benchmarks/eval_anatomy_real.py (kidney Dice 0.84/0.81 there; 0.0 with the PET-path
#: posterior limit of 70 mm, which lets the paraspinal muscles win; real: kidney interior
#: p05..p95 -13..39 HU, label dy p95 18 / 15 mm).
CT_KIDNEY_HU = (-15.0, 50.0)
CT_KIDNEY_MAX_DY_MM = 35.0
#: CT-only aortic lumen: unenhanced blood 40-60 HU [NA76], widened by 20 HU for noise and
#: partial volume (3 x 3 in-plane mean); the lumen is the disc inscribed in that range at
#: the deepest point (at least this radius, mm: the abdominal aorta is about 2 cm wide
#: [H02]) within this distance (mm) of the running median of the slices' deepest points
#: (+- AORTA_TRACK_WINDOW_SLICES x 2). Without PET the lumen merges with the crura and the
#: IVC in the -20..100 HU range, so the round-component rule of the PET path fails there
#: (real-CT Dice 0.41 against 0.72 for the inscribed disc, benchmarks/eval_anatomy_real.py;
#: real: aorta interior 3 x 3 mean p05..p95 26..50 HU, inscribed radius >= 8.5 mm).
CT_AORTA_HU = (20.0, 70.0)
CT_AORTA_MIN_RADIUS_MM = 6.0
CT_AORTA_TRACK_MM = 25.0


class AnatomyWarning(EmlesionWarning):
    """A structure could not be found, or was found by a fallback rule."""


# ---------------------------------------------------------------------------- helpers
def _remove_small(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    lab, n = ndi.label(mask, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return mask.astype(bool)
    counts = np.bincount(lab.ravel())
    keep = counts >= min_voxels
    keep[0] = False
    return keep[lab]


def _crop_apply(
    mask: np.ndarray, margin: int | tuple[int, ...], fn: Callable[..., np.ndarray],
    *others: np.ndarray,
) -> np.ndarray:
    """``fn`` applied to ``mask`` cropped to its box grown by ``margin`` voxels.

    ``fn`` receives the cropped mask (or, with ``others``, the tuple of the cropped mask
    and the same crop of each of ``others``) and returns a mask of the crop's shape, which
    is placed into an all-False array of ``mask``'s shape. The caller chooses ``margin``
    so that the result is the same as on the whole array: at least the reach of the
    structuring elements used (twice for a closing, plus one for a hole filling).
    """
    out = np.zeros(mask.shape, bool)
    box = padded_box(mask, margin)
    if box is None:
        return out
    out[box] = fn((mask[box], *(o[box] for o in others)) if others else mask[box])
    return out


def _interp_nan(values: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaN entries between known ones (NaN kept outside the range)."""
    out = np.asarray(values, dtype=float).copy()
    ok = np.isfinite(out)
    if ok.sum() < 2:
        return out
    idx = np.arange(out.size)
    lo, hi = idx[ok][0], idx[ok][-1]
    inner = (idx >= lo) & (idx <= hi) & ~ok
    out[inner] = np.interp(idx[inner], idx[ok], out[ok])
    return out


def _suv_scale(pet: Volume, body: np.ndarray) -> tuple[np.ndarray, str]:
    """PET values on an SUV-like scale (returned as float32) and the rule used.

    An SUV image (units ``SUV...``/``SUL...``) and a PET stored as an SUV in g/mL (DICOM
    ``Units`` GML, with its ``SUVType``: PS3.3 C.8.9.1.1.3; IBSI SUV manual) are used as
    they are; any other unit is divided by the body median, with a warning.
    """
    arr = np.asarray(pet.array, dtype=np.float32)
    if is_suv_units(pet.units):
        return arr, f"PET used as is ({pet.units})"
    vals = arr[body & (arr > 0)]
    med = float(np.median(vals)) if vals.size else 1.0
    warn_external(
        format_message(
            f"PET units {pet.units or 'unknown'} are not an SUV; PET values were divided by "
            f"the body median ({med:.4g}) so that organ rules can use SUV-like levels",
            series=pet.identity.series_instance_uid or None,
            fix="pass the output of emlesion.suv.compute_suv",
        ),
        AnatomyWarning,
    )
    return (arr / (med if med > 0 else 1.0)).astype(np.float32), "PET / body median (not SUV)"


def _working_grid(ct: Volume, pet: Volume | None) -> Grid:
    if pet is not None:
        return pet.grid
    sx, sy, sz = ct.grid.spacing_mm
    factors = [max(1, round(WORKING_MIN_VOXEL_MM / s)) for s in (sx, sy, sz)]
    if factors == [1, 1, 1]:
        return ct.grid
    nz, ny, nx = ct.grid.shape
    shape = (max(1, nz // factors[2]), max(1, ny // factors[1]), max(1, nx // factors[0]))
    spacing = (sx * factors[0], sy * factors[1], sz * factors[2])
    # keep the field of view centred: first new voxel centre at the mean of the first block
    shift = np.array([(f - 1) / 2.0 * s for f, s in zip(factors, (sx, sy, sz))])
    origin = np.asarray(ct.grid.origin_mm) + ct.grid.direction_matrix @ shift
    return Grid(shape, (float(origin[0]), float(origin[1]), float(origin[2])), spacing,
                ct.grid.direction)


# ---------------------------------------------------------------------------- main
def segment_anatomy(
    ct: Volume | None,
    pet: Volume | None = None,
    *,
    organ_labels: LabelMap | None = None,
    organ_names: Mapping[str, AnatomyLabel | str] | None = None,
) -> Anatomy:
    """Delineate the body, skeleton, landmarks and abdominal organs of one PET/CT timepoint.

    Parameters
    ----------
    ct : Volume or None
        CT in HU. ``None`` runs the PET-only fallback: body and brain from the PET alone
        (see Notes); ``pet`` is then required.
    pet : Volume, optional
        PET of the same frame of reference, ideally an SUV image from
        :func:`emlesion.suv.compute_suv`. Without it (CT-only path) liver, spleen, kidneys
        and aorta come from the CT-only rules (``_ct_only_organs``: HU ranges and positions,
        checked on one real CT in ``benchmarks/eval_anatomy_real.py``), the bladder from CT
        alone, the myocardium is not searched and the brain is not PET-checked.
    organ_labels : LabelMap, optional
        A user organ label map (e.g. :func:`emlesion.io.organs.load_organ_map` of a
        TotalSegmentator output). Every named organ it contains replaces the classical one
        and is used by the rules that depend on it (e.g. the kidney search excludes the
        map's liver; the map's hip bones and sacrum give the pelvic landmarks; the map's
        aorta the blood-pool cylinder); the classical rules fill in what it lacks, and
        :attr:`Anatomy.organ_sources` says which organ came from where.
    organ_names : Mapping[str, AnatomyLabel], optional
        Extra name -> structure mapping for ``organ_labels`` (added to
        :data:`TOTALSEGMENTATOR_NAMES`; names are compared in lower case).

    Returns
    -------
    Anatomy
        Masks on the PET grid (on a >= 3 mm CT-derived grid without PET), landmarks,
        reference VOIs, the :class:`~emlesion.anatomy.fov.FieldOfView` and one provenance
        step per structure.

    Raises
    ------
    MaskError
        When neither a CT nor a PET is given.

    Notes
    -----
    Rules, in order (``dx`` is the distance from the spinal axis along x, LPS). The numbers
    quoted are the values of the module constants (``BODY_HU``, ``BONE_HU``, ...; their
    sources are cited where they are defined); the provenance rule strings are built from
    the constants themselves.

    1. *Body*: CT > -500 HU, holes filled slice by slice, largest 3-D component.
    2. *Bone*: CT >= 200 HU inside the body, components < 1 mL dropped.

    *Field of view* (:mod:`emlesion.anatomy.fov`): trunk slices (body cross-section
    >= 200 mm wide, >= 250 cm^2, not cut by the image edge), lungs, head. Spine, pelvis
    landmarks, bladder, liver, kidneys, ureters and aorta are searched on trunk slices
    only, and only when the scan has any; a spine shorter than 40 mm is dropped. Brain
    and heart are searched when the head and the lungs are in the field of view (rules
    in :mod:`emlesion.anatomy.fov`). A candidate that fails its size, position, HU or
    uptake check is dropped with an :class:`AnatomyWarning` (recorded in provenance).

    3. *Spine axis*: per slice, the largest bone component within 30 mm of the body's
       x-centre and posterior to its y-centre; its centroid is the axis point, its
       most anterior voxel the anterior vertebral border; gaps are interpolated.
    4. *Iliac crests*: going up from the lowest slice, the run of slices with bone on both
       sides at ``|dx| > 60 mm`` (iliac wings, acetabula, femora; gaps <= 12 mm tolerated);
       its top is the crest level. *Pelvis* = bone at or below that level.
    5. *Pubic symphysis*: top of the bone within 25 mm of the midline and > 90 mm anterior
       of the spinal axis, below the crests. *Pelvic inlet level*: the axial level of the
       arcuate line (linea terminalis) on the lateral pelvic wall, estimated as
       ``crest - 0.35 x (crest - symphysis top)`` (``crest - 45 mm`` without a symphysis).
       The true inlet plane is oblique (promontory to symphysis); on the side walls, where
       pelvic-wall masses arise, it runs at about this level.
    6. *Bladder*: below the crests, ``|dx| < 70 mm``, anterior of the spine: the hottest PET
       component (>= 30 % of the local maximum and >= 4) whose core is fluid (mean
       CT < 30 HU); mask = its 50 %-of-max PET region united with the CT fluid
       (-30..35 HU) inside it dilated by 8 mm. CT-only fallback: largest midline fluid
       component > 20 mL, centred within 40 mm of the midline.
    7. *Liver*: largest component of CT 38-100 HU with PET 1.2-4.0 (Gaussian-smoothed)
       in the right upper quadrant above the crests, kept when >= 300 mL. *PERCIST reference*: 3 cm
       sphere centred in the right lobe at the point farthest from the liver surface,
       preferring the level midway between dome and inferior tip.
    8. *Kidneys*: paraspinal (25 <= ``|dx|`` <= 150 mm) voxels above the crests with CT
       -30..100 HU and PET >= 1.5, liver removed, opened by one voxel; the right side is
       mirrored about the spinal axis and shifted (up to +-40 mm in z, +-12 mm in y) to best
       overlap the left; each kidney is the largest component of the part of its side
       that has a mirror partner (dilated by 4 mm). A unilateral lesion touching a kidney
       has no mirror partner and is therefore not absorbed into the kidney.
    9. *Ureters*: thin (in-plane area <= 2 cm^2 per slice), vertically running
       (>= :data:`URETER_MIN_LENGTH_MM`) PET-hot (>= 3) structures between kidneys and
       bladder, ``|dx|`` <= 100 mm. (At 30 mm, the hot part of a regressed 4.4 cm long pelvic-wall
       nodule of SUVmax 3.3-3.9 passed for a ureter on 2 of 12 sample seeds and was excluded
       from lesion segmentation: a missed lesion, where a missed urinary segment is a visible
       false-positive lesion.)
    10. *Aorta / blood pool*: per slice above the crests, lumen candidates are round
        components of CT -20..100 HU (blood without contrast), PET (2 mm in-plane
        smoothing) between 0.8 and 0.9 x the liver median (FDG blood pool is cooler than
        liver: this cuts the liver that often abuts the aorta without a fat plane), slice
        holes filled, opened by one voxel, area 1.5-12 cm^2, 0-45 mm anterior of the
        vertebral body and ``dx`` -20..+45 mm; the aorta is the candidate that continues
        its neighbours' track (running median of centres, <= 8 mm; up to two missed
        slices bridged). Lumen radius = area-equivalent radius; centre = centroid of the
        lumen core (in-plane distance to the edge >= half the deepest); a slice whose
        radius exceeds 1.25 x the running median has merged with a neighbour and is not
        used. The PERCIST 1 cm x 2 cm cylinder lies on the lumen axis (mean of the
        centres of its slices) where the worst margin between its surface and the lumen
        edge is largest (ties within 1 mm: the most cranial), >= 20 mm from the track's
        ends when the track allows (bifurcation, diaphragm, field-of-view edge). PERCIST
        specifies the descending *thoracic* aorta: it is used when the lungs are in the
        field of view and the track has 2 cm on lung slices; otherwise the abdominal
        aorta is the fallback (recorded in the rule). On 4 mm voxels the cylinder holds
        20-30 voxels: its mean (reported, as in PERCIST) has a noise SD of about 0.1 SUV
        on the sample study (6.5 mm PSF, correlated noise).
    11. *Brain*, *heart*, *myocardium*, *lungs*: :mod:`emlesion.anatomy.fov`.

    PET-only fallback (``ct=None``): body = largest region of smoothed uptake above 30 %
    of the median positive uptake, slice holes filled; brain = the large very hot region
    at the cranial end (:func:`emlesion.anatomy.fov.find_brain_pet`). No other organ,
    no spinal axis and no landmark is available then.

    References
    ----------
    .. [1] Wahl RL, Jacene H, Kasamon Y, Lodge MA. From RECIST to PERCIST. J Nucl Med
       2009;50 Suppl 1:122S-150S (3 cm liver sphere; blood-pool cylinder).
    .. [2] Wasserthal J et al. TotalSegmentator. Radiol Artif Intell 2023;5:e230024
       (organ names accepted in ``organ_labels``).
    """
    if ct is None:
        if pet is None:
            raise MaskError(format_message("segment_anatomy needs a CT or a PET",
                                           fix="pass ct= and/or pet="))
        return _segment_pet_only(pet)
    steps: list[ProvenanceStep] = []
    masks: dict[AnatomyLabel, np.ndarray] = {}
    with record_warnings() as rec:
        frame = _working_frame(ct, pet)
        grid = frame.grid
        # user organ map: every organ it names replaces the classical rule's, and is used
        # by the rules that depend on it (heuristics only fill in what the map lacks)
        user: dict[AnatomyLabel, np.ndarray] = {}
        if organ_labels is not None:
            user = _organ_masks(organ_labels, grid, organ_names)
        body, bone = _body_and_bone(frame, masks, steps)
        # field of view: trunk slices, lungs
        trunk = trunk_slices(body, grid)
        lungs, lung_rule = find_lungs(frame.hu, body, trunk, frame.x3, grid)
        axis = _spinal_axis(frame, body, bone, trunk, masks, steps)
        levels = _pelvic_landmarks(frame, bone, trunk, lungs, axis, user, masks, steps)
        suv: np.ndarray | None = None
        scale_rule = ""
        if pet is not None:
            suv, scale_rule = _suv_scale(pet, body)
        blood_ref = _trunk_organs(frame, body, bone, trunk, lungs, axis, levels, suv,
                                  scale_rule, user, organ_labels, masks, steps)
        brain_rule, head_z = _brain_and_heart(frame, body, bone, trunk, lungs, axis, suv,
                                              masks, steps)
        fov = _field_of_view(frame, trunk, lungs, lung_rule, brain_rule, head_z,
                             levels.crest_z is not None)
        steps.insert(2, ProvenanceStep("emlesion.anatomy.field_of_view", rule=fov.rule,
                                       inputs=fov.to_dict()))
        sources, liver_ref, blood_ref = _organ_map_and_references(
            frame, axis, lungs, suv, user, organ_labels, blood_ref, masks, steps)
    step = ProvenanceStep("emlesion.anatomy.segment_anatomy",
                          rule="classical HU/PET thresholds + morphology"
                          + (" + user organ labels" if organ_labels is not None else ""),
                          inputs={"ct_series": ct.identity.series_instance_uid,
                                  "pet_series": pet.identity.series_instance_uid if pet else None},
                          warnings=rec.as_tuple())
    return Anatomy(
        grid=grid,
        masks=masks,
        spinal_axis_mm=axis.axis_mm,
        vertebral_anterior_y_mm=axis.anterior_y_mm,
        iliac_crest_z_mm=levels.crest_z,
        pubic_symphysis_z_mm=levels.symphysis_z,
        pelvic_inlet_z_mm=levels.inlet_z,
        liver_reference=liver_ref,
        blood_pool_reference=blood_ref,
        field_of_view=fov,
        provenance=(*steps, step),
        organ_sources=sources,
    )


# ---------------------------------------------------------------------------- steps
# The named steps of :func:`segment_anatomy`, in its order. Each one appends its
# provenance step(s) to ``steps`` and its masks to ``masks`` (the order of both, and of
# the warnings, is part of the recorded provenance).
@dataclass(frozen=True)
class _Frame:
    """The working grid of one :func:`segment_anatomy` call, the CT on it (HU) and the LPS
    coordinates (mm) of its voxels (``x3``, ``y3``, ``z3`` broadcast to the grid shape;
    ``z_slice`` one z per slice)."""

    grid: Grid
    hu: np.ndarray
    x3: np.ndarray
    y3: np.ndarray
    z3: np.ndarray
    z_slice: np.ndarray

    @property
    def vox_ml(self) -> float:
        return self.grid.voxel_volume_ml

    @property
    def z_up(self) -> bool:
        """True when the slice index runs towards the head."""
        return bool(self.z_slice[-1] >= self.z_slice[0]) if len(self.z_slice) > 1 else True


@dataclass(frozen=True)
class _Axis:
    """Spinal axis per slice (``axis_mm``: LPS x, y; NaN where unknown), the anterior
    vertebral border, the number of slices where the spine was found, the axis with its
    gaps filled by the median (``ax_x``, ``ax_y``) and every voxel's offset from it
    (``dx``, ``dy``, mm)."""

    axis_mm: np.ndarray
    anterior_y_mm: np.ndarray
    n_slices: int
    ax_x: np.ndarray
    ax_y: np.ndarray
    dx: np.ndarray
    dy: np.ndarray


@dataclass(frozen=True)
class _Levels:
    """Pelvic landmark levels (LPS z, mm, or ``None``) and the voxels at or below
    (``below``) and above (``above``) the level that splits pelvis from abdomen."""

    crest_z: float | None
    symphysis_z: float | None
    inlet_z: float | None
    below: np.ndarray
    above: np.ndarray


def _working_frame(ct: Volume, pet: Volume | None) -> _Frame:
    """The CT resampled onto the working grid (see the module notes) and its coordinates."""
    grid = _working_grid(ct, pet)
    hu = resample_array(np.asarray(ct.array), ct.grid, grid, interpolation="linear",
                        default_value=OUTSIDE_CT_HU).astype(np.float32)
    xs, ys, zs = voxel_centres_mm(grid)
    z_slice = np.asarray(np.broadcast_to(zs, grid.shape)[:, 0, 0], dtype=float)
    return _Frame(grid, hu, np.broadcast_to(xs, grid.shape), np.broadcast_to(ys, grid.shape),
                  np.broadcast_to(z_slice[:, None, None], grid.shape), z_slice)


def _body_and_bone(
    frame: _Frame, masks: dict[AnatomyLabel, np.ndarray], steps: list[ProvenanceStep],
) -> tuple[np.ndarray, np.ndarray]:
    """Rules 1-2 of :func:`segment_anatomy`: body and bone."""
    grid, hu, vox_ml = frame.grid, frame.hu, frame.vox_ml
    body = largest_component(fill_slices(hu > BODY_HU), np.ones((3, 3, 3), bool))
    masks[AnatomyLabel.BODY] = body
    steps.append(ProvenanceStep("emlesion.anatomy.body", rule=f"CT > {BODY_HU:g} HU, slice "
                                "holes filled, largest 3-D component",
                                inputs={"volume_ml": float(body.sum() * vox_ml),
                                        "working_grid_shape": grid.shape,
                                        "working_spacing_mm": grid.spacing_mm}))
    bone = _remove_small((hu >= BONE_HU) & body, max(1, round(BONE_MIN_COMPONENT_ML / vox_ml)))
    masks[AnatomyLabel.BONE] = bone
    steps.append(ProvenanceStep("emlesion.anatomy.bone", rule=f"CT >= {BONE_HU:g} HU in "
                                f"body, components < {BONE_MIN_COMPONENT_ML:g} mL removed",
                                inputs={"volume_ml": float(bone.sum() * vox_ml)}))
    return body, bone


def _spinal_axis(
    frame: _Frame, body: np.ndarray, bone: np.ndarray, trunk: np.ndarray,
    masks: dict[AnatomyLabel, np.ndarray], steps: list[ProvenanceStep],
) -> _Axis:
    """Rule 3 of :func:`segment_anatomy`: spine and spinal axis on the trunk slices (a spine
    shorter than ``MIN_SPINE_LENGTH_MM`` is dropped; without one, the body centres)."""
    grid = frame.grid
    sz = grid.spacing_mm[2]
    trunk3 = np.broadcast_to(trunk[:, None, None], grid.shape)
    axis, ant_y, spine = _spine(bone & trunk3, body, frame.x3, frame.y3, grid, frame.hu)
    spine_ks = np.nonzero(spine.any(axis=(1, 2)))[0]
    spine_len = float((spine_ks.max() - spine_ks.min() + 1) * sz) if spine_ks.size else 0.0
    if 0.0 < spine_len < MIN_SPINE_LENGTH_MM:
        warn_external(format_message(f"spine candidate dropped: it spans {spine_len:.0f} mm "
                                     f"(< {MIN_SPINE_LENGTH_MM:g} mm)"), AnatomyWarning)
        axis = np.full_like(axis, np.nan)
        ant_y = np.full_like(ant_y, np.nan)
        spine = np.zeros_like(spine)
    masks[AnatomyLabel.SPINE] = spine
    n_axis = int(np.isfinite(axis[:, 0]).sum())
    steps.append(ProvenanceStep("emlesion.anatomy.spine", rule="largest bone component "
                                f"within {SPINE_MAX_MIDLINE_OFFSET_MM:g} mm of body "
                                "x-centre, posterior half; slice centroids, gaps "
                                "interpolated",
                                inputs={"slices_with_axis": n_axis}))
    if n_axis == 0:
        warn_external(format_message(
            "no spine found on the CT; the body centre is used as the midline"
            + ("" if trunk.any() else " (no trunk slice in the field of view: trunk "
               "organs are not searched)")), AnatomyWarning)
        axis = _body_centres(body, frame.x3, frame.y3)
    ax_x = np.where(np.isfinite(axis[:, 0]), axis[:, 0], np.nanmedian(axis[:, 0]))
    ax_y = np.where(np.isfinite(axis[:, 1]), axis[:, 1], np.nanmedian(axis[:, 1]))
    return _Axis(axis, ant_y, n_axis, ax_x, ax_y, frame.x3 - ax_x[:, None, None],
                 frame.y3 - ax_y[:, None, None])


def _pelvic_landmarks(
    frame: _Frame, bone: np.ndarray, trunk: np.ndarray, lungs: np.ndarray, axis: _Axis,
    user: Mapping[AnatomyLabel, np.ndarray], masks: dict[AnatomyLabel, np.ndarray],
    steps: list[ProvenanceStep],
) -> _Levels:
    """Rules 4-5 of :func:`segment_anatomy`: iliac crests, pubic symphysis, pelvic inlet
    level and the bony pelvis (from the organ map's hip bones and sacrum when given)."""
    grid, z_slice = frame.grid, frame.z_slice
    sz = grid.spacing_mm[2]
    pelvic_bone = user.get(AnatomyLabel.PELVIS, bone)
    crest_k, symph_k = _pelvic_levels(pelvic_bone, axis.dx, axis.dy, grid, frame.z_up) \
        if trunk.any() else (None, None)
    crest_z = float(z_slice[crest_k]) if crest_k is not None else None
    symph_z = float(z_slice[symph_k]) if symph_k is not None else None
    if crest_z is None:
        inlet_z = None
    elif symph_z is not None:
        inlet_z = crest_z - INLET_FRACTION * (crest_z - symph_z)
    else:
        inlet_z = crest_z - INLET_DEFAULT_DEPTH_MM
    if crest_z is None:
        warn_external(format_message("iliac crests not found (pelvis outside the field of "
                                     "view?); pelvic/retroperitoneal regions use the scan "
                                     "middle"), AnatomyWarning)
    if crest_z is not None:
        split_z = crest_z
    elif lungs.any():  # thorax without pelvis: the whole field lies above the crests
        split_z = float(z_slice.min()) - sz
    else:
        split_z = float(np.median(z_slice))
    below = frame.z3 <= split_z + sz  # at or below the crest level
    above = frame.z3 > split_z
    masks[AnatomyLabel.PELVIS] = bone & below & (crest_z is not None)
    from_map = "hip bones and sacrum of the organ map: " if AnatomyLabel.PELVIS in user \
        else ""
    steps.append(ProvenanceStep("emlesion.anatomy.pelvis", rule=from_map + "iliac crest = "
                                "top of the bottom-up run of slices with bone at "
                                f"|dx|>{ILIAC_MIN_LATERAL_MM:g} mm both sides; symphysis = "
                                "top of anterior midline bone; pelvic inlet = crest - "
                                f"{INLET_FRACTION:g} x (crest - symphysis) (arcuate line "
                                "level)",
                                inputs={"iliac_crest_z_mm": crest_z,
                                        "pubic_symphysis_z_mm": symph_z,
                                        "pelvic_inlet_z_mm": inlet_z}))
    return _Levels(crest_z, symph_z, inlet_z, below, above)


def _trunk_organs(
    frame: _Frame, body: np.ndarray, bone: np.ndarray, trunk: np.ndarray, lungs: np.ndarray,
    axis: _Axis, levels: _Levels, suv: np.ndarray | None, scale_rule: str,
    user: Mapping[AnatomyLabel, np.ndarray], organ_labels: LabelMap | None,
    masks: dict[AnatomyLabel, np.ndarray], steps: list[ProvenanceStep],
) -> ReferenceRegion | None:
    """Rules 6-10 of :func:`segment_anatomy` (bladder, liver, kidneys, ureters, aorta; with
    a PET, else the CT-only rules), searched on trunk slices only and only with a spine
    (the midline reference of their rules). Returns the blood-pool cylinder, if any."""
    if not (bool(trunk.any()) and axis.n_slices > 0):
        why = ("no trunk slice in the field of view" if not trunk.any()
               else "no spine (midline reference) on the trunk slices")
        warn_external(format_message(f"trunk organs (bladder, liver, kidneys, ureters, "
                                     f"aorta) not searched: {why}"), AnatomyWarning)
        steps.append(ProvenanceStep("emlesion.anatomy.trunk_organs",
                                    rule=f"not searched: {why}"))
        return None
    soft = body & ~bone & np.broadcast_to(trunk[:, None, None], frame.grid.shape)
    if suv is not None:
        return _trunk_organs_pet(frame, soft, lungs, axis, levels, suv, scale_rule, user,
                                 organ_labels, masks, steps)
    return _trunk_organs_ct(frame, soft, lungs, axis, levels, user, masks, steps)


def _trunk_organs_pet(
    frame: _Frame, soft: np.ndarray, lungs: np.ndarray, axis: _Axis, levels: _Levels,
    suv: np.ndarray, scale_rule: str, user: Mapping[AnatomyLabel, np.ndarray],
    organ_labels: LabelMap | None, masks: dict[AnatomyLabel, np.ndarray],
    steps: list[ProvenanceStep],
) -> ReferenceRegion | None:
    """Rules 6-10 with a PET; an organ of the user map replaces the classical one."""
    grid, hu, vox_ml, z_slice = frame.grid, frame.hu, frame.vox_ml, frame.z_slice
    sx, sy, sz = grid.spacing_mm
    dx, dy, below, above = axis.dx, axis.dy, levels.below, levels.above
    # an organ of the map is taken as it is: its classical rule does not run (the loop
    # below names the map in the organ's provenance step)
    map_rule = f"organ map ({organ_labels.source})" if organ_labels is not None else ""
    # 6. bladder
    if AnatomyLabel.BLADDER in user:
        bladder, brule = user[AnatomyLabel.BLADDER], map_rule
    else:
        bladder, brule = _bladder(suv, hu, soft & below, dx, dy, grid)
    # 7. liver
    if AnatomyLabel.LIVER in user:
        liver, lrule, liver_ml = user[AnatomyLabel.LIVER], map_rule, 0.0
    else:
        suv_s = ndi.gaussian_filter(suv, sigma=(PET_SMOOTHING_SIGMA_MM / sz,
                                                 PET_SMOOTHING_SIGMA_MM / sy,
                                                 PET_SMOOTHING_SIGMA_MM / sx))
        hu_s = ndi.uniform_filter(hu, size=LIVER_HU_FILTER_VOXELS)
        liver, lrule = _liver(suv_s, hu_s, soft & above, dx, LIVER_HU)
        liver_ml = float(liver.sum() * vox_ml)
        if liver_ml < MIN_LIVER_ML:
            fatty, frule = _liver(suv_s, hu_s, soft & above, dx, LIVER_STEATOTIC_HU)
            fatty_ml = float(fatty.sum() * vox_ml)
            if fatty_ml >= MIN_LIVER_ML:
                liver, liver_ml = fatty, fatty_ml
                lrule = (f"{frule} (none of {MIN_LIVER_ML:g} mL at {LIVER_HU[0]:g} HU or "
                         "more: the fatty-liver range)")
                warn_external(format_message(
                    f"liver found only in the fatty-liver CT range ({LIVER_STEATOTIC_HU[0]:g}-"
                    f"{LIVER_STEATOTIC_HU[1]:g} HU): {fatty_ml:.0f} mL; the right kidney, at "
                    "the same HU, may be merged into it",
                    fix="check the liver mask (the PERCIST liver sphere is placed in the "
                    "liver's uniform uptake) or pass an organ map"), AnatomyWarning)
    if 0.0 < liver_ml < MIN_LIVER_ML:
        warn_external(format_message(f"liver candidate dropped: {liver_ml:.0f} mL "
                                     f"(< {MIN_LIVER_ML:g} mL)"), AnatomyWarning)
        liver = np.zeros_like(liver)
        lrule += f"; candidate of {liver_ml:.0f} mL dropped (< {MIN_LIVER_ML:g} mL)"
    # 8. kidneys
    if AnatomyLabel.KIDNEY_LEFT in user and AnatomyLabel.KIDNEY_RIGHT in user:
        k_left, k_right = user[AnatomyLabel.KIDNEY_LEFT], user[AnatomyLabel.KIDNEY_RIGHT]
        krule = map_rule
    else:
        k_left, k_right, krule = _kidneys(suv, hu, soft & above & ~liver, dx, dy,
                                          axis.anterior_y_mm, axis.ax_x, grid)
        k_left = user.get(AnatomyLabel.KIDNEY_LEFT, k_left)
        k_right = user.get(AnatomyLabel.KIDNEY_RIGHT, k_right)
    # 9. ureters
    ureters = _ureters(suv, soft & ~bladder & ~k_left & ~k_right & ~liver, dx, grid,
                       k_left | k_right, bladder, frame.z3)
    # 10. aorta (a map's aorta gets its blood-pool cylinder in _organ_map_and_references)
    blood_ref: ReferenceRegion | None = None
    if AnatomyLabel.AORTA in user:
        aorta, arule = user[AnatomyLabel.AORTA], map_rule
    else:
        aorta, blood_ref, arule = _aorta(
            suv, hu, soft & above & ~liver & ~k_left & ~k_right, dx, frame.y3,
            axis.anterior_y_mm, grid, z_slice,
            float(np.median(suv[liver])) if liver.any() else None,
            np.asarray(lungs.any(axis=(1, 2)), dtype=bool))
    for lab, m, rule in (
        (AnatomyLabel.BLADDER, bladder, brule),
        (AnatomyLabel.LIVER, liver, lrule),
        (AnatomyLabel.KIDNEY_LEFT, k_left, krule),
        (AnatomyLabel.KIDNEY_RIGHT, k_right, krule),
        (AnatomyLabel.URETERS, ureters, "hot thin vertical tubes between kidneys and "
                                          "bladder"),
        (AnatomyLabel.AORTA, aorta, arule),
    ):
        masks[lab] = m
        if lab in user:
            rule = f"organ map ({organ_labels.source})"  # type: ignore[union-attr]
        steps.append(ProvenanceStep(f"emlesion.anatomy.{lab.value}", rule=rule,
                                    inputs={"volume_ml": float(m.sum() * vox_ml),
                                            "pet_scale": scale_rule}))
        if not m.any() and lab is not AnatomyLabel.URETERS and lab not in user:
            warn_external(format_message(f"{lab.value} not found by the classical "
                                         "rules", fix="supply organ_labels"),
                          AnatomyWarning)
    return blood_ref


def _trunk_organs_ct(
    frame: _Frame, soft: np.ndarray, lungs: np.ndarray, axis: _Axis, levels: _Levels,
    user: Mapping[AnatomyLabel, np.ndarray], masks: dict[AnatomyLabel, np.ndarray],
    steps: list[ProvenanceStep],
) -> ReferenceRegion | None:
    """Rules 6-10 without a PET: the CT-only bladder and organ rules."""
    grid, hu, vox_ml = frame.grid, frame.hu, frame.vox_ml
    bladder = (user[AnatomyLabel.BLADDER] if AnatomyLabel.BLADDER in user
               else _bladder_ct(hu, soft & levels.below, axis.dx, axis.dy, grid))
    masks[AnatomyLabel.BLADDER] = bladder
    steps.append(ProvenanceStep("emlesion.anatomy.bladder", rule="CT only: largest "
                                f"midline fluid ({FLUID_HU[0]:g}..{FLUID_HU[1]:g} HU) "
                                "component below the crests, centred within "
                                f"{BLADDER_CORE_MAX_MIDLINE_MM:g} mm of the midline",
                                inputs={"volume_ml": float(bladder.sum() * vox_ml)}))
    ct_organs = _ct_only_organs(hu, soft & levels.above, axis.dx, axis.dy, frame.y3,
                                axis.anterior_y_mm, axis.ax_x, grid, frame.z_slice, lungs, user)
    for lab, (m, rule) in ct_organs.items():
        masks[lab] = m
        steps.append(ProvenanceStep(f"emlesion.anatomy.{lab.value}", rule=rule,
                                    inputs={"volume_ml": float(m.sum() * vox_ml)}))
    return None  # a map's aorta gets its cylinder in _organ_map_and_references


def _brain_and_heart(
    frame: _Frame, body: np.ndarray, bone: np.ndarray, trunk: np.ndarray, lungs: np.ndarray,
    axis: _Axis, suv: np.ndarray | None, masks: dict[AnatomyLabel, np.ndarray],
    steps: list[ProvenanceStep],
) -> tuple[str, tuple[float, float] | None]:
    """Rule 11 of :func:`segment_anatomy`: brain, lungs, heart and myocardium
    (:mod:`emlesion.anatomy.fov`). Returns the brain rule and the head's z range."""
    grid, z_slice, vox_ml = frame.grid, frame.z_slice, frame.vox_ml
    brain, brain_rule = find_brain_ct(frame.hu, body, bone, trunk, suv, grid, z_slice,
                                      AnatomyWarning)
    head_z = None
    if brain.any():
        masks[AnatomyLabel.BRAIN] = brain
        ks = np.nonzero(brain.any(axis=(1, 2)))[0]
        head_z = (float(z_slice[ks].min()), float(z_slice[ks].max()))
    steps.append(ProvenanceStep("emlesion.anatomy.brain", rule=brain_rule,
                                inputs={"volume_ml": float(brain.sum() * vox_ml)}))
    if lungs.any():
        masks[AnatomyLabel.LUNGS] = lungs
        heart, myo, heart_rule = find_heart(
            frame.hu, lungs, body, bone,
            masks.get(AnatomyLabel.LIVER, np.zeros(grid.shape, bool)),
            axis.dx, frame.y3, axis.anterior_y_mm, suv, grid, AnatomyWarning)
        masks[AnatomyLabel.HEART] = heart
        if myo is not None and heart.any():
            masks[AnatomyLabel.MYOCARDIUM] = myo
        steps.append(ProvenanceStep("emlesion.anatomy.heart", rule=heart_rule,
                                    inputs={"volume_ml": float(heart.sum() * vox_ml),
                                            "myocardium_volume_ml": float(
                                                myo.sum() * vox_ml) if myo is not None
                                            else None}))
    return brain_rule, head_z


def _field_of_view(
    frame: _Frame, trunk: np.ndarray, lungs: np.ndarray, lung_rule: str, brain_rule: str,
    head_z: tuple[float, float] | None, pelvis: bool,
) -> FieldOfView:
    """The :class:`~emlesion.anatomy.fov.FieldOfView` of the scan."""
    z_slice = frame.z_slice
    ks_t = np.nonzero(trunk)[0]
    return FieldOfView(
        z_range_mm=(float(z_slice.min()), float(z_slice.max())),
        trunk_z_mm=(float(z_slice[ks_t].min()), float(z_slice[ks_t].max()))
        if ks_t.size else None,
        n_trunk_slices=int(ks_t.size),
        lungs_z_mm=(float(frame.z3[lungs].min()), float(frame.z3[lungs].max()))
        if lungs.any() else None,
        lungs_volume_ml=float(lungs.sum() * frame.vox_ml),
        head_z_mm=head_z,
        pelvis=pelvis,
        rule=f"trunk = body cross-section >= {TRUNK_MIN_WIDTH_MM:g} mm wide, >= "
        f"{TRUNK_MIN_AREA_CM2:g} cm^2, not cut by the image edge; lungs: {lung_rule}; "
        f"head: {brain_rule}",
        brain_rule=brain_rule,
    )


def _organ_map_and_references(
    frame: _Frame, axis: _Axis, lungs: np.ndarray, suv: np.ndarray | None,
    user: Mapping[AnatomyLabel, np.ndarray], organ_labels: LabelMap | None,
    blood_ref: ReferenceRegion | None, masks: dict[AnatomyLabel, np.ndarray],
    steps: list[ProvenanceStep],
) -> tuple[dict[str, str], ReferenceRegion | None, ReferenceRegion | None]:
    """The user organ map's masks replace the classical ones; then the PERCIST references
    (liver sphere, blood-pool cylinder from the final masks when not placed yet). Returns
    the organ sources, the liver and the blood-pool references."""
    grid, z_slice = frame.grid, frame.z_slice
    sources = {lab.value: "classical rule" for lab, m in masks.items() if m.any()}
    if organ_labels is not None:
        masks.update(user)
        where = f"organ map {organ_labels.source}"
        sources.update({lab.value: where for lab in user})
        steps.append(ProvenanceStep("emlesion.anatomy.organ_labels",
                                    rule="user organ label map replaces classical organs; "
                                    "the classical rules fill in the organs it lacks",
                                    inputs={"source": organ_labels.source,
                                            "replaced": sorted(k.value for k in user),
                                            "organ_sources": dict(sorted(sources.items()))}))
    liver_ref: ReferenceRegion | None = None
    liver = masks.get(AnatomyLabel.LIVER, np.zeros(grid.shape, bool))
    if liver.any():
        liver_ref = _liver_reference(liver, axis.dx, grid, z_slice, suv)
        steps.append(ProvenanceStep("emlesion.anatomy.liver_reference",
                                    rule=liver_ref.rule if liver_ref else "no valid centre",
                                    inputs={"centre_mm": liver_ref.centre_mm if liver_ref
                                            else None}))
    if AnatomyLabel.AORTA in masks and blood_ref is None and masks[AnatomyLabel.AORTA].any():
        blood_ref = _blood_pool_from_mask(masks[AnatomyLabel.AORTA], grid, z_slice, lungs)
    return sources, liver_ref, blood_ref


def _segment_pet_only(pet: Volume) -> Anatomy:
    """PET-only fallback of :func:`segment_anatomy`: body and brain."""
    steps: list[ProvenanceStep] = []
    grid = pet.grid
    with record_warnings() as rec:
        zs = voxel_centres_mm(grid)[2]
        z_slice = np.asarray(np.broadcast_to(zs, grid.shape)[:, 0, 0], dtype=float)
        rough_body = np.asarray(pet.array) > 0
        suv, scale_rule = _suv_scale(pet, rough_body)
        body, brain, rule = find_brain_pet(suv, grid, z_slice, AnatomyWarning)
        vox_ml = grid.voxel_volume_ml
        masks: dict[AnatomyLabel, np.ndarray] = {AnatomyLabel.BODY: body}
        head_z = None
        if brain.any():
            masks[AnatomyLabel.BRAIN] = brain
            ks = np.nonzero(brain.any(axis=(1, 2)))[0]
            head_z = (float(z_slice[ks].min()), float(z_slice[ks].max()))
        else:
            warn_external(format_message(f"no brain found on the PET alone ({rule})"),
                          AnatomyWarning)
        steps.append(ProvenanceStep("emlesion.anatomy.body", rule="PET only: smoothed uptake "
                                    f"> {PET_BODY_FRACTION * 100:g} % of the median positive "
                                    "uptake, slice holes filled, largest 3-D component",
                                    inputs={"volume_ml": float(body.sum() * vox_ml),
                                            "pet_scale": scale_rule}))
        steps.append(ProvenanceStep("emlesion.anatomy.brain", rule=rule,
                                    inputs={"volume_ml": float(brain.sum() * vox_ml)}))
        fov = FieldOfView(z_range_mm=(float(z_slice.min()), float(z_slice.max())),
                          head_z_mm=head_z, rule="PET only: head = brain at the cranial end; "
                          "trunk, lungs and pelvis not assessed without CT", brain_rule=rule)
    step = ProvenanceStep("emlesion.anatomy.segment_anatomy",
                          rule="PET-only fallback (no CT): body and brain",
                          inputs={"ct_series": None,
                                  "pet_series": pet.identity.series_instance_uid},
                          warnings=rec.as_tuple())
    return Anatomy(grid=grid, masks=masks, field_of_view=fov, provenance=(*steps, step))


# ---------------------------------------------------------------------------- rules
def _body_centres(body: np.ndarray, x3: np.ndarray, y3: np.ndarray) -> np.ndarray:
    out = np.full((body.shape[0], 2), np.nan)
    for k in range(body.shape[0]):
        m = body[k]
        if m.any():
            out[k] = (float(x3[k][m].mean()), float(y3[k][m].mean()))
    return out


def _spine(
    bone: np.ndarray, body: np.ndarray, x3: np.ndarray, y3: np.ndarray, grid: Grid,
    hu: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nz = bone.shape[0]
    axis = np.full((nz, 2), np.nan)
    ant = np.full(nz, np.nan)
    spine = np.zeros_like(bone)
    centres = _body_centres(body, x3, y3)
    # all slices at once: labelling, growth, closing and hole filling use the in-plane
    # 8-connectivity only (no coupling between slices), on the box of the candidates
    eight = np.zeros((3, 3, 3), bool)
    eight[1] = True
    valid = bone.any(axis=(1, 2)) & np.isfinite(centres[:, 0])
    cx = np.where(valid, centres[:, 0], 0.0)[:, None, None]
    cy = np.where(valid, centres[:, 1], 0.0)[:, None, None]
    midline = (np.abs(x3 - cx) < SPINE_MAX_MIDLINE_OFFSET_MM) & valid[:, None, None]
    strip = bone & midline & (y3 > cy - SPINE_ANTERIOR_MARGIN_MM)
    # the trabecular interior of the vertebral body is mostly below BONE_HU [S11]: the
    # component grows into the trabecular range of the midline strip (below)
    trab = (hu >= SPINE_TRABECULAR_HU) & midline if hu is not None else None
    box = padded_box(strip if trab is None else strip | trab, (0, 2, 2))
    if box is not None and strip.any():
        lab, _n = ndi.label(strip[box], structure=eight)
        sizes = np.bincount(lab.ravel())
        # per slice, its largest component (the first one on ties)
        best: dict[int, int] = {}
        for i, obj in enumerate(ndi.find_objects(lab), start=1):
            if obj is not None:
                k = obj[0].start
                if k not in best or sizes[i] > sizes[best[k]]:
                    best[k] = i
        keep = np.zeros(sizes.size, bool)
        for i in best.values():
            if sizes[i] * grid.spacing_mm[0] * grid.spacing_mm[1] >= SPINE_MIN_AREA_MM2:
                keep[i] = True
        comp_b = keep[lab]
        if trab is not None:  # grow, then fill the ring to get the whole vertebra
            comp_b = ndi.binary_propagation(comp_b, structure=eight, mask=trab[box] | comp_b)
        spine[box] = fill_slices(ndi.binary_closing(comp_b, eight) | comp_b)
    for k in np.nonzero(spine.any(axis=(1, 2)))[0]:
        comp = spine[k]
        axis[k] = (float(x3[k][comp].mean()), float(y3[k][comp].mean()))
        near = comp & (np.abs(x3[k] - axis[k, 0]) < SPINE_BODY_HALF_WIDTH_MM)
        ant[k] = float(y3[k][near].min()) if near.any() else float(y3[k][comp].min())
    ok = np.isfinite(axis[:, 0])
    if ok.sum() >= 3:
        # reject outliers (far from the running median) then interpolate gaps
        med = ndi.median_filter(np.where(ok, axis[:, 0], np.nanmedian(axis[:, 0])),
                                size=SPINE_MEDIAN_WINDOW_SLICES)
        bad = ok & (np.abs(axis[:, 0] - med) > SPINE_OUTLIER_MM)
        axis[bad] = np.nan
        ant[bad] = np.nan
        spine[bad] = False
    axis = np.column_stack([_interp_nan(axis[:, 0]), _interp_nan(axis[:, 1])])
    ant = _interp_nan(ant)
    return axis, ant, spine


def _pelvic_levels(
    bone: np.ndarray, dx: np.ndarray, dy: np.ndarray, grid: Grid, z_up: bool
) -> tuple[int | None, int | None]:
    sx, sy, sz = grid.spacing_mm
    min_vox = max(1, round(ILIAC_MIN_AREA_MM2 / (sx * sy)))  # per side
    left = (bone & (dx > ILIAC_MIN_LATERAL_MM)).sum(axis=(1, 2)) >= min_vox
    right = (bone & (dx < -ILIAC_MIN_LATERAL_MM)).sum(axis=(1, 2)) >= min_vox
    both = left & right
    order = np.arange(bone.shape[0]) if z_up else np.arange(bone.shape[0])[::-1]
    run: list[int] = []
    gap_max = max(1, round(ILIAC_RUN_MAX_GAP_MM / sz))
    gap = 0
    for k in order:  # from the most caudal slice upwards
        if both[k]:
            run.append(int(k))
            gap = 0
        elif run:
            gap += 1
            if gap > gap_max:
                break
    if not run:
        return None, None
    # the run must start in the caudal half of the scan (else it is the ribs)
    pos = int(np.where(order == run[0])[0][0])
    if pos > len(order) // 2:
        return None, None
    crest = run[-1]
    ant_mid = (bone & (np.abs(dx) < SYMPHYSIS_MAX_MIDLINE_MM)
               & (dy < -SYMPHYSIS_MIN_ANTERIOR_MM))
    run_set = set(order[: int(np.where(order == crest)[0][0]) + 1].tolist())
    symph = None
    for k in order:
        if int(k) in run_set and ant_mid[k].sum() >= min_vox // 2 + 1:
            symph = int(k)
    return crest, symph


def _bladder(
    suv: np.ndarray, hu: np.ndarray, region: np.ndarray, dx: np.ndarray, dy: np.ndarray,
    grid: Grid,
) -> tuple[np.ndarray, str]:
    box = region & (np.abs(dx) < BLADDER_MAX_MIDLINE_MM) & (dy < 0.0)
    empty = np.zeros(suv.shape, bool)
    if not box.any():
        return empty, "no low-pelvis search box"
    local_max = float(suv[box].max())
    hot = box & (suv >= max(BLADDER_MIN_SUV, BLADDER_HOT_FRACTION * local_max))
    # every mask below lies within the hot voxels' box grown by the fluid reach (+1 voxel
    # for the slice hole filling): work on that crop
    reach = _ball(BLADDER_FLUID_REACH_MM, grid.spacing_mm)
    crop = padded_box(hot, tuple(n // 2 + 1 for n in reach.shape))
    if crop is None:
        return empty, "no hot structure in the low midline pelvis"
    suv_c, hu_c, dx_c, region_c = suv[crop], hu[crop], dx[crop], region[crop]
    lab, n = ndi.label(hot[crop], structure=np.ones((3, 3, 3), bool))
    idx = np.arange(1, n + 1)
    labelled = lab > 0
    maxima = ndi.maximum(suv_c[labelled], lab[labelled], idx)
    for i in np.argsort(maxima)[::-1]:
        comp = lab == idx[i]
        m = float(maxima[i])
        core = comp & (suv_c >= BLADDER_CORE_FRACTION * m)
        if core.sum() * grid.voxel_volume_ml < BLADDER_MIN_CORE_ML:
            continue
        if float(np.median(hu_c[core])) >= BLADDER_CORE_MAX_HU:  # soft tissue: a lesion
            continue
        if abs(float(dx_c[core].mean())) > BLADDER_CORE_MAX_MIDLINE_MM:
            continue
        iso = largest_component(comp & (suv_c >= BLADDER_ISO_FRACTION * m))
        fluid = (hu_c >= FLUID_HU[0]) & (hu_c <= FLUID_HU[1]) & ndi.binary_dilation(
            iso, reach) & region_c
        fluid = largest_component(fluid & ndi.binary_dilation(core, _ball(BLADDER_CORE_REACH_MM,
                                                                 grid.spacing_mm))
                                   | (fluid & iso)) if fluid.any() else fluid
        bladder = empty
        bladder[crop] = fill_slices(iso | fluid)
        return bladder, (f"hottest fluid-core midline pelvic PET component (SUVmax {m:.3g}); "
                         f"{BLADDER_ISO_FRACTION * 100:g} %-of-max region + CT fluid within "
                         f"{BLADDER_FLUID_REACH_MM:g} mm")
    return empty, "no hot fluid-density midline structure below the crests"


def _bladder_ct(
    hu: np.ndarray, region: np.ndarray, dx: np.ndarray, dy: np.ndarray, grid: Grid
) -> np.ndarray:
    fluid = (region & (np.abs(dx) < BLADDER_MAX_MIDLINE_MM) & (dy < 0.0)
             & (hu >= FLUID_HU[0]) & (hu <= FLUID_HU[1]))
    fluid = ndi.binary_opening(fluid, _ball(BLADDER_CT_OPENING_MM, grid.spacing_mm))
    comp = largest_component(fluid)
    # the bladder is centred on the midline, as the PET rule requires of its core: an
    # off-midline fluid component is a bowel loop (benchmarks/audit_ct_real.py)
    if comp.sum() * grid.voxel_volume_ml < BLADDER_CT_MIN_ML or \
            abs(float(dx[comp].mean())) > BLADDER_CORE_MAX_MIDLINE_MM:
        return np.zeros_like(comp)
    return comp


def _liver(
    suv_s: np.ndarray, hu_s: np.ndarray, region: np.ndarray, dx: np.ndarray,
    hu_range: tuple[float, float],
) -> tuple[np.ndarray, str]:
    """The liver in ``hu_range`` of the ``LIVER_HU_FILTER_VOXELS``-mean CT ``hu_s``."""
    cand = (region & (dx < 0.0) & (hu_s >= hu_range[0]) & (hu_s <= hu_range[1])
            & (suv_s >= LIVER_SUV[0]) & (suv_s <= LIVER_SUV[1]))
    comp = _crop_apply(cand, 2, _liver_component, suv_s)
    return comp, ("largest right-upper-quadrant component, CT "
                  f"{hu_range[0]:g}-{hu_range[1]:g} HU ({LIVER_HU_FILTER_VOXELS}-voxel mean) "
                  f"and smoothed PET {LIVER_SUV[0]:.1f}-{LIVER_SUV[1]:.1f}, then within "
                  f"{LIVER_UNIFORM_FRACTION * 100:g} % of its median uptake")


def _liver_component(crop: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The liver rule of :func:`_liver` on a crop ``(candidates, smoothed PET)``: largest
    component after a one-voxel opening, then its uniform-uptake part, slice holes filled."""
    cand, suv_s = crop
    comp = largest_component(ndi.binary_opening(cand, np.ones((3, 3, 3), bool)))
    if comp.any():
        # uniform uptake: keep voxels within 35 % of the organ's median (drops kidney, lesions)
        med = float(np.median(suv_s[comp]))
        comp = largest_component(
            ndi.binary_opening(comp & (np.abs(suv_s - med) <= LIVER_UNIFORM_FRACTION * med),
                               np.ones((3, 3, 3), bool))
        )
        comp = fill_slices(comp)
    return comp


def _ct_organ(cand: np.ndarray, grid: Grid) -> np.ndarray:
    """Largest component of ``cand`` after an opening of ``CT_ORGAN_OPENING_MM``, grown back
    into ``cand`` by the opening radius, holes filled slice by slice."""
    ball = _ball(CT_ORGAN_OPENING_MM, grid.spacing_mm)
    core = largest_component(ndi.binary_opening(cand, ball))
    if not core.any():
        return core
    grown = ndi.binary_dilation(core, ball) & cand
    return fill_slices(largest_component(grown))


def _ct_only_organs(
    hu: np.ndarray, region: np.ndarray, dx: np.ndarray, dy: np.ndarray, y3: np.ndarray,
    ant_y: np.ndarray, ax_x: np.ndarray, grid: Grid, z_slice: np.ndarray, lungs: np.ndarray,
    user: Mapping[AnatomyLabel, np.ndarray],
) -> dict[AnatomyLabel, tuple[np.ndarray, str]]:
    """Liver, spleen, kidneys and aorta from a CT alone (no PET), above the iliac crests.

    Liver: largest right-sided (``dx`` < 0 at its core) component of 3-voxel-mean HU in
    ``CT_LIVER_HU`` after an opening of ``CT_ORGAN_OPENING_MM``. Spleen: the same in the
    left upper quadrant (``dx`` >= ``CT_SPLEEN_MIN_DX_MM``; no antero-posterior limit),
    HU in ``CT_SPLEEN_HU``, liver removed. Kidneys: the classical mirror-symmetric
    paraspinal rule with HU in ``CT_KIDNEY_HU`` instead of PET uptake. Aorta: the
    classical round-lumen tracking rule without the PET condition.
    """
    out: dict[AnatomyLabel, tuple[np.ndarray, str]] = {}
    hu_s = ndi.uniform_filter(hu, size=LIVER_HU_FILTER_VOXELS)
    vox_ml = grid.voxel_volume_ml
    liver = user.get(AnatomyLabel.LIVER)
    if liver is None:
        cand = region & (hu_s >= CT_LIVER_HU[0]) & (hu_s <= CT_LIVER_HU[1])
        liver = _ct_organ(cand & (dx < 0.0), grid)
        if liver.any():  # the left lobe crosses the midline: grow across it
            liver = _ct_organ(cand & (ball_dilation(liver, LIVER_RIGHT_LOBE_MM,
                                                    grid.spacing_mm) | liver), grid)
        if liver.sum() * vox_ml < MIN_LIVER_ML:
            liver = np.zeros_like(liver)
        out[AnatomyLabel.LIVER] = (liver, "CT only: largest right-sided component of "
                                   f"{CT_LIVER_HU[0]:g}-{CT_LIVER_HU[1]:g} HU after a "
                                   f"{CT_ORGAN_OPENING_MM:g} mm opening")
    spleen = user.get(AnatomyLabel.SPLEEN)
    if spleen is None:
        cand = (region & ~liver & (dx >= CT_SPLEEN_MIN_DX_MM)
                & (hu_s >= CT_SPLEEN_HU[0]) & (hu_s <= CT_SPLEEN_HU[1]))
        spleen = _ct_organ(cand, grid)
        if spleen.sum() * vox_ml < CT_MIN_SPLEEN_ML or \
                float(dx[spleen].mean()) < CT_SPLEEN_MIN_CENTROID_DX_MM:
            spleen = np.zeros_like(spleen)
        out[AnatomyLabel.SPLEEN] = (spleen, "CT only: largest left-upper-quadrant component "
                                    f"of {CT_SPLEEN_HU[0]:g}-{CT_SPLEEN_HU[1]:g} HU after a "
                                    f"{CT_ORGAN_OPENING_MM:g} mm opening")
    if AnatomyLabel.KIDNEY_LEFT not in user or AnatomyLabel.KIDNEY_RIGHT not in user:
        in_range = ((hu >= CT_KIDNEY_HU[0]) & (hu <= CT_KIDNEY_HU[1])).astype(np.float32) \
            * np.float32(KIDNEY_MIN_SUV)
        k_left, k_right, krule = _kidneys(in_range, hu, region & ~liver & ~spleen, dx, dy,
                                          ant_y, ax_x, grid,
                                          (KIDNEY_DY_MM[0], CT_KIDNEY_MAX_DY_MM))
        krule = f"CT only ({CT_KIDNEY_HU[0]:g}..{CT_KIDNEY_HU[1]:g} HU): {krule}"
        out.setdefault(AnatomyLabel.KIDNEY_LEFT, (user.get(AnatomyLabel.KIDNEY_LEFT, k_left),
                                                  krule))
        out.setdefault(AnatomyLabel.KIDNEY_RIGHT, (user.get(AnatomyLabel.KIDNEY_RIGHT,
                                                            k_right), krule))
    if AnatomyLabel.AORTA not in user:
        out[AnatomyLabel.AORTA] = _aorta_ct(hu, region & ~liver & ~spleen, dx, y3, ant_y, grid)
    return {k: v for k, v in out.items() if k not in user}


def _aorta_ct(
    hu: np.ndarray, region: np.ndarray, dx: np.ndarray, y3: np.ndarray, ant_y: np.ndarray,
    grid: Grid,
) -> tuple[np.ndarray, str]:
    """CT-only aortic lumen: per slice, the disc inscribed in the blood HU range at the
    deepest point near the track (see ``CT_AORTA_HU``)."""
    sx, sy, _sz = grid.spacing_mm
    nz = hu.shape[0]
    out = np.zeros(hu.shape, bool)
    hu_s = ndi.uniform_filter(hu, size=(1, 3, 3))
    found: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for k in range(nz):
        if not np.isfinite(ant_y[k]) or not region[k].any():
            continue
        box = (region[k] & (y3[k] <= ant_y[k] + SPINE_ANTERIOR_MARGIN_MM / 2.0)
               & (y3[k] > ant_y[k] - AORTA_MAX_ANTERIOR_MM)
               & (dx[k] > AORTA_DX_MM[0]) & (dx[k] < AORTA_DX_MM[1]))
        cand = box & (hu_s[k] >= CT_AORTA_HU[0]) & (hu_s[k] <= CT_AORTA_HU[1])
        if not cand.any():
            continue
        edt = ndi.distance_transform_edt(np.pad(cand, 1), sampling=(sy, sx))[1:-1, 1:-1]
        jj, ii = np.nonzero(edt >= CT_AORTA_MIN_RADIUS_MM)
        if jj.size:
            found[k] = (jj, ii, edt[jj, ii])
    if not found:
        return out, "CT only: no blood-density disc in front of the spine"
    deepest = {k: (float(v[0][np.argmax(v[2])]), float(v[1][np.argmax(v[2])]))
               for k, v in found.items()}
    jg, ig = np.ogrid[: hu.shape[1], : hu.shape[2]]
    half = 2 * AORTA_TRACK_WINDOW_SLICES
    n = 0
    for k, (jj, ii, depth) in found.items():
        near = [p for q, p in deepest.items() if abs(q - k) <= half]
        mj, mi = float(np.median([p[0] for p in near])), float(np.median([p[1] for p in near]))
        dist = np.hypot((jj - mj) * sy, (ii - mi) * sx)
        ok = dist <= CT_AORTA_TRACK_MM
        if not ok.any():
            continue
        w = int(np.argmax(np.where(ok, depth, -1.0)))
        r = float(depth[w])
        out[k] = np.hypot((jg - jj[w]) * sy, (ig - ii[w]) * sx) <= r + 0.5 * min(sx, sy)
        n += 1
    return out, (f"CT only: per slice the disc inscribed in {CT_AORTA_HU[0]:g}-"
                 f"{CT_AORTA_HU[1]:g} HU (radius >= {CT_AORTA_MIN_RADIUS_MM:g} mm) in front of "
                 f"the spine, within {CT_AORTA_TRACK_MM:g} mm of the track; {n} slices")


def _mirror_x(mask: np.ndarray, centre_index_x: float) -> np.ndarray:
    """Mirror along the x index axis about a (fractional) column index."""
    nx = mask.shape[2]
    src = np.rint(2.0 * centre_index_x - np.arange(nx)).astype(int)
    valid = (src >= 0) & (src < nx)
    out = np.zeros_like(mask)
    out[:, :, valid] = mask[:, :, src[valid]]
    return out


def _shift(mask: np.ndarray, dz: int, dy: int) -> np.ndarray:
    out = np.zeros_like(mask)
    nz, ny, _ = mask.shape
    zs = slice(max(dz, 0), nz + min(dz, 0))
    zd = slice(max(-dz, 0), nz + min(-dz, 0))
    ys_ = slice(max(dy, 0), ny + min(dy, 0))
    yd = slice(max(-dy, 0), ny + min(-dy, 0))
    out[zs, ys_] = mask[zd, yd]
    return out


def _kidneys(
    suv: np.ndarray, hu: np.ndarray, region: np.ndarray, dx: np.ndarray, dy: np.ndarray,
    ant_y: np.ndarray, ax_x: np.ndarray, grid: Grid,
    dy_mm: tuple[float, float] = KIDNEY_DY_MM,
) -> tuple[np.ndarray, np.ndarray, str]:
    _sx, sy, sz = grid.spacing_mm
    cand = (region & (np.abs(dx) >= KIDNEY_DX_MM[0]) & (np.abs(dx) <= KIDNEY_DX_MM[1])
            & (dy > dy_mm[0]) & (dy < dy_mm[1])
            & (hu >= SOFT_HU[0]) & (hu <= SOFT_HU[1]) & (suv >= KIDNEY_MIN_SUV))
    cand = _crop_apply(cand, 1, lambda m: ndi.binary_opening(
        m, ndi.generate_binary_structure(3, 1)))
    if not cand.any():
        e = np.zeros(suv.shape, bool)
        return e, e, "no paraspinal avid soft tissue above the crests"
    left = cand & (dx > 0)
    right = cand & (dx < 0)
    # mirror about the median spinal axis column
    centre_ix = float(grid.lps_to_index((float(np.nanmedian(ax_x)), 0.0, 0.0))[2]) if \
        abs(grid.direction_matrix[0, 0]) > AXIS_ALIGNED_MIN_COSINE else (suv.shape[2] - 1) / 2.0
    mir_r = _mirror_x(right, centre_ix)
    # the overlap of ``left`` with the shifted mirror image only involves voxels of the box
    # of both (a voxel shifted out of it lands outside ``left``'s box)
    both = padded_box(left | mir_r)
    left_b = left[both] if both is not None else left
    mir_b = mir_r[both] if both is not None else mir_r
    best = (-1, 0, 0)
    for dz in range(-int(KIDNEY_MAX_SHIFT_Z_MM // sz), int(KIDNEY_MAX_SHIFT_Z_MM // sz) + 1):
        for dyv in range(-int(KIDNEY_MAX_SHIFT_Y_MM // sy),
                         int(KIDNEY_MAX_SHIFT_Y_MM // sy) + 1):
            ov = int(np.count_nonzero(left_b & _shift(mir_b, dz, dyv)))
            if ov > best[0]:
                best = (ov, dz, dyv)
    _, dz, dyv = best
    grow = _ball(KIDNEY_PARTNER_REACH_MM, grid.spacing_mm)
    reach = tuple(n // 2 for n in grow.shape)
    mir_l = _mirror_x(_shift(left, -dz, -dyv), centre_ix)
    min_vox = round(KIDNEY_MIN_ML / grid.voxel_volume_ml)
    out = []
    for side, other in ((left, _shift(mir_r, dz, dyv)), (right, mir_l)):
        # mirror partner: the other side's image dilated by the reach, needed on ``side`` only
        box = padded_box(side, reach)
        comp = np.zeros(side.shape, bool)
        if box is not None:
            comp[box] = largest_component(side[box] & ndi.binary_dilation(other[box], grow))
        if comp.sum() < min_vox:
            comp = np.zeros_like(comp)
        else:
            comp = _crop_apply(comp, tuple(2 * r + 1 for r in reach), lambda m: fill_slices(
                ndi.binary_closing(m[0], grow) & m[1] | m[0]), side)
        out.append(comp)
    rule = (f"paraspinal avid soft tissue, mirror-symmetric part (right mirrored, shift "
            f"dz={dz * sz:.0f} mm, dy={dyv * sy:.0f} mm)")
    return out[0], out[1], rule


def _ureters(
    suv: np.ndarray, region: np.ndarray, dx: np.ndarray, grid: Grid, kidneys: np.ndarray,
    bladder: np.ndarray, z3: np.ndarray,
) -> np.ndarray:
    out = np.zeros(suv.shape, bool)
    if not kidneys.any() or not bladder.any():
        return out
    zk = z3[kidneys]
    zb = z3[bladder]
    lo, hi = float(zb.min()), float(zk.max())
    lo, hi = min(lo, hi), max(lo, hi)
    cand = (region & (suv >= URETER_MIN_SUV) & (np.abs(dx) <= URETER_MAX_MIDLINE_MM)
            & (z3 >= lo) & (z3 <= hi))
    sx, sy, sz = grid.spacing_mm
    max_area_vox = URETER_MAX_AREA_MM2 / (sx * sy)
    thin = np.zeros_like(cand)
    for k in range(cand.shape[0]):
        lab, n = ndi.label(cand[k], structure=np.ones((3, 3), bool))
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())
        ok = sizes <= max_area_vox
        ok[0] = False
        thin[k] = ok[lab]
    lab3, _n3 = ndi.label(thin, structure=np.ones((3, 3, 3), bool))
    for i, sl in enumerate(ndi.find_objects(lab3), start=1):
        if sl is None:
            continue
        if (sl[0].stop - sl[0].start) * sz >= URETER_MIN_LENGTH_MM:
            out |= lab3 == i
    return out


def _aorta(
    suv: np.ndarray, hu: np.ndarray, region: np.ndarray, dx: np.ndarray, y3: np.ndarray,
    ant_y: np.ndarray, grid: Grid, z_slice: np.ndarray, liver_suv: float | None,
    lung_slices: np.ndarray,
) -> tuple[np.ndarray, ReferenceRegion | None, str]:
    """Aortic lumen per slice and the PERCIST blood-pool cylinder on its axis.

    Per slice, lumen candidates are the round soft-tissue components (CT -20..100 HU, PET
    lightly smoothed in-plane between 0.8 and 0.9 x the liver median, opened by one voxel)
    0-45 mm anterior of the vertebral body, ``dx`` -20..+45 mm; the aorta is the candidate
    that continues the track of its neighbours (running median of the centres). Its lumen
    radius is the area-equivalent radius, its centre the centroid of its core (in-plane
    distance to the edge >= half the deepest). The cylinder lies on the longest straight
    track where its surface stays farthest inside the lumen edge (least partial volume
    with the hotter liver and marrow or the colder fat and psoas), at least 20 mm from the
    track's ends when possible (bifurcation, diaphragm, field-of-view edge), on thoracic
    (lung) slices when available.

    References
    ----------
    .. [1] Wahl RL et al. From RECIST to PERCIST. J Nucl Med 2009;50 Suppl 1:122S-150S
       (blood pool: 1 cm diameter x 2 cm cylinder in the descending thoracic aorta).
    """
    cands = _aorta_candidates(suv, hu, region, dx, y3, ant_y, grid, liver_suv)
    out = np.zeros(suv.shape, bool)
    if not cands:
        return out, None, "no round soft-tissue structure anterior to the spine"
    chosen = _aorta_track(cands)
    if not chosen:
        return out, None, "no continuous round soft-tissue structure anterior to the spine"
    run = _aorta_run(chosen)
    for c in run:
        if c[3] > 0.0:
            out[c[0]] = chosen[c[0]][3]
    ref, rule = _blood_pool_cylinder(run, grid, z_slice, lung_slices)
    return out, ref, rule


def _aorta_candidates(
    suv: np.ndarray, hu: np.ndarray, region: np.ndarray, dx: np.ndarray, y3: np.ndarray,
    ant_y: np.ndarray, grid: Grid, liver_suv: float | None,
) -> dict[int, list[tuple[float, float, float, np.ndarray]]]:
    """Aortic lumen candidates of :func:`_aorta` per slice: ``(x, y, radius_mm, mask)`` of
    every round blood-density component of the search box in front of the spine."""
    sx, sy, _sz = grid.spacing_mm
    px = sx * sy
    suv_l = ndi.gaussian_filter(suv, sigma=(0.0, AORTA_PET_SIGMA_MM / sy,
                                            AORTA_PET_SIGMA_MM / sx))
    pet_max = AORTA_LIVER_FRACTION * liver_suv if liver_suv else AORTA_MAX_SUV_WITHOUT_LIVER
    # all slices at once (in-plane connectivity only), on the search boxes grown by 2 voxels
    # (hole filling, opening)
    cross = np.zeros((3, 3, 3), bool)
    cross[1] = ndi.generate_binary_structure(2, 1)
    valid = np.isfinite(ant_y)
    ant = np.where(valid, ant_y, 0.0)[:, None, None]
    box = (region & valid[:, None, None] & (y3 <= ant) & (y3 > ant - AORTA_MAX_ANTERIOR_MM)
           & (dx > AORTA_DX_MM[0]) & (dx < AORTA_DX_MM[1]))
    cands: dict[int, list[tuple[float, float, float, np.ndarray]]] = {}
    crop = padded_box(box, (0, 2, 2))
    if crop is None:
        return cands
    box_c = box[crop]
    hu_c, suv_c = hu[crop], suv_l[crop]
    cand = (box_c & (hu_c >= AORTA_HU[0]) & (hu_c <= AORTA_HU[1]) & (suv_c >= AORTA_MIN_SUV)
            & (suv_c <= pet_max))
    cand = ndi.binary_opening(fill_slices(cand) & box_c, cross)
    lab, _n = ndi.label(cand, structure=cross)
    # candidates per slice: (x, y, radius_mm, component)
    for i, obj in enumerate(ndi.find_objects(lab), start=1):
        if obj is None:
            continue
        kc = obj[0].start
        k = kc + crop[0].start
        comp_c = lab[kc] == i
        area = float(comp_c.sum()) * px
        if not AORTA_AREA_MM2[0] <= area <= AORTA_AREA_MM2[1]:
            continue
        # in-plane depth: the nearest background lies within the component's box + 1
        j0, i0 = max(obj[1].start - 1, 0), max(obj[2].start - 1, 0)
        sub = np.pad(comp_c[j0: obj[1].stop + 1, i0: obj[2].stop + 1], 1)
        edt = ndi.distance_transform_edt(sub, sampling=(sy, sx))[1:-1, 1:-1]
        # not round (elongated, merged)
        if area > AORTA_MAX_AREA_TO_INSCRIBED_RATIO * math.pi * float(edt.max()) ** 2:
            continue
        jj, ii = np.nonzero(edt >= AORTA_CORE_DEPTH_FRACTION * float(edt.max()))
        jj = jj + (j0 + crop[1].start)
        ii = ii + (i0 + crop[2].start)
        p = grid.index_to_lps((float(k), float(jj.mean()), float(ii.mean())))
        comp = np.zeros(box.shape[1:], bool)
        comp[crop[1:]] = comp_c
        cands.setdefault(k, []).append((float(p[0]), float(p[1]),
                                        math.sqrt(area / math.pi), comp))
    return cands


def _aorta_track(
    cands: dict[int, list[tuple[float, float, float, np.ndarray]]],
) -> dict[int, tuple[float, float, float, np.ndarray]]:
    """The candidate of each slice that continues the track of its neighbours (running
    median of the picks), for :func:`_aorta`."""

    def nearest(k: int, ref: tuple[float, float], within: float) -> int | None:
        d = [math.hypot(c[0] - ref[0], c[1] - ref[1]) for c in cands[k]]
        i = int(np.argmin(d))
        return i if d[i] <= within else None

    # the aorta is the most persistent structure: start from the median of each slice's
    # widest candidate, then follow the running median (+-AORTA_TRACK_WINDOW_SLICES) of the
    # picks
    widest = np.array([max(v, key=lambda c: c[2])[:2] for v in cands.values()])
    ref0 = (float(np.median(widest[:, 0])), float(np.median(widest[:, 1])))
    xy: dict[int, tuple[float, float]] = {}
    for k in cands:
        first_pick = nearest(k, ref0, AORTA_FIRST_PICK_MM)
        if first_pick is not None:
            xy[k] = (cands[k][first_pick][0], cands[k][first_pick][1])
    chosen: dict[int, tuple[float, float, float, np.ndarray]] = {}
    for k in cands:
        track = [v for j, v in xy.items() if abs(j - k) <= AORTA_TRACK_WINDOW_SLICES]
        local = (float(np.median([p[0] for p in track])),
                 float(np.median([p[1] for p in track]))) if track else ref0
        pick = nearest(k, local, AORTA_TRACK_PICK_MM)
        if pick is not None:
            chosen[k] = cands[k][pick]
    return chosen


def _aorta_run(
    chosen: dict[int, tuple[float, float, float, np.ndarray]],
) -> list[tuple[int, float, float, float]]:
    """Longest straight run ``(slice, x, y, radius)`` of the tracked lumen centres, bridged
    slices with radius 0 and merged slices with a negative radius, for :func:`_aorta`."""
    # longest run of slices with centres moving < AORTA_MAX_STEP_MM_PER_SLICE; up to two
    # missed slices are bridged (radius 0: no cylinder may cover them)
    centres = [(k, c[0], c[1], c[2]) for k, c in sorted(chosen.items())]
    runs: list[list[tuple[int, float, float, float]]] = [[centres[0]]]
    for c in centres[1:]:
        prev = runs[-1][-1]
        step = c[0] - prev[0]
        if (1 <= step <= AORTA_MAX_BRIDGE_SLICES and math.hypot(c[1] - prev[1], c[2] - prev[2])
                < AORTA_MAX_STEP_MM_PER_SLICE * step):
            for j in range(1, step):
                f = j / step
                runs[-1].append((prev[0] + j, prev[1] + f * (c[1] - prev[1]),
                                 prev[2] + f * (c[2] - prev[2]), 0.0))
            runs[-1].append(c)
        else:
            runs.append([c])
    run = max(runs, key=len)
    # a slice whose lumen is wider than AORTA_MERGED_RATIO x the track's running median has
    # merged with a neighbour (liver, crus, bowel): its centre is biased, no cylinder on it
    radii = np.array([c[3] for c in run])
    for j, c in enumerate(run):
        around = radii[max(0, j - AORTA_RADIUS_WINDOW_SLICES): j + AORTA_RADIUS_WINDOW_SLICES + 1]
        around = around[around > 0.0]
        if c[3] > 0.0 and around.size and c[3] > AORTA_MERGED_RATIO * float(np.median(around)):
            run[j] = (c[0], c[1], c[2], -c[3])
    return run


def _blood_pool_cylinder(
    run: list[tuple[int, float, float, float]], grid: Grid, z_slice: np.ndarray,
    lung_slices: np.ndarray,
) -> tuple[ReferenceRegion | None, str]:
    """The PERCIST blood-pool cylinder on the lumen track of :func:`_aorta` and the rule
    (or why there is none)."""
    sx, sy, sz = grid.spacing_mm
    half = math.floor(BLOOD_POOL_LENGTH_MM / 2.0 / sz + 1e-6)  # slices each side
    end_gap = math.ceil(AORTA_END_MARGIN_MM / sz)
    n_run = len(run)
    first, last = half + end_gap, n_run - 1 - half - end_gap
    if last < first:  # short track: drop the end margin, keep the cylinder inside it
        first, last = half, n_run - 1 - half
    if last < first:
        return None, (f"aorta track of {n_run} slices is shorter than the "
                           f"{BLOOD_POOL_LENGTH_MM:.0f} mm blood-pool cylinder")
    # candidate positions: (margin, run index, centre, mean radius, thoracic); margin = least
    # distance from the cylinder surface to the lumen edge over the cylinder's slices
    pos: list[tuple[float, int, tuple[float, float], float, bool]] = []
    for m in range(first, last + 1):
        sl = run[m - half : m + half + 1]
        if any(c[3] <= 0.0 for c in sl):
            continue
        cx = float(np.mean([c[1] for c in sl]))
        cy = float(np.mean([c[2] for c in sl]))
        margin = min(c[3] - math.hypot(c[1] - cx, c[2] - cy) for c in sl) - BLOOD_POOL_RADIUS_MM
        pos.append((margin, m, (cx, cy), float(np.mean([c[3] for c in sl])),
                    bool(all(lung_slices[c[0]] for c in sl))))
    if not pos:
        return None, (f"no {BLOOD_POOL_LENGTH_MM / 10.0:g} cm stretch of the aorta track "
                           "without a missed slice")
    thoracic = any(p[4] for p in pos)
    pool = [p for p in pos if p[4]] if thoracic else pos
    # largest margin (ties within a quarter voxel: the radius is quantised by the voxel
    # area), then the most cranial position (PERCIST: proximal, thoracic)
    best = max(p[0] for p in pool)
    up = 1.0 if z_slice[-1] >= z_slice[0] else -1.0
    margin, m, (cx, cy), radius, _ = max(
        (p for p in pool if p[0] >= best - AORTA_TIE_VOXEL_FRACTION * min(sx, sy)),
        key=lambda p: up * float(z_slice[run[p[1]][0]]))
    where = "descending thoracic aorta (PERCIST)" if thoracic else (
        "abdominal aorta (fallback: PERCIST specifies the descending thoracic aorta, "
        "not in the field of view)")
    ref = ReferenceRegion(
        "blood_pool",
        (cx, cy, float(z_slice[run[m][0]])),
        BLOOD_POOL_RADIUS_MM,
        BLOOD_POOL_LENGTH_MM,
        rule=(f"{2.0 * BLOOD_POOL_RADIUS_MM / 10.0:g} cm x {BLOOD_POOL_LENGTH_MM / 10.0:g} cm "
              f"cylinder on the lumen axis of the {where}, where it stays "
              f"deepest inside the lumen on a straight {n_run}-slice track "
              f"(>= {AORTA_END_MARGIN_MM:.0f} mm from its ends when possible): lumen "
              f"radius {radius:.1f} mm (area-equivalent), cylinder surface >= "
              f"{margin:.1f} mm inside the lumen edge"),
    )
    return ref, f"aortic lumen track, {n_run} slices ({where.split(' (')[0]})"


def _blood_pool_from_mask(aorta: np.ndarray, grid: Grid, z_slice: np.ndarray,
                          lungs: np.ndarray | None = None) -> ReferenceRegion | None:
    """PERCIST blood-pool cylinder inside a given aorta mask (e.g. from an organ map).

    Per slice the aorta's most posterior component is taken (the descending aorta where the
    arch and the ascending aorta are also in the slice [W09]); the cylinder is centred on the
    stretch of ``BLOOD_POOL_LENGTH_MM`` whose lumen stays deepest (in-plane distance to the
    edge), on thoracic (lung) slices when there are any, the most cranial on ties.
    """
    sx, sy, sz = grid.spacing_mm
    slices = [int(k) for k in np.nonzero(aorta.any(axis=(1, 2)))[0]]
    if not slices:
        return None
    cross = ndi.generate_binary_structure(2, 1)
    depth: dict[int, float] = {}
    centre: dict[int, tuple[float, float]] = {}
    for k in slices:
        lab, n = ndi.label(aorta[k], structure=cross)
        rows = [float(np.nonzero(lab == i)[0].mean()) for i in range(1, n + 1)]
        comp = lab == int(np.argmax(rows)) + 1  # larger row = more posterior (LPS, y down)
        edt = ndi.distance_transform_edt(np.pad(comp, 1), sampling=(sy, sx))[1:-1, 1:-1]
        jj, ii = np.unravel_index(int(np.argmax(edt)), edt.shape)
        depth[k] = float(edt[jj, ii])
        centre[k] = (float(jj), float(ii))
    if abs(grid.direction_matrix[1, 1]) < AXIS_ALIGNED_MIN_COSINE:
        mid = slices[len(slices) // 2]
        depth, centre = {mid: depth[mid]}, {mid: centre[mid]}
    half = math.floor(BLOOD_POOL_LENGTH_MM / 2.0 / sz + 1e-6)
    lung_slices = np.asarray(lungs, bool).any(axis=(1, 2)) if lungs is not None \
        else np.zeros(aorta.shape[0], bool)
    thoracic = [bool(v) for v in np.asarray(lung_slices).ravel()]
    up = 1.0 if len(z_slice) < 2 or z_slice[-1] >= z_slice[0] else -1.0
    cands: list[tuple[bool, float, float, int]] = []
    for k in centre:
        window = range(k - half, k + half + 1)
        if any(w not in depth for w in window):
            continue
        cands.append((all(thoracic[w] for w in window), min(depth[w] for w in window),
                      up * float(z_slice[k]), k))
    if not cands:  # aorta shorter than the cylinder: its deepest slice
        deepest = max(centre, key=lambda q: depth[q])
        cands = [(False, depth[deepest], 0.0, deepest)]
    any_thoracic = any(c[0] for c in cands)
    pool = [c for c in cands if c[0]] if any_thoracic else cands
    top = max(c[1] for c in pool)
    _, d, _, kbest = max((c for c in pool
                          if c[1] >= top - AORTA_TIE_VOXEL_FRACTION * min(sx, sy)),
                         key=lambda c: c[2])
    cj, ci = centre[kbest]
    p = grid.index_to_lps((float(kbest), cj, ci))
    k = kbest
    where = "descending thoracic aorta" if any_thoracic else "aorta (no thoracic slice)"
    return ReferenceRegion("blood_pool", (float(p[0]), float(p[1]), float(z_slice[k])),
                           BLOOD_POOL_RADIUS_MM, BLOOD_POOL_LENGTH_MM,
                           rule=(f"{2.0 * BLOOD_POOL_RADIUS_MM / 10.0:g} cm x "
                                 f"{BLOOD_POOL_LENGTH_MM / 10.0:g} cm cylinder in the {where} "
                                 "of the supplied aorta mask (most posterior component per "
                                 f"slice), where the lumen is deepest ({d:.1f} mm to its edge)"))


def _liver_reference(
    liver: np.ndarray, dx: np.ndarray, grid: Grid, z_slice: np.ndarray,
    suv: np.ndarray | None,
) -> ReferenceRegion | None:
    sx, sy, sz = grid.spacing_mm
    # the score is -inf outside the liver: work in its box; + 1 voxel keeps the background
    # nearest to every liver voxel inside the box, so the depths are those of the full grid
    crop = padded_box(liver, 1)
    if crop is None:
        return None
    liver_c = liver[crop]
    edt = ndi.distance_transform_edt(liver_c, sampling=(sz, sy, sx))
    right_lobe = liver_c & (dx[crop] < -LIVER_RIGHT_LOBE_MM)
    if not right_lobe.any():
        right_lobe = liver_c
    ks = np.nonzero(liver.any(axis=(1, 2)))[0]
    z_mid = float((z_slice[ks].min() + z_slice[ks].max()) / 2.0)
    z3 = z_slice[crop[0], None, None]
    score = np.where(right_lobe, edt - LIVER_MID_LEVEL_PENALTY_MM_PER_MM * np.abs(z3 - z_mid),
                     -np.inf)
    if suv is not None:
        # avoid focal hot spots (liver lesions, vessels are cooler): local 3 cm mean vs liver
        liver_med = float(np.median(suv[liver]))
        local = ndi.uniform_filter(suv, size=(max(1, int(LIVER_LOCAL_MEAN_MM / sz)),
                                              max(1, int(LIVER_LOCAL_MEAN_MM / sy)),
                                              max(1, int(LIVER_LOCAL_MEAN_MM / sx))))[crop]
        score = np.where(np.abs(local - liver_med) > LIVER_HOTSPOT_FRACTION * liver_med,
                         score - LIVER_HOTSPOT_PENALTY_MM, score)
    best_c = np.unravel_index(int(np.argmax(score)), score.shape)
    if not np.isfinite(score[best_c]):
        return None
    depth = float(edt[best_c])
    best = tuple(int(v) + c.start for v, c in zip(best_c, crop))
    p = grid.index_to_lps(tuple(float(v) for v in best))  # type: ignore[arg-type]
    if depth < LIVER_SPHERE_RADIUS_MM:
        warn_external(format_message(f"the liver is too thin for a "
                                     f"{2.0 * LIVER_SPHERE_RADIUS_MM / 10.0:g} cm sphere "
                                     f"(deepest point {depth:.0f} mm from its edge)"),
                      AnatomyWarning)
    return ReferenceRegion(
        "liver",
        (float(p[0]), float(p[1]), float(p[2])),
        LIVER_SPHERE_RADIUS_MM,
        None,
        rule=(f"{2.0 * LIVER_SPHERE_RADIUS_MM / 10.0:g} cm sphere in the right lobe at the "
              f"deepest point ({depth:.0f} mm from the "
              "liver surface), preferring the dome-tip mid-level and uniform uptake"),
    )


def organ_target(name: str, organ_names: Mapping[str, AnatomyLabel | str] | None = None
                 ) -> AnatomyLabel | None:
    """The structure an organ-map label name feeds (``None``: not used by emlesion).

    Names are compared in lower case with spaces and hyphens as underscores; ``organ_names``
    adds to (and overrides) :data:`TOTALSEGMENTATOR_NAMES`; every ``vertebrae_*`` label
    feeds the spine and every ``lung_*`` label the lungs.
    """
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    for k, v in (organ_names or {}).items():
        if k.strip().lower().replace(" ", "_").replace("-", "_") == key:
            return AnatomyLabel(v)
    target = TOTALSEGMENTATOR_NAMES.get(key)
    if target is None and key.startswith("vertebrae_"):
        target = AnatomyLabel.SPINE
    if target is None and key.startswith("lung_"):
        target = AnatomyLabel.LUNGS
    return target


def _organ_masks(
    organ_labels: LabelMap, grid: Grid,
    organ_names: Mapping[str, AnatomyLabel | str] | None,
) -> dict[AnatomyLabel, np.ndarray]:
    labels = organ_labels.resample_to(grid) if not organ_labels.grid.same_as(grid) \
        else organ_labels
    arr = np.asarray(labels.array)
    new: dict[AnatomyLabel, np.ndarray] = {}
    unknown: list[str] = []
    known = {n.lower() for table in ORGAN_CLASS_TABLES.values() for n in table.values()}
    for value in organ_labels.labels:
        name = organ_labels.name(value)
        target = organ_target(name, organ_names)
        if target is None:
            if name.strip().lower() not in known:  # TotalSegmentator classes we do not use
                unknown.append(name.strip().lower())
            continue
        m = arr == value
        if m.any():
            new[target] = new.get(target, np.zeros(grid.shape, bool)) | m
    if not new:
        raise MaskError(format_message("no label of the organ label map has a known organ name",
                                       series=organ_labels.source or None,
                                       fix="name the labels (e.g. TotalSegmentator names) or "
                                       "pass organ_names"))
    if unknown:
        warn_external(format_message(f"organ labels not used by emlesion: "
                                     f"{', '.join(sorted(set(unknown))[:10])}"
                                     + (" ..." if len(set(unknown)) > 10 else "")),
                      AnatomyWarning)
    return new
