"""A digital abdomen-pelvis phantom: tissue labels, true SUVbw and HU, lesions, image formation.

The phantom is built on a fine 2 mm grid in *body* coordinates (DICOM LPS axes: +x
patient left, +y posterior, +z head; origin on the midline at the top of the field of
view), which move with the patient: a timepoint's LPS position is body position plus
the patient shift of that timepoint. PET is the true SUVbw map blurred by a Gaussian
point-spread function, block-averaged to 4 mm and given spatially correlated noise
whose variance grows with the activity; CT is the HU map averaged to 4 mm slices with
low-dose noise.

All random numbers come from :class:`numpy.random.Generator` seeded from the study
seed, so that a study is reproduced bit for bit.

References
----------
.. [1] Wahl RL et al. J Nucl Med 2009;50 Suppl 1:122S-150S (PERCIST; liver and blood
   pool references).
.. [2] Typical FDG biodistribution SUVs and non-contrast CT attenuation values are
   textbook values chosen for realism, not measurements.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from emlesion.errors import InvalidParameterError, format_message

__all__ = [
    "CT_ZOOM",
    "FINE_SPACING_MM",
    "FOV_TOP_Z_MM",
    "LESIONS",
    "PET_SHAPE",
    "PET_SPACING_MM",
    "PSF_FWHM_MM",
    "LesionSpec",
    "LesionState",
    "PhantomImages",
    "Tissue",
    "lesion_states",
    "render_lesion_masks",
    "simulate_images",
]

#: Fine simulation grid spacing (mm), isotropic.
FINE_SPACING_MM: float = 2.0
#: PET voxel spacing (x, y, z) in mm and array shape (z, y, x).
PET_SPACING_MM: tuple[float, float, float] = (4.0, 4.0, 4.0)
PET_SHAPE: tuple[int, int, int] = (96, 100, 100)
#: CT in-plane zoom relative to PET (CT voxels are 2.0 x 2.0 x 4.0 mm).
CT_ZOOM: int = 2
#: LPS z (mm) of the upper edge of the field of view (top of the top slice).
FOV_TOP_Z_MM: float = -488.0
#: Full width at half maximum (mm) of the PET point-spread function on the fine grid.
PSF_FWHM_MM: float = 6.5

_FINE_SHAPE = (PET_SHAPE[0] * 2, PET_SHAPE[1] * 2, PET_SHAPE[2] * 2)


class Tissue(enum.IntEnum):
    """Tissue labels of the phantom (0 is air)."""

    AIR = 0
    SUBCUT_FAT = 1
    MUSCLE = 2
    VISCERAL_FAT = 3
    LUNG = 4
    LIVER = 5
    SPLEEN = 6
    STOMACH = 7
    KIDNEY = 8
    RENAL_PELVIS = 9
    BOWEL = 10
    COLON = 11
    GAS = 12
    BLOOD = 13
    MARROW = 14
    CORTICAL_BONE = 15
    DISC = 16
    CSF = 17
    BLADDER = 18
    RECTUM = 19
    LESION = 20
    SCAR = 21


@dataclass(frozen=True)
class _TissueValues:
    hu: float
    hu_texture: float
    suv: float
    suv_texture: float


#: HU (non-contrast, low dose) and true SUVbw of each tissue, with texture amplitudes
#: (HU standard deviation; relative SUV coefficient of variation).
TISSUE_VALUES: dict[Tissue, _TissueValues] = {
    Tissue.AIR: _TissueValues(-1000.0, 0.0, 0.0, 0.0),
    Tissue.SUBCUT_FAT: _TissueValues(-105.0, 12.0, 0.30, 0.10),
    Tissue.MUSCLE: _TissueValues(50.0, 6.0, 0.80, 0.08),
    Tissue.VISCERAL_FAT: _TissueValues(-95.0, 15.0, 0.35, 0.12),
    Tissue.LUNG: _TissueValues(-840.0, 40.0, 0.45, 0.10),
    Tissue.LIVER: _TissueValues(58.0, 4.0, 2.30, 0.05),
    Tissue.SPLEEN: _TissueValues(48.0, 4.0, 1.90, 0.05),
    Tissue.STOMACH: _TissueValues(35.0, 8.0, 1.80, 0.20),
    Tissue.KIDNEY: _TissueValues(32.0, 6.0, 3.80, 0.10),
    Tissue.RENAL_PELVIS: _TissueValues(8.0, 3.0, 14.0, 0.15),
    Tissue.BOWEL: _TissueValues(32.0, 10.0, 1.90, 0.25),
    Tissue.COLON: _TissueValues(10.0, 60.0, 2.10, 0.25),
    Tissue.GAS: _TissueValues(-950.0, 20.0, 0.10, 0.0),
    Tissue.BLOOD: _TissueValues(42.0, 3.0, 1.70, 0.03),
    Tissue.MARROW: _TissueValues(230.0, 40.0, 1.50, 0.10),
    Tissue.CORTICAL_BONE: _TissueValues(950.0, 120.0, 1.00, 0.05),
    Tissue.DISC: _TissueValues(80.0, 8.0, 0.80, 0.05),
    Tissue.CSF: _TissueValues(15.0, 4.0, 0.40, 0.05),
    Tissue.BLADDER: _TissueValues(8.0, 3.0, 30.0, 0.03),
    Tissue.RECTUM: _TissueValues(20.0, 40.0, 1.60, 0.20),
    Tissue.LESION: _TissueValues(38.0, 5.0, 0.0, 0.0),  # SUV and HU from LesionState
    Tissue.SCAR: _TissueValues(45.0, 5.0, 0.0, 0.0),
}


# ---------------------------------------------------------------------------- lesions
@dataclass(frozen=True)
class LesionSpec:
    """A lesion of the sample patient at baseline.

    Parameters
    ----------
    name, region, side : str
        Identifier (also the truth label name), anatomical region and patient side.
    label : int
        Label value in the truth masks.
    center_mm : tuple of float
        Centre in body coordinates (LPS axes).
    extents_cm : tuple of float
        Target axis-aligned extents (transverse x, antero-posterior y, cranio-caudal z)
        of the baseline lesion; the semi-axes are calibrated to meet them.
    """

    name: str
    region: str
    side: str
    label: int
    center_mm: tuple[float, float, float]
    extents_cm: tuple[float, float, float]


#: The two masses of the case: right retroperitoneal and left pelvic wall.
LESIONS: tuple[LesionSpec, ...] = (
    LesionSpec(
        "retroperitoneal_right",
        "retroperitoneal",
        "right",
        1,
        (-54.0, -5.0, -240.0),
        (3.5, 4.7, 12.6),
    ),
    LesionSpec("pelvic_wall_left", "pelvic", "left", 2, (62.0, -15.0, -278.0), (2.5, 4.3, 8.8)),
)


@dataclass(frozen=True)
class LesionState:
    """The state of one lesion at one timepoint.

    ``scale`` multiplies the baseline semi-axes (x, y, z); ``peak_suv`` is the true
    SUVbw of the hottest part; ``core_fraction`` how much lower the necrotic-ish core
    is; ``tissue`` is LESION for viable tumour and SCAR for a residual scar.
    """

    spec: LesionSpec
    present: bool
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    peak_suv: float = 0.0
    core_fraction: float = 0.0
    hu: float = 38.0
    tissue: Tissue = Tissue.LESION
    status: str = "viable"


def lesion_states(timepoint: str) -> tuple[LesionState, ...]:
    """The lesion states of the clinical course at ``timepoint``.

    Baseline: two hot heterogeneous masses. Month 1: the retroperitoneal mass at about
    45 % of its volume with lower uptake, the pelvic mass regressed to a small faint
    nodule (PERCIST partial metabolic response). Month 3: a small retroperitoneal
    soft-tissue scar with uptake below the blood pool; the pelvic mass has resolved.
    """
    retro, pelvic = LESIONS
    if timepoint == "baseline":
        return (
            LesionState(retro, True, (1.0, 1.0, 1.0), 11.2, 0.40, 38.0),
            LesionState(pelvic, True, (1.0, 1.0, 1.0), 9.6, 0.30, 40.0),
        )
    if timepoint == "month1":
        return (
            LesionState(retro, True, (0.80, 0.78, 0.74), 4.5, 0.20, 40.0, status="responding"),
            LesionState(pelvic, True, (0.58, 0.55, 0.50), 3.6, 0.0, 42.0, status="regressed"),
        )
    if timepoint == "month3":
        return (
            LesionState(
                retro,
                True,
                (0.40, 0.36, 0.30),
                1.30,
                0.0,
                45.0,
                Tissue.SCAR,
                status="residual scar",
            ),
            LesionState(pelvic, False, status="resolved"),
        )
    raise InvalidParameterError(format_message(f"unknown timepoint {timepoint!r}",
                                               fix="use baseline, month1 or month3"))


def _deformation(ux: np.ndarray, uy: np.ndarray, uz: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Low-order smooth radial deformation of the unit sphere (harmonic-like basis)."""
    phi = np.arctan2(uy, ux)
    s2 = 1.0 - uz * uz
    basis = (
        ux * uy,
        ux * uz,
        uy * uz,
        ux * ux - uy * uy,
        3.0 * uz * uz - 1.0,
        np.cos(3 * phi) * s2,
        np.sin(3 * phi) * s2,
        np.cos(4 * phi) * s2 * s2,
        uz * (5 * uz * uz - 3),
        np.sin(2 * phi) * uz * s2,
    )
    out = np.zeros_like(ux)
    for c, b in zip(coeffs, basis):
        out += c * b
    return out


