"""Fixture writers for the converter tests: a tiny synthetic Waymo segment written as v2 parquet and as a v1
TFRecord (schemas of waymo_open_dataset/v2 and dataset.proto), plus the source conventions' own projections.

Builders of converter inputs (Waymo v1/v2, COLMAP text, KITTI) for the tests.
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recon.data.convert import protobuf_wire as pw
from recon.data.convert.tfrecord import write_records

SEGMENT = "seg_0001"


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def rigid(R: np.ndarray, t: object) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, np.asarray(t, float)
    return T


def png_bytes(img: np.ndarray) -> bytes:
    import imageio.v3 as iio

    return bytes(iio.imwrite("<bytes>", img, extension=".png"))


@dataclass
class WaymoTruth:
    """Everything a Waymo fixture contains, in Waymo's own conventions."""

    cams: dict[int, dict] = field(default_factory=dict)  # id -> intrinsic(9), extrinsic, width, height
    timestamps: list[int] = field(default_factory=list)
    ego: list[np.ndarray] = field(default_factory=list)  # world_from_vehicle per step
    cam_pose: list[dict[int, np.ndarray]] = field(default_factory=list)  # SDC pose stored with each image
    images: list[dict[int, np.ndarray]] = field(default_factory=list)
    laser: dict = field(default_factory=dict)  # extrinsic, inclinations
    range_images: list[np.ndarray] = field(default_factory=list)  # (H, W, 4)
    pixel_pose: list[np.ndarray] = field(default_factory=list)  # (H, W, 6)
    seg: dict[tuple[int, int], tuple[int, np.ndarray]] = field(default_factory=dict)  # (step, cam) -> (div, label)


def make_waymo_truth(n_steps: int = 3, distortion: tuple[float, ...] = (0.0,) * 5, seed: int = 0) -> WaymoTruth:
    rng = np.random.default_rng(seed)
    t = WaymoTruth()
    t.cams[1] = {"intrinsic": np.array([30.0, 31.0, 20.3, 14.7, *distortion]), "width": 40, "height": 30,
                 "extrinsic": rigid(rot_z(0.05) @ rot_y(0.03), [1.5, 0.1, 2.0])}
    t.cams[4] = {"intrinsic": np.array([25.0, 25.5, 19.0, 12.0, 0, 0, 0, 0, 0]), "width": 38, "height": 24,
                 "extrinsic": rigid(rot_z(math.pi / 2), [1.0, 0.9, 1.9])}
    incl = np.array([-0.2, -0.1, 0.0, 0.1])
    t.laser = {"extrinsic": rigid(rot_z(0.1), [0.2, 0.0, 2.1]), "inclinations": incl}
    for s in range(n_steps):
        t.timestamps.append(1_550_000_000_000_000 + 100_000 * s)
        ego = rigid(rot_z(0.3 + 0.02 * s), [1000.0 + 5.0 * s, 2000.0 + 1.0 * s, 10.0])
        t.ego.append(ego)
        # the image's own SDC pose differs a little from the frame pose (it is taken at the exposure time)
        t.cam_pose.append({c: ego @ rigid(np.eye(3), [0.1 * (c + 1), 0.0, 0.0]) for c in t.cams})
        t.images.append({c: rng.integers(0, 256, (v["height"], v["width"], 3), dtype=np.uint8)
                         for c, v in t.cams.items()})
        ri = np.zeros((4, 16, 4), np.float32)
        ri[..., 0] = rng.uniform(5, 20, (4, 16))
        ri[0, :3, 0] = 0.0  # no returns
        ri[..., 1] = 1.0
        t.range_images.append(ri)
        pp = np.zeros((4, 16, 6), np.float32)
        pp[..., 2] = 0.3 + 0.02 * s  # yaw of the ego pose
        pp[..., 3] = 1000.0 + 5.0 * s + 0.05 * np.arange(16)[None, :]  # ego moves during the sweep
        pp[..., 4] = 2000.0 + 1.0 * s
        pp[..., 5] = 10.0
        t.pixel_pose.append(pp)
    label = np.full((30, 40), 20 * 1000 + 3, np.uint16)  # road, instance 3
    label[:8] = 25 * 1000  # sky in the top 8 rows
    t.seg[(0, 1)] = (1000, label)
    return t


def waymo_project(t: WaymoTruth, step: int, cam: int, X: np.ndarray) -> tuple[float, float, float]:
    """Waymo's own pinhole projection (no distortion): world -> vehicle -> camera (x fwd) -> u, v; returns x too."""
    p_v = np.linalg.inv(t.cam_pose[step][cam]) @ np.append(X, 1.0)
    p_c = np.linalg.inv(t.cams[cam]["extrinsic"]) @ p_v
    fu, fv, cu, cv = t.cams[cam]["intrinsic"][:4]
    x, y, z = p_c[:3]
    return cu - fu * y / x, cv - fv * z / x, x


