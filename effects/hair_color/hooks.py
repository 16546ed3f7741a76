"""Per-frame uniforms for the hair colour shaders: each face's hair statistics and geometry.

The shader maps the hair's own lightness levels (percentiles) to the new colour's, so
strands and highlights keep their place in the hair's range; it leaves out pixels whose
colour is far from the hair's (a wall the model took for hair); runs the ombré along the
head's down axis; and fades the mask out where the face model's crop ends (the model sees
nothing beyond it). The chosen colours are converted to CIELAB here, once per frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from arfx.compositor import MAX_FACES
from arfx.effect import FrameContext

# sRGB code value -> linear light: luminance ratios only mean something in linear light.
_TO_LINEAR = np.where(
    np.arange(256) / 255.0 <= 0.04045,
    np.arange(256) / 255.0 / 12.92,
    ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
).astype(np.float32)
_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float32,
)
_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
# For a face showing almost no hair: dark brown's lightness (CIELAB L) percentiles 5, 50, 95,
# chroma (median a, b and spread around them); a normally saturated picture; short hair.
# The hair's extent along the head (0 = top of the forehead, 1 = chin): crown to ends.
_TYPICAL = np.array([4.0, 20.0, 45.0, 4.0, 6.0, 8.0, 1.0, -0.4, 1.0], dtype=np.float32)
_SPAN_PERCENTILES = (2, 98)
_TYPICAL_SKIN_CHROMA = 20.0  # CIELAB chroma of skin in an ungraded photo: 24-38 in ours
_MIN_SATURATION = 0.4
_SKIN_SURE = 0.9 * 255
_PERCENTILES = (5, 50, 95)
_HAIR_CERTAIN = 0.6 * 255  # model probability above which a pixel counts for the statistics
_SKIN_CERTAIN = 0.5 * 255
_MIN_PIXELS = 64
_MAX_SAMPLES = 6_000  # grid points per face crop: percentiles need no more
_FOREHEAD, _CHIN = 10, 152  # MediaPipe mesh: top of the forehead, bottom of the chin
_CROP = 256.0
# Video: each face's statistics are smoothed over frames (new = old + RATE * change), since
# the shader's tone curve would turn a jittering median into flicker. A face that moved
# far, or whose hair changed a lot, starts afresh (a cut, or another photo).
_RATE = 0.3
_MAX_MOVE = 0.25  # box centre shift, in box sizes, between consecutive frames
_MAX_CHANGE = 8.0  # median lightness change between consecutive frames
# CIELAB hue angles (radians) the shader turns toward golden brown in the shade: its
# 0.95-2.4 with a margin. A colour outside them (with no ombré) skips that maths.
_YELLOW_HUES = (0.9, 2.45)


def nearest_face(x: np.ndarray, y: np.ndarray, faces: Sequence[Any]) -> np.ndarray:
    """Index of the face each pixel belongs to: the nearest box centre in box sizes.

    The shader makes the same choice, so hair between two heads is coloured and measured
    for the same face.
    """
    best = np.full(np.shape(x), np.inf, dtype=np.float32)
    owner = np.zeros(np.shape(x), dtype=np.int32)
    for i, face in enumerate(faces[:MAX_FACES]):
        x0, y0, x1, y1 = face.box
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        size = max(x1 - x0, y1 - y0, 1.0)
        d = np.hypot((x - cx) / size, (y - cy) / size)
        closer = d < best
        best[closer] = d[closer]
        owner[closer] = i
    return owner


def _crop_bounds(face: Any, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Frame-pixel bounding box (x0, y0, x1, y1) of the model's crop, clipped to the frame."""
    corners = face.analysis.alignment.to_frame(
        np.array([[0, 0], [_CROP, 0], [0, _CROP], [_CROP, _CROP]], dtype=np.float64)
    )
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, (width, height))
    return (int(x0), int(y0), int(x1), int(y1)) if x1 > x0 and y1 > y0 else None


def _srgb_to_linear(color: str) -> np.ndarray:
    """A ``#rrggbb`` parameter as one row of linear sRGB."""
    code = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    return _TO_LINEAR[code][None, :]


def lab(linear: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of linear sRGB rows, as the shader's color.glsl computes it."""
    xyz = linear @ _TO_XYZ.T / _WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116.0 * f[:, 1] - 16.0, 500.0 * (f[:, 0] - f[:, 1]), 200.0 * (f[:, 1] - f[:, 2])], axis=1
    )


