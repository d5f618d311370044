"""recon: driving-scene reconstruction with 3D Gaussian Splatting and depth that holds far and near.

Data flows one way: ``recon.data`` -> ``recon.priors`` / ``recon.match`` -> ``recon.model`` + ``recon.render``
+ ``recon.optics`` -> ``recon.losses`` -> ``recon.train`` -> ``recon.eval`` / export / viewer.

Conventions: metres in the world, pixels in images, millimetres only for lens descriptions; OpenCV camera axes
(x right, y down, z forward); ``cam2world`` is a 4x4 float64 matrix.
"""

__version__ = "0.1.0"
