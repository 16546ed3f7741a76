"""Model-ready samples of the face-model training cache (numpy + OpenCV, no torch).

``FaceSamples(cache, "train", augment=True, seed=0)[i]`` is a dict of arrays in the 256x256
crop space of docs/face-model.md; the torch side only stacks them. Loss weights travel with
each sample so one batch can mix data sets that label different things:

========================  ==================  ======================================
key                       shape, dtype        meaning
========================  ==================  ======================================
image                     [3,256,256] f32     RGB in [0, 1]
context                   [4,256,256] f32     fake previous face, hair, lips; lip prior
parsing                   [256,256] i64       class ids, 255 = ignore
hair_soft                 [256,256] f32       hair teacher probability
hair_soft_weight          [] f32              1 for video frames, else 0
occlusion                 [256,256] f32       1 where a synthetic occluder was pasted
occlusion_weight          [] f32              1 if the occlusion target is trustworthy
landmarks                 [68,2] f32          iBUG points, crop pixels
landmark_weight           [68] f32            1 GT, 0.5 mesh pseudo-label, 0 unknown
rotation                  [3,3] f32           head rotation in the crop's camera frame
rotation_weight           [] f32              1 if a mesh pose exists, else 0
valid                     [256,256] f32       1 where the labels are known: the crop
                                              shows the source image, or its replicated
                                              border with ``replicate_border`` (video:
                                              and the teacher saw it); use it to mask
                                              hair_soft and occlusion losses
========================  ==================  ======================================

Crops that reach past the frame show its border pixels replicated, as at run time
(``Alignment.crop``), or with ``crop_border="reflect"`` the frame mirrored at its edge (the
exported model then says so in its metadata and runs the same way). By default the labels
there are unknown (ignored). With ``replicate_border`` they follow the image the same way
and are trained on (``train --border-labels replicate``). That was the v4 experiment's
guess at the hair hole fine-tunes leave where a head touches the frame's top edge; the hole
stayed (docs/face-model-v4-experiment). Validation keeps the default, so its scores count
only real pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..alignment import (
    CROP_SIZE,
    Alignment,
    align_ibug68,
    align_mesh,
    crop_border_mode,
    mirror_rotation,
    rotation_to_crop,
)
from ..faceparts import CLASS_INDEX, IBUG_FLIP, MESH_TO_IBUG68
from ..masks import mesh_mask
from .augment import (
    FACE_OVAL,
    AugmentConfig,
    apply_matrix,
    compose,
    fake_previous,
    flip_matrix,
    jitter_alignment,
    jitter_prior,
    paste_occluder,
    photometric,
    random_occluder,
)

__all__ = ["FaceSamples", "IGNORE", "MESH_LANDMARK_WEIGHT", "load_index"]

IGNORE = 255
MESH_LANDMARK_WEIGHT = 0.5
"""Weight of mesh pseudo-landmarks (inner points 17-67); the mesh jaw (0-16) is not the
visible jawline, so it gets 0."""
_FACE_CLASSES = [
    CLASS_INDEX[n]
    for n in ("skin", "brows", "eyes", "nose", "upper_lip", "lower_lip", "inner_mouth")
]
_LIP_CLASSES = [CLASS_INDEX["upper_lip"], CLASS_INDEX["lower_lip"]]
_HAIR = CLASS_INDEX["hair"]
_TEXTURE_POOL = 24
_OCCLUDABLE = ("celebamask", "video")


def _index_path(cache_dir: Path | str) -> Path:
    root = Path(cache_dir)
    for candidate in (root / "index.json", root / "train-v1" / "index.json"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no training cache index at {root}/index.json; build it with "
        "`python -m arfx.training.prepare --cache DIR`"
    )


HAT_SHARE = 0.005
"""Share of a CelebAMask label image that is hat, from which the photo counts as one with a
hat (``hair_cases``)."""
LITTLE_HAIR_SHARE = 0.03
"""Share of hair below which a CelebAMask photo counts as one with little hair (bald, shaved,
covered)."""


def hair_cases(entry: dict) -> set[str]:
    """The rare hair cases a labelled photo shows: "hat" and/or "little_hair". The face model
    took caps, bald heads and the wall behind them for hair (docs/face-model-v13-experiment);
    ``train --hats`` / ``--little-hair`` show these photos more often. Needs the index's label
    shares (``prepare``)."""
    if entry["kind"] != "celebamask" or "hat_share" not in entry:
        return set()
    cases = set()
    if entry["hat_share"] > HAT_SHARE:
        cases.add("hat")
    if entry["hair_share"] < LITTLE_HAIR_SHARE:
        cases.add("little_hair")
    return cases


def load_index(cache_dir: Path | str) -> tuple[Path, list[dict]]:
    """(cache folder, item entries) of a prepared cache (the folder or its parent)."""
    path = _index_path(cache_dir)
    return path.parent, json.loads(path.read_text())["items"]


def _face_oval(mesh_crop: np.ndarray, dsize: tuple[int, int]) -> np.ndarray:
    """The mesh's face oval filled, uint8 0/1, in the crop."""
    oval = np.zeros(dsize, np.uint8)
    cv2.fillPoly(oval, [np.rint(mesh_crop[list(FACE_OVAL)]).astype(np.int32)], 1)
    return oval


