"""Whether this machine has an NVIDIA driver: the face model's GPU providers and the GPU
video codecs need one, and trying them without it only costs time and a warning."""

from __future__ import annotations

import ctypes
import sys

DRIVER_LIBRARY = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
"""The driver's user-mode library, which every CUDA program loads (on WSL2 too, where no
``/proc/driver/nvidia`` exists)."""


def nvidia_driver_problem() -> str | None:
    """None when an NVIDIA driver is installed and loads here, else why not, in words."""
    if sys.platform == "darwin":
        return "no NVIDIA driver (macOS has no CUDA)"
    try:
        ctypes.CDLL(DRIVER_LIBRARY)
    except OSError as exc:
        return f"no NVIDIA driver ({str(exc) or DRIVER_LIBRARY + ' does not load'})"
    return None
