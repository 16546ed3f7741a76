"""FaceNet: the multitask face network (parsing, occlusion, 68 landmarks, head rotation).

A MobileNetV2-style encoder (inverted residuals, width multiplier) feeds a U-Net decoder
with skip connections and pixel-shuffle upsampling. Parsing and occlusion come out at the
full 256 px crop resolution: lips are only a few pixels thick, so the last stage is a cheap
depthwise-separable refinement that sees the raw image and context again at full res.
Landmarks are 64x64 heatmaps decoded in-graph (softmax barycentre) and the rotation is a
6D regression from pooled bottleneck features, orthonormalised by Gram-Schmidt.

I/O follows docs/face-model.md; ``FaceNet.forward`` returns raw logits for the losses and
``ExportModel`` wraps it into the contract's probabilities and names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..faceparts import PARSING_CLASSES

NUM_CLASSES = len(PARSING_CLASSES)
NUM_LANDMARKS = 68
CROP = 256
HEATMAP = 64
HEATMAP_STRIDE = CROP // HEATMAP
IMAGE_MEAN = (0.5, 0.45, 0.4)
IMAGE_STD = (0.25, 0.25, 0.25)


def _ch(c: float, width: float) -> int:
    """Channel count scaled by the width multiplier, rounded to a multiple of 8 (SIMD lanes)."""
    return max(8, int(c * width + 4) // 8 * 8)


class ConvBN(nn.Sequential):
    """Conv + BatchNorm (+ ReLU); BN folds into the conv at export, ReLU fuses in ORT."""

    def __init__(
        self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, linear 1x1 project (+ residual)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBN(cin, hidden, 1))
        layers += [
            ConvBN(hidden, hidden, 3, stride, groups=hidden),
            ConvBN(hidden, cout, 1, act=False),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class SepConv(nn.Sequential):
    """Depthwise 3x3 + pointwise 1x1: the decoder's cheap spatial mixing."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(ConvBN(cin, cin, 3, groups=cin), ConvBN(cin, cout, 1))


