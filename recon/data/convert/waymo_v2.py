"""Waymo Open Dataset v2 (Apache Parquet) -> recon scene.

Input layout (one file per component per segment, as distributed)::

    SRC/camera_image/<segment>.parquet          required
    SRC/camera_calibration/<segment>.parquet    required
    SRC/vehicle_pose/<segment>.parquet          required
    SRC/lidar/<segment>.parquet                 optional (needs lidar_calibration)
    SRC/lidar_calibration/<segment>.parquet     required when lidar/ is there
    SRC/lidar_pose/<segment>.parquet            optional: per-cell ego pose of the TOP lidar
    SRC/camera_segmentation/<segment>.parquet   optional: panoptic labels -> sky masks

Column names follow ``waymo_open_dataset/v2`` (keys ``key.segment_context_name``, ``key.frame_timestamp_micros``,
``key.camera_name`` / ``key.laser_name``; values ``[CameraImageComponent].image``, ``...pose.transform``,
``[CameraCalibrationComponent].intrinsic.f_u`` ... ``.k3``, ``.extrinsic.transform``, ``.width``, ``.height``,
``[VehiclePoseComponent].world_from_vehicle.transform``, ``[LiDARComponent].range_image_return1.values/shape``,
``[LiDARCalibrationComponent].extrinsic.transform``, ``.beam_inclination.values/min/max``,
``[LiDARPoseComponent].range_image_return1.values/shape``,
``[CameraSegmentationLabelComponent].panoptic_label_divisor/panoptic_label``).

A timestep is one ``key.frame_timestamp_micros``; --start/--end select timesteps in time order. Geometry, lens
defaults (Waymo records no aperture: assumed f/2.0, focus 10 m, 7.2 mm sensor unless overridden), distortion,
LiDAR and sky handling are described in :mod:`recon.data.convert.waymo_frames`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recon.data.convert.common import ConvertOptions, SceneWriter, progress
from recon.data.convert.waymo_frames import (
    CameraCalib,
    LaserCalib,
    WaymoSceneBuilder,
    laser_points,
    transform16,
)
from recon.data.scene import Scene
from recon.errors import ReconError
from recon.io.atomic import atomic_directory

K_SEG, K_TS, K_CAM, K_LASER = "key.segment_context_name", "key.frame_timestamp_micros", "key.camera_name", \
    "key.laser_name"
CI, CC, VP = "[CameraImageComponent]", "[CameraCalibrationComponent]", "[VehiclePoseComponent]"
LI, LC, LP, CS = "[LiDARComponent]", "[LiDARCalibrationComponent]", "[LiDARPoseComponent]", \
    "[CameraSegmentationLabelComponent]"
REQUIRED = ("camera_image", "camera_calibration", "vehicle_pose")


def list_segments(src: Path) -> list[str]:
    """Segment names with a camera_image parquet file under ``src``."""
    d = src / "camera_image"
    return sorted(p.stem for p in d.glob("*.parquet")) if d.is_dir() else []


def _component(src: Path, name: str, segment: str, required: bool) -> Path | None:
    p = src / name / f"{segment}.parquet"
    if p.is_file():
        return p
    if required:
        raise ReconError(f"{p}: missing Waymo v2 component '{name}' for segment {segment}")
    return None


def _read(path: Path, columns: list[str], filters: Any = None) -> dict[str, list[Any]]:
    """Read columns of a parquet file as Python lists; a missing column or a bad file is a ReconError."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise ReconError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from None
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise ReconError(f"{path}: missing column(s) {', '.join(missing)}")
    try:
        table = pq.read_table(path, columns=columns, filters=filters)
    except Exception as exc:
        raise ReconError(f"{path}: could not be read ({type(exc).__name__}: {exc})") from None
    return {c: table.column(c).to_pylist() for c in columns}


def _has_columns(path: Path, columns: list[str]) -> bool:
    import pyarrow.parquet as pq

    return all(c in pq.read_schema(path).names for c in columns)


def _batches(path: Path, columns: list[str], batch_size: int = 8) -> Any:
    import pyarrow.parquet as pq

    try:
        f = pq.ParquetFile(path)
        for b in f.iter_batches(batch_size=batch_size, columns=columns):
            yield {c: b.column(c).to_pylist() for c in columns}
    except ReconError:
        raise
    except Exception as exc:
        raise ReconError(f"{path}: could not be read ({type(exc).__name__}: {exc})") from None


