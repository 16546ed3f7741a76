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
from dataclasses import dataclass, replace
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
    rotation_to_crop,
    rotation_to_frame,
)
from .checks import check_integer, is_number
from .errors import ArfxError
from .faceparts import CLASS_INDEX, MODEL_MASKS, PARSING_CLASSES
from .inference import provider_entries, select_providers
from .masks import LIPS_OUTER_LOWER, LIPS_OUTER_UPPER, mesh_mask
from .points68 import PointsFit, fit_for
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
# The mesh's outer lip contour: how far it moved in the crop tells a carried frame's maps
# from stale ones (FaceAnalyzer).
_LIP_POINTS = np.array(sorted(set(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER)), dtype=np.intp)
# The lower face in the 256-pixel crop (x0, y0, x1, y1): mouth, chin and cheeks, where a
# hand or a moving mouth changes the picture; watched at one thumbnail pixel per 4x4.
_MOUTH_REGION = (64, 128, 192, 224)
_THUMB_STEP = 4
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
    carried: bool = False
    """True when the model did not run on this frame: the maps are the last analysis's,
    moved with the face (``ModelSchedule``)."""
    mesh: np.ndarray | None = None
    """The tracker's mesh (478, 2) in this crop, where the maps' face is: a carried
    analysis's maps follow the mesh's own motion from there (``carry_to``)."""

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
        out = np.empty((3, *self.parsing.shape[1:]), np.float32)
        for row, classes in ((0, _FACE_CLASSES), (2, _LIP_CLASSES)):
            # Summed plane by plane into the output, in order: the sums of sum(axis=0),
            # without a copy of the planes first.
            np.add(self.parsing[classes[0]], self.parsing[classes[1]], out=out[row])
            for index in classes[2:]:
                out[row] += self.parsing[index]
        out[1] = self.parsing[CLASS_INDEX["hair"]]
        return out


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
        self.session, failures = self._open(requested)
        self.providers: list[str] = list(self.session.get_providers())
        if failures:
            log.warning(
                "%s: %s; using %s",
                self.path.name,
                "; ".join(failures),
                ", ".join(self.providers),
            )
        self._check_signature()
        self.crop_border = self._crop_border()
        # The mesh refinement of this file's 68 points (``arfx.points68``), found once per
        # model file: every analyzer on this model shares it.
        self.points_fit: PointsFit | None = fit_for(self.path)
        self._on_gpu = self.providers[0] != "CPUExecutionProvider"

    def _open(self, requested: list[str]) -> tuple[Any, list[str]]:
        """A session on the first of ``requested`` that loads, and why those before it
        failed.

        Each GPU provider is tried in turn with the ones after it: onnxruntime itself, when
        any listed provider fails, retries on the CPU alone, so TensorRT missing on a
        machine would otherwise cost CUDA too.
        """
        import onnxruntime as ort

        failures: list[str] = []
        if requested != ["CPUExecutionProvider"]:
            _preload_gpu_libraries(ort)
        for start, provider in enumerate(requested):
            providers = requested[start:]
            printed = io.StringIO()
            try:
                # onnxruntime prints (to stdout) when a GPU provider fails and it retries
                # on the CPU; capture that and say it once, in our log, instead.
                with contextlib.redirect_stdout(printed), _quiet(ort):
                    session = ort.InferenceSession(
                        str(self.path),
                        sess_options=self._options,
                        providers=provider_entries(providers, input_shapes()),
                    )
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises unrelated types
                if _is_model_problem(exc) or provider == "CPUExecutionProvider":
                    raise ModelError(
                        f"{self.path}: cannot load the model: {_first_line(exc)}"
                    ) from None
                failures.append(f"{provider} failed ({_first_line(exc)})")
                continue
            if session.get_providers()[0] == provider:
                return session, failures
            lines = printed.getvalue().splitlines()
            reason = next(
                (line for line in lines if line.startswith("EP Error ")),
                "missing CUDA/cuDNN/TensorRT libraries or no GPU",
            )
            failures.append(f"{provider} failed to load ({reason[:300]})")
            if requested[start + 1 :] == ["CPUExecutionProvider"]:
                return session, failures  # onnxruntime already retried on the CPU
        raise ModelError(f"{self.path}: no execution provider loaded: {'; '.join(failures)}")

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


