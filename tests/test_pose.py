"""Head pose: the angle convention, the canonical face and PnP on real MediaPipe landmarks."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from arfx.pose import (
    CanonicalFace,
    HeadPose,
    PoseEstimator,
    camera_matrix,
    euler_to_rotation,
    rotation_to_euler,
)
from arfx.tracking import FaceTracker, TrackerOptions

SIZE = (1280, 720)
NOSE_TIP, IRIS_RIGHT, IRIS_LEFT = 1, 468, 473


@pytest.fixture(scope="module")
def canonical() -> CanonicalFace:
    return CanonicalFace.load()


@pytest.fixture(scope="module")
def estimator(canonical: CanonicalFace) -> PoseEstimator:
    return PoseEstimator(canonical)


def load_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def faces_in(image: np.ndarray):
    with FaceTracker(TrackerOptions(static_images=True)) as tracker:
        return tracker.track(image)


def synthetic_landmarks(canonical, yaw, pitch, roll, translation=(20.0, -10.0, 600.0)):
    pose = HeadPose.from_rotation(euler_to_rotation(yaw, pitch, roll), np.array(translation))
    return pose.project(canonical.points, camera_matrix(SIZE))


def angle_between(a: np.ndarray, b: np.ndarray) -> float:
    cos = (np.trace(a @ b.T) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


# --- convention ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "angles", [(0, 0, 0), (30, 0, 0), (0, -25, 0), (0, 0, 40), (-35, 20, -15), (60, -50, 170)]
)
def test_euler_round_trip(angles):
    assert rotation_to_euler(euler_to_rotation(*angles)) == pytest.approx(angles, abs=1e-9)


def test_euler_matrix_is_a_rotation():
    r = euler_to_rotation(12.0, -34.0, 56.0)
    assert np.allclose(r @ r.T, np.eye(3)) and np.linalg.det(r) == pytest.approx(1.0)


def test_gimbal_lock_reports_zero_roll():
    yaw, pitch, roll = rotation_to_euler(euler_to_rotation(25.0, 90.0, 0.0))
    assert (yaw, pitch, roll) == pytest.approx((25.0, 90.0, 0.0), abs=1e-6)


def test_signs_as_the_viewer_sees_them(canonical):
    """yaw > 0 turns the nose toward the image's right, pitch > 0 lifts it, roll > 0 is CCW."""
    front = synthetic_landmarks(canonical, 0, 0, 0)
    eyes = (front[IRIS_RIGHT] + front[IRIS_LEFT]) / 2.0

    turned = synthetic_landmarks(canonical, 20, 0, 0)
    assert turned[NOSE_TIP, 0] - eyes[0] > front[NOSE_TIP, 0] - eyes[0] + 5

    up = synthetic_landmarks(canonical, 0, 20, 0)
    up_eyes = (up[IRIS_RIGHT] + up[IRIS_LEFT]) / 2.0
    assert up[NOSE_TIP, 1] - up_eyes[1] < front[NOSE_TIP, 1] - eyes[1] - 5  # y is down

    ccw = synthetic_landmarks(canonical, 0, 0, 20)
    # Counter-clockwise on screen lifts the eye on the image's right (y is down).
    assert ccw[IRIS_LEFT, 1] < ccw[IRIS_RIGHT, 1] - 5
    assert ccw[IRIS_LEFT, 0] > ccw[IRIS_RIGHT, 0]


# --- canonical face --------------------------------------------------------------------------


def test_canonical_face_shape_and_scale(canonical):
    assert canonical.points.shape == (478, 3) and canonical.rigid.shape == (478,)
    iris = canonical.points[IRIS_LEFT] - canonical.points[IRIS_RIGHT]
    assert np.linalg.norm(iris) == pytest.approx(63.0, abs=0.01)
    midpoint = (canonical.points[IRIS_LEFT] + canonical.points[IRIS_RIGHT]) / 2
    assert np.allclose(midpoint, 0, atol=0.01)
    # Head frame = camera frame for a frontal face: right eye of the image at +x, chin down,
    # nose tip nearer the camera (smaller z) than the eyes.
    assert iris[0] > 60
    assert canonical.points[152, 1] > canonical.points[NOSE_TIP, 1] > 0
    assert canonical.points[NOSE_TIP, 2] < -15


