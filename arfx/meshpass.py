"""Mesh passes: a glTF model drawn over the frame for every face, placed with its head pose.

The compositor hands a mesh pass (a manifest pass with ``mesh = ...``, see
``arfx.effect.PassSpec``) to :class:`MeshRenderer`, which

1. copies the pass's input image into a multisampled colour + depth buffer (MSAA, so thin
   frames have smooth edges; untouched pixels come out of the resolve exactly as they went
   in) and clears the depth;
2. with ``occluder = "head"``, draws every face's head (``arfx.occluder``) into the depth
   buffer only, so what lies behind the head fails the depth test (the skull and ears,
   closed, with their back faces culled: on a software renderer every triangle costs);
3. draws every face's opaque and MASK primitives (depth written), then its BLEND primitives
   (depth tested, not written; premultiplied alpha: ``ONE, ONE_MINUS_SRC_ALPHA``), with the
   effect's vertex and fragment shaders and a perspective projection built from the frame's
   camera intrinsics (:func:`projection_matrix`);
4. resolves the result into the pass's render target.

GPU objects (the model's buffers and textures, vertex arrays, the MSAA buffer, the occluder)
are made once and reused; models are re-read only when their file changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import moderngl
import numpy as np

from . import gltf
from .effect import Effect, FrameContext
from .errors import EffectError
from .occluder import head_occluder, head_width_factor
from .pose import camera_matrix

NEAR_MM = 10.0
"""Near clipping plane, millimetres in front of the camera."""
FAR_MM = 20_000.0
"""Far clipping plane, millimetres."""
MSAA_SAMPLES = 4
REGION_MARGIN = 0.35
"""The multisampled buffer is only filled and resolved where a model can be (llvmpipe pays
per sample): the box the pass's hooks give as ``arfx_mesh_boxes``, else each face's box grown
by this fraction of its size on every side."""
MESH_BOX_MARGIN = 2.0
"""Pixels around a hook's ``arfx_mesh_boxes``: multisampled edges reach half a pixel out."""
_CACHED_MODELS = 4
_ALPHA_MODES = {mode: i for i, mode in enumerate(gltf.ALPHA_MODES)}

# At the far plane (depth 1): drawn with the depth test passing always, the copy of the input
# into the multisampled layer also resets its depth, in place of a clear.
_FULLSCREEN_VERTEX = """
#version 330 core
void main() {
    vec2 corner = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    gl_Position = vec4(corner * 2.0 - 1.0, 1.0, 1.0);
}
"""
_COPY_FRAGMENT = """
#version 330 core
uniform sampler2D u_frame;
out vec4 color;
void main() { color = texelFetch(u_frame, ivec2(gl_FragCoord.xy), 0); }
"""
_OCCLUDER_VERTEX = """
#version 330 core
in vec3 in_position;
uniform mat3 u_rotation;
uniform vec3 u_translation;
uniform float u_width;  // the head's width relative to the canonical one
uniform mat4 u_projection;
void main() {
    vec3 head = in_position * vec3(u_width, 1.0, 1.0);
    gl_Position = u_projection * vec4(u_rotation * head + u_translation, 1.0);
}
"""
_OCCLUDER_FRAGMENT = """
#version 330 core
out vec4 color;
void main() { color = vec4(0.0); }
"""


def projection_matrix(
    camera: np.ndarray, size: tuple[int, int], near: float = NEAR_MM, far: float = FAR_MM
) -> np.ndarray:
    """(4, 4) camera frame (mm, OpenCV axes) -> clip space for a frame of ``size`` (w, h).

    A camera point lands on the pixel ``camera`` projects it to: x_ndc = 2u/w - 1 and,
    because frames are uploaded row 0 first, y_ndc = 2v/h - 1. Depth runs from -1 at
    ``near`` to 1 at ``far``.
    """
    width, height = size
    k = np.asarray(camera, dtype=np.float64)
    return np.array(
        [
            [2.0 * k[0, 0] / width, 2.0 * k[0, 1] / width, 2.0 * k[0, 2] / width - 1.0, 0.0],
            [0.0, 2.0 * k[1, 1] / height, 2.0 * k[1, 2] / height - 1.0, 0.0],
            [0.0, 0.0, (far + near) / (far - near), -2.0 * far * near / (far - near)],
            [0.0, 0.0, 1.0, 0.0],
        ]
    )


