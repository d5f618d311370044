"""Shared pieces of the converters: lens defaults, axis conversions, undistortion, downscaling, the scene writer.

Conventions of the recon scene (see :mod:`recon.data.scene`): OpenCV camera axes (x right, y down, z forward),
``cam2world`` 4x4 float64 in metres, intrinsics in pixels with the centre of pixel (u, v) at (u + 0.5, v + 0.5)
(the gsplat convention; COLMAP and Waymo use it too, OpenCV/KITTI calibrations put pixel centres on integers and
need +0.5 on cx, cy).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from recon.data.scene import (
    DEFAULT_F_NUMBER,
    DEFAULT_FOCUS_DISTANCE_M,
    DEFAULT_SENSOR_WIDTH_MM,
    Camera,
    Frame,
    Scene,
    holdout_split,
)
from recon.errors import ReconError
from recon.io.atomic import atomic_save_npy, atomic_write_bytes

T = TypeVar("T")

# Rotation taking OpenCV camera coordinates to Waymo camera coordinates (x forward, y left, z up):
# x_waymo = z_cv, y_waymo = -x_cv, z_waymo = -y_cv. cam2world_opencv = world_from_cam_waymo @ OPENCV_TO_WAYMO_CAM.
OPENCV_TO_WAYMO_CAM = np.array([[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0],
                                [0.0, 0.0, 0.0, 1.0]])

# Waymo camera names (dataset.proto CameraName.Name); drivestudio numbers them name - 1.
WAYMO_CAMERAS = {1: "FRONT", 2: "FRONT_LEFT", 3: "FRONT_RIGHT", 4: "SIDE_LEFT", 5: "SIDE_RIGHT"}
WAYMO_SKY_CLASS = 25  # CameraSegmentation.Type.TYPE_SKY in waymo_open_dataset/protos/camera_segmentation.proto


@dataclass
class LensOptions:
    """User overrides of the lens metadata; ``None`` keeps the source's documented default."""

    f_number: float | None = None
    focus_m: float | None = None
    sensor_width_mm: float | None = None

    def resolve(self, sensor_width_mm: float = DEFAULT_SENSOR_WIDTH_MM, f_number: float = DEFAULT_F_NUMBER,
                focus_m: float = DEFAULT_FOCUS_DISTANCE_M) -> tuple[float, float, float]:
        """(sensor_width_mm, f_number, focus_distance_m) after overrides, each checked positive."""
        out = (self.sensor_width_mm or sensor_width_mm, self.f_number or f_number, self.focus_m or focus_m)
        for name, v in zip(("sensor width", "f-number", "focus distance"), out):
            if not (v > 0 and math.isfinite(v)):
                raise ReconError(f"lens {name} must be a positive number, got {v}")
        return out


@dataclass
class ConvertOptions:
    """Options shared by every converter.

    ``cameras``: names to keep (empty = all); ``start``/``end``: half-open range of source frame (timestep)
    indices; ``downscale``: divide the image size by this factor (>= 1); ``undistort``: resample distorted
    images to the pinhole model (else distortion is dropped, with a warning in ``scene.json`` meta);
    ``holdout_cameras``: cameras whose every frame goes to the test split (novel views off the training
    trajectory), besides every 8th frame of the others.
    """

    cameras: tuple[str, ...] = ()
    start: int = 0
    end: int | None = None
    downscale: float = 1.0
    overwrite: bool = False
    undistort: bool = True
    lens: LensOptions = field(default_factory=LensOptions)
    name: str | None = None
    progress: bool | None = None  # None: show a bar only on a terminal
    holdout_cameras: tuple[str, ...] = ()

    def check(self) -> None:
        if not (self.downscale >= 1.0 and math.isfinite(self.downscale)):
            raise ReconError(f"--downscale must be >= 1 (a divisor of the image size), got {self.downscale}")
        if self.start < 0 or (self.end is not None and self.end <= self.start):
            raise ReconError(f"frame range --start {self.start} --end {self.end} is empty or negative")

    def frame_range(self, n: int) -> range:
        """Source frame indices selected by ``start``/``end`` out of ``n``; an empty selection is an error."""
        r = range(self.start, min(n, self.end if self.end is not None else n))
        if len(r) == 0:
            raise ReconError(f"frame range [{self.start}, {self.end}) selects nothing: the source has {n} frames")
        return r

    def select_cameras(self, available: Iterable[str], where: str | Path) -> list[str]:
        """The requested camera names (all when none requested); an unknown name is an error naming ``where``."""
        avail = list(available)
        if not self.cameras:
            return avail
        unknown = [c for c in self.cameras if c not in avail]
        if unknown:
            raise ReconError(f"{where}: unknown camera {', '.join(map(repr, unknown))} (available: {', '.join(avail)})")
        return [c for c in avail if c in self.cameras]