def test_canonical_face_is_bilaterally_symmetric(canonical):
    points = canonical.points
    mirrored = points * np.array([-1.0, 1.0, 1.0])
    distances = np.linalg.norm(points[:, None] - mirrored[None], axis=2)
    partner = distances.argmin(axis=1)
    assert distances.min(axis=1).max() < 0.005  # rounding of the CSV only
    assert np.array_equal(partner[partner], np.arange(478))
    assert np.array_equal(canonical.rigid, canonical.rigid[partner])


def test_rigid_points_exclude_mouth_jaw_and_iris(canonical):
    rigid = canonical.rigid
    assert 60 <= rigid.sum() <= 240
    assert not rigid[468:].any()
    lips = [0, 13, 14, 17, 61, 291, 78, 308]
    assert not rigid[lips].any() and not rigid[152]  # chin
    assert np.all(canonical.points[rigid, 1] <= canonical.points[2, 1] + 1e-6)  # above nose base


def test_canonical_load_rejects_bad_files(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("# comment\na,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="header"):
        CanonicalFace.load(path)
    path.write_text("x,y,z,rigid\n1,2,3\n")
    with pytest.raises(ValueError, match="4 columns"):
        CanonicalFace.load(path)
    with pytest.raises(ValueError, match="rigid"):
        CanonicalFace(points=np.zeros((10, 3)), rigid=np.zeros(10, bool))


# --- PnP on synthetic landmarks --------------------------------------------------------------


@pytest.mark.parametrize(
    "angles", [(0, 0, 0), (25, 0, 0), (-25, 10, 0), (10, -20, 15), (-40, 15, -30), (5, 30, 60)]
)
def test_synthetic_pose_is_recovered(canonical, estimator, angles):
    rng = np.random.default_rng(0)
    landmarks = synthetic_landmarks(canonical, *angles) + rng.normal(0.0, 0.5, (478, 2))
    pose = estimator.estimate(landmarks, SIZE)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx(angles, abs=1.0)
    assert pose.translation == pytest.approx([20.0, -10.0, 600.0], rel=0.02, abs=2.0)
    assert pose.reprojection_error < 1.0


def test_bad_previous_pose_does_not_trap_the_fit(canonical, estimator):
    landmarks = synthetic_landmarks(canonical, 30, -10, 5)
    wrong = HeadPose.from_rotation(euler_to_rotation(-50, 40, -60), np.array([0.0, 0.0, 300.0]))
    pose = estimator.estimate(landmarks, SIZE, previous=wrong)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((30, -10, 5), abs=0.1)


def test_mirrored_landmarks_give_mirrored_pose(canonical, estimator):
    """Exact symmetry of the estimator: mirror the landmarks (and swap left/right points)."""
    points = canonical.points
    partner = np.linalg.norm(points[:, None] - (points * [-1.0, 1.0, 1.0])[None], axis=2).argmin(
        axis=1
    )
    landmarks = synthetic_landmarks(canonical, 20, 10, -12)
    mirrored = landmarks[partner] * [-1.0, 1.0] + [SIZE[0], 0.0]
    a, b = estimator.estimate(landmarks, SIZE), estimator.estimate(mirrored, SIZE)
    assert (b.yaw, b.pitch, b.roll) == pytest.approx((-a.yaw, a.pitch, -a.roll), abs=0.05)


def test_468_landmarks_and_focal_length(canonical):
    estimator = PoseEstimator(canonical, focal_length=900.0)
    pose = HeadPose.from_rotation(euler_to_rotation(10, 5, -5), np.array([0.0, 0.0, 500.0]))
    landmarks = pose.project(canonical.points, camera_matrix(SIZE, 900.0))[:468]
    fitted = estimator.estimate(landmarks, SIZE)
    assert angle_between(fitted.rotation, pose.rotation) < 0.01
    assert fitted.translation == pytest.approx(pose.translation, abs=0.05)
    assert fitted.rvec == pytest.approx(pose.rvec, abs=1e-3)
    assert fitted.to_camera(np.zeros((1, 3)))[0] == pytest.approx(fitted.translation)


def test_estimate_rejects_bad_input(estimator):
    with pytest.raises(ValueError, match="landmarks"):
        estimator.estimate(np.zeros((100, 2)), SIZE)
    with pytest.raises(ValueError, match="NaN"):
        estimator.estimate(np.full((478, 2), np.nan), SIZE)
    with pytest.raises(ValueError, match="image_size"):
        estimator.estimate(np.zeros((478, 2)), (0, 720))
    with pytest.raises(ValueError, match="focal_length"):
        PoseEstimator(focal_length=-1.0)
    with pytest.raises(ValueError, match="rotation"):
        rotation_to_euler(np.eye(2))


# --- real faces ------------------------------------------------------------------------------


def test_frontal_face_has_small_angles(image_path):
    image = load_rgb(image_path("obama.jpg"))
    (face,) = faces_in(image)
    pose = face.pose
    assert abs(pose.yaw) < 10 and abs(pose.roll) < 10
    # The face sits well above the image centre, so facing the camera means looking down
    # toward it: pitch in camera axes is about -14. Relative to the line of sight it is frontal.
    assert abs(pose.pitch) < 20
    forward = -pose.rotation[:, 2]
    to_camera = -pose.translation / np.linalg.norm(pose.translation)
    assert math.degrees(math.acos(float(forward @ to_camera))) < 10
    assert 300 < pose.translation[2] < 2000  # mm: a plausible distance for a portrait


def test_horizontal_flip_negates_yaw_and_roll(image_path):
    for name in ("obama.jpg", "two_people.jpg"):
        image = load_rgb(image_path(name))
        width = image.shape[1]
        faces, flipped = faces_in(image), faces_in(cv2.flip(image, 1))
        assert len(faces) == len(flipped)
        for face in faces:
            mirror_x = width - face.center[0]
            twin = min(flipped, key=lambda f, x=mirror_x: abs(f.center[0] - x))
            a, b = face.pose, twin.pose
            # MediaPipe is not exactly mirror-equivariant: a few degrees of slack.
            assert b.yaw == pytest.approx(-a.yaw, abs=5)
            assert b.roll == pytest.approx(-a.roll, abs=5)
            assert b.pitch == pytest.approx(a.pitch, abs=5)
            if abs(a.yaw) > 10:  # a clearly turned face really changes side
                assert np.sign(b.yaw) == -np.sign(a.yaw)
            if abs(a.roll) > 8:
                assert np.sign(b.roll) == -np.sign(a.roll)


def test_counter_clockwise_image_rotation_is_positive_roll(image_path):
    image = load_rgb(image_path("obama.jpg"))
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), 20.0, 1.0)  # +20 = CCW
    rotated = cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
    (before,), (after,) = faces_in(image), faces_in(rotated)
    assert after.pose.roll == pytest.approx(before.pose.roll + 20.0, abs=3.0)
    # Turning the image about its centre turns the camera about its axis: the relative
    # rotation is a pure +20 deg roll.
    relative = after.pose.rotation @ before.pose.rotation.T
    assert rotation_to_euler(relative) == pytest.approx((0.0, 0.0, 20.0), abs=3.0)


def test_reprojection_error_is_small_on_real_faces(image_path):
    for name in ("obama.jpg", "biden.jpg", "two_people.jpg", "single_face.jpg", "sergey.png"):
        for face in faces_in(load_rgb(image_path(name))):
            # Residual = the person's face minus the average face: ~1% of the eye distance.
            assert face.pose.reprojection_error < 0.04 * face.inter_ocular, name