def read_camera_calibs(path: Path) -> dict[int, CameraCalib]:
    fields = ["f_u", "f_v", "c_u", "c_v", "k1", "k2", "p1", "p2", "k3"]
    cols = [K_CAM] + [f"{CC}.intrinsic.{f}" for f in fields] + [f"{CC}.extrinsic.transform", f"{CC}.width",
                                                              f"{CC}.height"]
    t = _read(path, cols)
    out = {}
    for i, cid in enumerate(t[K_CAM]):
        intr = np.array([t[f"{CC}.intrinsic.{f}"][i] or 0.0 for f in fields], np.float64)
        out[int(cid)] = CameraCalib(int(cid), intr, transform16(t[f"{CC}.extrinsic.transform"][i],
                                                                f"{path}: extrinsic of camera {cid}"),
                                    int(t[f"{CC}.width"][i]), int(t[f"{CC}.height"][i]))
    return out


def read_laser_calibs(path: Path) -> dict[int, LaserCalib]:
    cols = [K_LASER, f"{LC}.extrinsic.transform", f"{LC}.beam_inclination.values", f"{LC}.beam_inclination.min",
            f"{LC}.beam_inclination.max"]
    t = _read(path, cols)
    out = {}
    for i, lid in enumerate(t[K_LASER]):
        vals = t[f"{LC}.beam_inclination.values"][i]
        out[int(lid)] = LaserCalib(int(lid), None if vals is None else np.asarray(vals, np.float64),
                                   float(t[f"{LC}.beam_inclination.min"][i] or 0.0),
                                   float(t[f"{LC}.beam_inclination.max"][i] or 0.0),
                                   transform16(t[f"{LC}.extrinsic.transform"][i], f"{path}: extrinsic of laser {lid}"))
    return out


def _range_image(values: Any, shape: Any, what: str) -> np.ndarray:
    if values is None or shape is None:
        raise ReconError(f"{what}: range image is empty")
    a = np.asarray(values, np.float32)
    shape = tuple(int(s) for s in shape)
    if a.size != int(np.prod(shape)):
        raise ReconError(f"{what}: range image has {a.size} values for shape {shape}")
    return a.reshape(shape)


def convert_waymo_v2(src: str | Path, out: str | Path, opts: ConvertOptions | None = None,
                     segment: str | None = None) -> Scene:
    """Convert one segment of a Waymo v2 parquet dataset at ``src`` into a recon scene folder ``out``."""
    opts = opts or ConvertOptions()
    opts.check()
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ReconError(f"{src}: Waymo v2 dataset folder not found")
    segs = list_segments(src)
    if segment is None:
        if not segs:
            raise ReconError(f"{src / 'camera_image'}: no <segment>.parquet file (missing Waymo v2 component "
                             "'camera_image')")
        if len(segs) > 1:
            raise ReconError(f"{src}: {len(segs)} segments found, choose one with --segment "
                             f"(e.g. {segs[0]})")
        segment = segs[0]
    paths = {n: _component(src, n, segment, n in REQUIRED) for n in
             ("camera_image", "camera_calibration", "vehicle_pose", "lidar", "lidar_calibration", "lidar_pose",
              "camera_segmentation")}
    if paths["lidar"] is not None and paths["lidar_calibration"] is None:
        raise ReconError(f"{src / 'lidar_calibration' / (segment + '.parquet')}: missing Waymo v2 component "
                         "'lidar_calibration' (needed to convert lidar/)")
    if out.exists() and not opts.overwrite:
        raise ReconError(f"{out}: output folder exists (use --overwrite to replace it)")

    calibs = read_camera_calibs(paths["camera_calibration"])  # type: ignore[arg-type]
    vp = _read(paths["vehicle_pose"], [K_TS, f"{VP}.world_from_vehicle.transform"])  # type: ignore[arg-type]
    ego = {int(ts): transform16(T, f"{paths['vehicle_pose']}: pose at {ts}")
           for ts, T in zip(vp[K_TS], vp[f"{VP}.world_from_vehicle.transform"])}
    keys = _read(paths["camera_image"], [K_TS, K_CAM])  # type: ignore[arg-type]
    all_ts = sorted(set(int(t) for t in keys[K_TS]))
    if not all_ts:
        raise ReconError(f"{paths['camera_image']}: no camera images")
    steps = {all_ts[i]: i for i in opts.frame_range(len(all_ts))}
    missing_pose = [ts for ts in steps if ts not in ego]
    if missing_pose:
        raise ReconError(f"{paths['vehicle_pose']}: no vehicle pose for timestamp {missing_pose[0]}")
    offset = ego[min(steps)][:3, 3].copy()
    has_cam_pose = _has_columns(paths["camera_image"], [f"{CI}.pose.transform"])  # type: ignore[arg-type]

    seg_labels: dict[tuple[int, int], tuple[int, bytes]] = {}
    if paths["camera_segmentation"] is not None:
        t = _read(paths["camera_segmentation"], [K_TS, K_CAM, f"{CS}.panoptic_label_divisor", f"{CS}.panoptic_label"])
        for ts, cam, div, png in zip(t[K_TS], t[K_CAM], t[f"{CS}.panoptic_label_divisor"], t[f"{CS}.panoptic_label"]):
            if int(ts) in steps and png:
                seg_labels[(int(ts), int(cam))] = (int(div), bytes(png))

    where = str(src)
    with atomic_directory(out, overwrite=opts.overwrite) as tmp:
        writer = SceneWriter(tmp, "waymo-v2", opts.name or segment, opts.downscale,
                             holdout_cameras=opts.holdout_cameras)
        builder = WaymoSceneBuilder(writer, calibs, opts, where, offset)
        img_cols = [K_TS, K_CAM, f"{CI}.image"] + ([f"{CI}.pose.transform"] if has_cam_pose else [])
        n_rows = sum(1 for ts, c in zip(keys[K_TS], keys[K_CAM]) if int(ts) in steps and builder.wants(int(c)))
        rows = (r for b in _batches(paths["camera_image"], img_cols) for r in zip(*(b[c] for c in img_cols)))  # type: ignore[arg-type]
        for r in progress(rows, None, "images", opts.progress):
            ts, cam = int(r[0]), int(r[1])
            if ts not in steps or not builder.wants(cam):
                continue
            pose = ego[ts]
            if has_cam_pose and r[3] is not None:
                pose = transform16(r[3], f"{paths['camera_image']}: pose of camera {cam} at {ts}")
            builder.add_image(steps[ts], ts, cam, bytes(r[2]), pose, seg_labels.get((ts, cam)))
        if len(writer.frames) != n_rows:
            raise ReconError(f"{paths['camera_image']}: read {len(writer.frames)} of {n_rows} images")
        if paths["lidar"] is not None:
            _convert_lidar(paths, steps, ego, builder)
        writer.meta.update({"segment": segment, "timestamps_micros": sorted(steps)})
        scene = writer.finish()
    scene.root = out
    return scene


