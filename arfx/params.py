"""Typed, ranged effect parameters: parsed from manifests, validated on every change.

A parameter value always has a canonical Python form (float, int, bool, "#rrggbb"
string, enum choice, or a file path relative to the effect folder) and a GLSL uniform form
(float, int, bool, vec3 in sRGB [0, 1], int index; a ``texture`` is bound as a sampler by
the compositor, an ``asset`` has none), so the CLI, the Python API and the shaders agree on
one meaning.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ParameterError
from .schema import validate as validate_schema

PARAM_TYPES = ("float", "int", "bool", "color", "enum", "texture", "asset")
FILE_TYPES = ("texture", "asset")
"""Parameter types whose value is a file inside the effect folder."""
PARAM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""A parameter becomes the GLSL uniform ``u_<name>``, so its name is an identifier."""

PARAM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One effect parameter: typed, defaulted, optionally ranged and labelled.",
    "required": ["type", "default"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": list(PARAM_TYPES)},
        "default": {"description": "the starting value, checked against type and range"},
        "min": {"type": "number"},
        "max": {"type": "number"},
        "step": {"type": "number", "exclusiveMinimum": 0},
        "choices": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "label": {"type": "string"},
        "description": {"type": "string"},
    },
    "if": {"properties": {"type": {"enum": ["enum"]}}},
    "then": {"required": ["choices"]},
}
"""The JSON Schema of one ``params`` entry (part of the manifest schema)."""

_NAMED_COLORS = {
    "black": "#000000",
    "white": "#ffffff",
    "red": "#d0021b",
    "crimson": "#a3122f",
    "pink": "#e75480",
    "nude": "#c8937a",
    "coral": "#f26b5b",
    "plum": "#6e2346",
    "brown": "#5b3a29",
    "blonde": "#d8b26e",
    "blue": "#2a5bd7",
}
_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def parse_color(value: Any) -> str:
    """Return ``value`` as a canonical ``#rrggbb`` string.

    Accepts ``#rgb``, ``#rrggbb`` (the ``#`` optional), a few names (``crimson``,
    ``nude``...) and an (r, g, b) sequence of floats in [0, 1].
    """
    if isinstance(value, str):
        text = _NAMED_COLORS.get(value.strip().lower(), value.strip())
        match = _HEX.match(text)
        if not match:
            raise ValueError(f"not a colour: {value!r} (use #rrggbb, #rgb or a name)")
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return "#" + digits.lower()
    if isinstance(value, (tuple, list)) and len(value) == 3:
        channels = [float(c) for c in value]
        if not all(0.0 <= c <= 1.0 for c in channels):
            raise ValueError(f"colour channels must be in [0, 1], got {value!r}")
        return "#" + "".join(f"{round(c * 255):02x}" for c in channels)
    raise ValueError(f"not a colour: {value!r}")


def color_to_rgb(color: str) -> tuple[float, float, float]:
    """``#rrggbb`` to sRGB floats in [0, 1]."""
    return tuple(int(color[i : i + 2], 16) / 255.0 for i in (1, 3, 5))  # type: ignore[return-value]


