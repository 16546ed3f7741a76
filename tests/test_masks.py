"""Face-region masks from the mesh: real MediaPipe landmarks on a real photo, no mocks."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from mediapipe.python.solutions.face_mesh_connections import FACEMESH_LIPS

from arfx.masks import (
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
    LIPS_OUTER_LOWER,
    LIPS_OUTER_UPPER,
    MESH_MASKS,
    MeshMasks,
    mask_bbox,
    mesh_mask,
)
from tests.conftest import data_root, require


@dataclass
class _Points:
    """A face-like object for synthetic landmark sets."""

    landmarks: np.ndarray


@pytest.fixture(scope="module")
def obama():
    """(rgb image, first Face) of obama.jpg, tracked once for the module."""
    from arfx.tracking import FaceTracker, TrackerOptions

    path = require(data_root() / "images" / "obama.jpg")
    rgb = np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])
    with FaceTracker(TrackerOptions(static_images=True, max_faces=1)) as tracker:
        faces = tracker.track(rgb)
    assert faces, "no face found in obama.jpg"
    return rgb, faces[0]


@pytest.fixture(scope="module")
def obama_masks(obama):
    rgb, face = obama
    size = rgb.shape[:2]
    return {name: mesh_mask(face.landmarks, size, name) for name in MESH_MASKS}


def _edges(chain: tuple[int, ...]) -> set[frozenset[int]]:
    return {frozenset(pair) for pair in zip(chain[:-1], chain[1:], strict=True)}


def test_lip_contours_are_the_facemesh_lips_edges():
    chains = (LIPS_OUTER_UPPER, LIPS_OUTER_LOWER, LIPS_INNER_UPPER, LIPS_INNER_LOWER)
    ours = set().union(*(_edges(chain) for chain in chains))
    assert ours == {frozenset(edge) for edge in FACEMESH_LIPS}
    assert LIPS_OUTER_UPPER[0] == LIPS_OUTER_LOWER[0] == 61
    assert LIPS_OUTER_UPPER[-1] == LIPS_OUTER_LOWER[-1] == 291
    assert LIPS_INNER_UPPER[0] == LIPS_INNER_LOWER[0] == 78
    assert LIPS_INNER_UPPER[-1] == LIPS_INNER_LOWER[-1] == 308


def test_lips_mask_on_a_real_face(obama, obama_masks):
    rgb, face = obama
    lips = obama_masks["lips"]
    assert lips.shape == rgb.shape[:2] and lips.dtype == np.uint8
    assert np.count_nonzero(lips >= 128) > 500
    box = mask_bbox(lips)
    assert box is not None
    x0, y0, x1, y1 = box
    fx0, fy0, fx1, fy1 = face.box
    assert fx0 - 1 <= x0 < x1 <= fx1 + 1 and fy0 - 1 <= y0 < y1 <= fy1 + 1
    # The mouth is in the lower half of the face box.
    assert (y0 + y1) / 2 > (fy0 + fy1) / 2


def test_upper_and_lower_lips_partition_the_lips(obama_masks):
    upper, lower, lips = (
        obama_masks[n].astype(np.int32) for n in ("upper_lip", "lower_lip", "lips")
    )
    assert np.count_nonzero(upper) and np.count_nonzero(lower)
    # They share only the two corner segments, so they overlap only in anti-aliased edge pixels,
    # where their coverages add up to one pixel (+1 for rounding of each).
    assert np.all(upper + lower <= 256)
    assert np.minimum(upper, lower).sum() < 0.01 * lips.sum()
    # Their union is the lips mask, up to the partial pixels along the shared segments.
    union = np.maximum(upper, lower)
    assert np.all(lips >= union)
    assert np.abs(lips - union).sum() < 0.01 * lips.sum()


def test_inner_mouth_is_the_hole_in_the_lips(obama_masks):
    inner, lips = obama_masks["inner_mouth"].astype(np.int32), obama_masks["lips"].astype(np.int32)
    assert np.count_nonzero(inner >= 128) > 500  # the mouth is open in this photo
    # Coverage partitions the pixels along the shared contour: never more than one pixel in all.
    assert np.all(inner + lips <= 256)
    assert np.count_nonzero((inner > 128) & (lips > 128)) == 0


def test_edges_are_anti_aliased(obama_masks):
    lips = obama_masks["lips"]
    partial = np.count_nonzero((lips > 0) & (lips < 255))
    full = np.count_nonzero(lips == 255)
    assert partial > 100 and full > partial
    assert len(np.unique(lips)) > 10  # many coverage levels, not just on/off


def test_mask_follows_scaled_and_translated_landmarks(obama, obama_masks):
    rgb, face = obama
    size = rgb.shape[:2]
    base = obama_masks["lips"]
    points = face.landmarks.astype(np.float64)  # so that adding an integer is exact

    shifted = points.copy()
    shifted[:, :2] += (7.0, -3.0)
    moved = mesh_mask(shifted, size, "lips")
    # An integer move moves the supersampling grid with it: the mask moves exactly.
    assert np.array_equal(moved[:-3, 7:], base[3:, :-7])

    # Four times larger: the mouth spans several render bands, and its area grows 16-fold.
    scaled = points.copy()
    scaled[:, :2] = scaled[:, :2] * 4.0 - (1200.0, 900.0)
    big = mesh_mask(scaled, (size[0] * 4, size[1] * 4), "lips")
    ratio = big.astype(np.float64).sum() / base.astype(np.float64).sum()
    assert ratio == pytest.approx(16.0, rel=0.003)
    x0, y0, x1, y1 = mask_bbox(base)
    expected = (4 * x0 - 1200, 4 * y0 - 900, 4 * x1 - 1200, 4 * y1 - 900)
    assert mask_bbox(big) == pytest.approx(expected, abs=4)


def _centroid_x(mask: np.ndarray) -> float:
    weights = mask.astype(np.float64)
    return float((weights.sum(axis=0) * np.arange(mask.shape[1])).sum() / weights.sum())


def test_sub_pixel_precision(obama, obama_masks):
    rgb, face = obama
    base = obama_masks["lips"]
    points = face.landmarks.copy()
    points[:, 0] += 0.25
    nudged = mesh_mask(points, rgb.shape[:2], "lips")
    changed = base != nudged
    assert np.count_nonzero(changed) > 20
    # Only edge pixels change, and the mass moves by the nudge.
    assert np.all((base[changed] < 255) | (nudged[changed] < 255))
    assert _centroid_x(nudged) - _centroid_x(base) == pytest.approx(0.25, abs=0.03)


def _inner_mouth_on(polygon: np.ndarray) -> np.ndarray:
    """Landmarks whose inner-mouth loop traces ``polygon`` (its points spread over the corners)."""
    points = np.zeros((478, 3), np.float64)
    loop = LIPS_INNER_UPPER + LIPS_INNER_LOWER[-2:0:-1]
    for i, index in enumerate(loop):
        points[index, :2] = polygon[i * len(polygon) // len(loop)]
    return points


def test_exact_coverage_of_a_square():
    # A pixel-aligned square covers whole pixels; moved by a quarter pixel its edges are partial.
    points = _inner_mouth_on(np.array([[2, 2], [6, 2], [6, 6], [2, 6]], np.float64))
    mask = mesh_mask(points, (9, 9), "inner_mouth")
    expected = np.zeros((9, 9), np.uint8)
    expected[2:6, 2:6] = 255
    assert np.array_equal(mask, expected)
    points[:, :2] += 0.25
    mask = mesh_mask(points, (9, 9), "inner_mouth")
    assert mask[3, 2] == 191 and mask[3, 6] == 64 and mask[6, 6] == 16  # 12/16, 4/16, 1/16


@pytest.mark.parametrize("turn", [0.1, 0.5, 1.0, 2.0])
def test_coverage_adds_up_to_the_area(turn):
    # Slanted edges in every direction: the coverage sums to the polygon's area.
    angles = turn + np.array([0.0, 1.9, 2.8, 4.4])
    polygon = np.stack([20.3 + 12 * np.cos(angles), 19.6 + 9 * np.sin(angles)], axis=1)
    x, y = polygon[:, 0], polygon[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    mask = mesh_mask(_inner_mouth_on(polygon), (40, 40), "inner_mouth")
    assert mask.sum() / 255 == pytest.approx(area, rel=0.003)


def test_faces_accumulate_into_out(obama, obama_masks):
    rgb, face = obama
    size = rgb.shape[:2]
    other = face.landmarks.copy()
    other[:, 0] += 40.0  # overlaps the first face's lips
    out = np.zeros(size, np.uint8)
    result = mesh_mask(face.landmarks, size, "lips", out=out)
    assert result is out
    mesh_mask(other, size, "lips", out=out)
    assert np.array_equal(out, np.maximum(obama_masks["lips"], mesh_mask(other, size, "lips")))
    with pytest.raises(ValueError, match="uint8"):
        mesh_mask(face.landmarks, size, "lips", out=np.zeros((10, 10), np.uint8))


def test_region_cut_by_the_frame_edge(obama):
    rgb, face = obama
    height, width = rgb.shape[:2]
    points = face.landmarks.copy()
    x0, y0, x1, y1 = mask_bbox(mesh_mask(points, (height, width), "lips"))
    points[:, 0] += width - (x0 + x1) / 2  # mouth centre on the right edge
    half = mesh_mask(points, (height, width), "lips")
    assert np.count_nonzero(half[:, -1] == 255) > 5
    points[:, 0] += width  # entirely outside
    assert not mesh_mask(points, (height, width), "lips").any()


def test_invalid_input_is_rejected(obama):
    rgb, face = obama
    size = rgb.shape[:2]
    with pytest.raises(ValueError, match="lips.*upper_lip.*lower_lip.*inner_mouth"):
        mesh_mask(face.landmarks, size, "nose")
    with pytest.raises(ValueError, match="unknown mask name 'teeth'"):
        MeshMasks().build([face], size, ["lips", "teeth"])
    with pytest.raises(ValueError, match="shape"):
        mesh_mask(face.landmarks[:100], size, "lips")
    bad = face.landmarks.copy()
    bad[61, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mesh_mask(bad, size, "lips")


def test_mesh_masks_reuse_buffers(obama, obama_masks):
    rgb, face = obama
    size = rgb.shape[:2]
    builder = MeshMasks()
    first = builder.build([face], size, MESH_MASKS)
    assert set(first) == set(MESH_MASKS)
    for name in MESH_MASKS:
        assert np.array_equal(first[name], obama_masks[name])
    kept = {name: mask for name, mask in first.items()}
    second = builder.build([], size, MESH_MASKS)
    for name in MESH_MASKS:
        assert second[name] is kept[name]  # the same array, cleared and redrawn
        assert not second[name].any()
    third = builder.build([face], (size[0] + 1, size[1]), ["lips"])
    assert third["lips"].shape == (size[0] + 1, size[1])
    assert third["lips"] is not kept["lips"]


def test_mesh_masks_combine_faces(obama):
    rgb, face = obama
    size = rgb.shape[:2]
    other = _Points(face.landmarks.copy())
    other.landmarks[:, 1] += 200.0
    masks = MeshMasks().build([face, other], size, ["upper_lip"])
    single = mesh_mask(face.landmarks, size, "upper_lip")
    assert np.array_equal(
        masks["upper_lip"], np.maximum(single, mesh_mask(other.landmarks, size, "upper_lip"))
    )


def test_mask_bbox():
    mask = np.zeros((20, 30), np.uint8)
    assert mask_bbox(mask) is None
    mask[4:7, 10:15] = 3
    assert mask_bbox(mask) == (10, 4, 15, 7)
