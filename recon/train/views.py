"""Training and test views held in memory as tensors at the training resolution.

Images (H, W, 3) float32 in [0, 1]; ``viewmat`` is world-to-camera (4, 4) float32; ``K`` (3, 3) float32 pixels;
sky masks (H, W) bool; LiDAR depth (H, W) float32 metres, 0 where no point projects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from recon.data.scene import Frame


@dataclass
class View:
    frame: Frame
    image: torch.Tensor
    viewmat: torch.Tensor
    K: torch.Tensor
    width: int
    height: int
    camera_index: int
    sky: torch.Tensor | None = None
    lidar_depth: torch.Tensor | None = None
    gt_depth: torch.Tensor | None = None


def _resize(arr: np.ndarray, w: int, h: int, mode: str) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(arr)).float()
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    kw = {"antialias": True, "align_corners": False} if mode == "bilinear" else {}
    out = F.interpolate(t, size=(h, w), mode=mode, **kw)[0]
    return (out[0] if arr.ndim == 2 else out.permute(1, 2, 0)).numpy()


def sparse_lidar_depth(frame: Frame, K: np.ndarray, width: int, height: int) -> np.ndarray:
    """The frame's LiDAR sweep as a sparse z-buffered depth map (H, W) at this resolution, 0 = no point.

    Points the camera cannot see (the LiDAR sits elsewhere and looks through gaps) are removed by
    :func:`recon.data.projection.occlusion_filter`.
    """
    from recon.data.projection import sparse_depth

    return sparse_depth(frame.load_lidar(), frame.cam2world, K, width, height)


def load_views(frames: list[Frame], downscale: float, device: torch.device, camera_names: list[str],
               lidar: bool = False, gt_depth: bool = False, desc: str = "loading views") -> list[View]:
    """Decode and resize the frames' images (and masks / depths) once, up front."""
    views = []
    for f in tqdm(frames, desc=desc, leave=False, disable=len(frames) < 8):
        cam = f.camera if downscale == 1.0 else f.camera.scaled(downscale)
        img = f.load_image()
        if (cam.width, cam.height) != (f.camera.width, f.camera.height):
            img = _resize(img, cam.width, cam.height, "bilinear")
        sky = f.load_sky_mask()
        if sky is not None and sky.shape != (cam.height, cam.width):
            sky = _resize(sky.astype(np.float32), cam.width, cam.height, "nearest") > 0.5
        w2c = f.world2cam
        ld = None
        if lidar and f.lidar_path is not None:
            ld = torch.from_numpy(sparse_lidar_depth(f, cam.K, cam.width, cam.height))
        gd = None
        if gt_depth and f.depth_path is not None:
            d = f.load_depth()
            if d is not None and d.shape != (cam.height, cam.width):
                d = _resize(d, cam.width, cam.height, "nearest")
            gd = torch.from_numpy(d).to(device) if d is not None else None
        views.append(View(
            frame=f, image=torch.from_numpy(np.ascontiguousarray(img)).to(device),
            viewmat=torch.from_numpy(w2c).float().to(device), K=torch.from_numpy(cam.K).float().to(device),
            width=cam.width, height=cam.height, camera_index=camera_names.index(f.camera.name),
            sky=None if sky is None else torch.from_numpy(sky).to(device),
            lidar_depth=None if ld is None else ld.to(device), gt_depth=gd,
        ))
    return views
