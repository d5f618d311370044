"""benchmarks/depth_error_breakdown.py: which scored LiDAR pixels count as the far side of an occlusion edge."""

from __future__ import annotations

import numpy as np
from support.scripts import load_benchmark

deb = load_benchmark("depth_error_breakdown")


def test_occlusion_edge_marks_the_far_side_within_the_radius_only() -> None:
    gt = np.zeros((12, 20), np.float32)
    gt[::2, :] = 50.0  # sparse scan lines of a far wall
    gt[::2, :6] = 8.0  # a near pole on the left
    gt[0, 15] = 45.0  # a slightly nearer far return: not an edge (45 > 0.7 * 50)
    edge = deb.occlusion_edge(gt, radius_px=3, ratio=0.7)
    assert not edge[gt == 0].any()  # unscored pixels are never edges
    assert not edge[:, :6].any()  # the near side is not
    cols = np.nonzero(edge.any(0))[0]
    assert cols.tolist() == [6, 7, 8]  # far pixels within 3 px of the pole
    assert not deb.occlusion_edge(gt, radius_px=3, ratio=0.1).any()
