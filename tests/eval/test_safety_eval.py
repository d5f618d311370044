"""`recon eval` scores a run only on the scene it was trained on, writes metrics.json also with --no-outputs, and
LPIPS never downloads weights."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch
from support.safety import TINY_TRAIN, copy_tree, make_tiny_scene, recon, tree_hashes  # noqa: E402


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("safety_eval")
    return make_tiny_scene(root / "street"), make_tiny_scene(root / "other", seed=2)


@pytest.fixture(scope="module")
def trained(scenes: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recon.cli import main

    run = tmp_path_factory.mktemp("safety_eval") / "run"
    assert main(["train", "--data", str(scenes[0]), "--out", str(run), *TINY_TRAIN]) == 0
    return run


def test_eval_refuses_a_checkpoint_of_another_scene(scenes: tuple[Path, Path], trained: Path, tmp_path: Path,
                                                    capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"] = str(scenes[1])  # what a refused --resume on the other scene used to leave behind
    (run / "config.json").write_text(json.dumps(cfg))
    before = tree_hashes(run)
    rc, err = recon(capsys, "eval", run)
    assert rc == 2 and err == (
        f"error: {run / 'checkpoints' / 'ckpt_000004.pt'}: checkpoint was trained on another scene than "
        f"{scenes[1] / 'scene.json'} (named by {run / 'config.json'}); refusing to evaluate\n")
    assert tree_hashes(run) == before and not (run / "eval").exists()


def test_eval_no_outputs_still_writes_metrics_json(trained: Path, tmp_path: Path, capsys) -> None:
    run = copy_tree(trained, tmp_path / "run")
    rc, _ = recon(capsys, "eval", run, "--no-outputs")
    assert rc == 0
    m = json.loads((run / "eval" / "metrics.json").read_text())
    assert m["n_test_views"] == 3 and m["psnr"] > 0
    assert sorted(p.name for p in (run / "eval").iterdir()) == ["metrics.json"]


class _FakeTrunk(torch.nn.Module):
    """lpips' alexnet layout: torchvision ``features`` modules regrouped into ``slice<k>.<index>``."""

    def __init__(self) -> None:
        super().__init__()
        self.slice1 = torch.nn.Sequential()
        self.slice1.add_module("0", torch.nn.Conv2d(3, 4, 3))
        self.slice1.add_module("1", torch.nn.ReLU())
        self.slice2 = torch.nn.Sequential()
        self.slice2.add_module("2", torch.nn.Conv2d(4, 4, 3))


def _fake_lpips(calls: list[dict]) -> types.ModuleType:
    mod = types.ModuleType("lpips")

    class LPIPS(torch.nn.Module):
        def __init__(self, **kwargs) -> None:
            super().__init__()
            calls.append(kwargs)
            if not kwargs.get("pnet_rand"):
                raise RuntimeError("would download the AlexNet weights")
            self.net = _FakeTrunk()

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return (self.net.slice2(self.net.slice1(a)) - self.net.slice2(self.net.slice1(b))).abs().mean()

    mod.LPIPS = LPIPS
    return mod


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_lpips_without_local_weights_is_skipped_with_the_path(tmp_path: Path, monkeypatch, no_network) -> None:
    from recon.eval.image_metrics import LpipsMetric

    calls: list[dict] = []
    monkeypatch.setitem(sys.modules, "lpips", _fake_lpips(calls))
    missing = tmp_path / "alexnet.pth"
    lp = LpipsMetric(weights=missing)
    assert not lp.available and calls == []
    assert lp.reason == (f"LPIPS skipped: AlexNet weights not found at {missing} (recon never downloads them; put "
                         "torchvision's alexnet-owt-7be5be79.pth there)")


def test_lpips_loads_the_trunk_from_a_local_file(tmp_path: Path, monkeypatch, no_network) -> None:
    from recon.eval.image_metrics import LpipsMetric

    calls: list[dict] = []
    monkeypatch.setitem(sys.modules, "lpips", _fake_lpips(calls))
    ref = _FakeTrunk()
    features = {"features.0.weight": ref.slice1[0].weight, "features.0.bias": ref.slice1[0].bias,
                "features.2.weight": ref.slice2[0].weight, "features.2.bias": ref.slice2[0].bias,
                "classifier.1.weight": torch.zeros(2, 2)}
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save({k: v.detach().clone() for k, v in features.items()}, path)
    lp = LpipsMetric(weights=path)
    assert lp.available and lp.reason == ""
    assert calls == [{"net": "alex", "pretrained": True, "pnet_rand": True, "verbose": False}]
    assert lp.model is not None and torch.equal(lp.model.net.slice2[0].weight, ref.slice2[0].weight)
    img = torch.rand(16, 16, 3)
    assert lp(img, img) == 0.0 and lp(img, 1 - img) > 0


def test_lpips_with_a_corrupt_weights_file_is_skipped(tmp_path: Path, monkeypatch, no_network) -> None:
    from recon.eval.image_metrics import LpipsMetric

    monkeypatch.setitem(sys.modules, "lpips", _fake_lpips([]))
    path = tmp_path / "alexnet.pth"
    path.write_bytes(b"garbage")
    lp = LpipsMetric(weights=path)
    assert not lp.available
    assert lp.reason.startswith(f"LPIPS skipped: {path}: AlexNet weights could not be loaded (")
