"""Injected faults: the session survives what can be survived and reports the rest.

Faults covered elsewhere: a decoder error mid-stream (test_session:
``test_decode_error_mid_file_keeps_a_playable_partial``), an exception inside an effect
(test_session: ``test_a_failing_effect_hook_does_not_stop_the_others``, test_plugins: a
GLSL error), a GPU provider failing at load (test_model_runtime). Here: a GL error, the
face model failing while it runs, and a webcam that drops out, in a live session.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from pathlib import Path

import av
import moderngl
import numpy as np
import pytest

import arfx
from arfx.engine import PipelineError
from arfx.model import DEFAULT_MODEL, FaceModel
from arfx.session import RenderError
from arfx.sources import VideoFileSource, WebcamSource
from arfx.throughput import PacedSource

from .fakecamera import FakeCamera
from .helpers import decode


def _gl_fails(session: arfx.Session, when) -> list[int]:
    """Make the session's compositor raise a GL error on the calls ``when(call)`` picks
    (the driver running out of memory, a lost context); returns the failing frame indices."""
    compositor = session._compositor
    render = compositor.render
    calls = itertools.count()
    failed: list[int] = []

    def flaky(frame, passes, on_failure=None):
        if when(next(calls)):
            failed.append(frame.index)
            raise moderngl.Error("GL_OUT_OF_MEMORY in glTexSubImage2D (injected)")
        return render(frame, passes, on_failure)

    compositor.render = flaky
    return failed


def test_gl_error_mid_render_names_the_frame_and_keeps_a_playable_partial(
    tmp_path: Path, video_path
) -> None:
    source = video_path("single_face.mp4")
    out = tmp_path / "out.mp4"
    with arfx.Session(["lipstick"]) as session:
        failed = _gl_fails(session, lambda call: call == 20)
        with pytest.raises(RenderError) as caught:
            session.render(source, out, progress=False)
    message = str(caught.value)
    assert f"{source}: frame {failed[0]}" in message and "GL_OUT_OF_MEMORY" in message
    assert not out.exists()
    partial = caught.value.partial
    assert partial is not None and partial.name == "out.partial.mp4"
    frames = decode(partial).frames  # playable: the trailer was written
    assert len(frames) == caught.value.frames and 10 <= len(frames) <= failed[0]


def _camera_like(video_path) -> PacedSource:
    """The talking-face video released at its own frame rate, as a camera would."""
    return PacedSource(VideoFileSource(video_path("single_face.mp4")))


@pytest.mark.parametrize("overlap", [False, True], ids=["one-stage", "overlapped"])
def test_live_stream_survives_gl_errors(video_path, caplog, overlap: bool) -> None:
    options = arfx.SessionOptions(live_overlap=overlap)
    with arfx.Session(["lipstick"], options) as session:
        assert len(session._frame_stages(live=True)) == (2 if overlap else 1)
        failed = _gl_fails(session, lambda call: call in (2, 3))
        with caplog.at_level(logging.WARNING, logger="arfx"):
            frames = list(session.stream(_camera_like(video_path), live=True))
        failures = dict(session.failed_frames)
    assert failures == {"compositing: Error": 2}
    warnings = [r.getMessage() for r in caplog.records if "passing such frames" in r.getMessage()]
    assert len(warnings) == 1 and f"frame {failed[0]}" in warnings[0], warnings
    with av.open(str(video_path("single_face.mp4"))) as container:
        inputs = {i: f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0))}
    by_index = {frame.index: frame for frame in frames}
    for index in failed:  # passed through unprocessed, faces still reported
        if index in by_index:
            assert np.array_equal(by_index[index].image, inputs[index])
    later = [f for f in frames if f.index > max(failed)]
    assert len(later) >= 3
    assert all(not np.array_equal(f.image, inputs[f.index]) for f in later)  # painted again


@pytest.mark.parametrize("live_model", ["inline", "behind"])
def test_live_stream_survives_a_model_failure(video_path, caplog, live_model: str) -> None:
    """With the model behind the stream (``live_model="behind"``) the failed run shows on
    the frame that collects it, and no model thread outlives the stream."""
    options = arfx.SessionOptions(live_model=live_model)
    with arfx.Session(["lipstick"], options) as session:
        model = session._analyzer.model
        infer = model.infer
        calls = itertools.count()

        def failing_once(image, context):
            if next(calls) == 3:
                raise arfx.ArfxError("face_multitask.onnx: inference failed (injected)")
            return infer(image, context)

        model.infer = failing_once
        with caplog.at_level(logging.WARNING, logger="arfx"):
            frames = list(session.stream(_camera_like(video_path), live=True))
        failures = dict(session.failed_frames)
        assert not any(t.name.startswith("arfx-model") for t in threading.enumerate())
    assert failures == {"analysis: ArfxError": 1}
    assert sum(not f.faces for f in frames) == 1  # the failed frame carries no faces
    assert sum(bool(f.faces) for f in frames) >= 5
    assert all(f.faces[0].analysis is not None for f in frames if f.faces)
    carried = [f.faces[0].analysis.carried for f in frames if f.faces]
    assert any(carried) == (live_model == "behind")


class _GpuThatFailsAtRun:
    """An ONNX Runtime session on a GPU whose device fails once running (out of memory)."""

    def __init__(self, real) -> None:
        self.real = real

    def io_binding(self):
        return self.real.io_binding()

    def run_with_iobinding(self, binding) -> None:
        raise RuntimeError(
            "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : CUDA failure 2: out of memory"
        )

    def get_providers(self) -> list[str]:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_gpu_provider_failing_at_run_falls_back_to_the_cpu_once(caplog) -> None:
    model = FaceModel(DEFAULT_MODEL, device="cpu")
    rng = np.random.default_rng(0)
    image = rng.random((2, 3, 256, 256), dtype=np.float32)
    context = np.zeros((2, 4, 256, 256), np.float32)
    expected = model.infer(image, context)
    model.session = _GpuThatFailsAtRun(model.session)
    model.providers = model.session.get_providers()
    model._on_gpu = True
    with caplog.at_level(logging.WARNING, logger="arfx"):
        first = model.infer(image, context)
        second = model.infer(image, context)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "CUDAExecutionProvider failed while running" in warnings[0]
    assert "out of memory" in warnings[0] and DEFAULT_MODEL.name in warnings[0]
    assert model.providers == ["CPUExecutionProvider"]
    for name, value in expected.items():
        np.testing.assert_allclose(first[name], value, atol=1e-5)
        np.testing.assert_allclose(second[name], value, atol=1e-5)


@pytest.fixture
def camera_frames(video_path) -> list[np.ndarray]:
    with av.open(str(video_path("single_face.mp4"))) as container:
        frames = itertools.islice(container.decode(video=0), 12)
        return [f.to_ndarray(format="bgr24") for f in frames]


def test_webcam_dropout_and_reconnect_in_a_live_session(camera_frames) -> None:
    camera = FakeCamera(camera_frames, disconnect_at=6, failed_reopens=1)
    source = WebcamSource(0, capture_factory=camera, reconnect_delay=0)
    with arfx.Session(["lipstick"]) as session:
        frames = list(itertools.islice(session.stream(source, live=True), 16))
        assert not session.failed_frames
    assert len(frames) == 16
    assert camera.opens == 3  # the first open, one failed reopen, one that worked
    assert camera.served > 6  # frames read after the reconnect
    assert all(f.faces for f in frames)
    assert all(b.index > a.index for a, b in itertools.pairwise(frames))


def test_webcam_lost_for_good_ends_the_live_session_naming_the_camera(camera_frames) -> None:
    camera = FakeCamera(camera_frames, disconnect_at=5, failed_reopens=math.inf)
    source = WebcamSource("/dev/video3", capture_factory=camera, reconnect_delay=0)
    frames = []
    with arfx.Session(["lipstick"]) as session:
        with pytest.raises(PipelineError, match=r"camera '/dev/video3': read failed after frame 5"):
            for frame in session.stream(source, live=True):
                frames.append(frame)
        assert 1 <= len(frames) <= 5  # what was captured before the loss came out
        assert session.process(np.zeros((64, 64, 3), np.uint8)).shape == (64, 64, 3)  # usable
