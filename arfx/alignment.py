"""The face crop the model sees: a similarity transform from eye and mouth keypoints.

The crop follows the FFHQ recipe (eye centres and mouth corners give an oriented square
around the head), scaled so hair around the head is inside. Training and run time build it
the same way from the same keypoints, so the model always sees faces framed alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .faceparts import ibug_keypoints, mesh_keypoints

CROP_SIZE = 256
CROP_SCALE = 1.25
"""Crop half-width relative to FFHQ's: 1.0 is FFHQ's framing, larger shows more hair."""
CROP_BORDERS: dict[str, int] = {
    "replicate": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
}
"""What a crop shows past the frame's edge: the edge's pixels repeated (how v1 was trained),
or the frame mirrored at its edge. A model runs with the border it was trained with (its
``crop_border`` metadata). Training with the mirrored one removed the hair hole at a frame's
top edge for v6's recipe (docs/face-model-v7-experiment) but not for v5's: the hole comes with
the context augmentation (docs/face-model-v8-experiment)."""


def crop_border_mode(border: str) -> int:
    """The OpenCV border mode of a CROP_BORDERS name."""
    mode = CROP_BORDERS.get(border)
    if mode is None:
        raise ValueError(f"unknown crop border {border!r}; valid: {', '.join(CROP_BORDERS)}")
    return mode


@dataclass(frozen=True)
class Alignment:
    """Maps frame pixels to crop pixels (``matrix``, 2x3) for a ``size`` x ``size`` crop."""

    matrix: np.ndarray
    size: int = CROP_SIZE

    @property
    def inverse(self) -> np.ndarray:
        """2x3 map from crop pixels back to frame pixels."""
        return cv2.invertAffineTransform(self.matrix)

    @property
    def scale(self) -> float:
        """Crop pixels per frame pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def angle(self) -> float:
        """In-plane rotation of the crop relative to the frame, radians (counter-clockwise
        as seen in the image: a face tilted counter-clockwise is turned upright)."""
        return float(np.arctan2(-self.matrix[1, 0], self.matrix[0, 0]))

    def crop(
        self,
        image: np.ndarray,
        *,
        interpolation: int = cv2.INTER_LINEAR,
        border: str = "replicate",
    ) -> np.ndarray:
        """The crop; pixels outside the frame repeat its edge (``border``, see CROP_BORDERS)."""
        return cv2.warpAffine(
            image,
            self.matrix,
            (self.size, self.size),
            flags=interpolation,
            borderMode=crop_border_mode(border),
        )

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)[..., :2]
        return p @ self.matrix[:, :2].T + self.matrix[:, 2]

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        inv = self.inverse
        p = np.asarray(points, dtype=np.float64)[..., :2]
        return p @ inv[:, :2].T + inv[:, 2]

    def paste(
        self,
        crop: np.ndarray,
        frame_size: tuple[int, int],
        *,
        out: np.ndarray | None = None,
        interpolation: int = cv2.INTER_LINEAR,
    ) -> np.ndarray:
        """Warp a crop-space map (HxW or HxWxC) back onto a frame of ``(height, width)``.

        Pixels outside the crop become 0. With ``out`` the result is written into it.
        """
        height, width = frame_size
        return cv2.warpAffine(
            crop,
            self.inverse,
            (width, height),
            dst=out,
            flags=interpolation,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )


def rewarp(maps: np.ndarray, source: Alignment, target: Alignment) -> np.ndarray:
    """Move crop-space maps (C, H, W) from the ``source`` crop into the ``target`` crop:
    what a face's previous-frame maps look like in this frame's crop. Zero outside."""
    to_frame = np.vstack([source.inverse, [0.0, 0.0, 1.0]])
    matrix = target.matrix @ to_frame
    size = (target.size, target.size)
    return np.stack(
        [cv2.warpAffine(m, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0) for m in maps]
    )


def align_keypoints(
    left_eye: np.ndarray,
    right_eye: np.ndarray,
    mouth_left: np.ndarray,
    mouth_right: np.ndarray,
    *,
    size: int = CROP_SIZE,
    scale: float = CROP_SCALE,
) -> Alignment:
    """FFHQ-style oriented square from eye centres and mouth corners (image coordinates)."""
    eye_avg = (left_eye + right_eye) / 2.0
    eye_to_eye = right_eye - left_eye
    mouth_avg = (mouth_left + mouth_right) / 2.0
    eye_to_mouth = mouth_avg - eye_avg
    # x points along the eye line, corrected by the eye-mouth direction (robust to either).
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    norm = np.hypot(*x)
    if not np.isfinite(norm) or norm < 1e-6:
        raise ValueError("degenerate face keypoints: eyes and mouth coincide")
    x = x / norm
    half = scale * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    centre = eye_avg + eye_to_mouth * 0.1
    source = np.array(
        [centre - half * x - half * y, centre + half * x - half * y, centre + half * x + half * y],
        dtype=np.float32,
    )
    target = np.array([[0, 0], [size, 0], [size, size]], dtype=np.float32)
    return Alignment(cv2.getAffineTransform(source, target), size)


def align_mesh(
    landmarks: np.ndarray, *, size: int = CROP_SIZE, scale: float = CROP_SCALE
) -> Alignment:
    """The crop for a face tracked with the MediaPipe mesh."""
    return align_keypoints(**mesh_keypoints(landmarks), size=size, scale=scale)


def align_ibug68(
    points: np.ndarray, *, size: int = CROP_SIZE, scale: float = CROP_SCALE
) -> Alignment:
    """The crop for a face given as 68 iBUG points (training data without a mesh)."""
    return align_keypoints(**ibug_keypoints(points), size=size, scale=scale)


def _in_plane(alignment: Alignment) -> np.ndarray:
    turn = np.eye(3)
    turn[:2, :2] = alignment.matrix[:, :2] / alignment.scale
    return turn


def rotation_to_crop(rotation: np.ndarray, alignment: Alignment) -> np.ndarray:
    """A head rotation (head -> camera, OpenCV axes) as seen in the crop.

    The crop turns the image in its plane, which is a rotation of the camera about its z
    axis; what the model learns and predicts is the pose in that turned camera.
    """
    return _in_plane(alignment) @ np.asarray(rotation, dtype=np.float64)


def rotation_to_frame(rotation: np.ndarray, alignment: Alignment) -> np.ndarray:
    """Inverse of ``rotation_to_crop``: a crop-space rotation back in frame camera axes."""
    return _in_plane(alignment).T @ np.asarray(rotation, dtype=np.float64)


MIRROR = np.diag([-1.0, 1.0, 1.0])


def mirror_rotation(rotation: np.ndarray) -> np.ndarray:
    """The head rotation of the horizontally mirrored image."""
    return MIRROR @ np.asarray(rotation, dtype=np.float64) @ MIRROR
