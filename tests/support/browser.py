"""Driving Debian's headless Chromium with Playwright for the viewer tests and benchmark (no `playwright install`).

WebGL runs on SwiftShader (CPU): ``--use-angle=swiftshader --enable-unsafe-swiftshader`` instead of a GPU. Every
request that leaves the loopback interface is recorded, so callers can assert the viewer is fully offline.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    """Debian's chromium binary, or None when it is not installed."""
    for p in CHROMIUM_CANDIDATES:
        if Path(p).is_file():
            return p
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Browser:
    page: Any
    external_requests: list[str] = field(default_factory=list)


@contextlib.contextmanager
def headless_page(width: int = 1000, height: int = 700) -> Iterator[Browser]:
    """A Playwright page in a fresh headless Chromium profile; records non-loopback requests and blocks them."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    assert exe is not None, "chromium not installed"
    profile = tempfile.mkdtemp(prefix="recon-chromium-")
    args = ["--headless=new", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
            "--ignore-gpu-blocklist", "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
    try:
        with sync_playwright() as pw:
            # launch_persistent_context is how Playwright takes a user-data-dir of our choosing.
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=exe, headless=True, args=args[:-1],
                viewport={"width": width, "height": height}, ignore_default_args=["--enable-automation"])
            b = Browser(page=ctx.pages[0] if ctx.pages else ctx.new_page())

            def route(r: Any) -> None:
                url = r.request.url
                if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "http://localhost", "ws://localhost",
                                   "data:", "blob:")):
                    r.continue_()
                else:
                    b.external_requests.append(url)
                    r.abort()

            ctx.route("**/*", route)
            try:
                yield b
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def canvas_pixels(page: Any) -> np.ndarray:
    """Screenshot of the largest canvas (the WebGL view) as uint8 RGB [H, W, 3]."""
    import imageio.v3 as iio

    # A clipped page screenshot: no wait for the element to be "stable", which a slowly redrawing WebGL canvas
    # (software rendering of many splats) can take a long time to become.
    box = page.locator("canvas").first.bounding_box(timeout=60_000)
    png = page.screenshot(clip=box, timeout=120_000) if box else page.screenshot(timeout=120_000)
    return np.asarray(iio.imread(io.BytesIO(png)))[..., :3]


def wait_for(pred: Callable[[], Any], timeout_s: float, poll_s: float = 0.25) -> Any:
    """Poll ``pred`` until it returns an array or something truthy; return it, or None at the timeout."""
    t_end = time.monotonic() + timeout_s
    while True:
        out = pred()
        if isinstance(out, np.ndarray) or out:
            return out
        if time.monotonic() > t_end:
            return None
        time.sleep(poll_s)
