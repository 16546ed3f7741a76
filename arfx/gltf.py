"""A small glTF 2.0 reader and writer: triangle meshes with their materials and textures.

Reads ``.gltf`` (JSON, with ``.bin`` buffers and images beside it or in ``data:`` URIs) and
``.glb`` (binary) files into a :class:`Model`: every triangle primitive of the default scene,
with the node transforms applied, as numpy arrays in the file's own units and axes (glTF:
metres, +y up, the front of an asset toward +z), plus its PBR material (base colour factor
and texture, metallic, roughness, alpha mode). Supported: buffers, buffer views (with
``byteStride``), accessors of every component type (normalized integers included), node
hierarchies with TRS or matrix transforms, triangles, strips and fans (points and lines are
skipped), PNG/JPEG images from a URI or a buffer view. Extensions that only refine materials
(``KHR_materials_*``, ``KHR_texture_transform``...) are ignored; a file that *requires* one
arfx cannot decode (Draco, meshopt, Basis) is refused.

Every file it reads must lie inside the model's folder (no absolute paths, ``..`` or symlinks
leading out) and nothing is fetched from the network. Errors are :class:`GltfError` and name
the file and what is wrong.

:func:`save` writes meshes built in code (see ``arfx.eyewear``) as ``.glb`` or ``.gltf`` +
``.bin``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from .checks import is_integer
from .errors import ArfxError
from .frame import decoded_to_rgba8

_GLB_MAGIC = b"glTF"
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942
_COMPONENTS = {
    5120: np.dtype("i1"),
    5121: np.dtype("u1"),
    5122: np.dtype("<i2"),
    5123: np.dtype("<u2"),
    5125: np.dtype("<u4"),
    5126: np.dtype("<f4"),
}
_TYPE_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_TRIANGLES, _TRIANGLE_STRIP, _TRIANGLE_FAN = 4, 5, 6
# Extensions a file may *require* although arfx ignores them: they refine the look only.
_IGNORABLE_PREFIXES = ("KHR_materials_", "KHR_texture_transform", "KHR_mesh_quantization")
ALPHA_MODES = ("OPAQUE", "MASK", "BLEND")
MAX_IMAGE_SIZE = 4096


class GltfError(ArfxError, ValueError):
    """A glTF file cannot be read: the message names the file and what is wrong."""


@dataclass
class Material:
    """A glTF metallic-roughness material. Colours are linear RGBA (as glTF stores them)."""

    name: str = ""
    base_color: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    base_texture: np.ndarray | None = field(default=None, repr=False)
    """RGBA uint8 pixels (row 0 = the image's top, which is glTF's uv (0, 0)), or None."""
    metallic: float = 1.0
    roughness: float = 1.0
    alpha_mode: str = "OPAQUE"
    alpha_cutoff: float = 0.5
    double_sided: bool = False


@dataclass
class Primitive:
    """One drawable triangle list: per-vertex arrays and the triangles' vertex indices."""

    positions: np.ndarray  # (N, 3) float32, in the model's space (node transforms applied)
    normals: np.ndarray  # (N, 3) float32, unit length
    uvs: np.ndarray | None  # (N, 2) float32 or None
    indices: np.ndarray  # (M,) uint32, M a multiple of 3
    material: int  # index into Model.materials
    name: str = ""

    @property
    def triangle_count(self) -> int:
        return len(self.indices) // 3


