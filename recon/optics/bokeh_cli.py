"""``recon bokeh``: physically guided bokeh / refocus from one sharp image and its metric depth.

    recon bokeh IMAGE --depth D.npy --focus-m 4 --f-number 1.8 [--shape hexagon] [--out out.png]
    recon bokeh IMAGE --depth D.npy --focus-m 4 --f-number 1.8 --stack 8 [--sweep focus|aperture] --out stack/

An existing output is replaced only with ``--overwrite`` and only when ``recon bokeh`` wrote it (an image carries a
"recon bokeh" tag, a stack folder ``stack.json`` with ``"format": "recon-bokeh-stack"``); never the input image or
depth. Outputs are written atomically, a stack as a whole folder.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from recon.errors import ReconError
from recon.io.atomic import atomic_directory, atomic_write_json
from recon.io.diskfull import disk_full_is_one_line
from recon.io.images import write_image
from recon.io.outputs import check_output_folder, check_output_image
from recon.optics.bokeh import (
    DEFAULT_FOCAL_LENGTH_MM,
    DEFAULT_SENSOR_WIDTH_MM,
    BokehLens,
    load_image_and_depth,
    render_bokeh,
    sweep_settings,
)


@dataclass
class BokehArgs:
    """Refocus a sharp image through a virtual thin lens (occlusion-aware, metric blur from the thin lens)."""

    image: Annotated[Path, tyro.conf.Positional]
    """Sharp (all-in-focus) RGB image."""
    depth: Path
    """Metric depth of the image: .npy in metres or 16-bit PNG in millimetres, same size, > 0 everywhere."""
    focus_m: float
    """Focus distance in metres."""
    f_number: float = 2.0
    """Aperture f-number (smaller = stronger blur)."""
    stack: int = 0
    """Write a stack of this many images instead of one (see --sweep)."""
    sweep: Literal["focus", "aperture"] = "focus"
    """Stack sweep: focus distances across the depth range, or f-numbers from --f-number to --f-number-max."""
    f_number_max: float = 16.0
    """Largest f-number of an aperture sweep."""
    out: Path | None = None
    """Output image (single) or folder (stack). Default: IMAGE_bokeh.png / IMAGE_bokeh_stack/ beside the image."""
    shape: str = "disk"
    """Aperture shape: disk, gaussian, triangle, square, pentagon, hexagon, heptagon, octagon or polygonN."""
    focal_length_mm: float = DEFAULT_FOCAL_LENGTH_MM
    """Focal length of the virtual lens in millimetres."""
    sensor_width_mm: float = DEFAULT_SENSOR_WIDTH_MM
    """Sensor width of the virtual camera in millimetres (the image spans it)."""
    linear_light: bool = False
    """Blur in linear light (decode sRGB first), as a real lens does."""
    highlight_gain: float = 0.0
    """Brighten near-white pixels before blurring so highlights bloom (0 = off)."""
    overwrite: bool = False
    """Replace an existing --out (only an earlier `recon bokeh` output; never the input image or depth)."""


COMMAND = "recon bokeh"
STACK_MARKER = "stack.json"
STACK_FORMAT = "recon-bokeh-stack"


def main(argv: list[str], prog: str = "recon bokeh") -> int:
    args = tyro.cli(BokehArgs, args=argv, prog=prog)
    base = BokehLens(args.focus_m, args.f_number, args.focal_length_mm, args.sensor_width_mm)
    base.validate()
    if args.stack < 0:
        raise ReconError(f"--stack must be >= 0, got {args.stack}")
    if not (math.isfinite(args.highlight_gain) and args.highlight_gain >= 0):
        raise ReconError(f"--highlight-gain must be >= 0, got {args.highlight_gain}")
    inputs = [args.image, args.depth]
    if args.stack == 0:
        out = args.out or args.image.with_name(f"{args.image.stem}_bokeh.png")
        check_output_image(out, COMMAND, args.overwrite, inputs)
    else:
        folder = args.out or args.image.with_name(f"{args.image.stem}_bokeh_stack")
        if args.sweep == "aperture" and not (math.isfinite(args.f_number_max) and args.f_number_max > 0):
            raise ReconError(f"--f-number-max must be positive, got {args.f_number_max}")
        names = [f"bokeh_{i:03d}.png" for i in range(args.stack)]
        check_output_folder(folder, COMMAND, STACK_MARKER, STACK_FORMAT, {STACK_MARKER, *_stack_names(folder)},
                            args.overwrite, inputs)
    img, depth = load_image_and_depth(args.image, args.depth)
    if args.stack == 0:
        rendered = render_bokeh(img, depth, base, args.shape, args.linear_light, args.highlight_gain)
        with disk_full_is_one_line(out):
            write_image(out, rendered, tag=COMMAND)
        print(f"wrote {out} (focus {base.focus_m:g} m, f/{base.f_number:g}, {args.shape})")
        return 0
    settings = sweep_settings(depth, base, args.stack, args.sweep, args.f_number_max)
    entries = []
    with disk_full_is_one_line(folder), atomic_directory(folder, overwrite=True) as tmp:  # --out checked above
        for name, s in zip(names, settings):
            write_image(tmp / name, render_bokeh(img, depth, s, args.shape, args.linear_light, args.highlight_gain),
                        tag=COMMAND)
            entries.append({"image": name, "focus_m": s.focus_m, "f_number": s.f_number})
        atomic_write_json(tmp / STACK_MARKER, {
            "format": STACK_FORMAT, "source": str(args.image), "depth": str(args.depth), "sweep": args.sweep,
            "shape": args.shape, "focal_length_mm": base.focal_length_mm, "sensor_width_mm": base.sensor_width_mm,
            "images": entries})
    print(f"wrote {len(entries)} images and stack.json to {folder} ({args.sweep} sweep)")
    return 0


def _stack_names(folder: Path) -> list[str]:
    """The image names an earlier stack in ``folder`` may hold (bokeh_000.png ..., any count)."""
    if not folder.is_dir():
        return []
    return [p.name for p in folder.iterdir() if re.fullmatch(r"bokeh_\d{3,}\.png", p.name)]
