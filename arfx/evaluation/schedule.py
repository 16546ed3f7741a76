"""What running the face model on fewer frames costs in mask quality, on a video.

A ``ModelSchedule`` with an interval above 1 lets frames carry the last model maps, moved
with the tracked face, instead of running the model (``arfx.model.FaceAnalyzer``). This
evaluation streams a video through a session's tracking, stabilisation and model once with
the model on every frame (the reference) and once per interval, builds the frame-space
masks effects read, and scores each against the reference frame by frame: IoU over all
frames with a face, and over the carried frames alone (where any difference comes from).

With ``lags``, it also scores the model run *behind* a live stream (``SessionOptions
.live_model = "behind"``, ``arfx.behind``): each frame composited with the maps of the
frame ``lag`` frames before it, moved onto its own face, as when the model finishes a run
that many frames late (no guard makes it wait; a new face does wait, and scores as the
reference). Computed from the reference run in the same pass.

The reference is the model itself, not ground truth: the figure is the change the schedule
makes, to weigh against the time it saves (``arfx bench pipeline --model-interval``,
``--live-model behind``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_integer
from .common import THRESHOLD, first_frames, text_grid
from .parsing import _iou_counts

SCHEDULE_MASKS: tuple[str, ...] = ("lips", "hair", "skin")
"""The masks scored: the ones the built-in effects paint by."""


@dataclass
class ScheduleScore:
    """One interval's masks against the every-frame reference."""

    interval: int  # 1 for a lag
    frames: int  # frames with a face
    carried: int  # of those, frames that carried the last maps
    lag: int = 0
    """Frames the maps lag behind (the model behind a live stream); 0 for an interval."""
    mean_iou: dict[str, float] = field(default_factory=dict)
    p5_iou: dict[str, float] = field(default_factory=dict)
    min_iou: dict[str, float] = field(default_factory=dict)
    carried_mean_iou: dict[str, float] = field(default_factory=dict)


@dataclass
class ScheduleReport:
    video: str
    model: str
    frames: int
    seconds: float
    scores: list[ScheduleScore] = field(default_factory=list)

    def table(self) -> str:
        lines = [
            f"{self.video}: {self.frames} frames, {self.seconds:.1f} s; model {self.model}",
            "mask IoU against the model run on every frame (thresholded at 0.5):",
        ]
        rows = [["schedule", "carried", "mask", "mean", "p5", "min", "carried frames"]]
        for score in self.scores:
            label = f"behind, lag {score.lag}" if score.lag else f"interval {score.interval}"
            for i, name in enumerate(score.mean_iou):
                rows.append(
                    [
                        label if i == 0 else "",
                        f"{score.carried}/{score.frames}" if i == 0 else "",
                        name,
                        f"{score.mean_iou[name]:.3f}",
                        f"{score.p5_iou[name]:.3f}",
                        f"{score.min_iou[name]:.3f}",
                        f"{score.carried_mean_iou[name]:.3f}",
                    ]
                )
        return "\n".join([*lines, *text_grid(rows)])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_schedule(
    video: Path | str,
    *,
    intervals: Sequence[int] = (2, 3),
    lags: Sequence[int] = (),
    frames: int = 300,
    model_path: Path | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScheduleReport:
    """Score each of ``intervals``, and the maps lagging by each of ``lags`` frames, against
    interval 1 on the first ``frames`` frames.

    Raises SourceError when the video has no frame, ArfxError for an interval a
    ``ModelSchedule`` refuses, ModelError when the model cannot load.
    """
    from ..model import ModelSchedule

    check_integer("frames", frames, 1)
    for interval in intervals:
        ModelSchedule(interval=interval).validate()
    for lag in lags:
        check_integer("lag", lag, 1, 8)
    start = time.perf_counter()
    clip = [(frame.image, frame.time) for frame in first_frames(video, frames)]
    report = ScheduleReport(
        video=str(video),
        model=str(model_path) if model_path else "shipped",
        frames=len(clip),
        seconds=0.0,
    )
    runs = [1, *intervals]
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(runs) * len(clip))

    reference, _, lagged = _masks(clip, 1, model_path, step, lags)
    for interval in intervals:
        masks, carried, _ = _masks(clip, interval, model_path, step)
        report.scores.append(_score(interval, reference, masks, carried))
    for lag, (masks, carried) in lagged.items():
        report.scores.append(replace(_score(1, reference, masks, carried), lag=lag))
    report.seconds = time.perf_counter() - start
    return report


