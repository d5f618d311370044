"""Material textures baked from the photographs scikit-image ships, with a mip pyramid for distance filtering.

Every texture is a square RGB tile (``TEX_SIZE`` texels) that repeats over a stated world size (``tile_m``, metres
per tile along u and v), so texture scale is physical. Row 0 of a tile is v = 0 (the bottom, for facades and
billboards). Values are reflectances in [0, 1]; rendering treats them as linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEX_SIZE = 256
MIP_LEVELS = 9  # 256 .. 1 texels: full filtering, so far textures average out instead of aliasing


@dataclass(frozen=True)
class Texture:
    name: str
    rgb: np.ndarray                 # (TEX_SIZE, TEX_SIZE, 3) float32 in [0, 1]
    tile_m: tuple[float, float]     # metres per tile along u and v (0, 0: set per quad, e.g. posters)


def _photo(name: str) -> np.ndarray:
    """A scikit-image sample photograph as float32 in [0, 1], (H, W) or (H, W, 3)."""
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    return img.astype(np.float32) / 255.0


def _square(img: np.ndarray, size: int = TEX_SIZE) -> np.ndarray:
    """Centre-crop to a square and resize to ``size`` (area averaging), flipped so row 0 is the bottom."""
    from skimage.transform import resize

    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = img[y0:y0 + s, x0:x0 + s]
    out = resize(crop, (size, size) + crop.shape[2:], order=1, anti_aliasing=True, preserve_range=True)
    return np.ascontiguousarray(out[::-1]).astype(np.float32)


def _grey(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else img @ np.array([0.299, 0.587, 0.114], np.float32)


def _normalised(g: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-std detail of a greyscale tile."""
    return (g - g.mean()) / (g.std() + 1e-6)


def _tint(detail: np.ndarray, base: tuple[float, float, float], contrast: float) -> np.ndarray:
    rgb = np.asarray(base, np.float32)[None, None, :] * (1.0 + contrast * detail[..., None])
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def _windows(wall: np.ndarray, cells: tuple[int, int], win: tuple[float, float, float, float],
             rng: np.random.Generator, glass: tuple[float, float, float] = (0.12, 0.16, 0.22)) -> np.ndarray:
    """Paint a grid of windows (with frames and sills) over a wall tile.

    ``cells`` = (columns, floors) per tile; ``win`` = (u0, u1, v0, v1) of the glass inside one cell, in [0, 1].
    """
    s = wall.shape[0]
    out = wall.copy()
    yy, xx = (np.mgrid[0:s, 0:s].astype(np.float32) + 0.5) / s
    gu, gv = xx * cells[0], yy * cells[1]
    fu, fv = gu % 1.0, gv % 1.0
    frame = (fu > win[0] - 0.04) & (fu < win[1] + 0.04) & (fv > win[2] - 0.05) & (fv < win[3] + 0.04)
    pane = (fu > win[0]) & (fu < win[1]) & (fv > win[2]) & (fv < win[3])
    out[frame] = 0.55 * out[frame] + 0.35
    # each window reflects a slightly different sky: brightness varies per pane and upwards inside it
    col, row = gu.astype(int), gv.astype(int)
    pane_gain = rng.uniform(0.7, 1.6, size=(cells[1], cells[0])).astype(np.float32)[row, col]
    grad = 0.7 + 0.6 * np.clip((fv - win[2]) / max(win[3] - win[2], 1e-3), 0, 1)
    glass_rgb = np.asarray(glass, np.float32)[None, None] * (pane_gain * grad)[..., None]
    out[pane] = glass_rgb[pane]
    mullion = pane & (np.abs(fu - 0.5 * (win[0] + win[1])) < 0.015)
    out[mullion] = 0.5
    return np.clip(out, 0, 1).astype(np.float32)


def build_textures(seed: int = 0) -> list[Texture]:
    """All material textures, in a fixed order (their index is the texture id used by the meshes)."""
    rng = np.random.default_rng(10_000 + seed)
    # the photographed bricks run vertically: transpose so courses are horizontal on walls
    brick = np.ascontiguousarray(_normalised(_square(_grey(_photo("brick")))).T)
    gravel = _normalised(_square(_grey(_photo("gravel"))))
    grass = _normalised(_square(_grey(_photo("grass"))))
    moon = _normalised(_square(_grey(_photo("moon"))))

    tex: list[Texture] = [
        Texture("asphalt", _tint(gravel, (0.26, 0.26, 0.27), 0.35), (3.0, 3.0)),
        Texture("sidewalk", _tint(brick, (0.55, 0.53, 0.50), 0.30), (2.0, 2.0)),
        Texture("grass", _tint(grass, (0.25, 0.42, 0.16), 0.45), (3.0, 3.0)),
        Texture("paint", _tint(gravel, (0.88, 0.88, 0.84), 0.06), (1.0, 1.0)),
        Texture("brick_facade", _windows(_tint(brick, (0.55, 0.30, 0.22), 0.35), (2, 2),
                                         (0.25, 0.75, 0.28, 0.80), rng), (6.0, 6.4)),
        Texture("plaster_facade", _windows(_tint(0.6 * gravel + 0.4 * moon, (0.78, 0.72, 0.60), 0.18), (3, 2),
                                           (0.20, 0.80, 0.30, 0.78), rng), (7.5, 6.4)),
        Texture("stone_facade", _windows(_tint(0.5 * gravel + 0.5 * moon, (0.62, 0.62, 0.60), 0.22), (2, 2),
                                         (0.30, 0.70, 0.22, 0.85), rng), (5.0, 7.0)),
        Texture("office_facade", _windows(_tint(moon, (0.55, 0.58, 0.62), 0.15), (4, 4),
                                          (0.08, 0.92, 0.12, 0.92), rng, (0.16, 0.24, 0.34)), (8.0, 14.0)),
        Texture("car_paint", _tint(moon, (1.0, 1.0, 1.0), 0.05), (2.0, 2.0)),
        Texture("glass", _tint(0.5 * moon + 0.5 * gravel, (0.10, 0.12, 0.15), 0.12), (1.5, 1.5)),
        Texture("rubber", _tint(gravel, (0.06, 0.06, 0.06), 0.3), (0.5, 0.5)),
        Texture("metal", _tint(moon, (0.45, 0.46, 0.48), 0.12), (1.0, 1.0)),
        Texture("roof", _tint(gravel, (0.40, 0.38, 0.37), 0.3), (4.0, 4.0)),
        Texture("hill", _tint(0.6 * grass + 0.4 * gravel, (0.30, 0.36, 0.24), 0.5), (25.0, 25.0)),
        Texture("foliage", _tint(grass, (0.16, 0.30, 0.10), 0.6), (2.0, 2.0)),
        Texture("bark", _tint(brick, (0.30, 0.22, 0.15), 0.4), (1.0, 1.0)),
    ]
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        tex.append(Texture(f"poster_{name}", np.clip(_square(_photo(name)), 0, 1), (0.0, 0.0)))
    return tex


