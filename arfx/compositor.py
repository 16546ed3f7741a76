"""The GPU compositor: one OpenGL context, the frame as a texture, a chain of effect passes.

Each pass draws one full-screen triangle with a fragment shader into one of three render
targets; the last one is read back into a numpy array. Three, not two, because a multi-pass
effect reads the image that entered it (``u_input``) while its passes ping-pong, and because
a failing effect is dropped by simply going on from its input. Textures, programs and
framebuffers live as long as the compositor and are only re-created when the frame size (or
an effect's program or texture) changes, never per frame.

Images are uploaded row 0 first and read back the same way, so GL's bottom-up convention
never shows: in every shader pixel (0, 0) is the image's top-left, like landmark pixels.

An effect whose manifest declares a ``region`` (head, face, lips) is drawn only inside that
region around each face (the scissor test; see ``arfx.regions``): before such a pass, its
input is copied into its target over the frame's working area (the union of every effect's
regions), so outside its region the pass leaves the picture as it came. Only the working
area is read back. On a CPU renderer this is most of the frame time saved.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import cv2
import moderngl
import numpy as np

from .effect import Effect, EffectSpec, FrameContext, missing_input_hint
from .errors import ArfxError, EffectError
from .pose import camera_matrix
from .regions import Rect, bounding_rect, coverage_rects, intersect, region_rects

if TYPE_CHECKING:
    from .meshpass import MeshRenderer

TILES_PER_DRAW = 128
"""Tile rectangles one draw call of a pass with ``cover`` takes (a vertex uniform array)."""
MAX_FACES = 8  # must equal ARFX_MAX_FACES in shaders/arfx.glsl
PASS_TIME_PREFIX = "composite: "
"""``Compositor.pass_times`` keys: this, then the effect's name (and the pass's number)."""
LANDMARKS = 478  # must equal ARFX_LANDMARKS in shaders/arfx.glsl

# Texture units: the fixed inputs first, then the effect's masks, then its textures.
_UNIT_FRAME, _UNIT_INPUT, _UNIT_LANDMARKS, _FIRST_FREE_UNIT = 0, 1, 2, 3

_VERTEX_SHADER = (
    f"#version 330 core\n#define ARFX_TILES {TILES_PER_DRAW}\n"
    """// Without u_arfx_tiles: one triangle that covers the viewport (no vertex buffer needed).
// With them (a pass with `cover`): instance i draws tile rectangle u_arfx_tile[i] (x, y,
// width, height in pixels) as two triangles, so all of a pass's tiles take one draw call.
uniform int u_arfx_tiles;
uniform vec4 u_arfx_tile[ARFX_TILES];
uniform vec2 u_resolution;
void main() {
    if (u_arfx_tiles == 0) {
        vec2 corner = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
        gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
    } else {
        int v = gl_VertexID > 2 ? gl_VertexID - 2 : gl_VertexID;  // 0 1 2, 1 2 3
        vec2 corner = vec2(float(v & 1), float(v >> 1));
        vec4 tile = u_arfx_tile[gl_InstanceID];
        gl_Position = vec4((tile.xy + corner * tile.zw) / u_resolution * 2.0 - 1.0, 0.0, 1.0);
    }
}
"""
)

FailureHandler = Callable[[Effect, EffectError], None]
# A compiled pass: its program and, for a full-screen pass, the empty vertex array that draws
# it (None for a mesh pass, which arfx.meshpass draws).
_Program = tuple[moderngl.Program, moderngl.VertexArray | None]


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


def gl_function(backend: str | None, name: str, prototype: Any) -> Any | None:
    """The GL function ``name`` as a ctypes function of ``prototype`` (a ``CFUNCTYPE``), or
    None where it cannot be found. ctypes releases the GIL for the call's duration."""
    if backend == "egl":
        library, getter = "libEGL.so.1", "eglGetProcAddress"
    else:  # moderngl's default on Linux: GLX
        library, getter = "libGL.so.1", "glXGetProcAddressARB"
    try:
        lookup = getattr(ctypes.CDLL(library), getter)
    except (OSError, AttributeError):  # another platform, or no such library
        return None
    lookup.restype = ctypes.c_void_p
    lookup.argtypes = [ctypes.c_char_p]
    address = lookup(name.encode())
    return prototype(address) if address else None


