"""What the evaluations share: the data splits, the mask threshold, reading images, and text
tables."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import SourceError

SPLITS: tuple[str, ...] = ("all", "train", "val")
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
THRESHOLD = 128
"""A mask pixel counts as predicted when its coverage is at least this (of 255)."""


def first_frames(video: Path | str, count: int) -> list[Any]:
    """The first ``count`` decoded frames (``arfx.Frame``) of a video; SourceError when it
    cannot be read or has none."""
    from ..sources import VideoFileSource

    with VideoFileSource(video) as source:
        frames = list(itertools.islice(source, count))
    if not frames:
        raise SourceError(f"{video}: no video frames")
    return frames


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit}")


def read_image(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SourceError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def per_image_ms(seconds: float, images: int) -> str:
    return f"{1000.0 * seconds / images:.1f}" if images else "-"


def text_grid(rows: list[list[str]]) -> list[str]:
    """Rows of cells as equal-length lines: first column left-aligned, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