def inside_folder(folder: Path, relative: Any) -> Path:
    """The file ``relative`` names inside ``folder``, resolved; ValueError if it leaves it.

    Refuses absolute paths, ``..`` and symlinks that resolve outside the folder, so a
    manifest can only ever make arfx read files its own effect ships.
    """
    if not isinstance(relative, str) or not relative.strip():
        raise ValueError(f"expected a file name inside the effect folder, got {relative!r}")
    path = Path(relative)
    if path.is_absolute() or path.drive or ".." in path.parts or "\\" in relative:
        raise ValueError(
            f"{relative!r} points outside the effect folder (use a relative path without '..')"
        )
    root = folder.resolve()
    target = (root / path).resolve()
    if root not in target.parents:
        raise ValueError(f"{relative!r} points outside the effect folder (through a symlink)")
    if not target.is_file():
        raise ValueError(f"{relative!r} not found in {folder}")
    return target


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter as declared in an effect manifest."""

    name: str
    type: str
    default: Any
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    label: str = ""
    description: str = ""
    effect: str = field(default="", compare=False)
    folder: Path | None = field(default=None, compare=False)
    """The effect folder that ``texture`` and ``asset`` values are relative to."""

    @classmethod
    def from_manifest(
        cls, effect: str, name: str, entry: dict[str, Any], folder: Path | None = None
    ) -> ParamSpec:
        """Build and check a spec from its manifest entry; errors name effect and param."""
        where = f"effect {effect!r}, parameter {name!r}"
        errors = validate_schema(entry, PARAM_SCHEMA)
        if errors:
            raise ParameterError(f"{where}: {errors[0]}")
        kind = entry["type"]
        choices = tuple(entry.get("choices", ()))
        if kind in FILE_TYPES and folder is None:
            raise ParameterError(f"{where}: a {kind} parameter needs the effect's folder")
        spec = cls(
            name=name,
            type=kind,
            default=entry["default"],
            min=entry.get("min"),
            max=entry.get("max"),
            step=entry.get("step"),
            choices=choices,
            label=str(entry.get("label", name)),
            description=str(entry.get("description", "")),
            effect=effect,
            folder=folder,
        )
        if spec.min is not None and spec.max is not None and spec.min > spec.max:
            raise ParameterError(f"{where}: min {spec.min} is greater than max {spec.max}")
        # The default itself must be valid: a manifest cannot ship a broken default.
        object.__setattr__(spec, "default", spec.validate(spec.default))
        return spec

    def validate(self, value: Any, *, caller: bool = False) -> Any:
        """Return ``value`` in canonical form or raise ParameterError saying why.

        ``caller=True`` marks a value set by the application (Session, ``arfx render
        --effect``), not by a manifest: a texture or asset may then also name any existing
        file (absolute, or relative to the working directory), such as the user's own glTF
        glasses. Manifest values stay confined to the effect's folder.
        """
        where = f"effect {self.effect!r}, parameter {self.name!r}"
        try:
            if self.type == "float":
                if isinstance(value, bool):
                    raise ValueError(f"expected a number, got {value!r}")
                result: Any = float(value)
                if not math.isfinite(result):
                    raise ValueError(f"expected a finite number, got {value!r}")
            elif self.type == "int":
                if isinstance(value, bool):
                    raise ValueError(f"expected an integer, got {value!r}")
                as_float = float(value)
                if not as_float.is_integer():
                    raise ValueError(f"expected an integer, got {value!r}")
                result = int(as_float)
            elif self.type == "bool":
                result = _parse_bool(value)
            elif self.type == "color":
                result = parse_color(value)
            elif self.type in FILE_TYPES:
                assert self.folder is not None  # from_manifest insists on it
                result = self._file_value(value, caller)
            else:
                if value not in self.choices:
                    raise ValueError(f"expected one of {list(self.choices)}, got {value!r}")
                result = value
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{where}: {exc}") from None
        if self.type in ("float", "int"):
            if self.min is not None and result < self.min:
                raise ParameterError(f"{where}: {result} is below the minimum {self.min}")
            if self.max is not None and result > self.max:
                raise ParameterError(f"{where}: {result} is above the maximum {self.max}")
        return result

    def _file_value(self, value: Any, caller: bool) -> str:
        assert self.folder is not None
        try:
            inside_folder(self.folder, value)
            return Path(value).as_posix()
        except ValueError:
            if not caller or not isinstance(value, str) or not value.strip():
                raise
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"{value!r} not found in {self.folder} nor as a path of its own")
        return path.resolve().as_posix()

    def path(self, value: str) -> Path:
        """The absolute file a ``texture`` or ``asset`` value names (already validated)."""
        assert self.type in FILE_TYPES and self.folder is not None
        if Path(value).is_absolute():  # a caller's own file (see validate)
            return Path(value)
        return (self.folder / value).resolve()

    def uniform(self, value: Any) -> Any:
        """The value as the shader uniform ``u_<name>`` receives it (None: not a plain uniform).

        A texture is bound by the compositor as ``sampler2D u_<name>``; an asset is for hooks.
        """
        if self.type in FILE_TYPES:
            return None
        if self.type == "color":
            return color_to_rgb(value)
        if self.type == "enum":
            return self.choices.index(value)
        return value

    def describe(self) -> str:
        """One line for ``arfx effects``: type, range, default."""
        if self.type in ("float", "int"):
            low = "-inf" if self.min is None else f"{self.min:g}"
            high = "inf" if self.max is None else f"{self.max:g}"
            kind = f"{self.type} [{low}, {high}]"
        elif self.type == "enum":
            kind = "enum {" + ", ".join(self.choices) + "}"
        else:
            kind = self.type
        text = f"{self.name}: {kind} = {self.default}"
        return text + (f"  ({self.description})" if self.description else "")
