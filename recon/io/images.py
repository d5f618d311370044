"""Reading and writing images, depth maps and masks with errors that name the file.

Images are float32 arrays in [0, 1], shape (H, W, 3). Depth maps are float32 metres, shape (H, W), 0 where no
depth is known (sky, no return). Masks are bool (H, W).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from recon.errors import file_error
from recon.io.atomic import atomic_save_npy, atomic_write_bytes


def read_image(path: str | Path) -> np.ndarray:
    """Read an 8- or 16-bit image as float32 RGB in [0, 1], shape (H, W, 3)."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise file_error(path, "image file not found")
    try:
        img = np.asarray(iio.imread(path))
    except Exception as exc:  # imageio raises many types for corrupt data
        raise file_error(path, f"image could not be decoded ({type(exc).__name__})") from None
    if img.dtype == np.uint8:
        out = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        out = img.astype(np.float32) / 65535.0
    elif np.issubdtype(img.dtype, np.floating):
        out = img.astype(np.float32)
    else:
        raise file_error(path, f"unsupported image dtype {img.dtype}")
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    elif out.ndim == 3 and out.shape[2] == 4:
        out = out[..., :3]
    elif out.ndim != 3 or out.shape[2] != 3:
        raise file_error(path, f"expected an RGB or greyscale image, got shape {img.shape}")
    return out


def write_image(path: str | Path, image: np.ndarray, tag: str | None = None) -> Path:
    """Write a float image in [0, 1] (H, W, 3) or (H, W) as an 8-bit PNG/JPEG, atomically.

    ``tag`` (PNG and JPEG only) is stored as the PNG ``Software`` text / the JPEG comment: recon marks the images it
    may later replace with ``--overwrite`` (see :mod:`recon.io.outputs`)."""
    import imageio.v3 as iio

    path = Path(path)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    ext = path.suffix.lower() or ".png"
    kwargs: dict = {}
    if tag is not None and ext == ".png":
        from PIL.PngImagePlugin import PngInfo

        kwargs["pnginfo"] = PngInfo()
        kwargs["pnginfo"].add_text("Software", tag)
    elif tag is not None and ext in (".jpg", ".jpeg"):
        kwargs["comment"] = tag.encode("utf-8")
    buf = io.BytesIO()
    iio.imwrite(buf, arr, extension=ext, **kwargs)
    return atomic_write_bytes(path, buf.getvalue())


def read_depth(path: str | Path, png_scale_mm: float = 1.0) -> np.ndarray:
    """Read a metric depth map (float32 metres, 0 = unknown) from ``.npy`` or 16-bit PNG (millimetres * scale)."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "depth file not found")
    if path.suffix == ".npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise file_error(path, f"depth map could not be read ({type(exc).__name__})") from None
    else:
        import imageio.v3 as iio

        try:
            raw = np.asarray(iio.imread(path))
        except Exception as exc:
            raise file_error(path, f"depth image could not be decoded ({type(exc).__name__})") from None
        depth = raw.astype(np.float32) * (png_scale_mm / 1000.0)
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise file_error(path, f"depth map must be 2-D (H, W), got shape {depth.shape}")
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)
    return depth


def write_depth(path: str | Path, depth: np.ndarray) -> Path:
    """Write a float32 metric depth map as ``.npy`` atomically."""
    return atomic_save_npy(path, np.asarray(depth, dtype=np.float32))


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask image; pixels > 127 (of 255) are True."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise file_error(path, "mask file not found")
    try:
        m = np.asarray(iio.imread(path))
    except Exception as exc:
        raise file_error(path, f"mask could not be decoded ({type(exc).__name__})") from None
    if m.ndim == 3:
        m = m[..., 0]
    return m > (127 if m.dtype == np.uint8 else 0.5 * float(m.max() or 1))


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    """Write a bool mask as an 8-bit PNG (255 = True), atomically."""
    return write_image(path, (np.asarray(mask, dtype=bool).astype(np.uint8) * 255))
