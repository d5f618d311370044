"""KITTI raw drive -> recon scene, with poses from the GPS/IMU and the Velodyne sweeps as world-frame LiDAR.

Input: the ``<date>_drive_<nnnn>_sync`` folder of a KITTI raw recording; the three calibration files are read from
its parent (date) folder, or from ``calib_dir``::

    <date>/calib_cam_to_cam.txt    R_rect_00 (3x3), P_rect_0i (3x4) of the rectified cameras
    <date>/calib_velo_to_cam.txt   R, T: Velodyne -> unrectified camera 0
    <date>/calib_imu_to_velo.txt   R, T: IMU (oxts) -> Velodyne
    <date>/<drive>_sync/image_02/data/*.png, image_03/data/*.png (optional)   rectified colour cameras
    <date>/<drive>_sync/oxts/data/*.txt          30 values a line: lat, lon (degrees), alt (m), roll, pitch, yaw
                                                  (radians), ... (oxts/dataformat.txt)
    <date>/<drive>_sync/velodyne_points/data/*.bin   float32 (x, y, z, reflectance) in the Velodyne frame
    */timestamps.txt                              one ``YYYY-MM-DD HH:MM:SS.fffffffff`` line per frame

Poses follow the KITTI devkit (``convertOxtsToPose``): Mercator scale s = cos(lat0 * pi / 180) from the first
frame's latitude, t = (s * R_e * lon * pi / 180, s * R_e * log(tan((90 + lat) * pi / 360)), alt) with
R_e = 6378137 m, R_imu = Rz(yaw) Ry(pitch) Rx(roll). A Velodyne point x_v lands in rectified camera i at
``[I | K_i^-1 P_rect_0i[:, 3]] R_rect_00 T_cam0_velo x_v`` (the devkit's ``P_rect_0i R_rect_00 T_cam0_velo``),
so ``T_cami_imu = [I | t_i] R_rect_00 T_cam0_velo T_velo_imu`` and
``cam2world_i(k) = W^-1 T_world_imu(k) T_cami_imu^-1`` with the world W = the first selected camera at the first
selected frame (OpenCV axes: x right, y down, z forward; metres). Cameras are named ``cam2`` and ``cam3``; camera 3
sits about 0.54 m to the right of camera 2.

Sweeps are stored in the world frame (``lidar/<frame>.npy``), one per timestep, shared by the cameras of that
timestep. The Velodyne turns at 10 Hz: a frame whose image and sweep timestamps differ by more than one sweep
period (0.1 s) is an error naming it. Sweeps are not motion-compensated (the rolling scan moves at most
speed x 0.1 s; about 1 m at 10 m/s toward the back of the car, much less in the camera's field of view, which the
scan crosses near the camera's trigger time).

KITTI's calibration puts pixel centres on integer coordinates (OpenCV); recon puts them at +0.5, so cx, cy gain
half a pixel. Lens: the colour cameras are Point Grey Flea2 FL2-14S3C with 4.65 um pixels (Geiger et al., IJRR
2013): sensor width = width_px * 4.65 um; aperture and focus are not published (recon's defaults, f/2.0 at 10 m).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path

import numpy as np

from recon.data.convert.common import (
    ConvertOptions,
    SceneWriter,
    make_camera,
    orthonormalize,
    progress,
    read_image_u8,
    rpy_to_matrix,
)
from recon.data.convert.kitti import KITTI_PIXEL_PITCH_MM, read_velodyne_bin
from recon.data.scene import Scene
from recon.errors import ReconError
from recon.io.atomic import atomic_directory

EARTH_RADIUS_M = 6378137.0
OXTS_VALUES = 30
SWEEP_PERIOD_S = 0.1
CAMERA_DIRS = {"cam2": "image_02", "cam3": "image_03"}


def read_calib_file(path: Path) -> dict[str, np.ndarray]:
    """``key: numbers`` lines of a KITTI calib file -> {key: float64 array}; text entries (calib_time) skipped."""
    if not path.is_file():
        raise ReconError(f"{path}: calibration file not found")
    out: dict[str, np.ndarray] = {}
    for n, ln in enumerate(path.read_text(errors="replace").splitlines()):
        m = re.match(r"^\s*([A-Za-z_]\w*)\s*:\s*(.*)$", ln)
        if not m:
            if ln.strip():
                raise ReconError(f"{path}: line {n + 1} is not a 'key: values' entry")
            continue
        key, rest = m.group(1), m.group(2)
        if key == "calib_time":
            continue
        try:
            vals = np.array([float(x) for x in rest.split()], np.float64)
        except ValueError:
            raise ReconError(f"{path}: line {n + 1} ({key}) is not a list of numbers") from None
        if not np.isfinite(vals).all():
            raise ReconError(f"{path}: line {n + 1} ({key}) holds a non-finite number")
        out[key] = vals
    return out


def _entry(calib: dict[str, np.ndarray], key: str, size: int, path: Path) -> np.ndarray:
    if key not in calib:
        raise ReconError(f"{path}: no {key} entry")
    if calib[key].size != size:
        raise ReconError(f"{path}: {key} has {calib[key].size} numbers, expected {size}")
    return calib[key]


def rigid_from_calib(path: Path) -> np.ndarray:
    """The 4x4 transform of a calib file holding ``R`` (9 numbers, row-major) and ``T`` (3 numbers, metres)."""
    calib = read_calib_file(path)
    T = np.eye(4)
    T[:3, :3] = _entry(calib, "R", 9, path).reshape(3, 3)
    T[:3, 3] = _entry(calib, "T", 3, path)
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-3) or np.linalg.det(R) < 0:
        raise ReconError(f"{path}: R is not a rotation")
    return orthonormalize(T)


def read_timestamps(path: Path) -> np.ndarray:
    """Seconds since the epoch (float64) of each ``YYYY-MM-DD HH:MM:SS.fffffffff`` line (nanoseconds kept)."""
    if not path.is_file():
        raise ReconError(f"{path}: timestamps file not found")
    out = []
    for n, ln in enumerate(path.read_text(errors="replace").splitlines()):
        if not ln.strip():
            continue
        m = re.fullmatch(r"\s*(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?\s*", ln)
        if not m:
            raise ReconError(f"{path}: line {n + 1} is not a 'YYYY-MM-DD HH:MM:SS.fffffffff' timestamp")
        try:
            base = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
        except ValueError:
            raise ReconError(f"{path}: line {n + 1} is not a valid date and time") from None
        frac = m.group(2) or "0"
        out.append(base + int(frac) / 10 ** len(frac))
    return np.asarray(out, np.float64)


def read_oxts(path: Path) -> np.ndarray:
    """The 30 values of one oxts line (lat, lon, alt, roll, pitch, yaw, ...), checked."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise ReconError(f"{path}: cannot read oxts file ({exc.strerror})") from None
    try:
        vals = np.array([float(x) for x in text.split()], np.float64)
    except ValueError:
        raise ReconError(f"{path}: oxts file is not a list of numbers") from None
    if vals.size != OXTS_VALUES:
        raise ReconError(f"{path}: {vals.size} values, expected {OXTS_VALUES} (see oxts/dataformat.txt)")
    if not np.isfinite(vals[:6]).all():
        raise ReconError(f"{path}: non-finite position or orientation")
    if abs(vals[0]) > 90 or abs(vals[1]) > 180:
        raise ReconError(f"{path}: latitude {vals[0]} / longitude {vals[1]} out of range")
    return vals


