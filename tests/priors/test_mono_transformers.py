"""Monocular depth through Hugging Face transformers: tiny random models saved to a folder (or a fake Hugging Face
cache) and loaded through the same code path as real ones; metric units, relative-model alignment, errors, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from recon.data.scene import Camera, Frame, Scene  # noqa: E402
from recon.errors import ReconError  # noqa: E402
from recon.io.images import write_depth, write_image  # noqa: E402
from recon.priors import registry  # noqa: E402
from recon.priors.base import DepthPrior  # noqa: E402
from recon.priors.mono import load_mono_model, resolve_model  # noqa: E402
from recon.priors.registry import compute_prior  # noqa: E402

W, H, F = 96, 64, 70.0
GROUND_Y, WALL_Z = 1.5, 30.0


def _depth_map() -> np.ndarray:
    """Exact z-depth of a flat ground (1.5 m below the camera) meeting a wall 30 m ahead; pixel centres."""
    v = np.arange(H) + 0.5
    dy = (v - H / 2) / F
    with np.errstate(divide="ignore"):
        ground = np.where(dy > 0, GROUND_Y / np.where(dy > 0, dy, 1.0), np.inf)
    return np.repeat(np.minimum(ground, WALL_Z)[:, None], W, axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def wall_scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """One camera, ground + wall, exact depth and LiDAR points sampled on the visible surfaces."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("wall")
    depth = _depth_map()
    img = np.clip(0.4 + 0.2 * rng.random((H, W, 3)) + 0.3 * (depth[..., None] < WALL_Z), 0, 1)
    write_image(root / "images/0.png", img.astype(np.float32))
    write_depth(root / "depth/0.npy", depth)
    ys, xs = rng.integers(0, H, 600), rng.integers(0, W, 600)
    z = depth[ys, xs]
    pts = np.stack([(xs + 0.5 - W / 2) / F * z, (ys + 0.5 - H / 2) / F * z, z], 1).astype(np.float32)
    np.save(root / "lidar_0.npy", pts)
    cam = Camera("front", W, H, F, F, W / 2, H / 2)
    frame = Frame("f0", cam, 0.0, root / "images/0.png", np.eye(4), index=0, depth_path=root / "depth/0.npy",
                  lidar_path=root / "lidar_0.npy")
    Scene(root, {"front": cam}, [frame], name="wall", source="test").save()
    return Scene.load(root)


def _tiny_depth_anything(folder: Path, metric: bool, seed: int = 0, head_bias: float | None = None) -> Path:
    """A 100k-parameter Depth Anything (Dinov2 backbone) with random weights and its processor, saved like a hub model.

    ``head_bias``: zero the last convolution and set its bias, so the output is known exactly:
    ``sigmoid(bias) * max_depth`` metres for a metric model, ``relu(bias)`` for a relative one.
    """
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            patch_size=14, image_size=56, out_features=["stage1", "stage2"],
                            reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[16, 32],
                              fusion_hidden_size=16, head_hidden_size=8, reassemble_factors=[4, 2], patch_size=14,
                              depth_estimation_type="metric" if metric else "relative", max_depth=80)
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(cfg)
    if head_bias is not None:
        with torch.no_grad():
            model.head.conv3.weight.zero_()
            model.head.conv3.bias.fill_(head_bias)
    model.save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      resample=3).save_pretrained(folder)
    return folder


def test_metric_model_output_is_in_metres(wall_scene: Scene, tmp_path: Path) -> None:
    folder = _tiny_depth_anything(tmp_path / "da_metric", metric=True, head_bias=0.5)
    fr = wall_scene.frames[0]
    prior = compute_prior(wall_scene, fr, "mono", model=folder, cache_dir=tmp_path / "c")
    assert prior.source == "mono" and prior.shape == (H, W) and prior.coverage == 1.0
    assert prior.meta["output"] == "metric" and prior.meta["model"] == "transformers:da_metric"
    np.testing.assert_allclose(prior.depth, 80.0 / (1.0 + math.exp(-0.5)), rtol=1e-4)
    # scaled to LiDAR: one factor that brings the constant to the wall (the mode of the LiDAR depths)
    aligned = compute_prior(wall_scene, fr, "mono", model=folder, align="lidar", use_cache=False)
    assert aligned.meta["aligned_to"] == "lidar" and "align_residual" in aligned.meta
    assert abs(float(np.median(aligned.depth)) - WALL_Z) < 0.05 * WALL_Z


def test_relative_model_needs_alignment_and_gets_scale_and_shift(wall_scene: Scene, tmp_path: Path) -> None:
    folder = _tiny_depth_anything(tmp_path / "da_rel", metric=False, seed=1)
    fr = wall_scene.frames[0]
    with pytest.raises(ReconError, match="relative .* cannot be used as metric depth; pass --align") as e:
        compute_prior(wall_scene, fr, "mono", model=folder, use_cache=False)
    assert "\n" not in str(e.value)
    model = load_mono_model(folder)
    assert model.output == "relative"
    out = model(fr.load_image(), fr.camera.fx)
    assert out.shape == (H, W) and out.dtype == np.float32
    aligned = compute_prior(wall_scene, fr, "mono", model=folder, align="lidar", use_cache=False)
    assert aligned.meta["output"] == "metric" and aligned.meta["fitted_from"] == "relative"
    assert {"align_scale", "align_shift", "align_residual", "align_points"} <= set(aligned.meta)
    assert np.isfinite(aligned.depth).all() and (aligned.depth >= 0).all()