def recon_project(scene_frame: object, X_recon: np.ndarray) -> tuple[float, float, float]:
    """recon's projection: cam2world (OpenCV) + K."""
    p = scene_frame.world2cam @ np.append(X_recon, 1.0)  # type: ignore[attr-defined]
    K = scene_frame.camera.K  # type: ignore[attr-defined]
    return K[0, 0] * p[0] / p[2] + K[0, 2], K[1, 1] * p[1] / p[2] + K[1, 2], p[2]


def projection_disagreement(t: WaymoTruth, scene: object, rng: np.random.Generator, points_per_frame: int = 5
                            ) -> tuple[float, float]:
    """Largest pixel and relative-depth difference between Waymo's projection and recon's on the converted
    ``scene`` (FRONT and SIDE_LEFT frames), for random points 5-30 m in front of each camera."""
    offset = np.array(scene.meta["world_offset_m"])  # type: ignore[attr-defined]
    worst_px = worst_depth = 0.0
    for fr in scene.frames:  # type: ignore[attr-defined]
        cam = {"FRONT": 1, "SIDE_LEFT": 4}[fr.camera.name]
        s = fr.index
        for _ in range(points_per_frame):
            # a point in front of the camera, in Waymo camera coordinates (x forward), taken to the world
            p_cam = np.array([rng.uniform(5, 30), rng.uniform(-3, 3), rng.uniform(-2, 2), 1.0])
            X = (t.cam_pose[s][cam] @ t.cams[cam]["extrinsic"] @ p_cam)[:3]
            u0, v0, x0 = waymo_project(t, s, cam, X)
            u1, v1, z1 = recon_project(fr, X - offset)
            worst_px = max(worst_px, abs(u0 - u1), abs(v0 - v1))
            worst_depth = max(worst_depth, abs(z1 - x0) / abs(x0))
    return worst_px, worst_depth


# ------------------------------------------------------------------------------------------------ v2 parquet
def write_waymo_v2(t: WaymoTruth, root: Path, lidar: bool = True, lidar_pose: bool = True, seg: bool = True,
                   skip: tuple[str, ...] = (), camera_names: dict[int, int] | None = None) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    T16 = pa.list_(pa.float64(), 16)
    rename = camera_names or {}

    def write(comp: str, cols: dict[str, pa.Array]) -> None:
        if comp in skip:
            return
        (root / comp).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), root / comp / f"{SEGMENT}.parquet")

    cams = sorted(t.cams)
    ci = "[CameraCalibrationComponent]"
    calib = {"key.segment_context_name": pa.array([SEGMENT] * len(cams)),
             "key.camera_name": pa.array([rename.get(c, c) for c in cams], pa.int8())}
    for i, f in enumerate(["f_u", "f_v", "c_u", "c_v", "k1", "k2", "p1", "p2", "k3"]):
        calib[f"{ci}.intrinsic.{f}"] = pa.array([float(t.cams[c]["intrinsic"][i]) for c in cams], pa.float64())
    calib[f"{ci}.extrinsic.transform"] = pa.array([t.cams[c]["extrinsic"].ravel().tolist() for c in cams], T16)
    calib[f"{ci}.width"] = pa.array([t.cams[c]["width"] for c in cams], pa.int32())
    calib[f"{ci}.height"] = pa.array([t.cams[c]["height"] for c in cams], pa.int32())
    calib[f"{ci}.rolling_shutter_direction"] = pa.array([1] * len(cams), pa.int8())
    write("camera_calibration", calib)

    rows = [(s, c) for s in range(len(t.timestamps)) for c in cams]
    write("camera_image", {
        "key.segment_context_name": pa.array([SEGMENT] * len(rows)),
        "key.frame_timestamp_micros": pa.array([t.timestamps[s] for s, _ in rows], pa.int64()),
        "key.camera_name": pa.array([rename.get(c, c) for _, c in rows], pa.int8()),
        "[CameraImageComponent].image": pa.array([png_bytes(t.images[s][c]) for s, c in rows], pa.binary()),
        "[CameraImageComponent].pose.transform": pa.array([t.cam_pose[s][c].ravel().tolist() for s, c in rows], T16),
        "[CameraImageComponent].pose_timestamp": pa.array([t.timestamps[s] * 1e-6 for s, _ in rows], pa.float64()),
    })
    write("vehicle_pose", {
        "key.segment_context_name": pa.array([SEGMENT] * len(t.timestamps)),
        "key.frame_timestamp_micros": pa.array(t.timestamps, pa.int64()),
        "[VehiclePoseComponent].world_from_vehicle.transform": pa.array([e.ravel().tolist() for e in t.ego], T16),
    })
    if lidar:
        n = len(t.timestamps)
        write("lidar", {
            "key.segment_context_name": pa.array([SEGMENT] * n),
            "key.frame_timestamp_micros": pa.array(t.timestamps, pa.int64()),
            "key.laser_name": pa.array([1] * n, pa.int8()),
            "[LiDARComponent].range_image_return1.values": pa.array([r.ravel().tolist() for r in t.range_images],
                                                                    pa.list_(pa.float32())),
            "[LiDARComponent].range_image_return1.shape": pa.array([list(r.shape) for r in t.range_images],
                                                                   pa.list_(pa.int32(), 3)),
        })
        lc = "[LiDARCalibrationComponent]"
        write("lidar_calibration", {
            "key.segment_context_name": pa.array([SEGMENT]), "key.laser_name": pa.array([1], pa.int8()),
            f"{lc}.extrinsic.transform": pa.array([t.laser["extrinsic"].ravel().tolist()], T16),
            f"{lc}.beam_inclination.values": pa.array([t.laser["inclinations"].tolist()], pa.list_(pa.float64())),
            f"{lc}.beam_inclination.min": pa.array([float(t.laser["inclinations"][0])], pa.float64()),
            f"{lc}.beam_inclination.max": pa.array([float(t.laser["inclinations"][-1])], pa.float64()),
        })
        if lidar_pose:
            write("lidar_pose", {
                "key.segment_context_name": pa.array([SEGMENT] * n),
                "key.frame_timestamp_micros": pa.array(t.timestamps, pa.int64()),
                "key.laser_name": pa.array([1] * n, pa.int8()),
                "[LiDARPoseComponent].range_image_return1.values": pa.array(
                    [p.ravel().tolist() for p in t.pixel_pose], pa.list_(pa.float32())),
                "[LiDARPoseComponent].range_image_return1.shape": pa.array(
                    [list(p.shape) for p in t.pixel_pose], pa.list_(pa.int32(), 3)),
            })
    if seg and t.seg:
        keys = sorted(t.seg)
        cs = "[CameraSegmentationLabelComponent]"
        write("camera_segmentation", {
            "key.segment_context_name": pa.array([SEGMENT] * len(keys)),
            "key.frame_timestamp_micros": pa.array([t.timestamps[s] for s, _ in keys], pa.int64()),
            "key.camera_name": pa.array([c for _, c in keys], pa.int8()),
            f"{cs}.panoptic_label_divisor": pa.array([t.seg[k][0] for k in keys], pa.int32()),
            f"{cs}.panoptic_label": pa.array([png_bytes(t.seg[k][1]) for k in keys], pa.binary()),
        })
    return root


