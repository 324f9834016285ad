"""Automatic PERCIST blood-pool cylinder of emlesion.anatomy on the bundled sample study.

Expected values come from ``sample_scans/truth.json`` (written by the generator): per
timepoint ``blood_pool_reference`` = a 1 cm diameter x 2 cm cylinder (voxel centres
within 5 mm of its axis, ``|z - zc| <= 10 mm``) centred on the axis of the phantom's
abdominal aorta, and its SUVbw mean on the noisy PET. That is PERCIST's VOI shape, in the
abdominal aorta (the sample is an abdomen-pelvis scan: no lungs, so the pipeline uses the
abdominal fallback too); the two cylinders lie at different levels of the same vessel.

Noise: a 20-35-voxel cylinder mean on the sample's PET (6.5 mm PSF, spatially correlated
noise of SD ~0.2 SUV per voxel) has an SD of about 0.11 SUV. Measured on the 12 cylinders
of seeds 2024 (the sample), 7, 11 and 2025 against the noise-free phantom: truth cylinder
SD 0.113, pipeline cylinder SD 0.092, so the difference of two cylinders at different
levels has SD ~0.146 SUV. The bias of the placement is therefore tested on the noise-free
phantom (regenerated here with the public :func:`emlesion.sample.phantom.simulate_images`),
where noise does not hide it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emlesion.anatomy import Anatomy, ReferenceRegion
from emlesion.io import Volume
from emlesion.sample.phantom import Tissue, simulate_images
from emlesion.study import Study

LABELS = ("baseline", "month1", "month3")


@pytest.fixture(scope="module")
def truth(sample_scans_dir: Path) -> dict[str, Any]:
    return json.loads((sample_scans_dir / "truth.json").read_text())


@pytest.fixture(scope="module")
def timepoints(sample_study: Study) -> dict[str, tuple[Volume, Anatomy]]:
    # SUVbw and segment_anatomy(ct, suv) of each timepoint, as load_study computed them for
    # the session's sample study (issue 18: not loaded and segmented again here)
    out: dict[str, tuple[Volume, Anatomy]] = {}
    for tp in sample_study.timepoints:
        assert tp.anatomy is not None and tp.suv.units == "SUVbw"
        out[tp.label] = (tp.suv, tp.anatomy)
    assert tuple(out) == LABELS
    return out


@pytest.mark.parametrize("name", LABELS)
def test_cylinder_on_the_aortic_axis(
    name: str, truth: dict[str, Any], timepoints: dict[str, tuple[Volume, Anatomy]]
) -> None:
    ref = timepoints[name][1].blood_pool_reference
    assert ref is not None
    assert (ref.radius_mm, ref.length_mm) == (5.0, 20.0)  # PERCIST 1 cm x 2 cm
    assert "abdominal aorta (fallback" in ref.rule  # no lungs in this field of view
    tx, ty, _tz = truth["timepoints"][name]["blood_pool_reference"]["center_mm"]
    # The truth cylinder is centred on the aortic axis; the phantom's axis moves by at most
    # hypot(2, 2) = 2.8 mm over the abdominal aorta (emlesion/sample/phantom.py: zcyl
    # centres (12, 12) -> (10, 14)), so the in-plane centre must be within one PET voxel
    # (4 mm) of the truth's (x, y). The former rule (centroid of a PET/CT component that
    # took in the adjacent liver) sat 6.5-7 mm anterior (y 5.5 vs 12 at baseline).
    assert math.hypot(ref.centre_mm[0] - tx, ref.centre_mm[1] - ty) <= 4.0


@pytest.mark.parametrize("name", LABELS)
def test_suv_mean_within_noise_of_truth(
    name: str, truth: dict[str, Any], timepoints: dict[str, tuple[Volume, Anatomy]]
) -> None:
    suv, anatomy = timepoints[name]
    assert anatomy.blood_pool_reference is not None
    stats = anatomy.blood_pool_reference.reference_stats(suv)
    bp = truth["timepoints"][name]["blood_pool_reference"]
    # Independent check of the truth number: the same cylinder, recomputed here on the
    # decoded SUV (plain numpy through ReferenceRegion.mask, which the truth definition
    # mirrors: centres within 5 mm in-plane and 10 mm in z).
    truth_voi = ReferenceRegion("blood_pool", tuple(bp["center_mm"]), 5.0, 20.0)
    m = truth_voi.mask(suv.grid)
    assert int(m.sum()) == bp["n_voxels"]
    assert float(np.asarray(suv.array, dtype=np.float64)[m].mean()) == pytest.approx(
        bp["suv_mean"], abs=2e-3)
    # 20-30 voxels in a 1 cm x 2 cm cylinder on 4 mm voxels
    assert 15 <= stats.n_voxels <= 35
    # Tolerance 0.30 SUV = 2 x 0.146, the SD of the difference of two such cylinder means
    # (module docstring): a noise-only difference exceeds it 5 % of the time. The former
    # rule was 0.37 SUV too high at baseline (1.957 vs 1.591).
    assert stats.mean == pytest.approx(bp["suv_mean"], abs=0.30)


def test_cylinder_inside_the_lumen_on_the_noise_free_phantom(
    truth: dict[str, Any], timepoints: dict[str, tuple[Volume, Anatomy]]
) -> None:
    tp = truth["timepoints"]["baseline"]
    # fat 22 mm at baseline (the generator's schedule); it shapes the body outline only
    images = simulate_images("baseline", truth["seed"], tp["patient_shift_mm"], 22.0)
    suv, anatomy = timepoints["baseline"]
    # the regenerated noisy PET is the decoded sample PET (int16 storage: ~1e-3 SUV)
    assert np.abs(images.pet_suv - np.asarray(suv.array)).max() < 2e-3
    ref = anatomy.blood_pool_reference
    assert ref is not None
    m = ref.mask(suv.grid)
    # blood fraction of each 4 mm voxel = block mean of the 2 mm tissue labels
    fine = (images.fine_labels == Tissue.BLOOD).astype(np.float64)
    nz, ny, nx = fine.shape
    blood = fine.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2).mean(axis=(1, 3, 5))
    # every voxel of the cylinder is fully inside the simulated lumen (former rule: 0.79)
    assert float(blood[m].min()) >= 0.95
    true_pet = np.asarray(images.true_suv_pet, dtype=np.float64)
    bp = tp["blood_pool_reference"]
    at_truth = float(true_pet[ReferenceRegion("blood_pool", tuple(bp["center_mm"]), 5.0,
                                              20.0).mask(suv.grid)].mean())
    # Noise-free, the two cylinders read the same blood within the phantom's blood texture
    # (SUV 1.70 x +-3 %, TISSUE_VALUES[BLOOD] in emlesion/sample/phantom.py): 0.06 SUV.
    # Measured: 1.732 vs 1.743; the former rule read 1.840 (+0.097, liver spill-in).
    assert float(true_pet[m].mean()) == pytest.approx(at_truth, abs=0.06)
