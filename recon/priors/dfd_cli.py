"""``recon dfd``: depth from defocus.

    recon dfd pair SMALL.png LARGE.png --f-number-small 8 --f-number-large 1.4 --focus-m 3 --out DIR [--side far]
    recon dfd stack A.png B.png C.png ... --focus-m 2 4 8 ... --out DIR [--f-number 1.4 --focal-length-mm 50]
    recon dfd single IMAGE.png --out DIR [--reference-depth LIDAR.npy]

Each writes ``depth.npy`` (float32 metres, 0 = no estimate; ``defocus_px.npy`` instead for a single image without a
reference), ``confidence.npy`` (float32 in [0, 1]), ``depth.png`` (a preview) and ``dfd.json`` (the settings, with
``"format": "recon-dfd"``: the marker by which a later ``--overwrite`` knows the folder is a dfd output) into DIR,
atomically. An existing DIR is replaced only with ``--overwrite`` and only when it is an earlier dfd output (see
:mod:`recon.io.outputs`); lens and range options are checked before any image is read.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro

from recon.errors import ReconError
from recon.io.atomic import atomic_directory, atomic_save_npy, atomic_write_json
from recon.io.diskfull import disk_full_is_one_line
from recon.io.images import read_depth, read_image, write_image
from recon.io.outputs import check_output_folder
from recon.optics.thin_lens import aperture_diameter_m, fx_from_lens
from recon.priors.dfd import (
    DfdResult,
    depth_from_focus,
    dfd_aperture_pair,
    dfd_focal_stack,
    metric_from_relative,
    single_image_defocus,
)


@dataclass
class PairArgs:
    """Depth from an aperture pair: the same view with a small and a large aperture, same focus."""

    small: Annotated[Path, tyro.conf.Positional]
    """Small-aperture (sharper) image."""
    large: Annotated[Path, tyro.conf.Positional]
    """Large-aperture (blurrier) image."""
    f_number_small: float = 8.0
    """f-number of the small-aperture image."""
    f_number_large: float = 1.4
    """f-number of the large-aperture image."""
    focus_m: float = 3.0
    """Focus distance of both images, metres."""
    side: Literal["far", "near"] = "far"
    """Two-sided ambiguity: assume everything lies behind (far) or in front of (near) the focus plane."""
    side_prior: Path | None = None
    """Optional coarse depth (.npy metres, 0 = unknown) choosing the side per pixel."""
    near_m: float = 1.0
    """Nearest depth of the sweep, metres."""
    far_m: float = 200.0
    """Farthest depth of the sweep, metres."""
    focal_length_mm: float = 50.0
    """Focal length of the lens in millimetres."""
    sensor_width_mm: float = 36.0
    """Sensor width in millimetres (the image spans it)."""
    fx: float | None = None
    """Focal length in pixels; overrides the value computed from --focal-length-mm and --sensor-width-mm."""
    out: Path = Path("dfd_pair")
    """Output folder."""
    overwrite: bool = False
    """Replace an existing --out folder (only an earlier `recon dfd` output; it stays if this run fails)."""


@dataclass
class StackArgs:
    """Depth from a focal stack: the same view focused at several distances.

    With --f-number (and the lens: --focal-length-mm, --sensor-width-mm or --fx) the stack is inverted through the
    thin lens (cross-blur of every image pair, continuous depth from as few as 2 images); without it, depth from
    focus (the sharpest image per pixel, at least 3 images)."""

    images: Annotated[tuple[Path, ...], tyro.conf.Positional]
    """The focal stack."""
    focus_m: tuple[float, ...]
    """Focus distance of each image, metres, in the same order."""
    f_number: float | None = None
    """f-number of the stack (all images); enables the thin-lens inversion."""
    focal_length_mm: float = 50.0
    """Focal length of the lens in millimetres."""
    sensor_width_mm: float = 36.0
    """Sensor width in millimetres (the image spans it)."""
    fx: float | None = None
    """Focal length in pixels; overrides the value computed from --focal-length-mm and --sensor-width-mm."""
    near_m: float = 1.0
    """Nearest depth of the sweep, metres (thin-lens inversion)."""
    far_m: float = 200.0
    """Farthest depth of the sweep, metres (thin-lens inversion)."""
    out: Path = Path("dfd_stack")
    """Output folder."""
    overwrite: bool = False
    """Replace an existing --out folder (only an earlier `recon dfd` output; it stays if this run fails)."""


@dataclass
class SingleArgs:
    """Relative defocus from one image (edge blur, propagated); metric with a reference depth."""

    image: Annotated[Path, tyro.conf.Positional]
    reference_depth: Path | None = None
    """Sparse metric depth (.npy metres, 0 = unknown; e.g. projected LiDAR) to recover metric scale."""
    focus_m: float | None = None
    """Focus distance (metres), fixes the offset of the metric fit when known."""
    out: Path = Path("dfd_single")
    """Output folder."""
    overwrite: bool = False
    """Replace an existing --out folder (only an earlier `recon dfd` output; it stays if this run fails)."""


MARKER = "dfd.json"
FORMAT = "recon-dfd"
OUTPUT_NAMES = ("depth.npy", "defocus_px.npy", "confidence.npy", "depth.png", MARKER)


def _positive(flag: str, value: float | None) -> None:
    """A finite, positive option value (None: not given)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ReconError(f"{flag} must be positive, got {value}")


