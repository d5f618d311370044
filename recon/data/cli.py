"""``recon data``: make scene folders.

    recon data synth --out DIR [--seed S] [...]     the embedded synthetic Waymo-style street
    recon data convert --from SOURCE SRC --out DIR   Waymo v2/v1, COLMAP, KITTI, drivestudio
    recon data info DIR                              validate a scene folder and print its summary
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

SUB = {
    "synth": ("recon.data.synth.cli", "generate the embedded synthetic street (exact depth, LiDAR, lens images)"),
    "convert": ("recon.data.convert.cli", "convert Waymo v2/v1, COLMAP, KITTI or drivestudio data to a scene"),
    "info": (__name__, "validate a scene folder and print its summary"),
}


@dataclass
class InfoArgs:
    """Validate a scene folder (every file it names must exist) and print its summary."""

    scene: Annotated[Path, tyro.conf.Positional]
    deep: bool = False
    """Also decode every image, depth map, mask, LiDAR sweep and point file (what `recon train` does up front)."""


def info_main(argv: list[str], prog: str) -> int:
    from recon.data.scene import Scene

    args = tyro.cli(InfoArgs, args=argv, prog=prog)
    scene = Scene.load(args.scene)
    print(scene.summary())
    if args.deep:
        from recon.data.check import check_scene_files

        print(f"  {check_scene_files(scene).summary()}")
    return 0


def main(argv: list[str], prog: str = "recon data") -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {prog} {{{','.join(SUB)}}} [--help] ...\n")
        for name, (_mod, desc) in SUB.items():
            print(f"  {name:<8} {desc}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUB:
        print(f"error: unknown `{prog}` subcommand {name!r} (choose from {', '.join(SUB)})", file=sys.stderr)
        return 2
    if name == "info":
        return info_main(rest, f"{prog} info")
    mod = importlib.import_module(SUB[name][0])
    return int(mod.main(rest, prog=f"{prog} {name}") or 0)
