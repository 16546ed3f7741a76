"""Live effects on a webcam in a window, with parameters changed by key presses.

    python examples/webcam_demo.py                        # camera 0
    python examples/webcam_demo.py --camera 1 --effect lipstick:color=nude
    python examples/webcam_demo.py --camera clip.mp4      # a video file as a stand-in camera

Keys, with the window focused: q or Esc quits (so does closing the window), c cycles the
lipstick colour through a small palette, o toggles the lipstick's opacity between its value
and 0 (before/after). The frame rate is printed every 2 seconds.

A video file given as --camera is read as fast as it decodes and starts over at its end
(WebcamSource reopens a device whose read fails). --frames N stops after N frames.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import cv2

import arfx

WINDOW = "arfx webcam demo (q quits, c colour, o opacity)"
PALETTE = ("#a3122f", "#e75480", "#6e2346", "#c8937a", "#f26b5b")  # crimson pink plum nude coral
QUIT_KEYS = (ord("q"), ord("Q"), 27)  # 27 = Esc
FPS_EVERY = 2.0


def window_closed() -> bool:
    """True once the user closed the window with its close button."""
    try:
        return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:  # some backends raise for a destroyed window
        return True


def run(session: arfx.Session, camera: int | str, max_frames: int | None) -> int:
    """Show processed camera frames until a quit key, a closed window or max_frames."""
    has_lipstick = any(effect.name == "lipstick" for effect in session.effects)
    start_params = session.effect("lipstick").params if has_lipstick else {}
    opacity = start_params.get("opacity") or 0.85  # what o restores after turning it off
    color = start_params.get("color")
    shade = PALETTE.index(color) if color in PALETTE else -1  # c goes to the next shade
    count, start = 0, time.monotonic()
    reported, reported_count = start, 0
    source = arfx.WebcamSource(camera)
    # closing() ends the stream (and releases the camera) at once when we break out.
    with contextlib.closing(session.stream(source)) as frames:
        for frame in frames:
            # arfx frames are RGB; OpenCV windows want BGR.
            cv2.imshow(WINDOW, cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
            count += 1
            key = cv2.waitKey(1) & 0xFF  # also runs the GUI loop; 255 when no key
            if count == 1:
                print(f"window open: {source.width}x{source.height}, keys q/Esc c o", flush=True)
            if key in QUIT_KEYS or window_closed():
                break
            if key in (ord("c"), ord("o")) and not has_lipstick:
                print("c and o change lipstick, which this session does not have", flush=True)
            elif key == ord("c"):  # set() is validated now and applies from the next frame
                shade = (shade + 1) % len(PALETTE)
                session.set("lipstick", color=PALETTE[shade])
                print(f"colour -> {PALETTE[shade]}", flush=True)
            elif key == ord("o"):
                current = session.effect("lipstick").params["opacity"]
                session.set("lipstick", opacity=0.0 if current > 0 else opacity)
                value = session.effect("lipstick").params["opacity"]
                print(f"opacity -> {value:.2f}", flush=True)
            now = time.monotonic()
            if now - reported >= FPS_EVERY:
                print(f"{(count - reported_count) / (now - reported):.1f} fps", flush=True)
                reported, reported_count = now, count
            if max_frames and count >= max_frames:
                break
    cv2.destroyAllWindows()
    cv2.waitKey(1)  # let the GUI loop process the destroy
    seconds = time.monotonic() - start
    print(f"{count} frames in {seconds:.1f}s ({count / max(seconds, 1e-9):.1f} fps)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera", default="0", help="camera index, device or video file")
    parser.add_argument(
        "--effect",
        "-e",
        action="append",
        metavar="NAME[:KEY=VALUE,...]",
        help="effect to apply, repeatable (default: lipstick)",
    )
    parser.add_argument("--frames", type=int, help="stop after this many frames")
    args = parser.parse_args()

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):  # OpenCV's Qt backend aborts the process without a display; say so instead
        print("error: no display (DISPLAY is not set) for the preview window", file=sys.stderr)
        return 1
    camera: int | str = int(args.camera) if args.camera.isdigit() else args.camera
    try:
        with arfx.Session(args.effect or ["lipstick"]) as session:
            return run(session, camera, args.frames)
    except arfx.ArfxError as exc:  # camera that does not open, unknown effect, ...
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
