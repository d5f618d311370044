"""Builders shared by the tests (data files, scenes, commands); fixtures live in conftest.py."""
