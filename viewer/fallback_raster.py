"""A small dense CPU splat renderer: the viewer's documented fallback when ``recon.render`` is not importable.

Same call as ``recon.render.rasterize`` (gsplat ``rasterization()`` conventions: ``viewmats`` world-to-camera 4x4
in OpenCV axes, ``Ks`` in pixels with pixel centres at +0.5, activated ``scales`` (metres) and ``opacities``), but
limited on purpose: colours from SH degree 0 only (no view dependence), EWA projection with gsplat's 0.3 px^2
low-pass, every pixel composites every Gaussian whose 3-sigma box covers its row band (no tiles), so it is meant for
previews of at most a few tens of thousands of splats. :func:`viewer.rendering.SplatRenderer` keeps the most opaque
``fallback_max_splats`` when it has to use it and says so in the panel.
"""

from __future__ import annotations

from typing import Any

import torch

SH_C0 = 0.28209479177387814
_BAND_ROWS = 8
_BUDGET = 4_000_000  # pixel x Gaussian pairs evaluated at once (about 16 MB per float tensor)


def _quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


@torch.no_grad()
def rasterize_dense(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                    colors: torch.Tensor, viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int,
                    sh_degree: int | None = None, render_mode: str = "RGB+ED", near_plane: float = 0.01,
                    **_: Any) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Render C views; returns ``(colors [C, H, W, 3 or 4], alphas [C, H, W, 1], info)``.

    ``colors`` is SH ``[N, K, 3]`` when ``sh_degree`` is given (only the degree-0 term is used), else RGB ``[N, 3]``.
    With ``render_mode="RGB+ED"`` the 4th channel is the expected z-depth in metres (depth-weighted by the blend
    weights, normalised by alpha; 0 where nothing is hit).
    """
    dev, dt = means.device, torch.float32
    rgb_all = (0.5 + SH_C0 * colors[:, 0, :]).clamp_min(0.0) if sh_degree is not None else colors
    rot = _quat_to_rotmat(quats.to(dt))
    m = rot * scales.to(dt)[:, None, :]
    cov_w = m @ m.transpose(1, 2)
    outs, alphas = [], []
    for c in range(viewmats.shape[0]):
        R, t = viewmats[c, :3, :3].to(dt), viewmats[c, :3, 3].to(dt)
        fx, fy, cx, cy = Ks[c, 0, 0], Ks[c, 1, 1], Ks[c, 0, 2], Ks[c, 1, 2]
        pc = means.to(dt) @ R.T + t
        x, y, z = pc.unbind(-1)
        keep = z > near_plane
        x, y, z = x[keep], y[keep], z[keep]
        cov_c = R @ cov_w[keep] @ R.T
        zero = torch.zeros_like(z)
        J = torch.stack([fx / z, zero, -fx * x / z**2, zero, fy / z, -fy * y / z**2], -1).reshape(-1, 2, 3)
        cov2 = J @ cov_c @ J.transpose(1, 2) + 0.3 * torch.eye(2, device=dev)
        a, b, d = cov2[:, 0, 0], cov2[:, 0, 1], cov2[:, 1, 1]
        det = (a * d - b * b).clamp_min(1e-12)
        conic = torch.stack([d / det, -b / det, a / det], -1)
        radius = 3.0 * torch.sqrt(0.5 * (a + d) + torch.sqrt((0.25 * (a - d) ** 2 + b * b).clamp_min(0)))
        u, v = fx * x / z + cx, fy * y / z + cy
        on = (u + radius > 0) & (u - radius < width) & (v + radius > 0) & (v - radius < height)
        order = torch.argsort(z[on])  # front to back
        u, v, radius, conic, z = u[on][order], v[on][order], radius[on][order], conic[on][order], z[on][order]
        op = opacities[keep][on][order].to(dt)
        col = rgb_all[keep][on][order].to(dt)
        img = torch.zeros(height, width, 4, device=dev)
        acc = torch.zeros(height, width, device=dev)
        xs = torch.arange(width, device=dev, dtype=dt) + 0.5
        for y0 in range(0, height, _BAND_ROWS):
            y1 = min(height, y0 + _BAND_ROWS)
            sel = ((v + radius) >= y0) & ((v - radius) < y1)
            if not bool(sel.any()):
                continue
            su, sv, sc, so, scol, sz = u[sel], v[sel], conic[sel], op[sel], col[sel], z[sel]
            ys = torch.arange(y0, y1, device=dev, dtype=dt) + 0.5
            py, px = torch.meshgrid(ys, xs, indexing="ij")
            px, py = px.reshape(-1), py.reshape(-1)
            feats = torch.cat([scol, sz[:, None]], 1)
            band_img, band_acc = [], []
            step = max(16, _BUDGET // max(1, int(sel.sum())))
            for p0 in range(0, px.numel(), step):
                dx = px[p0:p0 + step, None] - su[None]
                dy = py[p0:p0 + step, None] - sv[None]
                power = -0.5 * (sc[:, 0] * dx * dx + sc[:, 2] * dy * dy) - sc[:, 1] * dx * dy
                alpha = (so * torch.exp(power.clamp_max(0))).clamp_max(0.99)
                alpha = torch.where(alpha < 1.0 / 255.0, torch.zeros_like(alpha), alpha)
                trans = torch.cumprod(1 - alpha, dim=1)
                trans = torch.cat([torch.ones_like(trans[:, :1]), trans[:, :-1]], 1)
                w = alpha * trans
                band_img.append(w @ feats)
                band_acc.append(w.sum(1))
            img[y0:y1] = torch.cat(band_img).reshape(y1 - y0, width, 4)
            acc[y0:y1] = torch.cat(band_acc).reshape(y1 - y0, width)
        if render_mode == "RGB+ED":
            img[..., 3] = torch.where(acc > 1e-6, img[..., 3] / acc.clamp_min(1e-6), torch.zeros_like(acc))
            outs.append(img)
        else:
            outs.append(img[..., :3])
        alphas.append(acc[..., None])
    return torch.stack(outs), torch.stack(alphas), {"width": width, "height": height, "backend": "viewer-dense"}
