"""A small JSON Schema checker for effect manifests, and where in the file a problem is.

Manifests come from effect packages arfx does not control, so their structure is checked
against a schema (``arfx.effect.MANIFEST_SCHEMA``, printed by ``arfx effects --schema`` for
editors) before anything reads them. This implements the part of JSON Schema (draft
2020-12) those schemas use, with no dependency: ``type``, ``enum``, ``pattern``,
``minLength``, ``minimum``, ``maximum``, ``exclusiveMinimum``, ``properties``,
``required``, ``additionalProperties``, ``propertyNames``, ``items``, ``minItems``,
``maxItems`` and ``if``/``then``/``else``. Unknown keywords (such as ``description``) are
ignored, as the standard says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]
"""Where a value sits in a document: keys and list indices from the top."""

_TYPE_NAMES = {
    "object": "a table (object)",
    "array": "a list",
    "string": "a string",
    "boolean": "true or false",
    "number": "a number",
    "integer": "an integer",
}


@dataclass(frozen=True)
class SchemaError:
    """One problem: where (``path``) and what (``message``)."""

    path: Path
    message: str

    def where(self) -> str:
        """The path as ``params.color.min`` / ``passes[0].shader`` (``manifest`` at the top)."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "manifest"

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}" if self.path else self.message


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, Mapping)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    raise ValueError(f"unsupported schema type {name!r}")


def validate(value: Any, schema: Mapping[str, Any], path: Path = ()) -> list[SchemaError]:
    """Every way ``value`` breaks ``schema`` (empty: it conforms), outermost first."""
    errors: list[SchemaError] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, name) for name in names):
            wanted = " or ".join(_TYPE_NAMES[name] for name in names)
            return [SchemaError(path, f"expected {wanted}, got {value!r}")]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(SchemaError(path, f"must be one of {list(schema['enum'])}, got {value!r}"))
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(SchemaError(path, "must not be empty"))
        pattern = schema.get("pattern")
        if pattern is not None and not re.search(pattern, value):
            errors.append(SchemaError(path, f"must match {pattern}, got {value!r}"))
    if _is_type(value, "number") and "minimum" in schema and value < schema["minimum"]:
        errors.append(SchemaError(path, f"must be at least {schema['minimum']}, got {value}"))
    if _is_type(value, "number") and "maximum" in schema and value > schema["maximum"]:
        errors.append(SchemaError(path, f"must be at most {schema['maximum']}, got {value}"))
    if _is_type(value, "number") and "exclusiveMinimum" in schema:
        if not value > schema["exclusiveMinimum"]:
            errors.append(
                SchemaError(path, f"must be greater than {schema['exclusiveMinimum']}, got {value}")
            )
    if isinstance(value, Mapping):
        errors += _check_object(value, schema, path)
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            least = schema["minItems"]
            errors.append(
                SchemaError(path, f"must have at least {least} entr{'y' if least == 1 else 'ies'}")
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(
                SchemaError(path, f"has {len(value)} entries; at most {schema['maxItems']} allowed")
            )
        if "items" in schema:
            for index, item in enumerate(value):
                errors += validate(item, schema["items"], (*path, index))
    if "if" in schema:
        branch = (
            schema.get("then") if not validate(value, schema["if"], path) else schema.get("else")
        )
        if branch is not None:
            errors += validate(value, branch, path)
    return errors


def _check_object(
    value: Mapping[str, Any], schema: Mapping[str, Any], path: Path
) -> list[SchemaError]:
    errors = []
    missing = [key for key in schema.get("required", ()) if key not in value]
    if missing:
        errors.append(SchemaError(path, f"missing {', '.join(repr(k) for k in missing)}"))
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    if extra is False:
        known = ", ".join(sorted(properties))
        errors += [
            SchemaError((*path, key), f"unknown key (known: {known})")
            for key in value
            if key not in properties
        ]
    names = schema.get("propertyNames")
    if names is not None:
        for key in value:
            errors += [
                SchemaError((*path, key), f"bad name: {e.message}") for e in validate(key, names)
            ]
    for key, item in value.items():
        if key in properties:
            errors += validate(item, properties[key], (*path, key))
        elif isinstance(extra, Mapping):
            errors += validate(item, extra, (*path, key))
    return errors


def line_of(text: str, path: Path) -> int | None:
    """The 1-based line of a TOML or JSON document where ``path``'s last key is written, or
    the nearest key before it that is (None if not even the first is): each key is searched
    for from the line of the one before, as a ``key =``/``"key":`` line or a ``[table.key]``
    header."""
    lines = text.splitlines()
    start, found = 0, None
    for part in path:
        if isinstance(part, int):
            continue
        key = re.escape(part)
        pattern = re.compile(
            rf'(^|[\s{{,\[."]){key}"?\s*[=:]|^\s*\[+\s*(?:[^\]]*[."\s])?"?{key}"?\s*[.\]]'
        )
        for number in range(start, len(lines)):
            if pattern.search(lines[number]):
                start, found = number, number + 1
                break
        else:
            return found
    return found
