"""The effect plugin system: manifests (TOML/JSON, passes, texture and asset parameters),
discovery (folders, entry points), shared GLSL, landmarks and pose in shaders, fault
isolation, hot reload, and the example package installed the way a user installs it."""

from __future__ import annotations

import colorsys
import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import cv2
import moderngl
import numpy as np
import pytest
import skimage.color

import arfx
from arfx import registry as registry_module
from arfx.cli import EXIT_FAILED, EXIT_OK, main
from arfx.compositor import LANDMARKS, Compositor, is_software_renderer
from arfx.effect import (
    MAX_PASSES,
    MAX_TEXTURE_SIZE,
    Effect,
    EffectSpec,
    FrameContext,
    compose_shader,
)
from arfx.errors import EffectError, ParameterError
from arfx.pose import HeadPose, camera_matrix, euler_to_rotation
from arfx.registry import EffectRegistry
from arfx.resources import shaders_dir
from arfx.tracking import Face

from .conftest import require_tool

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "custom_effect"


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _effect(
    root: Path, name: str, manifest: str, files: dict[str, str], manifest_name: str = "effect.toml"
) -> Path:
    """Write an effect folder: the manifest text and the other files."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / manifest_name).write_text(textwrap.dedent(manifest))
    for file, text in files.items():
        (folder / file).write_text(textwrap.dedent(text))
    return folder


def _write(path: Path, text: str) -> None:
    """Rewrite ``path`` and move its mtime on by a second, as a later save would."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(textwrap.dedent(text))
    stamp = max(path.stat().st_mtime_ns, before + 1_000_000_000)
    os.utime(path, ns=(stamp, stamp))


FILL = """
uniform vec3 u_color;
void main() {
    vec4 src = arfx_source();
    arfx_out = arfx_face_at(arfx_pixel(), 0.0) >= 0 ? vec4(u_color, 1.0) : src;
}
"""


# --- manifests ------------------------------------------------------------------------------


def test_toml_manifest_with_passes_inputs_labels_and_steps(tmp_path: Path) -> None:
    folder = _effect(
        tmp_path,
        "glow",
        """
        name = "glow"
        version = "2.1.0"
        description = "Two passes."
        landmarks = true
        pose = true
        masks = ["lips"]
        passes = ["a.frag", {shader = "b.frag"}]

        [params.strength]
        type = "float"
        default = 0.5
        min = 0
        max = 1
        step = 0.05
        label = "Strength"
        """,
        {"a.frag": "void main() {}", "b.frag": "void main() {}"},
    )
    spec = EffectSpec.load(folder)
    assert spec.name == "glow" and spec.version == "2.1.0"
    assert [p.shader for p in spec.passes] == ["a.frag", "b.frag"] and spec.shader == "a.frag"
    assert spec.landmarks and spec.pose and spec.masks == ("lips",)
    assert spec.manifest == (folder / "effect.toml").resolve()
    strength = spec.params["strength"]
    assert (strength.step, strength.label, strength.default) == (0.05, "Strength", 0.5)
    assert spec.defines() == ["ARFX_USE_LANDMARKS", "ARFX_USE_POSE"]


def test_effect_json_and_the_meta_json_alias_load(tmp_path: Path) -> None:
    manifest = json.dumps({"name": "a", "shader": "fx.frag"})
    a = _effect(tmp_path, "a", manifest, {"fx.frag": "void main() {}"}, "effect.json")
    b = _effect(tmp_path, "b", manifest.replace('"a"', '"b"'), {"fx.frag": ""}, "meta.json")
    assert EffectSpec.load(a).name == "a" and EffectSpec.load(b).name == "b"
    assert {"a", "b"} <= set(EffectRegistry([tmp_path], use_env=False).names())
    (a / "effect.toml").write_text('name = "a"\nshader = "fx.frag"\n')
    with pytest.raises(EffectError, match="more than one manifest"):
        EffectSpec.load(a)


def test_manifest_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad = _effect(tmp_path, "bad", 'name = "bad"\nshader = \n', {})
    with pytest.raises(EffectError, match=r"bad/effect.toml:2: invalid TOML"):
        EffectSpec.load(bad)
    cases = {  # manifest text: the error, after the file (":LINE:" where the schema found it)
        'name = "x"\nshader = "fx.frag"\npasses = ["fx.frag"]\n': ": give either 'shader'",
        'name = "x"\npasses = []\n': r":2: passes: must have at least 1 entry",
        'name = "x"\npasses = [{shader = "fx.frag", vertex = "v.vert"}]\n': (
            r":2: passes\[0\].vertex: unknown key"
        ),
        'name = "x"\npasses = ["fx.frag", "nope.frag"]\n': ": pass 2: 'nope.frag' not found",
        'name = "x"\nshader = "fx.frag"\nlandmarks = "yes"\n': (
            r":3: landmarks: expected true or false, got 'yes'"
        ),
        'name = "x"\nshader = "fx.frag"\n[params.a]\ntype="float"\ndefault=1\nstep=0\n': (
            r":6: params.a.step: must be greater than 0"
        ),
        'name = "x"\nshader = "fx.frag"\n[params.a-b]\ntype="int"\ndefault=1\n': (
            r":3: params.a-b: bad name: must match"
        ),
        'name = "X"\nshader = "fx.frag"\n': r":1: name: must match",
        'name = "x"\nshader = "fx.frag"\nregion = "body"\n': r":3: region: must be one of",
        'name = "x"\nshader = "fx.frag"\n[params.a]\ntype="enum"\ndefault="p"\n': (
            r":3: params.a: missing 'choices'"
        ),
        'name = "x"\nshader = "/etc/hostname"\n': ": '/etc/hostname' points outside the effect",
        'name = "x"\nshader = "sub/../fx.frag"\n': ": 'sub/../fx.frag' points outside the effect",
    }
    for number, (text, message) in enumerate(cases.items()):
        folder = _effect(tmp_path / str(number), "x", text, {"fx.frag": "void main() {}"})
        manifest = re.escape(str(folder / "effect.toml"))
        with pytest.raises(EffectError, match=manifest + message):
            EffectSpec.load(folder)


