"""What every figure module shares: the presentation style, slide-sized figures and grids, the method
colours, the slide rule and the one figure-saving function.

Every exported figure is made for a 16:9 slide. A *full* figure is the size of a widescreen slide,
13.33 x 7.5 in (1920 x 1080 px at :data:`SLIDE_DPI`); a *half* figure fills one side of it,
6.67 x 7.5 in (960 x 1080 px). Because a figure is drawn at the size it is shown, a point on the
figure is a point on the slide, and the style's smallest text (tick labels and legends, 14 pt) is
14 pt on the slide. :func:`slide_problems` checks a figure against that rule:

- its aspect is 16:9 (full) or 8:9 (half);
- every text drawn is at least :data:`MIN_FONT_PT` points once the figure is scaled to fill a
  1920 x 1080 slide;
- no text reaches outside the figure, no tick label overlaps its neighbour, no marker is cut by
  the edge of its axes;
- no panel is empty (a hidden axes, or one with nothing drawn).

:func:`savefig` is the only place figures are written. It refuses a figure that breaks the rule
(``check=False`` saves one anyway), and it writes the same bytes for the same figure: no date in
the metadata, a fixed ``Software``/``Creator`` entry (no version string that changes with an
upgrade), and SVG element ids drawn from a fixed salt (``svg.hashsalt``) instead of a random one.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .._checks import check_bool, check_choice, check_columns, check_float, check_int
from ..methods import colors as _method_colors
from ..files import write_bytes

__all__ = ["METHOD_COLORS", "SLIDE_SIZES", "SLIDE_DPI", "MIN_FONT_PT", "style", "slide_figure", "slide_grid",
           "grid_rows", "slide_problems", "contrast_ratio", "savefig", "render"]

#: One colour per method (and for the teacher and the untrained student), the same in every
#: figure; read from :mod:`pcoh.methods`.
METHOD_COLORS = _method_colors()

#: Figure sizes in inches: a widescreen slide (16:9) and one half of it (8:9, full height).
SLIDE_SIZES = {"full": (40 / 3, 7.5), "half": (20 / 3, 7.5)}
#: Pixels per inch of the PNGs: a full figure is 1920 x 1080 px, a half figure 960 x 1080 px.
SLIDE_DPI = 144
#: The smallest text allowed, in points, on a 1920 x 1080 slide the figure fills.
MIN_FONT_PT = 14.0
#: Height (inches) a panel's title and axis labels take, left out when grid_rows shapes panels.
_PANEL_DECORATION_IN = 0.8
#: Titles, labels, tick labels and legends closer than this (points) count as touching.
_MIN_GAP_PT = 2.0
#: Aspect ratios (width / height) within this relative tolerance count as a slide size.
_ASPECT_TOLERANCE = 0.02

#: Metadata written into every saved figure, per format: nothing that changes between runs.
_METADATA = {
    "png": {"Software": "pcoh"},
    "svg": {"Date": None, "Creator": "pcoh"},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": "pcoh", "Producer": "pcoh"},
}
_SVG_SALT = "pcoh"

#: The presentation style: text sizes in points on the slide, the slide size, constrained layout
#: (so that nothing is cut at a fixed figure size), framed axes.
_STYLE = {
    "figure.figsize": SLIDE_SIZES["full"],
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "figure.constrained_layout.w_pad": 0.1,  # inches of margin around the panels: nothing at the very edge
    "figure.constrained_layout.h_pad": 0.1,
    "savefig.dpi": SLIDE_DPI,
    "savefig.bbox": "standard",  # the figure's own size: a slide, not a crop of it
    "font.size": 16,
    "axes.titlesize": 18,
    "axes.labelsize": 16,
    "xtick.labelsize": 14,
    "ytick.labelsize": 14,
    "xtick.major.pad": 6,  # so that the x and y tick labels at a corner (0 and 0) do not touch
    "ytick.major.pad": 6,
    "legend.fontsize": 14,
    "legend.title_fontsize": 14,
    "figure.titlesize": 20,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 2.0,
    "svg.hashsalt": _SVG_SALT,  # stable SVG ids, so re-exported figures diff cleanly
}


def style() -> None:
    """Set the presentation style: slide-sized figures, text of at least 14 pt on the slide.

    The rcParams of :data:`_STYLE`: a new figure is a full 16:9 slide (13.33 x 7.5 in) with
    constrained layout; titles 18 pt, labels 16 pt, tick labels and legends 14 pt; PNGs at
    144 dpi (1920 x 1080 px).
    """
    import matplotlib as mpl

    mpl.rcParams.update(_STYLE)


def _size(size: str) -> tuple:
    return SLIDE_SIZES[check_choice(size, "size", list(SLIDE_SIZES))]


def slide_figure(nrows: int = 1, ncols: int = 1, *, size: str = "full", **subplots_kw):
    """A new figure of slide size with an (nrows, ncols) grid of axes, constrained layout.

    Parameters
    ----------
    nrows, ncols : int, default 1
    size : {"full", "half"}, default "full"
        A whole 16:9 slide (13.33 x 7.5 in) or one side of it (6.67 x 7.5 in).
    **subplots_kw
        Passed to :func:`matplotlib.pyplot.subplots` (``sharey``, ``squeeze``, ``gridspec_kw``...).

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : Axes or numpy.ndarray of Axes
        As :func:`matplotlib.pyplot.subplots` returns them.
    """
    import matplotlib.pyplot as plt

    nrows = check_int(nrows, "nrows", minimum=1)
    ncols = check_int(ncols, "ncols", minimum=1)
    return plt.subplots(nrows, ncols, figsize=_size(size), layout="constrained", **subplots_kw)


def grid_rows(k: int, *, size: str = "full", panel_aspect: float = 1.0, max_rows: int = 4) -> list:
    """Panels per row for ``k`` panels on a slide, every row full but the last (never an empty panel).

    The number of rows r (1 to ``max_rows``) is the one whose panels, ``ceil(k / r)`` to a row,
    come closest to ``panel_aspect`` (width / height) on the figure once 0.8 in of each panel's
    height is left for its title and labels; the last row holds what is left and is centred by
    :func:`slide_grid`.

    Parameters
    ----------
    k : int
        Number of panels, at least 1.
    size : {"full", "half"}, default "full"
    panel_aspect : float, default 1.0
        The wished width / height of one panel (1: square maps).
    max_rows : int, default 4

    Returns
    -------
    list of int
        Panels in each row, top to bottom; they add up to ``k``.
    """
    k = check_int(k, "k", minimum=1)
    panel_aspect = check_float(panel_aspect, "panel_aspect", minimum=0.0, strict=True)
    max_rows = check_int(max_rows, "max_rows", minimum=1)
    width, height = _size(size)
    best = None
    for r in range(1, min(k, max_rows) + 1):
        c = -(-k // r)
        if (r - 1) * c >= k:  # this many rows would leave a row empty
            continue
        panel_height = max(height / r - _PANEL_DECORATION_IN, 0.1)  # what is left under the title
        score = abs(math.log((width / c) / panel_height / panel_aspect))
        if best is None or score < best[0] - 1e-12:
            best = (score, r, c)
    _, r, c = best
    return [c] * (r - 1) + [k - c * (r - 1)]


def slide_grid(k: int, *, size: str = "full", panel_aspect: float = 1.0, rows: Sequence[int] | None = None,
               **subplot_kw):
    """A slide-sized figure with exactly ``k`` panels: full rows, the last row centred.

    Unlike a rectangular grid, no panel is left empty: 7 panels are drawn as 4 + 3, 9 as 5 + 4
    (on a full slide, panels close to square), each panel spanning two columns of a grid of
    half-columns so that a shorter last row sits in the middle.

    Parameters
    ----------
    k : int
        Number of panels.
    size : {"full", "half"}, default "full"
    panel_aspect : float, default 1.0
        See :func:`grid_rows`.
    rows : sequence of int, optional
        Panels per row, adding up to ``k``; default :func:`grid_rows`.
    **subplot_kw
        Passed to :meth:`matplotlib.figure.Figure.add_subplot` (e.g. ``projection``).

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : numpy.ndarray of Axes, shape (k,)
        Row by row.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    k = check_int(k, "k", minimum=1)
    if rows is None:
        rows = grid_rows(k, size=size, panel_aspect=panel_aspect)
    rows = [check_int(r, "rows", minimum=1) for r in rows]
    if sum(rows) != k:
        raise ValueError(f"rows must add up to k = {k}, got {list(rows)} (sum {sum(rows)})")
    ncols = max(rows)
    fig = plt.figure(figsize=_size(size), layout="constrained")
    grid = fig.add_gridspec(len(rows), 2 * ncols)
    axes = []
    for r, n in enumerate(rows):
        start = ncols - n  # half-columns left of the row, so that a short row is centred
        for c in range(n):
            axes.append(fig.add_subplot(grid[r, start + 2 * c:start + 2 * c + 2], **subplot_kw))
    return fig, np.array(axes, dtype=object)


