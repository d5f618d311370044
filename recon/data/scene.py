"""The recon scene folder: ``scene.json`` plus the images, depth maps, LiDAR sweeps and masks it names.

Layout (paths in ``scene.json`` are relative to the folder)::

    scene.json
    images/<frame>.png          8-bit RGB
    depth/<frame>.npy           optional, float32 z-depth in metres along the camera's optical axis, 0 = unknown
    lidar/<sweep>.npy           optional, float32 (N, 3) or (N, 4: x, y, z, intensity) points in the WORLD frame
    masks/sky/<frame>.png       optional, 255 = sky
    points3d.npy                optional, float32 (N, 6+) SfM points: x, y, z (world, metres), r, g, b in [0, 1]; from
                                `recon sfm` (N, 8): + track length (frames), mean reprojection error (pixels)
    defocus/<...>.png           optional, true finite-aperture images of a frame (synthetic scenes)

Conventions: OpenCV camera axes (x right, y down, z forward); ``cam2world`` is 4x4 and maps camera coordinates to
world coordinates (metres); intrinsics in pixels; lens metadata in millimetres (focal length, sensor width) and
metres (focus distance). A pixel centre of pixel (u, v) is at (u + 0.5, v + 0.5) in the image plane, which is the
convention gsplat uses for ``K``. :class:`Camera` projects and unprojects with these conventions (the maths is in
:mod:`recon.data.projection`).

``Scene.load`` validates the whole file up front and raises :class:`SceneError` (a one-line message that names the
file and the problem); images and depth maps are loaded lazily, when a frame asks for them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recon.data import projection
from recon.data.scene_fields import MAX_COORD_M, MAX_IMAGE_SIDE_PX, frame_id, integer, number, scene_file, short
from recon.errors import ReconError
from recon.io.atomic import atomic_write_json
from recon.io.images import read_depth, read_image, read_mask

FORMAT_NAME = "recon-scene"
FORMAT_VERSION = 1
SPLITS = ("train", "test", "val")

# Lens defaults for sources that do not record them (Waymo, KITTI, COLMAP): a 1/1.8" automotive sensor
# (7.2 mm wide), f/2.0, focused at 10 m. Documented in README and overridable per converter.
DEFAULT_SENSOR_WIDTH_MM = 7.2
DEFAULT_F_NUMBER = 2.0
DEFAULT_FOCUS_DISTANCE_M = 10.0


class SceneError(ReconError):
    """A scene folder or one of its files is invalid."""


@dataclass
class Camera:
    """A pinhole camera with thin-lens metadata, the one camera type of recon (scenes, synthetic renders, viewer).

    Intrinsics ``fx, fy, cx, cy`` in pixels of a ``width x height`` image; ``focal_length_mm`` and
    ``sensor_width_mm`` describe the lens; ``f_number`` (dimensionless) and ``focus_distance_m`` (metres) its
    aperture and focus setting (the aperture diameter is :func:`recon.optics.thin_lens.aperture_diameter_m`).

    Projection (:mod:`recon.data.projection`): OpenCV axes, a camera point (x, y, z) is seen at image coordinates
    ``u = fx x / z + cx``, ``v = fy y / z + cy``; the centre of pixel (col, row) is at (col + 0.5, row + 0.5), so
    image coordinates (u, v) fall in pixel (floor(u), floor(v)). Depth is z-depth (along the optical axis) unless
    a method says ray distance. Methods take numpy arrays or torch tensors (poses of the same kind).
    """

    name: str
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    sensor_width_mm: float = DEFAULT_SENSOR_WIDTH_MM
    focal_length_mm: float | None = None
    f_number: float = DEFAULT_F_NUMBER
    focus_distance_m: float = DEFAULT_FOCUS_DISTANCE_M

    def __post_init__(self) -> None:
        if self.focal_length_mm is None:
            self.focal_length_mm = self.fx * self.pixel_pitch_mm

    @property
    def pixel_pitch_mm(self) -> float:
        """Size of one pixel on the sensor in millimetres."""
        return self.sensor_width_mm / self.width

    @property
    def K(self) -> np.ndarray:
        """3x3 intrinsic matrix (float64, pixels)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    # ---------------------------------------------------------------- projection
    def project(self, points_cam: Any) -> tuple[Any, Any]:
        """Image coordinates ``(u, v)`` of camera-frame points (..., 3); meaningless where z <= 0."""
        return projection.camera_to_pixel(points_cam, self.K)

    def unproject(self, u: Any, v: Any, depth: Any) -> Any:
        """Camera-frame points (..., 3) at z-depth ``depth`` (metres) seen at image coordinates ``(u, v)``."""
        return projection.pixel_to_camera(u, v, depth, self.K)

    def world_to_pixel(self, points_world: Any, cam2world: Any) -> tuple[Any, Any]:
        """World points (..., 3) -> image coordinates (..., 2) and z-depth (...,) for the pose ``cam2world``."""
        return projection.world_to_pixel(points_world, projection.inverse_pose(cam2world), self.K)

    def pixel_to_world(self, u: Any, v: Any, depth: Any, cam2world: Any) -> Any:
        """World points (..., 3) at z-depth ``depth`` seen at image coordinates ``(u, v)`` from pose ``cam2world``."""
        return projection.pixel_to_world(u, v, depth, self.K, cam2world)

    def pixel_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """``(u, v)`` float64 (height, width): the image coordinates of every pixel centre (col + 0.5, row + 0.5)."""
        return projection.pixel_centres(self.width, self.height)

    def rays(self) -> np.ndarray:
        """Camera-frame ray directions (height, width, 3) through the pixel centres, scaled to z = 1."""
        return projection.ray_directions(*self.pixel_centres(), self.K)

    def depth_to_world(self, depth: Any, cam2world: Any) -> Any:
        """World points (H*W, 3), row-major, of a z-depth map (height, width) in metres."""
        return projection.depth_to_points(depth, self.K, cam2world)

    def ray_distance(self, z: Any) -> Any:
        """Ray distance (metres from the camera centre) of a z-depth map (height, width)."""
        return projection.z_to_ray_distance(z, *self.pixel_centres(), self.K)

    def z_depth(self, distance: Any) -> Any:
        """z-depth (metres along the optical axis) of a ray-distance map (height, width)."""
        return projection.ray_distance_to_z(distance, *self.pixel_centres(), self.K)

    def scaled(self, factor: float) -> Camera:
        """The same camera with the image resized by ``factor`` (intrinsics follow, the lens is unchanged)."""
        w, h = max(1, round(self.width * factor)), max(1, round(self.height * factor))
        sx, sy = w / self.width, h / self.height
        return Camera(self.name, w, h, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy,
                      self.sensor_width_mm, self.focal_length_mm, self.f_number, self.focus_distance_m)

    def to_json(self) -> dict[str, Any]:
        return {
            "width": self.width, "height": self.height, "fx": self.fx, "fy": self.fy, "cx": self.cx,
            "cy": self.cy, "sensor_width_mm": self.sensor_width_mm, "focal_length_mm": self.focal_length_mm,
            "f_number": self.f_number, "focus_distance_m": self.focus_distance_m,
        }


