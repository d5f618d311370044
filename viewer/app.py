"""The viewer server: splats drawn in the browser, camera frustums of a run, one :class:`ClientPanel` per browser.

World frame as in the scene (metres); cameras OpenCV (x right, y down, z forward), as viser's frustums and client
cameras are.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import viser
from viser import transforms as tf

from recon.data.scene import Camera, Frame, Scene
from recon.model.ply import GaussianData
from viewer.loading import ViewerInput
from viewer.panels import ClientPanel
from viewer.rendering import SplatRenderer, ViewCamera

TRAIN_COLOR = (40, 110, 255)
TEST_COLOR = (255, 120, 20)
FULL_FRAME_SENSOR_MM = 36.0


@dataclass
class ViewerOptions:
    """Server settings (see :class:`viewer.cli.ViewConfig` for the user-facing flags)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_splats: int = 1_000_000
    render_width: int = 320
    min_interval_s: float = 0.25
    thumbnails: int = 200
    device: str = "cpu"


def browser_subset(g: GaussianData, max_splats: int) -> GaussianData:
    """At most ``max_splats`` Gaussians for the browser: the most opaque ones (stable, deterministic)."""
    if len(g) <= max_splats:
        return g
    keep = np.sort(np.argsort(-g.opacities, kind="stable")[:max_splats])
    return g.subset(keep)


def _frame_fov_aspect(f: Frame) -> tuple[float, float]:
    cam = f.camera
    return 2.0 * math.atan(0.5 * cam.height / cam.fy), cam.width / cam.height


def scene_up(scene: Scene) -> np.ndarray:
    """The mean camera 'up' (-y in OpenCV axes) of all frames, normalised: the world's up for the orbit controls."""
    ups = np.stack([-f.cam2world[:3, 1] for f in scene.frames])
    up = ups.mean(axis=0)
    n = float(np.linalg.norm(up))
    return up / n if n > 1e-6 else np.array([0.0, 0.0, 1.0])


