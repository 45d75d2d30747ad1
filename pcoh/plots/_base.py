"""What every figure module shares: the style, the method colours, the axes helper and the one
figure-saving function.

:func:`savefig` is the only place figures are written, so that a rerun on the same data writes the
same bytes: no date in the metadata, a fixed ``Software``/``Creator`` entry (no version string that
changes with an upgrade), and SVG element ids drawn from a fixed salt (``svg.hashsalt``) instead of
a random one.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from .._checks import check_choice
from ..methods import colors as _method_colors
from ..runs import write_bytes

__all__ = ["METHOD_COLORS", "style", "savefig", "render"]

#: One colour per method (and for the teacher and the untrained student), the same in every
#: figure; read from :mod:`pcoh.methods`.
METHOD_COLORS = _method_colors()

#: Metadata written into every saved figure, per format: nothing that changes between runs.
_METADATA = {
    "png": {"Software": "pcoh"},
    "svg": {"Date": None, "Creator": "pcoh"},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": "pcoh", "Producer": "pcoh"},
}
_SVG_SALT = "pcoh"


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
        "svg.hashsalt": _SVG_SALT,  # stable SVG ids, so re-exported figures diff cleanly
    })


def _axes(ax, figsize=(7, 4)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def savefig(fig, path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` as ``path.<format>`` for each format (creating the folder), deterministically.

    The same figure saved twice gives the same bytes: the metadata hold no date and no library
    version, and SVG ids come from a fixed salt whatever the current rcParams say.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or pathlib.Path
        The file name without its suffix (any suffix given is replaced).
    formats : sequence of {"png", "svg", "pdf"}, default ("png", "svg")

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``.
    """
    path = Path(path)
    out = []
    for fmt, data in render(fig, formats).items():
        target = path.with_suffix(f".{fmt}")
        write_bytes(data, target)  # whole or not at all: never a 0-byte figure
        out.append(target)
    return out


def render(fig, formats: Sequence[str] = ("png", "svg")) -> dict:
    """``{format: bytes}`` of ``fig``, as :func:`savefig` writes them (deterministic metadata)."""
    import matplotlib as mpl

    if isinstance(formats, str):
        formats = (formats,)
    for fmt in formats:
        check_choice(fmt, "formats", list(_METADATA))
    out = {}
    with mpl.rc_context({"svg.hashsalt": _SVG_SALT}):
        for fmt in formats:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, bbox_inches="tight", metadata=_METADATA[fmt])
            out[fmt] = buffer.getvalue()
    return out