@dataclass
class ModelSchedule:
    """When the face model runs (``FaceAnalyzer``): twice on a new face, and in video when it
    lends the frames between its runs the last maps, moved with the tracked face."""

    interval: int = 1
    """Run the model on at most one frame in this many; 1 runs it on every frame."""
    lip_motion: float = 0.25
    """The model runs anyway when the mesh's outer lip points moved, in crop pixels (of the
    256-pixel crop), more than this on average since it last ran: a talking mouth."""
    mouth_change: float = 12.0
    """The model runs anyway when the lower face changed in the image since it last ran:
    the mean grey-level difference of the worst 32x32-pixel block of the crop's lower face
    (a hand moving over the mouth)."""
    warm_start: bool = True
    """A face seen for the first time (a new track, every photo) goes through the model
    twice, and its maps come from the second run, which gets the first one's face and hair
    maps as context, as every later frame gets the previous frame's. From empty context the
    model is less sure of hair at a frame's edge and of thin hair (it trained mostly with a
    previous frame), and one more run on a new face costs little. The lips channel stays
    empty: fed its own lip guess back, the model claimed more of an occluder over the mouth.
    The 68 points and rotation stay the first run's (``FaceAnalyzer._warm_start``)."""

    def validate(self) -> None:
        check_integer("model interval", self.interval, 1, 8, error=ArfxError)
        if not isinstance(self.warm_start, bool):
            raise ArfxError(
                f"model schedule warm_start must be True or False, got {self.warm_start!r}"
            )
        for name in ("lip_motion", "mouth_change"):
            value = getattr(self, name)
            if not is_number(value) or value < 0:
                raise ArfxError(f"model schedule {name} must be a number >= 0, got {value!r}")


