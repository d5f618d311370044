"""Metric depth priors per frame (LiDAR, SfM, monocular model, simulated monocular, depth from defocus)."""
