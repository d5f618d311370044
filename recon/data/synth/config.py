"""Settings of the synthetic street generator and the named street layouts.

World frame (metres): z up, ground at z = 0, x along the street (the ego drives towards +x), y to the left of
the direction of travel. Cameras use OpenCV axes (x right, y down, z forward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from recon.errors import ReconError

KNOWN_CAMERAS: dict[str, float] = {"front": 0.0, "front_left": 45.0, "front_right": -45.0,
                                   "side_left": 90.0, "side_right": -90.0}
"""Camera name -> yaw in degrees (positive turns left, like Waymo's FRONT_LEFT)."""


@dataclass
class SynthConfig:
    """Embedded synthetic Waymo-style street: exact depth, LiDAR and true finite-aperture images."""

    seed: int = 0
    """Random seed: the same seed gives byte-identical files."""
    width: int = 320
    """Image width in pixels."""
    height: int = 192
    """Image height in pixels."""
    n_frames: int = 48
    """Time steps along the trajectory; each has one image per camera and one LiDAR sweep."""
    cameras: tuple[str, ...] = ("front", "front_left", "front_right")
    """Cameras to render (front, front_left, front_right, side_left, side_right)."""
    hfov_deg: float = 50.0
    """Horizontal field of view of every camera in degrees."""
    layout: str = "street"
    """Street layout: street, boulevard or narrow."""
    speed_mps: float = 8.0
    """Ego speed in metres per second."""
    frame_rate_hz: float = 10.0
    """Camera and LiDAR rate in Hz."""
    lidar_beams: int = 64
    """LiDAR beams (elevations spread evenly from +2 to -24 degrees)."""
    lidar_range_m: float = 75.0
    """LiDAR maximum range in metres; farther returns are dropped."""
    lidar_noise_m: float = 0.02
    """Standard deviation of the gaussian LiDAR range noise in metres."""
    defocus_frames: int = 2
    """How many front-camera frames (train split, spread along the trajectory) get true finite-aperture images."""
    defocus_f_numbers: tuple[float, ...] = (1.0, 2.8)
    """f-numbers of the finite-aperture images."""
    defocus_focus_m: tuple[float, ...] = (3.0, 10.0, 40.0)
    """Focus distances of the finite-aperture images in metres."""
    lens_samples: int = 96
    """Lens positions averaged per finite-aperture image (a Vogel disk, shared by all images)."""
    test_every: int = 8
    """Every n-th frame of each camera is held out as 'test'."""
    lidar_azimuth_steps: int = 800
    """LiDAR azimuth samples per revolution (360 degrees)."""
    antialias: int = 4
    """Sub-pixel samples per pinhole pixel (1, 4 or 16); the finite-aperture images use the same sub-pixel pattern
    (``lens_samples`` should be a multiple of it)."""
    sensor_width_mm: float = 36.0
    """Sensor width of the synthetic cameras in millimetres (full frame, so defocus blur is visible)."""

    def validate(self) -> None:
        """Raise ReconError with a one-line message for settings that cannot make a scene."""
        def bad(msg: str) -> ReconError:
            return ReconError(f"synthetic street settings: {msg}")

        if self.width < 8 or self.height < 8:
            raise bad(f"image size {self.width}x{self.height} is too small (at least 8x8)")
        if self.n_frames < 1:
            raise bad("n_frames must be at least 1")
        if not self.cameras:
            raise bad("at least one camera is needed")
        for c in self.cameras:
            if c not in KNOWN_CAMERAS:
                raise bad(f"unknown camera {c!r} (choose from {', '.join(KNOWN_CAMERAS)})")
        if len(set(self.cameras)) != len(self.cameras):
            raise bad("camera names must be distinct")
        if not 1.0 < self.hfov_deg < 170.0:
            raise bad(f"hfov_deg {self.hfov_deg} must be between 1 and 170")
        if self.layout not in LAYOUTS:
            raise bad(f"unknown layout {self.layout!r} (choose from {', '.join(LAYOUTS)})")
        if self.speed_mps < 0 or self.frame_rate_hz <= 0:
            raise bad("speed_mps must be >= 0 and frame_rate_hz > 0")
        if self.lidar_beams < 1 or self.lidar_azimuth_steps < 1 or self.lidar_range_m <= 0 or self.lidar_noise_m < 0:
            raise bad("lidar_beams, lidar_azimuth_steps and lidar_range_m must be positive, lidar_noise_m >= 0")
        if self.defocus_frames < 0:
            raise bad("defocus_frames must be >= 0")
        if self.defocus_frames > 0:
            if "front" not in self.cameras:
                raise bad("finite-aperture images are rendered for the 'front' camera, which is not in cameras "
                          "(add it or pass --defocus-frames 0)")
            if not self.defocus_f_numbers or not self.defocus_focus_m:
                raise bad("defocus_f_numbers and defocus_focus_m must not be empty when defocus_frames > 0")
            if self.lens_samples < 1:
                raise bad("lens_samples must be at least 1")
        if any(n <= 0 for n in self.defocus_f_numbers) or any(d <= 0.1 for d in self.defocus_focus_m):
            raise bad("f-numbers must be positive and focus distances above 0.1 m")
        if self.test_every < 2:
            raise bad("test_every must be at least 2")
        if self.antialias not in (1, 4, 16):
            raise bad(f"antialias must be 1, 4 or 16, got {self.antialias}")
        if self.sensor_width_mm <= 0:
            raise bad("sensor_width_mm must be positive")

    @property
    def fx(self) -> float:
        """Focal length in pixels (square pixels, so fy = fx)."""
        return 0.5 * self.width / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def camera_f_number(self) -> float:
        """The f-number recorded in camera metadata: the smallest of the rendered set."""
        return min(self.defocus_f_numbers) if self.defocus_f_numbers else 2.0

    @property
    def camera_focus_m(self) -> float:
        """The focus distance recorded in camera metadata: the middle one of the rendered set."""
        if not self.defocus_focus_m:
            return 10.0
        s = sorted(self.defocus_focus_m)
        return s[len(s) // 2]


@dataclass(frozen=True)
class Layout:
    """Dimensions of one street layout, in metres."""

    road_half_width: float       # kerb to street centre line
    sidewalk_width: float
    facade_min_setback: float    # facade line distance from the street centre line (minimum)
    facade_extra_setback: float  # random extra setback per building (uniform 0..this)
    plaza_prob: float            # probability a building is set far back (40-80 m from the path)
    height_range: tuple[float, float]
    lane_offset: float           # ego lane centre, y (negative: right of the centre line)
    street_length: float         # facades run from x = -30 to this
    parked_car_prob: float
    trees: bool


LAYOUTS: dict[str, Layout] = {
    "street": Layout(6.0, 3.0, 12.0, 10.0, 0.12, (6.0, 36.0), -2.0, 150.0, 0.55, False),
    "boulevard": Layout(9.0, 5.0, 17.0, 14.0, 0.15, (10.0, 50.0), -3.5, 170.0, 0.45, True),
    "narrow": Layout(4.0, 2.0, 10.0, 4.0, 0.06, (8.0, 28.0), -1.5, 130.0, 0.4, False),
}
