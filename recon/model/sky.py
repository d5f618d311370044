"""Sky / background model: a learnable equirectangular radiance map indexed by view direction.

Driving scenes have a large sky that no Gaussian should represent (it is infinitely far). The sky colour of a
pixel is looked up from a low-resolution texture by the world-frame direction of its ray, and composited behind the
Gaussians: ``rgb = rgb_gaussians + (1 - alpha) * sky``. Where sky masks exist the trainer also pushes alpha to 0
on sky pixels, so the sky does not fill with floaters.

A view's rays, and so where its pixels sample the texture, depend only on the camera: :meth:`SkyModel.for_view`
keeps each camera's sampling grid while the camera tensors live and are unchanged, so a training step pays for the
texture lookup alone; :meth:`SkyModel.composite` does lookup and compositing in one C kernel on the CPU.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F

from recon.model import sky_cpu

GRID_CACHE_BYTES = 256 * 2**20
"""Memory for cached sampling grids (8 bytes a pixel); views beyond it are recomputed at every call."""


class SkyModel(torch.nn.Module):
    """Equirectangular RGB map (``height`` x ``2*height`` texels) in a world frame with ``up`` as the pole."""

    def __init__(self, height: int = 32, up: tuple[float, float, float] = (0.0, 0.0, 1.0),
                 init_rgb: tuple[float, float, float] = (0.6, 0.7, 0.85)) -> None:
        super().__init__()
        logit = torch.logit(torch.tensor(init_rgb).clamp(0.01, 0.99))
        self.texture = torch.nn.Parameter(logit[:, None, None].repeat(1, height, 2 * height)[None].clone())
        up_t = torch.tensor(up, dtype=torch.float32)
        self.register_buffer("up", up_t / up_t.norm())
        self._grids: dict[tuple[int, int, int, int], tuple[Any, tuple[int, ...], torch.Tensor]] = {}
        self._grid_bytes = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()  # weak references do not pickle; the cache is rebuilt on use
        state["_grids"], state["_grid_bytes"] = {}, 0
        return state

    def _frame(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        up = self.up
        ref = torch.tensor([1.0, 0.0, 0.0]) if abs(float(up[0])) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
        ref = ref.to(up)
        e1 = ref - (ref @ up) * up
        e1 = e1 / e1.norm()
        e2 = torch.linalg.cross(up, e1)
        return e1, e2, up

    def grid(self, dirs: torch.Tensor) -> torch.Tensor:
        """``grid_sample`` coordinates (1, M, 1, 2) of the world directions ``dirs`` (…, 3), M = their count."""
        e1, e2, up = self._frame()
        d = F.normalize(dirs, dim=-1)
        az = torch.atan2(d @ e2, d @ e1)  # [-pi, pi]
        el = torch.asin((d @ up).clamp(-1.0, 1.0))  # [-pi/2, pi/2]
        return torch.stack([az / torch.pi, -el / (torch.pi / 2)], dim=-1).reshape(1, -1, 1, 2)

    def lookup(self, grid: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """Sky colour (*shape, 3) in [0, 1] at the sampling ``grid`` from :meth:`grid`."""
        out = F.grid_sample(self.texture, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return torch.sigmoid(out[0, :, :, 0].T.reshape(*shape, 3))

    def forward(self, dirs: torch.Tensor) -> torch.Tensor:
        """Sky colour (…, 3) in [0, 1] for unit world directions ``dirs`` (…, 3)."""
        return self.lookup(self.grid(dirs), dirs.shape[:-1])

    def for_view(self, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """Sky colour (H, W, 3) behind every pixel of the camera world-to-camera ``viewmat`` (4, 4), intrinsics
        ``K`` (3, 3). The sampling grid is cached per camera (the same tensor objects, not modified since); a
        camera whose pose or intrinsics require gradients is never cached."""
        grid = self._view_grid(viewmat, K, width, height)
        if grid is None:
            return self(ray_directions(torch.linalg.inv(viewmat), K, width, height))
        return self.lookup(grid, (height, width))

    def composite(self, rgb: torch.Tensor, alpha: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor, width: int,
                  height: int) -> torch.Tensor:
        """``rgb + (1 - alpha) * sky`` for the Gaussians' colour ``rgb`` (H, W, 3) and opacity ``alpha`` (H, W) seen
        by the camera (``viewmat``, ``K``): one C kernel for float32 CPU tensors (:mod:`recon.model.sky_cpu`),
        torch otherwise."""
        grid = self._view_grid(viewmat, K, width, height)
        if grid is not None and sky_cpu.usable(rgb, alpha, self.texture, grid):
            return sky_cpu.SkyComposite.apply(rgb, alpha, self.texture, grid)
        return rgb + (1.0 - alpha)[..., None] * self.for_view(viewmat, K, width, height)

    def _view_grid(self, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int) -> torch.Tensor | None:
        """The camera's cached sampling grid (computed now if absent); None for a camera with gradients."""
        if viewmat.requires_grad or K.requires_grad:
            return None
        key = (id(viewmat), id(K), int(width), int(height))
        versions = (viewmat._version, K._version, self.up._version)
        hit = self._grids.get(key)
        if hit is not None:
            refs, ver, grid = hit
            if ver == versions and all(r() is t for r, t in zip(refs, (viewmat, K, self.up))) \
                    and grid.device == self.texture.device:
                return grid
        with torch.no_grad():
            grid = self.grid(ray_directions(torch.linalg.inv(viewmat), K, width, height))
        self._remember(key, (weakref.ref(viewmat), weakref.ref(K), weakref.ref(self.up)), versions, grid)
        return grid

    def _remember(self, key: tuple[int, int, int, int], refs: tuple[Any, ...], versions: tuple[int, ...],
                  grid: torch.Tensor) -> None:
        old = self._grids.pop(key, None)
        if old is not None:
            self._grid_bytes -= old[2].nbytes
        if self._grid_bytes + grid.nbytes > GRID_CACHE_BYTES:  # drop the grids of cameras that no longer exist
            for k in [k for k, (rs, _, _) in self._grids.items() if any(r() is None for r in rs)]:
                self._grid_bytes -= self._grids.pop(k)[2].nbytes
        if self._grid_bytes + grid.nbytes <= GRID_CACHE_BYTES:
            self._grids[key] = ((refs[0], refs[1], refs[2]), versions, grid)
            self._grid_bytes += grid.nbytes


def ray_directions(cam2world: torch.Tensor, K: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Unit world-frame ray directions (H, W, 3) through pixel centres, OpenCV camera axes."""
    dev = cam2world.device
    v, u = torch.meshgrid(torch.arange(height, device=dev, dtype=torch.float32) + 0.5,
                          torch.arange(width, device=dev, dtype=torch.float32) + 0.5, indexing="ij")
    x = (u - K[0, 2]) / K[0, 0]
    y = (v - K[1, 2]) / K[1, 1]
    d = torch.stack([x, y, torch.ones_like(x)], -1) @ cam2world[:3, :3].T.float()
    return F.normalize(d, dim=-1)
