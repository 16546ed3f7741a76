"""Effects: a folder holding a manifest, fragment-shader passes, assets and optional hooks.

An effect is data plus shaders, so authors add one without touching arfx itself::

    effects/lipstick/
        effect.toml    name, version, parameters, inputs (masks, landmarks, pose), passes
        lipstick.frag  GLSL body; ``#include "color.glsl"`` pulls in shared code
        hooks.py       optional: ``uniforms(frame, params) -> dict`` computed per frame

The manifest may be ``effect.toml``, ``effect.json`` or (the original name) ``meta.json``.
The compositor prepends ``shaders/arfx.glsl`` (the standard inputs every pass gets) and
sets ``u_<param>`` for every parameter and ``u_mask_<name>`` for every mask declared.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .errors import EffectError, ParameterError
from .frame import decoded_to_rgba8
from .params import FILE_TYPES, PARAM_NAME_PATTERN, PARAM_SCHEMA, ParamSpec, inside_folder
from .resources import shaders_dir
from .schema import SchemaError, line_of, validate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MANIFESTS = ("effect.toml", "effect.json", "meta.json")
"""Manifest file names, any one per folder; ``meta.json`` is the original name, still read."""
MAX_TEXTURE_SIZE = 4096
"""Largest width or height of a texture parameter's image, in pixels."""
MAX_PASSES = 16
"""Most passes one effect may have: each costs a full draw per frame, and an untrusted
manifest must not be able to stall a session with thousands."""
# GL 3.3 guarantees 16 fragment texture units: frame, input and landmarks take three.
_MAX_SAMPLERS = 16 - 3
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# Line numbers are offset by file index * _FILE_STRIDE, since some drivers (Mesa) ignore
# the source-string number of #line; the offset survives every driver's log format.
_FILE_STRIDE = 100_000
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')
REGIONS = ("frame", "head", "face", "lips")
"""Where an effect may change pixels (manifest key ``region``): the whole frame, each
face's head (the face model's crop: hair included), its face, or its lips. The compositor
draws the effect's passes only there, which is most of the speed on a CPU renderer."""
# Names that only exist in a pass when the manifest declares the input (see shaders/arfx.glsl).
_INPUT_NAMES = {
    "landmarks": ("arfx_landmark", "u_landmarks"),
    "pose": ("u_face_rotation", "u_face_translation", "u_camera", "arfx_head_to"),
}


def find_manifest(folder: Path) -> Path | None:
    """The manifest file in ``folder``, None if it has none; two manifests are an error."""
    found = [folder / name for name in MANIFESTS if (folder / name).is_file()]
    if len(found) > 1:
        raise EffectError(f"{folder}: more than one manifest ({', '.join(p.name for p in found)})")
    return found[0] if found else None


