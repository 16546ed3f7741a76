"""Where frames come from: video files, webcams, still images, numpy arrays, a synthetic head path.

Every source is a context manager that yields :class:`~arfx.frame.Frame` objects with an RGB
uint8 image and the timing the input gave it, so a sink can reproduce that timing exactly.
Sources are single-pass: iterate once, then close (file and camera sources hold a decoder or a
device that cannot rewind cheaply).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from .codecs import check_decoder, open_input
from .errors import FrameError, SourceError
from .frame import Frame, as_rgb8


class Source(ABC):
    """A stream of frames with whatever is known up front about size and timing.

    Attributes are None where the input does not say (an array iterator has no frame count,
    a camera no path). ``fps`` is the nominal rate; per-frame timing is in each frame's pts.
    """

    width: int | None = None
    height: int | None = None
    fps: Fraction | None = None
    time_base: Fraction | None = None
    frame_count: int | None = None
    path: Path | None = None
    name: str = "source"

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None:  # noqa: B027 - optional hook, most need no cleanup
        """Release what the source holds. Safe to call more than once."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _bgr_to_rgb8(array: np.ndarray, what: str) -> np.ndarray:
    """OpenCV order (gray, BGR, BGRA; 8/16-bit or float) to RGB uint8, alpha dropped."""
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[:, :, 2::-1]  # BGR(A) -> RGB, before as_rgb8 drops alpha
    return as_rgb8(array, what=what)


def _fraction(value: Any) -> Fraction | None:
    if value is None:
        return None
    fraction = Fraction(value)
    return fraction if fraction > 0 else None


def _camera_rate(fps: float) -> Fraction | None:
    """A camera's float rate as a Fraction, snapping 29.97 and friends to 30000/1001."""
    if fps <= 0 or not math.isfinite(fps):
        return None
    ntsc = Fraction(round(fps * 1.001) * 1000, 1001)
    if ntsc and abs(float(ntsc) - fps) < 0.005:
        return ntsc
    return Fraction(fps).limit_denominator(1000)


