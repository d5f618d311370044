"""Builds (at first use) and loads the C++/OpenMP compositing kernels in ``csrc/rasterize_cpu.cpp``.

The source ships as package data (in a wheel too). It is compiled with ``torch.utils.cpp_extension.load`` into a cache
folder: ``$RECON_EXT_CACHE`` if set, else ``~/.cache/recon/torch_extensions/<torch version>``. The compiler reads a
copy of the source kept in that folder (rewritten only when its content changes), so the build command does not
depend on where recon is installed: a source checkout and an installed wheel share one compiled module. If compiling
fails (no compiler, no Python headers, source missing) the CPU backend falls back to the pure-torch compositor after
printing a one-line notice to stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

import torch

_SRC = Path(__file__).resolve().parent / "csrc" / "rasterize_cpu.cpp"
_state: dict[str, object] = {}


def _cache_dir() -> Path:
    root = os.environ.get("RECON_EXT_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "recon" / "torch_extensions"
    d = base / f"torch{torch.__version__.replace('+', '_')}"
    d.mkdir(parents=True, exist_ok=True)
    return d


STALE_LOCK_S = 600.0


def _clear_stale_lock(build_dir: Path) -> None:
    """torch's build lock waits forever if a compiling process died; a lock older than 10 minutes is stale."""
    import time

    lock = build_dir / "lock"
    try:
        if lock.exists() and time.time() - lock.stat().st_mtime > STALE_LOCK_S:
            print(f"recon.render: removing stale build lock {lock}", file=sys.stderr)
            lock.unlink()
    except OSError:
        pass


def _staged_source(build_dir: Path) -> Path:
    """The copy of :data:`_SRC` in ``build_dir`` that is compiled; written (atomically) only when it differs."""
    from recon.io.atomic import atomic_write_bytes

    code = _SRC.read_bytes()
    staged = build_dir / _SRC.name
    if not staged.is_file() or staged.read_bytes() != code:
        atomic_write_bytes(staged, code)
    return staged


def load_extension() -> ModuleType:
    """The compiled module (builds it on first call); raises RuntimeError if it cannot be built."""
    if "mod" in _state:
        return _state["mod"]  # type: ignore[return-value]
    if "error" in _state:
        raise RuntimeError(str(_state["error"]))
    try:
        from torch.utils.cpp_extension import load

        build_dir = _cache_dir()
        _clear_stale_lock(build_dir)
        mod = load(
            name="recon_rasterize_cpu",
            sources=[str(_staged_source(build_dir))],
            extra_cflags=["-O3", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
            build_directory=str(build_dir),
            verbose=False,
        )
    except Exception as exc:  # noqa: BLE001 - any build failure means "use the torch path"
        msg = str(exc).strip().splitlines()
        _state["error"] = f"recon.render: C++ rasterizer unavailable ({msg[-1] if msg else type(exc).__name__})"
        raise RuntimeError(str(_state["error"])) from exc
    _state["mod"] = mod
    return mod


def extension_available() -> bool:
    """True when the C++ kernels are (or can be) loaded; prints a one-line notice the first time they cannot."""
    if os.environ.get("RECON_DISABLE_CPP_RASTERIZER"):
        return False
    try:
        load_extension()
        return True
    except RuntimeError as exc:
        if not _state.get("warned"):
            print(f"{exc}; using the pure-torch compositor", file=sys.stderr)
            _state["warned"] = True
        return False