class FaceAnalyzer:
    """Runs the model on every tracked face of each frame, all faces in one batch.

    Keeps each face's previous analysis to build the context input, warped from the
    previous crop into the current one, so the masks stay stable from frame to frame.
    ``reset()`` forgets it (a scene cut). ``lip_prior=False`` leaves the mesh lip polygons
    out of the context (channel 3 all zeros): an evaluation of what the model finds in the
    image alone, not a setting for effects. ``mesh_points`` refines the network's 68 points
    with the tracker's mesh through the fit made for this model file (``FaceModel
    .points_fit``, ``arfx.points68``; ``points_fit`` here is None where there is none or
    it is off).

    With a ``schedule`` interval above 1 the model runs on one frame in ``interval`` and
    the frames between *carry* its maps: they live in the face's crop, which the tracker
    moves with the face, so the last maps with the new frame's alignment follow the head's
    motion at no cost. What the crop cannot follow is a change of the face itself, so the
    model runs anyway for a new face, a moving mouth or a hand over it (``ModelSchedule``).
    """

    def __init__(
        self,
        model: FaceModel,
        *,
        lip_prior: bool = True,
        schedule: ModelSchedule | None = None,
        mesh_points: bool = True,
    ) -> None:
        self.model = model
        self.lip_prior = lip_prior
        self.points_fit = model.points_fit if mesh_points else None
        self.schedule = schedule or ModelSchedule()
        self.schedule.validate()
        self._previous: dict[int, FaceAnalysis] = {}
        # The last run's analyses (as remembered): what carried frames move, each from the
        # run itself, so a chain of them resamples the maps once, not once per frame.
        self._last_run: dict[int, FaceAnalysis] = {}
        # What each face looked like when the model last ran: crop-space lip points and
        # the lower face's grey thumbnail, by face id.
        self._at_run: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._carried = 0  # frames carried since the model last ran

    def reset(self) -> None:
        self._previous = {}
        self._last_run = {}
        self._at_run = {}
        self._carried = 0

    def remember(self, analyses: Sequence[FaceAnalysis]) -> None:
        """Use ``analyses`` (e.g. temporally blended ones) as the next frame's context."""
        self._previous = {a.face_id: a for a in analyses}
        if not any(a.carried for a in analyses):
            self._last_run = dict(self._previous)

    def analyze(self, image: np.ndarray, faces: Sequence[Any]) -> list[FaceAnalysis]:
        """Analyse ``faces`` (tracked, with ``id`` and mesh ``landmarks``) in an RGB frame."""
        if not faces:
            self.reset()
            return []
        alignments = [align_mesh(face.landmarks) for face in faces]
        carried = self._carry(image, faces, alignments)
        if carried is not None:
            self._carried += 1
            self._previous = {a.face_id: a for a in carried}
            return carried
        analyses = self._run(image, faces, alignments)
        self._carried = 0
        if self.schedule.interval > 1:
            self._at_run = {
                face.id: self._looks(image, face, alignment)
                for face, alignment in zip(faces, alignments, strict=True)
            }
        self._previous = {a.face_id: a for a in analyses}
        self._last_run = dict(self._previous)
        return analyses

    def _carry(
        self, image: np.ndarray, faces: Sequence[Any], alignments: Sequence[Alignment]
    ) -> list[FaceAnalysis] | None:
        """The last analyses moved onto this frame's alignments, or None when the model
        must run (the interval is over, a face is new, or its mouth changed)."""
        schedule = self.schedule
        if self._carried + 1 >= schedule.interval:
            return None
        carried = []
        for face, alignment in zip(faces, alignments, strict=True):
            previous = self._last_run.get(face.id)
            then = self._at_run.get(face.id)
            if previous is None or then is None:
                return None
            lips, thumbnail = self._looks(image, face, alignment)
            if np.linalg.norm(lips - then[0], axis=1).mean() > schedule.lip_motion:
                return None
            if _worst_block(np.abs(thumbnail - then[1])) > schedule.mouth_change:
                return None
            carried.append(carry_to(previous, alignment, face.landmarks))
        return carried

    @staticmethod
    def _looks(image: np.ndarray, face: Any, alignment: Alignment) -> tuple[np.ndarray, np.ndarray]:
        """A face's crop-space lip points and lower-face thumbnail."""
        return alignment.to_crop(face.landmarks[_LIP_POINTS]), _mouth_thumbnail(image, alignment)

    def _run(
        self, image: np.ndarray, faces: Sequence[Any], alignments: Sequence[Alignment]
    ) -> list[FaceAnalysis]:
        """The model on every face, in one batch; with ``ModelSchedule.warm_start`` the new
        faces run again on the same crops (``_warm_start``)."""
        crops, context = self._inputs(image, faces, alignments)
        analyses = self._infer(faces, alignments, crops, context)
        if self.schedule.warm_start:
            analyses = self._warm_start(faces, alignments, crops, context, analyses)
        return analyses

    def _inputs(
        self, image: np.ndarray, faces: Sequence[Any], alignments: Sequence[Alignment]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The model's crops and context: each face's previous maps warped into its crop
        (zeros for a new face) and the mesh lip prior."""
        count = len(faces)
        crops = np.empty((count, 3, CROP_SIZE, CROP_SIZE), np.float32)
        context = np.zeros((count, 4, CROP_SIZE, CROP_SIZE), np.float32)
        for i, (face, alignment) in enumerate(zip(faces, alignments, strict=True)):
            crop = alignment.crop(image, border=self.model.crop_border)
            crops[i] = crop.transpose(2, 0, 1) * np.float32(1.0 / 255.0)
            previous = self._previous.get(face.id)
            if previous is not None:
                context[i, :3] = rewarp(previous.context(), previous.alignment, alignment)
            if self.lip_prior:
                crop_points = alignment.to_crop(face.landmarks)
                context[i, 3] = mesh_mask(crop_points, (CROP_SIZE, CROP_SIZE), "lips") / 255.0
        return crops, context

    def _infer(
        self,
        faces: Sequence[Any],
        alignments: Sequence[Alignment],
        crops: np.ndarray,
        context: np.ndarray,
    ) -> list[FaceAnalysis]:
        """One batch through the model, its outputs mapped back to the frame."""
        outputs = self.model.infer(crops, context)
        analyses = []
        for i, (face, alignment) in enumerate(zip(faces, alignments, strict=True)):
            mesh = alignment.to_crop(face.landmarks)
            analyses.append(
                FaceAnalysis(
                    face_id=face.id,
                    alignment=alignment,
                    parsing=outputs["parsing"][i],
                    occlusion=outputs["occlusion"][i, 0],
                    landmarks68=alignment.to_frame(self._points68(mesh, outputs["landmarks"][i])),
                    rotation=rotation_to_frame(outputs["rotation"][i], alignment),
                    mesh=mesh,
                )
            )
        return analyses

    def _points68(self, mesh: np.ndarray, network: np.ndarray) -> np.ndarray:
        """A face's 68 points in crop pixels: the network's, refined with its crop-space
        ``mesh``."""
        if self.points_fit is None:
            return network
        return self.points_fit.apply(mesh, network)

    def _warm_start(
        self,
        faces: Sequence[Any],
        alignments: Sequence[Alignment],
        crops: np.ndarray,
        context: np.ndarray,
        analyses: list[FaceAnalysis],
    ) -> list[FaceAnalysis]:
        """``analyses`` with the maps of the faces that had no previous analysis from a second
        run on the same crops, with their first face and hair maps as context; the lips
        channel stays empty and the mesh prior as it was (``ModelSchedule.warm_start``).

        Their 68 points and rotation stay the first run's: the 68-point training faces never
        came with maps as context, and fed some the landmark head did worse (held-out NME
        5.14% -> 5.82% with model v1)."""
        new = [i for i, face in enumerate(faces) if face.id not in self._previous]
        if not new:
            return analyses
        warm = context[new]  # a copy; channels 0-2 are zeros, as for any new face
        for row, i in enumerate(new):
            warm[row, :2] = analyses[i].context()[:2]  # face, hair
        again = self._infer([faces[i] for i in new], [alignments[i] for i in new], crops[new], warm)
        out = list(analyses)
        for i, analysis in zip(new, again, strict=True):
            out[i] = replace(
                analysis, landmarks68=analyses[i].landmarks68, rotation=analyses[i].rotation
            )
        return out


WARP_SIGMA = 6.0
"""Crop pixels over which a mesh point's motion spreads when carried maps are warped (the
mesh's points lie about 8 crop pixels apart)."""
WARP_MIN_MOTION = 0.3
"""Crop pixels of non-rigid mesh motion below which carried maps are not warped."""
_WARP_STEP = 4  # the displacement field is built on a grid of one point per 4x4 crop pixels
_WARP_PRIOR = 0.05  # weight of "no motion": far from the mesh the maps move rigidly


def carry_to(
    analysis: FaceAnalysis, alignment: Alignment, mesh: np.ndarray | None = None
) -> FaceAnalysis:
    """``analysis`` moved onto a later frame's ``alignment`` of the same face, whose mesh
    (frame pixels) is ``mesh``.

    Its maps live in the crop, which follows the face, so the face's rigid motion moves
    them as they are. What the crop cannot follow (the mouth opening, the jaw dropping, a
    smile) the mesh does: each crop pixel takes the maps from where the mesh points near it
    were (``WARP_SIGMA``), so the lips follow the mouth. Its points and rotation are mapped
    through the old crop into the new one."""
    old = analysis.alignment
    parsing, occlusion, moved = analysis.parsing, analysis.occlusion, None
    if mesh is not None:
        moved = alignment.to_crop(mesh)
        if analysis.mesh is not None and analysis.mesh.shape == moved.shape:
            motion = _mesh_motion(analysis.mesh, moved)
            if motion is not None:
                parsing, occlusion = _warp_maps(parsing, occlusion, motion)
    return replace(
        analysis,
        alignment=alignment,
        parsing=parsing,
        occlusion=occlusion,
        landmarks68=alignment.to_frame(old.to_crop(analysis.landmarks68)),
        rotation=rotation_to_frame(rotation_to_crop(analysis.rotation, old), alignment),
        carried=True,
        mesh=moved if moved is not None else analysis.mesh,
    )


@dataclass
class _Motion:
    """A carried face's map motion: ``field`` (for cv2.remap: x, y float32, where each
    pixel's maps were) over ``box`` (x0, y0, x1, y1) of the crop; the rest stays put."""

    field: np.ndarray
    box: tuple[int, int, int, int]


def _mesh_motion(then: np.ndarray, now: np.ndarray) -> _Motion | None:
    """Where the maps of each crop pixel were, from the mesh's points ``then`` and ``now``
    in crop pixels, over the box of the crop that moves; None when the mesh moved less than
    ``WARP_MIN_MOTION`` anywhere."""
    shift = (then - now).astype(np.float32)  # where each point's maps are, from where it is
    if float(np.abs(shift).max()) < WARP_MIN_MOTION:
        return None
    cells = CROP_SIZE // _WARP_STEP
    index = np.clip(np.round(now / _WARP_STEP - 0.5).astype(np.intp), 0, cells - 1)
    flat = index[:, 1] * cells + index[:, 0]
    weight = np.bincount(flat, minlength=cells * cells).astype(np.float32)
    dx = np.bincount(flat, shift[:, 0], cells * cells).astype(np.float32)
    dy = np.bincount(flat, shift[:, 1], cells * cells).astype(np.float32)
    sigma = WARP_SIGMA / _WARP_STEP
    grids = [cv2.GaussianBlur(g.reshape(cells, cells), (0, 0), sigma) for g in (weight, dx, dy)]
    norm = grids[0] + _WARP_PRIOR * float(grids[0].max())
    cell_shift = np.stack([grids[1] / norm, grids[2] / norm], axis=2)
    # The blur's kernel is finite, so cells out of its reach of every point have a shift of
    # exactly zero, which the linear upsampling keeps exactly zero more than one cell away:
    # there the field is the identity, and the maps stay as they are, bit for bit. Only the
    # box around the moving cells is resampled (about half the crop: the face, not the hair).
    rows = np.flatnonzero(cell_shift.any(axis=(1, 2)))
    cols = np.flatnonzero(cell_shift.any(axis=(0, 2)))
    if not len(rows):
        return None
    x0, x1 = max(0, (cols[0] - 1) * _WARP_STEP), min(CROP_SIZE, (cols[-1] + 2) * _WARP_STEP)
    y0, y1 = max(0, (rows[0] - 1) * _WARP_STEP), min(CROP_SIZE, (rows[-1] + 2) * _WARP_STEP)
    upsampled = cv2.resize(cell_shift, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)
    field = upsampled[y0:y1, x0:x1].copy()
    field[..., 0] += np.arange(x0, x1, dtype=np.float32)
    field[..., 1] += np.arange(y0, y1, dtype=np.float32)[:, None]
    return _Motion(field, (int(x0), int(y0), int(x1), int(y1)))


def _warp_maps(
    parsing: np.ndarray, occlusion: np.ndarray, motion: _Motion
) -> tuple[np.ndarray, np.ndarray]:
    """The maps moved by ``motion`` (see ``_mesh_motion``), plane by plane (no transposed
    copies); pixels from outside the crop take the nearest edge's values."""
    fixed, fraction = cv2.convertMaps(motion.field, None, cv2.CV_16SC2)  # one conversion, 11 uses
    x0, y0, x1, y1 = motion.box
    out = np.empty((len(parsing) + 1, *occlusion.shape), np.float32)
    out[:-1] = parsing
    out[-1] = occlusion
    for plane, target in zip((*parsing, occlusion), out, strict=True):
        cv2.remap(
            plane,
            fixed,
            fraction,
            cv2.INTER_LINEAR,
            dst=target[y0:y1, x0:x1],  # a view: written in place
            borderMode=cv2.BORDER_REPLICATE,
        )
    return out[:-1], out[-1]


def _mouth_thumbnail(image: np.ndarray, alignment: Alignment) -> np.ndarray:
    """The crop's lower face (``_MOUTH_REGION``) in grey, at a quarter of crop resolution."""
    x0, y0, x1, y1 = _MOUTH_REGION
    to_thumb = alignment.matrix / _THUMB_STEP
    to_thumb[:, 2] -= (x0 / _THUMB_STEP, y0 / _THUMB_STEP)
    size = ((x1 - x0) // _THUMB_STEP, (y1 - y0) // _THUMB_STEP)
    thumb = cv2.warpAffine(
        image, to_thumb, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return thumb.astype(np.float32).mean(axis=2)


def _worst_block(change: np.ndarray) -> float:
    """The largest mean of ``change`` over the 8x8 blocks of a thumbnail."""
    rows, cols = change.shape[0] // 8, change.shape[1] // 8
    return float(change[: rows * 8, : cols * 8].reshape(rows, 8, cols, 8).mean(axis=(1, 3)).max())


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
    """Warp one crop-space probability map into ``out`` (uint8, max-combined), in its ROI:
    the frame box of the crop pixels that are not zero (lips fill a tenth of the crop, and
    the warp's cost grows with the frame pixels it writes)."""
    height, width = out.shape
    values = np.clip(probability * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rows = np.flatnonzero(values.any(axis=1))
    if rows.size == 0:
        return
    cols = np.flatnonzero(values.any(axis=0))
    # Crop pixel centres sit at integer coordinates; bilinear sampling reaches one pixel
    # further, so the box grows by one on each side.
    left, right = float(cols[0] - 1), float(cols[-1] + 1)
    top, bottom = float(rows[0] - 1), float(rows[-1] + 1)
    corners = alignment.to_frame(
        np.array([[left, top], [right, top], [left, bottom], [right, bottom]], float)
    )
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, (width, height))
    if x1 <= x0 or y1 <= y0:
        return
    # With WARP_INVERSE_MAP the matrix maps ROI pixels to crop pixels: the crop transform
    # shifted to the ROI's origin.
    to_crop = alignment.matrix.copy()
    to_crop[:, 2] += to_crop[:, :2] @ np.array([x0, y0], float)
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


def input_shapes() -> dict[str, tuple[int, int, int]]:
    """Each model input's (C, H, W), for TensorRT's optimisation profile."""
    return {name: (channels, CROP_SIZE, CROP_SIZE) for name, channels in INPUTS.items()}


def _preload_gpu_libraries(ort: Any) -> None:
    """Load CUDA and cuDNN from the ``nvidia-*`` pip packages (``onnxruntime-gpu[cuda,cudnn]``)
    where they are installed: the CUDA provider finds them only on the system's library
    path otherwise. Quiet: what fails to load here shows as the provider's failure."""
    preload = getattr(ort, "preload_dlls", None)  # onnxruntime >= 1.21
    if preload is None:
        return
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
        preload()


def _is_model_problem(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(
        word in text for word in ("protobuf", "invalid", "load model", "parse", "corrupt", "graph")
    )


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
