"""Weight schedules of the depth supervisions."""

from __future__ import annotations

import pytest

from recon.train.schedule import fade_out, ramp_in


def test_ramp_in_starts_at_start_and_reaches_one() -> None:
    assert ramp_in(199, 200) == 0.0
    assert ramp_in(200, 200) == pytest.approx(1 / 200)
    assert ramp_in(299, 200) == pytest.approx(0.5)
    assert ramp_in(399, 200) == 1.0
    assert ramp_in(10_000, 200) == 1.0


def test_fade_out_is_one_until_the_fraction_then_falls_to_zero_at_the_last_step() -> None:
    iters = 1000
    assert all(fade_out(s, iters, 1.0) == 1.0 for s in range(iters))
    assert fade_out(599, iters, 0.6) == 1.0
    assert fade_out(600, iters, 0.6) == pytest.approx(1.0)
    values = [fade_out(s, iters, 0.6) for s in range(600, iters)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))  # monotone
    assert fade_out(iters - 1, iters, 0.6) == 0.0
    assert fade_out(800, iters, 0.6) == pytest.approx(0.5, abs=0.01)
    assert fade_out(0, iters, 0.0) == 1.0 and fade_out(iters - 1, iters, 0.0) == 0.0
