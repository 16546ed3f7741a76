"""ONNX Runtime execution providers: which ones a ``device`` setting asks for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import gpu
from .errors import ArfxError

DEVICES = ("auto", "cpu", "cuda")
_GPU_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def available_providers() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def select_providers(device: str) -> list[str]:
    """Providers in preference order: TensorRT, CUDA, CPU for ``auto`` (CPU alone where
    no NVIDIA driver loads, ``arfx.gpu.nvidia_driver_problem``); CUDA then CPU for ``cuda``;
    CPU alone for ``cpu``.

    ``cuda`` fails when this ONNX Runtime build has no CUDA provider; a build that has
    one may still fail to load it on a machine without a GPU, which the model loader
    reports and answers by falling back to the CPU.
    """
    if device not in DEVICES:
        raise ArfxError(f"device must be one of {DEVICES}, got {device!r}")
    available = available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ArfxError(
                "device 'cuda' requested but this onnxruntime has no CUDAExecutionProvider "
                f"(available: {', '.join(available)}); install onnxruntime-gpu or use "
                "device='cpu'"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if gpu.nvidia_driver_problem() is not None:
        # arfx's Linux wheel installs onnxruntime-gpu everywhere; without a driver its GPU
        # providers can only fail, with a warning on every session.
        return ["CPUExecutionProvider"]
    return [*(p for p in _GPU_ORDER if p in available), "CPUExecutionProvider"]


TENSORRT_MAX_BATCH = 8
"""Faces per batch TensorRT's engine is built for (``SessionOptions.max_faces`` is 1-8)."""


PROVIDER_LIBRARIES = {
    "CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
    "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so",
}
"""The shared library onnxruntime loads for each GPU provider (beside its own module)."""


def provider_library_problem(provider: str) -> str | None:
    """Why onnxruntime's shared library for ``provider`` does not load here (the loader's
    error: usually a missing CUDA, cuDNN or TensorRT library), or None when it loads or
    the provider has none. Tried without creating a session."""
    import ctypes

    import onnxruntime

    name = PROVIDER_LIBRARIES.get(provider)
    if name is None:
        return None
    try:
        ctypes.CDLL(str(Path(onnxruntime.__file__).parent / "capi" / name))
    except OSError as exc:
        return str(exc) or type(exc).__name__
    return None


def tensorrt_cache_dir() -> Path:
    """Where TensorRT's engines are kept between runs: ``$ARFX_CACHE/tensorrt``, else
    ``$XDG_CACHE_HOME/arfx/tensorrt`` (``~/.cache/arfx/tensorrt``)."""
    root = os.environ.get("ARFX_CACHE")
    if root:
        return Path(root) / "tensorrt"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "arfx" / "tensorrt"


def provider_entries(
    providers: list[str], inputs: dict[str, tuple[int, int, int]]
) -> list[str | tuple[str, dict[str, Any]]]:
    """``providers`` as onnxruntime takes them, TensorRT's with its options.

    TensorRT builds an engine for a model the first time a session runs it, which takes
    tens of seconds; the engine (and its timing cache) is kept on disk so later sessions,
    and every worker of ``arfx render --workers``, load it instead. One optimisation
    profile covers batches of 1 to ``TENSORRT_MAX_BATCH`` faces (tuned for one), so a
    frame with more faces does not build another. ``inputs``: each input's (C, H, W).
    Precision stays FP32: FP16 was not measured against the model's accuracy. The cache
    folder is made here, only where TensorRT's provider library loads.
    """

    def shapes(batch: int) -> str:
        return ",".join(f"{name}:{batch}x{c}x{h}x{w}" for name, (c, h, w) in inputs.items())

    entries: list[str | tuple[str, dict[str, Any]]] = []
    for provider in providers:
        if provider != "TensorrtExecutionProvider":
            entries.append(provider)
            continue
        cache = tensorrt_cache_dir()
        if provider_library_problem(provider) is None:
            cache.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache),
            "trt_profile_min_shapes": shapes(1),
            "trt_profile_opt_shapes": shapes(1),
            "trt_profile_max_shapes": shapes(TENSORRT_MAX_BATCH),
        }
        entries.append((provider, options))
    return entries
