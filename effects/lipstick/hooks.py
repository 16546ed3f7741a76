"""Per-frame uniforms for the lipstick shader: each face's lip brightness and mouth width."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from arfx.compositor import MAX_FACES
from arfx.effect import FrameContext
from arfx.masks import LIPS_OUTER_LOWER, LIPS_OUTER_UPPER

_OUTER = np.array(sorted(set(LIPS_OUTER_UPPER) | set(LIPS_OUTER_LOWER)))
# sRGB code value -> linear light, so luminance is averaged where light adds up.
_TO_LINEAR = np.where(
    np.arange(256) / 255.0 <= 0.04045,
    np.arange(256) / 255.0 / 12.92,
    ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
).astype(np.float32)
_REC709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
_TYPICAL_LIP_LUMA = 0.12


def uniforms(frame: FrameContext, params: Mapping[str, Any]) -> dict[str, Any]:
    lips = frame.masks["lips"]
    height, width = lips.shape
    luma = np.full(MAX_FACES, _TYPICAL_LIP_LUMA, dtype=np.float32)
    mouth = np.zeros(MAX_FACES, dtype=np.float32)
    for i, face in enumerate(frame.faces[:MAX_FACES]):
        points = face.landmarks[_OUTER, :2]
        x0, y0 = np.floor(points.min(axis=0)).astype(int)
        x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        mouth[i] = float(np.linalg.norm(face.landmarks[291, :2] - face.landmarks[61, :2]))
        if x1 <= x0 or y1 <= y0:
            continue
        weight = lips[y0:y1, x0:x1].astype(np.float32)
        total = float(weight.sum())
        if total < 255.0:
            continue
        linear = _TO_LINEAR[frame.image[y0:y1, x0:x1]] @ _REC709
        luma[i] = max(float((linear * weight).sum() / total), 1e-3)
    return {"u_lip_luma": luma, "u_mouth_width": mouth}
