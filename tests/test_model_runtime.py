"""The face model at run time, on real faces: load errors, provider fallback, the analyzer's
outputs, its previous-frame context, and the frame-space masks.

Which model the tests run (``model_file``): ``$ARFX_TEST_MODEL`` when set (an ``.onnx`` file,
or a folder whose newest ``*.onnx`` is used, e.g. a training run's smoke export), else the
shipped ``arfx/models/face_multitask.onnx``, which is required like the shared data: missing,
it fails the test under CI and skips it elsewhere. Quality thresholds apply only to the
shipped model (``model_is_shipped``); a smoke export is only checked for shapes and plumbing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from arfx.alignment import CROP_BORDERS, align_mesh
from arfx.errors import ArfxError
from arfx.faceparts import MESH_EYE_RINGS
from arfx.model import (
    DEFAULT_MODEL,
    MASK_NAMES,
    FaceAnalysis,
    FaceAnalyzer,
    FaceModel,
    ModelError,
    ModelMasks,
    ModelSchedule,
)
from tests.conftest import data_root, require

MODEL_ENV = "ARFX_TEST_MODEL"
CPU = "CPUExecutionProvider"


def find_test_model() -> Path:
    """The model file the tests run (see the module docstring)."""
    env = os.environ.get(MODEL_ENV)
    if not env:
        if DEFAULT_MODEL.is_file():
            return DEFAULT_MODEL
        message = (
            f"face model missing: {DEFAULT_MODEL} (not shipped yet? set {MODEL_ENV} to an "
            ".onnx file or a folder of exports)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    path = Path(env)
    if path.is_dir():
        exports = sorted(path.rglob("*.onnx"), key=lambda p: p.stat().st_mtime)
        if not exports:
            pytest.fail(f"{MODEL_ENV}={env}: no *.onnx under that folder")
        return exports[-1]
    if not path.is_file():
        pytest.fail(f"{MODEL_ENV}={env}: no such model file")
    return path


def model_is_shipped() -> bool:
    """Whether the tests run the shipped model (then quality thresholds apply)."""
    return not os.environ.get(MODEL_ENV)


@pytest.fixture(scope="session")
def model_file() -> Path:
    return find_test_model()


# ------------------------------------------------------------ a tiny ONNX file, no onnx package
# The runtime environment must not get the ``onnx`` package (its protobuf pin conflicts with
# MediaPipe's), so the few models these tests need are written as protobuf bytes by hand.


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def _field(number: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, shape: list[int | str]) -> bytes:
    dims = b"".join(_field(1, _field(2 if isinstance(d, str) else 1, d)) for d in shape)
    tensor = _field(1, 1) + _field(2, dims)  # elem_type FLOAT, shape
    return _field(1, name) + _field(2, _field(1, tensor))


def identity_model(pairs: list[tuple[str, str, list[int | str]]]) -> bytes:
    """An ONNX ModelProto (IR 8, opset 17) of Identity nodes: (input, output, shape) each."""
    nodes = b"".join(
        _field(1, _field(1, src) + _field(2, dst) + _field(4, "Identity")) for src, dst, _ in pairs
    )
    inputs = b"".join(_field(11, _value_info(src, shape)) for src, _, shape in pairs)
    outputs = b"".join(_field(12, _value_info(dst, shape)) for _, dst, shape in pairs)
    graph = nodes + _field(2, "tiny") + inputs + outputs
    return _field(1, 8) + _field(8, _field(2, 17)) + _field(7, graph)


CONTRACT_LIKE = [
    ("image", "parsing", ["N", 3, 256, 256]),
    ("context", "occlusion", ["N", 4, 256, 256]),
    ("l_in", "landmarks", ["N", 68, 2]),
    ("r_in", "rotation", ["N", 3, 3]),
]
"""Right input and output names and channels (outputs are not the contract's shapes): enough
for FaceModel to load it, so provider handling is testable without the real model."""


# ------------------------------------------------------------ loading


def test_missing_model_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "face.onnx"
    with pytest.raises(ModelError, match=str(path)):
        FaceModel(path)


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_corrupt_model_file(tmp_path, device):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"\x08\x07this is not a protobuf model\xff\xfe" * 20)
    with pytest.raises(ModelError, match=str(path)):
        FaceModel(path, device=device)


def test_wrong_inputs_and_missing_outputs(tmp_path):
    no_context = tmp_path / "no_context.onnx"
    no_context.write_bytes(identity_model([("image", "parsing", ["N", 3, 256, 256])]))
    with pytest.raises(ModelError, match=r"input 'context' must be \[N, 4, 256, 256\]"):
        FaceModel(no_context, device="cpu")
    wrong_channels = tmp_path / "wrong_channels.onnx"
    wrong_channels.write_bytes(
        identity_model([("image", "parsing", ["N", 3, 256, 256]), ("context", "x", ["N", 3, 8])])
    )
    with pytest.raises(ModelError, match="input 'context'"):
        FaceModel(wrong_channels, device="cpu")
    no_outputs = tmp_path / "no_outputs.onnx"
    no_outputs.write_bytes(identity_model(CONTRACT_LIKE[:2]))
    with pytest.raises(ModelError, match=r"outputs \['landmarks', 'rotation'\] missing"):
        FaceModel(no_outputs, device="cpu")
    good = tmp_path / "good.onnx"
    good.write_bytes(identity_model(CONTRACT_LIKE))
    assert FaceModel(good, device="cpu").providers == [CPU]


def test_cuda_falls_back_to_cpu_with_one_warning(tmp_path, caplog):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ArfxError, match="cuda"):
            FaceModel(tmp_path / "any.onnx", device="cuda")
        pytest.skip("this onnxruntime has no CUDA provider: device='cuda' is refused, not tried")
    path = tmp_path / "tiny.onnx"
    path.write_bytes(identity_model(CONTRACT_LIKE))
    with caplog.at_level(logging.WARNING, logger="arfx"):
        model = FaceModel(path, device="cuda")
    warnings = [r for r in caplog.records if r.name == "arfx" and r.levelno >= logging.WARNING]
    if model.providers[0] == CPU:  # no usable GPU here: CUDA failed to load
        assert model.providers == [CPU]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "CUDAExecutionProvider" in warnings[0].getMessage()
        assert "tiny.onnx" in warnings[0].getMessage()
    else:  # a GPU machine
        assert model.providers[0] in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
        assert not warnings


def test_auto_tries_each_gpu_provider_before_the_cpu(tmp_path, monkeypatch, caplog):
    """onnxruntime, when one listed provider fails, retries on the CPU alone: TensorRT
    missing must not cost CUDA. The real session is created each time; the spy only
    records which providers each attempt asked for."""
    import onnxruntime as ort

    from arfx import model as model_module

    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    monkeypatch.setattr(model_module, "select_providers", lambda device: [*gpu, CPU])
    real = ort.InferenceSession
    asked: list[list[str]] = []

    def spy(path, sess_options=None, providers=None, **kwargs):
        asked.append([p if isinstance(p, str) else p[0] for p in providers])
        return real(path, sess_options=sess_options, providers=providers, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    path = tmp_path / "tiny.onnx"
    path.write_bytes(identity_model(CONTRACT_LIKE))
    with caplog.at_level(logging.WARNING, logger="arfx"):
        model = FaceModel(path)
    loaded = model.providers[0]
    # Every provider before the one that loaded was tried, each with those after it.
    expected = [[*gpu, CPU][i:] for i in range([*gpu, CPU].index(loaded) + 1)]
    if loaded == CPU:  # no GPU here: the last attempt (CUDA then CPU) fell back inside ORT
        expected = expected[:-1]
    assert asked == expected
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    failed = [p for p in gpu if p in {a[0] for a in asked} and p != loaded]
    if failed:
        assert len(warnings) == 1 and all(p in warnings[0] for p in failed), warnings
        assert f"using {loaded}" in warnings[0]
    else:
        assert not warnings


def test_auto_asks_for_the_gpu_only_where_an_nvidia_driver_loads(tmp_path, monkeypatch, caplog):
    """arfx's Linux wheel installs onnxruntime-gpu on every machine: without a driver the
    GPU providers can only fail, so "auto" does not ask for them and says nothing."""
    import onnxruntime

    from arfx import gpu
    from arfx.inference import select_providers

    built = onnxruntime.get_available_providers()
    gpu_built = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in built]
    monkeypatch.setattr(gpu, "nvidia_driver_problem", lambda: None)
    assert select_providers("auto") == [*gpu_built, CPU]
    monkeypatch.setattr(gpu, "nvidia_driver_problem", lambda: "no NVIDIA driver (pretend)")
    assert select_providers("auto") == [CPU]
    assert select_providers("cpu") == [CPU]
    path = tmp_path / "tiny.onnx"
    path.write_bytes(identity_model(CONTRACT_LIKE))
    with caplog.at_level(logging.INFO, logger="arfx"):
        assert FaceModel(path).providers == [CPU]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_driver_check_says_why(monkeypatch):
    from arfx import gpu

    problem = gpu.nvidia_driver_problem()
    assert problem is None or problem.startswith("no NVIDIA driver")
    monkeypatch.setattr(gpu, "DRIVER_LIBRARY", "libarfx-no-such-driver.so.1")
    problem = gpu.nvidia_driver_problem()
    assert problem is not None and "libarfx-no-such-driver.so.1" in problem


def test_tensorrt_gets_an_engine_cache_and_one_profile_for_every_batch(tmp_path, monkeypatch):
    from arfx.inference import TENSORRT_MAX_BATCH, provider_entries, tensorrt_cache_dir

    monkeypatch.setenv("ARFX_CACHE", str(tmp_path / "cache"))
    inputs = {"image": (3, 256, 256), "context": (4, 256, 256)}
    entries = provider_entries(["TensorrtExecutionProvider", "CUDAExecutionProvider", CPU], inputs)
    assert entries[1:] == ["CUDAExecutionProvider", CPU]
    name, options = entries[0]
    assert name == "TensorrtExecutionProvider"
    assert options["trt_engine_cache_enable"] and options["trt_timing_cache_enable"]
    assert options["trt_engine_cache_path"] == str(tmp_path / "cache" / "tensorrt")
    assert tensorrt_cache_dir() == tmp_path / "cache" / "tensorrt"
    assert options["trt_profile_min_shapes"] == "image:1x3x256x256,context:1x4x256x256"
    assert options["trt_profile_max_shapes"] == (
        f"image:{TENSORRT_MAX_BATCH}x3x256x256,context:{TENSORRT_MAX_BATCH}x4x256x256"
    )
    assert provider_entries(["CUDAExecutionProvider", CPU], inputs) == [
        "CUDAExecutionProvider",
        CPU,
    ]


def test_no_tensorrt_cache_folder_where_tensorrt_cannot_load(tmp_path, monkeypatch):
    """The cache folder is made only where TensorRT's provider library loads."""
    from arfx import model as model_module
    from arfx.inference import provider_library_problem

    monkeypatch.setenv("ARFX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(
        model_module,
        "select_providers",
        lambda device: ["TensorrtExecutionProvider", "CUDAExecutionProvider", CPU],
    )
    path = tmp_path / "tiny.onnx"
    path.write_bytes(identity_model(CONTRACT_LIKE))
    FaceModel(path)
    loads = provider_library_problem("TensorrtExecutionProvider") is None
    assert (tmp_path / "cache" / "tensorrt").is_dir() == loads


# ------------------------------------------------------------ analysis on a real face


def _image(name: str) -> np.ndarray:
    bgr = cv2.imread(str(require(data_root() / "images" / name)))
    return np.ascontiguousarray(bgr[:, :, ::-1])


@pytest.fixture(scope="module")
def obama():
    from arfx.tracking import FaceTracker, TrackerOptions

    rgb = _image("obama.jpg")
    with FaceTracker(TrackerOptions(static_images=True, max_faces=1)) as tracker:
        faces = tracker.track(rgb)
    assert len(faces) == 1
    return rgb, faces


@pytest.fixture(scope="module")
def face_model(model_file) -> FaceModel:
    return FaceModel(model_file, device="cpu")


class _Spy:
    """Stands in for FaceModel, recording each crop and context the analyzer feeds it."""

    def __init__(self, model: FaceModel) -> None:
        self.model = model
        self.points_fit = model.points_fit  # the model file's 68-point refinement
        self.crop_border = model.crop_border
        self.images: list[np.ndarray] = []
        self.contexts: list[np.ndarray] = []

    def infer(self, image: np.ndarray, context: np.ndarray) -> dict[str, np.ndarray]:
        self.images.append(image.copy())
        self.contexts.append(context.copy())
        return self.model.infer(image, context)


def test_analyzer_outputs_map_back_to_the_face(face_model, obama):
    rgb, faces = obama
    (analysis,) = FaceAnalyzer(face_model).analyze(rgb, faces)
    assert analysis.face_id == faces[0].id
    assert analysis.parsing.shape == (10, 256, 256) and analysis.parsing.dtype == np.float32
    np.testing.assert_allclose(analysis.parsing.sum(axis=0), 1.0, atol=1e-3)  # softmax
    assert analysis.occlusion.shape == (256, 256)
    assert 0.0 <= analysis.occlusion.min() and analysis.occlusion.max() <= 1.0
    assert analysis.landmarks68.shape == (68, 2)
    rotation = analysis.rotation
    assert rotation.shape == (3, 3)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-4)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-4)
    for name in MASK_NAMES:
        assert analysis.probability(name).shape == (256, 256)
    # Alignment round trip: the frame-space points lie in the crop and land on the face,
    # the eye points near the mesh's eye rings.
    crop_points = analysis.alignment.to_crop(analysis.landmarks68)
    assert crop_points.min() >= 0 and crop_points.max() <= 256
    mesh = faces[0].landmarks[:, :2]
    ocular = faces[0].inter_ocular
    for ibug, ring in ((slice(36, 42), MESH_EYE_RINGS[0]), (slice(42, 48), MESH_EYE_RINGS[1])):
        distance = np.linalg.norm(analysis.landmarks68[ibug].mean(0) - mesh[list(ring)].mean(0))
        assert distance < 0.25 * ocular, (distance, ocular)


