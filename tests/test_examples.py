"""The examples run as a user runs them (``python examples/X.py ...``), on real data.

Each example is a subprocess, so a window (webcam_demo) never opens inside pytest: it gets a
private Xvfb server instead, and key presses reach it through the X server (XTest).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest

from .conftest import require_tool
from .helpers import decode, remux_faststart

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str | Path, cwd: Path, env: dict | None = None):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(result.stdout)  # shown by pytest when the test fails
    print(result.stderr[-3000:], file=sys.stderr)
    return result


def lines_starting(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


# --- embed_session ------------------------------------------------------------------------


def test_embed_session_on_the_bundled_demo(tmp_path: Path) -> None:
    png = tmp_path / "before_after.png"
    result = run_example("embed_session.py", "--png", png, cwd=tmp_path)
    assert result.returncode == 0
    out = result.stdout
    # Faces printed every 15 of 45 frames: the astronaut is found and keeps id 0.
    assert lines_starting(out, "frame ") and "frame 0 (0.00s): 1 face(s)" in out
    faces = lines_starting(out, "  face ")
    assert len(faces) == 3 and all(line.startswith("  face 0: box (") for line in faces)
    assert all("yaw" in line and "pitch" in line and "roll" in line for line in faces)
    assert "frame 15: set Effect(lipstick: color='#6e2346', opacity=0.6" in out
    assert "frame 30: set Effect(lipstick: color='#e75480', opacity=1.0" in out
    assert "refused: effect 'lipstick', parameter 'opacity'" in out
    assert "no-face frame: 0 face(s)" in out
    assert "no-face frame: output identical to input: True" in out
    assert "face ids after the empty frame: [1]" in out  # the empty frame ended track 0
    # The PNG is the 640x480 frame twice, side by side; only the lips differ.
    image = cv2.imread(str(png))
    assert image.shape == (480, 1280, 3)
    before, after = image[:, :640].astype(int), image[:, 640:].astype(int)
    changed = (abs(before - after).max(axis=2) > 0).sum()
    assert 300 < changed < 0.05 * 640 * 480


def test_embed_session_on_a_photo(image_path, tmp_path: Path) -> None:
    obama = image_path("obama.jpg")
    png = tmp_path / "obama.png"
    result = run_example("embed_session.py", obama, "--png", png, "--frames", "3", cwd=tmp_path)
    assert result.returncode == 0
    assert "frame 0 (0.00s): 1 face(s)" in result.stdout
    height, width = cv2.imread(str(obama)).shape[:2]
    assert cv2.imread(str(png)).shape == (height, 2 * width, 3)


# --- batch_render -------------------------------------------------------------------------


def test_batch_render_goes_on_after_failures(video_path, tmp_path: Path) -> None:
    good = video_path("single_face.mp4")
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    shutil.copy(good, in_dir / "single_face.mp4")
    (in_dir / "broken.mp4").write_bytes(os.urandom(20_000))  # not a media file at all
    # A file cut in half with its index first: renders part-way, then fails.
    remux_faststart(good, tmp_path / "faststart.mp4")
    data = (tmp_path / "faststart.mp4").read_bytes()
    (in_dir / "cut.mp4").write_bytes(data[: len(data) // 2])
    (in_dir / "notes.txt").write_text("not a video: ignored")

    result = run_example(
        "batch_render.py", in_dir, out_dir, "--effect", "lipstick:color=plum", cwd=tmp_path
    )
    assert result.returncode == 1  # some file failed
    out = result.stdout

    # Per-file lines, in name order, then the summary.
    per_file = [line.split(":")[0] for line in out.splitlines() if line[:6] in ("ok    ", "FAILED")]
    assert per_file == ["FAILED  broken.mp4", "FAILED  cut.mp4", "ok      single_face.mp4"]
    (broken,) = lines_starting(out, "FAILED  broken.mp4:")
    assert "not a readable media file" in broken and "no partial file kept" in broken
    (cut,) = lines_starting(out, "FAILED  cut.mp4:")
    assert f"partial kept: {out_dir / 'cut.partial.mp4'}" in cut
    assert "1 rendered, 2 failed" in out
    (row,) = [line for line in out.splitlines() if line.startswith("single_face.mp4 ")]
    assert row.split()[1:3] == ["ok", "72"]

    # The good file is complete and playable; the cut one kept what was rendered.
    assert sorted(p.name for p in out_dir.iterdir()) == ["cut.partial.mp4", "single_face.mp4"]
    source = decode(good, keep_frames=False)
    rendered = decode(out_dir / "single_face.mp4", keep_frames=False)
    assert len(rendered.pts) == len(source.pts) == 72
    assert rendered.pts == source.pts and rendered.audio_codec == source.audio_codec
    partial = decode(out_dir / "cut.partial.mp4", keep_frames=False)
    (cut_row,) = [line for line in out.splitlines() if line.startswith("cut.mp4 ")]
    assert 0 < len(partial.pts) == int(cut_row.split()[2]) < 72


def test_batch_render_refuses_an_unknown_effect(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").write_bytes(b"never read")
    result = run_example("batch_render.py", "in", "out", "--effect", "nosuch", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown effect 'nosuch'" in result.stderr
    assert not (tmp_path / "out" / "a.mp4").exists()


# --- webcam_demo under a private X server -------------------------------------------------


@pytest.fixture
def display(virtual_display: str) -> str:
    return virtual_display


def gui_env(display: str) -> dict[str, str]:
    return {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "PYTHONUNBUFFERED": "1"}


def test_webcam_demo_with_a_video_file_as_camera(display, video_path, tmp_path: Path) -> None:
    clip = video_path("single_face.mp4")  # 72 frames: 90 also exercises the restart at its end
    result = run_example(
        "webcam_demo.py", "--camera", clip, "--frames", "90", cwd=tmp_path, env=gui_env(display)
    )
    assert result.returncode == 0
    assert "window open: 640x360" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("90 frames in ")


class Keyboard:
    """Key presses through the X server, as a user would type them (libX11 + XTest)."""

    def __init__(self, display: str) -> None:
        names = ctypes.util.find_library("X11"), ctypes.util.find_library("Xtst")
        require_tool(None if all(names) else "libX11/libXtst are not installed")
        self.x11, self.xtst = (ctypes.CDLL(name) for name in names)
        self.x11.XOpenDisplay.restype = ctypes.c_void_p
        self.x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self.x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        self.x11.XFlush.argtypes = self.x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.xtst.XTestFakeKeyEvent.argtypes = [
            ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong,
        ]  # fmt: skip
        self.xtst.XTestFakeMotionEvent.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_ulong,
        ]  # fmt: skip
        self.dpy = self.x11.XOpenDisplay(display.encode())
        assert self.dpy, f"cannot open display {display}"

    def press(self, char: str) -> None:
        # Without a window manager the focus follows the pointer: put it over the window.
        self.xtst.XTestFakeMotionEvent(self.dpy, -1, 40, 40, 0)
        code = self.x11.XKeysymToKeycode(self.dpy, ord(char))
        self.xtst.XTestFakeKeyEvent(self.dpy, code, 1, 0)
        self.xtst.XTestFakeKeyEvent(self.dpy, code, 0, 0)
        self.x11.XFlush(self.dpy)

    def close(self) -> None:
        self.x11.XCloseDisplay(self.dpy)


def test_webcam_demo_keys_change_the_effect_live(display, video_path, tmp_path: Path) -> None:
    keyboard = Keyboard(display)
    clip = video_path("single_face.mp4")
    demo = subprocess.Popen(  # --frames only as a safety stop: q ends it
        [sys.executable, str(EXAMPLES / "webcam_demo.py"), "--camera", str(clip)]
        + ["--effect", "lipstick:color=#a3122f", "--frames", "3000"],
        cwd=tmp_path,
        env=gui_env(display),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in demo.stdout], daemon=True).start()
    seen: list[str] = []

    def expect(pattern: str, key: str | None = None) -> str:
        """Press ``key``, then wait for an output line matching ``pattern``."""
        if key is not None:
            keyboard.press(key)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5).rstrip("\n")
            except queue.Empty:
                continue
            seen.append(line)
            if re.fullmatch(pattern, line):
                return line
        pytest.fail(f"no line matching {pattern!r}; output so far: {seen}")

    try:
        assert expect(r"window open: .*") == "window open: 640x360, keys q/Esc c o"
        assert expect(r"colour -> .*", "c") == "colour -> #e75480"  # the shade after crimson
        assert expect(r"opacity -> .*", "o") == "opacity -> 0.00"  # off ...
        assert expect(r"opacity -> .*", "o") == "opacity -> 0.85"  # ... and back on
        frames = expect(r"\d+ frames in .*", "q")
        assert demo.wait(timeout=30) == 0
    finally:
        keyboard.close()
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    count = int(frames.split()[0])
    assert frames.startswith(f"{count} frames in ") and 0 < count < 3000  # q, not the cap
