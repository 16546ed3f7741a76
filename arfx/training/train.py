"""Train the multitask face model on a time budget.

``python -m arfx.training.train --cache DIR --out RUN_DIR (--minutes M | --steps N) --seed 0
[--resume] [--device auto|cpu|cuda]``

Every batch holds a fixed mix of the data sets (CelebAMask parsing, udacity 68 points, video
teacher labels) so every head gets gradient every step. The budget is wall-clock: after a
short warm-up the step time is measured and the one-cycle schedule (linear warm-up, cosine
decay) is laid over the number of steps that fit, re-estimated at every checkpoint so the run
anneals and ends on time. ``last.pt`` is written every few minutes (resumable), ``best.pt``
at the best validation score; ``log.csv`` and ``curves.png`` record the run.

The network trains on a CUDA GPU when PyTorch sees one (``--device auto``), else on the CPU;
the samples are always made on the CPU by the loader's workers. A CPU run with the same
arguments replays bit for bit; a CUDA run replays closely, not exactly (cuDNN picks its
fastest kernels, some of which add in a varying order).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..alignment import CROP_BORDERS
from ..faceparts import CLASS_INDEX, IBUG_EYE_OUTER
from .augment import AugmentConfig
from .dataset import FaceSamples, hair_cases
from .losses import IGNORE, LossWeights, geodesic, median_frequency_weights, multitask_loss
from .model import FaceNet, FaceNetConfig, build, count_parameters

KINDS = ("celebamask", "udacity", "video")
LIPS = (CLASS_INDEX["upper_lip"], CLASS_INDEX["lower_lip"])
VAL_FIELDS = ("val_lips", "val_hair", "val_skin", "val_nme", "val_pose_deg", "val_score")
LOSS_PARTS = ("parsing", "dice", "hair_soft", "occlusion", "heatmap", "coords", "rotation")
LOG_FIELDS = (
    "phase", "step", "total_steps", "minutes", "epochs", "lr", "loss", *LOSS_PARTS,
    "step_s", "data_s", "val_loss", *VAL_FIELDS,
)  # fmt: skip


# ------------------------------------------------------------------------------ data


class Draw(NamedTuple):
    """One sample of a batch: ``item``'s ``copy``-th appearance in ``epoch`` of its data set."""

    item: int
    epoch: int
    copy: int


class EpochSamples(Dataset):
    """FaceSamples addressed by Draw: the augmentation follows the sampler, so which
    augmentation a step sees does not depend on the loader's workers or on restarts."""

    def __init__(self, samples: FaceSamples) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, draw: Draw) -> dict[str, np.ndarray]:
        return self.samples.sample(*draw)


class MixedBatches(Sampler):
    """Infinite batches with a fixed count per data set; batch ``s`` is a pure function of
    (seed, s), so a resumed run continues the exact sequence from its step.

    Each data set is walked in its own reshuffled epochs: position p of kind k is item
    perm_k(p // n_k)[p % n_k].
    ``repeats[i]`` (default 1) puts item i that many times into each epoch of its data set:
    oversampling of rare cases (``--hats``, ``--little-hair``).
    """

    def __init__(
        self,
        kinds: list[str],
        mix: dict[str, int],
        seed: int,
        start: int = 0,
        repeats: list[int] | None = None,
    ):
        counts = repeats if repeats is not None else [1] * len(kinds)
        self.groups = {  # (item, copy) per place in an epoch
            k: [(i, c) for i, x in enumerate(kinds) if x == k for c in range(counts[i])]
            for k in mix
        }
        self.mix = {k: n for k, n in mix.items() if n > 0 and self.groups[k]}
        self.seed, self.start = seed, start
        self._perms: dict[tuple[str, int], np.ndarray] = {}

    def _item(self, kind: str, position: int) -> Draw:
        group = self.groups[kind]
        epoch, offset = divmod(position, len(group))
        key = (kind, epoch)
        if key not in self._perms:
            if len(self._perms) > 16:
                self._perms.clear()
            rng = np.random.default_rng([self.seed, KINDS.index(kind), epoch])
            self._perms[key] = rng.permutation(len(group))
        item, copy = group[int(self._perms[key][offset])]
        return Draw(item, epoch, copy)

    def batch(self, step: int) -> list[Draw]:
        return [self._item(kind, step * n + j) for kind, n in self.mix.items() for j in range(n)]

    def epochs(self, step: int) -> dict[str, float]:
        """Passes over each data set after ``step`` batches."""
        return {k: step * n / len(self.groups[k]) for k, n in self.mix.items()}

    def __iter__(self) -> Iterator[list[Draw]]:
        step = self.start
        while True:
            yield self.batch(step)
            step += 1

    def __len__(self) -> int:  # DataLoader asks; the stream is endless
        return 2**31


