"""Shared test fixtures: the real faces and videos in ../shared/data.

Set ARFX_DATA to point elsewhere. Under CI (CI=true) missing data fails the test
instead of skipping it, so a broken checkout cannot pass silently.

The whole suite runs with networking disabled at the socket level (``no_network``): arfx
must never reach the network, so any connection this process tries to a non-loopback
address fails the call that made it. Loopback stays open for the local Ray cluster the
batch tests start; subprocesses (pip building the example plugin) are not affected.
"""

from __future__ import annotations

import ctypes.util
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


class NetworkDisabled(OSError):
    """A test tried to reach the network."""


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like
        return True
    host = str(address[0])
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: resolving and connecting would leave the machine


@pytest.fixture(autouse=True, scope="session")
def no_network() -> Iterator[None]:
    """Refuse every connection to a non-loopback address for the whole test session."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded(method):
        def call(self: socket.socket, address: object, *args, **kwargs):
            if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
                raise NetworkDisabled(f"network access attempted in a test: {address!r}")
            return method(self, address, *args, **kwargs)

        return call

    socket.socket.connect = guarded(connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded(connect_ex)  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = connect, connect_ex  # type: ignore[method-assign]


def data_root() -> Path:
    env = os.environ.get("ARFX_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(reason: str | None) -> None:
    """A missing tool (``reason`` says which) fails the test under CI and skips it elsewhere."""
    if reason is None:
        return
    if under_ci():
        pytest.fail(f"cannot run this test: {reason}")
    pytest.skip(reason)


def require(path: Path) -> Path:
    """Return ``path`` if it exists; otherwise fail under CI and skip elsewhere."""
    if path.exists():
        return path
    message = f"test data missing: {path} (set ARFX_DATA to the shared data folder)"
    if under_ci():
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


def _display_unavailable() -> str | None:
    if sys.platform != "linux":
        return "window tests drive an X server (Linux only)"
    if shutil.which("Xvfb") is None:
        return "Xvfb is not installed"
    if not (ctypes.util.find_library("X11") and ctypes.util.find_library("Xtst")):
        return "libX11/libXtst are not installed (needed to send key and close events)"
    return None


@pytest.fixture
def virtual_display() -> Iterator[str]:
    """A private Xvfb server; yields its DISPLAY. Xvfb picks a free display number itself.

    OpenCV windows must run in a child process with this DISPLAY: the wheel's Qt has no
    headless platform, and cv2.imshow would abort the pytest process without one.
    """
    require_tool(_display_unavailable())
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-nolisten", "tcp", "-screen", "0", "800x600x24"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            pytest.fail("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)
