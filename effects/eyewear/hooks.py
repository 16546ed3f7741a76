"""Per-frame uniforms for the eyewear effect.

3d: ``u_model[face]``, the model's fit to each face (arfx.eyewear: front direction, width
from the face's own width, smoothed over a video's frames, front on the nose bridge) and
``u_material_role``, which of the model's materials take the frame colour (1) or the lens
tint (2).

2d: ``u_overlay[face]``, the homography from frame pixels to the picture's uv: the picture
is a rectangle in the plane of the frame front, in head millimetres, seen through the pose.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from arfx import eyewear, gltf
from arfx.compositor import MAX_FACES
from arfx.effect import FrameContext, load_texture
from arfx.occluder import head_width_factor
from arfx.pose import camera_matrix

FOLDER = Path(__file__).resolve().parent
MAX_MATERIALS = 32  # u_material_role's length in eyewear.frag
# Per (model file, front): the model, its fit and the 8 corners of its bounding box.
_fits: dict[tuple[Path, str], tuple[gltf.Model, eyewear.Fit, np.ndarray]] = {}
_pictures: dict[Path, tuple[tuple[int, int], tuple[float, float, float, float], float]] = {}
_widths: dict[int, tuple[int, np.ndarray, float]] = {}  # face id -> (frame index, centre, factor)
_SMOOTHING = 0.2  # weight of the newest frame's width factor
_JUMP = 0.25  # a face that moved more than this times its size starts afresh
_NEW_WIDTH = 0.08  # ... and so does one whose width factor changed more than this


def uniforms(frame: FrameContext, params: Mapping[str, Any]) -> dict[str, Any]:
    height, width = frame.image.shape[:2]
    camera = frame.camera if frame.camera is not None else camera_matrix((width, height))
    widths = np.zeros(MAX_FACES)
    for i, face in enumerate(frame.faces[:MAX_FACES]):
        if face.pose is not None:
            factor = _smoothed(
                face, frame.index, head_width_factor(face.landmarks, face.pose, camera)
            )
            widths[i] = eyewear.FRAME_WIDTH * factor * params["scale"]
    if params["mode"] == "2d":
        return _overlay(frame, params, camera, widths)
    return _model(frame, params, camera, widths)


def _smoothed(face: Any, index: int, factor: float) -> float:
    """The face's width factor averaged over the frames before (it varies by about 1% from
    frame to frame, which would make the glasses breathe). A face that is new, or that
    jumped (another photo, a cut), starts afresh."""
    x0, y0, x1, y1 = face.box
    centre, size = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), max(x1 - x0, y1 - y0)
    previous = _widths.get(face.id)
    if (
        previous is not None
        and previous[0] == index - 1
        and np.linalg.norm(centre - previous[1]) < _JUMP * size
        and abs(factor - previous[2]) < _NEW_WIDTH  # not another person
    ):
        factor = previous[2] + _SMOOTHING * (factor - previous[2])
    _widths[face.id] = (index, centre, factor)
    if len(_widths) > 4 * MAX_FACES:
        del _widths[next(iter(_widths))]
    return factor


def _model(
    frame: FrameContext, params: Mapping[str, Any], camera: np.ndarray, widths: np.ndarray
) -> dict[str, Any]:
    path = (FOLDER / params["model"]).resolve()
    model = gltf.load_cached(path)
    cached = _fits.get((path, params["front"]))
    if cached is None or cached[0] is not model:
        low, high = model.bounds()
        corners = np.array(
            [
                [x, y, z]
                for x in (low[0], high[0])
                for y in (low[1], high[1])
                for z in (low[2], high[2])
            ]
        )
        cached = (model, eyewear.fit_model(model, params["front"]), corners)
        _fits[(path, params["front"])] = cached
    _, fit, corners = cached
    matrices = np.zeros((MAX_FACES, 4, 4), dtype=np.float32)
    boxes = np.zeros((MAX_FACES, 4), dtype=np.float32)
    for i, face in enumerate(frame.faces[:MAX_FACES]):
        if face.pose is not None:
            matrix = fit.matrix(widths[i], params["offset_y"], params["offset_z"], params["tilt"])
            matrices[i] = matrix.T  # GLSL matrices are column-major
            boxes[i] = _screen_box(corners @ matrix[:3, :3].T + matrix[:3, 3], face.pose, camera)
    roles = np.zeros(MAX_MATERIALS, dtype=np.int32)
    for i, material in enumerate(model.materials[:MAX_MATERIALS]):
        if material.alpha_mode == "BLEND":
            roles[i] = 2
        elif params["recolor"] or material.name.lower().startswith("frame"):
            roles[i] = 1
    return {"u_model": matrices, "u_material_role": roles, "arfx_mesh_boxes": boxes}


def _screen_box(corners: np.ndarray, pose: Any, camera: np.ndarray) -> np.ndarray:
    """Pixel box (x0, y0, x1, y1) holding the model on screen: its bounding box's corners
    (head frame, mm) projected, since a projected box holds the projection of all inside it.
    Zeros (unknown: the renderer's default region) if a corner is behind the camera."""
    if np.any(pose.to_camera(corners)[:, 2] <= 1.0):
        return np.zeros(4, dtype=np.float32)
    pixels = pose.project(corners, camera)
    return np.concatenate([pixels.min(axis=0), pixels.max(axis=0)]).astype(np.float32)


def _picture(path: Path) -> tuple[tuple[float, float, float, float], float]:
    """The picture's opaque part as uv (u0, v0, u1, v1) and its aspect (height / width)."""
    info = path.stat()
    stamp = (info.st_mtime_ns, info.st_size)
    cached = _pictures.get(path)
    if cached is None or cached[0] != stamp:
        alpha = load_texture(path)[..., 3]
        ys, xs = np.nonzero(alpha > 8)
        height, width = alpha.shape
        if len(xs) == 0:
            box, aspect = (0.0, 0.0, 1.0, 1.0), height / width
        else:
            x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            box = (x0 / width, y0 / height, x1 / width, y1 / height)
            aspect = (y1 - y0) / (x1 - x0)
        cached = (stamp, box, aspect)
        _pictures[path] = cached
    return cached[1], cached[2]


def _overlay(
    frame: FrameContext, params: Mapping[str, Any], camera: np.ndarray, widths: np.ndarray
) -> dict[str, Any]:
    (u0, v0, u1, v1), aspect = _picture((FOLDER / params["image"]).resolve())
    uv = np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], dtype=np.float32)
    homographies = np.zeros((MAX_FACES, 3, 3), dtype=np.float32)
    on = np.zeros(MAX_FACES, dtype=np.float32)
    for i, face in enumerate(frame.faces[:MAX_FACES]):
        if face.pose is None:
            continue
        half_w, half_h = widths[i] / 2.0, widths[i] * aspect / 2.0
        y = eyewear.LENS_Y + params["offset_y"]
        z = eyewear.FRONT_Z + params["offset_z"]
        corners = np.array(
            [[-half_w, y - half_h, z], [half_w, y - half_h, z], [half_w, y + half_h, z]]
            + [[-half_w, y + half_h, z]]
        )
        if np.any(face.pose.to_camera(corners)[:, 2] <= 1.0):
            continue  # the picture would reach behind the camera
        pixels = face.pose.project(corners, camera).astype(np.float32)
        homography = cv2.getPerspectiveTransform(pixels, uv)
        if homography[2, 2] < 0:
            homography = -homography  # keep q.z > 0 inside the picture
        homographies[i] = homography.T
        on[i] = 1.0
    return {"u_overlay": homographies, "u_overlay_on": on}