def read_manifest(path: Path) -> dict[str, Any]:
    """Parse a TOML or JSON manifest; a syntax error names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EffectError(f"{path}: cannot read: {exc}") from None
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            match = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
            if match:
                line = match.group(1)
                message = message[: match.start()]
            else:
                line = str(max(len(text.splitlines()), 1))  # "at end of document"
                message = re.sub(r"\s*\(at end of document\)$", "", message)
            raise EffectError(f"{path}:{line}: invalid TOML: {message}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EffectError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise EffectError(f"{path}: the manifest must be a JSON object")
    return data


OCCLUDERS = ("none", "head")
"""What a mesh pass draws into the depth buffer before its mesh (see arfx.occluder)."""
MESH_SUFFIXES = (".glb", ".gltf")

_FILE = {"type": "string", "minLength": 1, "description": "a file in the effect folder"}
_WHEN = {
    "type": "object",
    "description": "parameter values that must all match for the pass to run",
}
_COVER = {
    "type": "object",
    "description": "the pass changes only pixels where this mask is above a value: it is "
    "drawn only on the 16-pixel tiles that hold such pixels",
    "required": ["mask", "above"],
    "additionalProperties": False,
    "properties": {
        "mask": {"type": "string", "minLength": 1},
        "above": {"type": "number", "minimum": 0.0, "maximum": 1.0},
    },
}
_PASS = {
    "type": ["string", "object"],
    "description": "a fragment shader file, a {shader, when} table, or a mesh pass",
    "if": {"required": ["mesh"]},
    "then": {
        "required": ["mesh", "vertex", "fragment"],
        "additionalProperties": False,
        "properties": {
            "mesh": {**_FILE, "description": "a .glb/.gltf file or an asset parameter's name"},
            "vertex": _FILE,
            "fragment": _FILE,
            "occluder": {"enum": list(OCCLUDERS)},
            "when": _WHEN,
        },
    },
    "else": {
        "required": ["shader"],
        "additionalProperties": False,
        "properties": {"shader": _FILE, "when": _WHEN, "cover": _COVER},
    },
}
_MASK_NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}}
MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "arfx effect manifest (effect.toml, effect.json or meta.json)",
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string", "description": "for editors; ignored by arfx"},
        "name": {"type": "string", "pattern": NAME_PATTERN.pattern},
        "version": {"type": "string"},
        "description": {"type": "string"},
        "shader": {**_FILE, "description": "the one pass's fragment shader (or use passes)"},
        "passes": {"type": "array", "minItems": 1, "maxItems": MAX_PASSES, "items": _PASS},
        "masks": {**_MASK_NAMES, "description": "masks every pass reads (u_mask_<name>)"},
        "optional_masks": {**_MASK_NAMES, "description": "masks read when available"},
        "landmarks": {"type": "boolean"},
        "pose": {"type": "boolean"},
        "region": {"enum": list(REGIONS)},
        "hooks": {**_FILE, "description": "a Python file with uniforms(frame, params)"},
        "params": {
            "type": "object",
            "propertyNames": {"type": "string", "pattern": PARAM_NAME_PATTERN},
            "additionalProperties": PARAM_SCHEMA,
        },
    },
}
"""The JSON Schema every manifest is checked against before it is read (printed by
``arfx effects --schema``). What it cannot express (files exist inside the folder, ``when``
names real parameters, sampler counts) is checked by ``EffectSpec.load``."""


@dataclass(frozen=True)
class PassSpec:
    """One pass. A full-screen fragment-shader pass reads the previous pass's output as
    u_frame. A mesh pass (``mesh`` set) copies that image and draws a glTF model over it for
    every face, with a vertex and a fragment (``shader``) shader, depth-tested and placed with
    the face's head pose. ``when`` holds (parameter, value) pairs that must all match for the
    pass to run."""

    shader: str
    vertex: str | None = None
    mesh: str | None = None
    """An ``asset`` parameter's name (the model is its current value) or a .glb/.gltf file."""
    occluder: str = "none"
    when: tuple[tuple[str, Any], ...] = ()
    cover: tuple[str, float] | None = None
    """(mask, value): the pass leaves every pixel where the mask is below ``value`` (0..1)
    exactly as it came, so the compositor draws it only on the tiles that hold a pixel at or
    above it (see ``arfx.regions.coverage_rects``). A CPU renderer pays for every pixel a pass
    covers, even where the shader returns at once."""

    @property
    def is_mesh(self) -> bool:
        return self.mesh is not None

    def enabled(self, params: Mapping[str, Any]) -> bool:
        """Whether this pass runs with these parameter values."""
        return all(params.get(key) == value for key, value in self.when)


