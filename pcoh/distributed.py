r"""Training on several processes (GPUs, machines) with ``torchrun``: set-up and collectives.

``torchrun --nproc_per_node N -m pcoh ...`` starts N processes and gives each, through its
environment, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init` reads them and joins the process group (NCCL on GPUs, gloo on CPUs). Outside
``torchrun``, or with ``WORLD_SIZE=1``, nothing is initialised and every helper here behaves as
in one process (:func:`is_distributed` is False, :func:`gather_with_grad` returns its input).

What is distributed, and why the results do not depend on the number of processes N:

- Each global batch of n samples is drawn in the same order on every process (the same seeded
  generator) and process r keeps the contiguous shard ``batch[r n / N : (r + 1) n / N]``
  (:func:`shard`).
- The student is wrapped in DistributedDataParallel (:func:`wrap`), which averages gradients;
  the parameters of a loss (FitNet's regressor) are averaged by :func:`average_gradients`.
- Batch normalisation uses the statistics of the global batch (:func:`sync_batchnorm`), on
  CPUs as on GPUs, so that a forward pass sees the same normalisation as in one process.
- Relational losses (PC, RKD, PKT, SP, CC) compare every sample with every other one of the
  batch: :class:`pcoh.losses.TransferLoss` gathers the student features *with* gradient
  (:func:`gather_with_grad`) and the teacher features without (:func:`gather_no_grad`), and
  every process computes the loss on the global batch. The value is the single-process value
  :math:`L`; the backward pass of the all-gather sums, into each process's own rows, the
  gradients that the N identical copies of :math:`L` send there, i.e. :math:`N\,\partial L /
  \partial s_r`, and DDP's average divides by N again: every parameter gradient equals the
  single-process one.

A peer that dies or stalls makes the others fail after a timeout (:func:`init`'s ``timeout``,
or the ``PCOH_DIST_TIMEOUT`` environment variable in seconds, default 600) instead of waiting
for ever; ``torchrun`` itself also stops the remaining workers once one has failed.
"""
from __future__ import annotations

import datetime
import gc
import inspect
import numbers
import os
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ._checks import check_choice, check_int, check_module

__all__ = [
    "DEFAULT_TIMEOUT",
    "init",
    "teardown",
    "is_distributed",
    "rank",
    "world_size",
    "local_rank",
    "is_main",
    "barrier",
    "gather_with_grad",
    "gather_no_grad",
    "shard_sizes",
    "all_reduce_sum",
    "shard",
    "check_batch_size",
    "wrap",
    "average_gradients",
    "sync_batchnorm",
    "unsync_batchnorm",
]

#: Seconds a collective waits for its peers before failing (override: ``PCOH_DIST_TIMEOUT``).
DEFAULT_TIMEOUT = 600.0
_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str, default: Optional[int] = None) -> Optional[int]:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def _timeout(timeout) -> datetime.timedelta:
    if timeout is None:
        text = os.environ.get("PCOH_DIST_TIMEOUT")
        if text is None:
            timeout = DEFAULT_TIMEOUT
        else:
            try:
                timeout = float(text)
            except ValueError:
                raise ValueError(f"PCOH_DIST_TIMEOUT must be a number of seconds, got {text!r}") from None
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
    if not 0 < timeout < float("inf"):
        raise ValueError(f"timeout must be a positive finite number of seconds, got {timeout}")
    return datetime.timedelta(seconds=float(timeout))


