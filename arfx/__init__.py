"""arfx: augmented-reality video effects on faces.

The pipeline, top to bottom: a source (file, webcam, images, arrays) -> face tracking
(MediaPipe mesh, stable ids, head pose) -> masks -> effect passes composited on the GPU
(moderngl) -> a sink (H.264 file with the input's timing and audio, window, callback).
"""

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
from .pose import HeadPose
from .registry import EffectRegistry
from .session import RenderError, RenderReport, Session, SessionOptions, open_source
from .sinks import CallbackSink, PreviewClosed, PreviewSink, Sink, VideoFileSink
from .sources import (
    ArraySource,
    HeadPathSource,
    ImageSource,
    Source,
    VideoFileSource,
    WebcamSource,
)
from .tracking import Face, FaceTracker, TrackerOptions

__version__ = "0.1.0"

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
    "TrackerOptions",
    "VideoFileSink",
    "VideoFileSource",
    "WebcamSource",
    "open_source",
]
