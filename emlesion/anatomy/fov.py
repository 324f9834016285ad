"""Field-of-view plausibility, brain and heart for :func:`emlesion.anatomy.segment_anatomy`.

A PET/CT field of view may hold any part of the body: a whole-body scan (vertex to
thighs), an abdomen-pelvis scan, a head-and-neck scan, or an image cropped around a limb
tumour. The organ rules of :mod:`emlesion.anatomy.ct` were written for the trunk; applied
to a thigh they mistake the femur for the spine and muscle uptake for a bladder. This
module decides, slice by slice, which body regions the scan covers, and delineates the two
classic physiological false positives of threshold segmentation outside the abdomen: the
brain and the heart (myocardium).

Rules (all thresholds are module constants)
-------------------------------------------
*Trunk slice*: the largest body cross-section of the slice is at least
:data:`TRUNK_MIN_WIDTH_MM` wide (left-right) and :data:`TRUNK_MIN_AREA_CM2` in area, and does
not touch the transverse edge of the image over more than :data:`TRUNCATION_MAX_MM` (a
body cut by the field of view has no known midline). Adult thighs, neck and head are
narrower than 200 mm; an adult abdomen, thorax or pelvis is wider (on the real scans of
``benchmarks/audit_fov_real.py`` the margin is small for a large patient: see
:data:`TRUNK_MIN_WIDTH_MM`).

*Lungs*: air (CT < :data:`LUNG_HU_MAX`) enclosed by the body on trunk slices; the components
of at least :data:`LUNG_MIN_COMPONENT_ML`; accepted only when at least
:data:`LUNG_MIN_SIDE_ML` lies on each side of the body's left-right centre and the air spans
at least :data:`LUNG_MIN_EXTENT_MM` cranio-caudally (bowel gas is smaller and seldom
bilateral at that size).

*Head / brain (CT)*: on slices that are not trunk slices, the skull is the bone
(>= 200 HU) ring, closed by one voxel; the intracranial space is its filled interior, and
the brain is the largest 3-D component of intracranial voxels in :data:`BRAIN_HU` (0-80 HU).
Accepted when its volume is at least :data:`BRAIN_MIN_ML`, its mean CT is in
:data:`BRAIN_MEAN_HU` (10-60 HU), its top lies within
:data:`BRAIN_TOP_MARGIN_MM` of the top of the body (or of the field of view), and, with a
PET, its median uptake is at least :data:`BRAIN_MIN_UPTAKE_RATIO` times the body median.

*Brain (PET only)*: without CT, the largest connected region of smoothed uptake above
``max(2.5, 0.35 x the 99.5th percentile of the cranial 150 mm)`` (:data:`BRAIN_PET_MIN_SUV`,
:data:`BRAIN_PET_FRACTION`, :data:`BRAIN_PET_REFERENCE_PERCENTILE`,
:data:`BRAIN_PET_REFERENCE_DEPTH_MM`) whose top lies within
:data:`BRAIN_TOP_MARGIN_MM` of the top of the PET body, of
:data:`BRAIN_MIN_ML`-:data:`BRAIN_MAX_ML`, that straddles the body midline (the brain is a
midline organ: its centroid within :data:`BRAIN_MAX_MIDLINE_OFFSET_MM` of the centre of the
body on its slices, at least :data:`BRAIN_MIN_SIDE_FRACTION` of it on each side; on an
abdomen-pelvis PET a hot kidney at the cranial edge otherwise passes for a brain), slices'
holes filled (ventricles).

*Heart*: when lungs are present, on the lung slices, the soft tissue (:data:`HEART_HU`) inside
the convex hull of the lungs, outside lungs and bone, anterior to the vertebral bodies,
minus the liver; opened by a :data:`HEART_OPENING_MM` ball (cuts the great vessels and
the oesophagus); the largest component. Accepted when its volume is
:data:`HEART_MIN_ML`-:data:`HEART_MAX_ML` and its centroid lies left of ``-30 mm`` from
the spinal axis (:data:`HEART_MAX_RIGHT_MM`; the heart is left-anterior) and anterior of
the vertebral bodies.
*Myocardium*: the voxels with SUV >= ``max(2.5, 1.6 x the heart's median)``
(:data:`MYOCARDIUM_MIN_SUV`, :data:`MYOCARDIUM_MEDIAN_RATIO`) (the
ventricular blood pool is the heart's cooler bulk) within :data:`MYOCARDIUM_REACH_MM` of
the heart, in connected regions that touch the heart, dilated by one voxel for partial
volume. The reach recovers the anterior wall where the heart touches the chest wall in
front of the lungs' hull (outside the CT heart mask).

Limits
------
Adult body sizes are assumed (a child's trunk may be narrower than 200 mm: no trunk
organ is then searched; the head, neck or thigh of a heavy adult may reach 200 mm and be
taken for trunk: the real QIN head with its ears is 204 mm wide on the PET outline). An
image cropped around a lesion that cuts the trunk is treated as "no trunk". Myocardial
FDG uptake varies from none (long fasting, low-carbohydrate preparation) to intense
(SUV > 10), and is patchy; the myocardium mask follows the uptake
of this scan and may be empty (the whole heart is still excluded then, with no halo).
A hot mediastinal node or a pericardial lesion that touches the heart may be merged with
it. The CT brain rule needs the skull ring closed on the working grid; a craniotomy
defect or a very thin skull at coarse resolution may open it (the PET check then fails and
the brain is dropped with a warning). The PET-only brain rule assumes the head is at the
cranial end of the field of view and that no other very hot region is connected to the
brain at the threshold (a skull-base tumour or hot salivary glands may be merged).

References
----------
.. [1] Boellaard R et al. FDG PET/CT: EANM procedure guidelines for tumour imaging:
   version 2.0. Eur J Nucl Med Mol Imaging 2015;42:328-354 (physiological uptake in brain,
   myocardium, urinary tract).
.. [2] Hu S, Hoffman EA, Reinhardt JM. Automatic lung segmentation for accurate
   quantitation of volumetric X-ray CT images. IEEE Trans Med Imaging 2001;20:490-498
   (air threshold, body-enclosed components).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from emlesion.errors import format_message, warn_external
from emlesion.io.geometry import Grid
from emlesion.io.geometry import ball_structure as _ball
from emlesion.provenance import jsonable

__all__ = [
    "BRAIN_MAX_MIDLINE_OFFSET_MM",
    "BRAIN_MAX_ML",
    "BRAIN_MIN_ML",
    "BRAIN_MIN_SIDE_FRACTION",
    "HEART_MAX_ML",
    "HEART_MIN_ML",
    "PET_BODY_FRACTION",
    "TRUNK_MIN_AREA_CM2",
    "TRUNK_MIN_WIDTH_MM",
    "FieldOfView",
    "ball_dilation",
    "fill_slices",
    "find_brain_ct",
    "find_brain_pet",
    "find_heart",
    "find_lungs",
    "largest_component",
    "padded_box",
    "trunk_slices",
]

# Sources of the constants below (the module references [1], [2] and):
#   [H73] Hounsfield GN. Computerized transverse axial scanning (tomography). Br J Radiol
#         1973;46:1016-1022 (air -1000 HU, water 0 HU).
#   [K88] Kvist H et al. Am J Clin Nutr 1988;48:1351-1361 (adipose tissue -190..-30 HU).
#   [NA76] New PF, Aronow S. Attenuation measurements of whole blood and blood fractions in
#         computed tomography. Radiology 1976;121:635-640 (unenhanced blood about 40-60 HU).
#   [G41] Standring S (ed). Gray's Anatomy, 41st ed. Elsevier 2016 (body, brain, heart and
#         lung sizes).
#   [C81] Cala LA, Thickbroom GW, Black JL, Collins DW, Mastaglia FL. Brain density and
#         cerebrospinal fluid space size: CT of normal volunteers. AJNR Am J Neuroradiol
#         1981;2:41-47 (white matter 30 +- 3.5 HU, deep grey matter 33 +- 3 HU, whole brain
#         34 +- 2.7 HU).
#   [W07] [authors unverified] Standardized uptake value atlas: characterization of
#         physiological 2-deoxy-2-[18F]fluoro-D-glucose uptake in normal tissues. Mol
#         Imaging Biol 2007;9(2):83-90, doi:10.1007/s11307-006-0075-y (98 patients:
#         cerebellum SUVmean 8.0 +- 2.2, palatine tonsils 3.45 +- 1.4).
#   [G14] Gordon CC, Blackwell CL, Bradtmiller B, et al. 2012 Anthropometric survey of U.S.
#         Army personnel: methods and summary statistics. Natick/TR-15/007, US Army Natick
#         Soldier Research, Development and Engineering Center 2014 (adult body breadths;
#         no value of it is quoted here [values unverified]).
# Values marked "chosen on the generator seeds" were tuned on the synthetic studies of
# :mod:`emlesion.sample` and the head-thorax phantom of ``tests/test_anatomy_fov.py``; they
# are not published values. "Real:" gives what ``benchmarks/audit_fov_real.py`` measured
# on the real scans of ../shared/data (TS CT = TotalSegmentator trunk CT; QIN, STS = the
# whole-body FDG PETs; the PET body outline lies about 5 mm outside the CT body). Rule
# strings are built from these names.

#: Trunk slice: the largest body cross-section is at least this wide (mm) and this large
#: (cm^2): an adult abdomen, thorax or pelvis is wider than 200 mm, adult thighs, neck and
#: head are narrower [G41] [G14]; chosen on the generator seeds. Real: trunk >= 330 mm and
#: 665 cm^2 (TS CT), >= 323 mm (STS PET outline, arms raised); non-trunk up to 204 mm (QIN
#: head with ears, 124 kg, PET outline: marginal) and 192 mm (STS thigh with its sarcoma,
#: CT); the area does not separate (a QIN neck section 340 cm^2 on PET, an STS thigh
#: >= 352 cm^2 on CT): the width decides.
TRUNK_MIN_WIDTH_MM = 200.0
TRUNK_MIN_AREA_CM2 = 250.0
#: ... and touches the transverse image edge over at most this length (mm); chosen. Real:
#: uncut TS CT sections touch <= 18 mm, the STS thigh crop 206-422 mm; the TS CT pelvis
#: and lower abdomen, wider than the 366 mm reconstruction field, 21-183 mm (53 of 112
#: slices are then not trunk).
TRUNCATION_MAX_MM = 20.0
#: Square millimetres per square centimetre (unit conversion).
MM2_PER_CM2 = 100.0
#: Lungs: air below this CT value (HU), between air (-1000 HU [H73]) and fat (-190..-30 HU
#: [K88]); aerated lung lies around -700..-900 HU [2]. Real: TS CT lung bases (labels)
#: median -794 HU, 98 % below, subcutaneous fat P1 -165 HU.
LUNG_HU_MAX = -400.0
#: Lung air components of at least this volume (mL), at least this much on each side, over
#: at least this cranio-caudal extent (mm); an adult lung holds litres of air [G41], bowel
#: gas is smaller and seldom bilateral; chosen on the generator seeds. Real: TS CT colon
#: gas of 174 mL on one side, 105 mm long (more than the component and extent bounds) is
#: rejected by the side test; its lung bases (70 / 41 mL, 30 mm) are not found (no heart
#: in that field). No real CT holds a whole thorax: not checked on real lungs.
LUNG_MIN_COMPONENT_ML = 100.0
LUNG_MIN_SIDE_ML = 300.0
LUNG_MIN_EXTENT_MM = 60.0
#: Brain volume range (mL); an adult brain holds about 1.1-1.5 L [G41]; the bounds are wide
#: to keep a brain partly cut by the field of view or partly lost to the threshold. Real:
#: QIN PET brain 1387 mL; a field that starts at the skull base (STS PET) holds 59 mL of
#: brain, which is not kept (50 mL would keep it and still reject the QIN abdomen-pelvis
#: field; not changed: hot tonsils [W07] at the top of a neck field would then pass).
BRAIN_MIN_ML = 150.0
BRAIN_MAX_ML = 2500.0
#: The brain's top lies within this distance (mm) of the top of the body or field of view;
#: chosen. Real: QIN PET brain top 18 mm below the PET body top.
BRAIN_TOP_MARGIN_MM = 60.0
#: With a PET, the brain's median uptake is at least this multiple of the body median
#: (intense physiological brain FDG uptake [1], cerebellum SUVmean 8.0 [W07]); chosen on
#: the generator seeds. Real: QIN brain median SUV 8.0 = 15.9 x the body median, STS
#: (skull-base brain) 8.0 x; no real PET/CT of the head (the CT path's ratio unchecked).
BRAIN_MIN_UPTAKE_RATIO = 2.0
#: A skull slice encloses at least this area (mm^2, 20 cm^2) inside its bone ring; chosen.
#: Real: no head CT; the TS CT bony pelvic ring encloses 3285 mm^2 and passes (the volume
#: and top tests then reject it).
SKULL_MIN_INNER_AREA_MM2 = 2000.0
#: Brain CT range (HU): white matter 30 +- 3.5 HU, deep grey matter 33 +- 3 HU, whole brain
#: 34 +- 2.7 HU [C81] (cortex a few HU above white matter), with margin for noise and
#: partial volume; the candidate's mean must lie in the second range. Real: no head CT in
#: the data (not checked).
BRAIN_HU = (0.0, 80.0)
BRAIN_MEAN_HU = (10.0, 60.0)
#: PET-only brain: largest distance (mm) of its centroid from the body's left-right centre.
#: (The brain is a midline organ [G41]; 30 mm chosen on the generator seeds.) Real: QIN
#: brain centroid 0.5 mm from the body centre, 48 % on its smaller side; on the QIN
#: abdomen-pelvis field the cranial hot regions (83-91 mm right, 77 mm left) have 0 % on
#: the other side and are rejected.
BRAIN_MAX_MIDLINE_OFFSET_MM = 30.0
#: PET-only brain: smallest fraction of its voxels on each side of the body centre; chosen
#: on the generator seeds (real: see above).
BRAIN_MIN_SIDE_FRACTION = 0.3
#: PET-only: sigma (mm) of the 3-D Gaussian smoothing, about one PET voxel [1]; the body is
#: smoothed uptake above this fraction of the median positive uptake, and at least this SUV;
#: chosen. Real: PET voxels 3.4 x 3.4 x 2.0 mm (QIN), 4.7 x 4.7 x 3.3 mm (STS); the floor
#: (0.1) decides on both (the median positive uptake includes the air background); the
#: PET body matches the STS crop CT body (Dice 0.957, outline about 5 mm outside); QIN
#: body 118 L for 124 kg, STS 59.5 L for 71 kg (skull base to knees).
PET_SMOOTHING_SIGMA_MM = 4.0
PET_BODY_FRACTION = 0.3
PET_BODY_MIN_SUV = 0.1
#: PET-only brain threshold: max(this SUV, this fraction x this percentile of the smoothed
#: uptake of the cranial this-many mm of the body); candidates within this depth (mm) of the
#: top of the body. Chosen on the generator seeds and the QIN data. Real: QIN level 3.78
#: (0.35 x P99.5 10.8), brain smoothed median 7.7, none of the 9282 voxels of the 11 expert
#: neck lesions inside the 1387 mL brain (palatine tonsils SUVmean 3.45 [W07] lie near the
#: level); brain height 134 mm, bottom 150 mm below the body top.
BRAIN_PET_MIN_SUV = 2.5
BRAIN_PET_FRACTION = 0.35
BRAIN_PET_REFERENCE_PERCENTILE = 99.5
BRAIN_PET_REFERENCE_DEPTH_MM = 150.0
BRAIN_PET_SEARCH_DEPTH_MM = 300.0
#: Heart: soft tissue (HU; unenhanced blood and myocardium about 40-60 HU [NA76], the range
#: is that of the aorta rule) between the lungs, at least this far (mm) anterior of the
#: vertebral bodies, and farther than this (mm) from the liver (margins chosen). Real:
#: unenhanced blood (TS CT aorta label) P1 -14, median 42, P99 79 HU. No real CT holds
#: the heart (the TS CT ends at the lung bases): the HEART_* rules are not checked.
HEART_HU = (-20.0, 100.0)
HEART_VERTEBRA_MARGIN_MM = 5.0
HEART_LIVER_MARGIN_MM = 4.0
#: Opening ball (mm): cuts the great vessels and the oesophagus; chosen on the phantom.
#: Real: not checked (no real CT of the heart).
HEART_OPENING_MM = 8.0
#: Heart volume range (mL; the adult heart with its blood is roughly 0.5-0.8 L [G41]).
#: Real: not checked (no real CT of the heart).
HEART_MIN_ML = 150.0
HEART_MAX_ML = 1500.0
#: The heart's centroid is at most this far (mm) right of the spinal axis (the heart lies
#: left-anterior [G41]). Real: not checked (no real CT of the heart).
HEART_MAX_RIGHT_MM = 30.0
#: Myocardium: SUV >= max(this SUV, this multiple of the heart median) within this reach
#: (mm) of the heart; myocardial FDG uptake is variable [1]; chosen on the phantom. Real
#: (proxy on the PET alone, no CT heart): myocardium median SUV 7.2 (QIN), 6.0 (STS); the
#: left-ventricular cavity (blood with spill-in) 3.4 / 2.75, above the 2.5 floor, below
#: 1/1.6 of the myocardium (ratios 2.1 / 2.2). The reach is not checked.
MYOCARDIUM_MIN_SUV = 2.5
MYOCARDIUM_MEDIAN_RATIO = 1.6
MYOCARDIUM_REACH_MM = 15.0

@dataclass(frozen=True)
class FieldOfView:
    """Which body regions a scan covers (decided on the anatomy working grid).

    Parameters
    ----------
    z_range_mm : tuple of float
        LPS z (mm) of the lowest and highest slice centre.
    trunk_z_mm : tuple of float or None
        z range (mm) of the trunk slices (see module notes), ``None`` when there is none.
    n_trunk_slices : int
        Number of trunk slices.
    lungs_z_mm : tuple of float or None
        z range (mm) of the lungs, ``None`` when no lungs were found.
    lungs_volume_ml : float
        Volume of the accepted lung air (mL).
    head_z_mm : tuple of float or None
        z range (mm) of the intracranial space (CT) or of the brain (PET only).
    pelvis : bool
        True when the iliac crests were found (bony pelvis in the field of view).
    rule : str
        The rules used, in words.
    brain_rule : str
        How the brain was found, or why none was (the rule of
        :func:`find_brain_ct` / :func:`find_brain_pet`).
    """

    z_range_mm: tuple[float, float]
    trunk_z_mm: tuple[float, float] | None = None
    n_trunk_slices: int = 0
    lungs_z_mm: tuple[float, float] | None = None
    lungs_volume_ml: float = 0.0
    head_z_mm: tuple[float, float] | None = None
    pelvis: bool = False
    rule: str = ""
    brain_rule: str = ""

    @property
    def trunk(self) -> bool:
        """True when the scan covers at least part of the trunk (abdomen, pelvis, thorax)."""
        return self.n_trunk_slices > 0

    @property
    def lungs(self) -> bool:
        """True when lungs (hence the lower thorax at least) are in the field of view."""
        return self.lungs_z_mm is not None

    @property
    def head(self) -> bool:
        """True when a brain (hence the head) is in the field of view."""
        return self.head_z_mm is not None

    def regions(self) -> tuple[str, ...]:
        """Names of the regions covered (``"head"``, ``"thorax"``, ``"trunk"``, ``"pelvis"``)."""
        out = []
        if self.head:
            out.append("head")
        if self.lungs:
            out.append("thorax")
        if self.trunk:
            out.append("trunk")
        if self.pelvis:
            out.append("pelvis")
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        d: dict[str, Any] = jsonable({
            "z_range_mm": self.z_range_mm,
            "trunk_z_mm": self.trunk_z_mm,
            "n_trunk_slices": self.n_trunk_slices,
            "lungs_z_mm": self.lungs_z_mm,
            "lungs_volume_ml": self.lungs_volume_ml,
            "head_z_mm": self.head_z_mm,
            "pelvis": self.pelvis,
            "rule": self.rule,
            "brain_rule": self.brain_rule,
        })
        d["regions"] = list(self.regions())
        return d

    def __repr__(self) -> str:
        lo, hi = self.z_range_mm
        return (f"FieldOfView(regions={list(self.regions())}, z={lo:.0f}..{hi:.0f} mm, "
                f"trunk_slices={self.n_trunk_slices})")


# ---------------------------------------------------------------------------- helpers
def largest_component(mask: np.ndarray, structure: np.ndarray | None = None) -> np.ndarray:
    """The largest connected component of a boolean mask (used by the anatomy rules).

    Parameters
    ----------
    mask : ndarray of bool
        Any dimension.
    structure : ndarray, optional
        Connectivity, as for :func:`scipy.ndimage.label` (default: face connectivity).

    Returns
    -------
    ndarray of bool
        The voxels of the largest component (the first one on ties); all False when
        ``mask`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> largest_component(np.array([1, 0, 1, 1], bool)).astype(int).tolist()
    [0, 0, 1, 1]
    """
    lab, n = ndi.label(mask, structure=structure)
    if n == 0:
        return np.zeros(mask.shape, bool)
    counts = np.bincount(lab.ravel())
    counts[0] = 0
    return np.asarray(lab == int(np.argmax(counts)))


def _z_range(mask: np.ndarray, z_slice: np.ndarray) -> tuple[float, float] | None:
    ks = np.nonzero(mask.reshape(mask.shape[0], -1).any(axis=1))[0]
    if ks.size == 0:
        return None
    zz = z_slice[ks]
    return float(zz.min()), float(zz.max())


def padded_box(
    mask: np.ndarray, margin: int | tuple[int, ...] = 0,
) -> tuple[slice, ...] | None:
    """Bounding box of the True voxels of ``mask``, grown by ``margin`` voxels per axis.

    The box is clipped to the array. A morphological operation whose structuring element
    reaches at most ``margin`` voxels gives on ``mask[box]`` the same voxels as on the whole
    array (outside the box the result is empty), in less time when the mask is small; the
    anatomy rules use it to crop their searches.

    Parameters
    ----------
    mask : ndarray of bool
        Any dimension.
    margin : int or tuple of int
        Voxels added on both sides, one value for all axes or one per axis.

    Returns
    -------
    tuple of slice or None
        ``None`` when ``mask`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> padded_box(np.array([0, 0, 1, 1, 0, 0], bool), 1)
    (slice(1, 5, None),)
    """
    m = np.asarray(mask, dtype=bool)
    pad = (margin,) * m.ndim if isinstance(margin, int) else tuple(margin)
    out = []
    for axis in range(m.ndim):
        hit = np.nonzero(m.any(axis=tuple(a for a in range(m.ndim) if a != axis)))[0]
        if hit.size == 0:
            return None
        out.append(slice(max(0, int(hit[0]) - pad[axis]),
                         min(m.shape[axis], int(hit[-1]) + 1 + pad[axis])))
    return tuple(out)


def ball_dilation(
    mask: np.ndarray, radius_mm: float, spacing_mm: tuple[float, float, float],
) -> np.ndarray:
    """Dilation of a 3-D mask by :func:`emlesion.io.geometry.ball_structure`, for large balls.

    Parameters
    ----------
    mask : ndarray of bool
        ``(z, y, x)`` mask.
    radius_mm : float
        Ball radius (mm).
    spacing_mm : tuple of float
        Voxel spacing ``(x, y, z)`` (mm), as :attr:`emlesion.io.geometry.Grid.spacing_mm`.

    Returns
    -------
    ndarray of bool
        The voxels whose offset to the nearest ``mask`` voxel lies in the ball: the same
        voxels as ``scipy.ndimage.binary_dilation(mask, ball_structure(radius_mm,
        spacing_mm))`` (``tests/test_anatomy_fov.py`` compares them).

    Notes
    -----
    The nearest ``mask`` voxel of every voxel comes from one Euclidean feature transform
    (:func:`scipy.ndimage.distance_transform_edt`), whose cost does not grow with the
    ball: a 30 mm ball on a 2.5 mm grid (about 6000 structure voxels) takes 0.2 s instead
    of 8 s on a 2.3-million-voxel grid. The ball test on the offset is the one of
    ``ball_structure`` (its 1e-6 mm^2 tolerance, its box of ``floor(radius / spacing)``
    voxels), so that a voxel is in the result exactly when some mask voxel is in its ball.
    """
    m = np.asarray(mask, dtype=bool)
    out = np.zeros(m.shape, bool)
    if not m.any():
        return out
    sx, sy, sz = spacing_mm
    reach = [max(math.floor(radius_mm / s), 0) for s in (sz, sy, sx)]
    nearest = ndi.distance_transform_edt(~m, sampling=(sz, sy, sx), return_distances=False,
                                         return_indices=True)
    d2 = np.zeros(m.shape, np.float64)
    inside = np.ones(m.shape, bool)
    for axis, (step, r) in enumerate(zip((sz, sy, sx), reach)):
        shape = [1, 1, 1]
        shape[axis] = m.shape[axis]
        offset = nearest[axis] - np.arange(m.shape[axis]).reshape(shape)
        d2 += (offset * step) ** 2
        inside &= np.abs(offset) <= r
    out[:] = inside & (d2 <= radius_mm**2 + 1e-6)
    return out


#: In-plane (y, x) face connectivity inside a 3-D array: the 2-D default of
#: :func:`scipy.ndimage.binary_fill_holes` applied to every axial slice at once.
_IN_PLANE_CROSS = np.zeros((3, 3, 3), bool)
_IN_PLANE_CROSS[1] = ndi.generate_binary_structure(2, 1)


def fill_slices(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of a 3-D mask slice by slice (axial slices: the first axis).

    Parameters
    ----------
    mask : ndarray of bool
        ``(z, y, x)`` mask.

    Returns
    -------
    ndarray of bool
        The mask with every in-plane hole filled (:func:`scipy.ndimage.binary_fill_holes`
        per slice); holes open to another slice are filled too.

    Notes
    -----
    One labelling of the background, in-plane face connectivity, inside the mask's
    bounding box grown by one voxel in-plane: a hole is a background component that does
    not reach the edge of that box. The result is the same as
    :func:`~scipy.ndimage.binary_fill_holes` applied to each slice with its default (face)
    connectivity (``tests/test_anatomy_fov.py`` compares them).
    """
    m = np.asarray(mask, dtype=bool)
    out = np.zeros(m.shape, bool)
    box = padded_box(m, (0, 1, 1))
    if box is None:
        return out
    sub = m[box]
    lab, n = ndi.label(~sub, structure=_IN_PLANE_CROSS)
    open_to_edge = np.zeros(n + 1, bool)
    open_to_edge[0] = True  # label 0: the mask itself
    for face in (lab[:, 0, :], lab[:, -1, :], lab[:, :, 0], lab[:, :, -1]):
        open_to_edge[face] = True
    out[box] = sub | ~open_to_edge[lab]
    return out


