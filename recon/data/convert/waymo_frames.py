"""Shared Waymo logic for the v1 (TFRecord) and v2 (parquet) converters: calibration, poses, images, LiDAR, sky.

Frames of reference (Waymo Open Dataset): the vehicle frame and every camera frame have x forward, y left, z up;
a camera extrinsic maps camera to vehicle; ``world_from_vehicle`` maps vehicle to the global frame (metres). The
converted ``cam2world`` is ``world_from_vehicle @ extrinsic @ OPENCV_TO_WAYMO_CAM`` (OpenCV axes), then recentred:
the translation of the first converted ego pose is subtracted from every pose and LiDAR point (Waymo's global
coordinates are thousands of metres, too large for float32 Gaussians); it is kept in ``scene.json`` meta as
``world_offset_m``.

Ego pose per image: the SDC pose stored with each camera image (at the image's ``pose_timestamp``, closer to the
exposure than the frame pose) when present, else the frame's vehicle pose.

Intrinsics: f_u, f_v, c_u, c_v in pixels with Waymo's "pixel 0 starts at the left edge of the first pixel" convention,
which is recon's (cx = c_u, no half-pixel shift). Distortion (k1, k2, p1, p2, k3, OpenCV model): by default the
image (and its sky mask) is resampled to the pinhole model with the same K (:func:`common.undistort_image`); with
``undistort=False`` the coefficients are ignored (Waymo's are small; the error is then a few pixels at the corners)
and this is recorded in meta. Rolling shutter is not modelled (documented simplification).

Lens: Waymo records neither aperture nor focus nor sensor size. Defaults: recon.data.scene.DEFAULT_* (1/1.8"
sensor 7.2 mm wide, f/2.0, focus 10 m), an assumption, overridable with --f-number, --focus-m, --sensor-width-mm.

LiDAR: first return of every laser, converted with :func:`common.waymo_range_image_to_points` (beam inclinations,
azimuth with the extrinsic yaw correction, extrinsic, per-cell ego pose for the TOP lidar when the pixel pose is
given; the other lidars use the frame pose). Points of all lasers of one timestep go to ``lidar/<timestep>.npy``,
shared by every image of that timestep. The second return, intensity and no-label-zone flags are dropped.

Sky masks: from camera panoptic segmentation where present (semantic class = label // divisor, TYPE_SKY = 25).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recon.data.convert.common import (
    WAYMO_CAMERAS,
    WAYMO_SKY_CLASS,
    ConvertOptions,
    SceneWriter,
    decode_image,
    make_camera,
    undistort_image,
    waymo_cam2world,
    waymo_range_image_to_points,
)
from recon.data.scene import Frame
from recon.errors import ReconError


@dataclass
class CameraCalib:
    """One camera's calibration: intrinsic [f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3], extrinsic camera->vehicle."""

    name: int
    intrinsic: np.ndarray
    extrinsic: np.ndarray
    width: int
    height: int


@dataclass
class LaserCalib:
    """One lidar's calibration: beam inclinations (radians, ascending, may be empty), min/max, extrinsic."""

    name: int
    inclinations: np.ndarray | None
    incl_min: float
    incl_max: float
    extrinsic: np.ndarray


def camera_name(cam_id: int, where: str) -> str:
    if cam_id not in WAYMO_CAMERAS:
        raise ReconError(f"{where}: unknown Waymo camera name {cam_id} (expected 1..5: "
                         f"{', '.join(f'{k} {v}' for k, v in WAYMO_CAMERAS.items())})")
    return WAYMO_CAMERAS[cam_id]


def transform16(values: object, what: str) -> np.ndarray:
    """A row-major 4x4 from 16 numbers."""
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size != 16 or not np.isfinite(a).all():
        raise ReconError(f"{what}: expected 16 finite numbers for a 4x4 transform, got {a.size}")
    return a.reshape(4, 4)


