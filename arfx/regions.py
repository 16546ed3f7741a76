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


def region_rects(region: str, faces: Sequence[Any], size: tuple[int, int]) -> list[Rect] | None:
    """Scissor rectangles of an effect's ``region`` over ``faces`` in a (width, height) frame.

    None means the whole frame; an empty list means nothing to draw (no face in the frame).
    """
    if region == "frame":
        return None
    width, height = size
    rects = []
    for face in faces:
        box = face_rect(face, region)
        if box is None:
            return None
        x0 = max(int(np.floor(box[0])) - TAP_MARGIN, 0)
        y0 = max(int(np.floor(box[1])) - TAP_MARGIN, 0)
        x1 = min(int(np.ceil(box[2])) + TAP_MARGIN, width)
        y1 = min(int(np.ceil(box[3])) + TAP_MARGIN, height)
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
