"""Per-task masked losses of the multitask face model.

A batch mixes data sets that label different things (CelebAMask: parsing; udacity: 68
points; video: teacher hair, mesh landmarks and pose), so every term is weighted per sample
(per point for landmarks) by the weights the dataset ships with each sample, and normalised
by the total weight present: a head with no labels in a batch contributes exactly zero
(and zero gradient), and a head's scale does not depend on how many of its samples the
batch happens to hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..faceparts import CLASS_INDEX, PARSING_CLASSES
from .model import HEATMAP, HEATMAP_STRIDE

IGNORE = 255
NUM_CLASSES = len(PARSING_CLASSES)
HAIR = CLASS_INDEX["hair"]
LIPS = (CLASS_INDEX["upper_lip"], CLASS_INDEX["lower_lip"])
DICE_CLASSES = (
    CLASS_INDEX["brows"],
    CLASS_INDEX["eyes"],
    CLASS_INDEX["upper_lip"],
    CLASS_INDEX["lower_lip"],
    CLASS_INDEX["inner_mouth"],
)
"""Small classes whose boundary pixels are a large share of their area: cross-entropy alone
under-weights their thin shapes, soft Dice scores them by overlap."""
HEATMAP_SIGMA = 1.5
"""Gaussian target width in 64x64 heatmap cells (6 crop pixels)."""


@dataclass(frozen=True)
class LossWeights:
    """Relative task weights (each task loss is already a per-labelled-sample mean)."""

    parsing: float = 1.0
    dice: float = 0.5
    hair_soft: float = 0.5
    occlusion: float = 0.5
    heatmap: float = 0.2
    coords: float = 0.05
    rotation: float = 1.0


def median_frequency_weights(
    labels: Iterable[np.ndarray], *, clip: tuple[float, float] = (0.5, 8.0)
) -> np.ndarray:
    """Median-frequency class balancing (Eigen & Fergus 2015) from label maps (255 ignored).

    freq(c) = pixels of c / pixels of the images where c occurs; weight = median / freq,
    clipped so a rare class (glasses) cannot dominate and background keeps a floor.
    """
    pixels = np.zeros(NUM_CLASSES, np.float64)
    present = np.zeros(NUM_CLASSES, np.float64)
    for lab in labels:
        lab = np.asarray(lab).ravel()
        lab = lab[lab != IGNORE]
        if lab.size == 0:
            continue
        counts = np.bincount(lab, minlength=NUM_CLASSES)[:NUM_CLASSES].astype(np.float64)
        pixels += counts
        present += (counts > 0) * lab.size
    freq = np.where(present > 0, pixels / np.maximum(present, 1), np.nan)
    median = np.nanmedian(freq)
    weights = np.where(np.isfinite(freq), median / np.maximum(freq, 1e-12), 1.0)
    return np.clip(weights, *clip).astype(np.float32)


def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum(w * v) / sum(w), and an exact (graph-connected) 0 when no weight is present."""
    return (values * weights).sum() / weights.sum().clamp_min(1e-6)


def parsing_ce(
    logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor | None
) -> torch.Tensor:
    """Class-weighted cross-entropy over labelled pixels (255 = ignore), 0 if none."""
    valid = target != IGNORE
    ce = F.cross_entropy(
        logits, target.clamp_max(NUM_CLASSES - 1) * valid, reduction="none"
    )  # [N,H,W]
    w = valid.float()
    if class_weights is not None:
        w = w * class_weights[target.clamp_max(NUM_CLASSES - 1)]
    return _masked_mean(ce, w)


def soft_dice(
    logits: torch.Tensor, target: torch.Tensor, classes: tuple[int, ...] = DICE_CLASSES
) -> torch.Tensor:
    """1 - soft Dice per (image, class), averaged over the images that carry labels and the
    classes present in them (absent classes would only teach 'predict nothing', which CE
    already does)."""
    valid = (target != IGNORE).float()
    labelled = valid.flatten(1).sum(1) > 0  # [N]
    prob = torch.softmax(logits, 1)
    losses, weights = [], []
    for c in classes:
        p = prob[:, c] * valid
        t = (target == c).float()
        inter = (p * t).flatten(1).sum(1)
        total = p.flatten(1).sum(1) + t.flatten(1).sum(1)
        losses.append(1 - (2 * inter + 1) / (total + 1))
        weights.append((labelled & (t.flatten(1).sum(1) > 0)).float())
    return _masked_mean(torch.stack(losses, 1), torch.stack(weights, 1))