class WaymoSceneBuilder:
    """Turns Waymo calibrations and per-timestep data into a recon scene through a :class:`SceneWriter`."""

    def __init__(self, writer: SceneWriter, calibs: dict[int, CameraCalib], opts: ConvertOptions, where: str,
                 offset: np.ndarray) -> None:
        self.writer, self.opts, self.where = writer, opts, where
        self.offset = np.asarray(offset, np.float64)
        names = [WAYMO_CAMERAS[k] for k in sorted(calibs) if k in WAYMO_CAMERAS]
        self.selected = set(opts.select_cameras(names, where))
        self.calibs = calibs
        for cid, c in calibs.items():
            name = camera_name(cid, where)
            fu, fv, cu, cv = (float(x) for x in c.intrinsic[:4])
            writer.add_camera(make_camera(name, c.width, c.height, fu, fv, cu, cv, opts.lens, what=f"{where}: {name}"))
        self.frames_by_step: dict[int, list[Frame]] = {}
        writer.meta.update({"world_offset_m": self.offset.tolist(), "undistorted": bool(opts.undistort),
                            "lens_note": "Waymo records no aperture/focus/sensor size: lens values are assumptions"})
        if not opts.undistort:
            writer.meta["distortion_ignored"] = True

    def wants(self, cam_id: int) -> bool:
        return camera_name(cam_id, self.where) in self.selected

    def _undistort(self, img: np.ndarray, c: CameraCalib, order: int) -> np.ndarray:
        k = c.intrinsic
        if not self.opts.undistort or len(k) < 9 or not np.any(k[4:9]):
            return img
        return undistort_image(img, *(float(x) for x in k[:9]), order=order)

    def add_image(self, step: int, timestamp_micros: int, cam_id: int, jpeg: bytes, world_from_vehicle: np.ndarray,
                  seg: tuple[int, bytes] | None = None) -> Frame:
        """Write one camera image (and its sky mask) of timestep ``step``."""
        name = camera_name(cam_id, self.where)
        if cam_id not in self.calibs:
            raise ReconError(f"{self.where}: camera {name} has images but no calibration")
        c = self.calibs[cam_id]
        fid = f"{name}_{step:05d}"
        img = decode_image(jpeg, f"{self.where}: image {fid}")
        if img.shape[:2] != (c.height, c.width):
            raise ReconError(f"{self.where}: image {fid} is {img.shape[1]}x{img.shape[0]} but its calibration says "
                             f"{c.width}x{c.height}")
        img_path = self.writer.write_image(fid, self._undistort(img, c, order=1), name)
        mask_path = None
        if seg is not None:
            divisor, png = seg
            import imageio.v3 as iio

            try:
                pan = np.asarray(iio.imread(png))
            except Exception as exc:
                raise ReconError(f"{self.where}: panoptic label of {fid} could not be decoded "
                                 f"({type(exc).__name__})") from None
            if pan.ndim == 3:
                pan = pan[..., 0]
            if divisor <= 0 or pan.shape != (c.height, c.width):
                raise ReconError(f"{self.where}: panoptic label of {fid}: divisor {divisor}, size {pan.shape[::-1]}")
            sky = (pan.astype(np.int64) // int(divisor)) == WAYMO_SKY_CLASS
            sky = self._undistort(sky.astype(np.uint8) * 255, c, order=0) > 127
            mask_path = self.writer.write_mask(fid, sky, name)
        c2w = waymo_cam2world(world_from_vehicle, c.extrinsic, self.offset)
        fr = self.writer.add_frame(fid, name, timestamp_micros * 1e-6, step, img_path, c2w, sky_mask_path=mask_path)
        self.frames_by_step.setdefault(step, []).append(fr)
        return fr

    def add_lidar(self, step: int, points_world: list[np.ndarray]) -> Path | None:
        """Write the sweep of timestep ``step`` (world points, before recentring) and link it to its images."""
        if not points_world:
            return None
        pts = np.concatenate(points_world, axis=0) - self.offset
        path = self.writer.write_lidar(f"{step:05d}", pts)
        for fr in self.frames_by_step.get(step, []):
            fr.lidar_path = path
        return path


def laser_points(ri: np.ndarray, calib: LaserCalib, world_from_vehicle: np.ndarray,
                 pixel_pose: np.ndarray | None) -> np.ndarray:
    """World points of one range image return (see :func:`common.waymo_range_image_to_points`)."""
    return waymo_range_image_to_points(ri, calib.extrinsic, calib.inclinations, calib.incl_min, calib.incl_max,
                                       world_from_vehicle, pixel_pose)
