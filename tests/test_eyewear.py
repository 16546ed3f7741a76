"""Eyewear: the procedural glasses, fitting, mesh passes (manifest, drawing, depth occlusion by
the head, fault isolation), the 2D mode, and golden renders on a shared photo."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from arfx import eyewear, gltf, meshpass, occluder
from arfx.cli import EXIT_OK, main
from arfx.compositor import Compositor
from arfx.effect import Effect, EffectSpec, FrameContext
from arfx.errors import EffectError
from arfx.meshpass import projection_matrix
from arfx.occluder import TYPICAL_WIDTH_RATIO, head_width_factor
from arfx.pose import CanonicalFace, HeadPose, camera_matrix, euler_to_rotation
from arfx.resources import builtin_effects_dir
from arfx.tracking import FaceTracker, TrackerOptions

from .conftest import data_root, require
from .golden import assert_matches_golden, changed_outside, face_crop

EFFECT = builtin_effects_dir() / "eyewear"
CANONICAL = CanonicalFace.load().points


@pytest.fixture(scope="module")
def compositor():
    with Compositor() as comp:
        yield comp


@pytest.fixture(scope="module")
def obama():
    """obama.jpg (RGB) and its tracked faces."""
    path = require(data_root() / "images" / "obama.jpg")
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    with FaceTracker(TrackerOptions(static_images=True)) as tracker:
        faces = tracker.track(image)
    assert len(faces) == 1
    return image, faces


def _copy_effect(tmp_path: Path, manifest_changes=None, extra: dict[str, Path] | None = None):
    """A copy of the eyewear effect (shadowing the built-in one), with manifest edits and
    extra files (e.g. third-party models) put inside it."""
    folder = tmp_path / "eyewear"
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(EFFECT, folder)
    for name, source in (extra or {}).items():
        if source.is_dir():
            shutil.copytree(source, folder / name)
        else:
            shutil.copy(source, folder / name)
    if manifest_changes:
        manifest = json.loads((folder / "effect.json").read_text())
        manifest_changes(manifest)
        (folder / "effect.json").write_text(json.dumps(manifest))
    return folder


def _render(compositor, effect: Effect, image, faces, camera=None, on_failure=None):
    frame = FrameContext(image=image, faces=faces, masks={}, camera=camera)
    uniforms = effect.uniforms(frame, effect.params)
    return compositor.render(frame, [(effect, uniforms)], on_failure=on_failure)


def _model_pixels(effect: Effect, face, camera, select=None) -> np.ndarray:
    """Where the model's vertices land in the image (optionally only those ``select`` keeps,
    given their head-frame positions)."""
    model = gltf.load(effect.spec.mesh_path(effect.spec.passes[0], effect.params))
    fit = eyewear.fit_model(model)
    factor = head_width_factor(face.landmarks, face.pose, camera)
    matrix = fit.matrix(eyewear.FRAME_WIDTH * factor)
    head = model.positions() @ matrix[:3, :3].T + matrix[:3, 3]
    if select is not None:
        head = head[select(head)]
    return face.pose.project(head, camera)


# --- the procedural model and fitting -------------------------------------------------------


def test_shipped_glasses_are_the_procedural_model_written_by_our_code(tmp_path: Path) -> None:
    path = tmp_path / "glasses.glb"
    eyewear.write_glasses(path)
    model = gltf.load(path)
    shipped = gltf.load(EFFECT / "glasses.glb")
    for ours, theirs in zip(model.primitives, shipped.primitives, strict=True):
        message = "effects/eyewear/glasses.glb is stale: run python -m arfx.eyewear"
        np.testing.assert_allclose(ours.positions, theirs.positions, atol=1e-6, err_msg=message)
        np.testing.assert_array_equal(ours.indices, theirs.indices, err_msg=message)
    assert [m.name for m in model.materials] == ["frame", "lens"]
    assert model.materials[1].alpha_mode == "BLEND" and 0 < model.materials[1].base_color[3] < 1
    # glTF metres, +y up, front toward +z: the frame front is the nearest part to the viewer.
    lo, hi = model.bounds()
    assert 0.13 < hi[0] - lo[0] < 0.15 and hi[2] > 0.015 and lo[2] < -0.08
    # What was built in head millimetres comes back from the file unchanged.
    meshes, _ = eyewear.build_glasses()
    for built, read in zip(meshes, model.primitives, strict=True):
        np.testing.assert_allclose(
            read.positions * 1000 @ eyewear.GLTF_TO_HEAD, built.positions, atol=1e-3
        )
        np.testing.assert_array_equal(read.indices, built.indices)


def test_fit_puts_the_bridge_on_the_nose_and_the_temples_at_the_ears() -> None:
    model = gltf.load(EFFECT / "glasses.glb")
    fit = eyewear.fit_model(model)
    assert fit.front == "+z"
    matrix = fit.matrix()
    head = model.positions() @ matrix[:3, :3].T + matrix[:3, 3]
    front = head[head[:, 2] < 0]
    assert front[:, 0].max() - front[:, 0].min() == pytest.approx(eyewear.FRAME_WIDTH, abs=0.5)
    # The bridge (the frame's middle) sits just in front of the nose bridge, landmark 168.
    middle = head[np.abs(head[:, 0]) < 3]
    assert CANONICAL[168, 2] - 8 < middle[:, 2].max() < CANONICAL[168, 2]
    assert eyewear.FRONT_Z <= middle[:, 2].min() < eyewear.FRONT_Z + 1.5
    # On a typical face (as wide as the occluder's head) the temples pass just outside the
    # ear line (landmarks 234/454) and reach back past it.
    typical = eyewear.FRAME_WIDTH * TYPICAL_WIDTH_RATIO
    matrix = fit.matrix(typical)
    head = model.positions() @ matrix[:3, :3].T + matrix[:3, 3]
    ear = CANONICAL[454, 0] * TYPICAL_WIDTH_RATIO
    back = head[(head[:, 2] > CANONICAL[454, 2]) & (head[:, 2] < CANONICAL[454, 2] + 15)]
    assert len(back) and np.all(np.abs(back[:, 0]) > ear)
    assert np.abs(back[:, 0]).max() < ear + 6
    assert head[:, 2].max() > CANONICAL[454, 2] + 25


@pytest.mark.parametrize(
    ("name", "front"), [("sunglasses_gltf", "+x"), ("pixel_glasses_gltf", "+z")]
)
def test_the_front_of_third_party_models_is_detected(name: str, front: str) -> None:
    model = gltf.load(require(data_root() / "eyewear" / name / "scene.gltf"))
    fit = eyewear.fit_model(model)
    assert fit.front == front
    matrix = fit.matrix()
    head = model.positions() @ matrix[:3, :3].T + matrix[:3, 3]
    # In head axes the temples run back (+z) from the front.
    front_half = head[head[:, 2] < np.median(head[:, 2])]
    assert head[:, 2].min() == pytest.approx(eyewear.FRONT_Z, abs=0.01)
    assert head[:, 2].max() - head[:, 2].min() > 80
    assert np.ptp(front_half[:, 0]) == pytest.approx(eyewear.FRAME_WIDTH, rel=0.05)


def test_projection_matches_the_camera_intrinsics() -> None:
    camera = camera_matrix((640, 360), 500.0)
    projection = projection_matrix(camera, (640, 360))
    points = np.array([[30.0, -20.0, 400.0], [-50.0, 40.0, 900.0]])
    clip = np.c_[points, np.ones(2)] @ projection.T
    ndc = clip[:, :3] / clip[:, 3:]
    pixels = (points @ camera.T)[:, :2] / points[:, 2:]
    np.testing.assert_allclose((ndc[:, 0] + 1) * 320, pixels[:, 0], atol=1e-6)
    np.testing.assert_allclose((ndc[:, 1] + 1) * 180, pixels[:, 1], atol=1e-6)
    assert np.all(np.abs(ndc[:, 2]) < 1)


# --- mesh passes in manifests ---------------------------------------------------------------


def _mesh_manifest(tmp_path: Path, pass_entry: dict, params: dict | None = None) -> Path:
    folder = tmp_path / "fx"
    folder.mkdir(exist_ok=True)
    for name in ("a.vert", "a.frag"):
        (folder / name).write_text("void main() {}\n")
    shutil.copy(EFFECT / "glasses.glb", folder / "m.glb")
    (folder / "notes.txt").write_text("x")
    manifest = {"name": "fx", "passes": [pass_entry], "params": params or {}}
    (folder / "effect.json").write_text(json.dumps(manifest))
    return folder


def test_mesh_pass_manifest_keys(tmp_path: Path) -> None:
    entry = {"mesh": "m.glb", "vertex": "a.vert", "fragment": "a.frag", "occluder": "head"}
    spec = EffectSpec.load(_mesh_manifest(tmp_path, entry))
    (mesh_pass,) = spec.passes
    assert mesh_pass.is_mesh and mesh_pass.vertex == "a.vert" and mesh_pass.shader == "a.frag"
    assert mesh_pass.occluder == "head" and spec.pose  # a mesh pass reads the pose
    assert spec.mesh_path(mesh_pass, {}) == (tmp_path / "fx" / "m.glb").resolve()
    asset = {"model": {"type": "asset", "default": "m.glb"}}
    spec = EffectSpec.load(_mesh_manifest(tmp_path, {**entry, "mesh": "model"}, asset))
    assert spec.mesh_path(spec.passes[0], {"model": "m.glb"}).name == "m.glb"
    mode = {"mode": {"type": "enum", "default": "a", "choices": ["a", "b"]}}
    spec = EffectSpec.load(_mesh_manifest(tmp_path, {**entry, "when": {"mode": "b"}}, mode))
    assert not spec.passes[0].enabled({"mode": "a"}) and spec.passes[0].enabled({"mode": "b"})
    bad = [
        ({**entry, "vertex": None}, None, r"passes\[0\]\.vertex: expected a string, got None"),
        ({**entry, "mesh": "missing.glb"}, None, "'missing.glb' not found"),
        ({**entry, "mesh": "notes.txt"}, None, "must be a .glb or .gltf file"),
        ({**entry, "mesh": "mode"}, mode, "the enum parameter 'mode'; it must be an asset"),
        (
            {**entry, "occluder": "hat"},
            None,
            r"passes\[0\]\.occluder: must be one of \['none', 'head'\], got 'hat'",
        ),
        ({**entry, "when": {"nope": 1}}, None, "'when' names no parameter 'nope'"),
        ({**entry, "when": {"mode": "c"}}, mode, "expected one of"),
        ({**entry, "shader": "a.frag"}, None, r"passes\[0\]\.shader: unknown key"),
    ]
    for pass_entry, params, message in bad:
        with pytest.raises(EffectError, match=message):
            EffectSpec.load(_mesh_manifest(tmp_path, pass_entry, params))


def test_mesh_pass_compile_errors_name_the_shader_file(compositor, tmp_path: Path) -> None:
    entry = {"mesh": "m.glb", "vertex": "a.vert", "fragment": "a.frag"}
    folder = _mesh_manifest(tmp_path, entry)
    (folder / "a.vert").write_text("void main() {\n    gl_Position = vec4(in_position, nope);\n}\n")
    (folder / "a.frag").write_text("void main() { arfx_out = vec4(1.0); }\n")
    with pytest.raises(EffectError, match=r"a\.vert:2: error"):
        compositor.prepare(Effect(EffectSpec.load(folder)))
    (folder / "a.vert").write_text(
        "void main() { gl_Position = arfx_camera_to_clip(in_position); }\n"
    )
    (folder / "a.frag").write_text("void main() {\n    arfx_out = u_base_color * nope;\n}\n")
    with pytest.raises(EffectError, match=r"a\.frag:2: error"):
        compositor.prepare(Effect(EffectSpec.load(folder)))


def test_arfx_effects_lists_eyewear_and_its_parameters(capsys) -> None:
    assert main(["effects", "--json"]) in (EXIT_OK, 1)  # other folders may be broken
    listing = json.loads(capsys.readouterr().out)
    params = listing["eyewear"]["params"]
    assert {"mode", "model", "frame_color", "lens_color", "lens_opacity", "image"} <= set(params)
    assert params["mode"]["choices"] == ["3d", "2d"] and params["model"]["type"] == "asset"
    assert params["lens_opacity"]["min"] == 0 and params["lens_opacity"]["max"] == 1


# --- drawing --------------------------------------------------------------------------------


def _turned_face(yaw: float, size=(640, 480), distance=500.0):
    camera = camera_matrix(size)
    pose = HeadPose.from_rotation(euler_to_rotation(yaw, 0.0, 0.0), [0.0, 0.0, distance])
    return eyewear.synthetic_face(pose, size, camera, CANONICAL), camera


def _changed_at(out: np.ndarray, image: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Per pixel position: did the render change the input there?"""
    changed = np.any(out != image, axis=2)
    xy = np.floor(pixels).astype(int)
    return changed[xy[:, 1], xy[:, 0]]


