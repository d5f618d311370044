"""Multi-view matching, triangulation and the multi-view depth supervision."""
