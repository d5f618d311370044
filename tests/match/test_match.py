"""Matchers, pair selection, the match cache, multi-view supervision and `recon match`, on synthetic and real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recon.data.projection import transform_points
from recon.data.scene import Camera, Frame, Scene
from recon.data.synth import SynthConfig, make_street
from recon.errors import ReconError
from recon.match.base import Matches
from recon.match.cache import MatchCache, cache_key
from recon.match.factory import create_matcher
from recon.match.loftr import LoftrMatcher, find_loftr_weights
from recon.match.pairs import PairConfig, camera_order, select_pairs
from recon.match.sift import SiftMatcher
from recon.match.supervision import MultiViewSupervision, SupervisionConfig

STREET3 = {"seed": 0, "width": 160, "height": 96, "n_frames": 3, "defocus_frames": 0}
"""The synthetic street (recon.data.synth) at 160x96: 3 time steps 0.8 m apart, all in the training split."""


@pytest.fixture(scope="module")
def street3(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """Cameras front, front_left (yaw +45 deg) and front_right (-45 deg), 50 deg wide: the side cameras' views
    move across the facades (good triangulation), the front camera's along its axis (few reliable points)."""
    return make_street(SynthConfig(**STREET3), tmp_path_factory.mktemp("street3") / "street")


@pytest.fixture(scope="module")
def street3_cache(street3: Scene, tmp_path_factory: pytest.TempPathFactory) -> tuple[MultiViewSupervision, Path]:
    """Supervision of ``street3`` computed once (a fresh cache); tests copy the cache folder they modify."""
    cache = tmp_path_factory.mktemp("street3_cache") / "matches"
    return MultiViewSupervision(street3, "sift", cache_dir=cache).prepare(), cache


def rig_frames(n_frames: int = 3, yaws_deg: tuple[float, ...] = (-45.0, 0.0, 45.0), hfov_deg: float = 70.0,
               rig_radius_m: float = 0.6, step_m: float = 1.0) -> list[Frame]:
    """Poses only (no images): a rig of cameras ``cam0, cam1, ...`` at the given yaws (positive turns right, about
    the world's y axis, which points down) on a circle of ``rig_radius_m`` around the rig centre, facing outwards,
    moving ``step_m`` along +z per frame (0.1 s apart), 160x96 pixels."""
    import math

    fx = 80.0 / math.tan(math.radians(hfov_deg) / 2)
    frames = []
    for ci, yaw in enumerate(yaws_deg):
        cam = Camera(f"cam{ci}", 160, 96, fx, fx, 80.0, 48.0)
        a = math.radians(yaw)
        for i in range(n_frames):
            c2w = np.eye(4)
            c2w[:3, :3] = [[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]]
            c2w[:3, 3] = [rig_radius_m * math.sin(a), 0.0, rig_radius_m * (math.cos(a) - 1.0) + i * step_m]
            frames.append(Frame(f"cam{ci}_{i:03d}", cam, i * 0.1, Path(f"cam{ci}_{i:03d}.png"), c2w, index=i))
    return frames


# ---------------------------------------------------------------- matchers
def test_sift_on_a_real_stereo_pair_against_ground_truth_disparity() -> None:
    """Middlebury motorcycle (skimage), resized to 192 rows: horizontal error against the true disparity."""
    from scipy.ndimage import map_coordinates
    from skimage import data, transform

    left, right, disp = data.stereo_motorcycle()
    H = 192
    W = round(H * left.shape[1] / left.shape[0])
    s = W / left.shape[1]
    l = transform.resize(left, (H, W), anti_aliasing=True).astype(np.float32)
    r = transform.resize(right, (H, W), anti_aliasing=True).astype(np.float32)
    m = SiftMatcher().match(l, r)
    full0 = m.kpts0 / s  # full-resolution continuous coordinates (pixel-centre convention)
    d = map_coordinates(disp, [full0[:, 1] - 0.5, full0[:, 0] - 0.5], order=0)
    ok = np.isfinite(d)
    err_x = m.kpts1[ok, 0] - (full0[ok, 0] - d[ok]) * s
    err_y = m.kpts1[:, 1] - m.kpts0[:, 1]
    within = float(np.mean(np.abs(err_x) < 1.0))
    print(f"motorcycle {W}x{H}: {len(m)} matches, median |dx| {np.median(np.abs(err_x)):.3f} px, "
          f"{100 * within:.1f}% within 1 px, median |dy| {np.median(np.abs(err_y)):.3f} px")
    assert len(m) >= 300
    assert np.median(np.abs(err_x)) < 0.5 and within > 0.75
    assert np.median(np.abs(err_y)) < 0.3
    assert (m.confidence > 0).all() and (m.confidence <= 1).all()