def section_measures(section: np.ndarray, sx: float, sy: float) -> tuple[float, float, float]:
    """Width, area and image-edge contact of one axial body section (the trunk test's inputs).

    Parameters
    ----------
    section : ndarray
        Boolean ``(y, x)`` mask of the section, not empty (:func:`trunk_slices` passes the
        largest 8-connected body component of the slice).
    sx, sy : float
        In-plane voxel spacing (mm) along x (columns) and y (rows).

    Returns
    -------
    width_mm : float
        Left-right extent: columns from the first to the last one the section touches.
    area_cm2 : float
        Section area.
    edge_mm : float
        Length of the image border the section touches (first and last row count ``sx``
        per voxel, first and last column ``sy``): a body cut by the field of view touches it
        over a long stretch (module notes, ``TRUNCATION_MAX_MM``).
    """
    cols = np.nonzero(section.any(axis=0))[0]
    width_mm = (cols[-1] - cols[0] + 1) * sx
    area_cm2 = section.sum() * sx * sy / MM2_PER_CM2
    edge_mm = ((section[0].sum() + section[-1].sum()) * sx
               + (section[:, 0].sum() + section[:, -1].sum()) * sy)
    return float(width_mm), float(area_cm2), float(edge_mm)


def trunk_slices(body: np.ndarray, grid: Grid) -> np.ndarray:
    """Boolean per slice: True where the largest body cross-section is a trunk.

    Parameters
    ----------
    body : ndarray
        Boolean body mask ``(z, y, x)`` on ``grid``.
    grid : Grid
        Its grid (the in-plane spacing converts voxel counts to mm).

    Returns
    -------
    ndarray
        ``(nz,)`` booleans (rule in the module notes).
    """
    sx, sy, _sz = grid.spacing_mm
    nz, _ny, _nx = body.shape
    out = np.zeros(nz, bool)
    eight = np.ones((3, 3), bool)
    for k in range(nz):
        if body[k].sum() * sx * sy < TRUNK_MIN_AREA_CM2 * MM2_PER_CM2:
            continue
        width, area_cm2, edge_mm = section_measures(largest_component(body[k], eight), sx, sy)
        out[k] = (width >= TRUNK_MIN_WIDTH_MM and area_cm2 >= TRUNK_MIN_AREA_CM2
                  and edge_mm <= TRUNCATION_MAX_MM)
    return out


