"""Rigid or affine registration of a follow-up CT to the baseline CT.

A follow-up PET/CT is acquired in its own frame of reference: the patient lies on
the table again, a few millimetres to centimetres away from the baseline position
and slightly rotated. Lesions can only be matched across timepoints once every
follow-up is brought into the baseline space. Because PET and CT of one PET/CT
session share one frame of reference, the transform found on the two CTs also
maps the follow-up PET (and the lesion labels drawn on it) onto the baseline.

Mapping convention (ITK's, stated once and used everywhere here): a
:class:`Registration` stores the transform ``T`` that maps **points of the fixed
(baseline) space to points of the moving (follow-up) space**, ``q = A p + o``.
This is the transform :func:`SimpleITK.Resample` needs to bring a moving image
onto a fixed grid (each fixed voxel samples the moving image at ``T(p)``). To
bring follow-up *points* (lesion centroids) into the baseline, the inverse
``T^-1`` is applied (:func:`map_points` with ``to="fixed"``).

References
----------
.. [1] Mattes D, Haynor DR, Vesselle H, Lewellen TK, Eubank W. PET-CT image
   registration in the chest using free-form deformations. IEEE Trans Med Imaging
   2003;22(1):120-128 (the Mattes mutual information metric).
.. [2] Johnson HJ, McCormick MM, Ibanez L. The ITK Software Guide, Book 2, chapter
   "Registration" (fixed-to-moving transform convention, multi-resolution
   framework, centred transform initialisation, optimizer scales).
.. [3] Lowekamp BC, Chen DT, Ibanez L, Blezek D. The design of SimpleITK. Front
   Neuroinform 2013;7:45. SimpleITK notebooks 60-61 (``ImageRegistrationMethod``
   recipes: Mattes MI with 50 bins, random sampling, shrink/smoothing schedules).
.. [4] SimpleITK ``ResampleImageFilter`` documentation,
   https://simpleitk.org/doxygen/latest/html/classitk_1_1simple_1_1ResampleImageFilter.html
"""

from __future__ import annotations

import enum
import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import SimpleITK as sitk

from emlesion.errors import GeometryError, GeometryWarning, format_message, warn_external
from emlesion.io.geometry import Grid
from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import Volume
from emlesion.provenance import ProvenanceStep, jsonable, record_warnings

__all__ = [
    "Initializer",
    "MapTo",
    "PlausibilityBound",
    "Registration",
    "RegistrationQuality",
    "TransformPlausibility",
    "TransformType",
    "map_points",
    "register_ct",
    "resample_labels",
    "resample_volume",
]

_IDENTITY9 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
#: HU above which a voxel counts as "body" for the quality figure and moment initialiser
#: (air is about -1000 HU, lung about -850 HU, fat about -100 HU).
BODY_THRESHOLD_HU = -500.0


class TransformType(str, enum.Enum):
    """Kind of spatial transform searched by :func:`register_ct`.

    ``IDENTITY`` is never searched; it marks a fall-back registration (no CT, or
    registration disabled) built with :meth:`Registration.identity`.
    """

    RIGID = "rigid"
    AFFINE = "affine"
    IDENTITY = "identity"


class Initializer(str, enum.Enum):
    """How the transform is initialised before optimisation.

    * ``IDENTITY``: trust the scanner coordinates (no initial shift).
    * ``GEOMETRY``: align the centres of the two image volumes (field-of-view centres).
    * ``MOMENTS``: align the centres of mass of the two *body masks* (HU > -500).
    * ``AUTO``: evaluate the three candidates at the coarsest level and start from the
      one with the best (lowest) Mattes metric value.
    """

    AUTO = "auto"
    IDENTITY = "identity"
    GEOMETRY = "geometry"
    MOMENTS = "moments"


class MapTo(str, enum.Enum):
    """Target space of :func:`map_points`."""

    FIXED = "fixed"
    MOVING = "moving"


class PlausibilityBound(str, enum.Enum):
    """A bound of the plausibility check of a solved transform (:class:`TransformPlausibility`).

    * ``SCALE``: a principal stretch outside :data:`SCALE_RANGE`.
    * ``SHEAR``: a shear angle above :data:`MAX_SHEAR_DEG`.
    * ``ROTATION``: a rotation angle above :data:`MAX_ROTATION_DEG`.

    There is no bound on the translation: DICOM patient coordinates are fixed to the
    scanner (x, y: the gantry; z: the table position and the landmark the radiographer
    set), so the same body can lie hundreds of millimetres apart in the coordinates of two
    sessions, above all on two scanners (the follow-ups of one patient are often scanned
    elsewhere); :func:`register_ct` searches that offset from the body and spine centroids.
    The shift is reported (:attr:`TransformPlausibility.shift_mm`), not judged.
    """

    SCALE = "scale"
    SHEAR = "shear"
    ROTATION = "rotation"


#: Range of the principal stretches (follow-up length / baseline length along a principal
#: direction, dimensionless) of a plausible fixed-to-moving transform of one patient's CTs
#: a few months apart. The body's length does not change; its girth follows its weight: at
#: constant length the cross-section scales with the weight and the girth with its square
#: root, so a 15 % girth change needs a weight loss of 28 % or a gain of 32 % between two
#: scans, beyond the weight losses that define cancer cachexia (more than 5 % in 6 months,
#: or 2 % with a BMI below 20: Fearon et al. 2011). Free breathing moves the diaphragm by
#: 1-2 cm (AAPM TG-76: Keall et al. 2006), a local craniocaudal stretch of the upper
#: abdomen that a global affine fit spreads over the whole CT. Bone, the strongest edge
#: after the skin, does not change size. Measured on the real CTs of
#: ``benchmarks/eval_registration_real.py`` (affine, rigid truth, 2 motions x 3 seeds x 2
#: CTs): 0.963-1.006 for every correct solution; 0.689 for the affine solution that
#: diverged to a 49 mm error (and passed the NCC check).
#:
#: References: Fearon K, Strasser F, Anker SD, et al. Definition and classification of
#: cancer cachexia: an international consensus. Lancet Oncol 2011;12(5):489-495.
#: Keall PJ, Mageras GS, Balter JM, et al. The management of respiratory motion in
#: radiation oncology: report of AAPM Task Group 76. Med Phys 2006;33(10):3874-3900.
SCALE_RANGE = (0.85, 1.15)
#: Largest plausible shear (degrees): the largest departure from 90 degrees of the angle
#: between two patient axes after the transform (``atan(g)`` for a simple shear ``g``).
#: Between two sessions the body parts of a patient lying on the table move relative to
#: each other by a few millimetres and rotate by a few degrees at most (sub-regions of the
#: head and neck after set-up on the spine: van Kranen et al. 2009); the table sags by
#: a few millimetres under the same patient. 10 degrees (176 mm of sideways shift over a
#: 1 m scan) is several times that. Measured on the real CTs (as for
#: :data:`SCALE_RANGE`): 0.1-1.7 degrees for the correct affine solutions, 20.3 degrees for
#: the diverged one.
#:
#: Reference: van Kranen S, van Beek S, Rasch C, van Herk M, Sonke JJ. Setup uncertainties
#: of anatomical sub-regions in head-and-neck cancer patients after offline CBCT guidance.
#: Int J Radiat Oncol Biol Phys 2009;73(5):1566-1573.
MAX_SHEAR_DEG = 10.0
#: Largest plausible rotation (degrees, about any axis) between two sessions of the same
#: patient lying on the same PET/CT table. Patient set-up rotations between sessions are
#: small: 39 cone-beam CTs of spinal radiotherapy set-ups rotated by 0.4 +/- 1.2 (pitch),
#: 1.1 +/- 1.8 (yaw) and -0.5 +/- 2.0 (roll) degrees, at most 4.3, 5.8 and 6.6 degrees
#: (Gutfeld et al. 2009); a supine patient cannot lie much more askew on a table about
#: 50 cm wide. 15 degrees is more than twice the largest of those; :func:`register_ct`
#: starts at 0 degrees (it searches no rotation), so a larger angle is a run-away
#: optimisation. Measured on the real CTs: within 0.3 degrees of the true 0 or 3 degrees
#: (rigid and affine).
#:
#: Reference: Gutfeld O, Kretzler AE, Kashani R, Tatro D, Balter JM. Influence of rotations
#: on dose distributions in spinal stereotactic body radiotherapy (SBRT). Int J Radiat
#: Oncol Biol Phys 2009;73(5):1596-1601.
MAX_ROTATION_DEG = 15.0


def _rotation_angle_deg(r: np.ndarray) -> float:
    """Angle (degrees) of the 3 x 3 rotation matrix ``r``: ``acos((trace r - 1) / 2)``."""
    c = float(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))
    return math.degrees(math.acos(c))


