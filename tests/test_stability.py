"""Stabilisation in the real pipeline: real MediaPipe, the shipped model, real video."""

from __future__ import annotations

import json
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from arfx.cli import main
from arfx.frame import Frame
from arfx.session import Session, SessionOptions
from arfx.smoothing import StabilizerOptions
from arfx.stability import known_path, noisy_copy, static_test, velocity_lag

from .helpers import decode


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_a_still_face_holds_still(image_path) -> None:
    results, truth = static_test(_rgb(image_path("obama.jpg")), StabilizerOptions(), frames=30)
    raw, stable = results["raw"], results["stable"]
    assert stable.jitter < 0.5 * raw.jitter
    assert stable.pose_wobble < 0.5 * raw.pose_wobble
    for name in ("lips", "hair"):
        assert stable.flicker[name] < raw.flicker[name]
    assert truth.shape == (478, 2)


def test_velocity_lag_finds_a_known_delay() -> None:
    path = known_path(150, 30.0, (640, 480), np.array([320.0, 240.0]))
    points = np.array([[300.0, 200.0], [340.0, 260.0], [320.0, 280.0]])
    truth = np.einsum("tij,nj->tni", path[:, :, :2], points) + path[:, None, :, 2]
    delayed = [truth[max(t - 2, 0)] for t in range(len(truth))]
    assert velocity_lag(list(truth), truth) == pytest.approx(0.0, abs=0.05)
    assert velocity_lag(delayed, truth) == pytest.approx(2.0, abs=0.1)
    assert velocity_lag([None, *list(truth[1:])], truth) == pytest.approx(0.0, abs=0.05)


def test_noisy_copy_adds_camera_noise(image_path) -> None:
    image = _rgb(image_path("obama.jpg"))
    rng = np.random.default_rng(0)
    a, b = noisy_copy(image, rng), noisy_copy(image, rng)
    difference = np.abs(a.astype(int) - b.astype(int))
    assert a.shape == image.shape and a.dtype == np.uint8
    assert 0.5 < difference.mean() < 6.0  # fresh noise every frame, but the same picture


def _frames(paths_and_ranges, video_path) -> list[np.ndarray]:
    frames = []
    for name, start, stop in paths_and_ranges:
        frames.extend(decode(video_path(name), limit=stop).frames[start:stop])
    return frames


def _run(session: Session, frames: list[np.ndarray]) -> list[Frame]:
    rate = Fraction(30)
    return [
        session.process_frame(Frame(image=image, index=i, pts=i, time_base=1 / rate, time=i / 30))
        for i, image in enumerate(frames)
    ]


def _paint_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int] | None:
    changed = np.abs(before.astype(int) - after.astype(int)).max(axis=2) > 8
    ys, xs = np.nonzero(changed)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _assert_paint_on_raw_lips(frame: Frame, before: np.ndarray) -> None:
    """The lipstick drawn on ``frame`` lies on this frame's own (raw) lips, not elsewhere."""
    face = frame.faces[0]
    np.testing.assert_array_equal(face.landmarks, face.raw_landmarks)
    lips = face.raw_landmarks[[61, 291, 0, 17], :2]
    x0, y0 = lips.min(axis=0) - 0.3 * face.inter_ocular
    x1, y1 = lips.max(axis=0) + 0.3 * face.inter_ocular
    box = _paint_box(before, frame.image)
    assert box is not None, "no lipstick drawn on the returning face"
    assert x0 <= box[0] and y0 <= box[1] and box[2] <= x1 and box[3] <= y1, (box, (x0, y0, x1, y1))


def test_a_face_that_leaves_and_returns_starts_afresh(video_path) -> None:
    # face_noface.mov: a face, then none; noface_face.mov: none, then a face.
    frames = _frames([("face_noface.mov", 0, 90), ("noface_face.mov", 80, 110)], video_path)
    with Session(["lipstick"]) as session:
        out = _run(session, frames)
    present = [bool(frame.faces) for frame in out]
    first_gone = present.index(False)
    returned = present.index(True, first_gone)
    assert returned > first_gone + 5
    before_ids = {f.id for f in out[first_gone - 1].faces}
    assert out[returned].faces[0].id not in before_ids
    _assert_paint_on_raw_lips(out[returned], frames[returned])
    # Afterwards the filter runs: the stabilised points differ from the raw ones.
    later = out[returned + 5].faces[0]
    assert not np.array_equal(later.landmarks, later.raw_landmarks)