def gil_free_finish(backend: str | None) -> Callable[[], None] | None:
    """``glFinish`` called through ctypes, which lets other Python threads run meanwhile
    (None where it cannot be found: then moderngl waits, holding the GIL).

    moderngl keeps Python's GIL for the whole of every call, and a read-back waits until
    the renderer has drawn the frame, which on a software renderer is most of a frame's
    time. Finishing through ctypes first, which releases the GIL, leaves the read-back only
    the copy, so a pipeline's analysis thread runs while this one waits for the GPU. The
    same holds between passes: a pass that samples the one before it (or copies from it)
    waits for it to be drawn, so on a software renderer the compositor finishes after
    every pass.
    """
    return gl_function(backend, "glFinish", ctypes.CFUNCTYPE(None))


_GL_TEXTURE_2D = 0x0DE1
_COPY_IMAGE = ctypes.CFUNCTYPE(
    None,
    # name, target, level, x, y, z of the source, then of the destination; width, height, depth
    *[ctypes.c_uint, ctypes.c_uint, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int] * 2,
    *[ctypes.c_int] * 3,
)


def copy_image_function(ctx: moderngl.Context, backend: str | None) -> Any | None:
    """``glCopyImageSubData`` (GL 4.3, ARB_copy_image), or None where the context lacks it.

    Passes copy their input into their target around what they draw. A framebuffer blit
    does that on a software renderer as a textured draw (0.38 ms for half a 640x360 frame on
    llvmpipe); copying the texels is a memory copy (0.014 ms)."""
    if ctx.version_code < 430 and "GL_ARB_copy_image" not in ctx.extensions:
        return None
    return gl_function(backend, "glCopyImageSubData", _COPY_IMAGE)


def is_software_renderer(renderer: str) -> bool:
    """Whether a GL_RENDERER string names a renderer that runs on the CPU (Mesa's llvmpipe,
    softpipe, SwiftShader)."""
    name = renderer.lower()
    return any(word in name for word in ("llvmpipe", "softpipe", "swiftshader", "software"))


def landmark_array(faces: Sequence[Any]) -> np.ndarray:
    """(MAX_FACES, LANDMARKS, 4) float32: x, y pixels, z, and 1 where the point exists."""
    out = np.zeros((MAX_FACES, LANDMARKS, 4), dtype=np.float32)
    for i, face in enumerate(faces[:MAX_FACES]):
        points = np.asarray(face.landmarks, dtype=np.float32)[:LANDMARKS]
        out[i, : len(points), : points.shape[1]] = points
        out[i, : len(points), 3] = 1.0
    return out


def pose_uniforms(frame: FrameContext) -> dict[str, Any]:
    """``u_face_rotation``, ``u_face_translation`` and ``u_camera`` for ``frame``'s faces.

    GLSL matrices are column-major, so each row-major numpy matrix is written transposed.
    """
    rotation = np.zeros((MAX_FACES, 3, 3), dtype=np.float32)
    translation = np.zeros((MAX_FACES, 3), dtype=np.float32)
    for i, face in enumerate(frame.faces[:MAX_FACES]):
        pose = getattr(face, "pose", None)
        if pose is not None:
            rotation[i] = np.asarray(pose.rotation).T
            translation[i] = pose.translation
    height, width = frame.image.shape[:2]
    camera = frame.camera if frame.camera is not None else camera_matrix((width, height))
    return {
        "u_face_rotation": rotation,
        "u_face_translation": translation,
        "u_camera": np.asarray(camera, dtype=np.float32).T.copy(),
    }


