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
- ``limit_arenas`` (when a Session starts): at most ``MALLOC_ARENAS`` glibc arenas. glibc
  gives threads their own arena, up to eight per core, and each keeps the free memory its
  threads left. A session's stream runs MediaPipe's, ONNX Runtime's, llvmpipe's and the
  engine's threads, so in the 10-minute soak the bytes in use stayed flat (``mallinfo2``:
  170 MB) while free heap grew from 23 to 34 MB and resident memory by 15 MB. With two
  arenas the same soak stayed flat. Not done when the environment sets
  ``MALLOC_ARENA_MAX``.
- ``PeriodicTrim`` (while a Session processes frames): ``malloc_trim`` every few seconds,
  so free whole pages between live blocks go back to the system during a long stream too.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable

MMAP_THRESHOLD = 4 << 20
"""Bytes from which glibc serves a block with mmap (returned to the system when freed)."""
MALLOC_ARENAS = 2
"""Most glibc arenas (heaps that threads allocate from) once a Session has started."""
_M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers (malloc.h)
_M_ARENA_MAX = -8


def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        return None


def _mallopt(parameter: int, value: int, environment: str) -> None:
    """glibc's ``mallopt(parameter, value)``, unless the application chose the setting
    itself through the ``environment`` variable glibc reads for it."""
    if environment in os.environ:
        return
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(parameter, value)


def fix_mmap_threshold() -> None:
    """Keep glibc's mmap threshold at MMAP_THRESHOLD (see the module text)."""
    _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_")


def limit_arenas() -> None:
    """At most MALLOC_ARENAS glibc arenas from now on (see the module text)."""
    _mallopt(_M_ARENA_MAX, MALLOC_ARENAS, "MALLOC_ARENA_MAX")


def return_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``)."""
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


class PeriodicTrim:
    """``return_free_memory`` at most once per ``interval`` seconds, from ``tick`` calls.

    One trim walks every arena (a few ms for a session's heap), so it is spread out; an
    ``interval`` of 0 turns trimming off.
    """

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.trims = 0
        self._clock = clock
        self._last = clock()

    def tick(self) -> bool:
        """Trim if ``interval`` seconds have passed since the last trim; True if it did."""
        if self.interval <= 0:
            return False
        now = self._clock()
        if now - self._last < self.interval:
            return False
        self._last = now
        return_free_memory()
        self.trims += 1
        return True