def _check_lens(a: PairArgs | StackArgs, focus_m: tuple[float, ...]) -> None:
    """Lens and sweep options: finite and positive, --near-m < --far-m, each focus beyond the focal length."""
    _positive("--focal-length-mm", a.focal_length_mm)
    _positive("--sensor-width-mm", a.sensor_width_mm)
    _positive("--fx", a.fx)
    _positive("--near-m", a.near_m)
    _positive("--far-m", a.far_m)
    if not a.near_m < a.far_m:
        raise ReconError(f"--near-m ({a.near_m:g}) must be smaller than --far-m ({a.far_m:g})")
    for f in focus_m:
        _positive("--focus-m", f)
        if not f * 1000.0 > a.focal_length_mm:
            raise ReconError(f"--focus-m {f:g} m is not beyond the focal length ({a.focal_length_mm:g} mm): a thin "
                             "lens cannot focus there")


def _check_out(a: PairArgs | StackArgs | SingleArgs, command: str, inputs: list[Path | None]) -> None:
    check_output_folder(a.out, command, MARKER, FORMAT, OUTPUT_NAMES, a.overwrite,
                        [p for p in inputs if p is not None])


def _fx(args: PairArgs | StackArgs, width: int) -> float:
    if args.fx is not None:
        return args.fx
    return fx_from_lens(args.focal_length_mm, args.sensor_width_mm, width)


def _write(out: Path, res: DfdResult, meta: dict, relative_name: str = "depth.npy") -> None:
    with disk_full_is_one_line(out), atomic_directory(out, overwrite=True) as tmp:  # --out checked up front
        atomic_save_npy(tmp / relative_name, res.depth)
        atomic_save_npy(tmp / "confidence.npy", res.confidence)
        d = res.depth
        valid = d > 0
        if valid.any():
            inv = np.where(valid, 1.0 / np.maximum(d, 1e-6), 0.0) if not res.relative else d
            lo, hi = np.percentile(inv[valid], [2, 98])
            write_image(tmp / "depth.png", np.clip((inv - lo) / max(hi - lo, 1e-9), 0, 1) * valid)
        atomic_write_json(tmp / MARKER, {"format": FORMAT, **meta})
    print(f"wrote {out}/{relative_name}, confidence.npy (mean confidence {float(res.confidence.mean()):.2f})")


def pair_main(argv: list[str], prog: str) -> int:
    a = tyro.cli(PairArgs, args=argv, prog=prog)
    for flag, n in (("--f-number-small", a.f_number_small), ("--f-number-large", a.f_number_large)):
        _positive(flag, n)
    if not a.f_number_large < a.f_number_small:
        raise ReconError(f"--f-number-large ({a.f_number_large}) must be smaller than --f-number-small "
                         f"({a.f_number_small})")
    _check_lens(a, (a.focus_m,))
    _check_out(a, "recon dfd", [a.small, a.large, a.side_prior])
    small, large = read_image(a.small), read_image(a.large)
    if small.shape != large.shape:
        raise ReconError(f"{a.large}: image is {large.shape[1]}x{large.shape[0]} but {a.small} is "
                         f"{small.shape[1]}x{small.shape[0]}")
    prior = read_depth(a.side_prior) if a.side_prior is not None else None
    if prior is not None and prior.shape != small.shape[:2]:
        raise ReconError(f"{a.side_prior}: side prior is {prior.shape[::-1]} but the images are "
                         f"{small.shape[1]}x{small.shape[0]}")
    res = dfd_aperture_pair(small, large, _fx(a, small.shape[1]), aperture_diameter_m(a.focal_length_mm,
                            a.f_number_small), aperture_diameter_m(a.focal_length_mm, a.f_number_large), a.focus_m,
                            side=a.side, side_prior=prior, depth_range=(a.near_m, a.far_m))
    _write(a.out, res, {"method": "aperture pair", "small": str(a.small), "large": str(a.large),
                        "f_numbers": [a.f_number_small, a.f_number_large], "focus_m": a.focus_m, "side": a.side})
    return 0


