"""Hands in front of the face: the hand mask, and lipstick that leaves fingers unpainted."""

from __future__ import annotations

import itertools
import threading

import av
import numpy as np
import pytest

import arfx
from arfx import session as session_module
from arfx.hands import FINGER_WIDTH, Hand, HandSearch, HandTracker, hand_mask, model_sees_occluder
from arfx.masks import mesh_mask


def _flat_hand(x: float = 100.0, y: float = 200.0, span: float = 40.0) -> Hand:
    """A hand held up flat, fingers pointing up: knuckles ``span`` pixels apart."""
    points = np.zeros((21, 2), np.float32)
    points[0] = (x, y)
    step = span / 3.0
    for finger in range(1, 5):  # index .. little: knuckles 5, 9, 13, 17
        base = 1 + 4 * finger
        column = x - span / 2 + (finger - 1) * step
        for joint in range(4):
            points[base + joint] = (column, y - 60 - 25 * joint)
    for joint in range(4):  # the thumb, out to the side
        points[1 + joint] = (x + span / 2 + 15 * (joint + 1), y - 20 - 10 * joint)
    return Hand(points, 1.0)


def test_the_mask_covers_palm_and_fingers_with_soft_edges() -> None:
    hand = _flat_hand()
    mask = hand_mask([hand], (300, 240))
    points = hand.landmarks
    assert mask[int(points[0, 1]) - 30, int(points[0, 0])] == 255  # the palm
    for bone in ((5, 6), (10, 11), (19, 20)):
        middle = points[list(bone)].mean(axis=0)
        assert mask[int(middle[1]), int(middle[0])] == 255  # along each finger
    assert mask[5, 5] == 0 and mask[295, 235] == 0  # away from the hand
    assert ((mask > 0) & (mask < 255)).sum() > 50  # anti-aliased edges
    # Across the middle finger, halfway up: about one finger wide.
    row = int(points[10:12, 1].mean())
    column = int(points[10, 0])
    across = mask[row] > 127
    left = column - int(np.argmin(across[column::-1]))  # the run of pixels around the bone
    right = column + int(np.argmin(across[column:]))
    assert abs((right - left - 1) - FINGER_WIDTH * 40.0) <= 2.0
    reused = np.full((300, 240), 7, np.uint8)
    assert np.array_equal(hand_mask([hand], (300, 240), out=reused), mask)
    assert not hand_mask([], (300, 240)).any()


def test_hand_search_looks_every_few_frames_until_a_hand_is_found() -> None:
    search = HandSearch(every=3)
    seen = []
    for _ in range(8):
        due = search.due()
        seen.append(due)
        if due:
            search.found(0)
    assert seen == [True, False, False, True, False, False, True, False]
    assert search.due(occluded=True)  # the face model sees something: look at once
    search.found(1)
    assert all(search.due() for _ in range(4))  # a hand found is followed every frame
    search.found(0)
    assert not search.due()  # lost: back to every third frame
    search.reset()
    assert search.due()  # a scene cut or a new stream: look on the next frame
    always = HandSearch(every=1)
    assert all(always.due() for _ in range(5))
    for wrong in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="hand search interval"):
            HandSearch(every=wrong)  # type: ignore[arg-type]
    with pytest.raises(arfx.ArfxError, match="hand_search_interval"):
        arfx.SessionOptions(hand_search_interval=0)


def test_an_occlusion_map_counts_as_occluded_past_one_percent() -> None:
    occlusion = np.zeros((256, 256), np.float32)
    assert not model_sees_occluder(occlusion)
    occlusion[:6, :] = 0.9  # 2.3% of the crop
    assert model_sees_occluder(occlusion)
    occlusion[:6, :] = 0.4  # not confident
    assert not model_sees_occluder(occlusion)


def _frames(video_path, count: int) -> list[np.ndarray]:
    with av.open(str(video_path("WolfgangLanger_Pexels.mp4"))) as container:
        frames = itertools.islice(container.decode(video=0), count)
        return [f.to_ndarray(format="rgb24") for f in frames]


@pytest.fixture
def hand_over_mouth(video_path) -> list[np.ndarray]:
    """WolfgangLanger_Pexels.mp4 up to frame 60, where fingers cover most of the lips."""
    return _frames(video_path, 61)


def test_the_tracker_finds_the_hand_over_the_mouth(hand_over_mouth) -> None:
    with HandTracker() as tracker:
        hands = [tracker.track(frame) for frame in hand_over_mouth]
    assert not hands[30]  # both hands out of view
    assert len(hands[60]) == 1
    assert hands[60][0].finger_width > 8


def _render(frames: list[np.ndarray], hands: bool) -> tuple[np.ndarray, list]:
    options = arfx.SessionOptions(hands=hands, pipelined=False)
    with arfx.Session(["lipstick:color=#c0122f"], options) as session:
        outputs = [session.process(frame, time=i / 25.0) for i, frame in enumerate(frames)]
        faces = session.analyze(frames[-1])
    return np.stack(outputs), faces


