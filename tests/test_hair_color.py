"""The built-in hair_color effect on real faces: only the hair changes, toward the chosen
colour, keeping its strands; dark hair lightens; ombré; clear parameter errors; goldens."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import arfx
from arfx.effect import Effect, EffectSpec
from arfx.errors import ParameterError
from arfx.frame import Frame
from arfx.model import ModelMasks
from arfx.resources import builtin_effects_dir

from .conftest import data_root, require
from .golden import assert_matches_golden, changed_outside, face_crop
from .helpers import decode

# The shader's thresholds (effects/hair_color/hair_common.glsl) on the uint8 masks: below
# REACH a pixel is never touched, at or above SKIN_HIGH skin it is never touched either.
_REACH = 26  # hair probability 0.1
_SKIN_HIGH = 230  # skin probability 0.9
_WOLFGANG = "WolfgangLanger_Pexels.mp4"


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB with L in [0, 100] of RGB uint8 pixels (any shape ending in 3)."""
    lab = cv2.cvtColor(rgb.reshape(-1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return lab.reshape(*rgb.shape[:-1], 3).astype(np.float64)


def _hue(ab: np.ndarray) -> float:
    """Hue angle in degrees of a mean (a, b)."""
    return float(np.degrees(np.arctan2(ab[1], ab[0])))


def _hue_difference(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.fixture(scope="module")
def session():
    with arfx.Session(["hair_color"], arfx.SessionOptions(static_images=True)) as session:
        yield session


@pytest.fixture(scope="module")
def wolfgang_frame() -> np.ndarray:
    """The first frame of the long-haired woman's video (640x360)."""
    return decode(require(data_root() / "videos" / _WOLFGANG), limit=1).frames[0]


def _render(
    session: arfx.Session, image: np.ndarray, **params: Any
) -> tuple[np.ndarray, Sequence[Any], dict[str, np.ndarray]]:
    """The effect with ``params`` (others at their defaults) on ``image``; also the faces
    and the masks the session painted with. Index 0 every time, so no photo's statistics
    are smoothed into the next one's."""
    effect = session.effect("hair_color")
    effect.set(**{**effect.spec.defaults(), **params})
    frame = session.process_frame(Frame(image=image, index=0))
    assert len(frame.faces) >= 1
    masks = ModelMasks().build([f.analysis for f in frame.faces], image.shape[:2], ["hair", "skin"])
    return frame.image, frame.faces, masks


def _hair_core(masks: dict[str, np.ndarray]) -> np.ndarray:
    """Pixels that are surely hair, away from its edges."""
    sure = ((masks["hair"] >= 230) & (masks["skin"] < 64)).astype(np.uint8)
    return cv2.erode(sure, np.ones((5, 5), np.uint8)) > 0


def _small(image: np.ndarray, box: Sequence[float], margin: float = 0.6) -> np.ndarray:
    """The face crop, at most 256 pixels on its longer side (goldens stay small)."""
    y0, y1, x0, x1 = face_crop(image, tuple(box), margin)
    crop = image[y0:y1, x0:x1]
    scale = 256.0 / max(crop.shape[:2])
    if scale < 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)


def test_manifest_declares_typed_labelled_parameters() -> None:
    spec = EffectSpec.load(builtin_effects_dir() / "hair_color")
    assert spec.masks == ("hair", "skin")
    assert [p.shader for p in spec.passes] == ["hair_mask.frag", "hair_color.frag"]
    assert set(spec.params) == {
        "color",
        "tip_color",
        "ombre",
        "strength",
        "lift",
        "shine",
        "edge",
    }
    for name, param in spec.params.items():
        assert param.label and param.description, name
        if param.type == "float":
            assert (param.min, param.max) == (0.0, 1.0), name
    assert spec.params["ombre"].default == 0.0  # off unless asked for


def test_out_of_range_parameters_are_named() -> None:
    spec = EffectSpec.load(builtin_effects_dir() / "hair_color")
    with pytest.raises(ParameterError, match=r"'strength'.*above the maximum 1"):
        Effect(spec, strength=1.5)
    with pytest.raises(ParameterError, match=r"'ombre'.*below the minimum 0"):
        Effect(spec, ombre=-0.1)
    with pytest.raises(ParameterError, match=r"'tip_color'"):
        Effect(spec, tip_color="#12345")
    with pytest.raises(ParameterError, match=r"no parameter 'colour'.*color"):
        Effect(spec, colour="#ff0000")


def test_only_the_hair_changes(session, image_path) -> None:
    image = _rgb(image_path("obama.jpg"))
    out, _, masks = _render(session, image, color="#2a5bd7")
    reach = masks["hair"] >= _REACH
    assert changed_outside(image, out, reach) == 0, "pixels off the hair must stay bit-exact"
    assert changed_outside(image, out, masks["skin"] < _SKIN_HIGH) == 0, "skin stays as is"
    changed = np.any(out != image, axis=2)
    assert changed[_hair_core(masks)].mean() > 0.9


def test_every_face_gets_its_hair_coloured(session, image_path) -> None:
    image = _rgb(image_path("two_people.jpg"))
    out, faces, masks = _render(session, image, color="#2a5bd7")
    assert len(faces) == 2
    assert changed_outside(image, out, masks["hair"] >= _REACH) == 0
    changed = np.any(out != image, axis=2)
    core = _hair_core(masks)
    for face in faces:
        x0, y0, x1, y1 = (int(v) for v in face.box)
        height = y1 - y0
        mine = np.zeros_like(core)
        mine[max(y0 - height, 0) : y1, max(x0 - height // 2, 0) : x1 + height // 2] = True
        assert (core & mine).sum() > 200
        assert changed[core & mine].mean() > 0.8


def test_zero_strength_leaves_the_frame_bit_exact(session, image_path) -> None:
    image = _rgb(image_path("sergey.png"))
    out, _, _ = _render(session, image, strength=0.0)
    assert np.array_equal(out, image)


def test_hue_moves_to_the_colour_and_strands_survive(session, image_path) -> None:
    image = _rgb(image_path("obama.jpg"))
    target = "#2a5bd7"
    out, _, masks = _render(session, image, color=target)
    core = _hair_core(masks)
    assert core.sum() > 2000
    before, after = _lab(image), _lab(out)
    wanted = _lab(np.array([[[0x2A, 0x5B, 0xD7]]], np.uint8))[0, 0]
    hue = _hue(after[core][:, 1:].mean(axis=0))
    assert _hue_difference(hue, _hue(wanted[1:])) < 20.0
    chroma_before = np.linalg.norm(before[core][:, 1:].mean(axis=0))
    assert np.linalg.norm(after[core][:, 1:].mean(axis=0)) > chroma_before + 20.0
    # Strands: the fine lightness detail (lightness minus its local mean) is still there,
    # in the same places, and not flattened.
    detail = [lab[..., 0] - cv2.GaussianBlur(lab[..., 0], (0, 0), 2.0) for lab in (before, after)]
    assert np.corrcoef(detail[0][core], detail[1][core])[0, 1] > 0.7
    assert detail[1][core].std() > 0.6 * detail[0][core].std(), "not a flat sticker"
    assert np.corrcoef(before[..., 0][core], after[..., 0][core])[0, 1] > 0.8


@pytest.mark.parametrize("name", ["sergey.png", _WOLFGANG])
def test_dark_hair_gets_lighter_with_a_light_colour(
    session, image_path, wolfgang_frame, name
) -> None:
    image = wolfgang_frame if name == _WOLFGANG else _rgb(image_path(name))
    out, _, masks = _render(session, image, color="#e6dccb")  # platinum blonde
    core = _hair_core(masks)
    before, after = _lab(image)[core], _lab(out)[core]
    assert before[:, 0].mean() < 30.0, "the photo's hair is dark"
    assert after[:, 0].mean() > before[:, 0].mean() + 30.0
    # Still hair: lighter and darker strands, not one flat colour.
    assert after[:, 0].std() > 0.8 * before[:, 0].std()
    # ... and a tint keeps the hair's lightness.
    tinted, _, _ = _render(session, image, color="#e6dccb", lift=0.0)
    assert abs(_lab(tinted)[core][:, 0].mean() - before[:, 0].mean()) < 3.0


def test_only_yellow_colours_take_the_golden_shadow_turn(session, wolfgang_frame) -> None:
    """hooks.py tells the shader whether a yellow hue can be dyed, so it skips the hue maths
    for other colours: skipping it changes no pixel of those, and a golden colour's shadows
    still turn toward orange."""
    effect = session.effect("hair_color")
    hook = effect.load_hooks()
    assert hook is not None
    renders = {}
    for color in ("#8a4a32", "#d9a066"):  # the default brown; gold
        for forced in (None, False, True):
            effect._hook = hook if forced is None else _forcing(hook, forced)
            try:
                renders[color, forced] = _render(session, wolfgang_frame, color=color)[0]
            finally:
                effect._hook = hook
    assert np.array_equal(renders["#8a4a32", None], renders["#8a4a32", True])
    assert np.array_equal(renders["#d9a066", None], renders["#d9a066", True])
    turned = np.abs(renders["#d9a066", None].astype(int) - renders["#d9a066", False]).max(-1)
    assert (turned > 2).sum() > 500, "gold's shadows turn toward golden brown"


def _forcing(hook: Any, value: bool) -> Any:
    def forced(frame: Any, params: Any) -> Any:
        return {**hook(frame, params), "u_maybe_yellow": value}

    return forced


def test_ombre_tips_take_the_tip_colour(session, wolfgang_frame) -> None:
    image = wolfgang_frame
    params = {"color": "#2a5bd7", "tip_color": "#e75480", "strength": 1.0}
    plain, faces, masks = _render(session, image, **params)
    ombre, _, _ = _render(session, image, **params, ombre=1.0)
    # Position along the head: 0 at the top of the forehead, 1 at the chin.
    top, chin = faces[0].landmarks[10, :2], faces[0].landmarks[152, :2]
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    along = ((xs - top[0]) * (chin - top)[0] + (ys - top[1]) * (chin - top)[1]) / float(
        np.sum((chin - top) ** 2)
    )
    core = _hair_core(masks)
    roots, tips = core & (along < 0.2), core & (along > 1.0)
    assert roots.sum() > 500 and tips.sum() > 500
    hue = {
        name: [_hue(_lab(out)[region][:, 1:].mean(axis=0)) for region in (roots, tips)]
        for name, out in (("plain", plain), ("ombre", ombre))
    }
    assert _hue_difference(*hue["plain"]) < 15.0, "without ombré the hair is one colour"
    assert _hue_difference(*hue["ombre"]) > 40.0, "with ombré the tips change colour"
    pink = _hue(_lab(np.array([[[0xE7, 0x54, 0x80]]], np.uint8))[0, 0, 1:])
    assert _hue_difference(hue["ombre"][1], pink) < _hue_difference(hue["plain"][1], pink)


def test_obama_matches_golden(session, image_path) -> None:
    image = _rgb(image_path("obama.jpg"))
    out, faces, _ = _render(session, image)
    assert_matches_golden("hair_color_obama", _small(out, faces[0].box))


def test_wolfgang_ombre_matches_golden(session, wolfgang_frame) -> None:
    out, faces, _ = _render(session, wolfgang_frame, ombre=0.6)
    assert_matches_golden("hair_color_wolfgang_ombre", _small(out, faces[0].box, 0.5))
