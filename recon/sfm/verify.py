"""Geometric verification with the scene's known poses: matches must lie on their epipolar lines.

With calibrated cameras and known poses the epipolar geometry of a pair is exact, so no RANSAC is needed: the
fundamental matrix F = K1^-T [t]x R K0^-1 (R, t: camera 1 from camera 0, OpenCV axes, metres) gives each match's
distance to its epipolar line in both images; a match is kept when the larger of the two is at most a few pixels.
Pixel coordinates use the pixel-centre convention of :mod:`recon.match.base` (COLMAP's too), consistent with K.
"""

from __future__ import annotations

import numpy as np

from recon.data.scene import Frame


def relative_pose(f0: Frame, f1: Frame) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of camera 1 from camera 0: x_cam1 = R x_cam0 + t (metres)."""
    T = f1.world2cam @ f0.cam2world
    return T[:3, :3], T[:3, 3]


def _skew(t: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])


def essential_matrix(f0: Frame, f1: Frame) -> np.ndarray:
    """E = [t]x R, so that x1n^T E x0n = 0 for normalised image points."""
    R, t = relative_pose(f0, f1)
    return _skew(t) @ R


def fundamental_matrix(f0: Frame, f1: Frame) -> np.ndarray:
    """F = K1^-T E K0^-1 in pixels (x1^T F x0 = 0)."""
    return np.linalg.inv(f1.camera.K).T @ essential_matrix(f0, f1) @ np.linalg.inv(f0.camera.K)


def epipolar_directions(F: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions (M, 2) of the epipolar lines through each match, in image 0 and in image 1."""
    h0 = np.concatenate([np.asarray(x0, np.float64), np.ones((len(x0), 1))], 1)
    h1 = np.concatenate([np.asarray(x1, np.float64), np.ones((len(x1), 1))], 1)
    out = []
    for line in (h1 @ F, h0 @ F.T):  # the line in image 0 is F^T x1, in image 1 it is F x0
        d = np.stack([-line[:, 1], line[:, 0]], 1)
        out.append(d / np.linalg.norm(d, axis=1, keepdims=True).clip(1e-12))
    return out[0], out[1]


def epipolar_distance(F: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Larger of the two point-to-epipolar-line distances (M,) in pixels for matches x0 <-> x1 ((M, 2) each)."""
    h0 = np.concatenate([np.asarray(x0, np.float64), np.ones((len(x0), 1))], 1)
    h1 = np.concatenate([np.asarray(x1, np.float64), np.ones((len(x1), 1))], 1)
    l1 = h0 @ F.T  # lines in image 1
    l0 = h1 @ F  # lines in image 0
    alg = np.abs((h1 * l1).sum(1))
    d1 = alg / np.linalg.norm(l1[:, :2], axis=1).clip(1e-12)
    d0 = alg / np.linalg.norm(l0[:, :2], axis=1).clip(1e-12)
    return np.maximum(d0, d1)
