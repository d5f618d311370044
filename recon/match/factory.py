"""Choose a matcher: LoFTR when its weights are on disk, the offline SIFT matcher otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from recon.errors import ReconError
from recon.match.base import Matcher, notice
from recon.match.loftr import LoftrMatcher, default_weights_path, find_loftr_weights
from recon.match.sift import SiftMatcher

MatcherKind = Literal["auto", "loftr", "sift"]


def create_matcher(kind: MatcherKind = "auto", loftr_weights: str | Path | None = None,
                   device: str | torch.device = "cpu", quiet: bool = False) -> Matcher:
    """``auto``: LoFTR with local weights, else SIFT with a one-line notice. ``loftr`` without weights fails."""
    if kind not in ("auto", "loftr", "sift"):
        raise ReconError(f"unknown matcher {kind!r} (choose auto, loftr or sift)")
    if kind == "sift":
        return SiftMatcher(device=device)
    weights = find_loftr_weights(loftr_weights)
    if weights is not None:
        return LoftrMatcher(weights, device=device)
    if kind == "loftr":
        raise ReconError(f"{default_weights_path()}: LoFTR weights not found (pass --loftr-weights PATH, or use "
                         "--matcher sift); recon never downloads weights")
    if not quiet:
        notice(f"notice: no LoFTR weights at {default_weights_path()}: using the offline SIFT matcher")
    return SiftMatcher(device=device)
