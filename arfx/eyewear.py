"""Eyewear: arfx's own procedural glasses, and fitting any glasses model to a face.

**The procedural glasses** are built here, in the head frame of ``arfx.pose`` (millimetres,
origin between the irises, x to the image's right, y down, z into the head): two rims
extruded from rounded-rectangle lens outlines, a bridge over the nose, end pieces, temples
that run back along the ear line and bend down behind the ears, and tinted lenses (a
translucent ``BLEND`` material). They are written as glTF 2.0 (metres, +y up, front toward
+z) by ``arfx.gltf``; ``python -m arfx.eyewear`` regenerates the shipped
``effects/eyewear/glasses.glb`` and the flat ``glasses.png`` the effect's 2D mode uses.

**Fitting** turns a model in its own units and axes into head millimetres: which way its
front faces (detected from its mirror symmetry and where its bridge is, or given), then a
uniform scale that makes its width :data:`FRAME_WIDTH` times the face's own width relative
to the canonical face (``arfx.occluder.head_width_factor``), its front placed at
:data:`FRONT_Z` (just in front of the nose bridge, landmark 168) and the front's vertical
centre at :data:`LENS_Y` below the eye line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .gltf import Material, MeshData, Model, save, vertex_normals

FRAME_WIDTH = 134.0
"""Width of the frame front (outer edge to outer edge at the hinges) on a face exactly as wide
as the canonical one, mm (135 mm at the ear line, landmarks 234/454). It is multiplied by the
face's ``arfx.occluder.head_width_factor``, typically 1.15."""
FRONT_Z = -21.0
"""Head-frame z of the frame front's nearest point, mm: the nose bridge (landmark 168) is at
z = -16.4, so the bridge of the glasses sits on it."""
LENS_Y = 3.5
"""Head-frame y of the front's vertical centre, mm (the eye line is y = 0, y points down):
the pupils sit a little above the middle of the lenses."""
FRONT_DEPTH = 0.15
"""Depth of the slice of the model (as a fraction of its width) that counts as the front."""

GLTF_TO_HEAD = np.diag([1.0, -1.0, -1.0])
"""glTF axes (+y up, front toward +z) to head axes (y down, z into the head, front toward
-z): a half turn about x."""
FRONTS = ("auto", "+z", "-z", "+x", "-x")
"""Which way a model's front faces in its file; "+z" is glTF's convention."""


# --- fitting --------------------------------------------------------------------------------


