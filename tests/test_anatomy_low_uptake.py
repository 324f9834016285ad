"""Low-uptake excluded structures (bowel, iliac vessels): no spill-over halo, one-voxel rim.

A small synthetic PET built here: a 12 mm radius sphere of SUV 5 (the "node", analytic
volume 4/3 x pi x 12^3 = 7.24 mL) lying against a 14 mm radius tube of SUV 2.2 (the
"sigmoid colon") in a background of SUV 0.5, rendered on a 1 mm grid, blurred with a
Gaussian of FWHM 6.5 mm and averaged to 4 mm voxels (no noise). The colon's mask is the
tube itself (voxel centres inside it), supplied as the :attr:`AnatomyLabel.BOWEL` mask, as a
user organ label map would.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy import ndimage as ndi

from emlesion.anatomy import AnatomyLabel
from emlesion.anatomy.model import Anatomy, voxel_centres_mm
from emlesion.io.geometry import Grid
from emlesion.io.volume import SeriesIdentity, Volume
from emlesion.segment import segment_lesions
from emlesion.segment.lesions import LOW_UPTAKE_LABELS

NODE_CENTRE = (0.0, 0.0, 0.0)
NODE_RADIUS_MM = 12.0
TUBE_X_MM = 26.0  # tube axis along z at x = 26 mm: 12 + 14 = 26, the two touch
TUBE_RADIUS_MM = 14.0


def _render(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, z = (np.broadcast_to(a, grid.shape) for a in voxel_centres_mm(grid))
    node = x**2 + y**2 + z**2 <= NODE_RADIUS_MM**2
    tube = ((x - TUBE_X_MM) ** 2 + y**2 <= TUBE_RADIUS_MM**2) & (np.abs(z) <= 60.0)
    body = x**2 + y**2 <= 90.0**2
    return node, tube & ~node, body


@functools.lru_cache(maxsize=1)
def _phantom() -> tuple[Volume, np.ndarray, np.ndarray, np.ndarray]:
    fine = Grid((160, 200, 200), (-99.5, -99.5, -79.5), (1.0, 1.0, 1.0))
    node, tube, body = _render(fine)
    act = np.where(body, 0.5, 0.0)
    act[tube] = 2.2
    act[node] = 5.0
    act = ndi.gaussian_filter(act, sigma=6.5 / 2.3548)  # FWHM 6.5 mm on the 1 mm grid
    act = act.reshape(40, 4, 50, 4, 50, 4).mean(axis=(1, 3, 5))
    grid = Grid((40, 50, 50), (-98.0, -98.0, -78.0), (4.0, 4.0, 4.0))
    suv = Volume(act.astype(np.float32), grid,
                 SeriesIdentity(modality="PT", series_instance_uid="1.2.3.low"), units="SUVbw")
    node_p, tube_p, body_p = _render(grid)
    return suv, node_p, tube_p, body_p


def _volume_of_node(masks: dict[AnatomyLabel, np.ndarray]) -> tuple[float, np.ndarray]:
    suv, node, _tube, _body = _phantom()
    seg = segment_lesions(suv, anatomy=Anatomy(suv.grid, masks), seed_method="suv2.5")
    lab = np.asarray(seg.labels.array)
    hit = [int(v) for v in np.unique(lab[node]) if v]
    assert len(hit) <= 1
    m = lab == hit[0] if hit else np.zeros(lab.shape, bool)
    return float(m.sum() * suv.grid.voxel_volume_ml), m


def test_bowel_and_iliac_vessels_are_low_uptake_labels() -> None:
    assert {AnatomyLabel.BOWEL, AnatomyLabel.ILIAC_VESSELS} <= LOW_UPTAKE_LABELS
    # codes are stable: ILIAC_VESSELS was appended after BOWEL
    assert AnatomyLabel.ILIAC_VESSELS.code == AnatomyLabel.BOWEL.code + 1


def test_node_against_colon_leaks_without_a_bowel_mask() -> None:
    _suv, node, tube, body = _phantom()
    vol, m = _volume_of_node({AnatomyLabel.BODY: body})
    # 41 % of the blurred node max (about 5.0 -> 2.0) is below the colon's 2.2: the contour
    # runs along the 120 mm tube, far beyond the 7.24 mL node
    assert vol > 3 * 7.24
    assert (m & tube).sum() > (m & node).sum()


def test_node_against_colon_is_kept_with_a_bowel_mask() -> None:
    suv, node, tube, body = _phantom()
    vol, m = _volume_of_node({AnatomyLabel.BODY: body, AnatomyLabel.BOWEL: tube})
    # the node is found (not dropped as spill-over: no halo around the bowel) ...
    assert m.any()
    a = np.asarray(suv.array)
    p = np.unravel_index(int(np.argmax(np.where(m, a, -np.inf))), a.shape)
    assert not tube[p]  # its SUVmax voxel is outside the bowel
    # ... its contour does not run along the colon: at most the one-voxel rim of bowel
    # voxels touching the node (26-neighbourhood dilation of the node part)
    outside = m & ~tube
    rim = ndi.binary_dilation(outside, np.ones((3, 3, 3), bool)) & tube
    assert not (m & tube & ~rim).any()
    # and outside the bowel it is exactly the node as voxelised on the PET grid (voxel
    # centres inside the 12 mm sphere: 136 voxels = 8.70 mL, counted here independently);
    # the rim adds at most the bowel voxels touching it
    assert np.array_equal(outside, node)
    node_ml = float(node.sum()) * 0.064
    assert node_ml == pytest.approx(8.704)
    assert node_ml <= vol <= node_ml + float(rim.sum()) * 0.064
    assert float((m & tube).sum()) < 0.1 * float(node.sum())  # rim below 10 % of the node