def _image_centre(img: sitk.Image) -> tuple[float, float, float]:
    """Physical centre (LPS mm) of ``img``: the centre of its middle voxel."""
    x, y, z = img.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2.0 for s in img.GetSize()])
    return (float(x), float(y), float(z))


@dataclass(frozen=True)
class TransformPlausibility:
    """A fixed-to-moving transform ``q = A p + o`` decomposed into rotation, scales, shear
    and shift, and the plausibility bounds it exceeds.

    Parameters
    ----------
    rotation_deg : float
        Angle of the rotation ``R`` of the polar decomposition ``A = R S`` (``R`` proper,
        ``S`` symmetric: ``A = U diag(s) V^T``, ``R = U V^T``, ``S = V diag(s) V^T``).
    scales : (float, float, float)
        Principal stretches: the singular values ``s`` of ``A``, largest first; the last
        one negative when ``det A < 0`` (a mirror image, never a patient motion).
    shear_deg : float
        Largest departure from 90 degrees of the angle between two transformed patient
        axes ``A e_i``, ``A e_j`` (rotations and isotropic scales keep it at 0; a simple
        shear ``g`` gives ``atan(g)``).
    shift_mm : (float, float, float)
        Displacement ``T(c) - c`` (mm, LPS) of ``centre_mm``; unlike the offset ``o`` it
        does not depend on where the scanner origin lies (a 3 degree rotation about an
        origin 1 m away moves the body by 52 mm).
    centre_mm : (float, float, float)
        The point ``c`` (LPS): the centre of the fixed body box in :func:`register_ct`.
    failed : tuple of PlausibilityBound
        The bounds exceeded (:data:`SCALE_RANGE`, :data:`MAX_SHEAR_DEG`,
        :data:`MAX_ROTATION_DEG`); empty when plausible. The shift is not judged (see
        :class:`PlausibilityBound`).

    Notes
    -----
    The bounds describe one patient set up again on a PET/CT table weeks to months later
    (see the constants for their sources). A transform beyond them is a failed
    optimisation (the affine refinement once converged to a 0.69 craniocaudal scale and a
    20 degree shear on a real CT, 49 mm off, with an NCC of 0.85), not a patient motion.
    A transform within them can still be wrong (e.g. locked one vertebra off).
    """

    rotation_deg: float
    scales: tuple[float, float, float]
    shear_deg: float
    shift_mm: tuple[float, float, float]
    centre_mm: tuple[float, float, float]
    failed: tuple[PlausibilityBound, ...] = ()

    @classmethod
    def of(
        cls,
        matrix: np.ndarray | Sequence[float],
        offset_mm: np.ndarray | Sequence[float],
        centre_mm: np.ndarray | Sequence[float],
    ) -> TransformPlausibility:
        """Decompose ``q = A p + o`` and check it against the module's bounds.

        Parameters
        ----------
        matrix : array-like
            ``A``, 3 x 3 or 9 values row-major.
        offset_mm : sequence of 3 float
            ``o`` (mm, LPS).
        centre_mm : sequence of 3 float
            The point whose displacement is the patient shift (the fixed body centre).

        Returns
        -------
        TransformPlausibility
        """
        a = np.asarray(matrix, dtype=float).reshape(3, 3)
        o = np.asarray(offset_mm, dtype=float).reshape(3)
        c = np.asarray(centre_mm, dtype=float).reshape(3)
        u, s, vt = np.linalg.svd(a)
        signed = s.copy()
        if np.linalg.det(u @ vt) < 0:  # a reflection: make R proper, flip the smallest
            u[:, 2] = -u[:, 2]
            signed[2] = -signed[2]
        rotation = _rotation_angle_deg(u @ vt)
        cols = a / np.linalg.norm(a, axis=0)
        gram = cols.T @ cols
        shear = max(
            abs(90.0 - math.degrees(math.acos(float(np.clip(gram[i, j], -1.0, 1.0)))))
            for i, j in ((0, 1), (0, 2), (1, 2))
        )
        shift = a @ c + o - c
        failed: list[PlausibilityBound] = []
        if signed.min() < SCALE_RANGE[0] or signed.max() > SCALE_RANGE[1]:
            failed.append(PlausibilityBound.SCALE)
        if shear > MAX_SHEAR_DEG:
            failed.append(PlausibilityBound.SHEAR)
        if rotation > MAX_ROTATION_DEG:
            failed.append(PlausibilityBound.ROTATION)
        return cls(
            rotation,
            (float(signed[0]), float(signed[1]), float(signed[2])),
            float(shear),
            (float(shift[0]), float(shift[1]), float(shift[2])),
            (float(c[0]), float(c[1]), float(c[2])),
            tuple(failed),
        )

    @property
    def passed(self) -> bool:
        """True when no bound is exceeded."""
        return not self.failed

    @property
    def shift_norm_mm(self) -> float:
        """Length (mm) of :attr:`shift_mm`."""
        return float(np.linalg.norm(self.shift_mm))

    def reasons(self) -> str:
        """The exceeded bounds with their figures, e.g. ``"scale 0.689 outside 0.85-1.15"``."""
        texts = {
            PlausibilityBound.SCALE: (
                f"scale {max(self.scales, key=lambda v: abs(v - 1.0)):.3f} outside "
                f"{SCALE_RANGE[0]:g}-{SCALE_RANGE[1]:g}"
            ),
            PlausibilityBound.SHEAR: f"shear {self.shear_deg:.1f} deg above {MAX_SHEAR_DEG:g} deg",
            PlausibilityBound.ROTATION: (
                f"rotation {self.rotation_deg:.1f} deg above {MAX_ROTATION_DEG:g} deg"
            ),
        }
        return ", ".join(texts[b] for b in self.failed)

    def __repr__(self) -> str:
        scales = "/".join(f"{v:.3f}" for v in self.scales)
        text = (
            f"rotation {self.rotation_deg:.1f} deg, scales {scales}, shear "
            f"{self.shear_deg:.1f} deg, shift {self.shift_norm_mm:.1f} mm"
        )
        return f"{text}; implausible: {self.reasons()}" if self.failed else text


@dataclass(frozen=True)
class RegistrationQuality:
    """How well the registered follow-up CT agrees with the baseline CT.

    Parameters
    ----------
    metric_before, metric_after : float
        Mattes mutual information as SimpleITK reports it (the *negative* MI, lower is
        better), evaluated on every voxel of the body-cropped images at twice the working
        spacing (the pair of the translation search) inside the fixed sampling mask (body
        dilated by :data:`MASK_DILATION_VOXELS`), before registration (identity transform:
        scanner coordinates) and after; on the working images when they are too small to
        subsample.
    ncc_before, ncc_after : float
        The quality figure: Pearson (normalised) cross-correlation of HU between the
        fixed CT and the resampled moving CT, over the fixed body mask (HU > -500)
        inside the moving field of view, at working resolution; 1 is a perfect match.
    overlap_fraction : float
        Fraction of the fixed body mask that lies inside the moving field of view after
        registration (the voxels the NCC is computed on).
    min_ncc : float
        Threshold on ``ncc_after`` for :attr:`passed`.
    passed : bool
        ``ncc_after >= min_ncc`` and ``ncc_after >= ncc_before - 0.01`` (registration
        did not make the agreement worse) and ``overlap_fraction >= 0.3`` and the solved
        transform is plausible (``plausibility.passed``).
    iterations : int
        Optimizer iterations at the last resolution level (summed over the rigid and
        affine stages).
    stop_condition : str
        The optimizer's stop condition of the last stage.
    plausibility : TransformPlausibility or None
        Rotation, principal scales, shear and shift (of the fixed body centre) of the
        solved transform and the physical bounds it exceeds; ``None`` when not checked
        (a quality built by hand).

    Notes
    -----
    The threshold ``min_ncc = 0.8`` is a project heuristic, calibrated on synthetic data
    only (values measured with the defaults):

    * analytic phantom of the test-suite, 4 mm voxels: 0.58 before / 0.98-0.99 after
      for a 15 mm, 3 degree motion;
    * ``sample_scans`` (noisy low-dose CT, 2 x 2 x 4 mm, fat thickness changing between
      timepoints): 0.69 before / 0.93 after (month1, 7.8 mm shift), 0.77 / 0.93 (month3,
      6.2 mm shift).

    Real follow-up CTs change more (weight loss, bowel, arm position, contrast), so a
    correct registration of real data may score lower; inspect an overlay (see
    :func:`resample_volume`) rather than trusting the flag blindly. The figure does
    **not** detect a registration locked one vertebra off along the body axis (30 mm
    off still scored 0.93 on the phantom): the coarse translation search of
    :func:`register_ct` is there to prevent that failure, not this check.

    Nor does the NCC detect every run-away optimisation: on the real STS_001 CT an affine
    refinement with half the default samples converged to a 0.69 craniocaudal scale and a
    20 degree shear (49 mm off at the body edge) and still scored 0.85. The plausibility
    bounds (:class:`TransformPlausibility`: :data:`SCALE_RANGE`, :data:`MAX_SHEAR_DEG`,
    :data:`MAX_ROTATION_DEG`) fail such a transform whatever its
    NCC; every correct solution on the real CTs of ``benchmarks/eval_registration_real.py``
    stays well inside them (scales 0.963-1.006, shear below 1.7 degrees).
    """

    metric_before: float
    metric_after: float
    ncc_before: float
    ncc_after: float
    overlap_fraction: float
    min_ncc: float
    passed: bool
    iterations: int = 0
    stop_condition: str = ""
    plausibility: TransformPlausibility | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {k: jsonable(v) for k, v in self.__dict__.items()}

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        transform = "" if self.plausibility is None else f"; {self.plausibility!r}"
        return (
            f"RegistrationQuality({verdict}: NCC {self.ncc_before:.3f} -> {self.ncc_after:.3f}, "
            f"MattesMI {self.metric_before:.4f} -> {self.metric_after:.4f}, "
            f"overlap {self.overlap_fraction:.2f}{transform})"
        )


