"""Render every video in a folder with the same effects, reusing one Session for all files.

    python examples/batch_render.py IN_DIR OUT_DIR
    python examples/batch_render.py clips/ out/ --effect lipstick:color=plum,opacity=0.7

IN_DIR/NAME.EXT becomes OUT_DIR/NAME.mp4 (H.264 with the input's timing and audio). A file
that fails is reported and the batch goes on; what was rendered before the failure is kept as
OUT_DIR/NAME.partial.mp4 (playable) unless --discard-partial. A summary table ends the run.
Exit status: 0 all rendered, 1 some file failed, 2 bad arguments or effects.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import arfx
from arfx.session import RenderError  # not re-exported by the arfx package (yet)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm"}


@dataclass
class Result:
    """One line of the summary table."""

    name: str
    ok: bool
    frames: int
    fps: float | None
    detail: str  # the output path, or the error and what happened to the partial file


def find_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def output_names(inputs: list[Path], out_dir: Path) -> dict[Path, Path]:
    """OUT_DIR/NAME.mp4, or OUT_DIR/NAME.EXT.mp4 where two inputs share a NAME."""
    stems = Counter(p.stem for p in inputs)
    return {p: out_dir / f"{p.stem if stems[p.stem] == 1 else p.name}.mp4" for p in inputs}


def short(exc: Exception, src: Path) -> str:
    """arfx errors start with the file's path; the table already names the file."""
    return str(exc).removeprefix(f"{src}: ")


def render_one(session: arfx.Session, src: Path, dst: Path, keep_partial: bool) -> Result:
    """Render one file; every failure becomes a Result so that the batch can go on."""
    # A partial file left by an earlier run would look like this run's.
    dst.with_name(f"{dst.stem}.partial{dst.suffix}").unlink(missing_ok=True)
    try:
        # render() resets the tracker, so faces of one file never carry over to the next.
        report = session.render(src, dst, progress=sys.stderr.isatty(), keep_partial=keep_partial)
    except RenderError as exc:  # failed part-way: exc.frames were rendered
        kept = f"partial kept: {exc.partial}" if exc.partial else "no partial file kept"
        return Result(src.name, False, exc.frames, None, f"{short(exc, src)} ({kept})")
    except arfx.ArfxError as exc:  # failed before the first frame (unreadable input, ...)
        return Result(src.name, False, 0, None, f"{short(exc, src)} (no partial file kept)")
    except Exception as exc:  # a bug, not a bad file: show where, but finish the batch
        traceback.print_exc()
        return Result(src.name, False, 0, None, f"unexpected {type(exc).__name__}: {exc}")
    detail = str(dst)
    for effect, count in report.effect_failures.items():
        detail += f" (effect {effect!r} failed on {count} frames)"
    return Result(src.name, True, report.frames, report.fps, detail)


def print_summary(results: list[Result]) -> None:
    header = ("file", "status", "frames", "fps", "output / error")
    rows = [header] + [
        (
            r.name,
            "ok" if r.ok else "FAILED",
            str(r.frames),
            f"{r.fps:.1f}" if r.fps else "-",
            r.detail,
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print()
    for name, status, frames, fps, detail in rows:
        print(
            f"{name:<{widths[0]}}  {status:<{widths[1]}}  {frames:>{widths[2]}}  "
            f"{fps:>{widths[3]}}  {detail}"
        )
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} rendered, {failed} failed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("in_dir", type=Path, metavar="IN_DIR")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.add_argument(
        "--effect",
        "-e",
        action="append",
        metavar="NAME[:KEY=VALUE,...]",
        help="effect to apply, repeatable (default: lipstick)",
    )
    parser.add_argument(
        "--discard-partial", action="store_true", help="delete what a failed file rendered"
    )
    args = parser.parse_args()

    if not args.in_dir.is_dir():
        parser.error(f"{args.in_dir} is not a folder")
    if args.out_dir.resolve() == args.in_dir.resolve():
        parser.error("OUT_DIR must differ from IN_DIR (outputs would replace inputs)")
    inputs = find_videos(args.in_dir)
    if not inputs:
        parser.error(f"no videos ({', '.join(sorted(VIDEO_SUFFIXES))}) in {args.in_dir}")
    args.out_dir.mkdir(parents=True, exist_ok=True)

    try:  # effects are checked (and shaders compiled) here, before any file is touched
        session = arfx.Session(args.effect or ["lipstick"])
    except arfx.ArfxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    results: list[Result] = []
    with session:  # one tracker and GL context for the whole batch
        for src, dst in output_names(inputs, args.out_dir).items():
            try:
                result = render_one(session, src, dst, keep_partial=not args.discard_partial)
            except KeyboardInterrupt:  # render() has already kept the partial file
                print(f"{src.name}: interrupted", file=sys.stderr)
                print_summary(results)
                return 130
            results.append(result)
            if result.ok:
                print(f"ok      {src.name}: {result.frames} frames, {result.fps:.1f} fps")
            else:
                print(f"FAILED  {src.name}: {result.detail}")
            sys.stdout.flush()

    print_summary(results)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