def _yaw_turn(degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


# A turn about the file's vertical (y) axis that brings the front to +z.
_FRONT_TURNS = {"+z": 0.0, "-z": 180.0, "+x": -90.0, "-x": 90.0}


def detect_front(points: np.ndarray) -> str:
    """Which way (+z, -z, +x, -x) the front of a glasses model faces, in its file's axes.

    Glasses are mirror-symmetric across the plane between the lenses, so the width axis is
    the horizontal axis (x or z; y is up in glTF) whose mid-plane mirrors the model onto
    itself best. The front is the end of the other axis where the bridge is: the only part
    near that mid-plane.
    """
    p = np.asarray(points, dtype=np.float64)
    if len(p) > 40_000:
        p = p[:: len(p) // 40_000 + 1]
    lo, hi = p.min(axis=0), p.max(axis=0)
    size = float((hi - lo).max()) or 1.0
    cells = np.floor((p - lo) / size * 47.999).astype(np.int64)
    occupied = set(map(tuple, cells))
    scores = {}
    for axis in (0, 2):
        mirrored = cells.copy()
        top = int(np.floor((hi[axis] - lo[axis]) / size * 47.999))
        mirrored[:, axis] = top - mirrored[:, axis]
        matched = sum(tuple(c) in occupied for c in np.unique(mirrored, axis=0))
        scores[axis] = matched / max(len(occupied), 1)
    width_axis = 0 if scores[0] >= scores[2] else 2
    depth_axis = 2 - width_axis
    centre = (lo + hi) / 2.0
    near = np.abs(p[:, width_axis] - centre[width_axis]) < 0.08 * (hi - lo)[width_axis]
    if not near.any():
        return "+z" if depth_axis == 2 else "+x"
    forward = float(p[near, depth_axis].mean()) >= centre[depth_axis]
    return ("+" if forward else "-") + "xyz"[depth_axis]


@dataclass(frozen=True)
class Fit:
    """How a model is put into head axes and where its front is (before scaling)."""

    rotation: np.ndarray  # (3, 3): file axes -> head axes
    width: float  # x extent of the front in head axes, file units
    centre_x: float
    front_z: float  # nearest point (smallest z)
    front_y: float  # vertical centre of the front slice
    front: str  # the front direction used ("+z", ...)

    def matrix(
        self,
        width_mm: float = FRAME_WIDTH,
        offset_y: float = 0.0,
        offset_z: float = 0.0,
        tilt: float = 0.0,
    ) -> np.ndarray:
        """(4, 4) file coordinates -> head millimetres, the front at FRONT_Z and LENS_Y.

        ``tilt`` turns the front about the hinge line (degrees; positive brings the lower
        rims toward the cheeks, as real frames sit).
        """
        scale = width_mm / self.width if self.width > 0 else 1.0
        out = np.eye(4)
        out[:3, :3] = self.rotation * scale
        out[:3, 3] = -scale * np.array([self.centre_x, self.front_y, self.front_z])
        if tilt:
            a = math.radians(tilt)
            turn = np.eye(4)
            turn[1:3, 1:3] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
            out = turn @ out
        out[:3, 3] += [0.0, LENS_Y + offset_y, FRONT_Z + offset_z]
        return out


def fit_model(model: Model, front: str = "auto") -> Fit:
    """The :class:`Fit` of a glasses model; ``front`` is one of :data:`FRONTS`."""
    if front not in FRONTS:
        raise ValueError(f"front must be one of {FRONTS}, got {front!r}")
    points = model.positions()
    if len(points) == 0:
        raise ValueError("the model has no vertices")
    if front == "auto":
        front = detect_front(points)
    rotation = GLTF_TO_HEAD @ _yaw_turn(_FRONT_TURNS[front])
    head = points.astype(np.float64) @ rotation.T
    lo, hi = head.min(axis=0), head.max(axis=0)
    # The front: what lies within FRONT_DEPTH of the overall width behind the nearest point
    # (temples that splay out toward the ears do not count in the frame's width).
    front_slice = head[head[:, 2] <= lo[2] + FRONT_DEPTH * float(hi[0] - lo[0])]
    left, right = front_slice[:, 0].min(), front_slice[:, 0].max()
    return Fit(
        rotation=rotation,
        width=float(right - left),
        centre_x=float((left + right) / 2.0),
        front_z=float(lo[2]),
        front_y=float((front_slice[:, 1].min() + front_slice[:, 1].max()) / 2.0),
        front=front,
    )


# --- the procedural glasses -----------------------------------------------------------------

LENS_CENTRE_X = 34.5
"""Half the distance between the lens centres, mm (frames are wider than the eyes: their
lens centres are decentred from the 63 mm pupil distance)."""
LENS_HALF_WIDTH = 24.5
LENS_HALF_HEIGHT = 18.0
RIM_WIDTH = 3.4
RIM_TOP_EXTRA = 1.4  # the upper rim is a little heavier, like most acetate frames
RIM_DEPTH = 4.0
WRAP = 5.5  # mm the outer ends of the front sit behind its middle
TILT = 7.0  # pantoscopic tilt, degrees: the lower rims lean toward the cheeks
TEMPLE_PATH = (
    (67.2, -8.5, -9.0),
    (69.2, -6.5, 12.0),
    (71.0, -3.0, 38.0),
    (72.0, 0.5, 60.0),
    (72.0, 4.0, 70.0),
    (71.2, 12.0, 78.0),
    (70.2, 22.0, 84.0),
)
"""The right temple's centre line in head mm, from the hinge to the tip behind the ear; the
left one is its mirror image. It splays out to pass just outside the ear line (landmarks
127/356 are at x = 67.8, z = 54.6 on the canonical face; the fit scales both with the face's
width) and bends down behind the ear."""
TEMPLE_SIZE = (2.0, 4.2)  # thickness (across), height, mm

# Tessellation. On a software renderer a multisampled triangle costs about as much as
# shading a few hundred pixels, whatever its size, so the glasses have as few as look smooth
# where they fill a 1080p frame: halving these (96, 16, 40) took the 640x360 eyewear pass
# from 15 to 11 ms on llvmpipe with no difference visible. The lens keeps four rings: its
# lighting is per vertex, and two showed facets in its reflection.
OUTLINE_POINTS = 48  # around each lens (and so each rim)
SECTION_SIDES = 10  # around the section of each swept bar (rims, temples, bridge)
TEMPLE_SAMPLES = 24  # along each temple
LENS_RINGS = (0.25, 0.5, 0.75, 1.0)  # fractions of the outline, from the lens's centre

FRAME_MATERIAL = Material(
    name="frame", base_color=(0.012, 0.012, 0.014, 1.0), metallic=0.0, roughness=0.32
)
LENS_MATERIAL = Material(
    name="lens",
    base_color=(0.05, 0.07, 0.09, 0.45),
    metallic=0.0,
    roughness=0.05,
    alpha_mode="BLEND",
    double_sided=True,
)


def _lens_outline(n: int = OUTLINE_POINTS) -> np.ndarray:
    """(n, 2) x, y of the right lens's edge around its centre: a rounded rectangle (a
    superellipse), narrower at the bottom and cut back on the nose side."""
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    power = 2.0 / 3.2
    x = LENS_HALF_WIDTH * np.sign(c) * np.abs(c) ** power
    y = LENS_HALF_HEIGHT * np.sign(s) * np.abs(s) ** power
    below = np.clip(y / LENS_HALF_HEIGHT, 0.0, 1.0)  # y down: 1 at the bottom
    x *= 1.0 - 0.12 * below**1.5
    nose = np.clip(-x / LENS_HALF_WIDTH, 0.0, 1.0) * below  # lower inner corner
    x += 3.0 * nose**2
    y -= 1.0 * np.clip(x / LENS_HALF_WIDTH, 0.0, 1.0) * below  # outer bottom lifts a little
    return np.stack([x, y], axis=1)


def _offset(outline: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Move each point of a closed, counter-clockwise-or-not outline outward by ``distance``."""
    tangent = np.roll(outline, -1, axis=0) - np.roll(outline, 1, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    centre = outline.mean(axis=0)
    if np.mean(np.sum((outline - centre) * normal, axis=1)) < 0:
        normal = -normal
    return outline + normal * np.asarray(distance)[:, None]


def _front_surface(xy: np.ndarray, depth: float | np.ndarray) -> np.ndarray:
    """Points of the frame front at (x, y) and ``depth`` behind its front face, mm: the
    front wraps backward toward the temples and its lower part leans toward the cheeks
    (TILT)."""
    x, y = xy[:, 0], xy[:, 1]
    half = LENS_CENTRE_X + LENS_HALF_WIDTH + RIM_WIDTH
    z = FRONT_Z + WRAP * (np.abs(x) / half) ** 2 + depth
    z = z + math.tan(math.radians(TILT)) * (y - LENS_Y)
    return np.stack([x, y, z], axis=1)


def _band(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles joining two closed rings of points of equal length."""
    n = len(a)
    i = np.arange(n)
    j = (i + 1) % n
    triangles = np.concatenate(
        [np.stack([i, j, n + i], 1), np.stack([j, n + j, n + i], 1)]
    ).reshape(-1)
    return np.concatenate([a, b]), triangles


def _join(
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One mesh of several (vertices, triangles) parts, each with its own smooth normals
    (so the edges between the parts stay sharp)."""
    positions, normals, indices, base = [], [], [], 0
    for vertices, triangles in parts:
        positions.append(vertices)
        normals.append(vertex_normals(vertices.astype(np.float32), triangles))
        indices.append(triangles + base)
        base += len(vertices)
    return (
        np.concatenate(positions).astype(np.float32),
        np.concatenate(normals).astype(np.float32),
        np.concatenate(indices).astype(np.uint32),
    )


def _cap(ring: np.ndarray, outward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fan closing a small convex ring (a swept profile's end), facing ``outward``."""
    n = len(ring)
    vertices = np.concatenate([ring, ring.mean(axis=0, keepdims=True)])
    i = np.arange(n)
    fan = np.stack([i, (i + 1) % n, np.full(n, n)], 1)
    facing = np.cross(ring[1] - ring[0], vertices[n] - ring[0])
    if np.dot(facing, outward) < 0:
        fan = fan[:, ::-1]
    return vertices, fan.reshape(-1)


def _sweep(
    path: np.ndarray,
    across: float | np.ndarray,
    height: float | np.ndarray,
    up: Sequence[float] = (0.0, -1.0, 0.0),
    *,
    closed: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """A bar with a rounded-rectangle section swept along ``path`` (mm): capped at both
    ends, or a ring when ``closed``. ``height`` is measured along ``up`` and ``across``
    perpendicular to it; either may vary along the path."""
    path = np.asarray(path, dtype=np.float64)
    if closed:
        tangent = np.roll(path, -1, axis=0) - np.roll(path, 1, axis=0)
    else:
        tangent = np.gradient(path, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    side = np.cross(tangent, np.asarray(up, dtype=np.float64))
    side /= np.maximum(np.linalg.norm(side, axis=1, keepdims=True), 1e-9)
    normal = np.cross(side, tangent)
    t = np.linspace(0.0, 2.0 * math.pi, SECTION_SIDES, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    a = 0.5 * np.sign(c) * np.abs(c) ** 0.45 * np.broadcast_to(across, len(path))[:, None]
    b = 0.5 * np.sign(s) * np.abs(s) ** 0.45 * np.broadcast_to(height, len(path))[:, None]
    rings = path[:, None, :] + a[..., None] * side[:, None, :] + b[..., None] * normal[:, None, :]
    n = len(t)
    _, band = _band(rings[0], rings[1])
    # Band k joins ring k (vertices k*n...) to ring k+1: the same pattern shifted by n.
    count = len(rings) if closed else len(rings) - 1
    tube = np.concatenate([band + k * n for k in range(count)]) % (len(rings) * n)
    # Counter-clockwise seen from outside (glTF's front faces): the ring runs clockwise
    # around the tangent in the (side, normal) basis, so each band triangle is turned round.
    tube = tube.reshape(-1, 3)[:, ::-1].reshape(-1)
    if closed:
        return [(rings.reshape(-1, 3), tube)]
    return [
        (rings.reshape(-1, 3), tube),
        _cap(rings[0], -tangent[0]),
        _cap(rings[-1], tangent[-1]),
    ]


def _smooth_path(points: Sequence[Sequence[float]], samples: int = 48) -> np.ndarray:
    """A Catmull-Rom curve through ``points``, ``samples`` points long."""
    p = np.asarray(points, dtype=np.float64)
    p = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    segments = len(p) - 3
    out = []
    for u in np.linspace(0.0, segments, samples):
        k = min(int(u), segments - 1)
        t = u - k
        p0, p1, p2, p3 = p[k], p[k + 1], p[k + 2], p[k + 3]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t * t
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    return np.array(out)


def _rim(side: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """One rim (side = +1 right, -1 left): a rounded bar around the lens outline."""
    inner = _lens_outline()
    if side < 0:
        inner = inner[::-1] * [-1.0, 1.0]
    top = np.clip(-inner[:, 1] / LENS_HALF_HEIGHT, 0.0, 1.0)
    width = RIM_WIDTH + RIM_TOP_EXTRA * top**2
    centre = _offset(inner, width / 2.0) + [side * LENS_CENTRE_X, 0.0]
    path = np.concatenate([centre, np.zeros((len(centre), 1))], axis=1)
    (vertices, triangles), *_ = _sweep(path, width, RIM_DEPTH, (0.0, 0.0, -1.0), closed=True)
    placed = _front_surface(vertices[:, :2], vertices[:, 2] + 0.5 * RIM_DEPTH)
    return [(placed, triangles)]


def _lens(side: float) -> tuple[np.ndarray, np.ndarray]:
    """One lens: a gently curved sheet filling the rim, in the middle of its depth."""
    outline = _lens_outline()
    if side < 0:
        outline = outline[::-1] * [-1.0, 1.0]
    outline = _offset(outline, np.full(len(outline), 0.6))  # reaches into the rim's groove
    rings = [np.zeros((len(outline), 2))]
    for r in LENS_RINGS:
        rings.append(outline * r)
    shift = np.array([side * LENS_CENTRE_X, 0.0])
    vertices, triangles, base = [], [], 0
    for k, ring in enumerate(rings):
        r = (k / (len(rings) - 1)) ** 2
        points = _front_surface(ring + shift, 0.5 * RIM_DEPTH - 1.2 * (1.0 - r))
        vertices.append(points)
        if k > 0:
            _, band = _band(rings[k - 1], ring)
            triangles.append(band + base - len(ring))
        base += len(ring)
    return np.concatenate(vertices), np.concatenate(triangles)


def build_glasses() -> tuple[list[MeshData], list[Material]]:
    """The procedural glasses in head-frame millimetres: a frame mesh (material 0) and a
    lens mesh (material 1)."""
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for side in (1.0, -1.0):
        parts += _rim(side)
        flip = np.array([side, 1.0, 1.0])
        # End piece: from the rim's outer edge back to the hinge.
        hinge = np.array(TEMPLE_PATH[0]) * flip
        start = _front_surface(
            np.array([[side * (LENS_CENTRE_X + LENS_HALF_WIDTH + RIM_WIDTH - 1.5), -9.0]]),
            0.5 * RIM_DEPTH,
        )[0]
        parts += _sweep(
            _smooth_path([start, (start + hinge) / 2 + [0, 0, 1.0], hinge], 8), 3.0, 5.5
        )
        temple = _smooth_path([np.array(p) * flip for p in TEMPLE_PATH], TEMPLE_SAMPLES)
        parts += _sweep(temple, *TEMPLE_SIZE)
    bridge = [
        _front_surface(np.array([[x, -8.0 - 3.0 * (1.0 - (x / 8.0) ** 2)]]), 0.5 * RIM_DEPTH)[0]
        for x in np.linspace(-8.0, 8.0, 9)
    ]
    parts += _sweep(np.array(bridge), RIM_DEPTH - 0.6, 3.6, up=(0.0, 0.0, -1.0))
    frame = MeshData("frame", *_join(parts), material=0)
    lens = MeshData("lenses", *_join([_lens(1.0), _lens(-1.0)]), material=1)
    return [frame, lens], [FRAME_MATERIAL, LENS_MATERIAL]


def head_to_gltf(meshes: Sequence[MeshData]) -> list[MeshData]:
    """Head-frame millimetres to glTF metres and axes (+y up, front toward +z)."""
    out = []
    for mesh in meshes:
        out.append(
            MeshData(
                name=mesh.name,
                positions=(mesh.positions @ GLTF_TO_HEAD.T / 1000.0).astype(np.float32),
                normals=(mesh.normals @ GLTF_TO_HEAD.T).astype(np.float32),
                indices=mesh.indices,
                material=mesh.material,
                uvs=mesh.uvs,
            )
        )
    return out


def write_glasses(path: str | Path) -> None:
    """Build the procedural glasses and write them as glTF (``.glb`` or ``.gltf``)."""
    meshes, materials = build_glasses()
    save(
        path,
        head_to_gltf(meshes),
        materials,
        generator="arfx.eyewear",
        extras={"title": "arfx procedural glasses", "license": "Apache-2.0"},
    )


def synthetic_face(
    pose: Any, image_size: tuple[int, int], camera: np.ndarray, canonical: np.ndarray
) -> Any:
    """A ``Face`` whose landmarks are the canonical face seen through ``pose``: for tests and
    for rendering the glasses without a photo."""
    from .tracking import Face

    points = pose.project(canonical, camera)
    depth = pose.to_camera(canonical)[:, 2]
    landmarks = np.concatenate([points, (depth - depth.mean())[:, None]], axis=1).astype(np.float32)
    x0, y0 = landmarks[:, :2].min(axis=0)
    x1, y1 = landmarks[:, :2].max(axis=0)
    return Face(id=0, landmarks=landmarks, box=(x0, y0, x1, y1), pose=pose)


def render_front(effect_folder: Path, size: tuple[int, int] = (1024, 400)) -> np.ndarray:
    """The effect's 3D glasses seen from the front, as RGBA (alpha from rendering over black
    and over white): the picture the 2D mode ships with."""
    from .compositor import Compositor
    from .effect import Effect, EffectSpec, FrameContext
    from .pose import CanonicalFace, HeadPose, camera_matrix

    width, height = size
    canonical = CanonicalFace.load().points
    distance = 4000.0
    focal = 0.97 * width * distance / FRAME_WIDTH  # the glasses fill 97% of the width
    camera = camera_matrix(size, focal)
    pose = HeadPose.from_rotation(np.eye(3), [0.0, -LENS_Y, distance])
    face = synthetic_face(pose, size, camera, canonical)
    effect = Effect(EffectSpec.load(effect_folder), mode="3d")
    renders = []
    with Compositor() as compositor:
        for value in (0, 255):
            image = np.full((height, width, 3), value, np.uint8)
            frame = FrameContext(image=image, faces=[face], masks={}, camera=camera)
            uniforms = effect.uniforms(frame, effect.params)
            renders.append(compositor.render(frame, [(effect, uniforms)]).astype(np.float64))
    black, white = renders
    alpha = np.clip(1.0 - (white - black).mean(axis=2) / 255.0, 0.0, 1.0)
    colour = np.where(alpha[..., None] > 1e-3, black / np.maximum(alpha[..., None], 1e-3), 0.0)
    rgba = np.concatenate([np.clip(colour, 0, 255), alpha[..., None] * 255.0], axis=2)
    return (rgba + 0.5).astype(np.uint8)


def _trim(rgba: np.ndarray, margin: int = 4) -> np.ndarray:
    ys, xs = np.nonzero(rgba[..., 3] > 0)
    if len(xs) == 0:
        return rgba
    y0, y1 = max(ys.min() - margin, 0), min(ys.max() + margin + 1, rgba.shape[0])
    x0, x1 = max(xs.min() - margin, 0), min(xs.max() + margin + 1, rgba.shape[1])
    return rgba[y0:y1, x0:x1]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m arfx.eyewear [FOLDER]``: regenerate glasses.glb and glasses.png."""
    import argparse

    import cv2

    from .resources import builtin_effects_dir

    parser = argparse.ArgumentParser(prog="python -m arfx.eyewear", description=main.__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=builtin_effects_dir() / "eyewear")
    args = parser.parse_args(argv)
    model = args.folder / "glasses.glb"
    write_glasses(model)
    print(f"{model}: written")
    png = args.folder / "glasses.png"
    if not png.exists():  # the manifest needs its default texture to load
        cv2.imwrite(str(png), np.zeros((1, 1, 4), np.uint8))
    picture = _trim(render_front(args.folder))
    cv2.imwrite(str(png), cv2.cvtColor(picture, cv2.COLOR_RGBA2BGRA))
    print(f"{png}: written ({picture.shape[1]}x{picture.shape[0]})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