def init(device=None, *, backend: Optional[str] = None, timeout=None) -> bool:
    """Join the process group described by ``torchrun``'s environment, if there is one.

    Parameters
    ----------
    device : str or torch.device, optional
        The device the job trains on: ``"cuda"`` (any index) selects NCCL and the GPU
        ``LOCAL_RANK`` (``torch.cuda.set_device``), anything else gloo. ``None``: CUDA when
        available.
    backend : str, optional
        Overrides the choice above (``"nccl"``, ``"gloo"``).
    timeout : float or datetime.timedelta, optional
        Seconds a collective waits for the other processes before it fails; default the
        ``PCOH_DIST_TIMEOUT`` environment variable, else :data:`DEFAULT_TIMEOUT`.

    Returns
    -------
    bool
        True when a process group of more than one process is now initialised. False without
        ``torchrun`` (no ``WORLD_SIZE``) or with ``WORLD_SIZE=1``: then nothing is set up, so a
        one-process ``torchrun`` run is exactly a plain run.
    """
    td = _timeout(timeout)
    if device is not None and not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'cuda' or a torch.device, got {type(device).__name__}")
    if backend is not None:
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a string such as 'nccl' or 'gloo', got {type(backend).__name__}")
        check_choice(backend, "backend", ["nccl", "gloo", "mpi", "ucc"])
    size = _env_int("WORLD_SIZE", 1)
    if size <= 1:
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    missing = [name for name in _ENV if name not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={size} but the environment lacks {missing}; start the job with torchrun")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if backend is None:
        backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        # One GPU per process, whatever index was asked for: cuda:LOCAL_RANK.
        torch.cuda.set_device(_env_int("LOCAL_RANK", 0))
    dist.init_process_group(backend=backend, timeout=td)
    return True


def teardown() -> None:
    """Leave the process group (a no-op when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        # DDP wrappers live in reference cycles: free them (and the collectives they hold)
        # while their process group is alive, not at interpreter exit, where gloo's threads
        # can then abort the process (SIGABRT, "terminate called without an active exception").
        gc.collect()
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """Rank on this machine (``LOCAL_RANK``; 0 outside a process group)."""
    return _env_int("LOCAL_RANK", 0) if is_distributed() else 0


def is_main() -> bool:
    """True on the process that writes files (rank 0), and always in one process."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process (a no-op in one process)."""
    if is_distributed():
        dist.barrier()


def gather_with_grad(x: torch.Tensor, sizes: Optional[list] = None) -> torch.Tensor:
    r"""Concatenate every process's ``x`` (n_r, ...) along dim 0, in rank order, with gradient.

    The backward pass sums, over processes, the gradients that reach each process's rows, so a
    loss computed identically on every process sends :math:`N` times its gradient to each shard;
    DDP's average divides it again. Shards may differ in size; ``sizes`` (from
    :func:`shard_sizes`) saves the exchange of sizes when several tensors of one batch are
    gathered. In one process: ``x`` itself.
    """
    _check_gather(x, sizes)
    if not is_distributed():
        return x
    return _AllGather.apply(x, sizes)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor, sizes: Optional[list] = None) -> torch.Tensor:
    """Concatenate every process's ``x`` along dim 0, in rank order, without gradient."""
    _check_gather(x, sizes)
    if not is_distributed():
        return x
    return _all_gather(x.detach(), sizes)[0]


def shard_sizes(x: torch.Tensor) -> list:
    """Leading size of ``x`` on every process, in rank order (``[len(x)]`` in one process)."""
    _check_gather(x, None)
    if not is_distributed():
        return [x.shape[0]]
    local = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    sizes = [torch.empty_like(local) for _ in range(world_size())]
    dist.all_gather(sizes, local)
    return [int(s) for s in sizes]


def _check_gather(x, sizes) -> None:
    """``x`` is a tensor with a leading dimension; ``sizes`` None or one row count per process."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0:
        raise ValueError("x must have a leading (batch) dimension, got a 0-d tensor")
    if sizes is not None:
        if not isinstance(sizes, (list, tuple)):
            raise TypeError(f"sizes must be a list of row counts (shard_sizes), got {type(sizes).__name__}")
        sizes = [check_int(s, "sizes", minimum=0) for s in sizes]
        if len(sizes) != world_size() or sizes[rank()] != x.shape[0]:
            raise ValueError(f"sizes must hold the row count of each of the {world_size()} processes, this one's "
                             f"({x.shape[0]}) at index {rank()}, got {sizes}")


def _all_gather(x: torch.Tensor, sizes: Optional[list] = None):
    """All-gather along dim 0 for shards of any sizes (padded to the largest, then cut).

    Returns the concatenation and the list of shard sizes.
    """
    x = x.contiguous()
    if sizes is None:
        sizes = shard_sizes(x)
    if sizes[rank()] != x.shape[0]:
        raise ValueError(f"sizes[{rank()}] = {sizes[rank()]} but this process holds {x.shape[0]} rows")
    pad = max(sizes) - x.shape[0]
    padded = torch.cat([x, x.new_zeros((pad, *x.shape[1:]))]) if pad else x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)], dim=0), sizes


class _AllGather(torch.autograd.Function):
    """All-gather whose backward sums the processes' gradients and keeps this process's rows."""

    @staticmethod
    def forward(ctx, x, sizes):
        out, sizes = _all_gather(x, sizes)
        ctx.start = sum(sizes[:rank()])
        ctx.n = x.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # gloo has no reduce-scatter: sum everything, keep our rows
        return grad[ctx.start:ctx.start + ctx.n], None


class _AllReduce(torch.autograd.Function):
    """Sum over processes; the backward pass sums the gradients of every process's copy."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


