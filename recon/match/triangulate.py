"""Linear least-squares (DLT) triangulation of matches with known poses, reliability filters and weights.

Conventions: OpenCV camera axes (x right, y down, z forward); ``world2cam`` 4x4 maps world metres to camera
metres; ``K`` 3x3 in pixels with the pixel-centre convention (centre of pixel (u, v) at (u + 0.5, v + 0.5)), so
projecting with K gives keypoint coordinates directly. Depth is z in a camera's frame (metres), which is what
``rendered_depth`` and the ground-truth ``.npy`` depth maps hold.

Filters (all must pass): in front of both cameras, depth inside [min_depth_m, max_depth_m] in both, reprojection
error at most ``max_reproj_px`` in both views, triangulation angle at least ``min_angle_deg`` (the thresholds of
:class:`recon.match.point_filter.PointFilter` with this module's defaults), and a robust outlier test
on the larger of the two reprojection errors (median + ``mad_k`` * 1.4826 * MAD over the pair's points).

Depth sensitivity: ``rel_depth_per_px`` is the relative depth change caused by a one-pixel shift of the match
along the epipolar line, the worse of the two views (computed exactly by moving the point along each ray and
reprojecting into the other view). It grows as 1 / (focal * angle) and is large near the epipole of a forward-moving
camera, where the triangulation angle alone says little. Points above ``max_rel_depth_per_px`` (default 0.2: the
sensitivity-weighted loss still uses the points between 0.1 and 0.2, which are most of the near-range points of
small images, at a tenth of the weight of the best ones or less) are dropped.

Weight of a kept point, in (0, 1]:
``confidence * min(1, rel_ref / rel_depth_per_px) / (1 + (err / reproj_sigma_px)^2)``: the sensitivity term
down-weights points whose depth a small match error would move most; the error term points whose rays barely meet;
the confidence term is the matcher's own score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recon.data.projection import world_to_pixel
from recon.data.scene import Frame
from recon.match.base import Matches
from recon.match.point_filter import PointFilter, apply_in_order


@dataclass
class TriangulationConfig(PointFilter):
    """Reliability filters of two-view points (see the module docstring). Pixels, degrees and metres as named."""

    max_reproj_px: float = 1.0
    min_angle_deg: float = 1.0
    min_depth_m: float = 0.3
    max_depth_m: float = 250.0
    mad_k: float = 4.0
    max_rel_depth_per_px: float = 0.2
    rel_ref: float = 0.01
    reproj_sigma_px: float = 0.5


@dataclass
class PairPoints:
    """Reliable triangulated points of one pair (N points; float32 unless stated).

    ``pix0``/``pix1``: (N, 2) pixel coordinates in each view; ``points``: (N, 3) world metres (float64);
    ``depth0``/``depth1``: z in each camera (metres); ``weights``: (N,) in (0, 1]; ``reproj_err``: (N,) the larger
    of the two reprojection errors (px); ``angle_deg``: (N,) triangulation angle; ``rel_depth_per_px``: (N,) depth
    sensitivity (see the module docstring). ``n_matches``: matches in; ``rejected``: points dropped per filter.
    """

    frame0: str
    frame1: str
    pix0: np.ndarray
    pix1: np.ndarray
    points: np.ndarray
    depth0: np.ndarray
    depth1: np.ndarray
    weights: np.ndarray
    reproj_err: np.ndarray
    angle_deg: np.ndarray
    rel_depth_per_px: np.ndarray
    n_matches: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pix0)

    def subset(self, keep: np.ndarray, reason: str = "") -> PairPoints:
        """The points selected by a boolean mask (dropped ones counted under ``reason`` in ``rejected``)."""
        rejected = dict(self.rejected)
        if reason:
            rejected[reason] = rejected.get(reason, 0) + int((~keep).sum())
        return PairPoints(self.frame0, self.frame1, self.pix0[keep], self.pix1[keep], self.points[keep],
                          self.depth0[keep], self.depth1[keep], self.weights[keep], self.reproj_err[keep],
                          self.angle_deg[keep], self.rel_depth_per_px[keep], self.n_matches, rejected)


def triangulate_dlt(K0: np.ndarray, w2c0: np.ndarray, K1: np.ndarray, w2c1: np.ndarray,
                    x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Batched linear triangulation: (M, 2) pixels in each view -> (M, 3) world points (float64).

    Works in normalised camera coordinates (K^-1 x) with the world origin moved to the midpoint of the two camera
    centres, which keeps the 4x4 systems well conditioned for large world coordinates. Points at infinity come back
    as NaN.
    """
    x0 = np.asarray(x0, np.float64).reshape(-1, 2)
    x1 = np.asarray(x1, np.float64).reshape(-1, 2)
    if len(x0) == 0:
        return np.zeros((0, 3))
    c0 = -w2c0[:3, :3].T @ w2c0[:3, 3]
    c1 = -w2c1[:3, :3].T @ w2c1[:3, 3]
    origin = 0.5 * (c0 + c1)
    scale = max(float(np.linalg.norm(c1 - c0)), 1e-9)

    def proj(w2c: np.ndarray) -> np.ndarray:
        # world' = (world - origin) / scale  =>  cam = R (scale * world' + origin) + t
        R, t = w2c[:3, :3], w2c[:3, 3]
        return np.concatenate([R * scale, (R @ origin + t)[:, None]], axis=1)

    def normalise(K: np.ndarray, x: np.ndarray) -> np.ndarray:
        h = np.concatenate([x, np.ones((len(x), 1))], axis=1)
        return (np.linalg.inv(K) @ h.T).T[:, :2]

    P0, P1 = proj(w2c0), proj(w2c1)
    n0, n1 = normalise(K0, x0), normalise(K1, x1)
    A = np.stack([
        n0[:, :1] * P0[2] - P0[0], n0[:, 1:] * P0[2] - P0[1],
        n1[:, :1] * P1[2] - P1[0], n1[:, 1:] * P1[2] - P1[1],
    ], axis=1)  # (M, 4, 4)
    A /= np.linalg.norm(A, axis=2, keepdims=True).clip(1e-12)
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1, :]
    w = X[:, 3:]
    with np.errstate(divide="ignore", invalid="ignore"):
        pts = np.where(np.abs(w) > 1e-12, X[:, :3] / w, np.nan)
    return pts * scale + origin