def _convert_lidar(paths: dict[str, Path | None], steps: dict[int, int], ego: dict[int, np.ndarray],
                   builder: WaymoSceneBuilder) -> None:
    lidar_path, pose_path = paths["lidar"], paths["lidar_pose"]
    assert lidar_path is not None and paths["lidar_calibration"] is not None
    lcal = read_laser_calibs(paths["lidar_calibration"])
    keys = _read(lidar_path, [K_TS, K_LASER])
    expected: dict[int, int] = {}
    for ts in keys[K_TS]:
        if int(ts) in steps:
            expected[int(ts)] = expected.get(int(ts), 0) + 1
    pending: dict[int, list[np.ndarray]] = {}
    seen: dict[int, int] = {}
    cols = [K_TS, K_LASER, f"{LI}.range_image_return1.values", f"{LI}.range_image_return1.shape"]
    for b in progress(_batches(lidar_path, cols, batch_size=4), None, "lidar", builder.opts.progress):
        for ts, lid, vals, shape in zip(*(b[c] for c in cols)):
            ts, lid = int(ts), int(lid)
            if ts not in steps:
                continue
            seen[ts] = seen.get(ts, 0) + 1
            if lid not in lcal:
                raise ReconError(f"{paths['lidar_calibration']}: no calibration for laser {lid}")
            what = f"{lidar_path}: laser {lid} at {ts}"
            ri = _range_image(vals, shape, what)
            pixel_pose = None
            if pose_path is not None:
                pixel_pose = _pixel_pose(pose_path, ts, lid)
            pending.setdefault(ts, []).append(laser_points(ri, lcal[lid], ego[ts], pixel_pose))
            if seen[ts] == expected[ts]:
                builder.add_lidar(steps[ts], pending.pop(ts))
    for ts, pts in pending.items():
        builder.add_lidar(steps[ts], pts)


def _pixel_pose(path: Path, ts: int, laser: int) -> np.ndarray | None:
    """The per-cell pose range image of (timestamp, laser) from lidar_pose/, or None when it has none."""
    cols = [K_TS, K_LASER, f"{LP}.range_image_return1.values", f"{LP}.range_image_return1.shape"]
    t = _read(path, cols, filters=[(K_TS, "=", ts), (K_LASER, "=", laser)])
    for vals, shape in zip(t[cols[2]], t[cols[3]]):
        if vals is not None:
            return _range_image(vals, shape, f"{path}: pixel pose of laser {laser} at {ts}")
    return None
