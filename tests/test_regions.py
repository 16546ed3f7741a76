"""Effects drawn only in their region (scissor) give the same picture as drawn everywhere."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from arfx.effect import Effect, EffectSpec
from arfx.errors import EffectError
from arfx.regions import bounding_rect, region_rects
from arfx.registry import EffectRegistry
from arfx.session import Session


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
def test_drawing_in_regions_matches_drawing_everywhere(image_path, photo: str) -> None:
    image = _rgb(image_path(photo))
    registry = EffectRegistry()
    names = ("lipstick", "hair_color", "eyewear")
    specs = [registry.resolve(name).spec for name in names]
    assert [spec.region for spec in specs] == ["lips", "head", "head"]
    everywhere = [Effect(replace(spec, region="frame")) for spec in specs]
    with Session([Effect(spec) for spec in specs]) as session:
        regional = session.process(image)
    with Session(everywhere) as session:
        full = session.process(image)
    difference = np.abs(regional.astype(int) - full.astype(int))
    assert np.abs(regional.astype(int) - image.astype(int)).max() > 50  # effects were drawn
    assert difference.max() <= 1, np.argwhere(difference > 1)[:5]
