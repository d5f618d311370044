"""Image metrics on test views: PSNR and SSIM (and LPIPS only when its weights are already on disk)."""

from __future__ import annotations

import math

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


class LpipsMetric:
    """LPIPS when the ``lpips`` package and its weights are present locally; ``available`` says why not."""

    def __init__(self) -> None:
        self.model = None
        self.reason = ""
        try:
            import lpips  # noqa: F401
        except ImportError:
            self.reason = "LPIPS skipped: the `lpips` package is not installed (its weights are never downloaded)"
            return
        try:
            import lpips

            self.model = lpips.LPIPS(net="alex", verbose=False, pretrained=True)
        except Exception as exc:
            self.reason = f"LPIPS skipped: weights not available locally ({type(exc).__name__})"

    @property
    def available(self) -> bool:
        return self.model is not None

    def __call__(self, pred: torch.Tensor, gt: torch.Tensor) -> float:
        assert self.model is not None
        a = pred.clamp(0, 1).permute(2, 0, 1)[None] * 2 - 1
        b = gt.permute(2, 0, 1)[None] * 2 - 1
        with torch.no_grad():
            return float(self.model(a.cpu(), b.cpu()))
