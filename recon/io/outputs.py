"""What a command may do to an existing ``--out``: the rule of ``recon train``, ``data synth`` and ``data convert``,
for the commands whose output is one folder or one image (``recon dfd``, ``recon bokeh``).

An output is written only where nothing is, or, with ``--overwrite``, over an earlier output of the same command,
recognised by a marker recon wrote into it: for a folder, a JSON file naming its ``format`` (and no files other
than the command's own); for an image, a text tag (PNG ``Software`` chunk, JPEG comment). Never over an input of
the command, a file of the user's or a folder holding anything else. The checks run before any work, and the
writes themselves are atomic (:mod:`recon.io.atomic`), so a failed run leaves the old output as it was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable
from pathlib import Path

from recon.errors import ReconError
from recon.io.atomic import is_orphan_name
from recon.io.folders import check_parent_writable

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Image outputs recon can tag as its own (and so replace later with ``--overwrite``)."""


def _same_or_inside(outer: Path, inner: Path) -> bool:
    outer, inner = outer.resolve(), inner.resolve()
    return outer == inner or outer in inner.parents


def _marker_format(path: Path) -> str | None:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return d.get("format") if isinstance(d, dict) and isinstance(d.get("format"), str) else None


def is_output_folder(folder: Path, marker: str, fmt: str, names: Collection[str]) -> bool:
    """True when ``folder/marker`` declares ``"format": fmt`` and every entry of the folder (recon's leftover
    temporaries aside) is one of ``names``: replacing it loses nothing but an earlier output."""
    if _marker_format(folder / marker) != fmt:
        return False
    return all(p.name in names or is_orphan_name(p.name) for p in folder.iterdir())


def check_output_folder(out: Path, command: str, marker: str, fmt: str, names: Collection[str],
                        overwrite: bool, inputs: Iterable[Path] = ()) -> None:
    """Refuse, before any work, an ``--out`` folder that cannot be written or must not be replaced.

    ``names``: every file name the command writes into the folder (``marker`` among them); ``inputs``: the files
    the command reads (an output folder may not be or hold one of them, even with ``--overwrite``).
    """
    if out.exists() and not out.is_dir():
        raise ReconError(f"{out}: --out is a file, not a folder (`{command}` writes a folder; choose another path)")
    for p in inputs:
        if _same_or_inside(out, Path(p)):
            raise ReconError(f"{out}: --out is or contains the input {p}; choose another output folder")
    check_parent_writable(out, "output folder")
    if not out.is_dir() or not any(not is_orphan_name(p.name) for p in out.iterdir()):
        return
    if not overwrite:
        raise ReconError(f"{out}: output folder exists and is not empty (pass --overwrite to replace an earlier "
                         f"`{command}` output)")
    if not is_output_folder(out, marker, fmt, names):
        raise ReconError(f"{out}: not a `{command}` output folder (no {marker} from recon, or other files in it); "
                         "refusing to --overwrite it")


def image_tag(path: Path) -> str | None:
    """The recon tag of an image file (PNG ``Software`` text, JPEG comment), or None."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            tag = im.info.get("Software") or im.info.get("comment")
    except Exception:  # not an image, unreadable: not recon's
        return None
    if isinstance(tag, bytes):
        tag = tag.decode("utf-8", "replace")
    return tag if isinstance(tag, str) else None


def check_output_image(out: Path, command: str, overwrite: bool, inputs: Iterable[Path] = ()) -> None:
    """Refuse, before any work, an image ``--out`` that cannot be written or must not be replaced: a folder, a
    suffix recon cannot tag, one of the inputs (even with ``--overwrite``), or an existing file that is not an
    earlier output of ``command`` (or is one, without ``--overwrite``)."""
    if out.is_dir():
        raise ReconError(f"{out}: --out is a folder, not an image file (choose a file name ending in "
                         f"{', '.join(IMAGE_SUFFIXES)})")
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise ReconError(f"{out}: --out must be an image file ending in {', '.join(IMAGE_SUFFIXES)}, got "
                         f"{out.suffix or 'no suffix'!r}")
    for p in inputs:
        p = Path(p)
        if out.exists() and p.exists() and os.path.samefile(out, p) or out.resolve() == p.resolve():
            raise ReconError(f"{out}: --out is the input {p}; choose another output path")
    if out.parent.exists() and not out.parent.is_dir():
        raise ReconError(f"{out}: cannot create the output file ({out.parent} is a file)")
    check_parent_writable(out.parent, "output folder")
    if not out.exists():
        return
    if not overwrite:
        raise ReconError(f"{out}: output file exists (pass --overwrite to replace an earlier `{command}` output)")
    if image_tag(out) != command:
        raise ReconError(f"{out}: not written by `{command}` (no recon tag in the file); refusing to --overwrite it")
