"""How fast the whole pipeline runs (``arfx bench pipeline``), next to the cost of the video.

In one run, on one file, with one encoder setting (H.264, the ``VideoFileSink`` defaults):

- *plain*: decode and encode with no effects, the floor any effects SDK pays (every run
  encodes with ``open_sink``, the sink ``Session.render`` itself uses);
- *render*: the same frames through tracking, the face model, the effects and the encoder,
  pipelined as ``Session.render`` runs them;
- *sequential*: the same without the pipeline (each frame start to finish), for the gain;
  the stage times come from this run, where stages do not compete for the cores (from the
  pipelined run when it is skipped);
- *live*: frames released at their own timestamps (as a camera delivers them) through a
  live stream; latency from release to processed frame, and the frames dropped to stay live;
- *memory*: resident memory after ``memory_warmup`` frames and after ``memory_frames``
  frames of the video played in a loop, and the process's peak.

Times on shared machines are noisy; the ratios between rows of one run are the figures.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .codecs import choose_encoder
from .compositor import PASS_TIME_PREFIX
from .frame import Frame
from .session import Session, SessionOptions, open_sink
from .sources import Source, VideoFileSource


class LoopedSource(Source):
    """A video file played ``frames`` frames long, from the start again at its end, with
    indices and timestamps that keep increasing (so it looks like one long video).

    ``size`` (width, height) resizes every frame, e.g. to measure 1280x720 from a 640x360
    file; the resize happens while decoding, like a bigger file's decode would.
    """

    def __init__(
        self,
        path: str | Path,
        frames: int,
        size: tuple[int, int] | None = None,
        *,
        decoder: str = "auto",
    ) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.frame_count = frames
        self.size = size
        self.decoder = decoder
        with VideoFileSource(self.path, decoder=decoder) as probe:
            self.width, self.height = size or (probe.width, probe.height)
            self.fps = probe.fps or Fraction(30)
            self.time_base = probe.time_base

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        offset_time = 0.0
        offset_pts = 0
        period = 1.0 / float(self.fps)
        while True:
            last: Frame | None = None
            with VideoFileSource(self.path, decoder=self.decoder) as source:
                for frame in source:
                    if index >= self.frame_count:
                        return
                    pts = None if frame.pts is None else frame.pts + offset_pts
                    image = frame.image
                    if self.size is not None and image.shape[1::-1] != self.size:
                        image = cv2.resize(image, self.size, interpolation=cv2.INTER_LINEAR)
                    yield Frame(
                        image=image,
                        index=index,
                        pts=pts,
                        time_base=frame.time_base,
                        time=frame.time + offset_time,
                    )
                    last = frame
                    index += 1
            if last is None:
                return  # an empty file
            offset_time += last.time + period
            if last.pts is not None and last.time_base:
                offset_pts += last.pts + round(period / float(last.time_base))


class PacedSource(Source):
    """Releases each frame of ``source`` at its own timestamp in real time, like a camera.

    ``released`` maps a frame's index to the ``time.perf_counter()`` it was released at.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.name = source.name
        self.width, self.height = source.width, source.height
        self.fps, self.time_base = source.fps, source.time_base
        self.frame_count = source.frame_count
        self.released: dict[int, float] = {}

    def __iter__(self) -> Iterator[Frame]:
        start = None
        for frame in self.source:
            now = time.perf_counter()
            if start is None:
                start = now - frame.time
            wait = start + frame.time - now
            if wait > 0:
                time.sleep(wait)
            self.released[frame.index] = time.perf_counter()
            yield frame

    def close(self) -> None:
        self.source.close()


@dataclass
class StageRow:
    """One stage's time per frame, in milliseconds."""

    stage: str
    median_ms: float
    p95_ms: float
    frames: int


