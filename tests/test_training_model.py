"""The training side of the face model: network shapes, landmark decoding, rotations, masked
losses, a tiny overfit, and the ONNX export round trip.

Needs the training environment (torch, onnx); the runtime test run has no torch and skips
this module. Run with ``PYTHONPATH=. /path/to/venv-train/bin/python -m pytest
tests/test_training_model.py``. Small widths keep it to a few seconds on 2 CPU cores.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from arfx.faceparts import CLASS_INDEX, IBUG_FLIP  # noqa: E402
from arfx.training.losses import (  # noqa: E402
    IGNORE,
    coordinate_l1,
    gaussian_heatmaps,
    geodesic,
    median_frequency_weights,
    multitask_loss,
)
from arfx.training.model import (  # noqa: E402
    CROP,
    ExportModel,
    FaceNet,
    FaceNetConfig,
    count_parameters,
    decode_heatmaps,
    gram_schmidt,
)

TINY = FaceNetConfig(width=0.35, expand=2, full_res=8)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    torch.manual_seed(0)


def _inputs(n: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, CROP, CROP, generator=g), torch.rand(n, 4, CROP, CROP, generator=g)


def _batch(n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """A synthetic sample batch with every head labelled (the dataset's keys and dtypes)."""
    g = torch.Generator().manual_seed(seed)
    image, context = _inputs(n, seed)
    parsing = torch.zeros(n, CROP, CROP, dtype=torch.int64)
    parsing[:, 60:200, 60:200] = CLASS_INDEX["skin"]
    parsing[:, 150:165, 100:156] = CLASS_INDEX["upper_lip"]
    parsing[:, 165:178, 100:156] = CLASS_INDEX["lower_lip"]
    parsing[:, 20:60] = CLASS_INDEX["hair"]
    parsing[:, :, :4] = IGNORE
    landmarks = 64 + 128 * torch.rand(n, 68, 2, generator=g)
    return {
        "image": image,
        "context": context,
        "parsing": parsing,
        "hair_soft": (parsing == CLASS_INDEX["hair"]).float(),
        "hair_soft_weight": torch.ones(n),
        "occlusion": torch.zeros(n, CROP, CROP),
        "occlusion_weight": torch.ones(n),
        "landmarks": landmarks,
        "landmark_weight": torch.ones(n, 68),
        "rotation": gram_schmidt(torch.randn(n, 6, generator=g)),
        "rotation_weight": torch.ones(n),
        "valid": torch.ones(n, CROP, CROP),
    }


def test_output_shapes_and_probabilities():
    torch.manual_seed(0)  # the same weights every run
    net = FaceNet(TINY).eval()
    image, context = _inputs(2)
    with torch.no_grad():
        raw = net(image, context)
        parsing, occlusion, landmarks, rotation = ExportModel(net)(image, context)
    assert raw["parsing"].shape == (2, 10, 256, 256)
    assert raw["occlusion"].shape == (2, 1, 256, 256)
    assert raw["heatmaps"].shape == (2, 68, 64, 64)
    assert parsing.shape == (2, 10, 256, 256)
    assert occlusion.shape == (2, 1, 256, 256)
    assert landmarks.shape == (2, 68, 2)
    assert rotation.shape == (2, 3, 3)
    torch.testing.assert_close(parsing.sum(1), torch.ones(2, 256, 256))
    # The export spells the softmax out (``softmax_channels``): the same up to float32
    # rounding, which reached 1.6e-5 on some random weights.
    torch.testing.assert_close(parsing, torch.softmax(raw["parsing"], 1), atol=1e-4, rtol=0)
    assert float(occlusion.min()) >= 0 and float(occlusion.max()) <= 1
    assert float(landmarks.min()) >= 0 and float(landmarks.max()) <= CROP - 1


def test_default_model_is_small():
    net = FaceNet()
    assert count_parameters(net) < 5_000_000


def test_landmark_decoding_is_flip_consistent():
    """Mirroring the heatmaps mirrors the decoded points exactly: x -> 255 - x (the
    dataset's flip, cv2 pixel centres), and the flip partners follow IBUG_FLIP."""
    logits = 3 * torch.randn(2, 68, 64, 64, dtype=torch.float64)
    points = decode_heatmaps(logits)
    mirrored = decode_heatmaps(logits.flip(-1)[:, IBUG_FLIP])
    expected = points[:, IBUG_FLIP].clone()
    expected[..., 0] = (CROP - 1) - expected[..., 0]
    torch.testing.assert_close(mirrored, expected, atol=1e-9, rtol=0)


def test_gaussian_target_decodes_to_its_point():
    """The heatmap loss's target and the in-graph decoder share one pixel convention: a
    target peaked at p has its barycentre at p (away from the border)."""
    points = torch.tensor([[[128.0, 128.0], [100.3, 150.7], [31.5, 200.25], [222.0, 40.0]]])
    target = gaussian_heatmaps(points)
    decoded = decode_heatmaps(torch.log(target.clamp_min(1e-30)))
    torch.testing.assert_close(decoded, points, atol=1e-3, rtol=0)


def test_gram_schmidt_gives_rotations():
    r = gram_schmidt(torch.randn(64, 6, dtype=torch.float64))
    eye = torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    torch.testing.assert_close(r.transpose(1, 2) @ r, eye, atol=1e-9, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(64, dtype=torch.float64))
    # The pose head starts at the identity (frontal face).
    with torch.no_grad():
        start = FaceNet(TINY).eval()(*_inputs(1))["rotation"]
    torch.testing.assert_close(start, torch.eye(3)[None], atol=0.05, rtol=0)


def test_geodesic_angle():
    angle = torch.tensor([0.3, 1.0, 2.5], dtype=torch.float64)
    c, s = torch.cos(angle), torch.sin(angle)
    r = torch.zeros(3, 3, 3, dtype=torch.float64)
    r[:, 0, 0], r[:, 0, 1], r[:, 1, 0], r[:, 1, 1], r[:, 2, 2] = c, -s, s, c, 1
    eye = torch.eye(3, dtype=torch.float64).expand(3, 3, 3)
    torch.testing.assert_close(geodesic(r, eye), angle)
    # An exact prediction has a finite gradient (the clamp keeps arccos off its pole).
    pred = eye.clone().requires_grad_(True)
    geodesic(pred, eye).sum().backward()
    assert torch.isfinite(pred.grad).all()


def _outputs_requiring_grad(n: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    heatmaps = torch.randn(n, 68, 64, 64, generator=g).requires_grad_(True)
    return {
        "parsing": torch.randn(n, 10, CROP, CROP, generator=g).requires_grad_(True),
        "occlusion": torch.randn(n, 1, CROP, CROP, generator=g).requires_grad_(True),
        "heatmaps": heatmaps,
        "landmarks": (128 + 50 * torch.randn(n, 68, 2, generator=g)).requires_grad_(True),
        "rotation": gram_schmidt(torch.randn(n, 6, generator=g)).requires_grad_(True),
    }


def test_losses_ignore_unlabelled_samples():
    """Sample 1 has no labels at all: every head's gradient for it is exactly zero, and the
    loss equals that of sample 0 alone (normalised per labelled sample)."""
    batch = _batch(2)
    batch["parsing"][1] = IGNORE
    for key in ("hair_soft_weight", "occlusion_weight", "rotation_weight"):
        batch[key][1] = 0
    batch["landmark_weight"][1] = 0
    out = _outputs_requiring_grad(2)
    total, parts = multitask_loss(out, batch)
    total.backward()
    for name, tensor in out.items():
        assert tensor.grad is not None, name
        assert float(tensor.grad[1].abs().max()) == 0.0, name
        assert float(tensor.grad[0].abs().max()) > 0.0, name

    alone = {k: v[:1].detach() for k, v in out.items()}
    total0, _ = multitask_loss(alone, {k: v[:1] for k, v in batch.items()})
    torch.testing.assert_close(total.detach(), total0, rtol=1e-5, atol=1e-6)


def test_head_without_labels_gives_zero_loss():
    batch = _batch(2)
    batch["rotation_weight"][:] = 0
    batch["landmark_weight"][:] = 0
    out = _outputs_requiring_grad(2)
    total, parts = multitask_loss(out, batch)
    assert parts["rotation"] == 0.0 and parts["heatmap"] == 0.0 and parts["coords"] == 0.0
    total.backward()
    assert float(out["rotation"].grad.abs().max()) == 0.0
    assert float(out["heatmaps"].grad.abs().max()) == 0.0


def test_landmark_weights_are_per_point():
    pred = torch.zeros(1, 68, 2)
    target = torch.zeros(1, 68, 2)
    target[0, 5] = 10.0  # a 20 px L1 error on a point with weight 0
    weight = torch.ones(1, 68)
    weight[0, 5] = 0
    assert float(coordinate_l1(pred, target, weight)) == 0.0


def test_median_frequency_weights():
    a = np.zeros((10, 10), np.int64)
    a[:2, :2] = 5  # a small class: 4% of the image
    b = np.full((10, 10), IGNORE)
    w = median_frequency_weights([a, b])
    assert w.shape == (10,)
    assert w[5] > w[0]  # the rare class weighs more
    assert 0.5 <= w.min() and w.max() <= 8.0


def test_overfit_three_steps_reduces_loss():
    torch.manual_seed(0)
    net = FaceNet(TINY).train()
    batch = _batch(2)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(4):
        loss, _ = multitask_loss(net(batch["image"], batch["context"]), batch)
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(np.isfinite(losses))
    assert losses[3] < losses[0]


def test_bf16_training_keeps_outputs_and_decoding_in_float32():
    """--precision bf16 runs the convolutions in bfloat16, but the heads leave in float32 and
    the landmark barycentre is computed in float32: in bf16 it would lose about a pixel."""
    torch.manual_seed(0)
    net = FaceNet(TINY).train()
    batch = _batch(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(batch["image"], batch["context"])
    assert all(v.dtype == torch.float32 for v in out.values())
    # The landmarks are the float32 decoding of the (float32) heatmaps.
    exact = decode_heatmaps(out["heatmaps"].detach())
    torch.testing.assert_close(out["landmarks"].detach(), exact, atol=1e-4, rtol=0)
    loss, _ = multitask_loss(out, batch)
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in net.parameters())


def test_mixed_batches_are_deterministic_and_resumable():
    from arfx.training.train import MixedBatches

    kinds = ["celebamask"] * 10 + ["udacity"] * 7 + ["video"] * 5
    mix = {"celebamask": 2, "udacity": 1, "video": 1}
    a = MixedBatches(kinds, mix, seed=0)
    b = MixedBatches(kinds, mix, seed=0, start=5)
    stream = iter(b)
    for step in range(5, 20):
        batch = a.batch(step)
        assert next(stream) == batch
        assert [kinds[d.item] for d in batch] == ["celebamask", "celebamask", "udacity", "video"]
    # Each data set is covered once per epoch.
    seen = [a.batch(s)[0].item for s in range(5)] + [a.batch(s)[1].item for s in range(5)]
    assert sorted(seen) == list(range(10))
    assert {d.epoch for s in range(5) for d in a.batch(s)[:2]} == {0}
    assert {d.epoch for s in range(5, 10) for d in a.batch(s)[:2]} == {1}


def test_rare_hair_photos_repeat_within_each_epoch():
    from arfx.training.train import MixedBatches, item_repeats

    entries = [{"kind": "celebamask", "hat_share": 0.0, "hair_share": 0.2} for _ in range(6)]
    entries[1]["hat_share"] = 0.1  # a cap
    entries[4]["hair_share"] = 0.001  # a bald head
    entries[5].update(hat_share=0.2, hair_share=0.0)  # a hat hiding all the hair
    entries += [{"kind": "udacity"}, {"kind": "udacity"}]
    assert item_repeats(entries) == [1] * 8
    assert item_repeats(entries, hats=3) == [1, 3, 1, 1, 1, 3, 1, 1]
    assert item_repeats(entries, little_hair=2) == [1, 1, 1, 1, 2, 2, 1, 1]
    repeats = item_repeats(entries, hats=3, little_hair=2)
    assert repeats == [1, 3, 1, 1, 2, 3, 1, 1]
    kinds = [e["kind"] for e in entries]
    sampler = MixedBatches(kinds, {"celebamask": 2, "udacity": 1}, seed=0, repeats=repeats)
    # One epoch of photos is 1 + 3 + 1 + 1 + 2 + 3 = 11 draws.
    drawn = [(d.item, d.copy) for s in range(6) for d in sampler.batch(s)[:2]][:11]
    assert sorted(drawn) == [
        (0, 0), (1, 0), (1, 1), (1, 2), (2, 0), (3, 0), (4, 0), (4, 1), (5, 0), (5, 1), (5, 2)
    ]  # fmt: skip
    with pytest.raises(SystemExit, match="--hats"):
        item_repeats(entries, hats=0)


def test_export_round_trip(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from arfx.training.export import compare, export_onnx

    torch.manual_seed(0)
    net = FaceNet(TINY)
    # Non-trivial BatchNorm statistics, so folding them into the convs is exercised.
    net.train()
    with torch.no_grad():
        net(*_inputs(2, seed=3))
    net.eval()
    path = export_onnx(net, tmp_path / "face.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image", "context"]
    assert [o.name for o in sess.get_outputs()] == ["parsing", "occlusion", "landmarks", "rotation"]
    for n in (1, 3):  # dynamic batch
        image, context = (x.numpy() for x in _inputs(n, seed=n))
        diffs = compare(net, path, image, context)
        assert diffs["parsing"] < 1e-4 and diffs["occlusion"] < 1e-4, diffs
        assert diffs["landmarks"] < 1e-2 and diffs["rotation"] < 1e-4, diffs


def test_export_records_the_crop_border(tmp_path):
    """The run time crops faces as the model was trained (arfx.model reads crop_border)."""
    onnx = pytest.importorskip("onnx")
    from arfx.training.export import checkpoint_metadata, export_onnx

    net = FaceNet(TINY).eval()
    old = {"config": {"width": 0.25}, "step": 3}
    assert checkpoint_metadata(old)["crop_border"] == "replicate"
    metadata = checkpoint_metadata({**old, "crop_border": "reflect"})
    path = export_onnx(net, tmp_path / "face.onnx", metadata)
    entries = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert entries["crop_border"] == "reflect" and entries["training_step"] == "3"


def test_warm_start_from_onnx_reproduces_the_exported_model(tmp_path):
    """Weights recovered from an ONNX file (BatchNorms folded into convs) give the same
    outputs in eval mode, and nearly the same in train mode, so training can continue."""
    pytest.importorskip("onnx")
    from arfx.training.export import compare, export_onnx
    from arfx.training.warmstart import load_onnx_weights

    torch.manual_seed(0)
    source = FaceNet(TINY)
    source.train()
    with torch.no_grad():
        source(*_inputs(4, seed=5))
    source.eval()
    path = export_onnx(source, tmp_path / "face.onnx")

    torch.manual_seed(1)
    net = FaceNet(TINY)
    calibration = [_inputs(4, seed=s) for s in (10, 11)]
    load_onnx_weights(net, path, calibration)
    net.eval()
    image, context = (x.numpy() for x in _inputs(2, seed=7))
    diffs = compare(net, path, image, context)
    assert diffs["parsing"] < 1e-4 and diffs["occlusion"] < 1e-4, diffs
    assert diffs["landmarks"] < 1e-2 and diffs["rotation"] < 1e-4, diffs

    other = FaceNet(FaceNetConfig(width=TINY.width, expand=TINY.expand, full_res=16))
    with pytest.raises(ValueError, match="shape"):
        load_onnx_weights(other, path, calibration)


def test_overrides_set_typed_fields_and_refuse_unknown_names():
    """``--augment`` and ``--loss-weights``: each value takes its field's type, and a typo or
    a field that is not a number stops the run before it starts."""
    from arfx.training.augment import AugmentConfig
    from arfx.training.train import parse_loss_weights, parse_overrides

    config = parse_overrides("context_zero=0.6, previous_grow=5", AugmentConfig, "--augment")
    assert config.context_zero == 0.6 and config.previous_grow == 5
    assert isinstance(config.previous_grow, int)
    assert config.flip == AugmentConfig().flip  # untouched fields keep their defaults
    assert parse_loss_weights("dice=1").dice == 1.0
    with pytest.raises(SystemExit, match="unknown name 'context_zeroo'"):
        parse_overrides("context_zeroo=0.6", AugmentConfig, "--augment")
    with pytest.raises(SystemExit, match="previous_grow='2.5' is not a int"):
        parse_overrides("previous_grow=2.5", AugmentConfig, "--augment")
    with pytest.raises(SystemExit, match="scale is not a number"):
        parse_overrides("scale=1.1", AugmentConfig, "--augment")


def test_device_auto_picks_cuda_only_when_pytorch_sees_it():
    from arfx.training.train import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(SystemExit, match="auto, cpu or cuda, not 'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="--device cuda: PyTorch .* (CPU-only|sees no GPU)"):
            resolve_device("cuda")


def test_batches_move_to_the_device_with_images_in_channels_last():
    from arfx.training.train import to_device

    batch = _batch(2)
    moved = to_device(batch, torch.device("cpu"))
    assert set(moved) == set(batch)
    for k in ("image", "context"):
        assert moved[k].is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(moved[k], batch[k], atol=0, rtol=0)
    assert moved["parsing"].dtype == torch.int64


def _train_cache() -> str:
    """A small training cache made by ``python -m arfx.training.prepare`` in the runtime
    environment (MediaPipe cannot live beside this one's protobuf): scripts/test.sh makes it
    and names it in ARFX_TRAIN_CACHE. Missing: fails under CI, skips elsewhere."""
    import os
    from pathlib import Path

    from .conftest import require

    path = os.environ.get("ARFX_TRAIN_CACHE")
    if not path:
        from .conftest import under_ci

        message = (
            "ARFX_TRAIN_CACHE is not set: make a cache with `python -m arfx.training.prepare "
            "--limit 6 --videos single_face.mp4 --cache DIR` (runtime environment) and set it"
        )
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    return str(require(Path(path) / "index.json").parent)


def test_training_command_trains_resumes_and_replays(tmp_path, monkeypatch):
    """The one training command end to end on real faces: a fixed step count trains, logs,
    validates and checkpoints; a run cut off after two of its four steps and resumed (with
    loader processes this time) ends with exactly the weights of the run made in one go
    (same seed); and the result exports."""
    from arfx.training import train
    from arfx.training.export import export_onnx, load_checkpoint

    cache = _train_cache()
    common = [
        "--cache", cache, "--seed", "3", "--batch", "3", "--mix", "1,1,1", "--steps", "4",
        "--width", str(TINY.width), "--expand", str(TINY.expand),
        "--full-res", str(TINY.full_res), "--workers", "0", "--threads", "2",
        "--device", "cpu", "--warmup-steps", "1", "--log-seconds", "0",
        "--val-minutes", "1000",
    ]  # fmt: skip
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train.main([*common, "--out", str(whole), "--ckpt-minutes", "1000"])

    # The second run checkpoints every step and is cut off in its third.
    loss, calls = train.multitask_loss, []

    def cut_off(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return loss(*args, **kwargs)

    monkeypatch.setattr(train, "multitask_loss", cut_off)
    with pytest.raises(KeyboardInterrupt):
        train.main([*common, "--out", str(parts), "--ckpt-minutes", "0"])
    monkeypatch.setattr(train, "multitask_loss", loss)
    first = torch.load(parts / "last.pt", map_location="cpu", weights_only=False)
    assert first["step"] == 2 and first["total_steps"] == 4
    # ... and resumed with two loader processes instead of none.
    again = [*common[: common.index("--workers")], *common[common.index("--threads") :]]
    train.main(
        [*again, "--workers", "2", "--out", str(parts), "--ckpt-minutes", "1000", "--resume"]
    )

    done = torch.load(whole / "last.pt", map_location="cpu", weights_only=False)
    resumed = torch.load(parts / "last.pt", map_location="cpu", weights_only=False)
    assert done["step"] == resumed["step"] == 4
    assert done["model"].keys() == resumed["model"].keys()
    for name, value in done["model"].items():
        torch.testing.assert_close(resumed["model"][name], value, atol=0, rtol=0, msg=name)
    changed = [n for n, v in first["model"].items() if not torch.equal(v, done["model"][n])]
    assert changed, "the last two steps changed no weight"

    rows = (whole / "log.csv").read_text().splitlines()
    val = [r for r in rows[1:] if r.startswith("val,")]
    assert len(rows) > 2 and len(val) == 1  # the final validation
    scores = dict(zip(rows[0].split(","), val[0].split(","), strict=True))
    assert 0.0 <= float(scores["val_lips"]) <= 1.0 and float(scores["val_nme"]) > 0
    assert (whole / "best.pt").is_file() and (whole / "curves.png").is_file()

    net, checkpoint = load_checkpoint(whole / "best.pt")
    onnx_path = export_onnx(net, tmp_path / "face.onnx", {"step": str(checkpoint["step"])})
    assert onnx_path.stat().st_size > 10_000


def test_resume_without_a_checkpoint_says_so(tmp_path):
    from arfx.training.train import main

    with pytest.raises(SystemExit, match=r"--resume: no .*last\.pt"):
        main(["--cache", str(tmp_path), "--out", str(tmp_path / "run"), "--steps", "1",
              "--resume"])  # fmt: skip
