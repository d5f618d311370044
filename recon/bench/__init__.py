"""``recon bench``: every method on every scene and seed, side by side, on one machine or a Ray cluster."""
