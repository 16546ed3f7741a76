"""The pipelined engine: order, backpressure, live dropping, errors, shutdown, real renders."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from arfx.engine import Pipeline, PipelineError
from arfx.session import RenderError, Session, SessionOptions

from .helpers import decode, psnr


def _arfx_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("arfx-")]


def test_offline_keeps_every_item_in_order() -> None:
    pipeline = Pipeline([("double", lambda x: 2 * x), ("plus", lambda x: x + 1)])
    assert list(pipeline.run(range(200))) == [2 * x + 1 for x in range(200)]
    assert [len(t.seconds) for t in pipeline.times] == [200, 200, 200]
    assert pipeline.dropped == 0
    assert not _arfx_threads()


def test_stages_overlap() -> None:
    def slow(x: int) -> int:
        time.sleep(0.02)  # sleeping releases the GIL, as native stages do
        return x

    pipeline = Pipeline([("a", slow), ("b", slow), ("c", slow)])
    start = time.perf_counter()
    assert list(pipeline.run(range(20))) == list(range(20))
    # One after another would take 20 * 3 * 20 ms = 1.2 s; overlapped, about a third.
    # (A generous bound: this checks the stages overlap at all, not how fast they are.)
    assert time.perf_counter() - start < 1.0


def test_backpressure_bounds_the_items_in_flight() -> None:
    produced = []

    def source():
        for i in range(50):
            produced.append(i)
            yield i

    pipeline = Pipeline([("a", lambda x: x)], queue_size=2)
    results = pipeline.run(source())
    next(results)
    time.sleep(0.2)  # the consumer is slow: the source must wait, not run ahead
    assert len(produced) <= 1 + 2 + 1 + 2 + 1  # taken + queue + in stage + queue + yielded
    assert list(results) == list(range(1, 50))


def test_live_drops_stale_items_and_counts_them() -> None:
    def camera():
        for i in range(60):
            time.sleep(0.002)
            yield i

    def slow(x: int) -> int:
        time.sleep(0.02)
        return x

    pipeline = Pipeline([("analyse", slow)], live=True)
    out = list(pipeline.run(camera()))
    assert out == sorted(out)  # what is kept stays in order
    assert out[-1] == 59 or pipeline.dropped > 0
    assert pipeline.dropped > 20
    assert len(out) + pipeline.dropped == 60


def test_live_max_wait_drops_items_that_waited_too_long() -> None:
    """A camera every 20 ms into a 60 ms stage: an item waits up to 20 ms for it. With
    ``max_wait`` 0.25 (5 ms) most of those are dropped as stale and the next one is taken
    as it arrives; without it none is. Nothing is lost from the count either way."""

    def camera():
        for i in range(40):
            time.sleep(0.02)
            yield i

    def slow(x: int) -> int:
        time.sleep(0.06)
        return x

    plain = Pipeline([("analyse", slow)], live=True)
    kept = list(plain.run(camera()))
    assert plain.stale == 0 and len(kept) + plain.dropped == 40

    strict = Pipeline([("analyse", slow)], live=True, max_wait=0.25)
    out = list(strict.run(camera()))
    assert out == sorted(out)
    assert strict.stale > 0 and strict.stale <= strict.dropped
    assert len(out) + strict.dropped == 40
    assert not _arfx_threads()
    with pytest.raises(ValueError, match="max_wait"):
        Pipeline([("a", slow)], live=True, max_wait=-1.0)


def test_an_item_is_stale_past_max_wait_source_intervals() -> None:
    """The rule itself: an item's age against max_wait times the median interval between
    the source's recent items; no verdict before three have arrived."""
    pipeline = Pipeline([("a", lambda x: x)], live=True, max_wait=0.5)
    now = time.perf_counter()
    pipeline._arrivals.extend([now - 0.2, now - 0.1])
    assert not pipeline._too_old(now - 1.0)  # two arrivals: no interval yet
    pipeline._arrivals.append(now)  # intervals of 0.1 s: stale after 0.05 s
    assert not pipeline._too_old(time.perf_counter() - 0.03)
    assert pipeline._too_old(time.perf_counter() - 0.08)
    assert (pipeline.dropped, pipeline.stale) == (1, 1)
    offline = Pipeline([("a", lambda x: x)], max_wait=0.5)  # only live pipelines drop
    assert offline.max_wait is None


def test_a_failing_stage_names_itself_and_the_item() -> None:
    def fail_on_7(x: int) -> int:
        if x == 7:
            raise ValueError("bad value")
        return x

    pipeline = Pipeline([("ok", lambda x: x), ("check", fail_on_7)])
    seen = []
    with pytest.raises(PipelineError, match=r"check \(item 7\): ValueError: bad value") as info:
        for x in pipeline.run(range(100)):
            seen.append(x)
    assert seen == list(range(7))
    assert isinstance(info.value.__cause__, ValueError)
    assert (info.value.stage, info.value.item) == ("check", 7)
    assert not _arfx_threads()


def test_a_failing_source_is_reported() -> None:
    def broken():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(PipelineError, match="source .*disk gone"):
        list(Pipeline([("a", lambda x: x)]).run(broken()))
    assert not _arfx_threads()


def test_items_before_a_source_failure_still_finish() -> None:
    """A file cut short: every frame decoded before the cut is still processed."""

    def cut_short():
        yield from range(5)
        raise OSError("file truncated")

    def slow(x: int) -> int:
        time.sleep(0.01)
        return x

    seen = []
    with pytest.raises(PipelineError, match="source .*truncated"):
        for x in Pipeline([("a", slow), ("b", slow)]).run(cut_short()):
            seen.append(x)
    assert seen == list(range(5))


def test_closing_early_stops_every_thread() -> None:
    pipeline = Pipeline([("a", lambda x: x), ("b", lambda x: x)])
    results = pipeline.run(iter(range(10_000)))
    assert next(results) == 0
    results.close()
    assert not _arfx_threads()


def test_pipelined_render_matches_the_sequential_one(tmp_path: Path, video_path) -> None:
    video = video_path("single_face.mp4")
    outputs = {}
    for pipelined in (False, True):
        options = SessionOptions(pipelined=pipelined)
        with Session(["lipstick", "hair_color"], options) as session:
            out = tmp_path / f"out_{pipelined}.mp4"
            report = session.render(video, out, progress=False)
        outputs[pipelined] = decode(out)
        assert report.frames == len(outputs[pipelined].frames) > 0
    a, b = outputs[False], outputs[True]
    assert a.pts == b.pts
    assert min(psnr(x, y) for x, y in zip(a.frames, b.frames, strict=True)) > 60
    assert not _arfx_threads()


def test_a_failure_in_a_pipelined_render_names_the_frame(tmp_path: Path, video_path) -> None:
    """An exception deep in a stage comes out as one RenderError naming file and frame,
    the threads are gone and the partial output is playable."""
    video = video_path("single_face.mp4")
    with Session(["lipstick"]) as session:
        original = session._compositor.render
        calls = {"n": 0}

        def failing(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 20:
                raise RuntimeError("GPU fell over")
            return original(*args, **kwargs)

        session._compositor.render = failing  # type: ignore[method-assign]
        with pytest.raises(
            RenderError, match=r"single_face\.mp4: frame \d+: RuntimeError: GPU"
        ) as info:
            session.render(video, tmp_path / "out.mp4", progress=False)
    assert not _arfx_threads()
    assert info.value.partial is not None and info.value.partial.exists()
    assert 0 < len(decode(info.value.partial).frames) < 72
    assert not (tmp_path / "out.mp4").exists()