class Compositor:
    """Renders effect passes over frames with one reusable GL context."""

    def __init__(self, *, backend: str | None = "egl") -> None:
        self.ctx = create_context(backend)
        self._finish = gil_free_finish(backend) or self.ctx.finish
        self._copy_image = copy_image_function(self.ctx, backend)
        # Read now, while the new context is current; later reads may find it inactive.
        self.renderer = str(self.ctx.info.get("GL_RENDERER", "unknown"))
        # A CPU renderer draws a pass only when something needs its pixels; a GPU runs the
        # passes while the next ones are issued, which finishing after each would stall.
        self._finish_passes = is_software_renderer(self.renderer)
        # Compiled passes per spec object and face count (ARFX_FACE_COUNT); the spec is kept
        # so its id() cannot be reused.
        self._programs: dict[int, tuple[EffectSpec, dict[int, list[_Program]]]] = {}
        self._size: tuple[int, int] | None = None
        self._source: moderngl.Texture | None = None
        self._source_fb: moderngl.Framebuffer | None = None
        self._rgba: np.ndarray | None = None  # the frame with an alpha channel, for upload
        self._targets: list[tuple[moderngl.Texture, moderngl.Framebuffer]] = []
        self._masks: dict[str, moderngl.Texture] = {}
        self._landmarks: moderngl.Texture | None = None
        self._zero_mask: moderngl.Texture | None = None
        # Per (effect, parameter): the pixels last uploaded (compared by identity) and texture.
        self._images: dict[tuple[int, str], tuple[np.ndarray, moderngl.Texture]] = {}
        self._mesh_renderer: MeshRenderer | None = None  # made for the first mesh pass
        self._closed = False
        self.pass_times: dict[str, list[float]] | None = None
        """Set to a dict to collect seconds per pass and frame, keyed PASS_TIME_PREFIX + NAME
        (NAME the effect's, with the pass's number when several run), on renderers that
        finish every pass anyway (software ones): each time is then the pass's whole work.
        A GPU would have to be stalled after every pass for it, so nothing is collected."""

    def render(
        self,
        frame: FrameContext,
        passes: Sequence[tuple[Effect, Mapping[str, Any]]],
        on_failure: FailureHandler | None = None,
    ) -> np.ndarray:
        """Run each (effect, uniforms) over ``frame.image``; return a new RGB array.

        An effect that fails (its shader does not compile, a uniform cannot be set, GL reports
        an error) raises EffectError naming it, or, with ``on_failure``, is reported there and
        left out of this frame while the other effects render.
        """
        if self._closed:
            raise ArfxError("compositor is closed")
        image = frame.image
        height, width = image.shape[:2]
        with self.ctx:
            self._ensure_size(width, height)
            assert self._source is not None and self._rgba is not None
            # RGBA, like the targets, so copies between them are plain texel copies (and
            # converting here and uploading four channels beats the driver converting three).
            cv2.cvtColor(image, cv2.COLOR_RGB2RGBA, dst=self._rgba)
            self._source.write(self._rgba)
            for name, mask in frame.masks.items():
                self._mask_texture(name).write(np.ascontiguousarray(mask))
            if any(effect.spec.landmarks for effect, _ in passes):
                self._landmark_texture().write(landmark_array(frame.faces).tobytes())
            boxes = np.zeros((MAX_FACES, 4), dtype=np.float32)
            for i, face in enumerate(frame.faces[:MAX_FACES]):
                boxes[i] = face.box
            common: dict[str, Any] = {
                "u_resolution": (float(width), float(height)),
                "u_face_count": min(len(frame.faces), MAX_FACES),
                "u_face_box": boxes,
            }
            if any(effect.spec.pose for effect, _ in passes):
                common.update(pose_uniforms(frame))
            rects = [
                region_rects(
                    effect.spec.region,
                    frame.faces,
                    (width, height),
                    uniforms.get("arfx_draw_boxes"),
                )
                for effect, uniforms in passes
            ]
            area = _working_area(rects)
            current = self._source
            _ = self.ctx.error  # clear a stale error so it is not blamed on an effect
            for (effect, uniforms), effect_rects in zip(passes, rects, strict=True):
                if effect_rects == []:
                    continue  # a face-region effect with no face in this frame
                try:
                    current = self._run(
                        effect, {**common, **uniforms}, frame, current, effect_rects, area
                    )
                except EffectError as exc:
                    if on_failure is None:
                        raise
                    on_failure(effect, exc)
                except Exception as exc:  # noqa: BLE001 - one effect must not stop the frame
                    error = _wrap(effect, exc)
                    if on_failure is None:
                        raise error from exc
                    on_failure(effect, error)
            if current is self._source:
                return image.copy()
            framebuffer = self._framebuffer(current)
            self._finish()  # wait for the renderer without holding the GIL (see above)
            if area is None:
                out = np.empty((height, width, 3), dtype=np.uint8)
                framebuffer.read_into(out, components=3, alignment=1)
                return out
            out = image.copy()
            x, y, w, h = area
            changed = np.empty((h, w, 3), dtype=np.uint8)
            framebuffer.read_into(changed, viewport=area, components=3, alignment=1)
            out[y : y + h, x : x + w] = changed
        return out

    def _framebuffer(self, texture: moderngl.Texture) -> moderngl.Framebuffer:
        if texture is self._source:
            assert self._source_fb is not None
            return self._source_fb
        return next(fb for tex, fb in self._targets if tex is texture)

    def _run(
        self,
        effect: Effect,
        uniforms: Mapping[str, Any],
        frame: FrameContext,
        effect_input: moderngl.Texture,
        rects: list[Rect] | None = None,
        area: Rect | None = None,
    ) -> moderngl.Texture:
        """Draw every pass of ``effect``; returns the texture holding its output.

        With ``rects``, each pass is drawn only inside them, over a copy of its input made
        across ``area`` (None: the whole frame). Never writes ``effect_input``, so on failure
        the caller goes on from it unchanged.
        """
        spec = effect.spec
        programs = self._compiled(spec, min(len(frame.faces), MAX_FACES))
        for name in spec.masks:
            if name not in frame.masks:
                raise EffectError(f"effect {effect.name!r} needs mask {name!r}")
        textures = effect.textures()
        params = effect.params
        current = effect_input
        several = sum(p.enabled(params) for p in spec.passes) > 1  # passes named by number
        for index, (program, vao) in enumerate(programs):
            if not spec.passes[index].enabled(params):
                continue
            start = time.perf_counter()
            texture, framebuffer = next(
                t for t in self._targets if t[0] is not current and t[0] is not effect_input
            )
            framebuffer.use()
            current.use(location=_UNIT_FRAME)
            effect_input.use(location=_UNIT_INPUT)
            _set(program, "u_frame", _UNIT_FRAME)
            _set(program, "u_input", _UNIT_INPUT)
            _set(program, "u_pass", index)
            if spec.landmarks:
                assert self._landmarks is not None
                self._landmarks.use(location=_UNIT_LANDMARKS)
                _set(program, "u_landmarks", _UNIT_LANDMARKS)
            unit = _FIRST_FREE_UNIT
            for name in spec.masks:
                self._masks[name].use(location=unit)
                _set(program, f"u_mask_{name}", unit)
                unit += 1
            for name in spec.optional_masks:
                known = self._masks.get(name) if name in frame.masks else None
                (known or self._zero_mask_texture()).use(location=unit)
                _set(program, f"u_mask_{name}", unit)
                unit += 1
            for name, pixels in textures.items():
                self._image_texture(effect, name, pixels).use(location=unit)
                _set(program, f"u_{name}", unit)
                unit += 1
            for key, value in uniforms.items():
                _set(program, key, value)
            try:
                if vao is None:  # a mesh pass draws over a copy of its input
                    self._copy(current, texture, area)  # None with rects None: the whole frame
                    boxes = uniforms.get("arfx_mesh_boxes")
                    self._meshes().draw(
                        effect, index, program, frame, params, framebuffer, unit, boxes
                    )
                elif rects is None and spec.passes[index].cover is None:
                    vao.render(moderngl.TRIANGLES, vertices=3)
                else:
                    cover = spec.passes[index].cover
                    draw = rects if cover is None else _covered(cover, frame.masks, rects)
                    if draw != [area]:  # parts of the working area stay as they came
                        self._copy(current, texture, area)
                    if cover is None:
                        for rect in draw:
                            framebuffer.scissor = rect
                            framebuffer.use()
                            vao.render(moderngl.TRIANGLES, vertices=3)
                    else:
                        framebuffer.scissor = None
                        framebuffer.use()
                        _draw_tiles(program, vao, draw)
            finally:
                framebuffer.scissor = None
                framebuffer.use()
            if self._finish_passes:
                # The next pass samples this one's target, and moderngl would wait for the
                # renderer there holding the GIL: wait here without it (gil_free_finish).
                self._finish()
                if self.pass_times is not None:
                    name = f"{effect.name} {index + 1}" if several else effect.name
                    seconds = time.perf_counter() - start
                    self.pass_times.setdefault(PASS_TIME_PREFIX + name, []).append(seconds)
            error = self.ctx.error
            if error != "GL_NO_ERROR":
                raise EffectError(
                    f"effect {effect.name!r}: {spec.folder / spec.passes[index].shader}: "
                    f"OpenGL error {error} in pass {index + 1}"
                )
            current = texture
        return current

    def _copy(self, source: moderngl.Texture, target: moderngl.Texture, area: Rect | None) -> None:
        """Copy ``area`` (None: the whole frame) of ``source`` into ``target``: the texels
        themselves where the context can (``copy_image_function``), else a blit."""
        assert self._size is not None
        x, y, width, height = area if area is not None else (0, 0, *self._size)
        if self._copy_image is not None:
            self._copy_image(
                source.glo, _GL_TEXTURE_2D, 0, x, y, 0,
                target.glo, _GL_TEXTURE_2D, 0, x, y, 0,
                width, height, 1,
            )  # fmt: skip
            return
        framebuffer = self._framebuffer(target)
        framebuffer.scissor = area
        framebuffer.use()
        self.ctx.copy_framebuffer(framebuffer, self._framebuffer(source))
        framebuffer.scissor = None
        framebuffer.use()

    def prepare(self, effect: Effect) -> None:
        """Compile ``effect``'s passes now (for one face, the usual case), so a broken one
        fails before the first frame."""
        with self.ctx:
            self._compiled(effect.spec, 1)
            params = effect.params
            for spec in effect.spec.passes:
                if spec.is_mesh and spec.enabled(params):  # its model loads, or fails, now
                    self._meshes().model(effect.spec.mesh_path(spec, params), effect)

    def _meshes(self) -> MeshRenderer:
        if self._mesh_renderer is None:
            from .meshpass import MeshRenderer

            wait = self._finish if self._finish_passes else None
            self._mesh_renderer = MeshRenderer(self.ctx, wait)
        return self._mesh_renderer

    def _compiled(self, spec: EffectSpec, face_count: int) -> list[_Program]:
        """``spec``'s passes compiled for frames of ``face_count`` faces.

        ARFX_FACE_COUNT is a compile-time constant so loops over the faces unroll and read
        per-face uniform arrays at constant indices: llvmpipe reads an array at a loop's
        index once per pixel, which took 2.8 of hair_color's first pass's 4.9 ms at
        1280x720. A face count met for the first time costs one compile.
        """
        entry = self._programs.get(id(spec))
        if entry is None or entry[0] is not spec:
            entry = self._programs[id(spec)] = (spec, {})
        variants = entry[1]
        if face_count in variants:
            return variants[face_count]
        programs: list[_Program] = []
        try:
            sources = zip(
                spec.pass_sources(face_count), spec.vertex_sources(face_count), strict=True
            )
            for source, vertex in sources:
                try:
                    program = self.ctx.program(
                        vertex_shader=_VERTEX_SHADER if vertex is None else vertex.text,
                        fragment_shader=source.text,
                    )
                except moderngl.Error as exc:
                    # Mesa prefixes the stage: "vertex_shader" or "fragment_shader".
                    stage = vertex if vertex is not None and "vertex_shader" in str(exc) else source
                    log = stage.explain(str(exc)).rstrip()
                    raise EffectError(
                        f"effect {spec.name!r}: shader failed to compile:\n{log}"
                        f"{missing_input_hint(spec, log)}"
                    ) from None
                vao = self.ctx.vertex_array(program, []) if vertex is None else None
                programs.append((program, vao))
        except BaseException:
            _release(programs)
            raise
        variants[face_count] = programs
        return programs

    def _ensure_size(self, width: int, height: int) -> None:
        if self._size == (width, height):
            return
        self._release_frame_objects()
        self._source = self.ctx.texture((width, height), 4)
        self._rgba = np.empty((height, width, 4), np.uint8)
        self._source_fb = self.ctx.framebuffer(color_attachments=[self._source])
        for _ in range(3):
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

    def _zero_mask_texture(self) -> moderngl.Texture:
        """An optional mask the session's mask source lacks: zeros, frame-sized like every
        mask, so shaders may read it at their own pixel (``arfx_mask_here``)."""
        assert self._size is not None
        if self._zero_mask is None or self._zero_mask.size != self._size:
            if self._zero_mask is not None:
                self._zero_mask.release()
            width, height = self._size
            self._zero_mask = self.ctx.texture(self._size, 1, bytes(width * height), alignment=1)
            self._zero_mask.repeat_x = self._zero_mask.repeat_y = False
        return self._zero_mask

    def _landmark_texture(self) -> moderngl.Texture:
        if self._landmarks is None:
            self._landmarks = self.ctx.texture((LANDMARKS, MAX_FACES), 4, dtype="f4")
            self._landmarks.filter = (moderngl.NEAREST, moderngl.NEAREST)
            self._landmarks.repeat_x = self._landmarks.repeat_y = False
        return self._landmarks

    def _image_texture(self, effect: Effect, name: str, pixels: np.ndarray) -> moderngl.Texture:
        """The GL texture of a texture parameter, uploaded again only when its pixels change."""
        key = (id(effect), name)
        cached = self._images.get(key)
        if cached is not None and cached[0] is pixels:
            return cached[1]
        if cached is not None:
            cached[1].release()
        height, width = pixels.shape[:2]
        texture = self.ctx.texture((width, height), 4, pixels.tobytes(), alignment=1)
        texture.build_mipmaps()
        texture.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        self._images[key] = (pixels, texture)
        return texture

    def _release_frame_objects(self) -> None:
        for texture, framebuffer in self._targets:
            framebuffer.release()
            texture.release()
        self._targets = []
        if self._source_fb is not None:
            self._source_fb.release()
            self._source_fb = None
        if self._source is not None:
            self._source.release()
            self._source = None
        for texture in self._masks.values():
            texture.release()
        self._masks = {}
        self._size = None

    def gl_objects(self) -> int:
        """How many GL objects (programs, vertex arrays, textures, framebuffers, buffers)
        this compositor holds now; constant from frame to frame once warm (leak checks)."""
        count = sum(
            1 + (vao is not None)
            for _, variants in self._programs.values()
            for programs in variants.values()
            for _, vao in programs
        )
        count += 2 * len(self._targets) + len(self._masks) + len(self._images)
        count += (self._source is not None) + (self._source_fb is not None)
        count += (self._landmarks is not None) + (self._zero_mask is not None)
        if self._mesh_renderer is not None:
            count += self._mesh_renderer.gl_objects()
        return count

    def forget(self, target: Effect | EffectSpec) -> None:
        """Drop the compiled programs of an effect's spec (it was reloaded or removed)."""
        spec = target.spec if isinstance(target, Effect) else target
        entry = self._programs.get(id(spec))
        if entry is not None and entry[0] is spec:
            del self._programs[id(spec)]
            with self.ctx:
                for programs in entry[1].values():
                    if self._mesh_renderer is not None:
                        self._mesh_renderer.forget([program for program, _ in programs])
                    _release(programs)

    def close(self) -> None:
        """Release every GL object and the context itself."""
        if self._closed:
            return
        self._closed = True
        with self.ctx:
            self._release_frame_objects()
            if self._mesh_renderer is not None:
                self._mesh_renderer.release()
                self._mesh_renderer = None
            for _, variants in self._programs.values():
                for programs in variants.values():
                    _release(programs)
            self._programs = {}
            for _, texture in self._images.values():
                texture.release()
            self._images = {}
            if self._landmarks is not None:
                self._landmarks.release()
                self._landmarks = None
            if self._zero_mask is not None:
                self._zero_mask.release()
                self._zero_mask = None
        self.ctx.release()

    def __enter__(self) -> Compositor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _working_area(rects: Sequence[list[Rect] | None]) -> Rect | None:
    """The part of the frame the effects can change: the bounding rectangle of every
    effect's regions; None (the whole frame) when any effect draws everywhere."""
    if any(r is None for r in rects):
        return None
    return bounding_rect([rect for effect_rects in rects if effect_rects for rect in effect_rects])


