"""The arfx command as a user runs it: a real subprocess for render, in-process for the rest."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from arfx.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, main

from .helpers import decode, remux_faststart


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arfx", *args], capture_output=True, text=True, timeout=300
    )


def test_render_command_end_to_end(tmp_path: Path, video_path) -> None:
    out = tmp_path / "out.mp4"
    result = run_cli(
        "render",
        str(video_path("single_face.mp4")),
        str(out),
        "--effect",
        "lipstick:color=#a3122f,opacity=0.8",
        "--model-interval",
        "2",
        "--max-hands",
        "1",
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert "72 frames (72 with faces)" in result.stdout
    assert "single_face.mp4" in result.stderr  # the progress line
    assert len(decode(out, keep_frames=False).pts) == 72
    # MediaPipe's and TensorFlow Lite's routine log lines are dropped (arfx.nativelogs) ...
    assert "XNNPACK" not in result.stderr and ".cc:" not in result.stderr, result.stderr


def test_native_log_lines_are_kept_when_asked(tmp_path: Path, image_path) -> None:
    """... and they are there to drop: --native-logs keeps them."""
    args = ["render", str(image_path("obama.jpg")), str(tmp_path / "o.png"), "-e", "lipstick"]
    kept = run_cli("--native-logs", *args)
    assert kept.returncode == EXIT_OK, kept.stderr
    assert "Created TensorFlow Lite XNNPACK delegate" in kept.stderr
    quiet = run_cli(*args)
    assert quiet.returncode == EXIT_OK and "XNNPACK" not in quiet.stderr, quiet.stderr


def test_render_errors_are_one_clear_line(tmp_path: Path, image_path) -> None:
    result = run_cli("render", str(tmp_path / "nope.mp4"), str(tmp_path / "o.mp4"))
    assert result.returncode == EXIT_FAILED
    assert "arfx: error:" in result.stderr and "nope.mp4: file not found" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli(
        "render", str(image_path("obama.jpg")), str(tmp_path / "o.png"), "-e", "lipstick:shine=1"
    )
    assert result.returncode == EXIT_FAILED
    assert "no parameter 'shine'" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("render", "a.mp4", "b.mp4", "--max-faces", "many")
    assert result.returncode == 2  # argparse usage error
    result = run_cli("render", "a.mp4", "b.mp4", "--model-interval", "0")
    assert result.returncode == 2 and "--model-interval" in result.stderr
    result = run_cli("render", "a.mp4", "b.mp4", "--max-hands", "5")
    assert result.returncode == 2 and "--max-hands" in result.stderr
    for wait in ("-1", "soon"):
        result = run_cli("webcam", "--no-preview", "--record", "x.mp4", "--live-max-wait", wait)
        assert result.returncode == 2 and "--live-max-wait" in result.stderr


def test_render_partial_exit_code(tmp_path: Path, video_path) -> None:
    whole = tmp_path / "whole.mp4"
    remux_faststart(video_path("single_face.mp4"), whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    out = tmp_path / "out.mp4"
    assert main(["render", str(cut), str(out), "--no-progress"]) == EXIT_PARTIAL
    assert not out.exists() and (tmp_path / "out.partial.mp4").exists()
    out2 = tmp_path / "gone.mp4"
    args = ["render", str(cut), str(out2), "--no-progress", "--discard-partial"]
    assert main(args) == EXIT_FAILED
    assert not out2.exists() and not (tmp_path / "gone.partial.mp4").exists()


def _interrupt_render(folder: Path, source: Path, *extra: str) -> subprocess.CompletedProcess:
    """Start ``arfx render`` and press Ctrl-C (SIGINT) once frames are being written."""
    out = folder / "out.mp4"
    process = subprocess.Popen(
        [sys.executable, "-m", "arfx", "render", str(source), str(out), "--no-progress", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A job started in the background by a non-interactive shell (as CI scripts may run
        # the suite) inherits SIGINT ignored; the render must see it as a terminal's Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        written = [p for p in folder.iterdir() if "arfx-tmp" in p.name]
        if written and written[0].stat().st_size > 8_000:  # a few encoded frames
            break
        time.sleep(0.05)
    assert process.poll() is None, "the render ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_ctrl_c_keeps_a_playable_partial_or_nothing(tmp_path: Path, video_path) -> None:
    source = video_path("WolfgangLanger_Pexels.mp4")
    kept = _interrupt_render(tmp_path, source)
    assert kept.returncode == EXIT_PARTIAL, kept.stderr
    assert "interrupted; what was rendered is kept in" in kept.stderr
    assert "Traceback" not in kept.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.partial.mp4"]
    frames = decode(tmp_path / "out.partial.mp4", keep_frames=False).pts
    assert 0 < len(frames) < 300  # playable, cut where Ctrl-C came

    empty = tmp_path / "discard"
    empty.mkdir()
    gone = _interrupt_render(empty, source, "--discard-partial")
    assert gone.returncode == EXIT_INTERRUPTED, gone.stderr
    assert "Traceback" not in gone.stderr
    assert list(empty.iterdir()) == []


def test_render_image(tmp_path: Path, image_path) -> None:
    out = tmp_path / "obama_lips.png"
    assert main(["render", str(image_path("obama.jpg")), str(out), "--no-progress"]) == EXIT_OK
    assert cv2.imread(str(out)) is not None


def test_effects_lists_parameters(capsys) -> None:
    assert main(["effects"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "lipstick" in text and "opacity: float [0, 1] = 0.85" in text
    assert main(["effects", "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["lipstick"]["params"]["color"]["type"] == "color"


def test_info_reports_versions_gl_and_providers(capsys) -> None:
    assert main(["info"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "mediapipe 0.10.21" in text
    assert "OpenGL (EGL):" in text and "unavailable" not in text
    assert "CPUExecutionProvider" in text
    assert "video: encoder=auto uses " in text and "decoder=auto decodes in software; cuda " in text


def test_eval_parsing_prints_and_writes_json(tmp_path: Path, data_dir: Path, capsys) -> None:
    report = tmp_path / "report.json"
    args = ["eval", "parsing", "--data", str(data_dir / "parsing" / "celebamask")]
    assert main([*args, "--limit", "10", "--json", str(report)]) == EXIT_OK
    assert "lips" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert data["images"] == 10 and data["warm_start"]
    assert 0.5 < data["scores"]["lips"]["mean_iou"] <= 1.0
    # one model run per photo instead of the session's two: said, recorded, and different
    assert main([*args, "--limit", "10", "--cold-start", "--json", str(report)]) == EXIT_OK
    assert "model from a cold start (one run)" in capsys.readouterr().out
    cold = json.loads(report.read_text())
    assert not cold["warm_start"]
    assert cold["scores"]["hair"] != data["scores"]["hair"]


def test_eval_parsing_missing_folder(tmp_path: Path, capsys) -> None:
    assert main(["eval", "parsing", "--data", str(tmp_path / "none")]) == EXIT_FAILED
    assert "none" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_needs_nothing_from_outside(tmp_path: Path) -> None:
    out, png = tmp_path / "demo.mp4", tmp_path / "demo.png"
    result = run_cli("demo", str(out), "--frames", "30", "--png", str(png))
    assert result.returncode == EXIT_OK, result.stderr
    assert "30 frames (30 with faces)" in result.stdout
    assert len(decode(out, keep_frames=False).pts) == 30
    assert cv2.imread(str(png)).shape == (480, 640, 3)


def test_webcam_command_records_without_a_window(tmp_path: Path, video_path) -> None:
    # cv2.VideoCapture opens a video file like a camera: the real capture path, no device.
    out = tmp_path / "live.mp4"
    result = run_cli(
        "webcam",
        "--camera",
        str(video_path("single_face.mp4")),
        "--no-preview",
        "--record",
        str(out),
        "--frames",
        "20",
        "--live-overlap",
        "--live-max-wait",
        "none",
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert "20 frames" in result.stderr
    recorded = decode(out, keep_frames=False)
    assert len(recorded.pts) == 20 and recorded.pts == sorted(recorded.pts)
    result = run_cli(
        "webcam",
        "--camera",
        str(tmp_path / "no_such_camera.mp4"),
        "--no-preview",
        "--record",
        str(tmp_path / "x.mp4"),
    )
    assert result.returncode == EXIT_FAILED and "no_such_camera" in result.stderr
    assert not (tmp_path / "x.mp4").exists()
