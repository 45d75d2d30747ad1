"""Batch-norm statistics recomputed over the training data at the end of training ("precise BN").

A batch-norm layer normalises with the batch's statistics in training and with running averages
in evaluation. Those averages are exponential, with the layer's ``momentum``: PyTorch's default
0.1 forgets its starting values within about a hundred steps, but torchvision's MobileNetV3 and
EfficientNet use 0.01 and MNASNet 0.0003, chosen for ImageNet runs of hundreds of thousands of
steps. Trained for a few hundred steps, such a model keeps stale statistics: its training loss
falls to zero while its held-out accuracy, measured in evaluation mode, stays at chance.

:func:`recompute_statistics` replaces the running averages by the plain average of the batch
statistics over one pass of training batches, with the weights fixed (Wu and Johnson, 2021,
"Rethinking 'Batch' in BatchNorm", section 3). Training itself is unchanged: in training mode a
layer uses the batch's statistics, never the running ones. The training loop applies it to the
models that bring their own batch-norm settings (:func:`recomputed`): torchvision models and
wrapped modules; pcoh's built-in models use PyTorch's default and keep their running averages.
"""
from __future__ import annotations

import itertools
from typing import Iterable

import torch
from torch import nn

from ._checks import check_module
from .models import tv as _tv
from .models import wrapped as _wrapped

__all__ = ["layers", "recompute_statistics", "recomputed"]

def recomputed(model_name: str) -> bool:
    """Whether the training loop recomputes the batch-norm statistics of the model ``model_name``
    at the end of training (and before each held-out evaluation): torchvision models (``tv:``)
    and wrapped modules (``wrap:``), which bring their own momentum."""
    if not isinstance(model_name, str):
        raise TypeError(f"model_name must be a model name (str), got {type(model_name).__name__}")
    return _tv.is_tv(model_name) or _wrapped.is_wrapped(model_name)


def layers(model: nn.Module) -> list:
    """The batch-norm layers of ``model`` that keep running statistics."""
    check_module(model)
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def recompute_statistics(model: nn.Module, batches: Iterable, *, devices=()) -> int:
    """Set the running mean and variance of every batch-norm layer of ``model`` to the average of
    its batch statistics over ``batches`` (inputs, or tuples whose first item is the input).

    The weights are not touched and no gradient is computed; ``model`` keeps its mode and its
    layers their momentum. The random state (of the CPU and of ``devices``) is left as it was,
    so a dropout layer run here does not change what comes after.

    Returns
    -------
    int
        The number of batches seen (0 leaves the statistics as they were).
    """
    found = layers(model)
    try:
        batches = iter(batches)
    except TypeError:
        raise TypeError(f"batches must be an iterable of input tensors (or of tuples starting with one), "
                        f"got {type(batches).__name__}") from None
    if not isinstance(devices, (list, tuple)):
        raise TypeError(f"devices must be a list of CUDA devices whose random state to keep, got "
                        f"{type(devices).__name__}")
    if not found:
        return 0
    first = next(batches, None)
    if first is None:
        return 0
    saved = [(m.momentum, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
             for m in found]
    was_training = model.training
    count = 0
    try:
        for m in found:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: every batch weighs the same
        model.train()
        with torch.random.fork_rng(devices=list(devices)), torch.no_grad():
            for batch in itertools.chain([first], batches):
                model(batch[0] if isinstance(batch, (tuple, list)) else batch)
                count += 1
    except BaseException:
        for m, (momentum, mean, var, tracked) in zip(found, saved):
            m.running_mean.copy_(mean), m.running_var.copy_(var), m.num_batches_tracked.copy_(tracked)
        raise
    finally:
        for m, (momentum, *_rest) in zip(found, saved):
            m.momentum = momentum
        model.train(was_training)
    return count
