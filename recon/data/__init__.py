"""Scene folders: loading, validation, splits and the generators/converters that write them."""

from recon.data.scene import Camera, DefocusImage, Frame, Scene, SceneError

__all__ = ["Camera", "DefocusImage", "Frame", "Scene", "SceneError"]
