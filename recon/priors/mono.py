"""Monocular depth from a real network, from LOCAL files only (nothing is downloaded here; see ``recon models``).

``--mono.model NAME_OR_PATH`` names the network, one of:

1. **A Hugging Face transformers model**: a local folder with ``config.json`` and the weights
   (``model.safetensors`` or ``pytorch_model.bin``), or a hub name (``depth-anything/Depth-Anything-V2-Metric-Outdoor-
   Small-hf``) or a ``recon models`` name (``depth-anything-v2-metric-outdoor-small``) already in the Hugging Face
   cache (``recon models fetch NAME`` puts it there). Loaded with ``AutoModelForDepthEstimation`` and the folder's
   ``AutoImageProcessor`` (its resize and normalisation; the output goes through the processor's
   ``post_process_depth_estimation`` to the image size), ``local_files_only=True``. Any depth architecture of
   transformers works: Depth Anything (V1/V2, relative or metric), Depth Pro, ZoeDepth, DPT, GLPN, ...
2. **A TorchScript archive** (``torch.jit.save``; needs nothing beyond torch). Contract: input float32
   ``(1, 3, h, w)`` RGB normalised with the ImageNet mean/std, resized (bicubic, aspect kept) so the short side is
   ``input_size`` and both sides are multiples of 14; output metric z-depth in metres, ``(1, h, w)`` or
   ``(1, 1, h, w)`` (resized bilinearly to the image). Canonical-camera models (Metric3D): pass
   ``canonical_focal_px`` and the output is multiplied by ``fx_resized / canonical_focal_px``.

Without ``--mono.model`` the first of :data:`DEFAULT_MODELS` found in the Hugging Face cache is used; if none is there,
a ReconError says how to get one. A bare state dict (``.pth``) is refused: it has no network code.

Output kinds (:attr:`MonoDepthModel.output`): ``metric`` (z-depth in metres: Depth Anything with
``depth_estimation_type="metric"``, ZoeDepth, Depth Pro, GLPN, TorchScript) or ``relative`` (affine-invariant
inverse depth, "disparity": Depth Anything relative, DPT/MiDaS and any architecture not known to be metric). A metric
prior is scaled to the frame's LiDAR / SfM points (one factor); a relative one gets scale and shift in inverse depth,
fitted robustly (:mod:`recon.priors.scale`), with the fit's residual recorded; a relative model cannot be used
without that alignment.

No PyPI package ships monocular depth weights (checked 2026-12: monodepth2, manydepth, depth-anything-3,
depth-estimation, dlr-moge, controlnet-aux, depthflow, jkp-depth-anything-v2, rgbd-depth, vsmidas (0-byte
placeholders), depthpro-mlx and about thirty more: code only, weights fetched from the hub at run time), so there
is no default model on a fresh machine: ``recon models fetch`` is the explicit way to get one.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recon.data.scene import Frame
from recon.errors import ReconError
from recon.priors.base import DepthPrior

DEFAULT_MODELS = (
    "depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf",
    "depth-anything/Depth-Anything-V2-Metric-Outdoor-Base-hf",
    "depth-anything/Depth-Anything-V2-Metric-Outdoor-Large-hf",
)
METRIC_MODEL_TYPES = frozenset({"zoedepth", "depth_pro", "glpn"})
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Output = Literal["metric", "relative"]


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: ``kind`` (``torchscript`` or ``transformers``), the file or folder, and the name asked for."""

    kind: Literal["torchscript", "transformers"]
    path: Path
    name: str

    def files(self) -> list[Path]:
        """The files whose size and mtime identify the model (for the prior cache's input signature)."""
        if self.kind == "torchscript":
            return [self.path]
        return [self.path / f for f in ("config.json", "preprocessor_config.json", *WEIGHT_FILES)
                if (self.path / f).is_file()]


