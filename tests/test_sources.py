"""Sources on real files: the shared face videos and images, plus files the tests write."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from arfx.errors import FrameError, SourceError
from arfx.frame import Frame
from arfx.sources import (
    ArraySource,
    HeadPathSource,
    ImageSource,
    Source,
    VideoFileSource,
    WebcamSource,
)

from .fakecamera import FakeCamera
from .helpers import write_tone

# --- VideoFileSource ----------------------------------------------------------------------


def test_decodes_whole_h264_mp4(video_path):
    path = video_path("WolfgangLanger_Pexels.mp4")
    with VideoFileSource(path) as source:
        assert (source.width, source.height) == (640, 360)
        assert source.fps == Fraction(24000, 1001)
        assert source.time_base == Fraction(1, 24000)
        assert source.frame_count == 472
        assert source.path == path
        frames = list(source)
    assert len(frames) == 472
    assert [f.index for f in frames] == list(range(472))
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert frames[0].time == 0.0
    assert frames[-1].time == pytest.approx(471 * 1001 / 24000)
    for frame in frames[::100]:
        assert frame.image.shape == (360, 640, 3)
        assert frame.image.dtype == np.uint8
        assert frame.image.flags["C_CONTIGUOUS"]
        assert frame.time_base == Fraction(1, 24000)


def test_decodes_hevc_mov_in_rgb_order(video_path):
    path = video_path("face_noface.mov")
    with VideoFileSource(path) as source:
        assert (source.width, source.height) == (960, 540)
        assert source.frame_count == 169
        frames = list(itertools.islice(source, 30))
    assert len(frames) == 30
    assert all(f.image.shape == (540, 960, 3) for f in frames)
    # Same pixels as PyAV's own RGB conversion, so no BGR/RGB swap crept in.
    with av.open(str(path)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    np.testing.assert_array_equal(frames[0].image, first)
    times = [f.time for f in frames]
    assert times[0] == 0.0 and all(b > a for a, b in itertools.pairwise(times))


def test_missing_file(tmp_path):
    missing = tmp_path / "x.mp4"
    with pytest.raises(SourceError, match=r"x\.mp4: file not found"):
        VideoFileSource(missing)


def test_not_a_media_file(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(SourceError, match="garbage.mp4"):
        VideoFileSource(garbage)


def test_file_without_video_stream(tmp_path):
    wav = tmp_path / "tone.wav"
    samples = (np.sin(np.arange(800) / 5.0) * 8000).astype(np.int16)
    write_tone(wav, "pcm_s16le", 8000, samples, "s16")
    with pytest.raises(SourceError, match=r"tone\.wav: no video stream"):
        VideoFileSource(wav)


def test_truncated_file_with_index_at_end_fails_at_open(video_path, tmp_path):
    # single_face.mp4 keeps its moov index after the media data: cut off, it is unreadable.
    data = video_path("single_face.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    with pytest.raises(SourceError, match="cut.mp4"):
        VideoFileSource(cut)


def test_truncated_file_yields_good_frames_then_names_the_frame(video_path, tmp_path):
    # WolfgangLanger keeps its index first: the first 30% decodes, then the data runs out.
    data = video_path("WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    frames = []
    with VideoFileSource(cut) as source:
        assert source.frame_count == 472  # the container's claim, not what is there
        with pytest.raises(SourceError, match=r"cut\.mp4: decode error at frame (\d+)") as info:
            for frame in source:
                frames.append(frame)
    assert 50 < len(frames) < 472
    assert f"frame {len(frames)}" in str(info.value)


def test_file_with_no_decodable_frames(video_path, tmp_path):
    data = video_path("WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "header_only.mp4"
    cut.write_bytes(data[:12_000])  # ftyp + moov + a few bytes of media
    with VideoFileSource(cut) as source:
        with pytest.raises(SourceError, match=r"header_only\.mp4: no decodable video frames"):
            list(source)


def test_source_is_single_pass_and_closes(video_path):
    source = VideoFileSource(video_path("single_face.mp4"))
    frames = iter(source)
    assert len(list(itertools.islice(frames, 3))) == 3
    with pytest.raises(SourceError, match="already iterated"):
        iter(source)
    source.close()
    assert list(frames) == []  # closing mid-iteration ends it (and does not crash PyAV)
    source.close()
    with pytest.raises(SourceError, match="closed"):
        iter(source)


# --- ImageSource --------------------------------------------------------------------------


def test_image_source_converts_gray_rgba_and_16_bit(tmp_path):
    gray = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    bgra = np.zeros((12, 16, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 128  # B, G, R, A
    bgr16 = np.zeros((12, 16, 3), np.uint16)
    bgr16[..., 0], bgr16[..., 2] = 65535, 257 * 100  # B full, R = 100 in 8 bits
    paths = [tmp_path / "gray.png", tmp_path / "rgba.png", tmp_path / "deep.png"]
    for path, image in zip(paths, (gray, bgra, bgr16), strict=True):
        assert cv2.imwrite(str(path), image)

    with ImageSource(paths, repeat=2, fps=Fraction(25)) as source:
        assert (source.width, source.height) == (16, 12)
        assert source.frame_count == 6
        frames = list(source)
    assert [f.pts for f in frames] == list(range(6))
    assert frames[3].time_base == Fraction(1, 25)
    assert frames[3].time == pytest.approx(3 / 25)
    for frame in frames:
        assert frame.image.shape == (12, 16, 3) and frame.image.dtype == np.uint8
    np.testing.assert_array_equal(frames[0].image, np.repeat(gray[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(frames[1].image, frames[0].image)
    assert frames[2].image[0, 0].tolist() == [30, 20, 10]
    assert frames[4].image[0, 0].tolist() == [100, 0, 255]


def test_image_source_real_photo(image_path):
    path = image_path("obama.jpg")
    with ImageSource(path) as source:
        frames = list(source)
    expected = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert len(frames) == 1
    np.testing.assert_array_equal(frames[0].image, expected)


def test_image_source_errors_name_the_file(tmp_path, image_path):
    with pytest.raises(SourceError, match=r"nope\.png: file not found"):
        ImageSource([image_path("obama.jpg"), tmp_path / "nope.png"])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(SourceError, match=r"bad\.png: not a readable image"):
        ImageSource(bad)


# --- ArraySource --------------------------------------------------------------------------


def test_array_source_accepts_any_image_layout():
    arrays = [
        np.full((4, 5), 7, np.uint8),
        np.full((4, 5, 4), 9, np.uint8),
        np.full((4, 5, 3), 0.5, np.float32),
    ]
    with ArraySource(arrays, fps=Fraction(10)) as source:
        assert (source.width, source.height, source.frame_count) == (5, 4, 3)
        frames = list(source)
    assert [f.image[0, 0].tolist() for f in frames] == [[7, 7, 7], [9, 9, 9], [128, 128, 128]]
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.2])


def test_array_source_from_generator_and_bad_array():
    source = ArraySource(np.zeros((4, 4, 3), np.uint8) for _ in range(2))
    assert source.frame_count is None and source.width is None
    assert len(list(source)) == 2
    with pytest.raises(FrameError, match="array 1"):
        list(ArraySource([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 2), np.uint8)]))


# --- HeadPathSource -----------------------------------------------------------------------


def test_head_path_is_deterministic_and_seeded():
    a = list(HeadPathSource.astronaut(frames=12, seed=3))
    b = list(HeadPathSource.astronaut(frames=12, seed=3))
    c = list(HeadPathSource.astronaut(frames=12, seed=4))
    assert len(a) == 12
    assert a[0].image.shape == (480, 640, 3) and a[0].image.dtype == np.uint8
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[11].image, c[11].image)
    assert a[5].pts == 5 and a[5].time_base == Fraction(1, 30)


def test_head_path_starts_centred_and_stays_within_limits():
    source = HeadPathSource.astronaut(frames=600, fps=Fraction(30), seed=1)
    cx, cy, face_h = source.face
    m0 = source.transform(0)
    assert m0 @ [cx, cy, 1.0] == pytest.approx([320.0, 240.0])
    assert m0[:, :2] == pytest.approx(np.eye(2) * 0.4 * 480 / face_h)

    mats = np.array([source.transform(i) for i in range(600)])
    scale = np.hypot(mats[:, 0, 0], mats[:, 1, 0]) / (0.4 * 480 / face_h)
    angle = np.degrees(np.arctan2(mats[:, 1, 0], mats[:, 0, 0]))
    centre = mats @ np.array([cx, cy, 1.0])
    dt = 1 / 30
    assert np.all(np.abs(angle) <= 15.0 + 1e-9)
    assert np.all(np.abs(np.diff(angle)) / dt <= 30.0)
    assert np.all((0.9 <= scale) & (scale <= 1.1))
    speed = np.abs(np.diff(centre, axis=0)) / dt / [640, 480]
    assert np.all(speed <= 0.15)
    assert np.ptp(angle) > 5 and np.ptp(centre[:, 0]) > 30  # it does move


def test_head_path_transform_matches_rendering():
    image = np.zeros((200, 300, 3), np.uint8)
    image[95:106, 145:156] = 255  # a white square centred on (150, 100)
    source = HeadPathSource(image, frames=40, size=(320, 240), seed=2, face=(150, 100, 80))
    for frame in itertools.islice(source, 0, 40, 13):
        expected = source.transform(frame.index) @ [150.0, 100.0, 1.0]
        ys, xs = np.nonzero(frame.image[:, :, 0] > 128)
        assert [xs.mean(), ys.mean()] == pytest.approx(expected, abs=0.6)


# --- WebcamSource with a scripted fake device ---------------------------------------------


@pytest.fixture
def camera_frames(video_path) -> list[np.ndarray]:
    """The first 12 frames of a real talking-face video, in OpenCV's BGR order."""
    with av.open(str(video_path("single_face.mp4"))) as container:
        frames = itertools.islice(container.decode(video=0), 12)
        return [f.to_ndarray(format="bgr24") for f in frames]


