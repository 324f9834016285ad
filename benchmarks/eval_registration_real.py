"""Registration on real anatomy: a real CT against a copy of itself moved by a known rigid
transform, for the body-cropped, fixed-step registration of issue 18 (whose constants were
checked on the generator seeds only).

The real scans are the TotalSegmentator trunk CT (Siemens Biograph mCT, 3 mm) and the
STS_001 GE CT of the thigh (``../shared/data``). The moving CT is the fixed one resampled
through a known rotation + translation (linear interpolation, Gaussian noise of 10 HU, the
noise of a low-dose PET/CT CT), so the truth displacement of every point is known. The
error is measured at body voxels (every 4th in each axis) as |recovered - true| displacement.
Acceptance follows issue 18: the patient shift at the lesions within 0.5 mm.

Usage::

    python benchmarks/eval_registration_real.py [--data ../shared/data] [--transform affine]
        [--seed N] [--affine-sample-factor K]

Results (2026-12-02, idle 2-core machine; registration with the defaults of
``emlesion.track.register_ct``)::

    case (rotation about z, shift mm)        807c2e8 median / max, time   1aad2ef median / max, time
    trunk   0 deg (10.3, -7.1, 15.6)         0.70 / 0.73 mm, 1.2 s        0.56 / 0.63 mm, 6.8 s
    trunk   3 deg (-12.4, 5.2, -22.8)        0.58 / 0.83 mm, 1.3 s        0.50 / 0.52 mm, 3.3 s
    STS_001 0 deg                            0.17 / 0.36 mm, 0.7 s        0.18 / 0.29 mm, 1.5 s
    STS_001 3 deg                            0.69 / 1.16 mm, 0.6 s        0.21 / 0.39 mm, 1.5 s

    (807c2e8: body-cropped working CT, fixed-step descent at 8 then 4 mm; 1aad2ef: line search.)

Second pass of issue 18 (one 4 mm descent level, 10 000 samples, 0.005 mm end step, 5 000
search draws; 2026-12-02, the two commits back to back on the loaded machine; CPU time of
``register_ct`` with one ITK thread, wall time of this script with SimpleITK's default
threads at load average 3.4-3.6)::

    case                 HEAD median / max, CPU, wall     807c2e8 median / max, CPU, wall
    trunk   0 deg        0.67 / 0.71 mm, 1.05 s, 1.5 s     0.70 / 0.73 mm, 2.00 s, 3.8 s
    trunk   3 deg        0.39 / 0.60 mm, 1.13 s, 2.1 s     0.58 / 0.83 mm, 1.99 s, 3.6 s
    STS_001 0 deg        0.08 / 0.18 mm, 0.76 s, 2.1 s     0.17 / 0.36 mm, 0.98 s, 2.7 s
    STS_001 3 deg        0.38 / 0.41 mm, 0.77 s, 2.2 s     0.69 / 1.16 mm, 0.98 s, 2.4 s

    At 4 mm the errors move by 0.1-0.3 mm with the seed of the random metric sampling, for
    both commits (``seed=7`` / ``seed=1``, HEAD against 807c2e8, median / max mm)::

        trunk   0 deg    0.79 / 0.96, 0.77 / 0.89    0.76 / 0.93, 0.70 / 0.78
        trunk   3 deg    0.56 / 0.67, 0.52 / 0.61    0.49 / 0.53, 0.63 / 0.72
        STS_001 0 deg    0.16 / 0.26, 0.20 / 0.32    0.20 / 0.48, 0.13 / 0.25
        STS_001 3 deg    0.64 / 0.71, 0.54 / 0.61    0.55 / 0.74, 0.58 / 0.76

    so the accuracy is that of 807c2e8 within the sampling spread (better at the default
    seed), at about half the CPU time on the trunk and 0.7 times on the smaller thigh CT.
    The trunk error of about 0.7 mm at 0 degrees is a bias of the 4 mm working grid:
    ``working_spacing_mm=3.0`` gives 0.12 / 0.22 mm there (0.39 / 0.79, 0.07 / 0.08,
    0.12 / 0.18 mm on the other three) at 1.6 s / 1.0 s CPU, about the cost of 807c2e8 at
    4 mm; not the default, since issue 18 asks for time.
    ``--transform affine`` (the refinement after the rigid result; the truth is rigid, so
    any scale or shear found is error), median / max mm at seeds 20240917 and 7, against
    807c2e8 (one ITK thread)::

        case             AFFINE_SAMPLE_FACTOR 1      2 (default)           807c2e8
        trunk   0 deg    1.00/2.99, 1.18/4.06        1.02/3.00, 1.11/3.63   0.97/3.22, 1.11/3.70
        trunk   3 deg    1.57/4.74, 1.56/5.04        0.92/2.75, 1.39/4.16   1.50/4.51, 0.70/1.89
        STS_001 0 deg    1.18/4.61, 1.27/5.13        0.52/2.02, 1.31/5.31   0.40/1.44, 0.97/3.88
        STS_001 3 deg    1.26/4.05, 13.91/49.00      1.37/4.69, 1.76/6.12   1.28/3.63, 1.20/3.89

    With the rigid sample count the refinement diverged once (49 mm, and the quality check
    passed it); factors 3 and 4 give the same STS_001 results as 2 (the thigh CT has fewer
    body voxels than the samples asked for) and no better trunk results. The affine mode is
    not the default and stays 1-6 mm off a rigid truth in both versions: use it only when
    the patient's shape really changed.
    Plausibility of the solved transform (``TransformPlausibility``, part of the quality
    check since 2026-12-03; each run prints rotation, principal scales, shear and the shift of
    the fixed body centre with the true shift there). Every correct solution passes, far
    inside the bounds (scales 0.85-1.15, shear 10 deg, rotation 15 deg; the shift is reported,
    not judged)::

        rigid, seeds 20240917 / 7 / 1 (12 runs): scales 1.000, shear 0.0 deg, rotation 0.0-0.1
            deg (truth 0) and 2.9-3.0 deg (truth 3), shift 20.0-20.7 mm (true 20.0) and
            26.8-27.0 mm (true 26.4); all passed
        affine, factor 2, same seeds (12 runs): scales 0.963-1.006, shear 0.1-1.7 deg,
            rotation 0.0-0.3 deg and 3.0-3.2 deg, shift 20.1-20.7 mm and 26.4-26.8 mm; all passed
        affine, factor 1 (--affine-sample-factor 1), seed 7: the other 3 runs (scales
            0.975-1.003, shear <= 1.1 deg) passed; the diverged STS_001 3 deg run (median 13.91,
            max 49.00 mm) had NCC 0.143 -> 0.850, which passed the NCC rules, and rotation
            4.9 deg, scales 1.047/0.993/0.689, shear 20.3 deg, shift 24.5 mm (true 26.4): it now
            FAILS with "implausible: scale 0.689 outside 0.85-1.15, shear 20.3 deg above 10 deg"
        affine, factor 1, seeds 20240917, 1, 2, 3, 4, 5 (24 runs): no other divergence; scales
            0.961-1.006, shear <= 1.7 deg; all passed

    The errors and medians above are unchanged (the check changes no transform). The bounds
    cannot catch a plausible but wrong transform (a rigid one locked one vertebra off).
    The DICOM copy of the trunk CT is a 40 mm slab (20 x 2 mm slices): a 15.6 mm shift
    along z leaves too little overlap (errors 4.9-5.5 mm, one of the two not flagged by
    the quality check), so the full NIfTI CT is used here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import emlesion.track.registration as registration  # noqa: E402
from emlesion.io import Volume, load_ct  # noqa: E402
from emlesion.track import register_ct  # noqa: E402

#: Known motions (rotation about z in degrees, translation LPS mm): a typical repositioning
#: between PET/CT sessions (a few cm, a few degrees), within the default search range.
MOTIONS: tuple[tuple[float, tuple[float, float, float]], ...] = (
    (0.0, (10.3, -7.1, 15.6)),
    (3.0, (-12.4, 5.2, -22.8)),
)
NOISE_HU = 10.0


def moved_copy(ct: Volume, angle_deg: float, shift_mm: tuple[float, float, float],
               seed: int = 0) -> tuple[Volume, np.ndarray]:
    """``ct`` moved by the rigid map T (rotation about the image centre, then shift): the
    moving image holds at T(p) what ``ct`` holds at p. Returns it and T (4 x 4)."""
    img = ct.to_sitk()
    centre = img.TransformContinuousIndexToPhysicalPoint(
        [(s - 1) / 2.0 for s in img.GetSize()])
    t = sitk.Euler3DTransform(centre, 0.0, 0.0, np.deg2rad(angle_deg), shift_mm)
    m = np.eye(4)
    m[:3, :3] = np.asarray(t.GetMatrix()).reshape(3, 3)
    c = np.asarray(centre)
    m[:3, 3] = m[:3, :3] @ (-c) + c + np.asarray(shift_mm)
    out = sitk.Resample(img, img, t.GetInverse(), sitk.sitkLinear, -1000.0, sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(out)
    arr += np.random.default_rng(seed).normal(0.0, NOISE_HU, arr.shape).astype(np.float32)
    noisy = sitk.GetImageFromArray(arr)
    noisy.CopyInformation(out)
    return Volume.from_sitk(noisy, identity=ct.identity), m


def body_points(ct: Volume, step: int = 4) -> np.ndarray:
    """LPS points (mm) of every ``step``-th body voxel (CT > -500 HU)."""
    idx = np.argwhere(np.asarray(ct.array)[::step, ::step, ::step] > -500.0) * step
    return ct.grid.index_to_lps(idx.astype(float))


def evaluate(name: str, ct: Volume, **register_kwargs: object) -> list[str]:
    rows = []
    pts = body_points(ct)
    for k, (angle, shift) in enumerate(MOTIONS):
        moving, m = moved_copy(ct, angle, shift, seed=k)
        t0 = time.perf_counter()
        reg = register_ct(ct, moving, **register_kwargs)  # type: ignore[arg-type]
        dt = time.perf_counter() - t0
        true = pts @ m[:3, :3].T + m[:3, 3]
        got = pts @ reg.matrix_array.T + np.asarray(reg.offset_mm)
        err = np.linalg.norm(got - true, axis=1)
        q = reg.quality
        assert q is not None and q.plausibility is not None
        rows.append(f"{name:<22} rot {angle:3.1f} deg shift {shift}: error at "
                    f"{len(pts)} body points median {np.median(err):.2f} mm, max "
                    f"{err.max():.2f} mm; quality {'passed' if q.passed else 'FAILED'}"
                    f"; {dt:.1f} s")
        c = np.asarray(q.plausibility.centre_mm)
        true_shift = np.linalg.norm(m[:3, :3] @ c + m[:3, 3] - c)
        rows.append(f"    NCC {q.ncc_before:.3f} -> {q.ncc_after:.3f}, overlap "
                    f"{q.overlap_fraction:.2f}; {q.plausibility!r} (true {true_shift:.1f} mm)")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--transform", choices=("rigid", "affine"), default="rigid")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the metric sampling (default: register_ct's)")
    ap.add_argument("--affine-sample-factor", type=int, default=None,
                    help="override AFFINE_SAMPLE_FACTOR (1 reproduces the diverged affine run "
                         "of STS_001 3 deg at --seed 7)")
    args = ap.parse_args()
    if args.affine_sample_factor is not None:
        registration.AFFINE_SAMPLE_FACTOR = args.affine_sample_factor
    kwargs: dict[str, object] = {"transform": args.transform}
    if args.seed is not None:
        kwargs["seed"] = args.seed
    data = Path(args.data)
    cases = {
        "TotalSegmentator trunk": data / "totalsegmentator-example-ct" / "example_ct.nii.gz",
        "STS_001 thigh (GE)": data / "sts-001-ge-pet" / "cropped" / "CT",
    }
    for name, path in cases.items():
        # the NIfTI through SimpleITK (LPS), so that older emlesion versions compare too
        ct = (Volume.from_sitk(sitk.ReadImage(str(path), sitk.sitkFloat32))
              if path.suffix == ".gz" else load_ct(path))
        for row in evaluate(name, ct, **kwargs):
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
