"""KITTI odometry sequence -> recon scene.

Input (one sequence folder)::

    calib.txt      3x4 projection matrices P0..P3 of the rectified cameras, one per line ("P0: 12 numbers" or just
                   the 12 numbers, in P0, P1, ... order)
    poses.txt      one 3x4 [R | t] per frame: camera-0 coordinates -> world (the first camera-0 frame), metres;
                   KITTI camera axes are OpenCV axes (x right, y down, z forward)
    times.txt      optional, seconds per frame (else frame index / 10 Hz)
    image_0/ .. image_3/   PNG frames (image_l / image_r in some excerpts stand for cameras 0 / 1)
    velodyne/      optional, one ``NNNNNN.bin`` sweep per frame (float32 x, y, z, reflectance, Velodyne frame); used
                   when calib.txt has a ``Tr`` line (3x4, Velodyne -> rectified camera 0): the sweep of frame i is
                   stored in the world frame as ``pose_i @ Tr @ x``

Cameras: Pi = K [I | K^-1 Pi[:, 3]] in the rectified frame of camera 0, so camera i sits at -K^-1 Pi[:, 3] in
camera-0 coordinates with the same orientation: cam2world_i = pose @ [I | -K^-1 Pi[:, 3]]. Camera names ``cam0``..
``cam3``. KITTI's calibration puts pixel centres on integer coordinates (OpenCV); recon puts them at +0.5, so
cx, cy gain half a pixel.

Lens: KITTI's cameras are Point Grey Flea2 with a 1/2" Sony ICX267 CCD (Geiger et al., "Vision meets Robotics: The
KITTI Dataset", IJRR 2013), 4.65 um pixels: the sensor width is taken as width_px * 4.65 um (rectified images keep
that pixel pitch). The aperture and focus are not published: f/2.0 and 10 m (recon.data.scene.DEFAULT_*) assumed.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np

from recon.data.convert.common import ConvertOptions, SceneWriter, make_camera, orthonormalize, progress, read_image_u8
from recon.data.scene import Scene
from recon.errors import ReconError
from recon.io.atomic import atomic_directory

KITTI_PIXEL_PITCH_MM = 4.65e-3
IMAGE_DIRS = {"image_0": 0, "image_1": 1, "image_2": 2, "image_3": 3, "image_l": 0, "image_r": 1}


def _twelve_numbers(text: str, path: Path, line: int, what: str) -> np.ndarray:
    """The 12 finite numbers of a 3x4 matrix on one line, or a one-line error naming the line."""
    try:
        vals = np.array([float(x) for x in text.split()], np.float64)
    except ValueError:
        raise ReconError(f"{path}: line {line} ({what}) is not a list of numbers") from None
    if vals.size != 12:
        raise ReconError(f"{path}: line {line} ({what}) has {vals.size} numbers, expected 12 (a 3x4 matrix)")
    if not np.isfinite(vals).all():
        raise ReconError(f"{path}: line {line} ({what}) holds a non-finite number (nan or inf)")
    return vals.reshape(3, 4)


def read_calib_entries(path: Path) -> dict[str, np.ndarray]:
    """3x4 matrices {"P0".."P3", "Tr"} from a KITTI odometry calib.txt (unnamed lines are P0, P1, ... in order)."""
    if not path.is_file():
        raise ReconError(f"{path}: calibration file not found")
    out: dict[str, np.ndarray] = {}
    for n, ln in enumerate(path.read_text(errors="replace").splitlines()):
        if not ln.strip():
            continue
        m = re.match(r"^\s*([A-Za-z_]\w*)\s*:\s*(.*)$", ln)
        key, rest = (m.group(1), m.group(2)) if m else (f"P{len(out)}", ln)
        if not (re.fullmatch(r"P\d", key) or key == "Tr"):
            continue  # other entries are not needed
        out[key] = _twelve_numbers(rest, path, n + 1, key)
    return out


def read_calib(path: Path) -> dict[int, np.ndarray]:
    """Projection matrices {i: 3x4} from a KITTI odometry calib.txt."""
    out = {int(k[1]): v for k, v in read_calib_entries(path).items() if k.startswith("P")}
    if not out:
        raise ReconError(f"{path}: no projection matrix P0..P3 found")
    return out


def read_velodyne_bin(path: Path) -> np.ndarray:
    """A KITTI Velodyne sweep: float32 (N, 4) x, y, z (metres, Velodyne frame: x forward, y left, z up),
    reflectance; a file whose size is not a multiple of 16 bytes is an error naming it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReconError(f"{path}: cannot read Velodyne sweep ({exc.strerror})") from None
    if size % 16:
        raise ReconError(f"{path}: {size} bytes is not a multiple of 16 (float32 x, y, z, reflectance per point): "
                         "truncated or not a Velodyne sweep")
    pts = np.fromfile(path, dtype="<f4").reshape(-1, 4)
    return pts[np.isfinite(pts[:, :3]).all(axis=1)]


def read_times(path: Path) -> np.ndarray:
    """Seconds per frame from a KITTI times.txt (one number a line)."""
    out = []
    for n, ln in enumerate(path.read_text(errors="replace").splitlines()):
        if not ln.strip():
            continue
        try:
            t = float(ln)
        except ValueError:
            raise ReconError(f"{path}: line {n + 1} is not a number of seconds") from None
        if not math.isfinite(t):
            raise ReconError(f"{path}: line {n + 1} is not a finite number of seconds")
        out.append(t)
    return np.asarray(out, np.float64)


