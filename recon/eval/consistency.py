"""Multi-view reprojection consistency of rendered depth: a depth check that needs no ground truth.

For a test view i and its nearest training view j (closest camera centre, same camera first), every pixel of i is
lifted to the world with i's rendered depth and projected into j. Two numbers per pair:

* depth consistency: |z_ij - D_j(p_ij)| / z_ij, where z_ij is the point's depth in camera j and D_j the depth that j
  renders at the projected pixel (bilinear): geometry that is the same surface from both views agrees;
* photometric reprojection: the L1 colour error between view i's real image and view j's real image sampled at the
  projected pixels, where j's depth agrees (occlusion-aware): correct depth transports the real photograph.

Units: depth in metres, images in [0, 1]; OpenCV camera axes, pixel centres at +0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from recon.data.projection import camera_to_pixel, depth_to_points, transform_points


def _sample(img: torch.Tensor, uv: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """Bilinear samples of img (H, W, C) at pixel coordinates uv (N, 2) (pixel-centre convention)."""
    grid = torch.stack([uv[:, 0] / w * 2 - 1, uv[:, 1] / h * 2 - 1], -1)[None, None]
    out = F.grid_sample(img.permute(2, 0, 1)[None], grid, mode="bilinear", align_corners=False)
    return out[0, :, 0].T


def pair_consistency(depth_i: torch.Tensor, depth_j: torch.Tensor, image_i: torch.Tensor, image_j: torch.Tensor,
                     K_i: torch.Tensor, K_j: torch.Tensor, c2w_i: torch.Tensor, w2c_j: torch.Tensor,
                     tol: float = 0.05) -> dict[str, float]:
    """Consistency of view i's rendered depth with view j (see the module docstring)."""
    ok = depth_i.reshape(-1) > 0
    pj = transform_points(depth_to_points(depth_i, K_i, c2w_i), w2c_j)
    z = pj[:, 2]
    uj, vj = camera_to_pixel(pj, K_j, z.clamp_min(1e-6))  # points behind j are masked out below
    hj, wj = depth_j.shape
    ok &= (z > 0.1) & (uj >= 0.5) & (uj <= wj - 0.5) & (vj >= 0.5) & (vj <= hj - 0.5)
    if int(ok.sum()) == 0:
        return {"overlap": 0.0, "depth_rel_err": float("nan"), "consistent": float("nan"), "photo_l1": float("nan")}
    uv = torch.stack([uj[ok], vj[ok]], -1)
    dj = _sample(depth_j[..., None], uv, wj, hj)[:, 0]
    rel = (z[ok] - dj).abs() / z[ok]
    agree = rel < tol
    photo = float("nan")
    if int(agree.sum()) > 0:
        cj = _sample(image_j, uv[agree], wj, hj)
        ci = image_i.reshape(-1, image_i.shape[-1])[ok][agree]
        photo = float((cj - ci).abs().mean())
    return {"overlap": float(ok.float().mean()), "depth_rel_err": float(rel.median()),
            "consistent": float(agree.float().mean()), "photo_l1": photo}


def nearest_train_view(test_view: Any, train_views: list[Any]) -> Any:
    """The training view whose camera centre is closest (ties: same camera)."""
    c = torch.linalg.inv(test_view.viewmat)[:3, 3]

    def key(v: Any) -> tuple[float, int]:
        cv = torch.linalg.inv(v.viewmat)[:3, 3]
        return float((cv - c).norm()), int(v.frame.camera.name != test_view.frame.camera.name)

    return min(train_views, key=key)


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = ("overlap", "depth_rel_err", "consistent", "photo_l1")
    return {k: float(np.nanmedian([r[k] for r in rows])) if rows else float("nan") for k in keys}
