"""``arfx.Session``: the pipeline a user embeds.

Data flows top to bottom, one frame at a time::

    source -> FaceTracker -> FaceStabilizer -> FaceAnalyzer -> MaskStabilizer
           -> masks -> effect hooks -> Compositor -> sink

A Session owns one tracker, one GL context and the compiled effect programs, and reuses
them for every frame. Thread safety: ``process``, ``analyze``, ``stream``, ``render`` and
``close`` take an internal lock, so a Session may be shared between threads but works on
one frame at a time (frames from two threads interleave; each call gets its own result).
``Effect.set`` and ``Session.set`` may be called from any thread at any time; the change
applies from the next frame. For parallel work, use one Session per thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from time import perf_counter
from typing import Any

import cv2
import numpy as np

from .behind import ModelBehind
from .blas import limit_blas_threads
from .checks import check_integer, is_number
from .codecs import DECODERS, ENCODERS
from .compositor import Compositor
from .effect import Effect, EffectSpec, FrameContext, file_stamp
from .engine import Pipeline, PipelineError
from .errors import ArfxError, EffectError, ParameterError, SinkError
from .frame import Frame, as_rgb8
from .hands import HAND_MASKS, HandSearch, HandTracker, hand_mask, model_sees_occluder
from .heap import PeriodicTrim, fix_mmap_threshold, limit_arenas, return_free_memory
from .inference import DEVICES, select_providers
from .masks import MESH_MASKS, MeshMasks
from .model import (
    DEFAULT_MODEL,
    FaceAnalysis,
    FaceAnalyzer,
    FaceModel,
    ModelMasks,
    ModelSchedule,
)
from .model import MASK_NAMES as MODEL_MASK_NAMES
from .pose import camera_matrix
from .progress import Progress
from .registry import EffectLike, EffectRegistry, load_named, parse_effect_spec
from .sinks import ImageFileSink, Sink, VideoFileSink
from .smoothing import FaceStabilizer, MaskStabilizer, SceneCutDetector, StabilizerOptions
from .sources import ImageSource, Source, VideoFileSource
from .tracking import Face, FaceTracker, TrackerOptions

log = logging.getLogger("arfx")


class RenderError(ArfxError):
    """A render stopped part-way. ``partial`` is the playable file kept, if any."""

    def __init__(self, message: str, *, partial: Path | None, frames: int) -> None:
        super().__init__(message)
        self.partial = partial
        self.frames = frames


IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"})


@dataclass
class SessionOptions:
    """Every setting of a Session, typed and defaulted in one place."""

    max_faces: int = 4
    """Most faces tracked per frame (MediaPipe face mesh)."""
    device: str = "auto"
    """Where models run: "auto" (TensorRT, CUDA, then CPU), "cpu" or "cuda"."""
    static_images: bool = False
    """Detect faces in every frame instead of tracking; for unrelated photos."""
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    focal_length: float | None = None
    """Camera focal length in pixels for head pose; None = max(width, height)."""
    small_faces: bool = True
    """Also find faces too small for the face mesh's own detector (under about a tenth of
    the frame's width), with MediaPipe's full-range detector and the mesh on a crop around
    each (``arfx.tracking.SmallFaces``); in video it looks for new ones every 10 frames."""
    gl_backend: str | None = "egl"
    """moderngl context backend: "egl" renders headless; None lets moderngl choose."""
    effect_paths: tuple[str | Path, ...] = ()
    """Extra folders of effect plugins, searched after the built-in ones."""
    skip_broken_effects: bool = False
    """An effect whose folder is broken (manifest, shader, hooks, assets) is left out and
    reported in ``Session.effect_errors`` instead of failing the Session. A wrong effect
    name or parameter value in the session's own list still raises."""
    masks: str = "auto"
    """Where face-region masks come from: "model" (the face model: lips, hair, skin,
    occlusion...), "mesh" (the tracker's lip polygons only) or "auto" (the model when its
    file exists, else the mesh)."""
    model_path: str | Path | None = None
    """The face model (ONNX); None = the one shipped in the package."""
    model_schedule: ModelSchedule = field(default_factory=ModelSchedule)
    """How the face model runs: twice on a new face (``warm_start``) and, in video, how
    often; between its runs the masks move with the tracked face, unless the mouth moved or
    something covers it (``ModelSchedule``). The default runs it on every frame. With
    ``static_images`` only ``warm_start`` applies: one photo's maps are no guide to the
    next."""
    pipelined: bool = True
    """``render`` decodes, analyses, composites and encodes on a thread each, overlapping
    consecutive frames (see ``arfx.engine``); False runs them one after another."""
    queue_size: int = 2
    """Frames waiting between two pipelined stages (more: smoother, more memory)."""
    live_overlap: bool = False
    """Live streams (``stream(live=True)``, ``arfx webcam``): composite each frame while the
    next one is analysed. That delivers more frames where cores are to spare (a GPU, many
    cores), but on a 2-core CPU the two halves slow each other: 153-163 ms median latency
    against 114-122 ms with each frame analysed and composited before the next is taken,
    for about as many frames delivered. False takes a frame through both in turn."""
    live_max_wait: float | None = 0.5
    """Live streams: a frame that has waited for the stream's thread longer than this many
    frame intervals (the camera's, measured) is dropped, and the next one taken as it
    arrives. When a frame's work takes a little longer than the interval, each frame
    otherwise waits for the one before: up to a whole interval, half of one on average.
    Measured on 2 cores at 640x360, 24 frames/s, model behind: median latency 53-57 ms
    against 67-69 with None, p95 67-74 against 89-92, for 5% fewer frames delivered (0.75:
    61-64 ms, as many frames as None). None takes every waiting frame, however long it
    waited."""
    live_model: str = "inline"
    """Live streams: "inline" runs the face model on each frame before compositing it;
    "behind" runs it in a worker thread on the newest frame while each frame is composited
    with the newest maps it has finished, moved onto that frame's face (``arfx.behind``):
    less latency, and a change of the face itself (the mouth, a hand) shows one model run
    later. A new face waits for its first maps either way. Offline renders always run the
    model inline."""
    hands: bool = True
    """Track hands (MediaPipe Hands) in frames with faces when an effect reads the ``hands``
    mask, so that lipstick leaves fingers over the mouth unpainted. It costs a CPU 5-15 ms
    a frame; False leaves the mask empty."""
    max_hands: int = 2
    """Most hands tracked per frame (1-4); 1 masks only one hand. While fewer hands than
    this are followed, the tracker looks for more only every ``hand_search_interval``
    frames (``arfx.hands.HandTracker``)."""
    hand_search_interval: int = 3
    """In video, with no hand in view, look for one every this many frames, and at once
    when the face model sees something in front of a face (``arfx.hands.HandSearch``); a
    hand found is followed in every frame, and while fewer than ``max_hands`` are followed,
    more are looked for every this many frames (a second hand shows up to this many frames
    minus one late). 1 looks in every frame, at about twice the cost with one hand in view
    (14.3 against 6.0 ms a frame at 640x360 on a 2-core CPU) but with one MediaPipe graph
    instead of two (about 60 MB less memory). Photos (``static_images``) are always
    searched."""
    trim_interval: float = 10.0
    """Seconds between hand-backs of free heap memory to the system while frames are
    processed (``arfx.heap.PeriodicTrim``), so long streams stay flat in resident memory;
    0 turns it off."""
    stabilizer: StabilizerOptions = field(default_factory=StabilizerOptions)
    """Temporal stabilisation of landmarks, pose and masks in video (not used with
    ``static_images``); ``StabilizerOptions.off()`` gives the raw values."""
    encoder: str = "auto"
    """H.264 encoder of rendered videos: "auto" (NVIDIA's h264_nvenc where it opens, else
    libx264), "libx264" or "h264_nvenc" (``arfx.codecs``)."""
    decoder: str = "auto"
    """Decoder of input videos: "auto" or "software" (FFmpeg's threaded decoders, measured
    faster than fetching CUDA-decoded frames) or "cuda" (``arfx.codecs``)."""

    def __post_init__(self) -> None:
        check_integer("max_faces", self.max_faces, 1, 8, error=ArfxError)
        if self.device not in DEVICES:
            raise ArfxError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.live_model not in ("inline", "behind"):
            raise ArfxError(f"live_model must be 'inline' or 'behind', got {self.live_model!r}")
        if self.masks not in ("auto", "model", "mesh"):
            raise ArfxError(f"masks must be 'auto', 'model' or 'mesh', got {self.masks!r}")
        check_integer("queue_size", self.queue_size, 1, 64, error=ArfxError)
        wait = self.live_max_wait
        if wait is not None and (not is_number(wait) or wait < 0):
            raise ArfxError(
                f"live_max_wait must be None or a number of frame intervals >= 0, got {wait!r}"
            )
        if not is_number(self.trim_interval) or self.trim_interval < 0:
            raise ArfxError(
                f"trim_interval must be a number of seconds >= 0, got {self.trim_interval!r}"
            )
        check_integer("max_hands", self.max_hands, 1, 4, error=ArfxError)
        try:
            HandSearch(self.hand_search_interval)
        except ValueError as exc:
            raise ArfxError(f"hand_search_interval: {exc}") from None
        if not isinstance(self.model_schedule, ModelSchedule):
            raise ArfxError(
                f"model_schedule must be a ModelSchedule, got {type(self.model_schedule).__name__}"
            )
        self.model_schedule.validate()
        if not isinstance(self.stabilizer, StabilizerOptions):
            raise ArfxError(
                f"stabilizer must be a StabilizerOptions, got {type(self.stabilizer).__name__}"
            )
        self.stabilizer.validate()
        if self.encoder not in ENCODERS:
            raise ArfxError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.decoder not in DECODERS:
            raise ArfxError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")

    def uses_model(self) -> bool:
        """Whether this configuration runs the face model."""
        if self.masks == "auto":
            return Path(self.model_path or DEFAULT_MODEL).is_file()
        return self.masks == "model"

    def tracker_options(self) -> TrackerOptions:
        return TrackerOptions(
            max_faces=self.max_faces,
            static_images=self.static_images,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
            focal_length=self.focal_length,
            small_faces=self.small_faces,
        )


