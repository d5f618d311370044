"""Explicit downloads for ``recon models fetch``: a file over HTTP(S) with a progress bar and a checksum, or a Hugging
Face repository through ``huggingface_hub``. Only ever called by that command (training never downloads)."""

from __future__ import annotations

import hashlib
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from recon.errors import ReconError
from recon.io.atomic import atomic_write_with
from recon.models.registry import ModelEntry, file_destination

CHUNK = 1 << 16
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def published_sha256(headers: object) -> str | None:
    """A SHA-256 the server publishes with the file: the Hugging Face hub's ``X-Linked-Etag`` of a large (LFS) file,
    or an ``ETag`` that is one; None otherwise."""
    get = getattr(headers, "get", None)
    for key in ("X-Linked-Etag", "ETag"):
        value = str((get(key) if get else None) or "").strip().lower().removeprefix("w/").strip('"')
        if _HEX64.match(value):
            return value
    return None


def download_file(url: str, dest: Path, sha256: str | None = None, progress: bool = True,
                  timeout: float = 60.0) -> tuple[Path, str, str | None]:
    """Stream ``url`` to ``dest`` atomically (a failed or wrong download leaves ``dest`` as it was).

    The file's SHA-256 is checked against ``sha256`` or, without one, against a hash the server publishes
    (:func:`published_sha256`). Returns (dest, the computed SHA-256, the hash it was checked against or None).
    """
    from tqdm import tqdm

    if not url.startswith(("http://", "https://")):
        raise ReconError(f"{url}: only http(s) URLs can be fetched")
    try:
        resp = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (scheme checked above)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ReconError(f"{url}: download failed ({reason})") from None
    with resp:
        expected = (sha256 or published_sha256(resp.headers) or "").lower() or None
        total = int(resp.headers.get("Content-Length") or 0) or None
        h = hashlib.sha256()

        def write(f: BinaryIO) -> None:
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                      disable=not progress, file=sys.stderr, leave=False) as bar:
                n = 0
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except OSError as exc:
                        raise ReconError(f"{url}: download interrupted ({exc})") from None
                    if not block:
                        break
                    f.write(block)
                    h.update(block)
                    n += len(block)
                    bar.update(len(block))
            if total is not None and n != total:
                raise ReconError(f"{url}: download incomplete ({n} of {total} bytes)")
            if expected is not None and h.hexdigest() != expected:
                raise ReconError(f"{url}: checksum mismatch (sha256 {h.hexdigest()}, published {expected}); "
                                 f"{dest} was not written")

        atomic_write_with(dest, write)
    return dest, h.hexdigest(), expected


def fetch(entry: ModelEntry, url: str | None = None, force: bool = False, progress: bool = True) -> str:
    """Download ``entry`` (from ``url`` instead of its own sources when given); a one-line report of what was done."""
    if entry.repo_id is not None:
        from huggingface_hub import snapshot_download

        try:
            path = snapshot_download(entry.repo_id, force_download=force)
        except Exception as exc:
            raise ReconError(f"{entry.repo_id}: download from the Hugging Face hub failed ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
        return f"{entry.name}: {entry.repo_id} in the Hugging Face cache at {path} (licence: {entry.licence})"
    dest = file_destination(entry)
    if dest.is_file() and not force:
        return f"{entry.name}: already at {dest} (pass --force to download again)"
    errors = []
    for u in ([url] if url else list(entry.urls)):
        try:
            _, digest, checked = download_file(u, dest, entry.sha256, progress)
        except ReconError as exc:
            if "checksum mismatch" in str(exc):
                raise
            errors.append(str(exc))
            continue
        check = f"sha256 {digest} verified against the published hash" if checked else \
            f"sha256 {digest} (the source publishes no checksum)"
        return f"{entry.name}: {dest} ({dest.stat().st_size} bytes, {check}; licence: {entry.licence})"
    raise ReconError(f"{entry.name}: every source failed: " + "; ".join(errors))
