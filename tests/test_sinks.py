"""Sinks write real files, checked by reading them back with PyAV."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from arfx.errors import FrameError, SinkError
from arfx.frame import Frame
from arfx.sinks import CallbackSink, Sink, VideoFileSink
from arfx.sources import ArraySource, VideoFileSource


def probe(path: Path) -> dict:
    """What a player would see: decoded video pts and sizes, audio packets."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = {
            "time_base": video.time_base,
            "average_rate": video.average_rate,
            "codec": video.codec_context.name,
            "audio": None,
        }
        frames = list(container.decode(video))
    info["pts"] = [f.pts for f in frames]
    info["size"] = {(f.width, f.height) for f in frames}
    info["frames"] = frames
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            packets = [p for p in container.demux(audio) if p.dts is not None]
            info["audio"] = {
                "codec": audio.codec_context.codec.canonical_name,
                "packets": len(packets),
                "seconds": float(sum(p.duration for p in packets) * audio.time_base),
                "start": float(packets[0].pts * audio.time_base),
            }
    return info


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def ramp(width: int, height: int, n: int) -> list[np.ndarray]:
    """Moving gradients: real content for the encoder, cheap to make."""
    y, x = np.mgrid[0:height, 0:width]
    return [
        np.stack(
            [(x * 3 + i * 8) % 256, (y * 5) % 256, np.full_like(x, 40 * (i % 6))], axis=2
        ).astype(np.uint8)
        for i in range(n)
    ]


def test_reencode_keeps_timing_and_copies_audio(video_path, tmp_path):
    src = video_path("single_face.mp4")
    out = tmp_path / "out.mp4"
    with VideoFileSource(src) as source:
        sink = VideoFileSink(
            out,
            width=source.width,
            height=source.height,
            fps=source.fps,
            audio_from=source.path,
            preset="ultrafast",
        )
        with sink:
            for frame in source:
                sink.write(frame)
    assert leftovers(tmp_path) == ["out.mp4"]
    before, after = probe(src), probe(out)
    assert after["codec"] == "h264"
    assert len(after["pts"]) == len(before["pts"]) == 72
    assert after["time_base"] == before["time_base"]
    assert after["pts"] == before["pts"]
    assert after["average_rate"] == before["average_rate"] == 30
    assert after["size"] == {(640, 360)}
    assert before["audio"]["codec"] == "mp3"
    assert after["audio"]["codec"] == before["audio"]["codec"]
    assert after["audio"]["packets"] == before["audio"]["packets"]
    assert after["audio"]["seconds"] == pytest.approx(before["audio"]["seconds"], abs=0.05)
    assert after["audio"]["start"] == pytest.approx(before["audio"]["start"], abs=0.05)
    # Lossy but close: the picture is the input's.
    original = before["frames"][40].to_ndarray(format="rgb24").astype(int)
    encoded = after["frames"][40].to_ndarray(format="rgb24").astype(int)
    assert np.abs(original - encoded).mean() < 4


def test_variable_frame_rate_pts_survive(tmp_path):
    rng = np.random.default_rng(0)
    steps = rng.integers(20_000, 60_000, size=29)  # 20-60 ms apart, in microseconds
    pts = np.concatenate([[0], np.cumsum(steps)]).tolist()
    tb = Fraction(1, 1_000_000)
    out = tmp_path / "vfr.mp4"
    with VideoFileSink(out, width=64, height=48, fps=Fraction(25), preset="ultrafast") as sink:
        for i, image in enumerate(ramp(64, 48, 30)):
            sink.write(Frame(image=image, index=i, pts=pts[i], time_base=tb))
    info = probe(out)
    seconds = [float(p * info["time_base"]) for p in info["pts"]]
    assert seconds == pytest.approx([p / 1e6 for p in pts], abs=1e-6)


