"""File input/output helpers shared by every stage (atomic writes, image and depth files)."""
