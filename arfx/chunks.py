"""Long videos in chunks: split at keyframes, render the chunks in parallel, join them.

A batch of a few long files would keep most workers of a cluster idle if each file were one
task. ``plan_chunks`` cuts a file at keyframes (read from the packets, nothing decoded) into
pieces of at least ``seconds``; ``render_chunk`` renders one piece to its own H.264 file,
and ``join_chunks`` puts the pieces and the input's audio into the output without
re-encoding either.

Faces are tracked and stabilised over time, so a chunk does not start cold: it first runs
the ``warmup_seconds`` of video before its start through everything but the drawing
(``Session.prime``), and its first frames come out as they would in a whole-file render.
Every chunk is encoded with the same settings, so their packets join into one stream (a
chunk's decode order starts where the previous one's ends).
"""

from __future__ import annotations

import bisect
import heapq
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from .errors import ArfxError, SourceError
from .frame import Frame
from .sinks import VideoFileSink
from .sources import VideoFileSource


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, end)`` of a video (pts in the stream's time base; ``end`` None: to
    the end), rendered after priming on the frames from keyframe ``warmup`` on."""

    number: int
    start: int
    end: int | None
    start_index: int
    """Frame number of ``start`` in the file (display order), for messages and sinks."""
    warmup: int
    warmup_index: int


@dataclass(frozen=True)
class ChunkPlan:
    """How one file is cut: its chunks, in order, and the stream's time base."""

    path: Path
    time_base: Fraction
    frames: int
    chunks: tuple[Chunk, ...]


def plan_chunks(path: str | Path, *, seconds: float, warmup_seconds: float = 2.0) -> ChunkPlan:
    """Cut ``path`` at keyframes into chunks of at least ``seconds`` each; the last one also
    at least ``seconds / 2`` (a shorter tail joins the chunk before it). A file with no
    keyframe far enough in is one chunk.
    """
    if seconds <= 0 or warmup_seconds < 0:
        raise ArfxError(
            f"chunk seconds must be > 0 and warm-up >= 0, got {seconds} and {warmup_seconds}"
        )
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SourceError(f"{path}: no video stream")
            stream = container.streams.video[0]
            time_base = Fraction(stream.time_base)
            stamps: list[int] = []
            keyframes: list[int] = []
            for packet in container.demux(stream):
                if packet.pts is None or packet.size == 0:
                    continue
                stamps.append(int(packet.pts))
                if packet.is_keyframe:
                    keyframes.append(int(packet.pts))
    except av.FFmpegError as exc:
        raise SourceError(f"{path}: cannot read packets ({exc})") from exc
    if not stamps:
        raise SourceError(f"{path}: no video frames")
    stamps.sort()
    keyframes.sort()
    step = seconds / float(time_base)
    first, last = stamps[0], stamps[-1]
    starts = [first]
    for key in keyframes:
        if key - starts[-1] >= step and last - key >= step / 2:
            starts.append(key)
    chunks = []
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else None
        # Prime from the last keyframe at least warmup_seconds before the start.
        want = start - warmup_seconds / float(time_base)
        earlier = [k for k in keyframes if k <= want] if number else []
        warmup = earlier[-1] if earlier else (first if number else start)
        chunks.append(
            Chunk(
                number=number,
                start=start,
                end=end,
                start_index=bisect.bisect_left(stamps, start),
                warmup=warmup,
                warmup_index=bisect.bisect_left(stamps, warmup),
            )
        )
    return ChunkPlan(path, time_base, len(stamps), tuple(chunks))


def chunk_path(output: Path, number: int) -> Path:
    """Where chunk ``number`` of ``output`` is rendered: hidden, beside the output."""
    return output.with_name(f".{output.stem}.chunk{number:04d}.mp4")


def chunk_frames(source: VideoFileSource, chunk: Chunk, session: Any) -> Iterator[Frame]:
    """The processed frames of ``chunk``, read from ``source`` (an open, not yet iterated
    source of the whole file) by ``session`` (an open ``arfx.Session``), after priming it
    on the frames from ``chunk.warmup`` on."""
    session.reset()
    source.seek(chunk.warmup, chunk.warmup_index)
    for frame in source:
        if frame.pts is None:
            raise SourceError(f"{source.name}: frame {frame.index} has no timestamp")
        if chunk.end is not None and frame.pts >= chunk.end:
            return
        if frame.pts < chunk.start:
            session.prime(frame)
            continue
        yield session.process_frame(frame)


