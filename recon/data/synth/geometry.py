"""Triangle meshes with per-triangle material: texture id, RGB tint and world-space texture coordinates.

World frame: metres, z up, ground at z = 0. Texture coordinates are stored per triangle corner in *tile units*
(1 = one repeat of the texture), computed from world positions so the texture scale is physical: on vertical
faces u runs along the face and v = height above the ground, on horizontal faces (u, v) = (x, y).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from recon.data.synth.textures import Texture


@dataclass
class Mesh:
    """A finished triangle soup: ``vertices`` (V, 3) float32, ``triangles`` (T, 3) int32, per-triangle
    ``tex`` (T,) int64, ``tint`` (T, 3) float32, ``uv`` (T, 3, 2) float32 (tile units) and ``texel_m`` (T,)
    float32 (metres per level-0 texel, for mip selection)."""

    vertices: np.ndarray
    triangles: np.ndarray
    tex: np.ndarray
    tint: np.ndarray
    uv: np.ndarray
    texel_m: np.ndarray


@dataclass
class MeshBuilder:
    """Accumulates quads, boxes and strips; ``build`` returns the :class:`Mesh`."""

    textures: list[Texture]
    _v: list[np.ndarray] = field(default_factory=list)
    _t: list[np.ndarray] = field(default_factory=list)
    _tex: list[int] = field(default_factory=list)
    _tint: list[tuple[float, float, float]] = field(default_factory=list)
    _uv: list[np.ndarray] = field(default_factory=list)
    _texel: list[float] = field(default_factory=list)
    _n: int = 0

    def tex_id(self, name: str) -> int:
        for i, t in enumerate(self.textures):
            if t.name == name:
                return i
        raise KeyError(name)

    def add_tris(self, verts: np.ndarray, tris: np.ndarray, uv_m: np.ndarray, tex: str,
                 tint: tuple[float, float, float] = (1.0, 1.0, 1.0),
                 tile_m: tuple[float, float] | None = None) -> None:
        """Add triangles; ``uv_m`` (V, 2) per vertex in metres. ``tile_m`` overrides the texture's tile size
        (metres per repeat along u, v), e.g. for a poster stretched once over its quad."""
        tid = self.tex_id(tex)
        tu, tv = tile_m or self.textures[tid].tile_m
        if tu <= 0 or tv <= 0:
            raise ValueError(f"texture {tex} needs an explicit tile_m")
        verts = np.asarray(verts, np.float64)
        tris = np.asarray(tris, np.int64)
        uv = np.asarray(uv_m, np.float64) / np.array([tu, tv])
        self._v.append(verts)
        self._t.append(tris + self._n)
        self._n += len(verts)
        self._tex.extend([tid] * len(tris))
        self._tint.extend([tint] * len(tris))
        self._uv.append(uv[tris])
        self._texel.extend([max(tu, tv) / self.textures[tid].rgb.shape[0]] * len(tris))

    def add_quad(self, corners: np.ndarray, uv_m: np.ndarray, tex: str,
                 tint: tuple[float, float, float] = (1.0, 1.0, 1.0),
                 tile_m: tuple[float, float] | None = None) -> None:
        """A planar quad with corners in order (c0, c1, c2, c3) around its edge."""
        self.add_tris(np.asarray(corners), np.array([[0, 1, 2], [0, 2, 3]]), uv_m, tex, tint, tile_m)

    def add_box(self, center_xy: tuple[float, float], z0: float, size: tuple[float, float, float], yaw: float,
                side: str, top: str | None = None, tint: tuple[float, float, float] = (1.0, 1.0, 1.0),
                top_tint: tuple[float, float, float] | None = None, u_offset: float = 0.0) -> None:
        """An oriented box standing on ``z0``: ``size`` = (length along yaw, width, height) in metres.

        Side faces get ``side`` with u along the face (metres from its corner + ``u_offset``) and v = z;
        the top gets ``top`` (default: ``side``) with (u, v) = world (x, y). No bottom face.
        """
        lx, ly, lz = size
        c, s = math.cos(yaw), math.sin(yaw)
        ex, ey = np.array([c, s]) * lx / 2, np.array([-s, c]) * ly / 2
        cxy = np.asarray(center_xy, float)
        base = [cxy - ex - ey, cxy + ex - ey, cxy + ex + ey, cxy - ex + ey]  # counter-clockwise from above
        z1 = z0 + lz
        for i in range(4):
            a, b = base[i], base[(i + 1) % 4]
            w = float(np.linalg.norm(b - a))
            corners = np.array([[a[0], a[1], z0], [b[0], b[1], z0], [b[0], b[1], z1], [a[0], a[1], z1]])
            uv = np.array([[0, z0], [w, z0], [w, z1], [0, z1]]) + np.array([u_offset, 0.0])
            self.add_quad(corners, uv, side, tint)
        corners = np.array([[p[0], p[1], z1] for p in base])
        self.add_quad(corners, corners[:, :2], top or side, top_tint or tint)

    def add_ground_quad(self, x0: float, x1: float, y0: float, y1: float, z: float, tex: str,
                        tint: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> None:
        """A horizontal rectangle at height ``z`` with world-space (x, y) texture coordinates."""
        corners = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])
        self.add_quad(corners, corners[:, :2], tex, tint)

    def build(self) -> Mesh:
        return Mesh(
            vertices=np.concatenate(self._v).astype(np.float32),
            triangles=np.concatenate(self._t).astype(np.int32),
            tex=np.asarray(self._tex, np.int64),
            tint=np.asarray(self._tint, np.float32),
            uv=np.concatenate(self._uv).astype(np.float32),
            texel_m=np.asarray(self._texel, np.float32),
        )