def test_lipstick_leaves_fingers_over_the_mouth_unpainted(hand_over_mouth) -> None:
    frames = hand_over_mouth
    with_hands, faces = _render(frames, hands=True)
    without, _ = _render(frames, hands=False)
    with HandTracker() as tracker:
        for frame in frames:
            hands = tracker.track(frame)
    fingers = hand_mask(hands, frames[-1].shape[:2]) > 200
    lips = mesh_mask(faces[0].landmarks, frames[-1].shape[:2], "lips") > 0
    covered = fingers & lips  # where the mesh puts lips behind the fingers
    assert covered.sum() > 300

    def painted(output: np.ndarray) -> np.ndarray:
        return np.abs(output.astype(int) - frames[-1]).max(axis=2) > 12

    # The masks alone paint a good share of the fingers (0.29-0.33, as the hand tracker
    # follows or searches).
    assert painted(without[-1])[covered].mean() > 0.25
    assert painted(with_hands[-1])[covered].mean() < 0.03  # the hands mask keeps them bare
    # Frame 30 has no hand: both sessions paint the lips the same.
    assert np.array_equal(with_hands[30], without[30])
    assert painted(with_hands[30]).sum() > 500


def _hand_masks(
    frames: list[np.ndarray], interval: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[np.ndarray], int]:
    """The hands mask of every frame, and on how many frames the tracker ran."""
    runs = []
    track = HandTracker.track

    def counted(tracker: HandTracker, image: np.ndarray) -> list[Hand]:
        runs.append(1)
        return track(tracker, image)

    monkeypatch.setattr(HandTracker, "track", counted)
    # The interval also sets how often a followed hand's tracker looks for a second one;
    # here only the search for a first hand is compared, so that stays at every frame.
    monkeypatch.setattr(
        session_module, "HandTracker", lambda **kw: HandTracker(**{**kw, "search_every": 1})
    )
    options = arfx.SessionOptions(hand_search_interval=interval, pipelined=False)
    masks = []
    with arfx.Session(["lipstick"], options) as session:
        for i, frame in enumerate(frames):
            session.process(frame, time=i / 25.0)
            masks.append(session._hand_buffer.copy())
    return masks, len(runs)


@pytest.mark.slow
def test_searching_every_third_frame_finds_the_hand_as_soon(video_path, monkeypatch) -> None:
    """WolfgangLanger_Pexels.mp4 frames 0-89: the hand comes over the mouth at frame 59.
    Searching every third frame (and when the face model sees an occluder) finds it on the
    same frame as searching every frame, and gives the same mask on every frame."""
    frames = _frames(video_path, 90)
    every_frame, searched_all = _hand_masks(frames, 1, monkeypatch)
    every_third, searched_some = _hand_masks(frames, 3, monkeypatch)
    assert not every_frame[30].any() and every_frame[60].any()
    for i, (a, b) in enumerate(zip(every_frame, every_third, strict=True)):
        assert np.array_equal(a, b), f"frame {i}"
    assert searched_all == 90
    assert searched_some < 75  # the hand-free frames before 59 are searched one in three


def test_a_followed_hand_is_followed_without_a_palm_search_on_most_frames(video_path) -> None:
    """WolfgangLanger_Pexels.mp4 frames 55-119: a hand over the mouth, then fast to the
    eye and back. Following it with a one-hand graph, and looking for a second hand every
    third frame, finds a hand on every frame MediaPipe's own two-hand tracking does, with
    nearly the same mask, while the two-hand graph (and its palm detector) runs on about a
    third of the frames."""
    frames = _frames(video_path, 120)[55:]
    runs: dict[int, list[int]] = {}
    masks: dict[int, list[np.ndarray]] = {}
    for every in (1, 3):
        with HandTracker(search_every=every) as tracker:
            run = tracker._run

            def spied(most: int, image: np.ndarray, run=run, every=every) -> list[Hand]:
                runs.setdefault(every, []).append(most)
                return run(most, image)

            tracker._run = spied  # type: ignore[method-assign]
            masks[every] = [hand_mask(tracker.track(f), f.shape[:2]) > 127 for f in frames]
    assert set(runs[1]) == {2}
    following = [i for i, mask in enumerate(masks[1]) if mask.any()]
    assert len(following) > 40
    ious = []
    for i in following:
        one, three = masks[1][i], masks[3][i]
        assert three.any(), f"frame {55 + i}: the followed hand was lost"
        ious.append((one & three).sum() / (one | three).sum())
    assert np.mean(ious) > 0.85 and min(ious) > 0.5
    assert runs[3].count(2) < 0.5 * len(runs[3])
    for wrong in (0, True, 2.0):
        with pytest.raises(ValueError, match="search_every"):
            HandTracker(search_every=wrong)  # type: ignore[arg-type]


