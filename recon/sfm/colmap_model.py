"""A ``pycolmap.Reconstruction`` holding the scene's cameras and known poses (no 3D points yet).

- Cameras: one COLMAP ``PINHOLE`` camera (fx, fy, cx, cy in pixels) per recon camera, ids 1, 2, ... in the order
  of ``scene.cameras``; each gets a trivial rig (rig id = camera id). COLMAP puts the centre of the top-left pixel
  at (0.5, 0.5), as recon does, so the intrinsics are used unchanged.
- Images: one per frame, ids 1, 2, ... in the order given, named by the frame id, each in a trivial frame
  (frame id = image id) registered with ``cam_from_world`` = the inverse of recon's ``cam2world`` (both OpenCV axes,
  metres). The keypoints are the image's points2D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recon.data.scene import Camera, Frame


@dataclass
class ColmapIds:
    """recon names -> COLMAP ids: ``camera[camera_name]``, ``image[frame_id]`` (and ``frame_of[image_id]``)."""

    camera: dict[str, int]
    image: dict[str, int]

    @property
    def frame_of(self) -> dict[int, str]:
        return {i: f for f, i in self.image.items()}


def assign_ids(frames: list[Frame]) -> ColmapIds:
    """Camera ids in order of first use by ``frames``, image ids in frame order (both from 1)."""
    cams: dict[str, int] = {}
    for f in frames:
        cams.setdefault(f.camera.name, len(cams) + 1)
    return ColmapIds(cams, {f.id: i + 1 for i, f in enumerate(frames)})


def colmap_camera(cam: Camera, camera_id: int):  # -> pycolmap.Camera
    """The COLMAP PINHOLE camera of a recon camera."""
    import pycolmap

    return pycolmap.Camera(model="PINHOLE", width=cam.width, height=cam.height,
                           params=[cam.fx, cam.fy, cam.cx, cam.cy], camera_id=camera_id)


def cam_from_world(frame: Frame):  # -> pycolmap.Rigid3d
    """COLMAP's world-to-camera pose of a frame."""
    import pycolmap

    return pycolmap.Rigid3d(np.ascontiguousarray(frame.world2cam[:3, :4], np.float64))


def build_reconstruction(frames: list[Frame], ids: ColmapIds, keypoints: dict[str, np.ndarray]):
    """Reconstruction with every camera and every frame registered at its known pose; keypoints as points2D."""
    import pycolmap

    rec = pycolmap.Reconstruction()
    by_name = {f.camera.name: f.camera for f in frames}
    for name, cid in ids.camera.items():
        rec.add_camera_with_trivial_rig(colmap_camera(by_name[name], cid))
    for f in frames:
        kp = np.asarray(keypoints.get(f.id, np.zeros((0, 2))), np.float64).reshape(-1, 2)
        img = pycolmap.Image(name=f.id, keypoints=kp, camera_id=ids.camera[f.camera.name], image_id=ids.image[f.id])
        rec.add_image_with_trivial_frame(img, cam_from_world(f))
    return rec
