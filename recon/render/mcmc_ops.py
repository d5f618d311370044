"""Pure-torch replacements for the CUDA calls inside gsplat's ``MCMCStrategy`` (relocation and noise injection).

gsplat 1.5.3's MCMC relocation (``gsplat.relocation.compute_relocation``) and position noise
(``quat_scale_to_covar_preci`` in ``inject_noise_to_position``) launch CUDA kernels. The functions here compute the
same quantities in torch on any device. How a trainer swaps them in: use :class:`TorchMCMCStrategy` where it would
use ``gsplat.strategy.MCMCStrategy`` (same fields, same ``initialize_state`` / ``step_post_backward`` calls)::

    from recon.render.mcmc_ops import TorchMCMCStrategy
    strategy = TorchMCMCStrategy(cap_max=300_000)       # instead of MCMCStrategy(cap_max=300_000)
    state = strategy.initialize_state()
    ...
    strategy.step_post_backward(params, optimizers, state, step, info, lr=means_lr)

Nothing global is patched.
"""

from __future__ import annotations

from typing import Any

import torch
from gsplat.strategy import MCMCStrategy
from gsplat.strategy.ops import _multinomial_sample, _update_param_with_optimizer
from torch import Tensor

from .projection import covariance_3d


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


@torch.no_grad()
def relocate(params, optimizers, state: dict[str, Tensor], mask: Tensor, binoms: Tensor, min_opacity: float = 0.005):
    """``gsplat.strategy.ops.relocate`` with :func:`compute_relocation` (dead Gaussians teleported onto live ones)."""
    opacities = torch.sigmoid(params["opacities"])
    dead = mask.nonzero(as_tuple=True)[0]
    alive = (~mask).nonzero(as_tuple=True)[0]
    n = len(dead)
    eps = torch.finfo(torch.float32).eps
    sampled = alive[_multinomial_sample(opacities[alive].flatten(), n, replacement=True)]
    new_op, new_sc = compute_relocation(
        opacities[sampled].flatten(), torch.exp(params["scales"])[sampled], torch.bincount(sampled)[sampled] + 1, binoms
    )
    new_op = torch.clamp(new_op, max=1.0 - eps, min=min_opacity)

    def param_fn(name: str, p: Tensor) -> Tensor:
        if name == "opacities":
            p[sampled] = torch.logit(new_op).reshape(p[sampled].shape)
        elif name == "scales":
            p[sampled] = torch.log(new_sc)
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
    opacities = torch.sigmoid(params["opacities"])
    eps = torch.finfo(torch.float32).eps
    sampled = _multinomial_sample(opacities.flatten(), n, replacement=True)
    new_op, new_sc = compute_relocation(
        opacities[sampled].flatten(), torch.exp(params["scales"])[sampled], torch.bincount(sampled)[sampled] + 1, binoms
    )
    new_op = torch.clamp(new_op, max=1.0 - eps, min=min_opacity)

    def param_fn(name: str, p: Tensor) -> Tensor:
        if name == "opacities":
            p[sampled] = torch.logit(new_op).reshape(p[sampled].shape)
        elif name == "scales":
            p[sampled] = torch.log(new_sc)
        return torch.nn.Parameter(torch.cat([p, p[sampled]]), requires_grad=p.requires_grad)

    def optimizer_fn(key: str, v: Tensor) -> Tensor:
        return torch.cat([v, torch.zeros((len(sampled), *v.shape[1:]), device=v.device, dtype=v.dtype)])

    _update_param_with_optimizer(param_fn, optimizer_fn, params, optimizers)
    for k, v in list(state.items()):
        if isinstance(v, Tensor):
            state[k] = torch.cat((v, torch.zeros((len(sampled), *v.shape[1:]), device=v.device, dtype=v.dtype)))


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
