"""Scene data is checked before any work: `recon data info --deep` and `recon train` decode every file up front,
a truncated LiDAR sweep is one line, and `recon data synth --overwrite` replaces only a recon scene, keeping the old
one if generation fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.safety import TINY_TRAIN, copy_tree, error_line, make_tiny_scene, recon, tree_hashes, truncate  # noqa: E402


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_scene(tmp_path_factory.mktemp("safety_data") / "street")


def _frame_file(scene_dir: Path, key: str, split: str = "test") -> Path:
    frames = json.loads((scene_dir / "scene.json").read_text())["frames"]
    return scene_dir / next(f[key] for f in frames if f["split"] == split)


def test_info_deep_decodes_a_good_scene(scene: Path, capsys) -> None:
    from recon.cli import main

    assert main(["data", "info", str(scene), "--deep"]) == 0
    out = capsys.readouterr().out
    assert "decoded 27 images, 27 depth maps, 27 sky masks, 9 LiDAR sweeps: all readable" in out


@pytest.mark.parametrize(("key", "problem"), [
    ("image", "image could not be decoded (OSError)"),
    ("depth", "depth map could not be read (ValueError)"),
    ("sky_mask", "mask could not be decoded (OSError)"),
    ("lidar", "point file could not be read (ValueError)"),
])
def test_info_deep_finds_a_truncated_file(key: str, problem: str, scene: Path, tmp_path: Path, capsys) -> None:
    s = copy_tree(scene, tmp_path / "s")
    victim = _frame_file(s, key)
    truncate(victim)
    rc, err = recon(capsys, "data", "info", s)
    assert rc == 0 and err == ""  # the quick check only looks for the files
    rc, err = recon(capsys, "data", "info", s, "--deep")
    assert rc == 2 and err == f"error: {victim}: {problem}\n"


def test_train_finds_a_corrupt_test_image_before_training(scene: Path, tmp_path: Path, capsys) -> None:
    s = copy_tree(scene, tmp_path / "s")
    victim = _frame_file(s, "image", split="test")
    truncate(victim)
    before = tree_hashes(s)
    out = tmp_path / "run"
    rc, err = recon(capsys, "train", "--data", s, "--out", out, *TINY_TRAIN)
    assert rc == 2 and error_line(err) == f"error: {victim}: image could not be decoded (OSError)"
    assert "training '" not in err and [p.name for p in out.iterdir()] == [".recon.lock"]  # nothing trained
    assert tree_hashes(s) == before


def test_train_with_a_truncated_lidar_sweep_is_one_line(scene: Path, tmp_path: Path, capsys) -> None:
    s = copy_tree(scene, tmp_path / "s")
    victim = _frame_file(s, "lidar", split="train")
    truncate(victim)
    rc, err = recon(capsys, "train", "--data", s, "--out", tmp_path / "run", "lidar", *TINY_TRAIN)
    assert rc == 2 and error_line(err) == f"error: {victim}: point file could not be read (ValueError)"


def test_lidar_seeding_reads_sweeps_with_the_checked_loader(scene: Path, tmp_path: Path) -> None:
    from recon.data.scene import Scene
    from recon.errors import ReconError
    from recon.model.init_points import InitConfig, initial_points

    s = copy_tree(scene, tmp_path / "s")
    loaded = Scene.load(s)
    victim = loaded.lidar_sweeps()[0]
    truncate(victim)
    frames = loaded.train_frames[:2]
    with pytest.raises(ReconError) as exc:
        initial_points(loaded, frames, {f.id: f.load_image() for f in frames}, InitConfig(source="lidar"), seed=0)
    assert str(exc.value) == f"{victim}: point file could not be read (ValueError)"


def test_synth_overwrite_refuses_a_folder_that_is_not_a_scene(tmp_path: Path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    before = tree_hashes(mine)
    rc, err = recon(capsys, "data", "synth", "--out", mine, "--overwrite", "--width", "64", "--height", "40",
                    "--n-frames", "2", "--defocus-frames", "0")
    assert rc == 2 and err == f"error: {mine}: not a recon scene folder (no scene.json); refusing to --overwrite it\n"
    assert tree_hashes(mine) == before


def test_synth_out_that_is_a_file_or_under_a_file(tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    small = ["--width", "64", "--height", "40", "--n-frames", "2", "--defocus-frames", "0"]
    rc, err = recon(capsys, "data", "synth", "--out", f, *small)
    assert rc == 2 and err == f"error: {f}: output folder is a file, not a folder (choose another path)\n"
    rc, err = recon(capsys, "data", "synth", "--out", f / "scene", *small)
    assert rc == 2 and err == f"error: {f / 'scene'}: cannot create the output folder ({f} is a file)\n"
    assert f.read_text() == "x"


def test_synth_overwrite_keeps_the_old_scene_when_generation_fails(scene: Path, tmp_path: Path, capsys,
                                                                   monkeypatch) -> None:
    import recon.data.synth.street as street
    from recon.errors import ReconError

    s = copy_tree(scene, tmp_path / "s")
    before = tree_hashes(s)
    calls = {"n": 0}
    real = street.render_depth

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise ReconError("ray tracer ran out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(street, "render_depth", flaky)
    rc, err = recon(capsys, "data", "synth", "--out", s, "--overwrite", "--width", "64", "--height", "40",
                    "--n-frames", "3", "--defocus-frames", "0")
    assert rc == 2 and error_line(err) == "error: ray tracer ran out of memory"
    assert tree_hashes(s) == before and sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_convert_overwrite_refuses_a_folder_that_is_not_a_scene(tmp_path: Path, capsys) -> None:
    src = tmp_path / "colmap_project"
    (src / "sparse").mkdir(parents=True)
    (src / "sparse" / "cameras.txt").write_text("# my reconstruction\n")
    before = tree_hashes(src)
    rc, err = recon(capsys, "data", "convert", "--from", "colmap", src, "--out", src, "--overwrite")
    assert rc == 2 and err == f"error: {src}: not a recon scene folder (no scene.json); refusing to --overwrite it\n"
    assert tree_hashes(src) == before
