"""Decode every file a scene names, up front, so a corrupt test image or a truncated LiDAR sweep stops the command
before training starts rather than after (``recon data info --deep``, and ``recon train`` before it loads views).

Each file is read with the same loader training and evaluation use, so what passes here loads there; the first
bad file raises its one-line :class:`recon.data.scene.SceneError` / :class:`recon.errors.ReconError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from recon.data.scene import FORMAT_NAME, Scene, load_points
from recon.errors import ReconError


@dataclass
class CheckReport:
    """How many files of each kind decoded."""

    images: int = 0
    depth_maps: int = 0
    sky_masks: int = 0
    lidar_sweeps: int = 0
    points3d: int = 0
    defocus_images: int = 0

    def summary(self) -> str:
        parts = [f"{self.images} images", f"{self.depth_maps} depth maps", f"{self.sky_masks} sky masks",
                 f"{self.lidar_sweeps} LiDAR sweeps"]
        if self.points3d:
            parts.append("SfM points")
        if self.defocus_images:
            parts.append(f"{self.defocus_images} finite-aperture images")
        return "decoded " + ", ".join(parts) + ": all readable"


def check_scene_files(scene: Scene) -> CheckReport:
    """Decode every image, depth map, mask, LiDAR sweep and point file of ``scene`` once; raise on the first bad one."""
    rep = CheckReport()
    for f in scene.frames:
        f.load_image()  # decodes and checks the size against the camera
        rep.images += 1
        if f.load_depth() is not None:
            rep.depth_maps += 1
        if f.load_sky_mask() is not None:
            rep.sky_masks += 1
    for path in scene.lidar_sweeps():
        load_points(path)
        rep.lidar_sweeps += 1
    if scene.points_path is not None:
        scene.load_sfm_points()
        rep.points3d = 1
    for d in scene.defocus:
        d.load_image()
        rep.defocus_images += 1
    return rep


def is_scene_folder(folder: Path) -> bool:
    """True when ``folder/scene.json`` declares a recon scene (its files are not checked)."""
    try:
        raw = json.loads((folder / "scene.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and raw.get("format") == FORMAT_NAME


def check_replaceable_scene(out: Path) -> None:
    """Refuse to ``--overwrite`` an existing, non-empty folder that is not a recon scene (nothing is deleted here)."""
    if out.is_dir() and any(out.iterdir()) and not is_scene_folder(out):
        raise ReconError(f"{out}: not a recon scene folder (no scene.json); refusing to --overwrite it")
