"""`recon sfm`: structure from motion with known poses (matching, epipolar verification, pycolmap triangulation)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from support.shared import shared_data

from recon.cli import main as recon_main
from recon.data.scene import Scene
from recon.errors import ReconError
from recon.match.base import Matches
from recon.match.supervision import sample_depth_gt
from recon.sfm import SfmConfig, SfmResult, run_sfm
from recon.sfm.keypoints import build_keypoint_tables
from recon.sfm.verify import epipolar_distance, fundamental_matrix


@pytest.fixture(scope="module")
def tiny_street(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """Two cameras x 10 frames at 160x96 (17 train views), no finite-aperture images."""
    from recon.data.synth import SynthConfig, make_street

    out = tmp_path_factory.mktemp("sfm") / "street"
    cfg = SynthConfig(seed=0, width=160, height=96, n_frames=10, cameras=("front", "front_left"), defocus_frames=0)
    return make_street(cfg, out)


def _copy(scene: Scene, dest: Path) -> Path:
    shutil.copytree(scene.root, dest)
    return dest


@pytest.fixture(scope="module")
def sfm_run(tiny_street: Scene, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SfmResult]:
    """`run_sfm` once on a copy of the tiny street (SIFT, defaults)."""
    root = _copy(tiny_street, tmp_path_factory.mktemp("sfm_run") / "street")
    res = run_sfm(Scene.load(root), SfmConfig(matcher="sift", progress=False))
    return root, res


def _strip_points_and_lidar(src: Path, dest: Path) -> Path:
    """A copy of a scene folder without LiDAR entries in scene.json (the points3d entry stays)."""
    shutil.copytree(src, dest)
    raw = json.loads((dest / "scene.json").read_text())
    for fr in raw["frames"]:
        fr.pop("lidar", None)
    (dest / "scene.json").write_text(json.dumps(raw))
    return dest


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = recon_main(argv)
    return rc, capsys.readouterr().err.strip()


# ------------------------------------------------------------------------------------------------ unit tests
def test_epipolar_distance_is_zero_for_true_correspondences(tiny_street: Scene) -> None:
    f0, f1 = tiny_street.train_frames[0], tiny_street.train_frames[1]
    rng = np.random.default_rng(0)
    cam = f0.camera
    uv = rng.uniform([0, 0], [cam.width, cam.height], (50, 2))
    z = rng.uniform(3.0, 40.0, 50)
    pc = np.stack([(uv[:, 0] - cam.cx) / cam.fx * z, (uv[:, 1] - cam.cy) / cam.fy * z, z], 1)
    pw = pc @ f0.cam2world[:3, :3].T + f0.cam2world[:3, 3]
    p1 = pw @ f1.world2cam[:3, :3].T + f1.world2cam[:3, 3]
    uv1 = p1[:, :2] / p1[:, 2:] * [f1.camera.fx, f1.camera.fy] + [f1.camera.cx, f1.camera.cy]
    F = fundamental_matrix(f0, f1)
    assert epipolar_distance(F, uv, uv1).max() < 1e-6
    assert np.median(epipolar_distance(F, uv, uv1 + [0.0, 3.0])) > 0.5  # a vertical shift leaves the line


def test_keypoint_tables_merge_shared_keypoints() -> None:
    a = np.array([[10.0, 10.0], [20.0, 20.0]], np.float32)
    b = np.array([[11.0, 10.0], [21.0, 20.0]], np.float32)
    c = np.array([[12.0, 10.0], [22.0, 20.0]], np.float32)
    conf = np.ones(2, np.float32)
    matches = {("A", "B"): Matches(a, b, conf), ("B", "C"): Matches(b, c, conf),
               ("A", "C"): Matches(a + 0.2, c, conf)}  # LoFTR-like: A's keypoints refined a bit differently
    exact = build_keypoint_tables(["A", "B", "C"], matches, merge_px=0.0)
    assert len(exact.keypoints["B"]) == 2 and len(exact.keypoints["A"]) == 4
    merged = build_keypoint_tables(["A", "B", "C"], matches, merge_px=1.0)
    assert len(merged.keypoints["A"]) == 2
    np.testing.assert_array_equal(merged.pair_matches[("A", "C")], merged.pair_matches[("A", "B")])
    # a keypoint matched twice within one pair keeps its most confident match only
    dup = {("A", "B"): Matches(np.array([[5.0, 5.0], [5.0, 5.0]]), b, np.array([0.2, 0.9]))}
    t = build_keypoint_tables(["A", "B"], dup)
    assert t.pair_matches[("A", "B")].tolist() == [[0, 1]]


# ------------------------------------------------------------------------------------------------ end to end
def test_points_written_with_eight_columns_and_scene_updated(sfm_run: tuple[Path, SfmResult]) -> None:
    root, res = sfm_run
    pts = np.load(root / "points3d.npy")
    assert pts.dtype == np.float32 and pts.shape == (len(res.points), 8)
    assert len(pts) >= 300
    assert (pts[:, 3:6] >= 0).all() and (pts[:, 3:6] <= 1).all()
    assert (pts[:, 6] >= res.report["min_track"]).all() and res.report["min_track"] in (2, 3)
    assert (pts[:, 7] <= 2.0).all() and np.median(pts[:, 7]) < 0.5
    raw = json.loads((root / "scene.json").read_text())
    assert raw["points3d"] == "points3d.npy" and raw["frames"]  # the rest of scene.json is kept
    scene = Scene.load(root)
    assert scene.points_path == root / "points3d.npy"
    assert scene.load_sfm_points().shape == (len(pts), 6)
    report = json.loads((root / "sfm" / "report.json").read_text())
    for key in ("pairs", "matches", "verified_matches", "points_triangulated", "points_removed", "points",
                "median_reproj_px", "median_track_length", "time_s"):
        assert key in report
    assert report["points"] == len(pts) and report["verified_matches"] <= report["matches"]
    assert (root / "sfm" / "colmap" / "database.db").is_file()


def test_points_agree_with_ground_truth_depth(sfm_run: tuple[Path, SfmResult]) -> None:
    root, res = sfm_run
    scene = Scene.load(root)
    errs = []
    for k, obs in enumerate(res.points.obs):
        for fid, x, y in obs:
            f = scene.frame(fid)
            gt = sample_depth_gt(f.load_depth(), np.array([[x, y]]))[0]
            z = f.world2cam[2, :3] @ res.points.xyz[k] + f.world2cam[2, 3]
            if gt > 0:
                errs.append(abs(z - gt) / gt)
    e = np.array(errs)
    assert len(e) > 1000
    assert np.median(e) < 0.02  # measured 0.84 % (545 points, 2 cameras x 10 frames at 160x96)
    assert np.mean(e < 0.1) > 0.8  # measured 0.87


def test_train_frames_only_by_default(sfm_run: tuple[Path, SfmResult]) -> None:
    root, res = sfm_run
    test_ids = {f.id for f in Scene.load(root).test_frames}
    assert test_ids and not any(fid in test_ids for obs in res.points.obs for fid, _, _ in obs)


def test_init_auto_uses_sfm_points_without_lidar(sfm_run: tuple[Path, SfmResult], tmp_path: Path) -> None:
    from recon.model.init_points import InitConfig, initial_points
    from recon.priors.points import PointPriorOptions
    from recon.priors.sfm import sfm_prior

    root = _strip_points_and_lidar(sfm_run[0], tmp_path / "nolidar")
    scene = Scene.load(root)
    assert not scene.has_lidar()
    frames = scene.train_frames[:3]
    images = {f.id: f.load_image() for f in frames}
    init = initial_points(scene, frames, images, InitConfig(far_points=0, outlier_neighbors=0))
    assert init.source == "sfm" and len(init.xyz) > 100
    prior = sfm_prior(scene, scene.train_frames[0], PointPriorOptions(dense=False))
    assert prior.meta["points"] == len(sfm_run[1].points) and prior.meta["sparse_pixels"] > 20


# ------------------------------------------------------------------------------------------------ bad input
def test_existing_points_need_overwrite(sfm_run: tuple[Path, SfmResult], capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    root = sfm_run[0]
    rc, err = _run_cli(["sfm", "--data", str(root)], capsys)
    assert rc == 2
    assert err == (f"error: {root}: the scene already has SfM points (points3d.npy); pass --overwrite to "
                   "replace them")


def _two_frame_scene(src: Scene, dest: Path, facing_away: bool) -> Path:
    """Two training frames of the front camera; with ``facing_away`` the second looks backwards, 50 m away."""
    shutil.copytree(src.root, dest)
    raw = json.loads((dest / "scene.json").read_text())
    front = [fr for fr in raw["frames"] if fr["camera"] == "front" and fr["split"] == "train"][:2]
    if facing_away:
        c2w = np.array(front[1]["cam2world"])
        c2w[:3, :3] = c2w[:3, :3] @ np.diag([-1.0, 1.0, -1.0])
        c2w[:3, 3] += 50.0 * c2w[:3, 2]  # 50 m behind the first one, along its new (backward) axis
        front[1]["cam2world"] = c2w.tolist()
    raw["frames"] = front
    raw.pop("points3d", None)
    (dest / "scene.json").write_text(json.dumps(raw))
    return dest


def test_no_overlap_is_one_line_error(tiny_street: Scene, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = _two_frame_scene(tiny_street, tmp_path / "apart", facing_away=True)
    rc, err = _run_cli(["sfm", "--data", str(root), "--matcher", "sift"], capsys)
    assert rc == 2
    assert err == (f"error: {root}: no pair of the 2 frames overlaps (frusta too far apart or pointing away from "
                   "each other): nothing to triangulate")


def test_too_few_points_is_one_line_error(tiny_street: Scene, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = _two_frame_scene(tiny_street, tmp_path / "pair", facing_away=False)
    rc, err = _run_cli(["sfm", "--data", str(root), "--matcher", "sift", "--min-points", "1000000"], capsys)
    rep = json.loads((root / "sfm" / "report.json").read_text())
    assert rc == 2
    assert err == (f"error: {root}: SfM kept {rep['points']} points (< --min-points 1000000) of "
                   f"{rep['points_triangulated']} triangulated from {rep['verified_matches']} verified matches; "
                   "points3d.npy not written")
    assert not (root / "points3d.npy").exists() and "points3d" not in json.loads((root / "scene.json").read_text())


def test_fewer_than_two_frames_is_one_line_error(tiny_street: Scene, tmp_path: Path) -> None:
    root = _two_frame_scene(tiny_street, tmp_path / "one", facing_away=False)
    raw = json.loads((root / "scene.json").read_text())
    raw["frames"][1]["split"] = "test"
    (root / "scene.json").write_text(json.dumps(raw))
    with pytest.raises(ReconError, match=r"SfM needs at least 2 training frames, the scene has 1$"):
        run_sfm(Scene.load(root), SfmConfig(matcher="sift", progress=False))


def test_missing_scene_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = _run_cli(["sfm", "--data", str(tmp_path / "nowhere")], capsys)
    assert rc == 2 and err.startswith("error: ") and "scene.json not found" in err and "\n" not in err


# ------------------------------------------------------------------------------------------------ real data
@pytest.mark.slow
def test_kitti_first_frames(tmp_path: Path) -> None:
    from recon.data.convert.common import ConvertOptions
    from recon.data.convert.kitti import convert_kitti

    src = shared_data("kitti_odometry_seq1")
    scene = convert_kitti(src, tmp_path / "kitti4", ConvertOptions(downscale=4, end=10, progress=False))
    res = run_sfm(Scene.load(scene.root), SfmConfig(matcher="sift", progress=False))
    assert len(res.points) >= 500  # measured 851 on the first 10 frames (9 train, 21 pairs)
    assert res.report["median_reproj_px"] < 0.5  # measured 0.32
    assert res.report["median_track_length"] >= 3


def test_sift_is_the_sfm_default_and_the_learned_matcher_the_loss_default() -> None:
    """SfM defaults to SIFT (its points are more precise, see recon.sfm.pipeline), in the API and on the command
    line; the multi-view loss keeps the learned default."""
    from recon.sfm.cli import SfmArgs
    from recon.train.config import LossConfig

    assert SfmConfig().matcher == "sift"
    assert SfmArgs(data=Path("x")).matcher == "sift"
    assert LossConfig().mv_matcher == "auto"
