"""The device a run uses: :func:`resolve_device` turns ``"auto"``, ``"cpu"``, ``"cuda:N"`` into a
``torch.device`` that exists on this machine, or says why not."""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["resolve_device"]


def resolve_device(device: Optional[str] = None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when present, else CPU; otherwise ``torch.device(device)``.

    ``"cpu:N"`` is the CPU (there is one); ``"cuda:N"`` must name a GPU that exists.
    """
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'cuda:0' or a torch.device, got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from err
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type not in ("cuda", "mps", "xpu"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} was asked for but MPS (Apple's GPU) is not available on this machine")
    if dev.type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise ValueError(f"device {device!r} was asked for but no Intel GPU (XPU) is available on this machine")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} GPU(s), "
                         f"numbered from 0")
    return dev