def _draw_tiles(program: moderngl.Program, vao: moderngl.VertexArray, tiles: list[Rect]) -> None:
    """Draw a full-screen pass only over ``tiles``, TILES_PER_DRAW rectangles per call."""
    for start in range(0, len(tiles), TILES_PER_DRAW):
        batch = tiles[start : start + TILES_PER_DRAW]
        array = np.zeros((TILES_PER_DRAW, 4), dtype=np.float32)
        array[: len(batch)] = batch
        _set(program, "u_arfx_tiles", 1)
        _set(program, "u_arfx_tile", array)
        vao.render(moderngl.TRIANGLES, vertices=6, instances=len(batch))
    _set(program, "u_arfx_tiles", 0)


def _covered(
    cover: tuple[str, float], masks: Mapping[str, np.ndarray], rects: list[Rect] | None
) -> list[Rect]:
    """Where a pass with ``cover`` is drawn: the tiles of its region's ``rects`` (None: the
    whole frame) where the cover mask reaches its value."""
    name, above = cover
    if rects is None:
        return coverage_rects(masks[name], above)
    tiles = coverage_rects(masks[name], above, within=bounding_rect(rects))
    overlaps = (intersect(tile, rect) for tile in tiles for rect in rects)
    return [overlap for overlap in overlaps if overlap is not None]


def _release(programs: list[_Program]) -> None:
    for program, vao in programs:
        if vao is not None:
            vao.release()
        program.release()


def _wrap(effect: Effect, exc: BaseException) -> EffectError:
    return EffectError(f"effect {effect.name!r}: rendering failed: {type(exc).__name__}: {exc}")


def _set(program: moderngl.Program, name: str, value: Any) -> None:
    """Set a uniform if the shader uses it (the GLSL compiler drops unused ones).

    A numpy array fills a uniform array from its start; the compiler may have shortened the
    array to the elements the shader reads (``u_face_rotation[0]`` only: length 1). Arrays
    are converted to the 32-bit type GLSL holds (a hook's float64 array would otherwise be
    read as garbage floats).
    """
    member = program.get(name, None)
    if member is None:
        return
    if isinstance(value, np.ndarray):
        kind = member.fmt[-1]  # "1f", "2i", "9f", "1I"...
        glsl_type = {"i": np.int32, "I": np.uint32}.get(kind, np.float32)
        array = np.ascontiguousarray(value, dtype=glsl_type)
        member.write(array.tobytes()[: member.array_length * member.dimension * 4])
    else:
        member.value = value
