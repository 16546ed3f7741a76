"""Face tracking on real images and video: landmarks, boxes, stable ids, options."""

from __future__ import annotations

import av
import cv2
import mediapipe as mp
import numpy as np
import pytest

from arfx.pose import HeadPose
from arfx.tracking import (
    Face,
    FaceTracker,
    TrackerOptions,
    box_iou,
    detection_tiles,
    match_boxes,
)


def load_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def video_frames(path, count: int) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return frames


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    height, width = image.shape[:2]
    move = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, move, (width, height), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture
def obama(image_path) -> np.ndarray:
    return load_rgb(image_path("obama.jpg"))


def test_single_face_landmarks_box_and_pose(obama):
    height, width = obama.shape[:2]
    with FaceTracker() as tracker:
        faces = tracker.track(obama)
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, Face) and isinstance(face.pose, HeadPose)
    assert face.landmarks.shape == (478, 3) and face.landmarks.dtype == np.float32
    xy = face.landmarks[:, :2]
    assert np.all(xy >= 0) and np.all(xy[:, 0] < width) and np.all(xy[:, 1] < height)
    x0, y0, x1, y1 = face.box
    assert x0 == xy[:, 0].min() and y1 == xy[:, 1].max()
    assert np.all((xy >= [x0, y0]) & (xy <= [x1, y1]))
    assert face.size == pytest.approx(max(x1 - x0, y1 - y0))
    assert face.center == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2))
    # Eye centres about 2/5 of the face box apart.
    assert 0.25 * face.size < face.inter_ocular < 0.55 * face.size
    # z in pixel units: the nose tip is nearer the camera than the face's sides.
    assert face.landmarks[1, 2] < face.landmarks[234, 2]


def test_without_refinement_gives_468_points(obama):
    with FaceTracker(TrackerOptions(refine_landmarks=False)) as tracker:
        (face,) = tracker.track(obama)
    assert face.landmarks.shape == (468, 3)
    assert abs(face.pose.yaw) < 10 and face.pose.reprojection_error < 5


def test_two_faces_get_distinct_ids(image_path):
    with FaceTracker(TrackerOptions(static_images=True)) as tracker:
        faces = tracker.track(load_rgb(image_path("two_people.jpg")))
    assert len(faces) == 2
    assert [f.id for f in faces] == sorted({f.id for f in faces})
    assert box_iou(faces[0].box, faces[1].box) == 0.0


def test_ids_survive_mediapipe_reordering(image_path):
    """Detection on every frame returns the two faces in varying order; ids follow the faces."""
    image = load_rgb(image_path("two_people.jpg"))
    frames = [shifted(image, 4 * k - 40, 2 * k - 20) for k in range(20)]
    width = image.shape[1]
    # The raw MediaPipe order, to show this sequence really reorders the faces.
    raw_orders = set()
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4) as mesh:
        for frame in frames:
            found = mesh.process(frame).multi_face_landmarks or []
            raw_orders.add(tuple(face.landmark[1].x < 0.5 for face in found))
    assert len(raw_orders) > 1, "MediaPipe kept its order; this test no longer proves anything"

    side_of: dict[int, bool] = {}
    with FaceTracker(TrackerOptions(static_images=True)) as tracker:
        for frame in frames:
            faces = tracker.track(frame)
            assert len(faces) == 2
            for face in faces:
                side_of.setdefault(face.id, face.center[0] < width / 2)
                assert side_of[face.id] == (face.center[0] < width / 2)
    assert len(side_of) == 2  # the same two ids all along


def test_ids_stable_over_video(video_path):
    frames = video_frames(video_path("single_face.mp4"), 20)
    with FaceTracker() as tracker:
        ids = [[face.id for face in tracker.track(frame)] for frame in frames]
    assert ids == [[ids[0][0]]] * 20


def test_lost_face_comes_back_with_a_new_id(obama):
    grey = np.full_like(obama, 128)
    with FaceTracker() as tracker:
        (first,) = tracker.track(obama)
        (again,) = tracker.track(obama)
        assert tracker.track(grey) == []
        (back,) = tracker.track(obama)
    assert again.id == first.id and back.id != first.id


def test_no_face_frames(video_path):
    (frame,) = video_frames(video_path("no_face.mp4"), 1)
    with FaceTracker() as tracker:
        assert tracker.track(frame) == []
        assert tracker.track(np.full((240, 320, 3), 128, np.uint8)) == []


@pytest.mark.parametrize("shape", [(1, 1, 3), (20, 20, 3), (31, 640, 3), (480, 31, 3)])
def test_tiny_images_have_no_faces(shape):
    with FaceTracker() as tracker:
        assert tracker.track(np.zeros(shape, np.uint8)) == []


def test_other_image_layouts_are_converted(obama):
    grey = cv2.cvtColor(obama, cv2.COLOR_RGB2GRAY)
    with FaceTracker(TrackerOptions(static_images=True)) as tracker:
        assert len(tracker.track(grey)) == 1
        assert len(tracker.track(np.dstack([obama, np.full(obama.shape[:2], 255, np.uint8)]))) == 1
        with pytest.raises(ValueError, match="image"):
            tracker.track(np.zeros((10, 10, 2), np.uint8))


def test_reset_gives_fresh_ids(obama):
    with FaceTracker() as tracker:
        (before,) = tracker.track(obama)
        tracker.reset()
        (after,) = tracker.track(obama)
    assert after.id != before.id
    assert np.allclose(after.landmarks, before.landmarks, atol=2.0)


def test_ids_are_per_tracker(obama):
    with FaceTracker() as a, FaceTracker() as b:
        assert a.track(obama)[0].id == b.track(obama)[0].id


def test_closed_tracker_refuses_work(obama):
    tracker = FaceTracker()
    tracker.close()
    tracker.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        tracker.track(obama)


