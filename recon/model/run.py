"""Load a trained run folder (``config.json`` + newest checkpoint) back into render-ready tensors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from recon.errors import ReconError
from recon.model.sky import SkyModel


@dataclass
class LoadedRun:
    """Raw Gaussian parameters (see recon.model.gaussians), the sky model, and the run's config dict."""

    root: Path
    params: dict[str, torch.Tensor]
    sky: SkyModel | None
    sh_degree: int
    config: dict[str, Any]
    step: int
    exposure: torch.Tensor | None = None
    camera_names: list[str] | None = None
    checkpoint: Path | None = None
    scene_fingerprint: str | None = None
    """Fingerprint of the scene the checkpoint was trained on (see ``Scene.fingerprint``)."""

    @property
    def scene_path(self) -> Path:
        return Path(self.config["data"])


def load_run(run: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Read ``run/config.json`` and the newest readable checkpoint; clear errors for anything missing."""
    from recon.train.checkpoint import list_checkpoints, read_newest_checkpoint

    run = Path(run)
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise ReconError(f"{run}: not a recon run folder (no config.json; train one with `recon train`)")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise ReconError(f"{cfg_path}: not valid JSON ({exc})") from None
    if not list_checkpoints(run):
        raise ReconError(f"{run}: run has no checkpoint yet (training did not reach its first checkpoint)")
    state = read_newest_checkpoint(run, map_location=device)
    if state is None:
        raise ReconError(f"{run / 'checkpoints'}: no readable checkpoint")
    step = state["step"]
    sky = None
    if state.get("sky") is not None:
        sky = SkyModel(up=tuple(state.get("up", (0.0, 0.0, 1.0))))
        sky.load_state_dict(state["sky"])
        sky = sky.to(device)
    return LoadedRun(root=run, params=state["params"], sky=sky, sh_degree=int(state.get("sh_degree", 3)),
                     config=config, step=int(step), exposure=state.get("exposure"),
                     camera_names=state.get("camera_names"), checkpoint=state.get("path"),
                     scene_fingerprint=state.get("scene_fingerprint"))
