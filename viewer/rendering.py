"""Server-side rendering of one viewer camera through ``recon.render.rasterize``.

Cameras are recon's scene cameras (:class:`recon.data.scene.Camera`: OpenCV axes, x right, y down, z forward;
intrinsics in pixels of the render, pixel centres at +0.5); ``cam2world`` 4x4 in metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from recon.data.scene import Camera
from recon.model.ply import GaussianData
from recon.render import rasterize


@dataclass
class ViewCamera:
    """The view a browser looks through: a pose (OpenCV axes, metres) and the scene :class:`Camera` that holds the
    intrinsics of the ``width x height`` render (and the lens the refocus mode applies)."""

    cam2world: np.ndarray
    camera: Camera

    @classmethod
    def from_viser(cls, wxyz: np.ndarray, position: np.ndarray, fov_y: float, aspect: float,
                   width: int) -> ViewCamera:
        """From a viser client camera (``wxyz`` = R_world_camera in OpenCV axes, vertical ``fov_y`` in radians):
        square pixels, principal point at the image centre."""
        from viser import transforms as tf

        height = max(8, round(width / max(aspect, 1e-3)))
        fy = 0.5 * height / math.tan(0.5 * fov_y)
        c2w = np.eye(4)
        c2w[:3, :3] = tf.SO3(np.asarray(wxyz, dtype=np.float64)).as_matrix()
        c2w[:3, 3] = np.asarray(position, dtype=np.float64)
        return cls(c2w, Camera("view", int(width), int(height), fy, fy, 0.5 * width, 0.5 * height))

    @property
    def width(self) -> int:
        return self.camera.width

    @property
    def height(self) -> int:
        return self.camera.height

    @property
    def K(self) -> np.ndarray:
        return self.camera.K


@dataclass
class RenderResult:
    """``rgb [H, W, 3]`` in [0, 1]; ``depth [H, W]`` expected z-depth in metres (0 where alpha < 0.5);
    ``alpha [H, W]`` in [0, 1]; the camera it was rendered with."""

    rgb: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray
    camera: ViewCamera


class SplatRenderer:
    """Holds the Gaussians as tensors and renders :class:`ViewCamera` views.

    Uses ``recon.render.rasterize`` (``backend="auto"``: gsplat on CUDA, recon's tile rasterizer on CPU);
    :attr:`backend` names it for the panel.
    """

    def __init__(self, gaussians: GaussianData, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.backend = "recon.render"
        t = gaussians.to_torch(self.device)
        self.means, self.quats = t["means"], t["quats"]
        self.scales = torch.exp(t["log_scales"])
        self.opacities = torch.sigmoid(t["opacity_logits"])
        self.sh = torch.cat([t["sh0"], t["shN"]], dim=1)
        self.sh_degree = gaussians.sh_degree

    @torch.no_grad()
    def render(self, cam: ViewCamera) -> RenderResult:
        w2c = torch.as_tensor(np.linalg.inv(cam.cam2world), dtype=torch.float32, device=self.device)[None]
        K = torch.as_tensor(cam.K, dtype=torch.float32, device=self.device)[None]
        colors, alphas, _info = rasterize(
            self.means, self.quats, self.scales, self.opacities, self.sh, w2c, K, cam.width, cam.height,
            sh_degree=self.sh_degree, render_mode="RGB+ED", backend="auto")
        out = colors[0].float().cpu().numpy()
        alpha = alphas[0, ..., 0].float().cpu().numpy()
        depth = np.where(alpha >= 0.5, out[..., 3], 0.0).astype(np.float32)
        return RenderResult(np.clip(out[..., :3], 0.0, 1.0).astype(np.float32), depth,
                            np.clip(alpha, 0.0, 1.0).astype(np.float32), cam)
