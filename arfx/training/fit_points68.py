"""Fit the mesh refinement of the face model's 68 points (``arfx.points68``).

    python -m arfx.training.fit_points68 --data ../shared/data/landmarks68/udacity

Runs the static-image tracker and the model (from empty context, as for a new face) on the
udacity training split only, exactly as ``arfx eval landmarks`` does on the held-out one,
chooses the vertices per point and the ridge by 5-fold cross-validation on the training
faces, fits on all of them and writes the fit beside the model
(``face_multitask.points68.npz``). Deterministic: no random numbers; folds are by position
in the sorted file list. Needs the runtime install only (MediaPipe, ONNX Runtime).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ..alignment import align_mesh
from ..evaluation.common import read_image
from ..evaluation.landmarks import _around_face, _match_face, load_udacity, nme
from ..model import DEFAULT_MODEL, FaceAnalyzer, FaceModel, ModelSchedule
from ..points68 import file_sha256, fit_path, fit_points
from ..tracking import FaceTracker, TrackerOptions

VERTICES_PER_POINT = (32, 64, 128)
RIDGES = (1.0, 10.0, 100.0)
FOLDS = 5


def collect(
    data: Path, model_path: Path, split: str = "train", limit: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mesh (N, 478, 2), network points and truth (N, 68, 2) in each face's crop pixels."""
    analyzer = FaceAnalyzer(
        FaceModel(model_path), schedule=ModelSchedule(warm_start=False), mesh_points=False
    )
    meshes, networks, truths = [], [], []
    with FaceTracker(TrackerOptions(static_images=True, max_faces=4)) as tracker:
        for sample in load_udacity(data, split=split, limit=limit):
            rgb, truth = _around_face(read_image(sample.image), sample.points)
            face = _match_face(tracker.track(rgb), truth)
            if face is None:
                continue
            analyzer.reset()
            (analysis,) = analyzer.analyze(rgb, [face])
            alignment = align_mesh(face.landmarks)
            meshes.append(alignment.to_crop(face.landmarks[:, :2]))
            networks.append(alignment.to_crop(analysis.landmarks68))
            truths.append(alignment.to_crop(truth))
    return np.array(meshes), np.array(networks), np.array(truths)


def cross_validate(
    mesh: np.ndarray, network: np.ndarray, truth: np.ndarray, k: int, ridge: float
) -> float:
    """Mean NME over ``FOLDS`` folds, each fitted on the others."""
    folds = np.arange(len(mesh)) % FOLDS
    errors = []
    for fold in range(FOLDS):
        train, held = folds != fold, folds == fold
        fit = fit_points(
            mesh[train],
            network[train],
            truth[train],
            vertices_per_point=k,
            ridge=ridge,
            model_sha256="",
        )
        for m, n, t in zip(mesh[held], network[held], truth[held], strict=True):
            errors.append(nme(fit.apply(m, n), t))
    return float(np.mean(errors))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the udacity folder")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, help="default: beside the model")
    parser.add_argument("--limit", type=int, help="only the first N training faces (a check)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    mesh, network, truth = collect(args.data, args.model, limit=args.limit)
    print(f"{len(mesh)} training faces in {time.perf_counter() - began:.0f} s")
    network_nme = float(np.mean([nme(n, t) for n, t in zip(network, truth, strict=True)]))
    print(f"network alone: NME {network_nme:.4f} (training faces)")
    scores = {}
    for k in VERTICES_PER_POINT:
        for ridge in RIDGES:
            scores[(k, ridge)] = cross_validate(mesh, network, truth, k, ridge)
            print(f"K={k:4d} ridge={ridge:6g}: {FOLDS}-fold NME {scores[(k, ridge)]:.4f}")
    k, ridge = min(scores, key=scores.__getitem__)
    fit = fit_points(
        mesh,
        network,
        truth,
        vertices_per_point=k,
        ridge=ridge,
        model_sha256=file_sha256(args.model),
    )
    out = args.out or fit_path(args.model)
    fit.save(out)
    summary = {
        "faces": len(mesh),
        "vertices_per_point": k,
        "ridge": ridge,
        "cv_nme": scores[(k, ridge)],
        "network_nme_train": network_nme,
        "network_weight_mean": float(fit.weights[:, -1].mean()),
    }
    print(f"chose K={k}, ridge={ridge:g}; wrote {out}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