def hf_cached(repo_id: str) -> Path | None:
    """The snapshot folder of a hub model in the local Hugging Face cache, or None (never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        p = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None
    return p if (p / "config.json").is_file() else None


def hf_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def is_torchscript(path: Path) -> bool:
    """True for a ``torch.jit.save`` archive (a zip holding ``code/`` and ``constants.pkl``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any("/code/" in n or n.startswith("code/") for n in names) and any(n.endswith("constants.pkl")
                                                                              for n in names)


def _looks_like_repo_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "~")) and "\\" not in spec


def resolve_model(spec: str | Path | None) -> ModelRef:
    """The model ``--mono.model`` names (see the module docstring); a one-line ReconError when it cannot be used."""
    from recon.models.registry import MODELS

    fetch_hint = "`recon models fetch depth-anything-v2-metric-outdoor-small` downloads one (explicitly)"
    if spec is None or str(spec) == "":
        for name in DEFAULT_MODELS:
            p = hf_cached(name)
            if p is not None:
                return ModelRef("transformers", p, name)
        raise ReconError(f"no monocular depth model: pass --mono.model NAME_OR_PATH (a transformers model folder, "
                         f"a hub name in the Hugging Face cache {hf_cache_dir()}, or a TorchScript file); "
                         f"{fetch_hint}; recon never downloads by itself and no PyPI package ships depth weights")
    text = str(spec)
    entry = MODELS.get(text)
    if entry is not None and entry.repo_id is not None:
        text = entry.repo_id
    p = Path(text).expanduser()
    if p.is_file():
        if is_torchscript(p):
            return ModelRef("torchscript", p, p.name)
        raise ReconError(f"{p}: not a TorchScript archive; a bare state dict has no network code: pass the "
                         "transformers version of the model (a folder with config.json, e.g. from `recon models "
                         "fetch`) or a TorchScript export")
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ReconError(f"{p}: no config.json: not a transformers model folder")
        return ModelRef("transformers", p, p.name)
    if _looks_like_repo_id(text):
        cached = hf_cached(text)
        if cached is None:
            raise ReconError(f"{text}: not in the Hugging Face cache ({hf_cache_dir()}); run `recon models fetch "
                             f"{spec}` to download it, or pass a local folder")
        return ModelRef("transformers", cached, text)
    raise ReconError(f"{p}: mono depth model not found (a folder with config.json, a hub name or a TorchScript "
                     "file)")


def network_input_size(height: int, width: int, input_size: int = 518, multiple: int = 14) -> tuple[int, int]:
    """(h, w) with the short side about ``input_size``, aspect kept, each a multiple of ``multiple`` (>= it)."""
    s = input_size / min(height, width)
    h = max(multiple, int(round(height * s / multiple)) * multiple)
    w = max(multiple, int(round(width * s / multiple)) * multiple)
    return h, w


def output_kind(config: Any) -> Output:
    """``metric`` or ``relative`` from a transformers config (see the module docstring)."""
    mt = getattr(config, "model_type", "")
    if mt == "depth_anything":
        return "metric" if getattr(config, "depth_estimation_type", "relative") == "metric" else "relative"
    return "metric" if mt in METRIC_MODEL_TYPES else "relative"