def render_chunk(
    source_path: Path,
    chunk: Chunk,
    output: Path,
    session: Any,
    on_frame: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Render ``chunk`` of ``source_path`` with ``session`` into the video file ``output``
    (H.264 as ``Session.render`` writes it, without audio); returns {"frames", "seconds"}.
    ``on_frame`` is called after each frame written (progress)."""
    began = time.perf_counter()
    frames = 0
    with VideoFileSource(source_path, decoder=session.options.decoder) as source:
        sink = VideoFileSink(
            output,
            width=source.width or 0,
            height=source.height or 0,
            fps=source.fps or Fraction(30),
            time_base=source.time_base,
            keep_partial=False,
            # Chunks are joined without re-encoding, so all must share one encoder's stream
            # settings, whichever node (with or without a GPU) rendered each.
            encoder="libx264",
        )
        try:
            for frame in chunk_frames(source, chunk, session):
                # Written from pts 0: MP4 would keep a later start only to the millisecond
                # (its edit list's clock); join_chunks adds chunk_offset back exactly.
                sink.write(replace(frame, pts=int(frame.pts or 0) - chunk.start))
                frames += 1
                if on_frame is not None:
                    on_frame()
            sink.close()
        except BaseException:
            sink.abort()
            raise
    return {"frames": frames, "seconds": time.perf_counter() - began}


def chunk_offset(plan: ChunkPlan, chunk: Chunk) -> Fraction:
    """Seconds to add to a chunk file's timestamps (``render_chunk`` writes it from 0)."""
    return chunk.start * plan.time_base


def join_chunks(
    parts: Sequence[Path],
    output: Path,
    *,
    audio_from: Path | None,
    offsets: Sequence[Fraction] | None = None,
) -> None:
    """Concatenate the video packets of ``parts`` (chunk files in order), each moved by its
    ``offsets`` (seconds, see ``chunk_offset``; None: none), and the first audio stream of
    ``audio_from`` into ``output``, re-encoding nothing. Written beside the output and
    renamed when complete."""
    if not parts:
        raise ArfxError(f"{output}: no chunks to join")
    tmp = output.with_name(f".{output.stem}.arfx-tmp{output.suffix}")
    inputs: list[Any] = []
    try:
        inputs = [av.open(str(part)) for part in parts]
        audio_in = av.open(str(audio_from)) if audio_from is not None else None
        if audio_in is not None:
            inputs.append(audio_in)
        with av.open(str(tmp), "w") as out:
            video = out.add_stream_from_template(inputs[0].streams.video[0])
            moves = list(offsets) if offsets is not None else [Fraction(0)] * len(parts)
            if len(moves) != len(parts):
                raise ValueError(f"{len(parts)} chunks but {len(moves)} offsets")
            streams = [_video_packets(inputs[: len(parts)], parts, moves, video)]
            if audio_in is not None and audio_in.streams.audio:
                audio = out.add_stream_from_template(audio_in.streams.audio[0])
                streams.append(_packets(audio_in, audio_in.streams.audio[0], audio))
            for _, _, packet in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
                out.mux(packet)
        os.replace(tmp, output)
    except (av.FFmpegError, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise ArfxError(f"{output}: cannot join {len(parts)} chunks ({exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for container in inputs:
            container.close()


def _packets(container: Any, stream: Any, target: Any) -> Iterator[tuple[float, int, Any]]:
    """(decode time in seconds, stream order, packet) of one stream, re-targeted."""
    for packet in container.demux(stream):
        if packet.dts is None:  # the demuxer's empty flush packet
            continue
        when = float(packet.dts * packet.time_base)
        packet.stream = target
        yield when, target.index, packet


def _video_packets(
    containers: Sequence[Any], parts: Sequence[Path], offsets: Sequence[Fraction], target: Any
) -> Iterator[tuple[float, int, Any]]:
    last: float | None = None
    for container, part, offset in zip(containers, parts, offsets, strict=True):
        stream = container.streams.video[0]
        shift = round(offset / Fraction(stream.time_base))
        for _, order, packet in _packets(container, stream, target):
            packet.dts += shift
            if packet.pts is not None:
                packet.pts += shift
            when = float(packet.dts * packet.time_base)
            if last is not None and when <= last:
                raise ArfxError(
                    f"{part}: its first packets decode at {when:.3f} s, not after the "
                    f"previous chunk's last at {last:.3f} s; the chunks cannot be joined"
                )
            last = when
            yield when, order, packet
