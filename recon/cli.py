"""The ``recon`` command: one subcommand per stage, each a tyro CLI of its own.

Subcommands are imported lazily so that ``recon --help`` is instant and a subcommand only pays for what it uses.
Every user-caused error (:class:`recon.errors.ReconError`) is printed as one line and exits with status 2.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module with `main(argv, prog) -> int`, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("recon.data.cli", "make scenes: `synth` (embedded synthetic street), `convert` (Waymo, COLMAP, KITTI, "
             "drivestudio), `info`"),
    "train": ("recon.train.cli", "train Gaussians on a scene (presets: baseline, lidar, dof, mv, full)"),
    "eval": ("recon.eval.cli", "evaluate a run: test-view PSNR/SSIM and depth metrics by range band"),
    "bench": ("recon.bench.cli", "benchmark baseline 3DGS against each supervision, side by side"),
    "batch": ("recon.batch.cli", "convert, sfm, train and eval many scenes (local or on Ray) with a manifest"),
    "view": ("viewer.cli", "web splat viewer with depth and refocus"),
    "bokeh": ("recon.optics.bokeh_cli", "physically based bokeh / refocus from one sharp image and metric depth"),
    "dfd": ("recon.priors.dfd_cli", "depth from defocus: aperture pair, focal stack, single image"),
    "depth": ("recon.priors.cli", "compute metric depth priors for a scene (lidar, sfm, mono, dfd)"),
    "match": ("recon.match.cli", "match neighbouring views, triangulate, report reliable points per pair"),
    "sfm": ("recon.sfm.cli", "structure from motion with the scene's known poses: matches, pycolmap triangulation, "
            "points3d.npy"),
    "models": ("recon.models.cli", "list the named models and checkpoints; `fetch NAME` downloads one explicitly"),
}


def _usage() -> str:
    from recon import __version__

    lines = [f"recon {__version__}: driving-scene Gaussian splatting with depth-of-field and multi-view depth.",
             "", "usage: recon COMMAND [--help] [ARGS...]", "", "commands:"]
    for name, (_mod, desc) in COMMANDS.items():
        lines.append(f"  {name:<7} {desc}")
    lines += ["", "Run `recon COMMAND --help` for a command's options. Quick start: `make demo`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from recon.errors import ReconError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from recon import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        mod = importlib.import_module(COMMANDS[name][0])
        rc = mod.main(rest, prog=f"recon {name}")
    except ReconError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