def _imagenet_input(img: np.ndarray, input_size: int, device: str) -> Any:
    import torch
    import torch.nn.functional as F

    H, W = img.shape[:2]
    h, w = network_input_size(H, W, input_size)
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(device)
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class MonoDepthModel:
    """A loaded monocular network: ``model(image [H, W, 3] float in [0, 1], fx) -> [H, W] float32``: metric depth
    in metres (``output == "metric"``) or relative inverse depth (``output == "relative"``); 0 where invalid."""

    def __init__(self, net: Callable[..., Any], name: str, device: str = "cpu", input_size: int = 518,
                 canonical_focal_px: float | None = None, output: Output = "metric", processor: Any = None) -> None:
        self.net, self.name, self.device = net, name, device
        self.input_size, self.canonical_focal_px = input_size, canonical_focal_px
        self.output, self.processor = output, processor

    def __call__(self, image: np.ndarray, fx: float) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        img = np.asarray(image, dtype=np.float32)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ReconError(f"mono depth: expected an RGB image (H, W, 3), got shape {img.shape}")
        H, W = img.shape[:2]
        with torch.inference_mode():
            if self.processor is not None:
                rgb8 = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
                inputs = self.processor(images=rgb8, return_tensors="pt")
                out = self.net(**{k: v.to(self.device) for k, v in inputs.items() if hasattr(v, "to")})
                post = getattr(self.processor, "post_process_depth_estimation", None)
                if post is not None:
                    d = post(out, target_sizes=[(H, W)])[0]["predicted_depth"].float()[None, None]
                else:
                    d = out.predicted_depth.float()
            else:
                x = _imagenet_input(img, self.input_size, self.device)
                d = self.net(pixel_values=x) if hasattr(self.net, "config") else self.net(x)  # transformers / jit
                if isinstance(d, (tuple, list)):
                    d = d[0]
                if isinstance(d, dict):
                    d = d.get("depth", d.get("predicted_depth"))
                if hasattr(d, "predicted_depth"):
                    d = d.predicted_depth
                if not isinstance(d, torch.Tensor):
                    raise ReconError(f"mono depth model {self.name}: output is {type(d).__name__}, expected a tensor")
                d = d.float()
                if self.canonical_focal_px:
                    d = d * (fx * x.shape[-1] / W) / self.canonical_focal_px  # canonical camera -> this camera
        while d.ndim < 4:
            d = d[None]
        if d.ndim != 4 or d.shape[0] != 1 or d.shape[1] != 1:
            raise ReconError(f"mono depth model {self.name}: output shape {tuple(d.shape)}, expected (1, h, w)")
        if tuple(d.shape[-2:]) != (H, W):
            d = F.interpolate(d, size=(H, W), mode="bilinear", align_corners=False)
        depth = d[0, 0].cpu().numpy()
        return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _load_transformers(ref: ModelRef, device: str, input_size: int) -> MonoDepthModel:
    path = ref.path
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        raise ReconError(f"{path}: no weights in the model folder (expected {' or '.join(WEIGHT_FILES[::2])})")
    _quiet_transformers()
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForDepthEstimation

    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        net = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        msg = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise ReconError(f"{path}: not a loadable transformers depth model ({type(exc).__name__}: {msg})") from None
    processor = None
    if (path / "preprocessor_config.json").is_file():
        try:
            processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        except Exception as exc:
            raise ReconError(f"{path}: preprocessor_config.json could not be loaded ({type(exc).__name__})") from None
    return MonoDepthModel(net.to(device).eval(), f"transformers:{ref.name}", device, input_size, None,
                          output_kind(config), processor)


def load_mono_model(model: str | Path | ModelRef | None = None, device: str = "cpu", input_size: int = 518,
                    canonical_focal_px: float | None = None) -> MonoDepthModel:
    """Load a monocular depth network from local files (see the module docstring)."""
    import torch

    ref = model if isinstance(model, ModelRef) else resolve_model(model)
    if ref.kind == "transformers":
        return _load_transformers(ref, device, input_size)
    try:
        net = torch.jit.load(str(ref.path), map_location=device).eval()
    except Exception as exc:
        raise ReconError(f"{ref.path}: TorchScript archive could not be loaded ({type(exc).__name__})") from None
    return MonoDepthModel(net, f"torchscript:{ref.path.name}", device, input_size, canonical_focal_px, "metric")


def mono_prior(frame: Frame, model: MonoDepthModel, confidence: float = 0.5,
               use_sky_mask: bool = True) -> DepthPrior:
    """The monocular prior of a frame: source ``mono``, uniform ``confidence`` (a network gives none).

    For a relative model ``depth`` holds its relative inverse depth until :func:`recon.priors.registry` aligns it
    (``meta["output"] == "relative"``); it is never returned to a caller unaligned.
    """
    depth = model(frame.load_image(), frame.camera.fx)
    sky = frame.load_sky_mask() if use_sky_mask else None
    if sky is not None:
        depth = np.where(sky, 0.0, depth).astype(np.float32)
    return DepthPrior(depth, np.where(depth > 0, confidence, 0.0), "mono", {"model": model.name,
                                                                            "output": model.output})
