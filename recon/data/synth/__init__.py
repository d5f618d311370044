"""The embedded synthetic Waymo-style street: exact depth, LiDAR, sky masks and true finite-aperture images.

    from recon.data.synth import SynthConfig, make_street
    scene = make_street(SynthConfig(seed=0), Path("data/street"))     # or: recon data synth --out data/street

Modules: ``config`` (settings, layouts), ``textures`` (photo textures, mip atlas), ``geometry`` (textured
triangle meshes), ``world`` (the procedural street), ``rig`` (trajectory, cameras, LiDAR mount), ``raycast``
(open3d ray casting and shading), ``lens`` (pinhole and thin-lens rendering), ``lidar`` (sweeps), ``street``
(``make_street``: writes the scene folder), ``cli`` (``recon data synth``).

World frame: metres, z up, ground at z = 0, x along the street (direction of travel), y to the left.
"""

from recon.data.synth.config import LAYOUTS, SynthConfig
from recon.data.synth.street import make_street

__all__ = ["LAYOUTS", "SynthConfig", "make_street"]
