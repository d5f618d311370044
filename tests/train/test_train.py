"""The trainer on a tiny synthetic street: it learns, resumes exactly, and refuses bad input clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.training import tiny_cfg

from recon.errors import ReconError
from recon.run.folder import prepare_run_folder
from recon.run.training import train_run
from recon.train.trainer import Trainer


def run(cfg) -> Trainer:
    prepare_run_folder(cfg)
    tr = Trainer(cfg)
    train_run(tr, progress=False)
    return tr


def test_training_improves_a_fixed_view(tiny_street, tmp_path: Path) -> None:
    from recon.eval.image_metrics import psnr

    cfg = tiny_cfg(tiny_street.root, tmp_path / "run", "--iters", "60", "--checkpoint-every", "0",
                   "--strategy.refine-start", "20", "--strategy.refine-every", "20")
    prepare_run_folder(cfg)
    tr = Trainer(cfg)
    with torch.no_grad():
        before = np.mean([psnr(tr.render(v).rgb, v.image) for v in tr.views[:6]])
    train_run(tr, progress=False)
    with torch.no_grad():
        after = np.mean([psnr(tr.render(v).rgb, v.image) for v in tr.views[:6]])
    assert after > before + 1.0, (before, after)
    assert tr.params["means"].shape[0] > 1800  # densification added Gaussians
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["step"] == 60 and {"photo", "psnr", "n_gaussians", "loss"} <= set(recs[-1])
    assert (tmp_path / "run" / "point_cloud.ply").is_file()


def test_resume_matches_uninterrupted(tiny_street, tmp_path: Path) -> None:
    full = run(tiny_cfg(tiny_street.root, tmp_path / "a"))
    run(tiny_cfg(tiny_street.root, tmp_path / "b"))
    # as if killed after the checkpoint at iteration 3: drop the later checkpoint, then resume
    (tmp_path / "b" / "checkpoints" / "ckpt_000006.pt").unlink()
    resumed = Trainer(tiny_cfg(tiny_street.root, tmp_path / "b", "--resume"))
    train_run(resumed, progress=False)
    assert resumed.step == full.step == 6
    for k in full.params:
        assert full.params[k].shape == resumed.params[k].shape, k
        assert torch.allclose(full.params[k], resumed.params[k], atol=1e-6), k
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and len(steps) == len(set(steps))


def test_interrupted_checkpoint_write_keeps_previous(tiny_street, tmp_path: Path) -> None:
    from recon.run.checkpoints import list_checkpoints

    run(tiny_cfg(tiny_street.root, tmp_path / "c"))
    ckpts = list_checkpoints(tmp_path / "c")
    newest = ckpts[-1][1]
    newest.write_bytes(newest.read_bytes()[:100])  # a write cut short (not via the atomic path)
    cfg = tiny_cfg(tiny_street.root, tmp_path / "c", "--resume")
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        tr = Trainer(cfg)
        train_run(tr, progress=False)
    assert tr.step == 6


def test_resume_other_config_or_scene_refused(tiny_street, tmp_path: Path) -> None:
    run(tiny_cfg(tiny_street.root, tmp_path / "d"))
    cfg = tiny_cfg(tiny_street.root, tmp_path / "d", "--resume", "--optim.means-lr", "1e-3")
    with pytest.raises(ReconError, match="different config"):
        train_run(Trainer(cfg), progress=False)


def test_existing_out_is_refused(tiny_street, tmp_path: Path) -> None:
    out = tmp_path / "e"
    out.mkdir()
    (out / "something").write_text("x")
    with pytest.raises(ReconError, match="output folder exists"):
        prepare_run_folder(tiny_cfg(tiny_street.root, out))


def test_no_lidar_no_sfm_falls_back_with_warning(tiny_street, tmp_path: Path) -> None:
    import shutil

    scene_dir = tmp_path / "nolidar"
    shutil.copytree(tiny_street.root, scene_dir)
    sj = scene_dir / "scene.json"
    d = json.loads(sj.read_text())
    for f in d["frames"]:
        f.pop("lidar", None)
    sj.write_text(json.dumps(d))
    cfg = tiny_cfg(scene_dir, tmp_path / "f", "--iters", "2")
    prepare_run_folder(cfg)
    with pytest.warns(UserWarning, match="no LiDAR and no SfM points"):
        tr = Trainer(cfg)
    assert tr.init_source == "random"


def test_mcmc_strategy_runs_on_cpu(tiny_street, tmp_path: Path) -> None:
    cfg = tiny_cfg(tiny_street.root, tmp_path / "m", "strategy:mcmc", "--strategy.cap-max", "2000",
                   "--checkpoint-every", "0")
    tr = run(cfg)
    assert tr.step == 6 and 1500 < tr.params["means"].shape[0] <= 2000


def test_lidar_preset_supervises_depth(tiny_street, tmp_path: Path) -> None:
    tr = run(tiny_cfg(tiny_street.root, tmp_path / "l", "lidar", "--checkpoint-every", "0"))
    recs = [json.loads(line) for line in (tmp_path / "l" / "metrics.jsonl").read_text().splitlines()]
    assert all("lidar" in r and r["lidar"] > 0 for r in recs)
    assert sum(v.lidar_depth is not None and bool((v.lidar_depth > 0).any()) for v in tr.views) == len(tr.views)


def test_undecodable_image_stops_training_with_one_line(tiny_street, tmp_path: Path, capsys) -> None:
    import shutil

    from recon.cli import main

    scene_dir = tmp_path / "broken"
    shutil.copytree(tiny_street.root, scene_dir)
    victim = sorted((scene_dir / "images").iterdir())[3]
    victim.write_bytes(b"not a png at all")
    rc = main(["train", "--data", str(scene_dir), "--out", str(tmp_path / "g"), "--iters", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{victim}: image could not be decoded" in err and "Traceback" not in err


def test_eval_writes_outputs_and_depth_geometry(tiny_street, tmp_path: Path) -> None:
    import open3d as o3d

    from recon.eval.evaluate import evaluate_run
    from recon.eval.export import export_depth_points

    run_dir = tmp_path / "x"
    run(tiny_cfg(tiny_street.root, run_dir, "--exposure"))
    m = evaluate_run(run_dir, progress=False)
    assert m["depth_reference"] == "ground_truth" and m["depth"]["overall"]["n"] > 0
    test_ids = [f.id for f in tiny_street.test_frames]
    assert sorted(p.stem for p in (run_dir / "eval" / "images").glob("*.png")) == sorted(test_ids)
    assert json.loads((run_dir / "eval" / "metrics.json").read_text())["psnr"] == pytest.approx(m["psnr"])
    ply = export_depth_points(run_dir, mesh=True)
    pcd = o3d.io.read_point_cloud(str(ply))
    assert len(pcd.points) > 100 and pcd.has_colors()
    assert (run_dir / "eval" / "depth_mesh.ply").is_file()


def test_full_preset_wires_both_supervisions(tiny_street, tmp_path: Path) -> None:
    from recon.train.build import build_trainer

    cfg = tiny_cfg(tiny_street.root, tmp_path / "f", "full", "--checkpoint-every", "0", "--loss.dof-start", "0",
                   "--loss.mv-start", "0", "--iters", "8", "--log-every", "1")
    assert cfg.init.far_from_prior and cfg.optim.means_step_by_distance and cfg.loss.dof_lenses_per_step == 1
    prepare_run_folder(cfg)
    tr = build_trainer(cfg)
    dof = next(s for s in tr.supervisions if s.name == "dof")
    assert all(len(lenses) == cfg.loss.dof_focus_count + 1 for lenses in dof.lenses.values())
    train_run(tr, progress=False)
    recs = [json.loads(line) for line in (tmp_path / "f" / "metrics.jsonl").read_text().splitlines()]
    assert all(r.get("dof", 0) > 0 for r in recs), recs
    # the 64x40 street is too small for the offline matcher: the term is wired and simply has no points
    # (tests/test_match.py covers matching and the loss on the 160x96 street)
    assert any(s.name == "mv" for s in tr.supervisions)


def test_position_steps_stretch_with_distance() -> None:
    """Far Gaussians take proportionally longer position steps (equal in angle); near ones are unchanged."""
    from types import SimpleNamespace

    before = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 100.0]])
    after = before + 0.01
    fake = SimpleNamespace(params={"means": after.clone()}, scene_center=torch.zeros(3), scene_scale=10.0)
    Trainer._scale_mean_steps(fake, before)
    step = fake.params["means"] - before
    assert torch.allclose(step[0], torch.full((3,), 0.01))  # within the scene scale: the plain Adam step
    assert torch.allclose(step[1], torch.full((3,), 0.1), atol=1e-3)  # 100 m away, scale 10 m: 10x the step


@pytest.mark.parametrize(("densify_from", "path"), [("image", "cpp"), ("image", "torch"), ("image", "two_pass"),
                                                     ("all", "cpp")])
def test_densification_statistic_comes_from_the_image_terms(tiny_street, tmp_path: Path, densify_from: str,
                                                            path: str, monkeypatch) -> None:
    """With densify_from='image' the strategy's screen-space gradient is the image terms' alone while the
    parameters still receive every term's gradient; with 'all' it is the sum. Paths: the C++ compositor's split
    walk, the torch compositor's, and two backward passes (what runs on gsplat's CUDA kernels)."""
    if path == "torch":
        monkeypatch.setenv("RECON_DISABLE_CPP_RASTERIZER", "1")
    cfg = tiny_cfg(tiny_street.root, tmp_path / "run", "lidar", "--loss.lidar-depth-weight", "5.0",
                   "--strategy.densify-from", densify_from)
    prepare_run_folder(cfg)
    tr = Trainer(cfg)
    view = tr.views[0]

    def grads(which: str) -> tuple[torch.Tensor, torch.Tensor]:
        for p in tr.params.values():
            p.grad = None
        out = tr.render(view, 0)
        if path == "two_pass":
            out.info.pop("split_grad_outputs")
        else:
            assert "split_grad" in out.info
        terms = tr.losses(0, view, out)
        assert set(terms) == {"photo", "sky", "lidar"}
        if which == "trainer":
            tr._backward(0, terms, out)
        else:
            keys = ("photo", "sky") if which == "image" else tuple(terms)
            torch.stack([terms[k] for k in keys]).sum().backward()
        return out.info["means2d"].grad.clone(), tr.params["means"].grad.clone()

    g2d_photo, _ = grads("image")
    g2d_all, gmeans_all = grads("all")
    g2d, gmeans = grads("trainer")
    assert not torch.allclose(g2d_photo, g2d_all)  # the LiDAR term does move the screen-space gradient
    torch.testing.assert_close(gmeans, gmeans_all, rtol=1e-4, atol=1e-7)  # parameters: every term, either way
    torch.testing.assert_close(g2d, g2d_photo if densify_from == "image" else g2d_all, rtol=1e-4, atol=1e-9)


def test_a_training_step_leaves_no_reference_cycle_behind(tiny_street, tmp_path: Path) -> None:
    """The rendered graph is freed by reference counting as soon as the step is over. A cycle through the
    compositor's autograd node (once: SplitGradient holding the node's outputs) kept every iteration's graph alive
    until Python's cycle collector ran, and a 3000-iteration run grew past 24 GiB."""
    import gc
    import weakref

    cfg = tiny_cfg(tiny_street.root, tmp_path / "run", "lidar")
    prepare_run_folder(cfg)
    tr = Trainer(cfg)
    view = tr.views[0]
    gc.collect()
    gc.disable()
    try:
        out = tr.render(view, 0)
        terms = tr.losses(0, view, out)
        raw = weakref.ref(out.info["split_grad_outputs"][0])
        tr._backward(0, terms, out)
        del out, terms
        assert raw() is None
    finally:
        gc.enable()


