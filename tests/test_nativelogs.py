"""Dropping the native libraries' routine stderr lines (arfx.nativelogs): which lines go,
and that everything else, partial lines and Python's own stderr included, comes through."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from arfx.nativelogs import is_routine

MEDIAPIPE_WARNING = (
    b"W0000 00:00:1796441700.353022   13262 inference_feedback_manager.cc:114] Feedback "
    b"manager requires a model with a single signature inference. Disabling support for "
    b"feedback tensors."
)
MEDIAPIPE_ERROR = b"E0000 00:00:1796441700.35   13262 gl_context_egl.cc:85] Failed to get EGL"


def test_routine_lines_are_recognised() -> None:
    assert is_routine(MEDIAPIPE_WARNING)
    assert is_routine(b"I0000 00:00:1796441700.1 7 calculator_graph.cc:42] started")
    assert is_routine(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    assert is_routine(
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
    )
    assert not is_routine(MEDIAPIPE_ERROR)  # native errors are kept
    assert not is_routine(b"arfx: error: in.mp4: file not found")
    assert not is_routine(b"INFO: something else entirely")
    assert not is_routine(b"Warning 0000 looks alike but is not a log line")


def test_the_filter_drops_routine_lines_and_passes_the_rest() -> None:
    """A child writes to descriptor 2 as C++ does, in pieces, and through sys.stderr."""
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from arfx.nativelogs import quiet_native_logs
        with quiet_native_logs():
            os.write(2, {MEDIAPIPE_WARNING!r} + b"\\n")
            os.write(2, b"INFO: Created TensorFlow Lite XNN")  # a line in two writes
            time.sleep(0.05)
            os.write(2, b"PACK delegate for CPU.\\nkept 1\\n")
            os.write(2, {MEDIAPIPE_ERROR!r} + b"\\n")
            os.write(2, b"\\rprogress 1/2")  # no line end: passes at once
            print("python says hi", file=sys.stderr)
            os.write(2, b"\\rprogress 2/2W0000 00:00:1.5 12 x.cc:1] dropped\\nkept 2")
        print("stderr back", file=sys.stderr)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=60, check=True
    )
    err = result.stderr
    assert b"inference_feedback_manager" not in err and b"XNNPACK" not in err
    assert b"dropped" not in err
    kept_parts = (b"kept 1\n", MEDIAPIPE_ERROR, b"\rprogress 1/2", b"\rprogress 2/2kept 2")
    for kept in (*kept_parts, b"python says hi"):
        assert kept in err, (kept, err)
    assert err.rstrip().endswith(b"stderr back")
