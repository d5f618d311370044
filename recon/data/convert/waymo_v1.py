"""Waymo Open Dataset v1 (TFRecord of ``Frame`` protos) -> recon scene, without TensorFlow or protobuf.

SRC is one segment file ``segment-....tfrecord``: records are read with :mod:`recon.data.convert.tfrecord` (both
CRCs verified) and decoded with the wire-format reader :mod:`recon.data.convert.protobuf_wire` using the field
numbers of ``waymo_open_dataset/dataset.proto``:

- Frame: context = 1, timestamp_micros = 2 (int64), pose = 3 (Transform), images = 4, lasers = 5
- Context: name = 1, camera_calibrations = 2, laser_calibrations = 3
- CameraCalibration: name = 1, intrinsic = 2 (repeated double f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3),
  extrinsic = 3, width = 4, height = 5
- LaserCalibration: name = 1, beam_inclinations = 2 (repeated double), beam_inclination_min = 3,
  beam_inclination_max = 4, extrinsic = 5
- Transform: transform = 1 (16 doubles, row major)
- CameraImage: name = 1, image = 2 (JPEG), pose = 3, pose_timestamp = 5, camera_segmentation_label = 10
  (CameraSegmentationLabel: panoptic_label_divisor = 1, panoptic_label = 2 (uint16 PNG))
- Laser: name = 1, ri_return1 = 2, ri_return2 = 3; RangeImage: range_image_compressed = 2,
  range_image_pose_compressed = 4 (zlib-compressed MatrixFloat: data = 1 packed float, shape = 2 {dims = 1})

Each record is one timestep; --start/--end select records. Geometry, lens defaults (aperture not recorded: assumed),
distortion, LiDAR and sky handling: see :mod:`recon.data.convert.waymo_frames`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recon.data.convert import protobuf_wire as pw
from recon.data.convert.common import ConvertOptions, SceneWriter, progress
from recon.data.convert.tfrecord import index_records, read_record
from recon.data.convert.waymo_frames import CameraCalib, LaserCalib, WaymoSceneBuilder, laser_points, transform16
from recon.data.scene import Scene
from recon.errors import ReconError


@dataclass
class V1Image:
    name: int
    jpeg: bytes
    pose: np.ndarray | None
    seg: tuple[int, bytes] | None


@dataclass
class V1Laser:
    name: int
    range_image: bytes  # zlib MatrixFloat, may be empty
    pixel_pose: bytes


@dataclass
class V1Frame:
    """The parts of a Waymo ``Frame`` proto the converter uses."""

    context_name: str
    timestamp_micros: int
    pose: np.ndarray
    camera_calibs: dict[int, CameraCalib] = field(default_factory=dict)
    laser_calibs: dict[int, LaserCalib] = field(default_factory=dict)
    images: list[V1Image] = field(default_factory=list)
    lasers: list[V1Laser] = field(default_factory=list)


def _transform(m: pw.Message | None, what: str) -> np.ndarray:
    if m is None:
        raise ReconError(f"{what}: transform missing")
    return transform16(m.doubles(1), what)


def parse_frame(data: bytes, what: str) -> V1Frame:
    """Decode one ``Frame`` record; ``what`` names the file and record in errors."""
    try:
        fr = pw.decode(data)
        ctx = fr.message(1)
        if fr.message(3) is None:
            raise ReconError(f"{what}: Frame has no pose (not a Waymo Frame record?)")
        out = V1Frame(ctx.string(1) if ctx else "", fr.int(2), _transform(fr.message(3), f"{what}: frame pose"))
        if ctx is not None:
            for c in ctx.messages(2):
                cid = c.int(1)
                intr = c.doubles(2)
                if intr.size < 4:
                    raise ReconError(f"{what}: camera {cid} calibration has {intr.size} intrinsic values")
                intr = np.pad(intr, (0, max(0, 9 - intr.size)))
                out.camera_calibs[cid] = CameraCalib(cid, intr, _transform(c.message(3), f"{what}: camera {cid} "
                                                                           "extrinsic"), c.int(4), c.int(5))
            for lc in ctx.messages(3):
                lid = lc.int(1)
                incl = lc.doubles(2)
                out.laser_calibs[lid] = LaserCalib(lid, incl if incl.size else None, lc.double(3), lc.double(4),
                                                   _transform(lc.message(5), f"{what}: laser {lid} extrinsic"))
        for im in fr.messages(4):
            seg = None
            sl = im.message(10)
            if sl is not None and sl.bytes(2):
                seg = (sl.int(1), sl.bytes(2))
            pose = im.message(3)
            out.images.append(V1Image(im.int(1), im.bytes(2), None if pose is None else
                                      _transform(pose, f"{what}: image pose"), seg))
        for la in fr.messages(5):
            r1 = la.message(2)
            out.lasers.append(V1Laser(la.int(1), r1.bytes(2) if r1 else b"", r1.bytes(4) if r1 else b""))
        return out
    except pw.WireError as exc:
        raise ReconError(f"{what}: malformed Frame proto ({exc})") from None


def decode_matrix_float(blob: bytes, what: str) -> np.ndarray:
    """zlib-compressed ``MatrixFloat`` -> float32 array of its shape."""
    try:
        m = pw.decode(zlib.decompress(blob))
    except (zlib.error, pw.WireError) as exc:
        raise ReconError(f"{what}: bad compressed MatrixFloat ({exc})") from None
    data = m.floats(1)
    shape_msg = m.message(2)
    dims = tuple(int(d) for d in shape_msg.ints(1)) if shape_msg else ()
    if not dims or int(np.prod(dims)) != data.size:
        raise ReconError(f"{what}: MatrixFloat has {data.size} values for shape {dims}")
    return data.reshape(dims)


def convert_waymo_v1(src: str | Path, out: str | Path, opts: ConvertOptions | None = None) -> Scene:
    """Convert one Waymo v1 TFRecord segment ``src`` into a recon scene folder ``out``."""
    from recon.io.atomic import atomic_directory

    opts = opts or ConvertOptions()
    opts.check()
    src, out = Path(src), Path(out)
    if src.is_dir():
        files = sorted(src.glob("*.tfrecord"))
        if len(files) != 1:
            raise ReconError(f"{src}: expected one .tfrecord segment file in the folder, found {len(files)} "
                             "(pass the file itself)")
        src = files[0]
    index = index_records(src)  # checks framing and length CRCs of the whole file before any work
    if not index:
        raise ReconError(f"{src}: TFRecord file has no records")
    if out.exists() and not opts.overwrite:
        raise ReconError(f"{out}: output folder exists (use --overwrite to replace it)")
    sel = opts.frame_range(len(index))
    with atomic_directory(out, overwrite=opts.overwrite) as tmp, open(src, "rb") as f:
        builder: WaymoSceneBuilder | None = None
        writer: SceneWriter | None = None
        for i in progress(sel, len(sel), "frames", opts.progress):
            what = f"{src} record {i}"
            frame = parse_frame(read_record(f, *index[i], src, i), what)
            if builder is None:
                if not frame.camera_calibs:
                    raise ReconError(f"{what}: Frame context has no camera calibrations")
                writer = SceneWriter(tmp, "waymo-v1", opts.name or frame.context_name or src.stem, opts.downscale,
                                     holdout_cameras=opts.holdout_cameras)
                builder = WaymoSceneBuilder(writer, frame.camera_calibs, opts, str(src), frame.pose[:3, 3].copy())
                laser_calibs = frame.laser_calibs
                writer.meta["segment"] = frame.context_name
            for im in frame.images:
                if builder.wants(im.name):
                    pose = im.pose if im.pose is not None else frame.pose
                    builder.add_image(i, frame.timestamp_micros, im.name, im.jpeg, pose, im.seg)
            pts = []
            for la in frame.lasers:
                if not la.range_image:
                    continue
                if la.name not in laser_calibs:
                    raise ReconError(f"{what}: laser {la.name} has no calibration in the context")
                ri = decode_matrix_float(la.range_image, f"{what} laser {la.name} range image")
                pp = decode_matrix_float(la.pixel_pose, f"{what} laser {la.name} pixel pose") if la.pixel_pose \
                    else None
                pts.append(laser_points(ri, laser_calibs[la.name], frame.pose, pp))
            builder.add_lidar(i, pts)
        assert writer is not None
        scene = writer.finish()
    scene.root = out
    return scene
