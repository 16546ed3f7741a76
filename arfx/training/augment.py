"""Augmentations for the face-model samples: geometry, photometry, occluders, fake context.

numpy + OpenCV only. Geometry is expressed as a change of the crop's alignment matrix, so the
image, labels, landmarks and pose all move through one warp and cannot disagree. Every
function takes a ``numpy.random.Generator``, so a sample is reproducible from its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "AugmentConfig",
    "FACE_OVAL",
    "apply_matrix",
    "compose",
    "fake_previous",
    "flip_matrix",
    "hand_mask",
    "jitter_alignment",
    "paste_occluder",
    "photometric",
    "random_occluder",
]

# MediaPipe face-oval contour (FACEMESH_FACE_OVAL as a loop): the face region of a video
# frame's fake previous mask, where no parsing ground truth exists.
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip

# Skin tones (RGB) from light to dark; a hand's base colour is drawn between neighbours.
_SKIN_TONES = np.array(
    [[255, 224, 205], [241, 194, 167], [224, 172, 138], [198, 134, 96], [161, 102, 69],
     [120, 75, 50], [84, 52, 36]],
    dtype=np.float32,
)  # fmt: skip


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges and probabilities of the training augmentation."""

    rotation_deg: float = 25.0
    scale: tuple[float, float] = (0.85, 1.15)
    translation: float = 0.06
    """Of the crop size, each axis."""
    flip: float = 0.5
    occluder: float = 0.5
    """Chance of a synthetic occluder on samples whose occlusion target is meaningful."""
    hand: float = 0.5
    """Share of occluders that are hands (the rest: rectangles, ellipses, polygons)."""
    context_zero: float = 0.3
    """Chance that the fake previous masks are all zeros (a new track)."""
    previous_shift: float = 0.02
    """Largest shift of a fake previous mask, of the crop size, each axis."""
    previous_grow: int = 2
    """Largest growth or shrinkage of a fake previous mask, pixels. A previous mask that is
    almost the label teaches the network to copy it instead of reading the image."""
    prior_zero: float = 0.0
    """Chance that the mesh lip prior (context channel 3) is all zeros. Models trained with
    it always present (v1, v5) draw no lips at all without it: they learned to copy it, not
    to find lips in the image (docs/face-model-v5-experiment)."""
    prior_jitter: float = 0.0
    """Chance that the mesh lip prior is moved, turned, scaled and grown a little
    (``jitter_prior``), as a mesh that misses the lip edge would draw it."""
    prior_shift: float = 0.006
    """Largest shift of a jittered lip prior, of the crop size, each axis."""
    prior_grow: int = 1
    """Largest growth of a jittered lip prior, pixels (it shrinks by at most 1: thin lips
    would vanish)."""
    frame_cut: float = 0.0
    """Chance that a sample with hair (labels, or the hair teacher's on video frames) is cut
    as a video frame cuts a head: the image above a random row between the hair's top and
    the eyes is replaced by what the crop shows past a frame's edge (the crop border,
    mirrored or repeated), its labels unknown. CelebAMask's images often end in the hair,
    but always at one height; v5's and v8's recipes lost hair where WolfgangLanger's frame
    edge crosses the crown, and v10 (this at 0.3) did not (docs/face-model-v10-experiment)."""
    previous_hole: float = 0.0
    """Chance, for a sample ``frame_cut`` cut, that its fake previous hair mask misses a band
    of hair right below the cut (5-25% of the crop's height), as a model's own mask with a
    hole at a frame's top edge would feed it back in a stream. Labels below the cut are
    known, so the network learns to take that hair from the picture rather than copy the
    hole: fine-tunes from v10 (v11, v12, v13) kept missing 15-25% of WolfgangLanger's
    top-edge hair in a stream, and only there."""
    mesh_context: float = 0.0
    """Chance that a 68-point face without parsing labels (udacity) gets a fake previous frame
    from its mesh (the face oval, no hair, the lips polygons), as video frames do. Without it
    the landmark head never sees context with real 68 points, and in a stream, where every
    frame after a face's first has context, v10's udacity NME is 5.56% against 4.89%. v11
    (this at 0.7, 800 steps from v10) got 5.46% but lost the hair at a frame's top edge
    again (docs/face-model-v11-experiment); so did v12, which left this off and changed only
    the occluders (docs/face-model-v12-experiment)."""
    blur: float = 0.15
    motion_blur: float = 0.1
    noise: float = 0.3
    jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 90)


def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 2+) through a 2x3 affine map, as float64 (N, 2)."""
    p = np.asarray(points, dtype=np.float64)[..., :2]
    return p @ matrix[:, :2].T + matrix[:, 2]


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2x3 map ``outer`` after ``inner``."""
    return outer[:, :2] @ inner + np.concatenate([np.zeros((2, 2)), outer[:, 2:]], axis=1)