class ViewerApp:
    """Start with :meth:`start`, stop with :meth:`stop`. ``url`` is where a browser should go."""

    def __init__(self, inp: ViewerInput, opts: ViewerOptions, log: Callable[[str], None] = print) -> None:
        self.inp, self.opts, self.log = inp, opts, log
        self.renderer = SplatRenderer(inp.gaussians, device=opts.device)
        self.panels: dict[int, ClientPanel] = {}
        self.frustums: dict[str, viser.CameraFrustumHandle] = {}
        self.server: viser.ViserServer | None = None
        self._thumb_thread: threading.Thread | None = None
        scene = inp.scene
        first = next(iter(scene.cameras.values())) if scene is not None else None
        # Refocus lens: a run's own camera sensor (what that camera would see); a full-frame 36 mm sensor for a bare
        # PLY, whose small-sensor blur would hardly show. Either can be changed with the panel's slider.
        self.sensor_width_mm = float(first.sensor_width_mm) if first is not None else FULL_FRAME_SENSOR_MM
        self.focus_m = first.focus_distance_m if first is not None else 10.0
        self.f_number = first.f_number if first is not None else 2.0

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.opts.host}:{self.server.get_port()}/"

    def warm_up(self) -> float:
        """One tiny render before serving, so a first-use build of the rasterizer happens here, not in a browser's
        render thread. Returns the seconds it took."""
        t0 = time.perf_counter()
        means = self.inp.gaussians.means
        centre = np.median(means, axis=0) if len(means) else np.zeros(3)
        c2w = np.eye(4)
        c2w[:3, 3] = centre - np.array([0.0, 0.0, 10.0])
        self.renderer.render(ViewCamera(c2w, Camera("warm-up", 16, 16, 8.0, 8.0, 8.0, 8.0)))
        return time.perf_counter() - t0

    def start(self) -> ViewerApp:
        self.log(f"server render: warming up {self.renderer.backend} ...")
        self.log(f"server render: ready in {self.warm_up():.1f} s")
        server = viser.ViserServer(host=self.opts.host, port=self.opts.port, verbose=False)
        self.server = server
        shown = browser_subset(self.inp.gaussians, self.opts.max_splats)
        server.scene.add_gaussian_splats(
            "/splats", centers=shown.means, covariances=shown.covariances(), rgbs=shown.base_colors(),
            opacities=shown.opacities[:, None])
        self.log(f"splats: {len(shown):,} of {len(self.inp.gaussians):,} sent to the browser "
                 f"(SH degree {self.inp.gaussians.sh_degree} in the file; the browser uses degree 0)")
        self._set_initial_camera(server)
        if self.inp.scene is not None:
            self._add_frustums(server, self.inp.scene)
        server.on_client_connect(self._on_connect)
        server.on_client_disconnect(self._on_disconnect)
        for note in self.inp.notes:
            self.log(f"note: {note}")
        return self

    def stop(self) -> None:
        for p in list(self.panels.values()):
            p.stop()
        for p in list(self.panels.values()):
            p.join(timeout=30.0)  # let an in-flight render finish before the process may exit
        if self.server is not None:
            self.server.stop()

    # ------------------------------------------------------------------ scene content
    def _set_initial_camera(self, server: viser.ViserServer) -> None:
        scene = self.inp.scene
        if scene is not None and scene.frames:
            server.scene.set_up_direction(tuple(scene_up(scene)))
            frames = scene.test_frames or scene.frames
            f = frames[0]
            c2w = f.cam2world
            server.initial_camera.position = tuple(c2w[:3, 3])
            server.initial_camera.look_at = tuple(c2w[:3, 3] + 5.0 * c2w[:3, 2])
            server.initial_camera.up = tuple(-c2w[:3, 1])
            server.initial_camera.fov = _frame_fov_aspect(f)[0]
            return
        means = self.inp.gaussians.means
        if len(means) == 0:
            return
        centre = np.median(means, axis=0)
        radius = float(np.percentile(np.linalg.norm(means - centre, axis=1), 95)) or 1.0
        server.initial_camera.look_at = tuple(centre)
        server.initial_camera.position = tuple(centre + radius * np.array([-2.0, -2.0, 1.5]))

    def _add_frustums(self, server: viser.ViserServer, scene: Scene) -> None:
        centres = np.stack([f.center for f in scene.frames])
        spread = float(np.linalg.norm(np.ptp(centres, axis=0))) if len(centres) > 1 else 1.0
        scale = float(np.clip(0.02 * spread, 0.05, 2.0))
        for f in scene.frames:
            fov, aspect = _frame_fov_aspect(f)
            handle = server.scene.add_camera_frustum(
                f"/cameras/{f.split}/{f.id}", fov=fov, aspect=aspect, scale=scale, thickness=scale * 0.03,
                color=TEST_COLOR if f.split == "test" else TRAIN_COLOR,
                wxyz=tf.SO3.from_matrix(f.cam2world[:3, :3]).wxyz, position=f.cam2world[:3, 3])
            handle.on_click(self._look_through(handle, fov))
            self.frustums[f.id] = handle
        self.log(f"cameras: {len(scene.train_frames)} train (blue), {len(scene.test_frames)} test (orange); "
                 "click one to look through it")
        if self.opts.thumbnails > 0:
            self._thumb_thread = threading.Thread(target=self._load_thumbnails, args=(scene,), daemon=True)
            self._thumb_thread.start()

    def _look_through(self, handle: viser.CameraFrustumHandle, fov: float) -> Callable[..., None]:
        def cb(event: viser.SceneNodePointerEvent) -> None:
            cam = event.client.camera
            with event.client.atomic():
                cam.wxyz = handle.wxyz
                cam.position = handle.position
                cam.fov = fov
        return cb

    def _load_thumbnails(self, scene: Scene) -> None:
        """Small images on the frustums, loaded after start-up so the viewer is usable at once."""
        frames = scene.frames
        step = max(1, math.ceil(len(frames) / self.opts.thumbnails))
        for f in frames[::step]:
            try:
                img = f.load_image()
            except Exception as exc:  # a missing image only costs its thumbnail
                self.log(f"note: no thumbnail for {f.id}: {exc}")
                continue
            stride = max(1, img.shape[1] // 96)
            thumb = (np.clip(img[::stride, ::stride], 0, 1) * 255).astype(np.uint8)
            handle = self.frustums.get(f.id)
            if handle is not None:
                handle.image = thumb

    # ------------------------------------------------------------------ clients
    def _on_connect(self, client: viser.ClientHandle) -> None:
        self.panels[client.client_id] = ClientPanel(
            client, self.renderer, self.inp.out_dir, self.opts.render_width,
            sensor_width_mm=float(np.clip(self.sensor_width_mm, 2.0, 50.0)),
            focus_m=float(np.clip(self.focus_m, 0.3, 100.0)), f_number=float(np.clip(self.f_number, 0.7, 22.0)),
            min_interval_s=self.opts.min_interval_s, log=self.log)

    def _on_disconnect(self, client: viser.ClientHandle) -> None:
        panel = self.panels.pop(client.client_id, None)
        if panel is not None:
            panel.stop()
