"""``recon batch``: convert, sfm, train and eval many scenes, locally or on Ray, with a manifest (see
recon.batch.runner).

Exit status: 0 when every scene is done, 1 when some failed (their one-line errors are in the summary and in
OUT/manifest.json, their logs in OUT/logs/NAME/STEP.log), 2 for a bad option or input (nothing runs then).
"""

from __future__ import annotations

from recon.batch.config import BatchConfig
from recon.batch.runner import run_batch
from recon.bench.options import tyro_one_line


def main(argv: list[str], prog: str = "recon batch") -> int:
    cfg = tyro_one_line(BatchConfig, argv, prog, prog=prog)
    data = run_batch(cfg)
    names = [n for n, e in data["scenes"].items() if e.get("state") == "failed"]
    return 1 if names else 0