def progress(items: Iterable[T], total: int | None, desc: str, enabled: bool | None) -> Iterator[T]:
    """A tqdm progress bar over ``items`` (on stderr; hidden off a terminal unless ``enabled`` is True)."""
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, unit="frame", disable=None if enabled is None else not enabled,
                    leave=False)


# ------------------------------------------------------------------------------------------------ geometry
def check_rigid(T: np.ndarray, what: str) -> np.ndarray:
    """Return ``T`` as a 4x4 float64 rigid transform or raise a ReconError naming ``what``."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise ReconError(f"{what}: expected a finite 4x4 transform, got shape {T.shape}")
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
        raise ReconError(f"{what}: rotation part is not orthonormal and right-handed")
    return T


def orthonormalize(T: np.ndarray) -> np.ndarray:
    """Project the rotation block of a nearly rigid 4x4 onto SO(3) (removes float rounding from text files)."""
    T = np.array(T, dtype=np.float64)
    u, _, vt = np.linalg.svd(T[:3, :3])
    R = u @ vt
    if np.linalg.det(R) < 0:
        u[:, -1] *= -1
        R = u @ vt
    T[:3, :3] = R
    return T


def waymo_cam2world(world_from_vehicle: np.ndarray, cam_to_vehicle: np.ndarray,
                    offset: np.ndarray | None = None) -> np.ndarray:
    """OpenCV-axes cam2world from a Waymo ego pose and camera extrinsic (camera frame x fwd, y left, z up).

    ``offset`` (3,) is subtracted from the world translation (recentring, metres).
    """
    c2w = np.asarray(world_from_vehicle, float) @ np.asarray(cam_to_vehicle, float) @ OPENCV_TO_WAYMO_CAM
    if offset is not None:
        c2w = c2w.copy()
        c2w[:3, 3] -= offset
    return c2w


def rpy_to_matrix(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) R = Rz(yaw) @ Ry(pitch) @ Rx(roll) (Waymo's 3-2-1 Euler convention)."""
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    R = np.empty(np.shape(roll) + (3, 3))
    R[..., 0, 0] = cy * cp
    R[..., 0, 1] = cy * sp * sr - sy * cr
    R[..., 0, 2] = cy * sp * cr + sy * sr
    R[..., 1, 0] = sy * cp
    R[..., 1, 1] = sy * sp * sr + cy * cr
    R[..., 1, 2] = sy * sp * cr - cy * sr
    R[..., 2, 0] = -sp
    R[..., 2, 1] = cp * sr
    R[..., 2, 2] = cp * cr
    return R


