"""Effects drawn only in their region (scissor) give the same picture as drawn everywhere."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from arfx.compositor import MAX_FACES, Compositor
from arfx.effect import Effect, EffectSpec, FrameContext
from arfx.errors import EffectError
from arfx.regions import COVER_TILE, bounding_rect, coverage_rects, intersect, region_rects
from arfx.registry import EffectRegistry
from arfx.session import Session, SessionOptions


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_region_rectangles_hold_what_they_name(image_path) -> None:
    image = _rgb(image_path("two_people.jpg"))
    with Session(["lipstick"]) as session:
        faces = session.analyze(image)
    size = (image.shape[1], image.shape[0])
    assert len(faces) == 2
    assert region_rects("frame", faces, size) is None
    assert region_rects("lips", [], size) == []
    for region in ("lips", "face", "head"):
        rects = region_rects(region, faces, size)
        assert len(rects) == 2
        for x, y, w, h in rects:
            assert 0 <= x and 0 <= y and x + w <= size[0] and y + h <= size[1]
    for face, lips, box, head in zip(
        faces, *(region_rects(r, faces, size) for r in ("lips", "face", "head")), strict=True
    ):
        x, y, w, h = lips
        mouth = face.landmarks[[61, 291, 0, 17], :2]
        assert np.all(mouth >= (x, y)) and np.all(mouth <= (x + w, y + h))
        for inner, outer in ((lips, box), (box, head)):
            x0, y0, w0, h0 = inner
            x1, y1, w1, h1 = outer
            assert x1 <= x0 and y1 <= y0 and x0 + w0 <= x1 + w1 and y0 + h0 <= y1 + h1
    assert bounding_rect([(0, 0, 10, 10), (20, 5, 5, 20)]) == (0, 0, 25, 25)
    assert bounding_rect([]) is None


def test_hook_draw_boxes_narrow_each_faces_rectangle(image_path) -> None:
    """``arfx_draw_boxes`` (per face, in face order; zeros: unknown) narrows that face's
    rectangle to the box grown by a pixel; a box outside the region leaves nothing."""
    image = _rgb(image_path("two_people.jpg"))
    with Session(["lipstick"]) as session:
        faces = session.analyze(image)
    size = (image.shape[1], image.shape[0])
    plain = region_rects("lips", faces, size)
    boxes = np.zeros((MAX_FACES, 4), np.float32)
    x, y, w, h = plain[1]
    boxes[1] = (x + 10.2, y + 8.7, x + w - 12.5, y + h - 9.0)
    narrowed = region_rects("lips", faces, size, boxes)
    assert narrowed[0] == plain[0]  # no box: the face's whole rectangle
    assert narrowed[1] == (x + 9, y + 7, w - 20, h - 15)
    boxes[0] = (-50.0, -50.0, -20.0, -20.0)  # off the frame: nothing of face 0 is drawn
    assert region_rects("lips", faces, size, boxes) == [narrowed[1]]


def test_coverage_rectangles_hold_every_hot_pixel_and_only_hot_tiles() -> None:
    rng = np.random.default_rng(3)
    mask = np.zeros((70, 101), np.uint8)  # neither side a multiple of the tile
    cv2.circle(mask, (40, 30), 18, 200, -1)
    mask[69, 100] = 255  # a corner pixel, in a clipped tile
    mask[5, 90] = 20  # below the value: not hot
    mask += (rng.random(mask.shape) < 0.01).astype(np.uint8) * 10
    rects = coverage_rects(mask, 0.3)
    covered = np.zeros(mask.shape, bool)
    for x, y, w, h in rects:
        assert x % COVER_TILE == 0 and y % COVER_TILE == 0
        assert x + w <= mask.shape[1] and y + h <= mask.shape[0]
        assert not covered[y : y + h, x : x + w].any()  # no overlaps
        covered[y : y + h, x : x + w] = True
    assert covered[mask >= 0.3 * 255].all()
    for row in range(0, 70, COVER_TILE):  # every covered tile holds a hot pixel
        for column in range(0, 101, COVER_TILE):
            tile = (slice(row, row + COVER_TILE), slice(column, column + COVER_TILE))
            assert covered[tile].all() == (mask[tile] >= 77).any()
    assert len(rects) <= 6  # runs along rows of tiles, not one rectangle per tile
    assert coverage_rects(np.zeros((40, 40), np.uint8), 0.1) == []
    # ``within``: the same tiles where they overlap the rectangle, none elsewhere.
    within = (20, 10, 50, 45)
    inside = np.zeros(mask.shape, bool)
    x, y, w, h = within
    first_row, first_column = y // COVER_TILE * COVER_TILE, x // COVER_TILE * COVER_TILE
    inside[
        first_row : -(-(y + h) // COVER_TILE) * COVER_TILE,
        first_column : -(-(x + w) // COVER_TILE) * COVER_TILE,
    ] = True
    part = np.zeros(mask.shape, bool)
    for x, y, w, h in coverage_rects(mask, 0.3, within=within):
        assert not part[y : y + h, x : x + w].any()
        part[y : y + h, x : x + w] = True
    assert part.any() and np.array_equal(part, covered & inside)
    assert coverage_rects(mask, 0.3, within=(200, 200, 10, 10)) == []
    assert coverage_rects(mask, 0.0, within=(0, 0, 16, 16)) == [(0, 0, 16, 16)]
    assert intersect((0, 0, 10, 10), (5, 5, 10, 10)) == (5, 5, 5, 5)
    assert intersect((0, 0, 10, 10), (10, 0, 5, 5)) is None


def _covered_effect(tmp_path: Path, cover: dict) -> Path:
    folder = tmp_path / "paint"
    folder.mkdir()
    (folder / "paint.frag").write_text(
        "uniform sampler2D u_mask_hair;\n"
        "void main() {\n"
        "    float hair = texelFetch(u_mask_hair, ivec2(gl_FragCoord.xy), 0).r;\n"
        "    arfx_out = hair >= 0.5 ? vec4(1.0, 0.0, 0.0, 1.0) : arfx_source();\n"
        "}\n"
    )
    manifest = {
        "name": "paint",
        "masks": ["hair"],
        "passes": [{"shader": "paint.frag", "cover": cover}],
    }
    (folder / "effect.json").write_text(json.dumps(manifest))
    return folder


def test_a_covered_pass_is_drawn_only_where_its_mask_reaches(tmp_path: Path) -> None:
    """A pass that paints every pixel it is drawn on shows where the compositor drew it:
    the tiles holding mask values at or above the cover's, and nothing else changes."""
    folder = _covered_effect(tmp_path, {"mask": "hair", "above": 0.5})
    spec = EffectSpec.load(folder)
    assert spec.passes[0].cover == ("hair", 0.5)
    image = np.random.default_rng(0).integers(0, 200, (90, 120, 3), dtype=np.uint8)
    mask = np.zeros((90, 120), np.uint8)
    mask[20:30, 40:90] = 255
    mask[70:75, 10:15] = 100  # below the cover's value
    frame = FrameContext(image=image, faces=[], masks={"hair": mask})
    with Compositor() as compositor:
        out = compositor.render(frame, [(Effect(spec), {})])
        drawn = out != image
        assert np.array_equal(drawn.any(axis=2), mask >= 128)
        uncovered = replace(spec, passes=(replace(spec.passes[0], cover=None),))
        assert np.array_equal(compositor.render(frame, [(Effect(uncovered), {})]), out)