def stack_main(argv: list[str], prog: str) -> int:
    a = tyro.cli(StackArgs, args=argv, prog=prog)
    if len(a.images) != len(a.focus_m):
        raise ReconError(f"--focus-m: got {len(a.focus_m)} distances for {len(a.images)} images")
    _positive("--f-number", a.f_number)
    _check_lens(a, a.focus_m)
    if len(set(a.focus_m)) != len(a.focus_m):
        raise ReconError(f"--focus-m: the focus distances must differ (a focal stack), got {list(a.focus_m)}")
    _check_out(a, "recon dfd", list(a.images))
    imgs = [read_image(p) for p in a.images]
    for p, im in zip(a.images, imgs):
        if im.shape != imgs[0].shape:
            raise ReconError(f"{p}: image is {im.shape[1]}x{im.shape[0]} but {a.images[0]} is "
                             f"{imgs[0].shape[1]}x{imgs[0].shape[0]}")
    meta = {"images": [str(p) for p in a.images], "focus_m": list(a.focus_m)}
    if a.f_number is not None:
        fx = _fx(a, imgs[0].shape[1])
        res = dfd_focal_stack(imgs, list(a.focus_m), fx, aperture_diameter_m(a.focal_length_mm, a.f_number),
                              depth_range=(a.near_m, a.far_m))
        meta |= {"method": "focal stack, thin-lens inversion", "f_number": a.f_number, "fx": fx}
    else:
        res = depth_from_focus(imgs, list(a.focus_m))
        meta |= {"method": "focal stack, depth from focus"}
    _write(a.out, res, meta)
    return 0


def single_main(argv: list[str], prog: str) -> int:
    a = tyro.cli(SingleArgs, args=argv, prog=prog)
    _positive("--focus-m", a.focus_m)
    if a.focus_m is not None and a.reference_depth is None:
        raise ReconError("--focus-m is used only with --reference-depth (it fixes the metric fit's offset)")
    _check_out(a, "recon dfd", [a.image, a.reference_depth])
    img = read_image(a.image)
    res = single_image_defocus(img)
    meta: dict = {"method": "single image (gradient-ratio re-blur + WLS propagation)", "image": str(a.image)}
    if a.reference_depth is None:
        _write(a.out, res, meta | {"relative": "CoC diameter in pixels"}, "defocus_px.npy")
        return 0
    ref = read_depth(a.reference_depth)
    if ref.shape != img.shape[:2]:
        raise ReconError(f"{a.reference_depth}: reference depth is {ref.shape[1]}x{ref.shape[0]} but the image is "
                         f"{img.shape[1]}x{img.shape[0]}")
    depth, fit = metric_from_relative(res.depth, ref, res.confidence, a.focus_m)
    _write(a.out, DfdResult(depth, res.confidence), meta | {"metric_fit": fit})
    return 0


SUB = {"pair": (pair_main, "aperture pair (small + large aperture, same view and focus)"),
       "stack": (stack_main, "focal stack (depth from focus)"),
       "single": (single_main, "single image (relative defocus; metric with --reference-depth)")}


def main(argv: list[str], prog: str = "recon dfd") -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {prog} {{{','.join(SUB)}}} [--help] ...\n")
        for name, (_fn, desc) in SUB.items():
            print(f"  {name:<7} {desc}")
        return 0
    if argv[0] not in SUB:
        print(f"error: unknown `{prog}` subcommand {argv[0]!r} (choose from {', '.join(SUB)})", file=sys.stderr)
        return 2
    return SUB[argv[0]][0](argv[1:], f"{prog} {argv[0]}")