def oxts_poses(oxts: np.ndarray, lat0: float | None = None) -> np.ndarray:
    """(N, 4, 4) IMU-to-world poses from (N, >=6) oxts rows, the devkit's Mercator recipe with the scale taken at
    latitude ``lat0`` (degrees; default row 0's)."""
    lat, lon, alt = oxts[:, 0], oxts[:, 1], oxts[:, 2]
    scale = math.cos((lat[0] if lat0 is None else lat0) * math.pi / 180.0)
    T = np.tile(np.eye(4), (len(oxts), 1, 1))
    T[:, 0, 3] = scale * lon * math.pi * EARTH_RADIUS_M / 180.0
    T[:, 1, 3] = scale * EARTH_RADIUS_M * np.log(np.tan((90.0 + lat) * math.pi / 360.0))
    T[:, 2, 3] = alt
    T[:, :3, :3] = rpy_to_matrix(oxts[:, 3], oxts[:, 4], oxts[:, 5])
    return T


class PoseTrack:
    """Rigid poses sampled at increasing times, interpolated in between: translation linearly (extrapolated
    linearly past the ends), rotation by spherical linear interpolation (held at the ends)."""

    def __init__(self, times: np.ndarray, poses: np.ndarray, what: str) -> None:
        from scipy.spatial.transform import Rotation, Slerp

        self.times = np.asarray(times, np.float64)
        if len(self.times) > 1 and not (np.diff(self.times) > 0).all():
            k = int(np.argmin(np.diff(self.times))) + 1
            raise ReconError(f"{what}: timestamps do not increase at frame {k}")
        self.trans = np.asarray(poses, np.float64)[:, :3, 3]
        rots = Rotation.from_matrix(np.asarray(poses, np.float64)[:, :3, :3])
        self._rot = Slerp(self.times, rots) if len(self.times) > 1 else None
        self._rot0 = rots

    def at(self, t: np.ndarray) -> np.ndarray:
        """(M, 4, 4) poses at times ``t`` (seconds, same clock as ``times``)."""
        t = np.atleast_1d(np.asarray(t, np.float64))
        T = np.tile(np.eye(4), (len(t), 1, 1))
        if self._rot is None:
            T[:, :3, :3] = self._rot0.as_matrix()[0]
            T[:, :3, 3] = self.trans[0]
            return T
        ts = self.times
        seg = np.clip(np.searchsorted(ts, t) - 1, 0, len(ts) - 2)  # the segment used, also to extrapolate
        a = (t - ts[seg]) / (ts[seg + 1] - ts[seg])
        T[:, :3, 3] = self.trans[seg] + a[:, None] * (self.trans[seg + 1] - self.trans[seg])
        T[:, :3, :3] = self._rot(np.clip(t, ts[0], ts[-1])).as_matrix()
        return T