def item_repeats(entries: list[dict], hats: int = 1, little_hair: int = 1) -> list[int]:
    """How often each item appears per epoch of its data set: photos with a hat ``hats``
    times, with little hair ``little_hair`` times (the larger where both), others once."""
    for option, value in (("--hats", hats), ("--little-hair", little_hair)):
        if value < 1:
            raise SystemExit(f"{option} must be at least 1, not {value}")
    times = {"hat": hats, "little_hair": little_hair}
    return [max([times[c] for c in hair_cases(e)], default=1) for e in entries]


def _worker_init(_: int) -> None:
    """One thread per loader worker: the 2 cores are shared with the training step."""
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _loader(dataset: Dataset, **options: Any) -> DataLoader:
    """A DataLoader whose workers are spawned, not forked: a fork taken while torch's or
    ONNX Runtime's thread pools run can copy a held lock, and the worker then hangs in its
    first ``torch.set_num_threads`` (it happened after ``--init`` warm-started from ONNX)."""
    workers = options.get("num_workers", 0)
    if workers:
        options.setdefault("worker_init_fn", _worker_init)
        options["multiprocessing_context"] = multiprocessing.get_context("spawn")
    return DataLoader(dataset, **options)


def _parsing_labels(items: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    return [x["parsing"].astype(np.uint8) for x in items]


def resolve_mix(spec: str, batch: int, available: dict[str, int]) -> dict[str, int]:
    """Per-kind counts from "8,4,4" (celebamask, udacity, video); the share of a data set
    the cache lacks goes to CelebAMask (the parsing set, the hardest task)."""
    counts = [int(x) for x in spec.split(",")]
    if len(counts) != len(KINDS) or sum(counts) != batch:
        raise SystemExit(f"--mix needs {len(KINDS)} counts summing to --batch {batch}")
    mix = dict(zip(KINDS, counts, strict=True))
    for k in KINDS[1:]:
        if not available.get(k):
            mix["celebamask"] += mix[k]
            mix[k] = 0
    if not available.get("celebamask"):
        raise SystemExit("the cache has no CelebAMask training items")
    return mix


def resolve_device(name: str) -> torch.device:
    """``auto``: the first CUDA GPU when PyTorch sees one, else the CPU; ``cuda`` without one
    is an error that says why (a CPU-only PyTorch build, or no GPU or driver visible)."""
    if name not in ("auto", "cpu", "cuda"):
        raise SystemExit(f"--device must be auto, cpu or cuda, not {name!r}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = torch.version.cuda
        why = f"PyTorch {torch.__version__} " + (
            f"is built for CUDA {build} but sees no GPU (driver, CUDA_VISIBLE_DEVICES?)"
            if build
            else "is a CPU-only build"
        )
        raise SystemExit(f"--device cuda: {why}")
    return torch.device("cuda")


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The batch on ``device``, images and context in channels_last: mkldnn's convolutions
    ran 1.7x faster so, and cuDNN's take it natively."""
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    for k in ("image", "context"):
        out[k] = out[k].contiguous(memory_format=torch.channels_last)
    return out


# ---------------------------------------------------------------------- class weights


def class_weights_for(cache: str, out: Path, seed: int) -> np.ndarray:
    """Median-frequency weights from the train split's parsing labels (un-augmented crops),
    cached in RUN_DIR so a resume does not recompute them."""
    path = out / "class_weights.json"
    if path.is_file():
        return np.asarray(json.loads(path.read_text()), np.float32)
    samples = FaceSamples(cache, "train", augment=False, seed=seed)
    labelled = [i for i, k in enumerate(samples.kinds) if k == "celebamask"][::2]
    loader = _loader(
        torch.utils.data.Subset(samples, labelled),
        batch_size=16,
        num_workers=2,
        collate_fn=_parsing_labels,
    )
    weights = [
        round(float(x), 4) for x in median_frequency_weights(lab for labs in loader for lab in labs)
    ]
    path.write_text(json.dumps(weights))
    return np.asarray(weights, np.float32)  # as a resumed run reads them back


# ------------------------------------------------------------------------- validation


def _iou(pred: np.ndarray, target: np.ndarray, classes: tuple[int, ...]) -> float | None:
    """IoU of a class group over labelled pixels; None when neither side has it."""
    keep = target != IGNORE
    p = np.isin(pred, classes) & keep
    t = np.isin(target, classes) & keep
    union = np.count_nonzero(p | t)
    return None if union == 0 else np.count_nonzero(p & t) / union


@torch.inference_mode()
def validate(
    net: FaceNet, samples: FaceSamples, class_weights: torch.Tensor, batch_size: int = 8
) -> dict[str, float]:
    """Per-image mean IoU (lips = upper + lower, hair, skin) on labelled crops, 68-point NME
    (outer-eye-corner normaliser) on udacity, geodesic pose error where a pose exists, and a
    scalar score for best.pt: mean IoU - 2 NME - pose error / 90 degrees."""
    net.eval()
    device = next(net.parameters()).device
    weights = class_weights.to(device)
    loader = _loader(
        samples, batch_size=batch_size, num_workers=1, pin_memory=device.type == "cuda"
    )
    ious: dict[str, list[float]] = {"lips": [], "hair": [], "skin": []}
    groups = {"lips": LIPS, "hair": (CLASS_INDEX["hair"],), "skin": (CLASS_INDEX["skin"],)}
    nme: list[float] = []
    pose: list[float] = []
    losses: list[float] = []
    kinds = samples.kinds
    seen = 0
    a, b = IBUG_EYE_OUTER
    for batch in loader:
        n = batch["image"].shape[0]
        batch_kinds = kinds[seen : seen + n]
        seen += n
        on_device = to_device(batch, device)
        out = net(on_device["image"], on_device["context"])
        loss, _ = multitask_loss(out, on_device, weights)
        losses.append(float(loss) * n)
        pred = out["parsing"].argmax(1).cpu().numpy()
        target = batch["parsing"].numpy()
        for j in range(n):
            if (target[j] != IGNORE).any():
                for name, cls in groups.items():
                    v = _iou(pred[j], target[j], cls)
                    if v is not None:
                        ious[name].append(v)
        gt = batch["landmarks"].numpy()
        lm = out["landmarks"].cpu().numpy()
        for j in range(n):
            if batch_kinds[j] == "udacity":
                ocular = np.linalg.norm(gt[j, a] - gt[j, b])
                nme.append(float(np.linalg.norm(lm[j] - gt[j], axis=1).mean() / ocular))
        has_pose = on_device["rotation_weight"] > 0
        if has_pose.any():
            err = geodesic(out["rotation"][has_pose], on_device["rotation"][has_pose])
            pose += np.degrees(err.cpu().numpy()).tolist()
    net.train()

    def mean(x: list[float]) -> float:
        return float(np.mean(x)) if x else float("nan")

    result = {f"val_{k}": mean(v) for k, v in ious.items()}
    result["val_nme"] = mean(nme)
    result["val_pose_deg"] = mean(pose)
    result["val_loss"] = sum(losses) / max(seen, 1)
    terms = [
        np.nanmean([result["val_lips"], result["val_hair"], result["val_skin"]]),
        -2 * np.nan_to_num(result["val_nme"]),
        -np.nan_to_num(result["val_pose_deg"]) / 90,
    ]
    result["val_score"] = float(sum(terms))
    return result


# ---------------------------------------------------------------------------- logging


class RunLog:
    """log.csv (one row per log interval or validation) and curves.png."""

    def __init__(self, out: Path) -> None:
        self.path = out / "log.csv"
        self.png = out / "curves.png"
        if not self.path.is_file():
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(LOG_FIELDS)

    def write(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, LOG_FIELDS).writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )

    def plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with self.path.open() as f:
            rows = list(csv.DictReader(f))
        train = [r for r in rows if r["phase"] == "train"]
        val = [r for r in rows if r["phase"] == "val"]

        def col(rs: list[dict], k: str) -> np.ndarray:
            return np.array([float(r[k]) if r[k] not in ("", "nan") else np.nan for r in rs])

        fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
        for k in ("loss", *LOSS_PARTS):
            axes[0].plot(col(train, "step"), col(train, k), label=k)
        axes[0].set_yscale("log")
        axes[0].set_title("train losses")
        axes[0].legend(fontsize=7)
        for k in ("val_lips", "val_hair", "val_skin", "val_score"):
            axes[1].plot(col(val, "step"), col(val, k), "o-", label=k[4:])
        axes[1].set_title("validation IoU (per-image mean)")
        axes[1].legend(fontsize=7)
        axes[2].plot(col(val, "step"), 100 * col(val, "val_nme"), "o-", label="NME % (udacity)")
        axes[2].plot(col(val, "step"), col(val, "val_pose_deg"), "o-", label="pose error deg")
        axes[2].set_title("landmarks and pose")
        axes[2].legend(fontsize=7)
        for ax in axes:
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(self.png, dpi=80)
        plt.close(fig)


# ------------------------------------------------------------------------ schedule


def lr_at(step: int, total: int, peak: float, warmup: float = 0.04, floor: float = 0.01) -> float:
    """One-cycle: linear warm-up over the first ``warmup`` of the run, cosine to floor*peak."""
    p = min(step / max(total, 1), 1.0)
    if p < warmup:
        return peak * (0.05 + 0.95 * p / warmup)
    q = (p - warmup) / (1 - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * q)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic: a crash mid-write never leaves a truncated last.pt behind."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cache", required=True, help="training cache (contains index.json)")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="a fixed number of steps instead of a time budget: the same schedule on any "
        "machine, so a --steps run replays exactly; a --minutes run re-estimates its steps "
        "as it goes (log.csv's total_steps), and its replay with the last count is close, "
        "not exact",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt")
    p.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from these weights: a checkpoint (.pt) or an exported model (.onnx)",
    )
    p.add_argument(
        "--loss-weights",
        default="",
        help="task weight overrides, e.g. occlusion=1.5,hair_soft=1 (see losses.LossWeights)",
    )
    p.add_argument(
        "--augment",
        default="",
        help="augmentation overrides, e.g. context_zero=0.6,previous_grow=5 "
        "(see augment.AugmentConfig)",
    )
    p.add_argument(
        "--border-labels",
        choices=("replicate", "ignore"),
        default="ignore",
        help="crop pixels past the frame's edge: ignore their labels (default; how the shipped "
        "v1 was trained), or train on labels replicated like the image (the v4 experiment)",
    )
    p.add_argument(
        "--crop-border",
        choices=tuple(CROP_BORDERS),
        default="replicate",
        help="what crops show past the frame's edge in training, validation and (through the "
        "exported model's metadata) at run time: the edge repeated (default, v1) or mirrored",
    )
    p.add_argument(
        "--hats",
        type=int,
        default=1,
        help="CelebAMask photos with a hat appear this many times per epoch (default 1)",
    )
    p.add_argument(
        "--little-hair",
        type=int,
        default=1,
        help="CelebAMask photos with under 3%% hair (bald, shaved) appear this many times per "
        "epoch (default 1)",
    )
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--mix", default="6,3,3", help="celebamask,udacity,video per batch")
    p.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--width", type=float, default=FaceNetConfig.width)
    p.add_argument("--expand", type=int, default=FaceNetConfig.expand)
    p.add_argument("--full-res", type=int, default=FaceNetConfig.full_res)
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="training arithmetic: bf16 autocast runs a step about 2x faster on CPUs with "
        "AVX-512 BF16; validation and export stay float32",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the network trains: auto (a CUDA GPU when PyTorch sees one, else the "
        "CPU; default), cpu or cuda. On a GPU add --precision bf16 and more --workers: "
        "the samples are made on the CPU",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--val-minutes", type=float, default=10.0)
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--log-seconds", type=float, default=60.0)
    p.add_argument("--warmup-steps", type=int, default=12, help="steps before timing")
    args = p.parse_args(argv)
    if (args.minutes is None) == (args.steps is None):
        p.error("give exactly one of --minutes (a time budget) or --steps (a fixed schedule)")
    return args


def parse_overrides(text: str, cls: type, option: str) -> Any:
    """``name=value,...`` over the dataclass ``cls``'s defaults, each value converted to its
    field's default's type; an unknown name is an error."""
    defaults = cls()
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in cls.__dataclass_fields__:
            raise SystemExit(f"{option}: unknown name {name!r}")
        kind = type(getattr(defaults, name))
        if kind not in (int, float):
            raise SystemExit(f"{option}: {name} is not a number and cannot be set here")
        try:
            values[name] = kind(value)
        except ValueError:
            raise SystemExit(f"{option}: {name}={value!r} is not a {kind.__name__}") from None
    return cls(**values)


def parse_loss_weights(text: str) -> LossWeights:
    """``name=value,...`` over LossWeights' defaults; an unknown name is an error."""
    return parse_overrides(text, LossWeights, "--loss-weights")


def init_weights(net: FaceNet, path: Path, samples: FaceSamples, images: int = 96) -> None:
    """Load a checkpoint's or an exported model's weights into ``net`` (see warmstart)."""
    if path.suffix == ".onnx":
        from .warmstart import load_onnx_weights

        rng = np.random.default_rng(0)
        picks = rng.choice(len(samples), min(images, len(samples)), replace=False)
        items = [samples[int(i)] for i in picks]
        batches = [
            tuple(
                torch.from_numpy(np.stack([x[k] for x in items[i : i + 8]]))
                for k in ("image", "context")
            )
            for i in range(0, len(items), 8)
        ]
        load_onnx_weights(net, path, batches)
    else:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["model"])
    net.train()
    print(f"initialised from {path}", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: the fastest kernels
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(args.seed)

    if args.resume and not (out / "last.pt").is_file():
        raise SystemExit(f"--resume: no {out / 'last.pt'}")
    resume = (
        torch.load(out / "last.pt", map_location="cpu", weights_only=False) if args.resume else None
    )
    config = FaceNetConfig(args.width, args.expand, args.full_res)
    if resume is not None:
        config = FaceNetConfig(**resume["config"])
        trained_border = resume.get("crop_border", "replicate")
        if trained_border != args.crop_border:
            raise SystemExit(
                f"--resume: {out / 'last.pt'} trained with --crop-border {trained_border}, "
                f"not {args.crop_border}"
            )
    net = build(config).to(memory_format=torch.channels_last)

    augment = parse_overrides(args.augment, AugmentConfig, "--augment")
    train_set = FaceSamples(
        args.cache,
        "train",
        augment=True,
        seed=args.seed,
        config=augment,
        replicate_border=args.border_labels == "replicate",
        crop_border=args.crop_border,
    )
    val_set = FaceSamples(
        args.cache, "val", augment=False, seed=args.seed, crop_border=args.crop_border
    )
    available = {k: train_set.kinds.count(k) for k in KINDS}
    mix = resolve_mix(args.mix, args.batch, available)
    class_weights = torch.from_numpy(class_weights_for(args.cache, out, args.seed))
    loss_weights = parse_loss_weights(args.loss_weights)
    if args.init is not None and resume is None:
        init_weights(net, args.init, train_set)  # on the CPU, as the ONNX warm start runs
    net = net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    device_weights = class_weights.to(device)

    step, elapsed, best = 0, 0.0, -math.inf
    if resume is not None:
        net.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])  # moves its state to the parameters' device
        step, elapsed, best = resume["step"], resume["elapsed_s"], resume["best_score"]
        torch.set_rng_state(resume["torch_rng"])
        if device.type == "cuda" and resume.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(resume["cuda_rng"])
        np.random.set_state(resume["numpy_rng"])
        random.setstate(resume["python_rng"])

    repeats = item_repeats(train_set.items, args.hats, args.little_hair)
    if max(args.hats, args.little_hair) > 1 and not any(r > 1 for r in repeats):
        raise SystemExit(
            "--hats/--little-hair: the cache's index has no hat or hair shares; run "
            "`python -m arfx.training.prepare` again to add them"
        )
    sampler = MixedBatches(train_set.kinds, mix, args.seed, start=step, repeats=repeats)
    loader = _loader(
        EpochSamples(train_set),
        batch_sampler=sampler,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        prefetch_factor=4 if args.workers else None,
        pin_memory=device.type == "cuda",
    )
    log = RunLog(out)
    print(
        f"FaceNet {asdict(config)}: {count_parameters(net) / 1e6:.2f}M params; "
        f"train {available}, val {len(val_set)}; batch {mix}; "
        f"photos repeated {sum(r > 1 for r in repeats)} (hats x{args.hats}, little hair "
        f"x{args.little_hair}); "
        f"class weights {np.round(class_weights.numpy(), 2).tolist()}; "
        f"loss weights {asdict(loss_weights)}; augment {asdict(augment)}; "
        f"border labels {args.border_labels}; crop border {args.crop_border}; "
        f"precision {args.precision}; device {_device_text(device)}",
        flush=True,
    )

    t0 = time.perf_counter() - elapsed  # wall clock of this run, resumed runs included
    deadline = t0 + args.minutes * 60.0 if args.steps is None else math.inf
    total = resume["total_steps"] if resume is not None else 10**9
    if args.steps is not None:
        total = args.steps
    val_cost = 20.0  # seconds a validation pass takes, re-measured after each
    timing_start: tuple[float, int] | None = None
    timed = resume is None
    last_val_step = -1
    last_ckpt = last_val = last_log = time.perf_counter()
    if resume is not None:
        # Validation cadence follows run time, so it survives a restart.
        last_val = t0 + args.val_minutes * 60 * math.floor(elapsed / (args.val_minutes * 60))
    acc: dict[str, float] = {}
    acc_n, data_s, step_s = 0, 0.0, 0.0

    def state() -> dict:
        return {
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "config": asdict(config),
            "crop_border": args.crop_border,
            "step": step,
            "total_steps": total,
            "elapsed_s": time.perf_counter() - t0,
            "best_score": best,
            "class_weights": class_weights.tolist(),
            "args": {k: str(v) for k, v in vars(args).items()},
            "mix": mix,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
        }

    def estimate_total(now: float) -> int:
        """Steps that fit before the deadline at the measured pace, minus future validations."""
        if timing_start is None or args.steps is not None:
            return total
        t_start, s_start = timing_start
        per_step = (now - t_start) / max(step - s_start, 1)
        vals_left = math.floor((deadline - now) / (args.val_minutes * 60)) + 1
        spare = deadline - now - vals_left * val_cost - 10.0
        return step + max(int(spare / per_step), 0)

    def run_validation(now: float) -> None:
        nonlocal best, val_cost, last_val_step
        last_val_step = step
        v0 = time.perf_counter()
        metrics = validate(net, val_set, class_weights)
        val_cost = time.perf_counter() - v0
        improved = metrics["val_score"] > best
        if improved:
            best = metrics["val_score"]
        row = {
            "phase": "val",
            "step": step,
            "total_steps": total,
            "minutes": (now - t0) / 60,
            "epochs": _epochs_text(sampler.epochs(step)),
            "lr": opt.param_groups[0]["lr"],
            **metrics,
        }
        log.write(row)
        if improved:
            save_checkpoint(out / "best.pt", {**state(), "metrics": metrics})
        log.plot()
        print(
            f"[val] step {step}  lips {metrics['val_lips']:.3f}  hair {metrics['val_hair']:.3f}  "
            f"skin {metrics['val_skin']:.3f}  NME {100 * metrics['val_nme']:.2f}%  "
            f"pose {metrics['val_pose_deg']:.1f} deg  score {metrics['val_score']:.4f}"
            f"{'  (best)' if improved else ''}  [{val_cost:.0f} s]",
            flush=True,
        )

    net.train()
    it = iter(loader)
    while True:
        now = time.perf_counter()
        # A resumed run trusts the stored step count only once its own timing has re-checked it
        # (the budget may have been extended).
        if now >= deadline or (step >= total and timed):
            break
        lr = lr_at(step, total, args.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        d0 = time.perf_counter()
        batch = to_device(next(it), device)
        d1 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            out_ = net(batch["image"], batch["context"])
        loss, parts = multitask_loss(out_, batch, device_weights, loss_weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        step += 1
        d2 = time.perf_counter()
        data_s += d1 - d0
        step_s += d2 - d0
        for k, v in {"loss": float(loss.detach()), **parts}.items():
            acc[k] = acc.get(k, 0.0) + v
        acc_n += 1

        if step == args.warmup_steps + (resume["step"] if resume is not None else 0):
            timing_start = (d2, step)
        elif timing_start is not None and step == timing_start[1] + args.warmup_steps:
            total = estimate_total(d2)
            timed = True
            print(
                f"timing: {(d2 - timing_start[0]) / args.warmup_steps:.2f} s/step -> "
                f"{total} steps in the budget",
                flush=True,
            )

        if d2 - last_log >= args.log_seconds:
            row = {
                "phase": "train",
                "step": step,
                "total_steps": total,
                "minutes": (d2 - t0) / 60,
                "epochs": _epochs_text(sampler.epochs(step)),
                "lr": lr,
                **{k: v / acc_n for k, v in acc.items()},
                "step_s": step_s / acc_n,
                "data_s": data_s / acc_n,
            }
            log.write(row)
            print(
                f"step {step}/{total}  {(d2 - t0) / 60:.1f} min  lr {lr:.2e}  "
                f"loss {row['loss']:.3f}  "
                + "  ".join(f"{k} {row[k]:.3f}" for k in LOSS_PARTS)
                + f"  {row['step_s']:.2f} s/step (data wait {row['data_s']:.2f})"
                + f"  epochs {row['epochs']}",
                flush=True,
            )
            acc, acc_n, data_s, step_s = {}, 0, 0.0, 0.0
            last_log = d2
        if d2 - last_val >= args.val_minutes * 60:
            run_validation(d2)
            last_val = time.perf_counter()
            total = estimate_total(last_val)
        if time.perf_counter() - last_ckpt >= args.ckpt_minutes * 60:
            total = estimate_total(time.perf_counter())
            save_checkpoint(out / "last.pt", state())
            last_ckpt = time.perf_counter()

    if last_val_step != step:
        run_validation(time.perf_counter())
    save_checkpoint(out / "last.pt", state())
    print(
        f"done: {step} steps in {(time.perf_counter() - t0) / 60:.1f} min, epochs "
        f"{_epochs_text(sampler.epochs(step))}, best score {best:.4f}; {out}",
        flush=True,
    )


def _device_text(device: torch.device) -> str:
    if device.type != "cuda":
        return "cpu"
    return f"cuda ({torch.cuda.get_device_name(device)})"


def _epochs_text(epochs: dict[str, float]) -> str:
    return " ".join(f"{k[:4]}={v:.1f}" for k, v in epochs.items())


if __name__ == "__main__":
    main()
