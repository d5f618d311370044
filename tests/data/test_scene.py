"""The scene folder format: round trip, validation errors that name the file, lazy loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recon.data.scene import Camera, Frame, Scene, SceneError, holdout_split
from recon.io.images import write_depth, write_image


def make_scene(root: Path, n: int = 4) -> Scene:
    cam = Camera("front", 8, 6, 10.0, 10.0, 4.0, 3.0)
    frames = []
    for i in range(n):
        img = root / "images" / f"{i:03d}.png"
        write_image(img, np.full((6, 8, 3), i / n, np.float32))
        dep = root / "depth" / f"{i:03d}.npy"
        write_depth(dep, np.full((6, 8), 5.0 + i, np.float32))
        c2w = np.eye(4)
        c2w[2, 3] = float(i)
        frames.append(Frame(f"{i:03d}", cam, 0.1 * i, img, c2w, split="test" if i == 2 else "train", index=i,
                            depth_path=dep))
    scene = Scene(root=root, cameras={"front": cam}, frames=frames, name="tiny", source="test")
    scene.save()
    return scene


def test_round_trip(tmp_path: Path) -> None:
    make_scene(tmp_path)
    s = Scene.load(tmp_path)
    assert [f.id for f in s.train_frames] == ["000", "001", "003"]
    assert [f.id for f in s.test_frames] == ["002"]
    f = s.frame("003")
    assert f.cam2world[2, 3] == 3.0
    assert f.load_image().shape == (6, 8, 3)
    assert float(f.load_depth()[0, 0]) == 8.0
    cam = s.cameras["front"]
    assert cam.focal_length_mm == pytest.approx(10.0 * cam.sensor_width_mm / 8)
    assert "frames: 4 (3 train, 1 test)" in s.summary()
    assert s.fingerprint() == Scene.load(tmp_path).fingerprint()


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(format="other"), "not a recon scene"),
        (lambda d: d["frames"][0].update(camera="back"), "unknown camera 'back'"),
        (lambda d: d["frames"][1].update(cam2world=[[1, 0], [0, 1]]), "cam2world must be a finite 4x4"),
        (lambda d: d["frames"][1].update(cam2world=(np.eye(4) * 2).tolist()), "not orthonormal"),
        (lambda d: d["frames"][0].update(image="images/missing.png"), "does not exist"),
        (lambda d: d["frames"][0].update(split="holdout"), "split must be one of"),
        (lambda d: d["cameras"]["front"].update(fx=-1), "must be positive"),
        (lambda d: d["frames"][1].update(id="000"), "duplicate id"),
        (lambda d: d["frames"][2]["cam2world"][0].__setitem__(3, float("nan")), "cam2world must be a finite"),
    ],
)
def test_validation_errors_name_the_file(tmp_path: Path, mutate, needle: str) -> None:
    make_scene(tmp_path)
    p = tmp_path / "scene.json"
    d = json.loads(p.read_text())
    mutate(d)
    p.write_text(json.dumps(d))
    with pytest.raises(SceneError) as e:
        Scene.load(tmp_path)
    assert str(p) in str(e.value) and needle in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match="scene.json not found"):
        Scene.load(tmp_path)
    (tmp_path / "scene.json").write_text("{not json")
    with pytest.raises(SceneError, match="not valid JSON"):
        Scene.load(tmp_path)


def test_undecodable_image_is_a_clear_error(tmp_path: Path) -> None:
    s = make_scene(tmp_path)
    s.frames[0].image_path.write_bytes(b"\x89PNG garbage")
    with pytest.raises(Exception) as e:
        Scene.load(tmp_path).frames[0].load_image()
    assert "could not be decoded" in str(e.value) and "000.png" in str(e.value)


def test_wrong_image_size_names_file_and_camera(tmp_path: Path) -> None:
    s = make_scene(tmp_path)
    write_image(s.frames[1].image_path, np.zeros((5, 8, 3), np.float32))
    with pytest.raises(SceneError) as e:
        Scene.load(tmp_path).frames[1].load_image()
    assert "001.png" in str(e.value) and "camera 'front' is 8x6" in str(e.value)


def test_holdout_split_every_eighth() -> None:
    sp = holdout_split(24)
    assert sp.count("test") == 3
    assert [i for i, s in enumerate(sp) if s == "test"] == [4, 12, 20]
