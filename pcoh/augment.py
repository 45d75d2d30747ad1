"""Batched data augmentation on the training device.

The in-memory training path (:mod:`pcoh.batches`, :class:`pcoh.batches.BatchSource`) keeps a whole data
set as one tensor on the device and augments each mini-batch there, in one gather, instead of
running torchvision's per-image transforms in worker processes. The two transforms replaced are
the ones the CIFAR and MNIST data sets use:

- ``RandomCrop(size, padding=p)``: pad every side with ``p`` zeros, then cut a ``size x size``
  window whose top-left corner ``(i, j)`` is uniform on ``{0, ..., 2p}^2`` (torchvision draws
  ``i`` and ``j`` with ``torch.randint(0, 2p + 1)``, independently);
- ``RandomHorizontalFlip(p=0.5)``: mirror the columns with probability ``p``.

Here a batch of ``n`` images draws ``n`` row offsets, ``n`` column offsets and ``n`` flips from
a :class:`torch.Generator` on the data's device (seeded per epoch by the training loop), so the
distribution of the augmented images equals torchvision's, and a fixed seed gives fixed images.
Padding is applied to the raw pixels (uint8 zeros, i.e. black), before normalisation, exactly
where torchvision applies it (on the PIL image, before ``ToTensor``/``Normalize``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ._checks import check_float, check_int

__all__ = ["CropFlip", "draw", "crop_flip", "gather_crop_flip"]


@dataclass(frozen=True)
class CropFlip:
    """A random crop with zero padding followed by a random horizontal flip.

    Parameters
    ----------
    padding : int, default 0
        Zeros added on each side before cropping back to the input size; 0: no crop.
    flip : float, default 0.0
        Probability of a horizontal flip; 0: never.
    """

    padding: int = 0
    flip: float = 0.0

    def __post_init__(self):
        check_int(self.padding, "padding", minimum=0)
        check_float(self.flip, "flip", minimum=0.0, maximum=1.0)

    @property
    def active(self) -> bool:
        """False when the transform is the identity."""
        return self.padding > 0 or self.flip > 0

    def __call__(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Augment a batch ``(n, C, H, W)``; see :func:`crop_flip`."""
        if not self.active:
            return images
        rows, cols, flips = draw(images.shape[0], self.padding, self.flip, generator=generator, device=images.device)
        return crop_flip(images, rows, cols, flips, self.padding)


def _check_tensor(x, name: str, ndim: int) -> None:
    """``x`` is a tensor of ``ndim`` dimensions (shapes only: nothing that waits for a device)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(x.shape)}")


def _check_draws(rows, cols, flips, n: int) -> None:
    """``rows``, ``cols`` and ``flips`` are (n,) tensors, as :func:`draw` gives them."""
    for name, x in (("rows", rows), ("cols", cols), ("flips", flips)):
        _check_tensor(x, name, 1)
        if x.shape[0] != n:
            raise ValueError(f"{name} must hold one value per image ({n}), got shape {tuple(x.shape)}")


def draw(n: int, padding: int, flip: float, *, generator: Optional[torch.Generator] = None, device=None):
    """The random parameters of ``n`` crops and flips.

    Parameters
    ----------
    n : int
        Batch size.
    padding : int
        Offsets are drawn uniformly on ``{0, ..., 2 * padding}``.
    flip : float
        Probability of a flip.
    generator : torch.Generator, optional
        On ``device``; the default generator when omitted.
    device : torch.device, optional
        Where the draws are made (the generator's device).

    Returns
    -------
    rows, cols : torch.Tensor, int64, (n,)
        Top-left corner of each crop in the padded image.
    flips : torch.Tensor, bool, (n,)
    """
    n, padding = check_int(n, "n", minimum=0), check_int(padding, "padding", minimum=0)
    flip = check_float(flip, "flip", minimum=0.0, maximum=1.0)
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        device = generator.device
    rows = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    cols = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    flips = torch.rand(n, generator=generator, device=device) < flip
    return rows, cols, flips


def crop_flip(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, flips: torch.Tensor, padding: int) -> torch.Tensor:
    r"""Crop each zero-padded image at its own offset and flip it where asked, in one gather.

    .. math::

        \mathrm{out}[k, c, a, b] = P[k, c, r_k + a, \; c_k + (W - 1 - b \text{ if flipped else } b)]

    with ``P`` the images padded by ``padding`` zeros on every side.

    Parameters
    ----------
    images : torch.Tensor, (n, C, H, W)
        Any dtype (uint8 raw pixels in the training loop).
    rows, cols : torch.Tensor, int64, (n,)
        Offsets in ``[0, 2 * padding]``.
    flips : torch.Tensor, bool, (n,)
    padding : int

    Returns
    -------
    torch.Tensor, (n, C, H, W)
        Same dtype and device as ``images``.
    """
    _check_tensor(images, "images", 4)
    _check_draws(rows, cols, flips, images.shape[0])
    padding = check_int(padding, "padding", minimum=0)
    padded = torch.nn.functional.pad(images, (padding,) * 4) if padding else images
    idx = torch.arange(images.shape[0], device=images.device)
    return gather_crop_flip(padded.contiguous(), idx, rows, cols, flips, tuple(images.shape[-2:]))


def gather_crop_flip(padded: torch.Tensor, idx: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                     flips: torch.Tensor, size: tuple) -> torch.Tensor:
    """Select, crop and flip samples of an already padded store in one ``torch.take``.

    The training loop pads its whole in-memory data set once and reads each batch straight
    from it, without copying the selected images first.

    Parameters
    ----------
    padded : torch.Tensor, (N, C, Hp, Wp), contiguous
    idx : torch.Tensor, int64, (n,)
        Samples of the batch.
    rows, cols, flips : torch.Tensor, (n,)
        As drawn by :func:`draw`; offsets in ``[0, Hp - H]`` and ``[0, Wp - W]``.
    size : (H, W)

    Returns
    -------
    torch.Tensor, (n, C, H, W)
    """
    _check_tensor(padded, "padded", 4)
    _check_tensor(idx, "idx", 1)
    _check_draws(rows, cols, flips, idx.shape[0])
    if not (isinstance(size, (tuple, list)) and len(size) == 2):
        raise TypeError(f"size must be a pair (H, W), got {type(size).__name__} {size!r}")
    h, w = check_int(size[0], "size", minimum=1), check_int(size[1], "size", minimum=1)
    _, c, hp, wp = padded.shape
    if h > hp or w > wp:
        raise ValueError(f"size must fit in the padded images ({hp}, {wp}), got {tuple(size)}")
    n = idx.shape[0]
    dev = padded.device
    ar_w = torch.arange(w, device=dev)
    # Flipping after cropping reads column w - 1 - b of the crop: fold it into the column index.
    col_in_crop = torch.where(flips[:, None], (w - 1) - ar_w, ar_w)  # (n, w)
    r_idx = rows[:, None] + torch.arange(h, device=dev)  # (n, h)
    c_idx = cols[:, None] + col_in_crop  # (n, w)
    pos = (r_idx[:, :, None] * wp + c_idx[:, None, :]).reshape(n, 1, h * w)  # within one (Hp, Wp) plane
    plane = (idx[:, None] * c + torch.arange(c, device=dev)) * (hp * wp)  # (n, c): start of each plane
    return torch.take(padded, plane[:, :, None] + pos).reshape(n, c, h, w)