def _axes(ax, size: str = "full"):
    """``ax``, or the axes of a new slide-sized figure."""
    from matplotlib.axes import Axes

    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
        return ax
    return slide_figure(size=size)[1]


# ------------------------------------------------------------------ checks of the figures' options
def check_color(value, name: str):
    """A matplotlib colour (a name, hex string or RGB(A) tuple), or None; returned as given."""
    from matplotlib.colors import is_color_like

    if value is None:
        return None
    if not isinstance(value, (str, tuple, list, np.ndarray)):
        raise TypeError(f"{name} must be a colour (a name, '#rrggbb' or an RGB tuple), got {type(value).__name__}")
    if not is_color_like(value):
        raise ValueError(f"{name} must be a colour (a name, '#rrggbb' or an RGB tuple), got {value!r}")
    return value


def check_cmap(value, name: str = "cmap"):
    """A colormap: a registered name or a :class:`matplotlib.colors.Colormap`; returned as given."""
    import matplotlib as mpl
    from matplotlib.colors import Colormap

    if isinstance(value, Colormap):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a colormap name or a Colormap, got {type(value).__name__}")
    check_choice(value, name, sorted(mpl.colormaps))
    return value


def check_dict(value, name: str, what: str = "label -> value") -> dict:
    """``value`` if it is a dict (``{}`` for None); TypeError otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict of {what}, got {type(value).__name__}")
    return value


def check_nonempty_dict(value, name: str, what: str) -> dict:
    """``value`` if it is a dict with at least one entry: TypeError for another type, ValueError if empty."""
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict of {what}, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must hold at least one {what}")
    return value


def check_texts(value, name: str, n: int, per: str):
    """``n`` texts (a sequence of strings), one per ``per`` (e.g. "image"), or None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of {n} strings, got {type(value).__name__}")
    if len(value) != n:
        raise ValueError(f"{name} must hold one entry per {per} ({n}), got {len(value)}")
    return value


