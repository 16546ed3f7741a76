"""Long-run resource check (``arfx bench soak``): nothing may grow while a session works.

A video is played in a loop through the whole pipeline (pipelined analysis and compositing,
H.264 encoding to a scratch file) for a given time. Every ``interval`` seconds the process's
resident memory, thread count, open file descriptors (other than the looped input's) and
the session's GL objects are sampled. After a warm-up (caches, allocator pools, the
encoder's lookahead), a healthy run stays flat: the report gives each measure's change
from the end of the warm-up to the end.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .session import open_sink
from .throughput import LoopedSource, resident_mb


@dataclass
class SoakSample:
    """The process at one moment of the run."""

    seconds: float
    frames: int
    rss_mb: float
    threads: int
    open_files: int
    gl_objects: int


@dataclass
class SoakReport:
    video: str
    effects: list[str]
    minutes: float
    warmup_seconds: float
    samples: list[SoakSample] = field(default_factory=list)

    def after_warmup(self) -> list[SoakSample]:
        kept = [s for s in self.samples if s.seconds >= self.warmup_seconds]
        return kept or self.samples[-1:]

    def growth(self) -> dict[str, float]:
        """Change of each measure from the first sample after warm-up to the last."""
        kept = self.after_warmup()
        first, last = kept[0], self.samples[-1]
        return {
            "rss_mb": last.rss_mb - first.rss_mb,
            "threads": last.threads - first.threads,
            "open_files": last.open_files - first.open_files,
            "gl_objects": last.gl_objects - first.gl_objects,
        }

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "growth": self.growth()}


def open_files(excluding: str | Path | None = None) -> int:
    """Open file descriptors of this process (Linux /proc; -1 where unknown), leaving out
    those open on the file ``excluding``.

    The soak leaves out its looped input: ``LoopedSource`` closes it and opens it again on
    every pass, so a sample that falls between the two would count one file fewer. With
    short videos a pass takes about as long as the sampling interval."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return -1
    if excluding is None:
        return len(names)
    target = os.path.realpath(excluding)
    count = 0
    for name in names:
        try:
            count += os.readlink(f"/proc/self/fd/{name}") != target
        except OSError:  # closed since the listing
            pass
    return count


def soak(
    video: Path,
    effects: Sequence[str],
    *,
    minutes: float,
    interval: float = 10.0,
    warmup: float = 60.0,
    model_path: Path | None = None,
    on_sample: Callable[[SoakSample], None] | None = None,
) -> SoakReport:
    """Loop ``video`` through a session with ``effects`` for ``minutes``; see the module."""
    from .session import Session, SessionOptions

    report = SoakReport(str(video), list(effects), minutes, warmup)
    deadline = time.monotonic() + minutes * 60.0
    source = LoopedSource(video, 10**9)
    with (
        tempfile.TemporaryDirectory(prefix="arfx-soak-") as tmp,
        Session(list(effects), SessionOptions(model_path=model_path)) as session,
    ):
        sink = open_sink(Path(tmp) / "soak.mp4", source)
        start = time.monotonic()
        next_sample = start
        frames = 0
        stream = session.stream(source, pipelined=True)
        try:
            for frame in stream:
                sink.write(frame)
                frames += 1
                now = time.monotonic()
                if now >= next_sample or now >= deadline:
                    sample = SoakSample(
                        seconds=now - start,
                        frames=frames,
                        rss_mb=resident_mb(),
                        threads=threading.active_count(),
                        open_files=open_files(excluding=video),
                        gl_objects=session.gl_objects,
                    )
                    report.samples.append(sample)
                    if on_sample is not None:
                        on_sample(sample)
                    next_sample += interval
                if now >= deadline:
                    break
        finally:
            stream.close()
            sink.close()
    return report


def soak_table(report: SoakReport) -> str:
    lines = [
        f"{Path(report.video).name}, effects: {', '.join(report.effects)}, "
        f"{report.minutes:g} min, warm-up {report.warmup_seconds:g} s",
        "",
        f"{'seconds':>8} {'frames':>7} {'rss MB':>8} {'threads':>8} {'files':>6} {'GL objs':>8}",
    ]
    for s in report.samples:
        lines.append(
            f"{s.seconds:>8.0f} {s.frames:>7} {s.rss_mb:>8.1f} {s.threads:>8} "
            f"{s.open_files:>6} {s.gl_objects:>8}"
        )
    growth = report.growth()
    lines.append("")
    lines.append(
        f"after warm-up: memory {growth['rss_mb']:+.1f} MB, threads {growth['threads']:+.0f}, "
        f"open files {growth['open_files']:+.0f}, GL objects {growth['gl_objects']:+.0f}"
    )
    return "\n".join(lines)