def find_lungs(
    hu: np.ndarray, body: np.ndarray, trunk: np.ndarray, x3: np.ndarray, grid: Grid,
) -> tuple[np.ndarray, str]:
    """Lung mask (air enclosed by the body on trunk slices, bilateral, large).

    Returns the mask (all False when the criteria fail) and the reason in words.
    """
    vox_ml = grid.voxel_volume_ml
    air = (hu < LUNG_HU_MAX) & body & trunk[:, None, None]
    empty = np.zeros(hu.shape, bool)
    if not air.any():
        return empty, "no air enclosed by the body on trunk slices"
    lab, _n = ndi.label(air)
    sizes = np.bincount(lab.ravel())
    keep = sizes * vox_ml >= LUNG_MIN_COMPONENT_ML
    keep[0] = False
    lungs = keep[lab]
    if not lungs.any():
        return empty, f"no enclosed air component of {LUNG_MIN_COMPONENT_ML:g} mL or more"
    # body left-right centre per slice
    cx = np.array([float(x3[k][body[k]].mean()) if body[k].any() else np.nan
                   for k in range(body.shape[0])])
    cx = np.where(np.isfinite(cx), cx, np.nanmedian(cx))
    left = lungs & (x3 > cx[:, None, None])
    ml_left = float(left.sum() * vox_ml)
    ml_right = float((lungs & ~left).sum() * vox_ml)
    ks = np.nonzero(lungs.any(axis=(1, 2)))[0]
    extent = float((ks.max() - ks.min() + 1) * grid.spacing_mm[2])
    why = (f"enclosed air {ml_right:.0f} mL right / {ml_left:.0f} mL left, "
           f"{extent:.0f} mm cranio-caudal")
    if min(ml_left, ml_right) < LUNG_MIN_SIDE_ML or extent < LUNG_MIN_EXTENT_MM:
        return empty, why + (f" (lungs need >= {LUNG_MIN_SIDE_ML:g} mL each side and >= "
                             f"{LUNG_MIN_EXTENT_MM:g} mm)")
    return lungs, why


