"""The face model beside a live stream (arfx.behind.ModelBehind), on a real face and the
real model: frames get the newest finished maps moved onto their own face at once, a new
face waits for its first, and a failed run is reported once."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from arfx.alignment import align_mesh
from arfx.behind import ModelBehind
from arfx.errors import ArfxError
from arfx.model import FaceAnalyzer, FaceModel

from .test_model_runtime import _image, find_test_model

SHIFT = 12  # pixels the face moves to the right between frames


@pytest.fixture(scope="module")
def obama():
    from arfx.tracking import FaceTracker, TrackerOptions

    rgb = _image("obama.jpg")
    with FaceTracker(TrackerOptions(static_images=True, max_faces=1)) as tracker:
        (face,) = tracker.track(rgb)
    return rgb, face


@pytest.fixture(scope="module")
def face_model() -> FaceModel:
    return FaceModel(find_test_model(), device="cpu")


class _Gated:
    """The real model, each inference held until ``gate`` opens (or failing, if told)."""

    def __init__(self, model: FaceModel) -> None:
        self.model = model
        self.points_fit = model.points_fit
        self.crop_border = model.crop_border
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False
        self.calls = 0

    def infer(self, image, context):
        assert self.gate.wait(30), "the test never opened the gate"
        self.calls += 1
        if self.fail:
            raise ArfxError("inference failed (injected)")
        return self.model.infer(image, context)


def _moved(rgb: np.ndarray, face, pixels: int):
    """The same picture and face ``pixels`` to the right."""
    shifted = np.roll(rgb, pixels, axis=1)
    landmarks = face.landmarks.copy()
    landmarks[:, 0] += pixels
    return shifted, replace(face, landmarks=landmarks)


def test_frames_take_the_newest_finished_maps_moved_onto_their_face(face_model, obama):
    rgb, face = obama
    gated = _Gated(face_model)
    with ModelBehind(FaceAnalyzer(gated)) as behind:  # type: ignore[arg-type]
        (first,), fresh = behind.analyze(rgb, [face])
        assert fresh and behind.waits == 1 and behind.runs == 1  # a new face waits
        assert not first.carried

        gated.gate.clear()  # the next run stays in flight
        image, moved = _moved(rgb, face, SHIFT)
        (carried,), fresh = behind.analyze(image, [moved])  # returns with the run held
        assert not fresh and carried.carried and behind.runs == 1
        np.testing.assert_allclose(carried.alignment.matrix, align_mesh(moved.landmarks).matrix)
        np.testing.assert_allclose(carried.landmarks68, first.landmarks68 + [SHIFT, 0], atol=1e-6)
        np.testing.assert_array_equal(carried.parsing, first.parsing)  # the same maps, moved

        gated.gate.set()
        behind._run.result(timeout=30)  # the run on the moved frame finishes
        later, moved_again = _moved(rgb, face, 2 * SHIFT)
        (newest,), fresh = behind.analyze(later, [moved_again])
        assert behind.runs == 2 and not fresh and newest.carried
        # its maps come from the run on the moved frame, not from the first
        assert not np.array_equal(newest.parsing, first.parsing)


def test_a_failed_run_is_raised_once_and_a_reset_starts_afresh(face_model, obama):
    rgb, face = obama
    gated = _Gated(face_model)
    with ModelBehind(FaceAnalyzer(gated)) as behind:  # type: ignore[arg-type]
        behind.analyze(rgb, [face])
        gated.fail = True
        behind.analyze(rgb, [face])  # starts a run that will fail
        behind._run.exception(timeout=30)
        with pytest.raises(ArfxError, match="injected"):
            behind.analyze(rgb, [face])
        gated.fail = False
        behind.reset()
        (again,), fresh = behind.analyze(rgb, [face])  # no maps kept: waits, as for a new face
        assert fresh and not again.carried and behind.waits == 2


def test_a_new_face_beside_a_known_one_waits_for_a_run_that_has_it(face_model, obama):
    rgb, face = obama
    gated = _Gated(face_model)
    with ModelBehind(FaceAnalyzer(gated)) as behind:  # type: ignore[arg-type]
        behind.analyze(rgb, [face])
        gated.gate.clear()
        behind.analyze(rgb, [face])  # a run in flight without the newcomer
        other = replace(face, id=face.id + 1)
        opener = threading.Timer(0.2, gated.gate.set)
        opener.start()
        analyses, fresh = behind.analyze(rgb, [face, other])
        opener.join()
        assert fresh and [a.face_id for a in analyses] == [face.id, other.id]
        assert behind.runs == 3  # the held run, then one with both faces
        assert not behind.analyze(rgb, [])[0]  # no faces: nothing kept
    with pytest.raises(RuntimeError, match="closed"):
        behind.analyze(rgb, [face])


def test_each_run_is_settled_in_the_worker_before_its_maps_are_used(face_model, obama):
    """``settle`` (the session's mask stabiliser) runs beside the stream, in the model's
    worker, not on the stream's thread: a live frame does not wait for it."""
    rgb, face = obama
    settled: list[str] = []

    def settle(analyses):
        settled.append(threading.current_thread().name)
        return [replace(a, occlusion=a.occlusion * 0.0) for a in analyses]

    with ModelBehind(FaceAnalyzer(face_model), settle) as behind:
        (first,), _ = behind.analyze(rgb, [face])
        behind.analyze(rgb, [face])  # starts a second run
        behind._collect(wait=True)
        (later,), _ = behind.analyze(rgb, [face])
    assert len(settled) >= 2
    assert all(name.startswith("arfx-model") for name in settled), settled
    assert not first.occlusion.any() and not later.occlusion.any()  # settled maps are used


def test_the_session_option_is_checked():
    from arfx.session import SessionOptions

    assert SessionOptions().live_model == "inline"
    with pytest.raises(ArfxError, match="live_model must be 'inline' or 'behind', got 'async'"):
        SessionOptions(live_model="async")


def _blob_analysis(mesh: np.ndarray):
    """Maps with a square of lower lip at crop (120-140, 150-170); identity alignment."""
    from arfx.alignment import Alignment
    from arfx.faceparts import CLASS_INDEX
    from arfx.model import FaceAnalysis

    parsing = np.zeros((10, 256, 256), np.float32)
    parsing[0] = 1.0
    parsing[:, 150:170, 120:140] = 0.0
    parsing[CLASS_INDEX["lower_lip"], 150:170, 120:140] = 1.0
    identity = Alignment(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    return FaceAnalysis(
        1, identity, parsing, np.zeros((256, 256), np.float32), np.zeros((68, 2)), np.eye(3),
        mesh=mesh,
    )  # fmt: skip


def test_carried_maps_follow_the_mesh_where_it_moves_and_stay_elsewhere():
    """The mouth opening: mesh points on the lower lip move 6 pixels down, the rest stay;
    the lip follows them, and maps far from the moving points do not move."""
    from arfx.model import carry_to

    rng = np.random.default_rng(0)
    mesh = rng.uniform(20, 236, (478, 2))
    far = np.abs(mesh - [130, 160]).max(axis=1) > 30
    mesh = mesh[far][:442]  # points away from the lip, which stay
    grid = np.stack(np.meshgrid(np.linspace(118, 142, 6), np.linspace(148, 172, 6)), -1)
    mesh = np.concatenate([grid.reshape(36, 2), mesh])  # the lip's own points, 5 px apart
    on_lip = np.arange(478) < 36
    analysis = _blob_analysis(mesh)
    opened = mesh.copy()
    opened[on_lip, 1] += 6.0
    moved = carry_to(analysis, analysis.alignment, opened)
    lip = moved.parsing[6]
    ys, xs = np.nonzero(lip > 0.5)
    assert moved.carried and 4.0 < ys.mean() - 159.5 < 7.0 and abs(xs.mean() - 129.5) < 1.0
    np.testing.assert_allclose(moved.parsing[:, :100], analysis.parsing[:, :100], atol=1e-6)
    np.testing.assert_allclose(moved.mesh, opened)
    still = carry_to(analysis, analysis.alignment, mesh)  # rigid: the maps as they were
    np.testing.assert_array_equal(still.parsing, analysis.parsing)
    np.testing.assert_allclose(still.parsing.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(moved.parsing.sum(axis=0), 1.0, atol=1e-5)  # still a softmax


def test_maps_warped_past_the_crop_edge_take_the_edge_values():
    """Mesh points at the crop's corner moving in: the pixels there sample from outside the
    crop, which repeats its edge (not zeros, which would be no class at all)."""
    from arfx.model import carry_to

    grid = np.stack(np.meshgrid(np.linspace(0, 24, 6), np.linspace(0, 24, 6)), -1).reshape(36, 2)
    rest = np.random.default_rng(1).uniform(80, 250, (478 - 36, 2))
    mesh = np.concatenate([grid, rest])
    analysis = _blob_analysis(mesh)
    moved_mesh = mesh.copy()
    moved_mesh[:36] += 8.0
    moved = carry_to(analysis, analysis.alignment, moved_mesh)
    np.testing.assert_allclose(moved.mesh, moved_mesh)
    np.testing.assert_allclose(moved.parsing.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(moved.parsing[0, :20, :20], 1.0, atol=1e-5)  # as at the edge


def test_maps_are_warped_only_where_they_move_and_exactly_as_over_the_whole_crop(obama):
    """A real face's mouth opening: the warp resamples only a box around the moving mesh
    points, and gives, bit for bit, what warping every pixel of the crop gives (outside the
    box the motion field is exactly the identity)."""
    import cv2

    from arfx.model import _WARP_PRIOR, _WARP_STEP, WARP_SIGMA, _mesh_motion, carry_to

    rgb, face = obama
    alignment = align_mesh(face.landmarks)
    mesh = alignment.to_crop(face.landmarks)
    rng = np.random.default_rng(3)
    parsing = rng.random((10, 256, 256)).astype(np.float32)
    occlusion = rng.random((256, 256)).astype(np.float32)
    analysis = replace(_blob_analysis(mesh), parsing=parsing, occlusion=occlusion)
    mouth = np.abs(mesh - mesh[14]).max(axis=1) < 25  # points around the lower lip's middle
    opened = mesh.copy()
    opened[mouth, 1] += rng.uniform(1.0, 5.0, mouth.sum())
    motion = _mesh_motion(mesh, opened)
    x0, y0, x1, y1 = motion.box
    assert (x1 - x0) * (y1 - y0) < 0.6 * 256 * 256  # a part of the crop, not all of it

    # The whole crop's field, computed independently: the motion's Gaussian-weighted
    # average of the points' shifts, upsampled from the cell grid, at every pixel.
    shift = (mesh - opened).astype(np.float32)
    cells = 256 // _WARP_STEP
    index = np.clip(np.round(opened / _WARP_STEP - 0.5).astype(np.intp), 0, cells - 1)
    flat = index[:, 1] * cells + index[:, 0]
    grids = [
        cv2.GaussianBlur(
            np.bincount(flat, w, cells * cells).astype(np.float32).reshape(cells, cells),
            (0, 0),
            WARP_SIGMA / _WARP_STEP,
        )
        for w in (None, shift[:, 0], shift[:, 1])
    ]
    norm = grids[0] + _WARP_PRIOR * float(grids[0].max())
    field = cv2.resize(np.stack([grids[1] / norm, grids[2] / norm], 2), (256, 256))
    ys, xs = np.mgrid[0:256, 0:256].astype(np.float32)
    field[..., 0] += xs
    field[..., 1] += ys
    np.testing.assert_array_equal(field[y0:y1, x0:x1], motion.field)
    outside = np.ones((256, 256), bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(field[outside], np.stack([xs, ys], 2)[outside])  # identity
    fixed, fraction = cv2.convertMaps(field, None, cv2.CV_16SC2)

    def whole(plane: np.ndarray) -> np.ndarray:
        return cv2.remap(plane, fixed, fraction, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    moved = carry_to(analysis, analysis.alignment, opened)
    for k in range(10):
        np.testing.assert_array_equal(moved.parsing[k], whole(parsing[k]))
    np.testing.assert_array_equal(moved.occlusion, whole(occlusion))
    assert not np.array_equal(moved.parsing, parsing)  # the mouth did move