def _mesh_box(face: Any, index: int, mesh_boxes: Any) -> tuple[float, float, float, float]:
    """Where face ``index``'s model can be on screen: the hooks' box for it grown by
    MESH_BOX_MARGIN pixels, or else the face's landmark box grown by REGION_MARGIN."""
    if mesh_boxes is not None:
        x0, y0, x1, y1 = (float(v) for v in np.asarray(mesh_boxes, dtype=np.float64)[index])
        if x1 > x0 and y1 > y0:
            return (
                x0 - MESH_BOX_MARGIN,
                y0 - MESH_BOX_MARGIN,
                x1 + MESH_BOX_MARGIN,
                y1 + MESH_BOX_MARGIN,
            )
    x0, y0, x1, y1 = face.box
    grow = REGION_MARGIN * max(x1 - x0, y1 - y0)
    return x0 - grow, y0 - grow, x1 + grow, y1 + grow


def _region(
    boxes: list[tuple[float, float, float, float]], size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) in pixels holding every box, inside the frame; None if that is
    empty. Rows count from the image's top, as GL's do here."""
    if not boxes:
        return None
    width, height = size
    x0 = y0 = float("inf")
    x1 = y1 = float("-inf")
    for bx0, by0, bx1, by1 in boxes:
        x0, y0 = min(x0, bx0), min(y0, by0)
        x1, y1 = max(x1, bx1), max(y1, by1)
    left, top = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    right, bottom = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
    if right <= left or bottom <= top:
        return None
    return left, top, right - left, bottom - top


def _column_major(matrix: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(matrix, dtype=np.float32).T)


@dataclass
class _GpuPrimitive:
    vbo: moderngl.Buffer
    ibo: moderngl.Buffer
    material: int
    blended: bool


@dataclass
class _GpuModel:
    model: gltf.Model
    primitives: list[_GpuPrimitive]
    textures: dict[int, moderngl.Texture]  # material index -> base colour texture
    bounds: tuple[np.ndarray, np.ndarray]
    stamp: tuple[int, int]
    vaos: dict[int, tuple[moderngl.Program, list[moderngl.VertexArray]]] = field(
        default_factory=dict
    )

    def release(self) -> None:
        for _, vaos in self.vaos.values():
            for vao in vaos:
                vao.release()
        self.vaos = {}
        for primitive in self.primitives:
            primitive.vbo.release()
            primitive.ibo.release()
        for texture in self.textures.values():
            texture.release()


class MeshRenderer:
    """Draws mesh passes for one compositor (one GL context); see the module docstring."""

    def __init__(self, ctx: moderngl.Context, wait: Callable[[], None] | None = None) -> None:
        self.ctx = ctx
        # Called before the resolve, which waits for the draws: the compositor passes its
        # GIL-free finish on a software renderer (see arfx.compositor.gil_free_finish).
        self._wait = wait
        self._models: dict[Path, _GpuModel] = {}
        self._layer: moderngl.Framebuffer | None = None
        self._layer_parts: list[Any] = []
        self._copy = ctx.program(vertex_shader=_FULLSCREEN_VERTEX, fragment_shader=_COPY_FRAGMENT)
        self._copy_vao = ctx.vertex_array(self._copy, [])
        self._occluder = ctx.program(
            vertex_shader=_OCCLUDER_VERTEX, fragment_shader=_OCCLUDER_FRAGMENT
        )
        self._occluder_vao: moderngl.VertexArray | None = None
        self._occluder_buffers: list[moderngl.Buffer] = []
        self._occluder_surface = 0  # indices of the open face surface, before the closed parts
        self.samples = MSAA_SAMPLES if ctx.max_samples >= MSAA_SAMPLES else 0

    # -- models --

    def model(self, path: Path, effect: Effect) -> _GpuModel:
        """The uploaded model of ``path``, loaded again if the file changed; errors name the
        effect and the file."""
        try:
            info = path.stat()
        except OSError as exc:
            raise EffectError(
                f"effect {effect.name!r}: {path}: cannot read: {exc.strerror or exc}"
            ) from None
        stamp = (info.st_mtime_ns, info.st_size)
        cached = self._models.get(path)
        if cached is not None and cached.stamp == stamp:
            self._models[path] = self._models.pop(path)  # most recently used last
            return cached
        try:
            model = gltf.load_cached(path)
        except gltf.GltfError as exc:
            raise EffectError(f"effect {effect.name!r}: {exc}") from None
        if cached is not None:
            cached.release()
            del self._models[path]
        uploaded = self._upload(model, stamp)
        self._models[path] = uploaded
        while len(self._models) > _CACHED_MODELS:
            oldest = next(iter(self._models))
            self._models.pop(oldest).release()
        return uploaded

    def _upload(self, model: gltf.Model, stamp: tuple[int, int]) -> _GpuModel:
        primitives = []
        for primitive in model.primitives:
            uvs = primitive.uvs
            if uvs is None:
                uvs = np.zeros((len(primitive.positions), 2), dtype=np.float32)
            interleaved = np.concatenate([primitive.positions, primitive.normals, uvs], axis=1)
            material = model.materials[primitive.material]
            primitives.append(
                _GpuPrimitive(
                    vbo=self.ctx.buffer(np.ascontiguousarray(interleaved, dtype=np.float32)),
                    ibo=self.ctx.buffer(primitive.indices.astype(np.uint32)),
                    material=primitive.material,
                    blended=material.alpha_mode == "BLEND",
                )
            )
        textures = {}
        for index, material in enumerate(model.materials):
            pixels = material.base_texture
            if pixels is not None:
                height, width = pixels.shape[:2]
                texture = self.ctx.texture((width, height), 4, pixels.tobytes(), alignment=1)
                texture.build_mipmaps()
                texture.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
                textures[index] = texture
        return _GpuModel(model, primitives, textures, model.bounds(), stamp)

    def _vaos(self, program: moderngl.Program, model: _GpuModel) -> list[moderngl.VertexArray]:
        entry = model.vaos.get(id(program))
        if entry is not None and entry[0] is program:
            return entry[1]
        # Attributes the shader does not use are skipped in the interleaved layout.
        layout, names = [], []
        for name, size in (("in_position", 3), ("in_normal", 3), ("in_uv", 2)):
            if name in program:
                layout.append(f"{size}f")
                names.append(name)
            else:
                layout.append(f"{4 * size}x")
        vaos = [
            self.ctx.vertex_array(program, [(p.vbo, " ".join(layout), *names)], index_buffer=p.ibo)
            for p in model.primitives
        ]
        model.vaos[id(program)] = (program, vaos)
        return vaos

    # -- drawing --

    def _ensure_layer(self, size: tuple[int, int]) -> moderngl.Framebuffer:
        if self._layer is not None and self._layer.size == size:
            return self._layer
        self._release_layer()
        colour = self.ctx.renderbuffer(size, 4, samples=self.samples)
        depth = self.ctx.depth_renderbuffer(size, samples=self.samples)
        self._layer = self.ctx.framebuffer(color_attachments=[colour], depth_attachment=depth)
        self._layer_parts = [colour, depth]
        return self._layer

    def _occluder_array(self) -> moderngl.VertexArray:
        if self._occluder_vao is None:
            head = head_occluder()
            self._occluder_surface = head.surface_indices
            vbo = self.ctx.buffer(head.vertices.astype(np.float32))
            ibo = self.ctx.buffer(head.indices.astype(np.uint32))
            self._occluder_buffers = [vbo, ibo]
            self._occluder_vao = self.ctx.vertex_array(
                self._occluder, [(vbo, "3f", "in_position")], index_buffer=ibo
            )
        return self._occluder_vao

    def draw(
        self,
        effect: Effect,
        index: int,
        program: moderngl.Program,
        frame: FrameContext,
        params: dict[str, Any],
        target: moderngl.Framebuffer,
        texture_unit: int,
        mesh_boxes: Any = None,
    ) -> None:
        """Draw pass ``index`` of ``effect`` into ``target``, which already holds the pass's
        input image (also bound to texture unit 0). The pass's uniforms are set on
        ``program``. ``mesh_boxes`` (the hooks'
        ``arfx_mesh_boxes``: per face, the pixel box its model covers, zeros if unknown)
        confines the multisampled drawing, the costly part on a CPU renderer, to them."""
        from .compositor import MAX_FACES, _set

        spec = effect.spec
        pass_spec = spec.passes[index]
        model = self.model(spec.mesh_path(pass_spec, params), effect)
        height, width = frame.image.shape[:2]
        camera = frame.camera if frame.camera is not None else camera_matrix((width, height))
        projection = _column_major(projection_matrix(camera, (width, height)))
        faces = [
            (i, face)
            for i, face in enumerate(frame.faces[:MAX_FACES])
            if getattr(face, "pose", None) is not None
        ]
        # The target holds the input (the compositor copied it); the faces' region is drawn
        # multisampled and resolved into it.
        _set(self._copy, "u_frame", 0)
        region = _region([_mesh_box(face, i, mesh_boxes) for i, face in faces], (width, height))
        if region is None:
            return
        layer = self._ensure_layer((width, height))
        layer.scissor = region
        layer.use()
        ctx = self.ctx
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.depth_func = "1"  # always: the copy writes every sample's colour and depth 1
        try:
            self._copy_vao.render(moderngl.TRIANGLES, vertices=3)
        finally:
            ctx.depth_func = "<"
        # glTF front faces wind counter-clockwise; images are drawn with row 0 at GL's y = 0
        # (see arfx.compositor), a mirror image, so on screen they wind clockwise.
        ctx.front_face = "cw"
        try:
            if pass_spec.occluder == "head" and faces:
                vao = self._occluder_array()
                layer.color_mask = (False, False, False, False)
                layer.use()  # moderngl applies a framebuffer's masks when it is bound
                _set(self._occluder, "u_projection", projection)
                for _, face in faces:
                    width = head_width_factor(face.landmarks, face.pose, camera)
                    _set(self._occluder, "u_width", float(width))
                    _set(self._occluder, "u_rotation", _column_major(face.pose.rotation))
                    _set(self._occluder, "u_translation", tuple(map(float, face.pose.translation)))
                    ctx.disable(moderngl.CULL_FACE)
                    vao.render(moderngl.TRIANGLES, vertices=self._occluder_surface)
                    ctx.enable(moderngl.CULL_FACE)
                    closed = vao.vertices - self._occluder_surface
                    vao.render(moderngl.TRIANGLES, vertices=closed, first=self._occluder_surface)
                layer.color_mask = (True, True, True, True)
                layer.use()
            _set(program, "u_projection", projection)
            _set(program, "u_mesh_min", tuple(map(float, model.bounds[0])))
            _set(program, "u_mesh_max", tuple(map(float, model.bounds[1])))
            vaos = self._vaos(program, model)
            for blended in (False, True):
                if blended:
                    if not any(p.blended for p in model.primitives):
                        break
                    layer.depth_mask = False
                    layer.use()
                    ctx.enable(moderngl.BLEND)
                    ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
                for face_index, _ in faces:
                    _set(program, "u_face", face_index)
                    for primitive, vao in zip(model.primitives, vaos, strict=True):
                        if primitive.blended == blended:
                            self._set_material(program, model, primitive.material, texture_unit)
                            if model.model.materials[primitive.material].double_sided:
                                ctx.disable(moderngl.CULL_FACE)
                            else:
                                ctx.enable(moderngl.CULL_FACE)
                            vao.render(moderngl.TRIANGLES)
            if self._wait is not None:
                self._wait()
            ctx.copy_framebuffer(target, layer)  # the resolve, inside the region (scissor)
        finally:
            layer.depth_mask = True
            layer.color_mask = (True, True, True, True)
            layer.scissor = None
            layer.use()
            ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
            ctx.front_face = "ccw"

    @staticmethod
    def _set_material(
        program: moderngl.Program, model: _GpuModel, index: int, texture_unit: int
    ) -> None:
        from .compositor import _set

        material = model.model.materials[index]
        _set(program, "u_material", index)
        _set(program, "u_base_color", tuple(float(c) for c in material.base_color))
        _set(program, "u_metallic", float(material.metallic))
        _set(program, "u_roughness", float(material.roughness))
        _set(program, "u_alpha_mode", _ALPHA_MODES[material.alpha_mode])
        _set(program, "u_alpha_cutoff", float(material.alpha_cutoff))
        texture = model.textures.get(index)
        _set(program, "u_has_base_texture", texture is not None)
        if texture is not None:
            texture.use(location=texture_unit)
            _set(program, "u_base_texture", texture_unit)

    # -- lifetime --

    def forget(self, programs: list[moderngl.Program]) -> None:
        """Drop the vertex arrays made for ``programs`` (about to be released)."""
        ids = {id(p) for p in programs}
        for model in self._models.values():
            for key in [k for k in model.vaos if k in ids]:
                for vao in model.vaos.pop(key)[1]:
                    vao.release()

    def _release_layer(self) -> None:
        if self._layer is not None:
            self._layer.release()
            self._layer = None
        for part in self._layer_parts:
            part.release()
        self._layer_parts = []

    def gl_objects(self) -> int:
        """How many GL objects this renderer holds now (for leak checks)."""
        count = 3 + len(self._layer_parts) + (self._layer is not None)  # copy, vao, occluder
        count += (self._occluder_vao is not None) + len(self._occluder_buffers)
        for model in self._models.values():
            count += sum(len(vaos) for _, vaos in model.vaos.values())
            count += 2 * len(model.primitives) + len(model.textures)
        return count

    def release(self) -> None:
        """Release every GL object (the context stays)."""
        for model in self._models.values():
            model.release()
        self._models = {}
        self._release_layer()
        if self._occluder_vao is not None:
            self._occluder_vao.release()
            self._occluder_vao = None
        for buffer in self._occluder_buffers:
            buffer.release()
        self._occluder_buffers = []
        for obj in (self._copy_vao, self._copy, self._occluder):
            obj.release()
