"""Figures of the main job and the notebooks.

Every function takes ``ax=None`` (a new figure is made when omitted) and returns the axes, as
scikit-learn and umap's plot helpers do. :func:`savefig` writes PNG and SVG side by side.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

__all__ = ["style", "savefig", "plot_metric_bars", "plot_per_reference",
           "plot_points", "plot_dissimilarity_matrix", "plot_rank_vs_rank", "plot_soft_ranks",
           "plot_reference_ecdfs", "plot_probabilistic_ranks", "plot_uniformity", "plot_pc_vs_n",
           "plot_concordance_by_gap", "plot_per_class_heatmap", "plot_soft_rank_bars",
           "plot_learning_curves", "plot_class_dissimilarities", "plot_images", "plot_neighbors",
           "plot_rank_hexbin", "per_reference_frame", "plot_per_reference_distributions",
           "plot_global_vs_per_reference", "plot_embedding", "plot_embedding_grid", "style_results"]

#: One colour per method, the same in every figure.
METHOD_COLORS = {
    "pc": "#d62728",
    "rkd": "#1f77b4",
    "pkt": "#2ca02c",
    "sp": "#9467bd",
    "cc": "#8c564b",
    "fitnet": "#e377c2",
    "crd": "#ff7f0e",
    "kd": "#17becf",
    "ce": "#7f7f7f",
    "untrained": "#bcbd22",
    "teacher": "#000000",
}


def style() -> None:
    """A consistent, slide-readable matplotlib style (larger fonts, no top/right spines)."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "font.size": 12,
        "axes.titlesize": 13,
        "axes.labelsize": 12,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "svg.hashsalt": "pcoh",  # stable SVG ids, so re-exported figures diff cleanly
    })