@dataclass(frozen=True)
class EffectSpec:
    """What an effect folder declares, checked once when it is loaded."""

    name: str
    version: str
    description: str
    folder: Path
    passes: tuple[PassSpec, ...]
    masks: tuple[str, ...]
    params: dict[str, ParamSpec]
    hooks: str | None = None
    landmarks: bool = False
    pose: bool = False
    manifest: Path | None = None
    optional_masks: tuple[str, ...] = ()
    """Masks read when the session's mask source has them, all-zero when it has not."""
    region: str = "frame"
    """Where the effect changes pixels: one of ``REGIONS``."""

    @property
    def shader(self) -> str:
        """The first pass's shader (the whole effect, for one-pass effects)."""
        return self.passes[0].shader

    @classmethod
    def load(cls, folder: str | Path) -> EffectSpec:
        """Read the folder's manifest; every error names the file and what is wrong."""
        folder = Path(folder)
        path = find_manifest(folder)
        if path is None:
            raise EffectError(
                f"{folder}: effect manifest not found (one of {', '.join(MANIFESTS)})"
            )
        data = read_manifest(path)
        errors = validate(data, MANIFEST_SCHEMA)
        if errors:
            raise EffectError(_located(path, errors[0]))
        name = data["name"]
        passes = _passes(data, folder, path)
        hooks = data.get("hooks")
        if hooks is not None:
            _file(folder, hooks, path, "'hooks': ")
        masks = data.get("masks", [])
        optional = data.get("optional_masks", [])
        both = sorted(set(masks) & set(optional))
        if both:
            raise EffectError(f"{path}: masks {both} are both required and optional")
        region = data.get("region", "frame")
        raw_params = data.get("params", {})
        try:
            params = {
                key: ParamSpec.from_manifest(name, key, entry, folder)
                for key, entry in raw_params.items()
            }
        except EffectError as exc:
            raise EffectError(f"{path}: {exc}") from None
        passes = _check_pass_params(passes, params, folder, path)
        textures = [p for p in params.values() if p.type == "texture"]
        samplers = _MAX_SAMPLERS - any(p.is_mesh for p in passes)  # a mesh's base texture
        if len(masks) + len(optional) + len(textures) > samplers:
            raise EffectError(
                f"{path}: {len(masks) + len(optional)} masks and {len(textures)} textures are "
                f"more than the {samplers} samplers a pass can have"
            )
        return cls(
            name=name,
            version=str(data.get("version", "0.0.0")),
            description=str(data.get("description", "")),
            folder=folder.resolve(),
            passes=passes,
            masks=tuple(masks),
            optional_masks=tuple(optional),
            region=region,
            params=params,
            hooks=hooks,
            landmarks=data.get("landmarks", False),
            pose=data.get("pose", False) or any(p.is_mesh for p in passes),  # meshes need it
            manifest=path.resolve(),
        )

    def defaults(self) -> dict[str, Any]:
        return {name: spec.default for name, spec in self.params.items()}

    def where(self) -> str:
        """The manifest path, for messages."""
        return str(self.manifest or self.folder)

    def defines(self) -> list[str]:
        """Preprocessor names that switch on the declared inputs in shaders/arfx.glsl."""
        return [f"ARFX_USE_{key.upper()}" for key in ("landmarks", "pose") if getattr(self, key)]

    def pass_sources(self, face_count: int | None = None) -> list[ShaderSource]:
        """Every pass's (fragment) GLSL, with the standard prelude and includes resolved.

        ``face_count`` fixes ``ARFX_FACE_COUNT`` at compile time (the compositor compiles a
        pass once per face count it meets); None leaves it the ``u_face_count`` uniform.
        """
        return [
            self._compose(p.shader, p.is_mesh, vertex=False, face_count=face_count)
            for p in self.passes
        ]

    def vertex_sources(self, face_count: int | None = None) -> list[ShaderSource | None]:
        """Every mesh pass's vertex shader GLSL (None for full-screen passes)."""
        return [
            self._compose(p.vertex, True, vertex=True, face_count=face_count) if p.vertex else None
            for p in self.passes
        ]

    def _compose(
        self, file: str, mesh: bool, *, vertex: bool, face_count: int | None = None
    ) -> ShaderSource:
        shared = shaders_dir()
        defines = self.defines()
        if mesh:
            defines.append("ARFX_MESH_PASS")
        if vertex:
            defines.append("ARFX_VERTEX_SHADER")
        if face_count is not None:
            defines.append(f"ARFX_FACE_COUNT {face_count}")
        return compose_shader(
            self.folder / file,
            [shared],
            prelude=[shared / "arfx.glsl"],
            root=self.folder,
            defines=defines,
        )

    def mesh_path(self, spec: PassSpec, params: Mapping[str, Any]) -> Path:
        """The model file a mesh pass draws with these parameter values."""
        assert spec.mesh is not None
        param = self.params.get(spec.mesh)
        if param is not None:
            return param.path(params.get(spec.mesh, param.default))
        return (self.folder / spec.mesh).resolve()

    def files(self) -> list[Path]:
        """The files this effect is made of (for hot reload): manifest, shaders, includes,
        hooks, default textures and assets."""
        files: list[Path] = [self.manifest] if self.manifest else []
        for source in self.pass_sources():
            files += source.files
        for vertex in self.vertex_sources():
            files += vertex.files if vertex else []
        files += [self.folder / p.mesh for p in self.passes if p.mesh and p.mesh not in self.params]
        if self.hooks:
            files.append(self.folder / self.hooks)
        files += [p.path(p.default) for p in self.params.values() if p.type in FILE_TYPES]
        return list(dict.fromkeys(f.resolve() for f in files))