_COLD = ModelSchedule(warm_start=False)
"""One model run per frame, new faces too: tests of the context fed back count the runs."""


def test_context_is_fed_back_and_reset_clears_it(face_model, obama):
    rgb, faces = obama
    spy = _Spy(face_model)
    analyzer = FaceAnalyzer(spy, schedule=_COLD)  # type: ignore[arg-type]
    analyzer.analyze(rgb, faces)
    analyzer.analyze(rgb, faces)
    analyzer.reset()
    analyzer.analyze(rgb, faces)
    analyzer.analyze(rgb, [])  # a frame without faces ends the tracks
    analyzer.analyze(rgb, faces)
    first, second, after_reset, after_empty = spy.contexts
    assert first.shape == (1, 4, 256, 256)
    assert not first[:, :3].any()  # new track: no previous masks
    assert first[:, 3].max() > 0.5  # the mesh lip prior is always there
    assert second[:, :3].any()  # the previous frame's masks come back as context
    assert second[:, :3].max() <= 1.0 + 1e-5 and second.min() >= 0.0
    np.testing.assert_array_equal(second[:, 3], first[:, 3])
    assert not after_reset[:, :3].any()
    assert not after_empty[:, :3].any()


def test_a_new_face_is_warm_started(face_model, obama):
    """A new face runs twice, the second run fed the first's face and hair maps (not its
    lips) and giving the maps; a face seen before runs once; a second new face beside a
    known one runs again alone."""
    rgb, faces = obama
    spy = _Spy(face_model)
    analyzer = FaceAnalyzer(spy)  # type: ignore[arg-type]
    (warm,) = analyzer.analyze(rgb, faces)
    assert len(spy.contexts) == 2
    first, second = spy.contexts
    assert not first[:, :3].any()
    (cold,) = FaceAnalyzer(face_model, schedule=_COLD).analyze(rgb, faces)
    guess = FaceAnalysis(
        faces[0].id, cold.alignment, cold.parsing, cold.occlusion, cold.landmarks68, cold.rotation
    ).context()
    np.testing.assert_allclose(second[0, :2], guess[:2], atol=1e-4)  # same crop: no warp
    assert not second[:, 2].any()  # the lips channel stays empty
    np.testing.assert_array_equal(second[:, 3], first[:, 3])  # the mesh lip prior as ever
    assert not np.allclose(warm.parsing, cold.parsing, atol=1e-3)  # the maps: second run
    np.testing.assert_allclose(warm.landmarks68, cold.landmarks68, atol=1e-3)  # points: first
    np.testing.assert_allclose(warm.rotation, cold.rotation, atol=1e-5)
    analyzer.analyze(rgb, faces)
    assert len(spy.contexts) == 3  # a known face: one run
    newcomer = replace(faces[0], id=faces[0].id + 1)
    analyzer.analyze(rgb, [faces[0], newcomer])
    assert [c.shape[0] for c in spy.contexts[3:]] == [2, 1]  # both, then the newcomer again
    with pytest.raises(ArfxError, match="warm_start"):
        ModelSchedule(warm_start=1).validate()  # type: ignore[arg-type]


