"""Helpers for the data-safety tests: tiny scenes and runs, file hashes, and the CLI's stderr."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

# a few iterations on a tiny scene, checkpoints at 2 and 4, no evaluation
TINY_TRAIN = ["--iters", "4", "--checkpoint-every", "2", "--init.max-points", "800", "--init.far-points", "200",
              "--no-eval-at-end", "--threads", "1"]


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path (the lock file, which only holds a pid, excluded)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".recon.lock"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_tiny_scene(out: Path, seed: int = 1) -> Path:
    """A 64x40 synthetic street, 3 cameras x 9 frames (a second or two to generate)."""
    from recon.data.synth import SynthConfig, make_street

    make_street(SynthConfig(seed=seed, width=64, height=40, n_frames=9, defocus_frames=0), out)
    return out


def train_tiny_run(scene: Path, out: Path) -> Path:
    """A finished tiny run of ``scene`` in ``out`` (checkpoints at 2 and 4, metrics.jsonl, config.json), trained
    through the CLI; copy it before changing it."""
    from recon.cli import main

    assert main(["train", "--data", str(scene), "--out", str(out), *TINY_TRAIN]) == 0
    return out


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def recon(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``recon ARGS`` in this process; (exit status, stderr)."""
    from recon.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def error_line(err: str) -> str:
    """The one ``error:`` line of stderr (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def truncate(path: Path) -> None:
    """Cut a file to half its size, as an interrupted copy would."""
    b = path.read_bytes()
    path.write_bytes(b[: len(b) // 2])


def make_micro_scene(root: Path, n: int = 4) -> Path:
    """An 8x6 scene of ``n`` frames naming one file of every kind (image, depth, LiDAR, sky mask, SfM points,
    finite-aperture image): milliseconds to write and to decode, for input-validation tests."""
    import numpy as np

    from recon.data.scene import Camera, DefocusImage, Frame, Scene
    from recon.io.atomic import atomic_save_npy
    from recon.io.images import write_depth, write_image, write_mask

    rng = np.random.default_rng(0)
    cam = Camera("front", 8, 6, 10.0, 10.0, 4.0, 3.0)
    frames = []
    for i in range(n):
        img = write_image(root / "images" / f"{i:03d}.png", rng.random((6, 8, 3)).astype(np.float32))
        dep = write_depth(root / "depth" / f"{i:03d}.npy", np.full((6, 8), 5.0 + i, np.float32))
        sky = write_mask(root / "masks" / "sky" / f"{i:03d}.png", np.zeros((6, 8), bool))
        lid = atomic_save_npy(root / "lidar" / f"{i:03d}.npy", rng.uniform(-5, 5, (50, 3)).astype(np.float32))
        c2w = np.eye(4)
        c2w[2, 3] = 0.5 * i
        frames.append(Frame(f"{i:03d}", cam, 0.1 * i, img, c2w, split="test" if i == 2 else "train", index=i,
                            depth_path=dep, lidar_path=lid, sky_mask_path=sky))
    pts = atomic_save_npy(root / "points3d.npy", rng.uniform(0, 1, (30, 6)).astype(np.float32))
    dfi = write_image(root / "defocus" / "000_f2.png", rng.random((6, 8, 3)).astype(np.float32))
    Scene(root=root, cameras={"front": cam}, frames=frames, name="micro", source="test", points_path=pts,
          defocus=[DefocusImage("000", 2.0, 3.0, dfi, 16)], meta={"note": "micro"}).save()
    return root
