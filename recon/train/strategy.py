"""Densification strategies: their configs (a union, like gsplat's ``Union[DefaultStrategy, MCMCStrategy]``), the
strategy objects built from them, and a pure-torch MCMC for the CPU.

On the command line the strategy is a tyro subcommand: ``strategy:default`` (3DGS clone/split/prune, the default)
or ``strategy:mcmc`` (3DGS-MCMC relocation under a Gaussian budget), followed by its own ``--strategy.*`` options.
``recon train`` and ``recon bench --extra`` also accept ``--strategy.*`` options without the subcommand: they then
apply to the preset's strategy (:func:`normalise_strategy_args`). In a preset TOML, ``[strategy] kind = "mcmc"``
selects the class.

gsplat 1.5.3's MCMC relocation (``gsplat.relocation.compute_relocation``) and position noise
(``quat_scale_to_covar_preci`` in ``inject_noise_to_position``) launch CUDA kernels: :class:`TorchMCMCStrategy`
computes the same quantities in torch on any device (same fields and calls as ``gsplat.strategy.MCMCStrategy``).
Nothing global is patched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import torch
import tyro
from gsplat.strategy import DefaultStrategy, MCMCStrategy
from gsplat.strategy.ops import _multinomial_sample, _update_param_with_optimizer
from torch import Tensor

from recon.errors import ReconError
from recon.render.projection import covariance_3d


@dataclass
class RefineSchedule:
    """When a strategy changes the set of Gaussians: every ``refine_every`` iterations from ``refine_start`` until
    ``refine_stop``."""

    refine_start: int = 200
    refine_stop: int = 1_800
    refine_every: int = 100


@dataclass
class DefaultStrategyConfig(RefineSchedule):
    """3DGS densification (gsplat's ``DefaultStrategy``): clone, split and prune by screen-space gradient."""

    kind: ClassVar[str] = "default"
    reset_every: int = 100_000
    """Opacity reset period (default off: short CPU schedules lose more than they gain from resets)."""
    grow_grad2d: float = 0.0002
    prune_opa: float = 0.005
    densify_from: Literal["image", "all"] = "image"
    """Which loss gradients feed the densification statistic (the screen-space gradient of each Gaussian):
    'image' = the image reconstruction terms only (photometric and sky mask), as in 3DGS, so an extra supervision
    (LiDAR, DoF, multi-view) moves Gaussians without also multiplying them; 'all' = every term. With 'image',
    recon's CPU rasterizer returns both gradients from one backward pass; on gsplat (CUDA) it costs a second
    backward pass through the rasterizer while densification runs."""


@dataclass
class MCMCStrategyConfig(RefineSchedule):
    """3DGS-MCMC (gsplat's ``MCMCStrategy``): dead Gaussians relocated onto live ones, growth up to a budget, position
    noise; with its opacity and scale regularisers."""

    kind: ClassVar[str] = "mcmc"
    cap_max: int = 150_000
    """Maximum number of Gaussians."""
    noise_lr: float = 5e5
    """Position noise, times the current means learning rate (gsplat's default)."""
    min_opacity: float = 0.005
    """Gaussians below this opacity are relocated."""
    opacity_reg: float = 0.01
    """Weight of the mean-opacity regulariser (3DGS-MCMC)."""
    scale_reg: float = 0.01
    """Weight of the mean-scale regulariser (3DGS-MCMC)."""


StrategyConfig = (Annotated[DefaultStrategyConfig, tyro.conf.subcommand("default")]
                  | Annotated[MCMCStrategyConfig, tyro.conf.subcommand("mcmc")])
STRATEGIES: dict[str, type] = {"default": DefaultStrategyConfig, "mcmc": MCMCStrategyConfig}


def strategy_config(kind: str) -> DefaultStrategyConfig | MCMCStrategyConfig:
    """A strategy config of ``kind`` with its defaults; an unknown kind is a one-line error."""
    if kind not in STRATEGIES:
        raise ReconError(f"unknown strategy kind {kind!r} (choose from {', '.join(STRATEGIES)})")
    return STRATEGIES[kind]()


def make_strategy(cfg: DefaultStrategyConfig | MCMCStrategyConfig, params: Any, optimizers: dict[str, Any],
                  device: torch.device, scene_scale: float) -> tuple[Any, dict[str, Any]]:
    """The gsplat strategy object for ``cfg`` and its initial state, checked against the parameters."""
    if isinstance(cfg, DefaultStrategyConfig):
        strat = DefaultStrategy(prune_opa=cfg.prune_opa, grow_grad2d=cfg.grow_grad2d,
                                refine_start_iter=cfg.refine_start, refine_stop_iter=cfg.refine_stop,
                                refine_every=cfg.refine_every, reset_every=cfg.reset_every, verbose=False)
        strat.check_sanity(params, optimizers)
        return strat, strat.initialize_state(scene_scale=scene_scale)
    # gsplat's relocation and noise injection call CUDA ops: recon's torch versions on CPU
    mcmc = MCMCStrategy if device.type == "cuda" else TorchMCMCStrategy
    strat = mcmc(cap_max=cfg.cap_max, noise_lr=cfg.noise_lr, refine_start_iter=cfg.refine_start,
                 refine_stop_iter=cfg.refine_stop, refine_every=cfg.refine_every, min_opacity=cfg.min_opacity)
    strat.check_sanity(params, optimizers)
    return strat, strat.initialize_state()


def strategy_regularisers(cfg: DefaultStrategyConfig | MCMCStrategyConfig, params: Any) -> dict[str, Tensor]:
    """Loss terms the strategy asks for (3DGS-MCMC's opacity and scale regularisers; none for the default)."""
    if not isinstance(cfg, MCMCStrategyConfig):
        return {}
    terms = {}
    if cfg.opacity_reg > 0:
        terms["opa_reg"] = cfg.opacity_reg * torch.sigmoid(params["opacities"]).mean()
    if cfg.scale_reg > 0:
        terms["scale_reg"] = cfg.scale_reg * torch.exp(params["scales"]).mean()
    return terms


def normalise_strategy_args(args: list[str], default_kind: str) -> list[str]:
    """Reorder command-line tokens for tyro's strategy subcommand: every other option first, then
    ``strategy:KIND`` (the one given, else ``default_kind`` when any ``--strategy.*`` option is given), then the
    ``--strategy.*`` options with their values. tyro applies options to the subcommand directly before them."""
    rest: list[str] = []
    strat: list[str] = []
    kind: str | None = None
    i = 0
    while i < len(args):
        tok = args[i]
        if tok.startswith("strategy:"):
            kind = tok.split(":", 1)[1]
        elif tok.startswith("--strategy."):
            strat.append(tok)
            if "=" not in tok and i + 1 < len(args) and not args[i + 1].startswith("--"):
                strat.append(args[i + 1])
                i += 1
        else:
            rest.append(tok)
        i += 1
    if kind is None and not strat:
        return rest
    kind = kind or default_kind
    if kind not in STRATEGIES:
        raise ReconError(f"strategy:{kind}: unknown strategy (choose from "
                         f"{', '.join('strategy:' + k for k in STRATEGIES)})")
    return [*rest, f"strategy:{kind}", *strat]


def compute_relocation(opacities: Tensor, scales: Tensor, ratios: Tensor, binoms: Tensor) -> tuple[Tensor, Tensor]:
    """Equation 9 of "3DGS as MCMC": new opacity 1 - (1 - o)^(1/n) and scale factor o / sum_i sum_k binom * term.

    opacities [N] in (0, 1), scales [N, 3] (actual, not log), ratios [N] copies per Gaussian (clamped to
    1..n_max), binoms [n_max, n_max] binomial table. Same maths as gsplat's ``relocation_kernel``.
    """
    n_max = binoms.shape[0]
    n = ratios.clamp(1, n_max).long()
    dt = opacities.dtype
    new_op = 1.0 - torch.pow(1.0 - opacities, 1.0 / n.to(dt))
    # denom = sum_{i=1..n} sum_{k=0..i-1} binom(i-1, k) (-1)^k / sqrt(k+1) new_op^(k+1)
    i = torch.arange(1, n_max + 1, device=opacities.device)
    k = torch.arange(n_max, device=opacities.device)
    valid = (k[None, :] <= (i[:, None] - 1)).to(dt)  # [i, k]
    sign = torch.where(k % 2 == 0, 1.0, -1.0).to(dt) / torch.sqrt((k + 1).to(dt))
    coef = binoms.to(dt).to(opacities.device)[:n_max, :n_max] * valid * sign[None, :]  # [i, k]
    powers = new_op[:, None] ** (k[None, :] + 1).to(dt)  # [N, k]
    per_i = powers @ coef.T  # [N, i]
    keep = (i[None, :] <= n[:, None]).to(dt)
    denom = (per_i * keep).sum(-1)
    new_scales = (opacities / denom)[:, None] * scales
    return new_op, new_scales


def _share_with_copies(params, sampled: Tensor, binoms: Tensor, min_opacity: float) -> None:
    """Give each sampled Gaussian the opacity and scale it keeps when it is copied (Eq. 9 of "3DGS as MCMC"): the
    sampled Gaussian and its copies together look like the one before."""
    opacities = torch.sigmoid(params["opacities"])
    new_op, new_sc = compute_relocation(
        opacities[sampled].flatten(), torch.exp(params["scales"])[sampled], torch.bincount(sampled)[sampled] + 1, binoms
    )
    new_op = torch.clamp(new_op, max=1.0 - torch.finfo(torch.float32).eps, min=min_opacity)
    params["opacities"].data[sampled] = torch.logit(new_op).reshape(params["opacities"][sampled].shape)
    params["scales"].data[sampled] = torch.log(new_sc)


@torch.no_grad()
def relocate(params, optimizers, state: dict[str, Tensor], mask: Tensor, binoms: Tensor, min_opacity: float = 0.005):
    """``gsplat.strategy.ops.relocate`` with :func:`compute_relocation` (dead Gaussians teleported onto live ones)."""
    opacities = torch.sigmoid(params["opacities"])
    dead = mask.nonzero(as_tuple=True)[0]
    alive = (~mask).nonzero(as_tuple=True)[0]
    sampled = alive[_multinomial_sample(opacities[alive].flatten(), len(dead), replacement=True)]
    _share_with_copies(params, sampled, binoms, min_opacity)

    def param_fn(name: str, p: Tensor) -> Tensor:
        p[dead] = p[sampled]
        return torch.nn.Parameter(p, requires_grad=p.requires_grad)

    def optimizer_fn(key: str, v: Tensor) -> Tensor:
        v[sampled] = 0
        return v

    _update_param_with_optimizer(param_fn, optimizer_fn, params, optimizers)
    for v in state.values():
        if isinstance(v, Tensor):
            v[sampled] = 0


@torch.no_grad()
def sample_add(params, optimizers, state: dict[str, Tensor], n: int, binoms: Tensor, min_opacity: float = 0.005):
    """``gsplat.strategy.ops.sample_add`` with :func:`compute_relocation` (n new Gaussians sampled by opacity)."""
    sampled = _multinomial_sample(torch.sigmoid(params["opacities"]).flatten(), n, replacement=True)
    _share_with_copies(params, sampled, binoms, min_opacity)

    def grow(v: Tensor) -> Tensor:
        return torch.cat([v, torch.zeros((len(sampled), *v.shape[1:]), device=v.device, dtype=v.dtype)])

    def param_fn(name: str, p: Tensor) -> Tensor:
        return torch.nn.Parameter(torch.cat([p, p[sampled]]), requires_grad=p.requires_grad)

    _update_param_with_optimizer(param_fn, lambda key, v: grow(v), params, optimizers)
    for k, v in list(state.items()):
        if isinstance(v, Tensor):
            state[k] = grow(v)


@torch.no_grad()
def inject_noise_to_position(params, optimizers, state: dict[str, Tensor], scaler: float) -> None:
    """Position noise scaled by each Gaussian's covariance, stronger for transparent ones (as gsplat)."""
    opacities = torch.sigmoid(params["opacities"].flatten())
    covars = covariance_3d(params["quats"], torch.exp(params["scales"]))

    def op_sigmoid(x: Tensor, k: float = 100, x0: float = 0.995) -> Tensor:
        return 1 / (1 + torch.exp(-k * (x - x0)))

    noise = torch.randn_like(params["means"]) * op_sigmoid(1 - opacities).unsqueeze(-1) * scaler
    params["means"].add_(torch.einsum("bij,bj->bi", covars, noise))


class TorchMCMCStrategy(MCMCStrategy):
    """gsplat's ``MCMCStrategy`` with its CUDA-only steps replaced by the torch functions of this module."""

    def step_post_backward(self, params, optimizers, state: dict[str, Any], step: int, info: dict[str, Any],
                           lr: float) -> None:
        state["binoms"] = state["binoms"].to(params["means"].device)
        binoms = state["binoms"]
        if self.refine_start_iter < step < self.refine_stop_iter and step % self.refine_every == 0:
            n_reloc = self._relocate_gs(params, optimizers, binoms)
            n_new = self._add_new_gs(params, optimizers, binoms)
            if self.verbose:
                print(f"Step {step}: relocated {n_reloc}, added {n_new}, now {len(params['means'])} GSs.")
        inject_noise_to_position(params, optimizers, {}, scaler=lr * self.noise_lr)

    @torch.no_grad()
    def _relocate_gs(self, params, optimizers, binoms: Tensor) -> int:
        dead = torch.sigmoid(params["opacities"].flatten()) <= self.min_opacity
        n = int(dead.sum().item())
        if n > 0:
            relocate(params, optimizers, {}, dead, binoms, self.min_opacity)
        return n

    @torch.no_grad()
    def _add_new_gs(self, params, optimizers, binoms: Tensor) -> int:
        cur = len(params["means"])
        n = max(0, min(self.cap_max, int(1.05 * cur)) - cur)
        if n > 0:
            sample_add(params, optimizers, {}, n, binoms, self.min_opacity)
        return n
