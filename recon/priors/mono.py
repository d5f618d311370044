"""Monocular metric depth from a real network, from LOCAL weights only (nothing is ever downloaded).

Two ways to run a model, chosen from the weights file:

1. **TorchScript archive** (any model exported with ``torch.jit.save``; needs nothing beyond torch). Contract:
   input float32 ``(1, 3, h, w)`` RGB normalised with the ImageNet mean/std, resized (bicubic, aspect kept) so
   the short side is ``input_size`` and both sides are multiples of 14; output metric z-depth in metres,
   ``(1, h, w)`` or ``(1, 1, h, w)`` (any size: it is resized bilinearly to the image). For canonical-camera
   models (Metric3D) pass ``canonical_focal_px``: the output is multiplied by ``fx_resized / canonical_focal_px``.
2. **Depth Anything V2 metric state dict** (``depth_anything_v2_metric_vkitti_vit{s,b,l}.pth``, the outdoor
   models fine-tuned on Virtual KITTI 2, max depth 80 m). The network code is not part of recon or its
   dependencies: it needs the official ``depth_anything_v2`` package from the Depth-Anything-V2 repository's
   ``metric_depth/`` folder on ``PYTHONPATH`` (it imports torchvision and opencv). Without it, a ReconError says so.

Weights are looked up at ``--weights PATH`` or in ``torch.hub.get_dir()/checkpoints/`` under the official file
names; if none is there, a ReconError names the files and the flag. kornia 0.9's ``DepthAnythingONNXBuilder`` was
considered and not used: it downloads its graphs from the Hugging Face hub, needs onnxruntime (not installed) and
ships only the *relative* (affine-invariant) Depth Anything V2 models, not the metric ones.

Output: metric z-depth (float32 [H, W], metres) at the frame's resolution; optionally aligned to the frame's
sparse LiDAR / SfM depth with :mod:`recon.priors.scale` (scale only: the model is already metric).

No packaged weights (checked 2026-12, every monocular-depth package in PyPI's name list, wheels unpacked): none
ships a depth network's weights, so there is no default model and ``--weights`` (or the hub cache) is required.
Code only, weights fetched at run time from the Hugging Face hub, torch.hub or the authors' URLs: monodepth2 1.0.0,
manydepth 1.0.0, depth-anything-3 0.1.1, awesome-depth-anything-3 1.0.0, depth-estimation 0.1.3, panodac 0.1.1,
dlr-moge 2.0.0, cars-monocular-plugin 0.2.0, controlnet-aux 0.0.10, monopriors 0.1.0, pyrobovision 3.3.1,
atoolkitdpt 0.0.2, mgolddepthlib 0.2.2, depthflow 1.0.1, parallax-maker 1.0.3, citygaze 0.1.0, spatial-maker
0.1.0, depthlib 0.1.1, aelion-vision 1.9.0. Network code without any weights: jkp-depth-anything-v2 0.1.1
(relative Depth Anything V2, imports torchvision), rgbd-depth 1.0.3. vsmidas 1.1.0's ``models/dpt_*.pt`` are
0-byte placeholders. depth-anything-v2 0.1.0 has no installable file. Not monocular networks: depthy 0.4.0,
depthgen 0.2, depth2normal 2.0.1, depthml 0.2.0, dpt 1.2.3, stereo-matching 0.2.0, stereodemo 0.7 (sample
images only), depz-camera-sdk 0.2.7, monstereo 0.2.3, HITrack 1.0.4, depthai-nodes 0.7.0. Outside PyPI: npm's
@tensorflow-models/depth-estimation 0.0.4 (portrait model, weights from TF Hub), no Debian package.
Checked again 2026-12 (wheels of at most a few hundred kB, no weight file): polarini-focusini 0.1.3, reshot 0.5.0,
scaner3dphoto 1.1.0 (GLPN through transformers' hub download), yolov7-with-depthmap 1.0.1, measure-mcp 0.1.0,
amp-depth-viz 0.1.6, depthpro-mlx 0.3.1 (53 kB, Python >= 3.12 and MLX; weights from the hub).
"""

from __future__ import annotations

import importlib
import importlib.util
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recon.data.scene import Frame
from recon.errors import ReconError
from recon.priors.base import DepthPrior

DA2_METRIC_FILES = {
    "vitl": "depth_anything_v2_metric_vkitti_vitl.pth",
    "vitb": "depth_anything_v2_metric_vkitti_vitb.pth",
    "vits": "depth_anything_v2_metric_vkitti_vits.pth",
}
DA2_CONFIGS: dict[str, dict[str, Any]] = {
    "vits": {"encoder": "vits", "features": 64, "out_channels": [48, 96, 192, 384]},
    "vitb": {"encoder": "vitb", "features": 128, "out_channels": [96, 192, 384, 768]},
    "vitl": {"encoder": "vitl", "features": 256, "out_channels": [256, 512, 1024, 1024]},
}
DA2_OUTDOOR_MAX_DEPTH = 80.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def hub_checkpoint_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``: where torch keeps downloaded weights (read here, never written)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights(weights: str | Path | None) -> Path:
    """The weights file to use: ``weights`` if given (must exist), else the first official file in the hub cache."""
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise ReconError(f"{p}: mono depth weights file not found (pass an existing file with --weights)")
        return p
    hub = hub_checkpoint_dir()
    for name in DA2_METRIC_FILES.values():
        if (hub / name).is_file():
            return hub / name
    raise ReconError(
        f"no monocular depth weights: put one of {', '.join(DA2_METRIC_FILES.values())} (Depth Anything V2 "
        f"metric outdoor) in {hub}, or pass --weights PATH (that file, or a TorchScript export); recon never "
        "downloads weights and no PyPI package ships any (checked 2026-12, see recon/priors/mono.py)")