@dataclass
class Frame:
    """One image of one camera at one time, with its pose and optional per-frame data.

    ``cam2world`` is a 4x4 float64 camera-to-world matrix in OpenCV axes. Paths are absolute once loaded.
    """

    id: str
    camera: Camera
    timestamp: float
    image_path: Path
    cam2world: np.ndarray
    split: str = "train"
    index: int = 0
    depth_path: Path | None = None
    lidar_path: Path | None = None
    sky_mask_path: Path | None = None

    @property
    def world2cam(self) -> np.ndarray:
        return np.linalg.inv(self.cam2world)

    @property
    def center(self) -> np.ndarray:
        return self.cam2world[:3, 3].copy()

    def project_points(self, points_world: np.ndarray, min_depth: float = 0.1,
                       max_depth: float = math.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, cols, z, index)`` of the world points (N, 3+) that land in this frame's image with z-depth in
        (``min_depth``, ``max_depth``) metres; see :func:`recon.data.projection.project_points`."""
        cam = self.camera
        return projection.project_points(points_world, self.cam2world, cam.K, cam.width, cam.height,
                                         min_depth, max_depth)

    def sparse_depth(self, points_world: np.ndarray, occlusion_radius_px: int = 2, occlusion_rel_tol: float = 0.3,
                     max_depth: float = math.inf) -> np.ndarray:
        """Sparse float32 (H, W) z-depth of world points (LiDAR, SfM) in this frame: z-buffered and
        occlusion-filtered (see :func:`recon.data.projection.sparse_depth`), 0 where no point is kept."""
        cam = self.camera
        return projection.sparse_depth(points_world, self.cam2world, cam.K, cam.width, cam.height,
                                       occlusion_radius_px, occlusion_rel_tol, max_depth)

    def load_image(self) -> np.ndarray:
        """RGB float32 (H, W, 3) in [0, 1]; checked against the camera size."""
        img = read_image(self.image_path)
        if img.shape[:2] != (self.camera.height, self.camera.width):
            raise SceneError(
                f"{self.image_path}: image is {img.shape[1]}x{img.shape[0]} but camera "
                f"'{self.camera.name}' is {self.camera.width}x{self.camera.height}"
            )
        return img

    def load_depth(self) -> np.ndarray | None:
        """Ground-truth z-depth in metres (H, W), 0 = unknown; None when the scene has none."""
        if self.depth_path is None:
            return None
        d = read_depth(self.depth_path)
        if d.shape != (self.camera.height, self.camera.width):
            raise SceneError(f"{self.depth_path}: depth map is {d.shape[::-1]} but the image is "
                             f"{self.camera.width}x{self.camera.height}")
        return d

    def load_lidar(self) -> np.ndarray | None:
        """LiDAR points of this frame's sweep, world frame, float32 (N, 3); None when absent."""
        if self.lidar_path is None:
            return None
        return load_points(self.lidar_path)[:, :3]

    def load_sky_mask(self) -> np.ndarray | None:
        """Bool (H, W), True where the pixel sees sky; None when the scene has no sky masks."""
        if self.sky_mask_path is None:
            return None
        m = read_mask(self.sky_mask_path)
        if m.shape != (self.camera.height, self.camera.width):
            raise SceneError(f"{self.sky_mask_path}: mask size {m.shape[::-1]} does not match the image")
        return m