def test_frames_without_clock_get_a_constant_rate(tmp_path):
    out = tmp_path / "cfr.mkv"
    with VideoFileSink(out, width=64, height=48, fps=Fraction(25), preset="ultrafast") as sink:
        for i, image in enumerate(ramp(64, 48, 20)):
            sink.write(Frame(image=image, index=i))
    info = probe(out)
    assert len(info["pts"]) == 20
    seconds = [float(p * info["time_base"]) for p in info["pts"]]
    assert seconds == pytest.approx([i / 25 for i in range(20)], abs=1e-3)
    assert info["average_rate"] == 25


def test_odd_size_is_padded_to_even(tmp_path):
    out = tmp_path / "odd.mp4"
    images = ramp(161, 97, 10)
    sink = VideoFileSink(out, width=161, height=97, fps=Fraction(30), preset="ultrafast")
    assert (sink.width, sink.height) == (162, 98)
    with sink:
        for frame in ArraySource(images):
            sink.write(frame)
    info = probe(out)
    assert len(info["pts"]) == 10 and info["size"] == {(162, 98)}
    decoded = info["frames"][5].to_ndarray(format="rgb24").astype(int)
    assert np.abs(decoded[:97, :161] - images[5]).mean() < 6
    # The padding repeats the last column/row.
    assert np.abs(decoded[:97, 161] - decoded[:97, 160]).mean() < 6
    assert np.abs(decoded[97, :161] - decoded[96, :161]).mean() < 6


def test_accepts_non_rgb8_images(tmp_path):
    out = tmp_path / "gray.mp4"
    with VideoFileSink(out, width=32, height=32, fps=Fraction(30), preset="ultrafast") as sink:
        sink.write(Frame(image=np.full((32, 32), 50_000, np.uint16), index=0))
        sink.write(Frame(image=np.full((32, 32, 4), 0.5, np.float32), index=1))
    frames = probe(out)["frames"]
    means = [f.to_ndarray(format="rgb24").mean() for f in frames]
    assert means == pytest.approx([50_000 / 257, 127.5], abs=2)


def test_abort_keeps_a_playable_partial_file(video_path, tmp_path):
    out = tmp_path / "render.mp4"
    with pytest.raises(RuntimeError, match="effect crashed"):
        with VideoFileSource(video_path("single_face.mp4")) as source:
            with VideoFileSink(
                out,
                width=source.width,
                height=source.height,
                fps=source.fps,
                audio_from=source.path,
                preset="ultrafast",
            ) as sink:
                for frame in itertools.islice(source, 20):
                    sink.write(frame)
                raise RuntimeError("effect crashed")
    assert leftovers(tmp_path) == ["render.partial.mp4"]
    info = probe(tmp_path / "render.partial.mp4")
    assert info["pts"] == [512 * i for i in range(20)]
    assert info["audio"]["codec"] == "mp3"
    assert info["audio"]["seconds"] == pytest.approx(20 / 30, abs=0.1)  # audio up to the cut


def test_abort_returns_the_partial_path_or_none(tmp_path):
    kept = VideoFileSink(tmp_path / "a.mp4", width=32, height=32, fps=Fraction(30))
    for frame in ArraySource(ramp(32, 32, 3)):
        kept.write(frame)
    assert kept.abort() == tmp_path / "a.partial.mp4"
    assert len(probe(tmp_path / "a.partial.mp4")["pts"]) == 3

    dropped = VideoFileSink(
        tmp_path / "b.mp4", width=32, height=32, fps=Fraction(30), keep_partial=False
    )
    for frame in ArraySource(ramp(32, 32, 3)):
        dropped.write(frame)
    assert dropped.abort() is None
    assert leftovers(tmp_path) == ["a.partial.mp4"]


def test_keep_partial_false_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with VideoFileSink(
            tmp_path / "x.mp4", width=32, height=32, fps=Fraction(30), keep_partial=False
        ) as sink:
            for frame in ArraySource(ramp(32, 32, 5)):
                sink.write(frame)
            raise KeyboardInterrupt
    assert leftovers(tmp_path) == []


