"""Giving memory back: glibc heap settings so closed sessions do not leave the process big.

MediaPipe graphs, ONNX Runtime sessions and compiled shaders allocate and free large blocks
when a Session opens and closes. glibc serves a block of 128 KiB or more with its own
``mmap`` and returns it on free, but after such a free it raises that threshold (up to
32 MiB), so the next large blocks come from the heap, where freed memory stays with the
process. An application that opens and closes sessions then grows by tens of MB before it
levels off, although nothing leaks. Two calls, both no-ops on other C libraries:

- ``fix_mmap_threshold`` (when a Session starts): keep the threshold at 4 MiB, so large
  blocks always go back to the system when freed. Blocks used every frame (a 1280x720 frame,
  a face's class probabilities) stay below it and are reused from the heap: at 1 MiB the
  page faults of mapping them afresh cost several ms a frame. Frames of 1920x1080 and up are
  mapped, as glibc does before it raises the threshold. Not done when the environment sets
  ``MALLOC_MMAP_THRESHOLD_`` (the application's own choice).
- ``return_free_memory`` (when a Session closes): ``malloc_trim(0)``, which hands free pages
  inside the heap back as well.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

MMAP_THRESHOLD = 4 << 20
"""Bytes from which glibc serves a block with mmap (returned to the system when freed)."""
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        return None


def fix_mmap_threshold() -> None:
    """Keep glibc's mmap threshold at MMAP_THRESHOLD (see the module text)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def return_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``)."""
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)
