"""A timepoint without CT: the brain found on the PET is excluded from lesion segmentation.

Small synthetic SUV images (4 mm voxels, no blur, no noise) go through the study pipeline of
one timepoint (``emlesion.study.build._process``, the code behind ``load_timepoint`` and
``load_study``); ``compute_suv`` is replaced by the identity because the synthetic image is
already an SUV image (it has no DICOM header). Geometry, in LPS mm: a body cylinder of
radius 84 mm (SUV 1) along the whole scan, z 0..156 mm (40 slices), so that the top of the
body is the top of the scan.

* *Head case*: a brain ellipsoid of SUV 8 on the body axis, centre z 110 mm, semi-axes
  60 x 70 x 42 mm (4/3 pi 60 70 42 = 739 mL, inside the 150-2500 mL of the PET-only brain
  rule), reaching 152 mm, 4 mm below the top; a lesion sphere of SUV 6, radius 12 mm, at
  z 20 mm, 34 mm below the brain (beyond the 10 mm exclusion halo).
* *Abdomen case*: the same body and lesion, and instead of the brain a lateral hot organ
  (SUV 8, semi-axes 24 x 30 x 60 mm = 181 mL, centre 60 mm to the patient's right of the
  axis, reaching the top): the shape of the hot right kidney that the PET-only brain rule
  took for a brain on the bundled abdomen-pelvis sample (month 1 PET: 199 mL, x -100..-46
  mm) before it required a midline organ. It is not a brain, so nothing is excluded.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pytest

from emlesion.anatomy import AnatomyLabel
from emlesion.io import Volume
from emlesion.io.geometry import Grid
from emlesion.study import Timepoint
from emlesion.study import build as study_build
from emlesion.suv import Normalization, SUVFactors, SUVImage

GRID = Grid((40, 50, 50), (-98.0, -98.0, 0.0), (4.0, 4.0, 4.0))
LESION_CENTRE = (0.0, 0.0, 20.0)
LESION_RADIUS_MM = 12.0


def _lps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k, j, i = np.indices(GRID.shape)
    ox, oy, oz = GRID.origin_mm
    return ox + 4.0 * i, oy + 4.0 * j, oz + 4.0 * k


def _ellipsoid(centre: tuple[float, float, float],
               axes: tuple[float, float, float]) -> np.ndarray:
    x, y, z = _lps()
    return (((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2
            + ((z - centre[2]) / axes[2]) ** 2) <= 1.0


def _phantom(organ: np.ndarray) -> tuple[Volume, np.ndarray]:
    x, y, _ = _lps()
    img = np.where(x ** 2 + y ** 2 <= 84.0 ** 2, 1.0, 0.0).astype(np.float32)
    img[organ] = 8.0
    lesion = _ellipsoid(LESION_CENTRE, (LESION_RADIUS_MM,) * 3)
    img[lesion] = 6.0
    return Volume(img, GRID, units="SUVbw"), lesion


def _run(monkeypatch: pytest.MonkeyPatch, suv: Volume) -> tuple[Timepoint, list[Any]]:
    def already_suv(pet: Volume, normalization: object) -> SUVImage:
        # the phantom is already SUVbw: factor 1 on every slice
        return SUVImage(pet, SUVFactors(Normalization.BW, "SUVbw", (1.0,) * pet.shape[0],
                                        "synthetic: already SUVbw", "GML", "NONE"))

    monkeypatch.setattr(study_build, "compute_suv_image", already_suv)
    images = study_build._Images("pet_only", suv, None, "synthetic", ())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tp = study_build._process(images, mask=None, method="41%max", sul_normalization=None,
                                  progress=None)
    return tp, list(caught)


def _step(tp: Timepoint, operation: str) -> Any:
    return next(s for s in tp.provenance if s.operation == operation)


@pytest.fixture(scope="module")
def head() -> tuple[Volume, np.ndarray, np.ndarray]:
    brain = _ellipsoid((0.0, 0.0, 110.0), (60.0, 70.0, 42.0))
    suv, lesion = _phantom(brain)
    return suv, lesion, brain


def test_brain_excluded_without_ct(monkeypatch: pytest.MonkeyPatch,
                                   head: tuple[Volume, np.ndarray, np.ndarray]) -> None:
    suv, lesion, brain = head
    tp, caught = _run(monkeypatch, suv)
    labels = np.asarray(tp.lesions.array)
    # only the lesion: without the exclusion the SUV-8 brain is a second, 739 mL "lesion"
    assert tp.lesions.labels == (1,)
    assert not (labels[brain] > 0).any()
    # 41 % of SUVmax 6 = 2.46 > body 1: the lesion is exactly its sphere voxels, counted here
    assert np.array_equal(labels > 0, lesion)
    assert float(tp.measurements.rows[0].mtv_ml) == pytest.approx(lesion.sum() * 0.064)
    # the PET-only anatomy is kept on the timepoint (no CT), with the brain
    assert tp.ct is None and tp.anatomy is not None
    assert tp.anatomy.has(AnatomyLabel.BRAIN)
    assert tp.liver is None and tp.regions == {}
    # provenance: the study decision, with its numbers, and the segmentation's exclusion step
    step = _step(tp, "emlesion.study.pet_only_brain")
    assert "excluded from lesion segmentation" in (step.rule or "")
    # the recorded volume is that of the brain mask used (its voxels x 0.064 mL), and that
    # mask covers the whole simulated brain (the PET-only rule thresholds a smoothed PET, so
    # it reaches a few mm beyond the sharp SUV-8 edge; its accuracy is tested in anatomy)
    used = tp.anatomy.mask(AnatomyLabel.BRAIN)
    assert step.inputs["brain_volume_ml"] == pytest.approx(used.sum() * 0.064)
    assert used[brain].all()
    # symmetric about the axis: the anatomy rule accepted it as a midline organ
    assert "straddling the body midline" in step.inputs["brain_rule"]
    exclusion = next(s for s in tp.lesions.provenance
                     if s.operation == "emlesion.segment.exclusion")
    assert "brain" in exclusion.inputs["excluded"]
    # the user is told that only the brain could be excluded
    assert any("only the brain" in str(w.message) for w in caught)
    assert any("only the brain" in m for m in step.warnings)


def test_lateral_hot_organ_is_not_taken_for_a_brain(monkeypatch: pytest.MonkeyPatch) -> None:
    kidney = _ellipsoid((-60.0, 0.0, 100.0), (24.0, 30.0, 60.0))
    suv, lesion = _phantom(kidney)
    tp, _ = _run(monkeypatch, suv)
    step = _step(tp, "emlesion.study.pet_only_brain")
    assert "no brain found" in (step.rule or "")
    # the anatomy rule says why: the organ centre is 60 mm to the right (LPS -x) of the body
    # axis (the smoothed mask is measured: 58-62 mm) and it lies wholly right of it
    m = re.search(r"not a midline organ: centroid (\d+) mm right of the body centre",
                  step.inputs["brain_rule"])
    assert m is not None and abs(int(m.group(1)) - 60) <= 4
    assert "only 0% of it left of the body centre" in step.inputs["brain_rule"]
    assert tp.anatomy is None
    # nothing excluded: the SUV-8 organ is segmented as a lesion, beside the real one
    labels = np.asarray(tp.lesions.array)
    assert len(tp.lesions.labels) == 2
    assert (labels[kidney] > 0).all() and (labels[lesion] > 0).all()