def project(K: np.ndarray, w2c: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (M, 3) -> pixels (M, 2) and camera z (M,) (:func:`recon.data.projection.world_to_pixel`; a
    point at z = 0, such as a DLT point at infinity, gives non-finite pixels that the filters drop)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return world_to_pixel(pts, w2c, K)


def depth_sensitivity(K0: np.ndarray, w2c0: np.ndarray, K1: np.ndarray, w2c1: np.ndarray, pts: np.ndarray,
                      step: float = 1e-3) -> np.ndarray:
    """Relative depth change per pixel of match error (M,), the worse of the two views.

    For view 0: move the point along camera 0's ray by a relative ``step`` in depth and measure how far its image
    in view 1 moves (pixels); the inverse is the relative depth error per pixel. Same with the roles swapped.
    """
    out = np.zeros(len(pts))
    for wa, (Kb, wb) in ((w2c0, (K1, w2c1)), (w2c1, (K0, w2c0))):
        ca = -wa[:3, :3].T @ wa[:3, 3]
        moved = ca + (pts - ca) * (1.0 + step)
        uv, _ = project(Kb, wb, pts)
        uv2, _ = project(Kb, wb, moved)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = step / np.linalg.norm(uv2 - uv, axis=1)
        out = np.maximum(out, np.where(np.isfinite(s), s, np.inf))
    return out


def epipolar_directions_from_poses(K0: np.ndarray, w2c0: np.ndarray, K1: np.ndarray, w2c1: np.ndarray, pts: np.ndarray,
                        step: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions (M, 2) of the epipolar line through each world point's image in view 0 and in view 1, from
    the known poses (:func:`recon.sfm.verify.epipolar_directions` gets them from a fundamental matrix and matches).

    The epipolar line in view 0 is the image of camera 1's ray through the point, and vice versa.
    """
    out = []
    for (Ka, wa), wb in (((K0, w2c0), w2c1), ((K1, w2c1), w2c0)):
        cb = -wb[:3, :3].T @ wb[:3, 3]
        uv, _ = project(Ka, wa, pts)
        uv2, _ = project(Ka, wa, cb + (pts - cb) * (1.0 + step))
        d = uv2 - uv
        out.append(d / np.linalg.norm(d, axis=1, keepdims=True).clip(1e-12))
    return out[0], out[1]


def triangulate_matches(K0: np.ndarray, w2c0: np.ndarray, K1: np.ndarray, w2c1: np.ndarray, matches: Matches,
                        config: TriangulationConfig | None = None, frame0: str = "", frame1: str = "") -> PairPoints:
    """Triangulate ``matches`` (pixels of each view at the cameras' K) and keep the reliable points."""
    cfg = config or TriangulationConfig()
    x0 = matches.kpts0.astype(np.float64)
    x1 = matches.kpts1.astype(np.float64)
    pts = triangulate_dlt(K0, w2c0, K1, w2c1, x0, x1)
    uv0, z0 = project(K0, w2c0, pts)
    uv1, z1 = project(K1, w2c1, pts)
    e0 = np.linalg.norm(uv0 - x0, axis=1)
    e1 = np.linalg.norm(uv1 - x1, axis=1)
    err = np.maximum(e0, e1)
    c0 = -w2c0[:3, :3].T @ w2c0[:3, 3]
    c1 = -w2c1[:3, :3].T @ w2c1[:3, 3]
    r0, r1 = pts - c0, pts - c1
    with np.errstate(invalid="ignore"):
        cosang = (r0 * r1).sum(1) / (np.linalg.norm(r0, axis=1) * np.linalg.norm(r1, axis=1)).clip(1e-12)
    angle = np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0)))

    sens = depth_sensitivity(K0, w2c0, K1, w2c1, pts)

    finite = np.isfinite(pts).all(1) & np.isfinite(err) & np.isfinite(sens)
    shared = cfg.shared_tests(err, angle, np.minimum(z0, z1))
    tests = {
        "behind": finite & (z0 > 0) & (z1 > 0),
        "depth_range": shared["depth"] & (z0 <= cfg.max_depth_m) & (z1 <= cfg.max_depth_m),
        "reprojection": shared["reprojection"],
        "angle": shared["angle"],
        "sensitivity": sens <= cfg.max_rel_depth_per_px,
    }
    keep, rejected = apply_in_order({k: np.where(finite, ok, False) for k, ok in tests.items()}, finite)
    if keep.sum() >= 5 and cfg.mad_k > 0:
        med = float(np.median(err[keep]))
        mad = float(np.median(np.abs(err[keep] - med)))
        thr = med + cfg.mad_k * 1.4826 * max(mad, 1e-3)
        ok = err <= thr
        rejected["mad"] = int((keep & ~ok).sum())
        keep &= ok

    with np.errstate(divide="ignore", invalid="ignore"):
        w = (matches.confidence.astype(np.float64) * np.minimum(1.0, cfg.rel_ref / sens)
             / (1.0 + (err / cfg.reproj_sigma_px) ** 2))
    keep &= np.isfinite(w)
    keep &= w > 0
    f32 = np.float32
    return PairPoints(
        frame0=frame0, frame1=frame1, pix0=x0[keep].astype(f32), pix1=x1[keep].astype(f32), points=pts[keep],
        depth0=z0[keep].astype(f32), depth1=z1[keep].astype(f32), weights=w[keep].astype(f32),
        reproj_err=err[keep].astype(f32), angle_deg=angle[keep].astype(f32),
        rel_depth_per_px=sens[keep].astype(f32), n_matches=len(matches),
        rejected=rejected,
    )


def triangulate_frames(f0: Frame, f1: Frame, matches: Matches,
                       config: TriangulationConfig | None = None) -> PairPoints:
    """:func:`triangulate_matches` with the intrinsics and poses of two scene frames (matches at full size)."""
    return triangulate_matches(f0.camera.K, f0.world2cam, f1.camera.K, f1.world2cam, matches, config, f0.id, f1.id)
