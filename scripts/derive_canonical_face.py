"""Derive arfx/data/canonical_face.csv: the 3D face that head-pose PnP fits to the landmarks.

    python scripts/derive_canonical_face.py [--data DIR] [--step 3] [--out PATH]

The shape is measured, not copied: MediaPipe's face mesh (static mode, 478 points with iris) runs
on every ``--step``-th frame of the shared videos and on the shared images; each face, taken in
pixel-scaled 3D (x*w, y*h, z*w), goes through generalized Procrustes analysis (similarity
alignment to the running mean). Faces within ``--frontal-deg`` of the mean orientation are
averaged; the average is made bilaterally symmetric (symmetry plane x = 0), scaled so the iris
centres (468, 473) lie 63 mm apart and moved so their midpoint is the origin. ``rigid`` marks the
points that move least across faces after alignment (lowest ``--rigid-fraction`` of residual
spread among points above the nose base, so lips, mouth, jaw and iris never count).

The orientation is the average orientation of the frontal faces as the camera saw them, so
pitch 0 means "as people in the data faced the camera"; yaw and roll 0 come from the symmetry.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import mediapipe as mp
import numpy as np
from scipy.optimize import linear_sum_assignment

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "arfx" / "data" / "canonical_face.csv"
N_POINTS = 478
IRIS_RIGHT, IRIS_LEFT = 468, 473  # iris centres (subject's right eye is on the image left)
NOSE_BASE = 2  # points below it move with the lips and jaw
IRIS_DISTANCE_MM = 63.0
MIRROR_X = np.array([-1.0, 1.0, 1.0])


def default_data_dir() -> Path:
    env = os.environ.get("ARFX_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def iter_images(data: Path, step: int) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, RGB image): every ``step``-th video frame, then every still image."""
    videos = sorted((data / "videos").glob("*.mp4")) + sorted((data / "videos").glob("*.mov"))
    for path in videos:
        with av.open(str(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % step == 0:
                    yield f"{path.name}#{index}", frame.to_ndarray(format="rgb24")
    for path in sorted((data / "images").iterdir()):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            yield path.name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def collect_faces(data: Path, step: int) -> tuple[list[np.ndarray], dict[str, int]]:
    """Run the face mesh over the data; return (478, 3) pixel-scaled shapes and counts."""
    faces: list[np.ndarray] = []
    counts = {"images": 0, "images_with_face": 0}
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True,
        max_num_faces=4,
        refine_landmarks=True,
        min_detection_confidence=0.5,
    ) as mesh:
        for _, image in iter_images(data, step):
            counts["images"] += 1
            height, width = image.shape[:2]
            result = mesh.process(image)
            found = result.multi_face_landmarks or []
            counts["images_with_face"] += bool(found)
            for face in found:
                xyz = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float64)
                faces.append(xyz * np.array([width, height, width]))
    return faces, counts


def normalize(shape: np.ndarray) -> np.ndarray:
    """Centre a shape on its centroid and scale it to unit Frobenius norm."""
    centred = shape - shape.mean(axis=0)
    return centred / np.linalg.norm(centred)


def kabsch(source: np.ndarray, target: np.ndarray, scale: bool) -> tuple[float, np.ndarray]:
    """(s, R) minimising |s * source @ R - target| for centred row-vector shapes (no reflection)."""
    u, sigma, vt = np.linalg.svd(source.T @ target)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    s = float(np.trace(np.diag(sigma) @ d) / np.sum(source**2)) if scale else 1.0
    return s, rotation


