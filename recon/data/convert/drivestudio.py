"""drivestudio processed Waymo scene -> recon scene.

Input (one processed scene folder of ziyc/drivestudio's ``datasets/waymo/waymo_preprocess.py``)::

    images/{frame:03d}_{cam}.jpg      cam = Waymo camera name - 1 (0 FRONT, 1 FRONT_LEFT, 2 FRONT_RIGHT, 3 SIDE_LEFT,
                                      4 SIDE_RIGHT)
    ego_pose/{frame:03d}.txt          4x4 vehicle -> world (Waymo ``frame.pose``)
    extrinsics/{cam}.txt              4x4 camera -> vehicle, saved as Waymo stores it: **Waymo camera axes** (x
                                      forward, y left, z up). drivestudio's loader converts with
                                      ``cam_to_ego @ OPENCV2DATASET`` (checked in datasets/waymo/
                                      waymo_sourceloader.py); recon does the same (``--extrinsic-axes opencv`` for
                                      a layout whose extrinsics are already OpenCV)
    intrinsics/{cam}.txt              f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3 (one per line)
    lidar/{frame:03d}.bin             float32 (N, 14): origin xyz, point xyz, flow xyz, flow class, ground,
                                      intensity, elongation, laser id; points in the *vehicle* frame of that frame
    sky_masks/{frame:03d}_{cam}.png   optional, nonzero = sky

Poses are recentred on the first converted ego position (``world_offset_m`` in meta), as for Waymo. Distortion:
resampled to the pinhole model by default (drivestudio itself ignores it). Lens: Waymo records none: f/2.0, 10 m,
7.2 mm sensor (recon.data.scene.DEFAULT_*) assumed, overridable.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from recon.data.convert.common import (
    OPENCV_TO_WAYMO_CAM,
    WAYMO_CAMERAS,
    ConvertOptions,
    SceneWriter,
    make_camera,
    orthonormalize,
    progress,
    read_image_u8,
    undistort_image,
)
from recon.data.scene import Scene
from recon.errors import ReconError
from recon.io.atomic import atomic_directory

DS_CAMERAS = {k - 1: v for k, v in WAYMO_CAMERAS.items()}
LIDAR_COLUMNS = 14


def _matrix(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    if not path.is_file():
        raise ReconError(f"{path}: file not found")
    try:
        a = np.loadtxt(path, dtype=np.float64)
    except ValueError:
        raise ReconError(f"{path}: not a whitespace-separated list of numbers") from None
    if a.size != int(np.prod(shape)) or not np.isfinite(a).all():
        raise ReconError(f"{path}: expected {int(np.prod(shape))} numbers {shape}, got {a.size}")
    return a.reshape(shape)


def _rigid(path: Path) -> np.ndarray:
    T = _matrix(path, (4, 4))
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-3) or np.linalg.det(R) < 0:
        raise ReconError(f"{path}: rotation is not orthonormal and right-handed")
    return orthonormalize(T)


def convert_drivestudio(src: str | Path, out: str | Path, opts: ConvertOptions | None = None,
                        extrinsic_axes: str = "waymo") -> Scene:
    """Convert a drivestudio processed Waymo scene ``src`` into a recon scene folder ``out``."""
    opts = opts or ConvertOptions()
    opts.check()
    src, out = Path(src), Path(out)
    if extrinsic_axes not in ("waymo", "opencv"):
        raise ReconError(f"extrinsic axes must be 'waymo' or 'opencv', got {extrinsic_axes!r}")
    if not src.is_dir():
        raise ReconError(f"{src}: drivestudio scene folder not found")
    for sub in ("images", "ego_pose", "extrinsics", "intrinsics"):
        if not (src / sub).is_dir():
            raise ReconError(f"{src / sub}: missing drivestudio folder '{sub}'")
    pat = re.compile(r"^(\d+)_(\d+)\.(jpg|jpeg|png)$", re.I)
    images: dict[tuple[int, int], Path] = {}
    for p in (src / "images").iterdir():
        m = pat.match(p.name)
        if m:
            images[(int(m.group(1)), int(m.group(2)))] = p
    if not images:
        raise ReconError(f"{src / 'images'}: no images named <frame>_<cam>.jpg")
    unknown = sorted({c for _, c in images if c not in DS_CAMERAS})
    if unknown:
        raise ReconError(f"{src / 'images'}: unknown drivestudio camera id {unknown[0]} (expected 0..4)")
    frames_all = sorted({f for f, _ in images})
    cam_ids = sorted({c for _, c in images})
    names = opts.select_cameras([DS_CAMERAS[c] for c in cam_ids], src)
    cam_ids = [c for c in cam_ids if DS_CAMERAS[c] in names]
    sel = [frames_all[i] for i in opts.frame_range(len(frames_all))]
    ego = {f: _rigid(src / "ego_pose" / f"{f:03d}.txt") for f in sel}
    offset = ego[sel[0]][:3, 3].copy()
    if out.exists() and not opts.overwrite:
        raise ReconError(f"{out}: output folder exists (use --overwrite to replace it)")

    with atomic_directory(out, overwrite=opts.overwrite) as tmp:
        writer = SceneWriter(tmp, "drivestudio", opts.name or src.name, opts.downscale,
                             holdout_cameras=opts.holdout_cameras)
        cam_to_ego, intr = {}, {}
        for c in cam_ids:
            E = _rigid(src / "extrinsics" / f"{c}.txt")
            cam_to_ego[c] = E @ OPENCV_TO_WAYMO_CAM if extrinsic_axes == "waymo" else E
            intr[c] = _matrix(src / "intrinsics" / f"{c}.txt", (9,))
        sizes: dict[int, tuple[int, int]] = {}
        for step, f in enumerate(progress(sel, len(sel), "frames", opts.progress)):
            lidar_path = None
            bin_path = src / "lidar" / f"{f:03d}.bin"
            if bin_path.is_file():
                raw = np.fromfile(bin_path, dtype=np.float32)
                if raw.size % LIDAR_COLUMNS:
                    raise ReconError(f"{bin_path}: {raw.size} floats is not a multiple of {LIDAR_COLUMNS} columns")
                pts = raw.reshape(-1, LIDAR_COLUMNS)[:, 3:6].astype(np.float64)
                T = ego[f]
                lidar_path = writer.write_lidar(f"{step:05d}", pts @ T[:3, :3].T + T[:3, 3] - offset)
            for c in cam_ids:
                name = DS_CAMERAS[c]
                if (f, c) not in images:
                    raise ReconError(f"{src / 'images'}: frame {f:03d} has no image for camera {c}")
                img = read_image_u8(images[(f, c)])
                fx, fy, cx, cy = (float(x) for x in intr[c][:4])
                if c not in sizes:
                    sizes[c] = (img.shape[1], img.shape[0])
                    writer.add_camera(make_camera(name, img.shape[1], img.shape[0], fx, fy, cx, cy, opts.lens,
                                                  what=str(src / "intrinsics" / f"{c}.txt")))
                dist = [float(x) for x in intr[c][4:9]]
                if opts.undistort and any(dist):
                    img = undistort_image(img, fx, fy, cx, cy, *dist)
                fid = f"{name}_{step:05d}"
                img_path = writer.write_image(fid, img, name)
                mask_path = None
                mpath = src / "sky_masks" / f"{f:03d}_{c}.png"
                if mpath.is_file():
                    m = read_image_u8(mpath)[..., 0]
                    if opts.undistort and any(dist):
                        m = undistort_image(m, fx, fy, cx, cy, *dist, order=0)
                    mask_path = writer.write_mask(fid, m > 0, name)
                c2w = ego[f] @ cam_to_ego[c]
                c2w[:3, 3] -= offset
                writer.add_frame(fid, name, step / 10.0, step, img_path, c2w, lidar_path=lidar_path,
                                 sky_mask_path=mask_path)
        writer.meta.update({"world_offset_m": offset.tolist(), "undistorted": bool(opts.undistort),
                            "extrinsic_axes": extrinsic_axes,
                            "lens_note": "Waymo records no aperture/focus/sensor size: lens values are assumptions"})
        scene = writer.finish()
    scene.root = out
    return scene
