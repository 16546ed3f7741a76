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
