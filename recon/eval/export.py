"""Export rendered depth as geometry with open3d: a coloured point cloud (and optionally a Poisson mesh).

Reads the depth maps and images that ``recon eval`` wrote under ``RUN/eval/`` and back-projects them with the test
cameras (:meth:`recon.data.scene.Camera.depth_to_world`: OpenCV axes, pixel centres at +0.5) into the world frame.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from recon.data.scene import Scene
from recon.errors import ReconError
from recon.io.images import read_depth, read_image
from recon.run.load import load_run


def _atomic_o3d_write(path: Path, write) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".ply", dir=path.parent)
    os.close(fd)
    try:
        if not write(tmp):
            raise ReconError(f"{path}: open3d could not write the file")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def export_depth_points(run: str | Path, max_depth_m: float = 150.0, voxel_m: float = 0.05,
                        mesh: bool = False) -> Path:
    """Fuse ``RUN/eval/depth/*.npy`` into ``RUN/eval/depth_points.ply`` (and ``depth_mesh.ply`` with ``mesh``)."""
    import open3d as o3d

    run = Path(run)
    loaded = load_run(run)
    scene = Scene.load(loaded.scene_path)
    downscale = float(loaded.config.get("downscale", 1.0))
    pts, cols = [], []
    for f in scene.test_frames:
        dpath = run / "eval" / "depth" / f"{f.id}.npy"
        if not dpath.is_file():
            raise ReconError(f"{dpath}: missing; run `recon eval {run}` first")
        depth = read_depth(dpath)
        img = read_image(run / "eval" / "images" / f"{f.id}.png")
        cam = f.camera if downscale == 1.0 else f.camera.scaled(downscale)
        ok = ((depth > 0) & (depth < max_depth_m)).ravel()
        pts.append(cam.depth_to_world(depth, f.cam2world)[ok])
        cols.append(img.reshape(-1, 3)[ok])
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.concatenate(pts)))
    pcd.colors = o3d.utility.Vector3dVector(np.concatenate(cols).astype(np.float64))
    if voxel_m > 0:
        pcd = pcd.voxel_down_sample(voxel_m)
    out = _atomic_o3d_write(run / "eval" / "depth_points.ply", lambda p: o3d.io.write_point_cloud(p, pcd))
    if mesh:
        pcd.estimate_normals()
        m, _ = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(pcd, depth=8)
        _atomic_o3d_write(run / "eval" / "depth_mesh.ply", lambda p: o3d.io.write_triangle_mesh(p, m))
    return out
