"""The stabilisation filters on their own: known signals in, known behaviour out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arfx.alignment import align_keypoints
from arfx.errors import ArfxError
from arfx.model import FaceAnalysis
from arfx.pose import euler_to_rotation
from arfx.smoothing import (
    ConstantVelocityKalman,
    LandmarkFilter,
    MaskStabilizer,
    OneEuroFilter,
    RotationFilter,
    SceneCutDetector,
    StabilizerOptions,
)

DT = 1.0 / 30.0


def _shape(seed: int = 0) -> np.ndarray:
    """A face-sized cloud of 478 points (N, 3) around (320, 240), inter-ocular ~ 60 px."""
    rng = np.random.default_rng(seed)
    points = np.zeros((478, 3))
    points[:, :2] = rng.normal(0.0, 45.0, (478, 2)) + (320.0, 240.0)
    points[:, 2] = rng.normal(0.0, 10.0, 478)
    return points


def _similarity(points: np.ndarray, shift, angle_deg: float = 0.0, scale: float = 1.0):
    centre = points[:, :2].mean(axis=0)
    a = math.radians(angle_deg)
    rotation = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    out = points.copy()
    out[:, :2] = (points[:, :2] - centre) @ rotation.T + centre + np.asarray(shift)
    out[:, 2] = points[:, 2] * scale
    return out


def test_options_name_the_bad_setting() -> None:
    with pytest.raises(ArfxError, match="landmarks"):
        StabilizerOptions(landmarks="median")
    with pytest.raises(ArfxError, match="min_cutoff"):
        StabilizerOptions(min_cutoff=0)
    with pytest.raises(ArfxError, match="mask_keep"):
        StabilizerOptions(mask_keep=1.0)
    with pytest.raises(ArfxError, match="scene_cuts"):
        StabilizerOptions(scene_cuts="yes")  # type: ignore[arg-type]
    off = StabilizerOptions.off()
    assert (off.landmarks, off.pose, off.masks, off.scene_cuts) == ("none", False, False, False)


def test_one_euro_is_still_on_noise_and_quick_on_a_jump() -> None:
    rng = np.random.default_rng(1)
    still = OneEuroFilter(min_cutoff=0.3, beta=6.0, derivative_cutoff=1.0)
    # MediaPipe-like noise: 0.3 px on a 60 px face (0.5% of its size).
    out = [still(rng.normal(0.0, 0.3, (5, 2)), DT, 60.0) for _ in range(200)]
    raw_motion = 0.3 * math.sqrt(2.0)  # frame-to-frame std of the raw noise
    motion = np.std(np.diff(np.array(out[50:]), axis=0))
    assert motion < 0.3 * raw_motion

    moving = OneEuroFilter(min_cutoff=0.3, beta=6.0, derivative_cutoff=1.0)
    for t in range(60):  # 2 face sizes per second: the cutoff opens, the lag stays small
        value = moving(np.full((1, 2), 2.0 * 60.0 * t * DT), DT, 60.0)
    assert abs(value[0, 0] - 2.0 * 60.0 * 59 * DT) < 0.2 * 60.0


def test_kalman_follows_constant_velocity_without_lag() -> None:
    kalman = ConstantVelocityKalman(acceleration=3.0, measurement=0.002)
    for t in range(120):
        value = kalman(np.array([[5.0 * t, -3.0 * t]]), DT, 60.0)
    np.testing.assert_allclose(value, [[5.0 * 119, -3.0 * 119]], atol=0.05)


def test_landmark_filter_separates_motion_from_shape() -> None:
    shape = _shape()
    rng = np.random.default_rng(2)
    options = StabilizerOptions()

    still = LandmarkFilter(options)
    outs = [still(shape + rng.normal(0.0, 0.5, shape.shape), DT, 60.0) for _ in range(90)]
    jitter = np.sqrt(np.mean(np.sum(np.diff(np.array(outs[30:])[:, :, :2], axis=0) ** 2, -1)))
    assert jitter < 0.25 * math.sqrt(2 * 2 * 0.25)  # raw: sqrt(2 coords * 2 * sigma^2)

    # A rigid turn and drift: the filtered shape stays the face's shape (no smearing of
    # the points against each other) and the points keep up with the motion.
    turning = LandmarkFilter(options)
    for t in range(60):
        truth = _similarity(shape, (3.0 * t, 1.0 * t), angle_deg=0.8 * t, scale=1 + 0.002 * t)
        out = turning(truth, DT, 60.0)
    error = np.linalg.norm(out[:, :2] - truth[:, :2], axis=1)
    assert error.mean() < 2.0, error.mean()  # < 3% of the 60 px face size at 90 px/s, 24 deg/s
    assert np.all(np.isfinite(out))


def test_rotation_filter_stays_on_the_manifold_and_converges() -> None:
    rng = np.random.default_rng(3)
    target = euler_to_rotation(20.0, -10.0, 5.0)
    flt = RotationFilter(min_cutoff=0.3, beta=1.5, derivative_cutoff=1.0)
    flt(euler_to_rotation(0.0, 0.0, 0.0), DT)
    for _ in range(300):
        noise = euler_to_rotation(*rng.normal(0.0, 0.3, 3))
        out = flt(noise @ target, DT)
    np.testing.assert_allclose(out @ out.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(out) == pytest.approx(1.0)
    angle = math.degrees(math.acos(min(1.0, (np.trace(out.T @ target) - 1) / 2)))
    assert angle < 0.5
    # Across the +-180 degree yaw seam there is no detour through zero.
    seam = RotationFilter(min_cutoff=0.3, beta=1.5, derivative_cutoff=1.0)
    seam(euler_to_rotation(179.0, 0.0, 0.0), DT)
    out = seam(euler_to_rotation(-179.0, 0.0, 0.0), DT)
    step = math.degrees(
        math.acos(min(1.0, (np.trace(out.T @ euler_to_rotation(179.0, 0, 0)) - 1) / 2))
    )
    assert step <= 2.0


def _analysis(face_id: int, lips: np.ndarray, shift: float = 0.0) -> FaceAnalysis:
    alignment = align_keypoints(
        np.array([100.0 + shift, 100.0]),
        np.array([160.0 + shift, 100.0]),
        np.array([110.0 + shift, 170.0]),
        np.array([150.0 + shift, 170.0]),
    )
    parsing = np.zeros((10, 256, 256), np.float32)
    parsing[5] = lips
    parsing[0] = 1.0 - lips
    return FaceAnalysis(
        face_id=face_id,
        alignment=alignment,
        parsing=parsing,
        occlusion=np.zeros((256, 256), np.float32),
        landmarks68=np.zeros((68, 2)),
        rotation=np.eye(3),
    )


def test_mask_stabilizer_averages_noise_and_passes_real_changes() -> None:
    rng = np.random.default_rng(4)
    lips = np.zeros((256, 256), np.float32)
    lips[150:190, 90:170] = 1.0
    stabilizer = MaskStabilizer(StabilizerOptions())
    outs = []
    for _ in range(40):
        noisy = np.clip(lips + rng.normal(0.0, 0.05, lips.shape), 0, 1).astype(np.float32)
        outs.append(stabilizer.stabilize([_analysis(1, noisy)])[0].parsing[5])
    assert np.std(np.diff(np.array(outs[10:]), axis=0)) < 0.3 * np.std(
        np.diff(np.array([lips + rng.normal(0, 0.05, lips.shape) for _ in range(3)]), axis=0)
    )
    # Probabilities stay probabilities.
    assert np.allclose(stabilizer.stabilize([_analysis(1, lips)])[0].parsing.sum(axis=0), 1.0)
    # A hand arriving (the lips gone at once) shows in the same frame.
    gone = stabilizer.stabilize([_analysis(1, np.zeros_like(lips))])[0].parsing[5]
    assert gone[150:190, 90:170].max() == 0.0
    # Another face id starts from nothing; the first face's history does not leak.
    other = stabilizer.stabilize([_analysis(2, lips)])[0].parsing[5]
    np.testing.assert_array_equal(other, lips)


def test_mask_stabilizer_weight_follows_the_largest_change_either_way() -> None:
    """Each pixel keeps mask_keep * clip(2 (mask_change - d) / mask_change, 0, 1) of the
    previous maps, d its largest absolute change over the classes and the occlusion: a
    probability that fell counts as much as one that rose."""
    options = StabilizerOptions()
    changes = np.array([0.0, 0.1, -0.1, 0.2, -0.3, 0.45, -0.6], np.float32)
    before = np.full((256, 256), 0.5, np.float32)
    after = before.copy()
    after[0, : len(changes)] = before[0, : len(changes)] - changes  # previous - current = d
    first, second = _analysis(1, before), _analysis(1, after)
    second.parsing[0] = first.parsing[0]  # only the lips class changes: d is its own change
    stabilizer = MaskStabilizer(options)
    stabilizer.stabilize([first])
    out = stabilizer.stabilize([second])[0].parsing[5][0, : len(changes)]
    d = np.abs(changes.astype(np.float64))
    keep = options.mask_keep * np.clip(2 * (options.mask_change - d) / options.mask_change, 0, 1)
    expected = after[0, : len(changes)] + keep * changes
    np.testing.assert_allclose(out, expected, atol=1e-6)
    occluded = _analysis(1, after)
    occluded.occlusion[0, 0] = 0.6  # the occlusion changed by 0.6 there: nothing kept
    stabilizer.stabilize([_analysis(1, before)])
    assert stabilizer.stabilize([occluded])[0].parsing[5][0, 0] == after[0, 0]


def test_mask_stabilizer_moves_the_previous_masks_with_the_face() -> None:
    lips = np.zeros((256, 256), np.float32)
    lips[150:190, 90:170] = 1.0
    stabilizer = MaskStabilizer(StabilizerOptions(mask_change=0.99))
    stabilizer.stabilize([_analysis(1, lips)])
    # The face moved 8 px to the right and its crop with it: the model sees the same lips
    # at the same crop pixels, and the blend must not smear them by the motion.
    moved = stabilizer.stabilize([_analysis(1, lips, shift=8.0)])[0]
    np.testing.assert_array_equal(moved.parsing[5], lips)
    # In frame space the blended lips follow the face: 8 px to the right.
    before = _analysis(1, lips).alignment.to_frame(np.array([[130.0, 170.0]]))
    after = moved.alignment.to_frame(np.array([[130.0, 170.0]]))
    np.testing.assert_allclose(after - before, [[8.0, 0.0]], atol=1e-3)


def test_scene_cut_detector(image_path) -> None:
    import cv2

    obama = cv2.cvtColor(cv2.imread(str(image_path("obama.jpg"))), cv2.COLOR_BGR2RGB)
    biden = cv2.cvtColor(cv2.imread(str(image_path("biden.jpg"))), cv2.COLOR_BGR2RGB)
    biden = cv2.resize(biden, (obama.shape[1], obama.shape[0]))
    detector = SceneCutDetector(StabilizerOptions().scene_cut_threshold)
    rng = np.random.default_rng(5)
    assert not detector(obama)
    for _ in range(5):  # noise, a small shift and a brightness change are not cuts
        noisy = np.clip(obama + rng.normal(0, 3, obama.shape), 0, 255).astype(np.uint8)
        assert not detector(np.roll(noisy, 12, axis=1))
    assert not detector(np.clip(obama * 1.1, 0, 255).astype(np.uint8))
    assert detector(biden)
    assert not detector(biden)
    detector.reset()
    assert not detector(obama)


def _realistic() -> np.ndarray:
    """The canonical face projected into a 640x480 frame (N, 3): landmarks PnP can fit."""
    from arfx.pose import CanonicalFace, HeadPose, camera_matrix

    canonical = CanonicalFace.load()
    pose = HeadPose.from_rotation(np.eye(3), np.array([0.0, 0.0, 600.0]))
    points = np.zeros((len(canonical.points), 3), np.float32)
    points[:, :2] = pose.project(canonical.points, camera_matrix((640, 480)))
    return points


def test_a_new_face_track_starts_from_its_own_points() -> None:
    from arfx.pose import PoseEstimator
    from arfx.smoothing import FaceStabilizer
    from arfx.tracking import Face

    stabilizer = FaceStabilizer(StabilizerOptions())
    shape = _realistic()
    pose = PoseEstimator().estimate(shape, (640, 480))

    def face(face_id: int, points: np.ndarray) -> Face:
        return Face(id=face_id, landmarks=points, box=(0, 0, 1, 1), pose=pose)

    stabilizer.stabilize([face(1, shape)], DT, (640, 480))
    size = face(1, shape).inter_ocular
    far = _similarity(shape, (2.0 * size, 0.0)).astype(np.float32)
    # Same id, but two face sizes away in one frame: the filter restarts there.
    jumped = stabilizer.stabilize([face(1, far)], DT, (640, 480))[0]
    np.testing.assert_allclose(jumped.landmarks, far, atol=1e-3)
    # A new id starts exactly at its own points, with a pose fitted to them.
    fresh = stabilizer.stabilize([face(2, shape)], DT, (640, 480))[0]
    np.testing.assert_allclose(fresh.landmarks, shape, atol=1e-3)
    np.testing.assert_array_equal(fresh.raw_landmarks, shape)
    assert abs(fresh.pose.yaw) < 1.0 and abs(fresh.pose.pitch) < 1.0