def read_poses(path: Path) -> np.ndarray:
    """(N, 4, 4) camera-0-to-world poses from poses.txt."""
    if not path.is_file():
        raise ReconError(f"{path}: poses file not found")
    poses = []
    for n, ln in enumerate(path.read_text().splitlines()):
        if not ln.strip():
            continue
        T = np.eye(4)
        T[:3] = _twelve_numbers(ln, path, n + 1, "pose")
        R = T[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-3):
            raise ReconError(f"{path}: line {n + 1} rotation is not orthonormal")
        poses.append(orthonormalize(T))
    if not poses:
        raise ReconError(f"{path}: no poses")
    return np.stack(poses)


def convert_kitti(src: str | Path, out: str | Path, opts: ConvertOptions | None = None) -> Scene:
    """Convert a KITTI odometry sequence folder ``src`` into a recon scene folder ``out``."""
    opts = opts or ConvertOptions()
    opts.check()
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ReconError(f"{src}: KITTI sequence folder not found")
    P = read_calib(src / "calib.txt")
    Tr = read_calib_entries(src / "calib.txt").get("Tr")
    poses = read_poses(src / "poses.txt")
    times_path = src / "times.txt"
    times = read_times(times_path) if times_path.is_file() else np.arange(len(poses)) / 10.0
    dirs = {f"cam{IMAGE_DIRS[d.name]}": d for d in sorted(src.iterdir()) if d.is_dir() and d.name in IMAGE_DIRS}
    if not dirs:
        raise ReconError(f"{src}: no image folder (image_0 .. image_3, image_l, image_r)")
    cams = opts.select_cameras(sorted(dirs), src)
    files = {c: sorted(p for p in dirs[c].iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")) for c in cams}
    for c in cams:
        i = int(c[3:])
        if i not in P:
            raise ReconError(f"{src / 'calib.txt'}: no P{i} for image folder {dirs[c].name}")
        if len(files[c]) < len(poses):
            raise ReconError(f"{dirs[c]}: {len(files[c])} images for {len(poses)} poses in poses.txt")
        if len(files[c]) > len(poses):
            # some published excerpts carry one image more than poses; say so instead of dropping it silently
            print(f"warning: {src / 'poses.txt'}: {len(poses)} poses for {len(files[c])} images in "
                  f"{dirs[c].name}: converting the first {len(poses)} frames", file=sys.stderr)
    if len(times) < len(poses):
        raise ReconError(f"{times_path}: {len(times)} times for {len(poses)} poses")
    sweeps: list[Path] = []
    velo_dir = src / "velodyne"
    if velo_dir.is_dir():
        if Tr is None:
            print(f"warning: {src / 'calib.txt'}: no Tr line (Velodyne -> camera 0), so {velo_dir.name}/ is not "
                  "converted", file=sys.stderr)
        else:
            sweeps = sorted(p for p in velo_dir.iterdir() if p.suffix == ".bin")
            if len(sweeps) < len(poses):
                raise ReconError(f"{velo_dir}: {len(sweeps)} sweeps for {len(poses)} poses in poses.txt")
    sel = opts.frame_range(len(poses))
    if out.exists() and not opts.overwrite:
        raise ReconError(f"{out}: output folder exists (use --overwrite to replace it)")

    with atomic_directory(out, overwrite=opts.overwrite) as tmp:
        writer = SceneWriter(tmp, "kitti", opts.name or src.name, opts.downscale,
                             holdout_cameras=opts.holdout_cameras)
        offsets = {}
        for c in cams:
            Pi = P[int(c[3:])]
            K = Pi[:, :3]
            if abs(K[1, 0]) > 1e-9 or abs(K[2, 0]) > 1e-9 or abs(K[2, 1]) > 1e-9 or abs(K[0, 1]) > 1e-6:
                raise ReconError(f"{src / 'calib.txt'}: P{c[3:]} is not a rectified pinhole projection K [I | t]")
            first = read_image_u8(files[c][0])
            h, w = first.shape[:2]
            writer.add_camera(make_camera(c, w, h, K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5, opts.lens,
                                          sensor_width_mm=w * KITTI_PIXEL_PITCH_MM, what=f"{src / 'calib.txt'} {c}"))
            cam_to_cam0 = np.eye(4)
            cam_to_cam0[:3, 3] = -np.linalg.solve(K, Pi[:, 3])
            offsets[c] = cam_to_cam0
        cam0_from_velo = np.eye(4)
        if Tr is not None:
            cam0_from_velo[:3] = Tr
        for i in progress(sel, len(sel), "frames", opts.progress):
            lidar_path = None
            if sweeps:
                T = poses[i] @ cam0_from_velo
                pts = read_velodyne_bin(sweeps[i])[:, :3].astype(np.float64)
                lidar_path = writer.write_lidar(f"{i:05d}", pts @ T[:3, :3].T + T[:3, 3])
            for c in cams:
                fid = f"{c}_{i:05d}"
                img_path = writer.write_image(fid, read_image_u8(files[c][i]), c)
                writer.add_frame(fid, c, float(times[i]), i, img_path, poses[i] @ offsets[c], lidar_path=lidar_path)
        writer.meta["lens_note"] = "KITTI sensor width from the ICX267 pixel pitch; aperture and focus assumed"
        scene = writer.finish()
    scene.root = out
    return scene