@dataclass
class RenderReport:
    """What ``Session.render`` did."""

    source: str
    output: Path | None
    frames: int
    frames_with_faces: int
    seconds: float
    effect_failures: dict[str, int] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Session:
    """Tracks faces and composites effects onto frames, files and live sources.

    >>> with arfx.Session(["lipstick:color=#a3122f"]) as session:
    ...     out = session.process(rgb_frame)

    Creating one also sets three things for the whole process, unless the environment sets
    them itself: glibc's mmap threshold and arena count (``arfx.heap``: closed sessions and
    long streams give memory back) and one thread for numpy's BLAS (``arfx.blas``: its idle
    workers spin and took a core from the renderer). They stay set after the session closes.
    """

    def __init__(
        self,
        effects: Sequence[EffectLike] = ("lipstick",),
        options: SessionOptions | None = None,
        *,
        max_faces: int | None = None,
        device: str | None = None,
    ) -> None:
        fix_mmap_threshold()  # closed sessions must give their memory back (arfx.heap)
        limit_arenas()  # and long streams must stay flat
        limit_blas_threads()  # spinning BLAS workers took a core from the renderer (arfx.blas)
        options = options or SessionOptions()
        if max_faces is not None:
            options = replace(options, max_faces=max_faces)
        if device is not None:
            options = replace(options, device=device)
        self.options = options
        self._trim = PeriodicTrim(options.trim_interval)  # long streams stay flat (arfx.heap)
        self.providers = select_providers(options.device)
        self.registry = EffectRegistry(options.effect_paths)
        self.effect_errors: dict[str, str] = {}
        """Effects left out (``skip_broken_effects``) or whose hot reload failed, with why."""
        self.effects: list[Effect] = self._resolve_effects(effects)
        self._analyzer = None
        self._behind: ModelBehind | None = None  # the model beside a live stream, while one runs
        if options.uses_model():
            self._analyzer = FaceAnalyzer(
                FaceModel(options.model_path, device=options.device),
                schedule=(
                    ModelSchedule(warm_start=options.model_schedule.warm_start)
                    if options.static_images  # one photo's maps are no guide to the next
                    else options.model_schedule
                ),
            )
        self.mask_source = "model" if self._analyzer is not None else "mesh"
        self.effects = self._keep_working(self.effects, lambda e: self._check_masks(e.spec))
        self.effect_failures: dict[str, int] = {}
        self._lock = threading.RLock()
        # Streams handed out and not yet finished: close() stops one left open (its stage
        # threads use the tracker, the model and the GL context that close() releases).
        self._streams: weakref.WeakSet[Generator[Frame, None, None]] = weakref.WeakSet()
        self._index = 0
        self._tracker = FaceTracker(options.tracker_options())
        self._stabilizer = FaceStabilizer(options.stabilizer, options.focal_length)
        self._mask_stabilizer = MaskStabilizer(options.stabilizer)
        self._cuts = SceneCutDetector(options.stabilizer.scene_cut_threshold)
        self._last_time: float | None = None
        self.scene_cuts = 0
        """Scene cuts detected since the session started (each reset the tracks)."""
        self.dropped_frames = 0
        """Frames live streams dropped because a newer one arrived first."""
        self.failed_frames: dict[str, int] = {}
        """Frames a live stream passed through unprocessed because their analysis or
        compositing raised, by ``"stage: ExceptionType"`` (a GL or model error)."""
        self._busy = False
        self.stage_times: dict[str, list[float]] | None = None
        """Set to a dict to collect seconds per stage and frame (``arfx bench pipeline``);
        on a software renderer also per effect pass, as ``"composite: NAME"``
        (``Compositor.pass_times``)."""
        self._masks = ModelMasks() if self._analyzer is not None else MeshMasks()
        self._hand_tracker: HandTracker | None = None  # made when an effect first needs it
        self._hand_buffer: np.ndarray | None = None
        self._hand_search = HandSearch(1 if options.static_images else options.hand_search_interval)
        # A live frame's hand tracking, started beside its face tracking and model while a
        # hand is followed (``_hands_ahead``); one worker, made on first use.
        self._hands_pool: ThreadPoolExecutor | None = None
        try:
            self._compositor = Compositor(backend=options.gl_backend)
            # Compile now: a broken shader fails here, by file and line.
            self.effects = self._keep_working(self.effects, self._prepare)
            self._watched = {
                effect.spec.folder: self._stamp(effect.spec) for effect in self.effects
            }
        except BaseException:
            self._tracker.close()
            if hasattr(self, "_compositor"):
                self._compositor.close()
            raise
        self._closed = False

    # -- effects -------------------------------------------------------------------------

    def _resolve_effects(self, items: Sequence[EffectLike]) -> list[Effect]:
        effects = []
        for item in items:
            try:
                effects.append(self.registry.resolve(item))
            except ParameterError:
                raise  # the caller's own parameter values
            except EffectError as exc:
                name = _effect_name(item)
                if name not in self.registry.names() and name not in self.registry.broken:
                    raise  # an unknown name is the caller's mistake, not a broken plugin
                self._disable(name, exc)
        return effects

    def _keep_working(self, effects: list[Effect], check: Callable[[Effect], None]) -> list[Effect]:
        """``effects`` without those for which ``check`` raises EffectError (which raises
        instead unless ``skip_broken_effects``)."""
        kept = []
        for effect in effects:
            try:
                check(effect)
            except EffectError as exc:
                self._disable(effect.name, exc)
                continue
            kept.append(effect)
        return kept

    def _disable(self, name: str, exc: EffectError) -> None:
        if not self.options.skip_broken_effects:
            raise exc
        self.effect_errors[name] = str(exc)
        log.warning("effect %r left out: %s", name, exc)

    def _prepare(self, effect: Effect) -> None:
        self._compositor.prepare(effect)
        effect.load_hooks()

    @property
    def _available_masks(self) -> tuple[str, ...]:
        face = MODEL_MASK_NAMES if self._analyzer is not None else MESH_MASKS
        return (*face, *HAND_MASKS) if self.options.hands else face

    def _check_masks(self, spec: EffectSpec) -> None:
        available = self._available_masks
        missing = [m for m in spec.masks if m not in available]
        if missing:
            raise EffectError(
                f"effect {spec.name!r} needs masks {missing} that the {self.mask_source} "
                f"masks do not provide (available: {', '.join(available)})"
            )
        known = {*MODEL_MASK_NAMES, *MESH_MASKS, *HAND_MASKS}
        unknown = [m for m in spec.optional_masks if m not in known]
        if unknown:
            raise EffectError(f"effect {spec.name!r}: no mask source provides {unknown}")

    @staticmethod
    def _stamp(spec: EffectSpec) -> tuple[list[Path], tuple]:
        """The files an effect is made of and their current stat() stamp."""
        files = [*spec.files(), spec.folder]  # the folder: files created, removed or renamed
        return files, file_stamp(files)

    def reload_effects(self) -> list[str]:
        """Re-read the effects whose files changed (manifest, shaders, includes, hooks,
        textures) and recompile them; returns the names reloaded.

        Costs a few stat() calls when nothing changed, so a live preview may call it every
        second. A new version that fails to load or compile is not used: the previous one
        keeps rendering and the error is logged and kept in ``effect_errors`` until a later
        version loads.
        """
        with self._lock:
            self._check_open()
            groups: dict[Path, list[Effect]] = {}
            for effect in self.effects:
                groups.setdefault(effect.spec.folder, []).append(effect)
            reloaded = []
            for folder, members in groups.items():
                files, stamp = self._watched.get(folder, ([folder], ()))
                now = file_stamp(files)
                if now == stamp:
                    continue
                self._watched[folder] = (files, now)  # a broken version is reported once
                name = members[0].name
                try:
                    self._reload(members)
                except Exception as exc:  # noqa: BLE001 - a live session must survive an edit
                    error = str(exc) if isinstance(exc, EffectError) else repr(exc)
                    self.effect_errors[name] = error
                    log.warning(
                        "effect %r: reload failed, the previous version goes on: %s", name, error
                    )
                    continue
                self.effect_errors.pop(name, None)
                reloaded.append(name)
                log.info("effect %r reloaded from %s", name, folder)
            return reloaded

    def _reload(self, members: list[Effect]) -> None:
        """Load, check and compile the new version of one folder's effects, then switch."""
        old = members[0].spec
        spec = load_named(old.name, old.folder)
        self._check_masks(spec)
        candidates = [effect.reloaded(spec) for effect in members]
        self._compositor.prepare(candidates[0])
        watched = self._stamp(spec)
        for effect, candidate in zip(members, candidates, strict=True):
            previous = effect.spec
            effect.adopt(candidate)
            self._compositor.forget(previous)
        self._watched[spec.folder] = watched

    # -- configuration -------------------------------------------------------------------

    def effect(self, name: str) -> Effect:
        """The first effect of this session called ``name``."""
        for effect in self.effects:
            if effect.name == name:
                return effect
        raise EffectError(
            f"no effect {name!r} in this session (has: {[e.name for e in self.effects]})"
        )

    def set(self, name: str, **params: Any) -> None:
        """Change an effect's parameters; applies from the next frame, from any thread."""
        self.effect(name).set(**params)

    @property
    def gl_renderer(self) -> str:
        return self._compositor.renderer

    @property
    def gl_objects(self) -> int:
        """GL objects the session holds now: flat from frame to frame (leak checks)."""
        return self._compositor.gl_objects()

    # -- per frame -----------------------------------------------------------------------

    def analyze(self, image: np.ndarray, time: float | None = None) -> list[Face]:
        """Faces in ``image``: ids stable across calls while a face stays in view, landmarks,
        box, pose, and the face model's ``analysis`` when the session runs the model.

        Consecutive calls are frames of one video: ``time`` (seconds) is the frame's
        timestamp, which the stabiliser's filters need; None = one frame period
        (``StabilizerOptions.fps``) after the previous call.
        """
        with self._lock:
            self._check_open()
            return self._track(as_rgb8(image, "image"), time=time)

    def _track(
        self, rgb: np.ndarray, analyse: bool = True, time: float | None = None
    ) -> list[Face]:
        """Track and stabilise faces; with ``analyse``, also run the face model on them."""
        faces, cut = self._follow(rgb, time)
        if cut:
            self._forget_hands()
        return self._analyse(rgb, faces, analyse, cut)

    def _follow(self, rgb: np.ndarray, time: float | None = None) -> tuple[list[Face], bool]:
        """Track and stabilise faces; also whether this frame starts a new scene (a cut: the
        tracks and filters start afresh, and the later steps must forget theirs too)."""
        video = not self.options.static_images
        dt = self._frame_interval(time)
        cut = bool(video and self.options.stabilizer.scene_cuts and self._cuts(rgb))
        if cut:
            self.scene_cuts += 1
            log.info("frame %d: scene cut, tracks and filters start afresh", self._index - 1)
            self._forget_tracks()
        with self._timed("track"):
            faces = self._tracker.track(rgb)
        if video and self._stabilizer.active:
            with self._timed("stabilise"):
                faces = self._stabilizer.stabilize(faces, dt, (rgb.shape[1], rgb.shape[0]))
        return faces, cut

    def _analyse(self, rgb: np.ndarray, faces: list[Face], analyse: bool, cut: bool) -> list[Face]:
        """Run the face model on ``faces`` (with ``analyse``), stabilising its maps in video.

        Frames rendered only by effects that read no model masks (landmarks or pose only)
        skip the model; its temporal context is then dropped, so a later analysis starts
        afresh instead of from masks many frames old. So are unrelated photos
        (``static_images``): one image's masks are no guide to the next, and they are not
        stabilised either.
        """
        if self._analyzer is None:
            return faces
        video = not self.options.static_images
        if cut or not analyse or not video:
            self._forget_analysis()
        if analyse:
            start = perf_counter()
            if self._behind is not None and video:  # a live stream, the model beside it
                analyses, fresh = self._behind.analyze(rgb, faces)
            else:
                analyses = self._analyzer.analyze(rgb, faces)
                fresh = not any(analysis.carried for analysis in analyses)
                if video and fresh:
                    analyses = self._settle_analyses(analyses)
            # frames that carried the last maps (ModelSchedule) are timed apart from runs
            self._record("model" if fresh else "carry", perf_counter() - start)
            for face, analysis in zip(faces, analyses, strict=True):
                face.analysis = analysis
        return faces

    def _settle_analyses(self, analyses: list[FaceAnalysis]) -> list[FaceAnalysis]:
        """A video's fresh model run: its maps stabilised against the last ones, and kept
        as the next run's context."""
        assert self._analyzer is not None
        if self.options.stabilizer.masks:
            with self._timed("stabilise masks"):
                analyses = self._mask_stabilizer.stabilize(analyses)
            self._analyzer.remember(analyses)
        return analyses

    def _frame_interval(self, time: float | None) -> float:
        """Seconds since the previous frame: from timestamps when they advance, else one
        nominal frame period."""
        period = 1.0 / self.options.stabilizer.fps
        last, self._last_time = self._last_time, time
        if time is None or last is None or not 0.0 < time - last < 1.0:
            return period
        return time - last

    def process(self, image: np.ndarray, time: float | None = None) -> np.ndarray:
        """Apply the effects to one frame; returns a new array of the same shape and dtype.

        Grayscale in gives grayscale out, RGBA keeps its alpha. A frame with no face
        comes back bit-identical. ``time``: the frame's timestamp in seconds (see
        ``analyze``).
        """
        with self._lock:
            self._check_open()
            rgb = as_rgb8(image, "image")
            out, _ = self._apply(rgb, time=time)
            if out is rgb:
                return image.copy()
            return _restore_layout(out, image)

    def process_frame(self, frame: Frame) -> Frame:
        """Process one source frame: the result carries the new image and the faces found.

        Use this (or ``stream``) when an app needs both the picture and the faces: it
        tracks once, where ``analyze`` followed by ``process`` would track twice.
        """
        with self._lock:
            self._check_open()
            out, faces = self._apply(
                as_rgb8(frame.image, f"frame {frame.index}"), frame.index, frame.time
            )
        return replace(frame, image=out, faces=tuple(faces))

    def prime(self, frame: Frame) -> None:
        """Run a frame through everything but the drawing: tracking, stabilisation, the
        model, masks and effect hooks. The frames after it then come out as they would in
        the middle of the stream; this is how a chunk of a long file starts
        (``arfx.chunks``)."""
        with self._lock:
            self._check_open()
            rgb = as_rgb8(frame.image, f"frame {frame.index}")
            self._prepare_frame(rgb, frame.index, frame.time)

    def stream(
        self, source: Source, *, pipelined: bool = False, live: bool = False
    ) -> Iterator[Frame]:
        """Yield processed frames (with their faces) from a source, keeping their timestamps.

        ``pipelined``: decoding, analysis and compositing run on a thread each, overlapping
        consecutive frames (every frame, in order). ``live`` (pipelined too): a frame that
        arrives while the analysis is still busy with an older one replaces the one waiting,
        so a camera's picture stays current; ``dropped_frames`` counts what was dropped. A
        live stream also outlives a frame whose analysis or compositing fails (a GL or
        model error): that frame comes out unprocessed, is counted in ``failed_frames`` and
        the first of each kind is logged; a source that fails for good still ends it.
        Elsewhere (files, ``process``) such an error is raised, naming the frame.
        While a pipelined stream runs, the session does nothing else (``process`` from the
        loop's own thread raises; other threads wait). Closing the session stops a stream
        left unfinished (its threads joined, its source closed) before releasing anything.
        """
        frames = self._stream(source, pipelined=pipelined, live=live)
        self._streams.add(frames)
        return frames

    def _stream(
        self, source: Source, *, pipelined: bool, live: bool
    ) -> Generator[Frame, None, None]:
        with source:
            if not (pipelined or live):
                for frame in source:
                    yield self.process_frame(frame)
                return
            with self._lock:
                self._check_open()
                self._busy = True
                pipeline = Pipeline(
                    self._frame_stages(live=live),
                    queue_size=self.options.queue_size,
                    live=live,
                    max_wait=self.options.live_max_wait,
                )
                behind = (
                    live
                    and self.options.live_model == "behind"
                    and self._analyzer is not None
                    and not self.options.static_images
                )
                if behind:
                    assert self._analyzer is not None
                    self._behind = ModelBehind(self._analyzer, self._settle_analyses)
                try:
                    yield from pipeline.run(source)
                finally:
                    if self._behind is not None:
                        self._behind.close()
                        self._behind = None
                    self._busy = False
                    self.dropped_frames += pipeline.dropped

    def render(
        self,
        src: str | Path | Source,
        dst: str | Path | Sink,
        *,
        progress: bool = True,
        keep_partial: bool = True,
    ) -> RenderReport:
        """Render a whole video (or image) file to ``dst``.

        Video outputs are H.264 with the input's frame rate, timestamps and audio. The
        output appears under its final name only when complete; on an error what was
        rendered is kept as ``NAME.partial.EXT`` (playable) or removed, and the error
        names the input file and frame.
        """
        with self._lock:
            self._check_open()
            self.reset()
            options = self.options
            source = src if isinstance(src, Source) else open_source(src, options.decoder)
            with source:
                sink = (
                    dst
                    if isinstance(dst, Sink)
                    else open_sink(dst, source, keep_partial, encoder=options.encoder)
                )
                output = None if isinstance(dst, Sink) else Path(dst)
                report = RenderReport(source.name, output, 0, 0, 0.0)
                failures_before = dict(self.effect_failures)
                bar = Progress(Path(source.name).name, source.frame_count, enabled=progress)
                frames = self._frames_to(sink, source)
                try:
                    with bar:
                        for had_faces in frames:
                            report.frames += 1
                            report.frames_with_faces += had_faces
                            bar.update()
                    sink.close()
                except BaseException as exc:
                    frames.close()  # joins the pipeline's threads before the sink is touched
                    partial = sink.abort() if isinstance(sink, VideoFileSink) else None
                    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                        exc.partial = partial  # type: ignore[union-attr] # for the CLI's exit code
                        raise
                    frame_index = report.frames
                    if isinstance(exc, PipelineError) and exc.__cause__ is not None:
                        exc, frame_index = exc.__cause__, exc.item  # noqa: PLW2901
                    where = f"{source.name}: frame {frame_index}"
                    message = (
                        str(exc)
                        if isinstance(exc, ArfxError)
                        else (f"{where}: {type(exc).__name__}: {exc}")
                    )
                    written = (
                        sink.frames_written if isinstance(sink, VideoFileSink) else report.frames
                    )
                    raise RenderError(message, partial=partial, frames=written) from exc
                report.seconds = bar.elapsed
                report.effect_failures = {
                    k: v - failures_before.get(k, 0)
                    for k, v in self.effect_failures.items()
                    if v > failures_before.get(k, 0)
                }
                return report

    def _frames_to(self, sink: Sink, source: Source) -> Iterator[bool]:
        """Render every frame of ``source`` into ``sink``; yields, per frame written,
        whether it had a face. Pipelined (one thread per stage) unless the options say not."""
        if not self.options.pipelined:
            frames = iter(source)
            while True:
                with self._timed("decode"):
                    frame = next(frames, None)
                if frame is None:
                    return
                out, faces = self._apply(frame.image, frame.index, frame.time)
                with self._timed("encode"):
                    sink.write(frame.with_image(out))
                yield bool(faces)

        def encode(frame: Frame) -> bool:
            sink.write(frame)
            return bool(frame.faces)

        stages = [*self._frame_stages(), ("encode", encode)]
        pipeline = Pipeline(stages, queue_size=self.options.queue_size)
        self._busy = True
        try:
            yield from pipeline.run(source)
        finally:
            self._busy = False

    def _frame_stages(self, live: bool = False) -> list[tuple[str, Callable[[Any], Any]]]:
        """A frame's work as pipeline stages, each beside the next frame's previous one:
        face tracking; the face model; the masks, the hands and the effects' hooks; then
        compositing (GL), which yields the processed Frame with its faces. A scene cut
        travels with its frame, so each stage forgets its own history at the right frame.

        ``live``: the whole frame is one stage (compositing a stage of its own with
        ``live_overlap``), since every frame in flight adds to a live frame's latency
        (measured: 314 ms median with four stages against 166 with two, and 114-122 ms
        with one); and a frame whose analysis or compositing raises comes out unprocessed
        instead of ending the stream (see ``failed_frames``), the failing step starting
        afresh, and so the later ones (the frame counts as a cut)."""
        survive = live

        def failed(frame: Frame, prepared: _Prepared, exc: Exception) -> tuple[Frame, _Prepared]:
            if not survive:
                raise exc
            self._frame_failed("analysis", frame.index, exc)
            _settle(prepared.hands_ahead)  # the hand tracker is reset next: let it finish
            return frame, _Prepared(prepared.rgb, [], frame.index, cut=True)

        def track(frame: Frame, ahead: bool = False) -> tuple[Frame, _Prepared]:
            rgb = as_rgb8(frame.image, f"frame {frame.index}")
            hands = self._hands_ahead(rgb) if ahead else None
            try:
                prepared = self._follow_frame(rgb, frame.index, frame.time)
            except Exception as exc:
                self._forget_tracks()  # the tracker may be half-way through an update
                return failed(frame, _Prepared(rgb, [], frame.index, hands_ahead=hands), exc)
            prepared.hands_ahead = hands
            return frame, prepared

        def analyse(item: tuple[Frame, _Prepared]) -> tuple[Frame, _Prepared]:
            frame, prepared = item
            try:
                prepared = self._analyse_frame(prepared)
            except Exception as exc:
                self._forget_analysis()
                return failed(frame, prepared, exc)
            return frame, prepared

        def prepare(item: tuple[Frame, _Prepared]) -> tuple[Frame, _Prepared]:
            frame, prepared = item
            try:
                prepared = self._prepare_effects(prepared)
            except Exception as exc:
                _settle(prepared.hands_ahead)
                self._forget_hands()
                return failed(frame, prepared, exc)
            if prepared.context is not None:  # the mask builders reuse their buffers
                masks = {name: mask.copy() for name, mask in prepared.context.masks.items()}
                prepared.context = replace(prepared.context, masks=masks)
            return frame, prepared

        def composite(item: tuple[Frame, _Prepared]) -> Frame:
            frame, prepared = item
            try:
                out = self._composite_frame(prepared)
            except Exception as exc:
                if not survive:
                    raise
                self._frame_failed("compositing", frame.index, exc)
                out = prepared.rgb
            return replace(frame, image=out, faces=tuple(prepared.faces))

        # Live, the hand tracker may run beside the face tracking and model of its frame
        # (``_hands_ahead``): it saved 11 ms of a frame's 45-48 (track, model and hands).
        if live and self.options.live_overlap:
            return [
                ("analyse", lambda frame: prepare(analyse(track(frame, ahead=True)))),
                ("composite", composite),
            ]
        if live:
            return [
                ("process", lambda frame: composite(prepare(analyse(track(frame, ahead=True)))))
            ]
        return [
            ("track", track),
            ("analyse", analyse),
            ("prepare", prepare),
            ("composite", composite),
        ]

    def _frame_failed(self, stage: str, index: int, exc: Exception) -> None:
        """Count a live frame passed through unprocessed; warn on the first of each kind."""
        key = f"{stage}: {type(exc).__name__}"
        count = self.failed_frames.get(key, 0) + 1
        self.failed_frames[key] = count
        if count == 1:
            log.warning(
                "frame %d: %s failed (%s: %s); passing such frames through unprocessed",
                index,
                stage,
                type(exc).__name__,
                exc,
            )

    def _apply(
        self, rgb: np.ndarray, index: int | None = None, time: float | None = None
    ) -> tuple[np.ndarray, list[Face]]:
        """Track and composite one RGB frame; returns ``rgb`` itself when nothing is drawn."""
        prepared = self._prepare_frame(rgb, index, time)
        return self._composite_frame(prepared), prepared.faces

    def _prepare_frame(
        self, rgb: np.ndarray, index: int | None = None, time: float | None = None
    ) -> _Prepared:
        """Everything before the GPU: track, stabilise, analyse, masks, effect hooks."""
        return self._prepare_effects(self._analyse_frame(self._follow_frame(rgb, index, time)))

    def _follow_frame(
        self, rgb: np.ndarray, index: int | None = None, time: float | None = None
    ) -> _Prepared:
        """A frame's first step: track and stabilise its faces; note which masks the
        effects want."""
        self._trim.tick()
        if index is None:
            index = self._index
        self._index = index + 1
        needed = sorted({m for effect in self.effects for m in effect.spec.masks})
        optional = {m for effect in self.effects for m in effect.spec.optional_masks}
        needed = sorted({*needed, *(optional & set(self._available_masks))})
        faces, cut = self._follow(rgb, time)
        face_masks = [name for name in needed if name not in HAND_MASKS]
        return _Prepared(rgb, faces, index, hands="hands" in needed, masks=face_masks, cut=cut)

    def _analyse_frame(self, prepared: _Prepared) -> _Prepared:
        """A frame's second step: the face model (the slowest step, so it does nothing else)."""
        self._analyse(prepared.rgb, prepared.faces, bool(prepared.masks), prepared.cut)
        return prepared

    def _prepare_effects(self, prepared: _Prepared) -> _Prepared:
        """A frame's last step before the GPU: the face masks and the hands mask (in
        buffers reused by the next frame; the hand tracker runs here, beside the next
        frame's face analysis in a pipeline) and the effects' hooks, which may read every
        mask."""
        ahead = prepared.hands_ahead
        if ahead is not None and (prepared.cut or not prepared.hands or not prepared.faces):
            _settle(ahead)  # a new scene, or no hands wanted or no face to mask them for
            prepared.hands_ahead = ahead = None
            if not prepared.hands:
                self._forget_hands()  # no effect wants them now: stop following
        if prepared.cut:
            self._forget_hands()
        rgb, faces = prepared.rgb, prepared.faces
        if not faces or not self.effects:
            return prepared
        with self._timed("masks"):
            if isinstance(self._masks, ModelMasks):
                analyses = [face.analysis for face in faces]
                masks = self._masks.build(analyses, rgb.shape[:2], prepared.masks)
            else:
                masks = self._masks.build(faces, rgb.shape[:2], prepared.masks)
        if prepared.hands:
            with self._timed("hands"):
                masks["hands"] = self._hands_mask(rgb, faces, ahead)
                prepared.hands_ahead = None
        height, width = rgb.shape[:2]
        camera = camera_matrix((width, height), self.options.focal_length)
        context = FrameContext(
            image=rgb, faces=faces, masks=masks, index=prepared.index, camera=camera
        )
        prepared.context = context
        passes = []
        with self._timed("hooks"):
            for effect in self.effects:
                try:
                    passes.append((effect, effect.uniforms(context, effect.params)))
                except EffectError as exc:
                    self._report_failure(effect, prepared.index, exc)
        prepared.passes = passes
        return prepared

    def _hands_ahead(self, rgb: np.ndarray) -> Future | None:
        """The hand tracker started on ``rgb`` in a worker thread, beside the frame's face
        tracking and model, when a hand is followed (the tracker runs on this frame whatever
        the model sees; ``HandSearch.following``); None otherwise. ``_prepare_effects``
        takes its result or, when the frame does not use it, waits for it to finish."""
        if self._hand_tracker is None or not self._hand_search.following:
            return None
        if self._hands_pool is None:
            self._hands_pool = ThreadPoolExecutor(1, thread_name_prefix="arfx-hands")
        return self._hands_pool.submit(self._hand_tracker.track, rgb)

    def _hands_mask(
        self, rgb: np.ndarray, faces: Sequence[Face], ahead: Future | None = None
    ) -> np.ndarray:
        """The frame's hands as a mask; the tracker starts with the first frame that asks,
        and runs when ``HandSearch`` says so (an empty mask otherwise), or ran already
        (``ahead``, started while a hand was followed, when the search always runs it)."""
        if self._hand_buffer is None or self._hand_buffer.shape != rgb.shape[:2]:
            self._hand_buffer = np.zeros(rgb.shape[:2], np.uint8)
        occluded = any(
            face.analysis is not None and model_sees_occluder(face.analysis.occlusion)
            for face in faces
        )
        if not self._hand_search.due(occluded):  # never with ``ahead``: a hand was followed
            _settle(ahead)
            self._hand_buffer.fill(0)
            return self._hand_buffer
        if ahead is not None:
            hands = ahead.result()
        else:
            if self._hand_tracker is None:
                self._hand_tracker = HandTracker(
                    max_hands=self.options.max_hands,
                    static_images=self.options.static_images,
                    search_every=self.options.hand_search_interval,
                )
            hands = self._hand_tracker.track(rgb)
        self._hand_search.found(len(hands))
        return hand_mask(hands, rgb.shape[:2], out=self._hand_buffer)

    def _composite_frame(self, prepared: _Prepared) -> np.ndarray:
        """The GPU half of a frame: the effect passes over the prepared frame."""
        if prepared.context is None or not prepared.passes:
            return prepared.rgb

        def failed(effect: Effect, exc: EffectError) -> None:
            self._report_failure(effect, prepared.index, exc)

        self._compositor.pass_times = self.stage_times  # each pass's time too, where cheap
        with self._timed("composite"):
            return self._compositor.render(prepared.context, prepared.passes, on_failure=failed)

    @contextlib.contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        times = self.stage_times
        if times is None:
            yield
            return
        start = perf_counter()
        yield
        self._record(stage, perf_counter() - start)

    def _record(self, stage: str, seconds: float) -> None:
        if self.stage_times is not None:
            self.stage_times.setdefault(stage, []).append(seconds)

    def _report_failure(self, effect: Effect, index: int, exc: Exception) -> None:
        count = self.effect_failures.get(effect.name, 0) + 1
        self.effect_failures[effect.name] = count
        if count == 1:
            log.warning("frame %d: %s (skipping this effect where it fails)", index, exc)

    def reset(self) -> None:
        """Forget tracks and per-face history (a scene cut, or a new, unrelated input)."""
        with self._lock:
            self._forget_history()
            self._cuts.reset()
            self._last_time = None

    def _forget_history(self) -> None:
        self._forget_tracks()
        self._forget_analysis()
        self._forget_hands()

    # Each pipeline stage forgets only what it owns (see _frame_stages).
    def _forget_tracks(self) -> None:
        self._tracker.reset()
        self._stabilizer.reset()

    def _forget_analysis(self) -> None:
        if self._behind is not None:
            self._behind.reset()  # lets its run finish first: the analyzer is in use
        elif self._analyzer is not None:
            self._analyzer.reset()
        self._mask_stabilizer.reset()

    def _forget_hands(self) -> None:
        if self._hand_tracker is not None:
            self._hand_tracker.reset()
        self._hand_search.reset()

    # -- lifetime ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ArfxError("this Session is closed")
        if self._busy:
            raise ArfxError(
                "this Session is running a pipelined stream or render; process its frames "
                "from that loop instead of calling it again"
            )

    def close(self) -> None:
        """Release the tracker, the GL context and every GPU object. Idempotent."""
        with self._lock:
            if self._closed:
                return
            for frames in list(self._streams):
                # A stream left open: its threads stop and are joined. One running on
                # another thread (decoding its next frame) raises instead: it then stops at
                # that frame, on the closed session.
                with contextlib.suppress(ValueError):
                    frames.close()
            self._closed = True
            self._tracker.close()
            if self._hands_pool is not None:
                self._hands_pool.shutdown(wait=True)
            if self._hand_tracker is not None:
                self._hand_tracker.close()
            self._compositor.close()
            self._analyzer = None  # the ONNX Runtime session and its buffers, now
            return_free_memory()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Prepared:
    """One frame between its analysis and its compositing."""

    rgb: np.ndarray
    faces: list[Face]
    index: int
    context: FrameContext | None = None
    passes: list[tuple[Effect, Any]] = field(default_factory=list)
    hands: bool = False
    """Whether an effect reads the ``hands`` mask (``_prepare_effects`` adds it)."""
    masks: list[str] = field(default_factory=list)
    """The face masks the effects read (``_prepare_effects`` builds them)."""
    cut: bool = False
    """This frame starts a new scene: each step forgets its history first."""
    hands_ahead: Future | None = None
    """The hand tracker running on this frame since its first step (``_hands_ahead``)."""


