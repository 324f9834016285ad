"""CT registration and registration-based tracking on a synthetic torso phantom.

The phantom is an analytic function of LPS position (body ellipse with a fat rim,
spine with vertebrae every 30 mm, liver- and kidney-like blobs, a gas-filled bowel
loop), so the follow-up CT can be *rendered* after a known patient motion instead of
being interpolated: a baseline point ``p`` is at ``q = R p + t`` in the follow-up, and
the follow-up voxel at ``q`` gets the baseline phantom value at ``R^-1 (q - t)``.
The fixed-to-moving transform that :func:`register_ct` must recover is therefore
exactly ``p -> R p + t`` (ITK convention), and the expected lesion positions below
are that formula evaluated in plain numpy.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from emlesion.errors import GeometryError, GeometryWarning
from emlesion.io.geometry import Grid
from emlesion.io.labelmap import LabelMap
from emlesion.io.volume import Volume
from emlesion.track import (
    Registration,
    TrackState,
    TransformType,
    map_points,
    register_ct,
    resample_labels,
    resample_volume,
    track_lesions,
)

# Known patient motion of the brief: 8 mm x, -5 mm y, 12 mm z, 3 degrees about z.
ANGLE_DEG = 3.0
SHIFT_MM = np.array([8.0, -5.0, 12.0])
# Lesion sites (LPS mm): right retroperitoneal (patient right = -x) and left pelvic wall.
LESIONS_MM = np.array([[-45.0, 20.0, 10.0], [60.0, -10.0, -60.0]])


def rot_z(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0, 0, 1]])


def _soft(d: np.ndarray) -> np.ndarray:
    """Smooth inside indicator of a signed distance (about 1 mm edge)."""
    return 1.0 / (1.0 + np.exp(np.clip(d, -50, 50)))


def phantom_hu(p: np.ndarray) -> np.ndarray:
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    rb = np.sqrt((x / 110) ** 2 + (y / 80) ** 2)
    hu = -1000.0 + _soft((rb - 1) * 95) * 900 + _soft((rb - 0.88) * 95) * 140  # fat, muscle
    vert = 0.5 + 0.5 * np.cos(2 * np.pi * z / 30.0)
    hu += _soft(np.hypot(x, y - 45) - 15) * (300 + 500 * vert)  # spine
    rl = np.sqrt(((x + 55) / 40) ** 2 + ((y + 5) / 35) ** 2 + ((z - 30) / 50) ** 2)
    hu += _soft((rl - 1) * 40) * 25  # liver-like
    rk = np.sqrt(((x - 50) / 18) ** 2 + ((y - 30) / 22) ** 2 + ((z + 10) / 35) ** 2)
    hu += _soft((rk - 1) * 20) * 120  # kidney-like
    ra = np.sqrt(((x - 20) / 20) ** 2 + ((y + 40) / 12) ** 2 + ((z + 40) / 25) ** 2)
    hu -= _soft((ra - 1) * 20) * 900  # bowel gas
    return hu.astype(np.float32)


def grid_points(grid: Grid) -> np.ndarray:
    nz, ny, nx = grid.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    return grid.index_to_lps(np.stack([k, j, i], -1).reshape(-1, 3).astype(float))


def render_ct(grid: Grid, r: np.ndarray, t: np.ndarray) -> Volume:
    q = grid_points(grid)
    p = (q - t) @ np.linalg.inv(r).T
    return Volume(phantom_hu(p).reshape(grid.shape), grid, units="HU")


def render_lesions(grid: Grid, r: np.ndarray, t: np.ndarray, radii_mm: list[float]) -> LabelMap:
    q = grid_points(grid)
    arr = np.zeros(len(q), dtype=np.uint16)
    for label, (centre, radius) in enumerate(zip(LESIONS_MM, radii_mm), start=1):
        arr[np.linalg.norm(q - (r @ centre + t), axis=1) <= radius] = label
    return LabelMap(arr.reshape(grid.shape), grid)


CT_GRID = Grid((64, 64, 64), (-126.0, -126.0, -126.0), (4.0, 4.0, 4.0))
# A "PET" grid in each timepoint's frame: 3 mm voxels, a different origin than the CT.
PET_GRID = Grid((70, 70, 70), (-103.5, -103.5, -103.5), (3.0, 3.0, 3.0))


@pytest.fixture(scope="module")
def cts() -> tuple[Volume, Volume]:
    return (
        render_ct(CT_GRID, np.eye(3), np.zeros(3)),
        render_ct(CT_GRID, rot_z(ANGLE_DEG), SHIFT_MM),
    )


@pytest.fixture(scope="module")
def rigid(cts: tuple[Volume, Volume]) -> Registration:
    return register_ct(cts[0], cts[1], fixed_label="baseline", moving_label="1 month")


def test_rigid_recovers_known_motion_at_lesions(rigid: Registration) -> None:
    truth = LESIONS_MM @ rot_z(ANGLE_DEG).T + SHIFT_MM  # q = R p + t (plain numpy)
    found = map_points(rigid, LESIONS_MM, to="moving")
    err = np.linalg.norm(found - truth, axis=1)
    assert np.all(err < 1.5), err
    assert rigid.rotation_deg == pytest.approx(ANGLE_DEG, abs=0.3)
    assert rigid.transform_type.value == "rigid"
    # a rigid transform: A is a rotation (orthonormal, det +1)
    a = rigid.matrix_array
    np.testing.assert_allclose(a.T @ a, np.eye(3), atol=1e-6)


def test_quality_figure(rigid: Registration) -> None:
    q = rigid.quality
    assert q is not None and q.passed
    # Before: identity transform on a 14 mm / 3 degree misalignment; after: near-perfect.
    # The phantom values are identical up to resampling, so NCC after must be > 0.95
    # (measured 0.98-0.99) and clearly above NCC before (measured 0.58).
    assert q.ncc_after > 0.95
    assert q.ncc_before < 0.8
    assert q.metric_after < q.metric_before  # SimpleITK's Mattes value is -MI: lower is better
    assert rigid.duration_s > 0
    d = json.loads(json.dumps(rigid.to_dict()))
    assert d["direction"] == "fixed_to_moving" and d["quality"]["passed"] is True


def test_resample_volume_matches_baseline(cts: tuple[Volume, Volume], rigid: Registration) -> None:
    # Independent check of the quality figure: Pearson correlation (plain numpy) of the
    # baseline HU and the registered follow-up HU inside the body (HU > -500), where the
    # follow-up covers it (not the -1024 fill value).
    moved = resample_volume(rigid, cts[1], cts[0])
    assert moved.grid.same_as(CT_GRID) and moved.units == "HU"
    a, b = cts[0].array, moved.array
    sel = (a > -500) & (b > -1024)
    r_after = np.corrcoef(a[sel], b[sel])[0, 1]
    r_before = np.corrcoef(a[sel], cts[1].array[sel])[0, 1]
    assert r_after > 0.95 and r_before < 0.8
    assert moved.provenance[-1].operation == "emlesion.track.resample_volume"


def test_deterministic_with_seed(cts: tuple[Volume, Volume], rigid: Registration) -> None:
    again = register_ct(cts[0], cts[1])
    np.testing.assert_allclose(again.matrix, rigid.matrix, atol=1e-9)
    np.testing.assert_allclose(again.offset_mm, rigid.offset_mm, atol=1e-9)


def test_affine_recovers_known_motion(cts: tuple[Volume, Volume]) -> None:
    reg = register_ct(cts[0], cts[1], transform="affine")
    truth = LESIONS_MM @ rot_z(ANGLE_DEG).T + SHIFT_MM
    assert np.all(np.linalg.norm(map_points(reg, LESIONS_MM, to="moving") - truth, axis=1) < 1.5)


def test_large_axial_shift_is_not_trapped_by_vertebrae() -> None:
    # 35 mm along z is more than one vertebra (30 mm period): without the coarse
    # translation search the optimiser locks one vertebra off (residual ~30 mm, measured).
    r, t = rot_z(6.0), np.array([20.0, -15.0, 35.0])
    fixed = render_ct(CT_GRID, np.eye(3), np.zeros(3))
    moving = render_ct(CT_GRID, r, t)
    reg = register_ct(fixed, moving)
    truth = LESIONS_MM @ r.T + t
    assert np.all(np.linalg.norm(map_points(reg, LESIONS_MM, to="moving") - truth, axis=1) < 1.5)


def test_map_points_inverse_and_sitk_agree(rigid: Registration) -> None:
    q = map_points(rigid, LESIONS_MM, to="moving")
    np.testing.assert_allclose(map_points(rigid, q, to="fixed"), LESIONS_MM, atol=1e-9)
    tx = rigid.to_sitk()
    for p, qq in zip(LESIONS_MM, q):
        np.testing.assert_allclose(tx.TransformPoint(tuple(p)), qq, atol=1e-9)
    # single point keeps its shape
    assert map_points(rigid, LESIONS_MM[0]).shape == (3,)


def test_from_sitk_roundtrip() -> None:
    # Euler3D with a centre: T(p) = R (p - c) + c + t; probe by hand at p = c: T(c) = c + t.
    e = sitk.Euler3DTransform((10.0, 20.0, 30.0), 0.0, 0.0, math.radians(5.0), (1.0, 2.0, 3.0))
    reg = Registration.from_sitk(e, transform_type="rigid")
    np.testing.assert_allclose(map_points(reg, [10.0, 20.0, 30.0], to="moving"), [11.0, 22.0, 33.0])
    assert reg.rotation_deg == pytest.approx(5.0)


def test_resample_labels_brings_followup_onto_baseline_grid() -> None:
    # True transform, built by hand; follow-up lesions rendered at R p + t on the
    # follow-up PET grid; after resampling they must coincide with the baseline ones.
    r, t = rot_z(ANGLE_DEG), SHIFT_MM
    reg = Registration(TransformType.RIGID, tuple(r.ravel()), (t[0], t[1], t[2]))
    base = render_lesions(PET_GRID, np.eye(3), np.zeros(3), [12.0, 9.0])
    fu = render_lesions(PET_GRID, r, t, [12.0, 9.0])
    moved = resample_labels(reg, fu, PET_GRID)
    assert moved.grid.same_as(PET_GRID)
    # Independent nearest-neighbour resampling in plain numpy: each baseline voxel centre
    # p samples the follow-up labels at the rounded index of R p + t.
    idx = np.rint(PET_GRID.lps_to_index(grid_points(PET_GRID) @ r.T + t)).astype(int)
    inside = np.all((idx >= 0) & (idx < np.array(PET_GRID.shape)), axis=1)
    expected = np.zeros(len(idx), dtype=np.uint16)
    expected[inside] = fu.array[tuple(idx[inside].T)]
    mismatch = np.count_nonzero(expected.reshape(PET_GRID.shape) != moved.array)
    assert mismatch <= 5  # rounding ties at exactly half a voxel only
    for label in (1, 2):
        a, b = base.mask(label), moved.mask(label)
        dice = 2 * np.sum(a & b) / (a.sum() + b.sum())
        assert dice > 0.85, (label, dice)  # nearest-neighbour loss on 3 mm voxels only
    assert moved.provenance[-1].operation == "emlesion.track.resample_labels"


def test_failed_quality_check_warns_and_is_recorded(cts: tuple[Volume, Volume]) -> None:
    # The registration is good (NCC ~0.98, see test_quality_figure) but the threshold is
    # set above what resampled data can reach: the flag must fail and a warning be recorded.
    with pytest.warns(GeometryWarning, match="quality check failed"):
        reg = register_ct(cts[0], cts[1], min_ncc=0.9999, search_range_mm=None)
    assert reg.quality is not None and not reg.quality.passed
    assert reg.quality.min_ncc == 0.9999
    assert "quality check failed" in reg.provenance[0].warnings[0]


def test_unrelated_images_raise_or_fail(cts: tuple[Volume, Volume]) -> None:
    # A smooth random field shares no anatomy with the phantom: the optimiser either runs
    # off the image (GeometryError) or ends with a failed quality flag (warning).
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(0).normal(0.0, 300.0, CT_GRID.shape)
    blob = Volume(gaussian_filter(noise, 3) * 10, CT_GRID, units="HU")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            reg = register_ct(cts[0], blob, search_range_mm=None, max_iterations=20)
        except GeometryError as exc:
            assert "registration failed" in str(exc)
            return
    assert reg.quality is not None and not reg.quality.passed
    assert any(issubclass(w.category, GeometryWarning) for w in caught)


def test_too_small_image_is_refused(cts: tuple[Volume, Volume]) -> None:
    tiny = Volume(np.zeros((3, 64, 64)), Grid((3, 64, 64), (0, 0, 0), (4.0, 4.0, 4.0)))
    with pytest.raises(GeometryError, match="too small"):
        register_ct(cts[0], tiny)


def test_track_lesions_with_registration_beats_scanner_coordinates() -> None:
    # Two lesions 40 mm apart along x; the patient moved 35 mm along +x at follow-up.
    # In scanner coordinates the baseline right lesion (x=-20 -> +15 at follow-up) would
    # pair with the wrong one; after registration both tracks continue.
    sites = np.array([[-20.0, 0.0, 0.0], [20.0, 0.0, 0.0]])
    r, t = rot_z(2.0), np.array([35.0, 4.0, -10.0])

    def lesions(rr: np.ndarray, tt: np.ndarray, radius: float) -> LabelMap:
        q = grid_points(PET_GRID)
        arr = np.zeros(len(q), dtype=np.uint16)
        for label, c in enumerate(sites, start=1):
            arr[np.linalg.norm(q - (rr @ c + tt), axis=1) <= radius] = label
        return LabelMap(arr.reshape(PET_GRID.shape), PET_GRID)

    ct0 = render_ct(CT_GRID, np.eye(3), np.zeros(3))
    ct1 = render_ct(CT_GRID, r, t)
    l0, l1 = lesions(np.eye(3), np.zeros(3), 8.0), lesions(r, t, 5.0)
    res = track_lesions([("baseline", ct0, l0), ("1 month", ct1, l1)])
    assert [tr.label_at("1 month") for tr in res.tracks] == [1, 2]
    assert all(tr.state_at("1 month") is TrackState.PRESENT for tr in res.tracks)
    reg = res.registrations["1 month"]
    assert reg.quality is not None and reg.quality.passed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeometryWarning)
        naive = track_lesions([("baseline", ct0, l0), ("1 month", ct1, l1)], register=False)
    # scanner coordinates: baseline 2 (x=20) pairs with follow-up 1 (now at x~15)
    assert naive.track("T2").label_at("1 month") == 1
    assert naive.track("T1").state_at("1 month") is TrackState.RESOLVED


def test_followups_registered_in_parallel_match_one_by_one(
    cts: tuple[Volume, Volume], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two follow-ups are registered in two worker threads when two cores are usable
    # (tracking._register_in_parallel). The transforms must be those of register_ct run
    # one by one (same seeds; one ITK thread only changes the summation order), and the
    # quality warning of each follow-up (threshold set out of reach, as in
    # test_failed_quality_check_warns_and_is_recorded) must be emitted in the caller's
    # thread and recorded in both the registration and the tracking provenance.
    # The baseline CT is prepared once for both workers (issue 18): one fixed preparation
    # (with sampling mask) and two moving ones, and still the transforms of one by one.
    import emlesion.track.registration as registration
    import emlesion.track.tracking as tracking

    monkeypatch.setattr(tracking, "usable_cores", lambda: 2)
    prepared: list[bool] = []
    real_prepare = registration._prepare

    def counting_prepare(*args: object, with_mask: bool, **kwargs: object) -> object:
        prepared.append(with_mask)
        return real_prepare(*args, with_mask=with_mask, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(registration, "_prepare", counting_prepare)
    ct2 = render_ct(CT_GRID, rot_z(-2.0), np.array([-6.0, 4.0, -9.0]))
    les = render_lesions(PET_GRID, np.eye(3), np.zeros(3), [12.0, 9.0])
    kw = {"min_ncc": 0.9999, "search_range_mm": None}
    with pytest.warns(GeometryWarning, match="quality check failed") as caught:
        res = track_lesions(
            [("baseline", cts[0], les), ("m1", cts[1], les), ("m3", ct2, les)],
            register_kwargs=kw,
        )
    assert sorted(prepared) == [False, False, True]
    assert sum("quality check failed" in str(w.message) for w in caught) >= 2
    for label, moving in (("m1", cts[1]), ("m3", ct2)):
        with pytest.warns(GeometryWarning):
            alone = register_ct(cts[0], moving, **kw)  # type: ignore[arg-type]
        reg = res.registrations[label]
        np.testing.assert_allclose(reg.matrix, alone.matrix, atol=1e-4)
        np.testing.assert_allclose(reg.offset_mm, alone.offset_mm, atol=1e-3)
        assert reg.moving_label == label and reg.fixed_label == "baseline"
        assert "quality check failed" in reg.provenance[0].warnings[0]
    assert sum("quality check failed" in w for w in res.provenance[0].warnings) == 2
