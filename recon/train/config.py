"""Training configuration (tyro dataclasses). Presets in ``configs/*.toml`` override these defaults.

Units: metres for scene quantities, pixels for image quantities; learning rates follow gsplat's
``examples/simple_trainer.py`` (means scaled by the scene extent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from recon.losses.multiview import Normalise, RobustLoss
from recon.match.factory import MatcherKind
from recon.match.triangulate import TriangulationConfig
from recon.model.init_points import InitConfig
from recon.train.strategy import DefaultStrategyConfig, StrategyConfig


@dataclass
class OptimConfig:
    """Learning rates (Adam) and schedules."""

    means_lr: float = 1.6e-4
    """Multiplied by the scene scale; decays exponentially to 1% by the last iteration."""
    means_step_by_distance: bool = False
    """Stretch each Gaussian's position step by its distance from the cameras over the scene scale (>= 1), so far
    Gaussians move by the same angle per step as near ones and a depth loss can actually move them."""
    scales_lr: float = 5e-3
    quats_lr: float = 1e-3
    opacities_lr: float = 5e-2
    sh0_lr: float = 2.5e-3
    shN_lr: float = 2.5e-3 / 20
    sky_lr: float = 1e-2
    exposure_lr: float = 1e-3
    sh_degree: int = 3
    sh_degree_interval: int = 300
    """Raise the active SH degree by one every this many iterations."""


@dataclass
class LossConfig:
    """Loss weights. The DoF and multi-view terms are off in the baseline."""

    ssim_lambda: float = 0.2
    sky_weight: float = 0.05
    """Weight of alpha -> 0 on sky-mask pixels (only where the scene has sky masks)."""
    lidar_depth_weight: float = 0.0
    """Sparse LiDAR depth loss (the 'lidar' preset: what drivestudio / Street Gaussians do)."""
    lidar_depth_kind: Literal["inverse_l1", "l1"] = "inverse_l1"
    dof_weight: float = 0.0
    """Depth-of-field loss (preset 'dof'); needs recon.optics and a metric prior."""
    dof_prior: str = "auto"
    """Prior feeding the DoF loss: auto (mono when its weights are on disk, else LiDAR, else SfM points; see
    recon.priors.registry.training_source), lidar, sfm, mono, dfd, or simulated (synthetic scenes only: ground truth
    degraded with a real model's error profile, a test fixture)."""
    dof_focus_count: int = 3
    """Virtual lenses calibrated over the prior's whole depth range (focus at quantiles in inverse depth)."""
    dof_max_blur_px: float = 6.0
    """Largest blur diameter (pixels) each virtual lens gives over its depth range."""
    dof_far_band: bool = True
    """Add a lens calibrated on the far band alone (the whole-range lenses barely blur beyond a few tens of metres)."""
    dof_far_saturation: float = 2.0
    """The far-band lens's CoC saturates smoothly at this multiple of dof_max_blur_px (nearer pixels)."""
    dof_lenses_per_step: int = 1
    """Lenses evaluated per step, in rotation (0 = all every step; 1 keeps the overhead of one defocus pass)."""
    dof_start: int = 200
    dof_depth_gradient: bool = True
    """Let the DoF loss move depth (False: rendered depth and alpha are detached in it, so it reaches colours and
    shapes through the blurred image only; an ablation separating its depth signal from its image signal)."""
    dof_edge_mask_px: int = 0
    """Drop the DoF loss within this many pixels of a depth discontinuity of the prior (0: keep every pixel; see
    recon.losses.dof.occlusion_edge_mask): densified priors are least reliable at occlusion edges."""
    dof_edge_ratio: float = 1.3
    """Depth ratio (farther / nearer within the window) that counts as a discontinuity for --loss.dof-edge-mask-px."""
    mv_weight: float = 0.0
    """Multi-view consistency loss (preset 'mv')."""
    mv_start: int = 200
    mv_matcher: MatcherKind = "auto"
    """Matcher of the multi-view pairs: auto (LoFTR with local weights, else XFeat+LighterGlue, else SIFT), or one by
    name (see recon.match.factory)."""
    mv_max_rel_depth_per_px: float = TriangulationConfig.max_rel_depth_per_px
    """Keep triangulated points whose depth moves by at most this fraction per pixel of match error (larger: more
    points, near the epipole and at short baselines, each weighted down by that sensitivity; see
    recon.match.triangulate)."""
    mv_behind_scale: float = 1.0
    """Scale of the penalty where rendered depth lies behind its target; below 1 trades near-band depth accuracy for
    image quality (occlusion-edge targets, which sit in front of the true surface, pull less; see
    recon.losses.multiview)."""
    mv_robust: RobustLoss = "huber"
    """Penalty of the log-depth residual: 'huber' (quadratic within --loss.mv-scale, linear beyond: every target
    keeps pulling), 'cauchy' (redescending: a target the rendering disagrees with by many scales, such as a wrong
    match on foliage or an occlusion edge, pulls less and less) or 'l1'."""
    mv_scale: float = 0.05
    """Scale of the robust penalty in log depth (0.05 ~ 5 %)."""
    mv_normalise: Normalise = "count"
    """'count': weights are rescaled to average 1 over the scene and each view's loss is sum(w * error) / points, so
    a view whose points are unreliable pulls less; 'weights': each view's loss is its weighted mean error, so every
    view pulls equally hard (see recon.losses.multiview)."""
    depth_fade_from: float = 1.0
    """Fraction of --iters after which the DoF and multi-view weights fall linearly to 0 at the last iteration
    (1.0: constant to the end). The photometric loss alone then settles appearance where the prior or the matches
    are wrong (see recon.train.schedule.fade_out)."""


@dataclass
class TrainConfig:
    """Train 3D Gaussians on a recon scene folder.

    Example: ``recon train --data demo/street --out runs/street baseline``.
    """

    data: Path
    """Scene folder (with scene.json), e.g. from `recon data synth` or `recon data convert`."""
    out: Path
    """Run folder: checkpoints, metrics.jsonl, config.json, point_cloud.ply, eval/."""
    preset: str = "baseline"
    """Name of the preset the run started from (set by the positional preset argument)."""
    iters: int = 2_000
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """'auto' uses CUDA (gsplat kernels) when available, else the CPU rasterizer."""
    downscale: float = 1.0
    """Train on images resized by this factor (e.g. 0.5)."""
    init: InitConfig = field(default_factory=InitConfig)
    strategy: StrategyConfig = field(default_factory=DefaultStrategyConfig)
    """Densification: `strategy:default` (3DGS) or `strategy:mcmc` (3DGS-MCMC), see recon.train.strategy."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    use_lidar: bool = True
    """Let training use the training frames' LiDAR sweeps (seeding, the LiDAR depth loss, LiDAR as the DoF prior).
    --no-use-lidar is the camera-only regime: LiDAR then serves only to score depth. Held-out frames' sweeps never
    reach training either way (recon.data.splits)."""
    init_opacity: float = 0.1
    sky_model: bool = True
    """Learn a view-direction sky map composited behind the Gaussians."""
    exposure: bool = False
    """Learn a per-camera affine colour correction (train-time only; test views use their camera's)."""
    antialiased: bool = False
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    eval_at_end: bool = True
    resume: bool = False
    """Continue from the newest usable checkpoint in --out (same scene and config required)."""
    overwrite: bool = False
    """Delete an existing --out folder first."""
    threads: int = 0
    """torch CPU threads (0 = torch's default)."""
