"""Embed arfx in an application: one Session, frames in, frames out.

Run it with nothing from outside (the bundled astronaut portrait moving along a head path)::

    python examples/embed_session.py
    python examples/embed_session.py my_video.mp4 --png before_after.png --frames 60
    python examples/embed_session.py portrait.jpg          # a still image works too

What it shows, in order:

1. open a Session with the lipstick effect;
2. per frame: ``session.process(rgb)`` returns the frame with the effect applied;
3. now and then: ``session.analyze(rgb)`` returns the faces (stable id, box, head pose);
4. ``session.set(...)`` changes effect parameters between frames (from any thread);
5. a before/after PNG of one frame;
6. a frame with no face: no faces, and the output is bit-identical to the input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

import arfx

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def open_source(path: Path | None, frames: int) -> arfx.sources.Source:
    """The input as an arfx Source: every source yields RGB uint8 frames with timestamps."""
    if path is None:
        return arfx.HeadPathSource.astronaut(frames=frames)  # bundled, public domain
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return arfx.ImageSource(path, repeat=frames)  # a still shown `frames` times
    return arfx.VideoFileSource(path)


def describe(face: arfx.Face) -> str:
    """One line per face: the id stays the same while the face stays in view."""
    x0, y0, x1, y1 = face.box
    pose = face.pose
    return (
        f"face {face.id}: box ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f}) "
        f"yaw {pose.yaw:+.1f} pitch {pose.pitch:+.1f} roll {pose.roll:+.1f} deg"
    )


def save_side_by_side(path: Path, before: np.ndarray, after: np.ndarray) -> None:
    """arfx works in RGB; OpenCV writes BGR, so convert at the boundary."""
    both = np.hstack([before, after])
    if not cv2.imwrite(str(path), cv2.cvtColor(both, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"cannot write {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path, nargs="?", help="video or image (default: demo)")
    parser.add_argument("--png", type=Path, default=Path("before_after.png"))
    parser.add_argument("--frames", type=int, default=45, help="most frames to process")
    parser.add_argument("--print-every", type=int, default=15, help="print faces every N frames")
    args = parser.parse_args()

    # A Session owns the face tracker, the GL context and the compiled effects: create it
    # once and reuse it for every frame. Effects are "name:key=value,..." strings.
    # For unrelated photos (not video frames) pass SessionOptions(static_images=True).
    with arfx.Session(["lipstick:color=#a3122f,opacity=0.85"]) as session:
        print("effects:", ", ".join(repr(effect) for effect in session.effects))
        before = after = None
        with open_source(args.video, args.frames) as source:
            for frame in source:
                if frame.index >= args.frames:
                    break
                image = frame.image  # HxWx3 RGB uint8; convert OpenCV BGR before passing

                if frame.index % args.print_every == 0:
                    # analyze() tracks without drawing. Calling it next to process() tracks
                    # this frame twice (same ids), so only do it when you need the faces.
                    faces = session.analyze(image)
                    print(f"frame {frame.index} ({frame.time:.2f}s): {len(faces)} face(s)")
                    for face in faces:
                        print("  " + describe(face))

                # Parameters change between frames; they are validated immediately.
                if frame.index == args.frames // 3:
                    session.set("lipstick", color="plum", opacity=0.6)
                    print(f"frame {frame.index}: set {session.effect('lipstick')}")
                if frame.index == 2 * args.frames // 3:
                    session.set("lipstick", color="#e75480", opacity=1.0)
                    print(f"frame {frame.index}: set {session.effect('lipstick')}")

                out = session.process(image)  # a new array, same shape and dtype
                before, after = image, out

        if before is None or after is None:
            print("the source gave no frames", file=sys.stderr)
            return 1
        save_side_by_side(args.png, before, after)
        changed = np.count_nonzero(np.any(before != after, axis=2))
        print(f"{args.png}: before | after of the last frame ({changed} pixels changed)")

        # A bad value is refused before it reaches the next frame.
        try:
            session.set("lipstick", opacity=1.5)
        except arfx.ParameterError as exc:
            print(f"refused: {exc}")

        # A frame with no face: no faces and the picture comes back untouched (as a copy).
        # It also ends every track, so the face seen next gets a new id.
        empty = np.full_like(before, 127)
        print(f"no-face frame: {len(session.analyze(empty))} face(s)")
        untouched = session.process(empty)
        print(f"no-face frame: output identical to input: {np.array_equal(untouched, empty)}")
        ids = [face.id for face in session.analyze(before)]
        print(f"face ids after the empty frame: {ids} (ids are never reused)")
    return 0


if __name__ == "__main__":
    # MediaPipe's and TensorFlow Lite's routine C++ log lines stay off stderr (errors show).
    with arfx.quiet_native_logs():
        sys.exit(main())
