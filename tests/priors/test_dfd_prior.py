"""Depth from defocus as a prior source: the aperture pair of the synthetic street feeds `compute_prior`."""

from __future__ import annotations

import numpy as np
import pytest

from recon.errors import ReconError
from recon.eval.depth_metrics import depth_metrics
from recon.priors.registry import compute_prior


def test_dfd_prior_from_the_street_aperture_pair(small_street) -> None:
    frame = small_street.frame(small_street.defocus[0].frame_id)
    prior = compute_prior(small_street, frame, "dfd", use_cache=False)
    assert prior.source == "dfd" and prior.depth.shape == (frame.camera.height, frame.camera.width)
    valid = prior.depth > 0
    assert valid.mean() > 0.05  # only where the two blurs differ by >= 0.5 px (near content at 160x96)
    gt = frame.load_depth()
    m = depth_metrics(prior.depth, gt, mask=valid)
    print("dfd prior AbsRel by band:", {k: round(v["abs_rel"], 3) for k, v in m.items() if v["n"]})
    near = valid & (gt > 0) & (gt < 10)
    rel = np.abs(prior.depth[near] - gt[near]) / gt[near]
    print(f"dfd prior near band: {near.sum()} px, median relative error {np.median(rel):.3f}")
    assert near.sum() > 100 and np.median(rel) < 0.15


def test_dfd_prior_needs_a_pair(small_street) -> None:
    other = next(f for f in small_street.frames if f.id not in {d.frame_id for d in small_street.defocus})
    with pytest.raises(ReconError, match="no aperture pair"):
        compute_prior(small_street, other, "dfd", use_cache=False)
