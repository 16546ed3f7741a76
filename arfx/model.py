"""The multitask face model at run time: ONNX Runtime on TensorRT, CUDA or the CPU.

``FaceModel`` runs the network on batches of face crops; ``FaceAnalyzer`` keeps the
per-face state a video needs (the previous frame's masks, fed back as the model's context
input) and maps everything back to frame coordinates; ``ModelMasks`` turns the analyses
into the named frame-space masks effects read, the same format ``arfx.masks.MeshMasks``
gives. The I/O contract is in ``docs/face-model.md``.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .alignment import (
    CROP_BORDERS,
    CROP_SIZE,
    Alignment,
    align_mesh,
    rewarp,
    rotation_to_frame,
)
from .errors import ArfxError
from .faceparts import CLASS_INDEX, MODEL_MASKS, PARSING_CLASSES
from .inference import select_providers
from .masks import mesh_mask
from .resources import PACKAGE_DIR

log = logging.getLogger("arfx")

DEFAULT_MODEL = PACKAGE_DIR / "models" / "face_multitask.onnx"
INPUTS = {"image": 3, "context": 4}
OUTPUTS = ("parsing", "occlusion", "landmarks", "rotation")
MASK_NAMES: tuple[str, ...] = (*MODEL_MASKS, "occlusion")
"""Every mask name the model provides to effects."""

# Context channels: the previous frame's face, hair and lip probabilities.
_FACE_CLASSES = [
    CLASS_INDEX[c] for c in PARSING_CLASSES if c not in ("background", "hair", "glasses")
]
_LIP_CLASSES = [CLASS_INDEX["upper_lip"], CLASS_INDEX["lower_lip"]]
VISIBLE_ONLY = frozenset(("lips", "upper_lip", "lower_lip", "inner_mouth", "skin"))
"""Masks that effects paint on, so they hold only what is visible: the parsing probability
times (1 - occlusion). The parsing head already learns to drop occluded lips; the occlusion
head is a second, independent vote, and a hand must stop lipstick whichever of the two sees
it."""


class ModelError(ArfxError):
    """The model file is missing, corrupt, or does not match the expected inputs/outputs."""


@dataclass
class FaceAnalysis:
    """What the model found for one face; maps are in crop space, points in frame space."""

    face_id: int
    alignment: Alignment
    parsing: np.ndarray  # (10, 256, 256) float32 class probabilities
    occlusion: np.ndarray  # (256, 256) float32 probability of something in front of the face
    landmarks68: np.ndarray  # (68, 2) float64, frame pixels (iBUG 300-W order)
    rotation: np.ndarray  # (3, 3) head -> camera, frame camera axes

    def probability(self, name: str) -> np.ndarray:
        """Crop-space probability map of a named mask (a union of parsing classes)."""
        if name == "occlusion":
            return self.occlusion
        classes = MODEL_MASKS.get(name)
        if classes is None:
            raise ArfxError(f"unknown mask {name!r} (the model provides: {', '.join(MASK_NAMES)})")
        total = self.parsing[CLASS_INDEX[classes[0]]]
        for extra in classes[1:]:
            total = total + self.parsing[CLASS_INDEX[extra]]
        if name in VISIBLE_ONLY:
            total = total * (1.0 - self.occlusion)
        return total

    def context(self) -> np.ndarray:
        """This frame's (face, hair, lips) probabilities: the next frame's context input."""
        return np.stack(
            [
                self.parsing[_FACE_CLASSES].sum(axis=0),
                self.parsing[CLASS_INDEX["hair"]],
                self.parsing[_LIP_CLASSES].sum(axis=0),
            ]
        ).astype(np.float32)


class FaceModel:
    """An ONNX Runtime session for the face model, with provider choice and CPU fallback.

    ``device`` is "auto" (TensorRT, CUDA, then CPU, as this onnxruntime offers them), "cuda"
    or "cpu". A GPU provider that fails to load, or fails while running (out of device
    memory, a lost device), is dropped for the CPU with one warning and the batch is run
    again there; ``providers`` tells what is used now.
    """

    def __init__(
        self, path: str | Path | None = None, *, device: str = "auto", threads: int | None = None
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path) if path is not None else DEFAULT_MODEL
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        requested = select_providers(device)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # Worker threads sleep between runs instead of spinning: the CPU is shared with the
        # trackers and the GL renderer, and spinning burned a quarter of a frame's CPU time
        # (docs/performance.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._options = options
        printed = io.StringIO()
        try:
            # onnxruntime prints (to stdout) when a GPU provider fails and it retries on the
            # CPU; capture that and say it once, in our log, instead.
            with contextlib.redirect_stdout(printed), _quiet(ort):
                self.session = ort.InferenceSession(
                    str(self.path), sess_options=options, providers=requested
                )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            if _is_model_problem(exc) or requested == ["CPUExecutionProvider"]:
                raise ModelError(
                    f"{self.path}: cannot load the model: {_first_line(exc)}"
                ) from None
            log.warning(
                "%s: providers %s failed (%s); falling back to the CPU",
                self.path.name,
                requested,
                _first_line(exc),
            )
            self.session = self._cpu_session()
        self.providers: list[str] = list(self.session.get_providers())
        missing = [p for p in requested if p not in self.providers]
        if missing and requested != ["CPUExecutionProvider"]:
            lines = printed.getvalue().splitlines()
            reason = next(
                (line for line in lines if line.startswith("EP Error ")),
                "missing CUDA/cuDNN libraries or no GPU",
            )
            log.warning(
                "%s: %s failed to load (%s); using %s",
                self.path.name,
                ", ".join(missing),
                reason[:300],
                ", ".join(self.providers),
            )
        self._check_signature()
        self.crop_border = self._crop_border()
        self._on_gpu = self.providers[0] != "CPUExecutionProvider"

    def _crop_border(self) -> str:
        """The crop border the model was trained with (metadata ``crop_border``; models
        exported before it existed, such as v1, used "replicate")."""
        metadata = self.session.get_modelmeta().custom_metadata_map
        border = metadata.get("crop_border", "replicate")
        if border not in CROP_BORDERS:
            raise ModelError(
                f"{self.path}: unknown crop_border {border!r} in the model's metadata "
                f"(known: {', '.join(CROP_BORDERS)})"
            )
        return border

    def _check_signature(self) -> None:
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        for name, channels in INPUTS.items():
            shape = inputs.get(name)
            if shape is None or len(shape) != 4 or shape[1] != channels:
                raise ModelError(
                    f"{self.path}: input {name!r} must be [N, {channels}, {CROP_SIZE}, "
                    f"{CROP_SIZE}]; the model has {inputs}"
                )
        absent = [o for o in OUTPUTS if o not in outputs]
        if absent:
            raise ModelError(f"{self.path}: outputs {absent} missing (has {outputs})")

    def infer(self, image: np.ndarray, context: np.ndarray) -> dict[str, np.ndarray]:
        """Run a batch: image [N,3,256,256] in [0,1], context [N,4,256,256] -> outputs."""
        feeds = {
            "image": np.ascontiguousarray(image, dtype=np.float32),
            "context": np.ascontiguousarray(context, dtype=np.float32),
        }
        if self._on_gpu:
            try:
                return self._infer_bound(feeds)
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
                log.warning(
                    "%s: %s failed while running (%s); running on the CPU from now on",
                    self.path.name,
                    self.providers[0],
                    _first_line(exc),
                )
                self.session = self._cpu_session()
                self.providers = list(self.session.get_providers())
                self._on_gpu = False
        try:
            values = self.session.run(list(OUTPUTS), feeds)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(
                f"{self.path}: inference failed on a batch of {len(image)} faces: "
                f"{_first_line(exc)}"
            ) from exc
        return dict(zip(OUTPUTS, values, strict=True))

    def _infer_bound(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on the GPU with inputs and outputs bound, so ONNX Runtime copies each once
        and keeps intermediate tensors on the device."""
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        for name in OUTPUTS:
            binding.bind_output(name, "cuda")
        self.session.run_with_iobinding(binding)
        values = binding.copy_outputs_to_cpu()
        return dict(zip(OUTPUTS, values, strict=True))

    def _cpu_session(self) -> Any:
        import onnxruntime as ort

        try:
            return ort.InferenceSession(
                str(self.path), sess_options=self._options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{self.path}: cannot load the model: {_first_line(exc)}") from None


class FaceAnalyzer:
    """Runs the model on every tracked face of each frame, all faces in one batch.

    Keeps each face's previous analysis to build the context input, warped from the
    previous crop into the current one, so the masks stay stable from frame to frame.
    ``reset()`` forgets it (a scene cut). ``lip_prior=False`` leaves the mesh lip polygons
    out of the context (channel 3 all zeros): an evaluation of what the model finds in the
    image alone, not a setting for effects.
    """

    def __init__(self, model: FaceModel, *, lip_prior: bool = True) -> None:
        self.model = model
        self.lip_prior = lip_prior
        self._previous: dict[int, FaceAnalysis] = {}

    def reset(self) -> None:
        self._previous = {}

    def remember(self, analyses: Sequence[FaceAnalysis]) -> None:
        """Use ``analyses`` (e.g. temporally blended ones) as the next frame's context."""
        self._previous = {a.face_id: a for a in analyses}

    def analyze(self, image: np.ndarray, faces: Sequence[Any]) -> list[FaceAnalysis]:
        """Analyse ``faces`` (tracked, with ``id`` and mesh ``landmarks``) in an RGB frame."""
        if not faces:
            self._previous = {}
            return []
        count = len(faces)
        crops = np.empty((count, 3, CROP_SIZE, CROP_SIZE), np.float32)
        context = np.zeros((count, 4, CROP_SIZE, CROP_SIZE), np.float32)
        alignments = []
        for i, face in enumerate(faces):
            alignment = align_mesh(face.landmarks)
            alignments.append(alignment)
            crop = alignment.crop(image, border=self.model.crop_border)
            crops[i] = crop.transpose(2, 0, 1) * np.float32(1.0 / 255.0)
            previous = self._previous.get(face.id)
            if previous is not None:
                context[i, :3] = rewarp(previous.context(), previous.alignment, alignment)
            if self.lip_prior:
                crop_points = alignment.to_crop(face.landmarks)
                context[i, 3] = mesh_mask(crop_points, (CROP_SIZE, CROP_SIZE), "lips") / 255.0
        outputs = self.model.infer(crops, context)
        analyses = []
        for i, (face, alignment) in enumerate(zip(faces, alignments, strict=True)):
            analyses.append(
                FaceAnalysis(
                    face_id=face.id,
                    alignment=alignment,
                    parsing=outputs["parsing"][i],
                    occlusion=outputs["occlusion"][i, 0],
                    landmarks68=alignment.to_frame(outputs["landmarks"][i]),
                    rotation=rotation_to_frame(outputs["rotation"][i], alignment),
                )
            )
        self._previous = {a.face_id: a for a in analyses}
        return analyses


class ModelMasks:
    """Named frame-space uint8 masks from model analyses, reusing buffers across frames."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}
        self._scratch: np.ndarray | None = None

    def build(
        self, analyses: Sequence[FaceAnalysis], size: tuple[int, int], names: Iterable[str]
    ) -> dict[str, np.ndarray]:
        height, width = size
        result = {}
        for name in names:
            out = self._buffers.get(name)
            if out is None or out.shape != (height, width):
                out = self._buffers[name] = np.zeros((height, width), np.uint8)
            else:
                out.fill(0)
            for analysis in analyses:
                _paste_max(analysis.probability(name), analysis.alignment, out)
            result[name] = out
        return result


def _paste_max(probability: np.ndarray, alignment: Alignment, out: np.ndarray) -> None:
    """Warp one crop-space probability map into ``out`` (uint8, max-combined), in its ROI."""
    height, width = out.shape
    corners = alignment.to_frame(
        np.array([[0, 0], [CROP_SIZE, 0], [0, CROP_SIZE], [CROP_SIZE, CROP_SIZE]], float)
    )
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, (width, height))
    if x1 <= x0 or y1 <= y0:
        return
    # With WARP_INVERSE_MAP the matrix maps ROI pixels to crop pixels: the crop transform
    # shifted to the ROI's origin.
    to_crop = alignment.matrix.copy()
    to_crop[:, 2] += to_crop[:, :2] @ np.array([x0, y0], float)
    values = np.clip(probability * 255.0 + 0.5, 0, 255).astype(np.uint8)
    roi = cv2.warpAffine(
        values,
        to_crop,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    np.maximum(out[y0:y1, x0:x1], roi, out=out[y0:y1, x0:x1])


@contextlib.contextmanager
def _quiet(ort: Any) -> Iterator[None]:
    """Silence onnxruntime's process-wide log while a session is created: a GPU provider
    that cannot load logs errors to stderr although the CPU carries on; arfx reports that
    once itself. The level goes back to onnxruntime's default (warnings) afterwards."""
    ort.set_default_logger_severity(4)
    try:
        yield
    finally:
        ort.set_default_logger_severity(2)


def _is_model_problem(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(
        word in text for word in ("protobuf", "invalid", "load model", "parse", "corrupt", "graph")
    )


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