def hair_stats(frame: FrameContext, index: int, axis: np.ndarray) -> np.ndarray:
    """Face ``index``'s statistics: its hair's lightness percentiles (5, 50, 95), chroma
    (median a, b and the 75th percentile of the distance to them) and extent along ``axis``
    (crown and ends, for the ombré), from the pixels that are surely hair; and the
    picture's saturation (its skin's chroma relative to typical skin: a desaturated grade
    should desaturate the new hair colour alike)."""
    faces = frame.faces
    height, width = frame.image.shape[:2]
    bounds = _crop_bounds(faces[index], width, height)
    if bounds is None:
        return _TYPICAL
    x0, y0, x1, y1 = bounds
    step = max(1, int(np.ceil(np.sqrt((x1 - x0) * (y1 - y0) / _MAX_SAMPLES))))
    hair = frame.masks["hair"][y0:y1:step, x0:x1:step]
    skin = frame.masks["skin"][y0:y1:step, x0:x1:step]
    stats = _TYPICAL.copy()
    sample = _sample(frame, index, (hair > _HAIR_CERTAIN) & (skin < _SKIN_CERTAIN), bounds, step)
    if sample is not None:
        colours, x, y = sample
        stats[:3] = np.percentile(colours[:, 0], _PERCENTILES)
        along = (x - axis[0]) * axis[2] + (y - axis[1]) * axis[3]
        stats[7:9] = np.percentile(along, _SPAN_PERCENTILES)
        # Medians, not means: a wall the model took for hair should not drag the hair's hue.
        centre = np.median(colours[:, 1:], axis=0)
        spread = np.percentile(np.linalg.norm(colours[:, 1:] - centre, axis=1), 75)
        stats[3:6] = (*centre, spread)
    sample = _sample(frame, index, (skin > _SKIN_SURE) & (hair < _SKIN_CERTAIN), bounds, step)
    if sample is not None:
        chroma = float(np.median(np.hypot(sample[0][:, 1], sample[0][:, 2])))
        stats[6] = np.clip(chroma / _TYPICAL_SKIN_CHROMA, _MIN_SATURATION, 1.0)
    return stats


def _sample(
    frame: FrameContext,
    index: int,
    chosen: np.ndarray,
    bounds: tuple[int, int, int, int],
    step: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """CIELAB and frame x, y of the ``chosen`` grid points that belong to face ``index``;
    None if there are too few."""
    rows, cols = np.nonzero(chosen)
    x, y = bounds[0] + cols * step, bounds[1] + rows * step
    if len(frame.faces) > 1:
        mine = nearest_face(x, y, frame.faces) == index
        x, y = x[mine], y[mine]
    if x.size < _MIN_PIXELS:
        return None
    return lab(_TO_LINEAR[frame.image[y, x]]), x, y


class Smoother:
    """Exponential smoothing of each face's hair statistics across consecutive frames."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[int, tuple[float, float, float], np.ndarray]] = {}

    def __call__(self, face: Any, index: int, stats: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = face.box
        place = ((x0 + x1) / 2.0, (y0 + y1) / 2.0, max(x1 - x0, y1 - y0, 1.0))
        last = self._last.get(face.id)
        if (
            last is not None
            and last[0] == index - 1
            and np.hypot(place[0] - last[1][0], place[1] - last[1][1]) < _MAX_MOVE * place[2]
            and abs(stats[1] - last[2][1]) < _MAX_CHANGE
        ):
            stats = last[2] + _RATE * (stats - last[2])
        self._last = {k: v for k, v in self._last.items() if v[0] >= index - 1}
        self._last[face.id] = (index, place, stats)
        return stats


_smooth = Smoother()  # one per effect instance: arfx imports hooks.py once per effect


def uniforms(frame: FrameContext, params: Mapping[str, Any]) -> dict[str, Any]:
    stats = np.tile(_TYPICAL, (MAX_FACES, 1))
    axis = np.zeros((MAX_FACES, 4), dtype=np.float32)
    crop_x = np.zeros((MAX_FACES, 3), dtype=np.float32)
    crop_y = np.zeros((MAX_FACES, 3), dtype=np.float32)
    crop_pixel = np.ones(MAX_FACES, dtype=np.float32)
    for i, face in enumerate(frame.faces[:MAX_FACES]):
        top, chin = face.landmarks[_FOREHEAD, :2], face.landmarks[_CHIN, :2]
        down = chin - top
        length = max(float(np.linalg.norm(down)), 1.0)
        # t = dot(pixel - top, axis.zw): 0 at the top of the forehead, 1 at the chin.
        axis[i] = (*top, *(down / length**2))
        if face.analysis is None:
            continue
        alignment = face.analysis.alignment
        crop_x[i], crop_y[i] = alignment.matrix[0], alignment.matrix[1]
        crop_pixel[i] = 1.0 / max(alignment.scale, 1e-6)
        stats[i] = _smooth(face, frame.index, hair_stats(frame, i, axis[i]))
    root, tip = (
        lab(_srgb_to_linear(params[key]))[0].astype(np.float32) for key in ("color", "tip_color")
    )
    hue = float(np.arctan2(root[2], root[1]))
    return {
        "u_root_lab": root,
        "u_tip_lab": tip,
        "u_maybe_yellow": bool(params["ombre"] > 0 or _YELLOW_HUES[0] < hue < _YELLOW_HUES[1]),
        "u_hair_levels": np.ascontiguousarray(stats[:, :3]),
        "u_hair_chroma": np.ascontiguousarray(stats[:, 3:6]),
        "u_saturation": np.ascontiguousarray(stats[:, 6]),
        "u_hair_span": np.ascontiguousarray(stats[:, 7:9]),
        "u_hair_axis": axis,
        "u_crop_x": crop_x,
        "u_crop_y": crop_y,
        "u_crop_pixel": crop_pixel,
    }
