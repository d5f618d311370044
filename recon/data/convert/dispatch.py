"""Which converter handles which source: the arguments of a conversion and :func:`run`, which dispatches them.

Used by ``recon data convert`` (its command line is :class:`ConvertArgs`) and by ``recon batch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from recon.data.convert.common import ConvertOptions, LensOptions
from recon.errors import ReconError

Source = Literal["waymo-v2", "waymo-v1", "colmap", "kitti", "kitti-raw", "drivestudio"]


@dataclass
class ConvertArgs:
    """Convert a dataset to a recon scene folder, written atomically (no half-written folder on error).

    Sources (--from):
      waymo-v2     Waymo Open Dataset v2 parquet root: camera_image/, camera_calibration/, vehicle_pose/ (required),
                   lidar/ + lidar_calibration/, lidar_pose/, camera_segmentation/ (optional), <segment>.parquet each.
                   Poses recentred on the first ego position; sky masks from panoptic labels; images undistorted.
      waymo-v1     one Waymo v1 segment .tfrecord of Frame protos (read without TensorFlow, CRCs verified).
      colmap       COLMAP project: sparse/0 (or sparse/) model + images/; pinhole models kept, SIMPLE_RADIAL,
                   RADIAL, OPENCV undistorted, fisheye models refused; points3D -> points3d.npy.
      kitti        KITTI odometry sequence: calib.txt (P0..P3, Tr), poses.txt, image_0.. (or image_l/image_r),
                   velodyne/ (optional, with a Tr line) -> world-frame LiDAR.
      kitti-raw    KITTI raw drive folder (..._sync): image_02, image_03 (cam2, cam3), oxts poses (the devkit's
                   recipe), velodyne_points -> world-frame LiDAR; calib files from the parent date folder or --calib.
      drivestudio  drivestudio processed Waymo scene: images/, ego_pose/, extrinsics/, intrinsics/, lidar/,
                   sky_masks/.

    Lens: no source records the aperture; Waymo/COLMAP/drivestudio assume a 7.2 mm sensor, f/2.0, focus 10 m,
    KITTI uses its sensor's 4.65 um pixel pitch; override with --f-number, --focus-m, --sensor-width-mm.
    """

    src: Annotated[Path, tyro.conf.Positional]
    """dataset folder or file to convert (see the sources above)"""
    from_: Annotated[Source, tyro.conf.arg(name="from")]
    """source format"""
    out: Path
    """output scene folder"""
    cameras: tuple[str, ...] = ()
    """camera names to keep (Waymo: FRONT FRONT_LEFT FRONT_RIGHT SIDE_LEFT SIDE_RIGHT; KITTI: cam0..cam3;
    COLMAP: cam<id>); default all"""
    start: int = 0
    """first source frame (timestep) index to convert"""
    end: int | None = None
    """stop before this source frame index (default: the end)"""
    downscale: float = 1.0
    """divide the image size by this factor (intrinsics follow)"""
    overwrite: bool = False
    """replace an existing output folder"""
    undistort: bool = True
    """resample distorted images to the pinhole model (else ignore the distortion coefficients)"""
    f_number: float | None = None
    """lens f-number (default: the source's documented assumption)"""
    focus_m: float | None = None
    """focus distance in metres (default: the source's documented assumption)"""
    sensor_width_mm: float | None = None
    """sensor width in millimetres (default: the source's documented value or assumption)"""
    holdout_camera: tuple[str, ...] = ()
    """cameras held out entirely for testing (novel views off the training trajectory, e.g. KITTI's cam3), besides
    every 8th frame of every camera; a held-out camera's frame keeps LiDAR truth only where no training frame
    uses the same sweep"""
    calib: Path | None = None
    """kitti-raw: folder with calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt (default: the
    drive folder's parent)"""
    segment: str | None = None
    """waymo-v2: segment name when the folder holds several"""
    images: Path | None = None
    """colmap: image folder (default SRC/images)"""
    extrinsic_axes: Literal["waymo", "opencv"] = "waymo"
    """drivestudio: axes of extrinsics/*.txt (drivestudio's Waymo preprocessing saves Waymo camera axes)"""
    name: str | None = None
    """scene name (default: the segment or folder name)"""


def run(args: ConvertArgs) -> Path:
    """Run a conversion described by ``args``; returns the output folder."""
    if args.overwrite:
        from recon.data.check import check_replaceable_scene

        check_replaceable_scene(args.out)  # only a recon scene is replaced (and only once the new one is complete)
    opts = ConvertOptions(cameras=tuple(args.cameras), start=args.start, end=args.end, downscale=args.downscale,
                          overwrite=args.overwrite, undistort=args.undistort, name=args.name,
                          holdout_cameras=tuple(args.holdout_camera),
                          lens=LensOptions(args.f_number, args.focus_m, args.sensor_width_mm))
    if args.from_ == "waymo-v2":
        from recon.data.convert.waymo_v2 import convert_waymo_v2

        scene = convert_waymo_v2(args.src, args.out, opts, segment=args.segment)
    elif args.from_ == "waymo-v1":
        from recon.data.convert.waymo_v1 import convert_waymo_v1

        scene = convert_waymo_v1(args.src, args.out, opts)
    elif args.from_ == "colmap":
        from recon.data.convert.colmap import convert_colmap

        scene = convert_colmap(args.src, args.out, opts, images=args.images)
    elif args.from_ == "kitti":
        from recon.data.convert.kitti import convert_kitti

        scene = convert_kitti(args.src, args.out, opts)
    elif args.from_ == "kitti-raw":
        from recon.data.convert.kitti_raw import convert_kitti_raw

        scene = convert_kitti_raw(args.src, args.out, opts, calib_dir=args.calib)
    elif args.from_ == "drivestudio":
        from recon.data.convert.drivestudio import convert_drivestudio

        scene = convert_drivestudio(args.src, args.out, opts, extrinsic_axes=args.extrinsic_axes)
    else:  # pragma: no cover - tyro restricts the choice
        raise ReconError(f"unknown source {args.from_!r}")
    from recon.data.scene import Scene

    print(Scene.load(args.out).summary())
    return scene.root
