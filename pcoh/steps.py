"""One optimisation step and what it needs: the optimiser and its schedule, the training batches,
the (optionally compiled) step itself. The training loop (:mod:`pcoh.train`) and the estimates
(:mod:`pcoh.estimate`) make them alike."""
from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.utils.data import Dataset

from . import distributed as _dist
from .batches import BatchSource
from .specs import TrainConfig


def make_optimizer(params, cfg: TrainConfig):
    # foreach: the update of all parameters at once (on a CPU too, where torch does not choose it
    # by default); the same arithmetic per parameter, so the same weights, with fewer small operations.
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, foreach=True)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    return opt, sched


def training_batches(dataset: Dataset, cfg: TrainConfig, device: torch.device) -> BatchSource:
    """The training batches: shuffled, seeded per epoch, last incomplete batch dropped."""
    return BatchSource(dataset, cfg.batch_size, device=device, shuffle=True, drop_last=len(dataset) > cfg.batch_size,
                       seed=cfg.seed, num_workers=cfg.num_workers)


def train_step(model: nn.Module, objective, opt, cfg: TrainConfig, device: torch.device, *, shared=()):
    """``step(x, y, idx) -> dict of detached loss terms``: forward, backward, optimiser step.

    Nothing here reads a value back to the host, so steps queue up on an accelerator. With
    ``cfg.compile`` the whole step goes through ``torch.compile`` (CUDA graphs on CUDA). Under
    ``torchrun`` the model runs in DistributedDataParallel with global-batch batch norm, and the
    gradients of ``shared`` (a transfer loss's own parameters) are averaged over processes.
    """
    amp = cfg.amp and device.type == "cuda"
    if cfg.amp and not amp:
        warnings.warn("amp (bf16 autocast) is used on CUDA only; training in float32 on the CPU", stacklevel=3)
    channels_last = cfg.channels_last

    if channels_last:
        model.to(memory_format=torch.channels_last)
    # Every process has loaded the same weights; batch norm then uses global-batch statistics
    # and DDP averages the gradients (both no-ops in one process).
    net = _dist.wrap(_dist.sync_batchnorm(model))
    shared = list(shared)

    def step(x, y, idx):
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            terms = objective(net, x, y, idx)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        _dist.average_gradients(shared)
        opt.step()
        return {name: value.detach() for name, value in terms.items()}

    if cfg.compile:
        return torch.compile(step, mode="reduce-overhead" if device.type == "cuda" else None)
    return step