# ------------------------------------------------------------------------------------------------ v1 protos
def _transform(num: int, T: np.ndarray) -> bytes:
    return pw.enc_bytes_field(num, pw.enc_unpacked_doubles(1, T.ravel()))  # proto2 repeated double: unpacked


def _matrix_float(a: np.ndarray) -> bytes:
    shape = b"".join(pw.enc_varint_field(1, d) for d in a.shape)  # repeated int32 dims, unpacked
    return zlib.compress(pw.enc_packed_floats(1, a.ravel()) + pw.enc_bytes_field(2, shape))


def encode_frame(t: WaymoTruth, s: int, lidar: bool = True) -> bytes:
    """One Waymo ``Frame`` proto (fields of dataset.proto) for step ``s``."""
    ctx = pw.enc_bytes_field(1, SEGMENT.encode())
    for c, v in sorted(t.cams.items()):
        cc = (pw.enc_varint_field(1, c) + pw.enc_unpacked_doubles(2, v["intrinsic"]) + _transform(3, v["extrinsic"])
              + pw.enc_varint_field(4, v["width"]) + pw.enc_varint_field(5, v["height"]) + pw.enc_varint_field(6, 1))
        ctx += pw.enc_bytes_field(2, cc)
    lc = (pw.enc_varint_field(1, 1) + pw.enc_packed_doubles(2, t.laser["inclinations"])
          + pw.enc_double_field(3, t.laser["inclinations"][0]) + pw.enc_double_field(4, t.laser["inclinations"][-1])
          + _transform(5, t.laser["extrinsic"]))
    ctx += pw.enc_bytes_field(3, lc)
    out = pw.enc_bytes_field(1, ctx) + pw.enc_varint_field(2, t.timestamps[s]) + _transform(3, t.ego[s])
    for c in sorted(t.cams):
        im = (pw.enc_varint_field(1, c) + pw.enc_bytes_field(2, png_bytes(t.images[s][c]))
              + _transform(3, t.cam_pose[s][c]) + pw.enc_double_field(5, t.timestamps[s] * 1e-6))
        if (s, c) in t.seg:
            div, label = t.seg[(s, c)]
            im += pw.enc_bytes_field(10, pw.enc_varint_field(1, div) + pw.enc_bytes_field(2, png_bytes(label)))
        out += pw.enc_bytes_field(4, im)
    if lidar:
        ri = (pw.enc_bytes_field(2, _matrix_float(t.range_images[s]))
              + pw.enc_bytes_field(4, _matrix_float(t.pixel_pose[s])))
        out += pw.enc_bytes_field(5, pw.enc_varint_field(1, 1) + pw.enc_bytes_field(2, ri))
    return out


