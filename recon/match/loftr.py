"""kornia LoFTR (semi-dense, detector-free) with local weights only: this module never downloads anything.

Weights are looked for at an explicit path (``--loftr-weights``) or in the torch hub cache
(``<torch.hub.get_dir()>/checkpoints/loftr_outdoor.ckpt``, where kornia itself would store them). The model is
built with ``pretrained=None`` and the state dict is loaded from the file, so kornia has no chance to fetch it.

LoFTR's keypoints are in the frame of the reference implementation, where the centre of pixel (x, y) is at
(x + 0.5, y + 0.5): recon's convention, so they are used as they are. With the default resolution (8, 2) the
keypoints of image 0 lie on the coarse grid, at ``8 * (column, row)``; those of image 1 add the fine offset.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recon.errors import ReconError
from recon.match.base import Matcher, Matches, to_gray
from recon.match.weights import file_sha256

CHECKPOINT_NAME = "loftr_outdoor.ckpt"


def default_weights_path() -> Path:
    """Where kornia caches the outdoor LoFTR checkpoint (the file may or may not exist)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / CHECKPOINT_NAME


def find_loftr_weights(explicit: str | Path | None = None) -> Path | None:
    """The LoFTR checkpoint to use: ``explicit`` (must exist, else ReconError) or the hub cache file, else None."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ReconError(f"{p}: LoFTR weights file not found")
        return p
    p = default_weights_path()
    return p if p.is_file() else None


class LoftrMatcher(Matcher):
    """LoFTR matcher. ``weights``: checkpoint path; None builds randomly initialised weights (tests only).

    ``threshold``: coarse dual-softmax confidence threshold (kornia's default 0.2). Confidence in the output is
    LoFTR's coarse matching score in [0, 1]. The checkpoint is a ``{"state_dict": ...}`` file as the LoFTR authors and
    kornia publish it (keys with or without the ``matcher.`` prefix) or a bare state dict; its cache identity is the
    SHA-256 of the file.
    """

    name = "loftr"

    def __init__(self, weights: str | Path | None, threshold: float = 0.2,
                 device: str | torch.device = "cpu") -> None:
        import copy

        from kornia.feature.loftr.loftr import LoFTR, default_cfg

        cfg = copy.deepcopy(default_cfg)
        cfg["match_coarse"]["thr"] = float(threshold)
        self.threshold = float(threshold)
        self.device = torch.device(device)
        self.model = LoFTR(pretrained=None, config=cfg)
        if weights is not None:
            path = Path(weights)
            if not path.is_file():
                raise ReconError(f"{path}: LoFTR weights file not found")
            try:
                ckpt = torch.load(path, map_location="cpu", weights_only=True)
                state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
                if not isinstance(state, dict):
                    raise TypeError("no state dict")
                self.model.load_state_dict(dict(state))
            except Exception as exc:
                raise ReconError(f"{path}: not a usable LoFTR checkpoint ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
            self.weights_id = "sha256:" + file_sha256(path)  # the same file anywhere shares the cache
        else:
            # random weights: identify them by their values so two different initialisations never share a cache
            h = hashlib.sha1()
            for p in list(self.model.parameters())[:4]:
                h.update(p.detach().cpu().numpy().tobytes())
            self.weights_id = "random:" + h.hexdigest()[:16]
        self.model.eval().to(self.device)

    def settings(self) -> dict[str, Any]:
        return {"weights": self.weights_id, "threshold": self.threshold}

    @torch.inference_mode()
    def match(self, img0: np.ndarray, img1: np.ndarray) -> Matches:
        t0 = torch.from_numpy(to_gray(img0))[None, None].to(self.device)
        t1 = torch.from_numpy(to_gray(img1))[None, None].to(self.device)
        out = self.model({"image0": t0, "image1": t1})
        return Matches(out["keypoints0"].float().cpu().numpy(), out["keypoints1"].float().cpu().numpy(),
                       out["confidence"].float().clamp(0, 1).cpu().numpy())
