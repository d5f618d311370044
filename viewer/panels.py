"""The per-browser control panel: mode, lens sliders, screenshot button, and the server-rendered image.

Each connected browser gets its own panel and one render thread. Camera moves and control changes only mark the
view dirty; the thread renders the latest state at most every ``min_interval_s`` seconds, so a fast orbit costs a
handful of CPU renders, not one per camera message.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import viser

from recon.io.images import write_image
from viewer.imaging import MODES, load_defocus, panel_image
from viewer.rendering import RenderResult, SplatRenderer, ViewCamera


class ClientPanel:
    """GUI and render loop for one client. ``stop()`` ends its thread."""

    def __init__(self, client: viser.ClientHandle, renderer: SplatRenderer, out_dir: Path, render_width: int,
                 sensor_width_mm: float, focus_m: float, f_number: float, min_interval_s: float = 0.25,
                 log: Callable[[str], None] = print) -> None:
        self.client, self.renderer, self.out_dir = client, renderer, out_dir
        self.render_width, self.min_interval_s, self.log = render_width, min_interval_s, log
        self._defocus, self._defocus_note = load_defocus()
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_image: np.ndarray | None = None
        self._last: RenderResult | None = None
        self.renders = 0
        self.first_render_at: float | None = None  # time.monotonic() when the first panel image was sent

        gui = client.gui
        with gui.add_folder("Server render"):
            self.mode = gui.add_dropdown("Mode", MODES, initial_value="RGB")
            self.focus = gui.add_slider("Focus (m)", min=0.3, max=100.0, step=0.1, initial_value=float(focus_m),
                                        hint="thin-lens focus distance in metres (refocus mode)")
            self.f_number = gui.add_slider("f-number", min=0.7, max=22.0, step=0.1, initial_value=float(f_number),
                                           hint="aperture A = f / N (refocus mode)")
            self.sensor = gui.add_slider("Sensor width (mm)", min=2.0, max=50.0, step=0.1,
                                         initial_value=float(sensor_width_mm),
                                         hint="sets the virtual lens focal length f = fx * sensor width / width")
            self.screenshot = gui.add_button("Save screenshot", hint="save this render as a PNG in the run folder")
            self.status = gui.add_markdown(f"renderer: {renderer.backend}")
            self.image = gui.add_image(np.zeros((max(8, render_width * 9 // 16), render_width, 3), np.uint8),
                                       label="server render", format="png")
        for handle in (self.mode, self.focus, self.f_number, self.sensor):
            handle.on_update(lambda _e: self._dirty.set())
        self.screenshot.on_click(lambda _e: self.save_screenshot())
        client.camera.on_update(lambda _c: self._dirty.set())
        self._dirty.set()  # render as soon as the browser has reported its camera
        self._thread = threading.Thread(target=self._loop, name=f"recon-view-render-{client.client_id}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ rendering
    def _camera(self) -> ViewCamera | None:
        cam = self.client.camera
        try:
            return ViewCamera.from_viser(cam.wxyz, cam.position, cam.fov, cam.aspect, self.render_width)
        except AssertionError:  # no camera message from this browser yet
            return None

    def render_once(self) -> np.ndarray | None:
        """Render the current camera and update the panel image; returns the image (None before the first camera)."""
        cam = self._camera()
        if cam is None:
            return None
        t0 = time.perf_counter()
        res = self.renderer.render(cam)
        mode = str(self.mode.value)
        img = panel_image(res, mode, float(self.focus.value), float(self.f_number.value), float(self.sensor.value),
                          self._defocus)
        dt = time.perf_counter() - t0
        with self._lock:
            self._last, self._last_image = res, img
            self.renders += 1
        self.image.image = img
        if self.first_render_at is None:
            self.first_render_at = time.monotonic()
        note = f"renderer: {self.renderer.backend} · {cam.width}x{cam.height} in {dt * 1000:.0f} ms"
        if mode == "refocus" and self._defocus is None:
            note += f"\n\n**{self._defocus_note}**: showing the sharp render"
        self.status.content = note
        return img

    def _loop(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            if not self._dirty.wait(timeout=0.5):
                continue
            wait = self.min_interval_s - (time.monotonic() - last)
            if wait > 0:
                time.sleep(wait)  # throttle: changes arriving meanwhile are folded into this render
            self._dirty.clear()
            last = time.monotonic()
            try:
                if self.render_once() is None:  # no camera yet: try again shortly
                    time.sleep(0.05)
                    self._dirty.set()
            except Exception as exc:  # keep the viewer alive; show the problem in the panel
                self.status.content = f"**render failed**: {type(exc).__name__}: {exc}"
                self.log("".join(traceback.format_exception(exc)))

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # ------------------------------------------------------------------ screenshot
    def save_screenshot(self) -> Path | None:
        """Write the last panel image to ``<out_dir>/screenshots/`` atomically and tell the user where."""
        with self._lock:
            img = self._last_image
        if img is None:
            self.status.content = "nothing rendered yet: move the camera first"
            return None
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
        path = self.out_dir / "screenshots" / f"view_{str(self.mode.value).lower()}_{stamp}.png"
        write_image(path, img)
        self.log(f"screenshot saved: {path}")
        self.status.content = f"screenshot saved: `{path}`"
        self.client.add_notification(title="Screenshot saved", body=str(path), auto_close_seconds=5.0)
        return path