def write_waymo_v1(t: WaymoTruth, path: Path, lidar: bool = True) -> Path:
    return write_records(path, [encode_frame(t, s, lidar) for s in range(len(t.timestamps))])


def expected_lidar_world(t: WaymoTruth, s: int) -> np.ndarray:
    """World points of step ``s``, written independently of the converter: each cell is a ray of the sensor at the
    row's inclination (row 0 = highest beam) and column azimuth (column W/2 looks along the vehicle's +x axis,
    azimuth decreasing to the right), moved to the vehicle frame and then to the world by that cell's pose."""
    ri = t.range_images[s][..., 0].astype(np.float64)
    H, W = ri.shape
    E = t.laser["extrinsic"]
    yaw_sensor = math.atan2(E[1, 0], E[0, 0])
    pts = []
    for r in range(H):
        for c in range(W):
            if ri[r, c] <= 0:
                continue
            incl = t.laser["inclinations"][H - 1 - r]
            az_vehicle = math.pi - (c + 0.5) * 2 * math.pi / W
            az = az_vehicle - yaw_sensor
            d = np.array([math.cos(az) * math.cos(incl), math.sin(az) * math.cos(incl), math.sin(incl)])
            p_v = E[:3, :3] @ (ri[r, c] * d) + E[:3, 3]
            roll, pitch, yaw, x, y, z = t.pixel_pose[s][r, c].astype(np.float64)
            assert roll == 0 and pitch == 0
            pts.append(rot_z(yaw) @ p_v + [x, y, z])
    return np.array(pts)


def decode_png(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    return np.asarray(iio.imread(io.BytesIO(Path(path).read_bytes())))


def quat_wxyz(R: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(R).as_quat()
    return np.array([w, x, y, z])


def write_colmap_text(root, model: str = "PINHOLE", params: str = "50 52 32.5 24.25", n: int = 3) -> list[np.ndarray]:
    """A COLMAP text model (cameras.txt, images.txt, points3D.txt) with ``n`` images; returns cam_from_world 4x4."""
    sparse = root / "sparse" / "0"
    sparse.mkdir(parents=True)
    (root / "images").mkdir()
    (sparse / "cameras.txt").write_text(f"# camera list\n1 {model} 64 48 {params}\n")
    lines, poses = ["# images"], []
    rng = np.random.default_rng(0)
    for i in range(n):
        T = rigid(rot_y(0.1 * i) @ rot_z(0.05), [0.3 * i, -0.1, 2.0])  # cam_from_world
        poses.append(T)
        q = quat_wxyz(T[:3, :3])
        lines.append(f"{i + 1} {' '.join(map(str, q))} {' '.join(map(str, T[:3, 3]))} 1 img{i}.png")
        lines.append("")
        (root / "images" / f"img{i}.png").write_bytes(png_bytes(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)))
    (sparse / "images.txt").write_text("\n".join(lines) + "\n")
    (sparse / "points3D.txt").write_text("# points\n1 0.5 0.2 1.0 255 0 0 0.1\n2 -0.3 0.1 0.5 0 128 255 0.2\n")
    return poses


def write_kitti(root, n: int = 4) -> tuple[dict[int, np.ndarray], list[np.ndarray]]:
    P0 = np.array([[700.0, 0, 60.5, 0], [0, 700.0, 18.25, 0], [0, 0, 1, 0]])
    P1 = P0.copy()
    P1[0, 3] = -0.54 * 700.0  # right camera 0.54 m to the right
    root.mkdir()
    (root / "calib.txt").write_text(
        "\n".join(f"P{i}: " + " ".join(f"{x:.12e}" for x in P.ravel()) for i, P in enumerate((P0, P1))) + "\n")
    poses = [rigid(rot_y(0.05 * i), [0.01 * i, 0.0, 0.8 * i]) for i in range(n)]
    (root / "poses.txt").write_text("\n".join(" ".join(f"{x:.9e}" for x in T[:3].ravel()) for T in poses) + "\n")
    rng = np.random.default_rng(0)
    for d in ("image_0", "image_1"):
        (root / d).mkdir()
        for i in range(n):
            (root / d / f"{i:06d}.png").write_bytes(png_bytes(rng.integers(0, 255, (37, 122), dtype=np.uint8)))
    return {0: P0, 1: P1}, poses