def test_a_cover_mask_must_be_one_the_effect_always_has(tmp_path: Path) -> None:
    folder = _covered_effect(tmp_path, {"mask": "skin", "above": 0.5})
    with pytest.raises(EffectError, match=r"effect\.json: pass 1: 'cover': mask 'skin'"):
        EffectSpec.load(folder)
    (tmp_path / "b").mkdir()
    _covered_effect(tmp_path / "b", {"mask": "hair", "above": 2})
    with pytest.raises(EffectError, match=r"cover\.above: must be at most 1.0, got 2"):
        EffectSpec.load(tmp_path / "b" / "paint")


def test_a_bad_region_names_the_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "tint"
    folder.mkdir()
    (folder / "tint.frag").write_text(
        "void main() { arfx_out = texelFetch(u_frame, ivec2(gl_FragCoord.xy), 0); }\n"
    )
    manifest = {"name": "tint", "shader": "tint.frag", "region": "nose"}
    (folder / "effect.json").write_text(json.dumps(manifest))
    with pytest.raises(EffectError, match=r"effect\.json:\d+: region: must be one of"):
        EffectSpec.load(folder)


@pytest.mark.parametrize("photo", ["obama.jpg", "two_people.jpg"])
def test_drawing_in_regions_and_covered_tiles_matches_drawing_everywhere(
    image_path, photo: str
) -> None:
    image = _rgb(image_path(photo))
    registry = EffectRegistry()
    names = ("lipstick", "hair_color", "eyewear")
    specs = [registry.resolve(name).spec for name in names]
    assert [spec.region for spec in specs] == ["lips", "head", "head"]
    assert [p.cover for p in specs[1].passes] == [("hair", 0.4), ("hair", 0.1)]
    everywhere = [
        Effect(
            replace(spec, region="frame", passes=tuple(replace(p, cover=None) for p in spec.passes))
        )
        for spec in specs
    ]
    with Session([Effect(spec) for spec in specs]) as session:
        regional = session.process(image)
    with Session(everywhere) as session:
        full = session.process(image)
    difference = np.abs(regional.astype(int) - full.astype(int))
    assert np.abs(regional.astype(int) - image.astype(int)).max() > 50  # effects were drawn
    assert difference.max() <= 1, np.argwhere(difference > 1)[:5]


def test_texel_copies_and_blits_composite_the_same_frame(image_path) -> None:
    """Passes copy their input into their target around what they draw: by texels
    (glCopyImageSubData, which Mesa and NVIDIA's driver have) or, without it, by a
    framebuffer blit. Both give the same frame."""
    image = _rgb(image_path("two_people.jpg"))
    options = SessionOptions(static_images=True)  # each frame analysed afresh
    with Session(["lipstick", "hair_color", "eyewear"], options) as session:
        assert session._compositor._copy_image is not None
        session.process(image)  # the first frame differs from later ones at a pixel here
        texels = session.process(image)
        session._compositor._copy_image = None
        blits = session.process(image)
    assert np.abs(texels.astype(int) - image.astype(int)).max() > 50  # effects were drawn
    assert np.array_equal(texels, blits)