@dataclass
class DefocusImage:
    """A true finite-aperture image of a frame (same pose and intrinsics, thin lens with the given settings)."""

    frame_id: str
    f_number: float
    focus_distance_m: float
    image_path: Path
    lens_samples: int = 0

    def load_image(self) -> np.ndarray:
        return read_image(self.image_path)


def load_points(path: str | Path) -> np.ndarray:
    """Load an (N, >=3) float32 point array from ``.npy``, with a clear error when it is not one.

    Rows whose x, y, z are not finite or lie farther than ``MAX_COORD_M`` from the origin (``FLT_MAX`` or 1e30
    "no return" markers) are dropped; the file must hold real numbers (not strings, booleans or records).
    """
    path = Path(path)
    if not path.is_file():
        raise SceneError(f"{path}: point file not found")
    try:
        pts = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise SceneError(f"{path}: point file could not be read ({type(exc).__name__})") from None
    if not isinstance(pts, np.ndarray):
        raise SceneError(f"{path}: expected one (N, 3+) point array (.npy), got a {type(pts).__name__}")
    if pts.dtype.kind not in "iuf":
        raise SceneError(f"{path}: point array holds {pts.dtype} values, not real numbers")
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise SceneError(f"{path}: expected an (N, 3+) point array, got shape {pts.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        pts = pts.astype(np.float32)
        xyz = pts[:, :3]
        keep = np.isfinite(xyz).all(axis=1) & (np.abs(xyz) <= MAX_COORD_M).all(axis=1)
    return pts[keep]


def set_points_entry(root: str | Path, points: str | Path) -> Path:
    """Point ``root/scene.json``'s ``"points3d"`` entry at ``points`` (a file inside ``root``), atomically, leaving
    every other entry of the file as it is. Returns the scene.json path."""
    root = Path(root)
    path = root / "scene.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SceneError(f"{path}: cannot update the points3d entry ({type(exc).__name__})") from None
    try:
        rel = Path(points).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise SceneError(f"{points}: the points file must be inside the scene folder {root}") from None
    raw["points3d"] = rel
    return atomic_write_json(path, raw)


@dataclass
class Scene:
    """A loaded scene folder. Build one in memory and ``save`` it, or ``Scene.load`` an existing folder."""

    root: Path
    cameras: dict[str, Camera]
    frames: list[Frame]
    name: str = "scene"
    source: str = "unknown"
    points_path: Path | None = None
    defocus: list[DefocusImage] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- queries
    def split(self, name: str) -> list[Frame]:
        """Frames of one split (``train``, ``test`` or ``val``), in file order."""
        return [f for f in self.frames if f.split == name]

    @property
    def train_frames(self) -> list[Frame]:
        return self.split("train")

    @property
    def test_frames(self) -> list[Frame]:
        return self.split("test")

    def frame(self, frame_id: str) -> Frame:
        for f in self.frames:
            if f.id == frame_id:
                return f
        raise KeyError(frame_id)

    def has_lidar(self) -> bool:
        return any(f.lidar_path is not None for f in self.frames)

    def has_depth(self) -> bool:
        return any(f.depth_path is not None for f in self.frames)

    def load_sfm_points(self) -> np.ndarray | None:
        """SfM points (N, 6): xyz world metres, rgb in [0, 1]; None when the scene has none. Extra columns (track
        length and reprojection error from ``recon sfm``) are dropped; a file of 3 columns gets grey."""
        if self.points_path is None:
            return None
        pts = load_points(self.points_path)
        if pts.shape[1] < 6:
            pts = np.concatenate([pts[:, :3], np.full((len(pts), 3), 0.5, np.float32)], axis=1)
        return pts[:, :6]

    def lidar_sweeps(self) -> list[Path]:
        """Distinct LiDAR files in the scene, in first-use order."""
        seen: dict[Path, None] = {}
        for f in self.frames:
            if f.lidar_path is not None:
                seen.setdefault(f.lidar_path, None)
        return list(seen)

    def fingerprint(self) -> str:
        """A short hash of the scene's geometry and file names (used to refuse resuming on another scene)."""
        import hashlib

        h = hashlib.sha1()
        for f in self.frames:
            h.update(f.id.encode())
            h.update(np.round(f.cam2world, 6).tobytes())
        for c in sorted(self.cameras):
            h.update(json.dumps(self.cameras[c].to_json(), sort_keys=True).encode())
        return h.hexdigest()[:16]

    def summary(self) -> str:
        """A few human-readable lines describing the scene."""
        lines = [f"scene '{self.name}' ({self.source}) at {self.root}"]
        for c in self.cameras.values():
            fov = math.degrees(2 * math.atan(c.width / (2 * c.fx)))
            lines.append(f"  camera {c.name}: {c.width}x{c.height}, hfov {fov:.1f} deg, f/{c.f_number:g}, "
                         f"focus {c.focus_distance_m:g} m")
        n_tr, n_te = len(self.train_frames), len(self.test_frames)
        lines.append(f"  frames: {len(self.frames)} ({n_tr} train, {n_te} test)")
        lines.append(f"  lidar sweeps: {len(self.lidar_sweeps())}, depth maps: "
                     f"{sum(f.depth_path is not None for f in self.frames)}, sky masks: "
                     f"{sum(f.sky_mask_path is not None for f in self.frames)}")
        if self.defocus:
            lines.append(f"  finite-aperture images: {len(self.defocus)}")
        return "\n".join(lines)

    # ---------------------------------------------------------------- (de)serialisation
    def to_json(self) -> dict[str, Any]:
        def rel(p: Path | None) -> str | None:
            return None if p is None else Path(p).resolve().relative_to(self.root.resolve()).as_posix()

        frames = []
        for f in self.frames:
            d: dict[str, Any] = {
                "id": f.id, "camera": f.camera.name, "timestamp": f.timestamp, "index": f.index,
                "image": rel(f.image_path), "cam2world": np.asarray(f.cam2world, float).tolist(), "split": f.split,
            }
            for key, p in (("depth", f.depth_path), ("lidar", f.lidar_path), ("sky_mask", f.sky_mask_path)):
                if p is not None:
                    d[key] = rel(p)
            frames.append(d)
        out: dict[str, Any] = {
            "format": FORMAT_NAME, "version": FORMAT_VERSION, "name": self.name, "source": self.source,
            "cameras": {k: c.to_json() for k, c in self.cameras.items()}, "frames": frames,
        }
        if self.points_path is not None:
            out["points3d"] = rel(self.points_path)
        if self.defocus:
            out["defocus"] = [
                {"frame": d.frame_id, "f_number": d.f_number, "focus_distance_m": d.focus_distance_m,
                 "image": rel(d.image_path), "lens_samples": d.lens_samples} for d in self.defocus
            ]
        if self.meta:
            out["meta"] = self.meta
        return out

    def save(self) -> Path:
        """Write ``scene.json`` atomically into ``root`` (the files it names must already be there)."""
        return atomic_write_json(self.root / "scene.json", self.to_json())

    @classmethod
    def load(cls, root: str | Path, check_files: bool = True) -> Scene:
        """Load and validate ``root/scene.json``. With ``check_files`` every named file must exist.

        Every path the file names must stay inside the scene folder (see :mod:`recon.data.scene_fields`)."""
        root = Path(root)
        path = root / "scene.json" if root.is_dir() or not root.suffix else root
        root = path.parent
        if not path.is_file():
            raise SceneError(f"{path}: scene.json not found (is {root} a recon scene folder? "
                             "make one with `recon data synth` or `recon data convert`)")
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SceneError(f"{path}: not valid JSON ({exc})") from None
        except RecursionError:
            raise SceneError(f"{path}: not valid JSON (nested too deeply)") from None
        except OSError as exc:
            raise SceneError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
        return cls.from_json(raw, root, path, check_files)

    @classmethod
    def from_json(cls, raw: Any, root: Path, path: Path, check_files: bool = True) -> Scene:
        def bad(msg: str) -> SceneError:
            return SceneError(f"{path}: {msg}")

        if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
            raise bad(f"not a recon scene (expected \"format\": \"{FORMAT_NAME}\")")
        if raw.get("version") != FORMAT_VERSION:
            raise bad(f"unsupported scene version {short(raw.get('version'))} (this recon reads {FORMAT_VERSION})")

        def file(rel: Any, what: str) -> Path:
            return scene_file(root, rel, what, bad, check_files)

        cams: dict[str, Camera] = {}
        cam_raw = raw.get("cameras")
        if not isinstance(cam_raw, dict) or not cam_raw:
            raise bad("'cameras' must be a non-empty object")
        for name, c in cam_raw.items():
            cams[name] = _camera(name, c, bad)

        frames: list[Frame] = []
        seen: set[str] = set()
        fr_raw = raw.get("frames")
        if not isinstance(fr_raw, list) or not fr_raw:
            raise bad("'frames' must be a non-empty list")
        for i, fr in enumerate(fr_raw):
            if not isinstance(fr, dict):
                raise bad(f"frame {i}: expected an object")
            fid = frame_id(fr.get("id", i), f"frame {i}", bad)
            if fid in seen:
                raise bad(f"frame '{fid}': duplicate id")
            seen.add(fid)
            cam_name = fr.get("camera")
            if not isinstance(cam_name, str) or cam_name not in cams:
                raise bad(f"frame '{fid}': unknown camera {short(cam_name)} (cameras: {', '.join(cams)})")
            c2w = _cam2world(fr.get("cam2world"), f"frame '{fid}'", bad)
            split = fr.get("split", "train")
            if not isinstance(split, str) or split not in SPLITS:
                raise bad(f"frame '{fid}': split must be one of {SPLITS}, got {short(split)}")
            timestamp = number(fr.get("timestamp", i), f"frame '{fid}': timestamp", bad)
            index = integer(fr.get("index", i), f"frame '{fid}': index", bad)
            opt = {k: None if fr.get(k) is None else file(fr[k], f"frame '{fid}' {k}")
                   for k in ("depth", "lidar", "sky_mask")}
            frames.append(Frame(
                id=fid, camera=cams[cam_name], timestamp=timestamp,
                image_path=file(fr.get("image"), f"frame '{fid}' image"), cam2world=c2w, split=split,
                index=index, depth_path=opt["depth"], lidar_path=opt["lidar"], sky_mask_path=opt["sky_mask"],
            ))

        de_raw = raw.get("defocus")
        if de_raw is not None and not isinstance(de_raw, list):
            raise bad(f"'defocus' must be a list of objects, got {short(de_raw)}")
        defocus = []
        for j, d in enumerate(de_raw or []):
            what = f"defocus entry {j}"
            if not isinstance(d, dict):
                raise bad(f"{what}: expected an object, got {short(d)}")
            fr_id = d.get("frame")
            if not isinstance(fr_id, str | int) or isinstance(fr_id, bool) or str(fr_id) not in seen:
                raise bad(f"{what}: unknown frame {short(fr_id)}")
            defocus.append(DefocusImage(
                str(fr_id), number(d.get("f_number"), f"{what}: f_number", bad, positive=True),
                number(d.get("focus_distance_m"), f"{what}: focus_distance_m", bad, positive=True),
                file(d.get("image"), f"{what} image"),
                integer(d.get("lens_samples", 0), f"{what}: lens_samples", bad, low=0)))

        meta = raw.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise bad(f"'meta' must be an object, got {short(meta)}")
        for key in ("name", "source"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise bad(f"'{key}' must be a string, got {short(raw[key])}")
        pts = raw.get("points3d")
        return cls(root=root, cameras=cams, frames=frames, name=raw.get("name") or root.name,
                   source=raw.get("source") or "unknown",
                   points_path=None if pts is None else file(pts, "points3d"), defocus=defocus,
                   meta=dict(meta or {}))


def _camera(name: str, c: Any, bad: Callable[[str], SceneError]) -> Camera:
    """One entry of ``cameras``: whole positive pixel sizes, finite positive focal lengths and lens settings."""
    what = f"camera '{name}'"
    if not isinstance(c, dict):
        raise bad(f"{what}: expected an object, got {short(c)}")
    for key in ("width", "height", "fx", "fy", "cx", "cy"):
        if key not in c:
            raise bad(f"{what}: missing field '{key}'")
    size = {k: integer(c[k], f"{what}: {k}", bad, low=1, high=MAX_IMAGE_SIDE_PX) for k in ("width", "height")}
    pos = {k: number(c[k], f"{what}: {k}", bad, positive=True) for k in ("fx", "fy")}
    centre = {k: number(c[k], f"{what}: {k}", bad) for k in ("cx", "cy")}
    lens = {k: number(c[k], f"{what}: {k}", bad, positive=True) for k in ("sensor_width_mm", "f_number",
                                                                         "focus_distance_m", "focal_length_mm")
            if c.get(k) is not None}
    return Camera(name=name, **size, **pos, **centre, **lens)


def _cam2world(value: Any, what: str, bad: Callable[[str], SceneError]) -> np.ndarray:
    """A rigid 4x4 camera-to-world matrix: finite, last row (0, 0, 0, 1), rotation orthonormal and right-handed,
    translation within ``MAX_COORD_M`` of the origin."""
    try:
        c2w = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise bad(f"{what}: missing or invalid cam2world") from None
    if value is None or c2w.shape != (4, 4) or not np.isfinite(c2w).all():
        raise bad(f"{what}: cam2world must be a finite 4x4 matrix")
    rot = c2w[:3, :3]
    if (np.abs(rot) > 1.0 + 1e-4).any() or not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4) \
            or np.linalg.det(rot) < 0:
        raise bad(f"{what}: cam2world rotation is not orthonormal and right-handed")
    if not np.allclose(c2w[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise bad(f"{what}: cam2world's last row must be [0, 0, 0, 1], got {np.round(c2w[3], 6).tolist()}")
    if (np.abs(c2w[:3, 3]) > MAX_COORD_M).any():
        raise bad(f"{what}: cam2world translation {np.abs(c2w[:3, 3]).max():.3g} m is farther than {MAX_COORD_M:g} m "
                  "from the origin (float32 positions lose centimetre precision; recentre the scene)")
    return c2w


def holdout_split(n: int, every: int = 8) -> list[str]:
    """The benchmark split: every ``every``-th frame of a camera's sequence is 'test', the rest 'train'."""
    return ["test" if (i % every) == every // 2 else "train" for i in range(n)]