def test_webcam_frames_and_timestamps(camera_frames):
    camera = FakeCamera(camera_frames, fps=29.97)
    with WebcamSource(0, width=640, height=360, fps=30, capture_factory=camera) as source:
        assert (source.width, source.height) == (640, 360)
        assert source.fps == Fraction(30000, 1001)
        assert source.time_base == Fraction(1, 1_000_000)
        assert source.name == "camera 0"
        frames = list(itertools.islice(source, 5))
    assert camera.settings == {
        cv2.CAP_PROP_FRAME_WIDTH: 640,
        cv2.CAP_PROP_FRAME_HEIGHT: 360,
        cv2.CAP_PROP_FPS: 30,
    }
    assert frames[0].pts == 0
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))
    for frame, bgr in zip(frames, camera_frames[:5], strict=True):
        np.testing.assert_array_equal(frame.image, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_webcam_reconnects_after_a_dropout(camera_frames):
    camera = FakeCamera(camera_frames, disconnect_at=4, failed_reopens=1)
    source = WebcamSource(2, capture_factory=camera, reconnect_attempts=3, reconnect_delay=0)
    with source:
        frames = list(itertools.islice(source, 10))
    assert len(frames) == 10
    assert camera.opens == 3  # the first open, one failed reopen, one that worked
    assert [f.index for f in frames] == list(range(10))
    np.testing.assert_array_equal(
        frames[4].image, cv2.cvtColor(camera_frames[4], cv2.COLOR_BGR2RGB)
    )


def test_webcam_gives_up_after_the_reconnect_attempts(camera_frames):
    camera = FakeCamera(camera_frames, disconnect_at=3, failed_reopens=math.inf)
    frames = []
    with WebcamSource("/dev/video7", capture_factory=camera, reconnect_delay=0) as source:
        with pytest.raises(SourceError, match=r"camera '/dev/video7': read failed after frame 3"):
            for frame in source:
                frames.append(frame)
    assert len(frames) == 3
    assert camera.opens == 1 + 3


def test_webcam_close_ends_iteration_without_reopening(camera_frames):
    camera = FakeCamera(camera_frames)
    source = WebcamSource(0, capture_factory=camera)
    frames = iter(source)
    next(frames)
    source.close()
    assert list(frames) == []
    assert camera.opens == 1


def test_webcam_that_does_not_open(camera_frames):
    with pytest.raises(SourceError, match="camera 5: cannot open"):
        WebcamSource(5, capture_factory=FakeCamera(camera_frames, opens=False))


# --- The interface ------------------------------------------------------------------------


def test_every_source_is_a_source(camera_frames):
    sources = [
        ArraySource([np.zeros((2, 2, 3), np.uint8)]),
        HeadPathSource(np.zeros((8, 8, 3), np.uint8), frames=1),
        WebcamSource(0, capture_factory=FakeCamera(camera_frames)),
    ]
    for source in sources:
        with source as entered:
            assert entered is source and isinstance(source, Source)
            frame = next(iter(source))
            assert isinstance(frame, Frame)
            assert isinstance(source.name, str)
            assert source.path is None or isinstance(source.path, Path)
