"""A dependency-free progress line for long renders, written to stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``label  123/480 frames  25.6 fps  ETA 14s``, redrawn at most ``rate`` times a second.

    On a terminal the line is redrawn in place; elsewhere (logs, CI) a line is printed
    every ``log_every`` seconds so long jobs still show they are alive.
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        rate: float = 4.0,
        log_every: float = 10.0,
        enabled: bool = True,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._interval = 1.0 / rate if self.interactive else log_every
        self._start = time.monotonic()
        self._last = 0.0
        self.count = 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def update(self, count: int = 1) -> None:
        self.count += count
        now = time.monotonic()
        if self.enabled and now - self._last >= self._interval:
            self._last = now
            self._draw(now)

    def close(self) -> None:
        if self.enabled and self.count:
            self._draw(time.monotonic())
            if self.interactive:
                self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        fps = self.count / elapsed
        done = f"{self.count}/{self.total}" if self.total else f"{self.count}"
        text = f"{self.label}  {done} frames  {fps:.1f} fps"
        if self.total and fps > 0 and self.count < self.total:
            text += f"  ETA {(self.total - self.count) / fps:.0f}s"
        self.stream.write(("\r" + text + "\x1b[K") if self.interactive else text + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