@pytest.mark.parametrize("size", [(96, 160), (192, 320)])
def test_sift_keypoints_follow_a_known_shift_exactly(size: tuple[int, int]) -> None:
    """A sub-image shifted by (7, 3) px: matches move by exactly that (tests the upsampling path at 160x96)."""
    from skimage import data

    h, w = size
    src = np.asarray(data.astronaut(), np.float32)[::2, ::2] / 255.0
    a = src[20:20 + h, 30:30 + w]
    b = src[17:17 + h, 23:23 + w]  # content moves right by 7 and down by 3
    m = SiftMatcher().match(a, b)
    d = m.kpts1 - m.kpts0
    print(f"{w}x{h}: {len(m)} matches")
    assert len(m) >= 100
    np.testing.assert_allclose(np.median(d, axis=0), [7.0, 3.0], atol=0.05)
    assert np.mean(np.linalg.norm(d - [7.0, 3.0], axis=1) < 0.5) > 0.9


def test_loftr_with_random_weights_shapes_and_cache(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    img0 = rng.random((64, 96, 3)).astype(np.float32)
    img1 = np.roll(img0, 8, axis=1)
    matcher = LoftrMatcher(None, threshold=0.0)
    m = matcher.match(img0, img1)
    assert m.kpts0.shape == m.kpts1.shape == (len(m), 2) and m.confidence.shape == (len(m),)
    assert len(m) > 0 and m.kpts0.dtype == np.float32
    assert (m.kpts0 >= 0).all() and (m.kpts0[:, 0] <= 96).all() and (m.kpts0[:, 1] <= 64).all()
    # the settings identify the random weights: another initialisation gets another cache key
    import torch

    torch.manual_seed(123)
    other = LoftrMatcher(None, threshold=0.0)
    assert other.settings() != matcher.settings()
    # cache round trip
    from recon.io.images import write_image

    p0, p1 = write_image(tmp_path / "a.png", img0), write_image(tmp_path / "b.png", img1)
    cache = MatchCache(tmp_path / "cache")
    key = cache_key(matcher.name, matcher.settings(), p0, p1)
    cache.save(key, m)
    back = cache.load(key)
    assert back is not None
    np.testing.assert_array_equal(back.kpts0, m.kpts0)
    np.testing.assert_array_equal(back.confidence, m.confidence)


def test_loftr_with_real_weights_when_present() -> None:
    weights = find_loftr_weights()
    if weights is None:
        pytest.skip("no LoFTR weights in the torch hub cache (recon never downloads them)")
    from skimage import data, transform

    left, right, _ = data.stereo_motorcycle()
    l = transform.resize(left, (192, 285), anti_aliasing=True).astype(np.float32)
    r = transform.resize(right, (192, 285), anti_aliasing=True).astype(np.float32)
    m = LoftrMatcher(weights).match(l, r)
    assert len(m) >= 200
    assert np.median(np.abs(m.kpts1[:, 1] - m.kpts0[:, 1])) < 1.0  # rectified: rows agree


def test_create_matcher_never_downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from recon.match import factory

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(factory, "packaged_weight", lambda package, name: None)  # no learned matcher installed
    m = create_matcher("auto")
    assert isinstance(m, SiftMatcher)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SIFT" in err[0] and "LoFTR" in err[0]
    with pytest.raises(ReconError, match="LoFTR weights not found"):
        create_matcher("loftr")
    with pytest.raises(ReconError, match="nope.ckpt: LoFTR weights file not found"):
        create_matcher("auto", loftr_weights=tmp_path / "nope.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ReconError, match="not a usable LoFTR checkpoint"):
        create_matcher("loftr", loftr_weights=bad)
    with pytest.raises(ReconError):
        SiftMatcher().match(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10, 3), np.uint8))


