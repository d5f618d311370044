"""Presets of ``recon train``: one TOML file each, read by :mod:`recon.train.presets`.

Installed as the package ``recon.configs`` (see ``[tool.setuptools.package-dir]`` in pyproject.toml), so that a
wheel carries the presets and :func:`importlib.resources.files` finds them in a source checkout and in a wheel alike.
"""
