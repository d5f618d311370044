"""recon's own tile rasterizer: gsplat 1.5.3 ``rasterization()`` semantics (unpacked) on any device, no CUDA needed.

Pipeline: projection (vectorised torch) -> SH colours -> render-mode channels -> tile binning -> compositing
(:class:`recon.render.composite.RasterizeToPixels`: C++/OpenMP extension when it builds, pure torch otherwise)
-> expected-depth normalisation. ``dense=True`` swaps the tiled compositor for the brute-force reference.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .binning import isect_tiles, isect_tiles_cpp, tile_grid
from .composite import RasterizeToPixels, SplitGradient
from .projection import project_gaussians, project_gaussians_cpp
from .sh import eval_sh

RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")


def _per_camera(x: Tensor, n_cam: int) -> Tensor:
    """``x`` broadcast to a leading camera axis; one camera is a plain view, whose backward costs nothing (an expand's
    backward is a sum over the camera axis, a full pass over the gradient)."""
    return x[None] if n_cam == 1 else x.expand(n_cam, *x.shape)


def _colors_per_camera(
    colors: Tensor, sh_degree: int | None, means: Tensor, viewmats: Tensor, radii: Tensor
) -> Tensor:
    """Per-camera colours [C, N, D]: post-activation colours broadcast, or SH evaluated (+0.5, clamped at 0)."""
    n_cam, n = radii.shape[:2]
    if sh_degree is None:
        return _per_camera(colors, n_cam) if colors.dim() == 2 else colors
    coeffs = colors if colors.dim() == 4 else _per_camera(colors, n_cam)
    campos = torch.linalg.inv(viewmats)[:, :3, 3]  # [C, 3] camera centres, world metres
    vis = (radii > 0).all(-1).reshape(-1).nonzero().squeeze(1)  # only visible ones are ever composited
    cam_idx, g_idx = vis // n, vis % n
    dirs = means[g_idx] - campos[cam_idx]
    rgb = torch.clamp_min(eval_sh(sh_degree, dirs, coeffs[cam_idx, g_idx]) + 0.5, 0.0)
    out = torch.zeros(n_cam * n, 3, dtype=rgb.dtype, device=rgb.device)
    return out.index_put((vis,), rgb).reshape(n_cam, n, 3)


def rasterize_cpu(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    eps2d: float = 0.3,
    sh_degree: int | None = None,
    backgrounds: Tensor | None = None,
    render_mode: str = "RGB",
    rasterize_mode: str = "classic",
    absgrad: bool = False,
    tile_size: int = 16,
    impl: str = "auto",
    dense: bool = False,
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Render C cameras; shapes and conventions as :func:`recon.render.rasterize` (inputs already validated).

    ``impl``: "cpp", "torch" or "auto" (C++ when the extension builds). ``dense``: brute-force reference compositor.
    """
    n_cam = viewmats.shape[0]
    if impl == "auto":
        from .cpp_ext import extension_available

        impl = "cpp" if extension_available() and not means.is_cuda else "torch"
    # The fused C++ projection has no gradient for cameras: use the torch one when a pose is being optimised.
    project = project_gaussians
    if impl == "cpp" and not (viewmats.requires_grad or Ks.requires_grad):
        project = project_gaussians_cpp
    proj = project(
        means, quats, scales, opacities, viewmats, Ks, width, height, eps2d=eps2d, near_plane=near_plane,
        far_plane=far_plane, radius_clip=radius_clip, calc_compensations=rasterize_mode == "antialiased",
    )
    opac = _per_camera(opacities, n_cam)
    if proj.compensations is not None:
        opac = opac * proj.compensations
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()  # DefaultStrategy reads info["means2d"].grad

    if render_mode in ("D", "ED"):
        feats = proj.depths[..., None]
        if backgrounds is not None:
            backgrounds = torch.zeros(n_cam, 1, dtype=feats.dtype, device=feats.device)
    else:
        feats = _colors_per_camera(colors, sh_degree, means, viewmats, proj.radii)
        if render_mode in ("RGB+D", "RGB+ED"):
            feats = torch.cat([feats, proj.depths[..., None]], dim=-1)
            if backgrounds is not None:
                backgrounds = torch.cat([backgrounds, backgrounds.new_zeros(n_cam, 1)], dim=-1)

    tw, th = tile_grid(width, height, tile_size)
    if impl == "cpp":
        bins = isect_tiles_cpp(means2d, proj.radii, proj.depths, tile_size, tw, th)
    else:
        bins = isect_tiles(means2d, proj.radii, proj.depths, tile_size, tw, th)
    info: dict[str, Any] = {
        "batch_ids": None,
        "camera_ids": None,
        "gaussian_ids": None,
        "radii": proj.radii,
        "means2d": means2d,
        "depths": proj.depths,
        "conics": proj.conics,
        "opacities": opac,
        "tile_width": tw,
        "tile_height": th,
        "tiles_per_gauss": bins.tiles_per_gauss,
        "isect_ids": bins.isect_ids,
        "flatten_ids": bins.flatten_ids,
        "isect_offsets": bins.tile_offsets,
        "width": width,
        "height": height,
        "tile_size": tile_size,
        "n_batches": 1,
        "n_cameras": n_cam,
    }
    if dense:
        from .reference import dense_composite

        render, alphas = dense_composite(
            means2d, proj.conics, feats, opac, proj.depths, proj.radii, backgrounds, width, height
        )
    else:
        d = feats.shape[-1]
        split = SplitGradient() if means2d.requires_grad else None
        render, alphas = RasterizeToPixels.apply(
            means2d, proj.conics.reshape(-1, 3), feats.reshape(-1, d), opac.reshape(-1), backgrounds,
            width, height, tile_size, bins.tile_offsets, bins.flatten_ids, absgrad, impl, split,
        )
        if split is not None:  # lets the trainer densify on a part of the loss (see SplitGradient)
            info["split_grad"] = split
            info["split_grad_outputs"] = (render, alphas)
    if render_mode in ("ED", "RGB+ED"):
        render = torch.cat([render[..., :-1], render[..., -1:] / alphas.clamp(min=1e-10)], dim=-1)
    return render, alphas, info


def reference_rasterize(*args, **kwargs):
    """:func:`recon.render.rasterize`'s CPU pipeline with the dense compositor (same projection, SH and modes)."""
    kwargs.pop("backend", None)
    kwargs.pop("cpu_impl", None)
    return rasterize_cpu(*args, dense=True, **kwargs)