@dataclass
class PipelineReport:
    """Everything ``bench_pipeline`` measured (see the module text)."""

    video: str
    size: tuple[int, int]
    effects: list[str]
    frames: int
    model_interval: int
    max_faces: int
    max_hands: int
    plain_fps: float
    encoder: str
    """The H.264 encoder every run used (``SessionOptions.encoder`` resolved here)."""
    decoder: str
    """Where every run decoded the video ("cuda" or "software")."""
    render_fps: float
    sequential_fps: float | None
    stages: list[StageRow] = field(default_factory=list)
    parallel: dict[str, float] = field(default_factory=dict)
    """``render_parallel`` on the whole file (``workers`` > 0): its fps, frames, chunks,
    workers and ratio to the plain decode-and-encode."""
    live: dict[str, float] = field(default_factory=dict)
    live_model: str = "inline"
    """Where ``live``'s face model ran (``SessionOptions.live_model``)."""
    live_max_wait: float | None = None
    """``SessionOptions.live_max_wait`` of the live runs (frame intervals; None: no limit)."""
    live_behind: dict[str, float] = field(default_factory=dict)
    """With ``live_behind``: the live run again right after, the model behind the stream."""
    memory: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Rendered frames per second over plain decode-and-encode frames per second."""
        return self.render_fps / self.plain_fps if self.plain_fps else float("nan")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def plain_fps(
    video: Path,
    frames: int,
    folder: Path,
    size: tuple[int, int] | None = None,
    *,
    options: SessionOptions | None = None,
) -> float:
    """Frames per second of decoding and encoding ``frames`` frames with no effects, with
    the encoder and decoder of ``options``."""
    options = options or SessionOptions()
    source = LoopedSource(video, frames, size, decoder=options.decoder)
    sink = open_sink(folder / "plain.mp4", source, encoder=options.encoder)
    start = time.perf_counter()
    count = 0
    with source:
        for frame in source:
            sink.write(frame)
            count += 1
    sink.close()
    return count / (time.perf_counter() - start)


def parallel_fps(
    video: Path,
    effects: Sequence[str],
    workers: int,
    folder: Path,
    options: SessionOptions,
) -> dict[str, float]:
    """Frames per second of rendering the whole of ``video`` on ``workers`` processes
    (``arfx.parallel``), from the start of the first worker to the joined output."""
    from .parallel import batch_settings, render_parallel

    settings = batch_settings(effects, options)
    report = render_parallel(video, folder / "parallel.mp4", settings, workers=workers)
    return {
        "fps": report.fps,
        "frames": report.frames,
        "chunks": report.chunks,
        "workers": report.workers,
    }


def _session(effects: Sequence[str], options: SessionOptions | None, pipelined: bool) -> Session:
    """A session with ``options`` (the defaults when None), ``pipelined`` set as asked."""
    return Session(list(effects), replace(options or SessionOptions(), pipelined=pipelined))


def render_fps(
    video: Path,
    effects: Sequence[str],
    frames: int,
    folder: Path,
    *,
    pipelined: bool = True,
    options: SessionOptions | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[float, dict[str, list[float]]]:
    """Frames per second of ``Session.render`` over ``frames`` frames, and its stage times."""
    with _session(effects, options, pipelined) as session:
        session.stage_times = {}
        source = LoopedSource(video, frames, size, decoder=session.options.decoder)
        report = session.render(source, folder / f"render-{pipelined}.mp4", progress=False)
        return report.frames / report.seconds, session.stage_times


def live_latency(
    video: Path,
    effects: Sequence[str],
    frames: int,
    *,
    options: SessionOptions | None = None,
    size: tuple[int, int] | None = None,
) -> dict[str, float]:
    """Latency from a frame's real-time release to its processed frame, live mode."""
    latencies = []
    with _session(effects, options, True) as session:
        source = PacedSource(LoopedSource(video, frames, size, decoder=session.options.decoder))
        for frame in session.stream(source, live=True):
            latencies.append(time.perf_counter() - source.released[frame.index])
        dropped = session.dropped_frames
    values = np.array(latencies[10:] or latencies) * 1000.0  # after the first frames' warm-up
    return {
        "median_ms": float(np.median(values)),
        "p95_ms": float(np.percentile(values, 95)),
        "delivered": float(len(latencies)),
        "dropped": float(dropped),
    }