def _passes(data: Mapping[str, Any], folder: Path, path: Path) -> tuple[PassSpec, ...]:
    """``passes`` (a list of shader files or {shader = ...} tables) or the ``shader`` shorthand
    (the schema has checked their structure)."""
    if ("shader" in data) == ("passes" in data):
        raise EffectError(f"{path}: give either 'shader' (one pass) or 'passes' (a list)")
    entries = data["passes"] if "passes" in data else [data["shader"]]
    passes = []
    for number, entry in enumerate(entries, start=1):
        where = f"pass {number}: " if "passes" in data else ""
        if isinstance(entry, dict) and "mesh" in entry:
            for key in ("vertex", "fragment"):
                _file(folder, entry[key], path, f"{where}{key!r}: ")
            passes.append(
                PassSpec(
                    shader=entry["fragment"],
                    vertex=entry["vertex"],
                    mesh=entry["mesh"],  # checked once the parameters are known
                    occluder=entry.get("occluder", "none"),
                    when=tuple(entry.get("when", {}).items()),
                )
            )
            continue
        when = {}
        cover = None
        if isinstance(entry, dict):
            when = entry.get("when", {})
            if "cover" in entry:
                cover = (entry["cover"]["mask"], float(entry["cover"]["above"]))
                if cover[0] not in data.get("masks", []):
                    raise EffectError(
                        f"{path}: {where}'cover': mask {cover[0]!r} is not one of the "
                        f"effect's 'masks' (a pass can only be culled by a mask it always has)"
                    )
            entry = entry["shader"]
        _file(folder, entry, path, where)
        passes.append(PassSpec(shader=entry, when=tuple(when.items()), cover=cover))
    return tuple(passes)


def _located(path: Path, error: SchemaError) -> str:
    """``file:line: where: what`` (the line where the offending key is written, if found)."""
    try:
        line = line_of(path.read_text(encoding="utf-8"), error.path)
    except (OSError, UnicodeDecodeError):
        line = None
    return f"{path}:{line}: {error}" if line else f"{path}: {error}"


def _check_pass_params(
    passes: tuple[PassSpec, ...], params: Mapping[str, ParamSpec], folder: Path, path: Path
) -> tuple[PassSpec, ...]:
    """Check what passes say about parameters (``mesh``, ``when``); canonical ``when`` values."""
    checked = []
    for number, spec in enumerate(passes, start=1):
        where = f"pass {number}"
        when = []
        for key, value in spec.when:
            if key not in params:
                raise EffectError(f"{path}: {where}: 'when' names no parameter {key!r}")
            try:
                when.append((key, params[key].validate(value)))
            except EffectError as exc:
                raise EffectError(f"{path}: {where}: 'when': {exc}") from None
        if spec.mesh is not None:
            param = params.get(spec.mesh)
            if param is not None and param.type != "asset":
                raise EffectError(
                    f"{path}: {where}: 'mesh' names the {param.type} parameter {spec.mesh!r}; "
                    "it must be an asset parameter"
                )
            if param is None:
                _file(folder, spec.mesh, path, f"{where}: 'mesh': ")
                if Path(spec.mesh).suffix.lower() not in MESH_SUFFIXES:
                    raise EffectError(f"{path}: {where}: 'mesh' must be a .glb or .gltf file")
        checked.append(replace(spec, when=tuple(when)))
    return tuple(checked)


def _file(folder: Path, relative: str, manifest: Path, where: str = "") -> Path:
    """Resolve a manifest-relative file and refuse anything outside the effect folder;
    ``where`` ("pass 2: 'vertex': ") starts the error message."""
    try:
        return inside_folder(folder, relative)
    except ValueError as exc:
        raise EffectError(f"{manifest}: {where}{exc}") from None