@dataclass(frozen=True)
class Registration:
    """A spatial transform from the fixed (baseline) space to a moving (follow-up) space.

    Parameters
    ----------
    transform_type : TransformType
        Kind of transform that was searched (``IDENTITY`` for a fall-back).
    matrix : tuple of 9 float
        Row-major 3 x 3 linear part ``A`` of the fixed-to-moving map ``q = A p + o``
        (a rotation for rigid registrations).
    offset_mm : tuple of 3 float
        Translation part ``o`` (mm, LPS) of the same map.
    fixed_label, moving_label : str
        Human labels of the two images (series description or timepoint label).
    quality : RegistrationQuality or None
        Agreement figures; ``None`` for an identity fall-back.
    duration_s : float
        Wall-clock time of the registration.
    provenance : tuple of ProvenanceStep
        Parameters used, warnings emitted.

    Notes
    -----
    Points map as ``q = A p + o`` from fixed to moving (ITK resampling convention
    [1]_); the inverse ``p = A^-1 (q - o)`` brings follow-up points to the baseline.

    References
    ----------
    .. [1] The ITK Software Guide, Book 2, section "Registration Framework"
       (the transform maps points of the fixed space into the moving space).
    """

    transform_type: TransformType
    matrix: tuple[float, ...]
    offset_mm: tuple[float, float, float]
    fixed_label: str = ""
    moving_label: str = ""
    quality: RegistrationQuality | None = None
    duration_s: float = 0.0
    provenance: tuple[ProvenanceStep, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "transform_type", TransformType(self.transform_type))
        m = tuple(float(v) for v in self.matrix)
        o = tuple(float(v) for v in self.offset_mm)
        if len(m) != 9 or len(o) != 3 or not all(math.isfinite(v) for v in m + o):
            raise GeometryError(
                format_message("a Registration needs a finite 3 x 3 matrix and 3-vector")
            )
        if abs(np.linalg.det(np.asarray(m).reshape(3, 3))) < 1e-6:
            raise GeometryError(format_message("registration matrix is singular"))
        object.__setattr__(self, "matrix", m)
        object.__setattr__(self, "offset_mm", o)
        object.__setattr__(self, "provenance", tuple(self.provenance))

    # ------------------------------------------------------------------ construction
    @classmethod
    def identity(
        cls, *, fixed_label: str = "", moving_label: str = "", reason: str = ""
    ) -> Registration:
        """An identity transform (scanner coordinates trusted), e.g. when a CT is missing."""
        return cls(
            TransformType.IDENTITY,
            _IDENTITY9,
            (0.0, 0.0, 0.0),
            fixed_label,
            moving_label,
            None,
            0.0,
            (ProvenanceStep("emlesion.track.Registration.identity", rule=reason or "identity"),),
        )

    @classmethod
    def from_sitk(cls, transform: sitk.Transform, **kwargs: Any) -> Registration:
        """Build from any linear SimpleITK 3-D transform (fixed-to-moving).

        ``kwargs`` are passed to the constructor (``transform_type`` defaults to
        ``"affine"``).
        """
        a, o = _linear_part(transform)
        kwargs.setdefault("transform_type", TransformType.AFFINE)
        return cls(matrix=tuple(a.ravel()), offset_mm=tuple(o), **kwargs)

    # ------------------------------------------------------------------ views
    @property
    def matrix_array(self) -> np.ndarray:
        """The 3 x 3 linear part ``A`` as an array."""
        return np.asarray(self.matrix, dtype=float).reshape(3, 3)

    @property
    def homogeneous(self) -> np.ndarray:
        """4 x 4 homogeneous matrix of the fixed-to-moving map."""
        h = np.eye(4)
        h[:3, :3] = self.matrix_array
        h[:3, 3] = self.offset_mm
        return h

    @property
    def rotation_deg(self) -> float:
        """Angle (degrees) of the rotation closest to ``A`` (polar decomposition)."""
        u, _, vt = np.linalg.svd(self.matrix_array)
        return _rotation_angle_deg(u @ vt)

    def displacement_mm(self, fixed_point_mm: np.ndarray | Sequence[float]) -> np.ndarray:
        """Displacement ``T(p) - p`` (mm) of one fixed-space point."""
        p = np.asarray(fixed_point_mm, dtype=float)
        return self.matrix_array @ p + np.asarray(self.offset_mm) - p

    def to_sitk(self) -> sitk.AffineTransform:
        """The fixed-to-moving transform as a SimpleITK ``AffineTransform`` (centre 0).

        Use it directly with :func:`SimpleITK.Resample` to bring a moving image onto a
        fixed grid.
        """
        tx = sitk.AffineTransform(3)
        tx.SetMatrix(self.matrix)
        tx.SetTranslation(self.offset_mm)
        return tx

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (enough to rebuild the transform)."""
        return {
            "transform_type": self.transform_type.value,
            "direction": "fixed_to_moving",
            "matrix": list(self.matrix),
            "offset_mm": list(self.offset_mm),
            "rotation_deg": self.rotation_deg,
            "fixed_label": self.fixed_label,
            "moving_label": self.moving_label,
            "quality": None if self.quality is None else self.quality.to_dict(),
            "duration_s": self.duration_s,
            "provenance": [p.to_dict() for p in self.provenance],
        }

    def __repr__(self) -> str:
        o = ", ".join(f"{v:.1f}" for v in self.offset_mm)
        q = "" if self.quality is None else f", {self.quality!r}"
        return (
            f"Registration({self.transform_type.value} {self.fixed_label or 'fixed'} -> "
            f"{self.moving_label or 'moving'}, offset_mm=({o}), "
            f"rotation={self.rotation_deg:.2f} deg"
            f"{q}, {self.duration_s:.1f} s)"
        )


# ---------------------------------------------------------------------- helpers
def _linear_part(transform: sitk.Transform) -> tuple[np.ndarray, np.ndarray]:
    """``(A, o)`` with ``T(p) = A p + o`` for a linear 3-D transform, read by probing.

    Probing four points works for every linear SimpleITK transform type (Euler,
    Versor, Similarity, Affine, composites of them) without depending on their
    parameter layout.
    """
    origin = np.asarray(transform.TransformPoint((0.0, 0.0, 0.0)))
    a = np.empty((3, 3))
    for i in range(3):
        e = [0.0, 0.0, 0.0]
        e[i] = 1.0
        a[:, i] = np.asarray(transform.TransformPoint(tuple(e))) - origin
    return a, origin


#: Margin (mm) kept around the body bounding box when a CT is cropped for registration:
#: the skin-air edge (the strongest edge of a CT) stays inside the working image with
#: room for the translation search, and the air, table-free FOV corners are dropped.
BODY_MARGIN_MM = 16.0
#: Dilation (working voxels) of the body mask that restricts the metric samples: the
#: samples cover the body and its outline, not the air around it.
MASK_DILATION_VOXELS = 2


def _body_box(volume: Volume, margin_mm: float) -> tuple[slice, slice, slice]:
    """Array slices ``(z, y, x)`` of the body bounding box (HU > -500) plus ``margin_mm``.

    The whole array when no voxel exceeds the body threshold.
    """
    arr = np.asarray(volume.array)
    body = arr > BODY_THRESHOLD_HU
    spacing_zyx = volume.spacing_mm[::-1]
    out: list[slice] = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(body.any(axis=others))
        if idx.size == 0:
            return (slice(None), slice(None), slice(None))
        m = math.ceil(margin_mm / float(spacing_zyx[axis]))
        out.append(slice(max(0, int(idx[0]) - m), min(arr.shape[axis], int(idx[-1]) + m + 1)))
    return (out[0], out[1], out[2])


def _working_image(
    volume: Volume,
    spacing_mm: float,
    hu_window: tuple[float, float],
    margin_mm: float = BODY_MARGIN_MM,
) -> sitk.Image:
    """Crop a CT to its body, clip HU, Gaussian-smooth and resample onto an (about)
    isotropic working grid.

    The crop keeps the body bounding box (HU > -500) plus ``margin_mm``; the smoothing
    sigma is half the target spacing along each axis that is downsampled (anti-aliasing);
    axes already coarser than ``spacing_mm`` are kept.
    """
    box = _body_box(volume, margin_mm)
    arr = np.clip(np.asarray(volume.array)[box], hu_window[0], hu_window[1]).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(volume.grid.spacing_mm)
    img.SetDirection(volume.grid.direction)
    start = np.array([float(s.start or 0) for s in box])
    img.SetOrigin(tuple(float(v) for v in volume.grid.index_to_lps(start)))
    sp = np.asarray(volume.spacing_mm)
    new_sp = np.maximum(sp, spacing_mm)
    if np.allclose(new_sp, sp):
        return img
    sigmas = [float(0.5 * n) if n > s * 1.01 else 0.0 for n, s in zip(new_sp, sp)]
    for axis, sigma in enumerate(sigmas):
        if sigma > 0:
            f = sitk.RecursiveGaussianImageFilter()
            f.SetSigma(sigma)
            f.SetDirection(axis)
            img = f.Execute(img)
    size = np.asarray(img.GetSize())
    new_size = [max(1, round(v)) for v in size * sp / new_sp]
    # keep the physical centre: first voxel centre shifts by half the spacing change
    d = np.asarray(img.GetDirection()).reshape(3, 3)
    extent_start = np.asarray(img.GetOrigin()) - d @ (sp / 2.0)
    new_origin = extent_start + d @ (new_sp / 2.0)
    ref = sitk.Image(new_size, sitk.sitkFloat32)
    ref.SetSpacing(tuple(float(v) for v in new_sp))
    ref.SetOrigin(tuple(float(v) for v in new_origin))
    ref.SetDirection(img.GetDirection())
    return sitk.Resample(
        img, ref, sitk.Transform(), sitk.sitkLinear, float(hu_window[0]), sitk.sitkFloat32
    )


def _body_mask(img: sitk.Image) -> sitk.Image:
    return sitk.Cast(sitk.BinaryThreshold(img, BODY_THRESHOLD_HU, 1e9, 1, 0), sitk.sitkFloat32)


def _sampling_mask(img: sitk.Image) -> sitk.Image | None:
    """Body (HU > -500) dilated by :data:`MASK_DILATION_VOXELS`, or ``None`` without body."""
    body = sitk.BinaryThreshold(img, BODY_THRESHOLD_HU, 1e9, 1, 0)
    if not sitk.GetArrayViewFromImage(body).any():
        return None
    r = MASK_DILATION_VOXELS
    return sitk.BinaryDilate(body, [r, r, r]) if r > 0 else body


#: Number of fixed-image samples requested to *evaluate* the metric (before/after figures,
#: initialiser candidates). SimpleITK 2.5's ``MetricEvaluate`` ignores the sampling setting
#: and evaluates every voxel inside the mask (measured: the same value with 1 000 to 200 000
#: samples), which is why the candidates and the before/after figures are scored on the
#: coarse 8 mm pair (about 1/8 of the voxels of the 4 mm working pair).
EVALUATION_SAMPLES = 200_000
#: Samples drawn per position of the exhaustive translation search (8 mm images; draws
#: outside the body mask discarded): enough to rank positions 8 mm apart (10 000 before
#: issue 18's second pass: the same searched start on sample_scans, the 12 generator seeds
#: and the real CTs of benchmarks/eval_registration_real.py).
SEARCH_SAMPLES = 5_000
#: Stop criteria of the optimiser (regular-step gradient descent, per resolution level):
#: the step starts at one working voxel (a quarter voxel for the affine refinement), is
#: halved whenever the gradient direction turns by more than 90 degrees, and the level
#: ends when the step is below MIN_STEP_MM (mm-equivalent with physical-shift scales),
#: when the gradient magnitude is below GRADIENT_TOLERANCE or after ``max_iterations``.
MIN_STEP_MM = 0.005
#: The affine refinement draws this many times ``max_samples`` (12 parameters instead of 6,
#: the extra six weakly constrained by a CT of the same patient: the stochastic gradient of
#: a sampled MI metric is noisier per parameter, and its noise falls with the number of
#: samples, Klein et al. 2007). Phantom of tests/test_track_registration.py, error at the
#: lesions: 2.1-2.5 mm with 1x, 0.6-1.4 mm with 2x over seeds 20240917, 1 and 2 (0.6-1.4 mm
#: with the former two-level, 20 000-sample default). Real CTs
#: (``benchmarks/eval_registration_real.py --transform affine``, TotalSegmentator trunk and
#: STS_001 thigh, 2 motions x 2 seeds): with 1x one run diverged (median 13.9 mm, max
#: 49 mm); with 2x the median is 0.5-1.8 mm, max 2.0-6.1 mm, against 0.4-1.5 / 1.4-4.5 mm
#: for the former default; 3x and 4x gave no better results.
#:
#: References: Klein S, Staring M, Pluim JPW. Evaluation of optimization methods for
#: nonrigid medical image registration using mutual information and B-splines. IEEE Trans
#: Image Process 2007;16(12):2879-2890 (random subsampling of the MI metric).
AFFINE_SAMPLE_FACTOR = 2
GRADIENT_TOLERANCE = 1e-8
RELAXATION = 0.5


def _n_voxels(img: sitk.Image) -> int:
    return int(np.prod(img.GetSize()))


def _set_sampling(reg: sitk.ImageRegistrationMethod, fraction: float, seed: int) -> None:
    """Random sampling of ``fraction`` of the fixed voxels, or every voxel if >= 1."""
    if fraction >= 1.0:
        reg.SetMetricSamplingStrategy(reg.NONE)
    else:
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(max(fraction, 1e-4), seed)


def _mattes(
    fixed: sitk.Image,
    moving: sitk.Image,
    transform: sitk.Transform,
    bins: int,
    seed: int = 1,
    mask: sitk.Image | None = None,
    threads: int | None = None,
) -> float:
    """Mattes metric (negative MI) over the fixed voxels inside ``mask`` (see
    :data:`EVALUATION_SAMPLES`); ``inf`` when the images do not overlap."""
    reg = sitk.ImageRegistrationMethod()
    if threads is not None:
        reg.SetNumberOfThreads(threads)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    _set_sampling(reg, EVALUATION_SAMPLES / _n_voxels(fixed), seed)
    if mask is not None:
        reg.SetMetricFixedMask(mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetInitialTransform(transform, inPlace=False)
    try:
        return float(reg.MetricEvaluate(fixed, moving))
    except RuntimeError:
        return math.inf


def _ncc(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> tuple[float, float]:
    """(NCC over the fixed body inside the moving FOV, fraction of body inside the FOV)."""
    f = sitk.GetArrayViewFromImage(fixed)
    m_img = sitk.Resample(moving, fixed, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    ones = sitk.Image(moving.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(moving)
    # a copy, not a view: a view of the temporary resampled image would read freed memory
    # once the image is released (all zeros with MALLOC_TRIM_THRESHOLD_ set, as Dask sets it)
    inside = sitk.GetArrayFromImage(
        sitk.Resample(ones, fixed, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    ).astype(bool)
    body = f > BODY_THRESHOLD_HU
    sel = body & inside
    n_body = int(body.sum())
    if n_body == 0 or sel.sum() < 10:
        return float("nan"), 0.0
    a = f[sel].astype(float)
    b = sitk.GetArrayViewFromImage(m_img)[sel].astype(float)
    a -= a.mean()
    b -= b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    ncc = float((a * b).sum() / den) if den > 0 else float("nan")
    return ncc, float(sel.sum()) / n_body


def _initial_transform(
    fixed: sitk.Image,
    moving: sitk.Image,
    initializer: Initializer,
    bins: int,
    search_range_mm: Sequence[float] | None = None,
    *,
    geometry_shift_mm: Sequence[float] | None = None,
    mask: sitk.Image | None = None,
    coarse: tuple[sitk.Image, sitk.Image, sitk.Image | None] | None = None,
    threads: int | None = None,
) -> tuple[sitk.Euler3DTransform, str, dict[str, float]]:
    """The initial rigid transform (rotation centre at the fixed-image centre), its rule
    and the Mattes metric of each scored candidate.

    ``geometry_shift_mm`` is the shift between the centres of the two CT fields of view
    (the working images are cropped to the body, so their own centres are body centres);
    default: the centres of the working images. ``coarse`` is the (fixed, moving, fixed
    mask) triple at twice the working spacing (:class:`PreparedCT`), on which candidates
    are scored and the translation is searched; ``None`` when the images are too small.
    """
    centre = _image_centre(fixed)
    candidates: dict[str, sitk.Euler3DTransform] = {}
    if initializer in (Initializer.AUTO, Initializer.IDENTITY):
        t = sitk.Euler3DTransform()
        t.SetCenter(centre)
        candidates["identity"] = t
    if initializer in (Initializer.AUTO, Initializer.GEOMETRY):
        if geometry_shift_mm is None:
            candidates["geometry"] = sitk.Euler3DTransform(
                sitk.CenteredTransformInitializer(
                    fixed,
                    moving,
                    sitk.Euler3DTransform(),
                    sitk.CenteredTransformInitializerFilter.GEOMETRY,
                )
            )
        else:
            t = sitk.Euler3DTransform()
            t.SetCenter(centre)
            t.SetTranslation(tuple(float(v) for v in geometry_shift_mm))
            candidates["geometry"] = t
    if initializer in (Initializer.AUTO, Initializer.MOMENTS):
        fm, mm = _body_mask(fixed), _body_mask(moving)
        if sitk.GetArrayViewFromImage(fm).any() and sitk.GetArrayViewFromImage(mm).any():
            candidates["moments"] = sitk.Euler3DTransform(
                sitk.CenteredTransformInitializer(
                    fm,
                    mm,
                    sitk.Euler3DTransform(),
                    sitk.CenteredTransformInitializerFilter.MOMENTS,
                )
            )
    if not candidates:  # moments requested on an image without body voxels
        t = sitk.Euler3DTransform()
        t.SetCenter(centre)
        candidates["identity (no body voxels for moments)"] = t
    scores: dict[str, float] = {}
    if len(candidates) == 1:
        name, best_t = next(iter(candidates.items()))
        rule = name
    else:
        # scored on the coarse (8 mm) pair of the translation search when there is one;
        # a candidate equal to an earlier one (same translation) is not scored twice
        f_s, m_s, mask_s = coarse if coarse is not None else (fixed, moving, mask)
        seen: list[tuple[tuple[float, ...], float]] = []
        for k, t in candidates.items():
            key = tuple(round(v, 6) for v in t.GetTranslation())
            same = [v for kk, v in seen if kk == key]
            scores[k] = same[0] if same else _mattes(
                f_s, m_s, t, bins, mask=mask_s, threads=threads)
            seen.append((key, scores[k]))
        name = min(scores, key=lambda k: scores[k])
        best_t = candidates[name]
        detail = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
        rule = f"auto -> {name} (Mattes metric at twice the working spacing: {detail})"
    if search_range_mm is not None and max(search_range_mm) > 0:
        if coarse is None:
            rule += "; translation search skipped (image too small)"
        else:
            best_t, search_rule = _translation_search(
                *coarse, best_t, search_range_mm, bins, threads=threads
            )
            rule += f"; {search_rule}"
    return best_t, rule, scores


def _coarse(img: sitk.Image) -> sitk.Image:
    """A working image smoothed (sigma = its spacing) and subsampled by 2."""
    spacing = float(max(img.GetSpacing()))
    return sitk.Shrink(sitk.SmoothingRecursiveGaussian(img, spacing), [2, 2, 2])


@dataclass(frozen=True)
class PreparedCT:
    """A CT prepared for :func:`register_ct`: its working image (body box, HU window,
    ``working_spacing_mm`` grid), a coarse copy at twice that spacing and, for a fixed CT,
    the sampling masks of both.

    The baseline CT is the fixed image of every follow-up registration: prepare it once
    (:func:`prepare_fixed_ct`) and pass it as ``prepared_fixed`` to each
    :func:`register_ct` (:func:`~emlesion.track.track_lesions` and
    :func:`~emlesion.study.load_study` do); each call works on its own copy of the
    images, so the registrations may run in parallel threads. The result is the same as
    without it.
    """

    volume: Volume
    working_spacing_mm: float
    hu_window: tuple[float, float]
    image: sitk.Image
    coarse: sitk.Image | None
    mask: sitk.Image | None = None
    coarse_mask: sitk.Image | None = None

    def matches(self, volume: Volume, working_spacing_mm: float,
                hu_window: tuple[float, float]) -> bool:
        """True when this was prepared from ``volume`` with the same settings."""
        return (
            self.volume is volume
            and self.working_spacing_mm == float(working_spacing_mm)
            and self.hu_window == (float(hu_window[0]), float(hu_window[1]))
        )

    def own_copy(self) -> PreparedCT:
        """A copy whose images own their pixel buffers (one per worker thread: ITK
        pipelines write bookkeeping such as the requested region into their inputs)."""

        def own(img: sitk.Image | None) -> sitk.Image | None:
            if img is None:
                return None
            out = sitk.Image(img)
            out.MakeUnique()
            return out

        image = own(self.image)
        assert image is not None
        return replace(
            self,
            image=image,
            coarse=own(self.coarse),
            mask=own(self.mask),
            coarse_mask=own(self.coarse_mask),
        )


def _prepare(
    volume: Volume,
    working_spacing_mm: float,
    hu_window: tuple[float, float],
    *,
    with_mask: bool,
) -> PreparedCT:
    """Working image, coarse copy (``None`` if smaller than 4 voxels) and masks of a CT."""
    img = _working_image(volume, working_spacing_mm, hu_window)
    coarse: sitk.Image | None = None
    if min(img.GetSize()) >= 8:
        coarse = _coarse(img)
    mask = _sampling_mask(img) if with_mask else None
    return PreparedCT(
        volume,
        float(working_spacing_mm),
        (float(hu_window[0]), float(hu_window[1])),
        img,
        coarse,
        mask,
        None if mask is None or coarse is None else sitk.Shrink(mask, [2, 2, 2]),
    )


def _translation_search(
    f: sitk.Image,
    m: sitk.Image,
    mask: sitk.Image | None,
    initial: sitk.Euler3DTransform,
    search_range_mm: Sequence[float],
    bins: int,
    *,
    threads: int | None = None,
) -> tuple[sitk.Euler3DTransform, str]:
    """Exhaustive translation search around ``initial`` on the coarse pair
    (:func:`_coarse`: twice the working spacing).

    Gradient-based optimisers fall into the nearest local optimum; along the body axis
    a CT is locally self-similar (vertebrae repeat every 25-35 mm), so a shift of
    more than about half a vertebra can lock onto the wrong level. A coarse grid
    search of the translation (images smoothed with sigma = working spacing and
    subsampled by 2; :data:`SEARCH_SAMPLES` draws per position inside the body mask)
    picks the right basin first.
    """
    step = float(max(f.GetSpacing()))
    n = [math.ceil(float(r) / step) for r in search_range_mm]
    reg = sitk.ImageRegistrationMethod()
    if threads is not None:
        reg.SetNumberOfThreads(threads)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=min(bins, 32))
    _set_sampling(reg, SEARCH_SAMPLES / _n_voxels(f), 1)
    if mask is not None:
        reg.SetMetricFixedMask(mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsExhaustive([0, 0, 0, *n], stepLength=step)
    reg.SetOptimizerScales([1.0] * 6)
    reg.SetInitialTransform(initial, inPlace=False)
    try:
        found = reg.Execute(f, m)
    except RuntimeError:
        return initial, "translation search failed (images do not overlap), skipped"
    out = sitk.Euler3DTransform(initial)
    tr = _linear_part(found)[1] - _linear_part(initial)[1]
    out.SetTranslation(tuple(np.asarray(initial.GetTranslation()) + tr))
    shift = ", ".join(f"{v:.0f}" for v in tr)
    return out, (
        f"exhaustive translation search +/-{tuple(round(k * step) for k in n)} mm in steps of "
        f"{step:g} mm moved the start by ({shift}) mm"
    )


def _run_stage(
    fixed: sitk.Image,
    moving: sitk.Image,
    initial: sitk.Transform,
    *,
    bins: int,
    sampling_fraction: float,
    max_samples: int,
    seed: int,
    shrink_factors: Sequence[int],
    smoothing_sigmas_mm: Sequence[float],
    max_step_mm: float,
    max_iterations: int,
    mask: sitk.Image | None = None,
    threads: int | None = None,
) -> tuple[sitk.Transform, int, str]:
    reg = sitk.ImageRegistrationMethod()
    if threads is not None:
        reg.SetNumberOfThreads(threads)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    n = _n_voxels(fixed)
    per_level = [float(min(sampling_fraction, max_samples * s**3 / n, 1.0)) for s in shrink_factors]
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentagePerLevel(per_level, seed)
    if mask is not None:
        reg.SetMetricFixedMask(mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=max_step_mm,
        minStep=MIN_STEP_MM,
        numberOfIterations=max_iterations,
        relaxationFactor=RELAXATION,
        gradientMagnitudeTolerance=GRADIENT_TOLERANCE,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(shrink_factors))
    reg.SetSmoothingSigmasPerLevel(list(smoothing_sigmas_mm))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(initial, inPlace=False)
    result = reg.Execute(fixed, moving)
    return result, int(reg.GetOptimizerIteration()), reg.GetOptimizerStopConditionDescription()


# ---------------------------------------------------------------------- public API
def register_ct(
    fixed: Volume,
    moving: Volume,
    *,
    transform: TransformType | str = TransformType.RIGID,
    initializer: Initializer | str = Initializer.AUTO,
    search_range_mm: Sequence[float] | None = (16.0, 16.0, 48.0),
    working_spacing_mm: float = 4.0,
    hu_window: tuple[float, float] = (-1000.0, 1500.0),
    histogram_bins: int = 50,
    sampling_fraction: float = 0.15,
    max_samples: int = 10_000,
    shrink_factors: Sequence[int] = (1,),
    smoothing_sigmas_mm: Sequence[float] = (0.0,),
    max_iterations: int = 200,
    min_ncc: float = 0.8,
    seed: int = 20240917,
    fixed_label: str = "",
    moving_label: str = "",
    number_of_threads: int | None = None,
    prepared_fixed: PreparedCT | None = None,
) -> Registration:
    """Register a follow-up CT (moving) to the baseline CT (fixed) by mutual information.

    Parameters
    ----------
    fixed : Volume
        Baseline CT in HU.
    moving : Volume
        Follow-up CT in HU (its own frame of reference).
    transform : {"rigid", "affine"}
        ``"rigid"`` (6 parameters: Euler angles + translation) is the default: the
        patient is a near-rigid body between sessions at the scale of lesion matching.
        ``"affine"`` (12 parameters) runs the rigid stage first, then refines an affine
        transform from it (absorbs global scaling, e.g. weight loss, and shear).
    initializer : {"auto", "identity", "geometry", "moments"}
        See :class:`Initializer`.
    search_range_mm : (float, float, float) or None
        Half-width (mm, x y z) of a coarse exhaustive translation search run after the
        initialiser (steps of twice the working spacing, on images smoothed and
        subsampled once more). It makes the registration robust to shifts of a few
        centimetres along the body axis, where a CT repeats itself every vertebra.
        ``None`` disables it.
    working_spacing_mm : float
        Both CTs are cropped to their body (bounding box of HU > -500 plus
        :data:`BODY_MARGIN_MM`), Gaussian-smoothed (sigma = half the new spacing) and
        resampled to this spacing (axes already coarser are kept) before registration.
        4 mm is well below the size of the lesions being matched (lesion correspondence
        needs 4-6 mm) and below the spatial resolution of clinical FDG PET (about 4-7 mm
        FWHM reconstructed, on 4 mm voxels: Boellaard et al., EANM guidelines 2.0, Eur J
        Nucl Med Mol Imaging 2015;42:328-354); it recovers the patient shift of
        ``sample_scans`` within 0.2 mm and known motions of the real TotalSegmentator and
        STS_001 CTs within 0.08-0.67 mm median, 0.18-0.71 mm max
        (``benchmarks/eval_registration_real.py``).
    hu_window : (float, float)
        HU are clipped to this window first (limits the pull of metal and contrast).
    histogram_bins : int
        Bins of the Mattes joint histogram (50 as in the SimpleITK examples [3]_).
    sampling_fraction, max_samples : float, int
        Fraction of the fixed voxels sampled at random (once per resolution level, seeded)
        for the optimisation, capped at ``max_samples`` draws per level; draws outside the
        fixed body mask (HU > -500, dilated by :data:`MASK_DILATION_VOXELS` working voxels
        to keep the skin outline) are discarded. A few thousand samples in the body
        determine the 6 rigid parameters well, and the cap keeps the time independent of the
        CT size; the affine refinement draws :data:`AFFINE_SAMPLE_FACTOR` times more.
    shrink_factors, smoothing_sigmas_mm : sequence
        Multi-resolution schedule on the working image (default: the 4 mm working image
        only; the translation search already ran at 8 mm, see Notes).
    max_iterations : int
        Maximum iterations of the optimiser per level (see Notes for the other stop
        criteria).
    min_ncc : float
        Threshold of the quality figure (see :class:`RegistrationQuality`; the check also
        fails a transform beyond the physical bounds of :class:`TransformPlausibility`).
    seed : int
        Seed of the random metric sampling: the same inputs give the same transform.
    fixed_label, moving_label : str
        Labels stored in the result (default: the series descriptions).
    number_of_threads : int, optional
        ITK threads of the metric evaluations (default: SimpleITK's global default).
        :func:`~emlesion.track.track_lesions` registers several follow-ups in parallel
        threads with one ITK thread each.
    prepared_fixed : PreparedCT, optional
        ``fixed`` already prepared (:func:`prepare_fixed_ct`), shared by the registrations
        of several follow-ups to one baseline; ignored (``fixed`` is prepared again) when
        it was made from another volume or with another working spacing or HU window.

    Returns
    -------
    Registration
        The fixed-to-moving transform, its quality figures, time taken and provenance.
        A failed quality check is reported with a :class:`~emlesion.errors.GeometryWarning`
        and recorded in the provenance; the transform is still returned.

    Raises
    ------
    GeometryError
        If an image is too small for the multi-resolution schedule or the images do not
        overlap at all.

    Notes
    -----
    Optimiser: regular-step gradient descent with parameter scales estimated from a 1 mm
    physical shift [2]_ (so that rotations and translations take comparable steps), one
    metric evaluation per iteration. Stop criteria, per resolution level: the step
    starts at one working voxel (a quarter voxel for the affine refinement) and is
    multiplied by :data:`RELAXATION` whenever the gradient turns back; the level ends
    when the step falls below :data:`MIN_STEP_MM` (0.005 mm), when the gradient magnitude
    falls below :data:`GRADIENT_TOLERANCE`, or after ``max_iterations``. Rotation centre
    at the fixed-image centre; linear interpolation; Mattes MI [1]_.

    The start is near the answer before the optimiser runs: the initialiser (the body
    centres of mass for ``"moments"``) and the exhaustive translation search put it
    within half a search step (4 mm), so that a fixed-step descent converges in 15-30
    iterations. The conjugate-gradient line search used before (issue 18)
    gave the same transforms within 0.2 mm on ``sample_scans`` and generator seeds 7
    and 12 at about 10 times the cost: it evaluates the metric 5-20 times per iteration
    and its convergence window kept it iterating after it had stopped moving. On the 12
    generator seeds of ``benchmarks/eval_segmentation.py`` (2024 = ``sample_scans``, 7, 11,
    2025, 1, 5, 6, 9, 12, 13, 14, 15) the tracks, site states, Deauville scores, MTVs and
    the 144 response categories are those of the line search, and the recovered patient
    shift at the baseline lesions is within 0.22 mm of the truth (0.22 mm before); the two
    registrations of ``sample_scans`` take 4.7 s of CPU instead of 32.8 s.

    A second descent level at 8 mm (the default until the second pass of issue 18) only
    repeated what the translation search had found. One 4 mm level with 10 000 samples,
    a 0.005 mm end step, 5 000 search draws per position, the quality metric on the 8 mm
    pair and the baseline CT prepared once for all follow-ups
    (:func:`~emlesion.track.track_lesions`) halve the CPU time of a ``sample_scans``
    registration (1.9 s -> 0.95 s, one ITK thread). The errors at the real-CT body points
    of ``benchmarks/eval_registration_real.py`` are those of the two-level schedule within
    the 0.1-0.3 mm spread of the sampling seed (default seed: 0.08-0.67 mm median,
    0.18-0.71 mm max, against 0.17-0.70 / 0.36-1.16 mm). On the 12 generator seeds the
    tracks, site states, Deauville scores, MTVs and the 144 categories are unchanged, the
    patient shift at the baseline lesions is within 0.23 mm per axis (0.21 mm before), and
    only the footprints mapped onto resolved month-3 sites move (VOIs by up to 3 mL; on
    seed 13 the CT no longer finds a 1.5 mL mass at the resolved pelvic site, where the
    truth has none).

    References
    ----------
    .. [1] Mattes D et al. IEEE Trans Med Imaging 2003;22(1):120-128.
    .. [2] The ITK Software Guide, Book 2, "Registration": optimizer scales,
       multi-resolution, ``CenteredTransformInitializer``.
    .. [3] SimpleITK notebook "60_Registration_Introduction" (Mattes MI, 50 bins,
       random sampling, shrink factors and smoothing sigmas per level).

    Examples
    --------
    >>> reg = register_ct(baseline_ct, followup_ct)  # doctest: +SKIP
    >>> reg.quality.passed, reg.offset_mm  # doctest: +SKIP
    """
    solved = _solve_registration(
        fixed,
        moving,
        transform=transform,
        initializer=initializer,
        search_range_mm=search_range_mm,
        working_spacing_mm=working_spacing_mm,
        hu_window=hu_window,
        histogram_bins=histogram_bins,
        sampling_fraction=sampling_fraction,
        max_samples=max_samples,
        shrink_factors=shrink_factors,
        smoothing_sigmas_mm=smoothing_sigmas_mm,
        max_iterations=max_iterations,
        min_ncc=min_ncc,
        seed=seed,
        number_of_threads=number_of_threads,
        prepared_fixed=prepared_fixed.own_copy() if prepared_fixed is not None else None,
    )
    return _finish_registration(solved, fixed_label=fixed_label, moving_label=moving_label)


@dataclass(frozen=True)
class _Solved:
    """What :func:`_solve_registration` found; :func:`_finish_registration` turns it into
    the :class:`Registration`, its provenance step and its quality warning."""

    transform_type: TransformType
    matrix: tuple[float, ...]
    offset_mm: tuple[float, float, float]
    quality: RegistrationQuality
    rule: str
    inputs: dict[str, Any]
    duration_s: float
    warning: str | None
    fixed_description: str
    moving_description: str


def _solve_registration(
    fixed: Volume,
    moving: Volume,
    *,
    transform: TransformType | str,
    initializer: Initializer | str,
    search_range_mm: Sequence[float] | None,
    working_spacing_mm: float,
    hu_window: tuple[float, float],
    histogram_bins: int,
    sampling_fraction: float,
    max_samples: int,
    shrink_factors: Sequence[int],
    smoothing_sigmas_mm: Sequence[float],
    max_iterations: int,
    min_ncc: float,
    seed: int,
    number_of_threads: int | None,
    prepared_fixed: PreparedCT | None = None,
) -> _Solved:
    """The work of :func:`register_ct` (same parameters); raises, never warns.

    ``prepared_fixed`` is the fixed CT already prepared by :func:`_prepare` with the same
    working spacing and HU window (shared by the follow-ups of one baseline); prepared
    here when ``None`` or made from another volume or with other settings.
    """
    t0 = time.perf_counter()
    ttype = TransformType(transform)
    if ttype is TransformType.IDENTITY:
        raise GeometryError(
            format_message(
                "register_ct searches 'rigid' or 'affine' transforms",
                fix="use Registration.identity() for an identity fall-back",
            )
        )
    init = Initializer(initializer)
    bins = int(histogram_bins)
    threads = None if number_of_threads is None else max(1, int(number_of_threads))
    fp = prepared_fixed
    if fp is None or not fp.matches(fixed, working_spacing_mm, hu_window):
        fp = _prepare(fixed, working_spacing_mm, hu_window, with_mask=True)
    mp = _prepare(moving, working_spacing_mm, hu_window, with_mask=False)
    f_img, m_img = fp.image, mp.image
    min_size = 4 * max(shrink_factors)
    for name, img in (("fixed", f_img), ("moving", m_img)):
        if min(img.GetSize()) < min_size:
            raise GeometryError(
                format_message(
                    f"{name} CT is too small for registration ({img.GetSize()} voxels at "
                    f"{working_spacing_mm} mm)",
                    fix="lower working_spacing_mm or the shrink factors",
                )
            )
    mask = fp.mask
    coarse = (
        None if fp.coarse is None or mp.coarse is None else (fp.coarse, mp.coarse, fp.coarse_mask)
    )
    # the shift between the centres of the two fields of view (the "geometry" candidate)
    f_centre = fixed.grid.index_to_lps((np.asarray(fixed.grid.shape) - 1) / 2.0)
    m_centre = moving.grid.index_to_lps((np.asarray(moving.grid.shape) - 1) / 2.0)
    initial, init_rule, scores = _initial_transform(
        f_img,
        m_img,
        init,
        bins,
        search_range_mm,
        geometry_shift_mm=np.asarray(m_centre) - np.asarray(f_centre),
        mask=mask,
        coarse=coarse,
        threads=threads,
    )
    identity = sitk.Euler3DTransform()
    # the quality metric is evaluated on the coarse pair (every masked voxel, see
    # EVALUATION_SAMPLES): the identity candidate of "auto" already holds its value before
    f_q, m_q, mask_q = coarse if coarse is not None else (f_img, m_img, mask)
    metric_before = scores.get("identity")
    if metric_before is None:
        metric_before = _mattes(f_q, m_q, identity, bins, mask=mask_q, threads=threads)
    common: dict[str, Any] = {
        "bins": bins,
        "sampling_fraction": float(sampling_fraction),
        "max_samples": int(max_samples),
        "seed": int(seed),
        "shrink_factors": tuple(int(s) for s in shrink_factors),
        "smoothing_sigmas_mm": tuple(float(s) for s in smoothing_sigmas_mm),
        "max_iterations": int(max_iterations),
    }
    result, iterations, stop = _descend(f_img, m_img, initial, ttype, working_spacing_mm, mask,
                                        threads, common, moving)
    metric_after = _mattes(f_q, m_q, result, bins, mask=mask_q, threads=threads)
    a, o = _linear_part(result)
    quality, warning = _quality(f_img, m_img, result, (a, o), metric_before, metric_after,
                                min_ncc, iterations, stop, moving)
    inputs = {
        "working_spacing_mm": float(working_spacing_mm),
        "hu_window": tuple(float(v) for v in hu_window),
        "min_ncc": float(min_ncc),
        "search_range_mm": None if search_range_mm is None else tuple(search_range_mm),
        "body_margin_mm": BODY_MARGIN_MM,
        "fixed_series": fixed.identity.series_instance_uid,
        "moving_series": moving.identity.series_instance_uid,
        "fixed_frame_of_reference_uid": fixed.identity.frame_of_reference_uid,
        "moving_frame_of_reference_uid": moving.identity.frame_of_reference_uid,
        **common,
    }
    return _Solved(
        ttype,
        tuple(float(v) for v in a.ravel()),
        (float(o[0]), float(o[1]), float(o[2])),
        quality,
        f"{ttype.value}, Mattes MI on body-cropped CTs (samples in the body), regular-step "
        f"gradient descent; initial transform: {init_rule}",
        inputs,
        time.perf_counter() - t0,
        warning,
        fixed.identity.series_description,
        moving.identity.series_description,
    )


def _descend(
    f_img: sitk.Image, m_img: sitk.Image, initial: sitk.Euler3DTransform, ttype: TransformType,
    working_spacing_mm: float, mask: sitk.Image | None, threads: int | None,
    common: dict[str, Any], moving: Volume,
) -> tuple[sitk.Transform, int, str]:
    """The gradient descent of :func:`register_ct` from ``initial``: rigid, then for
    ``affine`` a refinement from the rigid result at a quarter of the step with
    :data:`AFFINE_SAMPLE_FACTOR` times the samples. ``(transform, iterations, stop)``."""
    try:
        result, iterations, stop = _run_stage(
            f_img,
            m_img,
            initial,
            max_step_mm=working_spacing_mm,
            mask=mask,
            threads=threads,
            **common,
        )
        if ttype is TransformType.AFFINE:
            a, o = _linear_part(result)
            affine = sitk.AffineTransform(3)
            affine.SetCenter(initial.GetCenter())
            c = np.asarray(initial.GetCenter())
            affine.SetMatrix(tuple(a.ravel()))
            # A p + o = A (p - c) + c + t  =>  t = o - c + A c
            affine.SetTranslation(tuple(o - c + a @ c))
            result, it2, stop = _run_stage(
                f_img,
                m_img,
                affine,
                max_step_mm=0.25 * working_spacing_mm,
                mask=mask,
                threads=threads,
                **{**common, "max_samples": AFFINE_SAMPLE_FACTOR * common["max_samples"]},
            )
            iterations += it2
    except RuntimeError as exc:
        raise GeometryError(
            format_message(
                f"CT registration failed ({str(exc).strip().splitlines()[-1][:200]})",
                series=moving.identity.series_instance_uid or None,
                fix="check that both CTs cover the same body region; try initializer='moments'",
            )
        ) from exc
    return result, iterations, stop


def _quality(
    f_img: sitk.Image, m_img: sitk.Image, result: sitk.Transform,
    linear: tuple[np.ndarray, np.ndarray], metric_before: float, metric_after: float,
    min_ncc: float, iterations: int, stop: str, moving: Volume,
) -> tuple[RegistrationQuality, str | None]:
    """The quality check of :func:`register_ct` (NCC after >= ``min_ncc`` and not worse
    than before, overlap >= 30 %, a plausible transform: :class:`TransformPlausibility`
    about the centre of the fixed working image, the body box) and the warning text when
    it fails; ``linear`` is ``result``'s matrix and offset (:func:`_linear_part`)."""
    identity = sitk.Euler3DTransform()
    ncc_before, _ = _ncc(f_img, m_img, identity)
    ncc_after, overlap = _ncc(f_img, m_img, result)
    plausibility = TransformPlausibility.of(*linear, _image_centre(f_img))
    passed = bool(
        math.isfinite(ncc_after)
        and ncc_after >= min_ncc
        and (not math.isfinite(ncc_before) or ncc_after >= ncc_before - 0.01)
        and overlap >= 0.3
        and plausibility.passed
    )
    quality = RegistrationQuality(
        metric_before,
        metric_after,
        ncc_before,
        ncc_after,
        overlap,
        float(min_ncc),
        passed,
        iterations,
        stop,
        plausibility,
    )
    warning = None
    if not passed:
        fix = "inspect the registration overlay; lesion matching may be unreliable"
        failed = set(plausibility.failed)
        if failed & {PlausibilityBound.SCALE, PlausibilityBound.SHEAR}:
            fix += "; an implausible scale or shear is a failed affine refinement: " \
                "register with transform='rigid'"
        warning = format_message(
            f"CT registration quality check failed ({quality!r})",
            series=moving.identity.series_instance_uid or None,
            fix=fix,
        )
    return quality, warning


def _register_ct_args(fixed: Volume, moving: Volume | None, **kwargs: Any) -> dict[str, Any]:
    """The arguments of :func:`register_ct` with its defaults filled in."""
    bound = inspect.signature(register_ct).bind(fixed, moving, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def prepare_fixed_ct(fixed: Volume, **kwargs: Any) -> PreparedCT:
    """The fixed CT prepared as :func:`register_ct` with ``kwargs`` prepares it.

    Parameters
    ----------
    fixed : Volume
        The baseline CT (HU).
    **kwargs
        The keyword arguments of :func:`register_ct` that will be used (only
        ``working_spacing_mm`` and ``hu_window`` matter).

    Returns
    -------
    PreparedCT
        To pass as ``prepared_fixed`` to every registration to this baseline.

    Examples
    --------
    >>> prepared = prepare_fixed_ct(baseline_ct)  # doctest: +SKIP
    >>> regs = [register_ct(baseline_ct, ct, prepared_fixed=prepared)
    ...         for ct in (month1_ct, month3_ct)]  # doctest: +SKIP
    """
    args = _register_ct_args(fixed, None, **kwargs)
    return _prepare(fixed, args["working_spacing_mm"], args["hu_window"], with_mask=True)


def _finish_registration(
    solved: _Solved, *, fixed_label: str = "", moving_label: str = ""
) -> Registration:
    """Emit the quality warning of a solved registration and build its result."""
    with record_warnings() as rec:
        if solved.warning is not None:
            warn_external(solved.warning, GeometryWarning)
    step = ProvenanceStep(
        "emlesion.track.register_ct",
        rule=solved.rule,
        inputs=solved.inputs,
        warnings=rec.as_tuple(),
    )
    return Registration(
        solved.transform_type,
        solved.matrix,
        solved.offset_mm,
        fixed_label or solved.fixed_description,
        moving_label or solved.moving_description,
        solved.quality,
        solved.duration_s,
        (step,),
    )


def map_points(
    registration: Registration,
    points_mm: np.ndarray | Sequence[Sequence[float]] | Sequence[float],
    *,
    to: MapTo | str = MapTo.FIXED,
) -> np.ndarray:
    """Map LPS points between the moving (follow-up) and fixed (baseline) spaces.

    Parameters
    ----------
    registration : Registration
        Fixed-to-moving transform.
    points_mm : array-like
        One point ``(x, y, z)`` or an ``(n, 3)`` array, LPS mm.
    to : {"fixed", "moving"}
        ``"fixed"`` (default) treats the points as follow-up positions and returns their
        baseline positions (inverse transform); ``"moving"`` maps baseline points to the
        follow-up (forward transform).

    Returns
    -------
    ndarray
        Mapped points, same shape as the input.
    """
    pts = np.asarray(points_mm, dtype=float)
    single = pts.ndim == 1
    p2 = np.atleast_2d(pts)
    if p2.shape[1] != 3:
        raise GeometryError(
            format_message(f"points must have 3 coordinates, got shape {pts.shape}")
        )
    a = registration.matrix_array
    o = np.asarray(registration.offset_mm)
    out = p2 @ a.T + o if MapTo(to) is MapTo.MOVING else np.linalg.solve(a, (p2 - o).T).T
    return out[0] if single else out


def resample_labels(registration: Registration, labels: LabelMap, reference_grid: Grid) -> LabelMap:
    """Bring a follow-up label map onto a baseline grid (nearest neighbour).

    Parameters
    ----------
    registration : Registration
        Fixed-to-moving transform (fixed = the space of ``reference_grid``).
    labels : LabelMap
        Labels in the moving (follow-up) space, e.g. on the follow-up PET grid.
    reference_grid : Grid
        Target grid in the fixed space, e.g. the baseline PET grid.

    Returns
    -------
    LabelMap
        Labels on ``reference_grid`` (labels never blended; 0 outside the source).
        A lesion smaller than a voxel of the target can disappear; callers that
        need every lesion should also map its centroid with :func:`map_points`.
    """
    out = sitk.Resample(
        labels.to_sitk(),
        reference_grid.reference_image(),
        registration.to_sitk(),
        sitk.sitkNearestNeighbor,
        0,
        sitk.sitkUInt16,
    )
    step = ProvenanceStep(
        "emlesion.track.resample_labels",
        rule=f"nearest neighbour through {registration.transform_type.value} registration",
        inputs={
            "target_shape": reference_grid.shape,
            "target_spacing_mm": reference_grid.spacing_mm,
            "matrix": registration.matrix,
            "offset_mm": registration.offset_mm,
        },
    )
    return replace(
        labels,
        array=sitk.GetArrayFromImage(out),
        grid=reference_grid,
        provenance=(*labels.provenance, step),
    )


def resample_volume(
    registration: Registration,
    volume: Volume,
    reference: Volume | Grid,
    *,
    default_value: float | None = None,
) -> Volume:
    """Bring a follow-up image (CT or PET) onto a baseline grid (linear interpolation).

    Meant for display and checks (fused overlays, checkerboards of the registered CTs in
    a report); measurements stay on each timepoint's native grid.

    Parameters
    ----------
    registration : Registration
        Fixed-to-moving transform (fixed = the space of ``reference``).
    volume : Volume
        Image in the moving (follow-up) space.
    reference : Volume or Grid
        Target grid in the fixed space.
    default_value : float, optional
        Value outside the moving field of view; default -1024 for CT, else 0.

    Returns
    -------
    Volume
        Same identity and units, no per-slice facts, one more provenance step.
    """
    grid = reference.grid if isinstance(reference, Volume) else reference
    if default_value is None:
        default_value = -1024.0 if volume.modality == "CT" or volume.units == "HU" else 0.0
    out = sitk.Resample(
        volume.to_sitk(),
        grid.reference_image(),
        registration.to_sitk(),
        sitk.sitkLinear,
        float(default_value),
        sitk.sitkFloat32,
    )
    step = ProvenanceStep(
        "emlesion.track.resample_volume",
        rule=f"linear interpolation through {registration.transform_type.value} registration",
        inputs={
            "target_shape": grid.shape,
            "target_spacing_mm": grid.spacing_mm,
            "matrix": registration.matrix,
            "offset_mm": registration.offset_mm,
            "default_value": default_value,
        },
    )
    return Volume(
        sitk.GetArrayFromImage(out),
        grid,
        volume.identity,
        (),
        (),
        volume.units,
        (*volume.provenance, step),
    )