def memory_growth(
    video: Path,
    effects: Sequence[str],
    frames: int,
    warmup: int,
    folder: Path,
    *,
    options: SessionOptions | None = None,
    size: tuple[int, int] | None = None,
) -> dict[str, float]:
    """Resident memory (MB) after ``warmup`` and after ``frames`` frames of a looped render."""
    samples: dict[str, float] = {}
    with _session(effects, options, True) as session:
        source = LoopedSource(video, frames, size, decoder=session.options.decoder)
        sink = open_sink(folder / "memory.mp4", source, encoder=session.options.encoder)
        for count, frame in enumerate(session.stream(source, pipelined=True), start=1):
            sink.write(frame)
            if count in (warmup, frames):
                samples[f"rss_mb_at_{count}"] = resident_mb()
    sink.close()
    samples["growth_mb"] = samples.get(f"rss_mb_at_{frames}", float("nan")) - samples.get(
        f"rss_mb_at_{warmup}", float("nan")
    )
    return samples


def resident_mb() -> float:
    """This process's resident memory now, in MB (Linux /proc; else the peak so far)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 1e6
    except (OSError, ValueError, IndexError):
        return peak_mb()


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


def bench_pipeline(
    video: Path,
    effects: Sequence[str],
    *,
    frames: int = 300,
    sequential: bool = True,
    live_frames: int = 300,
    memory_frames: int = 0,
    memory_warmup: int = 200,
    workers: int = 0,
    options: SessionOptions | None = None,
    size: tuple[int, int] | None = None,
    progress: Any = None,
    live_behind: bool = False,
) -> PipelineReport:
    """Run every measurement of the module text on ``video`` (resized to ``size``), each
    with a session opened with ``options`` (its ``pipelined`` set per measurement).
    ``live_behind``: time live latency a second time, right after the first, with the face
    model behind the stream, so the two compare within one run."""
    say = progress or (lambda text: None)
    options = options or SessionOptions()
    with VideoFileSource(video, decoder=options.decoder) as probe:
        size = size or (probe.width or 0, probe.height or 0)
        decoder = probe.decoder
    encoder = choose_encoder(options.encoder, *size)
    common: dict[str, Any] = {"options": options, "size": size}
    with tempfile.TemporaryDirectory(prefix="arfx-bench-") as tmp:
        folder = Path(tmp)
        say("plain decode and encode")
        plain = plain_fps(video, frames, folder, size, options=options)
        say("render, pipelined")
        fps, times = render_fps(video, effects, frames, folder, **common)
        seq = None
        if sequential:  # its stage times are each stage's own cost, without the others
            say("render, sequential")
            seq, times = render_fps(video, effects, frames, folder, pipelined=False, **common)
        report = PipelineReport(
            video=str(video),
            size=size,
            effects=list(effects),
            frames=frames,
            model_interval=options.model_schedule.interval,
            max_faces=options.max_faces,
            max_hands=options.max_hands,
            plain_fps=plain,
            encoder=encoder,
            decoder=decoder,
            render_fps=fps,
            sequential_fps=seq,
        )
        for stage, seconds in times.items():
            values = np.array(seconds[5:] or seconds) * 1000.0
            report.stages.append(
                StageRow(
                    stage,
                    float(np.median(values)),
                    float(np.percentile(values, 95)),
                    len(seconds),
                )
            )
        if workers:
            say(f"render, {workers} processes (whole file)")
            report.parallel = parallel_fps(video, effects, workers, folder, options)
            report.parallel["ratio"] = report.parallel["fps"] / plain if plain else float("nan")
        if live_frames:
            say("live")
            report.live = live_latency(video, effects, live_frames, **common)
            report.live_model = options.live_model
            report.live_max_wait = options.live_max_wait
            if live_behind:
                say("live, the model behind the stream")
                behind = {**common, "options": replace(options, live_model="behind")}
                report.live_behind = live_latency(video, effects, live_frames, **behind)
        if memory_frames:
            say(f"memory over {memory_frames} frames")
            report.memory = memory_growth(
                video, effects, memory_frames, memory_warmup, folder, **common
            )
        report.memory["peak_mb"] = peak_mb()
    return report


def _intervals(max_wait: float | None) -> str:
    return "none" if max_wait is None else f"{max_wait:g} frame intervals"


def pipeline_table(report: PipelineReport) -> str:
    """The report as text: the stage table, then the totals."""
    width, height = report.size
    lines = [
        f"{Path(report.video).name} {width}x{height}, {report.frames} frames, "
        f"effects: {', '.join(report.effects) or 'none'}, "
        f"model interval {report.model_interval}, "
        f"max faces {report.max_faces}, max hands {report.max_hands}, "
        f"encoder {report.encoder}, decoding {report.decoder}",
        "",
        f"{'stage':<16} {'median ms':>10} {'p95 ms':>8} {'frames':>7}"
        + ("" if report.sequential_fps else "   (pipelined: stages share the cores)"),
    ]
    # Each effect pass ("composite: NAME", software renderers only) under the composite row.
    passes = [row for row in report.stages if row.stage.startswith(PASS_TIME_PREFIX)]
    for row in report.stages:
        if row in passes:
            continue
        lines.append(f"{row.stage:<16} {row.median_ms:>10.1f} {row.p95_ms:>8.1f} {row.frames:>7}")
        if row.stage == "composite":
            for part in passes:
                name = "  " + part.stage[len(PASS_TIME_PREFIX) :]
                lines.append(
                    f"{name:<16} {part.median_ms:>10.1f} {part.p95_ms:>8.1f} {part.frames:>7}"
                )
    lines.append("")
    lines.append(f"plain decode+encode   {report.plain_fps:8.1f} frames/s")
    lines.append(
        f"render (pipelined)    {report.render_fps:8.1f} frames/s   {report.ratio:.3f}x plain"
    )
    if report.sequential_fps:
        lines.append(
            f"render (sequential)   {report.sequential_fps:8.1f} frames/s   "
            f"pipelining gain {report.render_fps / report.sequential_fps:.2f}x"
        )
    if report.parallel:
        par = report.parallel
        lines.append(
            f"render ({par['workers']:.0f} processes) {par['fps']:8.1f} frames/s   "
            f"{par['ratio']:.3f}x plain   (whole file: {par['frames']:.0f} frames in "
            f"{par['chunks']:.0f} chunks)"
        )
    for label, live in (
        (f"live latency ({report.live_model})", report.live),
        ("live latency (behind)", report.live_behind),
    ):
        if live:
            lines.append(
                f"{label:<21} median {live['median_ms']:.0f} ms, p95 {live['p95_ms']:.0f} ms "
                f"({live['delivered']:.0f} delivered, {live['dropped']:.0f} dropped; "
                f"max wait {_intervals(report.live_max_wait)})"
            )
    memory = report.memory
    growth = [key for key in memory if key.startswith("rss_mb_at_")]
    if growth:
        a, b = sorted(growth, key=lambda key: int(key.rsplit("_", 1)[1]))
        lines.append(
            f"memory                {memory[a]:.0f} MB at frame {a.rsplit('_', 1)[1]}, "
            f"{memory[b]:.0f} MB at frame {b.rsplit('_', 1)[1]}: "
            f"growth {memory['growth_mb']:+.1f} MB"
        )
    lines.append(f"peak memory           {memory.get('peak_mb', float('nan')):.0f} MB")
    return "\n".join(lines)
