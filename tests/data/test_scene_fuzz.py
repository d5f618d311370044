"""Fuzzing scene.json: random type swaps, NaN / Infinity, missing and extra keys and path escapes over every field.

Every case must end in success or one ``error:`` line (exit 2) from ``recon data info --deep`` (which loads the scene
and decodes every file it names), and no case may open a file outside the scene folder: decoys outside it are
valid files, so a path check that let one through would be seen opening it (Python's audit hook on ``open``).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.safety import make_micro_scene, recon  # noqa: E402

N_CASES = 400
_opened_outside: list[str] = []
_watch: dict[str, str | None] = {"dir": None}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or _watch["dir"] is None or not args or not isinstance(args[0], str | bytes | os.PathLike):
        return
    p = os.fsdecode(args[0])
    if os.path.abspath(p).startswith(_watch["dir"]) or os.path.realpath(p).startswith(_watch["dir"]):
        _opened_outside.append(p)


sys.addaudithook(_audit)  # cannot be removed; it only records while _watch["dir"] is set


def _leaves(obj: Any, path: tuple = ()) -> list[tuple]:
    """Every key / index path of a JSON value (containers included)."""
    out = [path] if path else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _leaves(v, (*path, i))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    for k in path[:-1]:
        doc = doc[k]
    return doc


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A micro scene, decoys outside it (valid files of every kind) and symlinks from inside the scene to them."""
    base = tmp_path_factory.mktemp("fuzz")
    scene = make_micro_scene(base / "scene")
    outside = base / "outside"
    outside.mkdir()
    for rel in ("images/000.png", "depth/000.npy", "lidar/000.npy", "points3d.npy", "masks/sky/000.png"):
        (outside / Path(rel).name).write_bytes((scene / rel).read_bytes())
    os.symlink("../outside/000.png", scene / "rel_link.png")
    os.symlink(str(outside / "points3d.npy"), scene / "abs_link.npy")
    os.symlink(str(outside / "missing.png"), scene / "dangling.png")
    os.symlink(str(outside), scene / "dir_link")
    os.symlink("images/001.png", scene / "inside_link.png")  # allowed: stays inside
    return scene, outside, json.loads((scene / "scene.json").read_text())


def _values(outside: Path) -> list[Any]:
    escapes = ["../outside/000.png", "../../outside/000.png", str(outside / "000.png"), str(outside / "000.npy"),
               "/etc/passwd", "../../../../../../etc/passwd", "images/../../outside/000.png", "rel_link.png",
               "abs_link.npy", "dangling.png", "dir_link/000.png", "dir_link/points3d.npy", "~/x.png",
               "images/000.png\x00.txt", "inside_link.png", "images", "/", ".", ""]
    others = [None, True, False, 0, 1, -1, 2.5, 1e300, -1e300, 10**40, float("nan"), float("inf"), float("-inf"),
              "x", "noon", "front", "train", "test", "000", [], [1], ["front"], [[1, 0], [0, 1]], {}, {"a": 1},
              np.eye(4).tolist(), [[0.0] * 4] * 4, "../000", "a/b", ".hidden"]
    return escapes + others


def _mutate(doc: dict, rng: np.random.Generator, values: list[Any]) -> str:
    """Apply one random mutation in place; return a description."""
    leaves = _leaves(doc)
    path = leaves[rng.integers(len(leaves))]
    parent = _parent(doc, path)
    op = rng.choice(["swap", "swap", "swap", "delete", "extra"])
    if op == "delete":
        del parent[path[-1]]
        return f"delete {path}"
    if op == "extra":
        target = parent if isinstance(parent, dict) else doc
        target["zz_extra"] = values[rng.integers(len(values))]
        return f"extra key beside {path}"
    v = copy.deepcopy(values[rng.integers(len(values))])
    parent[path[-1]] = v
    return f"set {path} = {v!r}"


def test_fuzzed_scene_json_is_success_or_one_line(world: tuple[Path, Path, dict], capsys) -> None:
    scene, outside, base = world
    rng = np.random.default_rng(2024)
    values = _values(outside)
    outcomes = {0: 0, 2: 0}
    _watch["dir"] = str(outside)
    try:
        for case in range(N_CASES):
            doc = copy.deepcopy(base)
            what = [_mutate(doc, rng, values) for _ in range(int(rng.integers(1, 4)))]
            (scene / "scene.json").write_text(json.dumps(doc))
            rc, err = recon(capsys, "data", "info", scene, "--deep")
            assert rc in (0, 2), (case, what, err)
            if rc == 2:
                assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, (case, what, err)
            outcomes[rc] += 1
            assert not _opened_outside, (case, what, _opened_outside)
    finally:
        _watch["dir"] = None
        (scene / "scene.json").write_text(json.dumps(base))
    assert outcomes[0] > 10 and outcomes[2] > 100, outcomes  # the fuzzer reaches both outcomes


@pytest.mark.parametrize("field", ["image", "depth", "lidar", "sky_mask"])
def test_every_frame_path_escape_is_refused_without_saying_whether_the_target_exists(
        world: tuple[Path, Path, dict], field: str, capsys) -> None:
    scene, outside, base = world
    errors = []
    _watch["dir"] = str(outside)
    try:
        for target in (str(outside / "000.png"), str(outside / "nothing_here.png"), "../outside/000.png",
                       "../outside/nothing_here.png"):
            doc = copy.deepcopy(base)
            doc["frames"][1][field] = target
            (scene / "scene.json").write_text(json.dumps(doc))
            rc, err = recon(capsys, "data", "info", scene)
            assert rc == 2
            errors.append(err.replace("nothing_here", "000"))
    finally:
        _watch["dir"] = None
        (scene / "scene.json").write_text(json.dumps(base))
    assert not _opened_outside
    assert errors[0] == errors[1] == (f"error: {scene / 'scene.json'}: frame '001' {field}: path "
                                      f"'{outside / '000.png'}' leaves the scene folder (paths in scene.json must "
                                      "be relative and stay inside it)\n")
    assert errors[2] == errors[3] and "'../outside/000.png' leaves the scene folder" in errors[2]
