"""One video rendered by several processes at once (``arfx render --workers N``).

The pipelined engine overlaps a frame's stages on threads, but much of each stage is Python
holding the GIL, so on any machine it gains about 1.4-1.6x over a sequential render
(``docs/performance.md``). A machine with many cores, such as a GPU host, has more to give:
processes, each with its own GIL, its own model session and GL context. ``render_parallel``
cuts the video at keyframes into about one chunk per worker (``arfx.chunks``), renders the
chunks in a pool of worker processes, and joins them without re-encoding, with the input's
audio. Each chunk first primes its tracking on the seconds before it, so the output matches
a whole-file render up to codec noise; that priming is the price, a few seconds of tracking
and analysis per chunk.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .batch import BatchJob, BatchSettings, render_chunk_job
from .chunks import chunk_offset, chunk_path, join_chunks, plan_chunks
from .errors import ArfxError


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
    warmup_seconds: float = 2.0,
) -> ParallelReport:
    """Render the video ``source`` into ``output`` on ``workers`` processes.

    The file is cut at keyframes into chunks of about its duration over ``workers`` (fewer
    where its keyframes are far apart: a file with none inside renders as one chunk). A
    chunk that fails stops the render: the error names the file and the chunk's first frame,
    no output is written and the chunk files are removed. The output appears under its
    final name only when complete.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ArfxError(f"workers must be an integer >= 1, got {workers!r}")
    source, output = Path(source), Path(output)
    began = time.perf_counter()
    plan = plan_chunks(
        source, seconds=_chunk_seconds(source, workers), warmup_seconds=warmup_seconds
    )
    job = BatchJob(source, output)
    parts = [chunk_path(output, chunk.number) for chunk in plan.chunks]
    output.parent.mkdir(parents=True, exist_ok=True)
    frames = 0
    pool_size = min(workers, len(plan.chunks))
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(pool_size, mp_context=context) as pool:
            futures = {
                pool.submit(render_chunk_job, job, chunk, part, settings): chunk
                for chunk, part in zip(plan.chunks, parts, strict=True)
            }
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                chunk = futures[future]
                if future in done and future.exception() is not None:
                    for other in futures:
                        other.cancel()
                    raise _chunk_error(source, chunk.start_index, future.exception())
            for future in futures:
                frames += int(future.result()["frames"])
        join_chunks(
            parts,
            output,
            audio_from=source,
            offsets=[chunk_offset(plan, chunk) for chunk in plan.chunks],
        )
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    seconds = time.perf_counter() - began
    return ParallelReport(str(source), output, frames, seconds, len(plan.chunks), pool_size)


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


def _chunk_error(source: Path, first_frame: int, exc: BaseException | None) -> ArfxError:
    if isinstance(exc, BrokenProcessPool):
        why = "a worker process died"
    elif isinstance(exc, ArfxError):
        return ArfxError(f"{exc} (chunk from frame {first_frame})")
    else:
        why = f"{type(exc).__name__}: {exc}"
    return ArfxError(f"{source}: chunk from frame {first_frame}: {why}")
