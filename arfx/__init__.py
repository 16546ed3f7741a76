"""arfx: augmented-reality video effects on faces.

The pipeline, top to bottom: a source (file, webcam, images, arrays) -> face tracking
(MediaPipe mesh, stable ids, head pose) -> masks -> effect passes composited on the GPU
(moderngl) -> a sink (H.264 file with the input's timing and audio, window, callback).

Names are imported on first use, so light modules (``arfx.alignment``, ``arfx.faceparts``,
the training code) load without MediaPipe, OpenGL or FFmpeg.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ArfxError": "errors",
    "EffectError": "errors",
    "FrameError": "errors",
    "ParameterError": "errors",
    "SinkError": "errors",
    "SourceError": "errors",
    "Effect": "effect",
    "EffectSpec": "effect",
    "FrameContext": "effect",
    "EffectRegistry": "registry",
    "Frame": "frame",
    "HeadPose": "pose",
    "Face": "tracking",
    "FaceTracker": "tracking",
    "TrackerOptions": "tracking",
    "RenderError": "session",
    "RenderReport": "session",
    "Session": "session",
    "SessionOptions": "session",
    "open_source": "session",
    "quiet_native_logs": "nativelogs",
    "StabilizerOptions": "smoothing",
    "ModelSchedule": "model",
    "CallbackSink": "sinks",
    "PreviewClosed": "sinks",
    "PreviewSink": "sinks",
    "Sink": "sinks",
    "VideoFileSink": "sinks",
    "ArraySource": "sources",
    "HeadPathSource": "sources",
    "ImageSource": "sources",
    "Source": "sources",
    "VideoFileSource": "sources",
    "WebcamSource": "sources",
}

__all__ = [
    "ArfxError",
    "ArraySource",
    "CallbackSink",
    "Effect",
    "EffectError",
    "EffectRegistry",
    "EffectSpec",
    "Face",
    "FaceTracker",
    "Frame",
    "FrameContext",
    "FrameError",
    "HeadPathSource",
    "HeadPose",
    "ImageSource",
    "ModelSchedule",
    "ParameterError",
    "PreviewClosed",
    "PreviewSink",
    "RenderError",
    "RenderReport",
    "Session",
    "SessionOptions",
    "Sink",
    "SinkError",
    "Source",
    "SourceError",
    "StabilizerOptions",
    "TrackerOptions",
    "VideoFileSink",
    "VideoFileSource",
    "WebcamSource",
    "open_source",
    "quiet_native_logs",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'arfx' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from .effect import Effect, EffectSpec, FrameContext
    from .errors import (
        ArfxError,
        EffectError,
        FrameError,
        ParameterError,
        SinkError,
        SourceError,
    )
    from .frame import Frame
    from .model import ModelSchedule
    from .pose import HeadPose
    from .registry import EffectRegistry
    from .session import RenderError, RenderReport, Session, SessionOptions, open_source
    from .sinks import CallbackSink, PreviewClosed, PreviewSink, Sink, VideoFileSink
    from .smoothing import StabilizerOptions
    from .sources import (
        ArraySource,
        HeadPathSource,
        ImageSource,
        Source,
        VideoFileSource,
        WebcamSource,
    )
    from .tracking import Face, FaceTracker, TrackerOptions
