"""Quiet the native libraries' routine log lines on stderr.

MediaPipe (absl logging) and TensorFlow Lite write informational lines and warnings
straight to file descriptor 2 from C++ ("W0000 00:00:... inference_feedback_manager.cc:114]
Feedback manager requires a model with a single signature inference...", "INFO: Created
TensorFlow Lite XNNPACK delegate for CPU."): about ten for every tracker that starts, none
of which a user can act on. Python's logging cannot reach them. ``quiet_native_logs``
points descriptor 2 at a pipe whose reader thread drops those lines and passes everything
else through, and gives ``sys.stderr`` its own copy of the real stderr, so Python's output
(progress lines, logging, tracebacks) goes straight out as before and a terminal stays a
terminal. Errors and fatal lines of the native libraries ("E...", "F...") are kept.

The ``arfx`` command line does this unless ``--native-logs`` or ``--verbose`` is given; an
application embedding ``Session`` may wrap its own work in ``arfx.quiet_native_logs()``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import threading
from collections.abc import Iterator

_BANNERS = (
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
)
_ROUTINE = (
    rb"(?:[IW]\d{4} [\d:.]+ +\d+ [^ \]\n]+:\d+\] [^\n]*"  # absl / glog info and warnings
    + b"".join(b"|" + re.escape(banner) for banner in _BANNERS)
    + b")"
)
ROUTINE = re.compile(_ROUTINE)
"""The lines dropped: native info and warning lines; native errors ("E", "F") pass through."""
_ROUTINE_LINE = re.compile(_ROUTINE + rb"(?:\r?\n|\Z)")  # \Z: the last line, at the end
_JOIN_SECONDS = 2.0  # a child process still holding the pipe must not hang the exit


def is_routine(line: bytes) -> bool:
    """Whether ``line`` (bytes, without its end) is a native library's routine log line."""
    return ROUTINE.match(line) is not None


@contextlib.contextmanager
def quiet_native_logs(enabled: bool = True) -> Iterator[None]:
    """While inside, drop the native libraries' routine log lines from stderr (see module).

    Does nothing when ``enabled`` is False, when ``sys.stderr`` is not the process's own
    (replaced by a test's capture or an application), when descriptor 2 cannot be
    duplicated, or when another ``quiet_native_logs`` is already active in this process.
    The copy of stderr given to ``sys.stderr`` stays open afterwards, since logging
    handlers made inside may still hold it.
    """
    if not enabled or _active.is_set() or sys.stderr is not sys.__stderr__:
        yield
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    read_end, write_end = os.pipe()
    python_stderr = sys.stderr
    own = io.TextIOWrapper(
        io.FileIO(os.dup(real), "w"),
        encoding=getattr(python_stderr, "encoding", None) or "utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )
    reader = threading.Thread(
        target=_forward, args=(read_end, real), name="arfx-native-logs", daemon=True
    )
    _active.set()
    try:
        os.dup2(write_end, 2)
        os.close(write_end)
        sys.stderr = own
        reader.start()
        yield
    finally:
        sys.stderr = python_stderr
        with contextlib.suppress(ValueError, OSError):
            own.flush()
        os.dup2(real, 2)  # the pipe's last writer in this process closes with it
        reader.join(_JOIN_SECONDS)
        if not reader.is_alive():
            os.close(read_end)
        os.close(real)
        _active.clear()


_active = threading.Event()


def _forward(read_end: int, real: int) -> None:
    """Copy the pipe to the real stderr, without the routine lines. A routine line is cut
    out wherever it starts (after text with no line end of its own, say); the end of the
    data is held back only while it could still become one, so other text, such as a
    progress line redrawn with carriage returns, passes at once."""
    pending = b""
    while True:
        try:
            chunk = os.read(read_end, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            _write(real, _ROUTINE_LINE.sub(b"", pending))
            return
        pending += chunk
        complete = pending.rfind(b"\n") + 1
        lines, tail = pending[:complete], pending[complete:]
        held = _held_from(tail)
        pending = tail[held:]
        _write(real, _ROUTINE_LINE.sub(b"", lines) + tail[:held])


_ROUTINE_START = re.compile(rb"[IW](?:\d{0,4}|\d{4} [\d:. ]*(?:\d+ [^ \]\n]*)?)\Z")


def _held_from(tail: bytes) -> int:
    """Where in ``tail`` (text after the last line end) an unfinished routine line may have
    begun; ``len(tail)`` if nowhere."""
    for start in range(len(tail)):
        if tail[start] not in b"IW":
            continue
        rest = tail[start:]
        if is_routine(rest) or _ROUTINE_START.match(rest):
            return start
        if any(banner.startswith(rest) for banner in _BANNERS):
            return start
    return len(tail)


def _write(fd: int, data: bytes) -> None:
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(fd, data) :]
