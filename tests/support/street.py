"""The synthetic street fixtures' finite-aperture views, for the optics tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def finite_aperture_views(street: Any) -> Iterator[tuple[Any, Any, np.ndarray, np.ndarray]]:
    """``(entry, frame, pinhole image, depth)`` for each finite-aperture image of a street scene (a Scene or its
    folder); depth is z-depth in metres with unknown pixels (sky) set very far (1e4 m)."""
    from recon.data.scene import Scene

    scene = street if isinstance(street, Scene) else Scene.load(street)
    assert scene.defocus, "the street fixture renders finite-aperture images"
    for entry in scene.defocus:
        frame = scene.frame(entry.frame_id)
        img, depth = frame.load_image(), frame.load_depth()
        assert depth is not None
        yield entry, frame, img, np.where(depth > 0, depth, 1e4).astype(np.float32)
