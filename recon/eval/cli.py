"""``recon eval RUN``: test-view PSNR/SSIM and depth metrics by range band for a trained run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro


@dataclass
class EvalArgs:
    """Evaluate a run folder written by `recon train` on its scene's test split."""

    run: Annotated[Path, tyro.conf.Positional]
    """Run folder (with config.json and checkpoints/)."""
    no_outputs: bool = False
    """Only print and write metrics.json; skip the rendered images and depth maps."""
    export_depth_points: bool = False
    """Also fuse the rendered test depths into a coloured point cloud (eval/depth_points.ply, open3d)."""


def main(argv: list[str], prog: str = "recon eval") -> int:
    from recon.eval.evaluate import evaluate_run, format_metrics
    from recon.io.diskfull import disk_full_is_one_line

    args = tyro.cli(EvalArgs, args=argv, prog=prog)
    with disk_full_is_one_line(args.run / "eval"):
        m = evaluate_run(args.run, write_outputs=not args.no_outputs)
        print(format_metrics(m))
        if args.export_depth_points:
            from recon.eval.export import export_depth_points

            p = export_depth_points(args.run)
            print(f"depth point cloud: {p}")
    return 0
