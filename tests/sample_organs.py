"""An organ map of the sample study derived from the generator's own tissue labels.

The phantom of :mod:`emlesion.sample.phantom` is painted tissue by tissue on a 2 mm grid;
this helper names its tissues as TotalSegmentator would (v2 class numbers) and brings them
onto the PET grid (a PET voxel takes the organ that covers at least half of it). Where one
tissue holds several organs, the generator's own geometry separates them: blood above the
aortic bifurcation (body z -200 mm) is the aorta left of the midline and the inferior vena
cava right of it, below it the iliac vessels; the psoas is the muscle inside the
generator's psoas tubes; bone is vertebra above the sacrum (body z -222 mm) and within
45 mm of the midline, sacrum below it within 50 mm, hip bone elsewhere.
"""

from __future__ import annotations

import numpy as np

from emlesion.sample.phantom import Tissue, _Canvas, simulate_images
from emlesion.sample.schedule import schedule_for
from emlesion.sample.study import _FAT_MM, DEFAULT_SEED

#: TotalSegmentator v2 class numbers used (``totalsegmentator/map_to_binary.py``, "total").
TS_V2 = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 5, "stomach": 6,
         "small_bowel": 18, "colon": 20, "urinary_bladder": 21, "sacrum": 25,
         "vertebrae_L3": 29, "aorta": 52, "inferior_vena_cava": 63, "iliac_artery_left": 65,
         "iliac_artery_right": 66, "hip_left": 77, "hip_right": 78, "iliopsoas_left": 88,
         "iliopsoas_right": 89}


def sample_organ_map(timepoint: str, seed: int = DEFAULT_SEED) -> np.ndarray:
    """TotalSegmentator-v2-numbered organ labels of a sample timepoint on its PET grid."""
    shift = schedule_for(timepoint).patient_shift_mm
    images = simulate_images(timepoint, seed, shift, _FAT_MM[timepoint])
    lab = images.fine_labels
    cv = _Canvas(shift)
    x = cv.x[None, None, :]
    z = cv.z[:, None, None]
    left = np.broadcast_to(x > 0, lab.shape)  # body +x = patient left (LPS)
    organs: dict[str, np.ndarray] = {}
    organs["liver"] = lab == Tissue.LIVER
    organs["spleen"] = lab == Tissue.SPLEEN
    organs["stomach"] = lab == Tissue.STOMACH
    kidney = np.isin(lab, [Tissue.KIDNEY, Tissue.RENAL_PELVIS])
    organs["kidney_left"], organs["kidney_right"] = kidney & left, kidney & ~left
    organs["small_bowel"] = lab == Tissue.BOWEL
    organs["colon"] = np.isin(lab, [Tissue.COLON, Tissue.RECTUM])
    organs["urinary_bladder"] = lab == Tissue.BLADDER
    blood = lab == Tissue.BLOOD
    high = np.broadcast_to(z > -200.0, lab.shape)
    organs["aorta"] = blood & high & left
    organs["inferior_vena_cava"] = blood & high & ~left
    organs["iliac_artery_left"] = blood & ~high & left
    organs["iliac_artery_right"] = blood & ~high & ~left
    psoas = np.zeros(lab.shape, bool)
    for s in (-1, 1):  # the generator's psoas tubes (phantom._organs)
        region = cv.zcyl([-100, -170, -230, -290, -340],
                         [s * 34, s * 44, s * 54, s * 68, s * 76], [44, 42, 34, 22, 8],
                         [8, 16, 20, 19, 13], [8, 16, 21, 19, 13])
        if region is not None:
            sl, m = region
            psoas[sl] |= np.broadcast_to(m, psoas[sl].shape)
    psoas &= lab == Tissue.MUSCLE
    organs["iliopsoas_left"], organs["iliopsoas_right"] = psoas & left, psoas & ~left
    bone = np.isin(lab, [Tissue.MARROW, Tissue.CORTICAL_BONE, Tissue.DISC])
    above_sacrum = np.broadcast_to(z >= -222.0, lab.shape)
    ax = np.broadcast_to(np.abs(x), lab.shape)
    organs["vertebrae_L3"] = bone & above_sacrum & (ax < 45.0)
    organs["sacrum"] = bone & ~above_sacrum & (ax < 50.0)
    hip = bone & ~organs["vertebrae_L3"] & ~organs["sacrum"] & ~above_sacrum
    organs["hip_left"], organs["hip_right"] = hip & left, hip & ~left
    nz, ny, nx = lab.shape
    out_shape = (nz // 2, ny // 2, nx // 2)
    best = np.zeros(out_shape)
    out = np.zeros(out_shape, np.uint8)
    for name, fine in organs.items():
        frac = fine.reshape(out_shape[0], 2, out_shape[1], 2, out_shape[2], 2).mean(axis=(1, 3, 5))
        take = (frac >= 0.5) & (frac > best)
        out[take] = TS_V2[name]
        best = np.maximum(best, np.where(take, frac, 0.0))
    return out
