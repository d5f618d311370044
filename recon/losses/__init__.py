"""Loss functions: pure functions of tensors (photometric, depth-of-field, multi-view, depth priors)."""
