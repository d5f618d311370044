"""``make_street``: render the synthetic street into a recon scene folder (atomically).

Files (see recon/data/scene.py)::

    images/<cam>_<i>.png           all-in-focus pinhole RGB (antialiased: mean of sub-pixel samples)
    depth/<cam>_<i>.npy            exact float32 z-depth in metres through the pixel centres, 0 = sky
    masks/sky/<cam>_<i>.png        255 = sky (exactly where depth is 0)
    lidar/<i>.npy                  float32 (N, 3) world-frame sweep of time step i, shared by its frames
    defocus/front_<i>_f<N>_d<D>.png  true finite-aperture images (thin lens, averaged lens samples)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from recon.data.scene import Camera, DefocusImage, Frame, Scene, holdout_split
from recon.data.synth.config import SynthConfig
from recon.data.synth.lens import render_defocus, render_depth, render_pinhole, subpixel_offsets
from recon.data.synth.lidar import ELEVATION_DEG, sweep
from recon.data.synth.raycast import Tracer
from recon.data.synth.rig import LIDAR_MOUNT, camera_to_ego, ego_poses, lidar_origin
from recon.data.synth.textures import MipAtlas, build_textures
from recon.data.synth.world import build_world
from recon.errors import ReconError
from recon.io.atomic import atomic_directory, atomic_save_npy
from recon.io.images import write_depth, write_image, write_mask
from recon.optics.thin_lens import aperture_diameter_m

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called after each rendered unit (stage 'frames' or 'defocus')."""

WORLD_FRAME = ("metres; z up, ground at z = 0; x along the street (direction of travel), y to the left; "
               "cameras in OpenCV axes (x right, y down, z forward), cam2world 4x4")


def defocus_frame_indices(cfg: SynthConfig) -> list[int]:
    """Time steps of the front camera that get finite-aperture images: spread along the trajectory, train split."""
    if cfg.defocus_frames <= 0:
        return []
    split = holdout_split(cfg.n_frames, cfg.test_every)
    train = [i for i in range(cfg.n_frames) if split[i] == "train"]
    if cfg.defocus_frames >= len(train):
        return train
    picks: list[int] = []
    for k in range(cfg.defocus_frames):
        target = (k + 0.5) * cfg.n_frames / cfg.defocus_frames
        best = min((i for i in train if i not in picks), key=lambda i: (abs(i - target), i))
        picks.append(best)
    return sorted(picks)


def _fmt(x: float) -> str:
    return f"{x:g}".replace(".", "p")


