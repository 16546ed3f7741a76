"""``arfx bench pipeline`` and its looping/paced sources, on a real video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from arfx.cli import main
from arfx.sources import VideoFileSource
from arfx.throughput import LoopedSource, PacedSource


def test_looped_source_keeps_time_moving(video_path) -> None:
    video = video_path("single_face.mp4")
    with VideoFileSource(video) as probe:
        length = sum(1 for _ in probe)
    frames = list(LoopedSource(video, length + 10, size=(320, 180)))
    assert len(frames) == length + 10
    assert [f.index for f in frames] == list(range(length + 10))
    times = np.array([f.time for f in frames])
    pts = np.array([f.pts for f in frames])
    assert np.all(np.diff(times) > 0) and np.all(np.diff(pts) > 0)
    assert np.diff(times).max() < 2.5 * np.median(np.diff(times))  # no gap at the seam
    assert frames[0].image.shape == (180, 320, 3)
    np.testing.assert_array_equal(frames[length].image, frames[0].image)


def test_paced_source_releases_frames_in_real_time(video_path) -> None:
    source = PacedSource(LoopedSource(video_path("single_face.mp4"), 12))
    frames = list(source)
    released = np.array([source.released[f.index] for f in frames])
    expected = np.array([f.time for f in frames])
    # Released on the video's clock (sleeping never returns early).
    assert np.all(released - released[0] >= expected - expected[0] - 1e-3)


def test_bench_pipeline_command(tmp_path: Path, video_path, capsys) -> None:
    out = tmp_path / "pipeline.json"
    code = main(
        [
            "bench", "pipeline", "--video", str(video_path("single_face.mp4")),
            "--effect", "lipstick", "--frames", "12", "--live-frames", "20",
            "--memory-frames", "30", "--memory-warmup", "10", "--json", str(out),
            "--max-faces", "1", "--max-hands", "1", "--model-interval", "2",
            "--encoder", "libx264", "--decoder", "software", "--live-model", "both",
            "--live-max-wait", "0.75",
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    for text in ("plain decode+encode", "render (pipelined)", "growth", "live latency (inline)",
                 "live latency (behind)"):  # fmt: skip
        assert text in printed
    assert "model interval 2, max faces 1, max hands 1, encoder libx264, decoding software" in (
        printed
    )
    report = json.loads(out.read_text())
    rows = {row["stage"]: row for row in report["stages"]}
    assert {"decode", "track", "model", "composite", "encode"} <= rows.keys()
    # llvmpipe finishes every pass, so each pass's own time comes free, under composite
    lipstick = rows["composite: lipstick"]
    assert lipstick["frames"] == rows["composite"]["frames"]
    assert 0 < lipstick["median_ms"] <= rows["composite"]["median_ms"]
    table = printed.splitlines()
    at = next(i for i, line in enumerate(table) if line.startswith("composite "))
    assert table[at + 1].startswith("  lipstick ")
    assert report["plain_fps"] > 0 and report["render_fps"] > 0 and report["ratio"] > 0
    assert report["live"]["delivered"] + report["live"]["dropped"] == 20
    assert report["live_model"] == "inline" and report["live_max_wait"] == 0.75
    assert printed.count("dropped; max wait 0.75 frame intervals)") == 2
    assert report["live_behind"]["delivered"] + report["live_behind"]["dropped"] == 20
    assert (report["model_interval"], report["max_faces"], report["max_hands"]) == (2, 1, 1)
    assert (report["encoder"], report["decoder"]) == ("libx264", "software")
    assert "rss_mb_at_10" in report["memory"] and "rss_mb_at_30" in report["memory"]


def test_pass_times_are_collected_only_where_passes_finish_anyway(image_path) -> None:
    """Each pass's time needs the renderer finished after it: free on a software renderer,
    which the compositor finishes after every pass anyway; a stall on a GPU, so there no
    pass is timed (stage times are still collected)."""
    import cv2

    import arfx

    image = cv2.cvtColor(cv2.imread(str(image_path("obama.jpg"))), cv2.COLOR_BGR2RGB)
    with arfx.Session(["lipstick", "hair_color"]) as session:
        session.stage_times = {}
        session.process(image)
        assert {"composite: lipstick", "composite: hair_color 1", "composite: hair_color 2"} <= (
            session.stage_times.keys()
        )
        session.stage_times = {}
        session._compositor._finish_passes = False  # as on a GPU
        session.process(image)
        assert "composite" in session.stage_times
        assert not [k for k in session.stage_times if k.startswith("composite: ")]
