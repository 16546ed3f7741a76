"""Named face-region masks rasterised from the face-mesh polygons.

A mask is an HxW uint8 array in frame space whose value (0..255) is how much of each pixel the
region covers. Effects only see these named masks, so a learned parser can later provide the same
names in the same format without the effects noticing which produced them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import cv2
import numpy as np

__all__ = [
    "LIPS_INNER_LOWER",
    "LIPS_INNER_UPPER",
    "LIPS_OUTER_LOWER",
    "LIPS_OUTER_UPPER",
    "MESH_MASKS",
    "MeshMasks",
    "mask_bbox",
    "mesh_mask",
]

# MediaPipe 478-point mesh contours (the chains in face_mesh_connections.FACEMESH_LIPS), each from
# the left-of-image mouth corner to the right one: 61 -> 291 outer, 78 -> 308 inner.
LIPS_OUTER_UPPER: tuple[int, ...] = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER: tuple[int, ...] = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER: tuple[int, ...] = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER: tuple[int, ...] = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

# Closed polygons: a lip is its outer contour out and its inner contour back, so the two lips
# share the corner segments 291-308 and 78-61 and nothing else.
_UPPER_LIP = np.array(LIPS_OUTER_UPPER + LIPS_INNER_UPPER[::-1], dtype=np.intp)
_LOWER_LIP = np.array(LIPS_OUTER_LOWER + LIPS_INNER_LOWER[::-1], dtype=np.intp)
_INNER_MOUTH = np.array(LIPS_INNER_UPPER + LIPS_INNER_LOWER[-2:0:-1], dtype=np.intp)

# Each name is the union of its polygons (filled separately, so "lips" has no seam and no
# dependence on a fill rule when the mesh folds).
_REGIONS: dict[str, tuple[np.ndarray, ...]] = {
    "lips": (_UPPER_LIP, _LOWER_LIP),
    "upper_lip": (_UPPER_LIP,),
    "lower_lip": (_LOWER_LIP,),
    "inner_mouth": (_INNER_MOUTH,),
}

MESH_MASKS: tuple[str, ...] = ("lips", "upper_lip", "lower_lip", "inner_mouth")
"""The mask names the face mesh provides."""

_MIN_POINTS = 1 + max(int(p.max()) for polys in _REGIONS.values() for p in polys)

# Supersampling factor per axis: 16 samples per pixel give 17 coverage levels, and the polygon
# vertices are placed at 1/16 of a supersample (fillPoly shift=4), so an edge moved by a fraction
# of a pixel changes the edge values.
_SS = 4
_SHIFT = 4

# cv2.fillPoly fills a sample when its centre is within half a sample of the polygon (it rounds
# span ends outwards), which grows every region by 1/8 px per edge at 4x. Drawing at
# sample = _SS * x and eroding with a 2x2 box anchored at its corner turns that into the exact
# test "sample centre (k + 0.5) / _SS inside the polygon" along straight edges.
_ERODE = np.ones((2, 2), dtype=np.uint8)

_BAND = 128
"""Rows rendered at a time."""
_MAX_COORD = 1 << 20
"""Landmarks beyond this many pixels are garbage (and would overflow the fixed-point vertices)."""

# Landmark coordinates are continuous: pixel (row i, column j) covers [j, j+1) x [i, i+1), the
# convention of MediaPipe's normalised coordinates times the frame size.


class HasLandmarks(Protocol):
    """Anything with a (N, 2+) landmark array in frame pixels, such as ``tracking.Face``."""

    landmarks: np.ndarray


def _check_name(name: str) -> tuple[np.ndarray, ...]:
    try:
        return _REGIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown mask name {name!r}; valid names: {', '.join(MESH_MASKS)}"
        ) from None


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f"mask size must be (height, width) >= 1, got {size}")
    return height, width


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks)
    if points.ndim != 2 or points.shape[0] < _MIN_POINTS or points.shape[1] < 2:
        raise ValueError(
            f"landmarks must be a (N >= {_MIN_POINTS}, 2 or 3) face-mesh array, "
            f"got shape {points.shape}"
        )
    return points


def _rasterize(points: np.ndarray, polygons: tuple[np.ndarray, ...], out: np.ndarray) -> None:
    """Max-combine the anti-aliased union of ``polygons`` into ``out``, touching only their box."""
    xy = [points[p, :2].astype(np.float64) for p in polygons]
    every = np.concatenate(xy)
    if not np.all(np.isfinite(every)):
        raise ValueError("landmarks contain NaN or infinity")
    if np.abs(every).max() > _MAX_COORD:
        raise ValueError(f"landmarks lie more than {_MAX_COORD} pixels from the frame origin")
    height, width = out.shape
    x0 = max(int(np.floor(every[:, 0].min())), 0)
    y0 = max(int(np.floor(every[:, 1].min())), 0)
    x1 = min(int(np.ceil(every[:, 0].max())) + 1, width)
    y1 = min(int(np.ceil(every[:, 1].max())) + 1, height)
    # Bands of at most _BAND rows bound the supersampled canvas for a close-up face.
    for top in range(y0, y1, _BAND):
        bottom = min(top + _BAND, y1)
        # One spare sample row and column for the erosion: drawn like the rest, so a band or a
        # frame edge that cuts the polygon does not erode the last real samples.
        fine = np.zeros(((bottom - top) * _SS + 1, (x1 - x0) * _SS + 1), dtype=np.uint8)
        origin = np.array([x0, top], dtype=np.float64)
        for poly in xy:
            fixed = np.round((poly - origin) * (_SS << _SHIFT)).astype(np.int32)
            cv2.fillPoly(fine, [fixed], 255, lineType=cv2.LINE_8, shift=_SHIFT)
        fine = cv2.erode(fine, _ERODE, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT, borderValue=0)
        coarse = cv2.resize(fine[:-1, :-1], (x1 - x0, bottom - top), interpolation=cv2.INTER_AREA)
        roi = out[top:bottom, x0:x1]
        np.maximum(roi, coarse, out=roi)


def mesh_mask(
    landmarks: np.ndarray,
    size: tuple[int, int],
    name: str,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Rasterise region ``name`` of one face's mesh ``landmarks`` into an HxW uint8 mask.

    ``size`` is (height, width). Edges are anti-aliased by 4x4 supersampling with sub-pixel vertex
    placement, and only the region's bounding box is rendered, so the cost beyond the zero fill
    does not grow with the frame. Pass ``out`` (HxW uint8) to accumulate several faces into one
    array: the region is max-combined into it and ``out`` is returned.
    """
    polygons = _check_name(name)
    height, width = _check_size(size)
    points = _check_landmarks(landmarks)
    if out is None:
        out = np.zeros((height, width), dtype=np.uint8)
    elif out.shape != (height, width) or out.dtype != np.uint8:
        raise ValueError(f"out must be a {height}x{width} uint8 array, got {out.shape} {out.dtype}")
    _rasterize(points, polygons, out)
    return out


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The (x0, y0, x1, y1) box of the non-zero pixels (x1, y1 exclusive), or None if none are.

    Lets an effect confine its work to where a mask is set.
    """
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"mask must be an HxW uint8 array, got {mask.shape} {mask.dtype}")
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask))
    if w == 0 or h == 0:
        return None
    return x, y, x + w, y + h


class MeshMasks:
    """Builds named masks for all faces of a frame, reusing its buffers across frames.

    While the frame size is unchanged no frame-sized array is allocated: each name keeps one
    buffer that is cleared and redrawn. The returned arrays are therefore only valid until the
    next ``build`` call; copy one to keep it.
    """

    def __init__(self) -> None:
        self._size: tuple[int, int] | None = None
        self._buffers: dict[str, np.ndarray] = {}

    def build(
        self,
        faces: Sequence[HasLandmarks],
        size: tuple[int, int],
        names: Iterable[str],
    ) -> dict[str, np.ndarray]:
        """Masks ``names`` at ``size`` (height, width), each the max over ``faces``."""
        wanted = list(dict.fromkeys(names))
        for name in wanted:
            _check_name(name)
        size = _check_size(size)
        if size != self._size:
            self._buffers.clear()
            self._size = size
        points = [_check_landmarks(face.landmarks) for face in faces]
        masks: dict[str, np.ndarray] = {}
        for name in wanted:
            buffer = self._buffers.get(name)
            if buffer is None:
                buffer = self._buffers[name] = np.zeros(size, dtype=np.uint8)
            else:
                buffer.fill(0)
            for face_points in points:
                _rasterize(face_points, _REGIONS[name], buffer)
            masks[name] = buffer
        return masks
