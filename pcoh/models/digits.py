"""Small teacher and students for the 8x8 grey digits data set.

* ``digits_resnet`` -- the teacher: a 3x3 stem and three residual basic blocks
  (He et al. 2016) at widths 64, 128, 128; feature_dim 128.
* ``digits_cnn`` -- a student: three conv-BN-ReLU layers of 16, 32, 32 channels and
  global pooling; feature_dim 32.
* ``mlp`` -- a student: a two-hidden-layer perceptron on the flattened image
  (hidden 64, feature_dim 32).

Both students have well over 10x fewer parameters than the teacher and narrower
features, so that transferring the teacher's representation is a real compression.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .._checks import check_count
from ._base import BasicBlock, Backbone, as_list, check_widths, conv3x3, global_pool, init_weights

__all__ = ["DigitsResNet", "DigitsCNN", "MLP", "digits_resnet", "digits_cnn", "mlp"]


def _nonempty_widths(widths: Sequence[int]) -> list[int]:
    widths = as_list(widths, "widths")
    if not widths:
        raise ValueError("widths must list at least one channel count, got []")
    return check_widths(widths, len(widths))


class DigitsResNet(Backbone):
    """Residual teacher for small grey images.

    Stem 3x3 conv-BN-ReLU to ``widths[0]`` channels, then one basic block per entry of
    ``widths`` (the second halves the resolution, 8x8 -> 4x4), global pooling.

    Parameters
    ----------
    widths : sequence of int
        Channels of the residual blocks; the stem uses ``widths[0]``. Default
        ``(64, 128, 128)``; ``feature_dim = widths[-1]``.
    num_classes, in_channels, image_size, name
        See :class:`~pcoh.models._base.Backbone`.

    Notes
    -----
    Input ``(n, in_channels, h, w)``; features ``(n, widths[-1])``; logits
    ``(n, num_classes)``.
    """

    def __init__(
        self,
        widths: Sequence[int] = (64, 128, 128),
        *,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 8,
        name: str = "digits_resnet",
    ) -> None:
        widths = _nonempty_widths(widths)
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=widths[-1])
        self.stem = nn.Sequential(
            conv3x3(self.in_channels, widths[0]), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)
        )
        blocks, c = [], widths[0]
        for i, c_out in enumerate(widths):
            # Down-sample once: at 8x8 a second halving would leave 2x2 maps.
            blocks.append(BasicBlock(c, c_out, stride=2 if i == 1 else 1))
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, self.num_classes)
        init_weights(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return global_pool(self.blocks(self.stem(x)))


class DigitsCNN(Backbone):
    """Small plain CNN student: conv-BN-ReLU layers, then global pooling.

    Parameters
    ----------
    widths : sequence of int
        Channels of the 3x3 conv layers; the second one has stride 2. Default
        ``(16, 32, 32)``; ``feature_dim = widths[-1]``.
    num_classes, in_channels, image_size, name
        See :class:`~pcoh.models._base.Backbone`.

    Notes
    -----
    Input ``(n, in_channels, h, w)``; features ``(n, widths[-1])``; logits
    ``(n, num_classes)``.
    """

    def __init__(
        self,
        widths: Sequence[int] = (16, 32, 32),
        *,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 8,
        name: str = "digits_cnn",
    ) -> None:
        widths = _nonempty_widths(widths)
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=widths[-1])
        layers, c = [], self.in_channels
        for i, c_out in enumerate(widths):
            layers += [
                conv3x3(c, c_out, stride=2 if i == 1 else 1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c = c_out
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(c, self.num_classes)
        init_weights(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return global_pool(self.body(x))


class MLP(Backbone):
    """Multi-layer perceptron student on the flattened image.

    ``in_channels * image_size**2`` inputs -> ``hidden`` -> ``feature_dim`` (both with
    ReLU) -> ``num_classes``.

    Parameters
    ----------
    hidden : int
        Width of the first hidden layer (64).
    feature_dim : int
        Width of the second hidden layer, the features (32).
    num_classes, in_channels, image_size, name
        See :class:`~pcoh.models._base.Backbone`.

    Notes
    -----
    Input ``(n, in_channels, image_size, image_size)`` or already flattened
    ``(n, in_channels * image_size**2)``; features ``(n, feature_dim)``; logits
    ``(n, num_classes)``. Unlike the conv nets, the spatial size is fixed at
    construction.
    """

    fixed_size = True

    def __init__(
        self,
        hidden: int = 64,
        feature_dim: int = 32,
        *,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 8,
        name: str = "mlp",
    ) -> None:
        hidden = check_count(hidden, "hidden", 1)
        super().__init__(name, num_classes, in_channels, image_size, feature_dim=feature_dim)
        self.input_dim = self.in_channels * self.image_size**2
        self.layers = nn.Sequential(
            nn.Linear(self.input_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, self.feature_dim),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(self.feature_dim, self.num_classes)
        # He init for the ReLU layers keeps activations from shrinking layer by layer;
        # the classifier keeps PyTorch's default, like the conv nets' classifiers.
        for m in self.layers:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def check_input(self, x: torch.Tensor) -> None:
        """Accept ``(n, C, S, S)`` images or ``(n, C * S * S)`` flat vectors.

        Raises
        ------
        TypeError
            If ``x`` is not a tensor.
        ValueError
            On a channel, spatial-size or width mismatch.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"model {self.name!r} expects a torch.Tensor, got {type(x).__name__}")
        shape, c, s = tuple(x.shape), self.in_channels, self.image_size
        if x.dim() == 2:
            if shape[1] != self.input_dim:
                raise ValueError(
                    f"model {self.name!r} was built for {c} input channels of {s}x{s} "
                    f"({self.input_dim} values per example), got input of shape {shape}"
                )
            return
        if x.dim() != 4:
            raise ValueError(
                f"model {self.name!r} expects input of shape (n, {c}, {s}, {s}) or "
                f"(n, {self.input_dim}), got input of shape {shape}"
            )
        if shape[1] != c:
            raise ValueError(
                f"model {self.name!r} was built for {c} input channels, got input of shape {shape}"
            )
        if shape[2:] != (s, s):
            raise ValueError(
                f"model {self.name!r} was built for {s}x{s} images (image_size={s}), "
                f"got input of shape {shape}"
            )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.flatten(x, 1))


def digits_resnet(num_classes=10, in_channels=1, image_size=8, **kwargs) -> DigitsResNet:
    """Digits teacher: residual blocks at widths (64, 128, 128); feature_dim 128."""
    return DigitsResNet(num_classes=num_classes, in_channels=in_channels,
                        image_size=image_size, name="digits_resnet", **kwargs)


def digits_cnn(num_classes=10, in_channels=1, image_size=8, **kwargs) -> DigitsCNN:
    """Digits student CNN: conv layers of (16, 32, 32) channels; feature_dim 32."""
    return DigitsCNN(num_classes=num_classes, in_channels=in_channels,
                     image_size=image_size, name="digits_cnn", **kwargs)


def mlp(num_classes=10, in_channels=1, image_size=8, **kwargs) -> MLP:
    """Digits student MLP: hidden 64, feature_dim 32, on the flattened image."""
    return MLP(num_classes=num_classes, in_channels=in_channels,
               image_size=image_size, name="mlp", **kwargs)
