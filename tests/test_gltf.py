"""The glTF 2.0 reader and writer: real third-party files, the spec's corners, clear errors."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from arfx import gltf
from arfx.gltf import GltfError, Material, MeshData

from .conftest import data_root, require


def _eyewear(name: str) -> Path:
    return require(data_root() / "eyewear" / name / "scene.gltf")


def test_loads_the_shared_sunglasses_with_their_node_transforms() -> None:
    model = gltf.load(_eyewear("sunglasses_gltf"))
    # 8 primitives in the file, but each mesh is written 2 or 4 times at the same place.
    assert len(model.primitives) == 2
    assert [len(p.positions) for p in model.primitives] == [964, 14448]
    assert model.triangle_count == 1920 + 28800
    assert [m.name for m in model.materials] == ["Metal-DecorationShape"]  # all use material 0
    metal = model.materials[0]
    assert metal.base_color == (0.8, 0.8, 0.8, 1.0) and metal.metallic == 1.0
    assert metal.double_sided and metal.alpha_mode == "OPAQUE"
    # The Sketchfab root turns the Z-up export to glTF's Y-up: the frame is 0.81 high in y,
    # its front spans z, and the temples run along -x.
    lo, hi = model.bounds()
    np.testing.assert_allclose(hi - lo, [2.617, 0.812, 1.886], atol=2e-3)
    for primitive in model.primitives:
        assert primitive.indices.max() < len(primitive.positions)
        np.testing.assert_allclose(np.linalg.norm(primitive.normals, axis=1), 1.0, atol=1e-4)


def test_loads_the_shared_pixel_glasses_with_uvs_and_two_materials() -> None:
    model = gltf.load(_eyewear("pixel_glasses_gltf"))
    assert [len(p.positions) for p in model.primitives] == [704, 48]
    assert [p.triangle_count for p in model.primitives] == [388, 24]
    assert [(m.name, round(m.base_color[0], 4)) for m in model.materials] == [
        ("black", 0.1368),
        ("white", 0.9231),
    ]
    assert all(p.uvs is not None and p.uvs.shape == (len(p.positions), 2) for p in model.primitives)
    lo, hi = model.bounds()
    np.testing.assert_allclose(hi - lo, [139.39, 26.90, 131.73], atol=0.01)  # millimetres


def _cube() -> MeshData:
    corners = np.array(
        [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float32
    )
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    indices = np.array([[a, b, c, a, c, d] for a, b, c, d in faces], dtype=np.uint32).ravel()
    return MeshData("cube", corners, gltf.vertex_normals(corners, indices), indices, 0)


@pytest.mark.parametrize("suffix", [".glb", ".gltf"])
def test_written_files_read_back_the_same(tmp_path: Path, suffix: str) -> None:
    cube = _cube()
    half = MeshData(
        "half",
        cube.positions * 0.5 + 3,
        cube.normals,
        cube.indices[:18],
        1,
        uvs=cube.positions[:, :2],
    )
    materials = [
        Material(name="frame", base_color=(0.1, 0.2, 0.3, 1.0), metallic=0.0, roughness=0.4),
        Material(
            name="lens", base_color=(0.5, 0.5, 0.6, 0.3), alpha_mode="BLEND", double_sided=True
        ),
    ]
    path = tmp_path / f"model{suffix}"
    gltf.save(path, [cube, half], materials)
    if suffix == ".gltf":
        assert (tmp_path / "model.bin").is_file()
        doc = json.loads(path.read_text())
        assert doc["accessors"][0]["min"] == [-1.0, -1.0, -1.0]  # POSITION bounds, as required
    model = gltf.load(path)
    assert len(model.primitives) == 2
    for written, read in zip([cube, half], model.primitives, strict=True):
        np.testing.assert_array_equal(read.positions, written.positions)
        np.testing.assert_array_equal(read.indices, written.indices)
        np.testing.assert_allclose(read.normals, written.normals, atol=1e-6)
    assert model.primitives[0].uvs is None
    np.testing.assert_array_equal(model.primitives[1].uvs, cube.positions[:, :2])
    assert [(m.name, m.alpha_mode, m.double_sided) for m in model.materials] == [
        ("frame", "OPAQUE", False),
        ("lens", "BLEND", True),
    ]
    np.testing.assert_allclose(model.materials[1].base_color, (0.5, 0.5, 0.6, 0.3))
    assert model.materials[0].roughness == pytest.approx(0.4)


def _data_uri(payload: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(payload).decode()


def test_interleaved_strided_normalized_and_transformed_data(tmp_path: Path) -> None:
    """A triangle strip in an interleaved buffer (byteStride 16: float xyz + uint8 uv
    normalized + 2 bytes padding) under a parent with TRS and a child with a matrix."""
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], np.float32)
    uvs = np.array([[0, 0], [255, 0], [0, 255], [255, 255]], np.uint8)
    interleaved = b"".join(
        p.tobytes() + uv.tobytes() + b"\0\0" for p, uv in zip(positions, uvs, strict=True)
    )
    doc = {
        "asset": {"version": "2.0"},
        "extensionsUsed": ["KHR_materials_clearcoat"],
        "extensionsRequired": ["KHR_materials_clearcoat"],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [
            {
                "children": [1],
                "translation": [10, 0, 0],
                "rotation": [0, 0, 0.7071068, 0.7071068],
                "scale": [2, 2, 2],
            },
            {"mesh": 0, "matrix": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 5, 1]},
        ],
        "meshes": [
            {
                "primitives": [
                    {"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "mode": 5, "material": 0}
                ]
            }
        ],
        "materials": [{"extensions": {"KHR_materials_clearcoat": {"clearcoatFactor": 1}}}],
        "buffers": [{"byteLength": len(interleaved), "uri": _data_uri(interleaved)}],
        "bufferViews": [{"buffer": 0, "byteLength": len(interleaved), "byteStride": 16}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3"},
            {
                "bufferView": 0,
                "byteOffset": 12,
                "componentType": 5121,
                "normalized": True,
                "count": 4,
                "type": "VEC2",
            },
        ],
    }
    path = tmp_path / "strip.gltf"
    path.write_text(json.dumps(doc))
    model = gltf.load(path)
    (primitive,) = model.primitives
    assert primitive.triangle_count == 2
    np.testing.assert_allclose(primitive.uvs, uvs / 255.0)
    # child: z += 5; parent: scale 2, turn 90 deg about z (x -> y), then x += 10.
    expected = np.stack(
        [10 - 2 * positions[:, 1], 2 * positions[:, 0], 2 * (positions[:, 2] + 5)], 1
    )
    np.testing.assert_allclose(primitive.positions, expected, atol=1e-5)
    assert sorted(map(sorted, primitive.indices.reshape(-1, 3).tolist())) == [[0, 1, 2], [1, 2, 3]]
    np.testing.assert_allclose(np.abs(primitive.normals[:, 2]), 1.0, atol=1e-5)  # computed
    assert model.materials[0].base_color == (1.0, 1.0, 1.0, 1.0)


def test_glb_with_an_embedded_png_texture(tmp_path: Path) -> None:
    cube = _cube()
    path = tmp_path / "cube.glb"
    gltf.save(path, [cube], [Material(name="painted")])
    # Add a 2x1 PNG as a bufferView image and use it as the base colour texture.
    data = path.read_bytes()
    json_length = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20 : 20 + json_length])
    binary = bytearray(data[20 + json_length + 8 :])
    png = cv2.imencode(".png", np.array([[[0, 0, 255], [255, 0, 0]]], np.uint8))[1].tobytes()
    doc["bufferViews"].append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(png)})
    binary += png + b"\0" * (-len(png) % 4)
    doc["buffers"][0]["byteLength"] = len(binary)
    doc["images"] = [{"bufferView": len(doc["bufferViews"]) - 1, "mimeType": "image/png"}]
    doc["textures"] = [{"source": 0}]
    doc["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"] = {"index": 0}
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    out = struct.pack("<4sII", b"glTF", 2, 28 + len(text) + len(binary))
    out += struct.pack("<II", len(text), 0x4E4F534A) + text
    out += struct.pack("<II", len(binary), 0x004E4942) + bytes(binary)
    path.write_bytes(out)
    texture = gltf.load(path).materials[0].base_texture
    assert texture is not None and texture.shape == (1, 2, 4)
    assert texture[0, 0].tolist() == [255, 0, 0, 255] and texture[0, 1].tolist() == [0, 0, 255, 255]


def _minimal(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "m.gltf"
    gltf.save(path, [_cube()], [Material()])
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))
    return path


def test_errors_name_the_file_and_what_is_wrong(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.glb"
    with pytest.raises(GltfError, match=r"nothing\.glb: cannot read"):
        gltf.load(missing)
    broken = tmp_path / "broken.gltf"
    broken.write_text('{"asset": {"version": "2.0"},\n  "nodes": [}')
    with pytest.raises(GltfError, match=r"broken\.gltf: invalid JSON at line 2"):
        gltf.load(broken)
    garbage = tmp_path / "garbage.glb"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(GltfError, match=r"garbage\.glb: not a glTF file"):
        gltf.load(garbage)
    with pytest.raises(GltfError, match="only glTF 2.0"):
        gltf.load(_minimal(tmp_path, asset={"version": "1.0"}))
    with pytest.raises(GltfError, match="KHR_draco_mesh_compression"):
        gltf.load(_minimal(tmp_path, extensionsRequired=["KHR_draco_mesh_compression"]))
    path = _minimal(tmp_path)
    (tmp_path / "m.bin").write_bytes((tmp_path / "m.bin").read_bytes()[:40])  # truncated
    with pytest.raises(GltfError, match=r"m\.gltf: buffers\[0\] has 40 bytes"):
        gltf.load(path)
    for uri, why in (
        ("../m.bin", "outside the model's folder"),
        ("/etc/passwd", "outside the model's folder"),
        ("https://example.com/m.bin", "not a local file"),
    ):
        doc = json.loads(_minimal(tmp_path).read_text())
        doc["buffers"][0]["uri"] = uri
        path.write_text(json.dumps(doc))
        with pytest.raises(GltfError, match=why):
            gltf.load(path)
    doc = json.loads(_minimal(tmp_path).read_text())
    doc["meshes"][0]["primitives"][0]["indices"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(GltfError, match=r"accessors\[99\] does not exist"):
        gltf.load(path)


def test_a_glb_truncated_in_its_chunks_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cube.glb"
    gltf.save(path, [_cube()], [Material()])
    data = path.read_bytes()
    path.write_bytes(data[:-50])
    with pytest.raises(GltfError, match="cube.glb: GLB says"):
        gltf.load(path)
    path.write_bytes(data[:12] + data[12:16] + data[16:20] + b"{")  # chunk longer than file
    with pytest.raises(GltfError, match="cube.glb"):
        gltf.load(path)
