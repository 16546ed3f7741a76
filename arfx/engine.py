"""A pipelined engine: stages that run at the same time on consecutive frames.

Decoding, tracking with the face model, compositing and encoding each spend most of their
time in native code (FFmpeg, MediaPipe, ONNX Runtime, the GL driver) that lets other
threads run, so one thread per stage, joined by bounded queues, overlaps them: while frame
n is composited, frame n+1 is analysed and frame n+2 decoded.

- *offline* (``live=False``): every item goes through every stage, in order; a full queue
  holds the stage before it back (backpressure), so memory stays bounded.
- *live* (``live=True``): an item arriving while the first stage is still busy replaces the
  one waiting for it; the replaced items are counted in ``dropped``. Latency stays at about
  one frame per stage instead of growing without bound when the stages are slower than the
  camera. With ``max_wait`` the first stage also drops the item waiting for it when it has
  waited longer than that fraction of the source's interval between items, and takes the
  next one as it arrives: when the stages take a little longer than the interval, each
  item would otherwise wait for the one before, up to a whole interval, half of one on
  average, a latency that buys only a few more items (``Pipeline.stale``).

An exception in any stage stops the whole pipeline and is raised from ``run`` as a
``PipelineError`` naming the stage and the item (the original exception is its cause). When
the source fails (a file cut short), the items it delivered before still go through every
stage first, so nothing already decoded is lost;
closing the iterator early or Ctrl-C stops and joins every thread as well. No thread
outlives ``run``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .checks import is_number
from .errors import ArfxError

Stage = tuple[str, Callable[[Any], Any]]
"""A stage: its name (for errors and timings) and the function applied to each item."""

_END = object()
_POLL = 0.05  # seconds between checks of the stop flag while waiting on a queue
_JOIN_TIMEOUT = 10.0
_INTERVALS = 8  # the source's recent intervals between items that max_wait is measured in


class PipelineError(ArfxError):
    """A stage failed. ``stage`` is its name, ``item`` the position of the item (0-based)."""

    def __init__(self, stage: str, item: int, cause: BaseException) -> None:
        message = str(cause) if isinstance(cause, ArfxError) else f"{type(cause).__name__}: {cause}"
        super().__init__(f"{stage} (item {item}): {message}")
        self.stage = stage
        self.item = item


@dataclass
class StageTimes:
    """Seconds each call of one stage took (``source`` is the time to get each item)."""

    name: str
    seconds: list[float] = field(default_factory=list)

    def median_ms(self) -> float:
        return float(np.median(self.seconds) * 1000.0) if self.seconds else float("nan")

    def p95_ms(self) -> float:
        return float(np.percentile(self.seconds, 95) * 1000.0) if self.seconds else float("nan")


class Pipeline:
    """Runs ``stages`` on a thread each over the items of a source (see the module text)."""

    def __init__(
        self,
        stages: Sequence[Stage],
        *,
        queue_size: int = 2,
        live: bool = False,
        max_wait: float | None = None,
    ) -> None:
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        if max_wait is not None and (not is_number(max_wait) or max_wait < 0):
            raise ValueError(f"max_wait must be None or a number >= 0, got {max_wait!r}")
        self.stages = list(stages)
        self.queue_size = 1 if live else queue_size
        self.live = live
        self.max_wait = max_wait if live else None
        """Live: the most an item may wait for the first stage, in the source's intervals
        between items (their median over the last few), before it is dropped for the next."""
        self.dropped = 0
        """Items a live pipeline dropped: a newer one arrived first, or it waited too long."""
        self.stale = 0
        """Of ``dropped``, those dropped for having waited longer than ``max_wait``."""
        self._arrivals: deque[float] = deque(maxlen=_INTERVALS + 1)
        self.times = [StageTimes("source"), *(StageTimes(name) for name, _ in stages)]
        self._stop = threading.Event()
        self._error: PipelineError | None = None
        self._lock = threading.Lock()

    def run(self, source: Iterable[Any]) -> Iterator[Any]:
        """Yield the last stage's result for each item of ``source`` (in order).

        ``source`` is iterated on its own thread. Stop early by closing the iterator (or
        leaving a ``for`` loop): the threads stop and are joined before that returns.
        """
        queues = [queue.Queue(maxsize=self.queue_size) for _ in range(len(self.stages) + 1)]
        threads = [
            threading.Thread(target=self._feed, args=(source, queues[0]), name="arfx-source")
        ]
        for i, (name, function) in enumerate(self.stages):
            threads.append(
                threading.Thread(
                    target=self._work,
                    args=(i, name, function, queues[i], queues[i + 1]),
                    name=f"arfx-{name}",
                )
            )
        for thread in threads:
            thread.daemon = True  # never keeps the interpreter alive; joined below anyway
            thread.start()
        try:
            while True:
                item = self._get(queues[-1])
                if item is _END:
                    break
                yield item
            if self._error is not None:
                raise self._error
        finally:
            self._stop.set()
            for q in queues:
                _drain(q)
            for thread in threads:
                thread.join(_JOIN_TIMEOUT)

    # -- threads -------------------------------------------------------------------------

    def _feed(self, source: Iterable[Any], out: queue.Queue) -> None:
        index = 0
        try:
            iterator = iter(source)
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                arrived = time.perf_counter()
                self.times[0].seconds.append(arrived - start)
                if self.live:
                    with self._lock:  # read by the first stage's thread (_too_old)
                        self._arrivals.append(arrived)
                    self._put_latest(out, (index, item, arrived))
                else:
                    self._put(out, (index, item))
                index += 1
        except BaseException as exc:  # noqa: BLE001 - reported from run()
            self._fail("source", index, exc, stop=False)  # what came before still finishes
        finally:
            self._put(out, _END, force=True)

    def _work(
        self,
        position: int,
        name: str,
        function: Callable[[Any], Any],
        inbox: queue.Queue,
        outbox: queue.Queue,
    ) -> None:
        index = -1
        try:
            while True:
                entry = self._get(inbox)
                if entry is _END:
                    break
                if position == 0 and self.live:
                    index, item, arrived = entry
                    if self._too_old(arrived):
                        continue
                else:
                    index, item = entry
                start = time.perf_counter()
                result = function(item)
                self.times[position + 1].seconds.append(time.perf_counter() - start)
                last = position == len(self.stages) - 1
                self._put(outbox, result if last else (index, result))
        except BaseException as exc:  # noqa: BLE001 - reported from run()
            self._fail(name, index, exc)
        finally:
            self._put(outbox, _END, force=True)

    def _too_old(self, arrived: float) -> bool:
        """Whether a live item that arrived at ``arrived`` has waited longer than
        ``max_wait`` intervals of the source (then it is counted as dropped)."""
        if self.max_wait is None:
            return False
        with self._lock:
            times = list(self._arrivals)
        if len(times) < 3:
            return False  # no interval to measure against yet
        interval = float(np.median(np.diff(times)))
        if time.perf_counter() - arrived <= self.max_wait * interval:
            return False
        with self._lock:
            self.dropped += 1
            self.stale += 1
        return True

    def _fail(self, stage: str, index: int, exc: BaseException, *, stop: bool = True) -> None:
        with self._lock:
            if self._error is None:
                error = PipelineError(stage, index, exc)
                error.__cause__ = exc
                self._error = error
        if stop:
            self._stop.set()

    # -- queues --------------------------------------------------------------------------

    def _get(self, q: queue.Queue) -> Any:
        while True:
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                # Stopped (an error, or the consumer closed the stream): the end marker on
                # its way here may have been drained by run(), so end without waiting for it.
                if self._stop.is_set():
                    return _END

    def _put(self, q: queue.Queue, item: Any, *, force: bool = False) -> None:
        while True:
            try:
                q.put(item, timeout=_POLL)
                return
            except queue.Full:
                if self._stop.is_set():
                    if not force:
                        return
                    _drain(q)  # the end marker must get through

    def _put_latest(self, q: queue.Queue, item: Any) -> None:
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    q.get_nowait()
                    with self._lock:
                        self.dropped += 1
                except queue.Empty:
                    pass


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return
