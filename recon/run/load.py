"""Load a trained run folder (``config.json`` + newest checkpoint) back into render-ready tensors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from recon.errors import ReconError
from recon.model.sky import SkyModel
from recon.run.checkpoints import list_checkpoints, read_newest_checkpoint


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
    """Read ``run/config.json`` and the newest readable checkpoint; clear errors for anything missing.

    The checkpoint must belong to this run: its SH coefficients must match its SH degree, which must be the degree
    ``config.json`` names, and its config key must be the run's (a checkpoint copied from another run is refused).
    """
    run = Path(run)
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise ReconError(f"{run}: not a recon run folder (no config.json; train one with `recon train`)")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ReconError(f"{cfg_path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("data"), str) or not config["data"]:
        raise ReconError(f"{cfg_path}: no \"data\" entry naming the scene folder (not a run config written by "
                         "`recon train`)")
    if not list_checkpoints(run):
        raise ReconError(f"{run}: run has no checkpoint yet (training did not reach its first checkpoint)")
    state = read_newest_checkpoint(run, map_location=device)
    if state is None:
        raise ReconError(f"{run / 'checkpoints'}: no readable checkpoint")
    ckpt = state.get("path")
    params = state.get("params")
    if not isinstance(params, dict) or not all(torch.is_tensor(params.get(k)) for k in _PARAM_KEYS):
        raise ReconError(f"{ckpt}: checkpoint holds no Gaussian parameters ({', '.join(_PARAM_KEYS)})")
    sh_degree = _sh_degree(state.get("sh_degree", 3), params["shN"], ckpt)
    cfg_degree = (config.get("optim") or {}).get("sh_degree") if isinstance(config.get("optim"), dict) else None
    if isinstance(cfg_degree, int) and cfg_degree != sh_degree:
        raise ReconError(f"{ckpt}: checkpoint has SH degree {sh_degree} but {cfg_path} trains degree {cfg_degree} "
                         "(a checkpoint of another run?); refusing to load it")
    key, cfg_key = state.get("config_key"), config.get("config_key")
    if key is not None and cfg_key is not None and key != cfg_key:
        raise ReconError(f"{ckpt}: checkpoint was trained with another config than {cfg_path} (a checkpoint of "
                         "another run?); refusing to load it")
    step = state["step"]
    sky = None
    if state.get("sky") is not None:
        sky = SkyModel(up=tuple(state.get("up", (0.0, 0.0, 1.0))))
        sky.load_state_dict(state["sky"])
        sky = sky.to(device)
    return LoadedRun(root=run, params=params, sky=sky, sh_degree=sh_degree,
                     config=config, step=int(step), exposure=state.get("exposure"),
                     camera_names=state.get("camera_names"), checkpoint=ckpt,
                     scene_fingerprint=state.get("scene_fingerprint"))


_PARAM_KEYS = ("means", "quats", "scales", "opacities", "sh0", "shN")


def _sh_degree(value: object, shN: torch.Tensor, ckpt: object) -> int:
    """The checkpoint's SH degree, checked against its coefficients ``shN [N, (deg+1)^2 - 1, 3]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4:
        raise ReconError(f"{ckpt}: checkpoint's SH degree {value!r} is not a whole number in 0..4")
    k = (value + 1) ** 2 - 1
    if shN.ndim != 3 or shN.shape[1] != k:
        raise ReconError(f"{ckpt}: checkpoint's SH coefficients {tuple(shN.shape)} do not match its SH degree "
                         f"{value} ({k} per channel)")
    return value