def test_temples_are_hidden_behind_the_head_at_a_yaw_of_40_degrees(compositor, tmp_path) -> None:
    """A synthetic face turned 40 deg toward the image's right: its left temple (head x > 0)
    runs behind the head. With the head occluder the render equals the input there; without
    it the temple is drawn over the face. The near temple is drawn either way.

    At 40 deg the far temple is seen through the far lens, so the model here is the shipped
    frame with only the triangles behind the front (the temples): same vertices, same fit."""
    meshes, materials = eyewear.build_glasses()
    frame = meshes[0]
    triangles = frame.indices.reshape(-1, 3)
    back = np.all(frame.positions[triangles][:, :, 2] > 10.0, axis=1)
    temples = gltf.MeshData("temples", frame.positions, frame.normals, triangles[back], 0)

    def use_temples(manifest):
        manifest["params"]["model"]["default"] = "temples.glb"

    def no_occluder(manifest):
        use_temples(manifest)
        manifest["passes"][0]["occluder"] = "none"

    folders = []
    for name, change in (("head", use_temples), ("none", no_occluder)):
        folder = _copy_effect(tmp_path / name, change)
        gltf.save(folder / "temples.glb", eyewear.head_to_gltf([temples]), materials[:1])
        folders.append(folder)
    occluded, plain = (Effect(EffectSpec.load(folder)) for folder in folders)
    face, camera = _turned_face(40.0)
    image = np.full((480, 640, 3), 120, np.uint8)
    with_head = _render(compositor, occluded, image, [face], camera)
    without = _render(compositor, plain, image, [face], camera)

    def temple(sign):  # the temple behind the ear line (landmarks 234/454 are at z = 58)
        return lambda head: (sign * head[:, 0] > 55) & (head[:, 2] > 50) & (head[:, 2] < 75)

    far = _model_pixels(occluded, face, camera, temple(+1))
    near = _model_pixels(occluded, face, camera, temple(-1))
    assert len(far) > 30 and len(near) > 30  # vertices of each temple's stretch there
    assert _changed_at(without, image, far).mean() > 0.9  # drawn without the occluder
    assert _changed_at(with_head, image, far).mean() < 0.02  # hidden behind the head
    assert _changed_at(with_head, image, near).mean() > 0.9  # the near temple stays
    assert _changed_at(without, image, near).mean() > 0.9
    # Without a face nothing is drawn: the frame comes back bit-identical.
    assert np.array_equal(_render(compositor, occluded, image, [], camera), image)


