"""Effect plugins: typed parameters, manifests, shader composition, the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arfx.effect import Effect, EffectSpec, compose_shader
from arfx.errors import EffectError, ParameterError
from arfx.params import ParamSpec, parse_color
from arfx.registry import EffectRegistry, parse_effect_spec
from arfx.resources import builtin_effects_dir, shaders_dir


def test_colour_strings_parse_to_canonical_hex() -> None:
    assert parse_color("#A3122F") == "#a3122f"
    assert parse_color("a3122f") == "#a3122f"
    assert parse_color("#f00") == "#ff0000"
    assert parse_color("crimson") == "#a3122f"
    assert parse_color((1.0, 0.0, 0.5)) == "#ff0080"
    for bad in ("#12345", "#ggg000", "reddish", (2.0, 0, 0), 5):
        with pytest.raises(ValueError):
            parse_color(bad)


def test_param_validation_converts_strings_and_enforces_ranges() -> None:
    spec = ParamSpec.from_manifest(
        "fx", "opacity", {"type": "float", "default": 0.5, "min": 0, "max": 1}
    )
    assert spec.validate("0.25") == 0.25
    with pytest.raises(ParameterError, match="'opacity'.*above the maximum 1"):
        spec.validate(1.5)
    with pytest.raises(ParameterError, match="finite"):
        spec.validate("nan")
    with pytest.raises(ParameterError, match="number"):
        spec.validate(True)
    count = ParamSpec.from_manifest("fx", "n", {"type": "int", "default": 2, "min": 1, "max": 4})
    assert count.validate("3") == 3
    with pytest.raises(ParameterError, match="integer"):
        count.validate(2.5)
    flag = ParamSpec.from_manifest("fx", "on", {"type": "bool", "default": "yes"})
    assert flag.default is True and flag.validate("off") is False
    mode = ParamSpec.from_manifest(
        "fx", "finish", {"type": "enum", "default": "matte", "choices": ["matte", "gloss"]}
    )
    assert mode.uniform("gloss") == 1
    with pytest.raises(ParameterError, match="one of"):
        mode.validate("satin")
    colour = ParamSpec.from_manifest("fx", "color", {"type": "color", "default": "#ff0000"})
    assert colour.uniform(colour.default) == (1.0, 0.0, 0.0)


def test_manifest_param_errors_name_effect_and_param() -> None:
    with pytest.raises(ParameterError, match="'fx'.*'opacity'.*below the minimum"):
        ParamSpec.from_manifest("fx", "opacity", {"type": "float", "default": -1, "min": 0})
    with pytest.raises(ParameterError, match="type: must be one of"):
        ParamSpec.from_manifest("fx", "x", {"type": "vector", "default": 0})
    with pytest.raises(ParameterError, match="maximum: unknown key"):
        ParamSpec.from_manifest("fx", "x", {"type": "float", "default": 0, "maximum": 1})


def test_builtin_lipstick_is_found_with_typed_params() -> None:
    registry = EffectRegistry(use_env=False)
    assert "lipstick" in registry.names()
    spec = registry.spec("lipstick")
    assert spec.masks == ("lips",)
    assert {"color", "opacity", "feather"} <= set(spec.params)
    effect = registry.create("lipstick", color="#112233", opacity="0.5")
    assert effect.params["color"] == "#112233" and effect.params["opacity"] == 0.5
    effect.set(feather=0.1)
    assert effect.params["feather"] == 0.1
    with pytest.raises(ParameterError, match="no parameter 'colour'.*color"):
        effect.set(colour="#fff")
    with pytest.raises(ParameterError, match="opacity"):
        effect.set(opacity=2)
    assert effect.params["opacity"] == 0.5  # a rejected change leaves the old value


def test_unknown_effect_lists_available_ones() -> None:
    with pytest.raises(EffectError, match="unknown effect 'lipstik'.*lipstick"):
        EffectRegistry(use_env=False).create("lipstik")


def test_effect_spec_strings() -> None:
    assert parse_effect_spec("lipstick") == ("lipstick", {})
    assert parse_effect_spec("lipstick:color=#a3122f, opacity=0.8") == (
        "lipstick",
        {"color": "#a3122f", "opacity": "0.8"},
    )
    with pytest.raises(ParameterError, match="key=value"):
        parse_effect_spec("lipstick:opacity")
    registry = EffectRegistry(use_env=False)
    effect = registry.resolve("lipstick:color=#00ff00,opacity=0.3")
    assert effect.params["color"] == "#00ff00"
    assert registry.resolve(("lipstick", {"opacity": 0.2})).params["opacity"] == 0.2


def _write_effect(root: Path, name: str, manifest: dict, shader: str = "void main() {}") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps(manifest))
    (folder / "fx.frag").write_text(shader)
    return folder


def test_user_effect_folders_are_discovered(tmp_path: Path, monkeypatch) -> None:
    _write_effect(tmp_path, "tint", {"name": "tint", "shader": "fx.frag"})
    monkeypatch.setenv("ARFX_EFFECT_PATH", str(tmp_path))
    assert "tint" in EffectRegistry().names()
    assert "tint" not in EffectRegistry(use_env=False).names()
    assert "tint" in EffectRegistry([tmp_path], use_env=False).names()


def test_bad_manifests_name_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "meta.json").write_text('{"name": "broken",\n "shader": }')
    with pytest.raises(EffectError, match=r"broken/meta.json:2: invalid JSON"):
        EffectSpec.load(folder)
    escape = _write_effect(tmp_path, "escape", {"name": "escape", "shader": "../x.frag"})
    (tmp_path / "x.frag").write_text("void main() {}")
    with pytest.raises(EffectError, match="outside the effect folder"):
        EffectSpec.load(escape)
    missing = _write_effect(tmp_path, "missing", {"name": "missing", "shader": "nope.frag"})
    with pytest.raises(EffectError, match="'nope.frag' not found"):
        EffectSpec.load(missing)
    odd = _write_effect(tmp_path, "odd", {"name": "odd", "shader": "fx.frag", "layers": 3})
    with pytest.raises(EffectError, match=r"odd/meta.json:1: layers: unknown key \(known: "):
        EffectSpec.load(odd)


def test_includes_expand_once_and_map_lines_back(tmp_path: Path) -> None:
    (tmp_path / "a.glsl").write_text('#include "b.glsl"\nfloat a() { return b(); }\n')
    (tmp_path / "b.glsl").write_text("float b() { return 1.0; }\n")
    main = tmp_path / "main.frag"
    main.write_text('#include "a.glsl"\n#include "b.glsl"\nvoid main() {}\n')
    source = compose_shader(main, [])
    assert source.text.count("float b()") == 1
    assert source.files == [
        main.resolve(),
        (tmp_path / "a.glsl").resolve(),
        (tmp_path / "b.glsl").resolve(),
    ]
    assert source.explain("0:3(5): error: x") == f"{main.resolve()}:3: error: x"
    a_line = 100_000 + 2  # a.glsl is file 1: its lines are offset by one stride
    assert source.explain(f"0:{a_line}(1): e") == f"{(tmp_path / 'a.glsl').resolve()}:2: e"
    assert source.explain(f"1({a_line}) : e") == f"{(tmp_path / 'a.glsl').resolve()}:2 : e"
    with pytest.raises(EffectError, match=r"main.frag:1: include 'zzz.glsl' not found"):
        main.write_text('#include "zzz.glsl"\n')
        compose_shader(main, [])


def test_shared_shaders_exist() -> None:
    for name in ("arfx.glsl", "color.glsl", "mask.glsl", "blend.glsl", "noise.glsl"):
        assert (shaders_dir() / name).is_file()
    assert (builtin_effects_dir() / "lipstick" / "effect.json").is_file()


def test_effect_repr_and_snapshot_is_a_copy() -> None:
    effect = Effect(EffectRegistry(use_env=False).spec("lipstick"))
    snapshot = effect.params
    snapshot["opacity"] = 0.0
    assert effect.params["opacity"] != 0.0
    assert "lipstick" in repr(effect)
