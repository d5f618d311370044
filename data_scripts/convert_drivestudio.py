#!/usr/bin/env python
"""Convert drivestudio data to a recon scene folder: `python data_scripts/convert_drivestudio.py SRC --out DIR [...]`.

A thin wrapper of `recon data convert --from drivestudio`; see `--help` for the options.
"""

from __future__ import annotations

import sys


def main() -> int:
    from recon.cli import main as recon_main

    return recon_main(["data", "convert", "--from", "drivestudio", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