POSTERS = ("poster_astronaut", "poster_coffee", "poster_chelsea", "poster_rocket")


@dataclass
class MipAtlas:
    """All textures and their mip levels packed in one padded image, sampled with ``torch.grid_sample``.

    Level ``l`` of texture ``t`` is a tile of ``TEX_SIZE >> l`` texels with a one-texel wrap-around border, so
    bilinear filtering inside a tile repeats the texture seamlessly without touching its neighbours.
    """

    image: np.ndarray       # (H, W, 3) float32
    x0: np.ndarray          # (n_textures, MIP_LEVELS) float32: atlas column of texel (0, 0) of each tile
    y0: np.ndarray          # (MIP_LEVELS,) float32: atlas row of texel (0, 0) of each level
    sizes: np.ndarray       # (MIP_LEVELS,) float32: texels per side of each level

    @classmethod
    def from_textures(cls, textures: list[Texture]) -> MipAtlas:
        m = len(textures)
        pyramids = []
        for tx in textures:
            img = tx.rgb.astype(np.float32)
            levels = []
            for lvl in range(MIP_LEVELS):
                levels.append(img)
                if lvl == MIP_LEVELS - 1:
                    break
                h = img.shape[0] // 2
                img = img.reshape(h, 2, h, 2, 3).mean(axis=(1, 3))
            pyramids.append(levels)
        sizes = np.array([TEX_SIZE >> lvl for lvl in range(MIP_LEVELS)], np.float32)
        width = m * (TEX_SIZE + 2)
        height = int(sum(sizes + 2))
        atlas = np.zeros((height, width, 3), np.float32)
        x0 = np.zeros((m, MIP_LEVELS), np.float32)
        y0 = np.zeros(MIP_LEVELS, np.float32)
        row = 0
        for lvl in range(MIP_LEVELS):
            s = int(sizes[lvl])
            y0[lvl] = row + 1
            for t in range(m):
                col = t * (s + 2)
                atlas[row:row + s + 2, col:col + s + 2] = np.pad(pyramids[t][lvl], ((1, 1), (1, 1), (0, 0)), "wrap")
                x0[t, lvl] = col + 1
            row += s + 2
        return cls(atlas, x0, y0, sizes)

    def __post_init__(self) -> None:
        import torch

        self._tensor = torch.from_numpy(np.ascontiguousarray(self.image.transpose(2, 0, 1)))[None]

    def sample(self, tex: np.ndarray, u: np.ndarray, v: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Trilinear lookup with wrap-around: RGB (N, 3) float32. ``u, v`` in tile units (1 = one tile),
        ``level`` (N,) float mip level (0 = full resolution; clamped to the coarsest)."""
        import torch

        n = len(tex)
        level = np.clip(level, 0.0, MIP_LEVELS - 1.0).astype(np.float32)
        l0 = level.astype(np.int64)
        l1 = np.minimum(l0 + 1, MIP_LEVELS - 1)
        w = (level - l0)[:, None]
        uf = (u - np.floor(u)).astype(np.float32)
        vf = (v - np.floor(v)).astype(np.float32)
        h, wd = self.image.shape[:2]
        grid = np.empty((2 * n, 2), np.float32)
        for k, lv in enumerate((l0, l1)):
            s = self.sizes[lv]
            # atlas pixel coordinate (texel centres at i + 0.5) -> grid_sample's [-1, 1] (align_corners=False)
            grid[k * n:(k + 1) * n, 0] = (self.x0[tex, lv] + uf * s) * (2.0 / wd) - 1.0
            grid[k * n:(k + 1) * n, 1] = (self.y0[lv] + vf * s) * (2.0 / h) - 1.0
        out = torch.nn.functional.grid_sample(self._tensor, torch.from_numpy(grid)[None, None], mode="bilinear",
                                              padding_mode="border", align_corners=False)
        rgb = out[0, :, 0].T.numpy()
        a, b = rgb[:n], rgb[n:]
        return a + w * (b - a)
