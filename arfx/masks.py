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
    "HasLandmarks",
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

# Coverage is exact across each scanline and sampled on this many scanlines per pixel row, so an
# edge moved by a fraction of a pixel in any direction changes the edge values. (cv2.fillPoly
# was measured first: its LINE_AA fill grows a region by about 0.66 px per edge, and even 4x
# supersampled it adds 2-6% to a lip's area because it also draws the outline.)
_SCANLINES = 16

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


def _signed_area(loop: np.ndarray) -> float:
    x, y = loop[:, 0], loop[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(y[:-1], x[1:]) + x[-1] * y[0] - y[-1] * x[0])


def _rasterize(points: np.ndarray, polygons: tuple[np.ndarray, ...], out: np.ndarray) -> None:
    """Max-combine the anti-aliased union of ``polygons`` into ``out``, touching only their box.

    A scanline fill with the nonzero rule, so where the loops overlap, or a loop folds over
    itself, the region is filled rather than cut out. On each of _SCANLINES lines per pixel row
    the crossings of the polygon edges are sorted, the spans between them found, and each
    span's exact overlap with each pixel accumulated through a difference array: the work
    grows with the region's height and the number of edges, the memory with its bounding box,
    and nothing with the frame.
    """
    loops = [points[p, :2].astype(np.float64) for p in polygons]
    every = np.concatenate(loops)
    if not np.all(np.isfinite(every)):
        raise ValueError("landmarks contain NaN or infinity")
    height, width = out.shape
    x0 = max(int(np.floor(every[:, 0].min())), 0)
    y0 = max(int(np.floor(every[:, 1].min())), 0)
    x1 = min(int(np.floor(every[:, 0].max())) + 1, width)
    y1 = min(int(np.floor(every[:, 1].max())) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return  # entirely outside the frame
    # Edges, each loop turned the same way round so that the shared edges of two loops cancel.
    starts = [loop if _signed_area(loop) >= 0 else loop[::-1] for loop in loops]
    start = np.concatenate(starts)
    end = np.concatenate([np.concatenate([loop[1:], loop[:1]]) for loop in starts])
    winding = np.sign(end[:, 1] - start[:, 1])
    sloped = winding != 0  # horizontal edges cross no scanline
    start, end, winding = start[sloped], end[sloped], winding[sloped]
    slope = (end[:, 0] - start[:, 0]) / (end[:, 1] - start[:, 1])

    # Scanline k (from y0) is at y0 + (k + 0.5) / _SCANLINES; an edge crosses those in
    # [its lower y, its upper y), so a vertex shared by two edges is counted once.
    lines = (y1 - y0) * _SCANLINES
    low = np.minimum(start[:, 1], end[:, 1]) - y0
    high = np.maximum(start[:, 1], end[:, 1]) - y0
    first = np.clip(np.ceil(low * _SCANLINES - 0.5), 0, lines).astype(np.intp)
    stop = np.clip(np.ceil(high * _SCANLINES - 0.5), 0, lines).astype(np.intp)
    counts = stop - first
    edge = np.repeat(np.arange(len(counts)), counts)
    line = np.arange(len(edge)) - np.repeat(np.cumsum(counts) - counts - first, counts)
    x = start[edge, 0] + (y0 + (line + 0.5) / _SCANLINES - start[edge, 1]) * slope[edge]

    # Sorted by line then x, the running sum of windings is each line's winding number (every
    # line's windings sum to 0); a span starts where it leaves 0 and ends where it returns.
    order = np.lexsort((x, line))
    line, x = line[order], x[order]
    inside = np.cumsum(winding[edge[order]]) != 0
    change = np.diff(inside.astype(np.int8), prepend=np.int8(0))
    cuts = np.nonzero(change)[0]
    weight = change[cuts] / _SCANLINES

    # A span [a, b) covers pixel j by |[a, b) & [j, j+1)|: +1 from a on and -1 from b on, split
    # between the pixel a cut falls in and the next one, then a running sum along the row.
    u = np.clip(x[cuts] - x0, 0.0, float(x1 - x0))
    column = np.floor(u).astype(np.intp)
    fraction = u - column
    stride = x1 - x0 + 2
    index = (line[cuts] // _SCANLINES) * stride + column
    steps = np.bincount(
        np.concatenate([index, index + 1]),
        weights=np.concatenate([weight * (1.0 - fraction), weight * fraction]),
        minlength=(y1 - y0) * stride,
    )
    cover = np.cumsum(steps.reshape(y1 - y0, stride), axis=1)[:, : x1 - x0]
    coverage = np.rint(np.clip(cover, 0.0, 1.0) * 255.0).astype(np.uint8)
    roi = out[y0:y1, x0:x1]
    np.maximum(roi, coverage, out=roi)


def mesh_mask(
    landmarks: np.ndarray,
    size: tuple[int, int],
    name: str,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Rasterise region ``name`` of one face's mesh ``landmarks`` into an HxW uint8 mask.

    ``size`` is (height, width). Each pixel gets the fraction of it the region covers (exact
    across, 16 samples down), so edges are anti-aliased and follow sub-pixel motion. Only the
    region's bounding box is rendered, so the cost beyond the zero fill does not grow with the
    frame. Pass ``out`` (HxW uint8) to accumulate several faces into one array: the region is
    max-combined into it and ``out`` is returned.
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