@torch.no_grad()
def all_reduce_sum(values: Sequence[float], device=None) -> list:
    """Sum a few Python numbers over processes (one collective); returned as floats."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"values must be a sequence of numbers, got {type(values).__name__}")
    # NaN and Inf pass: a diverged loss is reported by the caller (pcoh.train), after the sum.
    if not all(isinstance(v, (numbers.Real, np.floating, np.integer)) and not isinstance(v, bool) for v in values):
        raise TypeError(f"values must be a sequence of numbers, got {list(values)!r}")
    values = [float(v) for v in values]
    if not is_distributed():
        return values
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def shard(batch: Sequence[torch.Tensor]) -> list:
    """This process's contiguous slice ``b[r n / N : (r + 1) n / N]`` of every tensor of a batch.

    Every process must hold the same global batch (the same seeded order), so that the shards
    partition it and their concatenation in rank order is the global batch.
    """
    if isinstance(batch, torch.Tensor) or not isinstance(batch, Sequence) \
            or not all(isinstance(b, torch.Tensor) and b.dim() > 0 for b in batch):
        raise TypeError(f"batch must be a sequence of tensors with a batch dimension, got {type(batch).__name__}")
    if not is_distributed():
        return list(batch)
    r, size = rank(), world_size()
    out = []
    for b in batch:
        n = b.shape[0]
        out.append(b[r * n // size:(r + 1) * n // size])
    return out


def check_batch_size(batch_size: int, name: str = "batch_size") -> None:
    """Raise ValueError if the global ``batch_size`` cannot be split evenly over the processes."""
    batch_size = check_int(batch_size, name, minimum=1)
    size = world_size()
    if batch_size % size:
        raise ValueError(
            f"{name} is the global batch and must be divisible by the number of processes "
            f"({size}), got {batch_size}"
        )


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in DistributedDataParallel (gradients averaged), or ``model`` in one process.

    The wrapper shares the module's parameters: save and load ``model.state_dict()`` (the
    unwrapped keys). ``find_unused_parameters`` because a class-unaware student never uses
    its classifier (``static_graph`` does not accept that); buffers are not broadcast at each
    step (batch-norm statistics are kept identical by :func:`sync_batchnorm`). DDP broadcasts
    rank 0's weights and buffers once, so every process starts from the same state.
    """
    check_module(model)
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    dev = next(model.parameters()).device
    ids = [dev] if dev.type == "cuda" else None
    accepted = inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in accepted else {"broadcast_buffers": False}
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True, **no_sync)


@torch.no_grad()
def average_gradients(params: Sequence[torch.Tensor]) -> None:
    """Average the gradients of ``params`` over processes in place (one flat all-reduce).

    For parameters outside the DDP-wrapped model (a loss's regressor or embeddings); a
    parameter without gradient counts as zero so that every process joins the collective.
    """
    if isinstance(params, torch.Tensor) or not isinstance(params, (Sequence, Iterator)):
        raise TypeError(f"params must be a sequence of parameters, got {type(params).__name__}")
    params = list(params)
    if not all(isinstance(p, torch.Tensor) for p in params):
        raise TypeError("params must hold tensors (parameters) only")
    params = [p for p in params if p.requires_grad]
    if not is_distributed() or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for p, g in zip(params, grads):
        k = g.numel()
        p.grad = flat[offset:offset + k].view_as(p).clone()
        offset += k


class _GlobalBatchNorm:
    """Mixin: batch statistics of the global batch, through an all-reduce with gradient.

    Same parameters, buffers and state-dict keys as the batch-norm class it is mixed into, so
    it is switched on and off by assigning ``__class__`` (:func:`sync_batchnorm`). Works with
    gloo (CPUs) as well as NCCL; in eval mode, or in one process, it is the plain layer.
    """

    def forward(self, x):  # noqa: D401 - the layer's forward
        if not (self.training and is_distributed()):
            return super().forward(x)
        all_reduce = _AllReduce.apply
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.new_tensor([x.numel() / x.shape[1]])
        # Two passes (mean, then centred squares) as in a one-process batch norm, for accuracy.
        stats = all_reduce(torch.cat([x.sum(dims), count]))
        n = stats[-1]
        mean = stats[:-1] / n
        centred = x - mean.view(shape)
        var = all_reduce(centred.pow(2).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
        y = centred / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


_GLOBAL_CLASSES: dict = {}


def sync_batchnorm(model: nn.Module) -> nn.Module:
    """Make every batch-norm layer of ``model`` use the global batch's statistics (in place).

    A no-op in one process. Undone by :func:`unsync_batchnorm`. Returns ``model``.
    """
    check_module(model)
    if not is_distributed():
        return model
    for m in model.modules():
        cls = type(m)
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, _GlobalBatchNorm):
            if cls not in _GLOBAL_CLASSES:
                _GLOBAL_CLASSES[cls] = type(f"Global{cls.__name__}", (_GlobalBatchNorm, cls), {})
            m.__class__ = _GLOBAL_CLASSES[cls]
    return model


def unsync_batchnorm(model: nn.Module) -> nn.Module:
    """Give back the plain batch-norm classes that :func:`sync_batchnorm` replaced (in place)."""
    check_module(model)
    for m in model.modules():
        if isinstance(m, _GlobalBatchNorm):
            m.__class__ = type(m).__mro__[2]
    return model
