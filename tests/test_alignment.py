"""The model's face crop: round trips between frame and crop coordinates."""

from __future__ import annotations

import cv2
import numpy as np

from arfx.alignment import (
    align_ibug68,
    align_mesh,
    mirror_rotation,
    rotation_to_crop,
    rotation_to_frame,
)
from arfx.faceparts import IBUG_FLIP, MESH_TO_IBUG68
from arfx.pose import euler_to_rotation, rotation_to_euler
from arfx.tracking import FaceTracker, TrackerOptions


def _face(path):
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    with FaceTracker(TrackerOptions(static_images=True, max_faces=1)) as tracker:
        return image, tracker.track(image)[0]


def test_crop_round_trip_and_paste(image_path) -> None:
    image, face = _face(image_path("two_people.jpg"))
    alignment = align_mesh(face.landmarks)
    points = face.landmarks[:, :2]
    assert np.allclose(alignment.to_frame(alignment.to_crop(points)), points, atol=1e-9)
    crop = alignment.crop(image)
    assert crop.shape == (256, 256, 3)
    # The face is centred and upright in the crop: eyes level, nose in the middle third.
    eyes = alignment.to_crop(face.landmarks[[33, 263], :2])
    assert abs(eyes[0, 1] - eyes[1, 1]) < 3 and 60 < eyes[0, 0] < eyes[1, 0] < 196
    # A map drawn in the crop lands back on the frame where the face is.
    marker = np.zeros((256, 256), np.uint8)
    nose = alignment.to_crop(face.landmarks[[1], :2])[0]
    cv2.circle(marker, (int(nose[0]), int(nose[1])), 6, 255, -1)
    pasted = alignment.paste(marker, image.shape[:2])
    ys, xs = np.nonzero(pasted > 127)
    assert np.hypot(xs.mean() - face.landmarks[1, 0], ys.mean() - face.landmarks[1, 1]) < 2


def test_ibug_and_mesh_crops_agree(image_path) -> None:
    _, face = _face(image_path("obama.jpg"))
    from_mesh = align_mesh(face.landmarks)
    from_68 = align_ibug68(face.landmarks[MESH_TO_IBUG68])
    corners = np.array([[0, 0], [256, 256]], float)
    gap = np.abs(from_mesh.to_frame(corners) - from_68.to_frame(corners)).max()
    assert gap < 0.1 * 256 / from_mesh.scale


def test_rotation_round_trip_and_roll_removed(image_path) -> None:
    _, face = _face(image_path("two_people.jpg"))
    alignment = align_mesh(face.landmarks)
    crop_rotation = rotation_to_crop(face.pose.rotation, alignment)
    assert np.allclose(rotation_to_frame(crop_rotation, alignment), face.pose.rotation)
    _, _, roll = rotation_to_euler(crop_rotation)
    assert abs(roll) < 4  # the crop is upright, so little roll is left


def test_mirror_rotation_negates_yaw_and_roll() -> None:
    rotation = euler_to_rotation(20.0, 5.0, -10.0)
    yaw, pitch, roll = rotation_to_euler(mirror_rotation(rotation))
    assert np.allclose((yaw, pitch, roll), (-20.0, 5.0, 10.0), atol=1e-6)


def test_ibug_flip_is_an_involution() -> None:
    assert np.array_equal(IBUG_FLIP[IBUG_FLIP], np.arange(68))
    assert IBUG_FLIP[36] == 45 and IBUG_FLIP[48] == 54 and IBUG_FLIP[8] == 8
