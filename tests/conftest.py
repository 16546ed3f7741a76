"""Shared test fixtures: the real faces and videos in ../shared/data.

Set ARFX_DATA to point elsewhere. Under CI (CI=true) missing data fails the test
instead of skipping it, so a broken checkout cannot pass silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    env = os.environ.get("ARFX_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def require(path: Path) -> Path:
    """Return ``path`` if it exists; otherwise fail under CI and skip elsewhere."""
    if path.exists():
        return path
    message = f"test data missing: {path} (set ARFX_DATA to the shared data folder)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def data_dir() -> Path:
    return require(data_root())


@pytest.fixture
def video_path():
    """video_path("WolfgangLanger_Pexels.mp4") -> Path in shared/data/videos."""
    return lambda name: require(data_root() / "videos" / name)


@pytest.fixture
def image_path():
    """image_path("obama.jpg") -> Path in shared/data/images."""
    return lambda name: require(data_root() / "images" / name)