def align(
    shape: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Similarity-align ``shape`` to ``target`` (fit on ``mask`` points); return (aligned, R)."""
    mask = np.ones(len(shape), bool) if mask is None else mask
    shape_c, target_c = shape[mask].mean(axis=0), target[mask].mean(axis=0)
    s, rotation = kabsch(shape[mask] - shape_c, target[mask] - target_c, scale=True)
    return s * (shape - shape_c) @ rotation + target_c, rotation


def angle_deg(rotation: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0))))


def project_so3(matrix: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(matrix)
    return u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt


def procrustes(
    shapes: list[np.ndarray], mean: np.ndarray, iterations: int = 30
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Generalized Procrustes: align all to the running mean until it settles.

    The mean is then turned to the average orientation in which the camera saw the faces (the
    chordal mean of each face's rotation relative to it), so "frontal" refers to the camera.
    Returns (mean, rotation of each face relative to that mean).
    """
    for _ in range(iterations):
        aligned = [align(shape, mean)[0] for shape in shapes]
        new_mean = normalize(np.mean(aligned, axis=0))
        done = np.linalg.norm(new_mean - mean) < 1e-9
        mean = new_mean
        if done:
            break
    # shape ~ mean @ R.T, so R.T is each face's orientation relative to the mean.
    average = project_so3(np.mean([align(shape, mean)[1].T for shape in shapes], axis=0))
    mean = mean @ average
    return mean, [align(shape, mean)[1].T for shape in shapes]


def mirror_partners(shape: np.ndarray) -> np.ndarray:
    """partner[i] = the point whose x-mirror lies nearest point i, as a one-to-one pairing.

    A plain nearest neighbour pairs some dense eye and lip points twice; the optimal assignment
    (Hungarian) on the symmetric distance matrix gives a clean involution.
    """
    mirrored = shape * MIRROR_X
    distances = np.linalg.norm(shape[:, None, :] - mirrored[None, :, :], axis=2)
    _, partner = linear_sum_assignment(distances)
    return partner


def smallest_turn(direction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotation matrix turning unit ``direction`` onto unit ``target`` about their normal."""
    axis = np.cross(direction, target)
    sin, cos = float(np.linalg.norm(axis)), float(np.dot(direction, target))
    if sin < 1e-12:
        return np.eye(3)
    turn, _ = cv2.Rodrigues(axis / sin * np.arctan2(sin, cos))
    return turn


def symmetrize(shape: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Make the shape bilaterally symmetric about x = 0; return (shape, partner, asymmetry).

    The iris line gives a first symmetry plane. Then: pair points with the mirrored shape,
    average the shape with its rigidly re-aligned mirror image, and turn the resulting symmetry
    plane onto x = 0 with the smallest rotation (about an axis in the y-z plane, so pitch is
    kept). ``asymmetry`` is the RMS distance between the input and its best-aligned mirror image.
    """
    iris = shape[IRIS_LEFT] - shape[IRIS_RIGHT]
    turn = smallest_turn(iris / np.linalg.norm(iris), np.array([1.0, 0.0, 0.0]))
    shape = (shape - (shape[IRIS_LEFT] + shape[IRIS_RIGHT]) / 2.0) @ turn.T
    asymmetry = float("nan")
    for _ in range(2):
        partner = mirror_partners(shape)
        mirrored = (shape * MIRROR_X)[partner]  # mirrored[i] ~ shape[i]
        _, rotation = kabsch(mirrored - mirrored.mean(0), shape - shape.mean(0), scale=False)
        mirrored = (mirrored - mirrored.mean(0)) @ rotation + shape.mean(0)
        if np.isnan(asymmetry):
            asymmetry = float(np.sqrt(np.mean(np.sum((shape - mirrored) ** 2, axis=1))))
        shape = (shape + mirrored) / 2.0
        differences = shape - shape[partner]
        normal = np.linalg.eigh(differences.T @ differences)[1][:, -1]
        normal *= np.sign(normal[0])
        offset = float(np.mean(((shape + shape[partner]) / 2.0) @ normal))
        shape = (shape - offset * normal) @ smallest_turn(normal, np.array([1.0, 0.0, 0.0])).T
    partner = mirror_partners(shape)
    if not np.array_equal(partner[partner], np.arange(len(shape))):
        sys.exit("mirror pairing is not an involution; the mean shape is too asymmetric")
    shape = (shape + (shape * MIRROR_X)[partner]) / 2.0  # exact symmetry
    shape[partner == np.arange(len(shape)), 0] = 0.0
    return shape, partner, asymmetry


def residual_spread(
    samples: list[np.ndarray], canonical: np.ndarray, fit: np.ndarray
) -> np.ndarray:
    """Per-point RMS distance (canonical units) of samples aligned to the canonical on ``fit``."""
    aligned = np.stack([align(sample, canonical, fit)[0] for sample in samples])
    return np.sqrt(np.mean(np.sum((aligned - canonical) ** 2, axis=2), axis=0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=default_data_dir(),
        help="shared data folder (default: $ARFX_DATA or ../shared/data)",
    )
    parser.add_argument("--step", type=int, default=3, help="use every STEP-th video frame")
    parser.add_argument("--frontal-deg", type=float, default=15.0)
    parser.add_argument("--rigid-fraction", type=float, default=0.4)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    faces, counts = collect_faces(args.data, args.step)
    print(
        f"data: {args.data}; {counts['images']} frames/images read (video frames step {args.step}"
        f"), {counts['images_with_face']} with a face, {len(faces)} faces"
    )
    if len(faces) < 10:
        sys.exit("too few faces to derive a canonical face")
    samples = [normalize(face) for face in faces]

    mean, rotations = procrustes(samples, samples[0])
    frontal = np.ones(len(samples), bool)
    for _ in range(5):
        angles = np.array([angle_deg(r) for r in rotations])
        keep = angles <= args.frontal_deg
        if np.array_equal(keep, frontal):
            break
        frontal = keep
        mean, _ = procrustes([s for s, k in zip(samples, frontal, strict=True) if k], mean)
        rotations = [align(sample, mean)[1].T for sample in samples]
    angles = np.array([angle_deg(r) for r in rotations])
    frontal_samples = [s for s, k in zip(samples, frontal, strict=True) if k]
    print(
        f"procrustes: rotation from the mean median {np.median(angles):.1f} deg, "
        f"max {angles.max():.1f} deg; {len(frontal_samples)} faces within "
        f"{args.frontal_deg:g} deg kept as frontal"
    )

    shape, partner, asymmetry = symmetrize(mean)
    scale = IRIS_DISTANCE_MM / np.linalg.norm(shape[IRIS_LEFT] - shape[IRIS_RIGHT])
    shape = (shape - (shape[IRIS_LEFT] + shape[IRIS_RIGHT]) / 2.0) * scale
    self_paired = int(np.sum(partner == np.arange(N_POINTS)))
    print(
        f"symmetry: {self_paired} points on the midline, {(N_POINTS - self_paired) // 2} "
        f"mirror pairs; mean shape's asymmetry before symmetrizing {asymmetry * scale:.2f} mm "
        f"RMS"
    )

    candidates = shape[:, 1] <= shape[NOSE_BASE, 1] + 1e-6
    candidates[468:] = False  # iris
    fit = candidates.copy()
    for _ in range(3):  # refit on the rigid points, so mobile points do not bias the alignment
        samples_mm = [sample * scale for sample in frontal_samples]
        spread = residual_spread(samples_mm, shape, fit)
        spread = (spread + spread[partner]) / 2.0  # keep the rigid set symmetric
        threshold = np.quantile(spread[candidates], args.rigid_fraction)
        fit = candidates & (spread <= threshold)
    rigid = fit
    print(
        f"residual spread over frontal faces (mm RMS): all points median "
        f"{np.median(spread):.2f}, 90th pct {np.quantile(spread, 0.9):.2f}, max "
        f"{spread.max():.2f}; rigid {int(rigid.sum())} points, median "
        f"{np.median(spread[rigid]):.2f}, max {spread[rigid].max():.2f}"
    )
    extent = shape.max(axis=0) - shape.min(axis=0)
    print(
        f"canonical face: {extent[0]:.1f} x {extent[1]:.1f} x {extent[2]:.1f} mm (w x h x d); "
        f"nose tip at z = {shape[1, 2]:.1f} mm"
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(
            f"# arfx canonical face, millimetres, head frame (x right, y down, z away from the "
            f"viewer; origin = midpoint of iris centres 468/473, 63 mm apart). Made by "
            f"scripts/derive_canonical_face.py: mean of {len(frontal_samples)} frontal MediaPipe "
            f"face meshes (of {len(faces)} on the shared data, step {args.step}) after "
            f"generalized Procrustes, made symmetric; rigid = lowest {args.rigid_fraction:g} "
            f"residual spread above the nose base.\n"
        )
        out.write("x,y,z,rigid\n")
        for (x, y, z), r in zip(shape, rigid, strict=True):
            out.write(f"{x:.3f},{y:.3f},{z:.3f},{int(r)}\n")
    print(f"wrote {args.out} ({N_POINTS} points, {int(rigid.sum())} rigid)")


if __name__ == "__main__":
    main()
