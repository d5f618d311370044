"""Evaluation: image metrics, depth metrics by range band, the benchmark runner and its report."""
