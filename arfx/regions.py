"""Where effects draw: per-face rectangles for the compositor's scissor test.

A CPU renderer (Mesa llvmpipe) pays for every pixel a pass covers, so the compositor draws an
effect only inside the region its manifest declares (``region``: frame, head, face or lips)
around each face. The rectangles are generous: they hold everything the effect can change
(feathered edges, liner, glasses' temples, hair down to the crop's edge) plus a margin for
the neighbourhood taps of filters, so the result is the same as drawing the whole frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from .alignment import CROP_SIZE, align_mesh
from .masks import LIPS_OUTER_LOWER, LIPS_OUTER_UPPER

Rect = tuple[int, int, int, int]
"""(x, y, width, height) in pixels, row 0 at the top (as images are uploaded)."""

_LIPS = np.array(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER, dtype=np.intp)
TAP_MARGIN = 16
"""Pixels added around every region: the widest filter tap of the built-in shaders is 12."""
LIPS_MARGIN = 0.3
"""Around the lips' outline, in inter-ocular distances: feathering, liner and the model's
lip mask where it is wider than the mesh's lips."""
FACE_MARGIN = 0.25
"""Around the face's landmark box, in face sizes."""
DRAW_BOX_MARGIN = 1
"""Pixels around a hook's ``arfx_draw_boxes``: a pixel whose centre lies on a box's edge is
inside it."""


def face_rect(face: Any, region: str) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) of ``region`` for one face (unclipped); None for "frame"."""
    points = np.asarray(face.landmarks, dtype=np.float64)[:, :2]
    if region == "lips":
        lips = points[_LIPS]
        margin = LIPS_MARGIN * max(float(face.inter_ocular), 1.0)
        (x0, y0), (x1, y1) = lips.min(axis=0) - margin, lips.max(axis=0) + margin
    elif region == "face":
        x0, y0, x1, y1 = face.box
        margin = FACE_MARGIN * max(x1 - x0, y1 - y0)
        x0, y0, x1, y1 = x0 - margin, y0 - margin, x1 + margin, y1 + margin
    elif region == "head":
        corners = align_mesh(points).to_frame(
            np.array([[0, 0], [CROP_SIZE, 0], [0, CROP_SIZE], [CROP_SIZE, CROP_SIZE]], float)
        )
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    else:
        return None
    return float(x0), float(y0), float(x1), float(y1)


def region_rects(
    region: str, faces: Sequence[Any], size: tuple[int, int], draw_boxes: Any = None
) -> list[Rect] | None:
    """Scissor rectangles of an effect's ``region`` over ``faces`` in a (width, height) frame.

    ``draw_boxes`` (the effect hooks' ``arfx_draw_boxes``: per face, in ``faces`` order, the
    pixel box x0, y0, x1, y1 outside which the effect changes nothing; zeros where unknown)
    narrows each face's rectangle to its box, grown by DRAW_BOX_MARGIN.

    None means the whole frame; an empty list means nothing to draw (no face in the frame).
    """
    if region == "frame":
        return None
    width, height = size
    boxes = np.zeros((0, 4)) if draw_boxes is None else np.asarray(draw_boxes, np.float64)
    rects = []
    for i, face in enumerate(faces):
        box = face_rect(face, region)
        if box is None:
            return None
        x0 = max(int(np.floor(box[0])) - TAP_MARGIN, 0)
        y0 = max(int(np.floor(box[1])) - TAP_MARGIN, 0)
        x1 = min(int(np.ceil(box[2])) + TAP_MARGIN, width)
        y1 = min(int(np.ceil(box[3])) + TAP_MARGIN, height)
        if i < len(boxes) and np.any(boxes[i]):
            bx0, by0, bx1, by1 = boxes[i]
            x0 = max(x0, int(np.floor(bx0)) - DRAW_BOX_MARGIN)
            y0 = max(y0, int(np.floor(by0)) - DRAW_BOX_MARGIN)
            x1 = min(x1, int(np.ceil(bx1)) + DRAW_BOX_MARGIN)
            y1 = min(y1, int(np.ceil(by1)) + DRAW_BOX_MARGIN)
        if x1 > x0 and y1 > y0:
            rects.append((x0, y0, x1 - x0, y1 - y0))
    return rects


def bounding_rect(rects: Sequence[Rect]) -> Rect | None:
    """The smallest rectangle holding every one of ``rects`` (None if there are none)."""
    if not rects:
        return None
    x0 = min(r[0] for r in rects)
    y0 = min(r[1] for r in rects)
    x1 = max(r[0] + r[2] for r in rects)
    y1 = max(r[1] + r[3] for r in rects)
    return x0, y0, x1 - x0, y1 - y0


COVER_TILE = 16
"""Side in pixels of the tiles a pass with ``cover`` is drawn on."""


def coverage_rects(
    mask: np.ndarray, above: float, tile: int = COVER_TILE, within: Rect | None = None
) -> list[Rect]:
    """Rectangles, clipped to the frame, covering every ``tile``-pixel tile of ``mask`` (an
    HxW uint8 mask, 255 = 1) that holds a pixel at or above ``above`` (0..1): each a run of
    such tiles along one row of tiles, so a pass is drawn in a few scissored calls.

    ``within``: look only at the tiles that overlap this rectangle (the rest count as
    empty). A frame's masks are full size, and most of a 1080p frame is far from any face.
    """
    height, width = mask.shape
    x0, y0, x1, y1 = 0, 0, width, height
    if within is not None:
        x0 = max(within[0], 0) // tile * tile
        y0 = max(within[1], 0) // tile * tile
        x1 = min(within[0] + within[2], width)
        y1 = min(within[1] + within[3], height)
        if x1 <= x0 or y1 <= y0:
            return []
    rows, columns = -(-(y1 - y0) // tile), -(-(x1 - x0) // tile)
    # Hot pixels as 255, then each tile's mean: above zero exactly when the tile holds a
    # hot pixel (one in 256 averages to 1 after rounding). cv2's area resize does this
    # several times faster than a numpy max over a tiled view.
    level = int(np.ceil(above * 255.0))
    if level <= 0:
        hot_pixels = np.full((y1 - y0, x1 - x0), 255, np.uint8)
    else:
        _, hot_pixels = cv2.threshold(mask[y0:y1, x0:x1], level - 1, 255, cv2.THRESH_BINARY)
    bottom, right = rows * tile - (y1 - y0), columns * tile - (x1 - x0)
    if bottom or right:
        hot_pixels = cv2.copyMakeBorder(hot_pixels, 0, bottom, 0, right, cv2.BORDER_CONSTANT)
    hot = cv2.resize(hot_pixels, (columns, rows), interpolation=cv2.INTER_AREA) > 0
    # Runs of hot tiles along each row: where a row steps up (start) and down (stop); in
    # row-major order the two lists pair up.
    edges = np.diff(hot.astype(np.int8), axis=1, prepend=np.int8(0), append=np.int8(0))
    starts, stops = np.argwhere(edges == 1), np.argwhere(edges == -1)
    ys = y0 + starts[:, 0] * tile
    xs = x0 + starts[:, 1] * tile
    ws = np.minimum(x0 + stops[:, 1] * tile, width) - xs
    hs = np.minimum(tile, height - ys)
    return list(zip(xs.tolist(), ys.tolist(), ws.tolist(), hs.tolist(), strict=True))


def intersect(a: Rect, b: Rect) -> Rect | None:
    """The overlap of two rectangles (None if they do not overlap)."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None
