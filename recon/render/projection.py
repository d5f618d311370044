"""EWA projection of 3D Gaussians to the image plane, in vectorised torch (gsplat 1.5.3 pinhole rules).

Conventions: world-to-camera ``viewmats`` [C, 4, 4], OpenCV camera axes (x right, y down, z forward), intrinsics
``Ks`` [C, 3, 3] in pixels, pixel centres at integer + 0.5. Quaternions are wxyz and need not be normalised; scales
are the actual standard deviations in metres (not log). Everything is differentiable by autograd and mirrors
``gsplat/cuda/csrc/ProjectionEWA3DGSFused.cu`` so the CPU backend culls and bounds exactly like the CUDA one:

- a Gaussian is dropped when its camera depth is outside ``[near_plane, far_plane]``, when the blurred 2D covariance
  has a non-positive determinant, when its (compensated) opacity is below 1/255, when both radii are
  ``<= radius_clip``, or when its box misses the image;
- ``eps2d`` is added to the diagonal of the 2D covariance ("blur"); the antialiased compensation is
  ``sqrt(max(0, det(cov2d) / det(cov2d + eps2d I)))``;
- the box half-size is ``ceil(extend * sqrt(cov2d_ii))`` with the opacity-aware
  ``extend = min(3.33, sqrt(2 log(opacity * 255)))`` (the 1/255 alpha iso-contour).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

ALPHA_THRESHOLD = 1.0 / 255.0


@dataclass
class Projection:
    """Per-camera projected Gaussians (unpacked: every tensor is [C, N, ...]; radii == 0 marks culled ones)."""

    radii: Tensor  # [C, N, 2] int32, pixels
    means2d: Tensor  # [C, N, 2] pixels
    depths: Tensor  # [C, N] camera z in metres
    conics: Tensor  # [C, N, 3] inverse blurred 2D covariance (a, b, c) = (inv00, inv01, inv11)
    compensations: Tensor | None  # [C, N] antialiasing opacity factor, or None in classic mode


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] from wxyz quaternions [..., 4] (normalised here)."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    rot = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )
    return rot.reshape(quats.shape[:-1] + (3, 3))


def covariance_3d(quats: Tensor, scales: Tensor) -> Tensor:
    """World covariance R S S^T R^T [..., 3, 3] (square metres) from quaternions and scales."""
    m = quat_to_rotmat(quats) * scales[..., None, :]
    return m @ m.transpose(-1, -2)


def project_gaussians(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor | None,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    calc_compensations: bool = False,
) -> Projection:
    """Project N Gaussians into C pinhole cameras (see module docstring for the exact rules).

    ``opacities`` [N] (after sigmoid) enables the opacity-aware box and the 1/255 opacity cull, as gsplat does when
    ``rasterization()`` passes them; with ``None`` the box uses 3.33 sigma.
    """
    rot_c = viewmats[:, :3, :3]  # [C, 3, 3]
    t_c = viewmats[:, :3, 3]  # [C, 3]
    means_c = torch.einsum("cij,nj->cni", rot_c, means) + t_c[:, None, :]  # [C, N, 3]
    cov_w = covariance_3d(quats, scales)  # [N, 3, 3]
    cov_c = torch.einsum("cij,njk,clk->cnil", rot_c, cov_w, rot_c)  # [C, N, 3, 3]

    x, y, z = means_c.unbind(-1)
    depth_ok = (z >= near_plane) & (z <= far_plane)
    # Culled Gaussians still flow through the maths; a safe depth keeps inf/nan out of the backward pass.
    zs = torch.where(depth_ok, z, torch.ones_like(z))
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [C, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_fovx = 0.5 * width / fx
    tan_fovy = 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    rz = 1.0 / zs
    tx = zs * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x * rz))
    ty = zs * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y * rz))
    zero = torch.zeros_like(zs)
    jac = torch.stack([fx * rz, zero, -fx * tx * rz * rz, zero, fy * rz, -fy * ty * rz * rz], dim=-1)
    jac = jac.reshape(zs.shape + (2, 3))
    cov2d = jac @ cov_c @ jac.transpose(-1, -2)  # [C, N, 2, 2]
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], dim=-1)

    a, b, c = cov2d[..., 0, 0], 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0]), cov2d[..., 1, 1]
    det_orig = a * c - b * b
    a = a + eps2d
    c = c + eps2d
    det = a * c - b * b
    det_ok = det > 0
    det_s = torch.where(det_ok, det, torch.ones_like(det))
    conics = torch.stack([c / det_s, -b / det_s, a / det_s], dim=-1)
    comp = torch.sqrt((det_orig / det_s).clamp_min(0.0)) if calc_compensations else None

    with torch.no_grad():
        extend = torch.full_like(z, 3.33)
        valid = depth_ok & det_ok
        if opacities is not None:
            opac = opacities.detach()[None, :].expand_as(z)
            if comp is not None:
                opac = opac * comp.detach()
            valid &= opac >= ALPHA_THRESHOLD
            # float32 like the CUDA kernel so boxes match bit for bit where it matters
            ext_o = torch.sqrt(2.0 * torch.log(opac.float().clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
            extend = torch.minimum(extend.float(), ext_o).to(z.dtype)
        rad_x = torch.ceil(extend * torch.sqrt(a.detach().clamp_min(0.0)))
        rad_y = torch.ceil(extend * torch.sqrt(c.detach().clamp_min(0.0)))
        valid &= ~((rad_x <= radius_clip) & (rad_y <= radius_clip))
        mx, my = means2d.detach().unbind(-1)
        valid &= ~((mx + rad_x <= 0) | (mx - rad_x >= width) | (my + rad_y <= 0) | (my - rad_y >= height))
        radii = torch.stack([rad_x, rad_y], dim=-1)
        radii = torch.where(valid[..., None], radii, torch.zeros_like(radii)).to(torch.int32)
    return Projection(radii=radii, means2d=means2d, depths=z, conics=conics, compensations=comp)


class _ProjectCpp(torch.autograd.Function):
    """The same projection fused per (camera, Gaussian) in the C++ extension, with a hand-written backward."""

    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near, far, radius_clip,
                calc_comp):
        from .cpp_ext import load_extension

        ext = load_extension()
        radii, means2d, depths, conics, comps = ext.project_fwd(
            means.contiguous(), quats.contiguous(), scales.contiguous(), opacities.detach().contiguous(),
            viewmats.contiguous(), Ks.contiguous(), width, height, eps2d, near, far, radius_clip, calc_comp,
        )
        ctx.save_for_backward(means, quats, scales, viewmats, Ks, radii)
        ctx.set_materialize_grads(False)  # outputs without gradient reach backward as None, not as zero tensors
        ctx.cfg = (width, height, eps2d, near, far, calc_comp)
        ctx.mark_non_differentiable(radii)
        return radii, means2d, depths, conics, comps

    @staticmethod
    def backward(ctx, _v_radii, v_means2d, v_depths, v_conics, v_comps):
        from .cpp_ext import load_extension

        means, quats, scales, viewmats, Ks, radii = ctx.saved_tensors
        width, height, eps2d, near, far, calc_comp = ctx.cfg

        def g(v):  # an output without gradient is passed as None (zero to the kernel)
            return None if v is None else v.to(means.dtype).contiguous()

        v_means, v_quats, v_scales = load_extension().project_bwd(
            means.contiguous(), quats.contiguous(), scales.contiguous(), viewmats.contiguous(), Ks.contiguous(),
            width, height, eps2d, near, far, radii, g(v_means2d), g(v_depths), g(v_conics), g(v_comps), calc_comp,
        )
        return v_means, v_quats, v_scales, None, None, None, None, None, None, None, None, None, None


def project_gaussians_cpp(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    calc_compensations: bool = False,
) -> Projection:
    """:func:`project_gaussians` through the C++ extension (CPU tensors; no gradient to ``viewmats``/``Ks``)."""
    dt = means.dtype
    radii, means2d, depths, conics, comps = _ProjectCpp.apply(
        means, quats.to(dt), scales.to(dt), opacities.to(dt), viewmats.to(dt), Ks.to(dt), int(width), int(height),
        float(eps2d), float(near_plane), float(far_plane), float(radius_clip), bool(calc_compensations),
    )
    return Projection(radii=radii, means2d=means2d, depths=depths, conics=conics,
                      compensations=comps if calc_compensations else None)
