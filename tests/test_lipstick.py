"""Lipstick finishes, liner and occlusion on real photos, and the optional-mask manifest key."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import arfx
from arfx.effect import EffectSpec
from arfx.errors import EffectError, ParameterError
from arfx.masks import LIPS_OUTER_LOWER, LIPS_OUTER_UPPER, MeshMasks
from arfx.model import ModelMasks

from .golden import assert_matches_golden, changed_outside, delta_e, face_crop


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


# -- optional_masks: read when the mask source has them, zero when it has not --------------

# Paints pure green wherever the optional occlusion mask is set, nothing elsewhere.
_OCCLUSION_PROBE = """
#include "mask.glsl"
uniform sampler2D u_mask_lips;
uniform sampler2D u_mask_occlusion;
void main() {
    vec4 src = arfx_source();
    float filtered = arfx_mask(u_mask_occlusion, arfx_pixel());
    float occluded = max(filtered, arfx_mask_here(u_mask_occlusion));
    arfx_out = occluded > 0.0 ? vec4(0.0, 1.0, 0.0, 1.0) : src;
}
"""
# Records the masks the hook is given, so the test sees what the session built.
_RECORDING_HOOK = """
SEEN = []
def uniforms(frame, params):
    SEEN.append(sorted(frame.masks))
    return {}
"""


def _probe(root: Path, manifest: str = "") -> Path:
    folder = root / "probe"
    folder.mkdir()
    (folder / "effect.toml").write_text(
        manifest
        or 'name = "probe"\nshader = "p.frag"\nhooks = "hooks.py"\n'
        'masks = ["lips"]\noptional_masks = ["occlusion"]\n'
    )
    (folder / "p.frag").write_text(_OCCLUSION_PROBE)
    (folder / "hooks.py").write_text(_RECORDING_HOOK)
    return folder


def test_optional_masks_are_parsed_and_checked(tmp_path: Path) -> None:
    spec = EffectSpec.load(_probe(tmp_path))
    assert spec.masks == ("lips",) and spec.optional_masks == ("occlusion",)
    (tmp_path / "probe" / "effect.toml").write_text(
        'name = "probe"\nshader = "p.frag"\nmasks = ["lips"]\noptional_masks = ["lips"]\n'
    )
    with pytest.raises(EffectError, match="both required and optional"):
        EffectSpec.load(tmp_path / "probe")
    (tmp_path / "probe" / "effect.toml").write_text(
        'name = "probe"\nshader = "p.frag"\noptional_masks = "occlusion"\n'
    )
    with pytest.raises(
        EffectError, match=r"effect\.toml:3: optional_masks: expected a list, got 'occlusion'"
    ):
        EffectSpec.load(tmp_path / "probe")
    (tmp_path / "probe" / "effect.toml").write_text(
        'name = "probe"\nshader = "p.frag"\noptional_masks = ["occlusoin"]\n'
    )
    options = arfx.SessionOptions(static_images=True, masks="mesh", effect_paths=(tmp_path,))
    with pytest.raises(EffectError, match="no mask source provides \\['occlusoin'\\]"):
        arfx.Session(["probe"], options)


def test_optional_mask_reads_zero_without_the_model(tmp_path: Path, image_path) -> None:
    _probe(tmp_path)
    image = _rgb(image_path("obama.jpg"))
    options = arfx.SessionOptions(static_images=True, masks="mesh", effect_paths=(tmp_path,))
    with arfx.Session(["probe"], options) as session:  # not refused for lacking occlusion
        out = session.process(image)
        hook = session.effect("probe").load_hooks()
        assert hook is not None and hook.__globals__["SEEN"] == [["lips"]]
    assert session.effect_failures == {}
    assert np.array_equal(out, image)


def test_optional_mask_is_bound_with_the_model(tmp_path: Path, image_path) -> None:
    _probe(tmp_path)
    image = _rgb(image_path("obama.jpg"))
    # A grey block over the mouth: the model's occlusion mask is set there.
    faces_box = _mouth_box(image)
    occluded = image.copy()
    x0, y0, x1, y1 = faces_box
    occluded[y0:y1, x0:x1] = (150, 120, 100)
    options = arfx.SessionOptions(static_images=True, masks="model", effect_paths=(tmp_path,))
    with arfx.Session(["probe"], options) as session:
        out = session.process(occluded)
        hook = session.effect("probe").load_hooks()
        assert hook is not None and hook.__globals__["SEEN"] == [["lips", "occlusion"]]
    green = np.all(out == (0, 255, 0), axis=2)
    assert green[y0:y1, x0:x1].mean() > 0.5


def _mouth_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around the mouth of the photo's one face, from the mesh."""
    with arfx.Session([], arfx.SessionOptions(static_images=True, masks="mesh")) as session:
        (face,) = session.analyze(image)
    lips = face.landmarks[[61, 291, 0, 17], :2]
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    pad_x, pad_y = 0.15 * (x1 - x0), 0.3 * (y1 - y0)
    return int(x0 - pad_x), int(y0 - pad_y), int(x1 + pad_x), int(y1 + pad_y)


