"""Batch rendering (``arfx batch``): every video and image of a folder, in parallel.

One job per file, each a whole ``Session.render`` in its own process: locally on a pool of
worker processes, or as tasks on a Ray cluster (``ray`` is an optional dependency:
``pip install arfx[ray]``). A job whose worker fails or dies is retried up to ``retries``
more times; what still fails is reported, never half-written: outputs appear under their
final names only when complete (``VideoFileSink`` renders beside the target and renames).
With ``chunk_seconds``, locally and on Ray, long videos are also split at keyframes into
chunks rendered in parallel and joined without re-encoding (``arfx.chunks``: each chunk
first primes its tracking on the seconds before it, so the output matches a whole-file
render up to codec noise); a failed chunk is retried like a failed file.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from .chunks import (
    Chunk,
    ChunkPlan,
    chunk_offset,
    chunk_path,
    join_chunks,
    plan_chunks,
    render_chunk,
)
from .errors import ArfxError

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
H264_CONTAINERS = frozenset({".mp4", ".mov", ".mkv"})


@dataclass(frozen=True)
class BatchJob:
    """One file to render and where its output goes."""

    source: Path
    output: Path


@dataclass
class JobResult:
    """How one job ended. ``status`` is "ok" or "failed"; ``attempts`` counts the tries."""

    source: str
    output: str
    status: str
    attempts: int
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BatchSettings:
    """What every job renders with (the session's effects and options)."""

    effects: tuple[str, ...] = ("lipstick",)
    max_faces: int = 4
    device: str = "auto"
    masks: str = "auto"
    model_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def session_options(self) -> Any:
        """The ``SessionOptions`` every worker opens its session with."""
        from .session import SessionOptions

        return SessionOptions(
            max_faces=self.max_faces,
            device=self.device,
            masks=self.masks,
            model_path=self.model_path,
            **self.extra,
        )


def find_jobs(in_dir: str | Path, out_dir: str | Path) -> list[BatchJob]:
    """Every video and image under ``in_dir`` (recursively, sorted), each with its output
    at the same relative path under ``out_dir``. Hidden files are skipped."""
    from .session import IMAGE_SUFFIXES

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise ArfxError(f"{in_dir}: not a folder")
    jobs = []
    for path in sorted(in_dir.rglob("*")):
        relative = path.relative_to(in_dir)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES or suffix in IMAGE_SUFFIXES:
            output = out_dir / relative
            if suffix in VIDEO_SUFFIXES and suffix not in H264_CONTAINERS:
                output = output.with_suffix(".mp4")  # H.264 does not go in .webm or .avi
            jobs.append(BatchJob(path, output))
    return jobs


def render_job(job: BatchJob, settings: BatchSettings, attempts_log: str | None = None) -> dict:
    """Render one job in this process; returns {"frames", "seconds"}. Runs in a worker."""
    from .session import Session

    _begin_attempt(job, attempts_log)
    with Session(list(settings.effects), settings.session_options()) as session:
        report = session.render(job.source, job.output, progress=False, keep_partial=False)
    return {"frames": report.frames, "seconds": report.seconds}


def _begin_attempt(job: BatchJob, attempts_log: str | None) -> None:
    """Count this attempt (one line per attempt started, so a killed one counts too) and
    make the output's folder."""
    if attempts_log:
        with open(attempts_log, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()}\n")
    job.output.parent.mkdir(parents=True, exist_ok=True)


# -- local processes ---------------------------------------------------------------------


def _worker(task: _Task, settings: BatchSettings, result: Any, frames_done: Any) -> None:
    try:
        result.put(("ok", task.run(settings, frames_done=frames_done)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which retries
        message = str(exc) if isinstance(exc, ArfxError) else f"{type(exc).__name__}: {exc}"
        result.put(("failed", message or traceback.format_exc(limit=1)))


def run_local(
    jobs: Sequence[BatchJob],
    settings: BatchSettings,
    *,
    workers: int = 0,
    retries: int = 2,
    chunk_seconds: float | None = None,
    on_result: Callable[[JobResult], None] | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> list[JobResult]:
    """Render ``jobs`` on up to ``workers`` processes (0: one per two cores, at least one);
    with ``chunk_seconds``, videos that long or longer in chunks (``arfx.chunks``), one
    task each, joined here when all of a file's chunks are done. ``on_frames`` gets, a few
    times a second, the frames written so far by chunks done and running (a chunk that is
    retried starts its count again; whole files count when done).

    Each attempt is a fresh process, so one that crashes or is killed takes nothing else
    down; it is retried like one that raised. On any error here (Ctrl-C too) the running
    workers are killed and their chunk files removed.
    """
    if chunk_seconds is not None and chunk_seconds <= 0:
        raise ArfxError(f"chunk seconds must be > 0, got {chunk_seconds}")
    workers = workers or max(1, (os.cpu_count() or 2) // 2)
    context = multiprocessing.get_context("spawn")
    planned = [_plan(job, chunk_seconds) for job in jobs]
    pending = [(state, task, 1) for state, tasks in planned for task in tasks]
    running: dict[_Task, tuple[_JobState, Any, Any, int, Any]] = {}
    results: dict[BatchJob, JobResult] = {}
    frames_finished = 0
    try:
        while pending or running:
            while pending and len(running) < workers:
                state, task, attempt = pending.pop(0)
                queue = context.Queue()
                counter = context.Value("q", 0)
                process = context.Process(
                    target=_worker,
                    args=(task, settings, queue, counter),
                    name=f"arfx-batch-{attempt}",
                )
                process.start()
                running[task] = (state, process, queue, attempt, counter)
            time.sleep(0.05)
            for task, (state, process, queue, attempt, _) in list(running.items()):
                outcome = _poll(process, queue)
                if outcome is None:
                    continue
                del running[task]
                status, value = outcome
                if status != "ok" and attempt <= retries:
                    pending.append((state, task, attempt + 1))
                    continue
                ok = status == "ok"
                frames_finished += int(value["frames"]) if ok else 0
                result = state.done(attempt, value if ok else None, None if ok else value)
                if result is not None:
                    results[state.job] = result
                    if on_result is not None:
                        on_result(result)
            if on_frames is not None:
                on_frames(frames_finished + sum(entry[4].value for entry in running.values()))
    finally:
        for _, process, queue, _, _ in running.values():
            process.kill()
            process.join()
            queue.close()
        for state, _ in planned:
            if state.job not in results:
                state.discard()
    return [results[job] for job in jobs]


def _poll(process: Any, queue: Any) -> tuple[str, Any] | None:
    """("ok", value) / ("failed", why) once the attempt is over; None while it runs."""
    try:
        outcome = queue.get_nowait()
    except Exception:  # noqa: BLE001 - queue.Empty, or a queue broken by a killed process
        outcome = None
    if outcome is not None:
        process.join()
        queue.close()
        return outcome
    if process.is_alive():
        return None
    process.join()
    try:  # the result may have arrived between the two checks
        outcome = queue.get(timeout=0.5)
    except Exception:  # noqa: BLE001
        outcome = ("failed", f"worker process died (exit code {process.exitcode})")
    queue.close()
    return outcome


# -- Ray ---------------------------------------------------------------------------------


def run_ray(
    jobs: Sequence[BatchJob],
    settings: BatchSettings,
    *,
    address: str | None = None,
    retries: int = 2,
    chunk_seconds: float | None = None,
    on_result: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Render ``jobs`` as Ray tasks on the cluster at ``address`` (None: the one this process
    is connected to, else a new local one): one task per file, or with ``chunk_seconds``,
    one per chunk of a video that long or longer (``arfx.chunks``), joined here when all
    its chunks are done.

    Ray re-runs a task whose worker dies or raises, up to ``retries`` times. Attempts are
    counted through a small log per task on this machine's disk (exact on a local cluster;
    on a remote cluster without a shared disk only the final outcome is known). Chunks are
    written beside their output, so on a cluster OUT_DIR must be storage every node sees,
    as it must be for whole files.
    """
    try:
        import ray
    except ImportError:
        raise ArfxError("--ray needs Ray: pip install 'arfx[ray]'") from None
    if chunk_seconds is not None and chunk_seconds <= 0:
        raise ArfxError(f"chunk seconds must be > 0, got {chunk_seconds}")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    options = {"max_retries": retries, "retry_exceptions": True, "num_cpus": 1}
    remote = ray.remote(render_task).options(**options)
    results: dict[BatchJob, JobResult] = {}
    with tempfile.TemporaryDirectory(prefix="arfx-batch-") as logs:
        logs_dir = Path(logs)
        refs: dict[Any, tuple[_JobState, Path]] = {}
        for i, job in enumerate(jobs):
            state, tasks = _plan(job, chunk_seconds)
            for j, task in enumerate(tasks):
                log = logs_dir / f"{i}.{j}.attempts"
                refs[remote.remote(task, settings, str(log))] = (state, log)
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            state, log = refs[done[0]]
            value, error = None, None
            try:
                value = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - Ray wraps the task's exception
                cause = getattr(exc, "cause", None) or exc
                error = str(cause) if isinstance(cause, ArfxError) else _first_line(cause)
            result = state.done(_count_lines(log), value, error)
            if result is not None:
                results[state.job] = result
                if on_result is not None:
                    on_result(result)
    return [results[job] for job in jobs]


def render_chunk_job(
    job: BatchJob,
    chunk: Chunk,
    part: Path,
    settings: BatchSettings,
    attempts_log: str | None = None,
    frames_done: Any = None,
) -> dict:
    """Render one chunk of a job's video into ``part``; returns {"frames", "seconds"}.
    ``frames_done``: a ``multiprocessing.Value`` counting the frames written, for the
    parent's progress line."""
    from .session import Session

    def count() -> None:
        with frames_done.get_lock():
            frames_done.value += 1

    _begin_attempt(job, attempts_log)
    with Session(list(settings.effects), settings.session_options()) as session:
        on_frame = count if frames_done is not None else None
        return render_chunk(job.source, chunk, part, session, on_frame)


def _chunk_plan(job: BatchJob, seconds: float | None) -> ChunkPlan | None:
    """The job's chunks when it is a video long enough for two; None renders it whole
    (also when the file cannot be read: the whole-file task then reports why)."""
    if seconds is None or job.source.suffix.lower() not in VIDEO_SUFFIXES:
        return None
    try:
        plan = plan_chunks(job.source, seconds=seconds)
    except ArfxError:
        return None
    return plan if len(plan.chunks) > 1 else None


@dataclass(frozen=True)
class _Task:
    """One unit of a worker's work: a whole job, or one ``chunk`` of it into ``part``."""

    job: BatchJob
    chunk: Chunk | None = None
    part: Path | None = None

    def run(
        self, settings: BatchSettings, attempts_log: str | None = None, frames_done: Any = None
    ) -> dict:
        if self.chunk is None or self.part is None:
            return render_job(self.job, settings, attempts_log)
        return render_chunk_job(
            self.job, self.chunk, self.part, settings, attempts_log, frames_done
        )


def render_task(task: _Task, settings: BatchSettings, attempts_log: str | None = None) -> dict:
    """A task as a plain function (what Ray sends to its workers)."""
    return task.run(settings, attempts_log)


@dataclass
class _JobState:
    """A job in flight: its chunk files (none when rendered whole), its tasks not yet done,
    and what they did so far."""

    job: BatchJob
    began: float
    parts: list[Path] = field(default_factory=list)
    offsets: list[Fraction] = field(default_factory=list)
    pending: int = 0
    attempts: int = 1
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None

    def done(self, attempts: int, value: dict | None, error: str | None) -> JobResult | None:
        """Count one task over (``value`` when it succeeded, else its ``error``); the job's
        result once it was the last."""
        self.attempts = max(self.attempts, attempts)
        if value is not None:
            self.frames += value["frames"]
            self.seconds += value["seconds"]
        else:
            self.error = self.error or error
        self.pending -= 1
        return self.finish() if self.pending == 0 else None

    def finish(self) -> JobResult:
        """The job's result: chunks joined into the output (or removed on failure)."""
        source, output = str(self.job.source), str(self.job.output)
        try:
            if self.parts and self.error is None:
                try:
                    join_chunks(
                        self.parts,
                        self.job.output,
                        audio_from=self.job.source,
                        offsets=self.offsets,
                    )
                except ArfxError as exc:
                    self.error = str(exc)
                # A chunked job's time is the wall time from submission to the join.
                self.seconds = time.perf_counter() - self.began
        finally:
            self.discard()
        if self.error is not None:
            return JobResult(source, output, "failed", self.attempts, error=self.error)
        return JobResult(source, output, "ok", self.attempts, self.frames, self.seconds)

    def discard(self) -> None:
        """Remove the chunk files (the job is over, or abandoned)."""
        for part in self.parts:
            part.unlink(missing_ok=True)


def _plan(job: BatchJob, chunk_seconds: float | None) -> tuple[_JobState, list[_Task]]:
    """A job's state and its tasks: the whole file, or one per chunk (``_chunk_plan``)."""
    state = _JobState(job, time.perf_counter())
    plan = _chunk_plan(job, chunk_seconds)
    if plan is None:
        state.pending = 1
        return state, [_Task(job)]
    tasks = []
    for chunk in plan.chunks:
        part = chunk_path(job.output, chunk.number)
        state.parts.append(part)
        state.offsets.append(chunk_offset(plan, chunk))
        tasks.append(_Task(job, chunk, part))
    state.pending = len(tasks)
    return state, tasks


def _count_lines(path: Path) -> int:
    try:
        return max(1, len(path.read_text(encoding="utf-8").splitlines()))
    except OSError:
        return 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:300]


def summary_table(results: Sequence[JobResult]) -> str:
    """One line per job, then the totals."""
    lines = [f"{'file':<32} {'status':<7} {'tries':>5} {'frames':>7} {'fps':>6}  error"]
    for r in results:
        lines.append(
            f"{Path(r.source).name:<32} {r.status:<7} {r.attempts:>5} {r.frames:>7} "
            f"{r.fps:>6.1f}  {r.error or ''}"
        )
    ok = sum(r.status == "ok" for r in results)
    retried = sum(r.attempts > 1 for r in results)
    lines.append(
        f"{ok} of {len(results)} rendered, {len(results) - ok} failed, {retried} needed a retry"
    )
    return "\n".join(lines)


def results_json(results: Sequence[JobResult]) -> list[dict]:
    return [{**asdict(r), "fps": r.fps} for r in results]
