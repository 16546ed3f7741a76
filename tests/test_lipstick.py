"""Lipstick finishes, liner and occlusion on real photos, and the optional-mask manifest key."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import arfx
from arfx.effect import EffectSpec
from arfx.errors import EffectError


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
    float occluded = arfx_mask(u_mask_occlusion, arfx_pixel());
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
    with pytest.raises(EffectError, match="'optional_masks' must be a list"):
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
