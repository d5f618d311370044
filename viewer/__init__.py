"""``recon view``: a web viewer (viser) for 3DGS PLY files and training runs.

The browser draws the splats itself (viser's WebGL Gaussian splatting, colours from SH degree 0). Beside it, a panel
shows the same view rendered on the server through recon's own rasterizer, in RGB, metric depth (colour map with a
scale bar in metres), alpha, or refocused through a thin lens (recon.optics). A run folder also shows its training
and test cameras as frustums; clicking one moves the viewer's camera to look through it.
"""
