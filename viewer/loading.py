"""What ``recon view`` opens: a 3DGS PLY file, or a training run folder (PLY + the scene it was trained on).

A run folder holds ``point_cloud.ply`` (latest export) and ``config.json`` with ``"data": "<scene folder>"``; the
scene folder path is taken as written (absolute, or relative to the current directory), else relative to the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from recon.data.scene import Scene
from recon.errors import ReconError
from recon.model.ply import GaussianData, load_ply


@dataclass
class ViewerInput:
    """A loaded PLY, the scene of its run (None for a bare PLY), and where screenshots go."""

    ply_path: Path
    gaussians: GaussianData
    scene: Scene | None
    out_dir: Path
    run_dir: Path | None = None
    notes: list[str] = field(default_factory=list)


def _scene_of_run(run: Path, notes: list[str]) -> Scene | None:
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        notes.append(f"{cfg_path} not found: no camera frustums")
        return None
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReconError(f"{cfg_path}: not valid JSON ({exc})") from None
    data = cfg.get("data") if isinstance(cfg, dict) else None
    if not isinstance(data, str) or not data:
        notes.append(f"{cfg_path} has no \"data\" entry: no camera frustums")
        return None
    for cand in (Path(data), run / data):
        if (cand / "scene.json").is_file():
            return Scene.load(cand, check_files=False)
    notes.append(f"scene folder {data!r} named in {cfg_path} not found: no camera frustums")
    return None


def _finite(g: GaussianData, ply: Path, notes: list[str]) -> GaussianData:
    """Drop Gaussians with a NaN or infinite parameter (counted in a note); refuse a file with none left."""
    ok = g.finite_mask()
    if ok.all():
        return g
    if not ok.any():
        raise ReconError(f"{ply}: none of the {len(g):,} Gaussians has finite values (NaN or infinite parameters)")
    notes.append(f"{ply}: {len(g) - int(ok.sum()):,} of {len(g):,} Gaussians have NaN or infinite parameters and "
                 "are not shown")
    return g.subset(ok)


def resolve_input(path: str | Path) -> ViewerInput:
    """Open a PLY file or a run folder; raise :class:`ReconError` (one line) when it is neither."""
    path = Path(path)
    if not path.exists():
        raise ReconError(f"{path}: no such file or folder (give a 3DGS .ply or a training run folder)")
    notes: list[str] = []
    if path.is_dir():
        ply = path / "point_cloud.ply"
        if not ply.is_file():
            raise ReconError(f"{path}: no point_cloud.ply in this folder (is it a `recon train` run folder?)")
        scene = _scene_of_run(path, notes)
        return ViewerInput(ply, _finite(load_ply(ply), ply, notes), scene, path, run_dir=path, notes=notes)
    return ViewerInput(path, _finite(load_ply(path), path, notes), None, path.parent, run_dir=None, notes=notes)