def _axes(ax, figsize=(7, 4)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def savefig(fig, path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` as ``path.png`` and ``path.svg`` (creating the folder); returns the paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        fig.savefig(target, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
        out.append(target)
    return out


def plot_metric_bars(results: pd.DataFrame, metric: str = "pc_n", *, ax=None, title: Optional[str] = None):
    """Mean +- std over seeds of one metric, one bar per method, grouped by mode.

    Parameters
    ----------
    results : pandas.DataFrame
        Long-format results with columns ``method``, ``mode``, ``seed`` and ``metric``.
    metric : str, default "pc_n"
    """
    if metric not in results.columns:
        raise ValueError(f"metric must be a column of results, one of {list(results.columns)}; got {metric!r}")
    ax = _axes(ax)
    modes = [m for m in ("class-unaware", "class-aware") if m in set(results["mode"])]
    width = 0.8 / max(len(modes), 1)
    methods = list(dict.fromkeys(results.loc[results["mode"].isin(modes), "method"]))
    x = np.arange(len(methods))
    for k, mode in enumerate(modes):
        sub = results[results["mode"] == mode].groupby("method")[metric]
        mean, std = sub.mean().reindex(methods), sub.std().reindex(methods).fillna(0.0)
        ax.bar(x + (k - (len(modes) - 1) / 2) * width, mean.values, width, yerr=std.values,
               color=[METHOD_COLORS.get(m, "#999999") for m in methods],
               alpha=1.0 if mode == "class-unaware" else 0.55, edgecolor="black", linewidth=0.6,
               label=mode, capsize=3)
    ax.set_xticks(x, methods)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} by method (solid: class-unaware, light: class-aware)")
    return ax


def plot_per_reference(values: dict, *, ax=None, title: str = "Per-reference Spearman with the teacher"):
    """Box plot of per-reference values (e.g. Spearman), one box per label.

    Parameters
    ----------
    values : dict of label -> array-like (n,)
    """
    if not values:
        raise ValueError("values must hold at least one label -> array")
    ax = _axes(ax)
    labels = list(values)
    ax.boxplot([np.asarray(values[k]) for k in labels], showfliers=False)
    ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=30, ha="right")
    ax.set_ylabel("Spearman per reference")
    ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- perception coherence
def _off_diagonal_ranks(matrix) -> np.ndarray:
    """Average ranks of each row of a square (n, n) matrix without its diagonal: (n, n - 1)."""
    import torch

    from .ranking import rank

    d = np.asarray(matrix, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"a dissimilarity matrix must be square (n, n), got shape {d.shape}")
    n = d.shape[0]
    rows = d[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    return rank(torch.from_numpy(rows)).numpy()


def plot_points(points, *, ax=None, reference: Optional[int] = None, annotate: bool = True,
                color: str = "#444444", title: Optional[str] = None):
    """Scatter plot of 2-D points, numbered, with an optional reference point highlighted.

    Parameters
    ----------
    points : array-like, shape (n, 2)
    reference : int, optional
        Index drawn as a large red star.
    annotate : bool, default True
        Write each point's index next to it.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must be 2-D (n, 2), got shape {p.shape}")
    ax = _axes(ax, figsize=(4.5, 4.5))
    ax.scatter(p[:, 0], p[:, 1], s=45, color=color, zorder=2)
    if reference is not None:
        ax.scatter(p[reference, 0], p[reference, 1], s=260, marker="*", color="#d62728", zorder=3,
                   label=f"reference {reference}")
        ax.legend(loc="best")
    if annotate:
        for i, (a, b) in enumerate(p):
            ax.annotate(str(i), (a, b), xytext=(4, 4), textcoords="offset points", fontsize=9, color="#555555")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return ax


def plot_dissimilarity_matrix(matrix, *, ax=None, title: Optional[str] = None, cmap: str = "viridis",
                              colorbar: bool = True, label: str = "dissimilarity",
                              vmin: Optional[float] = None, vmax: Optional[float] = None):
    """Heat map of an (n, n) dissimilarity matrix, row = reference, column = compared point.

    Parameters
    ----------
    matrix : array-like, shape (n, n)
    colorbar : bool, default True
        Add a colour bar labelled ``label``.
    vmin, vmax : float, optional
        Colour range; give several matrices the same range to compare their scales.
    """
    d = np.asarray(matrix, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"matrix must be 2-D (n, n), got shape {d.shape}")
    ax = _axes(ax, figsize=(4.5, 4))
    im = ax.imshow(d, cmap=cmap, interpolation="nearest", vmin=vmin, vmax=vmax)
    ax.set_xlabel("compared point j")
    ax.set_ylabel("reference i")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    if title:
        ax.set_title(title)
    return ax


def plot_rank_vs_rank(teacher_matrix, student_matrix, *, ax=None, reference: Optional[int] = None,
                      title: Optional[str] = None, color: str = "#d62728"):
    r"""Student rank against teacher rank of every compared point, seen from every reference.

    Each reference :math:`i` ranks the other n - 1 points by :math:`\delta_T(x_i, \cdot)` and by
    :math:`\delta_S(x_i, \cdot)`; every (reference, compared point) pair is a grey dot at
    :math:`(r^T_i(j), r^S_i(j))`, the chosen reference's points in colour. Perception-coherent
    students put every dot on the diagonal.

    Parameters
    ----------
    teacher_matrix, student_matrix : array-like, shape (n, n)
        Dissimilarity matrices of the same n points.
    reference : int, optional
        The reference drawn in colour, joined in teacher order.
    """
    rt, rs = _off_diagonal_ranks(teacher_matrix), _off_diagonal_ranks(student_matrix)
    if rt.shape != rs.shape:
        raise ValueError(f"teacher_matrix and student_matrix must have the same shape, got {rt.shape} and {rs.shape}")
    ax = _axes(ax, figsize=(4.5, 4.5))
    m = rt.shape[1]
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.15, 0.15, size=rt.shape)
    ax.scatter(rt + jitter, rs - jitter, s=8, color="#bbbbbb", alpha=0.7, lw=0, label="all references")
    ax.plot([1, m], [1, m], color="black", lw=0.8, ls="--")
    if reference is not None:
        order = np.argsort(rt[reference])
        ax.plot(rt[reference][order], rs[reference][order], "-o", color=color, ms=5, lw=1.2,
                label=f"reference {reference}")
        ax.legend(loc="upper left")
    ax.set_xlabel("teacher rank $r^T_i(j)$")
    ax.set_ylabel("student rank $r^S_i(j)$")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax


def plot_soft_ranks(values, strengths, *, ax=None, title: Optional[str] = None):
    r"""Soft ranks of one fixed vector as the regularisation strength :math:`\varepsilon` varies.

    One line per entry of ``values``; the hard ranks are marked on the left, the mean rank
    :math:`(m + 1)/2` (the :math:`\varepsilon \to \infty` limit) is dashed.

    Parameters
    ----------
    values : array-like, shape (m,)
    strengths : array-like, shape (k,)
        Positive strengths, drawn on a log axis.
    """
    import torch

    from .ranking import rank, soft_rank

    v = torch.as_tensor(np.asarray(values, dtype=np.float64))
    if v.dim() != 1:
        raise ValueError(f"values must be 1-D (m,), got shape {tuple(v.shape)}")
    eps = np.asarray(strengths, dtype=np.float64)
    if eps.ndim != 1 or not (eps > 0).all():
        raise ValueError("strengths must be a 1-D array of positive numbers")
    curves = np.stack([soft_rank(v[None], float(e))[0].numpy() for e in eps])  # (k, m)
    hard = rank(v).numpy()
    m = v.numel()
    ax = _axes(ax, figsize=(7, 4))
    import matplotlib.pyplot as plt

    colors = plt.cm.viridis(np.linspace(0, 0.95, m))
    for i in np.argsort(hard):
        ax.plot(eps, curves[:, i], color=colors[int(hard[i]) - 1], lw=1.8,
                label=f"$\\theta_{{{i}}} = {v[i].item():.2g}$")
        ax.plot(eps[0], hard[i], "o", color=colors[int(hard[i]) - 1], ms=6)
    ax.axhline((m + 1) / 2, color="black", ls="--", lw=0.8)
    ax.text(eps[-1], (m + 1) / 2, " mean rank", va="bottom", ha="right", fontsize=10)
    ax.set_xscale("log")
    ax.set_xlabel(r"strength $\varepsilon$")
    ax.set_ylabel("soft rank")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9)
    ax.set_title(title or r"soft_rank$_\varepsilon(\theta)$: hard ranks (dots) to the mean rank")
    return ax


def plot_reference_ecdfs(teacher_dissimilarities, student_dissimilarities, *, highlight=None, ax=None,
                         student_label: str = "student", student_color: str = "#d62728"):
    r"""Empirical distribution functions :math:`\hat F^T_x` and :math:`\hat F^S_x` of one reference.

    Left panel the teacher's dissimilarities from the reference, right panel the student's, each
    on its own scale. The ``highlight`` compared points are marked on both curves with the same
    colour: their heights are the probabilistic ranks :math:`u^T(x, x')` and :math:`u^S(x, x')`,
    equal on both panels for a perception-coherent student.

    Parameters
    ----------
    teacher_dissimilarities, student_dissimilarities : array-like, shape (m,)
        :math:`\delta(x, x_j)` for the same m compared points (e.g. from
        :func:`pcoh.coherence.reference_dissimilarities`).
    highlight : sequence of int, optional
        Positions (in ``0..m-1``) of compared points to mark; default the points at the teacher's
        10, 30, 50, 70 and 90 % quantiles.
    ax : sequence of two Axes, optional
        Where to draw; a new (1, 2) figure when omitted.

    Returns
    -------
    numpy.ndarray of two Axes
    """
    dt = np.asarray(teacher_dissimilarities, dtype=np.float64)
    ds = np.asarray(student_dissimilarities, dtype=np.float64)
    if dt.ndim != 1 or dt.shape != ds.shape:
        raise ValueError(f"dissimilarities must be 1-D of equal length, got {dt.shape} and {ds.shape}")
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.subplots(1, 2, figsize=(11, 4), sharey=True)[1]
    ax = np.asarray(ax)
    m = dt.size
    if highlight is None:
        highlight = np.argsort(dt)[np.round(np.array([0.1, 0.3, 0.5, 0.7, 0.9]) * (m - 1)).astype(int)]
    highlight = np.asarray(highlight, dtype=int)
    import matplotlib.pyplot as plt

    colors = plt.cm.tab10(np.arange(len(highlight)) % 10)
    for a, d, name, color in ((ax[0], dt, "teacher", "black"), (ax[1], ds, student_label, student_color)):
        x = np.sort(d)
        a.step(x, np.arange(1, m + 1) / m, where="post", color=color, lw=1.6)
        u = (np.searchsorted(x, d[highlight], side="left") + np.searchsorted(x, d[highlight], side="right")) / (2 * m)
        for k, (dk, uk) in enumerate(zip(d[highlight], u)):
            a.plot([x[0], dk], [uk, uk], ls=":", color=colors[k], lw=1)
            a.plot(dk, uk, "o", color=colors[k], ms=8, mec="black", mew=0.5)
        a.set_xlabel(f"{name} dissimilarity from the reference")
        a.set_title(rf"$\hat F^{{{'T' if name == 'teacher' else 'S'}}}_x$: {name}")
    ax[0].set_ylabel("empirical distribution function")
    return ax


def plot_probabilistic_ranks(u_teacher, u_student, *, ax=None, kind: str = "scatter", gridsize: int = 30,
                             color: str = "#d62728", title: Optional[str] = None):
    r"""Probabilistic ranks :math:`u^S` against :math:`u^T` of the same (reference, point) pairs.

    Parameters
    ----------
    u_teacher, u_student : array-like, any shape (flattened), values in [0, 1]
    kind : {"scatter", "hexbin"}, default "scatter"
        ``"scatter"`` for one reference, ``"hexbin"`` (log counts) for pairs pooled over many.
    gridsize : int, default 30
        Hexagons across, ``"hexbin"`` only.
    """
    ut = np.asarray(u_teacher, dtype=np.float64).ravel()
    us = np.asarray(u_student, dtype=np.float64).ravel()
    if ut.shape != us.shape:
        raise ValueError(f"u_teacher and u_student must hold as many values, got {ut.size} and {us.size}")
    if kind not in ("scatter", "hexbin"):
        raise ValueError(f"kind must be 'scatter' or 'hexbin', got {kind!r}")
    ax = _axes(ax, figsize=(4.5, 4.5))
    if kind == "scatter":
        ax.scatter(ut, us, s=10, color=color, alpha=0.6, lw=0)
    else:
        hb = ax.hexbin(ut, us, gridsize=gridsize, extent=(0, 1, 0, 1), bins="log", cmap="magma_r", mincnt=1)
        ax.figure.colorbar(hb, ax=ax, fraction=0.046, pad=0.04, label="pairs (log)")
    ax.plot([0, 1], [0, 1], color="black", ls="--", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("teacher $u^T(x, x')$")
    ax.set_ylabel("student $u^S(x, x')$")
    if title:
        ax.set_title(title)
    return ax


def plot_uniformity(u, *, ax=None, bins: int = 20, color: str = "#444444", label: Optional[str] = None,
                    title: Optional[str] = None):
    """Density histogram of probabilistic ranks against the Uniform(0, 1) density (dashed).

    Parameters
    ----------
    u : array-like, any shape (flattened), values in [0, 1]
    bins : int, default 20
    """
    v = np.asarray(u, dtype=np.float64).ravel()
    ax = _axes(ax, figsize=(5, 3.5))
    ax.hist(v, bins=bins, range=(0, 1), density=True, histtype="stepfilled", alpha=0.35, color=color,
            label=label)
    ax.hist(v, bins=bins, range=(0, 1), density=True, histtype="step", color=color, lw=1.2)
    ax.axhline(1.0, color="black", ls="--", lw=0.8, label="Uniform(0, 1)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("probabilistic rank $u$")
    ax.set_ylabel("density")
    ax.legend(loc="lower center")
    if title:
        ax.set_title(title)
    return ax


def plot_pc_vs_n(table: pd.DataFrame, *, full: Optional[float] = None, expected=None, ax=None,
                 color: str = "#d62728", label: Optional[str] = None, band=(5, 95), inverse: bool = False):
    r"""The estimator :math:`PC_n` against the subset size n: mean and percentile band.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``n`` and ``pc_n``, several rows per n (:func:`pcoh.coherence.subsample_coherence`).
    full : float, optional
        The full-set value, drawn as a horizontal dotted line.
    expected : (array-like, array-like), optional
        Sizes and predicted means (e.g. :func:`pcoh.coherence.expected_pc_n`), drawn dashed; an
        infinite size is drawn at :math:`1/n = 0` when ``inverse``.
    band : (float, float), default (5, 95)
        Percentiles of the shaded band.
    inverse : bool, default False
        ``False``: x is n on a log axis. ``True``: x is :math:`1/n` on a linear axis, where a bias
        of order :math:`1/n` is a straight line ending at the population value at 0.
    """
    if not {"n", "pc_n"} <= set(table.columns):
        raise ValueError(f"table must have columns 'n' and 'pc_n', got {list(table.columns)}")
    ax = _axes(ax)
    g = table.groupby("n")["pc_n"]
    n = np.asarray(g.mean().index, dtype=float)
    x = 1.0 / n if inverse else n
    ax.fill_between(x, g.quantile(band[0] / 100).values, g.quantile(band[1] / 100).values, color=color,
                    alpha=0.18, lw=0)
    ax.plot(x, g.mean().values, "o", color=color, ms=5, label=label)
    if expected is not None:
        en, ev = (np.asarray(a, dtype=float) for a in expected)
        order = np.argsort(en)
        en, ev = en[order], ev[order]
        ex = np.where(np.isinf(en), 0.0, 1.0 / en) if inverse else en
        keep = np.isfinite(ex) if inverse else np.isfinite(en)
        ax.plot(ex[keep], ev[keep], "--", color=color, lw=1.3)
    if full is not None:
        ax.axhline(full, color=color, ls=":", lw=1)
    if inverse:
        ax.set_xlabel("1 / n")
        ax.set_xlim(left=0)
    else:
        from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

        ax.set_xscale("log")
        ticks = [t for t in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if n.min() <= t <= n.max()]
        ax.xaxis.set_major_locator(FixedLocator(ticks + [n.max()]))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("subset size n")
    ax.set_ylabel("$PC_n$")
    return ax


def plot_concordance_by_gap(tables: dict, *, ax=None, title: Optional[str] = None):
    r"""Concordance probability against the teacher's rank gap of the compared pair, per method.

    Parameters
    ----------
    tables : dict of method -> pandas.DataFrame
        Outputs of :func:`pcoh.coherence.concordance_by_rank_gap` (columns ``gap_center``,
        ``concordance``, ``se``); methods are coloured by ``METHOD_COLORS``.
    """
    if not tables:
        raise ValueError("tables must hold at least one method -> table")
    ax = _axes(ax)
    for method, t in tables.items():
        color = METHOD_COLORS.get(method, None)
        ax.errorbar(t["gap_center"], t["concordance"], yerr=2 * t["se"], fmt="-o", ms=4, capsize=2,
                    color=color, label=method, lw=2.2 if method == "pc" else 1.3)
    ax.axhline(0.5, color="black", ls=":", lw=0.8)
    ax.set_xlabel(r"teacher rank gap $|r^T(j) - r^T(k)| / (N-1)$")
    ax.set_ylabel("concordance probability")
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", ncol=2)
    ax.set_title(title or "Which orders does the student keep?")
    return ax


def plot_per_class_heatmap(table: pd.DataFrame, *, ax=None, title: Optional[str] = None, cmap: str = "RdYlGn",
                           fmt: str = ".2f"):
    """Annotated heat map of a (model x class) table, e.g. :func:`pcoh.coherence.per_class_mean`.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows: models; columns: classes (an ``"all"`` column is drawn apart, after a gap line).
    fmt : str, default ".2f"
        Format of the cell annotations.
    """
    if table.empty:
        raise ValueError("table must not be empty")
    ax = _axes(ax, figsize=(1 + 0.75 * table.shape[1], 0.9 + 0.5 * table.shape[0]))
    values = table.to_numpy(dtype=float)
    im = ax.imshow(values, cmap=cmap, aspect="auto", vmin=np.nanmin(values), vmax=np.nanmax(values))
    ax.set_xticks(np.arange(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(np.arange(table.shape[0]), [str(r) for r in table.index])
    lo, hi = np.nanmin(values), np.nanmax(values)
    for (r, c), v in np.ndenumerate(values):
        dark = (v - lo) / (hi - lo + 1e-12)
        ax.text(c, r, format(v, fmt), ha="center", va="center", fontsize=9,
                color="white" if dark < 0.15 or dark > 0.85 else "black")
    if "all" in list(table.columns):
        ax.axvline(list(table.columns).index("all") - 0.5, color="white", lw=3)
    ax.spines[:].set_visible(False)
    ax.figure.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    if title:
        ax.set_title(title)
    return ax


def plot_soft_rank_bars(values, strength: float, *, ax=None, title: Optional[str] = None):
    r"""Soft ranks of a vector at one strength (bars) against its hard ranks (black ticks).

    Parameters
    ----------
    values : array-like, shape (m,)
    strength : float
        :math:`\varepsilon > 0` of :func:`pcoh.ranking.soft_rank`.
    """
    import torch

    from .ranking import rank, soft_rank

    v = torch.as_tensor(np.asarray(values, dtype=np.float64))
    if v.dim() != 1:
        raise ValueError(f"values must be 1-D (m,), got shape {tuple(v.shape)}")
    soft = soft_rank(v[None], float(strength))[0].numpy()
    hard = rank(v).numpy()
    m = v.numel()
    ax = _axes(ax, figsize=(6, 3.5))
    x = np.arange(m)
    ax.bar(x, soft, color="#d62728", alpha=0.75, label=r"soft rank")
    ax.scatter(x, hard, marker="_", s=500, color="black", lw=2.5, label="hard rank", zorder=3)
    ax.axhline((m + 1) / 2, color="black", ls="--", lw=0.8, label="mean rank")
    ax.set_xticks(x, [f"{t:.2g}" for t in v.tolist()])
    ax.set_xlabel(r"entry $\theta_j$")
    ax.set_ylabel("rank")
    ax.set_ylim(0, m + 0.8)
    ax.legend(loc="upper left", ncol=3, fontsize=9)
    ax.set_title(title or rf"$\varepsilon = {strength:.3g}$, sum = {soft.sum():.4g}")
    return ax


# --------------------------------------------------------------------------- experiment notebooks
def _features_np(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {x.shape}")
    return x


def _dissimilarities(features, metric, name: str = "features") -> np.ndarray:
    """(n, n) dissimilarities between the rows of ``features`` in ``metric``."""
    import torch

    from .dissimilarity import pairwise

    x = torch.as_tensor(np.ascontiguousarray(_features_np(features, name)))
    return pairwise(x, metric).double().numpy()


def _method_color(label) -> str:
    return METHOD_COLORS.get(str(label).split(" ")[0], "#444444")


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
        Default: :data:`METHOD_COLORS` of the label's first word.
    linestyle : str, default "-"

    Returns
    -------
    matplotlib.axes.Axes
    """
    if isinstance(histories, (list, tuple)):
        histories = {None: histories}
    if not isinstance(histories, dict):
        raise TypeError(f"histories must be a dict of label -> history or one history (list), got {type(histories).__name__}")
    ax = _axes(ax, figsize=(6, 4))
    drawn = 0
    for label, history in histories.items():
        rows = [h for h in (history or []) if key in h]
        if not rows:
            continue
        epoch = np.array([h.get("epoch", i + 1) for i, h in enumerate(rows)], dtype=float)
        y = np.array([h[key] for h in rows], dtype=float)
        if normalise and y[0] != 0:
            y = y / y[0]
        color = (colors or {}).get(label, _method_color(label) if label is not None else "#444444")
        ax.plot(epoch, y, linestyle, color=color, lw=2, marker="o" if len(y) < 12 else None, ms=4,
                label=None if label is None else str(label))
        drawn += 1
    if not drawn:
        seen = sorted({name for history in histories.values() for h in (history or []) for name in h})
        raise ValueError(f"no history holds {key!r}; the histories hold {seen}")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or (f"{key} / first epoch" if normalise else key))
    if any(label is not None for label in histories):
        ax.legend(loc="best", fontsize=10)
    if title:
        ax.set_title(title)
    return ax


def plot_class_dissimilarities(features, labels, *, metric="cosine", ax=None, title: Optional[str] = None,
                               class_names: Optional[Sequence[str]] = None, cmap: str = "viridis"):
    """Dissimilarity matrix of a set of features, rows and columns sorted by class.

    Draws :func:`plot_dissimilarity_matrix` of ``d(f_i, f_j)`` with the samples grouped by label
    (a stable sort, so the order inside a class is kept), white lines between classes and the
    class names at the block centres. A representation that separates classes shows dark
    diagonal blocks.

    Parameters
    ----------
    features : array-like, shape (n, d)
    labels : array-like, shape (n,)
        Integer class labels.
    metric : str or Dissimilarity, default "cosine"
        See :func:`pcoh.dissimilarity.pairwise`.
    class_names : sequence of str, optional
        Name of each class, indexed by label; default the labels themselves.

    Returns
    -------
    matplotlib.axes.Axes
    """
    y = np.asarray(labels).ravel()
    x = _features_np(features, "features")
    if len(y) != len(x):
        raise ValueError(f"labels must hold one label per row of features, got {len(y)} labels for {len(x)} rows")
    order = np.argsort(y, kind="stable")
    d = _dissimilarities(x[order], metric)
    ax = _axes(ax, figsize=(5.5, 4.8))
    plot_dissimilarity_matrix(d, ax=ax, title=title, cmap=cmap, label=f"{metric} dissimilarity"
                              if isinstance(metric, str) else "dissimilarity")
    classes, counts = np.unique(y[order], return_counts=True)
    edges = np.concatenate([[0], np.cumsum(counts)]) - 0.5
    for e in edges[1:-1]:
        ax.axhline(e, color="white", lw=0.8)
        ax.axvline(e, color="white", lw=0.8)
    centres = (edges[:-1] + edges[1:]) / 2
    names = [str(class_names[c]) if class_names is not None else str(c) for c in classes]
    ax.set_xticks(centres, names)
    ax.set_yticks(centres, names)
    ax.tick_params(length=0)
    ax.set_xlabel("compared sample (by class)")
    ax.set_ylabel("reference (by class)")
    return ax


def _as_images(images, mean=None, std=None) -> np.ndarray:
    """(n, H, W) grey or (n, H, W, 3) colour images in display range, normalisation undone."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (n, H, W) or (n, C, H, W) with C in (1, 3), got shape {x.shape}")
    c = x.shape[1]
    if mean is not None or std is not None:
        m = np.broadcast_to(np.asarray(0.0 if mean is None else mean, dtype=np.float64), (c,))
        s = np.broadcast_to(np.asarray(1.0 if std is None else std, dtype=np.float64), (c,))
        x = x * s[None, :, None, None] + m[None, :, None, None]
    return x[:, 0] if c == 1 else np.clip(x.transpose(0, 2, 3, 1), 0.0, 1.0)


def _mosaic(images: np.ndarray, nrows: int, ncols: int, pad: int, row_pad: int, fill: float) -> np.ndarray:
    """Tile (k, H, W[, 3]) images row by row on a (nrows, ncols) grid; gaps of pad / row_pad pixels."""
    h, w = images.shape[1:3]
    dy, dx = h + row_pad, w + pad
    shape = (nrows * dy - row_pad, ncols * dx - pad) + images.shape[3:]
    canvas = np.full(shape, fill, dtype=np.float64)
    for k, img in enumerate(images):
        r, c = divmod(k, ncols)
        canvas[r * dy:r * dy + h, c * dx:c * dx + w] = img
    return canvas


def _show_mosaic(ax, tiles: np.ndarray, nrows: int, ncols: int, cmap: str, row_pad: Optional[int] = None):
    """Draw a mosaic of (k, H, W[, 3]) tiles in ``ax``; returns the (row, column) pitch in pixels."""
    h, w = tiles.shape[1:3]
    pad = max(1, w // 8)
    row_pad = pad if row_pad is None else row_pad
    grey = tiles.ndim == 3
    lo, hi = (float(tiles.min()), float(tiles.max())) if grey else (0.0, 1.0)
    canvas = _mosaic(tiles, nrows, ncols, pad, row_pad, fill=lo if grey else 1.0)
    ax.imshow(canvas, cmap=cmap if grey else None, vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    return h + row_pad, w + pad


def plot_images(images, *, titles: Optional[Sequence[str]] = None, ncols: int = 10, mean=None, std=None,
                ax=None, cmap: str = "gray_r"):
    """A grid of images in one axes, with an optional title above each.

    Parameters
    ----------
    images : array-like or torch.Tensor, shape (n, H, W) or (n, C, H, W), C in (1, 3)
    titles : sequence of str, optional
        One per image (e.g. its label).
    ncols : int, default 10
    mean, std : float or sequence of float, optional
        Per-channel normalisation to undo (``x * std + mean``), e.g. ``DataSplit.mean/std``.
    cmap : str, default "gray_r"
        Grey images only (dark ink on white).

    Returns
    -------
    matplotlib.axes.Axes
    """
    x = _as_images(images, mean, std)
    if len(x) == 0:
        raise ValueError("images must hold at least one image")
    if titles is not None and len(titles) != len(x):
        raise ValueError(f"titles must hold one entry per image, got {len(titles)} for {len(x)} images")
    ncols = max(1, min(int(ncols), len(x)))
    nrows = -(-len(x) // ncols)
    h, w = x.shape[1:3]
    row_pad = max(1, w // 8) if titles is None else max(2, h // 2)
    ax = _axes(ax, figsize=(0.9 * ncols + 0.4, (1.0 if titles is None else 1.3) * nrows + 0.3))
    dy, dx = _show_mosaic(ax, x, nrows, ncols, cmap, row_pad=row_pad)
    for k, t in enumerate(titles or []):
        r, c = divmod(k, ncols)
        ax.text(c * dx + (w - 1) / 2, r * dy - 0.7, str(t), ha="center", va="bottom", fontsize=11)
    if titles is not None:
        ax.set_ylim(nrows * dy - row_pad - 0.5, -0.5 - row_pad)
    return ax


def plot_neighbors(images, features: dict, reference: int, *, k: int = 8, metric="cosine", labels=None,
                   shared_with: Optional[str] = None, mean=None, std=None, ax=None, cmap: str = "gray_r"):
    r"""A reference image and its k nearest neighbours as each model ranks them, one row per model.

    Row ``m`` shows the reference, then the k samples with the smallest dissimilarity
    :math:`\delta_m(x, \cdot)` in model ``m``'s feature space, nearest first. With ``labels``,
    neighbours of another class than the reference are framed in red and a note right of each
    row counts those of the same class; with ``shared_with``, it also counts how many of the row's
    neighbours are among that model's k (e.g. the teacher's).

    Parameters
    ----------
    images : array-like or torch.Tensor, shape (n, H, W) or (n, C, H, W)
        The inputs, in the order of the features' rows.
    features : dict of label -> array-like (n, d)
        One feature matrix per row, e.g. ``{"teacher": ..., "pc": ..., "rkd": ...}``.
    reference : int
        Index of the reference sample.
    k : int, default 8
    metric : str or dict of label -> str, default "cosine"
        Each model's dissimilarity (see :func:`pcoh.dissimilarity.pairwise`).
    labels : array-like, shape (n,), optional
    shared_with : str, optional
        A key of ``features`` whose neighbours the other rows are compared with.
    mean, std : optional
        Normalisation to undo, as :func:`plot_images`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .embedding import nearest_neighbors

    if not features:
        raise ValueError("features must hold at least one label -> (n, d) array")
    x = _as_images(images, mean, std)
    n = len(x)
    rows, names = [], []
    for name, f in features.items():
        f = _features_np(f, f"features[{name!r}]")
        if len(f) != n:
            raise ValueError(f"features[{name!r}] must have one row per image ({n}), got {len(f)}")
        rows.append(nearest_neighbors(f, reference, k=k, metric=metric[name] if isinstance(metric, dict) else metric))
        names.append(str(name))
    ax = _axes(ax, figsize=(0.8 * (k + 1) + 2.2, 0.85 * len(rows) + 0.6))
    tiles = np.stack([x[i] for row in rows for i in (reference, *row)])
    dy, dx = _show_mosaic(ax, tiles, len(rows), k + 1, cmap)
    h, w = x.shape[1:3]
    notes = [[] for _ in rows]
    if labels is not None:
        y = np.asarray(labels).ravel()
        from matplotlib.patches import Rectangle

        for r, row in enumerate(rows):
            wrong = y[row] != y[reference]
            for c in np.flatnonzero(wrong):
                ax.add_patch(Rectangle(((c + 1) * dx - 0.5, r * dy - 0.5), w, h, fill=False,
                                       edgecolor="#d62728", lw=2.2))
            notes[r].append(f"{int((~wrong).sum())}/{k} same class")
    if shared_with is not None:
        if shared_with not in features:
            raise ValueError(f"shared_with must be a key of features {list(features)}, got {shared_with!r}")
        theirs = set(rows[list(features).index(shared_with)].tolist())
        for r, (name, row) in enumerate(zip(features, rows)):
            if name != shared_with:
                notes[r].append(f"{len(theirs & set(row.tolist()))}/{k} {shared_with}'s")
    for r, note in enumerate(notes):
        if note:
            ax.text((k + 1) * dx, r * dy + (h - 1) / 2, "\n".join(note), ha="left", va="center", fontsize=10)
    ax.set_yticks(np.arange(len(rows)) * dy + (h - 1) / 2, names)
    ax.set_xticks(np.arange(k + 1) * dx + (w - 1) / 2, ["ref."] + [str(j) for j in range(1, k + 1)])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    return ax


def plot_rank_hexbin(student_features, teacher_features, *, reference: Optional[int] = None,
                     student_metric="cosine", teacher_metric="cosine", gridsize: int = 25, ax=None,
                     color: Optional[str] = None, title: Optional[str] = None, colorbar: bool = False):
    r"""Student rank against teacher rank of every (reference, compared point) pair, as a hexbin.

    Each reference :math:`i` ranks the other n - 1 points by :math:`\delta_T(x_i, \cdot)` and by
    :math:`\delta_S(x_i, \cdot)`; the grey hexagons count the pairs
    :math:`(r^T_i(j), r^S_i(j))` over all references, the chosen reference's points are
    drawn on top in colour with their Spearman :math:`\rho_i`. A perception-coherent student puts
    everything on the diagonal.

    Parameters
    ----------
    student_features, teacher_features : array-like, shapes (n, d_S) and (n, d_T)
        Features of the same n inputs, row by row.
    reference : int, optional
        The reference drawn in colour.
    student_metric, teacher_metric : str or Dissimilarity, default "cosine"
    gridsize : int, default 25
        Hexagons across.
    color : str, optional
        Colour of the reference's points; default red.
    colorbar : bool, default False
        Add a colour bar of the pair counts.

    Returns
    -------
    matplotlib.axes.Axes
    """
    s = _features_np(student_features, "student_features")
    t = _features_np(teacher_features, "teacher_features")
    if len(s) != len(t):
        raise ValueError(f"student and teacher features must have as many rows, got {len(s)} and {len(t)}")
    rs = _off_diagonal_ranks(_dissimilarities(s, student_metric, "student_features"))
    rt = _off_diagonal_ranks(_dissimilarities(t, teacher_metric, "teacher_features"))
    m = rt.shape[1]
    ax = _axes(ax, figsize=(4.5, 4.5))
    from matplotlib.colors import LinearSegmentedColormap

    # A light grey ramp, so the reference's coloured points stay visible on top.
    greys = LinearSegmentedColormap.from_list("pcoh_greys", ["#f4f4f4", "#6e6e6e"])
    hb = ax.hexbin(rt.ravel(), rs.ravel(), gridsize=gridsize, extent=(1, m, 1, m), cmap=greys, mincnt=1,
                   linewidths=0)
    if colorbar:
        ax.figure.colorbar(hb, ax=ax, fraction=0.046, pad=0.04, label="pairs, all references")
    ax.plot([1, m], [1, m], color="black", lw=0.8, ls="--")
    if reference is not None:
        if not 0 <= int(reference) < len(t):
            raise ValueError(f"reference must be an index in [0, {len(t)}), got {reference!r}")
        a, b = rt[int(reference)], rs[int(reference)]
        rho = float(np.corrcoef(a, b)[0, 1])
        ax.scatter(a, b, s=10, color=color or "#d62728", lw=0, alpha=0.9)
        ax.text(0.97, 0.04, rf"reference {int(reference)}: $\rho_i$ = {rho:.2f}", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=11, bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.85))
    ax.set_xlim(1, m)
    ax.set_ylim(1, m)
    ax.set_aspect("equal")
    ax.set_xlabel("teacher rank")
    ax.set_ylabel("student rank")
    if title:
        ax.set_title(title)
    return ax


def per_reference_frame(per_reference: dict, *, include_teacher: bool = False) -> pd.DataFrame:
    """Per-reference values of an experiment as a long table, one row per (run, reference).

    Parameters
    ----------
    per_reference : dict
        ``(student, method, mode, seed) -> (n,)`` values and ``"teacher" -> (n,)``, as
        :attr:`pcoh.experiment.ExperimentResult.per_reference`.
    include_teacher : bool, default False
        Keep the teacher's row (all ones for Spearman with itself).

    Returns
    -------
    pandas.DataFrame
        Columns ``student, method, mode, seed, reference, spearman``.
    """
    frames = []
    for key, values in per_reference.items():
        if key == "teacher":
            if not include_teacher:
                continue
            student, method, mode, seed = "teacher", "teacher", "-", 0
        else:
            student, method, mode, seed = key
        v = np.asarray(values, dtype=np.float64).ravel()
        frames.append(pd.DataFrame({"student": student, "method": method, "mode": mode, "seed": seed,
                                    "reference": np.arange(len(v)), "spearman": v}))
    if not frames:
        raise ValueError("per_reference holds no student runs")
    return pd.concat(frames, ignore_index=True)


def plot_per_reference_distributions(frame: pd.DataFrame, *, value: str = "spearman", kind: str = "violin",
                                     order: Optional[Sequence[str]] = None, ax=None,
                                     title: Optional[str] = None):
    """Distribution of per-reference values, one violin (or box) per method, its mean marked.

    The mean of the per-reference Spearman values is :math:`PC_n` (white diamond); the spread
    shows whether a method keeps every reference's ranking or trades some references for others.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long table with a ``method`` column and a ``value`` column, e.g. from
        :func:`per_reference_frame` (filter it to one mode first; seeds are pooled).
    value : str, default "spearman"
    kind : {"violin", "box"}, default "violin"
    order : sequence of str, optional
        Methods from left to right; default their order of appearance.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import seaborn as sns

    if kind not in ("violin", "box"):
        raise ValueError(f"kind must be 'violin' or 'box', got {kind!r}")
    for col in ("method", value):
        if col not in frame.columns:
            raise ValueError(f"frame must have a {col!r} column, got columns {list(frame.columns)}")
    if frame.empty:
        raise ValueError("frame is empty")
    order = list(order) if order is not None else list(dict.fromkeys(frame["method"]))
    ax = _axes(ax, figsize=(1.0 * len(order) + 2, 4))
    palette = {m: _method_color(m) for m in order}
    common = dict(data=frame, x="method", y=value, hue="method", order=order, hue_order=order,
                  palette=palette, legend=False, ax=ax)
    if kind == "violin":
        sns.violinplot(**common, cut=0, inner="quart", linewidth=0.8, density_norm="width")
    else:
        sns.boxplot(**common, showfliers=False, linewidth=0.8)
    means = frame.groupby("method")[value].mean().reindex(order)
    ax.scatter(np.arange(len(order)), means.values, marker="D", s=36, color="white", edgecolor="black",
               zorder=5, label="mean ($PC_n$)")
    ax.legend(loc="lower left", fontsize=10)
    ax.set_xlabel("")
    ax.set_ylabel("Spearman per reference" if value == "spearman" else value)
    if title:
        ax.set_title(title)
    return ax


_MODE_MARKERS = {"class-unaware": "o", "class-aware": "^"}


def plot_global_vs_per_reference(results: pd.DataFrame, *, x: str = "global_spearman", y: str = "pc_n",
                                 exclude: Sequence[str] = ("teacher",), ax=None, title: Optional[str] = None):
    """Global Spearman of all pairwise dissimilarities against the mean per-reference Spearman.

    One point per run (method, mode, seed); colour = method, circle = class-unaware, triangle =
    class-aware. Points below the diagonal keep the global layout better than each reference's
    own order.

    Parameters
    ----------
    results : pandas.DataFrame
        :attr:`pcoh.experiment.ExperimentResult.results` (columns ``method``, ``mode``, ``x``, ``y``).
    x, y : str, default "global_spearman", "pc_n"
    exclude : sequence of str, default ("teacher",)
        Methods left out: the teacher is (1, 1); leaving out ``"untrained"`` too zooms in on the
        trained students.

    Returns
    -------
    matplotlib.axes.Axes
    """
    for col in ("method", "mode", x, y):
        if col not in results.columns:
            raise ValueError(f"results must have a {col!r} column, got columns {list(results.columns)}")
    rows = results[~results["method"].isin(list(exclude))]
    if rows.empty:
        raise ValueError(f"results hold no rows besides the excluded methods {list(exclude)}")
    ax = _axes(ax, figsize=(5.5, 5))
    for (method, mode), group in rows.groupby(["method", "mode"], sort=False):
        ax.scatter(group[x], group[y], s=55, color=_method_color(method), marker=_MODE_MARKERS.get(mode, "s"),
                   edgecolor="black", linewidth=0.5, zorder=3)
    lo = float(min(rows[x].min(), rows[y].min()))
    hi = float(max(rows[x].max(), rows[y].max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.8, ls="--", zorder=1)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", ms=8, color=_method_color(m), label=m)
               for m in dict.fromkeys(rows["method"])]
    handles += [Line2D([], [], ls="", marker=mk, ms=8, color="white", markeredgecolor="black", label=mode)
                for mode, mk in _MODE_MARKERS.items() if mode in set(rows["mode"])]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=10)
    names = {"global_spearman": "global Spearman (all pairs)", "pc_n": "$PC_n$ (mean per-reference Spearman)"}
    ax.set_xlabel(names.get(x, x))
    ax.set_ylabel(names.get(y, y))
    if title:
        ax.set_title(title)
    return ax


def plot_embedding(embedding, labels, *, ax=None, title: Optional[str] = None, s: float = 8,
                   class_names: Optional[Sequence[str]] = None, annotate: bool = True, highlight=None,
                   cmap: str = "tab10"):
    """A 2-D embedding (e.g. UMAP) as a scatter plot coloured by class.

    Parameters
    ----------
    embedding : array-like, shape (n, 2)
    labels : array-like, shape (n,)
        Integer class labels; colour ``cmap(label)``.
    s : float, default 8
        Marker size.
    class_names : sequence of str, optional
    annotate : bool, default True
        Write each class's name just above the median of its points.
    highlight : sequence of int, optional
        Indices drawn large with a black edge, the first one as a star (e.g. a reference and
        its teacher's nearest neighbours).

    Returns
    -------
    matplotlib.axes.Axes
    """
    e = np.asarray(embedding, dtype=np.float64)
    y = np.asarray(labels).ravel()
    if e.ndim != 2 or e.shape[1] != 2:
        raise ValueError(f"embedding must be 2-D (n, 2), got shape {e.shape}")
    if len(y) != len(e):
        raise ValueError(f"labels must hold one label per point, got {len(y)} for {len(e)} points")
    import matplotlib.pyplot as plt
    import matplotlib.patheffects as pe

    ax = _axes(ax, figsize=(4.5, 4.5))
    colors = plt.get_cmap(cmap)(y.astype(int) % plt.get_cmap(cmap).N)
    ax.scatter(e[:, 0], e[:, 1], s=s, c=colors, lw=0, alpha=0.85, rasterized=len(e) > 2000)
    if annotate:
        for c in np.unique(y):
            mx, my = np.median(e[y == c], axis=0)
            name = str(class_names[int(c)]) if class_names is not None else str(c)
            # Just above the class's median, so that tight clusters stay visible under their name.
            ax.annotate(name, (mx, my), xytext=(0, 5), textcoords="offset points", ha="center", va="bottom",
                        fontsize=12, fontweight="bold", path_effects=[pe.withStroke(linewidth=3, foreground="white")])
    if highlight is not None and len(highlight):
        h = np.asarray(highlight, dtype=int)
        ax.scatter(e[h[1:], 0], e[h[1:], 1], s=60, c=colors[h[1:]], edgecolor="black", lw=1.2, zorder=4)
        ax.scatter(e[h[0], 0], e[h[0], 1], s=260, marker="*", c=[colors[h[0]]], edgecolor="black", lw=1.2, zorder=5)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return ax


def plot_embedding_grid(embeddings: dict, labels, *, titles: Optional[dict] = None, ncols: Optional[int] = None,
                        axes=None, panel_size: float = 3.6, **kwargs):
    """Several 2-D embeddings of the same points side by side, one :func:`plot_embedding` each.

    Align them first (:func:`pcoh.embedding.align_procrustes`) so that the same structure sits
    in the same place in every panel.

    Parameters
    ----------
    embeddings : dict of label -> array-like (n, 2)
        Panels in the dict's order.
    labels : array-like, shape (n,)
    titles : dict of label -> str, optional
        Panel titles; default the labels.
    ncols : int, optional
        Panels per row; default all in one row.
    axes : sequence of Axes, optional
        At least ``len(embeddings)`` axes; a new figure when omitted.
    panel_size : float, default 3.6
        Inches per panel for a new figure.
    **kwargs
        Passed to :func:`plot_embedding` (``s``, ``class_names``, ``annotate``, ``highlight``).

    Returns
    -------
    numpy.ndarray of Axes, shape (len(embeddings),)
    """
    if not embeddings:
        raise ValueError("embeddings must hold at least one label -> (n, 2) array")
    k = len(embeddings)
    if axes is None:
        import matplotlib.pyplot as plt

        ncols = k if ncols is None else max(1, min(int(ncols), k))
        nrows = -(-k // ncols)
        fig, grid = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows + 0.4), squeeze=False)
        for a in grid.ravel()[k:]:
            a.set_visible(False)
        axes = grid.ravel()[:k]
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) < k:
        raise ValueError(f"axes must hold at least {k} axes, got {len(axes)}")
    for a, (name, e) in zip(axes, embeddings.items()):
        plot_embedding(e, labels, ax=a, title=(titles or {}).get(name, str(name)), **kwargs)
    return axes[:k]


def style_results(results: pd.DataFrame, columns: Sequence[str] = (
        "pc_n", "global_spearman", "kendall_tau", "topk_overlap", "trustworthiness", "continuity", "cka",
        "knn_accuracy", "linear_probe", "accuracy"), *, digits: int = 3):
    """The results table for display: mean over seeds, best value of each column bold per mode.

    One row per (mode, method) in the order of ``results``, the teacher first; each cell the
    mean over seeds. Within each mode the best student of each column is bold on a light red
    background (every column is higher-is-better); the teacher is a reference, never marked.
    ``accuracy`` is blank for class-unaware students (their classifier head is not trained).

    Parameters
    ----------
    results : pandas.DataFrame
        :attr:`pcoh.experiment.ExperimentResult.results`.
    columns : sequence of str
        Metric columns to show (those missing from ``results`` are skipped).
    digits : int, default 3

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    for col in ("method", "mode"):
        if col not in results.columns:
            raise ValueError(f"results must have a {col!r} column, got columns {list(results.columns)}")
    cols = [c for c in columns if c in results.columns]
    if not cols:
        raise ValueError(f"none of columns {list(columns)} is in results")
    # Groups in order of first appearance: the teacher, then each mode's methods.
    table = results.groupby(["mode", "method"], sort=False)[cols].mean()
    table.insert(0, "seeds", results.groupby(["mode", "method"], sort=False).size())
    mode_of = table.index.get_level_values("mode")
    method_of = table.index.get_level_values("method")

    def best(col: pd.Series) -> np.ndarray:
        marks = np.full(len(col), "", dtype=object)
        if col.name == "seeds":
            return marks
        values = col.to_numpy(dtype=float)
        for mode in set(mode_of) - {"-"}:
            pick = (mode_of == mode) & (method_of != "teacher") & ~np.isnan(values)
            if pick.any():
                marks[pick & (values >= values[pick].max() - 1e-12)] = "font-weight: bold; background-color: #fde2e1"
        return marks

    return (table.style.apply(best, axis=0).format(precision=digits, na_rep="–", subset=cols)
            .set_caption("Mean over seeds; bold: the best student of each column within its mode"))