def test_dof_edge_mask_and_depth_gradient_options(tiny_street, tmp_path: Path) -> None:
    from recon.train.build import build_trainer

    def dof_of(*extra: str):
        cfg = tiny_cfg(tiny_street.root, tmp_path / "_".join(extra or ("plain",)), "lidar_dof", "--checkpoint-every",
                       "0", "--loss.dof-start", "0", *extra)
        prepare_run_folder(cfg)
        tr = build_trainer(cfg)
        return tr, next(s for s in tr.supervisions if s.name == "dof")

    tr, plain = dof_of()
    _, edged = dof_of("--loss.dof-edge-mask-px", "2")
    fid = next(iter(plain.priors))
    c0, c1 = plain.priors[fid][1], edged.priors[fid][1]
    assert bool((c1 <= c0).all()) and float(c1.sum()) < float(c0.sum())  # only removes weight, and some

    # without the depth gradient the loss reaches the image only: depth and alpha receive nothing from it
    _, detached = dof_of("--loss.no-dof-depth-gradient")
    for sup, expect in ((plain, True), (detached, False)):
        view = tr.views[0]
        out = tr.render(view, 0)
        out.depth.retain_grad()
        out.alpha.retain_grad()
        sup(0, view, out)["dof"].backward()
        got = out.depth.grad is not None and bool(out.depth.grad.abs().sum() > 0)
        assert got == expect
        assert out.rgb.requires_grad
