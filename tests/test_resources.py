"""Resource discipline: no network, nothing left behind by a session, a flat long run."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from arfx.cli import main
from arfx.session import Session

from .conftest import NetworkDisabled


def test_the_suite_runs_without_network() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        with pytest.raises(NetworkDisabled):
            s.connect(("93.184.216.34", 80))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:  # loopback stays open
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.connect(server.getsockname())


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
def test_sessions_created_and_closed_100_times_leave_nothing(image_path) -> None:
    import cv2

    image = cv2.cvtColor(cv2.imread(str(image_path("obama.jpg"))), cv2.COLOR_BGR2RGB)
    # What is measured is a session's life, not its frame: a small frame keeps 105 of them
    # quick.
    image = cv2.resize(image, (640, 640 * image.shape[0] // image.shape[1]))

    def once() -> None:
        with Session(["lipstick", "eyewear"]) as session:
            out = session.process(image)
            assert np.abs(out.astype(int) - image.astype(int)).max() > 20

    for _ in range(5):  # warm-up: first-use caches (shader compilers, allocator pools)
        once()
    threads, files = threading.active_count(), _open_files()
    from arfx.throughput import resident_mb

    memory = resident_mb()
    for _ in range(100):
        once()
    assert threading.active_count() == threads
    assert _open_files() <= files + 2
    assert resident_mb() - memory < 20, resident_mb() - memory  # MB, as issue 7 asks


def test_bench_soak_command(tmp_path: Path, video_path, capsys) -> None:
    out = tmp_path / "soak.json"
    code = main(
        [
            "bench", "soak", "--video", str(video_path("single_face.mp4")),
            "--effect", "lipstick", "--minutes", "0.3", "--interval", "3",
            "--warmup", "6", "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    assert "after warm-up" in capsys.readouterr().out
    report = json.loads(out.read_text())
    samples = report["samples"]
    assert len(samples) >= 4 and samples[-1]["frames"] > samples[0]["frames"]
    assert report["growth"]["gl_objects"] == 0
    assert report["growth"]["threads"] == 0
    assert report["growth"]["open_files"] == 0


def test_soak_counts_open_files_without_its_looped_input(tmp_path: Path) -> None:
    """The looped input is closed and opened again on every pass; the soak's count leaves
    it out so a sample between the two cannot look like a change. Any other file counts."""
    from arfx.soak import open_files

    video = tmp_path / "input.mp4"
    video.write_bytes(b"not a video")
    other = tmp_path / "other.bin"
    other.write_bytes(b"x")
    base = open_files(excluding=video)
    with open(video, "rb"):
        assert open_files(excluding=video) == base
        with open(other, "rb"):
            assert open_files(excluding=video) == base + 1
    assert open_files(excluding=video) == base


def test_periodic_trim_hands_free_heap_pages_back() -> None:
    """Free pages left between live heap blocks go back to the system on the next due
    tick, and not before: real glibc, real resident memory."""
    from arfx.heap import PeriodicTrim, fix_mmap_threshold
    from arfx.throughput import resident_mb

    now = [0.0]
    trim = PeriodicTrim(10.0, clock=lambda: now[0])
    fix_mmap_threshold()  # 256 KiB blocks come from the heap, not from their own mmap
    blocks = [np.ones(256 * 1024, np.uint8) for _ in range(400)]  # 100 MiB, touched
    del blocks[::2]  # 50 MiB of free holes between live blocks: glibc keeps them
    before = resident_mb()
    now[0] = 9.0
    assert not trim.tick() and trim.trims == 0
    assert resident_mb() > before - 5  # nothing was handed back early
    now[0] = 10.0
    assert trim.tick() and trim.trims == 1
    assert resident_mb() < before - 30, (before, resident_mb())
    assert not trim.tick()  # the next one waits another interval
    assert not PeriodicTrim(0.0, clock=lambda: 100.0).tick()  # 0 turns it off
    del blocks


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "10", True])
def test_trim_interval_is_checked(bad) -> None:
    from arfx.errors import ArfxError
    from arfx.session import SessionOptions

    with pytest.raises(ArfxError, match="trim_interval"):
        SessionOptions(trim_interval=bad)


_ARENAS_SCRIPT = """
import ctypes, sys, threading, time
import numpy as np
from arfx.heap import limit_arenas
if sys.argv[1] == "limit":
    limit_arenas()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
start = threading.Barrier(12)
def work():
    start.wait()  # all at once, so that glibc would hand out more arenas
    for _ in range(200):
        blocks = [np.ones(20000, np.uint8) for _ in range(20)]
        del blocks
threads = [threading.Thread(target=work) for _ in range(12)]
[t.start() for t in threads]
[t.join() for t in threads]
out = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, out)
libc.fclose(out)
print(open(sys.argv[2]).read().count("<heap nr="))
"""


def test_sessions_limit_glibc_arenas(tmp_path: Path) -> None:
    """Twelve threads allocating at once get their own arenas (and keep their free memory)
    unless ``limit_arenas`` ran first: then they share MALLOC_ARENAS."""
    import subprocess
    import sys

    from arfx.heap import MALLOC_ARENAS

    def arenas(mode: str) -> int:
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
        run = subprocess.run(
            [sys.executable, "-c", _ARENAS_SCRIPT, mode, str(tmp_path / f"{mode}.xml")],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=60,
        )
        return int(run.stdout.strip())

    assert arenas("limit") <= MALLOC_ARENAS
    assert arenas("free") > MALLOC_ARENAS  # glibc's own default: up to 8 per core
