"""Builds (at first use) and loads the C++/OpenMP compositing kernels in ``csrc/rasterize_cpu.cpp``.

The source ships as package data (in a wheel too). It is compiled with ``torch.utils.cpp_extension.load`` into a cache
folder: ``$RECON_EXT_CACHE`` if set, else ``~/.cache/recon/torch_extensions/<torch version>``. The compiler reads a
copy of the source kept in that folder (rewritten only when its content changes), so the build command does not
depend on where recon is installed: a source checkout and an installed wheel share one compiled module. If compiling
fails (no compiler, no Python headers, source missing) the CPU backend falls back to the pure-torch compositor after
printing a one-line notice to stderr.

Vector width: on an x86-64 CPU with AVX2 (``avx2`` in ``/proc/cpuinfo``, else torch's CPU capability) the kernels
are compiled with ``-mavx2 -mfma -ffp-contract=off`` (8 float lanes instead of 4, no fused multiply-add, so results
are bit for bit those of the 16-byte build) as the module ``recon_rasterize_cpu_avx2`` in the ``avx2`` subfolder of
the cache; the 16-byte build (SSE2, NEON) keeps its name and folder. The choice is made from the CPU that runs the
build, so a cache shared between machines never hands an AVX2 module to a CPU without AVX2.
``RECON_CPU_SIMD=baseline`` (or ``sse2``) forces the 16-byte build; ``RECON_CPU_SIMD=avx2`` asks for the AVX2 one
(used only where the CPU has AVX2).
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from pathlib import Path
from types import ModuleType

import torch

_SRC = Path(__file__).resolve().parent / "csrc" / "rasterize_cpu.cpp"
_state: dict[str, object] = {}

BASELINE = "baseline"
AVX2 = "avx2"
SIMD_ENV = "RECON_CPU_SIMD"
_VARIANTS: dict[str, tuple[str, str, list[str]]] = {
    BASELINE: ("recon_rasterize_cpu", "", []),
    # no loop auto-vectorisation: with AVX2 GCC 12 vectorises the projection's 2- and 3-element loops (with 8-byte
    # epilogues), which made projection and binning ~30% slower; the compositing's vectors are explicit
    AVX2: ("recon_rasterize_cpu_avx2", "avx2", ["-mavx2", "-mfma", "-ffp-contract=off", "-fno-tree-loop-vectorize"]),
}
"""Build variant -> (module name, cache subfolder, extra compiler flags)."""


@functools.cache
def cpu_has_avx2() -> bool:
    """True on an x86-64 CPU (and OS) that runs AVX2 and FMA code: Linux ``/proc/cpuinfo`` flags, else torch's
    detected CPU capability."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return {"avx2", "fma"} <= flags
    except OSError:
        pass
    try:
        return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    except Exception:  # noqa: BLE001 - an old torch without the query: stay on the baseline
        return False


def simd_variant() -> str:
    """The build to use here: ``$RECON_CPU_SIMD`` (``baseline``/``sse2``/``neon`` or ``avx2``), else the widest
    the CPU runs; ``avx2`` only where :func:`cpu_has_avx2`."""
    want = os.environ.get(SIMD_ENV, "").strip().lower()
    if want in (BASELINE, "sse2", "neon", "base"):
        return BASELINE
    if want not in ("", "auto", AVX2) and not _state.get("env_noted"):
        _state["env_noted"] = True
        print(f"recon.render: {SIMD_ENV}={want!r} not understood (baseline, sse2, avx2); choosing from the CPU",
              file=sys.stderr)
    return AVX2 if cpu_has_avx2() else BASELINE


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


def _build(variant: str) -> ModuleType:
    """Compile (or find compiled) and import one build variant."""
    from torch.utils.cpp_extension import load

    name, sub, flags = _VARIANTS[variant]
    build_dir = _cache_dir() / sub if sub else _cache_dir()
    build_dir.mkdir(parents=True, exist_ok=True)
    _clear_stale_lock(build_dir)
    return load(
        name=name,
        sources=[str(_staged_source(build_dir))],
        extra_cflags=["-O3", "-fopenmp", *flags],
        extra_ldflags=["-fopenmp"],
        build_directory=str(build_dir),
        verbose=False,
    )


def load_extension(variant: str | None = None) -> ModuleType:
    """The compiled module (builds it on first call); raises RuntimeError if it cannot be built.

    ``variant`` (``"baseline"`` or ``"avx2"``) picks a build; by default :func:`simd_variant`. An AVX2 build that
    fails falls back to the baseline one.
    """
    v = variant or simd_variant()
    if v not in _VARIANTS:
        raise ValueError(f"unknown rasterizer build {v!r} (expected one of {sorted(_VARIANTS)})")
    if v == AVX2 and not cpu_has_avx2():
        raise RuntimeError("recon.render: this CPU has no AVX2; the avx2 build cannot run here")
    mods: dict[str, ModuleType] = _state.setdefault("mods", {})  # type: ignore[assignment]
    errors: dict[str, str] = _state.setdefault("errors", {})  # type: ignore[assignment]
    if v in mods:
        return mods[v]
    if v not in errors:
        try:
            mods[v] = _build(v)
            return mods[v]
        except Exception as exc:  # noqa: BLE001 - any build failure means "use another path"
            msg = str(exc).strip().splitlines()
            errors[v] = f"recon.render: C++ rasterizer unavailable ({msg[-1] if msg else type(exc).__name__})"
    if v != BASELINE and variant is None:
        if not _state.get("fallback_noted"):
            print(f"{errors[v]} for {v}; using the baseline build", file=sys.stderr)
            _state["fallback_noted"] = True
        return load_extension(BASELINE)
    raise RuntimeError(errors[v])


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