def test_the_head_occluders_closed_parts_face_outward() -> None:
    """Mesh passes cull the back faces of the skull and ears (every triangle costs on a
    software renderer), so each of those parts must be closed and wound counter-clockwise
    seen from outside: every edge is met once in each direction, and each part's signed
    volume is positive. The open face surface before them is drawn from both sides."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    head = occluder.head_occluder()
    assert head.surface_indices == occluder.face_triangles().size
    # Vertices at one place (an ellipsoid's pole) are one point.
    _, point = np.unique(np.round(head.vertices, 4), axis=0, return_inverse=True)
    triangles = point.reshape(-1)[head.indices[head.surface_indices :].reshape(-1, 3)]
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    assert np.all(edges[:, 0] != edges[:, 1])  # no triangle without an area
    directed = {tuple(e) for e in edges.tolist()}
    assert len(directed) == len(edges)
    assert all((b, a) in directed for a, b in directed)
    graph = coo_matrix(
        (np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(point.max() + 1,) * 2
    )
    _, part = connected_components(graph, directed=False)
    corners = [
        head.vertices[head.indices[head.surface_indices :].reshape(-1, 3)[:, k]] for k in range(3)
    ]
    volume = np.einsum("ij,ij->i", corners[0], np.cross(corners[1], corners[2])) / 6.0
    parts = part[triangles[:, 0]]
    assert len(np.unique(parts)) == 3  # the skull and two ears
    for label in np.unique(parts):
        assert volume[parts == label].sum() > 0


@pytest.mark.parametrize(
    ("yaw", "params"),
    [(0.0, {}), (40.0, {}), (-35.0, {"scale": 1.6, "tilt": 20.0}), (20.0, {"offset_z": -20.0})],
)
def test_the_hooks_mesh_boxes_hold_every_pixel_the_glasses_change(
    compositor, monkeypatch, yaw: float, params: dict
) -> None:
    """The hooks' ``arfx_mesh_boxes`` confine multisampling to the projected model: the
    output is bit-identical to multisampling the whole frame. (The face's box grown by
    REGION_MARGIN, used before, cut the temples of wide glasses on a turned head.)"""
    monkeypatch.setattr(meshpass, "REGION_MARGIN", 10.0)  # without boxes: the whole frame
    effect = Effect(EffectSpec.load(EFFECT), **params)
    face, camera = _turned_face(yaw)
    image = np.full((480, 640, 3), 120, np.uint8)
    frame = FrameContext(image=image, faces=[face], masks={}, camera=camera)
    uniforms = effect.uniforms(frame, effect.params)
    x0, y0, x1, y1 = uniforms["arfx_mesh_boxes"][0]
    assert x1 > x0 and y1 > y0
    tight = compositor.render(frame, [(effect, uniforms)])
    loose = dict(uniforms)
    del loose["arfx_mesh_boxes"]
    assert np.array_equal(tight, compositor.render(frame, [(effect, loose)]))
    ys, xs = np.nonzero(np.any(tight != image, axis=2))
    assert len(xs) > 500
    assert xs.min() >= x0 - 2 and xs.max() <= x1 + 2 and ys.min() >= y0 - 2 and ys.max() <= y1 + 2


def test_the_fit_is_smoothed_over_consecutive_video_frames() -> None:
    """The width of a face varies a little from frame to frame; in a video the glasses follow
    it smoothly, while a new photo (or a cut) starts afresh."""
    effect = Effect(EffectSpec.load(EFFECT))
    face, camera = _turned_face(0.0)
    wider = copy.deepcopy(face)
    outline = [234, 454, 127, 356, 93, 323]
    centre = wider.landmarks[outline, 0].mean()
    wider.landmarks[outline, 0] = centre + (wider.landmarks[outline, 0] - centre) * 1.04
    image = np.zeros((480, 640, 3), np.uint8)

    def scale(target, index):
        frame = FrameContext(image=image, faces=[target], masks={}, camera=camera, index=index)
        return float(np.linalg.norm(effect.uniforms(frame, effect.params)["u_model"][0][0, :3]))

    first = scale(face, 0)
    jump = scale(wider, 5) / first - 1  # not the next frame: no smoothing
    assert jump == pytest.approx(0.04, abs=0.01)
    assert scale(face, 10) == pytest.approx(first, rel=1e-6)
    step = scale(wider, 11) / first - 1
    assert 0.1 * jump < step < 0.4 * jump


def test_mesh_pass_failures_are_isolated_and_name_the_file(compositor, tmp_path) -> None:
    folder = _copy_effect(tmp_path)
    (folder / "broken.glb").write_bytes(b"glTF\x02\x00\x00\x00\x10\x00\x00\x00garbage")
    effect = Effect(EffectSpec.load(folder))
    face, camera = _turned_face(0.0)
    image = np.full((480, 640, 3), 90, np.uint8)
    effect.set(model="broken.glb")
    failures = []
    out = compositor.render(
        FrameContext(image=image, faces=[face], masks={}, camera=camera),
        [(effect, {})],
        on_failure=lambda e, exc: failures.append(str(exc)),
    )
    assert np.array_equal(out, image)
    assert len(failures) == 1 and "broken.glb" in failures[0] and "eyewear" in failures[0]
    # The hook names the file too, and a missing file is refused when it is set.
    with pytest.raises(EffectError, match="broken.glb"):
        effect.uniforms(FrameContext(image, [face], {}, camera=camera), effect.params)
    with pytest.raises(EffectError, match="'nothing.glb' not found"):
        effect.set(model="nothing.glb")
    # 2d mode does not run the mesh pass: the broken model does not matter there.
    effect.set(mode="2d")
    assert not np.array_equal(_render(compositor, effect, image, [face], camera), image)


@pytest.mark.parametrize("model", ["sunglasses_gltf", "pixel_glasses_gltf"])
def test_third_party_models_render_on_the_eyes(compositor, tmp_path, obama, model) -> None:
    source = require(data_root() / "eyewear" / model)
    effect = Effect(
        EffectSpec.load(_copy_effect(tmp_path, extra={model: source})),
        model=f"{model}/scene.gltf",
    )
    image, faces = obama
    camera = camera_matrix(image.shape[1::-1])
    out = _render(compositor, effect, image, faces, camera)
    changed = np.any(out != image, axis=2)
    ys, xs = np.nonzero(changed)
    eyes = faces[0].landmarks[[468, 473], :2]
    assert xs.min() < eyes[:, 0].min() - 30 and xs.max() > eyes[:, 0].max() + 30
    assert ys.min() < eyes[:, 1].mean() < ys.max()
    assert changed[int(eyes[0, 1]), int(eyes[0, 0])]  # the lenses cover the eyes


def test_back_faces_of_single_sided_materials_are_culled(compositor, tmp_path, obama) -> None:
    """glTF: a material that is not doubleSided shows its front faces only (and llvmpipe
    pays per multisampled triangle, so the back half of every tube is not drawn). A plate
    facing the camera is drawn; wound the other way round it is not, unless doubleSided."""
    image, faces = obama
    camera = camera_matrix(image.shape[1::-1])
    positions = np.array([[-70, -25, 0], [70, -25, 0], [70, 25, 0], [-70, 25, 0]], np.float32)
    normals = np.tile(np.float32([0.0, 0.0, 1.0]), (4, 1))
    facing = np.array([0, 1, 2, 0, 2, 3], np.uint32)  # counter-clockwise seen from +z
    drawn = {}
    for name, indices, double_sided in (
        ("front", facing, False),
        ("back", facing[::-1].copy(), False),
        ("back_double_sided", facing[::-1].copy(), True),
    ):
        plate = tmp_path / f"{name}.glb"
        mesh = gltf.MeshData("plate", positions / 1000.0, normals, indices, material=0)
        material = gltf.Material("plate", (0.8, 0.1, 0.1, 1.0), double_sided=double_sided)
        gltf.save(plate, [mesh], [material])
        effect = Effect(
            EffectSpec.load(_copy_effect(tmp_path / name, extra={plate.name: plate})),
            model=plate.name,
            front="+z",
        )
        out = _render(compositor, effect, image, faces, camera)
        drawn[name] = int(np.any(out != image, axis=2).sum())
    assert drawn["front"] > 2000
    assert drawn["back"] == 0
    assert drawn["back_double_sided"] == drawn["front"]


def test_golden_default_glasses_on_a_photo(compositor, obama) -> None:
    image, faces = obama
    camera = camera_matrix(image.shape[1::-1])
    effect = Effect(EffectSpec.load(EFFECT))
    out = _render(compositor, effect, image, faces, camera)
    y0, y1, x0, x1 = face_crop(image, faces[0].box, margin=0.15)
    assert_matches_golden("eyewear_obama", out[y0:y1, x0:x1])
    # Nothing changes outside the glasses: the model's projected extent, a few pixels wider.
    pixels = _model_pixels(effect, faces[0], camera)
    region = np.zeros(image.shape[:2], bool)
    (left, top), (right, bottom) = pixels.min(0) - 4, pixels.max(0) + 4
    region[int(top) : int(bottom) + 1, int(left) : int(right) + 1] = True
    assert changed_outside(image, out, region) == 0
    assert changed_outside(image, out, np.zeros_like(region)) > 5000  # it did draw


# --- 2D mode --------------------------------------------------------------------------------


def _principal_angle(mask: np.ndarray) -> float:
    """Angle in degrees (counter-clockwise as seen) of a mask's long axis."""
    ys, xs = np.nonzero(mask)
    cov = np.cov(np.stack([xs, ys]))
    vals, vecs = np.linalg.eigh(cov)
    x, y = vecs[:, np.argmax(vals)]
    angle = -math.degrees(math.atan2(y, x))
    return (angle + 90) % 180 - 90


