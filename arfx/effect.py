"""Effects: a folder holding a manifest (``meta.json``), a fragment shader and optional hooks.

An effect is data plus a shader, so authors add one without touching arfx itself::

    effects/lipstick/
        meta.json      name, version, parameters, the masks it reads, its shader
        lipstick.frag  GLSL body; ``#include "color.glsl"`` pulls in shared code
        hooks.py       optional: ``uniforms(frame, params) -> dict`` computed per frame

The compositor prepends ``shaders/arfx.glsl`` (the standard inputs every pass gets) and
sets ``u_<param>`` for every parameter and ``u_mask_<name>`` for every mask declared.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .errors import EffectError
from .params import ParamSpec
from .resources import shaders_dir

MANIFEST = "meta.json"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Line numbers are offset by file index * _FILE_STRIDE, since some drivers (Mesa) ignore
# the source-string number of #line; the offset survives every driver's log format.
_FILE_STRIDE = 100_000
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')


@dataclass(frozen=True)
class EffectSpec:
    """What an effect folder declares, checked once when it is loaded."""

    name: str
    version: str
    description: str
    folder: Path
    shader: str
    masks: tuple[str, ...]
    params: dict[str, ParamSpec]
    hooks: str | None = None

    @classmethod
    def load(cls, folder: str | Path) -> EffectSpec:
        """Read ``folder/meta.json``; every error names the file and what is wrong."""
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            raise EffectError(f"{path}: effect manifest not found")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise EffectError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise EffectError(f"{path}: the manifest must be a JSON object")
        known = {"name", "version", "description", "shader", "masks", "params", "hooks"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EffectError(f"{path}: unknown keys {unknown}")
        name = data.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise EffectError(f"{path}: 'name' must match [a-z][a-z0-9_]*, got {name!r}")
        shader = data.get("shader")
        if not isinstance(shader, str):
            raise EffectError(f"{path}: 'shader' must name a GLSL file in the effect folder")
        _inside(folder, shader, path)
        hooks = data.get("hooks")
        if hooks is not None:
            if not isinstance(hooks, str):
                raise EffectError(f"{path}: 'hooks' must name a Python file")
            _inside(folder, hooks, path)
        masks = data.get("masks", [])
        if not isinstance(masks, list) or not all(isinstance(m, str) for m in masks):
            raise EffectError(f"{path}: 'masks' must be a list of mask names")
        raw_params = data.get("params", {})
        if not isinstance(raw_params, dict):
            raise EffectError(f"{path}: 'params' must be an object")
        try:
            params = {
                key: ParamSpec.from_manifest(name, key, entry) for key, entry in raw_params.items()
            }
        except EffectError as exc:
            raise EffectError(f"{path}: {exc}") from None
        return cls(
            name=name,
            version=str(data.get("version", "0.0.0")),
            description=str(data.get("description", "")),
            folder=folder.resolve(),
            shader=shader,
            masks=tuple(masks),
            params=params,
            hooks=hooks,
        )

    def defaults(self) -> dict[str, Any]:
        return {name: spec.default for name, spec in self.params.items()}


def _inside(folder: Path, relative: str, manifest: Path) -> Path:
    """Resolve a manifest-relative file and refuse anything outside the effect folder."""
    target = (folder / relative).resolve()
    if folder.resolve() not in target.parents:
        raise EffectError(f"{manifest}: {relative!r} points outside the effect folder")
    if not target.is_file():
        raise EffectError(f"{manifest}: {relative!r} not found in {folder}")
    return target


@dataclass
class ShaderSource:
    """GLSL text with ``#include`` resolved, and the files behind each ``#line`` index."""

    text: str
    files: list[Path] = field(default_factory=list)

    def explain(self, log: str) -> str:
        """Rewrite a driver log's ``N:LINE(COL)`` / ``N(LINE)`` prefixes to ``file:LINE``."""

        def name(match: re.Match[str]) -> str:
            index, line = divmod(int(match.group(2) or match.group(3)), _FILE_STRIDE)
            path = self.files[index] if index < len(self.files) else Path(f"<source {index}>")
            return f"{path}:{line}"

        # Mesa writes "0:12(5): error", NVIDIA "0(12) : error"; one pass handles both.
        return re.sub(r"\b(\d+)(?::(\d+)\(\d+\)|\((\d+)\))", name, log)


