"""The transfer methods by name: one registry that the command line, the main job and the figures read.

The table below is generated from :data:`METHODS` by :func:`table` (the README and notebook 03 show
the same table; a test checks them against it):

{table}

``"teacher"`` and ``"untrained"`` (a student evaluated before any training) are references, not
methods: they have a colour but are never trained. A method whose loss is not (yet) registered in
:mod:`pcoh.losses` is left out of :func:`available` and :func:`default_methods`, so the registry can
name a method before its loss exists. A loss registered in :mod:`pcoh.losses` without an entry here
is still usable: it is trainable in both modes unless its class says ``class_aware_only``.
"""
# The docstring's {table} is filled from the registry at the end of the module.
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import losses as _losses
from ._checks import check_choice

__all__ = ["Method", "MODES", "CLASS_AWARE", "CLASS_UNAWARE", "METHODS", "REFERENCES", "get", "available", "default_methods", "colors",
           "color", "allows_mode"]

#: The two training modes: the transfer loss alone, no label used; or ``CE + weight * loss``. Every
#: module names a mode through these constants.
CLASS_UNAWARE = "class-unaware"
CLASS_AWARE = "class-aware"
MODES = (CLASS_UNAWARE, CLASS_AWARE)


@dataclass(frozen=True, kw_only=True)
class Method:
    """One transfer method; its eight fields are given by keyword.

    Parameters
    ----------
    name : str
        The name used on the command line, in configs and in result tables.
    description : str
        One line for help texts.
    color : str
        Its colour in every figure.
    modes : tuple of str
        The training modes it can run in (a subset of :data:`MODES`).
    default : bool
        Part of the main job's default method list.
    loss : str or None
        Its :mod:`pcoh.losses` name; ``None`` for a method without a transfer loss (``"ce"``).
    matches : str
        What the student matches, in one line (the method table's second column).
    paper : str
        Where the method comes from (``"this project"`` for ``pc``, ``"-"`` for none).
    """

    name: str
    description: str
    color: str
    modes: tuple = MODES
    default: bool = True
    loss: Optional[str] = None
    matches: str = ""
    paper: str = "-"


_BOTH = MODES
_AWARE = (CLASS_AWARE,)

#: Every method, in the order of the tables and figures.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method(name="pc", loss="pc", modes=_BOTH, color="#d62728",
           description="perception coherence: rank dissimilarities as the teacher does",
           matches="the teacher's ranking of dissimilarities seen from every reference (perception coherence)",
           paper="Nguyen et al. (arXiv 2505.06595); our formulation: docs/method.md"),
    Method(name="rkd", loss="rkd", modes=_BOTH, color="#1f77b4",
           description="relational KD: distances and angles (Park et al. 2019)",
           matches="mean-normalised pairwise distances and angles (relational KD)",
           paper="Park et al. 2019"),
    Method(name="pkt", loss="pkt", modes=_BOTH, color="#2ca02c",
           description="probabilistic knowledge transfer (Passalis & Tefas 2018)",
           matches="conditional probabilities from cosine similarities (probabilistic knowledge transfer)",
           paper="Passalis & Tefas 2018"),
    Method(name="sp", loss="sp", modes=_BOTH, color="#9467bd",
           description="similarity-preserving KD (Tung & Mori 2019)",
           matches="row-normalised batch Gram matrices (similarity preserving)",
           paper="Tung & Mori 2019"),
    Method(name="cc", loss="cc", modes=_BOTH, color="#8c564b",
           description="correlation congruence (Peng et al. 2019)",
           matches="batch kernel correlation matrices (correlation congruence)",
           paper="Peng et al. 2019"),
    Method(name="fitnet", loss="fitnet", modes=_BOTH, color="#e377c2",
           description="FitNet hint on regressed features (Romero et al. 2015)",
           matches="the teacher's features through a learned linear regressor (hint)",
           paper="Romero et al. 2015"),
    Method(name="crd", loss="crd", modes=_BOTH, color="#ff7f0e",
           description="contrastive representation distillation (Tian et al. 2020)",
           matches="the teacher's feature of the same sample against a memory of the others (contrastive)",
           paper="Tian et al. 2020"),
    Method(name="rrd", loss="rrd", modes=_BOTH, color="#393b79",
           description="relational representation distillation (Giakoumoglou & Stathaki 2024)",
           matches="the teacher's similarity distribution over a queue of its projections (relational)",
           paper="Giakoumoglou & Stathaki 2024"),
    Method(name="kd", loss="kd", modes=_AWARE, color="#17becf",
           description="Hinton's KD on temperature-softened logits",
           matches="temperature-softened logits",
           paper="Hinton et al. 2015"),
    Method(name="dist", loss="dist", modes=_AWARE, color="#8c6d31",
           description="DIST: Pearson correlation of softened logits (Huang et al. 2022)",
           matches="softened logits by Pearson correlation, per sample and per class (DIST)",
           paper="Huang et al. 2022"),
    Method(name="ce", loss=None, modes=_AWARE, color="#7f7f7f",
           description="cross-entropy on labels alone, no teacher",
           matches="labels only, no teacher",
           paper="-"),
)}

