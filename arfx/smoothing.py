"""Temporal stabilisation: faces that hold still when the person does, without lag when they move.

Three stages, each per tracked face (keyed by the tracker's id, so a lost face starts afresh):

- ``FaceStabilizer`` filters the mesh landmarks, fits the head pose to the filtered points and
  filters its rotation on the rotation manifold (never per Euler angle). Landmarks are split
  into the face's rigid motion in the image (centre, scale, in-plane angle: One Euro or a
  constant-velocity Kalman filter) and its shape in its own frame (One Euro), because the two
  need opposite treatment: motion must follow a turning head at once, while the shape hardly
  changes then and can be smoothed hard. Speeds are in face sizes, so one setting works near
  and far.
- ``MaskStabilizer`` blends each face's model maps with the previous frame's, moved into the
  current crop by the face's motion first, with a per-pixel weight that lets real changes (a
  hand arriving) through at once and smooths only the small ones (noise).
- ``SceneCutDetector`` tells the session when the picture changes at once, so every filter
  and the tracker start afresh instead of sliding an effect from the old place to the new.

All settings are in ``StabilizerOptions``; ``docs/stability.md`` explains the measurement
(``arfx bench stability``) the defaults were chosen with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from .checks import is_number
from .errors import ArfxError
from .pose import HeadPose, PoseEstimator

LANDMARK_FILTERS = ("one_euro", "kalman", "none")


@dataclass
class StabilizerOptions:
    """Every setting of temporal stabilisation, typed and defaulted in one place.

    Speeds are measured in face sizes per second (the distance between the eye centres), so
    the same setting keeps a small distant face as still as a near one.
    """

    landmarks: str = "one_euro"
    """Filter of the face's motion: "one_euro" (adaptive: still when slow, no lag when fast),
    "kalman" (constant velocity: less lag, less still) or "none" (raw MediaPipe points)."""
    min_cutoff: float = 0.3
    """One Euro: cutoff frequency (Hz) of a still face. Lower = stiller, more lag when slow."""
    beta: float = 35.0
    """One Euro: how fast the cutoff rises with speed (Hz per face size per second)."""
    derivative_cutoff: float = 1.0
    """One Euro: cutoff (Hz) of the speed estimate that drives the adaptive cutoff."""
    shape_min_cutoff: float = 0.1
    """Cutoff (Hz) of the face's shape (landmarks in the face's own frame) when it is still."""
    shape_beta: float = 2.0
    """Cutoff rise of the shape with each point's own speed (a mouth opening)."""
    kalman_acceleration: float = 3.0
    """Kalman: acceleration noise (face sizes per second squared, standard deviation)."""
    kalman_measurement: float = 0.002
    """Kalman: noise of the measured motion (face sizes, standard deviation)."""
    pose: bool = True
    """Filter the head pose's rotation on the rotation manifold (the pose is always fitted to
    the filtered landmarks)."""
    pose_min_cutoff: float = 0.3
    """Rotation filter: cutoff (Hz) of a still head."""
    pose_beta: float = 1.5
    """Rotation filter: cutoff rise (Hz per radian per second of turning)."""
    masks: bool = True
    """Blend each face's masks with its motion-compensated previous masks."""
    mask_keep: float = 0.9
    """Weight of the previous masks where the new ones differ by less than half of
    ``mask_change`` (0 = no blending)."""
    mask_change: float = 0.5
    """A per-pixel probability change this large is taken at once (a hand, an open mouth);
    between half of it and all of it the previous masks' weight falls to zero."""
    scene_cuts: bool = True
    """Reset tracks and filters when the whole picture changes at once."""
    scene_cut_threshold: float = 0.12
    """Scene cut when a 64x36 thumbnail of the frame changes by this much at once (mean
    absolute difference, as a fraction of full scale: 0.12 is ~30 grey levels; motion in
    real video stays under ~0.04)."""
    max_jump: float = 1.0
    """A face whose landmarks jump this many face sizes in one frame restarts its filters."""
    fps: float = 30.0
    """Frame rate assumed for frames that come without timestamps."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ArfxError naming the first setting that is out of range."""
        if self.landmarks not in LANDMARK_FILTERS:
            raise ArfxError(
                f"stabilizer landmarks must be one of {LANDMARK_FILTERS}, got {self.landmarks!r}"
            )
        positive = (
            "min_cutoff",
            "derivative_cutoff",
            "shape_min_cutoff",
            "kalman_acceleration",
            "kalman_measurement",
            "pose_min_cutoff",
            "mask_change",
            "max_jump",
            "fps",
        )
        for name in positive:
            value = getattr(self, name)
            if not is_number(value) or value <= 0:
                raise ArfxError(f"stabilizer {name} must be a positive number, got {value!r}")
        for name in ("beta", "shape_beta", "pose_beta"):
            value = getattr(self, name)
            if not is_number(value) or value < 0:
                raise ArfxError(f"stabilizer {name} must be a number >= 0, got {value!r}")
        for name in ("mask_keep", "scene_cut_threshold"):
            value = getattr(self, name)
            if not is_number(value) or not 0 <= value < 1:
                raise ArfxError(f"stabilizer {name} must be a number in [0, 1), got {value!r}")
        for name in ("pose", "masks", "scene_cuts"):
            if not isinstance(getattr(self, name), bool):
                raise ArfxError(f"stabilizer {name} must be True or False")

    @classmethod
    def off(cls) -> StabilizerOptions:
        """No stabilisation at all: raw landmarks, pose and masks (for comparison)."""
        return cls(landmarks="none", pose=False, masks=False, scene_cuts=False)


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Weight of a new sample in an exponential filter with this cutoff (Hz) and period (s)."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) over an array of points.

    Values are (N, D): N points of D coordinates. Each point's cutoff rises with its own speed
    (the length of its velocity, divided by ``scale``), so one point moving (the lips) does
    not loosen the filter on the others (the still forehead).
    """

    def __init__(self, min_cutoff: float, beta: float, derivative_cutoff: float) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivative_cutoff = derivative_cutoff
        self._value: np.ndarray | None = None
        self._velocity: np.ndarray | None = None

    def reset(self) -> None:
        self._value = None
        self._velocity = None

    def __call__(self, value: np.ndarray, dt: float, scale: float = 1.0) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self._value is None or self._value.shape != value.shape:
            self._value = value.copy()
            self._velocity = np.zeros_like(value)
            return value.copy()
        velocity = (value - self._value) / dt
        self._velocity += smoothing_factor(self.derivative_cutoff, dt) * (velocity - self._velocity)
        speed = np.linalg.norm(self._velocity, axis=-1, keepdims=True) / scale
        alpha = smoothing_factor(self.min_cutoff + self.beta * speed, dt)
        self._value += alpha * (value - self._value)
        return self._value.copy()


class ConstantVelocityKalman:
    """A constant-velocity Kalman filter over every coordinate of an array of points.

    All coordinates share one motion model and one noise level (in units of ``scale``), so
    they share one covariance and one gain: the filter runs filterpy's process noise model on
    a 2x2 covariance and applies the gain to all coordinates at once.
    """

    def __init__(self, acceleration: float, measurement: float) -> None:
        self.acceleration = acceleration
        self.measurement = measurement
        self._position: np.ndarray | None = None
        self._velocity: np.ndarray | None = None
        self._covariance = np.eye(2)

    def reset(self) -> None:
        self._position = None

    def __call__(self, value: np.ndarray, dt: float, scale: float = 1.0) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self._position is None or self._position.shape != value.shape:
            self._position = value.copy()
            self._velocity = np.zeros_like(value)
            r = self.measurement**2
            self._covariance = np.array([[r, 0.0], [0.0, (self.acceleration * 0.5) ** 2]])
            return value.copy()
        assert self._velocity is not None
        # filterpy (with SciPy behind it) takes seconds to import: only this filter needs it.
        from filterpy.common import Q_discrete_white_noise

        # Predict (covariance in face-size units; the state in pixels).
        transition = np.array([[1.0, dt], [0.0, 1.0]])
        noise = Q_discrete_white_noise(dim=2, dt=dt, var=self.acceleration**2)
        covariance = transition @ self._covariance @ transition.T + noise
        position = self._position + dt * self._velocity
        # Update with the measured position.
        innovation = covariance[0, 0] + self.measurement**2
        gain = covariance[:, 0] / innovation
        residual = value - position
        self._position = position + gain[0] * residual
        self._velocity = self._velocity + gain[1] * residual
        self._covariance = covariance - np.outer(gain, covariance[0, :])
        return self._position.copy()


class LandmarkFilter:
    """Filters one face's landmarks (N, 3) as rigid motion plus shape.

    Each frame, the similarity (centre, scale, in-plane angle) that best carries the face's
    reference shape (its first frame) onto the points is its motion; the points taken back
    through that similarity are its shape. The motion, measured from every point at once, is
    filtered by ``motion`` (One Euro, with one cutoff from the speed of the whole face, or a
    constant-velocity Kalman filter); the shape by a One Euro filter per point, hard, since
    only expressions and noise change it. The z coordinate (relative depth) is shape, scaled
    with the face.
    """

    def __init__(self, options: StabilizerOptions) -> None:
        self.options = options
        self._shape = OneEuroFilter(
            options.shape_min_cutoff, options.shape_beta, options.derivative_cutoff
        )
        self._reference: np.ndarray | None = None  # complex, centred, in face sizes
        self._radius = 1.0
        self._weights = np.ones(4)
        self._measured: np.ndarray | None = None
        self._motion: np.ndarray | None = None
        self._velocity = np.zeros(4)
        self._kalman: ConstantVelocityKalman | None = None

    def __call__(self, points: np.ndarray, dt: float, scale: float) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        centre = points[:, :2].mean(axis=0)
        offsets = (points[:, 0] - centre[0]) + 1j * (points[:, 1] - centre[1])
        if self._reference is None:
            self._reference = offsets / scale
            self._radius = float(np.sqrt(np.mean(np.abs(self._reference) ** 2)))
            # Speed of each motion parameter in face sizes: pixels / scale; log-scale and
            # angle move the points by the face's radius.
            self._weights = np.array([1 / scale, 1 / scale, self._radius, self._radius])
        reference = self._reference
        similarity = np.vdot(reference, offsets) / np.vdot(reference, reference)
        measured = np.array(
            [
                centre[0],
                centre[1],
                math.log(abs(similarity)),
                math.atan2(similarity.imag, similarity.real),
            ]
        )
        if self._measured is not None:  # keep the angle continuous across +-pi
            turn = (measured[3] - self._measured[3] + math.pi) % (2 * math.pi) - math.pi
            measured[3] = self._measured[3] + turn
        self._measured = measured
        local = offsets / similarity
        shape = np.stack([local.real, local.imag, points[:, 2] / abs(similarity)], axis=1)
        shape = self._shape(shape, dt, 1.0)
        motion = self._filter_motion(measured, dt)
        moved = (shape[:, 0] + 1j * shape[:, 1]) * (
            math.exp(motion[2]) * complex(math.cos(motion[3]), math.sin(motion[3]))
        )
        out = np.empty_like(points)
        out[:, 0] = moved.real + motion[0]
        out[:, 1] = moved.imag + motion[1]
        out[:, 2] = shape[:, 2] * math.exp(motion[2])
        return out

    def _filter_motion(self, measured: np.ndarray, dt: float) -> np.ndarray:
        o = self.options
        if o.landmarks == "kalman":
            if self._kalman is None:
                self._kalman = ConstantVelocityKalman(o.kalman_acceleration, o.kalman_measurement)
            weighted = self._kalman((measured * self._weights)[None], dt)
            return weighted[0] / self._weights
        if self._motion is None:
            self._motion = measured.copy()
            return measured
        velocity = (measured - self._motion) / dt * self._weights
        self._velocity += smoothing_factor(o.derivative_cutoff, dt) * (velocity - self._velocity)
        speed = math.hypot(self._velocity[0], self._velocity[1]) + math.hypot(
            self._velocity[2], self._velocity[3]
        )
        alpha = smoothing_factor(o.min_cutoff + o.beta * speed, dt)
        self._motion = self._motion + alpha * (measured - self._motion)
        return self._motion


class RotationFilter:
    """A One Euro filter on the rotation manifold: each step moves the filtered rotation
    toward the measured one along the geodesic, by a fraction set by the turning speed."""

    def __init__(self, min_cutoff: float, beta: float, derivative_cutoff: float) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivative_cutoff = derivative_cutoff
        self._rotation: np.ndarray | None = None
        self._speed = 0.0

    def reset(self) -> None:
        self._rotation = None
        self._speed = 0.0

    def __call__(self, rotation: np.ndarray, dt: float) -> np.ndarray:
        rotation = np.asarray(rotation, dtype=np.float64)
        if self._rotation is None:
            self._rotation = rotation.copy()
            self._speed = 0.0
            return rotation.copy()
        # Tangent vector (axis * angle, radians) from the filtered rotation to the measured.
        step = cv2.Rodrigues(self._rotation.T @ rotation)[0].reshape(3)
        speed = float(np.linalg.norm(step)) / dt
        self._speed += smoothing_factor(self.derivative_cutoff, dt) * (speed - self._speed)
        alpha = smoothing_factor(self.min_cutoff + self.beta * self._speed, dt)
        self._rotation = self._rotation @ cv2.Rodrigues(alpha * step)[0]
        return self._rotation.copy()


@dataclass
class _Track:
    """One face's filter state."""

    landmarks: Any
    rotation: RotationFilter
    pose: HeadPose | None = None
    centre: np.ndarray | None = None


