"""`recon dfd` and `recon bokeh` outputs: an existing --out is replaced only with --overwrite and only when recon
wrote it (never a user's folder or file, never an input), and every meaningless lens or range option is one line
before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.safety import recon, sha256, tree_hashes  # noqa: E402


@pytest.fixture()
def imgs(tmp_path: Path) -> Path:
    """Three 32x24 images, a depth map (metres) and a sparse reference depth."""
    from recon.io.images import write_image

    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        write_image(tmp_path / f"{name}.png", rng.random((24, 32, 3)).astype(np.float32))
    np.save(tmp_path / "d.npy", rng.uniform(2.0, 20.0, (24, 32)).astype(np.float32))
    ref = np.zeros((24, 32), np.float32)
    ref[::3, ::3] = rng.uniform(2.0, 20.0, ref[::3, ::3].shape)
    np.save(tmp_path / "ref.npy", ref)
    return tmp_path


def _dfd(kind: str, d: Path, out: Path, *extra: str) -> list[str]:
    args = {"pair": ["pair", d / "a.png", d / "b.png", "--fx", "40"],
            "stack": ["stack", d / "a.png", d / "b.png", d / "c.png", "--focus-m", "2", "5", "12"],
            "single": ["single", d / "a.png", "--reference-depth", d / "ref.npy"]}[kind]
    return ["dfd", *args, "--out", out, *extra]


def _users_folder(root: Path) -> Path:
    root.mkdir()
    (root / "scene.json").write_text("{}")
    (root / "images").mkdir()
    (root / "images" / "0.png").write_bytes(b"my photo")
    return root


@pytest.mark.parametrize("kind", ["pair", "stack", "single"])
def test_dfd_never_replaces_a_users_folder(kind: str, imgs: Path, capsys) -> None:
    mine = _users_folder(imgs / "mine")
    before = tree_hashes(mine)
    rc, err = recon(capsys, *_dfd(kind, imgs, mine))
    assert rc == 2 and err == (f"error: {mine}: output folder exists and is not empty (pass --overwrite to replace "
                               "an earlier `recon dfd` output)\n")
    rc, err = recon(capsys, *_dfd(kind, imgs, mine, "--overwrite"))
    assert rc == 2 and err == (f"error: {mine}: not a `recon dfd` output folder (no dfd.json from recon, or other "
                               "files in it); refusing to --overwrite it\n")
    assert tree_hashes(mine) == before and sorted(p.name for p in imgs.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("kind", ["pair", "single"])
def test_dfd_out_that_is_a_file_stays(kind: str, imgs: Path, capsys) -> None:
    f = imgs / "notes.txt"
    f.write_text("keep me")
    for extra in ((), ("--overwrite",)):
        rc, err = recon(capsys, *_dfd(kind, imgs, f, *extra))
        assert rc == 2 and err == (f"error: {f}: --out is a file, not a folder (`recon dfd` writes a folder; choose "
                                   "another path)\n")
    assert f.read_text() == "keep me" and not [p for p in imgs.iterdir() if p.name.startswith(".")]


def test_dfd_replaces_its_own_output_only_with_overwrite(imgs: Path, capsys) -> None:
    out = imgs / "dfd"
    assert recon(capsys, *_dfd("pair", imgs, out))[0] == 0
    first = tree_hashes(out)
    assert {"depth.npy", "confidence.npy", "dfd.json"} <= set(first) <= {"depth.npy", "confidence.npy", "depth.png",
                                                                          "dfd.json"}
    rc, err = recon(capsys, *_dfd("pair", imgs, out))
    assert rc == 2 and "output folder exists and is not empty" in err and tree_hashes(out) == first
    rc, _ = recon(capsys, *_dfd("single", imgs, out, "--overwrite"))  # another dfd method's output: replaced
    assert rc == 0 and {"depth.npy", "confidence.npy", "dfd.json"} <= set(tree_hashes(out))
    (out / "my_notes.txt").write_text("added by hand")
    rc, err = recon(capsys, *_dfd("pair", imgs, out, "--overwrite"))
    assert rc == 2 and "not a `recon dfd` output folder" in err and (out / "my_notes.txt").is_file()


def test_dfd_out_holding_an_input_is_refused(imgs: Path, capsys) -> None:
    before = tree_hashes(imgs)
    rc, err = recon(capsys, *_dfd("pair", imgs, imgs, "--overwrite"))
    assert rc == 2 and err == (f"error: {imgs}: --out is or contains the input {imgs / 'a.png'}; choose another "
                               "output folder\n")
    assert tree_hashes(imgs) == before


@pytest.mark.parametrize(("kind", "extra", "message"), [
    ("pair", ["--near-m", "0"], "--near-m must be positive, got 0.0"),
    ("pair", ["--near-m", "50", "--far-m", "5"], "--near-m (50) must be smaller than --far-m (5)"),
    ("pair", ["--far-m", "inf"], "--far-m must be positive, got inf"),
    ("pair", ["--focus-m", "0.01"], "--focus-m 0.01 m is not beyond the focal length (50 mm): a thin lens cannot "
                                    "focus there"),
    ("pair", ["--fx", "nan"], "--fx must be positive, got nan"),
    ("stack", ["--focus-m", "10", "10", "10"], "--focus-m: the focus distances must differ (a focal stack), got "
                                               "[10.0, 10.0, 10.0]"),
    ("stack", ["--f-number", "2", "--near-m", "0"], "--near-m must be positive, got 0.0"),
    ("single", ["--focus-m", "0"], "--focus-m must be positive, got 0.0"),
])
def test_dfd_meaningless_options_are_one_line(kind: str, extra: list[str], message: str, imgs: Path,
                                              capsys) -> None:
    out = imgs / "out"
    rc, err = recon(capsys, *_dfd(kind, imgs, out, *extra))
    assert rc == 2 and err == f"error: {message}\n" and not out.exists()


def test_dfd_single_focus_without_reference_is_refused(imgs: Path, capsys) -> None:
    rc, err = recon(capsys, "dfd", "single", imgs / "a.png", "--focus-m", "3", "--out", imgs / "o")
    assert rc == 2 and err == "error: --focus-m is used only with --reference-depth (it fixes the metric fit's " \
                              "offset)\n"


def _bokeh(d: Path, *extra: str) -> list[str]:
    return ["bokeh", d / "a.png", "--depth", d / "d.npy", "--focus-m", "5", *extra]


def test_bokeh_never_overwrites_its_input(imgs: Path, capsys) -> None:
    h = sha256(imgs / "a.png")
    for extra in ((), ("--overwrite",)):
        rc, err = recon(capsys, *_bokeh(imgs, "--out", imgs / "a.png", *extra))
        assert rc == 2 and err == (f"error: {imgs / 'a.png'}: --out is the input {imgs / 'a.png'}; choose another "
                                   "output path\n")
    assert sha256(imgs / "a.png") == h


def test_bokeh_out_npy_is_one_line(imgs: Path, capsys) -> None:
    h = sha256(imgs / "d.npy")
    rc, err = recon(capsys, *_bokeh(imgs, "--out", imgs / "d.npy", "--overwrite"))
    assert rc == 2 and err == (f"error: {imgs / 'd.npy'}: --out must be an image file ending in .png, .jpg, .jpeg, "
                               "got '.npy'\n")
    rc, err = recon(capsys, *_bokeh(imgs, "--out", imgs / "new.npy"))
    assert rc == 2 and "--out must be an image file" in err and not (imgs / "new.npy").exists()
    assert sha256(imgs / "d.npy") == h


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_bokeh_replaces_only_its_own_image(suffix: str, imgs: Path, capsys) -> None:
    out = imgs / f"out{suffix}"
    assert recon(capsys, *_bokeh(imgs, "--out", out))[0] == 0
    rc, err = recon(capsys, *_bokeh(imgs, "--out", out))
    assert rc == 2 and err == (f"error: {out}: output file exists (pass --overwrite to replace an earlier `recon "
                               "bokeh` output)\n")
    assert recon(capsys, *_bokeh(imgs, "--out", out, "--overwrite"))[0] == 0
    theirs = imgs / f"b{suffix}"
    if suffix != ".png":
        theirs.write_bytes(b"\xff\xd8 a user's jpeg")
    h = sha256(theirs)
    rc, err = recon(capsys, *_bokeh(imgs, "--out", theirs, "--overwrite"))
    assert rc == 2 and err == (f"error: {theirs}: not written by `recon bokeh` (no recon tag in the file); refusing "
                               "to --overwrite it\n")
    assert sha256(theirs) == h


def test_bokeh_stack_replaces_only_its_own_folder(imgs: Path, capsys) -> None:
    out = imgs / "stack"
    assert recon(capsys, *_bokeh(imgs, "--stack", "3", "--out", out))[0] == 0
    assert sorted(tree_hashes(out)) == ["bokeh_000.png", "bokeh_001.png", "bokeh_002.png", "stack.json"]
    assert recon(capsys, *_bokeh(imgs, "--stack", "2", "--out", out, "--overwrite"))[0] == 0
    assert sorted(tree_hashes(out)) == ["bokeh_000.png", "bokeh_001.png", "stack.json"]
    mine = _users_folder(imgs / "mine")
    before = tree_hashes(mine)
    rc, err = recon(capsys, *_bokeh(imgs, "--stack", "2", "--out", mine, "--overwrite"))
    assert rc == 2 and err == (f"error: {mine}: not a `recon bokeh` output folder (no stack.json from recon, or other "
                               "files in it); refusing to --overwrite it\n")
    assert tree_hashes(mine) == before


def test_bokeh_focus_inside_the_focal_length_is_one_line(imgs: Path, capsys) -> None:
    rc, err = recon(capsys, "bokeh", imgs / "a.png", "--depth", imgs / "d.npy", "--focus-m", "0.01")
    assert rc == 2 and err == ("error: --focus-m 0.01 m is not beyond the focal length (50 mm): a thin lens cannot "
                               "focus there\n")
    assert not (imgs / "a_bokeh.png").exists()
