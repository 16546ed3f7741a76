"""Golden-image comparison with a perceptual tolerance.

A golden image is an effect's accepted output on a shared photo, committed under
``tests/golden/NAME.png`` (a crop around the face, so the files stay small). A render matches
when its colour difference to the golden, in CIE Lab (ΔE 1976, about 2.3 = just noticeable),
is small on average and in its worst 0.5% of pixels: a shader or driver difference of a code
value or two passes, a changed colour, a moved mask edge or a missing highlight does not.

Regenerate after an intended change with ``ARFX_UPDATE_GOLDEN=1 pytest -m "slow or not slow"
tests/`` and look at every changed PNG before committing it. A missing golden fails under CI
and is written (then the test fails, asking to look at it) elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import under_ci

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


@dataclass(frozen=True)
class Tolerance:
    """How far a render may drift from its golden image."""

    mean_delta_e: float = 1.0
    """Mean ΔE over the compared pixels."""
    p995_delta_e: float = 6.0
    """ΔE that 99.5% of the pixels stay under (edges may move by a pixel)."""


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel CIE76 ΔE between two RGB uint8 images."""
    lab_a = cv2.cvtColor(a.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lab_b = cv2.cvtColor(b.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return np.linalg.norm(lab_a - lab_b, axis=2)


def face_crop(image: np.ndarray, box: tuple[float, float, float, float], margin: float = 0.6):
    """(y0, y1, x0, x1) of the face box grown by ``margin`` of its size, inside the image."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    height, width = image.shape[:2]
    return (
        max(int(y0 - margin * h), 0),
        min(int(y1 + margin * h), height),
        max(int(x0 - margin * w), 0),
        min(int(x1 + margin * w), width),
    )


def assert_matches_golden(name: str, image: np.ndarray, tolerance: Tolerance = Tolerance()) -> None:
    """Compare RGB ``image`` with ``tests/golden/{name}.png`` (see the module docstring)."""
    path = GOLDEN_DIR / f"{name}.png"
    update = os.environ.get("ARFX_UPDATE_GOLDEN", "") not in ("", "0")
    if update or not path.exists():
        if not update and under_ci():
            pytest.fail(f"golden image missing: {path}")
        GOLDEN_DIR.mkdir(exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not update:
            pytest.fail(f"golden image was missing and is now written: look at {path}")
        return
    golden = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert golden.shape == image.shape, f"{path}: size {golden.shape} vs render {image.shape}"
    diff = delta_e(image, golden)
    mean, p995 = float(diff.mean()), float(np.percentile(diff, 99.5))
    if mean > tolerance.mean_delta_e or p995 > tolerance.p995_delta_e:
        failed = path.with_name(f"{name}.actual.png")
        cv2.imwrite(str(failed), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        pytest.fail(
            f"{name}: render differs from {path.name}: mean ΔE {mean:.2f} "
            f"(limit {tolerance.mean_delta_e}), 99.5th percentile {p995:.2f} "
            f"(limit {tolerance.p995_delta_e}); the render is in {failed.name}"
        )


def changed_outside(before: np.ndarray, after: np.ndarray, region: np.ndarray) -> int:
    """Number of pixels outside ``region`` (bool HxW) whose value changed at all."""
    changed = np.any(before != after, axis=2)
    return int(np.count_nonzero(changed & ~region))