Packed = dict[str, np.ndarray]


def _masks(
    clip: list[tuple[np.ndarray, float | None]],
    interval: int,
    model_path: Path | str | None,
    step: Callable[[], None],
    lags: Sequence[int] = (),
) -> tuple[list[Packed | None], list[bool], dict[int, tuple[list[Packed | None], list[bool]]]]:
    """Each frame's thresholded masks of its first face, bit-packed (None: no face), and
    whether the frame carried the last maps; and per lag the same for the maps of the
    frame that many before, moved onto each frame's face."""
    from ..alignment import align_mesh
    from ..model import ModelMasks, ModelSchedule, carry_to
    from ..session import Session, SessionOptions

    options = SessionOptions(
        max_faces=1,
        masks="model",
        model_path=model_path,
        hands=False,
        model_schedule=ModelSchedule(interval=interval),
    )
    builder = ModelMasks()

    def packed(analyses: list[Any], shape: tuple[int, ...]) -> Packed:
        built = builder.build(analyses, shape[:2], SCHEDULE_MASKS)
        # packed 8 pixels a byte: a 300-frame run at 640x360 keeps 26 MB, not 207
        return {name: np.packbits(mask >= THRESHOLD) for name, mask in built.items()}

    masks: list[Packed | None] = []
    carried: list[bool] = []
    lagged: dict[int, tuple[list[Packed | None], list[bool]]] = {lag: ([], []) for lag in lags}
    history: deque[Any] = deque(maxlen=max(lags, default=0) + 1)  # this frame's last
    with Session([], options) as session:
        for image, time_ in clip:
            faces = session.analyze(image, time=time_)
            analyses = [face.analysis for face in faces[:1] if face.analysis is not None]
            history.append(analyses[0] if analyses else None)
            if analyses:
                masks.append(packed(analyses, image.shape))
                carried.append(analyses[0].carried)
            else:
                masks.append(None)
                carried.append(False)
            for lag, (lag_masks, lag_carried) in lagged.items():
                then = history[-1 - lag] if len(history) > lag else None
                if not analyses or then is None or then.face_id != analyses[0].face_id:
                    lag_masks.append(masks[-1])  # no face, or a new one: it waits for its maps
                    lag_carried.append(False)
                    continue
                moved = carry_to(then, align_mesh(faces[0].landmarks), faces[0].landmarks)
                lag_masks.append(packed([moved], image.shape))
                lag_carried.append(True)
            step()
    return masks, carried, lagged


def _score(
    interval: int,
    reference: list[dict[str, np.ndarray] | None],
    masks: list[dict[str, np.ndarray] | None],
    carried: list[bool],
) -> ScheduleScore:
    pairs = [
        (ref, mine, was_carried)
        for ref, mine, was_carried in zip(reference, masks, carried, strict=True)
        if ref is not None and mine is not None
    ]
    score = ScheduleScore(interval, len(pairs), sum(c for _, _, c in pairs))
    nan = float("nan")
    for name in SCHEDULE_MASKS:
        ious = np.array([_iou(ref[name], mine[name]) for ref, mine, _ in pairs])
        on_carried = ious[[c for _, _, c in pairs]] if pairs else ious
        score.mean_iou[name] = float(ious.mean()) if ious.size else nan
        score.p5_iou[name] = float(np.percentile(ious, 5)) if ious.size else nan
        score.min_iou[name] = float(ious.min()) if ious.size else nan
        score.carried_mean_iou[name] = float(on_carried.mean()) if on_carried.size else nan
    return score


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two masks packed by ``np.packbits``."""
    intersection, union = _iou_counts(np.unpackbits(a), np.unpackbits(b))
    return 1.0 if union == 0 else intersection / union