# -- the finishes on real photos ---------------------------------------------------------

FINISHES = {
    "matte": {"finish": "matte"},
    "satin": {"finish": "satin"},
    "gloss": {"finish": "gloss"},
    "shimmer": {"finish": "shimmer"},
    "sheer": {"finish": "sheer"},
    "satin_liner": {"finish": "satin", "liner_width": 1.5},
}


@pytest.fixture(scope="module")
def model_session():
    options = arfx.SessionOptions(static_images=True, masks="model")
    with arfx.Session(["lipstick"], options) as session:
        yield session


@pytest.fixture(scope="module")
def renders(model_session):
    """render(image_name, variant) -> (original, output, face), each rendered once."""
    cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, object]] = {}

    def render(path: Path, variant: str) -> tuple[np.ndarray, np.ndarray, object]:
        key = (str(path), variant)
        if key not in cache:
            image = _rgb(path)
            defaults = model_session.registry.spec("lipstick").defaults()
            model_session.set("lipstick", **{**defaults, **FINISHES[variant]})
            out = model_session.process(image)
            (face,) = model_session.analyze(image)
            cache[key] = (image, out, face)
        return cache[key]

    return render


def _masks(face, shape) -> dict[str, np.ndarray]:
    return ModelMasks().build([face.analysis], shape[:2], ["lips", "inner_mouth"])


