"""The import graph: no circles, and every import of a recon module points down the layers.

Layers, from the ground up (a module may import its own layer and those below, never above):

    0 errors, io                        files, locks, atomic writes, one-line errors
    1 optics, render                    thin-lens maths, defocus; the rasterizers
    2 data                              the scene format, converters, synthetic scenes, projection
    3 losses                            pure functions of tensors
    4 priors, match, sfm, model, models depth priors, matchers, SfM, Gaussians, weight files
    5 train                             configs, strategy, the trainer, supervisions
    6 run, eval, bench, batch           run folders, evaluation, benchmark and batch runners
    7 commands, viewer                  ``recon/cli.py``, every ``cli.py`` / ``*_cli.py``, the web viewer

Imports inside functions count too: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {
    "errors": 0, "io": 0,
    "optics": 1, "render": 1,
    "data": 2,
    "losses": 3,
    "priors": 4, "match": 4, "sfm": 4, "model": 4, "models": 4,
    "train": 5,
    "run": 6, "eval": 6, "bench": 6, "batch": 6,
    "viewer": 7,
}
COMMAND_LAYER = 7


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    parts = module.split(".")
    leaf = parts[-1]
    if module == "recon.cli" or leaf == "cli" or leaf.endswith("_cli") or parts[0] == "viewer":
        return COMMAND_LAYER
    if module == "recon" or module == "recon.configs":
        return 0
    room = parts[1]
    if room not in LAYERS:
        raise AssertionError(f"{module}: room {room!r} has no layer; add it to LAYERS (and to README's layout)")
    return LAYERS[room]


def imports_of(path: Path, module: str) -> set[str]:
    """recon/viewer modules ``path`` imports (absolute and relative, at any depth)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from recon.x import y` may name a submodule y
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        else:
            continue
        out.update(n for n in names if n.split(".")[0] in ("recon", "viewer"))
    return out


def graph() -> dict[str, set[str]]:
    files = [*sorted((ROOT / "recon").rglob("*.py")), *sorted((ROOT / "viewer").rglob("*.py"))]
    mods = {module_name(p): p for p in files}
    return {m: {d for d in imports_of(p, m) if d in mods and d != m} for m, p in mods.items()}


def test_every_import_points_down_the_layers() -> None:
    bad = [f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
           for m, deps in sorted(graph().items()) for d in sorted(deps)
           if layer_of(d) > layer_of(m) and not m.startswith(d + ".")]
    assert not bad, "imports pointing up the layers:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    g = graph()
    # a package's __init__ importing its own submodules is not an arrow between rooms; leave those edges out
    g = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in g.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_back_arrow_and_a_cycle(tmp_path: Path) -> None:
    """The walker itself: a relative import is resolved, an upward arrow is found."""
    f = tmp_path / "x.py"
    f.write_text("from ..train.trainer import Trainer\ndef f():\n    from recon.eval import evaluate\n")
    deps = imports_of(f, "recon.model.x")
    assert "recon.train.trainer" in deps and "recon.eval" in deps and "recon.eval.evaluate" in deps
    assert layer_of("recon.train.trainer") > layer_of("recon.model.x")
    assert layer_of("recon.priors.dfd_cli") == COMMAND_LAYER
    with pytest.raises(AssertionError, match="has no layer"):
        layer_of("recon.newroom.thing")
