"""``rasterize()``: one signature for gsplat's CUDA kernels (GPU) and recon's tile rasterizer (CPU)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..errors import ReconError
from .cpu_backend import RENDER_MODES, rasterize_cpu

BACKENDS = ("auto", "gsplat", "cpu")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ReconError(f"rasterize: {msg}")


def _validate(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree, backgrounds,
              render_mode, rasterize_mode, backend) -> None:
    _check(means.dim() == 2 and means.shape[-1] == 3, f"means must be [N, 3], got {list(means.shape)}")
    n = means.shape[0]
    _check(tuple(quats.shape) == (n, 4), f"quats must be [{n}, 4], got {list(quats.shape)}")
    _check(tuple(scales.shape) == (n, 3), f"scales must be [{n}, 3], got {list(scales.shape)}")
    _check(tuple(opacities.shape) == (n,), f"opacities must be [{n}], got {list(opacities.shape)}")
    _check(viewmats.dim() == 3 and viewmats.shape[1:] == (4, 4),
           f"viewmats must be [C, 4, 4], got {list(viewmats.shape)}")
    c = viewmats.shape[0]
    _check(tuple(Ks.shape) == (c, 3, 3), f"Ks must be [{c}, 3, 3], got {list(Ks.shape)}")
    _check(int(width) > 0 and int(height) > 0, f"image size must be positive, got {width}x{height}")
    if sh_degree is None:
        _check(colors.dim() in (2, 3) and colors.shape[-2] == n and (colors.dim() == 2 or colors.shape[0] == c),
               f"colors must be [{n}, D] or [{c}, {n}, D] without sh_degree, got {list(colors.shape)}")
    else:
        _check(0 <= sh_degree <= 4, f"sh_degree must be 0..4, got {sh_degree}")
        _check(colors.dim() in (3, 4) and colors.shape[-1] == 3 and colors.shape[-3] == n
               and (colors.dim() == 3 or colors.shape[0] == c),
               f"SH colors must be [{n}, K, 3] or [{c}, {n}, K, 3], got {list(colors.shape)}")
        _check((sh_degree + 1) ** 2 <= colors.shape[-2],
               f"sh_degree {sh_degree} needs {(sh_degree + 1) ** 2} coefficients, got {colors.shape[-2]}")
    _check(render_mode in RENDER_MODES, f"render_mode must be one of {RENDER_MODES}, got {render_mode!r}")
    _check(rasterize_mode in ("classic", "antialiased"),
           f"rasterize_mode must be classic|antialiased, got {rasterize_mode!r}")
    _check(backend in BACKENDS, f"backend must be one of {BACKENDS}, got {backend!r}")
    if backgrounds is not None:
        d = 3 if sh_degree is not None else colors.shape[-1]
        _check(tuple(backgrounds.shape) == (c, d), f"backgrounds must be [{c}, {d}], got {list(backgrounds.shape)}")


def rasterize(
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
    backend: str = "auto",
    **kw: Any,
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Render N 3D Gaussians into C pinhole cameras with gsplat 1.5.3 ``rasterization()`` conventions.

    Args (units: metres in the world, pixels on the image; OpenCV camera axes x right, y down, z forward):
        means [N, 3]; quats [N, 4] wxyz (normalised here); scales [N, 3] standard deviations (not log);
        opacities [N] in [0, 1] (after sigmoid); colors [N, D] / [C, N, D], or SH coefficients [N, K, 3] /
        [C, N, K, 3] with ``sh_degree`` (0-4; colour = SH + 0.5 clamped at 0); viewmats [C, 4, 4] world-to-camera;
        Ks [C, 3, 3] pixel intrinsics; backgrounds [C, D].
        render_mode: "RGB", "D" (accumulated z-depth), "ED" (depth / alpha), "RGB+D", "RGB+ED" (depth last).
        rasterize_mode: "classic" or "antialiased" (opacity * sqrt(det S / det(S + eps2d I))).
        absgrad: also fill ``info["means2d"].absgrad`` in backward (sum over pixels of |d loss / d means2d|).
        backend: "auto" (gsplat CUDA kernels for CUDA tensors, recon's CPU rasterizer otherwise), "gsplat", "cpu"
            (recon's rasterizer on any device, also for CUDA tensors, useful for checking).
        kw: ``tile_size`` (16), ``packed`` (False; True is only supported by the gsplat backend), ``cpu_impl``
            ("auto" | "cpp" | "torch", CPU backend compositor); anything else is passed to gsplat.

    Returns:
        render_colors [C, H, W, D'], render_alphas [C, H, W, 1], info dict as gsplat's unpacked mode: ``means2d``
        [C, N, 2] (``retain_grad()`` called when it requires grad), ``radii`` [C, N, 2] int32 (0 = culled),
        ``depths`` [C, N], ``conics`` [C, N, 3], ``opacities`` [C, N], ``gaussian_ids`` None, ``width``, ``height``,
        ``n_cameras``, ``tile_size``, tile intersections (``isect_ids``, ``flatten_ids``, ``isect_offsets``).
    """
    _validate(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree, backgrounds,
              render_mode, rasterize_mode, backend)
    tile_size = int(kw.pop("tile_size", 16))
    packed = bool(kw.pop("packed", False))
    cpu_impl = kw.pop("cpu_impl", "auto")
    use_gsplat = backend == "gsplat" or (backend == "auto" and means.is_cuda)
    if use_gsplat:
        _check(means.is_cuda, "backend='gsplat' needs CUDA tensors (gsplat's kernels are CUDA only)")
        from gsplat.rendering import rasterization

        return rasterization(
            means, quats, scales, opacities, colors, viewmats, Ks, int(width), int(height), near_plane=near_plane,
            far_plane=far_plane, radius_clip=radius_clip, eps2d=eps2d, sh_degree=sh_degree, packed=packed,
            tile_size=tile_size, backgrounds=backgrounds, render_mode=render_mode, absgrad=absgrad,
            rasterize_mode=rasterize_mode, **kw,
        )
    _check(not packed, "packed=True is only supported by the gsplat (CUDA) backend; the CPU backend is unpacked")
    _check(not kw, f"options not supported by the CPU backend: {sorted(kw)}")
    _check(cpu_impl in ("auto", "cpp", "torch"), f"cpu_impl must be auto|cpp|torch, got {cpu_impl!r}")
    return rasterize_cpu(
        means, quats, scales, opacities, colors, viewmats, Ks, int(width), int(height), near_plane=near_plane,
        far_plane=far_plane, radius_clip=radius_clip, eps2d=eps2d, sh_degree=sh_degree, backgrounds=backgrounds,
        render_mode=render_mode, rasterize_mode=rasterize_mode, absgrad=absgrad, tile_size=tile_size, impl=cpu_impl,
    )
