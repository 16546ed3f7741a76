"""Start training from a shipped ONNX model instead of random weights.

A checkpoint is the natural starting point, but the ONNX file is what ships and outlives run
folders. Its graph has the network's weights with most BatchNorms folded into the preceding
convolutions (``W' = W * g / s``, ``b' = beta + (b - mu) * g / s``), so this module walks the
ONNX weight-bearing nodes and the network's layers in the same forward order, copies the
weights that kept their names, and for a folded pair sets the convolution to ``W'`` and its
BatchNorm to statistics measured on real crops (``gamma = s``, ``beta = mu + b'``, running
mean ``mu``, variance ``s^2``): eval mode then reproduces the ONNX output exactly, and train
mode starts from nearly the same function because a batch's own statistics are close to
the measured ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .model import FaceNet

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_ONNX_WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _layers_in_forward_order(net: FaceNet) -> list[tuple[str, nn.Module, nn.BatchNorm2d | None]]:
    """(name, layer, the BatchNorm that directly follows it or None), in call order."""
    following: dict[int, nn.BatchNorm2d] = {}
    for module in net.modules():
        if isinstance(module, nn.Sequential):
            children = list(module)
            for a, b in zip(children, children[1:], strict=False):
                if isinstance(a, _WEIGHTED) and isinstance(b, nn.BatchNorm2d):
                    following[id(a)] = b
    names = {id(m): n for n, m in net.named_modules()}
    order: list[nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
        for m in net.modules()
        if isinstance(m, _WEIGHTED)
    ]
    try:
        with torch.no_grad():
            net.eval()(torch.rand(1, 3, 256, 256), torch.zeros(1, 4, 256, 256))
    finally:
        for hook in hooks:
            hook.remove()
    return [(names[id(m)], m, following.get(id(m))) for m in order]


_Layer = tuple[str, np.ndarray, "np.ndarray | None", "list[np.ndarray] | None"]


def _onnx_layers(path: Path) -> list[_Layer]:
    """(weight name, weight, bias or None, the scale/bias/mean/var of a BatchNormalization
    node that consumes the layer's output or None) of every weight-bearing node, in order."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    # Shared or small constants may come as Constant or Identity nodes, not initializers.
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in init:
            init[node.output[0]] = init[node.input[0]]
        elif node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                init[node.output[0]] = numpy_helper.to_array(value)
    norms = {
        node.input[0]: [init[name] for name in node.input[1:5]]
        for node in model.graph.node
        if node.op_type == "BatchNormalization" and all(n in init for n in node.input[1:5])
    }
    layers = []
    for node in model.graph.node:
        if node.op_type not in _ONNX_WEIGHTED or len(node.input) < 2:
            continue
        if node.input[1] not in init:
            continue
        weight = init[node.input[1]]
        if node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            weight = weight if trans_b else weight.T
        elif node.op_type == "MatMul":
            weight = weight.T
        bias = init.get(node.input[2]) if len(node.input) > 2 else None
        layers.append((node.input[1], weight, bias, norms.get(node.output[0])))
    return layers


def load_onnx_weights(
    net: FaceNet, path: Path | str, calibration: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    """Fill ``net`` with the weights of the exported model at ``path``.

    ``calibration`` yields (image, context) batches of real crops used to measure the
    statistics of folded BatchNorms. Raises ValueError when the graph does not match ``net``.
    """
    path = Path(path)
    ours = _layers_in_forward_order(net)
    theirs = _onnx_layers(path)
    if len(ours) != len(theirs):
        raise ValueError(f"{path}: {len(theirs)} weight layers, the network has {len(ours)}")
    folded: list[tuple[nn.Module, nn.BatchNorm2d, torch.Tensor]] = []
    with torch.no_grad():
        for (name, layer, bn), (onnx_name, weight, bias, norm) in zip(ours, theirs, strict=True):
            if tuple(layer.weight.shape) != weight.shape:
                ours_shape = tuple(layer.weight.shape)
                raise ValueError(
                    f"{path}: {onnx_name} has shape {weight.shape}, {name} {ours_shape}"
                )
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            if bn is None:
                if layer.bias is not None:
                    layer.bias.copy_(torch.from_numpy(bias) if bias is not None else 0.0)
                continue
            if norm is not None:  # not folded: the BatchNorm is its own node
                for key, value in zip(
                    ("weight", "bias", "running_mean", "running_var"), norm, strict=True
                ):
                    getattr(bn, key).copy_(torch.from_numpy(value))
                continue
            if bias is None:
                raise ValueError(f"{path}: {onnx_name} folds a BatchNorm but has no bias")
            folded.append((layer, bn, torch.from_numpy(bias)))
        # Folded pairs: make each BatchNorm pass its input through, then measure.
        for _, bn, _ in folded:
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.zero_()
        sums: dict[int, list[torch.Tensor]] = {id(layer): [] for layer, _, _ in folded}

        def record(layer: nn.Module, _inputs, output: torch.Tensor) -> None:
            dims = (0, 2, 3)
            sums[id(layer)].append(torch.stack([output.mean(dims), (output**2).mean(dims)]))

        hooks = [layer.register_forward_hook(record) for layer, _, _ in folded]
        net.eval()
        try:
            for image, context in calibration:
                _with_folded_bias(folded, net, image, context)
        finally:
            for hook in hooks:
                hook.remove()
        for layer, bn, bias in folded:
            stats = torch.stack(sums[id(layer)]).mean(0)
            mean, var = stats[0], (stats[1] - stats[0] ** 2).clamp_min(1e-6)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_((var + bn.eps).sqrt())
            bn.bias.copy_(mean + bias)


def _with_folded_bias(folded, net: FaceNet, image: torch.Tensor, context: torch.Tensor) -> None:
    """Run ``net`` with each folded BatchNorm adding the folded bias, so downstream layers
    see the ONNX activations while their own statistics are measured."""
    for _, bn, bias in folded:
        bn.bias.copy_(bias)
    try:
        net(image, context)
    finally:
        for _, bn, _ in folded:
            bn.bias.zero_()
