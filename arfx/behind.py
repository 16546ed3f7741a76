"""The face model beside a live stream instead of in front of every frame.

A live frame's latency is the sum of its steps, and on a small CPU the face model is the
largest of those that do not draw (about 20 ms of a frame's 90 on two cores). Its maps
live in the face's crop, which the tracker moves with the face every frame, so a frame
can be composited with the newest maps the model has *finished*, moved onto its own
crop, while the model works on a newer frame in a worker thread. A face's rigid motion is
followed at once; a change of the face itself (the mouth opening, a hand arriving) shows
one model run later. A face with no maps yet (a new track) waits for its first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .alignment import align_mesh
from .model import FaceAnalysis, FaceAnalyzer, carry_to

Settle = Callable[[list[FaceAnalysis]], list[FaceAnalysis]]


class ModelBehind:
    """Runs ``analyzer`` on the newest frame in a worker thread; ``analyze`` returns at once
    with the newest finished maps moved onto each face. ``settle`` gets each run (e.g. the
    session's mask stabiliser, then ``analyzer.remember``) in the worker too, before its maps
    are used, so the stream's thread does not pay for it. Only one thread touches
    ``analyzer`` (and what ``settle`` touches) at a time: ``reset`` and ``close`` wait for the
    run in flight. A context manager: ``close()`` waits for that run and ends the worker."""

    def __init__(self, analyzer: FaceAnalyzer, settle: Settle | None = None) -> None:
        self.analyzer = analyzer
        self._settle = settle or (lambda analyses: analyses)
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            1, thread_name_prefix="arfx-model"
        )
        self._run: Future | None = None
        self._run_ids: frozenset[int] = frozenset()
        self._latest: dict[int, FaceAnalysis] = {}
        self.runs = 0
        """Model runs finished (each on one frame, all its faces in one batch)."""
        self.waits = 0
        """Frames that waited for a run: a face had no maps yet."""

    def analyze(self, image: np.ndarray, faces: Sequence[Any]) -> tuple[list[FaceAnalysis], bool]:
        """Each face's newest finished analysis on this frame's crop, and whether those are
        fresh from a run on this very frame (a new face waited for it)."""
        if self._pool is None:
            raise RuntimeError("ModelBehind is closed")
        if not faces:
            self.reset()
            return [], False
        self._collect(wait=False)
        ids = frozenset(face.id for face in faces)
        if not ids <= self._latest.keys():  # a new face: its first maps are worth the wait
            self.waits += 1
            if self._run is not None and not ids <= self._run_ids:
                self._collect(wait=True)  # a run on an older frame without this face
            if self._run is None:
                self._start(image, faces)
                self._collect(wait=True)
                return [self._latest[face.id] for face in faces], True
            self._collect(wait=True)  # a run on an older frame with every face
        elif self._run is None:
            self._start(image, faces)
        moved = [
            carry_to(self._latest[face.id], align_mesh(face.landmarks), face.landmarks)
            for face in faces
        ]
        return moved, False

    def _start(self, image: np.ndarray, faces: Sequence[Any]) -> None:
        assert self._pool is not None
        self._run = self._pool.submit(self._analyze, image, list(faces))
        self._run_ids = frozenset(face.id for face in faces)

    def _analyze(self, image: np.ndarray, faces: list[Any]) -> list[FaceAnalysis]:
        """One run, in the worker."""
        return self._settle(self.analyzer.analyze(image, faces))

    def _collect(self, *, wait: bool) -> None:
        """Take the run in flight's analyses when it has finished (or, with ``wait``, once
        it does). A run that raised raises here, once."""
        run = self._run
        if run is None or not (wait or run.done()):
            return
        self._run = None
        analyses = run.result()
        self.runs += 1
        self._latest = {analysis.face_id: analysis for analysis in analyses}

    def reset(self) -> None:
        """Forget every face's maps (a scene cut, no faces); a run in flight is let finish
        and dropped, whatever it raised."""
        run, self._run = self._run, None
        if run is not None:
            try:
                run.result()
            except Exception:  # noqa: BLE001 - its frame is gone; the next run reports
                pass
        self._latest = {}
        self.analyzer.reset()

    def close(self) -> None:
        if self._pool is None:
            return
        self.reset()
        self._pool.shutdown(wait=True)
        self._pool = None

    def __enter__(self) -> ModelBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
