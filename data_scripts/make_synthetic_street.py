#!/usr/bin/env python
"""Generate the embedded synthetic street scene (same options as `recon data synth`).

    python data_scripts/make_synthetic_street.py --out data/street --seed 0
"""

from __future__ import annotations

import sys

from recon.data.synth.cli import main
from recon.errors import ReconError

if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:], prog="make_synthetic_street.py"))
    except ReconError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
