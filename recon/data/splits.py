"""What training may see of a scene: the held-out frames' LiDAR never reaches it.

A test frame's LiDAR sweep is its depth truth (``recon eval`` scores rendered depth against it), so training must
not use it in any form: not for seeding the Gaussians, not as a depth prior (DoF), not in a LiDAR depth loss.
:func:`training_scene` returns the scene as training sees it; every training component reads LiDAR through it.
"""

from __future__ import annotations

import dataclasses

from recon.data.scene import Scene


def held_out_sweeps(scene: Scene) -> set:
    """LiDAR files named by any frame outside the training split (the depth truth of the held-out views)."""
    return {f.lidar_path for f in scene.frames if f.split != "train" and f.lidar_path is not None}


def training_scene(scene: Scene, use_lidar: bool = True) -> Scene:
    """A copy of ``scene`` whose frames carry LiDAR only where training may use it.

    Kept: the sweep of a training frame that no held-out frame names. Dropped: every held-out frame's sweep, a
    sweep a training frame shares with a held-out one (converters avoid that, a hand-made scene may not), and
    with ``use_lidar=False`` every sweep (the camera-only regime: LiDAR serves for scoring alone). Images, poses,
    splits and the fingerprint are unchanged, so a run's checkpoint still matches the scene on disk.
    """
    banned = held_out_sweeps(scene)
    frames = []
    for f in scene.frames:
        keep = use_lidar and f.split == "train" and f.lidar_path is not None and f.lidar_path not in banned
        frames.append(f if keep or f.lidar_path is None else dataclasses.replace(f, lidar_path=None))
    return dataclasses.replace(scene, frames=frames)
