"""The head as an occluder: geometry that mesh passes draw into the depth buffer only.

Glasses' temples, a hat's brim, earrings... must vanish behind the head. Before a mesh pass
with ``occluder = "head"`` draws its model, the compositor draws this into the depth buffer
(with the colour writes off) for every face, placed with the face's head pose:

- the canonical face (``arfx/data/canonical_face.csv``, head-frame millimetres) triangulated
  with MediaPipe's face-mesh tessellation, so the nose, cheeks and brows hide what is behind
  them exactly where PnP puts the face;
- behind it, an ellipsoid for the skull, inside the face's outline and wholly behind the face
  surface around the eyes, so it never covers what sits in front of the face;
- an ellipsoid on each side for the ears, below the line where glasses' temples pass over them.

The head is widened in x by :func:`head_width_factor`: the canonical face's outline is
narrower than real faces' as PnP sees them. Everything is in the head frame of
``arfx.pose`` (x to the image's right, y down, z into the head, origin between the irises).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SKULL_CENTRE = (0.0, -10.0, 82.0)
SKULL_RADII = (68.0, 98.0, 84.0)
EAR_CENTRE = (70.0, 32.0, 78.0)
"""The right ear (the left one is its mirror image); landmarks 234/454, in front of the ears,
are at x = 67.7, y = 20.1, z = 58.3."""
EAR_RADII = (7.0, 26.0, 17.0)


_WIDTH_PAIRS = ((234, 454), (127, 356), (93, 323))
TYPICAL_WIDTH_RATIO = 1.15
"""The usual :func:`head_width_factor` (median of the shared data's faces)."""
_WIDTH_FACTOR_RANGE = (0.95, 1.4)
_WIDTH_FACTOR_MAX_YAW = 30.0  # degrees: beyond it the outline points are on the silhouette


@functools.cache
def _canonical() -> np.ndarray:
    from .pose import CanonicalFace

    return CanonicalFace.load().points


def head_width_factor(landmarks: np.ndarray, pose: Any, camera: np.ndarray) -> float:
    """How wide this face looks relative to the canonical face under the same pose.

    The outline points at the ear line are compared with where the canonical face's would be,
    along the head's x axis in the image. PnP fits the rigid points around the eyes and nose,
    so a broad face shows up as outline points outside the canonical ones. On the shared
    photos and videos the ratio is 1.09 to 1.33, typically :data:`TYPICAL_WIDTH_RATIO` (the
    canonical outline sits a little inside real ones as PnP sees them). Beyond a yaw of 30 deg
    the outline lies on the silhouette and says nothing about width: the factor fades to the
    typical ratio, so what is fitted to the head keeps its size as the head turns.

    The occluder's head is this much wider than the canonical one; eyewear scales its
    frames by it.
    """
    weight = min(max((_WIDTH_FACTOR_MAX_YAW - abs(pose.yaw)) / 10.0, 0.0), 1.0)
    if weight == 0.0:
        return TYPICAL_WIDTH_RATIO
    left = [a for a, _ in _WIDTH_PAIRS]
    right = [b for _, b in _WIDTH_PAIRS]
    expected = pose.project(_canonical()[left + right], camera)
    n = len(_WIDTH_PAIRS)
    axis = expected[n:] - expected[:n]
    span = np.linalg.norm(axis, axis=1)
    if np.any(span < 1e-6):
        return TYPICAL_WIDTH_RATIO
    measured = np.asarray(landmarks, dtype=np.float64)[:, :2]
    observed = np.sum((measured[right] - measured[left]) * axis, axis=1) / span
    ratio = float(np.median(observed / span))
    low, high = _WIDTH_FACTOR_RANGE
    ratio = min(max(ratio, low), high)
    return TYPICAL_WIDTH_RATIO + weight * (ratio - TYPICAL_WIDTH_RATIO)


@functools.cache
def face_triangles() -> np.ndarray:
    """(T, 3) vertex indices of the 468-point face mesh, derived from MediaPipe's
    tessellation (an edge list) as the triples of mutually connected points."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    neighbours: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    triangles = set()
    for a, b in FACEMESH_TESSELATION:
        for c in neighbours[a] & neighbours[b]:
            triangles.add(tuple(sorted((a, b, c))))
    return np.array(sorted(triangles), dtype=np.uint32)


def ellipsoid(
    centre: tuple[float, float, float], radii: tuple[float, float, float], steps: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (N, 3), triangles (T, 3)) of an ellipsoid, ``steps`` rings from pole to pole,
    wound counter-clockwise seen from outside (so a renderer may cull its back faces)."""
    rings = []
    for i in range(steps + 1):
        theta = math.pi * i / steps
        phi = np.linspace(0.0, 2.0 * math.pi, 2 * steps, endpoint=False)
        rings.append(
            np.stack(
                [
                    np.sin(theta) * np.cos(phi),
                    np.full_like(phi, math.cos(theta)),
                    np.sin(theta) * np.sin(phi),
                ],
                axis=1,
            )
        )
    unit = np.concatenate(rings)
    vertices = unit * np.asarray(radii) + np.asarray(centre)
    n = 2 * steps
    triangles = []
    for i in range(steps):
        for j in range(n):
            a, b = i * n + j, i * n + (j + 1) % n
            if i > 0:  # the first ring is the pole: (a, b, a + n) would have no area
                triangles.append((a, b, a + n))
            if i < steps - 1:  # likewise the last
                triangles.append((b, b + n, a + n))
    return vertices, np.array(triangles, dtype=np.uint32)


@dataclass(frozen=True)
class HeadOccluder:
    """The head's geometry in head millimetres, as one vertex and one index buffer."""

    vertices: np.ndarray
    """(N, 3) float32."""
    indices: np.ndarray
    """(T * 3,) uint32 triangle indices: first the face surface, then the closed parts."""
    surface_indices: int
    """How many of ``indices`` are the face surface. It is open (a shell), so it must be drawn
    from both sides; the skull and ears after it are closed and wound counter-clockwise seen
    from outside, so their back faces may be culled: on a software renderer every triangle
    drawn costs, even one that fails the depth test."""


@functools.cache
def head_occluder() -> HeadOccluder:
    """The face, skull and ears."""
    face = _canonical()[:468]
    parts = [(face, face_triangles())]
    parts.append(ellipsoid(SKULL_CENTRE, SKULL_RADII))
    for side in (1.0, -1.0):
        x, y, z = EAR_CENTRE
        parts.append(ellipsoid((side * x, y, z), EAR_RADII, steps=12))
    vertices, indices, base = [], [], 0
    for points, triangles in parts:
        vertices.append(points)
        indices.append(triangles.reshape(-1) + base)
        base += len(points)
    return HeadOccluder(
        vertices=np.concatenate(vertices).astype(np.float32),
        indices=np.concatenate(indices).astype(np.uint32),
        surface_indices=len(indices[0]),
    )