def _cut_to_another_camera(video_path) -> list[np.ndarray]:
    """30 frames of a face, then a cut to "another camera" on the same face: the picture
    moved by ~0.6 face widths and graded differently. The face boxes still overlap, so the
    tracker keeps the face's id across the cut."""
    frames = _frames([("face_noface.mov", 0, 60)], video_path)
    graded = [
        np.roll((frame[:, :, ::-1] * 0.7).astype(np.uint8), 60, axis=1) for frame in frames[30:]
    ]
    return frames[:30] + graded


def test_a_scene_cut_resets_tracks_and_filters(video_path) -> None:
    frames = _cut_to_another_camera(video_path)
    with Session(["lipstick"]) as session:
        out = _run(session, frames)
        assert session.scene_cuts == 1
    _assert_paint_on_raw_lips(out[30], frames[30])


def test_without_cut_detection_the_filter_would_slide(video_path) -> None:
    """The check above has teeth: with cut detection off, the same id carries the filters
    (and the previous masks) across the cut, so the stabilised points are not the new
    face's own. The One Euro filter opens wide on such a jump, so they trail by pixels."""
    frames = _cut_to_another_camera(video_path)
    options = SessionOptions(stabilizer=StabilizerOptions(scene_cuts=False))
    with Session(["lipstick"], options) as session:
        out = _run(session, frames)
    assert out[30].faces[0].id == out[29].faces[0].id
    face = out[30].faces[0]
    lag = np.linalg.norm(face.landmarks[:, :2] - face.raw_landmarks[:, :2], axis=1).mean()
    assert lag > 1.0


def test_stabilizer_options_reach_the_session(image_path) -> None:
    with pytest.raises(Exception, match="stabilizer"):
        SessionOptions(stabilizer="on")  # type: ignore[arg-type]
    image = _rgb(image_path("obama.jpg"))
    with Session(["lipstick"], SessionOptions(stabilizer=StabilizerOptions.off())) as session:
        faces = session.analyze(image)
        assert faces[0].raw_landmarks is None  # not stabilised: the tracker's own points
    with Session(["lipstick"], SessionOptions(static_images=True)) as session:
        faces = session.analyze(image)
        assert faces[0].raw_landmarks is None  # unrelated photos are never filtered


def test_bench_stability_command(tmp_path: Path, image_path, capsys) -> None:
    out = tmp_path / "stability.json"
    code = main(
        [
            "bench", "stability", "--image", str(image_path("obama.jpg")),
            "--frames", "12", "--moving-frames", "20", "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "jitter %IOD" in printed and "ratio" in printed
    report = json.loads(out.read_text())
    result = next(iter(report["images"].values()))
    assert set(result) == {"raw", "stable"}
    assert result["stable"]["static"]["frames"] == 12
    assert result["stable"]["moving"]["frames"] == 20
    assert report["options"]["landmarks"] == "one_euro"


@pytest.mark.slow
def test_bench_stability_on_a_video(tmp_path: Path, video_path, capsys) -> None:
    code = main(
        [
            "bench", "stability", "--video", str(video_path("WolfgangLanger_Pexels.mp4")),
            "--video-frames", "40",
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "WolfgangLanger_Pexels.mp4" in printed and "output change" in printed


def _mean_change(frames: list[np.ndarray], region: np.ndarray) -> float:
    """Mean |frame - previous frame| inside ``region``, grey levels."""
    return float(
        np.mean([np.abs(b.astype(int) - a.astype(int))[region].mean() for a, b in pairwise(frames)])
    )


def test_shimmer_does_not_crawl_on_a_still_face(image_path) -> None:
    """Procedural sparkle is anchored to the (stabilised) lips: on a still, noisy photo the
    output inside the lips changes little more than the input's own noise does."""
    image = _rgb(image_path("obama.jpg"))
    rng = np.random.default_rng(7)
    frames = [noisy_copy(image, rng) for _ in range(12)]
    effect = "lipstick:finish=shimmer,shimmer=1.0"
    changes = {}
    for name, options in (("raw", StabilizerOptions.off()), ("stable", StabilizerOptions())):
        with Session([effect], SessionOptions(stabilizer=options)) as session:
            out = [session.process(frame, time=i / 30) for i, frame in enumerate(frames)]
            lips = session.analyze(frames[-1], time=12 / 30)[0].analysis
        region = lips.probability("lips") > 0.5
        region = lips.alignment.paste(region.astype(np.float32), image.shape[:2]) > 0.5
        changes[name] = _mean_change(out, region)
    noise = _mean_change(frames, region)
    assert changes["stable"] < changes["raw"]
    assert changes["stable"] < noise + 2.0, (changes, noise)