def test_scale_and_shift_recovered_from_an_affine_inverse_depth(wall_scene: Scene) -> None:
    """What a good relative model outputs (a * inverse depth + b) comes back as metric depth, residual near 0."""
    fr = wall_scene.frames[0]
    gt = fr.load_depth()
    rel = DepthPrior(3.0 / gt + 0.2, np.ones_like(gt), "mono", {"model": "x", "output": "relative"})
    aligned = registry._align(wall_scene, fr, rel, "lidar")
    np.testing.assert_allclose(aligned.depth, gt, rtol=1e-3)
    assert aligned.meta["align_residual"] < 1e-3
    np.testing.assert_allclose([aligned.meta["align_scale"] * 3.0, aligned.meta["align_shift"]],
                               [1.0, -0.2 * aligned.meta["align_scale"]], rtol=1e-3, atol=1e-6)
    # a metric prior 10 % too far is corrected by one factor
    far = DepthPrior(gt * 1.1, np.ones_like(gt), "mono", {"model": "x", "output": "metric"})
    fixed = registry._align(wall_scene, fr, far, "lidar")
    np.testing.assert_allclose(fixed.depth, gt, rtol=1e-3)
    assert abs(fixed.meta["align_depth_scale"] - 1 / 1.1) < 1e-3


def test_bad_model_folders_are_one_line_errors(tmp_path: Path) -> None:
    from transformers import BertConfig

    folder = _tiny_depth_anything(tmp_path / "noweights", metric=True)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ReconError, match=r"noweights: no weights in the model folder"):
        load_mono_model(folder)
    bert = tmp_path / "bert"
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(bert)
    (bert / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ReconError, match=r"bert: not a loadable transformers depth model") as e:
        load_mono_model(bert)
    assert "\n" not in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReconError, match="no config.json"):
        resolve_model(empty)
    with pytest.raises(ReconError, match=r"some-org/some-model: not in the Hugging Face cache .*recon models fetch"):
        resolve_model("some-org/some-model")


def test_hub_names_load_from_the_hugging_face_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    wall_scene: Scene) -> None:
    """A model in the standard cache layout (models--org--name/snapshots/REV, refs/main) is found by its hub name
    and by its `recon models` name, and is the default when it is the Depth Anything V2 metric outdoor model."""
    from huggingface_hub import constants

    cache = tmp_path / "hf"
    repo = "depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf"
    rev = "0123456789abcdef0123456789abcdef01234567"
    snap = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / rev
    _tiny_depth_anything(snap, metric=True, head_bias=0.0)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text(rev)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    for spec in (repo, "depth-anything-v2-metric-outdoor-small", None):
        ref = resolve_model(spec)
        assert ref.kind == "transformers" and ref.path == snap
    assert registry.mono_weights_available()
    prior = compute_prior(wall_scene, wall_scene.frames[0], "mono", use_cache=False)
    np.testing.assert_allclose(prior.depth, 40.0, rtol=1e-4)


def test_cache_follows_the_model_files(wall_scene: Scene, tmp_path: Path) -> None:
    folder = _tiny_depth_anything(tmp_path / "m", metric=True, head_bias=0.0)
    fr = wall_scene.frames[0]
    a = compute_prior(wall_scene, fr, "mono", model=folder, cache_dir=tmp_path / "c")
    _tiny_depth_anything(folder, metric=True, head_bias=1.0)  # new weights in the same folder
    b = compute_prior(wall_scene, fr, "mono", model=folder, cache_dir=tmp_path / "c")
    assert not np.allclose(a.depth, b.depth)
    np.testing.assert_allclose(b.depth, 80.0 / (1.0 + math.exp(-1.0)), rtol=1e-4)


def test_recon_depth_cli_with_a_saved_model(wall_scene: Scene, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from recon.cli import main

    folder = _tiny_depth_anything(tmp_path / "da_cli", metric=False, seed=2)
    out = tmp_path / "out"
    rc = main(["depth", "--data", str(wall_scene.root), "--source", "mono", "--mono.model", str(folder),
               "--align", "lidar", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "relative model aligned to lidar" in text and "median residual" in text
    report = json.loads((out / "mono-aligned-lidar_metrics.json").read_text())
    assert report["align_median_residual"] is not None and report["overall"]
    rc = main(["depth", "--data", str(wall_scene.root), "--source", "mono", "--mono.model", str(folder),
               "--out", str(out)])
    assert rc == 2
    assert "cannot be used as metric depth" in capsys.readouterr().err
