"""How fast the face model runs (``arfx bench model``): per face, per provider, per batch.

Two stages are timed. ``infer``: ``FaceModel.infer`` alone on each ONNX Runtime provider that
loads (the CPU always; CUDA and TensorRT where this machine can run them), per batch size, as
milliseconds per face. ``analyze``: ``FaceAnalyzer.analyze`` on a real tracked face at batch 1,
the per-face cost a video pays (crop, context warp from the previous frame, inference, mapping
back), on the provider ``device="auto"`` picks. A provider that cannot load is a row saying
why, not an error: the point is to see what this machine offers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .alignment import CROP_SIZE
from .gpu import nvidia_driver_problem
from .inference import provider_entries, provider_library_problem
from .model import DEFAULT_MODEL, FaceAnalyzer, FaceModel, ModelError, _quiet, input_shapes

__all__ = ["BenchRow", "bench_model", "bench_table", "default_face_image"]

log = logging.getLogger("arfx")

CPU = "CPUExecutionProvider"


@dataclass
class BenchRow:
    """One timing: ``stage`` "infer", "analyze" or "analyze new" on ``provider`` at ``batch``
    faces per call.

    ``status`` is "ok" or "unavailable: <why>" (then no times). Times are per face:
    the median and 95th percentile of ``runs`` calls, each divided by ``batch``.
    """

    stage: str
    provider: str
    batch: int
    status: str
    median_ms: float | None = None
    p95_ms: float | None = None
    runs: int = 0
    threads: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def default_face_image() -> Path | None:
    """The shared data's obama.jpg ($ARFX_DATA or ../shared/data beside the checkout), if any."""
    from .training.splits import data_root

    path = data_root() / "images" / "obama.jpg"
    return path if path.is_file() else None


_REMOTE_PROVIDERS = frozenset({"AzureExecutionProvider"})


def bench_model(
    model_path: str | Path | None = None,
    *,
    providers: Sequence[str] | None = None,
    batches: Sequence[int] = (1, 4),
    warmup: int = 5,
    runs: int = 30,
    image: str | Path | None = None,
    threads: int | None = None,
) -> list[BenchRow]:
    """Time the model at ``model_path`` (default: the shipped one; ModelError when missing).

    ``providers``: ONNX Runtime provider names, default all this onnxruntime lists that
    compute locally (not the Azure provider of plain onnxruntime, which sends work to a
    remote endpoint and hands everything else to the CPU). Intra-op
    threads default to ``os.cpu_count()``. The analyze row uses ``image`` (default
    ``default_face_image()``, else the bundled astronaut portrait), tracked once.
    """
    import onnxruntime as ort

    if warmup < 0 or runs < 1 or not batches or min(batches) < 1:
        raise ValueError("need warmup >= 0, runs >= 1 and batch sizes >= 1")
    path = Path(model_path) if model_path is not None else DEFAULT_MODEL
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    threads = threads or os.cpu_count() or 1
    wanted = (
        list(providers)
        if providers is not None
        else [p for p in ort.get_available_providers() if p not in _REMOTE_PROVIDERS]
    )
    rows: list[BenchRow] = []
    rng = np.random.default_rng(0)
    for provider in wanted:
        model, status = _load(path, provider, threads)
        if model is None:
            rows += [BenchRow("infer", provider, b, status, threads=threads) for b in batches]
            continue
        for batch in batches:
            crops = rng.uniform(0, 1, (batch, 3, CROP_SIZE, CROP_SIZE)).astype(np.float32)
            context = np.zeros((batch, 4, CROP_SIZE, CROP_SIZE), np.float32)
            times = _time(lambda m=model, c=crops, x=context: m.infer(c, x), warmup, runs)
            rows.append(_row("infer", provider, batch, times, threads))
    rows += _bench_analyze(path, image, warmup, runs, threads)
    return rows


def _load(path: Path, provider: str, threads: int) -> tuple[FaceModel | None, str]:
    """The model on exactly ``provider`` (GPU providers may hand unsupported nodes to the
    CPU), or None and why not. Unlike ``FaceModel``'s own fallback, a GPU provider that
    fails is not replaced by the CPU: its row would time the wrong thing."""
    import onnxruntime as ort

    if provider not in ort.get_available_providers():
        return None, f"unavailable: {provider} is not in this onnxruntime build"
    if provider == CPU:
        return FaceModel(path, device="cpu", threads=threads), "ok"
    driver = nvidia_driver_problem()
    if driver is not None:
        return None, f"unavailable: {driver}"
    try:
        model = _PinnedModel(path, provider, threads)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
        return None, f"unavailable: {_first_line(exc)}"
    if model.providers[0] != provider:
        return None, f"unavailable: {_load_failure(provider)}"
    return model, "ok"


