"""Mini-batches of a data set on a device, the same for a given seed and epoch (the training loop's input).

Data that fit in memory are moved to the device once and gathered, augmented and normalised
there; other data go through a DataLoader whose items are seeded per epoch and index.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from . import _checks
from .data import default_num_workers

__all__ = ["InMemory", "in_memory", "BatchSource", "default_num_workers"]


@dataclass(frozen=True, eq=False)
class InMemory:
    """A training set held as tensors, with what turns stored pixels into model inputs.

    Attributes
    ----------
    images : torch.Tensor, (n, C, H, W) or (n, d)
        uint8 raw pixels (torchvision sets) or float32 inputs (tensor data sets).
    labels : torch.Tensor, int64, (n,)
    mean, std : tuple of float or None
        Applied after scaling uint8 pixels to [0, 1], as ``ToTensor`` + ``Normalize`` do.
    augment : pcoh.augment.CropFlip
        Applied to the stored pixels, before scaling, as torchvision applies it.
    """

    images: torch.Tensor
    labels: torch.Tensor
    mean: Optional[tuple] = None
    std: Optional[tuple] = None
    augment: Any = None
    padded: Optional[torch.Tensor] = None  # images with the crop's zero padding, made by ``to``

    def to(self, device) -> "InMemory":
        """A copy on ``device``, with the padded images the crop reads from when augmenting."""
        images = self.images.to(device)
        padded = None
        if self.augment is not None and self.augment.active:
            padded = torch.nn.functional.pad(images, (self.augment.padding,) * 4).contiguous()
        return InMemory(images, self.labels.to(device), self.mean, self.std, self.augment, padded)

    def batch(self, idx: torch.Tensor, generator: Optional[torch.Generator] = None, augment: bool = True) -> torch.Tensor:
        """Model inputs of the samples ``idx`` (float32, on the images' device)."""
        if augment and self.augment is not None and self.augment.active:
            from .augment import draw, gather_crop_flip

            padded = self.padded if self.padded is not None else self.to(self.images.device).padded
            rows, cols, flips = draw(len(idx), self.augment.padding, self.augment.flip, generator=generator,
                                     device=self.images.device)
            x = gather_crop_flip(padded, idx, rows, cols, flips, tuple(self.images.shape[-2:]))
        else:
            x = self.images[idx]
        if x.dtype == torch.uint8:
            # The same operations as ToTensor and Normalize, so that the values are identical.
            x = x.to(torch.float32).div(255)
            if self.mean is not None:
                mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
                std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
                x = x.sub(mean).div(std)
        return x


def _transform_plan(transform, image_size: int):
    """``(augment, mean, std)`` for a Compose of [RandomCrop] [RandomHorizontalFlip] ToTensor
    [Normalize] that the in-memory path reproduces exactly, or None for any other transform."""
    from torchvision import transforms as T

    from .augment import CropFlip

    steps = list(transform.transforms) if isinstance(transform, T.Compose) else [transform]
    padding, flip, mean, std = 0, 0.0, None, None
    pos = 0
    if pos < len(steps) and type(steps[pos]) is T.RandomCrop:
        crop = steps[pos]
        pad = crop.padding
        pads = [pad] if isinstance(pad, int) else list(pad or [0])
        if (tuple(crop.size) != (image_size, image_size) or crop.pad_if_needed or crop.fill != 0
                or crop.padding_mode != "constant" or len(set(pads)) != 1 or not isinstance(pads[0], int)):
            return None
        padding, pos = pads[0], pos + 1
    if pos < len(steps) and type(steps[pos]) is T.RandomHorizontalFlip:
        flip, pos = float(steps[pos].p), pos + 1
    if pos >= len(steps) or type(steps[pos]) is not T.ToTensor:
        return None
    pos += 1
    if pos < len(steps) and type(steps[pos]) is T.Normalize:
        mean, std = tuple(float(v) for v in steps[pos].mean), tuple(float(v) for v in steps[pos].std)
        pos += 1
    if pos != len(steps):
        return None
    return CropFlip(padding, flip), mean, std


_IN_MEMORY: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def in_memory(dataset: Dataset) -> Optional[InMemory]:
    """The tensors of a data set that fits in memory, or None when it must be read item by item.

    Recognised: a :class:`~torch.utils.data.TensorDataset` of ``(X, y)`` (returned as stored),
    and torchvision's MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 (uint8 pixels) whose transform
    is the one :func:`load` builds (random crop with zero padding, horizontal flip, ``ToTensor``,
    ``Normalize``; each optional but ``ToTensor``). Anything else (image folders, other
    transforms, a target transform) returns None. The result is remembered per data set object
    (and its transform), so the teacher and every student share one conversion.
    """
    try:
        transform, memory = _IN_MEMORY[dataset]
        if transform is getattr(dataset, "transform", None):
            return memory
    except (KeyError, TypeError):
        pass
    memory = _in_memory(dataset)
    try:
        _IN_MEMORY[dataset] = (getattr(dataset, "transform", None), memory)
    except TypeError:  # not weakly referenceable
        pass
    return memory


def _in_memory(dataset: Dataset) -> Optional[InMemory]:
    if isinstance(dataset, TensorDataset):
        if len(dataset.tensors) != 2:
            return None
        x, y = dataset.tensors
        return InMemory(x, y)
    try:
        import torchvision.datasets as tvd
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(dataset, (tvd.MNIST, tvd.CIFAR10)) or dataset.target_transform is not None:
        return None
    if isinstance(dataset, tvd.CIFAR10):  # CIFAR100 subclasses CIFAR10
        images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2).contiguous()
    else:  # MNIST, FashionMNIST
        images = torch.as_tensor(dataset.data)[:, None].contiguous()
    if images.dtype != torch.uint8 or images.shape[-1] != images.shape[-2]:
        return None
    plan = _transform_plan(dataset.transform, int(images.shape[-1])) if dataset.transform is not None else None
    if plan is None:
        return None
    augment, mean, std = plan
    return InMemory(images, torch.as_tensor(dataset.targets, dtype=torch.int64), mean, std, augment)


