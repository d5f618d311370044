"""COLMAP sparse model -> recon scene (read with ``pycolmap.Reconstruction``).

SRC is a COLMAP project folder: the model is ``SRC/sparse/0``, ``SRC/sparse`` or ``SRC`` itself (cameras.bin/txt,
images.bin/txt, points3D.bin/txt) and the images are under ``SRC/images`` (or ``--images``).

- Poses: COLMAP stores world-to-camera (``cam_from_world``) in OpenCV axes; recon stores its inverse.
- Cameras: one recon camera per COLMAP camera, named ``cam<camera_id>``. PINHOLE and SIMPLE_PINHOLE are taken as
  they are; SIMPLE_RADIAL, RADIAL and OPENCV are undistorted (images resampled to the pinhole camera with the
  same K, :func:`common.undistort_image`); every other model (fisheye ones: OPENCV_FISHEYE, SIMPLE_RADIAL_FISHEYE,
  RADIAL_FISHEYE, THIN_PRISM_FISHEYE, FOV; FULL_OPENCV ...) is refused with a ReconError. COLMAP's pixel
  convention (centre of the top-left pixel at (0.5, 0.5)) is recon's: cx, cy are kept.
- Split: photo collections usually have one COLMAP camera per image, so the every-8th hold-out runs over all
  images sorted by name rather than per camera.
- Points: points3D -> ``points3d.npy`` (xyz, rgb / 255).
- Lens: COLMAP has none: recon.data.scene.DEFAULT_* (7.2 mm sensor, f/2.0, focus 10 m) unless overridden.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recon.data.convert.colmap_bin import check_binary_model
from recon.data.convert.common import ConvertOptions, SceneWriter, make_camera, progress, read_image_u8, undistort_image
from recon.data.scene import Scene
from recon.errors import ReconError
from recon.io.atomic import atomic_directory

PINHOLE_MODELS = ("PINHOLE", "SIMPLE_PINHOLE")
UNDISTORTABLE = ("SIMPLE_RADIAL", "RADIAL", "OPENCV")


def find_model(src: Path) -> Path:
    """The folder holding the sparse model under ``src``."""
    for cand in (src / "sparse" / "0", src / "sparse", src):
        if any((cand / f"cameras.{ext}").is_file() for ext in ("bin", "txt")):
            return cand
    raise ReconError(f"{src}: no COLMAP sparse model (cameras.bin/txt) in sparse/0, sparse or the folder itself")


def camera_params(model: str, p: np.ndarray, where: str) -> tuple[float, float, float, float, list[float]]:
    """(fx, fy, cx, cy, [k1, k2, p1, p2, k3]) of a COLMAP camera, or a ReconError for unsupported models."""
    if model == "PINHOLE":
        return p[0], p[1], p[2], p[3], [0.0] * 5
    if model == "SIMPLE_PINHOLE":
        return p[0], p[0], p[1], p[2], [0.0] * 5
    if model == "SIMPLE_RADIAL":
        return p[0], p[0], p[1], p[2], [p[3], 0.0, 0.0, 0.0, 0.0]
    if model == "RADIAL":
        return p[0], p[0], p[1], p[2], [p[3], p[4], 0.0, 0.0, 0.0]
    if model == "OPENCV":
        return p[0], p[1], p[2], p[3], [p[4], p[5], p[6], p[7], 0.0]
    kind = "fisheye camera model" if "FISHEYE" in model or model == "FOV" else "camera model"
    raise ReconError(f"{where}: unsupported {kind} {model} (recon needs pinhole images: supported "
                     f"{', '.join(PINHOLE_MODELS + UNDISTORTABLE)}; undistort with `colmap image_undistorter`)")


def convert_colmap(src: str | Path, out: str | Path, opts: ConvertOptions | None = None,
                   images: str | Path | None = None) -> Scene:
    """Convert a COLMAP project ``src`` into a recon scene folder ``out``."""
    import pycolmap

    opts = opts or ConvertOptions()
    opts.check()
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ReconError(f"{src}: COLMAP folder not found")
    model_dir = find_model(src)
    img_dir = Path(images) if images is not None else src / "images"
    if not img_dir.is_dir():
        raise ReconError(f"{img_dir}: image folder not found (pass --images)")
    check_binary_model(model_dir)  # a truncated .bin is named here, not read as zeros by pycolmap
    try:
        rec = pycolmap.Reconstruction(str(model_dir))
    except Exception as exc:
        raise ReconError(f"{model_dir}: COLMAP model could not be read ({type(exc).__name__}: {exc})") from None
    cam_info = {}
    for cid, cam in rec.cameras.items():
        model = cam.model.name if hasattr(cam.model, "name") else str(cam.model)
        cam_info[cid] = (model, camera_params(model, np.asarray(cam.params, float), f"{model_dir}: camera {cid}"),
                         int(cam.width), int(cam.height))
    imgs = sorted((im for im in rec.images.values() if im.has_pose), key=lambda im: im.name)
    if not imgs:
        raise ReconError(f"{model_dir}: the model has no registered images")
    names = [f"cam{cid}" for cid in sorted(cam_info)]
    keep = set(opts.select_cameras(names, model_dir))
    imgs = [imgs[i] for i in opts.frame_range(len(imgs)) if f"cam{imgs[i].camera_id}" in keep]
    if out.exists() and not opts.overwrite:
        raise ReconError(f"{out}: output folder exists (use --overwrite to replace it)")

    with atomic_directory(out, overwrite=opts.overwrite) as tmp:
        writer = SceneWriter(tmp, "colmap", opts.name or src.name, opts.downscale,
                             holdout_cameras=opts.holdout_cameras)
        for cid, (_model, (fx, fy, cx, cy, _dist), w, h) in cam_info.items():
            writer.add_camera(make_camera(f"cam{cid}", w, h, fx, fy, cx, cy, opts.lens, what=f"{model_dir}: camera "
                                          f"{cid}"))
        for i, im in enumerate(progress(imgs, len(imgs), "images", opts.progress)):
            model, (fx, fy, cx, cy, dist), w, h = cam_info[im.camera_id]
            path = img_dir / im.name
            img = read_image_u8(path)
            if img.shape[:2] != (h, w):
                raise ReconError(f"{path}: image is {img.shape[1]}x{img.shape[0]} but COLMAP camera "
                                 f"{im.camera_id} is {w}x{h}")
            if model in UNDISTORTABLE and any(dist):
                if not opts.undistort:
                    writer.meta["distortion_ignored"] = True
                else:
                    img = undistort_image(img, fx, fy, cx, cy, *dist)
            w2c = np.eye(4)
            w2c[:3, :4] = np.asarray(im.cam_from_world().matrix(), float)
            fid = f"{i:05d}_{Path(im.name).stem}"
            img_path = writer.write_image(fid, img, f"cam{im.camera_id}")
            writer.add_frame(fid, f"cam{im.camera_id}", float(i), i, img_path, np.linalg.inv(w2c))
        if rec.points3D:
            pts = [rec.points3D[k] for k in sorted(rec.points3D)]  # by point id: deterministic
            xyz = np.array([p.xyz for p in pts], np.float64)
            rgb = np.array([p.color for p in pts], np.float64) / 255.0
            writer.write_points3d(xyz, rgb)
        writer.meta.update({"colmap_model": str(model_dir), "lens_note": "COLMAP records no lens: values assumed"})
        scene = writer.finish(split_groups=[sorted(writer.frames, key=lambda f: f.index)])
    scene.root = out
    return scene