def check_class_names(class_names, labels: np.ndarray):
    """Names of the classes 0 to max(labels) (a sequence), or None; returned as given."""
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
        raise TypeError(f"class_names must be a sequence of names, got {type(class_names).__name__}")
    top = int(labels.max()) if labels.size and np.issubdtype(labels.dtype, np.integer) else -1
    if len(class_names) <= top:
        raise ValueError(f"class_names must name every class of labels (0 to {top}), got {len(class_names)} names")
    return class_names


def check_column(frame, value, name: str, frame_name: str) -> str:
    """``value``, a column name (a string) that the DataFrame ``frame`` has."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a column name (a string), got {type(value).__name__} {value!r}")
    check_columns(frame, (), frame_name)
    if value not in frame.columns:
        raise ValueError(f"{name} must be one of the columns of {frame_name} {list(frame.columns)}, got {value!r}: "
                         f"there is no {value!r} column")
    return value


def _relative_luminance(color) -> float:
    from matplotlib.colors import to_rgb

    def channel(c):
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in to_rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(color, background) -> float:
    """The WCAG 2 contrast ratio of two colours, from 1 (same luminance) to 21 (black on white).

    .. math:: (L_1 + 0.05) / (L_2 + 0.05), \\quad L_1 \\ge L_2

    with :math:`L` the relative luminance of the sRGB colour. Graphics should reach 3 against
    their background (WCAG 2.1, non-text contrast).

    Parameters
    ----------
    color, background : matplotlib colour (name, hex string or RGB(A) tuple; alpha is ignored)
    """
    check_color(color, "color")
    check_color(background, "background")
    a, b = sorted((_relative_luminance(color), _relative_luminance(background)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def _scale_to_slide(fig) -> float:
    """Factor from the figure's points to points on a slide it fills (fitting width or height)."""
    width, height = fig.get_size_inches()
    slide_w, slide_h = SLIDE_SIZES["full"]
    return min(slide_w / width, slide_h / height)


def _drawn_texts(fig):
    """Draw ``fig`` with an Agg renderer; return the renderer and every text artist actually drawn.

    A first draw lets the axes make their ticks; in the second, each text records itself when it
    is drawn (hidden texts, ticks outside the view and empty strings are not).
    """
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.text import Text

    width, height = fig.get_size_inches() * fig.dpi
    renderer = RendererAgg(width, height, fig.dpi)
    fig.draw(renderer)
    drawn = []
    patched = []
    for text in fig.findobj(Text):
        def draw(renderer, _text=text, _draw=text.draw):
            if _text.get_visible() and _text.get_text().strip():
                drawn.append(_text)
            return _draw(renderer)

        text.draw = draw
        patched.append(text)
    try:
        fig.draw(renderer)
    finally:
        for text in patched:
            del text.draw
    return renderer, list(dict.fromkeys(drawn))


