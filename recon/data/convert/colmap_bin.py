"""Structural check of a binary COLMAP sparse model before pycolmap reads it.

pycolmap reads a truncated ``cameras.bin`` without complaint (the last parameters come out as 0.0 or garbage, so the
error, if any, is a later "fx 0.0") and reports a truncated ``images.bin`` / ``points3D.bin`` as a C++ check or an
allocation failure. Walking the files' record layout (COLMAP's ``src/colmap/scene/reconstruction_io.cc``, little
endian) finds a file that ends inside a record, or holds bytes after the last one, and names it in one line.

Layouts: ``cameras.bin``: u64 count, then per camera i32 id, i32 model, u64 width, u64 height, f64 params[n(model)].
``images.bin``: u64 count, then per image i32 id, f64 qvec[4], f64 tvec[3], i32 camera id, a NUL-terminated name,
u64 n, then n x (f64 x, f64 y, i64 point id). ``points3D.bin``: u64 count, then per point u64 id, f64 xyz[3], u8
rgb[3], f64 error, u64 n, then n x (i32 image id, i32 point2D index).
"""

from __future__ import annotations

import struct
from pathlib import Path

from recon.errors import ReconError

# COLMAP camera model id -> number of parameters (src/colmap/sensor/models.h)
MODEL_PARAMS = {0: 3, 1: 4, 2: 4, 3: 5, 4: 8, 5: 8, 6: 12, 7: 5, 8: 4, 9: 5, 10: 12, 11: 16}


class _Reader:
    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self.data = path.read_bytes()
        self.pos = 0
        self.record = "the header"

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ReconError(f"{self.path}: truncated COLMAP {self.kind}: the file ends inside {self.record} "
                             f"({len(self.data)} bytes)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def count(self, what: str, record_size: int) -> int:
        """A record count, refused when even the smallest records could not fit in the file."""
        (n,) = self.unpack("Q")
        if n * record_size > len(self.data) - self.pos:
            raise ReconError(f"{self.path}: truncated COLMAP {self.kind}: its {len(self.data)} bytes cannot hold "
                             f"the {n} {what} its header announces")
        return n

    def done(self, what: str) -> None:
        extra = len(self.data) - self.pos
        if extra:
            raise ReconError(f"{self.path}: not a valid COLMAP {self.kind}: {extra} bytes after the last {what}")


def check_cameras_bin(path: Path) -> None:
    r = _Reader(path, "cameras.bin")
    n = r.count("cameras", 24)
    for i in range(n):
        r.record = f"camera {i + 1} of {n}"
        _cid, model, _w, _h = r.unpack("iiQQ")
        if model not in MODEL_PARAMS:
            raise ReconError(f"{path}: not a valid COLMAP cameras.bin: camera {i + 1} of {n} has unknown model id "
                             f"{model}")
        r.take(8 * MODEL_PARAMS[model])
    r.done("camera")


def check_images_bin(path: Path) -> None:
    r = _Reader(path, "images.bin")
    n = r.count("images", 73)
    for i in range(n):
        r.record = f"image {i + 1} of {n}"
        r.take(4 + 56 + 4)
        end = r.data.find(b"\0", r.pos)
        if end < 0:
            r.take(len(r.data) - r.pos + 1)  # the name runs to the end of the file
        r.take(end - r.pos + 1)
        (k,) = r.unpack("Q")
        r.take(24 * k)
    r.done("image")


def check_points3d_bin(path: Path) -> None:
    r = _Reader(path, "points3D.bin")
    n = r.count("points", 51)
    for i in range(n):
        r.record = f"point {i + 1} of {n}"
        r.take(8 + 24 + 3 + 8)
        (k,) = r.unpack("Q")
        r.take(8 * k)
    r.done("point")


def check_binary_model(model_dir: Path) -> None:
    """Check the layout of each binary file of the model in ``model_dir`` (text models are left to pycolmap)."""
    for name, check in (("cameras.bin", check_cameras_bin), ("images.bin", check_images_bin),
                        ("points3D.bin", check_points3d_bin)):
        p = model_dir / name
        if p.is_file() and not (model_dir / name.replace(".bin", ".txt")).is_file():
            check(p)
