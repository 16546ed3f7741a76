"""Where the built-in effects, shared shaders and data files live.

In a wheel, ``effects/`` and ``shaders/`` are installed inside the package as
``arfx/_builtin/``; in a source checkout (editable install) they sit beside ``arfx/``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"


def _builtin(name: str) -> Path:
    installed = PACKAGE_DIR / "_builtin" / name
    if installed.is_dir():
        return installed
    return PACKAGE_DIR.parent / name


def builtin_effects_dir() -> Path:
    """The folder holding one sub-folder per built-in effect."""
    return _builtin("effects")


def shaders_dir() -> Path:
    """The folder of shared GLSL that effects ``#include``."""
    return _builtin("shaders")
