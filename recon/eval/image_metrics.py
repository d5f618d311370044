"""Image metrics on test views: PSNR and SSIM (and LPIPS only when its weights are already on disk)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from recon.losses.photometric import ssim_map


def psnr(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """PSNR in dB for images in [0, 1] of any matching shape."""
    mse = float(torch.mean((pred.clamp(0, 1) - gt) ** 2))
    return -10.0 * math.log10(max(mse, 1e-12))


def ssim(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean SSIM of (H, W, 3) images in [0, 1] (11x11 Gaussian window, sigma 1.5)."""
    a = pred.clamp(0, 1).permute(2, 0, 1)[None].double()
    b = gt.permute(2, 0, 1)[None].double()
    return float(ssim_map(a, b).mean())


ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
"""torchvision's ImageNet AlexNet weights, the trunk LPIPS (alex) runs on; the `lpips` package ships only its
small linear layers and would download this file."""


def default_alexnet_weights() -> Path:
    """Where torchvision keeps the AlexNet weights once downloaded: ``<torch hub dir>/checkpoints/`` (TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def _trunk_state(lp_net: torch.nn.Module, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map torchvision's ``features.<i>.<param>`` keys onto lpips' ``slice<k>.<i>.<param>`` modules."""
    where = {name.split(".")[1]: name.split(".")[0] for name, _ in lp_net.named_modules() if name.count(".") == 1}
    out = {}
    for key, v in features.items():
        if key.startswith("features."):
            _, i, param = key.split(".", 2)
            if i in where:
                out[f"{where[i]}.{i}.{param}"] = v
    return out


class LpipsMetric:
    """LPIPS (alex) from local files only; ``available`` is False, with ``reason`` set, when any is missing.

    Never downloads: the trunk is built untrained (``pnet_rand``) and filled from ``weights`` (default: torchvision's
    file in the torch hub cache, :func:`default_alexnet_weights`); the linear layers come inside the `lpips` package.
    """

    def __init__(self, weights: str | Path | None = None) -> None:
        self.model = None
        self.reason = ""
        try:
            import lpips
        except ImportError:
            self.reason = "LPIPS skipped: the `lpips` package is not installed (its weights are never downloaded)"
            return
        path = Path(weights) if weights is not None else default_alexnet_weights()
        if not path.is_file():
            self.reason = (f"LPIPS skipped: AlexNet weights not found at {path} (recon never downloads them; put "
                           f"torchvision's {ALEXNET_FILE} there)")
            return
        try:
            features = torch.load(path, map_location="cpu", weights_only=True)
            model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
            model.net.load_state_dict(_trunk_state(model.net, features), strict=True)
        except Exception as exc:
            self.reason = f"LPIPS skipped: {path}: AlexNet weights could not be loaded ({type(exc).__name__})"
            return
        self.model = model.eval()

    @property
    def available(self) -> bool:
        return self.model is not None

    def __call__(self, pred: torch.Tensor, gt: torch.Tensor) -> float:
        assert self.model is not None
        a = pred.clamp(0, 1).permute(2, 0, 1)[None] * 2 - 1
        b = gt.permute(2, 0, 1)[None] * 2 - 1
        with torch.no_grad():
            return float(self.model(a.cpu(), b.cpu()))