class VideoFileSource(Source):
    """Decode any container/codec FFmpeg reads (h264 mp4, hevc mov, ...) with PyAV.

    The file is opened in the constructor so that size and rate are known before iteration.
    ``time`` of each frame is relative to the stream's start, so the first frame is at ~0;
    ``pts`` and ``time_base`` are the stream's own, untouched. Frames come upright, as a
    player shows them: a phone's portrait video (stored sideways with a display matrix) is
    turned by ``rotation`` degrees counter-clockwise, and ``width``/``height`` are the
    turned size, so faces are found and the output needs no rotation tag.

    ``decoder`` is "auto" (software, measured faster; see ``arfx.codecs``), "software" or
    "cuda" (NVIDIA's decoder); ``decoder`` afterwards names the one used.
    """

    def __init__(
        self, path: str | Path, *, thread_type: str = "AUTO", decoder: str = "auto"
    ) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self._iterated = False
        self._active: Iterator[Frame] | None = None
        check_decoder(decoder)
        if not self.path.is_file():
            raise SourceError(f"{self.name}: file not found")
        try:
            # self.decoder: "cuda" or "software", what ``decoder`` came to (arfx.codecs).
            self._container, self.decoder = open_input(self.name, decoder)
        except RuntimeError as exc:  # decoder="cuda" and no CUDA here
            raise SourceError(f"{self.name}: {exc}") from exc
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"{self.name}: not a readable media file ({exc})") from exc
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"{self.name}: no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = thread_type
        codec = self._stream.codec_context
        self.rotation = _display_rotation(self.path)
        self.width = int(codec.width) or None
        self.height = int(codec.height) or None
        if self.rotation in (90, 270):
            self.width, self.height = self.height, self.width
        self.fps = _fraction(self._stream.average_rate) or _fraction(self._stream.guessed_rate)
        self.time_base = _fraction(self._stream.time_base)
        self.frame_count = int(self._stream.frames) or None
        # In the MP4/MOV family the frame count comes from the sample table, so a shortfall
        # while decoding means the file was cut short (other containers may only estimate).
        self._indexed = "mp4" in self._container.format.name.split(",")
        self._start_pts = int(self._stream.start_time or 0)
        self._seek: tuple[int, int] | None = None

    def seek(self, pts: int, index: int) -> None:
        """Start iteration at the keyframe at ``pts`` (the stream's time base), which is
        frame number ``index`` of the file: how one chunk of a long file is rendered
        (``arfx.chunks``). Frames keep the file's own pts, time and numbering."""
        if self._iterated:
            raise SourceError(f"{self.name}: cannot seek once iteration has started")
        if pts > self._start_pts:
            try:
                self._container.seek(pts, stream=self._stream, backward=True)
            except av.FFmpegError as exc:
                raise SourceError(f"{self.name}: cannot seek to pts {pts}: {exc}") from exc
        self._seek = (pts, index)

    def __iter__(self) -> Iterator[Frame]:
        if self._container is None:
            raise SourceError(f"{self.name}: source is closed")
        if self._iterated:
            raise SourceError(f"{self.name}: already iterated; open a new source to read again")
        self._iterated = True
        self._active = self._frames()
        return self._active

    def _frames(self) -> Iterator[Frame]:
        first_pts, index = self._seek or (None, 0)
        first_index = index
        packets = 0
        try:
            for packet in self._container.demux(self._stream):
                packets += packet.size > 0
                if packet.is_corrupt:  # a truncated file ends in a partial packet
                    for av_frame in self._stream.decode(None):  # the good frames still queued
                        yield self._to_frame(av_frame, index)
                        index += 1
                    if index == first_index:
                        raise SourceError(f"{self.name}: no decodable video frames (truncated)")
                    raise SourceError(
                        f"{self.name}: decode error at frame {index}: truncated or corrupt data"
                    )
                for av_frame in packet.decode():
                    if first_pts is not None and av_frame.pts is not None:
                        if av_frame.pts < first_pts:  # a seek that landed early
                            continue
                    yield self._to_frame(av_frame, index)
                    index += 1
        except av.FFmpegError as exc:
            if index == first_index:
                raise SourceError(
                    f"{self.name}: no decodable video frames (decode error: {exc})"
                ) from exc
            raise SourceError(f"{self.name}: decode error at frame {index}: {exc}") from exc
        if index == first_index:
            raise SourceError(f"{self.name}: no decodable video frames")
        if self._indexed and self.frame_count and first_pts is None and packets < self.frame_count:
            # MP4/MOV sample tables list every packet: the data ended before the index did.
            # (Compare packets, not frames: an edit list may hide a few decoded frames.)
            raise SourceError(
                f"{self.name}: decode error at frame {index}: file truncated "
                f"(the index lists {self.frame_count} frames)"
            )

    def _to_frame(self, av_frame: av.VideoFrame, index: int) -> Frame:
        image = av_frame.to_ndarray(format="rgb24")
        if self.rotation:
            image = np.rot90(image, self.rotation // 90)
        image = np.ascontiguousarray(image)
        pts = av_frame.pts
        if pts is None and self.time_base and self.fps:
            pts = self._start_pts + round(index / (self.fps * self.time_base))
        if pts is None or self.time_base is None:
            seconds = index / float(self.fps) if self.fps else 0.0
            return Frame(image=image, index=index, time=seconds)
        seconds = float((pts - self._start_pts) * self.time_base)
        return Frame(image=image, index=index, pts=int(pts), time_base=self.time_base, time=seconds)

    def close(self) -> None:
        if self._active is not None:  # stop a suspended decode first: PyAV crashes otherwise
            self._active.close()
            self._active = None
        if self._container is not None:
            self._container.close()
            self._container = None


def _display_rotation(path: Path) -> int:
    """The counter-clockwise turn (0, 90, 180 or 270) a player gives the file's first video
    stream, from its display matrix (PyAV reads it per frame, so one frame is decoded here in a
    separate container: the caller's container stays at the start). 0 if there is none or no
    frame decodes from the first 64 packets (the real decode then reports the problem)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for number, packet in enumerate(container.demux(stream)):
                for frame in packet.decode():
                    return round(float(frame.rotation) / 90) % 4 * 90
                if number >= 64:
                    break
    except (av.FFmpegError, OSError, ValueError):
        pass
    return 0


class WebcamSource(Source):
    """A live camera (or anything ``cv2.VideoCapture`` opens) behind the Source interface.

    Timestamps are wall-clock microseconds since the first frame, because cameras deliver at a
    variable rate. A failed read is retried by reopening the device ``reconnect_attempts``
    times (``reconnect_delay`` seconds apart) before the iteration ends with a SourceError:
    USB cameras drop out briefly when re-enumerated. ``capture_factory`` exists so tests can
    substitute a fake device. A video file path given as ``device`` plays like a camera: its
    end counts as a dropout, so it starts over (read files once with VideoFileSource).
    """

    def __init__(
        self,
        device: int | str = 0,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        capture_factory: Callable[[int | str], Any] = cv2.VideoCapture,
        reconnect_attempts: int = 3,
        reconnect_delay: float = 0.5,
    ) -> None:
        self.device = device
        self.name = f"camera {device!r}"
        self.time_base = Fraction(1, 1_000_000)
        self._requested = (width, height, fps)
        self._factory = capture_factory
        self._reconnect_attempts = int(reconnect_attempts)
        self._reconnect_delay = float(reconnect_delay)
        self._active: Iterator[Frame] | None = None
        self._capture = self._open()
        if self._capture is None:
            raise SourceError(f"{self.name}: cannot open the device")
        self.fps = _camera_rate(float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0))
        self.width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0) or None
        self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0) or None

    def _open(self) -> Any | None:
        """Create and configure a capture, or return None if it does not open."""
        try:
            capture = self._factory(self.device)
        except Exception:  # backends raise anything; the caller reports the device
            return None
        if capture is None or not capture.isOpened():
            if capture is not None:
                capture.release()
            return None
        width, height, fps = self._requested
        if width:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            capture.set(cv2.CAP_PROP_FPS, fps)
        return capture

    def _read(self) -> np.ndarray | None:
        if self._capture is None:
            return None
        ok, image = self._capture.read()
        return image if ok and image is not None else None

    def _reconnect(self) -> np.ndarray | None:
        for attempt in range(self._reconnect_attempts):
            if self._capture is not None:
                self._capture.release()
                self._capture = None
            if attempt and self._reconnect_delay > 0:
                time.sleep(self._reconnect_delay)
            self._capture = self._open()
            image = self._read()
            if image is not None:
                return image
        return None

    def __iter__(self) -> Iterator[Frame]:
        if self._capture is None:
            raise SourceError(f"{self.name}: source is closed")
        self._active = self._frames()
        return self._active

    def _frames(self) -> Iterator[Frame]:
        index = 0
        start: float | None = None
        last_pts = -1
        while True:
            image = self._read()
            if image is None:
                image = self._reconnect()
                if image is None:
                    raise SourceError(
                        f"{self.name}: read failed after frame {index} and "
                        f"{self._reconnect_attempts} reconnect attempts failed"
                    )
            now = time.monotonic()
            if start is None:
                start = now
            pts = max(round((now - start) * 1_000_000), last_pts + 1)
            last_pts = pts
            rgb = _bgr_to_rgb8(image, what=f"{self.name} frame {index}")
            yield Frame(image=rgb, index=index, pts=pts, time_base=self.time_base, time=pts / 1e6)
            index += 1

    def close(self) -> None:
        if self._active is not None:  # a suspended iteration must not reopen the device
            self._active.close()
            self._active = None
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def read_image(path: str | Path) -> np.ndarray:
    """An image file (8/16-bit, gray, BGR, BGRA) as RGB uint8; SourceError names the file."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # imdecode also handles non-ASCII paths
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc})") from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise SourceError(f"{path}: not a readable image")
    try:
        return _bgr_to_rgb8(image, what=str(path))
    except FrameError as exc:
        raise SourceError(str(exc)) from exc


