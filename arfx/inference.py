"""ONNX Runtime execution providers: which ones a ``device`` setting asks for."""

from __future__ import annotations

from .errors import ArfxError

DEVICES = ("auto", "cpu", "cuda")
_GPU_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def available_providers() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def select_providers(device: str) -> list[str]:
    """Providers in preference order: TensorRT, CUDA, CPU for ``auto``; CUDA then CPU for
    ``cuda``; CPU alone for ``cpu``.

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
    gpu = [p for p in _GPU_ORDER if p in available]
    return [*gpu, "CPUExecutionProvider"]
