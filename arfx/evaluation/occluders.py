"""Synthetic occluders for ``arfx eval parsing --occluder``: a hand, or a textured shape,
pasted over the mouth after tracking, as in a video whose track is held while a hand passes.
The same image always gets the same occluder (seeded by its name)."""

from __future__ import annotations

import hashlib
import math

import cv2
import numpy as np

from .common import THRESHOLD

__all__ = ["OCCLUDER_KINDS", "occluder_kind", "occluder_seed", "synthetic_occluder"]

OCCLUDER_KINDS = ("hand", "ellipse", "rectangle")
"""What ``synthetic_occluder`` draws, in the order its first random draw picks from."""


def occluder_seed(name: str) -> int:
    """A fixed seed per image name: the same occluder on every run and machine."""
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16)


def occluder_kind(seed: int) -> str:
    """Which of ``OCCLUDER_KINDS`` ``synthetic_occluder`` draws for ``seed``."""
    return OCCLUDER_KINDS[_draw_kind(np.random.default_rng(seed))]


def _draw_kind(rng: np.random.Generator) -> int:
    return int(rng.integers(len(OCCLUDER_KINDS)))


def synthetic_occluder(
    image: np.ndarray, landmarks: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``image`` with an occluder over part of the mouth, and its pixels (bool).

    Sized and placed from the mesh ``landmarks`` (mouth corners, lip top and bottom); ``seed``
    picks one of: a skin-toned hand whose fingers reach across the mouth from one side (the
    hard case: the colour of the face), a textured ellipse or a textured rectangle, and where
    it sits, so it hides anything from a third of the lips to all of them and the lips left
    visible can be scored too. Drawn independently of the training augmentation, so the
    evaluation does not reward learning that generator's look.
    """
    rng = np.random.default_rng(seed)
    p = np.asarray(landmarks, dtype=np.float64)[:, :2]
    left, right, top, bottom = p[61], p[291], p[0], p[17]
    width = max(float(np.linalg.norm(right - left)), 4.0)
    u = (right - left) / width
    v = np.array([-u[1], u[0]])
    if v @ (bottom - top) < 0:
        v = -v
    mouth_height = max(float(abs((bottom - top) @ v)), 0.3 * width)
    mouth = (left + right + top + bottom) / 4.0
    height, frame_width = image.shape[:2]
    alpha = np.zeros((height, frame_width), np.uint8)
    kind = OCCLUDER_KINDS[_draw_kind(rng)]
    if kind == "hand":
        reach = rng.uniform(-0.4, 0.45)  # how far past the mouth centre the fingertips go
        colour = _draw_hand(alpha, image, p, mouth, u, v, width, mouth_height, reach, rng)
    else:
        half = (
            width * rng.uniform(0.3, 0.6),
            max(mouth_height * rng.uniform(0.5, 0.9), 0.25 * width),
        )
        centre = mouth + u * rng.uniform(-0.45, 0.45) * width
        centre = centre + v * rng.uniform(-0.3, 0.3) * mouth_height
        angle = math.degrees(math.atan2(u[1], u[0])) + rng.uniform(-25.0, 25.0)
        if kind == "ellipse":
            axes = (int(round(half[0] * 16)), int(round(half[1] * 16)))
            cv2.ellipse(alpha, _fixed(centre), axes, angle, 0, 360, 255, -1, cv2.LINE_AA, 4)
        else:
            box = cv2.boxPoints(((centre[0], centre[1]), (2 * half[0], 2 * half[1]), angle))
            cv2.fillPoly(alpha, [np.rint(box * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        colour = _texture(image.shape[:2], rng)
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = image.astype(np.float32) * (1.0 - a) + colour * a
    occluded = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return occluded, alpha >= THRESHOLD


def _fixed(point: np.ndarray) -> tuple[int, int]:
    """A point in cv2's 4-bit fixed point (``shift=4``), for sub-pixel anti-aliased drawing."""
    return int(round(point[0] * 16)), int(round(point[1] * 16))


def _draw_hand(
    alpha: np.ndarray,
    image: np.ndarray,
    points: np.ndarray,
    centre: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    width: float,
    mouth_height: float,
    reach: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw a hand into ``alpha``: the palm on one cheek, four fingers across the mouth whose
    tips end ``reach`` mouth widths past its centre. Returns its colour image: the face's own
    skin tone, lit from one side, each finger a little lighter or darker, with dark creases
    between the fingers."""
    side = 1.0 if rng.random() < 0.5 else -1.0
    finger = max(1.45 * mouth_height / 3.8, 0.16 * width)
    palm_centre = centre + u * side * width * rng.uniform(0.9, 1.1)
    palm_axes = (0.45 * width, 0.5 * 3.8 * finger + 0.1 * width)
    angle = math.degrees(math.atan2(u[1], u[0]))
    axes = (int(round(palm_axes[0] * 16)), int(round(palm_axes[1] * 16)))
    cv2.ellipse(alpha, _fixed(palm_centre), axes, angle, 0, 360, 255, -1, cv2.LINE_AA, 4)
    height, frame_width = alpha.shape
    brightness = np.ones((height, frame_width), np.float32)
    creases = np.zeros((height, frame_width), np.uint8)
    lengths = np.array([0.95, 1.0, 0.95, 0.8]) * rng.uniform(0.95, 1.15)
    offset = rng.uniform(-0.1, 0.1) * finger
    thickness = max(1, int(round(finger)))
    tips = []
    for k, length in enumerate(lengths):
        across = v * ((k - 1.5) * 0.95 * finger + offset)
        base = palm_centre - u * side * palm_axes[0] * 0.3 + across
        tip = centre - u * side * width * (reach + 0.2 * (length - 1.0)) + across
        tips.append(tip)
        cv2.line(alpha, _fixed(base), _fixed(tip), 255, thickness, cv2.LINE_AA, 4)
        cv2.circle(alpha, _fixed(tip), int(round(finger * 8)), 255, -1, cv2.LINE_AA, 4)
        shade = float(rng.uniform(0.93, 1.07))
        cv2.line(brightness, _fixed(base), _fixed(tip), shade, thickness, cv2.LINE_8, 4)
        cv2.circle(brightness, _fixed(tip), int(round(finger * 8)), shade, -1, cv2.LINE_8, 4)
    for k in range(3):  # creases between neighbouring fingers, from the palm to the shorter tip
        gap = v * ((k - 1.0) * 0.95 * finger + offset)
        start = palm_centre - u * side * palm_axes[0] * 0.3 + gap
        shorter = min(tips[k] @ (u * side), tips[k + 1] @ (u * side))
        end = start + u * side * (shorter - start @ (u * side))
        cv2.line(
            creases,
            _fixed(start),
            _fixed(end),
            255,
            max(1, int(round(finger * 0.12))),
            cv2.LINE_AA,
            4,
        )
    if rng.random() < 0.6:  # a thumb below the fingers, towards the chin
        base = palm_centre + v * palm_axes[1] * 0.8
        tip = base + (v * 0.7 - u * side * 0.7) * width * rng.uniform(0.35, 0.5)
        cv2.line(
            alpha, _fixed(base), _fixed(tip), 255, max(1, int(round(finger * 1.15))),
            cv2.LINE_AA, 4,
        )  # fmt: skip
        cv2.circle(alpha, _fixed(tip), int(round(finger * 9)), 255, -1, cv2.LINE_AA, 4)
    tone = _skin_tone(image, points) * rng.uniform(0.9, 1.05) * rng.uniform(0.97, 1.03, 3)
    yy, xx = np.mgrid[0:height, 0:frame_width].astype(np.float32)
    light = rng.normal(size=2)
    light /= np.linalg.norm(light) + 1e-9
    ramp = ((xx - centre[0]) * light[0] + (yy - centre[1]) * light[1]) / (2.0 * width)
    noise = rng.normal(0, 1, (height, frame_width)).astype(np.float32)
    grain = cv2.GaussianBlur(noise, (0, 0), 1.5)
    inside = cv2.distanceTransform((alpha >= THRESHOLD).astype(np.uint8), cv2.DIST_L2, 3)
    rim = 0.8 + 0.2 * np.clip(inside / max(finger * 0.3, 1.0), 0, 1)
    dark = cv2.GaussianBlur(creases.astype(np.float32) / 255.0, (0, 0), 0.8)
    shade = (1.0 + 0.15 * np.clip(ramp, -1, 1) + 0.04 * grain) * brightness * rim
    shade *= 1.0 - 0.45 * dark
    return np.clip(tone[None, None, :] * shade[..., None], 0, 255).astype(np.float32)


def _skin_tone(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Median RGB of small patches on both cheeks (mesh vertices 50, 280, 205, 425)."""
    height, width = image.shape[:2]
    patches = []
    for index in (50, 280, 205, 425):
        x, y = np.rint(points[index]).astype(int)
        x0, y0, x1, y1 = max(x - 3, 0), max(y - 3, 0), min(x + 4, width), min(y + 4, height)
        if x1 > x0 and y1 > y0:
            patches.append(image[y0:y1, x0:x1].reshape(-1, 3))
    if not patches:
        return np.array([200.0, 160.0, 130.0])
    return np.median(np.concatenate(patches), axis=0).astype(np.float64)


def _texture(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A float32 RGB texture: stripes, checks or blotchy noise between two random colours."""
    height, width = size
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = int(rng.integers(3))
    if kind == 0:
        theta, period = rng.uniform(0, math.pi), rng.uniform(6, 20)
        t = 0.5 + 0.5 * np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period)
    elif kind == 1:
        cell = rng.uniform(6, 16)
        t = ((np.floor(xx / cell) + np.floor(yy / cell)) % 2).astype(np.float32)
    else:
        grid = rng.uniform(0, 1, (8, 8)).astype(np.float32)
        t = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    t = np.clip(t + rng.normal(0, 0.05, t.shape).astype(np.float32), 0, 1)[..., None]
    return (a * (1 - t) + b * t).astype(np.float32)