def _decode(buffer: np.ndarray, flags: int) -> np.ndarray:
    image = cv2.imdecode(buffer, flags)
    if image is None:
        raise ValueError("cannot decode an image stored in the training cache")
    return image


class FaceSamples:
    """The samples of one split of a prepared cache.

    ``split`` is "train", "val" or "all"; ``kinds`` keeps only some data sets. With
    ``augment``, ``sample(i, epoch, copy)`` is one random augmentation of item ``i``, a pure
    function of ``seed``, the epoch, the index and which of the item's copies in that epoch
    it is (an item can be drawn more than once per epoch: ``--hats``), so a training run
    draws the same augmentations however many loader workers it has and when it is
    resumed; ``samples[i]`` draws a new one at each access (the next copy). Without
    ``augment`` a sample is the plain aligned crop and always the same. Items that cannot be cropped
    (no face found and no 68-point ground truth) are left out. ``crop_border`` is what the
    crop shows past the frame's edge (``alignment.CROP_BORDERS``); ``replicate_border``
    labels those pixels the same way (for training), without it they are ignored.
    """

    def __init__(
        self,
        cache_dir: Path | str,
        split: str,
        *,
        augment: bool,
        seed: int = 0,
        kinds: tuple[str, ...] | None = None,
        config: AugmentConfig | None = None,
        replicate_border: bool = False,
        crop_border: str = "replicate",
    ) -> None:
        if split not in ("train", "val", "all"):
            raise ValueError(f"unknown split {split!r}; valid splits: train, val, all")
        self.root, entries = load_index(cache_dir)
        self.items = [
            e
            for e in entries
            if (split == "all" or e["split"] == split)
            and (kinds is None or e["kind"] in kinds)
            and e["has_image"]
            and (e["has_mesh"] or e["has_ibug68"])
        ]
        self.split = split
        self.augment = augment
        self.seed = int(seed)
        self.config = config or AugmentConfig()
        self.replicate_border = bool(replicate_border)
        self.crop_border = crop_border
        self._border_mode = crop_border_mode(crop_border)
        self.size = CROP_SIZE
        self._served: dict[int, int] = {}
        self._textures: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def kind(self, i: int) -> str:
        """ "celebamask", "udacity" or "video": lets a sampler balance the data sets."""
        return self.items[i]["kind"]

    @property
    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.items]

    def load(self, i: int) -> dict[str, np.ndarray]:
        """The raw cached arrays of item ``i`` (see ``arfx.training.prepare``)."""
        with np.load(self.root / self.items[i]["file"]) as data:
            return {key: data[key] for key in data.files}

    def _texture_pool(self) -> list[np.ndarray]:
        """Images (RGB uint8, <= 192 px) whose patches texture the synthetic occluders."""
        if self._textures is None:
            rng = np.random.default_rng([self.seed, 7919])
            picks = rng.choice(
                len(self.items), size=min(_TEXTURE_POOL, len(self.items)), replace=False
            )
            pool = []
            for j in picks:
                rgb = _decode(self.load(int(j))["image"], cv2.IMREAD_COLOR)[:, :, ::-1]
                f = 192.0 / max(rgb.shape[:2])
                pool.append(np.ascontiguousarray(cv2.resize(rgb, None, fx=f, fy=f)))
            self._textures = pool
        return self._textures

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        copy = self._served.get(i, 0)
        self._served[i] = copy + 1
        return self.sample(i, 0, copy)

    def sample(self, i: int, epoch: int = 0, copy: int = 0) -> dict[str, np.ndarray]:
        """Item ``i``: with ``augment`` the augmentation drawn for its ``copy``-th draw in
        ``epoch`` (the same on every call), else the plain crop."""
        if not 0 <= i < len(self.items):
            raise IndexError(i)
        entry = self.items[i]
        data = self.load(i)
        rng = np.random.default_rng([self.seed, epoch, i, copy]) if self.augment else None
        return self._sample(entry, data, rng)

    def _sample(
        self, entry: dict, data: dict[str, np.ndarray], rng: np.random.Generator | None
    ) -> dict[str, np.ndarray]:
        size, config = self.size, self.config
        rgb = np.ascontiguousarray(_decode(data["image"], cv2.IMREAD_COLOR)[:, :, ::-1])
        height, width = rgb.shape[:2]
        mesh = data.get("mesh")
        points68 = data.get("ibug68")
        base = (
            align_mesh(mesh, size=size) if mesh is not None else align_ibug68(points68, size=size)
        )

        # Geometry: one matrix (frame -> crop) for everything; the flip is applied on top.
        matrix = base.matrix.astype(np.float64)
        flip = False
        if rng is not None:
            matrix = jitter_alignment(matrix, size, rng, config)
            flip = bool(rng.random() < config.flip)
        alignment = Alignment(matrix, size)
        warp = compose(flip_matrix(size), matrix) if flip else matrix
        dsize = (size, size)

        labels = _decode(data["labels"], cv2.IMREAD_UNCHANGED) if "labels" in data else None
        hair = None
        if "hair" in data:
            hair = _decode(data["hair"], cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
        known = np.ones((height, width), np.uint8)
        cut = 0
        # Only drawn when enabled, so recipes without it keep their random sequence.
        if rng is not None and config.frame_cut and rng.random() < config.frame_cut:
            cut = frame_cut_row(labels, hair, mesh, points68, rng)
            if cut:
                rgb = cut_frame_top(rgb, cut, self._border_mode)
                known[:cut] = 0
                if labels is not None:
                    labels = labels.copy()
                    labels[:cut] = IGNORE

        image = cv2.warpAffine(
            rgb, warp, dsize, flags=cv2.INTER_LINEAR, borderMode=self._border_mode
        )
        # Labels follow the image past the frame's edge, or are unknown there.
        border = self._border_mode if self.replicate_border else cv2.BORDER_CONSTANT
        valid = cv2.warpAffine(
            known,
            warp,
            dsize,
            flags=cv2.INTER_NEAREST,
            borderMode=border,
            borderValue=0,
        )
        if labels is not None:
            parsing = cv2.warpAffine(
                labels,
                warp,
                dsize,
                flags=cv2.INTER_NEAREST,
                borderMode=border,
                borderValue=IGNORE,
            )
        else:
            parsing = np.full(dsize, IGNORE, np.uint8)

        hair_soft = np.zeros(dsize, np.float32)
        if hair is not None:
            hair_soft = cv2.warpAffine(
                hair,
                warp,
                dsize,
                flags=cv2.INTER_LINEAR,
                borderMode=border,
                borderValue=0,
            )
            # Where the teacher never looked, nothing is known: its crop's view of the
            # frame, carried into the training crop like the labels.
            seen = cv2.warpAffine(
                np.ones((512, 512), np.uint8),
                cv2.invertAffineTransform(data["hair_matrix"]),
                (width, height),
                flags=cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
            valid &= cv2.warpAffine(
                seen, warp, dsize, flags=cv2.INTER_NEAREST, borderMode=border, borderValue=0
            )

        # Landmarks and their weights.
        mesh_crop = apply_matrix(warp, mesh) if mesh is not None else None
        weights = np.zeros(68, np.float32)
        if points68 is not None:
            landmarks = apply_matrix(warp, points68)
            weights[:] = 1.0
        elif mesh_crop is not None:
            landmarks = mesh_crop[MESH_TO_IBUG68]
            weights[17:] = MESH_LANDMARK_WEIGHT
        else:
            landmarks = np.zeros((68, 2))
        if flip:
            landmarks, weights = landmarks[IBUG_FLIP], weights[IBUG_FLIP]
        inside = np.all((landmarks >= 0) & (landmarks <= size - 1), axis=1)
        weights = weights * inside

        # Pose in the (turned, maybe mirrored) crop camera.
        rotation = np.eye(3)
        if "rotation" in data:
            rotation = rotation_to_crop(data["rotation"], alignment)
            if flip:
                rotation = mirror_rotation(rotation)

        prior = np.zeros(dsize, np.float32)
        if mesh_crop is not None:
            prior = mesh_mask(mesh_crop, dsize, "lips").astype(np.float32) / 255.0

        # Fake previous masks, before the occluder (used when the hand has just arrived).
        if "labels" in data:
            previous = np.stack(
                [
                    np.isin(parsing, _FACE_CLASSES),
                    parsing == _HAIR,
                    np.isin(parsing, _LIP_CLASSES),
                ]
            ).astype(np.float32)
        elif entry["kind"] == "video" and mesh_crop is not None:
            oval = _face_oval(mesh_crop, dsize)
            previous = np.stack([oval * (1.0 - hair_soft), hair_soft, prior]).astype(np.float32)
        elif (
            config.mesh_context  # drawn only when enabled: other recipes keep their sequence
            and rng is not None
            and mesh_crop is not None
            and rng.random() < config.mesh_context
        ):  # a 68-point face without parsing labels: its mesh's face and lips, hair unknown
            oval = _face_oval(mesh_crop, dsize)
            previous = np.stack([oval, np.zeros(dsize, np.float32), prior]).astype(np.float32)
        else:
            previous = None

        occlusion = np.zeros(dsize, np.float32)
        occluded = False
        if rng is not None and entry["kind"] in _OCCLUDABLE and rng.random() < config.occluder:
            occluder_rgb, alpha = random_occluder(
                size,
                _anchors(landmarks),
                _ocular(landmarks),
                self._texture_pool(),
                rng,
                config,
                face_tone=_skin_tone(image, landmarks),
            )
            image = paste_occluder(image, occluder_rgb, alpha)
            hard = alpha > 0.5
            occlusion[hard] = 1.0
            parsing = parsing.copy()
            parsing[hard] = 0
            occluded = True

        context = np.zeros((4, size, size), np.float32)
        context[3] = prior
        if rng is not None and previous is not None and rng.random() >= config.context_zero:
            if occluded and rng.random() < 0.7:  # the hand was there in the previous frame too
                previous = previous * (1.0 - occlusion)[None]
            context[:3] = fake_previous(
                previous, rng, shift=config.previous_shift, grow=config.previous_grow
            )
            if cut and config.previous_hole and rng.random() < config.previous_hole:
                band = _band_below(cut, warp, (height, width), size, alignment.scale, rng)
                context[1] *= 1.0 - band
        if rng is not None and prior.any():
            # Only drawn when enabled, so recipes without them keep their random sequence.
            if config.prior_zero and rng.random() < config.prior_zero:
                context[3] = 0.0
            elif config.prior_jitter and rng.random() < config.prior_jitter:
                context[3] = jitter_prior(
                    prior, rng, shift=config.prior_shift, grow=config.prior_grow
                )

        if rng is not None:
            image = photometric(image, rng, config)

        kind = entry["kind"]
        occlusion_weight = float(kind in _OCCLUDABLE and not entry.get("real_occluder", False))
        return {
            "image": np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0,
            "context": context,
            "parsing": parsing.astype(np.int64),
            "hair_soft": hair_soft.astype(np.float32),
            "hair_soft_weight": np.float32(1.0 if "hair" in data else 0.0),
            "occlusion": occlusion,
            "occlusion_weight": np.float32(occlusion_weight),
            "landmarks": landmarks.astype(np.float32),
            "landmark_weight": weights.astype(np.float32),
            "rotation": rotation.astype(np.float32),
            "rotation_weight": np.float32(1.0 if "rotation" in data else 0.0),
            "valid": valid.astype(np.float32),
        }


def _anchors(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Where occluders go: mouth, nose, eyes and a random face point, crop pixels."""
    p = landmarks
    return {
        "mouth": p[48:68].mean(axis=0),
        "nose": p[30],
        "left_eye": p[36:42].mean(axis=0),
        "right_eye": p[42:48].mean(axis=0),
        "face": p[17:68].mean(axis=0),
    }


def _skin_tone(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Median RGB of the cheeks (between the outer eye corners and the mouth corners)."""
    radius = max(int(0.12 * _ocular(landmarks)), 2)
    height, width = image.shape[:2]
    patches = []
    for eye, mouth in ((36, 48), (45, 54)):
        x, y = np.rint(0.5 * (landmarks[eye] + landmarks[mouth])).astype(int)
        x0, y0 = max(x - radius, 0), max(y - radius, 0)
        patch = image[y0 : min(y + radius, height), x0 : min(x + radius, width)]
        if patch.size:
            patches.append(patch.reshape(-1, 3))
    if not patches:
        return np.array([180.0, 140.0, 120.0])
    return np.median(np.concatenate(patches), axis=0).astype(np.float64)


def _ocular(landmarks: np.ndarray) -> float:
    return float(max(np.linalg.norm(landmarks[45] - landmarks[36]), 10.0))


FRAME_CUT_RANGE = (0.1, 0.6)
"""Where ``AugmentConfig.frame_cut`` cuts: between these fractions of the way from the
hair's top row down to the eyes."""


def _band_below(
    cut: int,
    warp: np.ndarray,
    shape: tuple[int, int],
    size: int,
    scale: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Crop-space 0/1 mask of a band of frame rows starting at ``cut``, 5-25% of the crop's
    height tall (``AugmentConfig.previous_hole``); ``scale`` is crop pixels per frame pixel
    (``Alignment.scale``)."""
    rows = int(round(rng.uniform(0.05, 0.25) * size / scale))
    band = np.zeros(shape, np.uint8)
    band[cut : cut + max(rows, 1)] = 1
    return cv2.warpAffine(band, warp, (size, size), flags=cv2.INTER_NEAREST).astype(np.float32)


def frame_cut_row(
    labels: np.ndarray | None,
    hair: np.ndarray | None,
    mesh: np.ndarray | None,
    points68: np.ndarray | None,
    rng: np.random.Generator,
) -> int:
    """A row of the source image that crosses the hair above the eyes, or 0 where the sample
    shows no hair above them (or no eyes are known)."""
    if labels is not None:
        hair_rows = np.flatnonzero((labels == _HAIR).any(axis=1))
    elif hair is not None:
        hair_rows = np.flatnonzero((hair > 0.5).any(axis=1))
    else:
        return 0
    if points68 is not None:
        eyes = float(np.mean(np.asarray(points68)[36:48, 1]))
    elif mesh is not None:
        eyes = float(np.mean(np.asarray(mesh)[MESH_TO_IBUG68][36:48, 1]))
    else:
        return 0
    if hair_rows.size == 0 or hair_rows[0] >= eyes - 8:
        return 0
    low, high = FRAME_CUT_RANGE
    top = float(hair_rows[0])
    return int(round(top + rng.uniform(low, high) * (eyes - top)))


def cut_frame_top(rgb: np.ndarray, row: int, border_mode: int) -> np.ndarray:
    """``rgb`` as if the frame began at ``row``: the rows above it show what a crop shows
    past a frame's edge (``border_mode``, the crop border's OpenCV mode)."""
    return cv2.copyMakeBorder(rgb[row:], row, 0, 0, 0, border_mode)
