"""The parsing benchmark on real CelebAMask-HQ pairs with the real face mesh, no mocks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from arfx.errors import SourceError
from arfx.evaluation import (
    PARSING_CLASSES,
    ParsingReport,
    _read_labels,
    evaluate_parsing,
    load_celebamask,
)
from tests.conftest import data_root, require


@pytest.fixture(scope="module")
def celebamask() -> Path:
    return require(data_root() / "parsing" / "celebamask")


@pytest.fixture(scope="module")
def report20(celebamask) -> tuple[ParsingReport, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []
    report = evaluate_parsing(celebamask, limit=20, progress=lambda d, t: calls.append((d, t)))
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
    rows = table.splitlines()[1:]
    assert len({len(row) for row in rows}) == 1  # aligned columns


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
    with_blank = evaluate_parsing(tmp_path)
    assert with_blank.images == 3 and with_blank.faces_found == 2
    lips = with_blank.scores["lips"]
    assert lips.images == 3
    only_faces = evaluate_parsing(tmp_path, limit=2)
    assert lips.mean_iou == pytest.approx(only_faces.scores["lips"].mean_iou * 2 / 3)


def test_unknown_method(celebamask):
    with pytest.raises(ValueError, match="mesh"):
        evaluate_parsing(celebamask, limit=1, method="oracle")
