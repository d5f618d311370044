"""``recon view RUN_OR_PLY``: serve the web viewer until Ctrl+C."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Annotated

import tyro

from recon.errors import ReconError
from viewer.app import ViewerApp, ViewerOptions
from viewer.loading import resolve_input


@dataclass
class ViewConfig:
    """Web splat viewer: splats in the browser, server-rendered RGB / depth / alpha / refocus beside them."""

    path: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_OR_PLY")]
    """A 3DGS .ply file, or a training run folder (point_cloud.ply + config.json naming the scene)."""
    port: int = 8080
    """TCP port of the web page."""
    host: str = "127.0.0.1"
    """Interface to listen on (127.0.0.1 = this machine only; 0.0.0.0 to share on the network)."""
    max_splats: int = 1_000_000
    """At most this many splats (the most opaque) are sent to the browser; the server render uses all."""
    render_width: int = 320
    """Width in pixels of the server-rendered panel image (height follows the browser's aspect)."""
    thumbnails: int = 200
    """Show images on at most this many camera frustums (0: none)."""
    device: str = "cpu"
    """Torch device for the server render ('cpu' or 'cuda')."""


def check_options(cfg: ViewConfig) -> None:
    """Every numeric option in range before anything starts (a bad port used to kill the server's thread while the
    command waited forever)."""
    if not 1 <= cfg.port <= 65535:
        raise ReconError(f"--port must be a TCP port in 1..65535, got {cfg.port}")
    if cfg.max_splats < 1:
        raise ReconError(f"--max-splats must be >= 1, got {cfg.max_splats}")
    if cfg.render_width < 8:
        raise ReconError(f"--render-width must be >= 8 pixels, got {cfg.render_width}")
    if cfg.thumbnails < 0:
        raise ReconError(f"--thumbnails must be >= 0, got {cfg.thumbnails}")
    # an address this machine cannot listen on would make the server retry and wait forever
    try:
        socket.getaddrinfo(cfg.host, None)
    except (OSError, UnicodeError):
        raise ReconError(f"--host {cfg.host}: unknown host name or address") from None
    try:
        socket.create_server((cfg.host, 0)).close()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise ReconError(f"--host {cfg.host}: cannot listen on this address ({reason})") from None


def main(argv: list[str], prog: str = "recon view") -> int:
    cfg = tyro.cli(ViewConfig, args=argv, prog=prog)
    check_options(cfg)
    inp = resolve_input(cfg.path)
    opts = ViewerOptions(host=cfg.host, port=cfg.port, max_splats=cfg.max_splats, render_width=cfg.render_width,
                         thumbnails=cfg.thumbnails, device=cfg.device)
    app = ViewerApp(inp, opts).start()
    print(f"recon view: {inp.ply_path} ({len(inp.gaussians):,} Gaussians) at {app.url}  (Ctrl+C to stop)")
    print(f"screenshots go to {inp.out_dir / 'screenshots'}")
    try:
        while True:
            time.sleep(1.0)
    finally:
        app.stop()
