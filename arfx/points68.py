"""The 68 iBUG points, the face model's refined with the tracker's mesh.

The model's landmark head and MediaPipe's 478-vertex mesh make different mistakes: the
network reads a 64x64 heatmap per point, the mesh fits a whole 3D face. Neither alone is the
best estimate. A fit made once on the held-in udacity faces (``arfx.training.fit_points68``)
gives each of the 68 points as a linear blend of the network's point and its ``K`` nearest
mesh vertices, with one weight per source shared by x and y, all in the face's crop. On the
held-out udacity faces this took the NME from 4.89% (network alone) to 4.10%
(docs/face-model.md, the model card).

A fit belongs to one network: its file sits beside the ONNX file
(``face_multitask.points68.npz``) and names the ONNX file's SHA-256; a model without a
matching fit keeps its own points.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ArfxError

log = logging.getLogger("arfx")

MESH_VERTICES = 478
"""The tracker's mesh (MediaPipe face mesh with irises)."""
POINTS = 68
SUFFIX = ".points68.npz"
"""A fit's file name: the ONNX file's name with this in place of ``.onnx``."""


class PointsFitError(ArfxError):
    """A points fit file is missing a field, has the wrong shapes or cannot be read."""


@dataclass(frozen=True)
class PointsFit:
    """Each iBUG point as ``weights[k, :K] @ mesh[vertices[k]] + weights[k, K] * network[k]``
    in crop pixels."""

    vertices: np.ndarray  # (68, K) intp: mesh vertex indices per point
    weights: np.ndarray  # (68, K + 1) float64: the vertices' weights, then the network's
    model_sha256: str  # the ONNX file this fit was made for
    ridge: float = 0.0
    """How strongly the fit was pulled toward an even blend of the nearest vertex and the
    network (recorded for the model card)."""

    def __post_init__(self) -> None:
        vertices, weights = np.asarray(self.vertices), np.asarray(self.weights)
        if vertices.ndim != 2 or vertices.shape[0] != POINTS or vertices.shape[1] < 1:
            raise PointsFitError(f"vertices must be (68, K), got {vertices.shape}")
        if weights.shape != (POINTS, vertices.shape[1] + 1):
            raise PointsFitError(
                f"weights must be (68, {vertices.shape[1] + 1}) for {vertices.shape[1]} "
                f"vertices per point, got {weights.shape}"
            )
        if vertices.min() < 0 or vertices.max() >= MESH_VERTICES:
            raise PointsFitError(f"vertex indices must lie in [0, {MESH_VERTICES})")
        if not np.isfinite(weights).all():
            raise PointsFitError("weights must be finite")

    def apply(self, mesh: np.ndarray, network: np.ndarray) -> np.ndarray:
        """(68, 2) points from one face's mesh (478, >=2) and network points (68, 2), both in
        crop pixels."""
        k = self.vertices.shape[1]
        near = np.asarray(mesh, np.float64)[:, :2][self.vertices]  # (68, K, 2)
        blended = np.einsum("pk,pkc->pc", self.weights[:, :k], near)
        return blended + self.weights[:, k : k + 1] * np.asarray(network, np.float64)

    def save(self, path: Path | str) -> None:
        np.savez_compressed(
            path,
            vertices=self.vertices.astype(np.int16),
            weights=self.weights.astype(np.float32),
            model_sha256=np.array(self.model_sha256),
            ridge=np.array(self.ridge),
        )

    @classmethod
    def load(cls, path: Path | str) -> PointsFit:
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(
                    vertices=data["vertices"].astype(np.intp),
                    weights=data["weights"].astype(np.float64),
                    model_sha256=str(data["model_sha256"]),
                    ridge=float(data["ridge"]),
                )
        except (OSError, ValueError, KeyError, PointsFitError) as exc:
            raise PointsFitError(f"{path}: not a points fit: {exc}") from None


def fit_path(model_path: Path | str) -> Path:
    """Where the fit for the ONNX file ``model_path`` lives."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + SUFFIX)


def file_sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fit_for(model_path: Path | str | None) -> PointsFit | None:
    """The fit made for the ONNX file at ``model_path``, or None when there is none (a
    model trained since, a candidate): that model keeps its own points. A fit that names
    another file is left out with a warning; an unreadable one raises PointsFitError."""
    if model_path is None:
        return None
    path = fit_path(model_path)
    if not path.is_file():
        return None
    fit = PointsFit.load(path)
    if fit.model_sha256 != file_sha256(model_path):
        log.warning(
            "%s was made for another %s (SHA-256 differs); using the network's own 68 points",
            path.name,
            Path(model_path).name,
        )
        return None
    return fit


def fit_points(
    mesh: np.ndarray,
    network: np.ndarray,
    truth: np.ndarray,
    *,
    vertices_per_point: int,
    ridge: float,
    model_sha256: str,
) -> PointsFit:
    """Least squares over faces: ``mesh`` (N, 478, >=2), ``network`` and ``truth`` (N, 68, 2),
    all in crop pixels. Each point's candidate vertices are the ``vertices_per_point``
    nearest to its mean position; ``ridge`` pulls the weights toward half the nearest
    vertex and half the network, which is where too few faces leave them."""
    mesh = np.asarray(mesh, np.float64)[..., :2]
    network = np.asarray(network, np.float64)
    truth = np.asarray(truth, np.float64)
    if mesh.shape[1:] != (MESH_VERTICES, 2) or network.shape[1:] != (POINTS, 2):
        raise ValueError(f"need (N, 478, 2) mesh and (N, 68, 2) points, got {mesh.shape}")
    if not len(mesh) == len(network) == len(truth) or len(mesh) < 2:
        raise ValueError("need the same number (at least two) of meshes, network points, truths")
    k = vertices_per_point
    mean_mesh, mean_truth = mesh.mean(axis=0), truth.mean(axis=0)
    vertices = np.empty((POINTS, k), np.intp)
    weights = np.empty((POINTS, k + 1))
    prior = np.zeros(k + 1)
    prior[0] = prior[k] = 0.5
    penalty = ridge * np.eye(k + 1)
    for point in range(POINTS):
        near = np.argsort(np.linalg.norm(mean_mesh - mean_truth[point], axis=1))[:k]
        # x and y rows stacked: one set of weights for both.
        design = np.concatenate(
            [np.c_[mesh[:, near, c], network[:, point, c]] for c in (0, 1)], axis=0
        )
        target = np.concatenate([truth[:, point, 0], truth[:, point, 1]])
        vertices[point] = near
        weights[point] = np.linalg.solve(
            design.T @ design + penalty, design.T @ target + penalty @ prior
        )
    return PointsFit(vertices, weights, model_sha256, ridge)