def test_closing_without_frames_is_an_error(tmp_path):
    sink = VideoFileSink(tmp_path / "empty.mp4", width=32, height=32, fps=Fraction(30))
    with pytest.raises(SinkError, match=r"empty\.mp4: no frames were written"):
        sink.close()
    assert leftovers(tmp_path) == []


def test_wrong_frame_size_names_the_frame(tmp_path):
    sink = VideoFileSink(tmp_path / "x.mp4", width=32, height=32, fps=Fraction(30))
    with pytest.raises(SinkError, match=r"frame 7 is 32x30, expected 32x32"):
        with sink:
            sink.write(Frame(image=np.zeros((30, 32, 3), np.uint8), index=7))
    with pytest.raises(FrameError, match="frame 3"):
        VideoFileSink(tmp_path / "y.mp4", width=4, height=4, fps=Fraction(30)).write(
            Frame(image=np.zeros((4, 4, 2), np.uint8), index=3)
        )


def test_timestamps_must_increase(tmp_path):
    tb = Fraction(1, 30)
    with pytest.raises(SinkError, match="frame 1 has pts 0"):
        with VideoFileSink(tmp_path / "x.mp4", width=8, height=8, fps=Fraction(30)) as sink:
            for i in range(2):
                sink.write(Frame(np.zeros((8, 8, 3), np.uint8), index=i, pts=0, time_base=tb))


def test_unwritable_destination(tmp_path):
    with pytest.raises(SinkError, match="nowhere/x.mp4"):
        VideoFileSink(tmp_path / "nowhere" / "x.mp4", width=8, height=8, fps=Fraction(30))
    if os.geteuid() == 0:
        return  # root writes anywhere; the missing-directory case above still ran
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(SinkError, match="locked/x.mp4"):
        VideoFileSink(locked / "x.mp4", width=8, height=8, fps=Fraction(30))


