"""Head pose from 2D face landmarks: PnP against a canonical 3D face.

Head frame: when the person looks straight into the camera its axes coincide with the camera's
(OpenCV: x toward the image's right, y down, z away from the camera). The origin is the midpoint
of the two iris centres (landmarks 468 and 473) of the canonical face, units are millimetres,
and the iris centres are 63 mm apart.

Angles, in degrees, with ``R = Ry(-yaw) @ Rx(-pitch) @ Rz(-roll)`` (elementary right-handed
rotations about the camera's axes, R mapping head to camera coordinates):

- yaw > 0: the face turns toward the image's right (the person's own left);
- pitch > 0: the chin goes up (the face looks up);
- roll > 0: the face turns counter-clockwise in the image as the viewer sees it.

The minus signs are there because the camera's y axis points down and its z axis away from the
viewer, so the right-handed angles run the other way round from how the face is seen to move.
See docs/head-pose.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

IRIS_CENTRES = (468, 473)
_MIN_RIGID_POINTS = 6


def _rx(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def euler_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The (3, 3) head-to-camera rotation for angles in degrees (convention: module docstring)."""
    return _ry(-math.radians(yaw)) @ _rx(-math.radians(pitch)) @ _rz(-math.radians(roll))


def rotation_to_euler(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a head-to-camera rotation; inverse of euler_to_rotation.

    Pitch lies in [-90, 90]; at exactly +-90 (gimbal lock) roll is reported as 0.
    """
    r = np.asarray(rotation, dtype=np.float64)
    if r.shape != (3, 3):
        raise ValueError(f"rotation must be a (3, 3) matrix, got shape {r.shape}")
    # R = Ry(t) Rx(p) Rz(s): R[1,2] = -sin p, R[0,2] = sin t cos p, R[2,2] = cos t cos p,
    # R[1,0] = cos p sin s, R[1,1] = cos p cos s.
    p = math.asin(max(-1.0, min(1.0, -r[1, 2])))
    if math.cos(p) > 1e-9:
        t = math.atan2(r[0, 2], r[2, 2])
        s = math.atan2(r[1, 0], r[1, 1])
    else:
        t, s = math.atan2(-r[2, 0], r[0, 0]), 0.0
    return -math.degrees(t), -math.degrees(p), -math.degrees(s)


def camera_matrix(image_size: tuple[int, int], focal_length: float | None = None) -> np.ndarray:
    """Pinhole intrinsics for an image of (width, height): f = focal_length or max(w, h) pixels,
    principal point at the image centre. Webcams and phones are near f = max(w, h)."""
    width, height = _check_image_size(image_size)
    f = float(focal_length) if focal_length is not None else float(max(width, height))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


@dataclass
class HeadPose:
    """Where a head is and how it is turned, relative to the camera.

    ``rotation`` maps head-frame to camera-frame directions; ``translation`` is the camera-frame
    position of the head origin (midpoint of the iris centres) in millimetres, so a head point
    p lands at ``rotation @ p + translation``. ``reprojection_error`` is the RMS distance in
    pixels between the fitted canonical face and the landmarks PnP used (NaN if unknown).
    """

    rotation: np.ndarray
    translation: np.ndarray
    yaw: float
    pitch: float
    roll: float
    reprojection_error: float = float("nan")

    @classmethod
    def from_rotation(
        cls, rotation: np.ndarray, translation: np.ndarray, reprojection_error: float = math.nan
    ) -> HeadPose:
        """Build a pose from a rotation matrix, computing the Euler angles."""
        rotation = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
        yaw, pitch, roll = rotation_to_euler(rotation)
        return cls(
            rotation=rotation,
            translation=np.asarray(translation, dtype=np.float64).reshape(3),
            yaw=yaw,
            pitch=pitch,
            roll=roll,
            reprojection_error=float(reprojection_error),
        )

    @property
    def rvec(self) -> np.ndarray:
        """The rotation as an OpenCV Rodrigues vector (3,), radians."""
        return cv2.Rodrigues(self.rotation)[0].reshape(3)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """Head-frame points (N, 3) in mm -> camera-frame points (N, 3) in mm."""
        return np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def project(self, points: np.ndarray, camera: np.ndarray) -> np.ndarray:
        """Head-frame points (N, 3) in mm -> image pixels (N, 2) through ``camera`` intrinsics
        (see camera_matrix); how an effect anchors 3D content to the face."""
        projected, _ = cv2.projectPoints(
            np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3),
            self.rvec,
            self.translation,
            np.asarray(camera, dtype=np.float64),
            None,
        )
        return projected.reshape(-1, 2)


@dataclass
class CanonicalFace:
    """A 3D face in the head frame (mm) and which of its points are rigid enough for PnP.

    Points are in MediaPipe face-mesh order (478 with iris). The shipped face is derived from
    real data by scripts/derive_canonical_face.py; see docs/head-pose.md.
    """

    points: np.ndarray
    rigid: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        self.points = np.ascontiguousarray(self.points, dtype=np.float64)
        self.rigid = np.asarray(self.rigid, dtype=bool)
        if self.points.ndim != 2 or self.points.shape[1] != 3:
            raise ValueError(f"canonical points must be (N, 3), got shape {self.points.shape}")
        if self.rigid.shape != (len(self.points),):
            raise ValueError(
                f"canonical rigid mask must be ({len(self.points)},), got shape {self.rigid.shape}"
            )
        if not np.all(np.isfinite(self.points)):
            raise ValueError("canonical points contain NaN or infinity")
        if int(self.rigid.sum()) < _MIN_RIGID_POINTS:
            raise ValueError(
                f"canonical face needs at least {_MIN_RIGID_POINTS} rigid points for PnP, "
                f"got {int(self.rigid.sum())}"
            )

    @classmethod
    def load(cls, path: str | Path | None = None) -> CanonicalFace:
        """Read a CSV of x,y,z,rigid rows ('#' lines are comments, one header line).

        Without ``path`` the face shipped in the package (arfx/data/canonical_face.csv).
        """
        if path is None:
            text = resources.files("arfx").joinpath("data/canonical_face.csv").read_text("utf-8")
            where = "arfx/data/canonical_face.csv"
        else:
            text = Path(path).read_text(encoding="utf-8")
            where = str(path)
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if not lines or lines[0].replace(" ", "").lower() != "x,y,z,rigid":
            raise ValueError(f"{where}: expected a header line 'x,y,z,rigid'")
        try:
            table = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if table.ndim != 2 or table.shape[1] != 4:
            raise ValueError(f"{where}: expected 4 columns x,y,z,rigid in every row")
        return cls(points=table[:, :3], rigid=table[:, 3] != 0)


class PoseEstimator:
    """Fits the canonical face to 2D landmarks with PnP (only x, y are used; MediaPipe's z is a
    relative depth guess, not a measurement).

    The rigid points go through SQPnP (global, no initial guess needed) and a Levenberg-Marquardt
    refinement. Given the previous frame's pose, a second refinement starts from it and is kept
    unless the global solution fits clearly better (e.g. after a fast turn), so the pose cannot
    hop between near-equal minima from frame to frame.
    """

    def __init__(
        self, canonical: CanonicalFace | None = None, focal_length: float | None = None
    ) -> None:
        if focal_length is not None and not (math.isfinite(focal_length) and focal_length > 0):
            raise ValueError(
                f"focal_length must be a positive number of pixels, got {focal_length!r}"
            )
        self.canonical = canonical if canonical is not None else CanonicalFace.load()
        self.focal_length = focal_length

    def estimate(
        self,
        landmarks: np.ndarray,
        image_size: tuple[int, int],
        previous: HeadPose | None = None,
    ) -> HeadPose:
        """Pose of a face from its landmarks (N, 2 or 3) in pixels, N = 468 or 478.

        ``image_size`` is (width, height) of the image the landmarks are in.
        """
        points = np.asarray(landmarks, dtype=np.float64)
        n = len(self.canonical.points)
        if points.ndim != 2 or points.shape[1] not in (2, 3) or len(points) not in (468, n):
            raise ValueError(
                f"landmarks must be (468 or {n}, 2 or 3) pixel coordinates, got shape "
                f"{points.shape}"
            )
        if not np.all(np.isfinite(points[:, :2])):
            raise ValueError("landmarks contain NaN or infinity")
        camera = camera_matrix(image_size, self.focal_length)
        mask = self.canonical.rigid[: len(points)]
        object_points = np.ascontiguousarray(self.canonical.points[: len(points)][mask])
        image_points = np.ascontiguousarray(points[mask, :2])

        best = self._solve(object_points, image_points, camera, None)
        if previous is not None:
            tracked = self._solve(object_points, image_points, camera, previous)
            if tracked is not None and (best is None or tracked[2] <= 1.1 * best[2] + 0.1):
                best = tracked
        if best is None:
            raise ValueError("PnP found no pose in front of the camera for these landmarks")
        rvec, tvec, error = best
        return HeadPose.from_rotation(cv2.Rodrigues(rvec)[0], tvec, error)

    @staticmethod
    def _solve(
        object_points: np.ndarray,
        image_points: np.ndarray,
        camera: np.ndarray,
        initial: HeadPose | None,
    ) -> tuple[np.ndarray, np.ndarray, float] | None:
        """(rvec, tvec, RMS px) from a global start or ``initial``; None if no valid pose."""
        if initial is None:
            ok, rvec, tvec = cv2.solvePnP(
                object_points, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP
            )
            if not ok:
                return None
        else:
            rvec = initial.rvec.reshape(3, 1).copy()
            tvec = initial.translation.reshape(3, 1).astype(np.float64).copy()
        ok, rvec, tvec = cv2.solvePnP(
            object_points,
            image_points,
            camera,
            None,
            rvec,
            tvec,
            useExtrinsicGuess=True,
            flags=cv2.SOLVEPNP_ITERATIVE,
        )
        if not ok or not np.all(np.isfinite(tvec)) or tvec[2, 0] <= 0:
            return None
        projected, _ = cv2.projectPoints(object_points, rvec, tvec, camera, None)
        error = float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - image_points) ** 2, 1))))
        return rvec.reshape(3), tvec.reshape(3), error


def _check_image_size(image_size: tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (width, height), got {image_size!r}") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"image_size must be positive (width, height), got {image_size!r}")
    return width, height
