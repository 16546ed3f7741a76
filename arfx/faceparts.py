"""Names and index tables shared by the face model, its training code and the evaluations.

Everything that must agree between training and run time lives here: the parsing classes,
how CelebAMask-HQ labels map onto them, the 68-point iBUG layout, the MediaPipe-mesh
points that approximate it, and the left/right permutations a horizontal flip needs.
"""

from __future__ import annotations

import numpy as np

PARSING_CLASSES: tuple[str, ...] = (
    "background",
    "skin",
    "brows",
    "eyes",
    "nose",
    "upper_lip",
    "lower_lip",
    "inner_mouth",
    "hair",
    "glasses",
)
"""The face model's parsing classes, in output-channel order. Left and right eyes (and
brows) share a class, so a horizontal flip needs no class permutation."""

CLASS_INDEX = {name: i for i, name in enumerate(PARSING_CLASSES)}

# CelebAMask-HQ label ids -> arfx class index. Ears count as skin (they take makeup light
# like skin); neck, cloth, hat, jewellery are background for the face effects.
CELEBAMASK_TO_ARFX = np.zeros(256, dtype=np.uint8)
for _celeb, _name in {
    1: "skin",
    2: "nose",
    3: "glasses",
    4: "eyes",
    5: "eyes",
    6: "brows",
    7: "brows",
    8: "skin",
    9: "skin",
    10: "inner_mouth",
    11: "upper_lip",
    12: "lower_lip",
    13: "hair",
}.items():
    CELEBAMASK_TO_ARFX[_celeb] = CLASS_INDEX[_name]
CELEBAMASK_HAIR, CELEBAMASK_HAT = 13, 14
"""CelebAMask label ids of hair and of hats (which arfx's classes count as background)."""

# Named masks the model provides to effects, as unions of parsing classes.
MODEL_MASKS: dict[str, tuple[str, ...]] = {
    "lips": ("upper_lip", "lower_lip"),
    "upper_lip": ("upper_lip",),
    "lower_lip": ("lower_lip",),
    "inner_mouth": ("inner_mouth",),
    "hair": ("hair",),
    "skin": ("skin",),
    "brows": ("brows",),
    "eyes": ("eyes",),
    "nose": ("nose",),
    "glasses": ("glasses",),
}

# iBUG 300-W 68-point layout: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67.
IBUG_REGIONS: dict[str, slice] = {
    "jaw": slice(0, 17),
    "brows": slice(17, 27),
    "nose": slice(27, 36),
    "eyes": slice(36, 48),
    "mouth": slice(48, 68),
}
IBUG_EYE_OUTER = (36, 45)
"""Outer eye corners: their distance is the 300-W inter-ocular normaliser for NME."""

# Where each iBUG point sits on the MediaPipe mesh (nearest mesh vertex). Good for the
# inner points; the mesh's jaw is a fixed 3D contour, not the visible jawline, so the
# jaw (0-16) is only a rough pseudo-label.
MESH_TO_IBUG68 = np.array(
    [162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
     71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
     168, 197, 5, 4, 75, 97, 2, 326, 305,
     33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
     61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
     78, 82, 13, 312, 308, 317, 14, 87],
    dtype=np.intp,
)  # fmt: skip


def _ibug_flip() -> np.ndarray:
    """Index permutation mapping iBUG points to their mirror partners."""
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56)]  # outer mouth
    pairs += [(60, 64), (61, 63), (67, 65)]  # inner mouth
    flip = np.arange(68)
    for a, b in pairs:
        flip[a], flip[b] = b, a
    return flip


IBUG_FLIP = _ibug_flip()
"""``points_flipped = points[IBUG_FLIP]`` after mirroring x, for horizontal-flip augmentation
and flip-consistency checks."""


def ibug_keypoints(points68: np.ndarray) -> dict[str, np.ndarray]:
    """Eye centres and mouth corners of a 68-point face (for alignment), as (2,) arrays."""
    p = np.asarray(points68, dtype=np.float64)[:, :2]
    return {
        "left_eye": p[36:42].mean(axis=0),  # image-left eye (the person's right)
        "right_eye": p[42:48].mean(axis=0),
        "mouth_left": p[48],
        "mouth_right": p[54],
    }


MESH_EYE_RINGS = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398),
)


def mesh_keypoints(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """The same keypoints from a MediaPipe mesh (468 or 478 points)."""
    p = np.asarray(landmarks, dtype=np.float64)[:, :2]
    return {
        "left_eye": p[list(MESH_EYE_RINGS[0])].mean(axis=0),
        "right_eye": p[list(MESH_EYE_RINGS[1])].mean(axis=0),
        "mouth_left": p[61],
        "mouth_right": p[291],
    }
