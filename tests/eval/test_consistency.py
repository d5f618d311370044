"""Reprojection consistency of rendered depth: exact depth of a plane agrees across views, wrong depth does not."""

from __future__ import annotations

import torch

from recon.eval.consistency import pair_consistency


def plane_depth(K: torch.Tensor, c2w: torch.Tensor, w: int, h: int, z_plane: float) -> torch.Tensor:
    """z-depth of the world plane z = z_plane seen by a camera looking along +z."""
    return torch.full((h, w), z_plane - float(c2w[2, 3]))


def test_exact_depth_is_consistent_and_wrong_depth_is_not() -> None:
    w, h = 40, 30
    K = torch.tensor([[30.0, 0, 20], [0, 30, 15], [0, 0, 1]])
    c2w_i = torch.eye(4)
    c2w_j = torch.eye(4)
    c2w_j[0, 3] = 0.5  # a sideways baseline
    d_i = plane_depth(K, c2w_i, w, h, 10.0)
    d_j = plane_depth(K, c2w_j, w, h, 10.0)
    v, u = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    tex = lambda x: torch.stack([torch.sin(x * 0.7), torch.cos(x * 0.3), 0.5 + 0 * x], -1) * 0.5 + 0.5  # noqa: E731
    # world texture on the plane varies with world x: image j sees it shifted by fx * 0.5 / 10 = 1.5 px
    img_i = tex(u.float() + 0.5 - 20)
    img_j = tex(u.float() + 0.5 - 20 + 1.5)
    good = pair_consistency(d_i, d_j, img_i, img_j, K, K, c2w_i, torch.linalg.inv(c2w_j))
    assert good["consistent"] > 0.99 and good["depth_rel_err"] < 1e-4 and good["photo_l1"] < 0.02
    bad = pair_consistency(d_i * 1.3, d_j, img_i, img_j, K, K, c2w_i, torch.linalg.inv(c2w_j))
    assert bad["consistent"] < 0.05 and bad["depth_rel_err"] > 0.2