def _oriented_box(text, renderer):
    """Centre, unit direction, width and height (px) of a drawn text's rotated box."""
    import numpy as np

    angle = np.deg2rad(text.get_rotation())
    box = text.get_window_extent(renderer)
    rotation = text.get_rotation()
    text.set_rotation(0)
    flat = text.get_window_extent(renderer)
    text.set_rotation(rotation)
    centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
    return centre, np.array([np.cos(angle), np.sin(angle)]), flat.width, flat.height


def _boxes_overlap(a, b, gap: float) -> bool:
    """Whether two oriented boxes (from :func:`_oriented_box`) come closer than ``gap`` pixels
    (the separating-axis test)."""
    import numpy as np

    corners, axes = [], []
    for c, u, w, h in (a, b):
        v = np.array([-u[1], u[0]])
        corners.append(np.array([c + sx * w / 2 * u + sy * h / 2 * v for sx in (-1, 1) for sy in (-1, 1)]))
        axes += [u, v]
    for axis in axes:
        pa, pb = corners[0] @ axis, corners[1] @ axis
        if pa.max() + gap <= pb.min() or pb.max() + gap <= pa.min():
            return False
    return True


def _marker_points(artist, renderer):
    """Display coordinates and radii (px) of a scatter's or a line's markers, or None."""
    import numpy as np
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D

    dpi = artist.figure.dpi
    if isinstance(artist, PathCollection):
        offsets = np.asarray(artist.get_offsets(), dtype=float)
        if offsets.size == 0:
            return None
        xy = artist.get_offset_transform().transform(offsets)
        sizes = np.asarray(artist.get_sizes(), dtype=float)
        if sizes.size == 0:
            return None
        lw = np.asarray(artist.get_linewidths(), dtype=float)
        radius = np.sqrt(np.resize(sizes, len(xy))) / 2 * dpi / 72 + np.resize(lw, len(xy)) / 2 * dpi / 72
        return xy, radius
    if isinstance(artist, Line2D) and artist.get_marker() not in (None, "None", "none", "", " ", ","):
        data = np.column_stack(artist.get_data(orig=False)).astype(float)
        if data.size == 0:
            return None
        xy = artist.get_transform().transform(data)
        radius = np.full(len(xy), (artist.get_markersize() + artist.get_markeredgewidth()) / 2 * dpi / 72)
        return xy, radius
    return None


def slide_problems(fig) -> list:
    """What keeps ``fig`` from being shown on a 1920 x 1080 slide; an empty list when nothing does.

    The rule (see the module docstring): a 16:9 or 8:9 aspect; every drawn text at least
    :data:`MIN_FONT_PT` once scaled to a slide the figure fills; no text outside the figure, no
    overlapping tick labels, no marker cut by its axes; no empty panel.

    Parameters
    ----------
    fig : matplotlib.figure.Figure

    Returns
    -------
    list of str
        One line per problem.
    """
    import numpy as np
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    problems = []
    width, height = fig.get_size_inches()
    aspect = width / height
    targets = {name: w / h for name, (w, h) in SLIDE_SIZES.items()}
    if not any(abs(aspect / t - 1) <= _ASPECT_TOLERANCE for t in targets.values()):
        problems.append(f"size {width:.2f} x {height:.2f} in (aspect {aspect:.2f}) is neither a 16:9 slide "
                        f"(1.78) nor half of one (0.89): use pcoh.plots.slide_figure or slide_grid")
    scale = _scale_to_slide(fig)
    renderer, drawn = _drawn_texts(fig)
    box = fig.bbox
    small = sorted({(round(t.get_fontsize() * scale, 1), t.get_text()[:30]) for t in drawn
                    if t.get_fontsize() * scale < MIN_FONT_PT - 1e-6})
    if small:
        shown = ", ".join(f"{text!r} at {size:g} pt" for size, text in small[:5])
        problems.append(f"{len(small)} text(s) below {MIN_FONT_PT:g} pt on the slide: {shown}")
    outside = []
    for t in drawn:
        ext = t.get_window_extent(renderer)
        if ext.x0 < box.x0 - 1 or ext.y0 < box.y0 - 1 or ext.x1 > box.x1 + 1 or ext.y1 > box.y1 + 1:
            outside.append(t.get_text()[:30])
    if outside:
        problems.append(f"{len(outside)} text(s) reach outside the figure: {outside[:5]}")
    # Titles, axis labels, tick labels and legends must keep apart, from each other and from
    # texts placed in the data (those, such as class names on a map, may meet each other).
    placed = {id(t) for ax in fig.axes for t in ax.texts}
    layout = drawn
    gap = _MIN_GAP_PT * fig.dpi / 72
    flat = [t.get_window_extent(renderer).expanded(1, 1).padded(gap / 2) for t in layout]
    oriented = [_oriented_box(t, renderer) for t in layout]
    touching = [(layout[i].get_text()[:20], layout[j].get_text()[:20])
                for i in range(len(layout)) for j in range(i + 1, len(layout))
                if not (id(layout[i]) in placed and id(layout[j]) in placed)
                and flat[i].overlaps(flat[j]) and _boxes_overlap(oriented[i], oriented[j], gap)]
    if touching:
        problems.append(f"{len(touching)} pair(s) of texts overlap: {touching[:4]}")
    for ax in fig.axes:
        name = ax.get_title() or ax.get_label() or "an axes"
        if not ax.get_visible():
            problems.append("an empty panel (a hidden axes): size the grid from what it draws (slide_grid)")
            continue
        if not (ax.has_data() or ax.texts or ax.get_legend() is not None):
            problems.append(f"an empty panel ({name!r} draws nothing)")
        frame = ax.get_window_extent(renderer)
        cut = 0
        for artist in (*ax.collections, *ax.lines):
            if not artist.get_visible() or not artist.get_clip_on():
                continue
            points = _marker_points(artist, renderer)
            if points is None:
                continue
            xy, r = points
            inside = ((xy[:, 0] > frame.x0 - r) & (xy[:, 0] < frame.x1 + r)
                      & (xy[:, 1] > frame.y0 - r) & (xy[:, 1] < frame.y1 + r))
            whole = ((xy[:, 0] - r >= frame.x0 - 0.5) & (xy[:, 0] + r <= frame.x1 + 0.5)
                     & (xy[:, 1] - r >= frame.y0 - 0.5) & (xy[:, 1] + r <= frame.y1 + 0.5))
            cut += int(np.sum(inside & ~whole & np.isfinite(xy).all(axis=1)))
        if cut:
            problems.append(f"{name!r}: {cut} marker(s) cut by the edge of the axes (widen its limits)")
    return problems