def _moved(rgb: np.ndarray, faces, shift: tuple[float, float]):
    """The frame and its faces translated by ``shift`` pixels: rigid motion the crop follows."""
    matrix = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    height, width = rgb.shape[:2]
    image = cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
    offset = np.array([shift[0], shift[1], 0.0], np.float32)
    return image, [replace(face, landmarks=face.landmarks + offset) for face in faces]


# MediaPipe's mesh vertices along both eyebrows
MESH_BROWS = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282]


def test_schedule_carries_the_maps_with_the_face_between_runs(face_model, obama):
    rgb, faces = obama
    spy = _Spy(face_model)
    schedule = ModelSchedule(interval=4, warm_start=False)
    analyzer = FaceAnalyzer(spy, schedule=schedule)  # type: ignore[arg-type]
    (first,) = analyzer.analyze(rgb, faces)
    moved_rgb, moved_faces = _moved(rgb, faces, (6.0, -4.0))
    (second,) = analyzer.analyze(moved_rgb, moved_faces)
    assert len(spy.images) == 1 and not first.carried and second.carried
    # the same crop-space maps, placed with this frame's alignment: they moved with the face
    assert second.parsing is first.parsing and second.occlusion is first.occlusion
    np.testing.assert_allclose(second.alignment.matrix, align_mesh(moved_faces[0].landmarks).matrix)
    np.testing.assert_allclose(second.landmarks68, first.landmarks68 + (6.0, -4.0), atol=1e-3)
    np.testing.assert_allclose(second.rotation, first.rotation, atol=1e-6)
    # the brows rise 2 pixels (the mouth stays, so the maps are carried, warped there)...
    raised = moved_faces[0].landmarks.copy()
    raised[MESH_BROWS, 1] -= 2.0
    (warped,) = analyzer.analyze(moved_rgb, [replace(moved_faces[0], landmarks=raised)])
    assert warped.carried and not np.array_equal(warped.parsing, first.parsing)
    # ... and fall back: carried from the run itself, not from the warped frame before
    (third,) = analyzer.analyze(moved_rgb, moved_faces)
    assert third.carried and third.parsing is first.parsing
    (fourth,) = analyzer.analyze(moved_rgb, moved_faces)
    assert not fourth.carried and len(spy.images) == 2  # the interval is over
    # a face the model has not seen yet is analysed at once
    newcomer = [replace(moved_faces[0], id=moved_faces[0].id + 1)]
    (fifth,) = analyzer.analyze(moved_rgb, newcomer)
    assert not fifth.carried and len(spy.images) == 3
    # the context of a run after carried frames is the carried maps, warped into its crop
    assert spy.contexts[1][:, :3].any()


