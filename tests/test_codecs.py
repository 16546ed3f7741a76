"""Encoder and decoder choice (arfx.codecs): the GPU's where it opens, else the CPU's.

These machines have no NVIDIA driver, so here the tests check the fallbacks and the errors;
on a GPU host the same tests check that the hardware paths write and read real video.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from arfx import codecs, gpu
from arfx.errors import ArfxError, SinkError, SourceError
from arfx.session import Session, SessionOptions
from arfx.sinks import VideoFileSink
from arfx.sources import ArraySource, VideoFileSource

NVENC = codecs.nvenc_problem() is None
CUDA_DECODE = codecs.cuda_decode_problem() is None


def _pretend_driver(monkeypatch) -> None:
    """As if an NVIDIA driver were loaded: "auto" then tries the GPU codecs."""
    monkeypatch.setattr(gpu, "nvidia_driver_problem", lambda: None)


def _write(path: Path, encoder: str, frames: int = 6) -> VideoFileSink:
    y, x = np.mgrid[0:48, 0:64]
    images = [np.stack([(x * 4 + i * 9) % 256, y * 5, x * 0 + 30 * i], 2) for i in range(frames)]
    sink = VideoFileSink(path, width=64, height=48, fps=Fraction(25), encoder=encoder)
    with sink:
        for frame in ArraySource([im.astype(np.uint8) for im in images], fps=Fraction(25)):
            sink.write(frame)
    return sink


def test_auto_falls_back_to_libx264_when_nvenc_does_not_open(monkeypatch, tmp_path, caplog):
    _pretend_driver(monkeypatch)
    with caplog.at_level(logging.INFO, logger="arfx.codecs"):
        sink = _write(tmp_path / "auto.mp4", "auto")
    expected = "h264_nvenc" if NVENC else "libx264"
    assert sink.encoder == expected
    with av.open(str(tmp_path / "auto.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in container.decode(stream)) == 6
    if not NVENC:
        assert "h264_nvenc does not open" in caplog.text


def test_auto_without_a_driver_does_not_try_the_gpu(monkeypatch, tmp_path):
    monkeypatch.setattr(gpu, "nvidia_driver_problem", lambda: "no NVIDIA driver (pretend)")
    monkeypatch.setattr(codecs, "nvenc_problem", lambda *a: pytest.fail("probed nvenc"))
    assert _write(tmp_path / "cpu.mp4", "auto").encoder == "libx264"


def test_asking_for_nvenc_where_it_cannot_open_names_it(tmp_path):
    if NVENC:
        assert _write(tmp_path / "gpu.mp4", "h264_nvenc").encoder == "h264_nvenc"
        return
    with pytest.raises(SinkError, match=r"gpu\.mp4: .*h264_nvenc cannot encode here"):
        _write(tmp_path / "gpu.mp4", "h264_nvenc")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-made left


def test_unknown_encoder_or_decoder_is_refused(tmp_path, video_path):
    with pytest.raises(ValueError, match="unknown encoder 'x265'.*libx264"):
        _write(tmp_path / "bad.mp4", "x265")
    with pytest.raises(ValueError, match="unknown decoder 'vulkan'.*software"):
        VideoFileSource(video_path("single_face.mp4"), decoder="vulkan")
    with pytest.raises(ArfxError, match="encoder must be one of"):
        SessionOptions(encoder="nvenc")
    with pytest.raises(ArfxError, match="decoder must be one of"):
        SessionOptions(decoder="gpu")


def test_decoders_give_the_same_frames(video_path):
    """ "auto" decodes in software (measured faster than fetching CUDA's frames); CUDA, where
    it starts, gives the same pictures up to its colour conversion's rounding."""
    path = video_path("single_face.mp4")

    def first_frames(decoder: str) -> tuple[str, list[np.ndarray]]:
        with VideoFileSource(path, decoder=decoder) as source:
            return source.decoder, [f.image for _, f in zip(range(5), source, strict=False)]

    software, plain = first_frames("software")
    auto, automatic = first_frames("auto")
    assert software == auto == "software"
    assert len(plain) == len(automatic) == 5
    for a, b in zip(automatic, plain, strict=True):
        assert np.array_equal(a, b)
    if CUDA_DECODE:
        cuda, on_gpu = first_frames("cuda")
        assert cuda == "cuda" and len(on_gpu) == 5
        for a, b in zip(on_gpu, plain, strict=True):
            assert np.abs(a.astype(int) - b).mean() < 1.0


def test_asking_for_cuda_decoding_where_it_cannot_start_names_the_file(video_path):
    path = video_path("single_face.mp4")
    if CUDA_DECODE:
        with VideoFileSource(path, decoder="cuda") as source:
            assert source.decoder == "cuda"
            assert next(iter(source)).image.shape == (source.height, source.width, 3)
        return
    with pytest.raises(SourceError, match=r"single_face\.mp4: CUDA decoding cannot start"):
        VideoFileSource(path, decoder="cuda")


def test_a_missing_file_is_reported_as_missing_whatever_the_decoder(tmp_path):
    for decoder in codecs.DECODERS:
        with pytest.raises(SourceError, match="file not found"):
            VideoFileSource(tmp_path / "none.mp4", decoder=decoder)


@pytest.mark.parametrize("what", ["encoder", "decoder"])
def test_session_render_uses_the_options_codecs(tmp_path, video_path, what):
    """The GPU codec asked for in SessionOptions is the one the render opens."""
    src = video_path("single_face.mp4")
    out = tmp_path / "out.mp4"
    value = {"encoder": "h264_nvenc", "decoder": "cuda"}[what]
    options = SessionOptions(masks="mesh", hands=False, **{what: value})
    works = NVENC if what == "encoder" else CUDA_DECODE
    with Session(["lipstick"], options) as session:
        if not works:
            error = SinkError if what == "encoder" else SourceError
            with pytest.raises(error, match="h264_nvenc cannot encode|CUDA decoding cannot"):
                session.render(src, out, progress=False)
            assert not out.exists()
            return
        report = session.render(src, out, progress=False)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in container.decode(video=0)) == report.frames > 0


def test_a_stream_decoded_in_software_is_not_called_cuda(video_path):
    """What ``open_input`` labels "cuda" must really decode there: a plainly opened file,
    like one whose codec fell back to software inside FFmpeg, reads as software."""
    with av.open(str(video_path("single_face.mp4"))) as container:
        assert codecs._on_gpu(container) is False


@pytest.mark.parametrize("flag", [["--decoder", "cuda"], ["--encoder", "h264_nvenc"]])
def test_local_batch_checks_a_named_gpu_codec_before_any_file(tmp_path, video_path, flag, capsys):
    """A codec this machine lacks would fail every file of a local batch, each after its
    retries: it is refused at once instead, and nothing is written."""
    from arfx.cli import EXIT_USAGE, main

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.mp4").symlink_to(video_path("single_face.mp4"))
    problem = codecs.codec_problem(
        *(("h264_nvenc", "auto") if "--encoder" in flag else ("auto", "cuda"))
    )
    if problem is None:  # a GPU host: the codec works, so this check has nothing to refuse
        return
    code = main(["batch", str(folder), str(tmp_path / "out"), *flag])
    assert code == EXIT_USAGE
    assert f"{flag[0]} {flag[1]} cannot" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert codecs.codec_problem("auto", "auto") is None
