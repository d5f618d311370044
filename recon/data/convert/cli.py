"""``recon data convert``: turn a dataset into a recon scene folder (scene.json + images/ + lidar/ + masks/)."""

from __future__ import annotations

import tyro

from recon.data.convert.dispatch import ConvertArgs, run


def main(argv: list[str], prog: str = "recon data convert") -> int:
    args = tyro.cli(ConvertArgs, args=argv, prog=prog)
    run(args)
    return 0