def waymo_range_image_to_points(range_image: np.ndarray, extrinsic: np.ndarray, inclinations: np.ndarray | None,
                                incl_min: float, incl_max: float, world_from_vehicle: np.ndarray,
                                pixel_pose: np.ndarray | None = None) -> np.ndarray:
    """Points (N, 3) float64 in the world frame from one Waymo range image return.

    ``range_image`` (H, W[, C]): channel 0 is the range in metres (<= 0 means no return). ``inclinations``: per-row
    beam pitch in radians as stored (ascending, row 0 of the image is the *highest* beam, so the list is reversed);
    when None, H uniform values between ``incl_min`` and ``incl_max`` (cell centres). Column j has azimuth
    (1 - 2 (j + 0.5) / W) * pi in the vehicle frame (column W/2 looks straight ahead), corrected by the lidar's yaw
    so that it holds in the sensor frame. ``pixel_pose`` (H, W, 6: roll, pitch, yaw, x, y, z) gives a
    vehicle-to-world pose per cell (TOP lidar: compensates the ego motion during the sweep); otherwise every cell
    uses ``world_from_vehicle``. Mirrors ``range_image_utils.extract_point_cloud_from_range_image`` of the Waymo
    Open Dataset toolkit.
    """
    ri = np.asarray(range_image, np.float64)
    rng = ri[..., 0] if ri.ndim == 3 else ri
    H, W = rng.shape
    if inclinations is not None and len(inclinations) > 0:
        incl = np.asarray(inclinations, np.float64)
        if incl.shape != (H,):
            raise ReconError(f"beam inclinations: {incl.shape[0]} values for a range image of {H} rows")
    else:
        incl = incl_min + (np.arange(H) + 0.5) / H * (incl_max - incl_min)
    incl = incl[::-1]
    E = np.asarray(extrinsic, np.float64)
    az_correction = math.atan2(E[1, 0], E[0, 0])
    azimuth = ((W - np.arange(W) - 0.5) / W * 2.0 - 1.0) * math.pi - az_correction
    mask = rng > 0
    rows, cols = np.nonzero(mask)
    r = rng[rows, cols]
    a, b = azimuth[cols], incl[rows]
    p = np.stack([np.cos(a) * np.cos(b) * r, np.sin(a) * np.cos(b) * r, np.sin(b) * r], axis=1)
    p_vehicle = p @ E[:3, :3].T + E[:3, 3]
    if pixel_pose is not None:
        pp = np.asarray(pixel_pose, np.float64)
        if pp.shape[:2] != (H, W) or pp.shape[-1] != 6:
            raise ReconError(f"lidar pixel pose has shape {pp.shape}, expected ({H}, {W}, 6)")
        pp = pp[rows, cols]
        R = rpy_to_matrix(pp[:, 0], pp[:, 1], pp[:, 2])
        return np.einsum("nij,nj->ni", R, p_vehicle) + pp[:, 3:6]
    T = np.asarray(world_from_vehicle, np.float64)
    return p_vehicle @ T[:3, :3].T + T[:3, 3]


# ------------------------------------------------------------------------------------------------ images
def decode_image(data: bytes, what: str) -> np.ndarray:
    """Decode JPEG/PNG bytes to uint8 (H, W, 3) RGB (greyscale replicated)."""
    import imageio.v3 as iio

    try:
        img = np.asarray(iio.imread(io.BytesIO(data)))
    except Exception as exc:
        raise ReconError(f"{what}: image could not be decoded ({type(exc).__name__})") from None
    return to_rgb8(img, what)


def read_image_u8(path: Path) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3); errors name the file."""
    if not path.is_file():
        raise ReconError(f"{path}: image file not found")
    return decode_image(path.read_bytes(), str(path))


def to_rgb8(img: np.ndarray, what: str) -> np.ndarray:
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ReconError(f"{what}: unsupported image dtype {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    elif img.ndim != 3 or img.shape[2] != 3:
        raise ReconError(f"{what}: expected an RGB or greyscale image, got shape {img.shape}")
    return np.ascontiguousarray(img)


def undistort_image(img: np.ndarray, fx: float, fy: float, cx: float, cy: float, k1: float = 0.0, k2: float = 0.0,
                    p1: float = 0.0, p2: float = 0.0, k3: float = 0.0, order: int = 1) -> np.ndarray:
    """Resample an image taken through OpenCV's radial-tangential model to the pinhole camera (same K).

    For every output pixel centre (u + 0.5, v + 0.5) the normalised ray (x, y) is distorted forward
    (x_d = x (1 + k1 r^2 + k2 r^4 + k3 r^6) + 2 p1 x y + p2 (r^2 + 2 x^2), likewise y) and the source is sampled
    there (bilinear for images, ``order=0`` nearest for masks); rays landing outside the source take the nearest
    edge pixel. Only the forward model is needed, so no iterative inversion.
    """
    from scipy.ndimage import map_coordinates

    H, W = img.shape[:2]
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    x, y = (u - cx) / fx, (v - cy) / fy
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    src_u, src_v = xd * fx + cx - 0.5, yd * fy + cy - 0.5  # back to array indices (centres on integers)
    coords = np.stack([src_v, src_u])
    chans = img[..., None] if img.ndim == 2 else img
    out = np.empty_like(chans)
    for c in range(chans.shape[2]):
        out[..., c] = np.clip(np.rint(map_coordinates(chans[..., c].astype(np.float32), coords, order=order,
                                                      mode="nearest")), 0, 255 if img.dtype == np.uint8 else None)
    return out[..., 0] if img.ndim == 2 else out


def resize_u8(img: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize a uint8 image to ``size`` = (width, height) (area-averaging for images, nearest for masks)."""
    from PIL import Image

    if (img.shape[1], img.shape[0]) == size:
        return img
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BOX
    return np.asarray(Image.fromarray(img).resize(size, resample=resample))