class FaceStabilizer:
    """Filters each tracked face's landmarks and head pose across frames.

    ``stabilize`` returns new Face objects: ``landmarks`` and ``box`` filtered, ``pose``
    fitted to the filtered points and filtered on the rotation manifold, and the tracker's
    points kept as ``raw_landmarks``. A face's first frame (a new track, or after a reset)
    comes back exactly as tracked, so nothing ever slides in from an old position.
    """

    def __init__(
        self, options: StabilizerOptions | None = None, focal_length: float | None = None
    ) -> None:
        self.options = replace(options) if options is not None else StabilizerOptions()
        self.options.validate()
        self._pose = PoseEstimator(focal_length=focal_length)
        self._tracks: dict[int, _Track] = {}

    @property
    def active(self) -> bool:
        return self.options.landmarks != "none" or self.options.pose

    def reset(self) -> None:
        """Forget every face's history (a scene cut, a new input)."""
        self._tracks = {}

    def stabilize(self, faces: Sequence[Any], dt: float, image_size: tuple[int, int]) -> list[Any]:
        """Filtered copies of ``faces`` (tracking.Face) one frame ``dt`` seconds later."""
        tracks = {}
        out = []
        for face in faces:
            track = self._tracks.get(face.id)
            scale = max(face.inter_ocular, 1.0)
            centre = face.landmarks[:, :2].mean(axis=0)
            if track is not None and track.centre is not None:
                jump = float(np.linalg.norm(centre - track.centre)) / scale
                if jump > self.options.max_jump:
                    track = None  # the tracker kept an id across a jump: start afresh
            if track is None:
                track = self._new_track()
            tracks[face.id] = track
            track.centre = centre
            landmarks = track.landmarks(face.landmarks, dt, scale)
            landmarks = landmarks.astype(np.float32)
            pose = (
                self._fit_pose(face, landmarks, track, dt, image_size) if self.active else face.pose
            )
            out.append(
                replace(
                    face,
                    landmarks=landmarks,
                    box=_box(landmarks),
                    pose=pose,
                    raw_landmarks=face.landmarks,
                )
            )
        self._tracks = tracks  # tracks not seen this frame have ended
        return out

    def _new_track(self) -> _Track:
        o = self.options
        landmarks = _Identity() if o.landmarks == "none" else LandmarkFilter(o)
        return _Track(
            landmarks=landmarks,
            rotation=RotationFilter(o.pose_min_cutoff, o.pose_beta, o.derivative_cutoff),
        )

    def _fit_pose(
        self,
        face: Any,
        landmarks: np.ndarray,
        track: _Track,
        dt: float,
        image_size: tuple[int, int],
    ) -> HeadPose:
        try:
            fitted = self._pose.estimate(landmarks, image_size, track.pose)
        except ValueError:
            fitted = face.pose
        if not self.options.pose:
            track.pose = fitted
            return fitted
        # The translation is left as fitted: it follows the filtered landmarks, which effects
        # anchored to them must agree with.
        rotation = track.rotation(fitted.rotation, dt)
        pose = HeadPose.from_rotation(rotation, fitted.translation, fitted.reprojection_error)
        track.pose = pose
        return pose


