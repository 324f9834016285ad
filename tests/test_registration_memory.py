"""The registration quality figure reads only live image memory.

Regression: ``_ncc`` read the FOV mask through ``sitk.GetArrayViewFromImage`` of a temporary
resampled image, i.e. freed memory. With ``MALLOC_TRIM_THRESHOLD_`` set (Dask's LocalCluster
sets it, with OMP/MKL/OPENBLAS_NUM_THREADS=1, in the environment of the process that starts
it, so in the pytest process after tests/test_batch.py, and so in every subprocess started
later, e.g. the notebook kernels), the mask read as all zeros: NCC nan, overlap 0, every
registration "failed its quality check" and every follow-up site was unreliable (the
walkthrough's month-3 calls all NE in the full CI run, while the notebook alone gave CMR).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
import numpy as np
import SimpleITK as sitk
from emlesion.track.registration import _ncc

z, y, x = np.mgrid[:80, :96, :96]
arr = np.where((x - 48) ** 2 + (y - 48) ** 2 < 40 ** 2, 40.0, -1000.0).astype(np.float32)
arr += (z % 7) * 10
img = sitk.GetImageFromArray(arr)
img.SetSpacing((4.0, 4.0, 4.0))
ncc, overlap = _ncc(img, img, sitk.TranslationTransform(3, (4.0, 0.0, 0.0)))
print(repr(ncc), repr(overlap))
"""


def _run(extra_env: dict[str, str]) -> tuple[float, float]:
    env = {**os.environ, **extra_env,
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, check=True, timeout=300).stdout.split()
    return float(out[0]), float(out[1])


def test_registration_quality_is_the_same_with_dask_malloc_settings() -> None:
    # a 96 x 96 x 80 image (> glibc's 128 KiB mmap threshold) with a disc of body (x 8..88
    # voxels), compared with itself moved by one 4 mm voxel: the disc stays inside the field
    # of view (overlap 1.0, hand-computed) and the NCC is a finite number
    plain = _run({})
    dask_like = _run({"MALLOC_TRIM_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1",
                      "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    assert plain[1] == 1.0
    assert -1.0 <= plain[0] <= 1.0
    assert dask_like == plain
