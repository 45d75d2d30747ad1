"""Prediction: a model's features, logits and labels over a data set, and its accuracy.

No door: its callers (training, the main job, the notebooks) pass a model and a data set.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.utils.data import Dataset

from .batches import BatchSource
from .devices import resolve_device

@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, *, batch_size: int = 512, device=None):
    """Features, logits and labels of a data set, in order, on the CPU.

    Returns
    -------
    features : torch.Tensor, (n, feature_dim)
    logits : torch.Tensor, (n, num_classes)
    labels : torch.Tensor, (n,)
    """
    dev = resolve_device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    feats, logits, labels = [], [], []
    for x, y, _ in _batches(dataset, batch_size, device=dev):
        out = model(x)
        feats.append(out.features.float().cpu())
        logits.append(out.logits.float().cpu())
        labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(feats), torch.cat(logits), torch.cat(labels)


def _batches(dataset: Dataset, batch_size: int, *, device="cpu", shuffle: bool = False, seed: int = 0,
             epoch: int = 0, drop_last: bool = False, num_workers: Optional[int] = None):
    """Mini-batches ``(x, y, idx)`` on ``device``: one epoch of a :class:`pcoh.batches.BatchSource`.

    In-memory data (tensor data sets, MNIST, CIFAR) are held on the device and augmented there;
    other data sets go through a DataLoader. The order and augmentation depend only on
    ``seed`` and ``epoch``.
    """
    source = BatchSource(dataset, batch_size, device=device, shuffle=shuffle, drop_last=drop_last, seed=seed,
                         num_workers=num_workers)
    yield from source.epoch(epoch)


def accuracy(model: nn.Module, dataset: Dataset, device) -> float:
    """The share of ``dataset`` whose label is the model's largest logit."""
    _, logits, y = predict(model, dataset, device=device)
    return float((logits.argmax(dim=1) == y).float().mean())
