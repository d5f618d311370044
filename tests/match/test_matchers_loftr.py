"""LoFTR with a checkpoint: a randomly initialised kornia LoFTR saved the way the real weights are published."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recon.errors import ReconError
from recon.match.cache import cache_key
from recon.match.factory import create_matcher
from recon.match.loftr import LoftrMatcher
from recon.match.weights import file_sha256


@pytest.fixture(scope="module")
def random_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LoftrMatcher]:
    """A random LoFTR saved as ``{"state_dict": {"matcher.<key>": ...}}`` (the LoFTR authors' layout), and the
    in-memory matcher it came from."""
    torch.manual_seed(0)
    ref = LoftrMatcher(None, threshold=0.0)
    path = tmp_path_factory.mktemp("loftr") / "loftr_outdoor.ckpt"
    torch.save({"epoch": 29, "state_dict": {f"matcher.{k}": v for k, v in ref.model.state_dict().items()}}, path)
    return path, ref


def _pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    img0 = rng.random((64, 96, 3)).astype(np.float32)
    return img0, np.roll(img0, 8, axis=1)


def test_checkpoint_loads_into_the_same_network(random_ckpt: tuple[Path, LoftrMatcher]) -> None:
    path, ref = random_ckpt
    m = LoftrMatcher(path, threshold=0.0)
    a, b = ref.model.state_dict(), m.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not m.model.training
    img0, img1 = _pair()
    got, want = m.match(img0, img1), ref.match(img0, img1)
    assert len(got) > 0
    np.testing.assert_array_equal(got.kpts0, want.kpts0)
    np.testing.assert_array_equal(got.kpts1, want.kpts1)
    assert ((got.confidence >= 0) & (got.confidence <= 1)).all()
    # a bare state dict (no "state_dict" wrapper, no prefix) is the same network
    bare = path.with_name("bare.pth")
    torch.save(ref.model.state_dict(), bare)
    np.testing.assert_array_equal(LoftrMatcher(bare, threshold=0.0).match(img0, img1).kpts1, want.kpts1)


def test_pixel_centre_convention(random_ckpt: tuple[Path, LoftrMatcher]) -> None:
    """kornia documents LoFTR's keypoints in the reference frame, where pixel (x, y) has its centre at
    (x + 0.5, y + 0.5), recon's: used unchanged, so image-0 keypoints sit on the coarse grid 8 * (col, row) and
    image-1 keypoints within the fine window (4 px) of a coarse grid point."""
    m = LoftrMatcher(random_ckpt[0], threshold=0.0)
    img0, img1 = _pair()
    out = m.match(img0, img1)
    assert len(out) > 0
    np.testing.assert_array_equal(out.kpts0 % 8, 0)
    off = out.kpts1 - 8 * np.round(out.kpts1 / 8)
    assert (np.abs(off) <= 4 + 1e-4).all()
    assert ((out.kpts0 >= 0) & (out.kpts0 <= [96, 64])).all()


def test_cache_key_follows_the_file_contents(random_ckpt: tuple[Path, LoftrMatcher], tmp_path: Path) -> None:
    path, _ = random_ckpt
    m = LoftrMatcher(path)
    assert m.settings()["weights"] == "sha256:" + file_sha256(path)
    copy = tmp_path / "elsewhere.ckpt"
    copy.write_bytes(path.read_bytes())
    assert LoftrMatcher(copy).settings() == m.settings()  # the same weights share cached matches
    torch.manual_seed(1)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": LoftrMatcher(None).model.state_dict()}, other)
    p0, p1 = tmp_path / "a.png", tmp_path / "b.png"
    p0.write_bytes(b"0")
    p1.write_bytes(b"1")
    assert cache_key("loftr", LoftrMatcher(other).settings(), p0, p1) != cache_key("loftr", m.settings(), p0, p1)
    assert LoftrMatcher(path, threshold=0.5).settings() != m.settings()


def test_auto_takes_loftr_when_weights_are_given(random_ckpt: tuple[Path, LoftrMatcher], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = random_ckpt
    assert isinstance(create_matcher("auto", loftr_weights=path), LoftrMatcher)
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    (hub / "checkpoints" / "loftr_outdoor.ckpt").write_bytes(path.read_bytes())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    assert isinstance(create_matcher("auto"), LoftrMatcher)
    wrong = tmp_path / "wrong.ckpt"
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(3)}}, wrong)
    with pytest.raises(ReconError, match=r"wrong\.ckpt: not a usable LoFTR checkpoint") as e:
        create_matcher("loftr", loftr_weights=wrong)
    assert "\n" not in str(e.value)