def encode_png(img: np.ndarray) -> bytes:
    import imageio.v3 as iio

    return bytes(iio.imwrite("<bytes>", img, extension=".png"))


# ------------------------------------------------------------------------------------------------ scene writer
class SceneWriter:
    """Collects cameras and frames of one scene under a (temporary) root and writes files as they come.

    Images are written as PNG under ``images/<frame id>.png``, LiDAR sweeps as float32 (N, 3) world points under
    ``lidar/<sweep>.npy``, sky masks under ``masks/sky/<frame id>.png``. ``finish`` assigns the benchmark split
    (every 8th frame of every camera held out, :func:`recon.data.scene.holdout_split`) and saves ``scene.json``.
    """

    def __init__(self, root: Path, source: str, name: str, downscale: float = 1.0,
                 holdout_cameras: tuple[str, ...] = ()) -> None:
        self.root = Path(root)
        self.source, self.name, self.downscale = source, name, float(downscale)
        self.holdout_cameras = tuple(holdout_cameras)
        self.cameras: dict[str, Camera] = {}
        self.frames: list[Frame] = []
        self.points_path: Path | None = None
        self.meta: dict[str, Any] = {}

    def add_camera(self, cam: Camera) -> Camera:
        """Register a camera at source resolution; the scene keeps it downscaled. Returns the stored camera."""
        stored = cam.scaled(1.0 / self.downscale) if self.downscale != 1.0 else cam
        self.cameras[cam.name] = stored
        return stored

    def _check_size(self, arr: np.ndarray, camera: str, what: str) -> tuple[int, int]:
        """The stored (downscaled) size of ``camera``; the source array must match the source camera size."""
        cam = self.cameras[camera]
        if self.downscale == 1.0 and arr.shape[:2] != (cam.height, cam.width):
            raise ReconError(f"{what}: {arr.shape[1]}x{arr.shape[0]} but camera '{camera}' is "
                             f"{cam.width}x{cam.height}")
        return cam.width, cam.height

    def write_image(self, frame_id: str, img: np.ndarray, camera: str) -> Path:
        """Write a source-resolution uint8 image (resized to the stored camera size when downscaling)."""
        path = self.root / "images" / f"{frame_id}.png"
        img = to_rgb8(img, frame_id)
        size = self._check_size(img, camera, f"image of frame {frame_id}")
        atomic_write_bytes(path, encode_png(resize_u8(img, size)))
        return path

    def write_mask(self, frame_id: str, mask: np.ndarray, camera: str) -> Path:
        """Write a source-resolution bool sky mask (255 = sky) as PNG."""
        m = np.asarray(mask, bool).astype(np.uint8) * 255
        m = resize_u8(m, self._check_size(m, camera, f"sky mask of frame {frame_id}"), nearest=True)
        path = self.root / "masks" / "sky" / f"{frame_id}.png"
        atomic_write_bytes(path, encode_png(m))
        return path

    def write_lidar(self, sweep: str, points_world: np.ndarray) -> Path:
        pts = np.asarray(points_world, np.float32).reshape(-1, 3)
        path = self.root / "lidar" / f"{sweep}.npy"
        atomic_save_npy(path, pts)
        return path

    def write_points3d(self, xyz: np.ndarray, rgb01: np.ndarray) -> Path:
        pts = np.concatenate([np.asarray(xyz, np.float32).reshape(-1, 3), np.asarray(rgb01, np.float32).reshape(-1, 3)],
                             axis=1)
        self.points_path = self.root / "points3d.npy"
        atomic_save_npy(self.points_path, pts)
        return self.points_path

    def add_frame(self, frame_id: str, camera: str, timestamp: float, index: int, image_path: Path,
                  cam2world: np.ndarray, lidar_path: Path | None = None, sky_mask_path: Path | None = None) -> Frame:
        c2w = check_rigid(cam2world, f"frame {frame_id} cam2world")
        fr = Frame(id=frame_id, camera=self.cameras[camera], timestamp=float(timestamp), image_path=image_path,
                   cam2world=c2w, index=int(index), lidar_path=lidar_path, sky_mask_path=sky_mask_path)
        self.frames.append(fr)
        return fr

    def assign_split(self, order: list[list[Frame]] | None = None) -> None:
        """Hold out every 8th frame of each group (default: each camera's frames in index order), and every frame
        of the held-out cameras. Then keep each test frame's LiDAR truth out of training (see
        :func:`separate_test_lidar`)."""
        if order is None:
            groups: dict[str, list[Frame]] = {}
            for f in self.frames:
                groups.setdefault(f.camera.name, []).append(f)
            order = [sorted(g, key=lambda f: (f.index, f.timestamp)) for g in groups.values()]
        for group in order:
            for f, s in zip(group, holdout_split(len(group))):
                f.split = s
        for f in self.frames:
            if f.camera.name in self.holdout_cameras:
                f.split = "test"
        separate_test_lidar(self.frames)

    def finish(self, split_groups: list[list[Frame]] | None = None) -> Scene:
        if not self.frames:
            raise ReconError(f"{self.source}: no frames selected, nothing to convert")
        unknown = [c for c in self.holdout_cameras if c not in self.cameras]
        if unknown:
            raise ReconError(f"--holdout-camera {', '.join(unknown)}: no such camera (cameras: "
                             f"{', '.join(self.cameras)})")
        used = {f.camera.name for f in self.frames}
        if used and used <= set(self.holdout_cameras):
            raise ReconError(f"--holdout-camera {', '.join(self.holdout_cameras)}: every camera held out, nothing "
                             "left to train on")
        cams = {k: c for k, c in self.cameras.items() if k in used}
        self.assign_split(split_groups)
        scene = Scene(root=self.root, cameras=cams, frames=self.frames, name=self.name, source=self.source,
                      points_path=self.points_path, meta=self.meta)
        scene.save()
        return scene