class _Seeded(Dataset):
    """Items ``(x, y, i)`` whose random transforms are seeded by ``(epoch seed, i)``.

    The sampler hands ``(i, seed)``; seeding each item makes the augmentation independent of the
    number of worker processes and of which worker reads which item, so an interrupted run that
    resumes at an epoch draws the same images as an uninterrupted one.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        i, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((seed * 1_000_003 + i) % (2**63))
            x, y = self.dataset[i]
        return torch.as_tensor(x), torch.as_tensor(y), i


class _EpochSampler(torch.utils.data.Sampler):
    """Yields ``(i, seed)`` in the order set by :meth:`set_epoch` (read in the main process)."""

    def __init__(self, n: int):
        self.n = n
        self.order: list = list(range(n))
        self.seed = 0

    def set_epoch(self, order: torch.Tensor, seed: int) -> None:
        self.order, self.seed = order.tolist(), seed

    def __iter__(self):
        return iter([(i, self.seed) for i in self.order])

    def __len__(self):
        return self.n


class BatchSource:
    """Mini-batches ``(x, y, idx)`` of a data set on a device, the same for a given seed and epoch.

    Data that fit in memory (:func:`in_memory`) are moved to ``device`` once, as stored (uint8
    pixels stay uint8); each batch is gathered, augmented (:mod:`pcoh.augment`) and normalised
    there. Other data go through a :class:`~torch.utils.data.DataLoader` with ``num_workers``
    persistent worker processes and pinned memory.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Items ``(x, y)``.
    batch_size : int
    device : torch.device
    shuffle : bool, default False
    drop_last : bool, default False
        Drop the last incomplete batch (static shapes for a captured training step).
    seed : int, default 0
        Each epoch's order and augmentation come from a generator seeded with
        ``seed * 100003 + epoch`` (on ``device`` for in-memory data).
    num_workers : int, optional
        Worker processes of the DataLoader path; default :func:`default_num_workers`.
    augment : bool, default True
        False: serve in-memory data without their random crop and flip.

    Yields (from :meth:`epoch`)
    ---------------------------
    x : torch.Tensor, float32, (b, C, H, W) or (b, d)
    y : torch.Tensor, int64, (b,)
    idx : torch.Tensor, int64, (b,)
        Positions of the samples in ``dataset``.
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, device, shuffle: bool = False,
                 drop_last: bool = False, seed: int = 0, num_workers: Optional[int] = None, augment: bool = True):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"dataset must be a map-style torch Dataset (with len and items), got {type(dataset).__name__}")
        batch_size = _checks.check_int(batch_size, "batch_size", minimum=1)
        if num_workers is not None:
            num_workers = _checks.check_int(num_workers, "num_workers", minimum=0)
        shuffle, drop_last = _checks.check_bool(shuffle, "shuffle"), _checks.check_bool(drop_last, "drop_last")
        augment, seed = _checks.check_bool(augment, "augment"), _checks.check_int(seed, "seed", minimum=0)
        if not isinstance(device, (str, torch.device)):
            raise TypeError(f"device must be a string such as 'cpu' or a torch.device, got {type(device).__name__}")
        try:
            device = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"device must name a device such as 'cpu' or 'cuda:0', got {device!r}") from err
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.device = device
        self.shuffle, self.drop_last, self.seed, self.augment = shuffle, drop_last, seed, augment
        self.num_workers = default_num_workers() if num_workers is None else int(num_workers)
        self.n = len(dataset)
        memory = in_memory(dataset)
        self.memory = memory.to(self.device) if memory is not None else None
        self._loader = None
        self._sampler = None

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.n, self.batch_size)
        return full if (self.drop_last and full) else full + (rest > 0)

    @property
    def augmented(self) -> bool:
        """True when the same sample gives different inputs in different epochs."""
        if self.memory is not None:
            return self.augment and self.memory.augment is not None and self.memory.augment.active
        return True  # an item-by-item data set may hold any random transform

    def _generator(self, epoch: int) -> torch.Generator:
        dev = self.device if self.memory is not None else torch.device("cpu")
        return torch.Generator(device=dev).manual_seed(self.seed * 100_003 + epoch)

    def _stops(self) -> range:
        stop = self.n - self.n % self.batch_size if (self.drop_last and self.n >= self.batch_size) else self.n
        return range(0, stop, self.batch_size)

    def epoch(self, epoch: int = 0):
        """Iterate the batches of one epoch (see the class docstring)."""
        gen = self._generator(epoch)
        if self.shuffle:
            order = torch.randperm(self.n, generator=gen, device=gen.device)
        else:
            order = torch.arange(self.n, device=gen.device)
        if self.memory is not None:
            for lo in self._stops():
                idx = order[lo:lo + self.batch_size]
                yield self.memory.batch(idx, gen, self.augment), self.memory.labels[idx], idx
            return
        if self._loader is None:
            self._sampler = _EpochSampler(self.n)
            workers = self.num_workers
            self._loader = DataLoader(
                _Seeded(self.dataset), batch_size=self.batch_size, sampler=self._sampler, drop_last=self.drop_last,
                num_workers=workers, pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
            )
        self._sampler.set_epoch(order, int(torch.randint(0, 2**62, (1,), generator=gen)))
        blocking = self.device.type != "cuda"
        for x, y, idx in self._loader:
            yield (torch.as_tensor(x).to(self.device, non_blocking=not blocking),
                   torch.as_tensor(y).to(self.device, non_blocking=not blocking),
                   idx.to(self.device, non_blocking=not blocking))
