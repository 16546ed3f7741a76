"""Face-parsing accuracy (``arfx eval parsing``): CelebAMask-HQ style pairs (``images/``
photos, ``masks/`` PNG label maps whose pixel values are class ids), scored as IoU per arfx
mask name. Every method runs on the same images and the same tracked faces, so their numbers
compare directly: the face model, the mesh's lip polygons and MediaPipe's hair segmentation (a
teacher and baseline, never shipped). With ``occluder=True`` a synthetic occluder is pasted
over each mouth after tracking: it measures whether lips are drawn on top of it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..errors import SourceError
from ..faceparts import CELEBAMASK_HAT, CELEBAMASK_TO_ARFX, CLASS_INDEX, MODEL_MASKS
from ..training.splits import CELEBAMASK_VAL, data_root, split_by_hash
from .common import (
    IMAGE_SUFFIXES,
    SPLITS,
    THRESHOLD,
    check_limit,
    per_image_ms,
    read_image,
    text_grid,
)
from .occluders import OCCLUDER_KINDS, occluder_kind, occluder_seed, synthetic_occluder

__all__ = [
    "EVAL_CLASSES",
    "METHODS",
    "METHOD_CLASSES",
    "PARSING_CLASSES",
    "TEACHER_FILE",
    "ClassScore",
    "MethodResult",
    "OccluderScore",
    "CROWN_CUT",
    "EDGE_BAND",
    "crown_cut_row",
    "ParsingReport",
    "default_teacher_path",
    "evaluate_parsing",
    "load_celebamask",
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
PARSING_CLASSES: dict[str, tuple[int, ...]] = {
    "lips": (11, 12),
    "upper_lip": (11,),
    "lower_lip": (12,),
    "inner_mouth": (10,),
}
"""The mesh's mask names as CelebAMask-HQ class ids (the first version's table; the labels are
now mapped with ``CELEBAMASK_TO_ARFX``, which gives the same ground truth for these)."""

TEACHER_FILE = "mediapipe_hair_segmentation.tflite"
TEACHER_SIZE = 512

CROWN_CUT = 0.5
"""Where ``crown_cut`` cuts: this fraction of the way from the hair's top row down to the brows'
top row (Wolfgang's frames 85-110 cut the crown about so)."""
EDGE_BAND = 0.08
"""Height of the band below the cut that is scored on its own, as a fraction of the label
height (41 rows of a 512-row label)."""
_CUT_MIN_HAIR = 0.15
"""``crown_cut`` keeps an image only if hair covers this fraction of the label width at the cut
row and the hair reaches this fraction of the label height above the brows."""

_TRUTH_CLASSES = {
    name: np.array([CLASS_INDEX[c] for c in MODEL_MASKS[name]], dtype=np.uint8)
    for name in EVAL_CLASSES
}


@dataclass
class ClassScore:
    """IoU of one mask name over a data set.

    ``mean_iou`` averages per-image IoU (every face counts equally); ``aggregate_iou`` is total
    intersection over total union (large mouths weigh more). ``images`` counts the images scored:
    those where prediction and label are both empty are left out rather than counted as 0 or 1.
    A mean hides how the errors spread: ``median_iou`` and ``low_iou`` (the 10th percentile)
    say whether a few faces pull it down, ``lowest`` names them (image name: IoU, worst first).
    """

    name: str
    mean_iou: float
    aggregate_iou: float
    images: int
    median_iou: float = 0.0
    low_iou: float = 0.0
    lowest: dict[str, float] = field(default_factory=dict)


@dataclass
class OccluderScore:
    """How a method's lips behave under the synthetic mouth occluder.

    ``covered`` is the fraction of the occluder's pixels the lips mask covers (mean over images;
    ``covered_aggregate`` pools the pixels). The occluder is larger than the lips, so even a
    mask that ignores it entirely covers only part of it: ``hidden_lips_covered`` is the
    fraction of the true lips hidden by the occluder that the mask still claims (1.0 = drawn
    straight over the hand). ``lips_outside`` is the lips IoU with the occluder's pixels left
    out of both prediction and label: whether the visible lips stay right. ``covered_by_kind``
    is ``covered`` for each kind of occluder drawn (``OCCLUDER_KINDS``: a skin-toned hand, a
    textured ellipse or rectangle), over ``images_by_kind`` images.
    """

    images: int
    covered: float
    covered_aggregate: float
    hidden_lips_covered: float
    hidden_lips_covered_aggregate: float
    lips_outside: ClassScore
    covered_by_kind: dict[str, float] = field(default_factory=dict)
    images_by_kind: dict[str, int] = field(default_factory=dict)


@dataclass
class HatScore:
    """How much of the hats a method calls hair: ``called_hair`` is the share of each
    labelled hat's pixels in the method's hair mask (mean over images with a hat;
    ``called_hair_aggregate`` pools the pixels). hair_color recolours what is called hair,
    and CelebAMask labels hats apart from hair, so 0 is right."""

    images: int
    called_hair: float
    called_hair_aggregate: float


@dataclass
class MethodResult:
    """One method's scores; ``status`` is "ok" or "unavailable: <why>" (then no scores)."""

    name: str
    status: str = "ok"
    seconds: float = 0.0
    """Time spent in this method's predictions (tracking excluded: it is shared)."""
    scores: dict[str, ClassScore] = field(default_factory=dict)
    occluder: OccluderScore | None = None
    edge: ClassScore | None = None
    """With ``crown_cut``: hair IoU in the band of ``EDGE_BAND`` below the frame's top edge."""
    hats: HatScore | None = None
    """For methods with a hair mask: the hats they call hair."""

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
    lip_prior: bool = True
    """Whether the model was given the mesh lip polygons (``--no-lip-prior``: not)."""
    warm_start: bool = True
    """Whether each photo went through the model twice (``ModelSchedule.warm_start``), as a
    session runs it; ``--cold-start``: once, from empty context."""
    crown_cut: bool = False
    """Each image was cut so its top edge crosses the hair (``crown_cut_row``); images without
    enough hair above the brows were left out (``cut_skipped``)."""
    cut_skipped: int = 0
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
            "crown_cut": self.crown_cut,
            "lip_prior": self.lip_prior,
            "warm_start": self.warm_start,
            "cut_skipped": self.cut_skipped,
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
            crown_cut=bool(data.get("crown_cut", False)),
            lip_prior=bool(data.get("lip_prior", True)),
            # reports written before warm starts existed ran the model once
            warm_start=bool(data.get("warm_start", False)),
            cut_skipped=int(data.get("cut_skipped", 0)),
            data=str(data.get("data", "")),
            tracking_seconds=float(data.get("tracking_seconds", 0.0)),
        )

    def table(self) -> str:
        """A readable text table, one pair of columns (mean, aggregate IoU) per method."""
        found = 100.0 * self.faces_found / self.images if self.images else 0.0
        where = f"{Path(self.data).name or 'parsing'} split {self.split}"
        if self.occluder:
            where += ", mouth occluded"
        if not self.lip_prior:
            where += ", model without the mesh lip prior"
        if not self.warm_start:
            where += ", model from a cold start (one run)"
        if self.crown_cut:
            where += f", top edge cut through the hair ({self.cut_skipped} without hair to cut)"
        tracking = per_image_ms(self.tracking_seconds, self.images)
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
            for kind in OCCLUDER_KINDS:
                counts = [m.occluder.images_by_kind.get(kind, 0) for m in methods if m.occluder]
                if not any(counts):
                    continue
                article = "an" if kind[0] in "aeiou" else "a"
                row = [f"  by {article} {kind} ({max(counts)})"]
                for m in methods:
                    value = m.occluder.covered_by_kind.get(kind) if m.occluder else None
                    row += _pair(value, None)
                rows.append(row)
        if any(m.hats is not None and m.hats.images for m in methods):
            row = ["hat called hair"]
            for m in methods:
                hats = m.hats
                has = hats is not None and hats.images > 0
                row += (
                    _pair(hats.called_hair, hats.called_hair_aggregate)
                    if has
                    else _pair(None, None)
                )
            rows.append(row)
        if self.crown_cut:
            row = ["hair at the edge"]
            for m in methods:
                edge = m.edge
                row += (
                    _pair(edge.mean_iou, edge.aggregate_iou)
                    if edge and edge.images
                    else _pair(None, None)
                )
            rows.append(row)
        timing = ["ms per image"]
        for m in methods:
            timing += [per_image_ms(m.seconds, self.images) if m.available else "-", ""]
        rows.append(timing)
        lines += text_grid(rows)
        for m in methods:
            for name in SPREAD_CLASSES:
                score = m.scores.get(name)
                if score is None or not score.images or not score.lowest:
                    continue
                worst = ", ".join(f"{image} {iou:.2f}" for image, iou in score.lowest.items())
                lines.append(
                    f"{m.name} {name} per image: median {score.median_iou:.4f}, a tenth of the "
                    f"images below {score.low_iou:.4f}; lowest: {worst}"
                )
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
    edge = data.get("edge")
    hats = data.get("hats")
    return MethodResult(
        edge=ClassScore(**edge) if edge else None,
        hats=HatScore(**hats) if hats else None,
        name=str(data["name"]),
        status=str(data.get("status", "ok")),
        seconds=float(data.get("seconds", 0.0)),
        scores={name: ClassScore(**score) for name, score in data.get("scores", {}).items()},
        occluder=occluder,
    )