def find_brain_ct(
    hu: np.ndarray, body: np.ndarray, bone: np.ndarray, trunk: np.ndarray,
    suv: np.ndarray | None, grid: Grid, z_slice: np.ndarray, warning: type[Warning],
) -> tuple[np.ndarray, str]:
    """Brain from CT: intracranial soft tissue inside the skull ring, PET-checked.

    Returns the brain mask (all False when absent or implausible) and the rule or
    reason. A candidate that fails a plausibility check is dropped with ``warning``.
    """
    vox_ml = grid.voxel_volume_ml
    sx, sy, _sz = grid.spacing_mm
    empty = np.zeros(hu.shape, bool)
    cand_slices = ~trunk & body.any(axis=(1, 2)) & bone.any(axis=(1, 2))
    if not cand_slices.any():
        return empty, "no bone outside the trunk slices"
    intra = np.zeros(hu.shape, bool)
    cross = ndi.generate_binary_structure(2, 1)
    for k in np.nonzero(cand_slices)[0]:
        ring = ndi.binary_closing(bone[k], cross, border_value=0)
        inner = ndi.binary_fill_holes(ring) & ~ring
        if inner.sum() * sx * sy >= SKULL_MIN_INNER_AREA_MM2:  # enclosed by bone
            intra[k] = inner
    if not intra.any():
        return empty, (f"no closed bone ring enclosing >= "
                       f"{SKULL_MIN_INNER_AREA_MM2 / MM2_PER_CM2:g} cm^2 (no skull)")
    cand = largest_component(intra & (hu >= BRAIN_HU[0]) & (hu <= BRAIN_HU[1]),
                             np.ones((3, 3, 3), bool))
    vol = float(cand.sum() * vox_ml)
    if vol == 0.0:
        return empty, f"no {BRAIN_HU[0]:g}-{BRAIN_HU[1]:g} HU tissue inside the bone ring"
    mean_hu = float(hu[cand].mean())
    body_top = _z_range(body, z_slice)
    fov_top = float(z_slice.max())
    brain_z = _z_range(cand, z_slice)
    assert body_top is not None and brain_z is not None
    top_gap = min(body_top[1], fov_top) - brain_z[1]
    problems = []
    if not BRAIN_MIN_ML <= vol <= BRAIN_MAX_ML:
        problems.append(f"volume {vol:.0f} mL outside {BRAIN_MIN_ML:g}-{BRAIN_MAX_ML:g} mL")
    if not BRAIN_MEAN_HU[0] <= mean_hu <= BRAIN_MEAN_HU[1]:
        problems.append(f"mean CT {mean_hu:.0f} HU outside "
                        f"{BRAIN_MEAN_HU[0]:g}-{BRAIN_MEAN_HU[1]:g} HU")
    if top_gap > BRAIN_TOP_MARGIN_MM:
        problems.append(f"its top lies {top_gap:.0f} mm below the top of the body "
                        f"(> {BRAIN_TOP_MARGIN_MM:g} mm: not the cranial end)")
    uptake = ""
    if suv is not None:
        body_med = float(np.median(suv[body])) if body.any() else 0.0
        brain_med = float(np.median(suv[cand]))
        ratio = brain_med / body_med if body_med > 0 else math.inf
        uptake = f", median uptake {brain_med:.3g} = {ratio:.1f} x body median"
        if ratio < BRAIN_MIN_UPTAKE_RATIO:
            problems.append(f"median uptake {brain_med:.3g} is only {ratio:.1f} x the body "
                            f"median (< {BRAIN_MIN_UPTAKE_RATIO:g})")
    if problems:
        warn_external(format_message(
            f"brain candidate inside a bone ring dropped: {'; '.join(problems)}",
            fix="supply organ_labels with a brain label"), warning)
        return empty, "brain candidate dropped: " + "; ".join(problems)
    brain = fill_slices(cand)
    return brain, (f"intracranial {BRAIN_HU[0]:g}-{BRAIN_HU[1]:g} HU tissue inside the closed "
                   f"skull ring, {vol:.0f} mL, "
                   f"mean {mean_hu:.0f} HU{uptake}")


