"""Which H.264 encoder and which decoder a video file gets: the GPU's where it has them.

PyAV's wheels carry FFmpeg built with NVIDIA's hardware encoder (``h264_nvenc``) and CUDA
decoding. Both load the driver only when opened, and on a machine without one they fail at
once. The encoder "auto" therefore tries h264_nvenc only where an NVIDIA driver is loaded
and falls back to libx264 when it does not open (data-centre GPUs such as the H100 and
H200 have no video encoder), saying why in the log; naming one explicitly makes its
failure an error. On a CPU-only machine "auto" costs one attempt to load the driver's library.

The decoder "auto" decodes in software: the pipeline needs every frame as RGB in host
memory, and on an H200 host (16 cores, 1080p H.264) fetching CUDA-decoded frames made a
plain decode-and-encode slower than FFmpeg's threaded software decoder (23 against 41
frames/s; docs/performance.md). "cuda" asks for it explicitly, for a host whose CPU is the
bottleneck.

Output is H.264 yuv420p either way, so a file plays the same whichever encoder made it.
"""

from __future__ import annotations

import io
import logging
from fractions import Fraction
from typing import Any

import av

from . import gpu

log = logging.getLogger(__name__)

ENCODERS: tuple[str, ...] = ("auto", "libx264", "h264_nvenc")
"""``encoder`` values: "auto" is h264_nvenc where it opens, else libx264."""
DECODERS: tuple[str, ...] = ("auto", "software", "cuda")
"""``decoder`` values: "auto" and "software" are FFmpeg's software decoders (measured
faster, see above); "cuda" decodes on an NVIDIA GPU."""


def check_encoder(name: str) -> str:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; valid: {', '.join(ENCODERS)}")
    return name


def check_decoder(name: str) -> str:
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}; valid: {', '.join(DECODERS)}")
    return name


def nvenc_problem(width: int = 256, height: int = 256) -> str | None:
    """None when h264_nvenc opens for a ``width`` x ``height`` yuv420p stream here, else
    why it does not (FFmpeg's words)."""
    try:
        context = av.CodecContext.create("h264_nvenc", "w")
    except (av.FFmpegError, ValueError) as exc:  # an FFmpeg built without it
        return f"this FFmpeg has no h264_nvenc ({exc})"
    context.width, context.height = width + width % 2, height + height % 2
    context.pix_fmt = "yuv420p"
    context.time_base = Fraction(1, 30)
    try:
        context.open()  # freed with the object; PyAV has no close for a codec context
    except (av.FFmpegError, OSError) as exc:
        return str(exc) or type(exc).__name__
    return None


def choose_encoder(requested: str, width: int, height: int) -> str:
    """The encoder to use for ``requested`` (see ENCODERS). Raises RuntimeError when
    "h264_nvenc" was asked for and does not open."""
    check_encoder(requested)
    if requested == "libx264":
        return "libx264"
    if requested == "auto" and gpu.nvidia_driver_problem() is not None:
        return "libx264"
    problem = nvenc_problem(width, height)
    if problem is None:
        return "h264_nvenc"
    if requested == "h264_nvenc":
        raise RuntimeError(
            f"h264_nvenc cannot encode here ({problem}): it needs an NVIDIA GPU and driver; "
            "use encoder 'libx264' or 'auto'"
        )
    log.info("h264_nvenc does not open (%s); encoding with libx264", problem)
    return "libx264"


def encoder_options(name: str, *, crf: int, preset: str) -> dict[str, str]:
    """Constant-quality settings: libx264's ``crf`` and ``preset``; for h264_nvenc the same
    quality number as its ``cq`` (variable bit rate, no cap) and its middle preset (p4)."""
    if name == "h264_nvenc":
        return {"preset": "p4", "rc": "vbr", "cq": str(int(crf)), "b": "0"}
    return {"crf": str(int(crf)), "preset": preset}


def cuda_decode_problem() -> str | None:
    """None when CUDA decoding starts here (tried on a few frames of H.264 made in memory),
    else why not."""
    problem = gpu.nvidia_driver_problem()
    if problem is not None:
        return problem
    from av.codec.hwaccel import HWAccel

    data = io.BytesIO()
    with av.open(data, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame(64, 64, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data.seek(0)
    try:
        accel = HWAccel(device_type="cuda", allow_software_fallback=False)
        with av.open(data, hwaccel=accel) as container:
            next(container.decode(video=0))
    except (av.FFmpegError, OSError, StopIteration) as exc:
        return str(exc) or type(exc).__name__
    return None


def codec_problem(encoder: str, decoder: str) -> str | None:
    """Why a GPU codec named explicitly (not "auto") cannot be used on this machine, or
    None: a check to make before starting work that would fail on every file."""
    check_encoder(encoder)
    check_decoder(decoder)
    if encoder == "h264_nvenc":
        problem = nvenc_problem()
        if problem is not None:
            return f"--encoder h264_nvenc cannot encode here ({problem})"
    if decoder == "cuda":
        problem = cuda_decode_problem()
        if problem is not None:
            return f"--decoder cuda cannot decode here ({problem})"
    return None


def open_input(path: str, decoder: str) -> tuple[Any, str]:
    """``av.open(path)`` decoding on the GPU when ``decoder`` allows it: (container, "cuda"
    or "software"). Raises the FFmpeg error of the plain open, or RuntimeError when "cuda"
    was asked for and cannot start."""
    check_decoder(decoder)
    if decoder in ("software", "auto"):
        return av.open(path), "software"
    from av.codec.hwaccel import HWAccel

    try:
        # Codecs the GPU does not decode fall back to software inside FFmpeg.
        accel = HWAccel(device_type="cuda", allow_software_fallback=True)
        container = av.open(path, hwaccel=accel)
        return container, "cuda" if _on_gpu(container) else "software"
    except (av.FFmpegError, OSError) as exc:
        av.open(path).close()  # a file FFmpeg cannot read raises its own error here
        raise RuntimeError(
            f"CUDA decoding cannot start here ({exc}): it needs an NVIDIA GPU and driver; "
            "use decoder 'software' or 'auto'"
        ) from exc


def _on_gpu(container: Any) -> bool:
    """Whether the first video stream of ``container`` decodes on the GPU (its codec has a
    CUDA decoder); False for one that fell back to software, or that has no video."""
    if not container.streams.video:
        return False
    flag = container.streams.video[0].codec_context.is_hwaccel
    return bool(flag() if callable(flag) else flag)
