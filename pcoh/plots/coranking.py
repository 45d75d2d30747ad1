r"""Figures of the co-ranking diagnostics (:mod:`pcoh.coranking`): :math:`R_{NX}(K)` against log K
by method, the co-ranking matrix, and points coloured by the share of their K-neighbourhood kept.

Every function takes ``ax=None`` (a new figure when omitted) and returns what it drew on.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .._checks import as_array, check_bool, check_float, check_names
from ..methods import color as method_color
from ._base import _axes, check_nonempty_dict, slide_figure

__all__ = ["rnx_by_method", "plot_rnx_curves", "plot_rnx_panels", "plot_coranking_matrix", "plot_point_scores"]

MODES = ("class-unaware", "class-aware")


def _curve(value) -> np.ndarray:
    r = value["r_nx"] if isinstance(value, dict) else value
    return as_array(r, "curves' R_NX", ndim=1)


def rnx_by_method(curves: dict, mode: str) -> dict:
    """The R_NX curves of one mode, stacked by method: ``label -> (seeds, K)`` array.

    ``curves`` maps run keys ``(student, method, mode, seed)`` (and ``"teacher"``, skipped) to an
    R_NX curve or to ``{"r_nx": curve}`` (as :attr:`pcoh.experiment.ExperimentResult.curves`).
    Labels are the method names, or ``"student method"`` when several students ran; methods in
    order of first appearance, seeds in increasing order.
    """
    check_nonempty_dict(curves, "curves", "run key -> R_NX curve")
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a mode name (str), e.g. 'class-unaware', got {type(mode).__name__}")
    keys = [k for k in curves if isinstance(k, tuple) and len(k) == 4 and k[2] == mode]
    several = len({k[0] for k in keys}) > 1
    out: dict = {}
    for k in sorted(keys, key=lambda k: k[3]):
        out.setdefault(f"{k[0]} {k[1]}" if several else str(k[1]), []).append(_curve(curves[k]))
    order = list(dict.fromkeys(f"{k[0]} {k[1]}" if several else str(k[1]) for k in keys))
    return {label: np.vstack(out[label]) for label in order}


def plot_rnx_curves(curves: dict, *, mode: str = "class-unaware", ax=None, title: Optional[str] = None,
                    methods: Optional[Sequence[str]] = None):
    r""":math:`R_{NX}(K)` against K on a log axis, one line per method (mean over seeds) with a band
    from the lowest to the highest seed.

    Parameters
    ----------
    curves : dict
        Run key ``(student, method, mode, seed)`` -> R_NX curve (K = 1..N-2) or ``{"r_nx": curve}``.
    mode : str, default "class-unaware"
        The runs drawn.
    methods : sequence of str, optional
        Labels to draw, in order; default every method of the mode.

    Returns
    -------
    matplotlib.axes.Axes
    """
    by_method = rnx_by_method(curves, mode)
    if not by_method:
        raise ValueError(f"curves hold no run of mode {mode!r}")
    if methods is not None:
        methods = check_names(methods, "methods")
        missing = [m for m in methods if m not in by_method]
        if missing:
            raise ValueError(f"methods {missing} have no curve in mode {mode!r}; there are {list(by_method)}")
        by_method = {m: by_method[m] for m in methods}
    ax = _axes(ax)
    for label, stack in by_method.items():
        k = np.arange(1, stack.shape[1] + 1)
        color = method_color(label.split(" ")[-1], "#444444")
        ax.plot(k, stack.mean(axis=0), color=color, lw=2.2 if label.endswith("pc") else 1.5, label=label)
        if len(stack) > 1:
            ax.fill_between(k, stack.min(axis=0), stack.max(axis=0), color=color, alpha=0.18, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("neighbourhood size K")
    ax.set_ylabel("$R_{NX}(K)$")
    ax.set_title(title or f"{mode} students")
    ax.grid(alpha=0.3, which="both")
    return ax


def plot_rnx_panels(curves: dict, *, modes: Sequence[str] = MODES, size: str = "full"):
    """One :func:`plot_rnx_curves` panel per mode (class-unaware and class-aware), one shared y axis and
    one legend of the methods above the panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    present = [m for m in check_names(modes, "modes") if rnx_by_method(curves, m)]
    if not present:
        raise ValueError(f"curves hold no run of the modes {list(modes)}")
    fig, axes = slide_figure(1, len(present), size=size, squeeze=False, sharey=True)
    for ax, mode in zip(axes[0], present):
        plot_rnx_curves(curves, mode=mode, ax=ax, title=f"{mode} students")
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    fig.suptitle("$R_{NX}(K)$: mean over seeds, band from the lowest to the highest seed")
    # Every method of any panel, once (class-aware-only methods are in the second panel alone).
    legend: dict = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncol=min(len(legend), 6))
    return fig


def plot_coranking_matrix(q, *, ax=None, title: Optional[str] = None, colorbar: bool = True):
    """The co-ranking matrix on a log colour scale: teacher rank down, student rank across.

    The diagonal band holds the pairs whose rank the student keeps; below it (student rank smaller)
    the intrusions, above it the extrusions. Empty cells are left white.

    Parameters
    ----------
    q : array-like, shape (N - 1, N - 1)
        :func:`pcoh.coranking.coranking_matrix`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib.colors import LogNorm

    m = as_array(q, "q", ndim=2)
    colorbar = check_bool(colorbar, "colorbar")
    if m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(f"q must be a square (N - 1, N - 1) co-ranking matrix, got shape {m.shape}")
    if (m < 0).any():
        raise ValueError("q must hold counts (non-negative), got negative entries")
    ax = _axes(ax, size="half")
    shown = np.ma.masked_less_equal(m, 0)
    n1 = m.shape[0]
    image = ax.imshow(shown, norm=LogNorm(vmin=1, vmax=max(2.0, float(m.max()))), cmap="magma_r",
                      extent=(0.5, n1 + 0.5, n1 + 0.5, 0.5), interpolation="nearest")
    ax.set_xlabel("student rank l")
    ax.set_ylabel("teacher rank k")
    ax.set_title(title or "co-ranking matrix")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="pairs (log scale)", shrink=0.8)
    return ax


def plot_point_scores(embedding, scores, *, ax=None, title: Optional[str] = None, s: float = 12,
                      colorbar: bool = True):
    """A 2-D embedding coloured by a per-point score in [0, 1], e.g. the share of each point's teacher
    K-neighbourhood that the student keeps (:func:`pcoh.coranking.qnx_per_point`).

    Parameters
    ----------
    embedding : array-like, shape (n, 2)
    scores : array-like, shape (n,)
        Values in [0, 1].

    Returns
    -------
    matplotlib.axes.Axes
    """
    e = as_array(embedding, "embedding", ndim=2, columns=2, shape_doc="(n, 2)")
    v = as_array(scores, "scores", ndim=1)
    if len(v) != len(e):
        raise ValueError(f"scores must hold one value per point of the embedding ({len(e)}), got {len(v)}")
    if (v < 0).any() or (v > 1).any():
        raise ValueError("scores must lie in [0, 1]")
    s = check_float(s, "s", minimum=0.0, strict=True)
    colorbar = check_bool(colorbar, "colorbar")
    ax = _axes(ax, size="half")
    points = ax.scatter(e[:, 0], e[:, 1], c=v, s=s, cmap="viridis", vmin=0, vmax=1, lw=0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "share of each point's neighbourhood kept")
    if colorbar:
        ax.figure.colorbar(points, ax=ax, label="share kept", shrink=0.8)
    return ax
