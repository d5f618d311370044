"""Gaussian scene model: parameters, initialisation from points, sky/background, PLY export."""
