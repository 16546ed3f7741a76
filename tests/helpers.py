"""Small readers used by several test modules: decode a whole file with PyAV."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np


@dataclass
class Decoded:
    frames: list[np.ndarray] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)
    rate: float = 0.0
    size: tuple[int, int] = (0, 0)
    audio_codec: str | None = None
    audio_packets: int = 0
    audio_seconds: float = 0.0


def decode(path: Path, *, keep_frames: bool = True, limit: int | None = None) -> Decoded:
    """Every video frame (RGB) with its pts, plus the audio stream's codec, packets, duration."""
    out = Decoded()
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        out.rate = float(video.average_rate or 0)
        out.size = (video.codec_context.width, video.codec_context.height)
        for frame in container.decode(video=0):
            out.pts.append(frame.pts)
            if keep_frames:
                out.frames.append(frame.to_ndarray(format="rgb24"))
            if limit and len(out.pts) >= limit:
                break
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            out.audio_codec = audio.codec_context.name
            end = 0.0
            start = None
            for packet in container.demux(audio):
                if packet.pts is None or packet.size == 0:
                    continue
                out.audio_packets += 1
                t0 = float(packet.pts * audio.time_base)
                start = t0 if start is None else min(start, t0)
                end = max(end, t0 + float((packet.duration or 0) * audio.time_base))
            out.audio_seconds = end - (start or 0.0)
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.PSNR(np.ascontiguousarray(a), np.ascontiguousarray(b)))


def remux_faststart(src: Path, dst: Path) -> None:
    """Copy every stream of ``src`` into an MP4 with its index (moov) before the data."""
    with (
        av.open(str(src)) as inp,
        av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as out,
    ):
        mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)


def write_tone(path: Path, codec: str, rate: int, samples: np.ndarray, sample_format: str) -> None:
    """An audio-only file: one mono frame of ``samples`` encoded with ``codec``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format=sample_format, layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
