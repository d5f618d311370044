"""Weight schedules shared by the depth supervisions."""

from __future__ import annotations


def ramp_in(step: int, start: int, length: int = 200) -> float:
    """0 before ``start``, then linear to 1 over ``length`` steps (early geometry is poor: ease a loss in)."""
    if step < start:
        return 0.0
    return min(1.0, (step - start + 1) / max(1, length))


def fade_out(step: int, iters: int, fade_from: float) -> float:
    """1 until ``fade_from * iters``, then linear to 0 at the last step (``fade_from`` >= 1: always 1).

    The depth supervisions shape geometry while Gaussians are placed and densified; fading them out lets the
    photometric loss alone settle appearance over the last stretch, where a prior that is wrong in places (a
    densified SfM depth across an occlusion edge, a match on foliage) would otherwise keep costing image quality.
    """
    begin = fade_from * iters
    if fade_from >= 1.0 or step < begin:
        return 1.0
    return max(0.0, (iters - 1 - step) / max(1.0, iters - 1 - begin))
