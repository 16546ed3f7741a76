"""Long videos in chunks (``arfx.chunks``): cut at keyframes, rendered apart, joined whole."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from arfx.chunks import (
    chunk_frames,
    chunk_offset,
    chunk_path,
    join_chunks,
    plan_chunks,
    render_chunk,
)
from arfx.errors import ArfxError, SourceError
from arfx.session import Session
from arfx.sources import VideoFileSource

from .helpers import decode

WOLFGANG = "WolfgangLanger_Pexels.mp4"  # 472 frames, keyframes every ~3 s, AAC audio
TICK = 1001  # one frame at 23.98 fps in its 1/24000 time base


def test_plan_cuts_at_keyframes_and_primes_before_each_chunk(video_path) -> None:
    plan = plan_chunks(video_path(WOLFGANG), seconds=5)
    assert plan.frames == 472
    starts = [c.start for c in plan.chunks]
    assert starts == [0, 144 * TICK, 288 * TICK]  # keyframes at 6.0 and 12.0 s
    assert [c.start_index for c in plan.chunks] == [0, 144, 288]
    assert [c.end for c in plan.chunks] == [144 * TICK, 288 * TICK, None]
    first, second, third = plan.chunks
    assert (first.warmup, first.warmup_index) == (0, 0)  # the file's start needs no priming
    # The last keyframe at least 2 s before each start: 3.0 s and 9.0 s.
    assert (second.warmup, second.warmup_index) == (72 * TICK, 72)
    assert (third.warmup, third.warmup_index) == (216 * TICK, 216)
    # The last keyframe (18.0 s) is 1.6 s before the end: a chunk of its own only when that
    # is at least half a chunk, else the tail stays in the chunk before it.
    short = plan_chunks(video_path(WOLFGANG), seconds=3.2).chunks
    assert [c.start_index for c in short] == [0, 144, 288, 432]
    longer = plan_chunks(video_path(WOLFGANG), seconds=3.4).chunks
    assert [c.start_index for c in longer] == [0, 144, 288] and longer[-1].end is None
    assert len(plan_chunks(video_path(WOLFGANG), seconds=30).chunks) == 1
    assert len(plan_chunks(video_path("single_face.mp4"), seconds=1).chunks) == 1  # 1 keyframe


def test_plan_refuses_what_it_cannot_cut(tmp_path: Path, video_path) -> None:
    with pytest.raises(ArfxError, match="chunk seconds must be > 0"):
        plan_chunks(video_path(WOLFGANG), seconds=0)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0" * 1000)
    with pytest.raises(SourceError, match="junk.mp4"):
        plan_chunks(junk, seconds=5)


def test_a_seeking_source_keeps_the_files_numbering_and_clock(video_path) -> None:
    with VideoFileSource(video_path(WOLFGANG)) as whole:
        reference = {f.index: f for f in whole}
    with VideoFileSource(video_path(WOLFGANG)) as source:
        source.seek(144 * TICK, 144)
        frames = [f for _, f in zip(range(5), source, strict=False)]
    assert [f.index for f in frames] == [144, 145, 146, 147, 148]
    for frame in frames:
        twin = reference[frame.index]
        assert (frame.pts, frame.time) == (twin.pts, twin.time)
        np.testing.assert_array_equal(frame.image, twin.image)
    with VideoFileSource(video_path(WOLFGANG)) as source:
        next(iter(source))
        with pytest.raises(SourceError, match="cannot seek once iteration has started"):
            source.seek(0, 0)


@pytest.mark.slow
def test_chunks_match_a_whole_render(video_path) -> None:
    """The first two chunks rendered apart, the second primed on the 3 s before it: the
    first is bit-identical to a whole-file render, and the second differs by far less than
    x264's noise. It cannot be identical: MediaPipe tracks each frame from the previous
    one's landmarks, so a track keeps a sub-pixel trace of where it started."""
    source = video_path(WOLFGANG)
    plan = plan_chunks(source, seconds=5)
    first, second = plan.chunks[:2]
    assert (second.start_index, plan.chunks[2].start_index) == (144, 288)
    with Session(["lipstick", "eyewear"]) as session:  # eyewear follows the head pose
        stream = session.stream(VideoFileSource(source), pipelined=True)
        whole = list(itertools.islice(stream, 288))
        stream.close()  # the rest of the file is not needed
        parts = []
        for chunk in (first, second):
            with VideoFileSource(source) as reader:
                parts.extend(chunk_frames(reader, chunk, session))
    assert [f.index for f in parts] == list(range(288))
    assert [f.pts for f in parts] == [f.pts for f in whole]
    assert [len(f.faces) for f in parts] == [len(f.faces) for f in whole]
    for a, b in zip(whole[:144], parts[:144], strict=True):
        np.testing.assert_array_equal(a.image, b.image)
    means = [
        np.abs(a.image.astype(int) - b.image.astype(int)).mean()
        for a, b in zip(whole[144:], parts[144:], strict=True)
    ]
    assert max(means) < 0.5, max(means)  # grey levels; x264 (crf 18) alone: 1.5-1.9


def test_join_refuses_chunks_out_of_order_and_leaves_nothing(tmp_path: Path, video_path) -> None:
    source = video_path(WOLFGANG)
    plan = plan_chunks(source, seconds=5)
    joined = tmp_path / "joined.mp4"
    parts = [chunk_path(joined, c.number) for c in plan.chunks[:2]]
    with Session([]) as session:  # no effects: quick, the packets are what matters here
        for chunk, part in zip(plan.chunks[:2], parts, strict=True):
            render_chunk(source, chunk, part, session)
    offsets = [chunk_offset(plan, chunk) for chunk in plan.chunks[:2]]
    assert offsets == [0, Fraction(144 * TICK, 24000)]
    with pytest.raises(ArfxError, match=r"chunk0000.mp4: its first packets decode at"):
        join_chunks(parts[::-1], joined, audio_from=source, offsets=offsets[::-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in parts)
    join_chunks(parts, joined, audio_from=None, offsets=offsets)  # in order it joins
    out = decode(joined, keep_frames=False)
    assert out.pts == [i * TICK for i in range(288)] and out.audio_codec is None
    with pytest.raises(ArfxError, match="no chunks to join"):
        join_chunks([], joined, audio_from=None)


def test_a_broken_chunk_file_is_named(tmp_path: Path, video_path) -> None:
    bad = tmp_path / ".out.chunk0000.mp4"
    bad.write_bytes(b"not a video")
    out = tmp_path / "out.mp4"
    with pytest.raises(ArfxError, match="out.mp4: cannot join 1 chunks"):
        join_chunks([bad], out, audio_from=video_path(WOLFGANG))
    assert not out.exists() and not (tmp_path / ".out.arfx-tmp.mp4").exists()
