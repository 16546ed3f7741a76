"""Build the training cache: run the slow teachers once, store compact per-item files.

``python -m arfx.training.prepare --data /path/to/shared/data [--cache DIR]``

Needs the runtime environment (MediaPipe for the face mesh and head pose, ``ai-edge-litert``
for the hair teacher); the dataset that reads the cache needs only numpy and OpenCV. Each item
becomes one ``.npz`` under ``<cache>/<kind>/`` holding the source image as JPEG bytes, its
labels as PNG bytes and the teachers' outputs, so the trainer never decodes video or runs
MediaPipe. Items already in the cache are skipped, so an interrupted run resumes.

Layout of an item file (absent keys = not available for that item):

- ``image``: encoded RGB image (JPEG/PNG bytes as uint8, decode with ``cv2.imdecode``, BGR).
- ``labels``: PNG bytes of arfx class ids (``CELEBAMASK_TO_ARFX``), full resolution.
- ``mesh``: (478, 3) float32 face-mesh landmarks, frame pixels (static-image tracking).
- ``rotation``: (3, 3) float32 head-to-camera rotation of that image (``Face.pose.rotation``).
- ``ibug68``: (68, 2) float32 ground-truth iBUG points, frame pixels.
- ``hair``: PNG bytes of the hair teacher's probability (uint8, 255 = 1) in frame pixels.
- ``hair_matrix``: (2, 3) float64 frame -> teacher-crop map; outside that crop ``hair`` is 0
  because the teacher never saw it, not because there is no hair.

``index.json`` lists every item with its kind, split and what it has.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..alignment import align_mesh
from ..faceparts import CELEBAMASK_HAIR, CELEBAMASK_HAT, CELEBAMASK_TO_ARFX, MESH_TO_IBUG68
from .splits import celebamask_split, data_root, udacity_split, video_items

__all__ = [
    "CACHE_VERSION",
    "KINDS",
    "PrepareReport",
    "default_cache_dir",
    "main",
    "prepare",
    "teacher_hair_iou",
]

CACHE_VERSION = "train-v1"
KINDS: tuple[str, ...] = ("celebamask", "udacity", "video")
VIDEO_STRIDE = 2
"""Every 2nd frame of every video: about 490 frames, about 340 of them with a face (the
brief asked for ~400; the next stride down, 1, doubles it with near-duplicate frames)."""
TEACHER_SIZE = 512
TEACHER_SCALE = 1.5
"""Teacher crop half-width relative to FFHQ's. Wider than the model's crop (CROP_SCALE) so
rotated, zoomed-out training crops still lie inside what the teacher saw; on 40 CelebAMask val
images its hair IoU was 0.80 at 1.5 against 0.80 at 1.25 and 0.79 at 1.8."""
REAL_OCCLUDER_FRAMES: dict[str, tuple[int, int]] = {"WolfgangLanger_Pexels.mp4": (48, 240)}
"""Frame ranges (inclusive) where a real hand covers the face: nobody labelled it, so their
occlusion target is unknown (the dataset gives them occlusion weight 0)."""
MESH_AGREEMENT = 0.25
"""A mesh whose inner iBUG points are further than this (median, in inter-ocular distances)
from the 68-point ground truth is a different or failed face and is dropped."""
JPEG_QUALITY = 92


def default_cache_dir() -> Path:
    """$ARFX_CACHE or ~/.cache/arfx, subfolder ``train-v1``."""
    root = os.environ.get("ARFX_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "arfx"
    return base / CACHE_VERSION


@dataclass
class PrepareReport:
    """What ``prepare`` did: items per kind and split, faces the mesh missed, time, size."""

    counts: dict[str, int] = field(default_factory=dict)
    """"kind/split" -> usable items in the cache."""
    new: int = 0
    """Items processed by this run (the rest were already cached)."""
    no_face: list[str] = field(default_factory=list)
    """Items where MediaPipe found no (agreeing) face."""
    seconds: float = 0.0
    bytes: int = 0

    def table(self) -> str:
        lines = [f"{key:<20} {n:>5}" for key, n in sorted(self.counts.items())]
        lines.append(
            f"new items {self.new}, no face {len(self.no_face)}, "
            f"{self.seconds:.1f} s, cache {self.bytes / 2**20:.1f} MiB"
        )
        return "\n".join(lines)


class _Tracker:
    """Static-image face mesh + head pose, one face per image."""

    def __init__(self) -> None:
        from ..tracking import FaceTracker, TrackerOptions  # mediapipe: runtime venv only

        self._tracker = FaceTracker(TrackerOptions(static_images=True, max_faces=1))

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        faces = self._tracker.track(rgb)
        if not faces:
            return None
        face = faces[0]
        return face.landmarks.astype(np.float32), face.pose.rotation.astype(np.float32)

    def close(self) -> None:
        self._tracker.close()


class HairTeacher:
    """MediaPipe's hair segmentation (TFLite) run on an aligned face crop."""

    def __init__(self, model: Path, threads: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(str(model), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._x = np.zeros((1, TEACHER_SIZE, TEACHER_SIZE, 4), dtype=np.float32)

    def crop_probability(self, rgb512: np.ndarray) -> np.ndarray:
        """Hair probability (512x512 float32) of a 512x512 RGB crop; previous mask = zeros."""
        self._x[0, :, :, :3] = rgb512.astype(np.float32) / 255.0
        self._interpreter.set_tensor(self._input, self._x)
        self._interpreter.invoke()
        logits = self._interpreter.get_tensor(self._output)[0]
        return (1.0 / (1.0 + np.exp(logits[..., 0] - logits[..., 1]))).astype(np.float32)

    def frame_probability(self, rgb: np.ndarray, mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hair probability in frame pixels, frame -> teacher-crop matrix)."""
        alignment = align_mesh(mesh, size=TEACHER_SIZE, scale=TEACHER_SCALE)
        crop = alignment.crop(rgb)
        probability = self.crop_probability(crop)
        return alignment.paste(probability, rgb.shape[:2]), alignment.matrix


def _encode(image: np.ndarray, ext: str, quality: int = JPEG_QUALITY) -> np.ndarray:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buffer = cv2.imencode(ext, image, params)
    if not ok:
        raise RuntimeError(f"cannot encode {ext}")
    return buffer.reshape(-1)


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _read_palette(path: Path) -> np.ndarray:
    from PIL import Image  # cv2 would expand the palette into colours

    with Image.open(path) as image:
        return np.asarray(image)


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _subset(names_by_split: dict[str, list[str]], limit: int | None) -> list[tuple[str, str]]:
    """(name, split) pairs; with ``limit``, half from val and the rest from train."""
    if limit is None:
        return [(n, s) for s, names in names_by_split.items() for n in names]
    n_val = min(len(names_by_split["val"]), (limit + 1) // 2)
    n_train = min(len(names_by_split["train"]), limit - n_val)
    return [(n, "val") for n in names_by_split["val"][:n_val]] + [
        (n, "train") for n in names_by_split["train"][:n_train]
    ]


def _mesh_agrees(mesh: np.ndarray, points68: np.ndarray) -> bool:
    inner = slice(17, 68)
    ocular = np.linalg.norm(points68[45] - points68[36])
    error = np.linalg.norm(mesh[MESH_TO_IBUG68, :2][inner] - points68[inner], axis=1)
    return bool(np.median(error) <= MESH_AGREEMENT * max(ocular, 1.0))


def _celebamask(root: Path, out: Path, limit: int | None, tracker: _Tracker, report) -> list:
    folder = root / "parsing" / "celebamask"
    todo = _subset({s: celebamask_split(root, s) for s in ("val", "train")}, limit)
    entries = []
    for stem, split in todo:
        path = out / "celebamask" / f"{stem}.npz"
        palette = _read_palette(folder / "masks" / f"{stem}.png")
        if not path.exists():
            image_path = folder / "images" / f"{stem}.jpg"
            rgb = _read_rgb(image_path)
            labels = CELEBAMASK_TO_ARFX[palette]
            if labels.shape != rgb.shape[:2]:
                labels = cv2.resize(labels, rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST)
            arrays = {
                "image": np.frombuffer(image_path.read_bytes(), dtype=np.uint8),
                "labels": _encode(labels, ".png"),
            }
            tracked = tracker(rgb)
            if tracked is not None:
                arrays["mesh"], arrays["rotation"] = tracked
            _save(path, arrays)
            report.new += 1
        entry = _entry("celebamask", stem, split, path)
        entry.update(_label_shares(palette))
        entries.append(entry)
    return entries


def _label_shares(palette: np.ndarray) -> dict[str, float]:
    """Shares of a CelebAMask label image that are hair and hat. Hats become background in
    arfx's classes, so the index keeps them for the trainer's ``--hats`` and ``--little-hair``."""
    return {
        "hair_share": round(float(np.mean(palette == CELEBAMASK_HAIR)), 5),
        "hat_share": round(float(np.mean(palette == CELEBAMASK_HAT)), 5),
    }


def _read_udacity(root: Path) -> dict[str, np.ndarray]:
    csv = root / "landmarks68" / "udacity" / "keypoints.csv"
    points = {}
    for line in csv.read_text().splitlines()[1:]:
        if not line or line.startswith(","):
            continue
        name, *values = line.split(",")
        points[name] = np.asarray(values, dtype=np.float32).reshape(68, 2)
    return points


def _udacity(root: Path, out: Path, limit: int | None, tracker: _Tracker, report) -> list:
    folder = root / "landmarks68" / "udacity" / "images"
    todo = _subset({s: udacity_split(root, s) for s in ("val", "train")}, limit)
    points = _read_udacity(root) if todo else {}
    entries = []
    for name, split in todo:
        path = out / "udacity" / f"{Path(name).stem}.npz"
        if not path.exists():
            image_path = folder / name
            rgb = _read_rgb(image_path)
            arrays = {
                "image": np.frombuffer(image_path.read_bytes(), dtype=np.uint8),
                "ibug68": points[name],
            }
            tracked = tracker(rgb)
            if tracked is not None and _mesh_agrees(tracked[0], points[name]):
                arrays["mesh"], arrays["rotation"] = tracked
            _save(path, arrays)
            report.new += 1
        entries.append(_entry("udacity", name, split, path))
    return entries


def _video_frames(root: Path, names: list[str], limit: int | None) -> dict[str, list[int]]:
    """Frame numbers to sample per video: every VIDEO_STRIDE-th, so the frames spread evenly
    across every video (and across the hand-over-mouth part of WolfgangLanger); with
    ``limit``, that many of those, evenly spaced over all videos."""
    import av

    picks = {}
    for name in names:
        with av.open(str(root / "videos" / name)) as container:
            count = int(container.streams.video[0].frames or 0)
        picks[name] = list(range(VIDEO_STRIDE // 2, count, VIDEO_STRIDE))
    if limit is not None:
        flat = [(name, f) for name, frames in picks.items() for f in frames]
        keep = {flat[int(i)] for i in np.linspace(0, len(flat) - 1, min(limit, len(flat)))}
        picks = {name: [f for f in frames if (name, f) in keep] for name, frames in picks.items()}
    return picks


def _video(
    root: Path,
    out: Path,
    limit: int | None,
    videos: list[str] | None,
    tracker: _Tracker,
    teacher_model: Path,
    report,
) -> list:
    import av

    names = videos if videos is not None else video_items(root)
    picks = _video_frames(root, names, limit)
    entries = []
    teacher: HairTeacher | None = None
    for name, frames in picks.items():
        stem = Path(name).stem
        paths = {f: out / "video" / f"{stem}_{f:05d}.npz" for f in frames}
        missing = {f for f, p in paths.items() if not p.exists()}
        if missing:
            with av.open(str(root / "videos" / name)) as container:
                for index, frame in enumerate(container.decode(video=0)):
                    if index > max(missing):
                        break
                    if index not in missing:
                        continue
                    rgb = frame.to_ndarray(format="rgb24")
                    tracked = tracker(rgb)
                    arrays: dict[str, np.ndarray] = {}
                    if tracked is not None:
                        if teacher is None:
                            teacher = HairTeacher(teacher_model)
                        mesh, rotation = tracked
                        hair, matrix = teacher.frame_probability(rgb, mesh)
                        arrays = {
                            "image": _encode(rgb[:, :, ::-1], ".jpg"),
                            "mesh": mesh,
                            "rotation": rotation,
                            "hair": _encode(np.rint(hair * 255).astype(np.uint8), ".png"),
                            "hair_matrix": matrix,
                        }
                    _save(paths[index], arrays)
                    report.new += 1
            for f in missing:  # past the real end (the stream's frame count was too high)
                if not paths[f].exists():
                    _save(paths[f], {})
        span = REAL_OCCLUDER_FRAMES.get(name)
        for f in frames:
            entry = _entry("video", f"{stem}_{f:05d}", "train", paths[f])
            entry["real_occluder"] = span is not None and span[0] <= f <= span[1]
            entries.append(entry)
    return entries


def _entry(kind: str, name: str, split: str, path: Path) -> dict:
    with np.load(path) as data:
        keys = set(data.files)
    return {
        "kind": kind,
        "name": name,
        "split": split,
        "file": f"{path.parent.name}/{path.name}",
        "has_image": "image" in keys,
        "has_mesh": "mesh" in keys,
        "has_labels": "labels" in keys,
        "has_ibug68": "ibug68" in keys,
        "has_hair": "hair" in keys,
        "real_occluder": False,
    }


def usable(entry: dict) -> bool:
    """An item can be cropped: it has an image and a mesh or 68 ground-truth points."""
    return entry["has_image"] and (entry["has_mesh"] or entry["has_ibug68"])


def prepare(
    data: Path | str | None = None,
    cache: Path | str | None = None,
    *,
    limit: int | Mapping[str, int] | None = None,
    kinds: tuple[str, ...] = KINDS,
    videos: list[str] | None = None,
    teacher_model: Path | str | None = None,
) -> PrepareReport:
    """Fill ``cache`` (default ``default_cache_dir()``) from the shared ``data`` folder.

    ``limit`` caps the items per kind, one number for all or a {kind: number} mapping (kinds
    it leaves out are not capped): half val, half train; for videos, frames evenly spread.
    ``videos`` restricts the video files. Both are for tests and quick looks. Writes
    ``index.json`` listing every item of this call's selection, usable or not, so a limited
    run into the full cache narrows what the dataset sees until the next full run.
    """
    start = time.perf_counter()
    root = data_root(data)
    out = Path(cache) if cache is not None else default_cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    model = (
        Path(teacher_model)
        if teacher_model is not None
        else root.parent / "models" / "mediapipe_hair_segmentation.tflite"
    )
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    limits = dict(limit) if isinstance(limit, Mapping) else dict.fromkeys(KINDS, limit)
    report = PrepareReport()
    tracker = _Tracker()
    entries: list[dict] = []
    try:
        if "celebamask" in kinds:
            entries += _celebamask(root, out, limits.get("celebamask"), tracker, report)
        if "udacity" in kinds:
            entries += _udacity(root, out, limits.get("udacity"), tracker, report)
        if "video" in kinds:
            entries += _video(root, out, limits.get("video"), videos, tracker, model, report)
    finally:
        tracker.close()
    index = {
        "version": CACHE_VERSION,
        "data": str(root),
        "items": entries,
    }
    tmp = out / "index.json.tmp"
    tmp.write_text(json.dumps(index, indent=1))
    tmp.replace(out / "index.json")
    counts: Counter[str] = Counter()
    for entry in entries:
        if usable(entry):
            counts[f"{entry['kind']}/{entry['split']}"] += 1
        if not entry["has_mesh"]:
            report.no_face.append(f"{entry['kind']}/{entry['name']}")
    report.counts = dict(counts)
    report.seconds = time.perf_counter() - start
    report.bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return report


def teacher_hair_iou(
    data: Path | str | None = None,
    cache: Path | str | None = None,
    split: str = "val",
    teacher_model: Path | str | None = None,
) -> float:
    """The hair teacher's aggregate hair IoU (threshold 0.5) on CelebAMask ``split``, run the
    way ``prepare`` runs it on video frames (aligned crop, TEACHER_SCALE), from the cache."""
    root = data_root(data)
    out = Path(cache) if cache is not None else default_cache_dir()
    model = teacher_model or root.parent / "models" / "mediapipe_hair_segmentation.tflite"
    teacher = HairTeacher(Path(model))
    inter = union = 0
    for stem in celebamask_split(root, split):
        path = out / "celebamask" / f"{stem}.npz"
        if not path.exists():
            continue
        with np.load(path) as item:
            if "mesh" not in item.files:
                continue
            rgb = cv2.imdecode(item["image"], cv2.IMREAD_COLOR)[:, :, ::-1]
            hair = cv2.imdecode(item["labels"], cv2.IMREAD_UNCHANGED) == 8
            predicted = teacher.frame_probability(np.ascontiguousarray(rgb), item["mesh"])[0]
        inter += int(np.count_nonzero((predicted > 0.5) & hair))
        union += int(np.count_nonzero((predicted > 0.5) | hair))
    return inter / union if union else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m arfx.training.prepare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="shared data folder (default $ARFX_DATA or ../shared/data)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help=f"cache folder (default $ARFX_CACHE or ~/.cache/arfx, subfolder {CACHE_VERSION})",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="at most N items per kind (half val, half train)"
    )
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    parser.add_argument("--videos", default=None, help="comma-separated video file names")
    parser.add_argument(
        "--teacher-iou",
        action="store_true",
        help="also report the hair teacher's IoU on CelebAMask val",
    )
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    cache = args.cache if args.cache is not None else default_cache_dir()
    report = prepare(
        args.data,
        cache,
        limit=args.limit,
        kinds=tuple(k for k in args.kinds.split(",") if k),
        videos=args.videos.split(",") if args.videos else None,
    )
    print(f"cache {cache}")
    print(report.table())
    images = [n for n in report.no_face if not n.startswith("video/")]
    frames = Counter(n.rsplit("_", 1)[0] for n in report.no_face if n.startswith("video/"))
    if images:
        print("no (agreeing) face:", " ".join(images))
    if frames:
        print("video frames without a face:", ", ".join(f"{k} {v}" for k, v in frames.items()))
    if args.teacher_iou:
        print(f"hair teacher IoU on CelebAMask val: {teacher_hair_iou(args.data, cache):.4f}")
    (Path(cache) / "report.json").write_text(json.dumps(asdict(report), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