class _PinnedModel(FaceModel):
    """A FaceModel whose session uses ``provider`` first with no fallback and no warning."""

    def __init__(self, path: Path, provider: str, threads: int) -> None:
        import onnxruntime as ort

        self.path = path
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # onnxruntime's own report of a provider that does not load goes to stdout and its
        # log; the table gives the reason (``_load_failure``) once instead.
        with contextlib.redirect_stdout(io.StringIO()), _quiet(ort):
            self.session = ort.InferenceSession(
                str(path),
                sess_options=options,
                providers=provider_entries([provider, CPU], input_shapes()),
            )
        self.providers = list(self.session.get_providers())
        self._check_signature()
        self._on_gpu = self.providers[0] != CPU


def _load_failure(provider: str) -> str:
    """Why onnxruntime dropped a GPU provider: its shared library's loader error when there
    is one (usually a missing CUDA, cuDNN or TensorRT library)."""
    problem = provider_library_problem(provider)
    if problem is not None:
        return f"{provider} failed to load: {(problem.strip().splitlines() or [problem])[0][:300]}"
    return f"{provider} failed to initialise (no usable GPU?)"


def _bench_analyze(
    path: Path, image: str | Path | None, warmup: int, runs: int, threads: int
) -> list[BenchRow]:
    """Crop, context and inference for one face: a face followed from frame to frame
    ("analyze"), and a new face, which the model runs on twice ("analyze new";
    ``ModelSchedule.warm_start``)."""
    from .tracking import FaceTracker, TrackerOptions

    rgb = _face_image(image)
    with FaceTracker(TrackerOptions(static_images=True, max_faces=1)) as tracker:
        faces = tracker.track(rgb)
    model = FaceModel(path, threads=threads)
    provider = model.providers[0]
    if not faces:
        why = "unavailable: no face found in the image"
        return [BenchRow(stage, provider, 1, why) for stage in ("analyze", "analyze new")]
    analyzer = FaceAnalyzer(model)
    # The same face id every call: from the second on, the previous masks are warped in as
    # context, as on every frame of a video.
    times = _time(lambda: analyzer.analyze(rgb, faces), warmup, runs)

    def new_face() -> None:
        analyzer.reset()
        analyzer.analyze(rgb, faces)

    fresh = _time(new_face, warmup, runs)
    return [
        _row("analyze", provider, 1, times, threads),
        _row("analyze new", provider, 1, fresh, threads),
    ]


def _face_image(image: str | Path | None) -> np.ndarray:
    import cv2

    path = Path(image) if image is not None else default_face_image()
    if path is None:
        from skimage import data

        return np.ascontiguousarray(data.astronaut())
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        from .errors import SourceError

        raise SourceError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _time(call: Callable[[], object], warmup: int, runs: int) -> np.ndarray:
    for _ in range(warmup):
        call()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return times


def _row(stage: str, provider: str, batch: int, seconds: np.ndarray, threads: int) -> BenchRow:
    per_face = seconds * 1000.0 / batch
    return BenchRow(
        stage=stage,
        provider=provider,
        batch=batch,
        status="ok",
        median_ms=float(np.median(per_face)),
        p95_ms=float(np.percentile(per_face, 95)),
        runs=len(seconds),
        threads=threads,
    )


def bench_table(rows: Sequence[BenchRow]) -> str:
    """Aligned text: one line per row, unavailable providers with their reason."""
    header = ("stage", "provider", "batch", "median ms/face", "p95 ms/face", "runs")
    cells = [header]
    notes = []
    for row in rows:
        if row.status != "ok":
            cells.append((row.stage, row.provider, str(row.batch), "-", "-", "-"))
            note = f"{row.provider}: {row.status}"
            if note not in notes:
                notes.append(note)
            continue
        cells.append(
            (
                row.stage,
                row.provider,
                str(row.batch),
                f"{row.median_ms:.2f}",
                f"{row.p95_ms:.2f}",
                str(row.runs),
            )
        )
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(c, widths, strict=True))
        )
        for c in cells
    ]
    threads = next((r.threads for r in rows if r.threads), 0)
    return "\n".join([f"intra-op threads: {threads}", *lines, *notes])


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