class UpConv(nn.Sequential):
    """x2 learnable upsampling: 2x2 stride-2 transposed conv + BN + ReLU.

    Measured in ONNX Runtime CPU: 5x faster than 1x1 conv + pixel shuffle (DepthToSpace is
    a slow strided copy there) and as expressive (each output pixel of a 2x2 cell has its
    own weights).
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.ConvTranspose2d(cin, cout, 2, 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Decoder stage: x2 upsampling, then fuse the encoder skip by concatenation."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.up = UpConv(cin, cout)
        self.fuse = SepConv(cout + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.up(x), skip], 1))


@dataclass(frozen=True)
class FaceNetConfig:
    """Architecture knobs; saved in checkpoints so export rebuilds the same network."""

    width: float = 1.0
    expand: int = 6
    full_res: int = 16


def heatmap_coordinates(size: int = HEATMAP, stride: int = HEATMAP_STRIDE) -> torch.Tensor:
    """Crop-pixel coordinate of each heatmap cell's centre.

    Crop pixels have integer centres (cv2 convention), so cell j spans crop pixels
    [stride*j, stride*j + stride - 1] and its centre is stride*j + (stride - 1)/2. Mirroring
    maps cell j to size-1-j, i.e. x to (CROP - 1) - x: exactly the mirrored crop coordinate.
    """
    return torch.arange(size, dtype=torch.float32) * stride + (stride - 1) / 2


def decode_heatmaps(logits: torch.Tensor) -> torch.Tensor:
    """[N, K, H, W] heatmap logits -> [N, K, 2] crop-pixel (x, y) by softmax barycentre."""
    n, k, h, w = logits.shape
    prob = torch.softmax(logits.reshape(n, k, h * w), dim=-1).reshape(n, k, h, w)
    coords = heatmap_coordinates(h).to(logits.device, logits.dtype)
    x = (prob.sum(2) * coords).sum(-1)
    y = (prob.sum(3) * coords).sum(-1)
    return torch.stack([x, y], -1)


def gram_schmidt(six: torch.Tensor) -> torch.Tensor:
    """[N, 6] -> [N, 3, 3] rotation (Zhou et al. 2019): continuous, always det +1.

    The two predicted vectors become the matrix's first two columns; the third is their
    cross product.
    """
    a, b = six[:, :3], six[:, 3:]
    x = F.normalize(a, dim=1, eps=1e-6)
    b = b - (x * b).sum(1, keepdim=True) * x
    y = F.normalize(b, dim=1, eps=1e-6)
    z = torch.cross(x, y, dim=1)
    return torch.stack([x, y, z], dim=2)


class FaceNet(nn.Module):
    """The multitask network. ``forward(image, context)`` returns raw training outputs:

    parsing [N,10,256,256] logits, occlusion [N,1,256,256] logits, heatmaps [N,68,64,64]
    logits, landmarks [N,68,2] crop px, rotation [N,3,3].
    """

    def __init__(self, config: FaceNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or FaceNetConfig()
        w, t = cfg.width, cfg.expand
        c128, c64, c32, c16, c16b, c8 = (_ch(c, w) for c in (16, 24, 32, 64, 96, 160))
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)

        # Encoder (strides 2, 4, 8, 16, 32).
        self.stem = nn.Sequential(ConvBN(7, c128, 3, 2), InvertedResidual(c128, c128, 1, 1))
        self.enc64 = nn.Sequential(
            InvertedResidual(c128, c64, 2, t), InvertedResidual(c64, c64, 1, t)
        )
        self.enc32 = nn.Sequential(
            InvertedResidual(c64, c32, 2, t),
            InvertedResidual(c32, c32, 1, t),
            InvertedResidual(c32, c32, 1, t),
        )
        self.enc16 = nn.Sequential(
            InvertedResidual(c32, c16, 2, t),
            InvertedResidual(c16, c16, 1, t),
            InvertedResidual(c16, c16, 1, t),
            InvertedResidual(c16, c16b, 1, t),
            InvertedResidual(c16b, c16b, 1, t),
        )
        self.enc8 = nn.Sequential(
            InvertedResidual(c16b, c8, 2, t),
            InvertedResidual(c8, c8, 1, t),
            InvertedResidual(c8, c8, 1, t),
        )

        # Decoder.
        d16, d32, d64, d128 = _ch(96, w), _ch(64, w), _ch(48, w), _ch(24, w)
        self.up16 = Up(c8, c16b, d16)
        self.up32 = Up(d16, c32, d32)
        self.up64 = Up(d32, c64, d64)
        self.up128 = Up(d64, c128, d128)

        # Landmark heatmaps at 64x64 (stride 4).
        self.heatmap = nn.Sequential(SepConv(d64, d64), nn.Conv2d(d64, NUM_LANDMARKS, 1))

        # Full-resolution refinement: upsampled decoder features + raw image/context. The
        # 1x1 first keeps every full-res depthwise conv at a multiple of 8 channels (ORT's
        # blocked NCHWc kernels; 23 channels ran 1.5x slower than 24).
        fr = cfg.full_res
        self.to_full = UpConv(d128, fr)
        self.refine = nn.Sequential(ConvBN(fr + 7, fr, 1), SepConv(fr, fr), SepConv(fr, fr))
        self.dense_out = nn.Conv2d(fr, NUM_CLASSES + 1, 1)

        # Rotation: 6D from globally pooled bottleneck features.
        self.pose = nn.Sequential(nn.Linear(c8, 128), nn.ReLU(inplace=True), nn.Linear(128, 6))
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # Start the pose at identity (a frontal face) so early geodesic gradients are sane.
        last = self.pose[-1]
        assert isinstance(last, nn.Linear)
        nn.init.normal_(last.weight, std=1e-3)
        with torch.no_grad():
            last.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def forward(self, image: torch.Tensor, context: torch.Tensor) -> dict[str, torch.Tensor]:
        x0 = torch.cat([(image - self.mean) / self.std, context], 1)
        s128 = self.stem(x0)
        s64 = self.enc64(s128)
        s32 = self.enc32(s64)
        s16 = self.enc16(s32)
        s8 = self.enc8(s16)

        u16 = self.up16(s8, s16)
        u32 = self.up32(u16, s32)
        u64 = self.up64(u32, s64)
        u128 = self.up128(u64, s128)

        heatmaps = self.heatmap(u64).float()
        full = self.refine(torch.cat([self.to_full(u128), x0], 1))
        dense = self.dense_out(full).float()
        six = self.pose(s8.mean((2, 3))).float()
        # Under bf16 autocast (training) the decoding stays in float32: a barycentre in bf16
        # keeps about 3 significant digits, a pixel's error at 256 px.
        with torch.autocast(x0.device.type, enabled=False):
            landmarks = decode_heatmaps(heatmaps)
            rotation = gram_schmidt(six)
        return {
            "parsing": dense[:, :NUM_CLASSES],
            "occlusion": dense[:, NUM_CLASSES:],
            "heatmaps": heatmaps,
            "landmarks": landmarks,
            "rotation": rotation,
        }


def softmax_channels(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 spelled out: ORT's Softmax on axis 1 of NCHW transposes
    internally and took 6 ms at 10x256x256; this form takes 0.6 ms."""
    e = torch.exp(logits - logits.max(1, keepdim=True)[0])
    return e / e.sum(1, keepdim=True)


class ExportModel(nn.Module):
    """FaceNet with the contract's outputs: probabilities, decoded landmarks, rotation."""

    OUTPUTS = ("parsing", "occlusion", "landmarks", "rotation")

    def __init__(self, net: FaceNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, image: torch.Tensor, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.net(image, context)
        return (
            softmax_channels(out["parsing"]),
            torch.sigmoid(out["occlusion"]),
            out["landmarks"],
            out["rotation"],
        )


def build(config: FaceNetConfig | dict | None = None) -> FaceNet:
    """FaceNet from a config or the dict stored in a checkpoint."""
    if isinstance(config, dict):
        config = FaceNetConfig(**config)
    return FaceNet(config)


def config_dict(net: FaceNet) -> dict:
    return asdict(net.config)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