def test_audio_the_container_cannot_hold_fails_at_open(tmp_path):
    wav = tmp_path / "u8.wav"
    with av.open(str(wav), "w") as container:
        stream = container.add_stream("pcm_u8", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.full((1, 800), 128, np.uint8), format="u8", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in itertools.chain(stream.encode(frame), stream.encode(None)):
            container.mux(packet)
    with pytest.raises(SinkError, match=r"pcm_u8 audio .* into a mp4 container"):
        VideoFileSink(tmp_path / "x.mp4", width=8, height=8, fps=Fraction(30), audio_from=wav)
    assert leftovers(tmp_path) == ["u8.wav"]


def test_audio_source_without_audio_is_fine(tmp_path):
    silent = tmp_path / "silent.mp4"
    with VideoFileSink(silent, width=16, height=16, fps=Fraction(30)) as sink:
        sink.write(Frame(image=np.zeros((16, 16, 3), np.uint8), index=0))
    out = tmp_path / "out.mp4"
    with VideoFileSink(out, width=16, height=16, fps=Fraction(30), audio_from=silent) as sink:
        assert sink.audio_codec is None
        sink.write(Frame(image=np.zeros((16, 16, 3), np.uint8), index=0))
    assert probe(out)["audio"] is None


def test_callback_sink_collects_frames():
    seen: list[Frame] = []
    with CallbackSink(seen.append) as sink:
        assert isinstance(sink, Sink)
        for frame in ArraySource(ramp(8, 8, 3)):
            sink.write(frame)
    assert [f.index for f in seen] == [0, 1, 2]


# --- PreviewSink under a virtual X server -------------------------------------------------

PREVIEW_CHILD = textwrap.dedent(
    """
    import ctypes, ctypes.util, time
    import cv2
    import numpy as np
    from arfx.frame import Frame
    from arfx.sinks import PreviewClosed, PreviewSink

    x11 = ctypes.CDLL(ctypes.util.find_library("X11"))
    xtst = ctypes.CDLL(ctypes.util.find_library("Xtst"))
    P, UL = ctypes.c_void_p, ctypes.c_ulong
    x11.XOpenDisplay.restype, x11.XOpenDisplay.argtypes = P, [ctypes.c_char_p]
    x11.XDefaultRootWindow.restype, x11.XDefaultRootWindow.argtypes = UL, [P]
    x11.XKeysymToKeycode.argtypes = [P, UL]
    x11.XFlush.argtypes = [P]
    x11.XInternAtom.restype, x11.XInternAtom.argtypes = UL, [P, ctypes.c_char_p, ctypes.c_int]
    x11.XFetchName.argtypes = [P, UL, ctypes.POINTER(ctypes.c_char_p)]
    x11.XQueryTree.argtypes = [P, UL, ctypes.POINTER(UL), ctypes.POINTER(UL),
                               ctypes.POINTER(ctypes.POINTER(UL)), ctypes.POINTER(ctypes.c_uint)]
    x11.XSendEvent.argtypes = [P, UL, ctypes.c_int, ctypes.c_long, P]
    xtst.XTestFakeKeyEvent.argtypes = [P, ctypes.c_uint, ctypes.c_int, UL]
    xtst.XTestFakeMotionEvent.argtypes = [P, ctypes.c_int, ctypes.c_int, ctypes.c_int, UL]
    dpy = x11.XOpenDisplay(None)

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", UL), ("send_event", ctypes.c_int),
                    ("display", P), ("window", UL), ("message_type", UL),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5),
                    ("pad", ctypes.c_long * 12)]

    def find_window(title, win=None):
        win = win or x11.XDefaultRootWindow(dpy)
        name = ctypes.c_char_p()
        if x11.XFetchName(dpy, win, ctypes.byref(name)) and name.value == title.encode():
            return win
        root, parent, n = UL(), UL(), ctypes.c_uint()
        children = ctypes.POINTER(UL)()
        x11.XQueryTree(dpy, win, ctypes.byref(root), ctypes.byref(parent),
                       ctypes.byref(children), ctypes.byref(n))
        for i in range(n.value):
            found = find_window(title, children[i])
            if found:
                return found
        return None

    def press_q():  # a real key event through the X server, pointer over the window
        xtst.XTestFakeMotionEvent(dpy, -1, 20, 20, 0)
        code = x11.XKeysymToKeycode(dpy, ord("q"))
        xtst.XTestFakeKeyEvent(dpy, code, 1, 0)
        xtst.XTestFakeKeyEvent(dpy, code, 0, 0)
        x11.XFlush(dpy)

    def click_close(title):  # what a window manager sends when the close button is clicked
        win = find_window(title)
        event = ClientMessage(type=33, send_event=1, display=dpy, window=win, format=32,
                              message_type=x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0))
        event.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        x11.XSendEvent(dpy, win, 0, 0, ctypes.byref(event))
        x11.XFlush(dpy)

    def run(title, action):
        frame = Frame(np.full((60, 80, 3), (255, 0, 0), np.uint8), 0)
        with PreviewSink(title) as sink:
            try:
                for i in range(100):
                    sink.write(frame)
                    if i == 3 and action:
                        action()
                    time.sleep(0.01)
            except PreviewClosed as exc:
                return f"closed after {i + 1} frames: {exc}"
        return "not closed"

    print("quiet:", run("arfx-quiet", None))
    try:  # Qt drops its GUI receiver once the last window is gone, and then raises
        gone = cv2.getWindowProperty("arfx-quiet", cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        gone = True
    print("gone:", gone)
    print("key:", run("arfx-key", press_q))
    print("close:", run("arfx-close", lambda: click_close("arfx-close")))
    """
)


def test_preview_sink_quits_on_q_and_on_window_close(virtual_display, tmp_path):
    script = tmp_path / "preview_child.py"
    script.write_text(PREVIEW_CHILD)
    env = {**os.environ, "DISPLAY": virtual_display, "QT_QPA_PLATFORM": "xcb"}
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert lines["quiet"] == "not closed"
    assert lines["gone"] == "True"  # close() destroyed the window
    assert lines["key"].startswith("closed after") and "quit key" in lines["key"]
    assert lines["close"].startswith("closed after") and "was closed" in lines["close"]
