"""Sky / background model: a learnable equirectangular radiance map indexed by view direction.

Driving scenes have a large sky that no Gaussian should represent (it is infinitely far). The sky colour of a
pixel is looked up from a low-resolution texture by the world-frame direction of its ray, and composited behind the
Gaussians: ``rgb = rgb_gaussians + (1 - alpha) * sky``. Where sky masks exist the trainer also pushes alpha to 0
on sky pixels, so the sky does not fill with floaters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class SkyModel(torch.nn.Module):
    """Equirectangular RGB map (``height`` x ``2*height`` texels) in a world frame with ``up`` as the pole."""

    def __init__(self, height: int = 32, up: tuple[float, float, float] = (0.0, 0.0, 1.0),
                 init_rgb: tuple[float, float, float] = (0.6, 0.7, 0.85)) -> None:
        super().__init__()
        logit = torch.logit(torch.tensor(init_rgb).clamp(0.01, 0.99))
        self.texture = torch.nn.Parameter(logit[:, None, None].repeat(1, height, 2 * height)[None].clone())
        up_t = torch.tensor(up, dtype=torch.float32)
        self.register_buffer("up", up_t / up_t.norm())

    def _frame(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        up = self.up
        ref = torch.tensor([1.0, 0.0, 0.0]) if abs(float(up[0])) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
        ref = ref.to(up)
        e1 = ref - (ref @ up) * up
        e1 = e1 / e1.norm()
        e2 = torch.linalg.cross(up, e1)
        return e1, e2, up

    def forward(self, dirs: torch.Tensor) -> torch.Tensor:
        """Sky colour (…, 3) in [0, 1] for unit world directions ``dirs`` (…, 3)."""
        e1, e2, up = self._frame()
        d = F.normalize(dirs, dim=-1)
        az = torch.atan2(d @ e2, d @ e1)  # [-pi, pi]
        el = torch.asin((d @ up).clamp(-1.0, 1.0))  # [-pi/2, pi/2]
        grid = torch.stack([az / torch.pi, -el / (torch.pi / 2)], dim=-1)
        shp = grid.shape[:-1]
        out = F.grid_sample(self.texture, grid.reshape(1, -1, 1, 2), mode="bilinear", padding_mode="border",
                            align_corners=False)
        return torch.sigmoid(out[0, :, :, 0].T.reshape(*shp, 3))


def ray_directions(cam2world: torch.Tensor, K: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Unit world-frame ray directions (H, W, 3) through pixel centres, OpenCV camera axes."""
    dev = cam2world.device
    v, u = torch.meshgrid(torch.arange(height, device=dev, dtype=torch.float32) + 0.5,
                          torch.arange(width, device=dev, dtype=torch.float32) + 0.5, indexing="ij")
    x = (u - K[0, 2]) / K[0, 0]
    y = (v - K[1, 2]) / K[1, 1]
    d = torch.stack([x, y, torch.ones_like(x)], -1) @ cam2world[:3, :3].T.float()
    return F.normalize(d, dim=-1)