@dataclass(frozen=True)
class _LesionShape:
    """A deformed ellipsoid: inside when ``r <= 1 + δ(u)`` in semi-axis-normalised space."""

    center_mm: tuple[float, float, float]
    semi_mm: tuple[float, float, float]
    coeffs: np.ndarray = field(compare=False)

    def normalised(
        self, x: np.ndarray, y: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        dx = (x - self.center_mm[0]) / self.semi_mm[0]
        dy = (y - self.center_mm[1]) / self.semi_mm[1]
        dz = (z - self.center_mm[2]) / self.semi_mm[2]
        r = np.sqrt(dx * dx + dy * dy + dz * dz)
        rs = np.where(r > 0, r, 1.0)
        return dx, dy, dz, r, 1.0 + _deformation(dx / rs, dy / rs, dz / rs, self.coeffs)

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        *_, r, rmax = self.normalised(x, y, z)
        return np.asarray(r <= rmax)

    def scaled(self, scale: Sequence[float]) -> _LesionShape:
        return _LesionShape(
            self.center_mm,
            tuple(s * f for s, f in zip(self.semi_mm, scale)),  # type: ignore[arg-type]
            self.coeffs,
        )


def _calibrated_shape(spec: LesionSpec, rng: np.random.Generator) -> _LesionShape:
    """Deformed ellipsoid whose axis-aligned extents (1 mm sampling) meet ``spec.extents_cm``."""
    coeffs = rng.normal(0.0, 0.07, size=10)
    target = np.asarray(spec.extents_cm) * 10.0
    semi = target / 2.0
    for _ in range(3):
        shape = _LesionShape(spec.center_mm, (semi[0], semi[1], semi[2]), coeffs)
        half = semi * 1.5
        axes = [np.arange(c - h, c + h + 0.5, 1.0) for c, h in zip(spec.center_mm, half)]
        x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
        m = shape.inside(x, y, z)
        ext = []
        for ax in range(3):
            proj = np.flatnonzero(m.any(axis=tuple(a for a in range(3) if a != ax)))
            ext.append(float(proj[-1] - proj[0] + 1))
        semi = semi * target / np.asarray(ext)
    return _LesionShape(spec.center_mm, tuple(float(s) for s in semi), coeffs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- canvas
class _Canvas:
    """Label painting on the fine grid, in body coordinates, with bounding-box evaluation."""

    def __init__(self, shift_mm: Sequence[float]) -> None:
        nz, ny, nx = _FINE_SHAPE
        h = FINE_SPACING_MM
        # LPS centres of the fine voxels; body = LPS - shift, body z = 0 at the FOV top.
        self.x = -h * nx / 2 + h / 2 + np.arange(nx) * h - shift_mm[0]
        self.y = -h * ny / 2 + h / 2 + np.arange(ny) * h - shift_mm[1]
        self.z = -h * nz + h / 2 + np.arange(nz) * h - shift_mm[2]
        self.labels = np.zeros(_FINE_SHAPE, dtype=np.uint8)

    def _box(
        self, lo: Sequence[float], hi: Sequence[float]
    ) -> tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray, np.ndarray] | None:
        sl = []
        for axis, a, b in zip((self.x, self.y, self.z), lo, hi):
            i0 = int(np.searchsorted(axis, a, side="left"))
            i1 = int(np.searchsorted(axis, b, side="right"))
            if i1 <= i0:
                return None
            sl.append(slice(i0, i1))
        sx, sy, sz = sl
        return (
            (sz, sy, sx),
            self.x[sx][None, None, :],
            self.y[sy][None, :, None],
            self.z[sz][:, None, None],
        )

    def ellipsoid(
        self,
        center: Sequence[float],
        semi: Sequence[float],
        *,
        rot_z_deg: float = 0.0,
    ) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
        r = max(semi[0], semi[1]) if rot_z_deg else None
        lo = [center[0] - (r or semi[0]), center[1] - (r or semi[1]), center[2] - semi[2]]
        hi = [center[0] + (r or semi[0]), center[1] + (r or semi[1]), center[2] + semi[2]]
        box = self._box(lo, hi)
        if box is None:
            return None
        sl, x, y, z = box
        dx, dy = x - center[0], y - center[1]
        if rot_z_deg:
            c, s = math.cos(math.radians(rot_z_deg)), math.sin(math.radians(rot_z_deg))
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        q = (dx / semi[0]) ** 2 + (dy / semi[1]) ** 2 + ((z - center[2]) / semi[2]) ** 2
        return sl, q <= 1.0

    def zcyl(
        self,
        zk: Sequence[float],
        cx: Sequence[float],
        cy: Sequence[float],
        rx: Sequence[float],
        ry: Sequence[float],
    ) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
        """Tube running along z with an elliptical section interpolated between knots."""
        order = np.argsort(zk)
        zk_a = np.asarray(zk, float)[order]
        arrs = [np.asarray(v, float)[order] for v in (cx, cy, rx, ry)]
        rmax = max(max(rx), max(ry))
        lo = [min(cx) - rmax, min(cy) - rmax, zk_a[0]]
        hi = [max(cx) + rmax, max(cy) + rmax, zk_a[-1]]
        box = self._box(lo, hi)
        if box is None:
            return None
        sl, x, y, z = box
        zz = z[:, 0, 0]
        ccx, ccy, rrx, rry = (np.interp(zz, zk_a, a)[:, None, None] for a in arrs)
        return sl, ((x - ccx) / rrx) ** 2 + ((y - ccy) / rry) ** 2 <= 1.0

    def xcyl(
        self, xk: Sequence[float], cy: Sequence[float], cz: Sequence[float], r: Sequence[float]
    ) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
        """Tube running along x (transverse colon) with a circular section."""
        xk_a = np.asarray(xk, float)
        rmax = max(r)
        box = self._box(
            [xk_a[0], min(cy) - rmax, min(cz) - rmax], [xk_a[-1], max(cy) + rmax, max(cz) + rmax]
        )
        if box is None:
            return None
        sl, x, y, z = box
        xx = x[0, 0, :]
        ccy, ccz, rr = (
            np.interp(xx, xk_a, np.asarray(a, float))[None, None, :] for a in (cy, cz, r)
        )
        return sl, ((y - ccy) ** 2 + (z - ccz) ** 2) <= rr**2

    def segment(
        self, p0: Sequence[float], p1: Sequence[float], radius: float
    ) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
        """Capsule between two points."""
        a, b = np.asarray(p0, float), np.asarray(p1, float)
        box = self._box(np.minimum(a, b) - radius, np.maximum(a, b) + radius)
        if box is None:
            return None
        sl, x, y, z = box
        d = b - a
        t = ((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / float(d @ d)
        t = np.clip(t, 0.0, 1.0)
        dist2 = (x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2
        return sl, dist2 <= radius * radius

    def paint(
        self,
        tissue: Tissue,
        region: tuple[tuple[slice, slice, slice], np.ndarray] | None,
        *,
        within: Sequence[Tissue] | None = None,
        exclude: Sequence[Tissue] | None = None,
    ) -> None:
        if region is None:
            return
        sl, m = region
        sub = self.labels[sl]
        m = np.broadcast_to(m, sub.shape).copy()
        if within is not None:
            m &= np.isin(sub, [int(t) for t in within])
        if exclude is not None:
            m &= ~np.isin(sub, [int(t) for t in exclude])
        sub[m] = int(tissue)

    def full(self, region: tuple[tuple[slice, slice, slice], np.ndarray] | None) -> np.ndarray:
        out = np.zeros(_FINE_SHAPE, dtype=bool)
        if region is not None:
            sl, m = region
            out[sl] = np.broadcast_to(m, out[sl].shape)
        return out


# ---------------------------------------------------------------------------- anatomy
_SOFT = (Tissue.VISCERAL_FAT,)


def _body_outline(cv: _Canvas, fat_mm: float) -> None:
    """Skin outline (superellipse), subcutaneous fat, abdominal-wall muscle, visceral space."""
    zk = [0, -60, -150, -220, -280, -340, -384]
    ax = np.interp(cv.z, zk[::-1], [176, 178, 172, 158, 150, 152, 150][::-1])
    ay = np.interp(cv.z, zk[::-1], [108, 110, 108, 105, 108, 112, 112][::-1])
    x = cv.x[None, None, :]
    y = cv.y[None, :, None]
    p = 2.4

    def inside(shrink: float) -> np.ndarray:
        a = (ax - shrink)[:, None, None]
        b = (ay - shrink)[:, None, None]
        return np.asarray(np.abs(x / a) ** p + np.abs((y - 4.0) / b) ** p <= 1.0)

    body = inside(0.0)
    inner_fat = inside(fat_mm)
    inner_wall = inside(fat_mm + 11.0)
    lab = cv.labels
    lab[body] = Tissue.SUBCUT_FAT
    lab[inner_fat] = Tissue.MUSCLE
    lab[inner_wall] = Tissue.VISCERAL_FAT


def _spine_and_pelvis(cv: _Canvas) -> None:
    """Lumbar spine with discs and posterior elements, sacrum, iliac wings, hips, pubis."""
    # posterior muscles (erector spinae, quadratus) and gluteal muscles
    for s in (-1, 1):
        cv.paint(
            Tissue.MUSCLE,
            cv.zcyl(
                [0, -150, -240, -300],
                [s * 38, s * 40, s * 35, s * 30],
                [82, 80, 86, 95],
                [30, 32, 26, 16],
                [24, 24, 18, 10],
            ),
        )
        cv.paint(
            Tissue.MUSCLE,
            cv.ellipsoid((s * 88, 70, -318), (62, 40, 82)),
            exclude=(Tissue.SUBCUT_FAT, Tissue.AIR),
        )
    # vertebral column: bodies (marrow with cortical shell) alternating with discs
    zs = cv.z
    period, disc = 37.0, 9.0
    phase = np.mod(zs - 8.0, period)
    is_disc = phase < disc
    ycen = np.interp(zs, [-230, -160, -80, 0], [48, 36, 40, 46])
    x = cv.x[None, None, :]
    y = cv.y[None, :, None]
    in_spine_z = (zs <= 0) & (zs >= -222)
    q = (x / 23.0) ** 2 + ((y - ycen[:, None, None]) / 17.0) ** 2
    vb = (q <= 1.0) & in_spine_z[:, None, None]
    shell = vb & (q > 0.72)
    lab = cv.labels
    lab[vb] = Tissue.MARROW
    lab[shell] = Tissue.CORTICAL_BONE
    lab[vb & is_disc[:, None, None]] = Tissue.DISC
    # posterior arch, canal and spinous process
    yc = ycen[:, None, None]
    ring = ((x / 15.0) ** 2 + ((y - yc - 29.0) / 13.0) ** 2 <= 1.0) & in_spine_z[:, None, None]
    canal = ((x / 9.0) ** 2 + ((y - yc - 29.0) / 8.0) ** 2 <= 1.0) & in_spine_z[:, None, None]
    spinous = (
        ((x / 5.0) ** 2 + ((y - yc - 54.0) / 14.0) ** 2 <= 1.0)
        & in_spine_z[:, None, None]
        & ~is_disc[:, None, None]
    )
    transverse = (
        ((x / 42.0) ** 2 + ((y - yc - 24.0) / 5.0) ** 2 <= 1.0)
        & (np.mod(zs - 8.0 - disc - 8.0, period) < 9.0)[:, None, None]
        & in_spine_z[:, None, None]
    )
    lab[ring | spinous | transverse] = Tissue.CORTICAL_BONE
    lab[canal] = Tissue.CSF
    # sacrum: tapering, tilting posteriorly
    sac = cv.zcyl(
        [-222, -260, -300, -330], [0, 0, 0, 0], [58, 66, 80, 90], [46, 40, 28, 14], [17, 17, 13, 9]
    )
    cv.paint(Tissue.MARROW, sac)
    # iliac wings: oblique plates flaring antero-laterally, cortical rim + marrow
    for s in (-1, 1):
        wing_c = (s * 90.0, 30.0, -262.0)
        rot = s * 48.0
        cv.paint(Tissue.CORTICAL_BONE, cv.ellipsoid(wing_c, (8.0, 62.0, 46.0), rot_z_deg=rot))
        cv.paint(Tissue.MARROW, cv.ellipsoid(wing_c, (5.0, 58.0, 42.0), rot_z_deg=rot))
        # iliacus muscle on the inner surface of the wing
        cv.paint(
            Tissue.MUSCLE,
            cv.ellipsoid((s * 80.0, 18.0, -262.0), (12.0, 44.0, 36.0), rot_z_deg=rot),
            within=_SOFT,
        )
        # acetabulum, femoral head and neck, greater trochanter, shaft
        cv.paint(Tissue.CORTICAL_BONE, cv.ellipsoid((s * 90.0, 4.0, -333.0), (33.0, 33.0, 30.0)))
        cv.paint(Tissue.MARROW, cv.ellipsoid((s * 92.0, 4.0, -336.0), (24.0, 24.0, 24.0)))
        cv.paint(Tissue.CORTICAL_BONE, cv.segment((s * 100, 4, -344), (s * 134, 8, -362), 13.0))
        cv.paint(Tissue.MARROW, cv.segment((s * 100, 4, -344), (s * 134, 8, -362), 8.0))
        cv.paint(Tissue.CORTICAL_BONE, cv.segment((s * 136, 8, -362), (s * 128, 12, -400), 15.0))
        cv.paint(Tissue.MARROW, cv.segment((s * 136, 8, -362), (s * 128, 12, -400), 9.0))
        # superior pubic ramus to the symphysis, ischium down to the tuberosity
        cv.paint(Tissue.CORTICAL_BONE, cv.segment((s * 72, -14, -338), (s * 10, -76, -356), 10.0))
        cv.paint(Tissue.CORTICAL_BONE, cv.segment((s * 10, -76, -356), (s * 12, -70, -384), 9.0))
        cv.paint(Tissue.CORTICAL_BONE, cv.segment((s * 78, 34, -340), (s * 58, 42, -390), 12.0))
        cv.paint(Tissue.MARROW, cv.segment((s * 78, 34, -340), (s * 58, 42, -390), 6.0))
        # obturator internus lining the true pelvis
        cv.paint(
            Tissue.MUSCLE, cv.ellipsoid((s * 60.0, 8.0, -352.0), (9.0, 38.0, 28.0)), within=_SOFT
        )


def _organs(cv: _Canvas, rng: np.random.Generator, bowel_field: np.ndarray) -> None:
    """Lungs, liver, spleen, stomach, kidneys, vessels, psoas, bowel, bladder, rectum."""
    inner = (Tissue.VISCERAL_FAT,)
    # lung bases behind the liver dome and spleen
    for s in (-1, 1):
        cv.paint(Tissue.LUNG, cv.ellipsoid((s * 88, 40, 58), (62, 62, 100)), within=inner)
    # liver (right lobe + left lobe), spleen, stomach with an air-fluid level
    cv.paint(Tissue.LIVER, cv.ellipsoid((-70, -4, -86), (84, 96, 82)), within=(*inner, Tissue.LUNG))
    cv.paint(Tissue.LIVER, cv.ellipsoid((22, -56, -58), (58, 36, 42)), within=(*inner, Tissue.LUNG))
    cv.paint(
        Tissue.SPLEEN,
        cv.ellipsoid((88, 42, -70), (34, 46, 56), rot_z_deg=-30),
        within=(*inner, Tissue.LUNG),
    )
    stomach = cv.ellipsoid((48, -40, -56), (40, 36, 46), rot_z_deg=20)
    cv.paint(Tissue.STOMACH, stomach, within=inner)
    gas = cv.ellipsoid((40, -58, -34), (24, 14, 14))
    cv.paint(Tissue.GAS, gas, within=(Tissue.STOMACH,))
    # psoas muscles
    for s in (-1, 1):
        cv.paint(
            Tissue.MUSCLE,
            cv.zcyl(
                [-100, -170, -230, -290, -340],
                [s * 34, s * 44, s * 54, s * 68, s * 76],
                [44, 42, 34, 22, 8],
                [8, 16, 20, 19, 13],
                [8, 16, 21, 19, 13],
            ),
        )
    # kidneys with their collecting systems (urine: hot on FDG)
    for s, zc in ((-1, -140.0), (1, -128.0)):
        k = cv.ellipsoid((s * 76, 50, zc), (27, 29, 54), rot_z_deg=s * 25)
        cv.paint(Tissue.KIDNEY, k, exclude=(Tissue.MARROW, Tissue.CORTICAL_BONE))
        cv.paint(
            Tissue.RENAL_PELVIS,
            cv.ellipsoid((s * 66, 44, zc - 4), (9, 9, 20)),
            within=(Tissue.KIDNEY,),
        )
    # aorta (blood pool) to the bifurcation, iliac arteries; IVC and iliac veins
    cv.paint(
        Tissue.BLOOD, cv.zcyl([0, -100, -200], [12, 12, 10], [12, 12, 14], [11, 11, 9], [11, 11, 9])
    )
    cv.paint(
        Tissue.BLOOD,
        cv.zcyl([0, -100, -205], [-22, -22, -18], [16, 16, 16], [13, 13, 10], [11, 11, 9]),
    )
    for s in (-1, 1):
        cv.paint(Tissue.BLOOD, cv.segment((s * 8, 14, -200), (s * 46, 8, -262), 6.5))
        cv.paint(Tissue.BLOOD, cv.segment((s * 46, 8, -262), (s * 66, -22, -338), 5.5))
        cv.paint(Tissue.BLOOD, cv.segment((s * 18, 24, -208), (s * 52, 20, -268), 7.0))
        cv.paint(Tissue.BLOOD, cv.segment((s * 52, 20, -268), (s * 64, -8, -338), 6.5))
    # colon: ascending, transverse, descending, sigmoid; small bowel loops in between
    colon = cv.full(
        cv.zcyl(
            [-300, -220, -150, -140],
            [-104, -108, -100, -92],
            [-6, -8, -20, -30],
            [22, 22, 20, 18],
            [22, 22, 20, 18],
        )
    )
    colon |= cv.full(
        cv.xcyl(
            [-100, -40, 0, 40, 100],
            [-40, -68, -72, -68, -30],
            [-140, -150, -160, -150, -110],
            [19, 19, 19, 19, 19],
        )
    )
    colon |= cv.full(
        cv.zcyl(
            [-285, -220, -150, -110],
            [104, 108, 104, 98],
            [10, 8, 4, -20],
            [17, 17, 17, 17],
            [17, 17, 17, 17],
        )
    )
    colon |= cv.full(cv.segment((98, 10, -285), (40, -20, -308), 17.0))
    colon |= cv.full(cv.segment((40, -20, -308), (2, 36, -300), 16.0))
    soft_free = np.isin(cv.labels, [int(Tissue.VISCERAL_FAT)])
    # keep mesenteric fat around the baseline lesions (no bowel within ~12 mm)
    near_lesion = np.zeros_like(soft_free)
    for spec in LESIONS:
        semi = [e * 5.0 + 12.0 for e in spec.extents_cm]
        near_lesion |= cv.full(cv.ellipsoid(spec.center_mm, semi))
    loops = (np.abs(bowel_field[0]) < 0.55) & (np.abs(bowel_field[1]) < 0.85)
    zz = cv.z[:, None, None]
    yy = cv.y[None, :, None]
    bowel_zone = (zz < -105) & (zz > -315) & (yy < 25)
    lab = cv.labels
    lab[loops & bowel_zone & soft_free & ~near_lesion] = Tissue.BOWEL
    lab[colon & soft_free] = Tissue.COLON
    # gas pockets inside bowel and colon
    gas_field = bowel_field[2]
    lab[(lab == Tissue.COLON) & (gas_field > 0.9)] = Tissue.GAS
    lab[(lab == Tissue.BOWEL) & (gas_field > 1.6)] = Tissue.GAS
    # rectum and bladder
    cv.paint(
        Tissue.RECTUM,
        cv.zcyl([-384, -340, -300], [0, 0, 2], [50, 46, 36], [17, 19, 16], [15, 17, 15]),
        exclude=(Tissue.MARROW, Tissue.CORTICAL_BONE),
    )
    cv.paint(Tissue.BLADDER, cv.ellipsoid((0, -32, -344), (40, 34, 30)))


def _shape_in_box(
    cv: _Canvas, shape: _LesionShape
) -> tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray, np.ndarray]:
    """Bounding box (1.4 semi-axes) of a lesion shape on the canvas, with ``dz, r, rmax``.

    The voxels inside the shape are ``r <= rmax``; ``dz`` is the semi-axis-normalised
    cranio-caudal offset (for the uptake gradient). Shared by the painting of the lesions
    and by :func:`render_lesion_masks`, so that both draw exactly the same voxels.
    """
    box = cv._box(
        [c - 1.4 * s for c, s in zip(shape.center_mm, shape.semi_mm)],
        [c + 1.4 * s for c, s in zip(shape.center_mm, shape.semi_mm)],
    )
    assert box is not None
    sl, bx, by, bz = box
    _dx, _dy, dz, r, rmax = shape.normalised(bx, by, bz)
    return sl, dz, r, rmax


def _lesion_shapes(patient_rng: np.random.Generator) -> list[_LesionShape]:
    """The calibrated baseline shapes of :data:`LESIONS`, drawn first from the patient RNG."""
    return [_calibrated_shape(spec, patient_rng) for spec in LESIONS]


def render_lesion_masks(
    states: Sequence[LesionState], seed: int, shift_mm: Sequence[float]
) -> list[np.ndarray]:
    """Fine-grid masks of lesion states drawn at a patient position, without the images.

    The shapes are the seed's calibrated lesion shapes (body coordinates) scaled by each
    state, rendered on the fine 2 mm canvas of a timepoint whose patient shift is
    ``shift_mm``, with the same voxel test as :func:`simulate_images`. Rendering the
    states of an earlier timepoint with a later timepoint's shift gives where the lesion
    *was* in the body, as the later scan sees that place (the former footprint).

    Parameters
    ----------
    states : sequence of LesionState
        States of lesions of :data:`LESIONS` (any timepoint); absent states give an
        empty mask.
    seed : int
        Study seed (the shapes depend on it).
    shift_mm : sequence of float
        Patient position (LPS, mm) of the canvas, as passed to :func:`simulate_images`.

    Returns
    -------
    list of ndarray
        One boolean fine-grid ``(z, y, x)`` mask per state.
    """
    shapes = {
        spec.name: shape
        for spec, shape in zip(LESIONS, _lesion_shapes(np.random.default_rng([seed, 0])))
    }
    cv = _Canvas(shift_mm)
    out = []
    for state in states:
        mask = np.zeros(_FINE_SHAPE, dtype=bool)
        if state.present:
            sl, _dz, r, rmax = _shape_in_box(cv, shapes[state.spec.name].scaled(state.scale))
            mask[sl] = r <= rmax
        out.append(mask)
    return out


def _lesions(
    cv: _Canvas, states: Sequence[LesionState], shapes: Sequence[_LesionShape], texture: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Paint the lesions; return their true SUV and HU override maps and fine masks."""
    suv = np.full(_FINE_SHAPE, np.nan)
    hu = np.full(_FINE_SHAPE, np.nan)
    masks: list[np.ndarray] = []
    x = cv.x[None, None, :]
    y = cv.y[None, :, None]
    z = cv.z[:, None, None]
    for state, base in zip(states, shapes):
        if not state.present:
            masks.append(np.zeros(_FINE_SHAPE, dtype=bool))
            continue
        sl, dz, r, rmax = _shape_in_box(cv, base.scaled(state.scale))
        inside = r <= rmax
        rel = r / rmax
        core = 1.0 - state.core_fraction * np.exp(-((rel / 0.5) ** 2))
        gradient = 1.0 + 0.10 * dz  # cranial part a little hotter
        tex = 1.0 + 0.08 * texture[sl]
        val = state.peak_suv / 1.10 * core * gradient * tex
        full_mask = np.zeros(_FINE_SHAPE, dtype=bool)
        full_mask[sl] = inside
        sub_suv = suv[sl]
        sub_suv[inside] = val[inside]
        sub_hu = hu[sl]
        hu_val = state.hu - 12.0 * state.core_fraction * np.exp(-((rel / 0.5) ** 2)) * 2.5
        sub_hu[inside] = np.broadcast_to(hu_val, inside.shape)[inside]
        cv.labels[full_mask] = int(state.tissue)
        masks.append(full_mask)
    del x, y, z
    return suv, hu, masks


# ---------------------------------------------------------------------------- images
@dataclass(frozen=True)
class PhantomImages:
    """Output of :func:`simulate_images` for one timepoint.

    Attributes
    ----------
    pet_suv : ndarray
        Noisy PET in SUVbw on the PET grid ``PET_SHAPE`` (float64, >= 0).
    ct_hu : ndarray
        CT in HU on the CT grid (float64), shape ``(nz, 2 ny, 2 nx)``.
    fine_labels : ndarray
        Tissue labels on the fine 2 mm grid.
    lesion_fine_masks : list of ndarray
        Boolean masks of each lesion on the fine grid (empty when absent).
    lesion_fraction_pet : list of ndarray
        Fraction of each PET voxel covered by the lesion (block average of the fine mask).
    """

    pet_suv: np.ndarray
    ct_hu: np.ndarray
    fine_labels: np.ndarray
    lesion_fine_masks: list[np.ndarray]
    lesion_fraction_pet: list[np.ndarray]
    true_suv_pet: np.ndarray


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma_vox: float) -> np.ndarray:
    """Zero-mean, unit-SD Gaussian random field with correlation length ``sigma_vox``."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_vox, mode="wrap")
    return np.asarray(f / f.std())


def _block_mean(a: np.ndarray, fz: int, fy: int, fx: int) -> np.ndarray:
    nz, ny, nx = a.shape
    return np.asarray(a.reshape(nz // fz, fz, ny // fy, fy, nx // fx, fx).mean(axis=(1, 3, 5)))


def simulate_images(
    timepoint: str, seed: int, shift_mm: Sequence[float], fat_mm: float
) -> PhantomImages:
    """Simulate the PET (SUVbw) and CT (HU) images of one timepoint.

    Parameters
    ----------
    timepoint : str
        ``"baseline"``, ``"month1"`` or ``"month3"``.
    seed : int
        Study seed. Anatomy texture and lesion shapes depend on the seed only (same
        patient); bowel loops, gas and image noise also on the timepoint.
    shift_mm : sequence of float
        Patient position (LPS, mm) relative to baseline.
    fat_mm : float
        Subcutaneous fat thickness (mm); shrinks as the patient loses weight.

    Returns
    -------
    PhantomImages
    """
    tp_index = {"baseline": 0, "month1": 1, "month3": 2}[timepoint]
    patient_rng = np.random.default_rng([seed, 0])
    tp_rng = np.random.default_rng([seed, 1 + tp_index])
    shapes = _lesion_shapes(patient_rng)
    # patient-level textures, moved with the patient
    shift_vox = [-s / FINE_SPACING_MM for s in (shift_mm[2], shift_mm[1], shift_mm[0])]
    tex_suv = ndimage.shift(
        _smooth_field(patient_rng, _FINE_SHAPE, 2.5), shift_vox, order=1, mode="wrap"
    )
    tex_hu = ndimage.shift(
        _smooth_field(patient_rng, _FINE_SHAPE, 1.5), shift_vox, order=1, mode="wrap"
    )
    bowel = np.stack(
        [_smooth_field(tp_rng, _FINE_SHAPE, 5.0) for _ in range(2)]
        + [_smooth_field(tp_rng, _FINE_SHAPE, 2.0)]
    )

    cv = _Canvas(shift_mm)
    _body_outline(cv, fat_mm)
    _spine_and_pelvis(cv)
    _organs(cv, tp_rng, bowel)
    states = lesion_states(timepoint)
    les_suv, les_hu, masks = _lesions(cv, states, shapes, tex_suv)

    lut_hu = np.array([TISSUE_VALUES[t].hu for t in Tissue])
    lut_hut = np.array([TISSUE_VALUES[t].hu_texture for t in Tissue])
    lut_suv = np.array([TISSUE_VALUES[t].suv for t in Tissue])
    lut_suvt = np.array([TISSUE_VALUES[t].suv_texture for t in Tissue])
    lab = cv.labels
    suv = lut_suv[lab] * (1.0 + lut_suvt[lab] * tex_suv)
    hu = lut_hu[lab] + lut_hut[lab] * tex_hu
    les = ~np.isnan(les_suv)
    suv[les] = les_suv[les]
    hu[les] = les_hu[les]
    np.clip(suv, 0.0, None, out=suv)

    # ---- PET: PSF on the fine grid, 2x2x2 block average to 4 mm, correlated noise
    sigma = PSF_FWHM_MM / (2.0 * math.sqrt(2.0 * math.log(2.0))) / FINE_SPACING_MM
    blurred = ndimage.gaussian_filter(suv, sigma, mode="constant", cval=0.0)
    pet_true = _block_mean(blurred, 2, 2, 2)
    noise = _smooth_field(tp_rng, PET_SHAPE, 0.6)
    sd = 0.105 * np.sqrt(np.clip(pet_true, 0.0, None) * 2.3) + 0.01
    pet = np.clip(pet_true + sd * noise, 0.0, None)
    body_pet = _block_mean((lab != Tissue.AIR).astype(float), 2, 2, 2) > 0
    body_pet = ndimage.binary_dilation(body_pet, iterations=2)
    pet[~body_pet] = 0.0

    # ---- CT: 2 mm in-plane, 4 mm slices (average of two fine slices), low-dose noise
    ct = _block_mean(hu, 2, 1, 1)
    ct_noise = _smooth_field(tp_rng, ct.shape, 0.7)
    body_ct = _block_mean((lab != Tissue.AIR).astype(float), 2, 1, 1) > 0.5
    ct = ct + np.where(body_ct, 16.0, 0.0) * ct_noise
    ct = np.clip(ct, -1024.0, 3071.0)

    fractions = [_block_mean(m.astype(float), 2, 2, 2) for m in masks]
    return PhantomImages(pet, ct, lab, masks, fractions, pet_true)