def hair_soft_bce(
    logits: torch.Tensor, soft: torch.Tensor, weight: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """BCE between the softmax hair probability and the teacher's soft hair map.

    log p and log(1 - p) come from log-sum-exps of the logits, so the term is stable where
    the network is confident.
    """
    log_all = torch.logsumexp(logits, 1)
    log_p = logits[:, HAIR] - log_all
    others = torch.cat([logits[:, :HAIR], logits[:, HAIR + 1 :]], 1)
    log_not = torch.logsumexp(others, 1) - log_all
    bce = -(soft * log_p + (1 - soft) * log_not)
    return _masked_mean(bce, weight.view(-1, 1, 1) * valid)


def occlusion_bce(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits[:, 0], target, reduction="none")
    return _masked_mean(bce, weight.view(-1, 1, 1) * valid)


def gaussian_heatmaps(points: torch.Tensor, sigma: float = HEATMAP_SIGMA) -> torch.Tensor:
    """[N,K,2] crop pixels -> [N,K,64,64] normalised Gaussians on the heatmap grid.

    The grid uses the same cell centres as the in-graph decoder (``heatmap_coordinates``),
    so a target's barycentre is the point itself (up to truncation at the border).
    """
    cells = (points - (HEATMAP_STRIDE - 1) / 2) / HEATMAP_STRIDE  # cell units
    grid = torch.arange(HEATMAP, dtype=points.dtype, device=points.device)
    gx = torch.exp(-((grid - cells[..., 0:1]) ** 2) / (2 * sigma**2))  # [N,K,W]
    gy = torch.exp(-((grid - cells[..., 1:2]) ** 2) / (2 * sigma**2))  # [N,K,H]
    g = gy.unsqueeze(-1) * gx.unsqueeze(-2)
    return g / g.flatten(2).sum(-1).clamp_min(1e-12)[..., None, None]


def heatmap_kl(logits: torch.Tensor, points: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """KL(target Gaussian || softmax heatmap) per point, weighted by landmark_weight.

    The softmax is the distribution the decoder takes the barycentre of, so this trains
    exactly what is decoded; KL (not CE) makes a perfect heatmap score 0.
    """
    target = gaussian_heatmaps(points).flatten(2)
    log_q = torch.log_softmax(logits.flatten(2), -1)
    kl = (target * (torch.log(target.clamp_min(1e-12)) - log_q)).sum(-1)  # [N,K]
    return _masked_mean(kl, weight)


def coordinate_l1(pred: torch.Tensor, points: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """L1 of decoded landmarks in crop pixels, weighted per point."""
    return _masked_mean((pred - points).abs().sum(-1), weight)


def geodesic(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """[N] rotation angle between two rotation batches, radians.

    The cosine is clamped inside (-1, 1): arccos has an infinite derivative at +-1, which
    would turn an exact prediction into a NaN gradient.
    """
    trace = (pred.transpose(1, 2) @ target).diagonal(dim1=1, dim2=2).sum(-1)
    return torch.acos(((trace - 1) / 2).clamp(-1 + eps, 1 - eps))


def rotation_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return _masked_mean(geodesic(pred, target), weight)


def multitask_loss(
    out: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
    class_weights: torch.Tensor | None = None,
    weights: LossWeights | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its (unweighted) parts for logging."""
    w = weights or LossWeights()
    valid = batch["valid"]
    parts = {
        "parsing": parsing_ce(out["parsing"], batch["parsing"], class_weights),
        "dice": soft_dice(out["parsing"], batch["parsing"]),
        "hair_soft": hair_soft_bce(
            out["parsing"], batch["hair_soft"], batch["hair_soft_weight"], valid
        ),
        "occlusion": occlusion_bce(
            out["occlusion"], batch["occlusion"], batch["occlusion_weight"], valid
        ),
        "heatmap": heatmap_kl(out["heatmaps"], batch["landmarks"], batch["landmark_weight"]),
        "coords": coordinate_l1(out["landmarks"], batch["landmarks"], batch["landmark_weight"]),
        "rotation": rotation_loss(out["rotation"], batch["rotation"], batch["rotation_weight"]),
    }
    factors = asdict(w)
    total = sum(factors[k] * v for k, v in parts.items())
    assert isinstance(total, torch.Tensor)
    return total, {k: float(v.detach()) for k, v in parts.items()}
