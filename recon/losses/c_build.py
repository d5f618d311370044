"""Build and load small C kernels with the system C compiler (ctypes; no Python or torch headers needed).

A kernel is one self-contained C source (standard library and ``<math.h>`` only), so it compiles in well under a
second with ``$CC`` (else ``cc``, ``gcc`` or ``clang``) into ``$RECON_EXT_CACHE`` (else ``~/.cache/recon``)
``/c_kernels/<stem>_<hash>.so``; the hash covers the source and flags, so a changed kernel never loads a stale build,
and the library is written under a private name and renamed into place, so concurrent builds do not collide. Users
of a kernel fall back to torch code when :func:`load_library` returns None (no compiler, a failed build), after a
one-line notice on stderr.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

FLAGS = ("-O3", "-shared", "-fPIC", "-std=c99")
OPENMP = ("-fopenmp",)
"""Kernels with ``#pragma omp`` split their work over threads where the compiler has OpenMP (serial otherwise)."""
LIBS = ("-lm",)
_loaded: dict[str, ctypes.CDLL | None] = {}


def cache_dir() -> Path:
    root = os.environ.get("RECON_EXT_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "recon") / "c_kernels"


def _compile(stem: str, source: str) -> Path:
    """The compiled library of ``source`` (built now if absent); raises RuntimeError when compiling fails."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise RuntimeError("no C compiler found (set CC)")
    tag = hashlib.sha1((source + " ".join(FLAGS + OPENMP + LIBS)).encode()).hexdigest()[:16]
    out_dir = cache_dir()
    lib = out_dir / f"{stem}_{tag}.so"
    if lib.is_file():
        return lib
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        src, obj = Path(tmp) / f"{stem}.c", Path(tmp) / f"{stem}.so"
        src.write_text(source)
        # OpenMP and function multi-versioning where the toolchain has them; each one it lacks is dropped in turn
        for extra in (OPENMP, (*OPENMP, "-DRECON_NO_CLONES"), (), ("-DRECON_NO_CLONES",)):
            res = subprocess.run([cc, *FLAGS, *extra, "-o", str(obj), str(src), *LIBS], capture_output=True,
                                 text=True)
            if res.returncode == 0:
                break
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["compiler failed"])[-1]
            raise RuntimeError(f"compiling {stem} failed: {last}")
        os.replace(obj, lib)  # atomic: another process sees the whole library or none
    return lib


def load_library(stem: str, source: str, declare: Callable[[ctypes.CDLL], None]) -> ctypes.CDLL | None:
    """The loaded library of ``source`` (``declare`` sets its functions' argument types), or None when it cannot
    be built; built and loaded once per process."""
    if stem not in _loaded:
        try:
            dll = ctypes.CDLL(str(_compile(stem, source)))
            declare(dll)
            _loaded[stem] = dll
        except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as exc:
            print(f"recon: C kernel {stem} unavailable ({exc}); using the torch path", file=sys.stderr)
            _loaded[stem] = None
    return _loaded[stem]


MULTIVERSION = r"""
/* Entry points are compiled twice on x86-64 (AVX2 and the baseline), the loader picking one at run time; helpers
   are inlined into each. No FMA contraction (ISO C mode): both versions round alike. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__APPLE__) && !defined(RECON_NO_CLONES)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif
#define HELPER static inline __attribute__((always_inline))
"""
"""Preamble of the kernels: ``CLONES`` for entry points, ``HELPER`` for the functions they inline."""


def ptr(t: torch.Tensor | None) -> int | None:
    """Address of a tensor's data for a ``void *`` argument (None -> NULL)."""
    return None if t is None else t.data_ptr()


def cpu_float32(*tensors: torch.Tensor) -> bool:
    """All tensors are float32 on the CPU (what the kernels take, once contiguous)."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
