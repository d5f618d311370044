"""Package list for setuptools (everything else is in pyproject.toml).

``recon.configs`` is the top-level ``configs/`` folder (the presets of ``recon train``), mapped by
``[tool.setuptools.package-dir]``; ``packages.find`` in pyproject.toml cannot add a package whose folder lies outside
``recon/``, so the list is built here. ``recon.render.csrc`` (the C++ sources, package data) has no ``__init__.py``.
"""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["recon", "recon.*", "viewer", "viewer.*"], exclude=["*.__pycache__"]),
                "recon.configs"])
