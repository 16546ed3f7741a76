"""The small JSON Schema checker manifests go through, on known documents."""

from __future__ import annotations

from arfx.schema import line_of, validate

PASS = {
    "type": ["string", "object"],
    "if": {"required": ["mesh"]},
    "then": {
        "required": ["mesh", "vertex"],
        "additionalProperties": False,
        "properties": {"mesh": {}, "vertex": {}},
    },
    "else": {"required": ["shader"]},
}
SCHEMA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z]+$"},
        "step": {"type": "number", "exclusiveMinimum": 0},
        "count": {"type": "integer"},
        "passes": {"type": "array", "minItems": 1, "maxItems": 2, "items": PASS},
        "params": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z_]+$"},
            "additionalProperties": {"type": "object", "required": ["type"]},
        },
        "mode": {"enum": ["a", "b"]},
    },
}


def messages(document) -> list[str]:
    return [str(error) for error in validate(document, SCHEMA)]


def test_a_conforming_document_has_no_errors() -> None:
    document = {
        "name": "ok",
        "step": 0.5,
        "count": 3,
        "passes": ["a.frag", {"shader": "b.frag"}],
        "params": {"tint_color": {"type": "color"}},
        "mode": "b",
    }
    assert messages(document) == []


def test_each_keyword_reports_where_and_what() -> None:
    assert messages([]) == ["expected a table (object), got []"]
    assert messages({}) == ["missing 'name'"]
    assert messages({"name": "Bad"}) == ["name: must match ^[a-z]+$, got 'Bad'"]
    assert messages({"name": "x", "extra": 1})[0].startswith("extra: unknown key (known: ")
    assert messages({"name": "x", "step": 0}) == ["step: must be greater than 0, got 0"]
    assert messages({"name": "x", "step": True}) == ["step: expected a number, got True"]
    assert messages({"name": "x", "count": 1.5}) == ["count: expected an integer, got 1.5"]
    assert messages({"name": "x", "mode": "c"}) == ["mode: must be one of ['a', 'b'], got 'c'"]
    assert messages({"name": "x", "passes": []}) == ["passes: must have at least 1 entry"]
    assert messages({"name": "x", "passes": ["a"] * 3}) == [
        "passes: has 3 entries; at most 2 allowed"
    ]
    assert messages({"name": "x", "passes": [1]}) == [
        "passes[0]: expected a string or a table (object), got 1"
    ]
    assert messages({"name": "x", "params": {"Bad-Name": {"type": "int"}}}) == [
        "params.Bad-Name: bad name: must match ^[a-z_]+$, got 'Bad-Name'"
    ]
    assert messages({"name": "x", "params": {"a": {}}}) == ["params.a: missing 'type'"]


def test_if_then_else_picks_the_branch() -> None:
    assert messages({"name": "x", "passes": [{"mesh": "m.glb"}]}) == ["passes[0]: missing 'vertex'"]
    assert messages({"name": "x", "passes": [{"mesh": "m", "vertex": "v", "z": 1}]}) == [
        "passes[0].z: unknown key (known: mesh, vertex)"
    ]
    assert messages({"name": "x", "passes": [{"when": {}}]}) == ["passes[0]: missing 'shader'"]


def test_line_of_finds_keys_in_toml_and_json() -> None:
    toml = 'name = "x"\nshader = "a.frag"\n\n[params.strength]\ntype = "float"\nmax = 2\n'
    assert line_of(toml, ("name",)) == 1
    assert line_of(toml, ("params", "strength")) == 4
    assert line_of(toml, ("params", "strength", "max")) == 6
    assert line_of(toml, ("params", "other", "max")) == 4  # the nearest key that is there
    assert line_of(toml, ("absent",)) is None
    json_text = '{\n  "name": "x",\n  "passes": [\n    {"shader": "a", "when": {}}\n  ]\n}\n'
    assert line_of(json_text, ("passes", 0, "when")) == 4
    assert line_of(json_text, ("passes",)) == 3
