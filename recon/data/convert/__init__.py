"""Converters from public datasets to the recon scene folder (Waymo v2/v1, COLMAP, KITTI, drivestudio)."""

from recon.data.convert.common import ConvertOptions, LensOptions

__all__ = ["ConvertOptions", "LensOptions"]