# ---------------------------------------------------------------- cache
def test_cache_key_tracks_settings_and_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"1")
    b.write_bytes(b"2")
    k = cache_key("sift", {"ratio": 0.9}, a, b)
    assert k == cache_key("sift", {"ratio": 0.9}, a, b)
    assert k != cache_key("sift", {"ratio": 0.8}, a, b)
    assert k != cache_key("loftr", {"ratio": 0.9}, a, b)
    assert k != cache_key("sift", {"ratio": 0.9}, b, a)
    a.write_bytes(b"11")  # the image changed
    assert k != cache_key("sift", {"ratio": 0.9}, a, b)


def test_cache_removes_stale_temporaries_only(tmp_path: Path) -> None:
    """A write killed midway leaves `.<key>.npz.<random>.tmp`; opening the cache removes it once it is stale."""
    import os

    cache = MatchCache(tmp_path / "c")
    key = "ab" + "0" * 38
    cache.save(key, Matches(np.ones((3, 2)), np.ones((3, 2)), np.ones(3)))
    folder = cache.path(key).parent
    stale, fresh = folder / f".{key}.npz.abcd1234.tmp", folder / f".{key}.npz.efgh5678.tmp"
    other = folder / "notes.tmp"  # not a name recon's atomic writer makes
    for p in (stale, fresh, other):
        p.write_bytes(b"partial")
    old = os.stat(stale).st_mtime - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    MatchCache(tmp_path / "c")
    assert not stale.exists() and fresh.exists() and other.exists()
    assert cache.load(key) is not None


# ---------------------------------------------------------------- pairs
def test_pair_selection() -> None:
    """A 3-camera rig (yaw -45, 0, +45 deg, 70 deg wide), 3 frames 1 m apart: temporal pairs at steps 1 and 2,
    cross pairs between neighbouring cameras, none between the two side cameras."""
    frames = rig_frames()
    # listed in another order: the order comes from the yaw relative to the first camera seen
    assert camera_order(frames[3:] + frames[:3]) == ["cam0", "cam1", "cam2"]
    pairs = select_pairs(frames=frames)
    kinds = {(p.frame0, p.frame1): p.kind for p in pairs}
    assert kinds[("cam0_000", "cam0_001")] == "temporal" and kinds[("cam0_000", "cam0_002")] == "temporal"
    assert kinds[("cam0_001", "cam1_001")] == "cross" and kinds[("cam1_002", "cam2_002")] == "cross"
    # left and right cameras (90 degrees apart, 70 degree fov) do not overlap enough
    assert ("cam0_000", "cam2_000") not in kinds
    assert all(0.1 <= p.overlap <= 1.0 for p in pairs)
    assert len(pairs) == 3 * 3 + 2 * 3
    # held-out frames never take part
    only = [f for f in frames if f.index != 1]
    assert all("_001" not in p.frame0 + p.frame1 for p in select_pairs(frames=only))
    # a camera looking backwards overlaps nothing
    back = Frame("back", frames[0].camera, 0.0, frames[0].image_path,
                 frames[0].cam2world @ np.diag([-1.0, 1.0, -1.0, 1.0]))
    assert select_pairs(frames=[frames[0], back], config=PairConfig(temporal=False)) == []
    # a pure rotation (same centre, 20 degrees apart) has nothing to triangulate; 0.2 m of baseline does
    turned = rig_frames(1, (0.0, 20.0), rig_radius_m=0.0)
    assert select_pairs(frames=turned) == []
    moved = Frame("moved", turned[1].camera, 0.0, Path("moved.png"), turned[1].cam2world.copy())
    moved.cam2world[:3, 3] = transform_points(np.array([0.2, 0.0, 0.0]), turned[1].cam2world)
    assert [p.kind for p in select_pairs(frames=[turned[0], moved])] == ["cross"]


