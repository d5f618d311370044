"""``recon bench``: baseline 3DGS against each supervision, side by side (see recon.bench)."""

from __future__ import annotations

import tyro

from recon.bench.runner import BenchConfig, run_bench


def main(argv: list[str], prog: str = "recon bench") -> int:
    cfg = tyro.cli(BenchConfig, args=argv, prog=prog)
    run_bench(cfg)
    return 0