def is_torchscript(path: Path) -> bool:
    """True for a ``torch.jit.save`` archive (a zip holding ``code/`` and ``constants.pkl``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any("/code/" in n or n.startswith("code/") for n in names) and any(n.endswith("constants.pkl")
                                                                              for n in names)


def network_input_size(height: int, width: int, input_size: int = 518, multiple: int = 14) -> tuple[int, int]:
    """(h, w) with the short side about ``input_size``, aspect kept, each a multiple of ``multiple`` (>= it)."""
    s = input_size / min(height, width)
    h = max(multiple, int(round(height * s / multiple)) * multiple)
    w = max(multiple, int(round(width * s / multiple)) * multiple)
    return h, w


class MonoDepthModel:
    """A loaded metric monocular network: ``model(image [H, W, 3] float in [0, 1], fx) -> depth [H, W] metres``."""

    def __init__(self, net: Callable[[Any], Any], name: str, device: str = "cpu", input_size: int = 518,
                 canonical_focal_px: float | None = None) -> None:
        self.net, self.name, self.device = net, name, device
        self.input_size, self.canonical_focal_px = input_size, canonical_focal_px

    def __call__(self, image: np.ndarray, fx: float) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        img = np.asarray(image, dtype=np.float32)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ReconError(f"mono depth: expected an RGB image (H, W, 3), got shape {img.shape}")
        H, W = img.shape[:2]
        h, w = network_input_size(H, W, self.input_size)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].to(self.device)
        x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        with torch.inference_mode():
            out = self.net(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, dict):
            out = out.get("depth", out.get("predicted_depth"))
        if not isinstance(out, torch.Tensor):
            raise ReconError(f"mono depth model {self.name}: output is {type(out).__name__}, expected a tensor")
        d = out.float()
        while d.ndim < 4:
            d = d[None]
        if d.ndim != 4 or d.shape[0] != 1 or d.shape[1] != 1:
            raise ReconError(f"mono depth model {self.name}: output shape {tuple(out.shape)}, expected (1, h, w)")
        if self.canonical_focal_px:
            d = d * (fx * w / W) / self.canonical_focal_px  # canonical camera -> this camera's focal length
        d = F.interpolate(d, size=(H, W), mode="bilinear", align_corners=False)[0, 0]
        depth = d.cpu().numpy()
        return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)


def _load_da2_state_dict(path: Path, device: str) -> Any:
    import torch

    enc = next((e for e in DA2_CONFIGS if f"_{e}" in path.stem), None)
    if enc is None:
        raise ReconError(f"{path}: cannot tell the Depth Anything V2 encoder from the file name (expected "
                         f"one of {', '.join(DA2_METRIC_FILES.values())})")
    if importlib.util.find_spec("depth_anything_v2") is None:
        raise ReconError(
            f"{path}: a Depth Anything V2 state dict needs the network code, which is not installed: put the "
            "Depth-Anything-V2 repository's metric_depth/ folder on PYTHONPATH (package depth_anything_v2), or "
            "pass --weights a TorchScript export of the model")
    try:
        dpt = importlib.import_module("depth_anything_v2.dpt")
        net = dpt.DepthAnythingV2(**DA2_CONFIGS[enc], max_depth=DA2_OUTDOOR_MAX_DEPTH)
    except (ImportError, TypeError) as exc:
        raise ReconError(f"depth_anything_v2 could not build the metric model ({type(exc).__name__}: {exc}); "
                         "use the metric_depth/ version of the package") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ReconError(f"{path}: not a Depth Anything V2 {enc} metric state dict ({type(exc).__name__})") from None
    return net.to(device).eval()


def load_mono_model(weights: str | Path | None = None, device: str = "cpu", input_size: int = 518,
                    canonical_focal_px: float | None = None) -> MonoDepthModel:
    """Load a metric monocular depth network from local weights (see the module docstring)."""
    import torch

    path = resolve_weights(weights)
    if is_torchscript(path):
        try:
            net = torch.jit.load(str(path), map_location=device).eval()
        except Exception as exc:
            raise ReconError(f"{path}: TorchScript archive could not be loaded ({type(exc).__name__})") from None
        return MonoDepthModel(net, f"torchscript:{path.name}", device, input_size, canonical_focal_px)
    return MonoDepthModel(_load_da2_state_dict(path, device), f"depth-anything-v2:{path.name}", device, input_size,
                          canonical_focal_px)


def mono_prior(frame: Frame, model: MonoDepthModel, confidence: float = 0.5,
               use_sky_mask: bool = True) -> DepthPrior:
    """The monocular prior of a frame: source ``mono``, uniform ``confidence`` (a network gives none)."""
    depth = model(frame.load_image(), frame.camera.fx)
    sky = frame.load_sky_mask() if use_sky_mask else None
    if sky is not None:
        depth = np.where(sky, 0.0, depth).astype(np.float32)
    return DepthPrior(depth, np.where(depth > 0, confidence, 0.0), "mono", {"model": model.name})
