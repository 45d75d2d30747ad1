"""The registry of transfer losses by name: :data:`LOSSES`, :func:`available`, :func:`get`, :func:`arguments`."""
from __future__ import annotations

import inspect

from .base import TransferLoss
from .baselines import CCLoss, FitNetLoss, KDLoss, PKTLoss, RKDLoss, SPLoss
from .crd import CRDLoss
from .dist import DISTLoss
from .pc import PerceptionCoherenceLoss
from .rrd import RRDLoss

LOSSES: dict[str, type[TransferLoss]] = {
    "pc": PerceptionCoherenceLoss,
    "fitnet": FitNetLoss,
    "rkd": RKDLoss,
    "pkt": PKTLoss,
    "sp": SPLoss,
    "cc": CCLoss,
    "kd": KDLoss,
    "crd": CRDLoss,
    "rrd": RRDLoss,
    "dist": DISTLoss,
}


def available() -> list[str]:
    """Names of the registered transfer losses, sorted."""
    return sorted(LOSSES)


def get(name, **kwargs) -> TransferLoss:
    """Build a transfer loss by name, or return a :class:`TransferLoss` given as it is.

    Parameters
    ----------
    name : str or TransferLoss
        One of :func:`available` (e.g. ``"pc"``, ``"rkd"``), or a loss instance.
    **kwargs
        Constructor arguments. ``student_dim`` and ``teacher_dim`` (feature widths) and
        ``num_samples`` (training-set size) are passed only to losses whose constructor takes
        them (FitNet's regressor, CRD's embeddings and memory, RRD's projections and queue, the PC loss's
        queue), so a training
        loop can always pass them.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the registered names.
    """
    if isinstance(name, TransferLoss):
        return name
    cls = _registered(name)
    accepted = arguments(name)
    for optional in ("student_dim", "teacher_dim", "num_samples"):
        if optional in kwargs and optional not in accepted:
            kwargs.pop(optional)
    return cls(**kwargs)


def arguments(name: str) -> dict:
    """The constructor arguments of the loss called ``name``, each with its default.

    Read from the constructor's signature, so a loss's defaults are stated once, in its class.

    Parameters
    ----------
    name : str
        One of :func:`available`.

    Returns
    -------
    dict
        Argument name -> default value, in the constructor's order; an argument without a
        default (e.g. FitNet's ``student_dim``) maps to ``inspect.Parameter.empty``.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the registered names.
    """
    parameters = inspect.signature(_registered(name).__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _registered(name) -> type[TransferLoss]:
    if not isinstance(name, str):
        raise TypeError(f"name must be a loss name {available()} or a TransferLoss, got {type(name).__name__}")
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of {available()}") from None