def separate_test_lidar(frames: list[Frame]) -> None:
    """A test frame whose LiDAR sweep is also a training frame's (a held-out camera at a training timestep) loses
    it: a sweep that trains cannot also be the truth that scores. The test frames of held-out timesteps keep
    their own sweeps, which no training frame names."""
    train_sweeps = {f.lidar_path for f in frames if f.split == "train" and f.lidar_path is not None}
    for f in frames:
        if f.split != "train" and f.lidar_path in train_sweeps:
            f.lidar_path = None


def make_camera(name: str, width: int, height: int, fx: float, fy: float, cx: float, cy: float, lens: LensOptions,
                sensor_width_mm: float = DEFAULT_SENSOR_WIDTH_MM, f_number: float = DEFAULT_F_NUMBER,
                focus_m: float = DEFAULT_FOCUS_DISTANCE_M, what: str = "") -> Camera:
    """A recon Camera with validated intrinsics and the lens defaults (``lens`` overrides win)."""
    vals = (fx, fy, cx, cy)
    if width <= 0 or height <= 0 or not all(math.isfinite(v) for v in vals) or fx <= 0 or fy <= 0:
        raise ReconError(f"{what or name}: invalid intrinsics (size {width}x{height}, fx {fx}, fy {fy})")
    sw, fn, fd = lens.resolve(sensor_width_mm, f_number, focus_m)
    return Camera(name=name, width=int(width), height=int(height), fx=float(fx), fy=float(fy), cx=float(cx),
                  cy=float(cy), sensor_width_mm=sw, f_number=fn, focus_distance_m=fd)