def jitter_alignment(
    matrix: np.ndarray, size: int, rng: np.random.Generator, config: AugmentConfig
) -> np.ndarray:
    """The alignment ``matrix`` (frame -> crop) turned, zoomed and shifted about the crop
    centre, so the augmented crop is still one similarity warp of the frame."""
    angle = math.radians(rng.uniform(-config.rotation_deg, config.rotation_deg))
    scale = math.exp(rng.uniform(math.log(config.scale[0]), math.log(config.scale[1])))
    shift = rng.uniform(-config.translation, config.translation, size=2) * size
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    centre = np.array([size / 2.0, size / 2.0])
    linear = np.array([[c, -s], [s, c]])
    offset = centre + shift - linear @ centre
    jitter = np.concatenate([linear, offset[:, None]], axis=1)
    return compose(jitter, np.asarray(matrix, dtype=np.float64))


def flip_matrix(size: int) -> np.ndarray:
    """The 2x3 horizontal mirror of a ``size``-wide crop (pixel j <-> size - 1 - j, the
    convention of ``cv2.warpAffine`` and ``cv2.flip``)."""
    return np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]])


# ---------------------------------------------------------------- photometric


def photometric(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Colour jitter (brightness, contrast, saturation, hue, gamma), sometimes blur or motion
    blur, Gaussian noise and a JPEG round trip: camera and compression variety. RGB uint8 in,
    RGB uint8 out."""
    x = image.astype(np.float32) / 255.0
    if rng.random() < 0.5:  # hue, through OpenCV's float HSV (H in degrees)
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-10.0, 10.0)) % 360.0
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = grey[..., None] + (x - grey[..., None]) * rng.uniform(0.6, 1.4)  # saturation
    mean = float(grey.mean())
    x = (x - mean) * rng.uniform(0.7, 1.3) + mean  # contrast
    x = x * rng.uniform(0.7, 1.3)  # brightness
    x = np.clip(x, 0.0, 1.0) ** rng.uniform(0.7, 1.4)  # gamma
    if rng.random() < config.blur:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.6))
    if rng.random() < config.motion_blur:
        length = int(rng.integers(4, 10))
        kernel = np.zeros((length, length), dtype=np.float32)
        kernel[length // 2, :] = 1.0 / length
        turn = cv2.getRotationMatrix2D(
            ((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0
        )
        kernel = cv2.warpAffine(kernel, turn, (length, length))
        x = cv2.filter2D(x, -1, kernel / max(float(kernel.sum()), 1e-6))
    if rng.random() < config.noise:
        x = x + rng.normal(0.0, rng.uniform(0.005, 0.03), size=x.shape).astype(np.float32)
    out = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < config.jpeg:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        ok, buffer = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buffer, cv2.IMREAD_COLOR)[:, :, ::-1])
    return out


# ---------------------------------------------------------------- occluders


def _capsule(mask: np.ndarray, a: np.ndarray, b: np.ndarray, width: float, k: int) -> None:
    a_i = tuple(int(v) for v in np.rint(a * k))
    b_i = tuple(int(v) for v in np.rint(b * k))
    cv2.line(mask, a_i, b_i, 255, max(1, int(round(width * k))), cv2.LINE_8)
    for p in (a_i, b_i):
        cv2.circle(mask, p, max(1, int(round(width * k / 2))), 255, -1)


def hand_mask(
    size: int, centre: np.ndarray, palm: float, angle: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A hand silhouette: a palm ellipse, four fingers and sometimes a thumb, as capsules.

    ``palm`` is the palm width in pixels, ``angle`` (radians) the direction the fingers point.
    Returns (alpha float32 0..1, crease map float32: 1 on the palm and finger boundaries, for
    shading the gaps between fingers). Drawn at 2x and averaged down for smooth edges.
    """
    k = 2
    big = size * k
    mask = np.zeros((big, big), np.uint8)
    crease = np.zeros((big, big), np.uint8)
    up = np.array([math.cos(angle), math.sin(angle)])
    side = np.array([-up[1], up[0]])
    half_w, half_h = palm * 0.5, palm * rng.uniform(0.5, 0.65)
    cv2.ellipse(
        mask,
        tuple(int(v) for v in np.rint(centre * k)),
        (int(half_w * k), int(half_h * k)),
        math.degrees(angle) + 90,
        0,
        360,
        255,
        -1,
    )
    n_fingers = 4
    finger_w = palm / n_fingers * rng.uniform(0.85, 1.0)
    spread = rng.uniform(0.0, 0.25)
    lengths = np.array([0.75, 0.95, 1.0, 0.85]) * palm * rng.uniform(0.8, 1.15)
    for i in range(n_fingers):
        u = (i - (n_fingers - 1) / 2) / ((n_fingers - 1) / 2)  # -1 .. 1 across the palm
        base = centre + up * half_h * 0.8 * (1 - 0.15 * abs(u)) + side * u * (half_w - finger_w / 2)
        direction = up * math.cos(spread * u) + side * math.sin(spread * u)
        bend = rng.uniform(0.4, 1.0)  # curled fingers look shorter
        tip = base + direction * lengths[i] * bend
        _capsule(mask, base, tip, finger_w, k)
        _capsule(crease, base, tip, finger_w, k)
    if rng.random() < 0.7:  # thumb on one side, pointing out and up
        s = 1.0 if rng.random() < 0.5 else -1.0
        base = centre + side * s * half_w * 0.7
        direction = up * 0.6 + side * s * 0.8
        _capsule(mask, base, base + direction * palm * rng.uniform(0.5, 0.8), finger_w * 1.15, k)
    edges = cv2.morphologyEx(crease, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    alpha = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    lines = cv2.resize(edges, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return alpha, lines


def _shape_mask(
    size: int, centre: np.ndarray, extent: float, rng: np.random.Generator
) -> np.ndarray:
    """A rectangle, ellipse or random convex-ish polygon around ``centre`` (alpha 0..1)."""
    k = 2
    mask = np.zeros((size * k, size * k), np.uint8)
    angle = rng.uniform(0, 180)
    w, h = extent * rng.uniform(0.4, 1.0), extent * rng.uniform(0.2, 0.7)
    kind = rng.integers(3)
    c = tuple(float(v * k) for v in centre)
    if kind == 0:
        box = cv2.boxPoints((c, (w * k, h * k), angle))
        cv2.fillPoly(mask, [np.rint(box).astype(np.int32)], 255)
    elif kind == 1:
        cv2.ellipse(mask, (tuple(int(v) for v in c), (int(w * k), int(h * k)), angle), 255, -1)
    else:
        n = int(rng.integers(5, 9))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = extent * 0.5 * rng.uniform(0.5, 1.0, n)
        pts = np.stack([c[0] + np.cos(angles) * radii * k, c[1] + np.sin(angles) * radii * k], 1)
        cv2.fillPoly(mask, [np.rint(pts).astype(np.int32)], 255)
    return cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _texture(textures: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """A size x size RGB float texture: a random patch of a random image, turned and zoomed."""
    source = textures[int(rng.integers(len(textures)))]
    h, w = source.shape[:2]
    scale = rng.uniform(0.6, 1.6)
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(0, 360), scale)
    turn[:, 2] += np.array([size / 2 - w / 2, size / 2 - h / 2]) + rng.uniform(-w / 4, w / 4, 2)
    patch = cv2.warpAffine(source, turn, (size, size), borderMode=cv2.BORDER_REFLECT)
    return patch.astype(np.float32) / 255.0


def random_occluder(
    size: int,
    anchors: dict[str, np.ndarray],
    ocular: float,
    textures: list[np.ndarray],
    rng: np.random.Generator,
    config: AugmentConfig,
    face_tone: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """An occluder for a ``size`` crop: (RGB float32 HxWx3, alpha float32 HxW).

    ``face_tone`` (RGB 0..255, the face's own skin) colours half of the hands: a person's
    hand over their mouth has nearly their face's colour, the hardest case to tell apart.

    Placed over the mouth half of the time, else the nose, an eye or anywhere on the face
    (``anchors``: crop-pixel points "mouth", "nose", "left_eye", "right_eye", "face"), sized
    from the inter-ocular distance ``ocular``. Hands are skin-toned with shading and texture
    from a random image patch; other shapes take a random image patch as they are.
    """
    r = rng.random()
    name = (
        "mouth"
        if r < 0.5
        else "nose"
        if r < 0.65
        else "face"
        if r < 0.8
        else ("left_eye" if rng.random() < 0.5 else "right_eye")
    )
    centre = np.asarray(anchors[name], dtype=np.float64) + rng.normal(0, 0.2 * ocular, 2)
    if rng.random() < config.hand:
        palm = ocular * rng.uniform(0.9, 1.5)
        angle = rng.uniform(0, 2 * math.pi)
        # The palm sits beside the anchor half the time, so fingers (not palm) cross it.
        centre = centre - np.array([math.cos(angle), math.sin(angle)]) * palm * rng.uniform(0, 0.8)
        alpha, creases = hand_mask(size, centre, palm, angle, rng)
        tone = rng.uniform(0, len(_SKIN_TONES) - 1)
        lo = int(tone)
        base = _SKIN_TONES[lo] + (
            _SKIN_TONES[min(lo + 1, len(_SKIN_TONES) - 1)] - _SKIN_TONES[lo]
        ) * (tone - lo)
        if face_tone is not None and rng.random() < 0.5:
            base = np.asarray(face_tone, np.float64) * rng.uniform(0.9, 1.1)
        base = base * rng.uniform(0.85, 1.1, 3) / 255.0
        grain = _texture(textures, size, rng).mean(axis=2)
        grain = 1.0 + (grain - grain.mean()) * rng.uniform(0.1, 0.35)
        # Soft light from one side, darker towards the silhouette edge and the finger gaps.
        light_dir = rng.normal(size=2)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        ramp = ((xx - centre[0]) * light_dir[0] + (yy - centre[1]) * light_dir[1]) / (
            np.linalg.norm(light_dir) * palm * 2 + 1e-6
        )
        inside = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
        rim = 0.75 + 0.25 * np.clip(inside / max(palm * 0.12, 1.0), 0, 1)
        shade = (1.0 + 0.25 * ramp) * rim * (1.0 - 0.35 * cv2.GaussianBlur(creases, (0, 0), 1.0))
        rgb = base[None, None, :] * (grain * shade)[..., None]
    else:
        alpha = _shape_mask(size, centre, ocular * rng.uniform(0.8, 2.2), rng)
        rgb = _texture(textures, size, rng)
        if rng.random() < 0.3:  # flat-coloured object with a little noise
            rgb = rgb * 0.2 + rng.uniform(0, 1, 3).astype(np.float32) * 0.8
    return np.clip(rgb, 0, 1).astype(np.float32), alpha.astype(np.float32)


def paste_occluder(image: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-blend an occluder into an RGB uint8 image."""
    a = alpha[..., None]
    out = image.astype(np.float32) * (1 - a) + rgb * 255.0 * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- fake previous masks


def _random_turn(
    centre: tuple[float, float], degrees: float, shift: float, size: int, rng: np.random.Generator
) -> np.ndarray:
    """2x3 map: turned by up to ``degrees`` and scaled by up to 4% about ``centre``, then
    moved by up to ``shift`` of ``size`` on each axis."""
    matrix = cv2.getRotationMatrix2D(
        centre, rng.uniform(-degrees, degrees), rng.uniform(0.96, 1.04)
    )
    matrix[:, 2] += rng.uniform(-shift, shift, 2) * size
    return matrix


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` dilated by ``pixels`` (eroded when negative) with a round kernel."""
    if not pixels:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(pixels) + 1,) * 2)
    return cv2.dilate(mask, kernel) if pixels > 0 else cv2.erode(mask, kernel)


def jitter_prior(
    prior: np.ndarray,
    rng: np.random.Generator,
    *,
    shift: float = AugmentConfig.prior_shift,
    grow: int = AugmentConfig.prior_grow,
) -> np.ndarray:
    """The mesh lip prior (H, W) float32 as a slightly wrong mesh would draw it: turned by up
    to 2 degrees and scaled by up to 4% about the lips' centre, moved by up to ``shift`` of
    the crop, then grown by up to ``grow`` or shrunk by 1 pixel. Anti-aliased like the
    original."""
    h, w = prior.shape
    ys, xs = np.nonzero(prior > 0.5)
    if xs.size == 0:
        return prior
    matrix = _random_turn((float(xs.mean()), float(ys.mean())), 2.0, shift, w, rng)
    out = cv2.warpAffine(prior, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return _grow(out, int(rng.integers(-1, grow + 1)))


def fake_previous(
    masks: np.ndarray,
    rng: np.random.Generator,
    *,
    shift: float = AugmentConfig.previous_shift,
    grow: int = AugmentConfig.previous_grow,
) -> np.ndarray:
    """Masks (C, H, W) float32 in [0, 1] as a previous frame's prediction warped into this
    crop would look: moved by a small affine and a smooth random displacement (the face
    moved, the warp was imperfect), each channel grown or shrunk a little, and softened."""
    c, h, w = masks.shape
    turn = _random_turn((w / 2, h / 2), 4.0, shift, w, rng)
    grid = rng.normal(0.0, rng.uniform(0.5, 2.5), size=(2, 5, 5)).astype(np.float32)
    dx = cv2.resize(grid[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(grid[1], (w, h), interpolation=cv2.INTER_CUBIC)
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    inverse = cv2.invertAffineTransform(turn)
    map_x = (inverse[0, 0] * xx + inverse[0, 1] * yy + inverse[0, 2] + dx).astype(np.float32)
    map_y = (inverse[1, 0] * xx + inverse[1, 1] * yy + inverse[1, 2] + dy).astype(np.float32)
    out = np.empty_like(masks)
    for i in range(c):
        m = cv2.remap(masks[i], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        m = _grow(m, int(rng.integers(-grow, grow + 1)))
        m = cv2.GaussianBlur(m, (0, 0), rng.uniform(0.5, 2.0))
        out[i] = np.clip(m * rng.uniform(0.8, 1.0), 0.0, 1.0)
    return out