# ---------------------------------------------------------------- supervision
def test_supervision_targets_cache_and_bad_pairs(street3: Scene, street3_cache: tuple[MultiViewSupervision, Path],
                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    sup, shared_cache = street3_cache
    cache = tmp_path / "cache"
    shutil.copytree(shared_cache, cache)
    ok = [r for r in sup.reports if r.status == "ok"]
    # the side cameras' temporal pairs (steps 1 and 2); the front camera's forward motion at 160x96 leaves too few
    # points whose depth a pixel of match error would not move much, and 45 degrees between 50-degree cameras too
    # little overlap for cross pairs
    assert len(ok) >= 6 and not any(r.cached for r in sup.reports)
    assert {r.pair.frame0.rsplit("_", 1)[0] for r in ok} == {"front_left", "front_right"}
    t = sup.targets_for("front_left_0001")
    assert t.pix.shape == (len(t), 2) and t.depth.shape == t.weights.shape == (len(t),)
    assert len(t) >= 50 and (t.depth > 0).all() and (t.weights > 0).all() and (t.weights <= 1).all()
    # targets agree with the exact depth of the rendered scene
    from recon.match.supervision import sample_depth_gt

    f = street3.frame("front_left_0001")
    gt = sample_depth_gt(f.load_depth(), t.pix.numpy())
    err = np.abs(t.depth.numpy() - gt) / gt
    print(f"synthetic street 160x96, 3 steps: {sup.n_points()} reliable points, front_left_0001 median depth error "
          f"{100 * np.median(err):.2f}%")
    assert np.median(err) < 0.02
    with pytest.raises(KeyError):
        sup.targets_for("nope")

    # second run: everything from the cache, identical targets; one corrupt file -> one warning, recomputed
    files = sorted(cache.rglob("*.npz"))
    assert len(files) == len(sup.reports)
    files[0].write_bytes(b"garbage")
    capsys.readouterr()
    again = MultiViewSupervision(street3, "sift", cache_dir=cache).prepare()
    err_lines = [ln for ln in capsys.readouterr().err.splitlines() if "corrupt" in ln]
    assert len(err_lines) == 1 and str(files[0]) in err_lines[0]
    assert sum(not r.cached for r in again.reports) == 1
    np.testing.assert_array_equal(again.targets_for("front_left_0001").depth.numpy(), t.depth.numpy())


def test_supervision_skips_bad_pairs_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene = make_street(SynthConfig(**{**STREET3, "cameras": ("front_left",)}), tmp_path / "s")
    from recon.io.images import write_image

    a, b, c = (f"front_left_{i:04d}" for i in range(3))
    write_image(scene.frame(c).image_path, np.full((96, 160, 3), 0.5, np.float32))  # textureless
    sup = MultiViewSupervision(scene, "sift", cache_dir=tmp_path / "c",
                               config=SupervisionConfig(require_confirmation=False)).prepare()
    status = {(r.pair.frame0, r.pair.frame1): r.status for r in sup.reports}
    assert status[(a, b)] == "ok"
    assert status[(b, c)] == "few matches" and status[(a, c)] == "few matches"
    msgs = [ln for ln in capsys.readouterr().err.splitlines() if "skipped" in ln]
    assert len(msgs) == 2 and all(c in m for m in msgs)
    assert len(sup.targets_for(c)) == 0 and len(sup.targets_for(a)) > 0

    scene.frame(c).image_path.write_bytes(b"not a png")  # unreadable image
    sup = MultiViewSupervision(scene, "sift", cache_dir=tmp_path / "c2",
                               config=SupervisionConfig(require_confirmation=False)).prepare()
    assert [r.status for r in sup.reports].count("unreadable") == 2
    assert len(sup.targets_for(a)) > 0


# ---------------------------------------------------------------- CLI
def test_cli_prints_a_table(street3: Scene, street3_cache: tuple[MultiViewSupervision, Path], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    from recon.match.cli import main

    cache = str(street3_cache[1])  # computed by the fixture: the CLI finds every pair in the cache
    assert main(["--data", str(street3.root), "--matcher", "sift", "--cache", cache]) == 0
    out = capsys.readouterr().out
    assert "depth err" in out and "front_left_0000" in out and "reliable points" in out
    assert out.count("(cached)") == len(street3_cache[0].reports)
    from recon.cli import main as recon_main

    assert recon_main(["match", "--data", str(tmp_path / "missing")]) == 2
    assert "scene.json not found" in capsys.readouterr().err


# ---------------------------------------------------------------- real data
def test_kitti_matches_and_triangulation_with_real_poses(tmp_path: Path) -> None:
    """Four consecutive KITTI frames (about 1.2 m apart) with the published poses, matched at 640x193.

    KITTI's P matrices put pixel centres on integer coordinates: +0.5 on cx, cy gives recon's convention.
    """
    from support.shared import shared_data

    root = shared_data("kitti_odometry_seq1")
    P0 = np.array([float(x) for x in (root / "calib.txt").read_text().splitlines()[0].split()[-12:]]).reshape(3, 4)
    rows = (root / "poses.txt").read_text().strip().splitlines()
    cam = Camera("left", 1226, 370, P0[0, 0], P0[1, 1], P0[0, 2] + 0.5, P0[1, 2] + 0.5)
    frames = []
    for i in range(4):
        c2w = np.eye(4)
        c2w[:3] = np.array([float(x) for x in rows[i].split()]).reshape(3, 4)
        frames.append(Frame(f"{i:06d}", cam, i * 0.1, root / "image_l" / f"{i:06d}.png", c2w, index=i))
    scene = Scene(tmp_path, {"left": cam}, frames, name="kitti")
    sup = MultiViewSupervision(scene, "sift", cache_dir=tmp_path / "cache",
                               config=SupervisionConfig(max_side=640)).prepare()
    ok = [r for r in sup.reports if r.status == "ok"]
    for r in sup.reports:
        print(f"kitti {r.pair.frame0}-{r.pair.frame1}: {r.n_matches} matches, {r.n_reliable} reliable, "
              f"median reprojection {r.median_reproj_px:.3f} px")
    assert len(ok) >= 4
    assert all(r.n_matches >= 300 for r in sup.reports)
    assert np.median([r.median_reproj_px for r in ok]) < 0.5
    d = np.concatenate([p.depth0 for p in sup.pair_points])
    assert len(d) >= 300
    assert 3.0 < np.median(d) < 40.0  # a street: most points within a few tens of metres


# ---------------------------------------------------------------- the synthetic street (recon.data.synth)
def test_synthetic_street_reliable_points_and_depth_error(small_street: Scene, tmp_path: Path) -> None:
    """On the first 6 time steps of the synthetic street (160x96, 3 cameras): reliable points per pair and their
    depth error against the exact depth maps (median over all reliable points at most 2 %)."""
    from recon.match.cli import format_table

    ids = [f.id for f in small_street.train_frames if f.index < 6]
    sup = MultiViewSupervision(small_street, "sift", cache_dir=tmp_path / "c", frames=ids, verbose=False).prepare()
    print("\n" + format_table(sup.reports, True))
    from recon.match.supervision import sample_depth_gt

    errs = []
    for p in sup.pair_points:
        for fid, pix, d in ((p.frame0, p.pix0, p.depth0), (p.frame1, p.pix1, p.depth1)):
            gt = sample_depth_gt(small_street.frame(fid).load_depth(), pix)
            ok = gt > 0
            errs.append(np.abs(d[ok] - gt[ok]) / gt[ok])
    err = np.concatenate(errs)
    used = [r for r in sup.reports if r.status == "ok"]
    print(f"synthetic street: {len(used)}/{len(sup.reports)} pairs used, {sup.n_points()} reliable points "
          f"({np.mean([r.n_reliable for r in used]):.0f} per used pair), median depth error "
          f"{100 * np.median(err):.2f}%, 90th percentile {100 * np.percentile(err, 90):.2f}%")
    assert len(used) >= 6
    assert sup.n_points() >= 300
    assert np.median(err) <= 0.02