@dataclass
class Model:
    """The triangle primitives of a glTF scene and their materials."""

    primitives: list[Primitive]
    materials: list[Material]
    path: Path | None = None

    @property
    def vertex_count(self) -> int:
        return sum(len(p.positions) for p in self.primitives)

    @property
    def triangle_count(self) -> int:
        return sum(p.triangle_count for p in self.primitives)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) corners of every vertex, (3,) float64 each."""
        if not self.primitives:
            zero = np.zeros(3)
            return zero, zero
        points = np.concatenate([p.positions for p in self.primitives])
        return points.min(axis=0).astype(np.float64), points.max(axis=0).astype(np.float64)

    def positions(self) -> np.ndarray:
        """Every vertex, (N, 3) float32."""
        if not self.primitives:
            return np.zeros((0, 3), dtype=np.float32)
        return np.concatenate([p.positions for p in self.primitives])


# --- reading --------------------------------------------------------------------------------


def load(path: str | Path) -> Model:
    """Read a ``.gltf`` or ``.glb`` file (see the module docstring)."""
    path = Path(path)
    return _Reader(path).read()


_cache: dict[Path, tuple[tuple[int, int], Model]] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 8


def load_cached(path: str | Path) -> Model:
    """:func:`load`, remembered per file until the file changes (mtime or size).

    Several users of one model (an effect's hooks and the compositor) share the parsed
    arrays; callers must not modify them.
    """
    path = Path(path).resolve()
    try:
        info = path.stat()
    except OSError as exc:
        raise GltfError(f"{path}: cannot read: {exc.strerror or exc}") from None
    stamp = (info.st_mtime_ns, info.st_size)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    model = load(path)
    with _cache_lock:
        _cache[path] = (stamp, model)
        while len(_cache) > _CACHE_SIZE:
            del _cache[next(iter(_cache))]
    return model


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.folder = path.resolve().parent
        self.doc: dict[str, Any] = {}
        self.glb_bin: bytes | None = None
        self._buffers: dict[int, bytes] = {}
        self._images: dict[int, np.ndarray | None] = {}

    def fail(self, message: str) -> GltfError:
        return GltfError(f"{self.path}: {message}")

    def read(self) -> Model:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise self.fail(f"cannot read: {exc.strerror or exc}") from None
        if data[:4] == _GLB_MAGIC:
            self.doc = self._parse_glb(data)
        else:
            try:
                self.doc = json.loads(data.decode("utf-8-sig"))
            except UnicodeDecodeError:
                raise self.fail("not a glTF file (neither JSON nor GLB)") from None
            except json.JSONDecodeError as exc:
                raise self.fail(f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
        if not isinstance(self.doc, dict):
            raise self.fail("the glTF JSON must be an object")
        version = str(self._get(self.doc, "asset", dict, {}).get("version", ""))
        if not version.startswith("2."):
            raise self.fail(f"asset.version is {version!r}; only glTF 2.0 is supported")
        required = self._get(self.doc, "extensionsRequired", list, [])
        unsupported = [e for e in required if not str(e).startswith(_IGNORABLE_PREFIXES)]
        if unsupported:
            raise self.fail(f"requires extensions arfx cannot decode: {', '.join(unsupported)}")
        try:
            return self._model()
        except GltfError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, struct.error) as exc:
            raise self.fail(f"malformed glTF: {type(exc).__name__}: {exc}") from None

    def _parse_glb(self, data: bytes) -> dict[str, Any]:
        if len(data) < 20:
            raise self.fail("truncated GLB header")
        _, version, length = struct.unpack_from("<4sII", data, 0)
        if version != 2:
            raise self.fail(f"GLB container version {version}; only 2 is supported")
        if length > len(data):
            raise self.fail(f"GLB says {length} bytes but the file has {len(data)}")
        offset, doc = 12, None
        while offset + 8 <= length:
            chunk_length, chunk_type = struct.unpack_from("<II", data, offset)
            start, end = offset + 8, offset + 8 + chunk_length
            if end > length:
                raise self.fail("truncated GLB chunk")
            if chunk_type == _CHUNK_JSON and doc is None:
                try:
                    doc = json.loads(data[start:end].decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise self.fail(f"invalid JSON chunk: {exc}") from None
            elif chunk_type == _CHUNK_BIN and self.glb_bin is None:
                self.glb_bin = data[start:end]
            offset = end
        if doc is None:
            raise self.fail("GLB has no JSON chunk")
        return doc

    def _get(self, obj: dict[str, Any], key: str, kind: type, default: Any) -> Any:
        value = obj.get(key, default)
        if not isinstance(value, kind):
            raise self.fail(f"{key!r} must be a {kind.__name__}, got {type(value).__name__}")
        return value

    def _item(self, key: str, index: Any) -> dict[str, Any]:
        items = self._get(self.doc, key, list, [])
        if not is_integer(index) or not 0 <= index < len(items):
            raise self.fail(f"{key}[{index!r}] does not exist ({len(items)} {key})")
        item = items[index]
        if not isinstance(item, dict):
            raise self.fail(f"{key}[{index}] must be an object")
        return item

    # -- files and buffers --

    def _file(self, uri: str, what: str) -> bytes:
        if uri.startswith("data:"):
            head, _, payload = uri.partition(",")
            if not head.endswith(";base64"):
                raise self.fail(f"{what}: only base64 data: URIs are supported")
            try:
                return base64.b64decode(payload, validate=True)
            except ValueError:
                raise self.fail(f"{what}: invalid base64 in its data: URI") from None
        if "://" in uri or uri.startswith("//"):
            raise self.fail(f"{what}: {uri!r} is not a local file (arfx does not download)")
        relative = Path(unquote(uri))
        if relative.is_absolute() or ".." in relative.parts or "\\" in uri:
            raise self.fail(f"{what}: {uri!r} points outside the model's folder")
        target = (self.folder / relative).resolve()
        if self.folder not in target.parents:
            raise self.fail(f"{what}: {uri!r} points outside the model's folder (symlink)")
        try:
            return target.read_bytes()
        except OSError as exc:
            raise self.fail(f"{what}: cannot read {uri!r}: {exc.strerror or exc}") from None

    def _buffer(self, index: int) -> bytes:
        if index not in self._buffers:
            buffer = self._item("buffers", index)
            length = buffer.get("byteLength")
            if "uri" in buffer:
                data = self._file(str(buffer["uri"]), f"buffers[{index}]")
            elif self.glb_bin is not None and index == 0:
                data = self.glb_bin
            else:
                raise self.fail(f"buffers[{index}] has no uri and there is no GLB binary chunk")
            if isinstance(length, int) and len(data) < length:
                raise self.fail(f"buffers[{index}] has {len(data)} bytes, byteLength says {length}")
            self._buffers[index] = data
        return self._buffers[index]

    def _view(self, index: int) -> tuple[bytes, int, int, int | None]:
        """(buffer bytes, start, length, byteStride) of a buffer view."""
        view = self._item("bufferViews", index)
        data = self._buffer(view["buffer"])
        start = int(view.get("byteOffset", 0))
        length = int(view["byteLength"])
        if start < 0 or length < 0 or start + length > len(data):
            raise self.fail(f"bufferViews[{index}] reaches past the end of its buffer")
        stride = view.get("byteStride")
        return data, start, length, None if stride is None else int(stride)

    def accessor(self, index: int) -> np.ndarray:
        """An accessor's elements as an (count, components) array (float32 if normalized)."""
        accessor = self._item("accessors", index)
        where = f"accessors[{index}]"
        dtype = _COMPONENTS.get(accessor.get("componentType"))
        if dtype is None:
            raise self.fail(f"{where}: unknown componentType {accessor.get('componentType')!r}")
        width = _TYPE_SIZES.get(accessor.get("type"))
        if width is None:
            raise self.fail(f"{where}: unknown type {accessor.get('type')!r}")
        count = int(accessor["count"])
        if count < 0:
            raise self.fail(f"{where}: negative count")
        if "sparse" in accessor:
            raise self.fail(f"{where}: sparse accessors are not supported")
        element = dtype.itemsize * width
        if "bufferView" not in accessor:
            array = np.zeros((count, width), dtype=dtype)
        else:
            data, start, length, stride = self._view(accessor["bufferView"])
            stride = stride or element
            offset = int(accessor.get("byteOffset", 0))
            if stride < element or offset < 0:
                raise self.fail(f"{where}: byteStride {stride} is less than an element")
            needed = offset + (stride * (count - 1) + element if count else 0)
            if needed > length:
                raise self.fail(f"{where}: {count} elements reach past the end of its bufferView")
            array = np.ndarray(
                (count, width),
                dtype=dtype,
                buffer=data,
                offset=start + offset,
                strides=(stride, dtype.itemsize),
            ).copy()
        if accessor.get("normalized") and dtype.kind in "iu":
            scale = float(np.iinfo(dtype).max)
            array = np.maximum(array.astype(np.float32) / scale, -1.0)
        return array

    # -- images --

    def _image(self, index: int) -> np.ndarray | None:
        """An image's RGBA pixels; None (with the texture left out) if OpenCV cannot read it."""
        if index in self._images:
            return self._images[index]
        import cv2

        image = self._item("images", index)
        if "uri" in image:
            data = self._file(str(image["uri"]), f"images[{index}]")
        elif "bufferView" in image:
            buffer, start, length, _ = self._view(image["bufferView"])
            data = buffer[start : start + length]
        else:
            raise self.fail(f"images[{index}] has neither uri nor bufferView")
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise self.fail(f"images[{index}]: not an image OpenCV can decode")
        if max(pixels.shape[:2]) > MAX_IMAGE_SIZE:
            raise self.fail(
                f"images[{index}]: {pixels.shape[1]}x{pixels.shape[0]} is larger than "
                f"{MAX_IMAGE_SIZE}x{MAX_IMAGE_SIZE}"
            )
        try:
            self._images[index] = decoded_to_rgba8(pixels)
        except ValueError as exc:
            raise self.fail(f"images[{index}]: {exc}") from None
        return self._images[index]

    # -- materials, meshes, nodes --

    def _material(self, index: int) -> Material:
        raw = self._item("materials", index)
        pbr = self._get(raw, "pbrMetallicRoughness", dict, {})
        color = pbr.get("baseColorFactor", [1.0, 1.0, 1.0, 1.0])
        if not (isinstance(color, list) and len(color) == 4):
            raise self.fail(f"materials[{index}]: baseColorFactor must be 4 numbers")
        texture = None
        info = pbr.get("baseColorTexture")
        if isinstance(info, dict) and "index" in info:
            source = self._item("textures", info["index"]).get("source")
            if source is not None:
                texture = self._image(source)
        mode = raw.get("alphaMode", "OPAQUE")
        if mode not in ALPHA_MODES:
            raise self.fail(f"materials[{index}]: alphaMode must be one of {ALPHA_MODES}")
        return Material(
            name=str(raw.get("name", f"material {index}")),
            base_color=tuple(float(c) for c in color),  # type: ignore[arg-type]
            base_texture=texture,
            metallic=float(pbr.get("metallicFactor", 1.0)),
            roughness=float(pbr.get("roughnessFactor", 1.0)),
            alpha_mode=mode,
            alpha_cutoff=float(raw.get("alphaCutoff", 0.5)),
            double_sided=bool(raw.get("doubleSided", False)),
        )

    def _primitives(
        self, mesh_index: int, transform: np.ndarray, materials: dict[int, int]
    ) -> list[Primitive]:
        mesh = self._item("meshes", mesh_index)
        out = []
        for number, raw in enumerate(self._get(mesh, "primitives", list, [])):
            where = f"meshes[{mesh_index}].primitives[{number}]"
            mode = raw.get("mode", _TRIANGLES)
            if mode not in (_TRIANGLES, _TRIANGLE_STRIP, _TRIANGLE_FAN):
                continue  # points and lines have no surface to draw
            attributes = self._get(raw, "attributes", dict, {})
            if "POSITION" not in attributes:
                raise self.fail(f"{where} has no POSITION attribute")
            positions = self.accessor(attributes["POSITION"]).astype(np.float32)
            if positions.shape[1] != 3:
                raise self.fail(f"{where}: POSITION must be VEC3")
            count = len(positions)
            if "indices" in raw:
                indices = self.accessor(raw["indices"]).reshape(-1).astype(np.int64)
            else:
                indices = np.arange(count, dtype=np.int64)
            indices = _triangles(indices, mode)
            if len(indices) and (indices.min() < 0 or indices.max() >= count):
                raise self.fail(f"{where}: an index is outside its {count} vertices")
            normals = None
            if "NORMAL" in attributes:
                normals = self.accessor(attributes["NORMAL"]).astype(np.float32)
                if normals.shape != positions.shape:
                    raise self.fail(f"{where}: NORMAL must be VEC3 with one per vertex")
            uvs = None
            if "TEXCOORD_0" in attributes:
                uvs = self.accessor(attributes["TEXCOORD_0"]).astype(np.float32)
                if uvs.shape != (count, 2):
                    raise self.fail(f"{where}: TEXCOORD_0 must be VEC2 with one per vertex")
            positions = _apply(transform, positions)
            if normals is None:
                normals = vertex_normals(positions, indices)
            else:
                linear = transform[:3, :3]
                if abs(np.linalg.det(linear)) > 1e-20:
                    normals = normals @ np.linalg.inv(linear).astype(np.float32)
                normals = _unit(normals)
            material = raw.get("material")
            if material is None:
                slot = materials.setdefault(-1, len(materials))
            else:
                slot = materials.setdefault(int(material), len(materials))
            out.append(
                Primitive(
                    positions=np.ascontiguousarray(positions, dtype=np.float32),
                    normals=np.ascontiguousarray(normals, dtype=np.float32),
                    uvs=None if uvs is None else np.ascontiguousarray(uvs),
                    indices=np.ascontiguousarray(indices, dtype=np.uint32),
                    material=slot,
                    name=str(mesh.get("name", f"mesh {mesh_index}")),
                )
            )
        return out

    def _model(self) -> Model:
        nodes = self._get(self.doc, "nodes", list, [])
        scenes = self._get(self.doc, "scenes", list, [])
        if scenes:
            scene = self._item("scenes", self.doc.get("scene", 0))
            roots = self._get(scene, "nodes", list, [])
        else:  # no scene: every node that is nobody's child
            children = {
                c for node in nodes if isinstance(node, dict) for c in node.get("children", [])
            }
            roots = [i for i in range(len(nodes)) if i not in children]
        primitives: list[Primitive] = []
        materials: dict[int, int] = {}  # file material index (-1: default) -> Model index
        stack = [(root, np.eye(4), 0) for root in reversed(roots)]
        visited = 0
        while stack:
            index, parent, depth = stack.pop()
            visited += 1
            if depth > 64 or visited > 100_000:
                raise self.fail("the node hierarchy is too deep or has a cycle")
            node = self._item("nodes", index)
            try:
                transform = parent @ _node_matrix(node)
            except (TypeError, ValueError) as exc:
                raise self.fail(f"nodes[{index}]: {exc}") from None
            if "mesh" in node:
                primitives += self._primitives(node["mesh"], transform, materials)
            for child in reversed(self._get(node, "children", list, [])):
                stack.append((child, transform, depth + 1))
        primitives = _without_duplicates(primitives)
        ordered = sorted(materials.items(), key=lambda item: item[1])
        resolved = [Material(name="default") if i < 0 else self._material(i) for i, _ in ordered]
        if not primitives:
            raise self.fail("the scene has no triangle meshes")
        return Model(primitives=primitives, materials=resolved, path=self.path)


def _without_duplicates(primitives: list[Primitive]) -> list[Primitive]:
    """Drop primitives identical to an earlier one (same place, same material): some
    exporters write a mesh twice or more, which only costs drawing time."""
    seen: set[tuple[int, int, bytes]] = set()
    kept = []
    for primitive in primitives:
        key = (
            primitive.material,
            len(primitive.positions),
            hashlib.blake2b(
                primitive.positions.tobytes() + primitive.indices.tobytes(), digest_size=16
            ).digest(),
        )
        if key not in seen:
            seen.add(key)
            kept.append(primitive)
    return kept


def _node_matrix(node: dict[str, Any]) -> np.ndarray:
    """A node's local transform (4, 4): its ``matrix`` or T * R * S."""
    if "matrix" in node:
        values = node["matrix"]
        if not (isinstance(values, list) and len(values) == 16):
            raise ValueError("matrix must be 16 numbers")
        return np.array(values, dtype=np.float64).reshape(4, 4).T  # stored column-major
    translation = np.array(node.get("translation", [0.0, 0.0, 0.0]), dtype=np.float64)
    x, y, z, w = (float(v) for v in node.get("rotation", [0.0, 0.0, 0.0, 1.0]))
    scale = np.array(node.get("scale", [1.0, 1.0, 1.0]), dtype=np.float64)
    if translation.shape != (3,) or scale.shape != (3,):
        raise ValueError("translation and scale must be 3 numbers")
    norm = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    matrix = np.eye(4)
    matrix[:3, :3] = rotation * scale
    matrix[:3, 3] = translation
    return matrix


def _triangles(indices: np.ndarray, mode: int) -> np.ndarray:
    """A triangle list from TRIANGLES, TRIANGLE_STRIP or TRIANGLE_FAN indices."""
    if mode == _TRIANGLES:
        return indices[: len(indices) - len(indices) % 3]
    n = len(indices) - 2
    if n <= 0:
        return indices[:0]
    k = np.arange(n)
    if mode == _TRIANGLE_FAN:
        return np.stack([np.full(n, indices[0]), indices[k + 1], indices[k + 2]], 1).reshape(-1)
    odd = k % 2 == 1  # strips alternate winding
    a = np.where(odd, indices[k + 1], indices[k])
    b = np.where(odd, indices[k], indices[k + 1])
    return np.stack([a, b, indices[k + 2]], 1).reshape(-1)


def _apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (points.astype(np.float64) @ transform[:3, :3].T + transform[:3, 3]).astype(np.float32)


def _unit(vectors: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(length, 1e-12)).astype(np.float32)


def vertex_normals(positions: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals of a triangle list (for primitives that have none)."""
    triangles = np.asarray(indices, dtype=np.int64).reshape(-1, 3)
    p = positions.astype(np.float64)
    face = np.cross(
        p[triangles[:, 1]] - p[triangles[:, 0]], p[triangles[:, 2]] - p[triangles[:, 0]]
    )
    normals = np.zeros_like(p)
    for corner in range(3):
        np.add.at(normals, triangles[:, corner], face)
    return _unit(normals)


# --- writing --------------------------------------------------------------------------------


@dataclass
class MeshData:
    """A mesh to write: one primitive, in the file's units and axes."""

    name: str
    positions: np.ndarray  # (N, 3)
    normals: np.ndarray  # (N, 3)
    indices: np.ndarray  # (M,) triangles
    material: int
    uvs: np.ndarray | None = None  # (N, 2)


def save(
    path: str | Path,
    meshes: Sequence[MeshData],
    materials: Sequence[Material],
    *,
    generator: str = "arfx",
    extras: dict[str, Any] | None = None,
) -> None:
    """Write ``meshes`` as a glTF 2.0 file: ``.glb`` (one binary) or ``.gltf`` + ``.bin``.

    Each mesh becomes one node (no transform) of the single scene. Material textures are
    not written (the procedural models have none).
    """
    path = Path(path)
    binary = bytearray()
    views: list[dict[str, Any]] = []
    accessors: list[dict[str, Any]] = []

    def add(array: np.ndarray, kind: str, component: int, target: int, bounds: bool) -> int:
        while len(binary) % 4:
            binary.append(0)
        data = np.ascontiguousarray(array)
        views.append(
            {"buffer": 0, "byteOffset": len(binary), "byteLength": data.nbytes, "target": target}
        )
        binary.extend(data.tobytes())
        accessor: dict[str, Any] = {
            "bufferView": len(views) - 1,
            "componentType": component,
            "count": len(data),
            "type": kind,
        }
        if bounds:
            accessor["min"] = [float(v) for v in data.reshape(len(data), -1).min(axis=0)]
            accessor["max"] = [float(v) for v in data.reshape(len(data), -1).max(axis=0)]
        accessors.append(accessor)
        return len(accessors) - 1

    gltf_meshes = []
    for mesh in meshes:
        attributes = {
            "POSITION": add(mesh.positions.astype("<f4"), "VEC3", 5126, 34962, True),
            "NORMAL": add(
                _unit(np.asarray(mesh.normals)).astype("<f4"), "VEC3", 5126, 34962, False
            ),
        }
        if mesh.uvs is not None:
            attributes["TEXCOORD_0"] = add(mesh.uvs.astype("<f4"), "VEC2", 5126, 34962, False)
        indices = add(
            np.asarray(mesh.indices).reshape(-1).astype("<u4"), "SCALAR", 5125, 34963, True
        )
        gltf_meshes.append(
            {
                "name": mesh.name,
                "primitives": [
                    {"attributes": attributes, "indices": indices, "material": mesh.material}
                ],
            }
        )
    while len(binary) % 4:
        binary.append(0)
    gltf_materials = []
    for material in materials:
        entry: dict[str, Any] = {
            "name": material.name,
            "pbrMetallicRoughness": {
                "baseColorFactor": [round(float(c), 6) for c in material.base_color],
                "metallicFactor": float(material.metallic),
                "roughnessFactor": float(material.roughness),
            },
            "doubleSided": bool(material.double_sided),
        }
        if material.alpha_mode != "OPAQUE":
            entry["alphaMode"] = material.alpha_mode
        if material.alpha_mode == "MASK":
            entry["alphaCutoff"] = float(material.alpha_cutoff)
        gltf_materials.append(entry)
    asset: dict[str, Any] = {"version": "2.0", "generator": generator}
    if extras:
        asset["extras"] = extras
    doc: dict[str, Any] = {
        "asset": asset,
        "scene": 0,
        "scenes": [{"nodes": list(range(len(meshes)))}],
        "nodes": [{"name": m.name, "mesh": i} for i, m in enumerate(meshes)],
        "meshes": gltf_meshes,
        "materials": gltf_materials,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
    }
    if path.suffix.lower() == ".glb":
        text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 4)
        total = 12 + 8 + len(text) + 8 + len(binary)
        out = struct.pack("<4sII", _GLB_MAGIC, 2, total)
        out += struct.pack("<II", len(text), _CHUNK_JSON) + text
        out += struct.pack("<II", len(binary), _CHUNK_BIN) + bytes(binary)
        path.write_bytes(out)
    elif path.suffix.lower() == ".gltf":
        bin_path = path.with_suffix(".bin")
        doc["buffers"][0]["uri"] = bin_path.name
        bin_path.write_bytes(bytes(binary))
        path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    else:
        raise GltfError(f"{path}: write .glb or .gltf")