def _effect_name(item: EffectLike) -> str:
    """The effect name an entry of ``Session(effects=...)`` asks for."""
    if isinstance(item, Effect):
        return item.name
    if isinstance(item, str):
        return parse_effect_spec(item)[0]
    return str(item[0])


def open_source(path: str | Path, decoder: str = "auto") -> Source:
    """An ImageSource for image files, a VideoFileSource (with ``decoder``) for the rest."""
    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoFileSource(path, decoder=decoder)


def open_sink(
    path: str | Path, source: Source, keep_partial: bool = True, *, encoder: str = "auto"
) -> Sink:
    """A sink for ``path`` matching ``source``: its size, frame rate, timestamps and audio;
    videos are encoded with ``encoder`` (``arfx.codecs.ENCODERS``)."""
    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFileSink(path)
    if source.width is None or source.height is None:
        raise SinkError(f"{path}: the source {source.name} does not say its frame size")
    return VideoFileSink(
        path,
        width=source.width,
        height=source.height,
        fps=source.fps or Fraction(30),
        time_base=source.time_base,
        audio_from=source.path if isinstance(source, VideoFileSource) else None,
        keep_partial=keep_partial,
        encoder=encoder,
    )


def _restore_layout(rgb: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Give the processed RGB uint8 frame the channel layout and dtype of the input."""
    if like.ndim == 2 or like.shape[2] == 1:
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).reshape(like.shape)
    elif like.shape[2] == 4:
        out = np.concatenate([rgb, _to_uint8(like[:, :, 3:])], axis=2)
    else:
        out = rgb
    if like.dtype == np.uint16:
        out = out.astype(np.uint16) * 257
        if like.ndim == 3 and like.shape[2] == 4:
            out[:, :, 3] = like[:, :, 3]
    elif np.issubdtype(like.dtype, np.floating):
        out = out.astype(like.dtype) / 255
        if like.ndim == 3 and like.shape[2] == 4:
            out[:, :, 3] = like[:, :, 3]
    return out


def _to_uint8(alpha: np.ndarray) -> np.ndarray:
    if alpha.dtype == np.uint8:
        return alpha
    if alpha.dtype == np.uint16:
        return (alpha // 257).astype(np.uint8)
    return (np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)


def _settle(future: Future | None) -> None:
    """Wait for ``future`` and drop its result or error: its frame does not use it, but the
    hand tracker it runs must be idle before anything else touches it."""
    if future is not None:
        with contextlib.suppress(Exception):
            future.result()