@pytest.mark.parametrize(
    "options, name",
    [
        ({"max_faces": 0}, "max_faces"),
        ({"max_faces": 2.0}, "max_faces"),
        ({"refine_landmarks": "yes"}, "refine_landmarks"),
        ({"min_detection_confidence": 1.5}, "min_detection_confidence"),
        ({"min_tracking_confidence": -0.1}, "min_tracking_confidence"),
        ({"min_match_iou": 0.0}, "min_match_iou"),
        ({"focal_length": 0.0}, "focal_length"),
        ({"focal_length": float("nan")}, "focal_length"),
        ({"small_faces": 1}, "small_faces"),
        ({"small_face_interval": 0}, "small_face_interval"),
        ({"small_face_interval": True}, "small_face_interval"),
    ],
)
def test_bad_options_are_rejected(options, name):
    with pytest.raises(ValueError, match=name):
        TrackerOptions(**options)
    good = TrackerOptions()
    for key, value in options.items():
        setattr(good, key, value)
    with pytest.raises(ValueError, match=name):
        FaceTracker(good)


def _wide_frame(face: np.ndarray, scale: float, at: tuple[int, int]) -> np.ndarray:
    """``face`` shrunk by ``scale`` and placed with its top-left at ``at`` in a grey
    1280x720 frame: a person far from the camera."""
    small = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((720, 1280, 3), 90, np.uint8)
    x, y = at
    frame[y : y + small.shape[0], x : x + small.shape[1]] = small
    return frame


def test_small_faces_are_found_in_a_wide_frame(obama):
    """Obama's face 74 pixels wide in 1280x720: the face mesh's own detector misses it; the
    full-range detector finds it, and the mesh on a crop around it puts its points within
    4% of the eye distance of the full-size photo's points, shrunk the same way."""
    with FaceTracker(TrackerOptions(static_images=True, small_faces=False)) as tracker:
        (reference,) = tracker.track(obama)
        frame = _wide_frame(obama, 0.25, (300, 150))
        assert tracker.track(frame) == []
    with FaceTracker(TrackerOptions(static_images=True)) as tracker:
        (face,) = tracker.track(frame)
    expected = reference.landmarks[:, :2] * 0.25 + (300, 150)
    assert 60 < face.size < 90
    error = np.linalg.norm(face.landmarks[:, :2] - expected, axis=1).mean()
    assert error < 0.04 * reference.inter_ocular * 0.25
    assert face.landmarks.shape == reference.landmarks.shape
    # z is in frame pixels, as the main mesh's: about the shrunk face's own depth range.
    depth = np.ptp(face.landmarks[:, 2]) / np.ptp(reference.landmarks[:, 2] * 0.25)
    assert 0.7 < depth < 1.4


def test_a_small_face_is_followed_and_a_big_one_kept(obama, image_path):
    """A video of a small face drifting across a wide frame beside a big one: both found on
    the first frame, each keeps its id, and the small one's points move with it."""
    big = load_rgb(image_path("single_face.jpg"))
    frames = []
    for i in range(12):
        frame = _wide_frame(obama, 0.25, (700 + 3 * i, 200 + i))
        part = cv2.resize(big, None, fx=0.9, fy=0.9, interpolation=cv2.INTER_AREA)[:600, :560]
        frame[60 : 60 + part.shape[0], 40 : 40 + part.shape[1]] = part
        frames.append(frame)
    with FaceTracker() as tracker:
        tracks = [tracker.track(frame) for frame in frames]
    assert all(len(faces) == 2 for faces in tracks)
    ids = [sorted(face.id for face in faces) for faces in tracks]
    assert ids == [ids[0]] * len(frames)
    small = [min(faces, key=lambda face: face.size) for faces in tracks]
    assert all(face.size < 100 for face in small)
    moved = np.array(small[-1].center) - np.array(small[0].center)
    assert np.allclose(moved, (33, 11), atol=4)


@pytest.mark.parametrize("size", [(640, 360), (1280, 720), (1920, 1080), (720, 1280), (1000, 999)])
def test_detection_tiles_cover_the_frame_with_overlap(size):
    width, height = size
    tiles = detection_tiles(width, height)
    covered = np.zeros((height, width), np.int32)
    for x, y, w, h in tiles:
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
        assert max(w, h) <= 720 or len(tiles) == 1
        covered[y : y + h, x : x + w] += 1
    assert covered.min() >= 1
    if len(tiles) > 1:  # neighbours overlap by a quarter of a tile: a face on a seam is whole
        assert all(w == h for _, _, w, h in tiles)
        xs = sorted({x for x, _, _, _ in tiles})
        assert all(b - a <= 0.75 * tiles[0][2] + 1 for a, b in zip(xs, xs[1:], strict=False))
    else:
        assert tiles == [(0, 0, width, height)]


def test_box_matching_is_greedy_by_iou():
    a, b = (0.0, 0.0, 10.0, 10.0), (20.0, 0.0, 30.0, 10.0)
    moved_a, moved_b = (1.0, 0.0, 11.0, 10.0), (21.0, 0.0, 31.0, 10.0)
    assert box_iou(a, a) == 1.0 and box_iou(a, b) == 0.0
    assert box_iou(a, moved_a) == pytest.approx(90 / 110)
    assert match_boxes([a, b], [moved_b, moved_a], 0.3) == [1, 0]
    assert match_boxes([a], [moved_a, (0.5, 0.0, 10.5, 10.0)], 0.3) == [None, 0]
    assert match_boxes([a, b], [(5.0, 0.0, 25.0, 10.0)], 0.3) == [None]
    assert match_boxes([], [a], 0.3) == [None] and match_boxes([a], [], 0.3) == []