def test_schedule_runs_the_model_when_the_mouth_changes(face_model, obama):
    rgb, faces = obama
    spy = _Spy(face_model)
    schedule = ModelSchedule(interval=8, warm_start=False)
    analyzer = FaceAnalyzer(spy, schedule=schedule)  # type: ignore[arg-type]
    analyzer.analyze(rgb, faces)
    (still,) = analyzer.analyze(rgb, faces)
    assert still.carried and len(spy.images) == 1
    # a hand-sized patch over the mouth: the image changed where the lipstick goes
    lips = faces[0].landmarks[[61, 291, 0, 17], :2]
    (x0, y0), (x1, y1) = lips.min(axis=0).astype(int), lips.max(axis=0).astype(int)
    covered = rgb.copy()
    covered[y0 - 10 : y1 + 10, x0 - 10 : x1 + 10] = (205, 170, 150)
    (hand,) = analyzer.analyze(covered, faces)
    assert not hand.carried and len(spy.images) == 2
    (still,) = analyzer.analyze(covered, faces)
    assert still.carried and len(spy.images) == 2
    # the mouth opens: the mesh's lower lip moves down in the crop, the rest stays
    opened = faces[0].landmarks.copy()
    scale = align_mesh(opened).scale
    opened[[17, 84, 314, 181, 405, 91, 321, 146, 375], 1] += 2.0 / scale  # 2 crop pixels
    (talking,) = analyzer.analyze(covered, [replace(faces[0], landmarks=opened)])
    assert not talking.carried and len(spy.images) == 3


