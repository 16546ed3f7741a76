"""The mesh refinement of the model's 68 points (arfx.points68): the fit's arithmetic, its
file, and that the shipped fit belongs to the shipped model."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from arfx.model import DEFAULT_MODEL, FaceAnalyzer, FaceModel
from arfx.points68 import (
    MESH_VERTICES,
    PointsFit,
    PointsFitError,
    file_sha256,
    fit_for,
    fit_path,
    fit_points,
)

from .conftest import data_root, require


def _faces(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Meshes: a fixed template plus noise per face; network points: the first 68 vertices
    plus their own noise."""
    rng = np.random.default_rng(seed)
    template = rng.uniform(20, 236, (MESH_VERTICES, 2))
    mesh = template + rng.normal(0, 4, (count, MESH_VERTICES, 2))
    network = mesh[:, :68] + rng.normal(0, 4, (count, 68, 2))
    return mesh, network


def test_a_fit_recovers_the_blend_that_made_the_points():
    """Truth made as an exact blend of each point's own vertex and its network point: an
    unregularised fit finds those weights and reproduces the truth."""
    mesh, network = _faces(200)
    truth = 0.3 * mesh[:, :68] + 0.7 * network
    fit = fit_points(mesh, network, truth, vertices_per_point=4, ridge=0.0, model_sha256="x")
    assert (fit.vertices[:, 0] == np.arange(68)).all()  # each point's nearest vertex first
    for m, n, t in zip(mesh[:5], network[:5], truth[:5], strict=True):
        np.testing.assert_allclose(fit.apply(m, n), t, atol=1e-6)
    assert fit.weights[:, -1] == pytest.approx(0.7, abs=1e-6)


def test_a_strong_ridge_gives_half_the_nearest_vertex_and_half_the_network():
    mesh, network = _faces(50, seed=1)
    truth = network + 5.0
    fit = fit_points(mesh, network, truth, vertices_per_point=8, ridge=1e12, model_sha256="x")
    assert fit.weights[:, 0] == pytest.approx(0.5, abs=1e-4)
    assert fit.weights[:, -1] == pytest.approx(0.5, abs=1e-4)
    assert np.abs(fit.weights[:, 1:-1]).max() < 1e-4


def test_bad_inputs_and_bad_fits_are_refused():
    mesh, network = _faces(3)
    with pytest.raises(ValueError, match="478"):
        fit_points(mesh[:, :400], network, network, vertices_per_point=4, ridge=1, model_sha256="")
    with pytest.raises(ValueError, match="same number"):
        fit_points(mesh, network[:2], network, vertices_per_point=4, ridge=1, model_sha256="")
    vertices = np.zeros((68, 4), np.intp)
    with pytest.raises(PointsFitError, match=r"weights must be \(68, 5\)"):
        PointsFit(vertices, np.zeros((68, 4)), "x")
    with pytest.raises(PointsFitError, match="vertex indices"):
        PointsFit(vertices + MESH_VERTICES, np.zeros((68, 5)), "x")
    with pytest.raises(PointsFitError, match="finite"):
        PointsFit(vertices, np.full((68, 5), np.nan), "x")


def test_a_fit_goes_with_its_model_file(tmp_path, caplog):
    model = tmp_path / "net.onnx"
    model.write_bytes(b"one network")
    assert fit_path(model) == tmp_path / "net.points68.npz"
    assert fit_for(model) is None  # no fit: the network keeps its points
    mesh, network = _faces(20)
    fit = fit_points(
        mesh, network, network, vertices_per_point=4, ridge=1.0, model_sha256=file_sha256(model)
    )
    fit.save(fit_path(model))
    loaded = fit_for(model)
    assert loaded is not None and loaded.model_sha256 == fit.model_sha256
    np.testing.assert_allclose(
        loaded.apply(mesh[0], network[0]), fit.apply(mesh[0], network[0]), atol=1e-3
    )  # fmt: skip  (stored as float32)
    model.write_bytes(b"another network")  # retrained, the fit not made again
    with caplog.at_level(logging.WARNING, logger="arfx"):
        assert fit_for(model) is None
    assert "net.points68.npz was made for another net.onnx" in caplog.text
    fit_path(model).write_bytes(b"not an npz")
    with pytest.raises(PointsFitError, match=r"net\.points68\.npz: not a points fit"):
        fit_for(model)


def test_the_shipped_fit_belongs_to_the_shipped_model():
    """Re-exporting the model without fitting again would silently drop the refinement."""
    if not DEFAULT_MODEL.is_file():
        pytest.skip("no shipped model")
    fit = fit_for(DEFAULT_MODEL)
    assert fit is not None, f"{fit_path(DEFAULT_MODEL)} missing or made for another model"
    model = FaceModel(DEFAULT_MODEL, device="cpu")
    assert model.points_fit is not None
    assert FaceAnalyzer(model).points_fit is model.points_fit  # found once, shared
    assert FaceAnalyzer(model, mesh_points=False).points_fit is None


def test_the_fit_command_writes_a_fit_for_the_model(tmp_path, capsys):
    """The shipped fit's command, on a few udacity training faces."""
    from arfx.training.fit_points68 import main

    udacity = require(data_root() / "landmarks68" / "udacity")
    out = tmp_path / "fit.npz"
    assert main(["--data", str(udacity), "--limit", "25", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "25 training faces" in text and "5-fold NME" in text and "chose K=" in text
    fit = PointsFit.load(out)
    assert fit.model_sha256 == file_sha256(DEFAULT_MODEL)
    assert fit.vertices.shape[0] == 68 and fit.weights.shape[1] == fit.vertices.shape[1] + 1