def make_street(cfg: SynthConfig, out: Path, overwrite: bool = False, progress: Progress | None = None) -> Scene:
    """Generate the synthetic street scene described by ``cfg`` into the folder ``out``; return it loaded.

    Deterministic: the same ``cfg`` gives byte-identical files. Built in a temporary sibling folder and moved
    into place only when complete. An existing ``out`` without ``overwrite`` raises :class:`ReconError`.
    """
    cfg.validate()
    out = Path(out)
    if out.exists() and not overwrite:
        raise ReconError(f"{out}: already exists (pass --overwrite to replace it)")
    if out.exists() and not out.is_dir():
        raise ReconError(f"{out}: exists and is not a folder")

    textures = build_textures(cfg.seed)
    world = build_world(cfg, textures)
    tracer = Tracer(world.mesh, MipAtlas.from_textures(textures), world.sun_dir)
    poses = ego_poses(cfg)
    fx = cfg.fx
    cameras = {name: Camera(name, cfg.width, cfg.height, fx, fx, cfg.width / 2.0, cfg.height / 2.0,
                            sensor_width_mm=cfg.sensor_width_mm, f_number=cfg.camera_f_number,
                            focus_distance_m=cfg.camera_focus_m)
               for name in cfg.cameras}
    split = holdout_split(cfg.n_frames, cfg.test_every)
    dof_idx = defocus_frame_indices(cfg)
    n_dof = len(dof_idx) * len(cfg.defocus_f_numbers) * len(cfg.defocus_focus_m)
    total = cfg.n_frames * len(cfg.cameras)

    try:
        with atomic_directory(out, overwrite) as tmp:
            frames: list[Frame] = []
            for i, pose in enumerate(poses):
                yaw = math.atan2(pose[1, 0], pose[0, 0])
                pts = sweep(tracer, lidar_origin(pose), yaw, cfg.lidar_beams, cfg.lidar_azimuth_steps,
                            cfg.lidar_range_m, cfg.lidar_noise_m, np.random.default_rng([cfg.seed, i, 1]))
                lidar_path = atomic_save_npy(tmp / "lidar" / f"{i:04d}.npy", pts)
                for c, name in enumerate(cfg.cameras):
                    c2w = pose @ camera_to_ego(name)
                    fid = f"{name}_{i:04d}"
                    rgb = render_pinhole(tracer, cameras[name], c2w, cfg.antialias)
                    depth = render_depth(tracer, cameras[name], c2w)
                    frames.append(Frame(
                        id=fid, camera=cameras[name], timestamp=i / cfg.frame_rate_hz,
                        image_path=write_image(tmp / "images" / f"{fid}.png", rgb), cam2world=c2w,
                        split=split[i], index=i, depth_path=write_depth(tmp / "depth" / f"{fid}.npy", depth),
                        lidar_path=lidar_path, sky_mask_path=write_mask(tmp / "masks" / "sky" / f"{fid}.png",
                                                                        depth <= 0),
                    ))
                    if progress:
                        progress("frames", i * len(cfg.cameras) + c + 1, total)

            defocus: list[DefocusImage] = []
            front = cameras.get("front")
            done = 0
            for i in dof_idx:
                assert front is not None  # validate() requires the front camera for finite-aperture images
                c2w = poses[i] @ camera_to_ego("front")
                fid = f"front_{i:04d}"
                for n_f in cfg.defocus_f_numbers:
                    aperture = aperture_diameter_m(front.focal_length_mm, n_f)  # focal length = fx * pixel pitch
                    for d_f in cfg.defocus_focus_m:
                        img = render_defocus(tracer, front, c2w, aperture, d_f, cfg.lens_samples, cfg.antialias)
                        path = write_image(tmp / "defocus" / f"{fid}_f{_fmt(n_f)}_d{_fmt(d_f)}.png", img)
                        defocus.append(DefocusImage(fid, float(n_f), float(d_f), path, cfg.lens_samples))
                        done += 1
                        if progress:
                            progress("defocus", done, n_dof)

            scene = Scene(root=tmp, cameras=cameras, frames=frames, name=f"synth-{cfg.layout}-seed{cfg.seed}",
                          source="synthetic-street", defocus=defocus, meta=_meta(cfg, world.sun_dir, world.n_triangles))
            scene.save()
    except FileExistsError:
        raise ReconError(f"{out}: already exists (pass --overwrite to replace it)") from None
    return Scene.load(out)


def _meta(cfg: SynthConfig, sun_dir: np.ndarray, n_triangles: int) -> dict:
    cfg_json = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    return {
        "training_images": "pinhole",
        "world_frame": WORLD_FRAME,
        "generator": "recon.data.synth",
        "config": cfg_json,
        "sun_direction_world": [round(float(x), 6) for x in sun_dir],
        "triangles": n_triangles,
        "lidar": {"mount_ego_m": list(LIDAR_MOUNT), "elevation_deg": list(ELEVATION_DEG),
                  "beams": cfg.lidar_beams, "azimuth_steps": cfg.lidar_azimuth_steps,
                  "range_m": cfg.lidar_range_m, "noise_sigma_m": cfg.lidar_noise_m, "frame": "world"},
        "depth": "z-depth in metres through pixel centres (u + 0.5, v + 0.5); 0 = sky",
        "images": {"antialias_subpixel_offsets": subpixel_offsets(cfg.antialias).tolist(),
                   "colour": "rendered values written directly (linear, no gamma); 8-bit PNG"},
        "defocus": {"model": "thin lens: mean of pinhole renders over lens positions on the aperture disk, "
                             "camera shifted in its x-y plane, principal point shifted by f*a/d_f",
                    "lens_pattern": "vogel", "lens_samples": cfg.lens_samples,
                    "subpixel_offsets": "cycled through the pinhole pattern (same sampling as the pinhole image)",
                    "aperture_diameter_m": "focal_length_mm / 1000 / f_number",
                    "blur_diameter_px": "fx * A * |1/d - 1/d_f|"},
    }