def _live_outputs(
    frames: list[np.ndarray], ahead: bool, fail_at: int = 0
) -> tuple[list[np.ndarray], list[str], dict[str, int]]:
    """Each frame through a session's live stage in turn (no frame dropped), with the hand
    tracker started beside the face model (``ahead``) or after it; the images, the thread
    of each hand tracker run, and the frames passed through. Run ``fail_at`` (from 1)
    raises."""
    threads: list[str] = []
    track = HandTracker.track

    def spied(tracker: HandTracker, image: np.ndarray) -> list[Hand]:
        threads.append(threading.current_thread().name)
        if len(threads) == fail_at:
            raise arfx.ArfxError("hand tracker failed (injected)")
        return track(tracker, image)

    with pytest.MonkeyPatch.context() as patch, arfx.Session(["lipstick:color=#c0122f"]) as session:
        patch.setattr(HandTracker, "track", spied)
        if not ahead:
            patch.setattr(session, "_hands_ahead", lambda rgb: None)
        ((_, stage),) = session._frame_stages(live=True)
        outputs = [
            stage(arfx.Frame(image=frame, index=i, time=i / 25.0)).image
            for i, frame in enumerate(frames)
        ]
        failed = dict(session.failed_frames)
    return outputs, threads, failed


def test_live_frames_track_the_followed_hand_beside_the_face_model(video_path) -> None:
    """Live, while a hand is followed, the hand tracker runs in a worker beside the frame's
    face tracking and model: the same pictures as running it after them; a failure there
    passes one frame through and the stream goes on."""
    frames = _frames(video_path, 75)[50:]  # the hand comes over the mouth at frame 59
    after, threads_after, _ = _live_outputs(frames, ahead=False)
    beside, threads_beside, _ = _live_outputs(frames, ahead=True)
    worker = [name.startswith("arfx-hands") for name in threads_beside]
    assert not any(name.startswith("arfx-hands") for name in threads_after)
    assert sum(worker) >= 10 and worker[-1]
    for i, (a, b) in enumerate(zip(after, beside, strict=True)):
        assert np.array_equal(a, b), f"frame {50 + i}"
    fail_at = len(worker) - 5  # a run in the worker, five frames before the end
    assert worker[fail_at - 1]
    broken, _, failed = _live_outputs(frames, ahead=True, fail_at=fail_at)
    assert failed == {"analysis: ArfxError": 1}
    passed = [
        i for i, (a, f) in enumerate(zip(broken, frames, strict=True)) if np.array_equal(a, f)
    ]
    assert len(passed) == 1
    assert not np.array_equal(broken[-1], frames[-1])  # painted again after it


def test_one_hand_at_most(hand_over_mouth) -> None:
    """``max_hands=1`` follows the hand over the mouth as the default does (MediaPipe's palm
    detector then stops running on every frame one hand is in view)."""
    masks = {}
    for most in (1, 2):
        options = arfx.SessionOptions(max_hands=most, hand_search_interval=1, pipelined=False)
        with arfx.Session(["lipstick"], options) as session:
            for i, frame in enumerate(hand_over_mouth):
                session.process(frame, time=i / 25.0)
            assert session._hand_tracker is not None
            assert session._hand_tracker.max_hands == most
            masks[most] = session._hand_buffer > 127
    assert masks[1].sum() > 2000
    assert (masks[1] & masks[2]).sum() / (masks[1] | masks[2]).sum() > 0.9
    for wrong in (0, 5, True, 1.0):
        with pytest.raises(arfx.ArfxError, match="max_hands"):
            arfx.SessionOptions(max_hands=wrong)  # type: ignore[arg-type]


def test_hands_can_be_turned_off(image_path) -> None:
    options = arfx.SessionOptions(hands=False, static_images=True)
    with arfx.Session(["lipstick"], options) as session:
        assert "hands" not in session._available_masks
        session.process(np.zeros((64, 64, 3), np.uint8))
        assert session._hand_tracker is None


def test_glasses_hide_behind_fingers_rubbing_an_eye(video_path) -> None:
    """WolfgangLanger_Pexels.mp4 frame 98: fingers over the left lens. The glasses are
    drawn behind them (mesh masks here, so only the hands mask can hide them)."""
    frames = _frames(video_path, 99)
    outputs = {}
    for hands in (True, False):
        options = arfx.SessionOptions(hands=hands, masks="mesh", pipelined=False)
        with arfx.Session(["eyewear"], options) as session:
            for i, frame in enumerate(frames):
                out = session.process(frame, time=i / 25.0)
            if hands:  # the hands mask the session drew this frame with
                fingers = session._hand_buffer > 200
        outputs[hands] = out
    drawn = np.abs(outputs[False].astype(int) - frames[-1]).max(axis=2) > 12
    over = fingers & drawn  # glasses pixels that land on the fingers
    assert over.sum() > 200
    assert np.array_equal(outputs[True][over], frames[-1][over])  # hidden there
    rest = drawn & ~fingers
    assert np.abs(outputs[True].astype(int) - frames[-1]).max(axis=2)[rest].mean() > 12
