"""Shared pieces of every model in :mod:`pcoh.models`.

The output type (:class:`ModelOutput`), argument validation, the input check that
turns a shape mismatch into a readable :class:`ValueError`, the common base class
(:class:`Backbone`), the weight initialisation used by all architectures, and the building
blocks several model families share (3x3 / 1x1 convolutions, the residual :class:`BasicBlock`).
"""
from __future__ import annotations

from typing import Iterable, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_count

__all__ = [
    "ModelOutput",
    "Backbone",
    "global_pool",
    "init_weights",
    "as_list",
    "check_len",
    "check_sizes",
    "check_widths",
    "conv3x3",
    "conv1x1",
    "BasicBlock",
]


class ModelOutput(NamedTuple):
    """What every model's ``forward`` returns.

    Attributes
    ----------
    features : torch.Tensor
        Pooled penultimate features, shape ``(n, feature_dim)``: the input of the final
        linear layer. This is the representation that distillation losses compare.
    logits : torch.Tensor
        Class scores, shape ``(n, num_classes)``.
    """

    features: torch.Tensor
    logits: torch.Tensor


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """Average over all spatial positions.

    Adaptive (rather than the benchmark's fixed ``AvgPool2d(8)``) so that any input
    size works, e.g. the 8x8 digits as well as 32x32 CIFAR images.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(n, c, h, w)``.

    Returns
    -------
    torch.Tensor
        Shape ``(n, c)``.
    """
    return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def init_weights(module: nn.Module) -> None:
    """Initialise all convolutions and batch norms below ``module`` in place.

    Convolutions get He (kaiming) normal weights with ``fan_out`` and zero biases, the
    scheme the benchmark's ResNets use; batch norms start as the identity (weight 1,
    bias 0). Linear layers keep PyTorch's default initialisation, as in the benchmark's
    ResNets. The scheme is fixed, so results depend only on the torch random seed.

    Parameters
    ----------
    module : torch.nn.Module
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Backbone(nn.Module):
    """Base class: a feature extractor followed by one linear classifier ``fc``.

    Subclasses build their layers, assign ``self.fc`` (``feature_dim -> num_classes``)
    and implement :meth:`embed`. :meth:`forward` checks the input, then returns both
    the pooled features and the logits.

    Parameters
    ----------
    name : str
        Registry name, used in error messages.
    num_classes : int
        Number of output classes, ``>= 2``.
    in_channels : int
        Number of input channels, ``>= 1``.
    image_size : int
        Nominal input height and width, ``>= 8``. Convolutional models accept any
        spatial size; the MLP needs it to know its input width.
    feature_dim : int
        Width of the pooled penultimate features.

    Attributes
    ----------
    name : str
    num_classes : int
    in_channels : int
    image_size : int
    feature_dim : int
    """

    #: Whether the model needs exactly ``image_size x image_size`` inputs (the MLP).
    fixed_size: bool = False

    def __init__(
        self,
        name: str,
        num_classes: int,
        in_channels: int,
        image_size: int,
        feature_dim: int,
    ) -> None:
        super().__init__()
        self.name = str(name)
        self.num_classes = check_count(num_classes, "num_classes", 2)
        self.in_channels = check_count(in_channels, "in_channels", 1)
        self.image_size = check_count(image_size, "image_size", 8)
        self.feature_dim = check_count(feature_dim, "feature_dim", 1)

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, num_classes={self.num_classes}, "
            f"in_channels={self.in_channels}, feature_dim={self.feature_dim}"
        )

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a readable error if ``x`` cannot be fed to this model.

        Without this, a channel mismatch surfaces as a cryptic convolution error deep
        inside the network, far from the call that passed the wrong data.

        Parameters
        ----------
        x : torch.Tensor
            Expected shape ``(n, in_channels, h, w)``.

        Raises
        ------
        TypeError
            If ``x`` is not a tensor.
        ValueError
            If ``x`` is not 4-D or has the wrong number of channels.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"model {self.name!r} expects a torch.Tensor, got {type(x).__name__}"
            )
        shape = tuple(x.shape)
        if x.dim() != 4:
            raise ValueError(
                f"model {self.name!r} expects a 4-D input of shape "
                f"(n, {self.in_channels}, height, width), got input of shape {shape}"
            )
        if shape[1] != self.in_channels:
            raise ValueError(
                f"model {self.name!r} was built for {self.in_channels} input channels, "
                f"got input of shape {shape}"
            )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features, shape ``(n, feature_dim)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """Run the model.

        Parameters
        ----------
        x : torch.Tensor
            Shape ``(n, in_channels, h, w)``.

        Returns
        -------
        ModelOutput
            ``features`` of shape ``(n, feature_dim)`` and ``logits`` of shape
            ``(n, num_classes)``.
        """
        self.check_input(x)
        features = self.embed(x)
        return ModelOutput(features=features, logits=self.fc(features))


def check_sizes(**sizes) -> list[int]:
    """Positive integer sizes of a block (channels, stride, groups), in the order given."""
    return [check_count(value, name, 1) for name, value in sizes.items()]


def as_list(values, argument: str) -> list:
    """``values`` (a sequence, not a string) as a list; TypeError naming ``argument`` otherwise."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{argument} must be a sequence, got {type(values).__name__} {values!r}")
    return list(values)


def check_len(values, length: int, argument: str) -> list:
    """``values`` as a list of exactly ``length`` entries (TypeError or ValueError naming ``argument`` otherwise)."""
    values = as_list(values, argument)
    if len(values) != length:
        raise ValueError(f"{argument} must have {length} entries, got {values}")
    return values


def check_widths(values, length: int, argument: str = "widths") -> list[int]:
    """``length`` positive integer channel widths."""
    return [check_count(v, argument, 1) for v in check_len(values, length, argument)]


def conv3x3(c_in: int, c_out: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias."""
    # No bias: every convolution here is followed by a batch norm, which has its own.
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias (followed by a batch norm)."""
    return nn.Conv2d(c_in, c_out, 1, stride=stride, padding=0, bias=False)


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
    When the shape changes, the shortcut ``downsample`` is a strided 1x1 convolution with
    batch norm (option B of He et al.), as in the benchmark; otherwise it is ``None``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        c_in, c_out, stride = check_sizes(c_in=c_in, c_out=c_out, stride=stride)
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))