#: Rows of the result tables that are not trained methods, with their colours.
REFERENCES = {"untrained": "#bcbd22", "teacher": "#000000"}


def _exists(method: Method) -> bool:
    return method.loss is None or method.loss in _losses.LOSSES


def get(name: str) -> Method:
    """The registered :class:`Method` called ``name`` (ValueError listing the names otherwise)."""
    return METHODS[check_choice(name, "method", list(METHODS))]


def available() -> list[str]:
    """Names a run can use, sorted: the registry's methods whose loss exists, and any other
    registered loss."""
    return sorted({m.name for m in METHODS.values() if _exists(m)} | set(_losses.available()))


def default_methods() -> tuple:
    """The main job's default methods, in registry order (only those whose loss exists)."""
    return tuple(m.name for m in METHODS.values() if m.default and _exists(m))


def colors() -> dict:
    """Method (and reference) name -> colour, for every figure."""
    return {**{m.name: m.color for m in METHODS.values()}, **REFERENCES}


def color(label, default: str = "#444444") -> str:
    """The colour of a label such as ``"pc"`` or ``"pc (class-aware)"`` (its first word); ``default``
    (a colour) for a label that names no method."""
    from matplotlib.colors import is_color_like

    if not isinstance(default, (str, tuple)):
        raise TypeError(f"default must be a colour (a name or '#rrggbb'), got {type(default).__name__}")
    if not is_color_like(default):
        raise ValueError(f"default must be a colour (a name or '#rrggbb'), got {default!r}")
    return colors().get(str(label).split(" ")[0], default)


def allows_mode(method: str, mode: str) -> bool:
    """Whether ``method`` can be trained in ``mode``.

    Registered methods say so themselves (``kd`` and ``ce`` need labels, so class-aware only).
    Another loss of :mod:`pcoh.losses` runs in both modes unless its class sets
    ``class_aware_only``.
    """
    check_choice(method, "method", list(dict.fromkeys([*METHODS, *_losses.LOSSES, *REFERENCES])))
    check_choice(mode, "mode", MODES)
    if method in METHODS:
        return mode in METHODS[method].modes
    loss = _losses.LOSSES.get(method)
    return mode == CLASS_AWARE or not (loss is not None and loss.class_aware_only)


def table(fmt: str = "markdown") -> str:
    """The method table, one row per registered method: name, what the student matches, modes, paper.

    Parameters
    ----------
    fmt : {"markdown", "rst"}
        A Markdown table (README, notebooks) or a reStructuredText simple table (docstrings).

    Returns
    -------
    str
        The table, without a trailing newline.
    """
    check_choice(fmt, "fmt", ["markdown", "rst"])
    header = ("name", "the student matches", "modes", "paper")
    rows = [(f"``{m.name}``" if fmt == "rst" else f"`{m.name}`", m.matches,
             "both" if set(m.modes) == set(MODES) else ", ".join(m.modes), m.paper)
            for m in METHODS.values()]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    fmt_row = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, fmt_row(header), rule, *map(fmt_row, rows), rule])


if __doc__ is not None:  # python -OO strips docstrings
    __doc__ = __doc__.replace("{table}", table("rst"))
