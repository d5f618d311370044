"""A wheel works: built from the sources, installed into a fresh venv outside the checkout, it trains a tiny scene.

The wheel must carry the presets (``configs/*.toml`` as the package ``recon.configs``) and the C++ sources of the CPU
rasterizer (``recon/render/csrc/*.cpp``). The fresh venv gets only the wheel; the dependencies (torch, gsplat, ...)
come from the project's environment through a ``.pth`` file written after the install, so pip never sees (or
uninstalls) the editable install of the checkout, and ``recon`` is imported from the new venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_INPUTS = ["pyproject.toml", "setup.py", "README.md", "recon", "viewer", "configs"]


def _run(argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def _build_wheel(tmp_path: Path) -> Path:
    """``pip wheel`` of a copy of the sources (the checkout's own build/ and egg-info folders play no part)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(p, src / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, src],
         cwd=tmp_path)
    wheels = sorted(dist.glob("recon-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_installs_and_trains(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = {Path(n).stem for n in names if n.startswith("recon/configs/") and n.endswith(".toml")}
    assert {p.stem for p in (REPO / "configs").glob("*.toml")} == presets and "baseline" in presets
    assert "recon/render/csrc/rasterize_cpu.cpp" in names and "viewer/cli.py" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--ignore-installed", wheel],
         cwd=tmp_path)
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path)
                .stdout.strip())
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "project_deps.pth").write_text("".join(f"{d}\n" for d in deps))

    work = tmp_path / "work"  # outside the checkout: nothing there to import recon from
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    env.pop("RECON_DISABLE_CPP_RASTERIZER", None)
    where = _run([py, "-c", "import recon, recon.render.cpp_ext as c, recon.train.presets as p; "
                  "print(recon.__file__); print(c._SRC); print(','.join(p.preset_names()))"], cwd=work, env=env)
    recon_file, cpp_src, names_line = where.stdout.strip().splitlines()
    assert Path(recon_file).is_relative_to(venv), recon_file
    assert Path(cpp_src).is_relative_to(venv) and Path(cpp_src).is_file(), cpp_src
    assert set(names_line.split(",")) == presets

    recon = venv / "bin" / "recon"
    out = _run([recon, "--help"], cwd=work, env=env).stdout
    assert "usage: recon COMMAND" in out and "train" in out and "not built yet" not in out

    _run([recon, "data", "synth", "--out", "scene", "--width", "64", "--height", "40", "--n-frames", "4",
          "--cameras", "front", "--defocus-frames", "0", "--lidar-beams", "16", "--lidar-azimuth-steps", "200",
          "--antialias", "1"], cwd=work, env=env)
    run = _run([recon, "train", "--data", "scene", "--out", "run", "baseline", "--iters", "5", "--no-eval-at-end",
                "--threads", "1", "--init.max-points", "800"], cwd=work, env=env)
    from recon.render.cpp_ext import extension_available

    if extension_available():  # a compiler is there: the wheel's C++ sources must build (or be found built) too
        assert "C++ rasterizer unavailable" not in run.stderr, run.stderr[-2000:]
    assert (work / "run" / "point_cloud.ply").is_file() and (work / "run" / "config.json").is_file()
