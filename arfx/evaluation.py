"""Accuracy of arfx's face-region masks against human-labelled face parsing (``arfx eval``).

The benchmark is CelebAMask-HQ style data: a folder with ``images/`` (RGB photos) and ``masks/``
(PNG label maps with the same stem whose pixel values are class ids). Scores are IoU per arfx mask
name, so the mesh masks and a later learned parser are measured the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .errors import SourceError
from .masks import MeshMasks

__all__ = [
    "PARSING_CLASSES",
    "ClassScore",
    "ParsingReport",
    "evaluate_parsing",
    "load_celebamask",
]

PARSING_CLASSES: dict[str, tuple[int, ...]] = {
    "lips": (11, 12),
    "upper_lip": (11,),
    "lower_lip": (12,),
    "inner_mouth": (10,),
}
"""CelebAMask-HQ class ids whose union is the ground truth of each arfx mask name."""

METHODS: tuple[str, ...] = ("mesh",)
SPLITS: tuple[str, ...] = ("all",)
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
THRESHOLD = 128
"""A mask pixel counts as predicted when its coverage is at least this (of 255)."""


@dataclass
class ClassScore:
    """IoU of one mask name over a data set.

    ``mean_iou`` averages per-image IoU (every face counts equally); ``aggregate_iou`` is total
    intersection over total union (large mouths weigh more). ``images`` counts the images scored:
    those where prediction and label are both empty are left out rather than counted as 0 or 1.
    """

    name: str
    mean_iou: float
    aggregate_iou: float
    images: int


@dataclass
class ParsingReport:
    """Result of one ``evaluate_parsing`` run."""

    method: str
    images: int
    faces_found: int
    seconds: float
    scores: dict[str, ClassScore] = field(default_factory=dict)

    def to_json(self) -> dict:
        """A JSON-serialisable dict; ``from_json`` reads it back."""
        return {
            "method": self.method,
            "images": self.images,
            "faces_found": self.faces_found,
            "seconds": self.seconds,
            "scores": {name: asdict(score) for name, score in self.scores.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> ParsingReport:
        return cls(
            method=str(data["method"]),
            images=int(data["images"]),
            faces_found=int(data["faces_found"]),
            seconds=float(data["seconds"]),
            scores={name: ClassScore(**score) for name, score in data["scores"].items()},
        )

    def table(self) -> str:
        """A readable, aligned text table of the scores."""
        found = 100.0 * self.faces_found / self.images if self.images else 0.0
        lines = [
            f"method {self.method}: {self.images} images, faces found in {self.faces_found} "
            f"({found:.1f}%), {self.seconds:.1f} s",
            f"{'class':<12} {'mean IoU':>9} {'aggr. IoU':>9} {'images':>7}",
        ]
        for score in self.scores.values():
            lines.append(
                f"{score.name:<12} {score.mean_iou:>9.4f} {score.aggregate_iou:>9.4f} "
                f"{score.images:>7d}"
            )
        return "\n".join(lines)


def load_celebamask(
    data_dir: Path | str,
    *,
    limit: int | None = None,
    split: str = "all",
) -> list[tuple[Path, Path]]:
    """The (image, mask) pairs of a CelebAMask-style folder, sorted by file name.

    ``limit`` keeps the first N pairs. ``split`` is "all" for now; it exists so a held-out split
    can be added without changing callers. Raises SourceError naming the folder when ``images/``
    or ``masks/`` is missing or empty, or an image has no mask.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit}")
    root = Path(data_dir)
    image_dir, mask_dir = root / "images", root / "masks"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise SourceError(
                f"parsing data folder {folder} is missing (expected {root} to hold images/ "
                "and masks/)"
            )
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise SourceError(f"parsing data folder {image_dir} holds no .jpg or .png images")
    if limit is not None:
        images = images[:limit]
    pairs = []
    for image in images:
        mask = mask_dir / f"{image.stem}.png"
        if not mask.is_file():
            raise SourceError(f"no mask {mask} for image {image} in {mask_dir}")
        pairs.append((image, mask))
    return pairs


def _read_image(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SourceError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _read_labels(path: Path) -> np.ndarray:
    # PIL, not cv2: cv2 expands a palette PNG into its colours, losing the class ids.
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise SourceError(
                    f"mask {path} is a {image.mode} image; expected a palette or grayscale PNG "
                    "whose pixel values are class ids"
                )
            return np.asarray(image)
    except OSError as error:
        raise SourceError(f"cannot read mask {path}: {error}") from error


def _iou_counts(predicted: np.ndarray, label: np.ndarray) -> tuple[int, int]:
    intersection = int(np.count_nonzero(predicted & label))
    union = int(np.count_nonzero(predicted | label))
    return intersection, union


def evaluate_parsing(
    data_dir: Path | str,
    *,
    limit: int | None = None,
    method: str = "mesh",
    progress: Callable[[int, int], None] | None = None,
) -> ParsingReport:
    """Score the named face masks of ``method`` against the labels in ``data_dir``.

    Each image gets a static-image face-mesh run (one face), its masks are thresholded at
    ``THRESHOLD`` and compared with the union of that name's ``PARSING_CLASSES``. An image with
    no face found scores IoU 0 for every class whose label is present, and shows in
    ``faces_found``. ``progress(done, total)`` is called after each image.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    from .tracking import FaceTracker, TrackerOptions  # mediapipe is slow to import

    pairs = load_celebamask(data_dir, limit=limit)
    names = tuple(PARSING_CLASSES)
    ious: dict[str, list[float]] = {name: [] for name in names}
    inter_total = dict.fromkeys(names, 0)
    union_total = dict.fromkeys(names, 0)
    faces_found = 0
    masks = MeshMasks()
    start = time.perf_counter()
    with FaceTracker(TrackerOptions(static_images=True, max_faces=1)) as tracker:
        for done, (image_path, mask_path) in enumerate(pairs, start=1):
            rgb = _read_image(image_path)
            labels = _read_labels(mask_path)
            if labels.shape != rgb.shape[:2]:
                raise SourceError(
                    f"mask {mask_path} is {labels.shape[1]}x{labels.shape[0]} but image "
                    f"{image_path} is {rgb.shape[1]}x{rgb.shape[0]}"
                )
            faces = tracker.track(rgb)[:1]
            faces_found += bool(faces)
            predicted = masks.build(faces, labels.shape, names)
            for name in names:
                truth = np.isin(labels, PARSING_CLASSES[name])
                intersection, union = _iou_counts(predicted[name] >= THRESHOLD, truth)
                if union == 0:
                    continue  # nothing predicted, nothing labelled: no evidence either way
                ious[name].append(intersection / union)
                inter_total[name] += intersection
                union_total[name] += union
            if progress is not None:
                progress(done, len(pairs))
    seconds = time.perf_counter() - start
    scores = {
        name: ClassScore(
            name=name,
            mean_iou=float(np.mean(ious[name])) if ious[name] else 0.0,
            aggregate_iou=inter_total[name] / union_total[name] if union_total[name] else 0.0,
            images=len(ious[name]),
        )
        for name in names
    }
    return ParsingReport(
        method=method,
        images=len(pairs),
        faces_found=faces_found,
        seconds=seconds,
        scores=scores,
    )
