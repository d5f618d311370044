#!/usr/bin/env python
"""Convert kitti data to a recon scene folder: `python data_scripts/convert_kitti.py SRC --out DIR [...]`.

A thin wrapper of `recon data convert --from kitti`; see `--help` for the options.
"""

from __future__ import annotations

import sys


def main() -> int:
    from recon.cli import main as recon_main

    return recon_main(["data", "convert", "--from", "kitti", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
