"""Training: configs, the optimisation loop, checkpoints and logging."""
