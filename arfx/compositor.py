"""The GPU compositor: one OpenGL context, the frame as a texture, a chain of effect passes.

Each pass draws one full-screen triangle with an effect's fragment shader into one of two
ping-pong framebuffers; the last one is read back into a numpy array. Textures, programs
and framebuffers live as long as the compositor and are only re-created when the frame
size changes, never per frame.

Images are uploaded row 0 first and read back the same way, so GL's bottom-up convention
never shows: in every shader pixel (0, 0) is the image's top-left, like landmark pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import moderngl
import numpy as np

from .effect import Effect, FrameContext
from .errors import ArfxError, EffectError

MAX_FACES = 8  # must equal ARFX_MAX_FACES in shaders/arfx.glsl

_VERTEX_SHADER = """
#version 330 core
// One triangle that covers the viewport; no vertex buffer needed.
void main() {
    vec2 corner = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}
"""


def create_context(backend: str | None = "egl") -> moderngl.Context:
    """A standalone (headless) context; ``backend=None`` lets moderngl pick (GLX/WGL/CGL)."""
    try:
        if backend is None:
            return moderngl.create_standalone_context(require=330)
        return moderngl.create_standalone_context(require=330, backend=backend)
    except Exception as exc:  # noqa: BLE001 - glcontext raises plain Exception subclasses
        raise ArfxError(
            f"cannot create an OpenGL 3.3 context (backend {backend or 'default'}): {exc}"
        ) from exc


class Compositor:
    """Renders effect passes over frames with one reusable GL context."""

    def __init__(self, *, backend: str | None = "egl") -> None:
        self.ctx = create_context(backend)
        # Read now, while the new context is current; later reads may find it inactive.
        self.renderer = str(self.ctx.info.get("GL_RENDERER", "unknown"))
        self._programs: dict[tuple[str, str], tuple[moderngl.Program, moderngl.VertexArray]] = {}
        self._size: tuple[int, int] | None = None
        self._source: moderngl.Texture | None = None
        self._targets: list[tuple[moderngl.Texture, moderngl.Framebuffer]] = []
        self._masks: dict[str, moderngl.Texture] = {}
        self._closed = False

    def render(
        self,
        frame: FrameContext,
        passes: Sequence[tuple[Effect, Mapping[str, Any]]],
    ) -> np.ndarray:
        """Run ``passes`` (effect, uniforms) over ``frame.image``; return a new RGB array.

        Raises EffectError naming the effect when its shader fails to compile or link.
        """
        if self._closed:
            raise ArfxError("compositor is closed")
        image = frame.image
        height, width = image.shape[:2]
        with self.ctx:
            programs = [self._program(effect) for effect, _ in passes]
            self._ensure_size(width, height)
            assert self._source is not None
            self._source.write(image)
            for name, mask in frame.masks.items():
                self._mask_texture(name).write(np.ascontiguousarray(mask))
            boxes = np.zeros((MAX_FACES, 4), dtype=np.float32)
            for i, face in enumerate(frame.faces[:MAX_FACES]):
                boxes[i] = face.box
            common = {
                "u_resolution": (float(width), float(height)),
                "u_face_count": min(len(frame.faces), MAX_FACES),
                "u_face_box": boxes,
            }
            source = self._source
            for index, ((effect, uniforms), (program, vao)) in enumerate(
                zip(passes, programs, strict=True)
            ):
                texture, framebuffer = self._targets[index % 2]
                framebuffer.use()
                source.use(location=0)
                _set(program, "u_frame", 0)
                for unit, name in enumerate(effect.spec.masks, start=1):
                    if name not in frame.masks:
                        raise EffectError(f"effect {effect.name!r} needs mask {name!r}")
                    self._masks[name].use(location=unit)
                    _set(program, f"u_mask_{name}", unit)
                for key, value in {**common, **uniforms}.items():
                    _set(program, key, value)
                vao.render(moderngl.TRIANGLES, vertices=3)
                source = texture
            out = np.empty((height, width, 3), dtype=np.uint8)
            if passes:
                self._targets[(len(passes) - 1) % 2][1].read_into(out, components=3, alignment=1)
            else:
                out[...] = image
        return out

    def prepare(self, effect: Effect) -> None:
        """Compile ``effect``'s shader now, so a broken one fails before the first frame."""
        with self.ctx:
            self._program(effect)

    def _program(self, effect: Effect) -> tuple[moderngl.Program, moderngl.VertexArray]:
        key = (str(effect.spec.folder), effect.spec.shader)
        if key not in self._programs:
            source = effect.shader_source()
            try:
                program = self.ctx.program(
                    vertex_shader=_VERTEX_SHADER, fragment_shader=source.text
                )
            except moderngl.Error as exc:
                raise EffectError(
                    f"effect {effect.name!r}: shader failed to compile:\n{source.explain(str(exc))}"
                ) from None
            self._programs[key] = (program, self.ctx.vertex_array(program, []))
        return self._programs[key]

    def _ensure_size(self, width: int, height: int) -> None:
        if self._size == (width, height):
            return
        self._release_frame_objects()
        self._source = self.ctx.texture((width, height), 3, alignment=1)
        for _ in range(2):
            texture = self.ctx.texture((width, height), 4)
            self._targets.append((texture, self.ctx.framebuffer(color_attachments=[texture])))
        self._size = (width, height)

    def _mask_texture(self, name: str) -> moderngl.Texture:
        assert self._size is not None
        texture = self._masks.get(name)
        if texture is None or texture.size != self._size:
            if texture is not None:
                texture.release()
            texture = self.ctx.texture(self._size, 1, alignment=1)
            texture.repeat_x = texture.repeat_y = False
            self._masks[name] = texture
        return texture

    def _release_frame_objects(self) -> None:
        for texture, framebuffer in self._targets:
            framebuffer.release()
            texture.release()
        self._targets = []
        if self._source is not None:
            self._source.release()
            self._source = None
        for texture in self._masks.values():
            texture.release()
        self._masks = {}
        self._size = None

    def forget(self, effect: Effect) -> None:
        """Drop the compiled program of ``effect`` (its shader file changed)."""
        entry = self._programs.pop((str(effect.spec.folder), effect.spec.shader), None)
        if entry is not None:
            with self.ctx:
                entry[1].release()
                entry[0].release()

    def close(self) -> None:
        """Release every GL object and the context itself."""
        if self._closed:
            return
        self._closed = True
        with self.ctx:
            self._release_frame_objects()
            for program, vao in self._programs.values():
                vao.release()
                program.release()
            self._programs = {}
        self.ctx.release()

    def __enter__(self) -> Compositor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _set(program: moderngl.Program, name: str, value: Any) -> None:
    """Set a uniform if the shader uses it (the GLSL compiler drops unused ones)."""
    member = program.get(name, None)
    if member is None:
        return
    if isinstance(value, np.ndarray):
        member.write(np.ascontiguousarray(value, dtype=value.dtype).tobytes())
    else:
        member.value = value