def find_brain_pet(
    suv: np.ndarray, grid: Grid, z_slice: np.ndarray, warning: type[Warning],
) -> tuple[np.ndarray, np.ndarray, str]:
    """PET-only body and brain (the large very hot region at the cranial end).

    Returns ``(body, brain, rule)``; ``brain`` is all False when no plausible candidate.
    """
    sx, sy, sz = grid.spacing_mm
    vox_ml = grid.voxel_volume_ml
    smooth = ndi.gaussian_filter(suv.astype(np.float32),
                                 sigma=(PET_SMOOTHING_SIGMA_MM / sz, PET_SMOOTHING_SIGMA_MM / sy,
                                        PET_SMOOTHING_SIGMA_MM / sx))
    pos = smooth[smooth > 0]
    body_level = (max(PET_BODY_MIN_SUV, PET_BODY_FRACTION * float(np.median(pos))) if pos.size
                  else PET_BODY_MIN_SUV)
    body = largest_component(fill_slices(smooth > body_level), np.ones((3, 3, 3), bool))
    empty = np.zeros(suv.shape, bool)
    zr = _z_range(body, z_slice)
    if zr is None:
        return body, empty, "no body on the PET"
    top = zr[1]
    z3 = z_slice[:, None, None]
    cranial = body & (z3 >= top - BRAIN_PET_REFERENCE_DEPTH_MM)
    ref = (float(np.percentile(smooth[cranial], BRAIN_PET_REFERENCE_PERCENTILE)) if cranial.any()
           else 0.0)
    level = max(BRAIN_PET_MIN_SUV, BRAIN_PET_FRACTION * ref)
    hot = body & (smooth >= level) & (z3 >= top - BRAIN_PET_SEARCH_DEPTH_MM)
    lab, n = ndi.label(hot, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return body, empty, f"no uptake >= {level:.3g} at the cranial end"
    best: tuple[float, int] | None = None
    reasons: list[str] = []
    out_of_range: list[float] = []  # volumes (mL) of the regions outside the brain's range
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        comp = lab[sl] == i
        vol = float(comp.sum() * vox_ml)
        ks = np.arange(sl[0].start, sl[0].stop)[comp.any(axis=(1, 2))]
        ctop = float(z_slice[ks].max())
        if top - ctop > BRAIN_TOP_MARGIN_MM:
            continue
        if not BRAIN_MIN_ML <= vol <= BRAIN_MAX_ML:
            out_of_range.append(vol)
            continue
        full = np.zeros(suv.shape, bool)
        full[sl] = comp
        off_side = _off_midline(full, body, grid)
        if off_side:
            reasons.append(f"cranial hot region of {vol:.0f} mL is not a midline organ: "
                           f"{off_side}")
            continue
        if best is None or vol > best[0]:
            best = (vol, i)
    if out_of_range:  # one clause for all of them, not one per region (issue 16)
        vols = sorted(out_of_range, reverse=True)
        shown = ", ".join(f"{v:.0f}" for v in vols[:3]) + (", ..." if len(vols) > 3 else "")
        reasons.insert(0, f"{len(vols)} cranial hot region(s) outside "
                          f"{BRAIN_MIN_ML:g}-{BRAIN_MAX_ML:g} mL ({shown} mL)")
    if best is None:
        why = "; ".join(reasons) or (f"no region >= {level:.3g} reaching within "
                                     f"{BRAIN_TOP_MARGIN_MM:g} mm of the top of the body")
        if reasons:
            warn_external(format_message(f"PET-only brain candidate dropped: {why}"),
                          warning)
        return body, empty, why
    brain = fill_slices(lab == best[1])
    brain = ndi.binary_fill_holes(brain)
    return body, brain, (f"PET only: largest smoothed-uptake region >= {level:.3g} "
                         f"(max({BRAIN_PET_MIN_SUV:g}, {BRAIN_PET_FRACTION:g} x "
                         f"P{BRAIN_PET_REFERENCE_PERCENTILE:g} of the cranial "
                         f"{BRAIN_PET_REFERENCE_DEPTH_MM:g} mm)) reaching within "
                         f"{BRAIN_TOP_MARGIN_MM:g} mm of the top of the body and straddling "
                         f"the body midline, {best[0]:.0f} mL")


def _off_midline(mask: np.ndarray, body: np.ndarray, grid: Grid) -> str:
    """Why ``mask`` does not straddle the body's left-right centre on its slices ("" when it
    does): centroid more than :data:`BRAIN_MAX_MIDLINE_OFFSET_MM` from the centre, or less
    than :data:`BRAIN_MIN_SIDE_FRACTION` of its voxels on one side."""
    on_slices = np.zeros(mask.shape, bool)
    on_slices[mask.any(axis=(1, 2))] = True
    x_mask = grid.index_to_lps(np.argwhere(mask).astype(float))[:, 0]
    x_body = grid.index_to_lps(np.argwhere(body & on_slices).astype(float))[:, 0]
    centre = float(x_body.mean()) if x_body.size else float(x_mask.mean())
    offset = float(x_mask.mean()) - centre
    left = float(np.mean(x_mask > centre))
    problems = []
    if abs(offset) > BRAIN_MAX_MIDLINE_OFFSET_MM:
        side = "left" if offset > 0 else "right"  # LPS +x is the patient's left
        problems.append(f"centroid {abs(offset):.0f} mm {side} of the body centre "
                        f"(> {BRAIN_MAX_MIDLINE_OFFSET_MM:g} mm)")
    if min(left, 1.0 - left) < BRAIN_MIN_SIDE_FRACTION:
        minority = "left" if left < 0.5 else "right"
        problems.append(f"only {min(left, 1.0 - left):.0%} of it {minority} of the body "
                        f"centre (< {BRAIN_MIN_SIDE_FRACTION:.0%})")
    return "; ".join(problems)


def find_heart(
    hu: np.ndarray, lungs: np.ndarray, body: np.ndarray, bone: np.ndarray,
    liver: np.ndarray, dx: np.ndarray, y3: np.ndarray, ant_y: np.ndarray,
    suv: np.ndarray | None, grid: Grid, warning: type[Warning],
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Heart (soft tissue between the lungs) and its hot part (myocardium) on PET.

    Returns ``(heart, myocardium, rule)``; ``myocardium`` is ``None`` without PET.
    """
    vox_ml = grid.voxel_volume_ml
    empty = np.zeros(hu.shape, bool)
    between = np.zeros(hu.shape, bool)
    ant = np.where(np.isfinite(ant_y), ant_y, np.nanmedian(ant_y) if np.isfinite(
        ant_y).any() else np.inf)
    for k in np.nonzero(lungs.any(axis=(1, 2)))[0]:
        if lungs[k].sum() < 3:
            continue
        hull = convex_hull_image(lungs[k])
        between[k] = (hull & ~lungs[k] & body[k] & ~bone[k]
                      & (y3[k] < ant[k] - HEART_VERTEBRA_MARGIN_MM))
    liver_d = (ndi.binary_dilation(liver, _ball(HEART_LIVER_MARGIN_MM, grid.spacing_mm))
               if liver.any() else liver)
    soft = between & (hu >= HEART_HU[0]) & (hu <= HEART_HU[1]) & ~liver_d
    soft = ndi.binary_opening(soft, _ball(HEART_OPENING_MM, grid.spacing_mm))
    cand = largest_component(soft)
    vol = float(cand.sum() * vox_ml)
    if vol == 0.0:
        return empty, None, "no soft tissue between the lungs"
    cdx = float(dx[cand].mean())
    problems = []
    if not HEART_MIN_ML <= vol <= HEART_MAX_ML:
        problems.append(f"volume {vol:.0f} mL outside {HEART_MIN_ML:g}-{HEART_MAX_ML:g} mL")
    if cdx < -HEART_MAX_RIGHT_MM:
        problems.append(f"centroid {cdx:.0f} mm right of the spinal axis (heart is left)")
    if problems:
        warn_external(format_message(
            f"heart candidate between the lungs dropped: {'; '.join(problems)}",
            fix="supply organ_labels with a heart label"), warning)
        return empty, None, "heart candidate dropped: " + "; ".join(problems)
    heart = fill_slices(cand)
    rule = (f"soft tissue ({HEART_HU[0]:g}..{HEART_HU[1]:g} HU) inside the lungs' convex "
            f"hull, anterior of the "
            f"vertebrae, opened by {HEART_OPENING_MM:g} mm; {vol:.0f} mL, centroid "
            f"{cdx:+.0f} mm from the axis")
    if suv is None:
        return heart, None, rule
    med = float(np.median(suv[heart]))
    level = max(MYOCARDIUM_MIN_SUV, MYOCARDIUM_MEDIAN_RATIO * med)
    zone = ndi.binary_dilation(heart, _ball(MYOCARDIUM_REACH_MM, grid.spacing_mm))
    lab, _n = ndi.label(zone & (suv >= level), structure=np.ones((3, 3, 3), bool))
    touching = np.unique(lab[heart & (lab > 0)])
    hot = np.isin(lab, touching) & (lab > 0)
    hot = ndi.binary_dilation(hot, np.ones((3, 3, 3), bool)) & zone if hot.any() else hot
    myo_ml = float(hot.sum() * vox_ml)
    rule += (f"; myocardium = SUV >= {level:.3g} (max({MYOCARDIUM_MIN_SUV:g}, "
             f"{MYOCARDIUM_MEDIAN_RATIO:g} x heart median {med:.3g})), "
             f"{myo_ml:.0f} mL (myocardial FDG uptake is variable)")
    return heart, hot, rule
