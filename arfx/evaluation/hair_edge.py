"""Hair the face model leaves out where a head meets the frame's top edge, on a video.

Most face models trained after v1 left a hole in the hair where the head in
``WolfgangLanger_Pexels.mp4`` touches the top of the frame, and the still-image
``--crown-cut`` figure did not show it (docs/face-model-v5-experiment); v10, trained
with heads cut at the frame's top edge (``frame_cut``), fills it in a stream.
This evaluation streams a video through the face tracker and the model, feeding each
frame's masks back as the next frame's context as a session does ("stream"); again with
every frame a new track, which a session starts with two model runs ("reset",
``ModelSchedule.warm_start``); and with every frame one run from empty context ("cold").
It measures in the top ``band`` rows the share of the hair teacher's hair that the model
leaves out.

The teacher (MediaPipe's hair segmenter on the whole frame) is the reference here, not
ground truth: the figure flags a hole, it does not score hair quality. Frames with less than
``min_pixels`` teacher hair in the band are not scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_integer
from ..errors import SourceError
from .common import THRESHOLD, first_frames, text_grid
from .parsing import _model_method, _teacher_method, default_teacher_path

CONTEXTS: tuple[str, ...] = ("stream", "reset", "cold")
"""How the model's context is fed: the previous frame's, as in a session; its own first guess
on every frame, as for a new face; or never."""
HOLE = 0.05
"""A frame counts as holed when the model misses more than this share of the band's hair."""


@dataclass
class HairEdgeScore:
    """The model's misses over the scored frames with one kind of context."""

    context: str
    mean_miss: float
    p90_miss: float
    max_miss: float
    worst_frame: int
    holed_frames: int  # frames missing more than HOLE of the teacher's hair in the band


@dataclass
class HairEdgeReport:
    video: str
    model: str
    band: int
    frames: int
    scored: int
    seconds: float
    scores: dict[str, HairEdgeScore] = field(default_factory=dict)

    def table(self) -> str:
        lines = [
            f"{self.video}: {self.frames} frames, {self.scored} with teacher hair in the top "
            f"{self.band} rows, {self.seconds:.1f} s; model {self.model}",
            "share of the teacher's hair in the band that the model leaves out:",
        ]
        rows = [["context", "mean", "p90", "max", "worst frame", f"frames > {HOLE:.0%}"]]
        for score in self.scores.values():
            rows.append(
                [
                    score.context,
                    f"{score.mean_miss:.3f}",
                    f"{score.p90_miss:.3f}",
                    f"{score.max_miss:.3f}",
                    str(score.worst_frame),
                    str(score.holed_frames),
                ]
            )
        return "\n".join([*lines, *text_grid(rows)])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HairEdgeReport:
        scores = {k: HairEdgeScore(**v) for k, v in data["scores"].items()}
        return cls(**{**data, "scores": scores})


def evaluate_hair_edge(
    video: Path | str,
    *,
    model_path: Path | str | None = None,
    teacher_path: Path | str | None = None,
    frames: int = 150,
    band: int = 24,
    min_pixels: int = 200,
    progress: Callable[[int, int], None] | None = None,
) -> HairEdgeReport:
    """Score the model's hair in the top ``band`` rows of the first ``frames`` frames.

    The teacher defaults to ``models/`` beside the first folder above the video that has
    it (``shared/models`` for ``shared/data/videos/*.mp4``). Raises SourceError when the
    teacher is unavailable (this figure has no other reference) or the video has no frame;
    ModelError when the model cannot load.
    """
    from ..tracking import FaceTracker, TrackerOptions  # mediapipe is slow to import

    for name, value in (("frames", frames), ("band", band), ("min_pixels", min_pixels)):
        check_integer(name, value, 1)
    teacher_file = Path(teacher_path) if teacher_path else default_teacher_path(video)
    teacher, status = _teacher_method(teacher_file)
    if teacher is None:
        raise SourceError(f"hair edge needs the hair teacher: {status}")
    start = time.perf_counter()
    images = [frame.image for frame in first_frames(video, frames)]
    with FaceTracker(TrackerOptions(max_faces=1)) as tracker:
        faces = [tracker.track(image)[:1] for image in images]
    truths = [teacher(image, [], ["hair"])["hair"][:band] >= THRESHOLD for image in images]
    scored = {i for i, truth in enumerate(truths) if int(truth.sum()) >= min_pixels}
    report = HairEdgeReport(
        video=str(video),
        model=str(model_path) if model_path else "shipped",
        band=band,
        frames=len(images),
        scored=len(scored),
        seconds=0.0,
    )
    total = len(CONTEXTS) * len(images)
    for round_, context in enumerate(CONTEXTS):
        predict, _ = _model_method(
            model_path, streaming=context == "stream", warm_start=context != "cold"
        )
        assert predict is not None  # an explicit or shipped model loads or raises
        misses: dict[int, float] = {}
        for i, (image, found) in enumerate(zip(images, faces, strict=True)):
            hair = predict(image, found, ["hair"])["hair"][:band] >= THRESHOLD
            if i in scored:
                truth = truths[i]
                misses[i] = float((truth & ~hair).sum() / truth.sum())
            if progress is not None:
                progress(round_ * len(images) + i + 1, total)
        report.scores[context] = _score(context, misses)
    report.seconds = time.perf_counter() - start
    return report


def _score(context: str, misses: dict[int, float]) -> HairEdgeScore:
    if not misses:
        return HairEdgeScore(context, 0.0, 0.0, 0.0, -1, 0)
    values = np.array(list(misses.values()))
    return HairEdgeScore(
        context=context,
        mean_miss=float(values.mean()),
        p90_miss=float(np.percentile(values, 90)),
        max_miss=float(values.max()),
        worst_frame=max(misses, key=misses.__getitem__),
        holed_frames=int((values > HOLE).sum()),
    )
