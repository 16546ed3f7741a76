"""How still and how lag-free faces are (``arfx bench stability``): raw against stabilised.

Every test runs two sessions side by side on the same frames: one with
``StabilizerOptions.off()`` (raw MediaPipe landmarks and PnP pose, the model's masks as they
come) and one with the given stabiliser settings.

- *static*: a still photo repeated with fresh sensor noise (Gaussian, sigma 2/255) and a JPEG
  re-encode per frame. Nothing should move: RMS frame-to-frame landmark motion (% of the
  inter-ocular distance), pose wobble (RMS frame-to-frame rotation, degrees), and mask
  flicker (mean 1 - IoU of consecutive lips and hair masks).
- *moving*: the same photo (with the same noise) moved along a known smooth path (translation
  up to 15% of the frame per second, rotation up to 30 degrees per second, scale +-10%).
  Mean landmark error against the path (% inter-ocular), and the lag in frames at the peak of
  the cross-correlation between measured and true landmark velocities.
- *video*: a real video rendered with effects. RMS second difference of the landmark
  trajectories (% inter-ocular: high-frequency energy) and the mean frame-to-frame change of
  the output's pixels inside the effect regions (lips and hair), next to the input's.

The truth for the moving test is the static test's mean raw landmarks, carried along the
known path; MediaPipe's own bias under rotation therefore counts against both rows alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .frame import as_rgb8
from .model import ModelMasks
from .smoothing import StabilizerOptions
from .sources import read_image

NOISE_SIGMA = 2.0 / 255.0
JPEG_QUALITY = 90
REGION_MASKS = ("lips", "hair")


@dataclass
class StaticResult:
    """The still photo: how much a face that does not move moves."""

    jitter: float
    """RMS frame-to-frame landmark motion, % of the inter-ocular distance."""
    pose_wobble: float
    """RMS frame-to-frame head rotation, degrees."""
    flicker: dict[str, float]
    """Mean 1 - IoU of consecutive frames' masks, per mask (lips, hair)."""
    frames: int


@dataclass
class MovingResult:
    """The photo on a known path: how closely and how late faces follow."""

    error: float
    """Mean landmark distance from the known path, % of the inter-ocular distance."""
    lag: float
    """Frames by which the landmarks trail the path (peak of the velocity cross-correlation)."""
    frames: int


@dataclass
class VideoResult:
    """A real video rendered with effects."""

    second_difference: float
    """RMS second difference of the landmark trajectories, % of the inter-ocular distance."""
    output_change: float
    """Mean |frame - previous frame| of the output inside the effect regions, grey levels."""
    input_change: float
    """The same for the input, on the same pixels."""
    frames: int