class ImageSource(Source):
    """Still images as a video: each image yielded ``repeat`` times at ``fps``.

    Images are read with OpenCV (8/16-bit, gray, BGR, BGRA) and converted to RGB uint8. All
    paths are checked up front so that a typo fails before any processing starts; the first
    image is read to report the size.
    """

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        repeat: int = 1,
        fps: Fraction = Fraction(30),
    ) -> None:
        if isinstance(paths, (str, Path)):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise SourceError("ImageSource: no image paths given")
        if repeat < 1:
            raise SourceError(f"ImageSource: repeat must be >= 1, got {repeat}")
        self.repeat = int(repeat)
        self.fps = Fraction(fps)
        self.time_base = 1 / self.fps
        self.frame_count = len(self.paths) * self.repeat
        self.path = self.paths[0] if len(self.paths) == 1 else None
        self.name = str(self.paths[0]) if len(self.paths) == 1 else f"{len(self.paths)} images"
        for path in self.paths:
            if not path.is_file():
                raise SourceError(f"{path}: file not found")
        first = read_image(self.paths[0])
        self.height, self.width = first.shape[:2]

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for path in self.paths:
            image = read_image(path)
            for _ in range(self.repeat):
                yield Frame(
                    image=image,
                    index=index,
                    pts=index,
                    time_base=self.time_base,
                    time=float(index * self.time_base),
                )
                index += 1


class ArraySource(Source):
    """Numpy images (any layout as_rgb8 accepts) as a video at ``fps``.

    Size and count are reported when ``arrays`` is a sequence or an NxHxW(xC) array; a plain
    iterator is consumed lazily and reports neither.
    """

    def __init__(self, arrays: Iterable[np.ndarray], *, fps: Fraction = Fraction(30)) -> None:
        self._arrays = arrays
        self.fps = Fraction(fps)
        self.time_base = 1 / self.fps
        self.name = "arrays"
        if isinstance(arrays, (Sequence, np.ndarray)):
            self.frame_count = len(arrays)
            if self.frame_count:
                shape = np.shape(arrays[0])
                if len(shape) >= 2:
                    self.height, self.width = int(shape[0]), int(shape[1])

    def __iter__(self) -> Iterator[Frame]:
        for index, array in enumerate(self._arrays):
            yield Frame(
                image=as_rgb8(array, what=f"array {index}"),
                index=index,
                pts=index,
                time_base=self.time_base,
                time=float(index * self.time_base),
            )


