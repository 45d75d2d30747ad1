"""Figures of training runs: learning curves.

Every function takes ``ax=None`` (a new figure when omitted) and returns what it drew on.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..methods import color as method_color
from .._checks import check_bool
from ._base import _axes, check_color, check_dict

__all__ = ["plot_learning_curves"]


def plot_learning_curves(histories, key: str = "loss", *, normalise: bool = False, ax=None,
                         colors: Optional[dict] = None, title: Optional[str] = None,
                         ylabel: Optional[str] = None, linestyle: str = "-"):
    r"""One line per training run: a per-epoch quantity of its history against the epoch.

    .. math::

        y_e = h_e[\mathrm{key}] \quad\text{or, with ``normalise``,}\quad y_e = h_e[\mathrm{key}] / h_1[\mathrm{key}]

    Parameters
    ----------
    histories : dict of label -> list of dict, or list of dict
        Training histories (:attr:`pcoh.train.TrainedModel.history`): one dict per epoch with an
        ``"epoch"`` entry and named values (``"loss"``, ``"transfer"``, ``"ce"``,
        ``"test_accuracy"``). A single list is drawn unlabelled. Runs without ``key`` (e.g. the
        ``"ce"`` student has no ``"transfer"``) are skipped.
    key : str, default "loss"
        The quantity drawn.
    normalise : bool, default False
        Divide each curve by its first epoch's value, so losses of different scales share an
        axis (every curve starts at 1).
    colors : dict of label -> colour, optional
        Default: the colour of the label's first word in :mod:`pcoh.methods`.
    linestyle : str, default "-"

    Returns
    -------
    matplotlib.axes.Axes
    """
    if isinstance(histories, (list, tuple)):
        histories = {None: histories}
    if not isinstance(histories, dict):
        raise TypeError(f"histories must be a dict of label -> history or one history (list), got {type(histories).__name__}")
    if not isinstance(key, str):
        raise TypeError(f"key must be the name of a logged value (a string), got {type(key).__name__} {key!r}")
    normalise = check_bool(normalise, "normalise")
    colors = check_dict(colors, "colors", "label -> colour")
    for name, c in colors.items():
        check_color(c, f"colors[{name!r}]")
    ax = _axes(ax)
    drawn = 0
    for label, history in histories.items():
        rows = [h for h in (history or []) if key in h]
        if not rows:
            continue
        epoch = np.array([h.get("epoch", i + 1) for i, h in enumerate(rows)], dtype=float)
        y = np.array([h[key] for h in rows], dtype=float)
        if normalise and y[0] != 0:
            y = y / y[0]
        color = colors.get(label, method_color(label) if label is not None else "#444444")
        ax.plot(epoch, y, linestyle, color=color, lw=2, marker="o" if len(y) < 12 else None, ms=4,
                label=None if label is None else str(label))
        drawn += 1
    if not drawn:
        seen = sorted({name for history in histories.values() for h in (history or []) for name in h})
        raise ValueError(f"key: no history holds {key!r}; the histories hold {seen}")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or (f"{key} / first epoch" if normalise else key))
    if any(label is not None for label in histories):
        ax.legend(loc="best")
    if title:
        ax.set_title(title)
    return ax