def compose_shader(
    path: Path, search: Sequence[Path], prelude: Sequence[Path] = ()
) -> ShaderSource:
    """Concatenate ``prelude`` files and ``path``, expanding ``#include "x.glsl"`` once each.

    Includes are looked up beside the including file, then in ``search``. ``#line``
    directives carry a per-file index, so compile errors map back to file and line.
    """
    source = ShaderSource(text="")
    seen: set[Path] = set()
    lines = ["#version 330 core"]

    def emit(file: Path, included_from: str) -> None:
        file = file.resolve()
        if file in seen:
            return
        seen.add(file)
        try:
            body = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise EffectError(f"{included_from}: cannot read {file}: {exc.strerror}") from None
        index = len(source.files)
        source.files.append(file)
        lines.append(f"#line {index * _FILE_STRIDE + 1} {index}")
        for number, line in enumerate(body.splitlines(), start=1):
            match = _INCLUDE.match(line)
            if match:
                wanted = match.group(1)
                candidates = [file.parent / wanted, *(d / wanted for d in search)]
                found = next((c for c in candidates if c.is_file()), None)
                if found is None:
                    raise EffectError(f"{file}:{number}: include {wanted!r} not found")
                emit(found, f"{file}:{number}")
                lines.append(f"#line {index * _FILE_STRIDE + number + 1} {index}")
            elif line.lstrip().startswith("#version"):
                lines.append("")  # the composer owns the version line
            else:
                lines.append(line)

    for file in prelude:
        emit(file, "arfx")
    emit(path, str(path))
    source.text = "\n".join(lines) + "\n"
    return source


@dataclass(frozen=True)
class FrameContext:
    """What a hook sees of one frame: the RGB image, its faces and the masks in frame space."""

    image: np.ndarray
    faces: Sequence[Any]
    masks: Mapping[str, np.ndarray]
    index: int = 0


UniformHook = Callable[[FrameContext, Mapping[str, Any]], Mapping[str, Any]]


class Effect:
    """A configured instance of an effect: its spec plus current parameter values.

    Parameter changes are validated immediately and apply from the next frame;
    ``set`` may be called from any thread while a session renders.
    """

    def __init__(self, spec: EffectSpec, **params: Any) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._values = spec.defaults()
        self._hook: UniformHook | None = None
        self._hook_loaded = False
        self.set(**params)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def params(self) -> dict[str, Any]:
        """A snapshot of the current parameter values."""
        with self._lock:
            return dict(self._values)

    def set(self, **params: Any) -> None:
        """Change parameters; all are validated before any is applied."""
        checked = {}
        for key, value in params.items():
            spec = self.spec.params.get(key)
            if spec is None:
                from .errors import ParameterError

                valid = ", ".join(self.spec.params) or "none"
                raise ParameterError(
                    f"effect {self.name!r} has no parameter {key!r} (parameters: {valid})"
                )
            checked[key] = spec.validate(value)
        with self._lock:
            self._values.update(checked)

    def shader_source(self) -> ShaderSource:
        shared = shaders_dir()
        return compose_shader(
            self.spec.folder / self.spec.shader, [shared], prelude=[shared / "arfx.glsl"]
        )

    def uniforms(self, frame: FrameContext, params: Mapping[str, Any]) -> dict[str, Any]:
        """Uniform values for one frame: ``u_<param>`` plus whatever the hook adds."""
        values: dict[str, Any] = {
            f"u_{key}": self.spec.params[key].uniform(value) for key, value in params.items()
        }
        hook = self.load_hooks()
        if hook is not None:
            try:
                extra = hook(frame, params)
            except Exception as exc:  # noqa: BLE001 - a plugin's bug must not kill the session
                raise EffectError(
                    f"effect {self.name!r}: {self.spec.hooks}: uniforms() failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            values.update(extra)
        return values

    def load_hooks(self) -> UniformHook | None:
        """Import the effect's ``hooks.py`` once; errors name the file."""
        if self._hook_loaded:
            return self._hook
        self._hook_loaded = True
        if self.spec.hooks is None:
            return None
        path = self.spec.folder / self.spec.hooks
        module_name = f"arfx_effect_{self.name}_hooks"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise EffectError(f"{path}: cannot load hooks")
        module: ModuleType = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001
            raise EffectError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
        hook = getattr(module, "uniforms", None)
        if not callable(hook):
            raise EffectError(f"{path}: defines no uniforms(frame, params) function")
        self._hook = hook
        return hook

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Effect({self.name}: {values})"


def as_float_array(values: Sequence[float], size: int) -> np.ndarray:
    """Pad per-face values to a fixed-size uniform array (shaders declare fixed sizes)."""
    out = np.zeros(size, dtype=np.float32)
    out[: min(len(values), size)] = np.asarray(values, dtype=np.float32)[:size]
    return out
