"""The embedded synthetic Waymo-style street: exact depth, LiDAR, sky masks and true finite-aperture images.

    from recon.data.synth import SynthConfig, make_street
    scene = make_street(SynthConfig(seed=0), Path("data/street"))
"""

from recon.data.synth.config import LAYOUTS, SynthConfig
from recon.data.synth.street import make_street

__all__ = ["LAYOUTS", "SynthConfig", "make_street"]
