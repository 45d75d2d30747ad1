"""CIFAR-style teacher and student networks of the CRD distillation benchmark.

The layouts follow the CIFAR-100 benchmark of Tian, Krishnan & Isola, "Contrastive
Representation Distillation", ICLR 2020 (the "RepDistiller" code base); this module is
an independent re-implementation. Changes from the benchmark, all shape-preserving for
32x32 inputs:

* the final fixed ``AvgPool2d`` is replaced by adaptive average pooling, so any input
  size (e.g. 8x8 digits) works;
* the first convolution takes ``in_channels`` instead of a hard-wired 3;
* every model returns the pooled penultimate features along with the logits.

Architectures and credits
-------------------------
* ``resnet8x4``, ``resnet32x4`` -- CIFAR ResNet with basic blocks:
  He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
* ``wrn_40_2``, ``wrn_16_2`` -- wide ResNet with pre-activation blocks:
  Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016.
* ``mobilenetv2`` -- MobileNetV2 at width 0.5 (the benchmark's ``mobile_half``):
  Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2: Inverted Residuals and Linear
  Bottlenecks", CVPR 2018.
* ``shufflenetv2`` -- ShuffleNetV2 1x (the benchmark's ``ShuffleV2``):
  Ma, Zhang, Zheng & Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN
  Architecture Design", ECCV 2018.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._base import Backbone, check_positive_int, global_pool, init_weights

__all__ = [
    "BasicBlock",
    "CifarResNet",
    "WideBlock",
    "WideResNet",
    "InvertedResidual",
    "MobileNetV2",
    "ShuffleNetV2",
    "resnet8x4",
    "resnet32x4",
    "wrn_40_2",
    "wrn_16_2",
    "mobilenetv2",
    "shufflenetv2",
]


def _conv3x3(c_in: int, c_out: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    # No bias: every convolution here is followed by a batch norm, which has its own.
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, groups=groups, bias=False)


def _conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, stride=stride, padding=0, bias=False)


# ----------------------------------------------------------------------------------
# ResNet (He et al. 2016), CIFAR variant
# ----------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """Post-activation residual basic block: two 3x3 convolutions plus a shortcut.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    stride : int
        Stride of the first convolution (2 halves the spatial size).

    Notes
    -----
    Input ``(n, c_in, h, w)``, output ``(n, c_out, ceil(h / stride), ceil(w / stride))``.
    When the shape changes, the shortcut is a strided 1x1 convolution with batch norm
    (option B of He et al.), as in the benchmark.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(_conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _resnet_stage(c_in: int, c_out: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [BasicBlock(c_in, c_out, stride)]
    layers += [BasicBlock(c_out, c_out) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class CifarResNet(Backbone):
    """CIFAR ResNet: a 3x3 stem and three stages of basic blocks.

    Depth ``6 n + 2`` gives ``n`` blocks per stage; the second and third stages halve
    the resolution. The benchmark's "x4" models use widths ``(32, 64, 128, 256)``
    (stem, stage 1, 2, 3): stages four times as wide as the original ``(16, 32, 64)``,
    with a 32-channel stem.

    Parameters
    ----------
    depth : int
        Total depth, ``6 n + 2`` with ``n >= 1`` (8 -> 1 block per stage, 32 -> 5).
    widths : sequence of 4 int
        Channels of the stem and the three stages; ``feature_dim = widths[3]``.
    num_classes, in_channels, image_size, name
        See :class:`~pcoh.models._base.Backbone`.

    Notes
    -----
    Input ``(n, in_channels, h, w)``; features ``(n, widths[3])``; logits
    ``(n, num_classes)``.
    """

    def __init__(
        self,
        depth: int,
        widths: Sequence[int] = (32, 64, 128, 256),
        *,
        num_classes: int = 100,
        in_channels: int = 3,
        image_size: int = 32,
        name: str = "cifar_resnet",
    ) -> None:
        depth = check_positive_int(depth, "depth", 8)
        if (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6 n + 2 (8, 14, 20, 32, ...), got {depth}")
        widths = _check_widths(widths, 4)
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=widths[3])
        n = (depth - 2) // 6
        self.stem = nn.Sequential(
            _conv3x3(self.in_channels, widths[0]), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)
        )
        self.layer1 = _resnet_stage(widths[0], widths[1], n, stride=1)
        self.layer2 = _resnet_stage(widths[1], widths[2], n, stride=2)
        self.layer3 = _resnet_stage(widths[2], widths[3], n, stride=2)
        self.fc = nn.Linear(widths[3], self.num_classes)
        init_weights(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        out = self.layer3(self.layer2(self.layer1(out)))
        return global_pool(out)


# ----------------------------------------------------------------------------------
# Wide ResNet (Zagoruyko & Komodakis 2016)
# ----------------------------------------------------------------------------------
class WideBlock(nn.Module):
    """Pre-activation wide-ResNet block: BN-ReLU-conv3x3, BN-ReLU-(dropout)-conv3x3.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    stride : int
        Stride of the first convolution.
    dropout : float
        Dropout probability between the two convolutions (0 in the benchmark).

    Notes
    -----
    When the channel count or resolution changes, the shortcut is a 1x1 convolution
    applied to the *pre-activated* input (BN-ReLU of ``x``), as in the original code.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv3x3(c_out, c_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut = _conv1x1(c_in, c_out, stride) if (stride != 1 or c_in != c_out) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(act)
        out = self.conv1(act)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + skip


class WideResNet(Backbone):
    """Wide ResNet WRN-``depth``-``widen``.

    Stem 3x3 conv to 16 channels, three stages of ``(depth - 4) / 6`` pre-activation
    blocks with ``16 k, 32 k, 64 k`` channels (the last two halve the resolution),
    then a final BN-ReLU (pre-activation blocks leave their output un-normalised).

    Parameters
    ----------
    depth : int
        ``6 n + 4`` with ``n >= 1`` (16 -> 2 blocks per stage, 40 -> 6).
    widen : int
        Widening factor ``k``; ``feature_dim = 64 k``.
    dropout : float
        Dropout inside the blocks (0, as in the benchmark).
    num_classes, in_channels, image_size, name
        See :class:`~pcoh.models._base.Backbone`.

    Notes
    -----
    Input ``(n, in_channels, h, w)``; features ``(n, 64 k)``; logits ``(n, num_classes)``.
    """

    def __init__(
        self,
        depth: int,
        widen: int,
        dropout: float = 0.0,
        *,
        num_classes: int = 100,
        in_channels: int = 3,
        image_size: int = 32,
        name: str = "wide_resnet",
    ) -> None:
        depth = check_positive_int(depth, "depth", 10)
        if (depth - 4) % 6 != 0:
            raise ValueError(f"depth must be 6 n + 4 (10, 16, 22, 28, 40, ...), got {depth}")
        widen = check_positive_int(widen, "widen", 1)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        channels = [16, 16 * widen, 32 * widen, 64 * widen]
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=channels[3])
        n = (depth - 4) // 6
        self.stem = _conv3x3(self.in_channels, channels[0])
        stages = []
        for i, stride in enumerate((1, 2, 2)):
            blocks = [WideBlock(channels[i], channels[i + 1], stride, dropout)]
            blocks += [
                WideBlock(channels[i + 1], channels[i + 1], 1, dropout) for _ in range(n - 1)
            ]
            stages.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = stages
        self.bn = nn.BatchNorm2d(channels[3])
        self.fc = nn.Linear(channels[3], self.num_classes)
        init_weights(self)
        # The benchmark zeroes the classifier bias of its WRNs.
        nn.init.zeros_(self.fc.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.stem(x))))
        return global_pool(F.relu(self.bn(out)))


# ----------------------------------------------------------------------------------
# MobileNetV2 (Sandler et al. 2018)
# ----------------------------------------------------------------------------------
def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 inverted residual: 1x1 expand, 3x3 depthwise, linear 1x1 project.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    stride : int
        Stride of the depthwise convolution.
    expand : int
        Expansion ratio ``t``.

    Notes
    -----
    Unlike the ImageNet reference, the benchmark keeps the 1x1 expansion convolution
    even when ``t = 1``; this block does the same so parameter counts match. The
    projection has no ReLU (the "linear bottleneck"), and the identity shortcut is
    used only when the shape is unchanged.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.use_residual = stride == 1 and c_in == c_out
        self.conv = nn.Sequential(
            _conv_bn_relu(c_in, hidden, 1),
            _conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(Backbone):
    """MobileNetV2 for 32x32 inputs with a width multiplier.

    Stem 3x3 stride-2 conv, seventeen inverted residual blocks in the standard
    ``(t, c, n, s)`` layout (strides 1, 1, 2, 2, 1, 2, 1 per group, so 32x32 inputs
    end at 2x2 and 8x8 inputs at 1x1), a 1x1 conv to 1280 channels, global pooling.

    Parameters
    ----------
    width : float
        Width multiplier for the blocks (0.5 for the benchmark's ``mobile_half``). The
        final 1x1 convolution stays at 1280 channels for ``width <= 1``, as in the
        benchmark, so ``feature_dim = 1280``.
    expand : int
        Expansion ratio ``T`` of all but the first group (6).
    num_classes, in_channels, image_size, name
        See :class:`~pcoh.models._base.Backbone`.

    Notes
    -----
    Input ``(n, in_channels, h, w)``; features ``(n, 1280)``; logits ``(n, num_classes)``.
    """

    # (expansion t, channels c, repeats n, first stride s); t = None -> use `expand`.
    SETTINGS = (
        (1, 16, 1, 1),
        (None, 24, 2, 1),
        (None, 32, 3, 2),
        (None, 64, 4, 2),
        (None, 96, 3, 1),
        (None, 160, 3, 2),
        (None, 320, 1, 1),
    )

    def __init__(
        self,
        width: float = 0.5,
        expand: int = 6,
        *,
        num_classes: int = 100,
        in_channels: int = 3,
        image_size: int = 32,
        name: str = "mobilenetv2",
    ) -> None:
        if not float(width) > 0:
            raise ValueError(f"width must be > 0, got {width!r}")
        expand = check_positive_int(expand, "expand", 1)
        last = _make_divisible(1280 * width) if width > 1.0 else 1280
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=last)
        c = int(32 * width)
        self.stem = _conv_bn_relu(self.in_channels, c, 3, stride=2)
        blocks = []
        for t, channels, repeats, stride in self.SETTINGS:
            c_out = int(channels * width)
            for i in range(repeats):
                blocks.append(InvertedResidual(c, c_out, stride if i == 0 else 1, t or expand))
                c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = _conv_bn_relu(c, last, 1)
        self.fc = nn.Linear(last, self.num_classes)
        init_weights(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return global_pool(self.head(self.blocks(self.stem(x))))


def _make_divisible(value: float, divisor: int = 8) -> int:
    # Round channel counts to multiples of 8 (hardware-friendly), never dropping >10%.
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


# ----------------------------------------------------------------------------------
# ShuffleNetV2 (Ma et al. 2018)
# ----------------------------------------------------------------------------------
def _channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    # Interleave the channels of the two branches so information crosses between them
    # in the next block (which splits the channels again).
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 basic unit (stride 1): split channels in half, transform one half.

    The transformed half goes through 1x1 conv-BN-ReLU, 3x3 depthwise conv-BN,
    1x1 conv-BN-ReLU; the halves are concatenated and shuffled. Shape is preserved.

    Parameters
    ----------
    channels : int
        Input and output channels (even).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.branch = nn.Sequential(
            _conv1x1(half, half),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            _conv3x3(half, half, groups=half),
            nn.BatchNorm2d(half),
            _conv1x1(half, half),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[1] // 2
        kept, transformed = x[:, :half], x[:, half:]
        return _channel_shuffle(torch.cat([kept, self.branch(transformed)], 1))


class ShuffleDown(nn.Module):
    """ShuffleNetV2 down-sampling unit: two stride-2 branches, concatenated, shuffled.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels; each branch produces ``c_out // 2``.

    Notes
    -----
    Input ``(n, c_in, h, w)``, output ``(n, c_out, ceil(h / 2), ceil(w / 2))``.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_out // 2
        self.left = nn.Sequential(
            _conv3x3(c_in, c_in, stride=2, groups=c_in),
            nn.BatchNorm2d(c_in),
            _conv1x1(c_in, mid),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
        )
        self.right = nn.Sequential(
            _conv1x1(c_in, mid),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            _conv3x3(mid, mid, stride=2, groups=mid),
            nn.BatchNorm2d(mid),
            _conv1x1(mid, mid),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _channel_shuffle(torch.cat([self.left(x), self.right(x)], 1))


class ShuffleNetV2(Backbone):
    """ShuffleNetV2 for 32x32 inputs, as in the benchmark's ``ShuffleV2`` (size 1x).

    A 1x1 stem to 24 channels (no stride or max-pool: CIFAR images are small), three
    stages each opening with a stride-2 down-sampling unit followed by ``blocks[i]``
    basic units, then a 1x1 conv-BN-ReLU to ``channels[3]`` and global pooling.

    Parameters
    ----------
    channels : sequence of 4 int
        Stage widths and the final width; ``feature_dim = channels[3]``.
        Default ``(116, 232, 464, 1024)`` (the 1x model).
    blocks : sequence of 3 int
        Basic units per stage after the down-sampling unit. Default ``(3, 7, 3)``.
    num_classes, in_channels, image_size, name
        See :class:`~pcoh.models._base.Backbone`.

    Notes
    -----
    Input ``(n, in_channels, h, w)``; features ``(n, channels[3])``; logits
    ``(n, num_classes)``.
    """

    def __init__(
        self,
        channels: Sequence[int] = (116, 232, 464, 1024),
        blocks: Sequence[int] = (3, 7, 3),
        *,
        num_classes: int = 100,
        in_channels: int = 3,
        image_size: int = 32,
        name: str = "shufflenetv2",
    ) -> None:
        channels = _check_widths(channels, 4, "channels")
        if any(c % 2 for c in channels[:3]):
            raise ValueError(f"channels[:3] must be even (split in halves), got {channels}")
        blocks = [check_positive_int(b, "blocks", 0) for b in _check_len(blocks, 3, "blocks")]
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=channels[3])
        self.stem = nn.Sequential(
            _conv1x1(self.in_channels, 24), nn.BatchNorm2d(24), nn.ReLU(inplace=True)
        )
        stages, c = [], 24
        for c_out, repeats in zip(channels[:3], blocks):
            units = [ShuffleUnit(c_out) for _ in range(repeats)]
            stages.append(nn.Sequential(ShuffleDown(c, c_out), *units))
            c = c_out
        self.layer1, self.layer2, self.layer3 = stages
        self.head = nn.Sequential(
            _conv1x1(c, channels[3]), nn.BatchNorm2d(channels[3]), nn.ReLU(inplace=True)
        )
        self.fc = nn.Linear(channels[3], self.num_classes)
        init_weights(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return global_pool(self.head(out))


# ----------------------------------------------------------------------------------
# Helpers and registry builders
# ----------------------------------------------------------------------------------
def _check_len(values, length: int, argument: str) -> list:
    values = list(values)
    if len(values) != length:
        raise ValueError(f"{argument} must have {length} entries, got {values}")
    return values


def _check_widths(values, length: int, argument: str = "widths") -> list[int]:
    return [check_positive_int(v, argument, 1) for v in _check_len(values, length, argument)]


def resnet8x4(num_classes=10, in_channels=3, image_size=32, **kwargs) -> CifarResNet:
    """ResNet-8x4: one basic block per stage, widths (32, 64, 128, 256); feature_dim 256."""
    return CifarResNet(8, num_classes=num_classes, in_channels=in_channels,
                       image_size=image_size, name="resnet8x4", **kwargs)


def resnet32x4(num_classes=10, in_channels=3, image_size=32, **kwargs) -> CifarResNet:
    """ResNet-32x4: five basic blocks per stage, widths (32, 64, 128, 256); feature_dim 256."""
    return CifarResNet(32, num_classes=num_classes, in_channels=in_channels,
                       image_size=image_size, name="resnet32x4", **kwargs)


def wrn_40_2(num_classes=10, in_channels=3, image_size=32, **kwargs) -> WideResNet:
    """WRN-40-2: six pre-activation blocks per stage, widths (32, 64, 128); feature_dim 128."""
    return WideResNet(40, 2, num_classes=num_classes, in_channels=in_channels,
                      image_size=image_size, name="wrn_40_2", **kwargs)


def wrn_16_2(num_classes=10, in_channels=3, image_size=32, **kwargs) -> WideResNet:
    """WRN-16-2: two pre-activation blocks per stage, widths (32, 64, 128); feature_dim 128."""
    return WideResNet(16, 2, num_classes=num_classes, in_channels=in_channels,
                      image_size=image_size, name="wrn_16_2", **kwargs)


def mobilenetv2(num_classes=10, in_channels=3, image_size=32, **kwargs) -> MobileNetV2:
    """MobileNetV2 at width 0.5 (the benchmark's ``mobile_half``); feature_dim 1280."""
    kwargs.setdefault("width", 0.5)
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels,
                       image_size=image_size, name="mobilenetv2", **kwargs)


def shufflenetv2(num_classes=10, in_channels=3, image_size=32, **kwargs) -> ShuffleNetV2:
    """ShuffleNetV2 1x (the benchmark's ``ShuffleV2``); feature_dim 1024."""
    return ShuffleNetV2(num_classes=num_classes, in_channels=in_channels,
                        image_size=image_size, name="shufflenetv2", **kwargs)
