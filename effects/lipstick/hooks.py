"""Per-frame uniforms for the lipstick shader, per face: how bright the lips are, where the
light falls on them, and the mouth's frame, box and lip contours.

Everything that is the same for a whole face is computed here once rather than in every
pixel: the shader runs for every pixel of the frame on a software renderer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from arfx.compositor import MAX_FACES
from arfx.effect import FrameContext
from arfx.masks import LIPS_INNER_LOWER, LIPS_INNER_UPPER, LIPS_OUTER_LOWER, LIPS_OUTER_UPPER

LIP_SAMPLES = 17  # must equal LIP_SAMPLES in lipstick.frag
_SAMPLE_U = np.linspace(-1.0, 1.0, LIP_SAMPLES)
_CONTOURS = (LIPS_OUTER_UPPER, LIPS_OUTER_LOWER, LIPS_INNER_UPPER, LIPS_INNER_LOWER)
_OUTER = np.array(sorted(set(LIPS_OUTER_UPPER) | set(LIPS_OUTER_LOWER)))
# sRGB code value -> linear light, so luminance is averaged where light adds up.
_TO_LINEAR = np.where(
    np.arange(256) / 255.0 <= 0.04045,
    np.arange(256) / 255.0 / 12.92,
    ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
).astype(np.float32)
_REC709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
_TYPICAL_LIP_LUMA = 0.12
# The box the shader draws in: the lips grown by this much of the mouth width (the feather
# reaches 0.06 of it, the widest liner 0.05).
_BOX_MARGIN = 0.15
# Where on the lower lip (u, t) a light from above and in front lands; the measured spot is
# pulled halfway toward it, since lip colour varies too, not only light.
_DEFAULT_SPOT = np.array([0.0, 0.3])
_SPOT_LIMITS = (np.array([-0.45, 0.05]), np.array([0.45, 0.6]))


def uniforms(frame: FrameContext, params: Mapping[str, Any]) -> dict[str, Any]:
    lips = frame.masks["lips"]
    height, width = lips.shape
    luma = np.full(MAX_FACES, _TYPICAL_LIP_LUMA, dtype=np.float32)
    peak = np.full(MAX_FACES, 2 * _TYPICAL_LIP_LUMA, dtype=np.float32)
    mouth_width = np.zeros(MAX_FACES, dtype=np.float32)
    boxes = np.zeros((MAX_FACES, 4), dtype=np.float32)
    frames = np.zeros((MAX_FACES, 4), dtype=np.float32)
    halves = np.tile(lip_normal(*_DEFAULT_SPOT, upper=False), (MAX_FACES, 1)).astype(np.float32)
    turns = np.zeros((MAX_FACES, 2), dtype=np.float32)
    rows = np.zeros((MAX_FACES, LIP_SAMPLES, 4), dtype=np.float32)
    for i, face in enumerate(frame.faces[:MAX_FACES]):
        landmarks = np.asarray(face.landmarks, dtype=np.float64)[:, :2]
        mouth = Mouth(landmarks)
        mouth_width[i] = 2.0 * mouth.half
        frames[i] = (*mouth.centre, *mouth.ex)
        rows[i] = np.stack([mouth.contour(c, _SAMPLE_U) for c in _CONTOURS], axis=-1)
        pose = getattr(face, "pose", None)
        if pose is not None:
            turns[i] = np.asarray(pose.rotation, dtype=np.float64)[:2, 2]
        points = landmarks[_OUTER]
        grow = _BOX_MARGIN * mouth_width[i] + 2.0
        boxes[i] = (*(points.min(axis=0) - grow), *(points.max(axis=0) + grow))
        x0, y0 = np.floor(points.min(axis=0)).astype(int)
        x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            continue
        weight = lips[y0:y1, x0:x1].astype(np.float32) / 255.0
        total = float(weight.sum())
        if total < 1.0:
            continue
        linear = _TO_LINEAR[frame.image[y0:y1, x0:x1]] @ _REC709
        luma[i] = max(float((linear * weight).sum() / total), 1e-3)
        solid = weight > 0.5
        peak[i] = float(np.percentile(linear[solid], 99)) if solid.any() else luma[i]
        spot = _light_spot(mouth, linear, weight, (x0, y0), luma[i])
        halves[i] = lip_normal(*spot, upper=False)
    return {
        "u_lip_luma": luma,
        "u_lip_peak": peak,
        "u_mouth_width": mouth_width,
        "u_lip_box": boxes,
        "arfx_draw_boxes": boxes,  # nothing is drawn outside them: the compositor skips it
        "u_mouth": frames,
        "u_half_vector": halves,
        "u_turn": turns,
        "u_lip_rows": rows.reshape(-1, 4),
    }


class Mouth:
    """The shader's mouth frame: origin between the corners (landmarks 61 and 291), x toward
    291, y perpendicular (down on an upright face), in half mouth widths."""

    def __init__(self, landmarks: np.ndarray) -> None:
        a, b = landmarks[61], landmarks[291]
        self.landmarks = landmarks
        self.half = max(float(np.linalg.norm(b - a)) / 2.0, 1.0)
        self.centre = (a + b) / 2.0
        self.ex = (b - a) / (2.0 * self.half)
        self.ey = np.array([-self.ex[1], self.ex[0]])

    def to_mouth(self, points: np.ndarray) -> np.ndarray:
        d = (points - self.centre) / self.half
        return np.stack([d @ self.ex, d @ self.ey], axis=-1)

    def contour(self, chain: tuple[int, ...], u: np.ndarray) -> np.ndarray:
        """y of a lip contour (corner to corner) at mouth x = ``u``; its ends beyond them."""
        q = self.to_mouth(self.landmarks[list(chain)])
        return np.interp(u, np.maximum.accumulate(q[:, 0]), q[:, 1])


def lip_normal(u: float, t: float, *, upper: bool) -> np.ndarray:
    """The shader's lip_normal: the lip surface's direction at (u, t), z toward the camera."""
    tilt = np.interp(t, [0.0, 1.0], [0.9, -0.6] if upper else [-0.8, 1.1])
    turn = 1.1 * np.arcsin(np.clip(u, -0.95, 0.95))
    normal = np.array([np.tan(turn), np.tan(np.clip(tilt, -1.3, 1.3)), 1.0])
    return normal / np.linalg.norm(normal)


def _light_spot(
    mouth: Mouth,
    linear: np.ndarray,
    weight: np.ndarray,
    origin: tuple[int, int],
    mean: float,
) -> np.ndarray:
    """(u, t) of the bright part of the lower lip: where a gloss highlight agrees with the
    photo's light, since the lower lip faces up, forward and down in turn.

    A weighted mean (luminance to the 4th power) rather than the brightest pixels keeps the
    spot from jumping between video frames.
    """
    rows, cols = np.indices(linear.shape, dtype=np.float64)
    pixels = np.stack([cols + origin[0] + 0.5, rows + origin[1] + 0.5], axis=-1)
    q = mouth.to_mouth(pixels.reshape(-1, 2)).reshape(*linear.shape, 2)
    u, v = q[..., 0], q[..., 1]
    inner_upper = mouth.contour(LIPS_INNER_UPPER, u)
    inner_lower = mouth.contour(LIPS_INNER_LOWER, u)
    outer = mouth.contour(LIPS_OUTER_LOWER, u)
    t = (v - inner_lower) / np.maximum(outer - inner_lower, 0.02)
    lower = (v > (inner_upper + inner_lower) / 2.0) & (t >= 0.0) & (t <= 1.0)
    w = weight * lower * (linear / mean) ** 4
    total = float(w.sum())
    if total <= 0.0:
        return _DEFAULT_SPOT
    spot = np.array([(w * u).sum(), (w * t).sum()]) / total
    return np.clip((spot + _DEFAULT_SPOT) / 2.0, *_SPOT_LIMITS)
