"""Thin-lens optics: circle of confusion, aperture kernels and the differentiable defocus convolution."""

from recon.optics.defocus import blur_layers, defocus, defocus_coc, gather_defocus, signed_coc
from recon.optics.kernels import ApertureKernel, kernel_weights, parse_kernel
from recon.optics.thin_lens import (
    Lens,
    aperture_diameter_m,
    aperture_for_max_blur,
    coc_from_camera,
    coc_px,
    fx_from_lens,
    inverse_depth_from_coc,
    lens_from_camera,
    lens_from_values,
)

__all__ = [
    "ApertureKernel", "Lens", "aperture_diameter_m", "aperture_for_max_blur", "blur_layers", "coc_from_camera",
    "coc_px", "defocus", "defocus_coc", "fx_from_lens", "gather_defocus", "inverse_depth_from_coc",
    "kernel_weights", "lens_from_camera", "lens_from_values", "parse_kernel", "signed_coc",
]
