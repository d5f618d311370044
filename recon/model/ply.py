"""The standard 3D Gaussian Splatting PLY file: what the INRIA code, gsplat's exporter, SuperSplat and Spark read.

One ``vertex`` element, ``binary_little_endian 1.0``, float32 properties in this order::

    x y z                       centre, world frame, metres
    nx ny nz                    unused normals (written as 0; the INRIA code writes them, gsplat does not)
    f_dc_0 f_dc_1 f_dc_2        SH degree-0 coefficient per channel (R, G, B); colour = 0.5 + C0 * f_dc
    f_rest_0 .. f_rest_{3K-1}   higher SH coefficients, K = (deg+1)^2 - 1, CHANNEL-MAJOR: the K red
                                coefficients, then the K green, then the K blue (INRIA: features_rest.transpose(1, 2);
                                gsplat: shN.permute(0, 2, 1))
    opacity                     logit of the opacity (sigmoid gives [0, 1])
    scale_0 scale_1 scale_2     log of the standard deviations along the local axes (metres)
    rot_0 rot_1 rot_2 rot_3     rotation quaternion w, x, y, z (not necessarily normalised)

In memory (:class:`GaussianData`, gsplat's conventions) the SH coefficients are ``sh0 [N, 1, 3]`` and
``shN [N, K, 3]`` (coefficient-major, channel last). :func:`load_ply` reads any property order, extra properties,
other scalar types, ascii and big-endian files, and raises :class:`~recon.errors.ReconError` with one line naming
the file and what is missing when the file is not a 3DGS PLY.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recon.errors import ReconError
from recon.io.atomic import atomic_write_with

SH_C0 = 0.28209479177387814
"""Spherical-harmonics degree-0 basis constant: rgb = 0.5 + SH_C0 * f_dc."""

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_MAX_HEADER_BYTES = 1 << 20


def num_rest_coeffs(sh_degree: int) -> int:
    """K, the number of SH coefficients per channel beyond degree 0: (deg+1)^2 - 1."""
    return (sh_degree + 1) ** 2 - 1


@dataclass
class GaussianData:
    """Gaussians as stored in a PLY (raw, un-activated parameters), numpy float32.

    ``means [N, 3]`` metres (world), ``quats [N, 4]`` wxyz, ``log_scales [N, 3]`` (log metres),
    ``opacity_logits [N]``, ``sh0 [N, 1, 3]``, ``shN [N, K, 3]`` with K = (sh_degree+1)^2 - 1.
    """

    means: np.ndarray
    quats: np.ndarray
    log_scales: np.ndarray
    opacity_logits: np.ndarray
    sh0: np.ndarray
    shN: np.ndarray
    sh_degree: int

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def scales(self) -> np.ndarray:
        """Standard deviations along the local axes in metres [N, 3]."""
        return np.exp(self.log_scales)

    @property
    def opacities(self) -> np.ndarray:
        """Opacities in [0, 1], shape [N]."""
        return 1.0 / (1.0 + np.exp(-self.opacity_logits))

    @property
    def normalized_quats(self) -> np.ndarray:
        """Unit quaternions wxyz [N, 4] (a zero quaternion becomes the identity)."""
        n = np.linalg.norm(self.quats, axis=1, keepdims=True)
        out = np.where(n > 0, self.quats / np.maximum(n, 1e-12), np.array([1.0, 0.0, 0.0, 0.0], np.float32))
        return out.astype(np.float32)

    @property
    def sh(self) -> np.ndarray:
        """All SH coefficients [N, (deg+1)^2, 3] (degree 0 first), as gsplat's ``colors`` with ``sh_degree``."""
        return np.concatenate([self.sh0, self.shN], axis=1)

    def base_colors(self) -> np.ndarray:
        """View-independent RGB in [0, 1] from the degree-0 coefficient only [N, 3]."""
        return np.clip(0.5 + SH_C0 * self.sh0[:, 0, :], 0.0, 1.0)

    def covariances(self) -> np.ndarray:
        """World-frame 3x3 covariances R S S^T R^T [N, 3, 3] (square metres)."""
        q = self.normalized_quats.astype(np.float64)
        w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
        rot = np.stack([
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ], axis=1).reshape(-1, 3, 3)
        m = rot * self.scales.astype(np.float64)[:, None, :]
        return np.einsum("nij,nkj->nik", m, m).astype(np.float32)

    def subset(self, index: np.ndarray) -> GaussianData:
        """The Gaussians selected by an index or boolean mask."""
        return GaussianData(self.means[index], self.quats[index], self.log_scales[index],
                            self.opacity_logits[index], self.sh0[index], self.shN[index], self.sh_degree)

    def finite_mask(self) -> np.ndarray:
        """Bool [N]: True where every parameter of the Gaussian is finite (a NaN position or scale makes a splat
        that draws nothing and poisons medians and bounds)."""
        n = len(self)
        arrays = (self.means, self.quats, self.log_scales, self.opacity_logits[:, None], self.sh0.reshape(n, -1),
                  self.shN.reshape(n, -1))
        return np.all(np.concatenate([np.isfinite(a) for a in arrays], axis=1), axis=1)

    def to_torch(self, device: Any = "cpu") -> dict[str, Any]:
        """The arrays as float32 torch tensors on ``device`` (keys as the dataclass fields, minus sh_degree)."""
        import torch

        return {k: torch.as_tensor(np.ascontiguousarray(getattr(self, k)), dtype=torch.float32, device=device)
                for k in ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN")}


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, possibly on CUDA
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def ply_header(n: int, sh_degree: int) -> bytes:
    """The ASCII header of a standard 3DGS PLY with ``n`` vertices."""
    props = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    props += [f"f_rest_{i}" for i in range(3 * num_rest_coeffs(sh_degree))]
    props += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    lines += [f"property float {p}" for p in props]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")


def save_ply(path: str | Path, means: Any, quats: Any, log_scales: Any, opacity_logits: Any, sh0: Any,
             shN: Any) -> Path:
    """Write Gaussians as a standard 3DGS PLY, atomically.

    Arguments are numpy arrays or torch tensors (any device): ``means [N, 3]`` metres, ``quats [N, 4]`` wxyz,
    ``log_scales [N, 3]``, ``opacity_logits [N]`` (or [N, 1]), ``sh0 [N, 1, 3]`` (or [N, 3]), ``shN [N, K, 3]``
    with K = (deg+1)^2 - 1 (K = 0 for degree 0). Returns the path written.
    """
    path = Path(path)
    m = _as_numpy(means)
    n = m.shape[0] if m.ndim == 2 else -1
    q, s = _as_numpy(quats), _as_numpy(log_scales)
    o = _as_numpy(opacity_logits).reshape(-1)
    c0 = _as_numpy(sh0)
    if c0.ndim == 3 and c0.shape[1] == 1:
        c0 = c0[:, 0, :]
    cn = _as_numpy(shN)
    if cn.ndim == 2 and cn.shape[1] == 0:
        cn = cn.reshape(len(cn), 0, 3)
    problems = []
    if m.ndim != 2 or m.shape[1] != 3:
        problems.append(f"means {m.shape} (want [N, 3])")
    if q.shape != (n, 4):
        problems.append(f"quats {q.shape} (want [{n}, 4])")
    if s.shape != (n, 3):
        problems.append(f"log_scales {s.shape} (want [{n}, 3])")
    if o.shape != (n,):
        problems.append(f"opacity_logits {o.shape} (want [{n}])")
    if c0.shape != (n, 3):
        problems.append(f"sh0 {tuple(np.shape(sh0))} (want [{n}, 1, 3])")
    if cn.ndim != 3 or cn.shape[0] != n or cn.shape[2] != 3:
        problems.append(f"shN {cn.shape} (want [{n}, K, 3])")
    degree = next((d for d in range(5) if cn.ndim == 3 and num_rest_coeffs(d) == cn.shape[1]), None)
    if degree is None and not problems:
        problems.append(f"shN has {cn.shape[1]} coefficients per channel, not (deg+1)^2-1 for a degree 0..4")
    if problems:
        raise ReconError(f"{path}: cannot write a 3DGS PLY: bad array shapes: {'; '.join(problems)}")
    assert degree is not None
    rest = cn.transpose(0, 2, 1).reshape(n, -1)  # channel-major: all R coefficients, then G, then B
    data = np.concatenate([m, np.zeros((n, 3), np.float32), c0, rest, o[:, None], s, q], axis=1)
    body = np.ascontiguousarray(data, dtype="<f4").tobytes()
    header = ply_header(n, degree)

    def write(f: Any) -> None:
        f.write(header)
        f.write(body)

    return atomic_write_with(path, write)


@dataclass
class _Element:
    name: str
    count: int
    props: list[tuple[str, str]]  # (name, numpy dtype code); list properties are marked "list"


def _parse_header(path: Path, raw: bytes) -> tuple[str, list[_Element], int]:
    """(format, elements, byte offset of the body)."""
    if not raw.startswith(b"ply"):
        raise ReconError(f"{path}: not a PLY file (it does not start with 'ply')")
    end = re.search(rb"end_header\r?\n", raw)
    if end is None:
        raise ReconError(f"{path}: PLY header has no 'end_header' line (truncated or not a PLY)")
    try:
        text = raw[: end.start()].decode("ascii")
    except UnicodeDecodeError:
        raise ReconError(f"{path}: PLY header is not ASCII text") from None
    fmt = ""
    elements: list[_Element] = []
    for line in text.splitlines()[1:]:
        tok = line.split()
        if not tok or tok[0] in ("comment", "obj_info"):
            continue
        if tok[0] == "format" and len(tok) >= 2:
            fmt = tok[1]
        elif tok[0] == "element" and len(tok) == 3:
            try:
                count = int(tok[2])
            except ValueError:
                raise ReconError(f"{path}: bad PLY element line {line!r}") from None
            if count < 0:
                raise ReconError(f"{path}: bad PLY element line {line!r} (a negative count)")
            elements.append(_Element(tok[1], count, []))
        elif tok[0] == "property" and elements:
            if tok[1] == "list":
                elements[-1].props.append((tok[-1], "list"))
            elif len(tok) == 3 and tok[1] in _PLY_TYPES:
                elements[-1].props.append((tok[2], _PLY_TYPES[tok[1]]))
            else:
                raise ReconError(f"{path}: unsupported PLY property line {line!r}")
    if fmt not in ("binary_little_endian", "binary_big_endian", "ascii"):
        raise ReconError(f"{path}: unsupported PLY format {fmt!r}")
    return fmt, elements, end.end()


def _required_props(names: set[str], path: Path) -> int:
    """Check the 3DGS properties are present; return the SH degree."""
    base = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3"]
    missing = [p for p in base if p not in names]
    if missing:
        raise ReconError(f"{path}: not a 3DGS PLY: vertex properties missing: {' '.join(missing)}")
    n_rest = sum(1 for p in names if re.fullmatch(r"f_rest_\d+", p))
    degree = next((d for d in range(5) if 3 * num_rest_coeffs(d) == n_rest), None)
    if degree is None:
        raise ReconError(f"{path}: not a 3DGS PLY: {n_rest} f_rest properties is not 3*((deg+1)^2-1) "
                         "for any SH degree 0..4")
    gaps = [f"f_rest_{i}" for i in range(n_rest) if f"f_rest_{i}" not in names]
    if gaps:
        raise ReconError(f"{path}: not a 3DGS PLY: vertex properties missing: {' '.join(gaps[:5])}")
    return degree


def load_ply(path: str | Path) -> GaussianData:
    """Read a standard 3DGS PLY (see the module docstring) into :class:`GaussianData`."""
    path = Path(path)
    if not path.is_file():
        raise ReconError(f"{path}: PLY file not found")
    data = path.read_bytes()
    fmt, elements, offset = _parse_header(path, data[:_MAX_HEADER_BYTES])
    vi = next((i for i, e in enumerate(elements) if e.name == "vertex"), None)
    if vi is None:
        raise ReconError(f"{path}: not a 3DGS PLY: no 'vertex' element")
    vert = elements[vi]
    names = {p for p, _ in vert.props}
    degree = _required_props(names, path)
    if any(t == "list" for _, t in vert.props):
        raise ReconError(f"{path}: not a 3DGS PLY: the vertex element has list properties")
    n = vert.count
    if fmt == "ascii":
        if vi != 0:
            raise ReconError(f"{path}: ascii PLY with elements before 'vertex' is not supported")
        try:
            table = np.loadtxt(io.BytesIO(data[offset:]), dtype=np.float64, max_rows=n, ndmin=2)
        except ValueError as exc:
            raise ReconError(f"{path}: ascii PLY body could not be parsed ({exc})") from None
        if table.shape != (n, len(vert.props)) and not (n == 0 and table.size == 0):
            raise ReconError(f"{path}: truncated ascii PLY: expected {n} rows of {len(vert.props)} values, "
                             f"got {table.shape[0]} rows")
        cols = {p: table[:, j] if n else np.zeros(0) for j, (p, _) in enumerate(vert.props)}
    else:
        endian = "<" if fmt == "binary_little_endian" else ">"
        for e in elements[:vi]:
            if any(t == "list" for _, t in e.props):
                raise ReconError(f"{path}: PLY element {e.name!r} before 'vertex' has list properties")
            offset += e.count * np.dtype([(p, endian + t) for p, t in e.props]).itemsize
        dtype = np.dtype([(p, endian + t) for p, t in vert.props])
        need = n * dtype.itemsize
        have = len(data) - offset
        if have < need:
            raise ReconError(f"{path}: truncated PLY: {n} vertices need {need} bytes after the header, "
                             f"only {max(have, 0)} present")
        arr = np.frombuffer(data, dtype=dtype, count=n, offset=offset)
        cols = {p: arr[p] for p in names}

    def stack(keys: list[str]) -> np.ndarray:
        if not keys:
            return np.zeros((n, 0), np.float32)
        return np.stack([np.asarray(cols[k], dtype=np.float32) for k in keys], axis=1)

    k = num_rest_coeffs(degree)
    rest = stack([f"f_rest_{i}" for i in range(3 * k)]).reshape(n, 3, k).transpose(0, 2, 1)
    return GaussianData(
        means=stack(["x", "y", "z"]),
        quats=stack(["rot_0", "rot_1", "rot_2", "rot_3"]),
        log_scales=stack(["scale_0", "scale_1", "scale_2"]),
        opacity_logits=np.asarray(cols["opacity"], dtype=np.float32).copy(),
        sh0=stack(["f_dc_0", "f_dc_1", "f_dc_2"]).reshape(n, 1, 3),
        shN=np.ascontiguousarray(rest),
        sh_degree=degree,
    )
