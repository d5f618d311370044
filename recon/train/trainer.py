"""The training loop: one responsibility per method, losses from ``recon.losses``, densification from gsplat.

Per iteration: pick a training view (seeded permutation per epoch), render it with :func:`render_frame`, add the
enabled loss terms (photometric, sky alpha, LiDAR depth, and the supervisions plugged in as :class:`Supervision`
objects: depth of field, multi-view), step the optimisers and the densification strategy.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from recon.data.check import check_scene_files
from recon.data.scene import Scene
from recon.data.splits import training_scene
from recon.errors import ReconError
from recon.losses.depth import sky_alpha_loss, sparse_depth_loss
from recon.losses.photometric import photometric_loss
from recon.model.gaussians import activated, create_gaussians
from recon.model.ground import estimate_up
from recon.model.init_points import initial_points
from recon.model.render_frame import RenderOutput, apply_exposure, render_frame
from recon.model.sky import SkyModel
from recon.train.config import TrainConfig
from recon.train.config_key import config_dict, config_key
from recon.train.strategy import DefaultStrategyConfig, make_strategy, strategy_regularisers
from recon.train.views import View, load_views

PARAM_LRS = ("means", "scales", "quats", "opacities", "sh0", "shN")
IMAGE_TERMS = ("photo", "sky")  # image reconstruction: the terms whose screen-space gradient drives densification


class Supervision(Protocol):
    """An extra loss term plugged into the trainer (DoF, multi-view). Returns named, already weighted terms."""

    name: str

    def __call__(self, step: int, view: View, out: RenderOutput) -> dict[str, torch.Tensor]: ...


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ReconError("--device cuda requested but CUDA is not available (use --device auto or cpu)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    """Holds the scene views, the Gaussians, the optimisers and the strategy; ``train()`` runs the loop."""

    def __init__(self, cfg: TrainConfig, supervisions: list[Callable[[Trainer], Supervision]] | None = None) -> None:
        self.cfg = cfg
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.device = pick_device(cfg.device)
        scene = Scene.load(cfg.data)
        check_scene_files(scene)  # a corrupt test image or LiDAR sweep stops here, not after training
        # everything below (seeds, priors, losses) sees LiDAR only through this: held-out sweeps never train
        self.scene = training_scene(scene, cfg.use_lidar)
        frames = self.scene.train_frames
        if not frames:
            raise ReconError(f"{self.scene.root / 'scene.json'}: no frames in the 'train' split")
        self.camera_names = sorted(self.scene.cameras)
        self.views = load_views(frames, cfg.downscale, self.device, self.camera_names,
                                lidar=cfg.loss.lidar_depth_weight > 0, desc="loading training views")
        c2ws = np.stack([f.cam2world for f in frames])
        centers = c2ws[:, :3, 3]
        self.scene_scale = float(max(1.0, 1.1 * np.linalg.norm(centers - centers.mean(0), axis=1).max()))
        self.scene_center = torch.tensor(centers.mean(0), dtype=torch.float32, device=self.device)
        self.up = estimate_up(c2ws)
        self._init_model()
        self.supervisions = [make(self) for make in (supervisions or [])]
        self.step = 0
        self.preset_description = ""
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self._order: list[int] = []

    # ------------------------------------------------------------------ setup
    def _init_model(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        images = {v.frame.id: v.frame.load_image() for v in self.views}
        prior_depths = None
        if cfg.init.far_from_prior:
            from recon.priors.registry import prior_for_training

            prior_depths = {v.frame.id: prior_for_training(self.scene, v.frame, cfg.loss.dof_prior, cfg.seed).depth
                            for v in tqdm(self.views, desc=f"far seeds from the {cfg.loss.dof_prior} prior",
                                          leave=False)}
        pts = initial_points(self.scene, [v.frame for v in self.views], images, cfg.init, seed=cfg.seed,
                             prior_depths=prior_depths)
        self.init_source = pts.source
        self.params = create_gaussians(pts.xyz, pts.rgb, cfg.optim.sh_degree, cfg.init_opacity,
                                       seed=cfg.seed).to(self.device)
        o = cfg.optim
        lrs = {"means": o.means_lr * self.scene_scale, "scales": o.scales_lr, "quats": o.quats_lr,
               "opacities": o.opacities_lr, "sh0": o.sh0_lr, "shN": o.shN_lr}
        # fused Adam: one kernel per tensor instead of a chain of ops (CPU and CUDA); same update rule
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        self.optimizers = {k: torch.optim.Adam([{"params": self.params[k], "lr": lrs[k], "name": k}], eps=1e-15,
                                               **fused) for k in PARAM_LRS}
        self.means_sched = torch.optim.lr_scheduler.ExponentialLR(
            self.optimizers["means"], gamma=0.01 ** (1.0 / max(1, cfg.iters)))
        self.sky = SkyModel(up=tuple(float(x) for x in self.up)).to(self.device) if cfg.sky_model else None
        n_cam = len(self.camera_names)
        self.exposure = (torch.nn.Parameter(torch.eye(3, 4, device=self.device).repeat(n_cam, 1, 1))
                         if cfg.exposure else None)
        aux: list[dict[str, Any]] = []
        if self.sky is not None:
            aux.append({"params": list(self.sky.parameters()), "lr": o.sky_lr})
        if self.exposure is not None:
            aux.append({"params": [self.exposure], "lr": o.exposure_lr})
        self.aux_opt = torch.optim.Adam(aux, **fused) if aux else None
        self.strategy, self.strategy_state = make_strategy(cfg.strategy, self.params, self.optimizers, self.device,
                                                           self.scene_scale)

    # ------------------------------------------------------------------ one iteration
    def next_view(self) -> View:
        if not self._order:
            self._order = torch.randperm(len(self.views), generator=self.gen).tolist()
        return self.views[self._order.pop()]

    def sh_degree(self, step: int) -> int:
        return min(step // max(1, self.cfg.optim.sh_degree_interval), self.cfg.optim.sh_degree)

    def render(self, view: View, step: int | None = None) -> RenderOutput:
        deg = self.cfg.optim.sh_degree if step is None else self.sh_degree(step)
        return render_frame(activated(self.params), view.viewmat, view.K, view.width, view.height, deg, self.sky,
                            antialiased=self.cfg.antialiased)

    def apply_exposure(self, rgb: torch.Tensor, view: View) -> torch.Tensor:
        return apply_exposure(rgb, self.exposure, view.camera_index)

    def losses(self, step: int, view: View, out: RenderOutput) -> dict[str, torch.Tensor]:
        cfg = self.cfg.loss
        pred = self.apply_exposure(out.rgb, view)
        terms = {"photo": photometric_loss(pred.permute(2, 0, 1)[None], view.image.permute(2, 0, 1)[None],
                                           cfg.ssim_lambda)}
        if view.sky is not None and cfg.sky_weight > 0:
            terms["sky"] = cfg.sky_weight * sky_alpha_loss(out.alpha, view.sky.float())
        if view.lidar_depth is not None and cfg.lidar_depth_weight > 0:
            terms["lidar"] = cfg.lidar_depth_weight * sparse_depth_loss(out.depth, view.lidar_depth,
                                                                        kind=cfg.lidar_depth_kind)
        terms.update(strategy_regularisers(self.cfg.strategy, self.params))
        for sup in self.supervisions:
            terms.update(sup(step, view, out))
        return terms

    @torch.no_grad()
    def _scale_mean_steps(self, before: torch.Tensor) -> None:
        """Stretch each Gaussian's position step by its distance from the rig over the scene scale (at least 1).

        Adam steps are about ``lr`` whatever the gradient, so with one position learning rate a Gaussian 150 m away
        moves as many metres per step as one at 5 m, i.e. 30x fewer pixels and a tiny fraction of its possible depth
        error: depth supervision could never move it. Scaling by distance makes steps equal in angle."""
        means = self.params["means"]
        factor = ((before - self.scene_center).norm(dim=1, keepdim=True) / self.scene_scale).clamp_min(1.0)
        means.copy_(before + (means - before) * factor)

    def _backward(self, step: int, terms: dict[str, torch.Tensor], out: RenderOutput) -> None:
        """Backpropagate every term; with ``densify_from='image'`` the densification statistic keeps the gradient
        of the image terms only.

        gsplat's DefaultStrategy grows Gaussians where the screen-space gradient ``info["means2d"].grad`` is large:
        3DGS's signal of under-reconstructed image regions. A depth or defocus supervision adds its own gradient
        there and, with it, Gaussians (the DoF loss nearly doubled their number on KITTI, and the time per
        iteration with them). So while densification runs, ``means2d.grad`` is replaced by the image terms' part.
        recon's CPU rasterizer computes that part inside the one backward pass (``info["split_grad"]``, see
        :class:`recon.render.composite.SplitGradient`); on gsplat's CUDA kernels the image terms are backpropagated
        first and the other terms second.
        """
        s = self.cfg.strategy
        image = [v for k, v in terms.items() if k in IMAGE_TERMS]
        other = [v for k, v in terms.items() if k not in IMAGE_TERMS and v.requires_grad]
        means2d = out.info.get("means2d")
        if (not isinstance(s, DefaultStrategyConfig) or s.densify_from != "image" or not image or not other
                or step >= s.refine_stop or not isinstance(means2d, torch.Tensor) or not means2d.requires_grad):
            torch.stack(list(terms.values())).sum().backward()
            return
        image_loss = torch.stack(image).sum()
        split, outputs = out.info.get("split_grad"), out.info.get("split_grad_outputs")
        if split is not None and outputs is not None:
            g_out, g_alpha = torch.autograd.grad(image_loss, outputs, retain_graph=True, allow_unused=True)
            split.grad_out = torch.zeros_like(outputs[0]) if g_out is None else g_out
            split.grad_alpha = torch.zeros_like(outputs[1]) if g_alpha is None else g_alpha
            (image_loss + torch.stack(other).sum()).backward()
            kept = split.means2d_grad
            split.grad_out = split.grad_alpha = split.means2d_grad = None
        else:
            image_loss.backward(retain_graph=True)
            kept = None if means2d.grad is None else means2d.grad.clone()
            torch.stack(other).sum().backward()
        if kept is not None:
            means2d.grad = kept

    def train_step(self, step: int) -> dict[str, float]:
        view = self.next_view()
        out = self.render(view, step)
        self.strategy.step_pre_backward(self.params, self.optimizers, self.strategy_state, step, out.info)
        terms = self.losses(step, view, out)
        loss = torch.stack(list(terms.values())).sum()
        with torch.no_grad():  # every number the step reports, read from the device at once (one sync, not one each)
            mse = torch.mean((self.apply_exposure(out.rgb, view).clamp(0, 1) - view.image) ** 2)
            values = torch.stack([loss.detach(), mse.to(loss.dtype), *(v.detach() for v in terms.values())]).tolist()
        if not math.isfinite(values[0]):
            raise ReconError(f"loss became {values[0]} at iteration {step}; lower the learning rates or check "
                             "the scene's poses and depth priors")
        self._backward(step, terms, out)
        if isinstance(self.cfg.strategy, DefaultStrategyConfig):
            self.strategy.step_post_backward(self.params, self.optimizers, self.strategy_state, step, out.info)
        else:  # MCMC scales its position noise by the current means learning rate
            self.strategy.step_post_backward(self.params, self.optimizers, self.strategy_state, step, out.info,
                                             lr=self.means_sched.get_last_lr()[0])
        before = self.params["means"].detach().clone() if self.cfg.optim.means_step_by_distance else None
        for opt in self.optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        if before is not None:
            self._scale_mean_steps(before)
        if self.aux_opt is not None:
            self.aux_opt.step()
            self.aux_opt.zero_grad(set_to_none=True)
        self.means_sched.step()
        rec = dict(zip(terms, values[2:]))
        rec.update(loss=values[0], psnr=-10.0 * math.log10(max(values[1], 1e-10)),
                   n_gaussians=int(self.params["means"].shape[0]))
        return rec

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "params": {k: v.detach().cpu() for k, v in self.params.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "means_sched": self.means_sched.state_dict(),
            "aux_opt": self.aux_opt.state_dict() if self.aux_opt is not None else None,
            "sky": self.sky.state_dict() if self.sky is not None else None,
            "exposure": self.exposure.detach().cpu() if self.exposure is not None else None,
            "strategy_state": {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in self.strategy_state.items()},
            "rng": {"gen": self.gen.get_state(), "torch": torch.get_rng_state(), "order": list(self._order),
                    "numpy": np.random.get_state(), "python": random.getstate()},
            "scene_fingerprint": self.scene.fingerprint(),
            "config_key": config_key(self.cfg),
            "config": config_dict(self.cfg),
            "up": self.up.tolist(), "scene_scale": self.scene_scale, "camera_names": self.camera_names,
            "sh_degree": self.cfg.optim.sh_degree,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.params = torch.nn.ParameterDict(
            {k: torch.nn.Parameter(v.to(self.device)) for k, v in state["params"].items()})
        for k, opt in self.optimizers.items():
            opt.param_groups[0]["params"] = [self.params[k]]
            opt.state.clear()
            opt.load_state_dict(state["optimizers"][k])
        self.means_sched.load_state_dict(state["means_sched"])
        if self.sky is not None and state.get("sky") is not None:
            self.sky.load_state_dict(state["sky"])
        if self.exposure is not None and state.get("exposure") is not None:
            with torch.no_grad():
                self.exposure.copy_(state["exposure"].to(self.device))
        if self.aux_opt is not None and state.get("aux_opt") is not None:
            self.aux_opt.load_state_dict(state["aux_opt"])
        self.strategy_state = {k: (v.to(self.device) if torch.is_tensor(v) else v)
                               for k, v in state["strategy_state"].items()}
        rng = state["rng"]
        self.gen.set_state(rng["gen"])
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self._order = list(rng["order"])
        self.step = int(state["step"])

    # ------------------------------------------------------------------ the loop
    def fit(self, log: Callable[..., None] | None = None, checkpoint: Callable[[int], None] | None = None,
            progress: bool = True) -> dict[str, Any]:
        """Train from ``self.step`` to ``cfg.iters``; returns a summary of the run.

        ``log(step, **record)`` receives the iteration's loss terms, PSNR and Gaussian count every ``log_every``
        steps; ``checkpoint(step)`` is called every ``checkpoint_every`` steps before the last (the caller saves
        :meth:`state_dict`). Files are the caller's business (see :func:`recon.run.training.train_run`).
        """
        cfg = self.cfg
        t0 = time.perf_counter()
        bar = tqdm(range(self.step, cfg.iters), initial=self.step, total=cfg.iters, desc="training",
                   disable=not progress, dynamic_ncols=True)
        rec: dict[str, float] = {}
        for step in bar:
            rec = self.train_step(step)
            self.step = step + 1
            if self.step % cfg.log_every == 0 or self.step == cfg.iters:
                if log is not None:
                    log(self.step, **rec, elapsed_s=time.perf_counter() - t0)
                bar.set_postfix(loss=f"{rec['loss']:.4f}", psnr=f"{rec['psnr']:.2f}", gs=rec["n_gaussians"])
            if (checkpoint is not None and cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0
                    and self.step < cfg.iters):
                checkpoint(self.step)
        bar.close()
        return {"iters": self.step, "train_seconds": time.perf_counter() - t0,
                "n_gaussians": int(self.params["means"].shape[0]), "final_train_psnr": rec.get("psnr"),
                "init_source": self.init_source, "scene_scale_m": self.scene_scale,
                "means_lr_m": self.cfg.optim.means_lr * self.scene_scale}