def load_texture(path: Path) -> np.ndarray:
    """An image file as RGBA uint8 (rows top first), at most MAX_TEXTURE_SIZE on a side.

    PNG and JPEG sizes are read from the file's header before it is decoded, so a small
    file that claims a huge image (a decompression bomb) is refused without the memory.
    """
    import cv2

    try:
        size = header_size(path)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from None
    if size is not None and max(size) > MAX_TEXTURE_SIZE:
        raise ValueError(
            f"{path}: {size[0]}x{size[1]} is larger than {MAX_TEXTURE_SIZE}x{MAX_TEXTURE_SIZE}"
        )
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: not an image OpenCV can read")
    height, width = image.shape[:2]
    if max(width, height) > MAX_TEXTURE_SIZE:
        raise ValueError(
            f"{path}: {width}x{height} is larger than {MAX_TEXTURE_SIZE}x{MAX_TEXTURE_SIZE}"
        )
    try:
        return decoded_to_rgba8(image)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header without decoding; None for other formats."""
    with open(path, "rb") as file:
        head = file.read(24)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if head[:2] != b"\xff\xd8":
            return None
        file.seek(2)
        while True:  # walk the segments to the first start-of-frame
            marker = file.read(4)
            if len(marker) < 4 or marker[0] != 0xFF:
                return None
            length = int.from_bytes(marker[2:4], "big")
            if marker[1] in _JPEG_FRAME_MARKERS:
                frame = file.read(5)
                if len(frame) < 5:
                    return None
                return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
            file.seek(length - 2, 1)


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
    path: Path,
    search: Sequence[Path],
    prelude: Sequence[Path] = (),
    *,
    root: Path | None = None,
    defines: Iterable[str] = (),
) -> ShaderSource:
    """Concatenate ``prelude`` files and ``path``, expanding ``#include "x.glsl"`` once each.

    Includes are looked up beside the including file, then in ``search``; they must stay
    inside ``root`` (default: ``path``'s folder) or a ``search`` folder, so a shader cannot
    pull in arbitrary files. ``#line`` directives carry a per-file index, so compile errors
    map back to file and line. ``defines`` become ``#define`` lines after ``#version``.
    """
    source = ShaderSource(text="")
    seen: set[Path] = set()
    allowed = [(root or path.parent).resolve(), *(d.resolve() for d in search)]
    lines = ["#version 330 core", *(f"#define {name}" for name in defines)]

    def permitted(candidate: Path) -> bool:
        resolved = candidate.resolve()
        return candidate.is_file() and any(d in resolved.parents for d in allowed)

    def emit(file: Path, included_from: str) -> None:
        file = file.resolve()
        if file in seen:
            return
        seen.add(file)
        try:
            body = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise EffectError(f"{included_from}: cannot read {file}: {exc}") from None
        index = len(source.files)
        source.files.append(file)
        lines.append(f"#line {index * _FILE_STRIDE + 1} {index}")
        for number, line in enumerate(body.splitlines(), start=1):
            match = _INCLUDE.match(line)
            if match:
                wanted = match.group(1)
                if Path(wanted).is_absolute() or ".." in Path(wanted).parts:
                    raise EffectError(
                        f"{file}:{number}: include {wanted!r} must be a relative path without '..'"
                    )
                candidates = [file.parent / wanted, *(d / wanted for d in search)]
                found = next((c for c in candidates if permitted(c)), None)
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


def missing_input_hint(spec: EffectSpec, log: str) -> str:
    """A hint for a compile log that uses landmarks or pose the manifest did not declare."""
    for key, names in _INPUT_NAMES.items():
        if not getattr(spec, key) and any(n in log for n in names):
            return f"\nhint: {spec.where()} must declare {key} = true to use {key} in a shader"
    return ""


@dataclass(frozen=True)
class FrameContext:
    """What a hook sees of one frame: the RGB image, its faces and the masks in frame space.

    ``camera`` is the 3x3 pinhole intrinsics head poses were fitted with (None: the
    default, f = max(width, height) at the image centre).
    """

    image: np.ndarray
    faces: Sequence[Any]
    masks: Mapping[str, np.ndarray]
    index: int = 0
    camera: np.ndarray | None = None


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
        self._textures: dict[str, np.ndarray] = {}
        for key, param in spec.params.items():
            if param.type == "texture":
                try:
                    self._textures[key] = load_texture(param.path(param.default))
                except ValueError as exc:
                    raise EffectError(f"{spec.where()}: parameter {key!r}: {exc}") from None
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

    def textures(self) -> dict[str, np.ndarray]:
        """The current RGBA pixels of each texture parameter (bound as ``u_<name>``)."""
        with self._lock:
            return dict(self._textures)

    def set(self, **params: Any) -> None:
        """Change parameters; all are validated (textures loaded) before any is applied."""
        checked = {}
        textures = {}
        for key, value in params.items():
            spec = self.spec.params.get(key)
            if spec is None:
                valid = ", ".join(self.spec.params) or "none"
                raise ParameterError(
                    f"effect {self.name!r} has no parameter {key!r} (parameters: {valid})"
                )
            checked[key] = spec.validate(value, caller=True)
            if spec.type == "texture":
                try:
                    textures[key] = load_texture(spec.path(checked[key]))
                except ValueError as exc:
                    raise ParameterError(
                        f"effect {self.name!r}, parameter {key!r}: {exc}"
                    ) from None
        with self._lock:
            self._values.update(checked)
            self._textures.update(textures)

    def shader_source(self) -> ShaderSource:
        """The first pass's composed GLSL."""
        return self.spec.pass_sources()[0]

    def uniforms(self, frame: FrameContext, params: Mapping[str, Any]) -> dict[str, Any]:
        """Uniform values for one frame: ``u_<param>`` plus whatever the hook adds."""
        values: dict[str, Any] = {}
        for key, value in params.items():
            param = self.spec.params.get(key)  # None: dropped by a reload since the snapshot
            uniform = None if param is None else param.uniform(value)
            if uniform is not None:
                values[f"u_{key}"] = uniform
        hook = self.load_hooks()
        if hook is not None:
            try:
                values.update(hook(frame, params))
            except Exception as exc:  # noqa: BLE001 - a plugin's bug must not kill the session
                raise EffectError(
                    f"effect {self.name!r}: {self.spec.folder / str(self.spec.hooks)}: "
                    f"uniforms() failed: {type(exc).__name__}: {exc}"
                ) from exc
        return values

    def load_hooks(self) -> UniformHook | None:
        """Import the effect's ``hooks.py`` once; errors name the file."""
        if self._hook_loaded:
            return self._hook
        self._hook_loaded = True
        if self.spec.hooks is None:
            return None
        path = self.spec.folder / self.spec.hooks
        # Compiled from the source every time, not through a cached .pyc: a hot reload must
        # see an edit made within the same second, and nothing is written into the folder.
        module = ModuleType(f"arfx_effect_{self.name}_hooks")
        module.__file__ = str(path)
        try:
            exec(compile(path.read_bytes(), str(path), "exec"), module.__dict__)
        except Exception as exc:  # noqa: BLE001
            raise EffectError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
        hook = getattr(module, "uniforms", None)
        if not callable(hook):
            raise EffectError(f"{path}: defines no uniforms(frame, params) function")
        self._hook = hook
        return hook

    def reloaded(self, spec: EffectSpec) -> Effect:
        """A new Effect of ``spec`` carrying over this one's values where they are still valid.

        Its hooks are imported now, so a broken new version fails here, not on a frame.
        """
        effect = Effect(spec)
        for key, value in self.params.items():
            if key in spec.params:
                try:
                    effect.set(**{key: value})
                except EffectError:
                    pass  # the new manifest changed this parameter: its default applies
        effect.load_hooks()
        return effect

    def adopt(self, other: Effect) -> None:
        """Become ``other`` (a reloaded version of this effect), in place, so references held
        by the application keep working."""
        with other._lock:
            state = (other.spec, dict(other._values), dict(other._textures))
        with self._lock:
            self.spec, self._values, self._textures = state
            self._hook, self._hook_loaded = other._hook, other._hook_loaded

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Effect({self.name}: {values})"


def file_stamp(files: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of each file, -1 where missing: a cheap "did it change" key."""
    stamp = []
    for path in files:
        try:
            info = path.stat()
            stamp.append((str(path), info.st_mtime_ns, info.st_size))
        except OSError:
            stamp.append((str(path), -1, -1))
    return tuple(stamp)


def as_float_array(values: Sequence[float], size: int) -> np.ndarray:
    """Pad per-face values to a fixed-size uniform array (shaders declare fixed sizes)."""
    out = np.zeros(size, dtype=np.float32)
    out[: min(len(values), size)] = np.asarray(values, dtype=np.float32)[:size]
    return out