def test_schedule_options_are_checked():
    from arfx.session import SessionOptions

    for bad, word in (
        (ModelSchedule(interval=0), "interval"),
        (ModelSchedule(interval=True), "interval"),
        (ModelSchedule(lip_motion=-1.0), "lip_motion"),
        (ModelSchedule(mouth_change=float("nan")), "mouth_change"),
    ):
        with pytest.raises(ArfxError, match=word):
            SessionOptions(model_schedule=bad)
    with pytest.raises(ArfxError, match="model_schedule"):
        SessionOptions(model_schedule=2)  # type: ignore[arg-type]


def with_metadata(model: Path, key: str, value: str) -> bytes:
    """``model``'s bytes with one more metadata entry: a repeated protobuf field (ModelProto
    field 14, metadata_props) may simply be appended to the message."""
    return model.read_bytes() + _field(14, _field(1, key) + _field(2, value))


def test_crop_border_comes_from_the_model(model_file, obama, tmp_path):
    """A model trained on mirrored crop borders says so in its metadata and the analyzer
    crops that way; models without the entry (v1) replicate the edge; an unknown border is
    named."""
    assert FaceModel(model_file, device="cpu").crop_border in CROP_BORDERS
    rgb, faces = obama
    # Cut the frame through the forehead, so the crop reaches past its top edge.
    top = int(faces[0].landmarks[:, 1].min()) + 10
    cut = np.ascontiguousarray(rgb[top:])
    moved = [replace(faces[0], landmarks=faces[0].landmarks - np.array([0, top, 0]))]
    crops = {}
    for border in CROP_BORDERS:
        path = tmp_path / f"{border}.onnx"
        path.write_bytes(with_metadata(model_file, "crop_border", border))
        model = FaceModel(path, device="cpu")
        assert model.crop_border == border
        spy = _Spy(model)
        FaceAnalyzer(spy).analyze(cut, moved)  # type: ignore[arg-type]
        crops[border] = spy.images[0][0]
    alignment = align_mesh(moved[0].landmarks)
    for border, crop in crops.items():
        expected = alignment.crop(cut, border=border).transpose(2, 0, 1) / 255.0
        np.testing.assert_allclose(crop, expected, atol=1e-6)
    assert not np.array_equal(crops["replicate"], crops["reflect"])
    path = tmp_path / "sideways.onnx"
    path.write_bytes(with_metadata(model_file, "crop_border", "sideways"))
    with pytest.raises(ModelError, match="crop_border 'sideways'"):
        FaceModel(path, device="cpu")