@dataclass
class StabilityReport:
    """Raw and stabilised results for each input, in one run."""

    options: dict[str, Any]
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    videos: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def noisy_copy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` with fresh sensor noise and one JPEG round trip, as a camera frame has."""
    noise = rng.normal(0.0, NOISE_SIGMA * 255.0, image.shape)
    frame = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def known_path(count: int, fps: float, size: tuple[int, int], centre: np.ndarray) -> np.ndarray:
    """(count, 2, 3) affine transforms of a smooth path about ``centre`` (x, y pixels).

    Peak speeds: 15% of the width and 10% of the height per second, 30 degrees per second;
    scale within +-10%. Sinusoids of different periods, so the motions do not line up.
    """
    width, height = size
    t = np.arange(count) / fps
    w1, w2, w3, w4 = (2 * math.pi * f for f in (0.25, 0.33, 0.3, 0.2))
    tx = 0.15 * width / w1 * np.sin(w1 * t)
    ty = 0.10 * height / w2 * np.sin(w2 * t + 1.0)
    angle = math.radians(30.0) / w3 * np.sin(w3 * t)
    scale = 1.0 + 0.10 * np.sin(w4 * t)
    transforms = np.empty((count, 2, 3))
    for i in range(count):
        c, s = scale[i] * math.cos(angle[i]), scale[i] * math.sin(angle[i])
        linear = np.array([[c, -s], [s, c]])
        transforms[i, :, :2] = linear
        transforms[i, :, 2] = centre + np.array([tx[i], ty[i]]) - linear @ centre
    return transforms


def _session(options: StabilizerOptions, effects: Sequence[str], model_path: Path | None):
    from .session import Session, SessionOptions

    return Session(effects, SessionOptions(stabilizer=options, model_path=model_path))


@dataclass
class _Track:
    """What one run saw of one face, per frame (None where it was not found).

    The face followed is the one nearest to ``near`` when given (the known path), else
    nearest to where it was first seen (the largest face then).
    """

    landmarks: list[np.ndarray | None] = field(default_factory=list)
    rotations: list[np.ndarray | None] = field(default_factory=list)
    masks: list[dict[str, np.ndarray]] = field(default_factory=list)
    inter_ocular: list[float] = field(default_factory=list)
    anchor: np.ndarray | None = None

    def add(
        self,
        faces: Sequence[Any],
        masks: ModelMasks,
        size: tuple[int, int],
        near: np.ndarray | None = None,
    ) -> None:
        near = near if near is not None else self.anchor
        if near is not None and faces:
            face = min(faces, key=lambda f: float(np.linalg.norm(np.subtract(f.center, near))))
            if np.linalg.norm(np.subtract(face.center, near)) > face.size:
                faces = []  # the face followed was not found; another one was
        if not faces:
            self.landmarks.append(None)
            self.rotations.append(None)
            self.masks.append({})
            return
        face = max(faces, key=lambda f: f.size) if near is None else face
        if self.anchor is None:
            self.anchor = np.array(face.center)
        self.landmarks.append(face.landmarks[:, :2].astype(np.float64).copy())
        self.rotations.append(face.pose.rotation.copy())
        self.inter_ocular.append(face.inter_ocular)
        if face.analysis is not None:
            built = masks.build([face.analysis], size, REGION_MASKS)
            self.masks.append({name: built[name] >= 128 for name in REGION_MASKS})
        else:
            self.masks.append({})

    @property
    def scale(self) -> float:
        return float(np.median(self.inter_ocular)) if self.inter_ocular else float("nan")


def _run_both(
    frames: Iterable[tuple[np.ndarray, float, np.ndarray | None]],
    stabilizer: StabilizerOptions,
    model_path: Path | None,
) -> tuple[_Track, _Track]:
    """Both sessions on each (image, time, where the face is or None)."""
    raw, stable = _Track(), _Track()
    with (
        _session(StabilizerOptions.off(), (), model_path) as raw_session,
        _session(stabilizer, (), model_path) as stable_session,
    ):
        masks = ModelMasks()
        for image, time, near in frames:
            size = image.shape[:2]
            raw.add(raw_session.analyze(image, time), masks, size, near)
            stable.add(stable_session.analyze(image, time), masks, size, near)
    return raw, stable


def static_test(
    image: np.ndarray,
    stabilizer: StabilizerOptions,
    *,
    frames: int = 90,
    fps: float = 30.0,
    seed: int = 0,
    model_path: Path | None = None,
) -> tuple[dict[str, StaticResult], np.ndarray]:
    """Raw and stabilised results on a still photo, and the mean raw landmarks (the truth
    for ``moving_test``)."""
    rng = np.random.default_rng(seed)
    sequence = ((noisy_copy(image, rng), i / fps, None) for i in range(frames))
    raw, stable = _run_both(sequence, stabilizer, model_path)
    found = [p for p in raw.landmarks if p is not None]
    if len(found) < frames // 2:
        raise ValueError(f"a face was found in only {len(found)} of {frames} frames")
    results = {name: _static_result(track) for name, track in (("raw", raw), ("stable", stable))}
    return results, np.mean(found, axis=0)


def _static_result(track: _Track) -> StaticResult:
    scale = track.scale
    motions, angles = [], []
    flicker: dict[str, list[float]] = {name: [] for name in REGION_MASKS}
    for t in range(1, len(track.landmarks)):
        a, b = track.landmarks[t - 1], track.landmarks[t]
        if a is None or b is None:
            continue
        motions.append(np.sum((b - a) ** 2, axis=1))
        angles.append(_angle(track.rotations[t - 1], track.rotations[t]))
        for name in REGION_MASKS:
            if name in track.masks[t] and name in track.masks[t - 1]:
                flicker[name].append(1.0 - _iou(track.masks[t - 1][name], track.masks[t][name]))
    jitter = math.sqrt(float(np.mean(np.concatenate(motions)))) / scale * 100.0
    return StaticResult(
        jitter=jitter,
        pose_wobble=math.sqrt(float(np.mean(np.square(angles)))),
        flicker={name: float(np.mean(v)) for name, v in flicker.items() if v},
        frames=len(track.landmarks),
    )


def moving_test(
    image: np.ndarray,
    truth: np.ndarray,
    stabilizer: StabilizerOptions,
    *,
    frames: int = 150,
    fps: float = 30.0,
    seed: int = 1,
    model_path: Path | None = None,
) -> dict[str, MovingResult]:
    """Raw and stabilised results for ``image`` moved along ``known_path``; ``truth`` is the
    face's landmarks (N, 2) in the unmoved image."""
    height, width = image.shape[:2]
    path = known_path(frames, fps, (width, height), truth.mean(axis=0))
    rng = np.random.default_rng(seed)

    expected = np.einsum("tij,nj->tni", path[:, :, :2], truth) + path[:, None, :, 2]

    def sequence():
        for i, transform in enumerate(path):
            moved = cv2.warpAffine(
                image,
                transform,
                (width, height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            yield noisy_copy(moved, rng), i / fps, expected[i].mean(axis=0)

    raw, stable = _run_both(sequence(), stabilizer, model_path)
    return {
        name: _moving_result(track, expected) for name, track in (("raw", raw), ("stable", stable))
    }


def _moving_result(track: _Track, expected: np.ndarray) -> MovingResult:
    scale = track.scale
    errors = [
        float(np.mean(np.linalg.norm(points - truth, axis=1)))
        for points, truth in zip(track.landmarks, expected, strict=True)
        if points is not None
    ]
    if len(errors) < len(expected) // 2:
        raise ValueError(f"the moving face was found in only {len(errors)} frames")
    return MovingResult(
        error=float(np.mean(errors)) / scale * 100.0,
        lag=velocity_lag(track.landmarks, expected),
        frames=len(expected),
    )


def velocity_lag(
    measured: Sequence[np.ndarray | None], truth: np.ndarray, window: int = 6
) -> float:
    """Frames by which ``measured`` trails ``truth`` (both (T, N, 2) point trajectories):
    the peak of the normalised cross-correlation of their velocities, refined by a parabola.

    Every lag is scored over the same frames, so the score does not change with the overlap.
    """
    have = np.array([m is not None for m in measured])
    points = np.array([m if m is not None else np.zeros_like(truth[0]) for m in measured])
    v_measured = np.diff(points, axis=0)
    v_truth = np.diff(truth, axis=0)
    valid = have[1:] & have[:-1]
    t = np.arange(window, len(v_truth) - window)
    t = t[valid[t]]
    if len(t) < 2 * window:
        return float("nan")
    lags = np.arange(-window, window + 1)
    scores = []
    for lag in lags:
        a, b = v_measured[t], v_truth[t - lag]
        scores.append(float(np.sum(a * b) / math.sqrt(np.sum(a * a) * np.sum(b * b) + 1e-12)))
    scores = np.array(scores)
    best = int(np.argmax(scores))
    offset = 0.0
    if 0 < best < len(lags) - 1:
        left, centre, right = scores[best - 1 : best + 2]
        denominator = left - 2 * centre + right
        if denominator < 0:
            offset = 0.5 * (left - right) / denominator
    return float(lags[best] + offset)


def video_test(
    path: Path,
    stabilizer: StabilizerOptions,
    effects: Sequence[str],
    *,
    max_frames: int | None = None,
    model_path: Path | None = None,
    on_frame: Callable[[int, np.ndarray, np.ndarray, np.ndarray], None] | None = None,
) -> dict[str, VideoResult]:
    """Raw and stabilised results for a real video rendered with ``effects``.

    The effect regions are the stabilised run's lips and hair masks of each frame; the same
    pixels are compared in the input and both outputs. ``on_frame(index, input, raw,
    stable)`` sees every frame (to save some for viewing).
    """
    from .sources import VideoFileSource

    raw, stable = _Track(), _Track()
    change = {"raw": [], "stable": [], "input": []}
    previous: dict[str, np.ndarray] | None = None
    masks = ModelMasks()
    with (
        _session(StabilizerOptions.off(), effects, model_path) as raw_session,
        _session(stabilizer, effects, model_path) as stable_session,
        VideoFileSource(path) as source,
    ):
        for frame in source:
            if max_frames is not None and frame.index >= max_frames:
                break
            image = as_rgb8(frame.image)
            size = image.shape[:2]
            raw_frame = raw_session.process_frame(replace(frame, image=image))
            stable_frame = stable_session.process_frame(replace(frame, image=image))
            raw.add(raw_frame.faces, masks, size)
            stable.add(stable_frame.faces, masks, size)
            current = {"input": image, "raw": raw_frame.image, "stable": stable_frame.image}
            region = np.zeros(size, bool)
            for mask in stable.masks[-1].values():
                region |= mask
            if previous is not None and region.any():
                for name, picture in current.items():
                    difference = np.abs(picture.astype(np.int16) - previous[name].astype(np.int16))
                    change[name].append(float(difference[region].mean()))
            previous = current
            if on_frame is not None:
                on_frame(frame.index, image, raw_frame.image, stable_frame.image)
    input_change = float(np.mean(change["input"])) if change["input"] else float("nan")
    return {
        name: VideoResult(
            second_difference=_second_difference(track),
            output_change=float(np.mean(change[name])) if change[name] else float("nan"),
            input_change=input_change,
            frames=len(track.landmarks),
        )
        for name, track in (("raw", raw), ("stable", stable))
    }


def _second_difference(track: _Track) -> float:
    values = []
    points = track.landmarks
    for t in range(1, len(points) - 1):
        a, b, c = points[t - 1], points[t], points[t + 1]
        if a is None or b is None or c is None:
            continue
        values.append(np.sum((c - 2 * b + a) ** 2, axis=1))
    if not values:
        return float("nan")
    return math.sqrt(float(np.mean(np.concatenate(values)))) / track.scale * 100.0


def bench_stability(
    images: Sequence[Path],
    videos: Sequence[Path],
    stabilizer: StabilizerOptions | None = None,
    *,
    effects: Sequence[str] = ("lipstick", "hair_color"),
    static_frames: int = 90,
    moving_frames: int = 150,
    max_video_frames: int | None = None,
    model_path: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> StabilityReport:
    """Run every test on every input; raw and stabilised side by side."""
    stabilizer = stabilizer or StabilizerOptions()
    report = StabilityReport(options=asdict(stabilizer))
    for path in images:
        if progress:
            progress(f"{path.name}: static")
        image = read_image(path)
        static, truth = static_test(
            image, stabilizer, frames=static_frames, fps=stabilizer.fps, model_path=model_path
        )
        if progress:
            progress(f"{path.name}: moving")
        moving = moving_test(
            image,
            truth,
            stabilizer,
            frames=moving_frames,
            fps=stabilizer.fps,
            model_path=model_path,
        )
        report.images[str(path)] = {
            mode: {"static": asdict(static[mode]), "moving": asdict(moving[mode])}
            for mode in ("raw", "stable")
        }
    for path in videos:
        if progress:
            progress(f"{path.name}: video")
        result = video_test(
            path, stabilizer, effects, max_frames=max_video_frames, model_path=model_path
        )
        report.videos[str(path)] = {mode: asdict(result[mode]) for mode in ("raw", "stable")}
    return report


def stability_table(report: StabilityReport) -> str:
    """The report as a text table: one line per input and mode."""
    lines = []
    if report.images:
        lines.append(
            f"{'image':<18} {'mode':<7} {'jitter %IOD':>11} {'pose deg':>9} {'lips 1-IoU':>11} "
            f"{'hair 1-IoU':>11} {'moving err %IOD':>15} {'lag frames':>10}"
        )
        for path, modes in report.images.items():
            for mode, result in modes.items():
                s, m = result["static"], result["moving"]
                lips = s["flicker"].get("lips", float("nan"))
                hair = s["flicker"].get("hair", float("nan"))
                lines.append(
                    f"{Path(path).name:<18} {mode:<7} {s['jitter']:>11.3f} "
                    f"{s['pose_wobble']:>9.3f} {lips:>11.4f} {hair:>11.4f} "
                    f"{m['error']:>15.3f} {m['lag']:>10.2f}"
                )
            raw, stable = modes["raw"]["static"], modes["stable"]["static"]
            m_raw, m_stable = modes["raw"]["moving"], modes["stable"]["moving"]
            lines.append(
                f"{'':<18} {'ratio':<7} {stable['jitter'] / raw['jitter']:>11.3f} "
                f"{'':>9} {'':>11} {'':>11} {m_stable['error'] / m_raw['error']:>15.3f}"
            )
    if report.videos:
        if lines:
            lines.append("")
        lines.append(
            f"{'video':<28} {'mode':<7} {'2nd diff %IOD':>13} {'output change':>13} "
            f"{'input change':>12} {'excess':>7}"
        )
        for path, modes in report.videos.items():
            for mode, r in modes.items():
                lines.append(
                    f"{Path(path).name:<28} {mode:<7} {r['second_difference']:>13.3f} "
                    f"{r['output_change']:>13.2f} {r['input_change']:>12.2f} "
                    f"{r['output_change'] - r['input_change']:>7.2f}"
                )
    return "\n".join(lines)


def _angle(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Degrees of the rotation between two rotation matrices."""
    if a is None or b is None:
        return 0.0
    cosine = (np.trace(a.T @ b) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0
