"""Export a FaceNet checkpoint to the ONNX model of docs/face-model.md and verify it.

``python -m arfx.training.export --checkpoint RUN/best.pt --out arfx/models/face_multitask.onnx``

The graph is exported with the TorchScript exporter (opset 17, dynamic batch; BatchNorm folds
into the convolutions), then run with ONNX Runtime on real validation crops and compared with
PyTorch: the export fails loudly when parsing probabilities or landmarks disagree. Finally
the CPU latency (2 threads) at batch 1 and 4 is printed, the number the runtime budget is
written against.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ..faceparts import PARSING_CLASSES
from .model import ExportModel, FaceNet, build, count_parameters

INPUTS = ("image", "context")
OUTPUTS = ExportModel.OUTPUTS
OPSET = 17
MAX_PROB_DIFF = 1e-3
MAX_LANDMARK_DIFF = 0.05  # crop pixels
MAX_ROTATION_DIFF = 1e-3


def load_checkpoint(path: Path | str) -> tuple[FaceNet, dict]:
    """The network (eval mode, contiguous NCHW weights) and the checkpoint dict."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    net = build(ckpt["config"])
    net.load_state_dict(ckpt["model"])
    return net.eval().to(memory_format=torch.contiguous_format), ckpt


def checkpoint_metadata(ckpt: dict) -> dict[str, str]:
    """What an exported model records of its checkpoint: the architecture, the step, its
    validation scores, and the crop border the run time must use (``crop_border``; a
    checkpoint from before that option trained with "replicate")."""
    metrics = ckpt.get("metrics", {})
    return {
        "config": json.dumps(ckpt["config"]),
        "training_step": str(ckpt.get("step")),
        "crop_border": str(ckpt.get("crop_border", "replicate")),
        "validation": json.dumps({k: round(float(v), 4) for k, v in metrics.items()}),
    }


def export_onnx(net: FaceNet, out: Path | str, metadata: dict[str, str] | None = None) -> Path:
    """Write the contract's ONNX graph for ``net`` (eval mode) to ``out``."""
    import onnx

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = ExportModel(net).eval()
    example = (torch.rand(1, 3, 256, 256), torch.zeros(1, 4, 256, 256))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            example,
            str(out),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes={name: {0: "N"} for name in (*INPUTS, *OUTPUTS)},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    meta = {"parsing_classes": json.dumps(list(PARSING_CLASSES)), **(metadata or {})}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    return out


def session(path: Path | str, threads: int = 2):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def validation_inputs(cache: str | None, count: int = 8) -> tuple[np.ndarray, np.ndarray, str]:
    """Real val crops (half CelebAMask with context, half udacity) or, without a cache,
    random inputs; the third item says which."""
    if cache is not None:
        try:
            from .dataset import FaceSamples

            samples = FaceSamples(cache, "val", augment=False)
        except FileNotFoundError:
            samples = None
        if samples is not None and len(samples):
            kinds = samples.kinds
            picks = []
            for kind in ("celebamask", "udacity"):
                picks += [i for i, k in enumerate(kinds) if k == kind][: count // 2]
            items = [samples[i] for i in picks]
            image = np.stack([x["image"] for x in items])
            context = np.stack([x["context"] for x in items])
            return image, context, f"{len(items)} validation crops from {cache}"
    rng = np.random.default_rng(0)
    image = rng.random((count, 3, 256, 256), dtype=np.float32)
    context = (rng.random((count, 4, 256, 256)) > 0.5).astype(np.float32)
    return image, context, f"{count} random inputs (no cache)"


def compare(net: FaceNet, onnx_path: Path | str, image: np.ndarray, context: np.ndarray) -> dict:
    """Max abs differences between PyTorch and ONNX Runtime for each output."""
    with torch.inference_mode():
        ref = ExportModel(net).eval()(torch.from_numpy(image), torch.from_numpy(context))
    got = session(onnx_path).run(list(OUTPUTS), {"image": image, "context": context})
    return {
        name: float(np.abs(r.numpy() - g).max())
        for name, r, g in zip(OUTPUTS, ref, got, strict=True)
    }


def latency_ms(onnx_path: Path | str, batch: int, repeats: int = 30) -> float:
    """Median wall time per face (ms) of one ``run`` at ``batch``, 2 intra-op threads."""
    sess = session(onnx_path)
    rng = np.random.default_rng(0)
    feed = {
        "image": rng.random((batch, 3, 256, 256), dtype=np.float32),
        "context": np.zeros((batch, 4, 256, 256), np.float32),
    }
    for _ in range(5):
        sess.run(None, feed)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times)) / batch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--cache", default=None, help="training cache for verification (default: ~/.cache/arfx)"
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    cache = args.cache
    if cache is None:
        from .prepare import default_cache_dir

        cache = str(default_cache_dir())
    net, ckpt = load_checkpoint(args.checkpoint)
    path = export_onnx(net, args.out, checkpoint_metadata(ckpt))
    size_mb = path.stat().st_size / 2**20
    print(f"wrote {path} ({size_mb:.1f} MB, {count_parameters(net) / 1e6:.2f}M params)")

    image, context, what = validation_inputs(cache)
    diffs = compare(net, path, image, context)
    print(
        f"ONNX Runtime vs PyTorch on {what}: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
    )
    limits = {
        "parsing": MAX_PROB_DIFF,
        "occlusion": MAX_PROB_DIFF,
        "landmarks": MAX_LANDMARK_DIFF,
        "rotation": MAX_ROTATION_DIFF,
    }
    bad = {k: v for k, v in diffs.items() if not v <= limits[k]}
    if bad:
        print(f"FAILED: outputs differ beyond limits {limits}: {bad}", file=sys.stderr)
        return 1
    b1, b4 = latency_ms(path, 1), latency_ms(path, 4)
    print(f"CPU latency (ONNX Runtime, 2 threads): batch 1 {b1:.1f} ms, batch 4 {b4:.1f} ms/face")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
