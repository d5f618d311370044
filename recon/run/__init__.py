"""The run folder: its checks and preparation, checkpoints, the metrics log, training into it, and loading it back."""