def test_model_masks_sizes_and_reused_buffers(face_model, obama):
    rgb, faces = obama
    analyses = FaceAnalyzer(face_model).analyze(rgb, faces)
    masks = ModelMasks()
    size = rgb.shape[:2]
    first = masks.build(analyses, size, ["lips", "hair", "occlusion"])
    assert set(first) == {"lips", "hair", "occlusion"}
    for mask in first.values():
        assert mask.shape == size and mask.dtype == np.uint8
    kept = {name: mask.copy() for name, mask in first.items()}
    again = masks.build(analyses, size, ["lips", "hair", "occlusion"])
    for name in again:
        assert again[name] is first[name]  # same buffer, redrawn
        np.testing.assert_array_equal(again[name], kept[name])
    # Nothing outside the crop's footprint in the frame (grown by 2 px for interpolation).
    footprint = analyses[0].alignment.paste(np.ones((256, 256), np.uint8), size)
    footprint = cv2.dilate(footprint, np.ones((5, 5), np.uint8))
    for mask in again.values():
        assert not mask[footprint == 0].any()
    # Each map is warped only over the frame box of its non-zero crop pixels: the same as
    # warping the whole crop, up to OpenCV's 1/32-pixel sampling grid moving with the box.
    for name, mask in again.items():
        crop = np.clip(analyses[0].probability(name) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        whole = analyses[0].alignment.paste(crop, size).astype(int)
        assert np.abs(mask.astype(int) - whole).max() <= 8, name
        assert (mask > 0).sum() >= 0.999 * (whole > 0).sum(), name
    bigger = masks.build(analyses, (size[0] + 10, size[1] + 20), ["lips"])
    assert bigger["lips"].shape == (size[0] + 10, size[1] + 20)
    assert not masks.build([], size, ["skin"])["skin"].any()
    with pytest.raises(ArfxError, match="unknown mask"):
        masks.build(analyses, size, ["freckles"])


def test_batch_of_two_faces_matches_one_at_a_time(face_model):
    from arfx.tracking import FaceTracker, TrackerOptions

    rgb = _image("two_people.jpg")
    with FaceTracker(TrackerOptions(static_images=True, max_faces=2)) as tracker:
        faces = tracker.track(rgb)
    if len(faces) < 2:
        pytest.skip("the tracker found fewer than two faces")
    both = FaceAnalyzer(face_model).analyze(rgb, faces)
    for face, batched in zip(faces, both, strict=True):
        (alone,) = FaceAnalyzer(face_model).analyze(rgb, [face])
        np.testing.assert_allclose(batched.landmarks68, alone.landmarks68, atol=0.05)
        np.testing.assert_allclose(batched.parsing, alone.parsing, atol=1e-3)


def test_painted_masks_hold_only_what_the_occlusion_head_leaves_visible():
    """Lips and skin are multiplied by (1 - occlusion): a hand stops lipstick even where the
    parsing head still says "lips"; hair and the occlusion map itself are left as they are."""
    from arfx.alignment import Alignment
    from arfx.faceparts import CLASS_INDEX

    parsing = np.zeros((10, 256, 256), np.float32)
    parsing[CLASS_INDEX["upper_lip"], 100:140] = 0.5
    parsing[CLASS_INDEX["lower_lip"], 100:140] = 0.5
    parsing[CLASS_INDEX["hair"], 100:140] = 1.0
    occlusion = np.zeros((256, 256), np.float32)
    occlusion[:, :128] = 1.0
    occlusion[:, 128:192] = 0.25
    analysis = FaceAnalysis(
        face_id=0,
        alignment=Alignment(np.eye(2, 3)),
        parsing=parsing,
        occlusion=occlusion,
        landmarks68=np.zeros((68, 2)),
        rotation=np.eye(3),
    )
    lips = analysis.probability("lips")
    assert lips[120, :128].max() == 0.0
    np.testing.assert_allclose(lips[120, 130], 0.75)
    np.testing.assert_allclose(lips[120, 200], 1.0)
    np.testing.assert_allclose(analysis.probability("hair")[120, :128], 1.0)
    assert analysis.probability("occlusion") is occlusion
