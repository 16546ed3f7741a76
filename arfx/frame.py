"""The frame that flows from a source through the session to a sink."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np

from .errors import FrameError


@dataclass(frozen=True)
class Frame:
    """One video frame and where it sits in time.

    ``image`` is always HxWx3 RGB uint8, C-contiguous. ``pts`` is the presentation
    timestamp in ``time_base`` units as the source gave it (None when the source has no
    clock), so a sink can write the output with the input's exact timing. ``faces`` holds
    what a session found in the frame (``arfx.Face`` objects) once it has processed it.
    """

    image: np.ndarray
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    time: float = 0.0
    faces: Sequence[Any] = ()

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def with_image(self, image: np.ndarray) -> Frame:
        """The same frame (index, timestamps) carrying another image."""
        return replace(self, image=image)


def as_rgb8(array: np.ndarray, what: str = "frame") -> np.ndarray:
    """Convert an image array to HxWx3 RGB uint8, or raise a FrameError naming ``what``.

    Accepts HxW or HxWx1 grayscale, HxWx3 RGB and HxWx4 RGBA (alpha dropped), as uint8,
    uint16 (scaled by 1/257) or float in [0, 1]. Returns the input itself when it is
    already RGB uint8 and C-contiguous, so no copy is made on the common path.
    """
    if not isinstance(array, np.ndarray):
        raise FrameError(f"{what}: expected a numpy array, got {type(array).__name__}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise FrameError(
            f"{what}: expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {array.shape}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise FrameError(f"{what}: image is empty (shape {array.shape})")
    if array.dtype == np.uint8:
        pass
    elif array.dtype == np.uint16:
        array = ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise FrameError(f"{what}: float image contains NaN or infinity")
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    else:
        raise FrameError(
            f"{what}: unsupported dtype {array.dtype} (use uint8, uint16 or float in [0, 1])"
        )
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]
    return np.ascontiguousarray(array)


def decoded_to_rgba8(image: np.ndarray) -> np.ndarray:
    """An image as OpenCV decodes it (gray, BGR or BGRA; 8 or 16 bits) as RGBA uint8.

    Textures of effects and of glTF models both come this way; ValueError for other types.
    """
    import cv2

    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGBA)
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGBA)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return np.ascontiguousarray(image)
