"""Where frames go: a video file (with the source's audio), a preview window, a callback.

Every sink is a context manager: leaving the block normally finishes the output, leaving it
with an exception aborts it (see :meth:`VideoFileSink.abort`), so a crash never leaves a
half-written file under the name the user asked for.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

from .codecs import check_encoder, choose_encoder, encoder_options
from .errors import SinkError
from .frame import Frame, as_rgb8

# Output suffix -> FFmpeg muxer. The temporary file keeps the suffix too, so FFmpeg's own
# guess is the fallback for suffixes not listed here.
_FORMATS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".avi": "avi",
}


class PreviewClosed(Exception):
    """The user closed the preview (q, Esc or the window's close button): stop rendering."""


class Sink(ABC):
    """Consumes frames. ``close()`` finishes the output; leaving a ``with`` block calls it."""

    @abstractmethod
    def write(self, frame: Frame) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook, most need no cleanup
        """Finish the output. Safe to call more than once."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class VideoFileSink(Sink):
    """H.264 (yuv420p) video file, optionally with audio copied from another file.

    ``encoder`` is "auto" (NVIDIA's h264_nvenc where it opens, else libx264), "libx264" or
    "h264_nvenc" (see ``arfx.codecs``); ``encoder`` afterwards names the one used. ``crf``
    is the constant quality (h264_nvenc's ``cq``); ``preset`` is libx264's.

    Timing: frames that carry ``pts`` and ``time_base`` are written with exactly those
    timestamps (rescaled only if ``time_base`` is given and differs), so the output has the
    input's frame rate and timing, variable frame rate included. Frames without pts are
    written at a constant ``fps`` (pts = number of frames written so far).

    yuv420p needs even dimensions: an odd width or height is padded on the right/bottom by
    one replicated pixel; ``width``/``height`` report the encoded (padded) size.

    Audio: the first audio stream of ``audio_from`` is copied packet by packet (no
    re-encoding), interleaved with the video as frames are written; audio past the last frame
    is added by ``close()``. A codec the container cannot hold raises SinkError here, at open.

    The file is written beside the target as ``.{stem}.arfx-tmp{suffix}`` and renamed to
    ``path`` only when ``close()`` succeeds; see :meth:`abort` for what happens otherwise.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        fps: Fraction,
        time_base: Fraction | None = None,
        audio_from: str | Path | None = None,
        crf: int = 18,
        preset: str = "veryfast",
        keep_partial: bool = True,
        encoder: str = "auto",
    ) -> None:
        self.path = Path(path)
        check_encoder(encoder)
        if width < 1 or height < 1:
            raise SinkError(f"{self.path}: invalid frame size {width}x{height}")
        if fps is None or Fraction(fps) <= 0:
            raise SinkError(f"{self.path}: fps must be positive, got {fps}")
        self.frame_width, self.frame_height = int(width), int(height)
        self.width = self.frame_width + self.frame_width % 2
        self.height = self.frame_height + self.frame_height % 2
        self.fps = Fraction(fps)
        self.keep_partial = keep_partial
        self.frames_written = 0
        self.audio_codec: str | None = None
        self._time_base = Fraction(time_base) if time_base is not None else None
        self._last_pts: int | None = None
        self._closed = False
        self._audio_in: av.container.InputContainer | None = None
        self._audio_packets: Iterator[av.Packet] | None = None
        self._audio_pending: av.Packet | None = None
        self._audio_out: av.audio.stream.AudioStream | None = None

        suffix = self.path.suffix
        self._tmp = self.path.with_name(f".{self.path.stem}.arfx-tmp{suffix}")
        if not self.path.parent.is_dir():
            raise SinkError(f"{self.path}: output directory {self.path.parent} does not exist")
        try:  # PyAV opens the file only when the header is written: check writability now
            self._tmp.touch()
        except OSError as exc:
            raise SinkError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc
        try:
            self._out = av.open(str(self._tmp), "w", format=_FORMATS.get(suffix.lower()))
        except (av.FFmpegError, ValueError, OSError) as exc:
            self._tmp.unlink(missing_ok=True)
            raise SinkError(f"{self.path}: cannot create a '{suffix}' video file ({exc})") from exc
        try:
            # "libx264" or "h264_nvenc": what ``encoder`` came to here (arfx.codecs).
            self.encoder = choose_encoder(encoder, self.width, self.height)
            self._video = self._out.add_stream(self.encoder, rate=self.fps)
            self._video.width = self.width
            self._video.height = self.height
            self._video.pix_fmt = "yuv420p"
            self._video.codec_context.options = encoder_options(
                self.encoder, crf=crf, preset=preset
            )
            if audio_from is not None:
                self._open_audio(Path(audio_from))
        except SinkError:
            self._discard()
            raise
        except (av.FFmpegError, ValueError, RuntimeError) as exc:
            self._discard()
            raise SinkError(f"{self.path}: cannot set up the H.264 stream ({exc})") from exc

    def _open_audio(self, audio_from: Path) -> None:
        if not audio_from.is_file():
            raise SinkError(f"{self.path}: audio source {audio_from} not found")
        try:
            self._audio_in = av.open(str(audio_from))
        except (av.FFmpegError, OSError) as exc:
            raise SinkError(f"{self.path}: cannot read audio from {audio_from} ({exc})") from exc
        if not self._audio_in.streams.audio:
            self._audio_in.close()
            self._audio_in = None
            return
        in_audio = self._audio_in.streams.audio[0]
        self.audio_codec = in_audio.codec_context.codec.canonical_name
        container = self._out.format.name
        supported = self._out.supported_codecs
        problem = None
        if supported and in_audio.codec_context.codec.name not in supported:
            problem = "not supported by the container"
        else:
            try:
                self._audio_out = self._out.add_stream_from_template(in_audio)
            except (av.FFmpegError, ValueError) as exc:
                problem = str(exc)
        if problem is not None:
            raise SinkError(
                f"{self.path}: cannot copy {self.audio_codec} audio from {audio_from} into a "
                f"{container} container ({problem}); re-encode the audio or pick another suffix"
            )
        self._audio_packets = iter(self._audio_in.demux(in_audio))

    def write(self, frame: Frame) -> None:
        if self._closed:
            raise SinkError(f"{self.path}: write after close")
        image = as_rgb8(frame.image, what=f"frame {frame.index}")
        if image.shape[:2] != (self.frame_height, self.frame_width):
            raise SinkError(
                f"{self.path}: frame {frame.index} is {image.shape[1]}x{image.shape[0]}, "
                f"expected {self.frame_width}x{self.frame_height}"
            )
        if self.frames_written == 0:
            self._set_time_base(frame)
        pts = self._pts(frame)
        if self._last_pts is not None and pts <= self._last_pts:
            raise SinkError(
                f"{self.path}: frame {frame.index} has pts {pts}, not after the previous "
                f"frame's {self._last_pts} (time base {self._time_base})"
            )
        if image.shape[:2] != (self.height, self.width):
            pad = ((0, self.height - image.shape[0]), (0, self.width - image.shape[1]), (0, 0))
            image = np.pad(image, pad, mode="edge")
        av_frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        av_frame.pts = pts
        av_frame.time_base = self._time_base
        try:
            self._mux_audio_until(float(pts * self._time_base))
            for packet in self._video.encode(av_frame):
                self._out.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise SinkError(f"{self.path}: cannot write frame {frame.index} ({exc})") from exc
        self._last_pts = pts
        self.frames_written += 1

    def _set_time_base(self, frame: Frame) -> None:
        if self._time_base is None:
            has_clock = frame.pts is not None and frame.time_base is not None
            self._time_base = Fraction(frame.time_base) if has_clock else 1 / self.fps
        self._video.time_base = self._time_base
        self._video.codec_context.time_base = self._time_base

    def _pts(self, frame: Frame) -> int:
        if frame.pts is None or frame.time_base is None:
            return round(self.frames_written / (self.fps * self._time_base))
        if frame.time_base == self._time_base:
            return int(frame.pts)
        return round(frame.pts * frame.time_base / self._time_base)

    def _mux_audio_until(self, seconds: float | None) -> None:
        """Copy audio packets up to ``seconds`` (all that remain when None)."""
        if self._audio_packets is None:
            return
        while True:
            packet = self._audio_pending
            if packet is None:
                packet = next(self._audio_packets, None)
                if packet is None:
                    self._audio_packets = None
                    return
                if packet.dts is None:  # the demuxer's empty flush packet
                    continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if seconds is not None and float(stamp * packet.time_base) > seconds:
                self._audio_pending = packet
                return
            self._audio_pending = None
            packet.stream = self._audio_out
            self._out.mux(packet)

    def _finish(self, *, all_audio: bool) -> None:
        """Flush the encoder, add audio, write the trailer and close the file."""
        try:
            for packet in self._video.encode(None):
                self._out.mux(packet)
            if all_audio:
                self._mux_audio_until(None)
        finally:
            self._out.close()
            self._close_audio()

    def _close_audio(self) -> None:
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None
        self._audio_packets = None

    def _discard(self) -> None:
        try:
            self._out.close()
        except (av.FFmpegError, OSError):
            pass
        self._close_audio()
        self._tmp.unlink(missing_ok=True)

    def close(self) -> None:
        """Finish the file and move it to ``path``. Raises SinkError if nothing was written."""
        if self._closed:
            return
        self._closed = True
        if self.frames_written == 0:
            self._discard()
            raise SinkError(f"{self.path}: no frames were written")
        try:
            self._finish(all_audio=True)
            os.replace(self._tmp, self.path)
            # A complete output supersedes what an earlier failed run kept.
            self.path.with_name(f"{self.path.stem}.partial{self.path.suffix}").unlink(
                missing_ok=True
            )
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._tmp.unlink(missing_ok=True)
            raise SinkError(f"{self.path}: cannot finish the file ({exc})") from exc

    def abort(self) -> Path | None:
        """Stop early, keeping what was rendered as ``{stem}.partial{suffix}`` if asked.

        The encoder is flushed and the trailer written, so the partial file plays. Returns its
        path, or None when ``keep_partial`` is False or no frame was written (nothing to keep).
        Nothing is ever left under the final name.
        """
        if self._closed:
            return None
        self._closed = True
        if self.frames_written == 0 or not self.keep_partial:
            self._discard()
            return None
        partial = self.path.with_name(f"{self.path.stem}.partial{self.path.suffix}")
        try:
            self._finish(all_audio=False)
            os.replace(self._tmp, partial)
        except Exception:  # best effort: abort runs while another error propagates
            self._tmp.unlink(missing_ok=True)
            return None
        return partial

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ImageFileSink(Sink):
    """Writes the first frame to an image file (written to a temporary name, then renamed)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise SinkError(f"{self.path}: output folder does not exist")
        self._written = False

    def write(self, frame: Frame) -> None:
        if self._written:
            return
        temp = self.path.with_name(f".{self.path.stem}.arfx-tmp{self.path.suffix}")
        bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(temp), bgr):
            temp.unlink(missing_ok=True)
            raise SinkError(f"{self.path}: cannot write image")
        temp.replace(self.path)
        self._written = True

    def close(self) -> None:
        pass


class PreviewSink(Sink):
    """Show frames in an OpenCV window; q, Esc or closing the window raises PreviewClosed.

    ``wait_ms`` is passed to ``cv2.waitKey``: 1 keeps the render loop fast, larger values
    slow playback down for inspection (0 is raised to 1, since waitKey(0) blocks until a key).
    ``on_key`` receives every other key pressed (its ``cv2.waitKey`` code & 0xFF), so an app
    can map keys to parameter changes.
    """

    _QUIT_KEYS = (ord("q"), ord("Q"), 27)

    def __init__(
        self,
        window: str = "arfx",
        *,
        wait_ms: int = 1,
        on_key: Callable[[int], None] | None = None,
    ) -> None:
        self.window = window
        self.wait_ms = max(1, int(wait_ms))
        self.on_key = on_key
        self._shown = False

    def write(self, frame: Frame) -> None:
        image = as_rgb8(frame.image, what=f"frame {frame.index}")
        if self._shown and self._window_gone():
            raise PreviewClosed(f"preview window {self.window!r} was closed")
        cv2.imshow(self.window, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self._shown = True
        key = cv2.waitKey(self.wait_ms)
        if key != -1 and (key & 0xFF) in self._QUIT_KEYS:
            raise PreviewClosed(f"preview window {self.window!r}: quit key pressed")
        if key != -1 and self.on_key is not None:
            self.on_key(key & 0xFF)
        if self._window_gone():
            raise PreviewClosed(f"preview window {self.window!r} was closed")

    def _window_gone(self) -> bool:
        try:
            return cv2.getWindowProperty(self.window, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        if self._shown:
            self._shown = False
            try:
                cv2.destroyWindow(self.window)
                cv2.waitKey(1)  # let the GUI loop process the destroy
            except cv2.error:
                pass


class CallbackSink(Sink):
    """Hand each frame to ``fn``: for custom outputs (streaming, tests, collecting frames)."""

    def __init__(self, fn: Callable[[Frame], None]) -> None:
        self.fn = fn

    def write(self, frame: Frame) -> None:
        self.fn(frame)
