"""A corpus of awkward inputs, generated here (nothing downloaded), through ``arfx render``.

Each case has its expected outcome: a correct output, or a one-line error that names the
file and exit code 1 or 3, with no traceback and nothing left under the output's name
unless it is complete.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from arfx.cli import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, main

from .helpers import decode, write_tone


def _write_video(
    path: Path, frames: list[np.ndarray], pts: list[int] | None = None, rotation: int = 0
) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264" if path.suffix != ".avi" else "mjpeg", rate=30)
        if rotation:
            stream.set_display_rotation(rotation)
        stream.width, stream.height = (
            (frames[0].shape[1], frames[0].shape[0]) if frames else (64, 64)
        )
        stream.pix_fmt = "yuv420p" if path.suffix != ".avi" else "yuvj420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)  # keep milliseconds exact
        stream.codec_context.options = {"bframes": "0"}  # irregular pts need no reordering
        container.start_encoding()  # the header, even with no frames
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = pts[i] if pts else i * 33
            frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _face(image_path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(image_path("obama.jpg"))), cv2.COLOR_BGR2RGB)


def _render(source: Path, out: Path, capsys) -> tuple[int, str]:
    code = main(["render", str(source), str(out), "--effect", "lipstick", "--no-progress"])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return code, text


def _only_complete_outputs(folder: Path, out: Path, code: int) -> None:
    leftovers = [p.name for p in folder.iterdir() if "arfx-tmp" in p.name]
    assert not leftovers, leftovers
    if code != EXIT_OK:
        assert not out.exists()


def _error_case(source: Path, capsys) -> str:
    """Render ``source``: a one-line error naming it, exit code 1, no output left."""
    out = source.parent / "out.mp4"
    code, text = _render(source, out, capsys)
    assert code == EXIT_FAILED, text
    assert source.name in text and text.strip().count("\n") <= 1, text
    _only_complete_outputs(source.parent, out, code)
    return text


def test_random_bytes_with_a_video_extension(tmp_path: Path, capsys) -> None:
    source = tmp_path / "noise.mp4"
    source.write_bytes(os.urandom(50_000))
    _error_case(source, capsys)


def test_an_empty_file(tmp_path: Path, capsys) -> None:
    source = tmp_path / "empty.mov"
    source.write_bytes(b"")
    _error_case(source, capsys)


def test_zero_frame_video(tmp_path: Path, capsys) -> None:
    """A valid AVI whose video stream holds no frames (MP4 and Matroska drop such a track)."""
    source = tmp_path / "nothing.avi"
    _write_video(source, [])
    with av.open(str(source)) as container:  # well-formed: it opens and has a video stream
        assert container.streams.video and container.streams.video[0].frames == 0
    text = _error_case(source, capsys)
    assert "no decodable video frames" in text


def test_audio_only_file(tmp_path: Path, capsys) -> None:
    source = tmp_path / "voice.m4a"
    samples = (np.sin(np.arange(16000) / 10.0) * 0.3).astype(np.float32)
    write_tone(source, "aac", 16000, samples, "fltp")
    text = _error_case(source, capsys)
    assert "video" in text.lower()


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_video(tmp_path: Path, video_path, capsys, fraction: float) -> None:
    data = video_path("single_face.mp4").read_bytes()
    source = tmp_path / "cut.mp4"
    source.write_bytes(data[: int(len(data) * fraction)])
    out = tmp_path / "out.mp4"
    code, text = _render(source, out, capsys)
    assert code in (EXIT_FAILED, EXIT_PARTIAL), text
    assert "cut.mp4" in text
    _only_complete_outputs(tmp_path, out, code)
    if code == EXIT_PARTIAL:
        assert len(decode(tmp_path / "out.partial.mp4").frames) > 0


def test_corrupt_keyframe(tmp_path: Path, image_path, capsys) -> None:
    face = _face(image_path)[:360, :480]
    clean = tmp_path / "clean.mp4"
    _write_video(clean, [face] * 10)
    data = bytearray(clean.read_bytes())
    start = data.find(b"mdat") + 200  # inside the first (key) frame's data
    data[start : start + 2000] = os.urandom(2000)
    source = tmp_path / "broken.mp4"
    source.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    code, text = _render(source, out, capsys)
    # FFmpeg conceals damage where it can: a rendered file or a clear error are both right.
    assert code in (EXIT_OK, EXIT_FAILED, EXIT_PARTIAL), text
    _only_complete_outputs(tmp_path, out, code)
    if code == EXIT_OK:
        assert len(decode(out).frames) == 10


def test_one_frame_and_variable_frame_rate_videos(tmp_path: Path, image_path, capsys) -> None:
    face = _face(image_path)[:360, :480]
    one = tmp_path / "one.mp4"
    _write_video(one, [face])
    code, text = _render(one, tmp_path / "one_out.mp4", capsys)
    assert code == EXIT_OK, text
    assert len(decode(tmp_path / "one_out.mp4").frames) == 1

    vfr = tmp_path / "vfr.mp4"
    pts = [0, 33, 50, 120, 130, 300, 310, 400]
    _write_video(vfr, [face] * len(pts), pts)
    code, text = _render(vfr, tmp_path / "vfr_out.mp4", capsys)
    assert code == EXIT_OK, text
    source, output = decode(vfr), decode(tmp_path / "vfr_out.mp4")
    assert len(output.frames) == len(pts)
    with av.open(str(vfr)) as a, av.open(str(tmp_path / "vfr_out.mp4")) as b:
        times_in = [float(f.pts * f.time_base) for f in a.decode(video=0)]
        times_out = [float(f.pts * f.time_base) for f in b.decode(video=0)]
    np.testing.assert_allclose(times_out, times_in, atol=0.002)
    assert source.pts  # decodable input


def test_portrait_phone_video_comes_out_upright(tmp_path: Path, image_path, capsys) -> None:
    """A phone stores portrait video sideways with a display matrix; players turn it."""
    upright = cv2.resize(_face(image_path), (360, 450), interpolation=cv2.INTER_AREA)
    source = tmp_path / "portrait.mp4"
    _write_video(source, [np.rot90(upright, -1)] * 6, rotation=90)  # stored turned clockwise
    out = tmp_path / "portrait_out.mp4"
    code, text = _render(source, out, capsys)
    assert code == EXIT_OK, text
    assert "(6 with faces)" in text, text  # found because the frames were turned upright
    frames = decode(out).frames
    assert len(frames) == 6 and frames[0].shape[:2] == upright.shape[:2]
    with av.open(str(out)) as container:  # upright pixels, so no rotation tag
        assert next(container.decode(video=0)).rotation == 0
    assert np.abs(frames[0].astype(int) - upright).mean() < 6  # the face itself, not turned


def _set_u32(data: bytearray, tag: bytes, offset: int, value: int) -> None:
    at = data.index(tag)
    data[at + offset : at + offset + 4] = value.to_bytes(4, "little")


@pytest.mark.parametrize("claimed", [3, 1000])
def test_container_that_lies_about_its_frame_count(
    tmp_path: Path, image_path, capsys, claimed: int
) -> None:
    """An AVI header says ``claimed`` frames; the 12 that are there are all rendered."""
    source = tmp_path / f"claims_{claimed}.avi"
    _write_video(source, [_face(image_path)[:360, :480]] * 12)
    data = bytearray(source.read_bytes())
    _set_u32(data, b"avih", 8 + 16, claimed)  # dwTotalFrames
    _set_u32(data, b"strh", 8 + 32, claimed)  # the stream's dwLength
    source.write_bytes(bytes(data))
    with av.open(str(source)) as container:
        assert container.streams.video[0].frames == claimed  # the lie is believed
    out = tmp_path / "out.mp4"
    code, text = _render(source, out, capsys)
    assert code == EXIT_OK, text
    assert len(decode(out).frames) == 12


def test_image_larger_than_8k(tmp_path: Path, image_path, capsys) -> None:
    """7681x4321: odd, larger than 8K UHD; the face in a corner is still found and painted.

    (The head is scaled up with the frame: MediaPipe's short-range detector misses faces
    narrower than about a tenth of the frame's long side, at any resolution.)"""
    head = _face(image_path)[:600, 250:750]  # obama.jpg's face is 240 px wide
    face = cv2.resize(head, None, fx=5, fy=5, interpolation=cv2.INTER_CUBIC)
    canvas = np.full((4321, 7681, 3), 90, np.uint8)
    canvas[-face.shape[0] :, -face.shape[1] :] = face
    source = tmp_path / "huge.png"
    assert cv2.imwrite(str(source), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    out = tmp_path / "huge_out.png"
    code, text = _render(source, out, capsys)
    assert code == EXIT_OK, text
    result = cv2.imread(str(out))
    assert result.shape == canvas.shape
    changed = np.abs(result.astype(int) - cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)).max(axis=2) > 8
    rows, cols = np.nonzero(changed)
    assert len(rows) > 200  # the lips were painted ...
    assert rows.min() >= canvas.shape[0] - face.shape[0]  # ... and only inside the face's corner
    assert cols.min() >= canvas.shape[1] - face.shape[1]


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("tiny_1x1.png", lambda face: face[:1, :1]),
        ("tiny_3x5.png", lambda face: face[:5, :3]),
        ("gray.png", lambda face: cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)),
        ("rgba.png", lambda face: np.dstack([face, np.full(face.shape[:2], 200, np.uint8)])),
        ("deep.png", lambda face: face.astype(np.uint16) * 257),
        ("dark.png", lambda face: (face * 0.04).astype(np.uint8)),
        ("blown.png", lambda face: np.clip(face.astype(int) * 4, 0, 255).astype(np.uint8)),
        ("ten_faces.png", lambda face: _grid(face, 10)),
    ],
)
def test_awkward_images_render(tmp_path: Path, image_path, capsys, name: str, make) -> None:
    face = _face(image_path)
    image = make(face)
    source = tmp_path / name
    bgr = (
        image
        if image.ndim == 2
        else cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    )
    assert cv2.imwrite(str(source), bgr)
    out = tmp_path / f"out_{name}"
    code, text = _render(source, out, capsys)
    assert code == EXIT_OK, text
    result = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert result is not None and result.shape[:2] == image.shape[:2]


def _grid(face: np.ndarray, count: int) -> np.ndarray:
    """``count`` copies of the face's head, five to a row."""
    head = cv2.resize(face[20:260, 180:420], (200, 200))
    rows = []
    for start in range(0, count, 5):
        row = [head] * min(5, count - start) + [np.zeros_like(head)] * (5 - min(5, count - start))
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)