def _pair(mean: float | None, aggregate: float | None) -> list[str]:
    return [
        "-" if mean is None else f"{mean:.4f}",
        "-" if aggregate is None else f"{aggregate:.4f}",
    ]


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
    check_limit(limit)
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
    """Per-image IoUs (with the images' names) and pooled counts of one (method, mask name)."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.images: list[str] = []
        self.intersection = 0
        self.union = 0

    def add(self, predicted: np.ndarray, truth: np.ndarray, image: str = "") -> None:
        intersection, union = _iou_counts(predicted, truth)
        if union == 0:
            return  # nothing predicted, nothing labelled: no evidence either way
        self.values.append(intersection / union)
        self.images.append(image)
        self.intersection += intersection
        self.union += union

    def score(self, name: str) -> ClassScore:
        values = np.asarray(self.values, np.float64)
        worst = np.argsort(values, kind="stable")[:LOWEST]
        return ClassScore(
            name=name,
            mean_iou=float(values.mean()) if values.size else 0.0,
            aggregate_iou=self.intersection / self.union if self.union else 0.0,
            images=int(values.size),
            median_iou=float(np.median(values)) if values.size else 0.0,
            low_iou=float(np.percentile(values, 10)) if values.size else 0.0,
            lowest={self.images[i]: round(float(values[i]), 4) for i in worst},
        )


SPREAD_CLASSES = ("lips", "hair", "skin")
"""Classes whose per-image spread and lowest images the text report shows (JSON: all)."""
LOWEST = 5
"""Images named per class as the lowest-scoring (``ClassScore.lowest``)."""


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


def _model_method(
    model_path: Path | str | None,
    lip_prior: bool = True,
    streaming: bool = False,
    warm_start: bool = True,
) -> tuple[Predict | None, str]:
    """The model as a method; ``streaming`` feeds each call's masks back as the next call's
    context (frames of one video), otherwise every call starts a new track (photos), which
    runs the model twice unless ``warm_start`` is False (``ModelSchedule.warm_start``)."""
    from ..model import DEFAULT_MODEL, FaceAnalyzer, FaceModel, ModelMasks, ModelSchedule

    if model_path is None and not DEFAULT_MODEL.is_file():
        return None, f"unavailable: no model file at {DEFAULT_MODEL} (pass --model)"
    # An explicit path that is missing or broken raises ModelError: a mistake, not a gap.
    schedule = ModelSchedule(warm_start=warm_start)
    analyzer = FaceAnalyzer(FaceModel(model_path), lip_prior=lip_prior, schedule=schedule)
    masks = ModelMasks()

    def predict(rgb: np.ndarray, faces: Sequence[Any], names: Sequence[str]) -> dict:
        if not streaming:
            analyzer.reset()  # unrelated photos: no previous frame to feed back as context
        analyses = analyzer.analyze(rgb, list(faces))
        return masks.build(analyses, rgb.shape[:2], names)

    return predict, "ok"


def _mesh_method() -> tuple[Predict, str]:
    from ..masks import MeshMasks

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
        from ..training.prepare import HairTeacher

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


def evaluate_parsing(
    data_dir: Path | str,
    *,
    methods: Sequence[str] = METHODS,
    split: str = "all",
    limit: int | None = None,
    occluder: bool = False,
    crown_cut: bool = False,
    lip_prior: bool = True,
    warm_start: bool = True,
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
    background, as the model contract defines. With ``crown_cut`` each image and its labels
    lose the rows above ``crown_cut_row`` before tracking, so the crop reaches past the top edge
    as it does for a head at the top of a video frame; hair in the band just below that edge is
    scored on its own (``MethodResult.edge``), and images with too little hair are left out.
    ``lip_prior=False`` runs the model without the mesh lip polygons in its context: what
    it finds in the image alone. ``warm_start=False`` runs the model once per photo, from
    empty context, instead of twice as a session does. ``progress(done, total)`` is called
    after each image. ``method`` is the first version's single-method argument.
    """
    if method is not None:
        methods = (method,)
    methods = tuple(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(
            f"unknown method {unknown or methods!r}; valid methods: {', '.join(METHODS)}"
        )
    from ..tracking import FaceTracker, TrackerOptions  # mediapipe is slow to import

    pairs = load_celebamask(data_dir, limit=limit, split=split)
    runners: dict[str, Predict] = {}
    results: dict[str, MethodResult] = {}
    for name in methods:
        if name == "model":
            predict, status = _model_method(model_path, lip_prior, warm_start=warm_start)
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
    by_kind = {m: {k: _FractionTally() for k in OCCLUDER_KINDS} for m in runners}
    edges = {m: _IouTally() for m in runners if "hair" in METHOD_CLASSES[m]}
    hats = {m: _FractionTally() for m in runners if "hair" in METHOD_CLASSES[m]}
    faces_found = scored = skipped = 0
    tracking = 0.0
    start = time.perf_counter()
    with FaceTracker(TrackerOptions(static_images=True, max_faces=1)) as tracker:
        for done, (image_path, mask_path) in enumerate(pairs, start=1):
            rgb = read_image(image_path)
            labels = _read_labels(mask_path)
            _check_sizes(rgb, labels, image_path, mask_path)
            classes = CELEBAMASK_TO_ARFX[labels]
            band = 0
            if crown_cut:
                cut = crown_cut_row(classes)
                if cut is None:
                    skipped += 1
                    if progress is not None:
                        progress(done, len(pairs))
                    continue
                rgb = np.ascontiguousarray(rgb[cut * rgb.shape[0] // labels.shape[0] :])
                labels, classes = labels[cut:], classes[cut:]
                band = int(round(EDGE_BAND * (labels.shape[0] + cut)))
            scored += 1
            began = time.perf_counter()
            faces = tracker.track(rgb)[:1]
            tracking += time.perf_counter() - began
            faces_found += bool(faces)
            hidden = None
            image = image_path.stem
            if occluder and faces:
                seed = occluder_seed(image)
                rgb, cover = synthetic_occluder(rgb, faces[0].landmarks, seed)
                kind = occluder_kind(seed)
                hidden = _to_size(cover.astype(np.uint8) * 255, labels.shape) >= THRESHOLD
                lips_before = np.isin(classes, _TRUTH_CLASSES["lips"])
                classes[hidden] = CLASS_INDEX["background"]
            truth = {n: np.isin(classes, _TRUTH_CLASSES[n]) for n in EVAL_CLASSES}
            hat = labels == CELEBAMASK_HAT
            for name, predict in runners.items():
                names = METHOD_CLASSES[name]
                began = time.perf_counter()
                masks = predict(rgb, faces, names)
                results[name].seconds += time.perf_counter() - began
                predicted = {n: _to_size(masks[n], labels.shape) >= THRESHOLD for n in names}
                for n in names:
                    tallies[name][n].add(predicted[n], truth[n], image)
                if band and name in edges:
                    edges[name].add(predicted["hair"][:band], truth["hair"][:band], image)
                if name in hats:
                    hats[name].add(predicted["hair"], hat)
                if hidden is not None and "lips" in predicted:
                    covered, hidden_lips, outside = occluded[name]
                    lips = predicted["lips"]
                    covered.add(lips, hidden)
                    by_kind[name][kind].add(lips, hidden)
                    hidden_lips.add(lips, hidden & lips_before)
                    visible = ~hidden
                    outside.add(lips & visible, lips_before & visible, image)
            if progress is not None:
                progress(done, len(pairs))
    for name in runners:
        results[name].scores = {n: t.score(n) for n, t in tallies[name].items()}
        if crown_cut and name in edges:
            results[name].edge = edges[name].score("hair")
        if name in hats:
            tally = hats[name]
            results[name].hats = HatScore(len(tally.values), tally.mean, tally.aggregate)
        if occluder and "lips" in METHOD_CLASSES[name]:
            covered, hidden_lips, outside = occluded[name]
            results[name].occluder = OccluderScore(
                images=len(covered.values),
                covered=covered.mean,
                covered_aggregate=covered.aggregate,
                hidden_lips_covered=hidden_lips.mean,
                hidden_lips_covered_aggregate=hidden_lips.aggregate,
                lips_outside=outside.score("lips"),
                covered_by_kind={k: t.mean for k, t in by_kind[name].items() if t.values},
                images_by_kind={k: len(t.values) for k, t in by_kind[name].items() if t.values},
            )
    return ParsingReport(
        images=scored,
        faces_found=faces_found,
        seconds=time.perf_counter() - start,
        methods=results,
        split=split,
        occluder=occluder,
        crown_cut=crown_cut,
        lip_prior=lip_prior,
        warm_start=warm_start,
        cut_skipped=skipped,
        data=str(data_dir),
        tracking_seconds=tracking,
    )


def crown_cut_row(classes: np.ndarray) -> int | None:
    """The label row at which to cut an image so that its top edge crosses the hair above the
    face, as when a head touches the top of a video frame: ``CROWN_CUT`` of the way from the
    hair's top row to the brows' top row. None when the image has too little hair there.

    ``classes`` holds arfx class ids (``CELEBAMASK_TO_ARFX`` applied).
    """
    height, width = classes.shape
    hair_rows = np.flatnonzero((classes == CLASS_INDEX["hair"]).any(axis=1))
    brow_rows = np.flatnonzero(np.isin(classes, (CLASS_INDEX["brows"], CLASS_INDEX["eyes"])).any(1))
    if not hair_rows.size or not brow_rows.size:
        return None
    top, brows = int(hair_rows[0]), int(brow_rows[0])
    if brows - top < _CUT_MIN_HAIR * height:
        return None
    cut = int(round(top + CROWN_CUT * (brows - top)))
    if np.count_nonzero(classes[cut] == CLASS_INDEX["hair"]) < _CUT_MIN_HAIR * width:
        return None
    return cut


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