def savefig(fig, path, formats: Sequence[str] = ("png", "svg"), *, check: bool = True) -> list[Path]:
    """Save ``fig`` as ``path.<format>`` for each format (creating the folder), deterministically.

    The same figure saved twice gives the same bytes: the metadata hold no date and no library
    version, SVG ids come from a fixed salt whatever the current rcParams say, and the figure's
    layout (constrained layout) is computed once, at the first save, and kept. The figure is saved
    at its own size (no cropping), at :data:`SLIDE_DPI`: a full slide figure is a 1920 x 1080 PNG.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or pathlib.Path
        The file name without its suffix (any suffix given is replaced).
    formats : sequence of {"png", "svg", "pdf"}, default ("png", "svg")
    check : bool, default True
        Refuse a figure that breaks the slide rule (:func:`slide_problems`).

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``.

    Raises
    ------
    ValueError
        An unknown format, or (with ``check``) a figure that is not ready for a slide; the
        message lists the problems.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a path (str or os.PathLike), got {type(path).__name__}")
    path = Path(path)
    out = []
    for fmt, data in render(fig, formats, check=check, name=path.name).items():
        target = path.with_suffix(f".{fmt}")
        write_bytes(data, target)  # whole or not at all: never a 0-byte figure
        out.append(target)
    return out


def render(fig, formats: Sequence[str] = ("png", "svg"), *, check: bool = True, name: str = "figure") -> dict:
    """``{format: bytes}`` of ``fig``, exactly as :func:`savefig` writes them (same checks)."""
    import matplotlib as mpl

    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if isinstance(formats, str):
        formats = (formats,)
    if not isinstance(formats, Sequence):
        raise TypeError(f"formats must be a format name or a sequence of them, got {type(formats).__name__}")
    for fmt in formats:
        check_choice(fmt, "formats", list(_METADATA))
    check = check_bool(check, "check")
    engine = fig.get_layout_engine()
    if engine is not None and not isinstance(engine, PlaceHolderLayoutEngine):
        # Lay the figure out once and keep that layout: a layout engine run again from its own
        # result moves axes by a few millionths of a point, which would change the bytes.
        fig.draw_without_rendering()
        fig.set_layout_engine("none")
    if check:
        problems = slide_problems(fig)
        if problems:
            raise ValueError(f"fig is not ready for a slide ({name}):\n- " + "\n- ".join(problems))
    out = {}
    with mpl.rc_context({"svg.hashsalt": _SVG_SALT}):
        for fmt in formats:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, bbox_inches=None, dpi=SLIDE_DPI, metadata=_METADATA[fmt])
            out[fmt] = buffer.getvalue()
    return out