def test_2d_mode_sits_between_the_eyes_and_follows_roll(compositor, tmp_path, obama) -> None:
    sunglasses = require(data_root() / "eyewear" / "sunglasses.png")
    folder = _copy_effect(tmp_path, extra={"sunglasses.png": sunglasses})
    image, faces = obama
    height, width = image.shape[:2]
    camera = camera_matrix((width, height))
    results = {}
    for picture in ("glasses.png", "sunglasses.png"):
        effect = Effect(EffectSpec.load(folder), mode="2d", image=picture)
        for roll in (0.0, 20.0):
            turn = cv2.getRotationMatrix2D((width / 2, height / 2), roll, 1.0)
            turned = cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REFLECT)
            if roll:
                with FaceTracker(TrackerOptions(static_images=True)) as tracker:
                    turned_faces = tracker.track(turned)
            else:
                turned_faces = faces
            out = _render(compositor, effect, turned, turned_faces, camera)
            changed = np.any(out != turned, axis=2)
            eyes = turned_faces[0].landmarks[[468, 473], :2]
            eye_distance = float(np.linalg.norm(eyes[1] - eyes[0]))
            ys, xs = np.nonzero(changed)
            centre = np.array([(xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2])
            if roll == 0:
                # Centred between the eyes, a little below them (LENS_Y), as wide as the
                # frame (134 mm times the face's width factor; the irises are 63 mm apart).
                offset = centre - eyes.mean(axis=0)
                assert abs(offset[0]) < 0.05 * eye_distance, picture
                assert -0.02 * eye_distance < offset[1] < 0.15 * eye_distance, picture
                face = turned_faces[0]
                factor = head_width_factor(face.landmarks, face.pose, camera)
                expected = eyewear.FRAME_WIDTH * factor / 63.0
                assert (xs.max() - xs.min()) / eye_distance == pytest.approx(expected, rel=0.08)
                assert changed[int(eyes[0, 1]), int(eyes[0, 0])]
            results[(picture, roll)] = (_principal_angle(changed), turned_faces[0].pose.roll)
    for picture in ("glasses.png", "sunglasses.png"):
        (angle0, roll0), (angle20, roll20) = results[(picture, 0.0)], results[(picture, 20.0)]
        assert angle20 - angle0 == pytest.approx(roll20 - roll0, abs=2.0), picture
        assert angle20 - angle0 == pytest.approx(20.0, abs=3.0), picture


def test_golden_2d_picture_on_a_photo(compositor, obama) -> None:
    image, faces = obama
    camera = camera_matrix(image.shape[1::-1])
    effect = Effect(EffectSpec.load(EFFECT), mode="2d")
    out = _render(compositor, effect, image, faces, camera)
    y0, y1, x0, x1 = face_crop(image, faces[0].box, margin=0.15)
    assert_matches_golden("eyewear_obama_2d", out[y0:y1, x0:x1])


@pytest.mark.slow
def test_arfx_render_with_eyewear_on_a_video(tmp_path: Path) -> None:
    """The whole pipeline: the CLI renders a head-turning clip with the default glasses and
    with a third-party model chosen by parameter, in 3d and 2d, and every frame has them."""
    video = require(data_root() / "videos" / "WolfgangLanger_Pexels.mp4")
    clip = tmp_path / "clip.mp4"
    capture = cv2.VideoCapture(str(video))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 24, (640, 360))
    frames = []
    for index in range(200):
        ok, frame = capture.read()
        assert ok
        if index >= 150:  # the head turns about 24 deg here
            writer.write(frame)
            frames.append(frame)
    writer.release()
    _copy_effect(tmp_path / "fx", extra={"pixel": data_root() / "eyewear" / "pixel_glasses_gltf"})
    for spec in ("eyewear", "eyewear:model=pixel/scene.gltf", "eyewear:mode=2d"):
        out = tmp_path / "out.mp4"
        args = ["render", str(clip), str(out), "-e", spec, "--no-progress"]
        assert main([*args, "--effect-path", str(tmp_path / "fx")]) == EXIT_OK
        rendered = cv2.VideoCapture(str(out))
        for frame in frames:
            ok, result = rendered.read()
            assert ok
            difference = np.abs(result.astype(int) - frame.astype(int)).sum(axis=2) > 60
            assert difference.sum() > 1500, spec  # the glasses are on every frame