def scan_times(points_velo: np.ndarray, t_forward: float) -> np.ndarray:
    """Capture time of each point of a Velodyne HDL-64E sweep (seconds): the head spins clockwise seen from above
    (azimuth atan2(y, x) decreasing) once per 0.1 s and faces forward (+x) at ``t_forward``, KITTI's
    velodyne_points/timestamps.txt."""
    azimuth = np.arctan2(points_velo[:, 1], points_velo[:, 0])
    return t_forward - azimuth / (2.0 * math.pi) * SWEEP_PERIOD_S


def _frame_files(folder: Path, suffix: str) -> list[Path]:
    if not folder.is_dir():
        raise ReconError(f"{folder}: folder not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == suffix)


def find_calib_dir(drive: Path, calib_dir: Path | None) -> Path:
    """The folder holding the three calib files: ``calib_dir`` or the drive's parent (date) folder."""
    folder = Path(calib_dir) if calib_dir is not None else drive.parent
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt"):
        if not (folder / name).is_file():
            hint = "" if calib_dir is not None else " (pass --calib DIR when the calib files are elsewhere)"
            raise ReconError(f"{folder / name}: calibration file not found{hint}")
    return folder


def convert_kitti_raw(src: str | Path, out: str | Path, opts: ConvertOptions | None = None,
                      calib_dir: str | Path | None = None) -> Scene:
    """Convert a KITTI raw ``..._sync`` drive folder ``src`` into a recon scene folder ``out``."""
    opts = opts or ConvertOptions()
    opts.check()
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ReconError(f"{src}: KITTI raw drive folder not found")
    calib = find_calib_dir(src, Path(calib_dir) if calib_dir is not None else None)
    c2c_path = calib / "calib_cam_to_cam.txt"
    cam_calib = read_calib_file(c2c_path)
    R_rect = np.eye(4)
    R_rect[:3, :3] = _entry(cam_calib, "R_rect_00", 9, c2c_path).reshape(3, 3)
    T_cam0_velo = rigid_from_calib(calib / "calib_velo_to_cam.txt")
    T_velo_imu = rigid_from_calib(calib / "calib_imu_to_velo.txt")

    available = [c for c, d in CAMERA_DIRS.items() if (src / d).is_dir()]
    if not available:
        raise ReconError(f"{src}: no image_02 or image_03 folder (is this a KITTI raw '..._sync' drive folder?)")
    cams = opts.select_cameras(available, src)
    images = {c: _frame_files(src / CAMERA_DIRS[c] / "data", ".png") for c in cams}
    oxts_files = _frame_files(src / "oxts" / "data", ".txt")
    velo_dir = src / "velodyne_points" / "data"
    sweeps = _frame_files(velo_dir, ".bin") if velo_dir.is_dir() else []
    n = len(oxts_files)
    if n == 0:
        raise ReconError(f"{src / 'oxts' / 'data'}: no oxts files")
    counts = {str(src / CAMERA_DIRS[c] / "data"): len(images[c]) for c in cams}
    if sweeps:
        counts[str(velo_dir)] = len(sweeps)
    for where, k in counts.items():
        if k != n:
            raise ReconError(f"{where}: {k} files for {n} oxts frames (every sensor needs one file per frame)")
    stamp_paths = {c: src / CAMERA_DIRS[c] / "timestamps.txt" for c in cams}
    stamp_paths["oxts"] = src / "oxts" / "timestamps.txt"
    if sweeps:
        stamp_paths["velodyne"] = src / "velodyne_points" / "timestamps.txt"
    stamps = {key: read_timestamps(p) for key, p in stamp_paths.items()}
    for key, t in stamps.items():
        if len(t) != n:
            raise ReconError(f"{stamp_paths[key]}: {len(t)} timestamps for {n} frames")
    sel = opts.frame_range(n)
    ref = stamps[cams[0]]
    for key, t in stamps.items():
        gap = np.abs(t - ref)[list(sel)]
        if gap.size and gap.max() > SWEEP_PERIOD_S:
            k = int(sel[int(np.argmax(gap))])
            raise ReconError(f"{stamp_paths[key]}: frame {k} is {gap.max():.3f} s away from {cams[0]}'s image "
                             f"(more than one {SWEEP_PERIOD_S:g} s sweep): sensors out of sync")
    if out.exists() and not opts.overwrite:
        raise ReconError(f"{out}: output folder exists (use --overwrite to replace it)")

    # every oxts row (not only the selected frames) so poses interpolate at each sensor's own time
    oxts = np.stack([read_oxts(p) for p in oxts_files])
    track = PoseTrack(stamps["oxts"], oxts_poses(oxts, lat0=float(oxts[sel[0], 0])), str(stamp_paths["oxts"]))
    cam_from_imu: dict[str, np.ndarray] = {}
    Ks: dict[str, np.ndarray] = {}
    for c in cams:
        key = f"P_rect_0{c[3:]}"
        P = _entry(cam_calib, key, 12, c2c_path).reshape(3, 4)
        K = P[:, :3]
        if abs(K[1, 0]) > 1e-9 or abs(K[2, 0]) > 1e-9 or abs(K[2, 1]) > 1e-9 or abs(K[0, 1]) > 1e-6 or K[2, 2] != 1:
            raise ReconError(f"{c2c_path}: {key} is not a rectified pinhole projection K [I | t]")
        shift = np.eye(4)
        shift[:3, 3] = np.linalg.solve(K, P[:, 3])
        cam_from_imu[c] = shift @ R_rect @ T_cam0_velo @ T_velo_imu
        Ks[c] = K
    # world = the first selected camera at the first selected frame
    world_from_ref = track.at(ref[sel[0]])[0] @ np.linalg.inv(cam_from_imu[cams[0]])
    ref_from_world = np.linalg.inv(world_from_ref)
    imu_from_velo = np.linalg.inv(T_velo_imu)
    t0 = float(ref[sel[0]])

    with atomic_directory(out, overwrite=opts.overwrite) as tmp:
        writer = SceneWriter(tmp, "kitti-raw", opts.name or src.name, opts.downscale,
                             holdout_cameras=opts.holdout_cameras)
        for c in cams:
            first = read_image_u8(images[c][sel[0]])
            h, w = first.shape[:2]
            K = Ks[c]
            writer.add_camera(make_camera(c, w, h, K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5, opts.lens,
                                          sensor_width_mm=w * KITTI_PIXEL_PITCH_MM, what=f"{c2c_path} {c}"))
        for k in progress(sel, len(sel), "frames", opts.progress):
            lidar_path = None
            if sweeps:
                pts = read_velodyne_bin(sweeps[k])[:, :3].astype(np.float64)
                # de-skewed: each point placed with the vehicle pose at the moment the spinning head measured it
                T = ref_from_world @ track.at(scan_times(pts, stamps["velodyne"][k])) @ imu_from_velo
                world = np.einsum("nij,nj->ni", T[:, :3, :3], pts) + T[:, :3, 3]
                lidar_path = writer.write_lidar(f"{k:05d}", world)
            for c in cams:
                fid = f"{c}_{k:05d}"
                img_path = writer.write_image(fid, read_image_u8(images[c][k]), c)
                c2w = orthonormalize(ref_from_world @ track.at(stamps[c][k])[0] @ np.linalg.inv(cam_from_imu[c]))
                writer.add_frame(fid, c, float(stamps[c][k] - t0), k, img_path, c2w, lidar_path=lidar_path)
        writer.meta["lens_note"] = "KITTI sensor width from the Flea2 pixel pitch; aperture and focus assumed"
        writer.meta["lidar_note"] = ("Velodyne HDL-64E sweeps in the world frame, not motion-compensated; a test "
                                     "frame's sweep is never shared with a training frame")
        scene = writer.finish()
    scene.root = out
    return scene