class _Identity:
    """The "none" landmark filter."""

    def __call__(self, value: np.ndarray, dt: float, scale: float = 1.0) -> np.ndarray:
        return np.asarray(value, dtype=np.float64)


class MaskStabilizer:
    """Blends each face's model maps with the previous frame's, motion-compensated.

    The maps live in the face's crop, which follows the (stabilised) face from frame to
    frame, so the previous frame's maps are already moved by the face's motion: a pixel of
    the crop is the same point of the face in both. They are mixed in with weight
    ``mask_keep`` where the two
    nearly agree, falling to zero where a pixel's probability changed by ``mask_change`` or
    more. Noise is averaged away; a hand or an opening mouth shows at once. The session
    feeds the blended maps back to the model as its context, so the model's own feedback
    loop does not drift either.
    """

    def __init__(self, options: StabilizerOptions | None = None) -> None:
        self.options = replace(options) if options is not None else StabilizerOptions()
        self._previous: dict[int, Any] = {}

    def reset(self) -> None:
        self._previous = {}

    def stabilize(self, analyses: Sequence[Any]) -> list[Any]:
        """Blended copies of ``analyses`` (model.FaceAnalysis), in the same order."""
        if not self.options.masks or self.options.mask_keep <= 0:
            return list(analyses)
        out = []
        for analysis in analyses:
            previous = self._previous.get(analysis.face_id)
            if previous is not None:
                analysis = self._blend(analysis, previous)
            out.append(analysis)
        self._previous = {a.face_id: a for a in out}
        return out

    def _blend(self, current: Any, previous: Any) -> Any:
        # current + keep * (previous - current), each difference computed once and blended
        # in place: this runs in the model's pipeline stage, the busiest one.
        # The largest |difference| is the larger of the largest and minus the smallest: no
        # ten-plane temporary for the absolute values. The weight is computed in place.
        parsing = previous.parsing - current.parsing
        occlusion = previous.occlusion - current.occlusion
        change = parsing.max(axis=0)
        np.maximum(change, -parsing.min(axis=0), out=change)
        np.maximum(change, np.abs(occlusion), out=change)
        limit = self.options.mask_change
        keep = np.subtract(limit, change, out=change)  # float32, as the maps
        keep *= 2.0
        keep /= limit
        np.clip(keep, 0, 1, out=keep)
        keep *= self.options.mask_keep
        parsing *= keep
        parsing += current.parsing
        occlusion *= keep
        occlusion += current.occlusion
        return replace(current, parsing=parsing, occlusion=occlusion)


class SceneCutDetector:
    """Detects cuts from the change of a 64x36 thumbnail between consecutive frames.

    A cut changes most of the picture at once; head motion, lighting drift and sensor noise
    change little of it. Costs one thumbnail per frame.
    """

    def __init__(self, threshold: float = 0.12) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def change(self, rgb: np.ndarray) -> float | None:
        """Mean absolute change from the previous frame in [0, 1] (None on the first)."""
        thumb = cv2.resize(rgb, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
        previous, self._previous = self._previous, thumb
        if previous is None:
            return None
        return float(np.abs(thumb - previous).mean()) / 255.0

    def __call__(self, rgb: np.ndarray) -> bool:
        """Whether ``rgb`` starts a new scene (never on the first frame)."""
        change = self.change(rgb)
        return change is not None and change > self.threshold


def _box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0 = landmarks[:, :2].min(axis=0)
    x1, y1 = landmarks[:, :2].max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)