class HeadPathSource(Source):
    """A still portrait moved along a smooth synthetic head path: the default demo input.

    Known motion makes tracking and stabilisation measurable: :meth:`transform` gives the exact
    affine from source-image pixels to output pixels for every frame. Each of x, y, rotation and
    scale follows ``amp * (sin(2*pi*f*t + phase) - sin(phase))`` with a seeded frequency and
    phase, so frame 0 shows the face centred, filling 40% of the height, upright, and then:
    translation within +-14% of the frame (at most ~15% of the frame per second), rotation
    within +-15 deg (at most 30 deg/s) and scale within +-10%.

    ``face`` is the face box in the source image as (centre x, centre y, height) in pixels;
    None assumes a portrait crop: face at the image centre, 60% of the image height.
    """

    # (amplitude, lowest frequency Hz, highest frequency Hz) per motion channel; the frequency
    # caps keep the peak speed amp * 2*pi*f within the limits in the class docstring.
    _TRANSLATE = (0.07, 0.12, 0.33)  # fraction of the frame width/height; 0.145/s at 0.33 Hz
    _ROTATE = (7.5, 0.12, 0.6)  # degrees; 28 deg/s at 0.6 Hz
    _SCALE = (0.05, 0.1, 0.4)  # relative

    def __init__(
        self,
        image: np.ndarray,
        *,
        frames: int = 90,
        fps: Fraction = Fraction(30),
        size: tuple[int, int] = (640, 480),
        seed: int = 0,
        face: tuple[float, float, float] | None = None,
    ) -> None:
        self.image = as_rgb8(image, what="HeadPathSource image")
        if frames < 0:
            raise SourceError(f"HeadPathSource: frames must be >= 0, got {frames}")
        self.width, self.height = int(size[0]), int(size[1])
        if self.width < 1 or self.height < 1:
            raise SourceError(f"HeadPathSource: size must be positive, got {size}")
        self.frame_count = int(frames)
        self.fps = Fraction(fps)
        self.time_base = 1 / self.fps
        self.seed = int(seed)
        self.name = f"head path (seed {seed})"
        img_h, img_w = self.image.shape[:2]
        self.face = face if face is not None else (img_w / 2.0, img_h / 2.0, 0.6 * img_h)
        rng = np.random.default_rng(seed)
        channels = (self._TRANSLATE, self._TRANSLATE, self._ROTATE, self._SCALE)
        self._waves = [
            (amp, rng.uniform(f_lo, f_hi), rng.uniform(0.0, 2.0 * math.pi))
            for amp, f_lo, f_hi in channels
        ]

    @classmethod
    def astronaut(cls, **kwargs: Any) -> HeadPathSource:
        """The public-domain astronaut portrait bundled with scikit-image (no download)."""
        from skimage import data

        kwargs.setdefault("face", (225.0, 124.0, 110.0))  # MediaPipe face mesh extent
        return cls(data.astronaut(), **kwargs)

    def _wave(self, channel: int, t: float) -> float:
        amp, freq, phase = self._waves[channel]
        return amp * (math.sin(2.0 * math.pi * freq * t + phase) - math.sin(phase))

    def transform(self, index: int) -> np.ndarray:
        """The 2x3 float64 affine mapping source-image pixels to output pixels at ``index``."""
        t = float(index * self.time_base)
        cx, cy, face_h = self.face
        k = 0.4 * self.height / face_h * (1.0 + self._wave(3, t))
        theta = math.radians(self._wave(2, t))
        a, b = k * math.cos(theta), k * math.sin(theta)
        ox = self.width / 2.0 + self._wave(0, t) * self.width
        oy = self.height / 2.0 + self._wave(1, t) * self.height
        return np.array([[a, -b, ox - (a * cx - b * cy)], [b, a, oy - (b * cx + a * cy)]])

    def __iter__(self) -> Iterator[Frame]:
        for index in range(self.frame_count):
            image = cv2.warpAffine(
                self.image,
                self.transform(index),
                (self.width, self.height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT,
            )
            yield Frame(
                image=np.ascontiguousarray(image),
                index=index,
                pts=index,
                time_base=self.time_base,
                time=float(index * self.time_base),
            )