def test_the_manifest_schema_is_a_json_schema_every_built_in_effect_meets(capsys) -> None:
    """``arfx effects --schema`` prints the JSON Schema that editors can use."""
    from arfx.cli import main
    from arfx.effect import MANIFEST_SCHEMA, read_manifest
    from arfx.registry import EffectRegistry
    from arfx.schema import validate

    assert main(["effects", "--schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(MANIFEST_SCHEMA))
    assert printed["properties"]["passes"]["maxItems"] == MAX_PASSES
    registry = EffectRegistry()
    for name in ("lipstick", "hair_color", "eyewear", "mask_overlay"):
        spec = registry.spec(name)
        assert validate(read_manifest(spec.manifest), printed) == [], name


def _png(path: Path, width: int, height: int, color=(0, 0, 255, 255)) -> None:
    image = np.zeros((height, width, 4), np.uint8)
    image[...] = color  # BGRA
    cv2.imwrite(str(path), image)


def test_texture_and_asset_params_stay_inside_the_folder(tmp_path: Path) -> None:
    manifest = """
        name = "tex"
        shader = "fx.frag"
        [params.pattern]
        type = "texture"
        default = "img/red.png"
        [params.model]
        type = "asset"
        default = "model.bin"
    """
    folder = _effect(tmp_path, "tex", manifest, {"fx.frag": "void main() {}", "model.bin": "x"})
    (folder / "img").mkdir()
    _png(folder / "img" / "red.png", 4, 2)
    _png(folder / "green.png", 3, 3, (0, 255, 0, 128))
    _png(tmp_path / "outside.png", 2, 2)
    (folder / "link.png").symlink_to(tmp_path / "outside.png")
    effect = Effect(EffectSpec.load(folder))
    pixels = effect.textures()["pattern"]
    assert pixels.shape == (2, 4, 4) and tuple(pixels[0, 0]) == (255, 0, 0, 255)  # RGBA
    assert effect.spec.params["model"].path("model.bin") == (folder / "model.bin").resolve()
    effect.set(pattern="green.png")
    assert tuple(effect.textures()["pattern"][1, 1]) == (0, 255, 0, 128)
    for bad, message in [
        ("missing.png", "not found in .* nor as a path of its own"),
        ("fx.frag", "not an image"),
    ]:
        with pytest.raises(ParameterError, match=f"'tex'.*'pattern'.*{message}"):
            effect.set(pattern=bad)
    assert effect.params["pattern"] == "green.png"  # a refused value changes nothing
    # The application is trusted with its own files (a user's glasses model, say)...
    effect.set(pattern=str(tmp_path / "outside.png"))
    assert effect.params["pattern"] == (tmp_path / "outside.png").resolve().as_posix()
    assert effect.textures()["pattern"].shape == (2, 2, 4)
    # ...a manifest is not: its defaults never leave the effect folder.
    for bad, message in [
        ("../outside.png", "outside the effect folder"),
        (str(tmp_path / "outside.png"), "outside the effect folder"),
        ("link.png", "through a symlink"),
    ]:
        (folder / "effect.toml").write_text(manifest.replace("img/red.png", bad))
        with pytest.raises(EffectError, match=f"'pattern'.*{message}"):
            EffectSpec.load(folder)
    (folder / "effect.toml").write_text(manifest)
    effect.set(pattern="green.png")
    _png(folder / "huge.png", MAX_TEXTURE_SIZE + 1, 1)
    with pytest.raises(ParameterError, match="larger than 4096x4096"):
        effect.set(pattern="huge.png")
    # A decompression bomb: a 1 kB file whose header claims 60000x60000 (3.6 GP) is refused
    # from its header, before anything is decoded.
    bomb = bytearray((folder / "green.png").read_bytes())
    bomb[16:24] = (60000).to_bytes(4, "big") * 2
    (folder / "bomb.png").write_bytes(bytes(bomb))
    with pytest.raises(ParameterError, match=r"bomb\.png: 60000x60000 is larger than 4096x4096"):
        effect.set(pattern="bomb.png")
    jpeg = folder / "wide.jpg"
    cv2.imwrite(str(jpeg), np.zeros((2, MAX_TEXTURE_SIZE + 8, 3), np.uint8))
    with pytest.raises(ParameterError, match=rf"wide\.jpg: {MAX_TEXTURE_SIZE + 8}x2 is larger"):
        effect.set(pattern="wide.jpg")
    (folder / "img" / "red.png").unlink()
    with pytest.raises(EffectError, match=r"tex/effect.toml: .*'img/red.png' not found"):
        EffectSpec.load(folder)


def test_includes_cannot_leave_the_effect_or_shared_folders(tmp_path: Path) -> None:
    (tmp_path / "secret.glsl").write_text("float secret() { return 1.0; }\n")
    folder = tmp_path / "fx"
    folder.mkdir()
    main_file = folder / "main.frag"
    main_file.write_text('#include "../secret.glsl"\nvoid main() {}\n')
    with pytest.raises(EffectError, match=r"main.frag:1: include '../secret.glsl' must be"):
        compose_shader(main_file, [shaders_dir()])
    (folder / "link.glsl").symlink_to(tmp_path / "secret.glsl")
    main_file.write_text('#include "link.glsl"\nvoid main() {}\n')
    with pytest.raises(EffectError, match="include 'link.glsl' not found"):
        compose_shader(main_file, [shaders_dir()])


# --- discovery ------------------------------------------------------------------------------


def test_entry_points_name_effects_and_a_broken_one_is_isolated(tmp_path, monkeypatch) -> None:
    package = tmp_path / "site" / "fancy_fx"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (package / "effect.json").write_text(json.dumps({"name": "fancy", "shader": "fx.frag"}))
    (package / "fx.frag").write_text("void main() { arfx_out = arfx_source(); }\n")
    folder_only = _effect(
        tmp_path / "elsewhere",
        "plain",
        'name = "pathy"\nshader = "f.frag"\n',
        {"f.frag": "void main() {}"},
    )
    (tmp_path / "site" / "pathy_fx.py").write_text(f"FOLDER = {str(folder_only)!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    group = "arfx.effects"
    entries = [
        EntryPoint(name="fancy", value="fancy_fx", group=group),
        EntryPoint(name="pathy", value="pathy_fx:FOLDER", group=group),
        EntryPoint(name="ghost", value="no_such_module_xyz", group=group),
        EntryPoint(name="Bad-Name", value="fancy_fx", group=group),
    ]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: entries)
    registry = EffectRegistry(use_env=False)
    assert {"fancy", "pathy", "lipstick"} <= set(registry.names())
    assert "Bad-Name" not in registry.names() and "ghost" not in registry.names()
    assert registry.spec("fancy").folder == package.resolve()
    assert registry.spec("pathy").folder == folder_only.resolve()
    with pytest.raises(EffectError, match="entry point 'ghost'.*no_such_module_xyz"):
        registry.spec("ghost")
    assert "ghost" in registry.broken
    # The entry-point name must be the manifest's name.
    entries.append(EntryPoint(name="other", value="fancy_fx", group=group))
    with pytest.raises(EffectError, match="name 'fancy' differs.*'other'"):
        EffectRegistry(use_env=False).spec("other")
    # Folders on ARFX_EFFECT_PATH and effect_paths shadow installed packages.
    _effect(tmp_path / "user", "fancy", 'name = "fancy"\nshader = "f.frag"\n', {"f.frag": ""})
    shadowed = EffectRegistry([tmp_path / "user"], use_env=False)
    assert shadowed.folder("fancy") == tmp_path / "user" / "fancy"
    assert "fancy_fx" not in sys.modules


def test_effects_command_lists_inputs_and_reports_broken_effects(tmp_path, capsys) -> None:
    _effect(
        tmp_path, "glow", 'name = "glow"\nshader = "f.frag"\nlandmarks = true\n', {"f.frag": ""}
    )
    assert main(["effects", "--effect-path", str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "glow 0.0.0" in out and "inputs: landmarks; passes: fragment" in out
    assert "lipstick" in out and "opacity: float [0, 1] = 0.85" in out
    _effect(tmp_path, "broken", 'name = "broken"\nshader = \n', {})
    assert main(["effects", "--effect-path", str(tmp_path), "--json"]) == EXIT_FAILED
    captured = capsys.readouterr()
    listing = json.loads(captured.out)
    assert listing["glow"]["landmarks"] is True and "broken" not in listing
    assert listing["glow"]["passes"] == [{"shader": "f.frag"}]
    mesh_pass = listing["eyewear"]["passes"][0]
    assert mesh_pass["mesh"] == "model" and mesh_pass["vertex"] == "eyewear.vert"
    assert mesh_pass["when"] == {"mode": "3d"}
    assert listing["hair_color"]["passes"][1]["cover"] == {"mask": "hair", "above": 0.1}
    for name in ("lipstick", "hair_color", "eyewear", "mask_overlay"):
        assert listing[name]["params"], name  # every built-in effect, with its parameters
    assert "broken/effect.toml:2: invalid TOML" in captured.err


# --- shared GLSL ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compositor():
    with Compositor() as comp:
        yield comp


def _run_glsl(ctx: moderngl.Context, tmp_path: Path, expression: str, values: np.ndarray):
    """Evaluate ``expression`` (of ``v``, a vec4 per input row) with every shared include."""
    shader = tmp_path / "probe.frag"
    shader.write_text(
        '#include "color.glsl"\n#include "blend.glsl"\n#include "noise.glsl"\n'
        '#include "mask.glsl"\n'
        "uniform sampler2D u_in;\nout vec4 result;\n"
        "void main() {\n    vec4 v = texelFetch(u_in, ivec2(gl_FragCoord.xy), 0);\n"
        f"    result = {expression};\n}}\n"
    )
    source = compose_shader(shader, [shaders_dir()])
    program = ctx.program(
        vertex_shader="#version 330 core\nvoid main() { vec2 c = vec2(float((gl_VertexID << 1) "
        "& 2), float(gl_VertexID & 2)); gl_Position = vec4(c * 2.0 - 1.0, 0.0, 1.0); }",
        fragment_shader=source.text,
    )
    data = np.zeros((len(values), 4), np.float32)
    data[:, : values.shape[1]] = values
    src = ctx.texture((len(values), 1), 4, data.tobytes(), dtype="f4")
    src.filter = (moderngl.NEAREST, moderngl.NEAREST)
    dst = ctx.texture((len(values), 1), 4, dtype="f4")
    fbo = ctx.framebuffer(color_attachments=[dst])
    fbo.use()
    src.use(0)
    if "u_in" in program:
        program["u_in"].value = 0
    ctx.vertex_array(program, []).render(moderngl.TRIANGLES, vertices=3)
    out = np.frombuffer(fbo.read(components=4, dtype="f4"), np.float32).reshape(-1, 4).copy()
    for thing in (fbo, dst, src, program):
        thing.release()
    return out


def test_shared_glsl_compiles_and_matches_reference_maths(compositor, tmp_path) -> None:
    ctx = compositor.ctx
    rng = np.random.default_rng(1)
    rgb = np.vstack([rng.random((200, 3)), np.eye(3), [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]]])
    with ctx:
        lab = _run_glsl(ctx, tmp_path, "vec4(srgb_to_lab(v.rgb), 0.0)", rgb)[:, :3]
        reference = skimage.color.rgb2lab(rgb.reshape(-1, 1, 3)).reshape(-1, 3)
        assert np.abs(lab - reference).max() < 0.05
        back = _run_glsl(ctx, tmp_path, "vec4(lab_to_srgb(srgb_to_lab(v.rgb)), 0.0)", rgb)
        assert np.abs(back[:, :3] - rgb).max() < 1e-3
        hsl = _run_glsl(ctx, tmp_path, "vec4(rgb_to_hsl(v.rgb), 0.0)", rgb)[:, :3]
        for got, colour in zip(hsl, rgb, strict=True):
            h, lightness, s = colorsys.rgb_to_hls(*colour)
            assert abs(got[1] - s) < 1e-4 and abs(got[2] - lightness) < 1e-4
            assert min(abs(got[0] - h), 1 - abs(got[0] - h)) < 1e-4 or s < 1e-6
        back = _run_glsl(ctx, tmp_path, "vec4(hsl_to_rgb(rgb_to_hsl(v.rgb)), 0.0)", rgb)
        assert np.abs(back[:, :3] - rgb).max() < 1e-4
        # Blend modes against the W3C formulas: the backdrop in v.r, the layer in v.g.
        pairs = rng.random((300, 2))
        b, s = pairs[:, 0], pairs[:, 1]
        d = np.where(b <= 0.25, ((16 * b - 12) * b + 4) * b, np.sqrt(b))
        expected = {
            "blend_multiply": b * s,
            "blend_screen": b + s - b * s,
            "blend_overlay": np.where(b <= 0.5, 2 * b * s, 1 - 2 * (1 - b) * (1 - s)),
            "blend_soft_light": np.where(
                s <= 0.5, b - (1 - 2 * s) * b * (1 - b), b + (2 * s - 1) * (d - b)
            ),
        }
        for name, want in expected.items():
            got = _run_glsl(ctx, tmp_path, f"vec4({name}(vec3(v.r), vec3(v.g)), 0.0)", pairs)
            assert np.abs(got[:, 0] - want).max() < 1e-5, name
        # Noise: deterministic, in range, not constant.
        points = rng.random((400, 2)) * 40 - 20
        noise = "vec4(arfx_value_noise(v.xy), arfx_gradient_noise(v.xy), "
        noise += "arfx_hash(ivec2(floor(v.xy))), arfx_sparkle(v.xy * 3.0, 0.3, 0.4))"
        first = _run_glsl(ctx, tmp_path, noise, points)
        again = _run_glsl(ctx, tmp_path, noise, points)
    assert np.array_equal(first, again)
    value, gradient, hashed, sparkle = first.T
    assert value.min() >= 0 and value.max() <= 1 and value.std() > 0.1
    assert gradient.min() >= -1.0001 and gradient.max() <= 1.0001 and gradient.std() > 0.1
    assert hashed.min() >= 0 and hashed.max() < 1 and abs(hashed.mean() - 0.5) < 0.08
    assert sparkle.min() >= 0 and sparkle.max() <= 1 and 0.02 < (sparkle > 0).mean() < 0.9


# --- the compositor: passes, landmarks, pose ------------------------------------------------


def _fake_face(landmarks: np.ndarray, pose: HeadPose) -> Face:
    x0, y0 = landmarks[:, :2].min(0)
    x1, y1 = landmarks[:, :2].max(0)
    return Face(id=0, landmarks=landmarks, box=(x0, y0, x1, y1), pose=pose)


def test_passes_chain_and_read_the_effect_input(compositor, tmp_path) -> None:
    folder = _effect(
        tmp_path,
        "two",
        'name = "two"\npasses = ["invert.frag", "mix.frag"]\n',
        {
            "invert.frag": "void main() { arfx_out = vec4(1.0 - arfx_source().rgb, 1.0); }",
            "mix.frag": """
                void main() {
                    arfx_out = vec4(arfx_source().r, arfx_input().r, float(u_pass) / 4.0, 1.0);
                }
            """,
        },
    )
    effect = Effect(EffectSpec.load(folder))
    image = np.random.default_rng(2).integers(0, 256, (40, 60, 3), np.uint8)
    frame = FrameContext(image=image, faces=[], masks={})
    out = compositor.render(frame, [(effect, {})])
    assert np.array_equal(out[..., 0], 255 - image[..., 0])
    assert np.array_equal(out[..., 1], image[..., 0])
    assert np.all(np.abs(out[..., 2].astype(int) - 64) <= 1)
    # A second effect's u_input is the first effect's output.
    out2 = compositor.render(frame, [(effect, {}), (effect, {})])
    assert np.array_equal(out2[..., 1], out[..., 0])


def test_software_renderers_finish_each_pass_and_gpus_do_not() -> None:
    """A CPU renderer draws a pass only when the next one needs it, so the compositor waits
    for each pass without the GIL there; on a GPU that would stall the passes."""
    assert is_software_renderer("llvmpipe (LLVM 15.0.7, 256 bits)")
    assert is_software_renderer("softpipe")
    assert is_software_renderer("Google SwiftShader")
    assert not is_software_renderer("NVIDIA H200/PCIe/SSE2")
    assert not is_software_renderer("AMD Radeon RX 7900 XTX (radeonsi, navi31, LLVM 17.0.6)")


def test_landmarks_texture_and_pose_uniforms_reach_the_shader(compositor, tmp_path) -> None:
    """Face 1 of 2 (so rows and array indices are checked): a red dot where the shader finds
    landmark 123, a green one where it projects a head point; numpy says where they belong."""
    width, height = 320, 240
    rng = np.random.default_rng(3)
    faces = []
    for yaw in (-30.0, 25.0):
        landmarks = np.zeros((LANDMARKS, 3), np.float32)
        landmarks[:, 0] = rng.uniform(40, 280, LANDMARKS)
        landmarks[:, 1] = rng.uniform(40, 200, LANDMARKS)
        rotation = euler_to_rotation(yaw, -10.0, 8.0)
        faces.append(_fake_face(landmarks, HeadPose.from_rotation(rotation, [5, -8, 600.0])))
    shader = """
        void main() {
            vec2 px = arfx_pixel();
            vec2 mark = arfx_landmark(1, 123);
            vec2 head = arfx_head_to_pixel(1, vec3(30.0, 40.0, 10.0));
            arfx_out = vec4(distance(px, mark) < 1.0, distance(px, head) < 1.0, 0.0, 1.0);
        }
    """
    manifest = 'name = "probe"\nshader = "fx.frag"\nlandmarks = true\npose = true\n'
    effect = Effect(EffectSpec.load(_effect(tmp_path, "probe", manifest, {"fx.frag": shader})))
    camera = camera_matrix((width, height), 400.0)
    frame = FrameContext(np.zeros((height, width, 3), np.uint8), faces, {}, camera=camera)
    out = compositor.render(frame, [(effect, {})])
    head = faces[1].pose.project(np.array([[30.0, 40.0, 10.0]]), camera)[0]
    for channel, expected in ((0, faces[1].landmarks[123, :2]), (1, head)):
        ys, xs = np.nonzero(out[..., channel])
        assert len(xs), f"channel {channel}: nothing drawn"
        assert np.abs(np.mean([xs, ys], axis=1) + 0.5 - expected).max() < 0.6


def test_face_count_is_a_compile_time_constant_of_each_frame(compositor, tmp_path) -> None:
    """ARFX_FACE_COUNT is the frame's face count as a constant (a `const int` accepts it, so
    loops over faces unroll): each count gets its own compiled pass, kept for later frames;
    a source composed without a count falls back to the u_face_count uniform."""
    shader = """
        const int COUNT = ARFX_FACE_COUNT;
        void main() {
            int boxes = 0;
            for (int i = 0; i < ARFX_FACE_COUNT; ++i) boxes += int(u_face_box[i].x == 10.0 * i);
            arfx_out = vec4(float(COUNT) / 8.0, float(u_face_count) / 8.0, float(boxes) / 8.0, 1.0);
        }
    """
    folder = _effect(tmp_path, "count", 'name = "count"\nshader = "fx.frag"\n', {"fx.frag": shader})
    effect = Effect(EffectSpec.load(folder))
    image = np.zeros((24, 32, 3), np.uint8)
    landmarks = np.zeros((LANDMARKS, 3), np.float32)
    faces = [Face(i, landmarks, (10.0 * i, 0, 20, 20), None) for i in range(3)]
    objects = []
    for count in (1, 0, 3, 2, 1, 3, 0):
        out = compositor.render(FrameContext(image, faces[:count], {}), [(effect, {})])
        assert np.abs(out.astype(float) - 255 * count / 8).max() <= 1, count
        objects.append(compositor.gl_objects())
    assert objects[3] > objects[0] and objects[3:] == [objects[3]] * 4  # one compile per count
    generic = effect.spec.pass_sources()[0].text
    assert "#define ARFX_FACE_COUNT u_face_count" in generic
    vertex = "#version 330 core\nvoid main() { gl_Position = vec4(0.0); }\n"
    with pytest.raises(moderngl.Error):  # the fallback is a uniform, not a constant
        compositor.ctx.program(vertex_shader=vertex, fragment_shader=generic)
    compositor.forget(effect)


def test_mask_here_is_the_mask_at_the_pixel(compositor, tmp_path) -> None:
    """arfx_mask_here(mask) reads what arfx_mask(mask, arfx_pixel()) filters, exactly; an
    optional mask the frame lacks reads zero there too (its stand-in is frame-sized)."""
    shader = """
        #include "mask.glsl"
        uniform sampler2D u_mask_lips;
        uniform sampler2D u_mask_hands;
        void main() {
            float filtered = arfx_mask(u_mask_lips, arfx_pixel());
            float here = arfx_mask_here(u_mask_lips);
            arfx_out = vec4(filtered, here, arfx_mask_here(u_mask_hands), 1.0);
        }
    """
    manifest = 'name = "here"\nshader = "fx.frag"\nmasks = ["lips"]\noptional_masks = ["hands"]\n'
    effect = Effect(EffectSpec.load(_effect(tmp_path, "here", manifest, {"fx.frag": shader})))
    lips = np.random.default_rng(5).integers(0, 256, (37, 53), np.uint8)
    frame = FrameContext(np.zeros((37, 53, 3), np.uint8), [], {"lips": lips})
    out = compositor.render(frame, [(effect, {})])
    assert np.array_equal(out[..., 0], lips) and np.array_equal(out[..., 1], lips)
    assert not out[..., 2].any()


def test_undeclared_landmarks_fail_with_a_hint_naming_the_manifest(compositor, tmp_path) -> None:
    shader = "void main() {\n    arfx_out = vec4(arfx_landmark(0, 1), 0.0, 1.0);\n}\n"
    folder = _effect(
        tmp_path, "sneaky", 'name = "sneaky"\nshader = "fx.frag"\n', {"fx.frag": shader}
    )
    with pytest.raises(EffectError, match=r"(?s)sneaky/fx.frag:2.*effect.toml must declare landm"):
        compositor.prepare(Effect(EffectSpec.load(folder)))


def test_texture_params_are_bound_as_samplers(compositor, tmp_path) -> None:
    manifest = 'name = "tex"\nshader = "fx.frag"\n[params.pattern]\ntype = "texture"\n'
    manifest += 'default = "a.png"\n'
    shader = (
        "uniform sampler2D u_pattern;\nvoid main() { arfx_out = texture(u_pattern, arfx_uv()); }"
    )
    folder = _effect(tmp_path, "tex", manifest, {"fx.frag": shader})
    _png(folder / "a.png", 8, 8, (0, 0, 255, 255))
    _png(folder / "b.png", 8, 8, (255, 0, 0, 255))
    effect = Effect(EffectSpec.load(folder))
    frame = FrameContext(np.zeros((16, 16, 3), np.uint8), [], {})
    assert np.all(compositor.render(frame, [(effect, {})]) == [255, 0, 0])
    effect.set(pattern="b.png")
    assert np.all(compositor.render(frame, [(effect, {})]) == [0, 0, 255])


def test_a_failing_effect_is_dropped_from_the_frame(compositor, tmp_path) -> None:
    invert = "void main() { arfx_out = vec4(1.0 - arfx_source().rgb, 1.0); }"
    folder = _effect(tmp_path, "inv", 'name = "inv"\nshader = "f.frag"\n', {"f.frag": invert})
    effect = Effect(EffectSpec.load(folder))
    image = np.random.default_rng(4).integers(0, 256, (8, 8, 3), np.uint8)
    frame = FrameContext(image, [], {})
    failures: list[str] = []
    passes = [
        (effect, {"u_frame": 999}),  # a sampler unit GL refuses: GL_INVALID_VALUE
        (effect, {}),
        (effect, {"u_frame": "not a number"}),  # moderngl raises
    ]
    out = compositor.render(frame, passes, on_failure=lambda e, exc: failures.append(str(exc)))
    assert np.array_equal(out, 255 - image)  # only the good pass drew
    assert "f.frag: OpenGL error GL_INVALID_VALUE in pass 1" in failures[0]
    assert "'inv': rendering failed" in failures[1] and len(failures) == 2
    with pytest.raises(EffectError, match="OpenGL error"):
        compositor.render(frame, passes[:1])
    assert np.array_equal(compositor.render(frame, passes[1:2]), 255 - image)  # GL state is fine


# --- sessions: fault isolation and hot reload -----------------------------------------------


def test_a_broken_plugin_is_skipped_when_asked(tmp_path: Path, image_path) -> None:
    _effect(
        tmp_path,
        "broken",
        'name = "broken"\nshader = "fx.frag"\n',
        {"fx.frag": "void main() {\n    arfx_out = vec4(nope);\n}\n"},
    )
    _effect(tmp_path, "nomani", 'name = "nomani"\nshader = \n', {})
    _effect(
        tmp_path,
        "hooked",
        'name = "hooked"\nshader = "fx.frag"\nhooks = "hooks.py"\n',
        {
            "fx.frag": FILL,
            "hooks.py": "def uniforms(frame, params):\n    return {'u_color': 'x'}\n",
        },
    )
    options = arfx.SessionOptions(static_images=True, effect_paths=(tmp_path,))
    with pytest.raises(EffectError, match=r"broken/fx.frag:2"):
        arfx.Session(["broken", "lipstick"], options)
    skipping = arfx.SessionOptions(
        static_images=True, effect_paths=(tmp_path,), skip_broken_effects=True
    )
    with pytest.raises(EffectError, match="unknown effect 'nothere'"):  # still the caller's error
        arfx.Session(["nothere"], skipping)
    image = _rgb(image_path("obama.jpg"))
    with arfx.Session(["broken", "nomani", "hooked", "lipstick"], skipping) as session:
        assert [e.name for e in session.effects] == ["hooked", "lipstick"]
        assert set(session.effect_errors) == {"broken", "nomani"}
        assert "broken/fx.frag:2" in session.effect_errors["broken"]
        assert "nomani/effect.toml:2: invalid TOML" in session.effect_errors["nomani"]
        out = session.process(image)  # hooked's uniform cannot be set: skipped, frame comes out
        assert session.effect_failures == {"hooked": 1}
        lips_only = arfx.Session(["lipstick"], arfx.SessionOptions(static_images=True))
        with lips_only:
            assert np.array_equal(out, lips_only.process(image))


def test_hot_reload_switches_shaders_and_keeps_the_last_good_one(tmp_path, image_path) -> None:
    folder = _effect(
        tmp_path,
        "fill",
        'name = "fill"\nshader = "fx.frag"\n[params.color]\ntype = "color"\ndefault = "#ff0000"\n',
        {"fx.frag": '#include "part.glsl"\n' + FILL, "part.glsl": "// nothing yet\n"},
    )
    image = _rgb(image_path("obama.jpg"))
    options = arfx.SessionOptions(static_images=True, effect_paths=(tmp_path,))
    with arfx.Session(["fill:color=#ff8000"], options) as session:
        face = session.analyze(image)[0]
        x, y = (int(v) for v in face.center)
        assert tuple(session.process(image)[y, x]) == (255, 128, 0)
        assert session.reload_effects() == []  # nothing changed
        _write(
            folder / "fx.frag",
            '#include "part.glsl"\n' + FILL.replace("u_color, 1.0", "u_color.bgr, 1.0"),
        )
        assert session.reload_effects() == ["fill"]
        assert session.effect("fill").params["color"] == "#ff8000"  # values survive a reload
        assert tuple(session.process(image)[y, x]) == (0, 128, 255)
        _write(folder / "part.glsl", "float broken() { return nope; }\n")  # breaks
        assert session.reload_effects() == []
        assert "part.glsl:1" in session.effect_errors["fill"]
        assert tuple(session.process(image)[y, x]) == (0, 128, 255)  # the old program goes on
        assert session.reload_effects() == []  # reported once, not every second
        _write(folder / "part.glsl", "// fixed\n")
        _write(folder / "hooks.py", "def uniforms(frame, params):\n    return {}\n")
        _write(
            folder / "effect.toml",
            'name = "fill"\nshader = "fx.frag"\nhooks = "hooks.py"\n'
            '[params.color]\ntype = "color"\ndefault = "#ff0000"\n'
            '[params.gain]\ntype = "float"\ndefault = 1.0\n',
        )
        assert session.reload_effects() == ["fill"] and session.effect_errors == {}
        assert set(session.effect("fill").params) == {"color", "gain"}
        assert tuple(session.process(image)[y, x]) == (0, 128, 255)
        hook = "def uniforms(frame, params):\n    return {'u_color': (0.0, 1.0, 0.0)}\n"
        _write(folder / "hooks.py", hook)  # a changed hook is reloaded too
        assert session.reload_effects() == ["fill"]
        assert tuple(session.process(image)[y, x]) == (0, 255, 0)


def test_webcam_watch_runs(tmp_path: Path, video_path) -> None:
    out = tmp_path / "live.mp4"
    args = ["webcam", "--camera", str(video_path("single_face.mp4")), "--no-preview"]
    args += ["--record", str(out), "--frames", "10", "--watch"]
    result = subprocess.run(
        [sys.executable, "-m", "arfx", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert "10 frames" in result.stderr


# --- the example package, installed as a user installs it -----------------------------------

_BLUSH_CHECK = """
import json, sys
import cv2, numpy as np
import arfx

image = cv2.cvtColor(cv2.imread(sys.argv[1]), cv2.COLOR_BGR2RGB)
with arfx.Session(["blush:intensity=0.8"], arfx.SessionOptions(static_images=True)) as session:
    out = session.process(image)
    face = session.analyze(image)[0]
    print(json.dumps({"origin": session.registry.origins["blush"],
                      "folder": str(session.effect("blush").spec.folder)}))
points = face.landmarks[:, :2]
width = float(np.linalg.norm(points[234] - points[454]))
radius = width / 6.0
ys, xs = np.mgrid[: image.shape[0], : image.shape[1]] + 0.5
near = np.zeros(image.shape[:2], bool)
far = np.ones(image.shape[:2], bool)
for low, high in ((50, 117), (280, 346)):
    centre = points[low] + 0.3 * (points[high] - points[low])
    distance = np.hypot(xs - centre[0], ys - centre[1])
    near |= distance < radius / 3
    far &= distance > radius + 2
change = np.abs(out.astype(int) - image.astype(int)).sum(2)
print(json.dumps({"near_changed": float((change[near] > 3).mean()),
                  "far_identical": bool(np.array_equal(out[far], image[far])),
                  "redder": float((out[near][:, 0].astype(int) - out[near][:, 1]).mean()
                                  - (image[near][:, 0].astype(int) - image[near][:, 1]).mean())}))
"""


def test_example_package_installs_and_renders_by_name(tmp_path: Path, image_path) -> None:
    photo = image_path("obama.jpg")
    # A throwaway venv that sees this one's packages (arfx, setuptools, pip) through a .pth
    # file: `venv --system-site-packages` would see the base interpreter's, not this venv's.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    inherited = sysconfig.get_paths()["purelib"]
    Path(site, "inherit_main_venv.pth").write_text(f"import site; site.addsitedir({inherited!r})\n")
    source = tmp_path / "custom_effect"  # built from a copy: the build leaves files behind
    subprocess.run(["cp", "-r", str(EXAMPLE), str(source)], check=True)
    # Offline when this venv has the build backend; otherwise pip fetches hatchling from PyPI.
    offline = importlib.util.find_spec("hatchling") is not None
    install = [str(python), "-m", "pip", "install", "--no-deps", "-q"]
    install += ["--no-build-isolation"] if offline else []
    result = subprocess.run([*install, str(source)], capture_output=True, text=True, timeout=300)
    if result.returncode != 0 and not offline and "hatchling" in result.stderr:
        require_tool(f"cannot fetch the build backend hatchling: {result.stderr[-500:]}")
    assert result.returncode == 0, result.stdout + result.stderr

    listing = subprocess.run(
        [str(python), "-m", "arfx", "effects"], capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    assert "blush 1.0.0" in listing.stdout and "from: package arfx-blush" in listing.stdout
    assert "intensity: float [0, 1] = 0.6" in listing.stdout

    check = tmp_path / "check.py"
    check.write_text(_BLUSH_CHECK)
    result = subprocess.run(
        [str(python), str(check), str(photo)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    where, numbers = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    assert where["origin"] == "package arfx-blush" and str(venv) in where["folder"]
    assert numbers["far_identical"]
    assert numbers["near_changed"] > 0.9 and numbers["redder"] > 3
    # Not visible to this (the main) environment.
    assert "blush" not in EffectRegistry(use_env=False).names()


def test_hook_arrays_of_any_numeric_type_reach_the_shader(compositor, tmp_path) -> None:
    """A hook returning float64 or int64 arrays (numpy's defaults) must not upload garbage."""
    shader = """
        uniform float u_values[2];
        uniform int u_counts[2];
        void main() { arfx_out = vec4(u_values[0], u_values[1], float(u_counts[1]) / 255.0, 1.0); }
    """
    folder = _effect(tmp_path, "typed", 'name = "typed"\nshader = "fx.frag"\n', {"fx.frag": shader})
    effect = Effect(EffectSpec.load(folder))
    image = np.zeros((4, 4, 3), np.uint8)
    frame = FrameContext(image=image, faces=[], masks={})
    uniforms = {"u_values": np.array([0.25, 0.5]), "u_counts": np.array([3, 128])}
    out = compositor.render(frame, [(effect, uniforms)])
    assert tuple(out[0, 0]) == (64, 128, 128)


def test_too_many_passes_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    (folder / "a.frag").write_text("void main() { arfx_out = vec4(1.0); }\n")
    manifest = {"name": "many", "passes": ["a.frag"] * (MAX_PASSES + 1)}
    (folder / "effect.json").write_text(json.dumps(manifest))
    message = rf"effect\.json:1: passes: has {MAX_PASSES + 1} entries; at most {MAX_PASSES} allowed"
    with pytest.raises(EffectError, match=message):
        EffectSpec.load(folder)
