"""Write a COLMAP database (``pycolmap.Database``) from recon's frames, keypoint tables and verified matches.

Tables written: cameras (PINHOLE), rigs and frames (trivial: one camera per rig, one image per frame, ids as in
:mod:`recon.sfm.colmap_model`), images (named by frame id), keypoints (pixels, pixel-centre convention), raw
matches, and two-view geometries whose inliers are the epipolar-verified matches with the exact relative pose
(configuration CALIBRATED, E and F from the known poses). COLMAP's triangulator only reads the inliers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from recon.data.scene import Frame
from recon.sfm.colmap_model import ColmapIds, colmap_camera
from recon.sfm.verify import essential_matrix, fundamental_matrix, relative_pose


def write_database(path: str | Path, frames: list[Frame], ids: ColmapIds, keypoints: dict[str, np.ndarray],
                   raw_matches: dict[tuple[str, str], np.ndarray], inliers: dict[tuple[str, str], np.ndarray],
                   progress: Iterable[Frame] | None = None) -> Path:
    """Create the database at ``path`` (it must not exist). ``raw_matches`` / ``inliers``: (M, 2) keypoint indices
    per pair of frame ids. ``progress``: the frames wrapped in a progress bar (default: ``frames``)."""
    import pycolmap

    path = Path(path)
    by_id = {f.id: f for f in frames}
    db = pycolmap.Database.open(str(path))
    try:
        cams = {f.camera.name: f.camera for f in frames}
        for name, cid in ids.camera.items():
            cam = colmap_camera(cams[name], cid)
            db.write_camera(cam, use_camera_id=True)
            rig = pycolmap.Rig(rig_id=cid)
            rig.add_ref_sensor(cam.sensor_id)
            db.write_rig(rig, use_rig_id=True)
        for f in progress if progress is not None else frames:
            iid, cid = ids.image[f.id], ids.camera[f.camera.name]
            img = pycolmap.Image(name=f.id, camera_id=cid, image_id=iid)
            db.write_image(img, use_image_id=True)
            fr = pycolmap.Frame(frame_id=iid, rig_id=cid)
            fr.add_data_id(img.data_id)
            db.write_frame(fr, use_frame_id=True)
            db.write_keypoints(iid, np.ascontiguousarray(keypoints[f.id], np.float32).reshape(-1, 2))
        for (a, b), m in raw_matches.items():
            db.write_matches(ids.image[a], ids.image[b], np.ascontiguousarray(m, np.uint32).reshape(-1, 2))
            inl = inliers.get((a, b))
            if inl is None or len(inl) == 0:
                continue
            f0, f1 = by_id[a], by_id[b]
            R, t = relative_pose(f0, f1)
            g = pycolmap.TwoViewGeometry()
            g.config = pycolmap.TwoViewGeometryConfiguration.CALIBRATED
            g.E = essential_matrix(f0, f1)
            g.F = fundamental_matrix(f0, f1)
            g.cam2_from_cam1 = pycolmap.Rigid3d(np.concatenate([R, t[:, None]], 1))
            g.inlier_matches = np.ascontiguousarray(inl, np.uint32).reshape(-1, 2)
            db.write_two_view_geometry(ids.image[a], ids.image[b], g)
    finally:
        db.close()
    return path
