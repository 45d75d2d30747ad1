"""CIFAR-style teacher and student networks of the CRD distillation benchmark.

The layouts follow the CIFAR-100 benchmark of Tian, Krishnan & Isola, "Contrastive
Representation Distillation", ICLR 2020 (the "RepDistiller" code base); this module is
an independent re-implementation whose modules carry the benchmark's names, so that the
benchmark's published checkpoints (``ckpt_epoch_240.pth``, a dict whose ``'model'`` entry
is the state dict) load as they are (:func:`pcoh.models.load_benchmark_state`). Changes
from the benchmark, all shape- and name-preserving for 32x32 inputs:

* the final fixed ``AvgPool2d`` is replaced by adaptive average pooling, so any input
  size (e.g. 8x8 digits) works;
* the first convolution takes ``in_channels`` instead of a hard-wired 3;
* every model returns the pooled penultimate features along with the logits
  (:class:`~pcoh.models.ModelOutput`; the features are the benchmark's ``feat[-1]``). The
  classifier keeps the benchmark's name (``fc``, ``linear``, ``classifier`` or
  ``classifier.0``); ``model.fc`` always reaches it.

Architectures and credits
-------------------------
* ``resnet8x4``, ``resnet32x4``, ``resnet20``, ``resnet56`` -- CIFAR ResNet with basic
  blocks: He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
* ``resnet50`` -- ResNet-50 with bottleneck blocks and a 3x3 stem for 32x32 inputs (the
  benchmark's ``ResNet50``), same paper.
* ``wrn_40_2``, ``wrn_16_2`` -- wide ResNet with pre-activation blocks:
  Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016.
* ``vgg13``, ``vgg8`` -- VGG with batch norm and one linear classifier: Simonyan &
  Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR
  2015.
* ``mobilenetv2`` -- MobileNetV2 at width 0.5 (the benchmark's ``mobile_half``):
  Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2: Inverted Residuals and Linear
  Bottlenecks", CVPR 2018.
* ``shufflenetv1`` -- ShuffleNet with 3 groups (the benchmark's ``ShuffleV1``): Zhang,
  Zhou, Lin & Sun, "ShuffleNet: An Extremely Efficient Convolutional Neural Network for
  Mobile Devices", CVPR 2018.
* ``shufflenetv2`` -- ShuffleNetV2 1x (the benchmark's ``ShuffleV2``):
  Ma, Zhang, Zheng & Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN
  Architecture Design", ECCV 2018.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_count, check_float
from ._base import (
    BasicBlock, Backbone, check_len, check_sizes, check_widths, conv1x1, conv3x3, global_pool,
    init_weights,
)

__all__ = [
    "BasicBlock",
    "CifarResNet",
    "Bottleneck",
    "BottleneckResNet",
    "WideBlock",
    "WideResNet",
    "VGG",
    "InvertedResidual",
    "MobileNetV2",
    "ShuffleV1Unit",
    "ShuffleNetV1",
    "ShuffleNetV2",
    "resnet8x4",
    "resnet32x4",
    "resnet20",
    "resnet56",
    "resnet50",
    "wrn_40_2",
    "wrn_16_2",
    "vgg13",
    "vgg8",
    "mobilenetv2",
    "shufflenetv1",
    "shufflenetv2",
]


# ----------------------------------------------------------------------------------
# ResNet (He et al. 2016), CIFAR variant
# ----------------------------------------------------------------------------------
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
        depth = check_count(depth, "depth", 8)
        if (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6 n + 2 (8, 14, 20, 32, ...), got {depth}")
        widths = check_widths(widths, 4)
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=widths[3])
        n = (depth - 2) // 6
        self.conv1 = conv3x3(self.in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.layer1 = _resnet_stage(widths[0], widths[1], n, stride=1)
        self.layer2 = _resnet_stage(widths[1], widths[2], n, stride=2)
        self.layer3 = _resnet_stage(widths[2], widths[3], n, stride=2)
        self.fc = nn.Linear(widths[3], self.num_classes)
        init_weights(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return global_pool(out)


# ----------------------------------------------------------------------------------
# ResNet-50 for 32x32 inputs (the benchmark's ``ResNet50``)
# ----------------------------------------------------------------------------------
class Bottleneck(nn.Module):
    """Bottleneck block: 1x1 reduce, 3x3 (strided), 1x1 expand to ``4 * planes``.

    Parameters
    ----------
    c_in : int
        Input channels.
    planes : int
        Width of the 3x3 convolution; the block outputs ``4 * planes`` channels.
    stride : int
        Stride of the 3x3 convolution.

    Notes
    -----
    Post-activation (ReLU after the sum). The shortcut ``shortcut`` is a strided 1x1
    convolution with batch norm when the shape changes, the identity otherwise.
    """

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        c_in, planes, stride = check_sizes(c_in=c_in, planes=planes, stride=stride)
        c_out = self.expansion * planes
        self.conv1 = conv1x1(c_in, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, c_out)
        self.bn3 = nn.BatchNorm2d(c_out)
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class BottleneckResNet(Backbone):
    """ResNet with bottleneck blocks and a 3x3 stride-1 stem (no max-pool) for small images.

    Four stages of ``blocks[i]`` bottleneck blocks of widths 64, 128, 256, 512 (outputs four
    times wider); stages 2-4 halve the resolution.

    Parameters
    ----------
    blocks : sequence of 4 int
        Blocks per stage; ``(3, 4, 6, 3)`` is ResNet-50.
    num_classes, in_channels, image_size, name
        See :class:`~pcoh.models._base.Backbone`.

    Notes
    -----
    Input ``(n, in_channels, h, w)``; features ``(n, 2048)``; logits ``(n, num_classes)``
    from the classifier ``linear`` (the benchmark's name; ``fc`` is the same module).
    """

    def __init__(
        self,
        blocks: Sequence[int] = (3, 4, 6, 3),
        *,
        num_classes: int = 100,
        in_channels: int = 3,
        image_size: int = 32,
        name: str = "resnet50",
    ) -> None:
        blocks = [check_count(b, "blocks", 1) for b in check_len(blocks, 4, "blocks")]
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=512 * Bottleneck.expansion)
        self.conv1 = conv3x3(self.in_channels, 64)
        self.bn1 = nn.BatchNorm2d(64)
        c = 64
        for i, (planes, repeats) in enumerate(zip((64, 128, 256, 512), blocks)):
            stage = []
            for j in range(repeats):
                stage.append(Bottleneck(c, planes, (1 if i == 0 else 2) if j == 0 else 1))
                c = planes * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.linear = nn.Linear(c, self.num_classes)
        init_weights(self)

    @property
    def fc(self) -> nn.Linear:
        return self.linear

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
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
    When the channel count or resolution changes, the shortcut ``convShortcut`` (the
    benchmark's name) is a 1x1 convolution applied to the *pre-activated* input (BN-ReLU
    of ``x``), as in the original code; otherwise it is ``None`` and ``x`` is added as is.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        c_in, c_out, stride = check_sizes(c_in=c_in, c_out=c_out, stride=stride)
        dropout = _check_dropout(dropout)
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.convShortcut = conv1x1(c_in, c_out, stride) if (stride != 1 or c_in != c_out) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn1(x))
        skip = x if self.convShortcut is None else self.convShortcut(act)
        out = self.conv1(act)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + skip


def _check_dropout(dropout) -> float:
    dropout = check_float(dropout, "dropout", minimum=0.0)
    if not dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    return dropout


class _WideStage(nn.Module):
    """A stage of wide blocks, kept under ``layer`` as the benchmark's ``NetworkBlock``."""

    def __init__(self, blocks: list) -> None:
        super().__init__()
        self.layer = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


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
        depth = check_count(depth, "depth", 10)
        if (depth - 4) % 6 != 0:
            raise ValueError(f"depth must be 6 n + 4 (10, 16, 22, 28, 40, ...), got {depth}")
        widen = check_count(widen, "widen", 1)
        dropout = _check_dropout(dropout)
        channels = [16, 16 * widen, 32 * widen, 64 * widen]
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=channels[3])
        n = (depth - 4) // 6
        self.conv1 = conv3x3(self.in_channels, channels[0])
        stages = []
        for i, stride in enumerate((1, 2, 2)):
            blocks = [WideBlock(channels[i], channels[i + 1], stride, dropout)]
            blocks += [
                WideBlock(channels[i + 1], channels[i + 1], 1, dropout) for _ in range(n - 1)
            ]
            stages.append(_WideStage(blocks))
        self.block1, self.block2, self.block3 = stages
        self.bn1 = nn.BatchNorm2d(channels[3])
        self.fc = nn.Linear(channels[3], self.num_classes)
        init_weights(self)
        # The benchmark zeroes the classifier bias of its WRNs.
        nn.init.zeros_(self.fc.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        return global_pool(F.relu(self.bn1(out)))


# ----------------------------------------------------------------------------------
# VGG with batch norm (Simonyan & Zisserman 2015), the benchmark's CIFAR variant
# ----------------------------------------------------------------------------------
class VGG(Backbone):
    """VGG with batch norm: five blocks of 3x3 convolutions, one linear classifier.

    Block ``i`` (``block0`` .. ``block4``) is conv-BN-ReLU repeated, without the last ReLU
    (applied after the block, as in the benchmark). Max-pooling (2x2) follows blocks 0, 1
    and 2, and block 3 when the input is 64 pixels high (the benchmark's rule); adaptive
    average pooling follows block 4.

    Parameters
    ----------
    config : sequence of 5 sequences of int
        Channels of each block's convolutions; ``feature_dim = config[4][-1]`` (512 in
        the benchmark's models).
    num_classes, in_channels, image_size, name
        See :class:`~pcoh.models._base.Backbone`.

    Notes
    -----
    Convolutions have biases (as in the benchmark). The classifier is ``classifier`` (the
    benchmark's name; ``fc`` is the same module), initialised N(0, 0.01) with zero bias as
    in the benchmark. Input ``(n, in_channels, h, w)``; features ``(n, config[4][-1])``.
    """

    #: The benchmark's configurations: vgg8 is "S", vgg13 is "B".
    CONFIGS = {
        "vgg8": ((64,), (128,), (256,), (512,), (512,)),
        "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    }

    def __init__(
        self,
        config: Sequence[Sequence[int]],
        *,
        num_classes: int = 100,
        in_channels: int = 3,
        image_size: int = 32,
        name: str = "vgg",
    ) -> None:
        config = [list(block) for block in check_len(config, 5, "config")]
        if any(not block for block in config):
            raise ValueError(f"every block of config needs at least one width, got {config}")
        config = [check_widths(block, len(block), "config") for block in config]
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=config[4][-1])
        c = self.in_channels
        for i, widths in enumerate(config):
            layers = []
            for width in widths:
                layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                c = width
            setattr(self, f"block{i}", nn.Sequential(*layers[:-1]))
        self.classifier = nn.Linear(c, self.num_classes)
        init_weights(self)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        nn.init.zeros_(self.classifier.bias)

    @property
    def fc(self) -> nn.Linear:
        return self.classifier

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        tall = x.shape[2] == 64
        out = x
        for i in range(5):
            out = F.relu(getattr(self, f"block{i}")(out))
            if i < 3 or (i == 3 and tall):
                out = F.max_pool2d(out, 2)
        return global_pool(out)


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
        c_in, c_out, stride, expand = check_sizes(c_in=c_in, c_out=c_out, stride=stride, expand=expand)
        hidden = c_in * expand
        self.use_residual = stride == 1 and c_in == c_out
        # One flat Sequential (conv.0 .. conv.7), as the benchmark names it.
        self.conv = nn.Sequential(
            *_conv_bn_relu(c_in, hidden, 1),
            *_conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
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
    Modules as the benchmark names them: ``conv1`` (stem), ``blocks[g][i]`` (block ``i``
    of group ``g``), ``conv2`` (the 1x1 head), ``classifier[0]`` (``fc`` is the same).
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
        width = check_float(width, "width", minimum=0.0, strict=True)
        expand = check_count(expand, "expand", 1)
        last = _make_divisible(1280 * width) if width > 1.0 else 1280
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=last)
        c = int(32 * width)
        self.conv1 = _conv_bn_relu(self.in_channels, c, 3, stride=2)
        self.blocks = nn.ModuleList()
        for t, channels, repeats, stride in self.SETTINGS:
            c_out = int(channels * width)
            group = []
            for i in range(repeats):
                group.append(InvertedResidual(c, c_out, stride if i == 0 else 1, t or expand))
                c = c_out
            self.blocks.append(nn.Sequential(*group))
        self.conv2 = _conv_bn_relu(c, last, 1)
        self.classifier = nn.Sequential(nn.Linear(last, self.num_classes))
        init_weights(self)

    @property
    def fc(self) -> nn.Linear:
        return self.classifier[0]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        for group in self.blocks:
            out = group(out)
        return global_pool(self.conv2(out))


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

    The second half goes through 1x1 conv-BN-ReLU (``conv1``, ``bn1``), 3x3 depthwise
    conv-BN (``conv2``, ``bn2``), 1x1 conv-BN-ReLU (``conv3``, ``bn3``); the halves are
    concatenated and shuffled. Shape is preserved.

    Parameters
    ----------
    channels : int
        Input and output channels (even).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv1 = conv1x1(half, half)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = conv3x3(half, half, groups=half)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = conv1x1(half, half)
        self.bn3 = nn.BatchNorm2d(half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[1] // 2
        kept, transformed = x[:, :half], x[:, half:]
        out = F.relu(self.bn1(self.conv1(transformed)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return _channel_shuffle(torch.cat([kept, out], 1))


class ShuffleDown(nn.Module):
    """ShuffleNetV2 down-sampling unit: two stride-2 branches, concatenated, shuffled.

    Left branch: 3x3 depthwise stride-2 conv-BN (``conv1``, ``bn1``), 1x1 conv-BN-ReLU
    (``conv2``, ``bn2``). Right branch: 1x1 conv-BN-ReLU (``conv3``, ``bn3``), 3x3
    depthwise stride-2 conv-BN (``conv4``, ``bn4``), 1x1 conv-BN-ReLU (``conv5``, ``bn5``).

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
        self.conv1 = conv3x3(c_in, c_in, stride=2, groups=c_in)
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv2 = conv1x1(c_in, mid)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = conv1x1(c_in, mid)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = conv3x3(mid, mid, stride=2, groups=mid)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = conv1x1(mid, mid)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return _channel_shuffle(torch.cat([left, right], 1))


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
        channels = check_widths(channels, 4, "channels")
        if any(c % 2 for c in channels[:3]):
            raise ValueError(f"channels[:3] must be even (split in halves), got {channels}")
        blocks = [check_count(b, "blocks", 0) for b in check_len(blocks, 3, "blocks")]
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=channels[3])
        self.conv1 = conv1x1(self.in_channels, 24)
        self.bn1 = nn.BatchNorm2d(24)
        stages, c = [], 24
        for c_out, repeats in zip(channels[:3], blocks):
            units = [ShuffleUnit(c_out) for _ in range(repeats)]
            stages.append(nn.Sequential(ShuffleDown(c, c_out), *units))
            c = c_out
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = conv1x1(c, channels[3])
        self.bn2 = nn.BatchNorm2d(channels[3])
        self.linear = nn.Linear(channels[3], self.num_classes)
        init_weights(self)

    @property
    def fc(self) -> nn.Linear:
        return self.linear

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return global_pool(F.relu(self.bn2(self.conv2(out))))


# ----------------------------------------------------------------------------------
# ShuffleNet V1 (Zhang et al. 2018), the benchmark's ``ShuffleV1``
# ----------------------------------------------------------------------------------
class ShuffleV1Unit(nn.Module):
    """ShuffleNet unit: grouped 1x1, channel shuffle, 3x3 depthwise, grouped 1x1.

    Parameters
    ----------
    c_in : int
        Input channels.
    c_out : int
        Channels of the residual branch (``conv3``'s output); with ``stride=2`` the unit
        outputs ``c_out + c_in`` (the branch concatenated with the average-pooled input),
        otherwise ``c_out`` (added to the input, so ``c_out == c_in``).
    stride : int
        1 or 2.
    groups : int
        Groups of the 1x1 convolutions; the first one is ungrouped when ``c_in == 24``
        (the stem's width), as in the benchmark.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, groups: int) -> None:
        super().__init__()
        c_in, c_out, stride, groups = check_sizes(c_in=c_in, c_out=c_out, stride=stride, groups=groups)
        self.stride = stride
        mid = c_out // 4
        self.first_groups = 1 if c_in == 24 else groups
        self.conv1 = nn.Conv2d(c_in, mid, 1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = conv3x3(mid, mid, stride=stride, groups=mid)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, c_out, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = _channel_shuffle(out, self.first_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            return F.relu(torch.cat([out, F.avg_pool2d(x, 3, stride=2, padding=1)], 1))
        return F.relu(out + x)


class ShuffleNetV1(Backbone):
    """ShuffleNet V1 for 32x32 inputs, as in the benchmark's ``ShuffleV1`` (3 groups).

    A 1x1 stem to 24 channels (``conv1``, ``bn1``), three stages of ``blocks[i]`` units
    (the first of each strided, concatenating), global pooling, classifier ``linear``
    (``fc`` is the same module).

    Parameters
    ----------
    channels : sequence of 3 int
        Output channels of the stages; ``feature_dim = channels[2]``. Default
        ``(240, 480, 960)``.
    blocks : sequence of 3 int
        Units per stage. Default ``(4, 8, 4)``.
    groups : int
        Groups of the 1x1 convolutions (3).
    num_classes, in_channels, image_size, name
        See :class:`~pcoh.models._base.Backbone`.

    Notes
    -----
    Input ``(n, in_channels, h, w)``; features ``(n, channels[2])``; logits
    ``(n, num_classes)``.
    """

    def __init__(
        self,
        channels: Sequence[int] = (240, 480, 960),
        blocks: Sequence[int] = (4, 8, 4),
        groups: int = 3,
        *,
        num_classes: int = 100,
        in_channels: int = 3,
        image_size: int = 32,
        name: str = "shufflenetv1",
    ) -> None:
        channels = check_widths(channels, 3, "channels")
        blocks = [check_count(b, "blocks", 1) for b in check_len(blocks, 3, "blocks")]
        groups = check_count(groups, "groups", 1)
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=channels[2])
        self.conv1 = conv1x1(self.in_channels, 24)
        self.bn1 = nn.BatchNorm2d(24)
        c = 24
        for i, (c_out, repeats) in enumerate(zip(channels, blocks)):
            # The strided unit's branch makes c_out - c channels, the pooled input the rest.
            units = [ShuffleV1Unit(c, c_out - c, 2, groups)]
            units += [ShuffleV1Unit(c_out, c_out, 1, groups) for _ in range(repeats - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*units))
            c = c_out
        self.linear = nn.Linear(c, self.num_classes)
        init_weights(self)

    @property
    def fc(self) -> nn.Linear:
        return self.linear

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return global_pool(out)


# ----------------------------------------------------------------------------------
# Helpers and registry builders
# ----------------------------------------------------------------------------------
def resnet8x4(num_classes=10, in_channels=3, image_size=32, **kwargs) -> CifarResNet:
    """ResNet-8x4: one basic block per stage, widths (32, 64, 128, 256); feature_dim 256."""
    return CifarResNet(8, num_classes=num_classes, in_channels=in_channels,
                       image_size=image_size, name="resnet8x4", **kwargs)


def resnet32x4(num_classes=10, in_channels=3, image_size=32, **kwargs) -> CifarResNet:
    """ResNet-32x4: five basic blocks per stage, widths (32, 64, 128, 256); feature_dim 256."""
    return CifarResNet(32, num_classes=num_classes, in_channels=in_channels,
                       image_size=image_size, name="resnet32x4", **kwargs)


def resnet20(num_classes=10, in_channels=3, image_size=32, **kwargs) -> CifarResNet:
    """ResNet-20: three basic blocks per stage, widths (16, 16, 32, 64); feature_dim 64."""
    return CifarResNet(20, (16, 16, 32, 64), num_classes=num_classes, in_channels=in_channels,
                       image_size=image_size, name="resnet20", **kwargs)


def resnet56(num_classes=10, in_channels=3, image_size=32, **kwargs) -> CifarResNet:
    """ResNet-56: nine basic blocks per stage, widths (16, 16, 32, 64); feature_dim 64."""
    return CifarResNet(56, (16, 16, 32, 64), num_classes=num_classes, in_channels=in_channels,
                       image_size=image_size, name="resnet56", **kwargs)


def resnet50(num_classes=10, in_channels=3, image_size=32, **kwargs) -> BottleneckResNet:
    """ResNet-50 (bottleneck blocks 3, 4, 6, 3; 3x3 stem, the benchmark's ``ResNet50``);
    feature_dim 2048."""
    return BottleneckResNet((3, 4, 6, 3), num_classes=num_classes, in_channels=in_channels,
                            image_size=image_size, name="resnet50", **kwargs)


def wrn_40_2(num_classes=10, in_channels=3, image_size=32, **kwargs) -> WideResNet:
    """WRN-40-2: six pre-activation blocks per stage, widths (32, 64, 128); feature_dim 128."""
    return WideResNet(40, 2, num_classes=num_classes, in_channels=in_channels,
                      image_size=image_size, name="wrn_40_2", **kwargs)


def wrn_16_2(num_classes=10, in_channels=3, image_size=32, **kwargs) -> WideResNet:
    """WRN-16-2: two pre-activation blocks per stage, widths (32, 64, 128); feature_dim 128."""
    return WideResNet(16, 2, num_classes=num_classes, in_channels=in_channels,
                      image_size=image_size, name="wrn_16_2", **kwargs)


def vgg13(num_classes=10, in_channels=3, image_size=32, **kwargs) -> VGG:
    """VGG-13 with batch norm (the benchmark's ``vgg13``); feature_dim 512."""
    return VGG(VGG.CONFIGS["vgg13"], num_classes=num_classes, in_channels=in_channels,
               image_size=image_size, name="vgg13", **kwargs)


def vgg8(num_classes=10, in_channels=3, image_size=32, **kwargs) -> VGG:
    """VGG-8 with batch norm (the benchmark's ``vgg8``, configuration "S"); feature_dim 512."""
    return VGG(VGG.CONFIGS["vgg8"], num_classes=num_classes, in_channels=in_channels,
               image_size=image_size, name="vgg8", **kwargs)


def mobilenetv2(num_classes=10, in_channels=3, image_size=32, **kwargs) -> MobileNetV2:
    """MobileNetV2 at width 0.5 (the benchmark's ``mobile_half``); feature_dim 1280."""
    kwargs.setdefault("width", 0.5)
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels,
                       image_size=image_size, name="mobilenetv2", **kwargs)


def shufflenetv2(num_classes=10, in_channels=3, image_size=32, **kwargs) -> ShuffleNetV2:
    """ShuffleNetV2 1x (the benchmark's ``ShuffleV2``); feature_dim 1024."""
    return ShuffleNetV2(num_classes=num_classes, in_channels=in_channels,
                        image_size=image_size, name="shufflenetv2", **kwargs)


def shufflenetv1(num_classes=10, in_channels=3, image_size=32, **kwargs) -> ShuffleNetV1:
    """ShuffleNet V1 with 3 groups (the benchmark's ``ShuffleV1``); feature_dim 960."""
    return ShuffleNetV1(num_classes=num_classes, in_channels=in_channels,
                        image_size=image_size, name="shufflenetv1", **kwargs)
