"""``recon bench``: baseline 3DGS against each supervision, side by side (see recon.bench.runner).

Exit status: 0 when every run finished, 1 when some failed (their one-line errors are listed in results.md and
results.json, their logs in OUT/logs), 2 for a bad option, scene or preset (nothing trains then).
"""

from __future__ import annotations

from recon.bench.config import BenchConfig
from recon.bench.options import tyro_one_line
from recon.bench.runner import run_bench


def main(argv: list[str], prog: str = "recon bench") -> int:
    cfg = tyro_one_line(BenchConfig, argv, prog, prog=prog)
    report = run_bench(cfg)
    return 1 if report.get("failed") else 0
