"""Before/after grids of the built-in effects for the README (docs/effects/*.png).

    python scripts/effects_grid.py --data ../shared/data --out docs/effects

Each row is one face (shared photos and frames of the shared videos); each column one effect
configuration, cropped around the face. Video frames are rendered by running the video from
its start, so the model's temporal context and the trackers are as in a real render.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

import arfx


@dataclass(frozen=True)
class Column:
    title: str
    effects: tuple[str, ...]


OVERVIEW = (
    Column("before", ()),
    Column("lipstick", ("lipstick",)),
    Column("gloss", ("lipstick:finish=gloss,color=#c2185b",)),
    Column("hair colour", ("hair_color",)),
    Column("ombre", ("hair_color:color=#3b1f14,tip_color=#e0b070,ombre=0.8",)),
    Column("eyewear", ("eyewear",)),
    Column("all three", ("lipstick", "hair_color:color=#6b2b2b", "eyewear")),
)
FINISHES = (
    Column("before", ()),
    *(
        Column(f, (f"lipstick:finish={f}",))
        for f in ("matte", "satin", "gloss", "shimmer", "sheer")
    ),
    Column("liner", ("lipstick:finish=satin,liner_width=2",)),
)
HAIR = (
    Column("before", ()),
    Column("copper", ("hair_color:color=#b5562b",)),
    Column("burgundy", ("hair_color:color=#6b1f2e",)),
    Column("platinum", ("hair_color:color=#e8dcc4,lift=1",)),
    Column("blue", ("hair_color:color=#2f5fb0",)),
    Column("pink", ("hair_color:color=#e07aa8",)),
    Column("ombre", ("hair_color:color=#3b1f14,tip_color=#e0b070,ombre=0.8",)),
)
EYEWEAR = (
    Column("before", ()),
    Column("default 3D", ("eyewear",)),
    Column(
        "sunglasses glTF", ("eyewear:model={data}/eyewear/sunglasses_gltf/scene.gltf,recolor=true",)
    ),
    Column("2D PNG", ("eyewear:mode=2d",)),
)
GRIDS = {
    "overview": (OVERVIEW, ("images/obama.jpg", "images/single_face.jpg",
                            "videos/WolfgangLanger_Pexels.mp4@60")),
    "lipstick": (FINISHES, ("images/obama.jpg", "images/sergey.png",
                            "videos/WolfgangLanger_Pexels.mp4@20")),
    "hair": (HAIR, ("images/obama.jpg", "images/sergey.png",
                    "videos/WolfgangLanger_Pexels.mp4@60")),
    "eyewear": (EYEWEAR, ("images/obama.jpg", "videos/WolfgangLanger_Pexels.mp4@60",
                          "videos/WolfgangLanger_Pexels.mp4@250")),
}  # fmt: skip


def read_source(data: Path, source: str) -> list[np.ndarray]:
    """The frames to feed a session: one photo, or a video's frames up to the chosen one."""
    if "@" not in source:
        return [cv2.cvtColor(cv2.imread(str(data / source)), cv2.COLOR_BGR2RGB)]
    name, index = source.split("@")
    frames = []
    with av.open(str(data / name)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) > int(index):
                break
    return frames


def render(frames: list[np.ndarray], effects: tuple[str, ...]) -> tuple[np.ndarray, tuple]:
    """The last frame with ``effects`` applied, and its first face's box (the mouth's box
    when ``mouth`` is set)."""
    options = arfx.SessionOptions(static_images=len(frames) == 1)
    with arfx.Session(list(effects), options) as session:
        for rgb in frames[:-1]:
            session.process(rgb)
        out = session.process(frames[-1])
        faces = session.analyze(frames[-1])
    return out, faces[0] if faces else None


def mouth_box(face) -> tuple:
    """A box around the lips, as wide as the mouth; crop() grows it as it does a face."""
    corners = face.landmarks[[61, 291], :2]
    centre = corners.mean(axis=0)
    half = 0.5 * float(np.linalg.norm(corners[1] - corners[0]))
    return (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)


def crop(image: np.ndarray, box: tuple, cell: int) -> np.ndarray:
    """A square around the face (grown to take in the hair), resized to ``cell``."""
    x0, y0, x1, y1 = box
    cx, cy, size = (x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * (y1 - y0), 1.9 * max(x1 - x0, y1 - y0)
    m = np.float32([[cell / size, 0, cell / 2 - cx * cell / size],
                    [0, cell / size, cell / 2 - cy * cell / size]])  # fmt: skip
    return cv2.warpAffine(image, m, (cell, cell), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT)  # fmt: skip


def label(cell: np.ndarray, text: str) -> np.ndarray:
    out = cell.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def grid(
    data: Path, columns: tuple[Column, ...], rows: tuple[str, ...], cell: int, mouth: bool
) -> np.ndarray:
    lines = []
    for source in rows:
        frames = read_source(data, source)
        face = render(frames[-1:], ())[1]
        if face is None:
            raise SystemExit(f"{source}: no face")
        box = mouth_box(face) if mouth else face.box
        cells = []
        for column in columns:
            effects = tuple(e.replace("{data}", str(data)) for e in column.effects)
            out = render(frames, effects)[0] if effects else frames[-1]
            cells.append(label(crop(out, box, cell), column.title))
        lines.append(np.concatenate(cells, axis=1))
    return np.concatenate(lines, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("docs/effects"))
    parser.add_argument("--cell", type=int, default=240)
    parser.add_argument("--only", default="", help="comma-separated grid names")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (columns, rows) in GRIDS.items():
        if args.only and name not in args.only.split(","):
            continue
        image = grid(args.data.resolve(), columns, rows, args.cell, mouth=name == "lipstick")
        path = args.out / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        print(path)


if __name__ == "__main__":
    main()
