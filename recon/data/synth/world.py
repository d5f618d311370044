"""The procedural street: road, kerbs and sidewalks, lane paint, parked cars, poles and signs (2-8 m from the
ego path), facades of varied height and setback (10-80 m), skyline towers (140-300 m) and a ring of hills
(about 320-380 m), all textured from photographs.

World frame (metres): z up, ground at z = 0, x along the street (the ego drives towards +x), y to the left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recon.data.synth.config import LAYOUTS, Layout, SynthConfig
from recon.data.synth.geometry import Mesh, MeshBuilder
from recon.data.synth.textures import POSTERS, Texture

FACADES = ("brick_facade", "plaster_facade", "stone_facade")
CAR_COLOURS = ((0.75, 0.1, 0.08), (0.1, 0.2, 0.6), (0.85, 0.85, 0.85), (0.12, 0.12, 0.13), (0.5, 0.52, 0.55),
               (0.15, 0.4, 0.2), (0.8, 0.6, 0.1), (0.4, 0.1, 0.3))
SKYLINE_CENTRE = (60.0, 0.0)  # towers and hills are placed around this point (metres)


@dataclass
class World:
    """The static scene and where things are: mesh, unit sun direction, layout, and the ego lane offset."""

    mesh: Mesh
    sun_dir: np.ndarray
    layout: Layout
    n_triangles: int


def _jitter(rng: np.random.Generator, c: tuple[float, float, float], amount: float = 0.12) -> tuple[float, ...]:
    return tuple(float(x) for x in np.clip(np.asarray(c) * rng.uniform(1 - amount, 1 + amount, 3), 0, 1.5))


def _road(b: MeshBuilder, lay: Layout, cross_x: float, cross_w: float) -> None:
    rw, sw = lay.road_half_width, lay.sidewalk_width
    x0, x1 = -150.0, 450.0
    b.add_ground_quad(-700, 700, -700, 700, -0.05, "grass")            # open land all round
    b.add_ground_quad(x0, x1, -rw, rw, 0.0, "asphalt")
    for side in (-1, 1):                                                # kerbs with sidewalks, cut at the crossing
        for a, e in ((x0, cross_x - cross_w / 2), (cross_x + cross_w / 2, x1)):
            b.add_box((0.5 * (a + e), side * (rw + sw / 2)), -0.05, (e - a, sw, 0.20), 0.0, "sidewalk")
    # lane paint (1 cm above the asphalt): dashed centre line, solid parking-lane lines
    for x in np.arange(x0, x1, 9.0):
        b.add_ground_quad(x, x + 3.0, -0.075, 0.075, 0.01, "paint")
    for side in (-1, 1):
        y = side * (rw - 2.2)
        b.add_ground_quad(x0, x1, y - 0.06, y + 0.06, 0.01, "paint")


def _cross_street(b: MeshBuilder, x: float, width: float, rw: float) -> None:
    for y0, y1 in ((-400.0, -rw), (rw, 400.0)):       # beside the main road, not on top of it
        b.add_ground_quad(x - width / 2, x + width / 2, y0, y1, 0.0, "asphalt")


def _car(b: MeshBuilder, rng: np.random.Generator, x: float, y: float, yaw: float) -> None:
    length = rng.uniform(4.0, 4.9)
    colour = _jitter(rng, CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], 0.08)
    c, s = math.cos(yaw), math.sin(yaw)
    b.add_box((x, y), 0.30, (length, 1.80, 0.72), yaw, "car_paint", tint=colour)
    # cabin (glass sides, painted roof), set a little back from the centre
    cx, cy = x - 0.15 * length * c, y - 0.15 * length * s
    b.add_box((cx, cy), 1.02, (0.5 * length, 1.62, 0.52), yaw, "glass", "car_paint", top_tint=colour)
    for fx in (-0.32, 0.32):
        for fy in (-0.80, 0.80):
            wx, wy = x + fx * length * c - fy * s, y + fx * length * s + fy * c
            b.add_box((wx, wy), 0.0, (0.66, 0.24, 0.66), yaw, "rubber")
    for fy in (-0.6, 0.6):   # head lights
        hx, hy = x + 0.5 * length * c - fy * s, y + 0.5 * length * s + fy * c
        b.add_box((hx, hy), 0.68, (0.04, 0.30, 0.14), yaw, "paint")


def _pole(b: MeshBuilder, rng: np.random.Generator, x: float, y: float, toward_road: float) -> None:
    h = rng.uniform(5.5, 7.5)
    b.add_box((x, y), 0.0, (0.18, 0.18, h), 0.0, "metal")
    b.add_box((x, y + toward_road * 0.9), h - 0.25, (0.12, 1.8, 0.12), 0.0, "metal")      # arm
    b.add_box((x, y + toward_road * 1.7), h - 0.45, (0.45, 0.30, 0.22), 0.0, "metal", "paint")  # lamp


def _sign(b: MeshBuilder, rng: np.random.Generator, x: float, y: float) -> None:
    b.add_box((x, y), 0.0, (0.08, 0.08, 2.3), 0.0, "metal")
    tint = _jitter(rng, ((0.9, 0.15, 0.1), (0.1, 0.3, 0.8), (0.95, 0.8, 0.1))[int(rng.integers(3))], 0.05)
    b.add_box((x, y), 2.0, (0.06, 0.7, 0.7), 0.0, "paint", tint=tint)


def _tree(b: MeshBuilder, rng: np.random.Generator, x: float, y: float) -> None:
    h = rng.uniform(2.2, 3.0)
    b.add_box((x, y), 0.0, (0.3, 0.3, h + 0.5), 0.0, "bark")
    s = rng.uniform(2.5, 3.8)
    b.add_box((x, y), h, (s, s, rng.uniform(2.5, 4.0)), rng.uniform(0, math.pi / 2), "foliage",
              tint=_jitter(rng, (1.0, 1.0, 1.0), 0.15))


def _buildings(b: MeshBuilder, rng: np.random.Generator, lay: Layout, side: int, cross_x: float,
               cross_w: float) -> None:
    """A row of buildings on one side of the street (side = +1 left, -1 right)."""
    x = -40.0 - rng.uniform(0, 10)
    while x < lay.street_length:
        width = rng.uniform(8.0, 30.0)
        if x + width > cross_x - cross_w / 2 and x < cross_x + cross_w / 2:      # keep the cross street open
            x = cross_x + cross_w / 2 + rng.uniform(1, 4)
            continue
        depth = rng.uniform(10.0, 25.0)
        far = rng.random() < lay.plaza_prob
        setback = rng.uniform(40.0, 78.0) if far else lay.facade_min_setback + rng.uniform(0, lay.facade_extra_setback)
        height = rng.uniform(*lay.height_range) * (0.6 if far else 1.0)
        tex = FACADES[int(rng.integers(len(FACADES)))]
        tint = _jitter(rng, (1.0, 1.0, 1.0), 0.15)
        cy = side * (setback + depth / 2)
        b.add_box((x + width / 2, cy), -0.05, (width, depth, height + 0.05), 0.0, tex, "roof", tint=tint,
                  top_tint=(1.0, 1.0, 1.0), u_offset=float(rng.uniform(0, 50)))
        if not far and rng.random() < 0.45:   # a poster or shop sign on the street-facing facade
            size = rng.uniform(1.8, 3.2)
            px = x + rng.uniform(0.5, max(0.6, width - size - 0.5))
            py = side * (setback - 0.03)
            z0 = rng.uniform(0.6, 1.5)
            corners = np.array([[px, py, z0], [px + size, py, z0], [px + size, py, z0 + size], [px, py, z0 + size]])
            if side > 0:   # seen from the street the left facade runs the other way: keep posters unmirrored
                corners = corners[[1, 0, 3, 2]]
            uv = np.array([[0, 0], [size, 0], [size, size], [0, size]])
            b.add_quad(corners, uv, POSTERS[int(rng.integers(len(POSTERS)))], tile_m=(size, size))
        gap = rng.uniform(0.0, 4.0) if rng.random() < 0.75 else rng.uniform(6.0, 16.0)
        x += width + gap


def _street_furniture(b: MeshBuilder, rng: np.random.Generator, lay: Layout, cross_x: float,
                      cross_w: float) -> None:
    rw = lay.road_half_width
    for side in (-1, 1):
        x = -30.0 + rng.uniform(0, 5)
        while x < lay.street_length:
            length_slot = rng.uniform(5.0, 8.0)
            in_cross = abs(x - cross_x) < cross_w / 2 + 3
            if not in_cross and rng.random() < lay.parked_car_prob:
                _car(b, rng, x, side * (rw - 1.1), 0.0 if side < 0 else math.pi)
            x += length_slot
        x = -30.0 + rng.uniform(0, 10)
        while x < lay.street_length:
            if abs(x - cross_x) > cross_w / 2 + 1:
                _pole(b, rng, x, side * (rw + 0.5), -side)
            x += rng.uniform(18.0, 30.0)
        x = -25.0 + rng.uniform(0, 20)
        while x < lay.street_length:
            if abs(x - cross_x) > cross_w / 2 + 1:
                _sign(b, rng, x, side * (rw + 0.35))
            x += rng.uniform(35.0, 60.0)
        if lay.trees:
            x = -30.0 + rng.uniform(0, 6)
            while x < lay.street_length:
                if abs(x - cross_x) > cross_w / 2 + 2:
                    _tree(b, rng, x, side * (rw + lay.sidewalk_width - 1.2))
                x += rng.uniform(8.0, 12.0)


def _skyline(b: MeshBuilder, rng: np.random.Generator, n: int = 44) -> None:
    """Towers 140-300 m from the skyline centre, spread over the half-space ahead and to the sides."""
    cx, cy = SKYLINE_CENTRE
    for _ in range(n):
        az = rng.uniform(-1.95, 1.95)
        r = rng.uniform(140.0, 300.0)
        w, d = rng.uniform(18, 45), rng.uniform(18, 45)
        tex = "office_facade" if rng.random() < 0.6 else FACADES[int(rng.integers(len(FACADES)))]
        b.add_box((cx + r * math.cos(az), cy + r * math.sin(az)), -0.05, (w, d, rng.uniform(20.0, 75.0)),
                  rng.uniform(0, math.pi), tex, "roof", tint=_jitter(rng, (1.0, 1.0, 1.0), 0.15))


def _hills(b: MeshBuilder, rng: np.random.Generator, r0: float = 320.0, r1: float = 380.0, steps: int = 240) -> None:
    """A closed ring of hills: rises from the ground at ``r0`` to a ridge at ``r1`` (metres from the centre)."""
    cx, cy = SKYLINE_CENTRE
    az = np.linspace(0, 2 * math.pi, steps + 1)
    ridge = np.full_like(az, 45.0)
    for k in (2, 3, 5, 7, 11, 17):
        ridge += rng.uniform(5, 22) / math.sqrt(k) * np.sin(k * az + rng.uniform(0, 2 * math.pi))
    ridge = np.maximum(ridge, 12.0)
    rows = [(r0, np.full_like(az, -0.05)), (0.5 * (r0 + r1), 0.75 * ridge), (r1, ridge), (r1 + 40, 0.8 * ridge)]
    verts, uvs = [], []
    for r, z in rows:
        verts.append(np.stack([cx + r * np.cos(az), cy + r * np.sin(az), z], axis=1))
        uvs.append(np.stack([az * r1, np.full_like(az, r) + z], axis=1))
    v = np.concatenate(verts)
    uv = np.concatenate(uvs)
    m = len(az)
    tris = []
    for ring in range(len(rows) - 1):
        for i in range(steps):
            a, bb, c, d = ring * m + i, ring * m + i + 1, (ring + 1) * m + i + 1, (ring + 1) * m + i
            tris += [[a, bb, c], [a, c, d]]
    b.add_tris(v, np.asarray(tris), uv, "hill")


def build_world(cfg: SynthConfig, textures: list[Texture]) -> World:
    """Lay out the whole street for ``cfg.seed`` and ``cfg.layout`` (deterministic)."""
    rng = np.random.default_rng(cfg.seed)
    lay = LAYOUTS[cfg.layout]
    b = MeshBuilder(textures)
    cross_x, cross_w = float(rng.uniform(55.0, 85.0)), 2 * lay.road_half_width
    _road(b, lay, cross_x, cross_w)
    _cross_street(b, cross_x, cross_w, lay.road_half_width)
    for side in (-1, 1):
        _buildings(b, rng, lay, side, cross_x, cross_w + 2 * lay.sidewalk_width)
    _street_furniture(b, rng, lay, cross_x, cross_w + 2 * lay.sidewalk_width)
    _skyline(b, rng)
    _hills(b, rng)
    elev, azim = rng.uniform(math.radians(30), math.radians(55)), rng.uniform(-math.pi, math.pi)
    sun = np.array([math.cos(elev) * math.cos(azim), math.cos(elev) * math.sin(azim), math.sin(elev)])
    mesh = b.build()
    return World(mesh, sun, lay, len(mesh.triangles))