def _mouth_crop(image: np.ndarray, face) -> tuple[int, int, int, int]:
    points = face.landmarks[list(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER), :2]
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    return face_crop(image, (x0, y0, x1, y1), margin=0.25)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _lip_core(face, shape) -> np.ndarray:
    """Lip pixels well inside the lips, away from the teeth: where the finish shows."""
    masks = _masks(face, shape)
    lips = (masks["lips"] >= 240) & (masks["inner_mouth"] < 5)
    return cv2.erode(lips.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


@pytest.mark.parametrize("variant", ["matte", "gloss", "shimmer", "sheer", "satin_liner"])
def test_finish_matches_its_golden(renders, image_path, variant) -> None:
    image, out, face = renders(image_path("obama.jpg"), variant)
    y0, y1, x0, x1 = _mouth_crop(image, face)
    assert_matches_golden(f"lipstick_{variant}_obama", out[y0:y1, x0:x1])


def test_gloss_matches_its_golden_on_a_second_face(renders, image_path) -> None:
    image, out, face = renders(image_path("sergey.png"), "gloss")
    y0, y1, x0, x1 = _mouth_crop(image, face)
    assert_matches_golden("lipstick_gloss_sergey", out[y0:y1, x0:x1])


@pytest.mark.parametrize("variant", list(FINISHES))
def test_nothing_changes_outside_the_lips(renders, image_path, variant) -> None:
    image, out, face = renders(image_path("obama.jpg"), variant)
    lips = _masks(face, image.shape)["lips"] > 0
    width = float(np.linalg.norm(face.landmarks[291, :2] - face.landmarks[61, :2]))
    # The feather (0.06 x mouth width x 0.5) and the liner (1.5% of it, plus some of the
    # feather) reach this far past the mask, plus 2 px of bilinear filtering.
    reach = (
        0.06 * width * 0.5
        + (0.015 + 0.15 * 0.03) * width * FINISHES[variant].get("liner_width", 0.0) / 1.5
        + 2
    )
    grow = int(np.ceil(reach))
    near = cv2.dilate(lips.astype(np.uint8), np.ones((2 * grow + 1,) * 2, np.uint8)) > 0
    assert changed_outside(image, out, near) == 0
    assert changed_outside(image, out, np.zeros_like(near)) > 1000  # it did paint


def test_no_paint_on_the_teeth(renders, image_path) -> None:
    for variant in FINISHES:
        image, out, face = renders(image_path("obama.jpg"), variant)
        teeth = _masks(face, image.shape)["inner_mouth"] >= 0.75 * 255
        assert teeth.sum() > 1000
        assert np.array_equal(out[teeth], image[teeth]), variant


def test_gloss_brightens_the_highlights_and_matte_flattens_them(renders, image_path) -> None:
    path = image_path("obama.jpg")
    image, satin, face = renders(path, "satin")
    core = _lip_core(face, image.shape)
    # enough pixels for a 99th percentile: v1 327 and v10 252 at 250, v10 975 and v16 620 at 240
    assert core.sum() > 200
    lightness = {v: _lab(renders(path, v)[1])[..., 0][core] for v in ("satin", "gloss", "matte")}
    top = {v: float(np.percentile(values, 99)) for v, values in lightness.items()}
    spread = {v: float(values.std()) for v, values in lightness.items()}
    assert top["gloss"] > top["satin"] + 8.0, top
    assert top["matte"] < top["satin"] - 2.0, top
    assert spread["matte"] < 0.8 * spread["satin"], spread


def test_sheer_keeps_the_lips_own_colour(renders, image_path) -> None:
    path = image_path("obama.jpg")
    image, satin, face = renders(path, "satin")
    sheer = renders(path, "sheer")[1]
    core = _lip_core(face, image.shape)
    original = _lab(image)[core]
    to_satin = np.linalg.norm(_lab(satin)[core] - original, axis=1).mean()
    to_sheer = np.linalg.norm(_lab(sheer)[core] - original, axis=1).mean()
    assert 2.0 < to_sheer < 0.6 * to_satin, (to_sheer, to_satin)


def test_liner_follows_the_outer_contour(renders, image_path) -> None:
    path = image_path("obama.jpg")
    image, satin, face = renders(path, "satin")
    lined = renders(path, "satin_liner")[1]
    masks = _masks(face, image.shape)
    lips = (masks["lips"] > 128).astype(np.uint8)
    width = float(np.linalg.norm(face.landmarks[291, :2] - face.landmarks[61, :2]))
    r = max(int(round(0.015 * width / 2)), 1)
    kernel = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    teeth = cv2.dilate((masks["inner_mouth"] > 128).astype(np.uint8), np.ones((6 * r + 1,) * 2))
    band = (cv2.dilate(lips, kernel) > 0) & (cv2.erode(lips, kernel) == 0) & (teeth == 0)
    centre = cv2.erode(lips, np.ones((8 * r + 1,) * 2, np.uint8)) > 0
    assert band.sum() > 200 and centre.sum() > 100
    change = delta_e(lined, satin)
    assert change[band].mean() > 6.0
    assert change[centre].mean() < 0.5


def test_shimmer_sparkles_move_with_the_face(model_session, image_path) -> None:
    """The sparkles of a photo shifted by a few pixels are the same sparkles, shifted."""
    image = _rgb(image_path("obama.jpg"))
    dy, dx = 9, 14
    shifted = np.roll(image, (dy, dx), axis=(0, 1))
    defaults = model_session.registry.spec("lipstick").defaults()

    def sparkles(photo: np.ndarray) -> np.ndarray:
        model_session.set("lipstick", **{**defaults, "finish": "shimmer"})
        shimmer = model_session.process(photo).astype(np.float32)
        model_session.set("lipstick", finish="satin")
        satin = model_session.process(photo).astype(np.float32)
        glints = np.clip((shimmer - satin).mean(axis=2), 0.0, None)
        return cv2.GaussianBlur(glints, (0, 0), 1.0)

    here, there = sparkles(image), sparkles(shifted)
    back = np.roll(there, (-dy, -dx), axis=(0, 1))
    lit = (here > 0) | (back > 0)
    assert (here > 10).sum() > 50  # there are sparkles to compare
    assert np.corrcoef(here[lit], back[lit])[0, 1] > 0.85  # anchored to the face
    assert np.corrcoef(here[lit], there[lit])[0, 1] < 0.3  # not to the screen


_FINGER_PHOTOS = ("obama.jpg", "biden.jpg", "single_face.jpg", "sergey.png")
_FINGER_PLACES = (0.2, 0.35, 0.5, 0.65, 0.8)
"""Where the bar's centre crosses the mouth, from its left corner (0) to its right (1)."""


def test_no_paint_on_a_finger_across_the_mouth(image_path) -> None:
    """A skin-coloured bar over the mouth, at five places on each of four photos: the face
    model's occlusion and lips masks keep the paint off it (but for a band the masks'
    softness wide at its edges) and still paint the lips beside it. The shipped model v1
    painted 68% of the bar on Biden's mouth at 0.2 (8.5% over all twenty), v10 none of it;
    they painted 91% and 88% of the lips beside it."""
    beside_painted, controls = [], []
    with arfx.Session(["lipstick:opacity=1"], arfx.SessionOptions(static_images=True)) as session:
        if session.mask_source != "model":
            pytest.skip("the face model is not available")
        for name in _FINGER_PHOTOS:
            image = _rgb(image_path(name))
            (face,) = session.analyze(image)
            lips = _masks(face, image.shape)["lips"] > 128
            width = float(np.linalg.norm(face.landmarks[291, :2] - face.landmarks[61, :2]))
            r = int(np.ceil(0.03 * width)) + 3  # the feather radius and a few pixels of blur
            for place in _FINGER_PLACES:
                finger, bar = _finger(image, face, place)
                painted = delta_e(session.process(finger), finger) > 5.0
                interior = cv2.erode(bar.astype(np.uint8), np.ones((2 * r + 1,) * 2, np.uint8))
                under = (interior > 0) & lips
                beside = lips & ~(cv2.dilate(bar.astype(np.uint8), np.ones((5, 5))) > 0)
                assert under.sum() > 50 and beside.sum() > 500, (name, place)
                assert painted[under].mean() < 0.05, (name, place, painted[under].mean())
                assert painted[beside].mean() > 0.6, (name, place, painted[beside].mean())
                beside_painted.append(painted[beside].mean())
                controls.append((finger, under))
    assert np.mean(beside_painted) > 0.85, beside_painted
    # Without the model's masks the bar is painted: the checks above measure something.
    mesh = arfx.SessionOptions(static_images=True, masks="mesh")
    with arfx.Session(["lipstick:opacity=1"], mesh) as session:
        painted_under = [
            (delta_e(session.process(finger), finger) > 5.0)[under].mean()
            for finger, under in controls
        ]
    assert np.mean(painted_under) > 0.5, painted_under


def _finger(image: np.ndarray, face, place: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with a shaded, skin-coloured vertical bar over the mouth, its centre at
    ``place`` of the way from the left mouth corner to the right, and the bar's mask (bool)."""
    points = face.landmarks[:, :2]
    x0, x1 = points[61, 0], points[291, 0]
    y0, y1 = points[0, 1], points[17, 1]
    centre, half = x0 + place * (x1 - x0), 0.18 * (x1 - x0)
    alpha = np.zeros(image.shape[:2], np.float32)
    top, bottom = int(y0 - 1.5 * (y1 - y0)), int(y1 + 1.5 * (y1 - y0))
    alpha[top:bottom, int(centre - half) : int(centre + half)] = 1.0
    alpha = cv2.GaussianBlur(alpha, (5, 5), 0)[..., None]
    across = (np.arange(image.shape[1]) - centre) / half
    shade = np.clip(1.0 - 0.35 * across**2, 0.6, 1.0)[None, :, None]
    skin = np.array([214.0, 170.0, 140.0]) * shade
    finger = (image * (1.0 - alpha) + skin * alpha).astype(np.uint8)
    return finger, alpha[..., 0] > 0.98


def test_mesh_masks_still_paint_every_finish(image_path) -> None:
    """Without the face model (no occlusion mask) the effect is not refused and paints."""
    image = _rgb(image_path("single_face.jpg"))
    options = arfx.SessionOptions(static_images=True, masks="mesh")
    with arfx.Session(["lipstick"], options) as session:
        (face,) = session.analyze(image)
        masks = MeshMasks().build([face], image.shape[:2], ["lips", "inner_mouth"])
        lips, teeth = masks["lips"] >= 250, masks["inner_mouth"] >= 0.75 * 255
        for finish in ("matte", "satin", "gloss", "shimmer", "sheer"):
            session.set("lipstick", finish=finish)
            out = session.process(image)
            assert (delta_e(out, image)[lips] > 3.0).mean() > 0.8, finish
            assert np.array_equal(out[teeth], image[teeth]), finish
        assert session.effect_failures == {}


def test_finish_and_liner_parameters_are_checked() -> None:
    with pytest.raises(ParameterError, match="finish"):
        arfx.Session(["lipstick:finish=glossy"])
    with pytest.raises(ParameterError, match="liner_width"):
        arfx.Session(["lipstick:liner_width=9"])
