"""One video rendered by several processes at once (``arfx render --workers N``).

The pipelined engine overlaps a frame's stages on threads, but much of each stage is Python
holding the GIL, so on any machine it gains about 1.4-1.6x over a sequential render
(``docs/performance.md``). A machine with many cores, such as a GPU host, has more to give:
processes, each with its own GIL, its own model session and GL context. ``render_parallel``
cuts the video at keyframes into about one chunk per worker (``arfx.chunks``), renders the
chunks as tasks of the local batch pool (``arfx.batch.run_local``: retries, workers killed
on an error or Ctrl-C), and joins them without re-encoding, with the input's audio. Each
chunk first primes its tracking on the seconds before it, so the output matches a
whole-file render up to codec noise; that priming is the price, a few seconds of tracking
and analysis per chunk.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .batch import BatchJob, BatchSettings, run_local
from .checks import check_integer
from .chunks import plan_chunks
from .errors import ArfxError
from .progress import Progress


@dataclass
class ParallelReport:
    """What ``render_parallel`` did: frames written, wall seconds, chunks and workers."""

    source: str
    output: Path
    frames: int
    seconds: float
    chunks: int
    workers: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def render_parallel(
    source: str | Path,
    output: str | Path,
    settings: BatchSettings,
    *,
    workers: int,
    retries: int = 1,
    progress: bool = False,
) -> ParallelReport:
    """Render the video ``source`` into ``output`` on ``workers`` processes.

    The file is cut at keyframes into chunks of about its duration over ``workers`` (fewer
    where its keyframes are far apart: a file with none inside renders whole, on one).
    Chunks are tasks of ``arfx.batch.run_local``: one that fails is retried ``retries``
    times; one that still fails fails the render with an error naming the file, and no
    output is written. The output appears under its final name only when complete.
    ``progress`` shows a progress line on stderr (``arfx.progress``) of the frames the
    workers wrote.
    """
    check_integer("workers", workers, 1, error=ArfxError)
    source, output = Path(source), Path(output)
    began = time.perf_counter()
    seconds = _chunk_seconds(source, workers)
    plan = plan_chunks(source, seconds=seconds)
    chunks = len(plan.chunks)
    with Progress(source.name, plan.frames, enabled=progress) as bar:
        (result,) = run_local(
            [BatchJob(source, output)],
            settings,
            workers=min(workers, chunks),
            retries=retries,
            chunk_seconds=seconds,
            on_frames=lambda frames: bar.update(frames - bar.count),
        )
    if result.status != "ok":
        raise ArfxError(result.error or f"{source}: rendering failed")
    wall = time.perf_counter() - began
    return ParallelReport(str(source), output, result.frames, wall, chunks, min(workers, chunks))


def batch_settings(effects: Sequence[str], options: Any) -> BatchSettings:
    """The worker settings that open sessions like ``Session(effects, options)``."""
    values = {field.name: getattr(options, field.name) for field in fields(options)}
    return BatchSettings(
        effects=tuple(effects),
        max_faces=values.pop("max_faces"),
        device=values.pop("device"),
        masks=values.pop("masks"),
        model_path=values.pop("model_path"),
        extra=values,
    )


def _chunk_seconds(source: Path, workers: int) -> float:
    """About the file's duration over ``workers`` (at least a second)."""
    import av

    try:
        with av.open(str(source)) as container:
            if not container.streams.video:
                raise ArfxError(f"{source}: no video stream")
            stream = container.streams.video[0]
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration
                else (container.duration or 0) / 1e6
            )
    except av.FFmpegError as exc:
        raise ArfxError(f"{source}: cannot read ({exc})") from exc
    return max(duration / workers, 1.0)
