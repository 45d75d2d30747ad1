"""The notebooks' controls: widgets that redraw a figure, and a logarithmic slider that holds its value exactly."""
from __future__ import annotations

import math
import os
from typing import Callable

import numpy as np

from .._checks import check_bool, check_int

__all__ = ["draw_controls", "log_slider", "saved_copy", "SAVED_COPY_NOTE"]

#: What a saved control says about itself: in the saved copy of a notebook its buttons cannot answer
#: (no kernel runs the notebook yet), so it says what to do instead of doing nothing.
SAVED_COPY_NOTE = ("<i>Saved copy: these controls answer once the notebook runs (<b>Run &rarr; Run All "
                   "Cells</b>); until then the figure above is the one saved.</i>")


def saved_copy() -> bool:
    """True while ``scripts/execute_notebooks.py`` executes the notebooks whose outputs are committed
    (it sets ``PCOH_SAVED_COPY=1``): the controls drawn then carry :data:`SAVED_COPY_NOTE`."""
    return os.environ.get("PCOH_SAVED_COPY", "") not in ("", "0")


def draw_controls(function: Callable, *, manual: bool = True, show: bool = True, **controls):
    """Widgets that redraw ``function`` with the values of ``controls`` (needs a live kernel).

    With ``manual`` (default) a *Draw* button redraws: drawing into a widget while a notebook is
    executed unattended can stall the executor, so nothing is drawn until the button is pressed.
    Give every control the value of the static figure above it. In the saved copy of a notebook
    (:func:`saved_copy`) the controls carry a note saying that they answer once the notebook runs. ``function`` draws a figure (and
    may return it, as for the static figure): each call is followed by ``plt.show()``, so that the
    figure lands in the widget's output area, and its return value is dropped (the output area
    would otherwise print it).

    Returns
    -------
    ipywidgets.interactive
        Displayed already when ``show``.
    """
    import functools

    import ipywidgets as widgets
    from IPython.display import display

    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    manual, show = check_bool(manual, "manual"), check_bool(show, "show")

    @functools.wraps(function)  # keeps the signature, whose defaults and names the controls are matched to
    def draw(*args, **kwargs):
        import matplotlib.pyplot as plt

        function(*args, **kwargs)
        plt.show()

    options = {"manual": True, "manual_name": "Draw"} if manual else {}
    panel = widgets.interactive(draw, options, **controls) if options else widgets.interactive(draw, **controls)
    if saved_copy():  # the note sits above the figure the controls draw into
        panel.children = (*panel.children[:-1], widgets.HTML(SAVED_COPY_NOTE), panel.children[-1])
    if show:
        display(panel)
    return panel


def log_slider(value: float, low: float, high: float, *, per_decade: int = 4, description: str = "",
               digits: int = 3):
    """A slider over a logarithmic grid that holds ``value`` exactly.

    An ``ipywidgets.SelectionSlider`` over the explicit values ``10**(k / per_decade)`` from
    ``low`` to ``high`` and ``value`` itself: unlike a ``FloatLogSlider``, whose step rounds the
    exponent, it starts at exactly ``value`` (the value of the static figure above it).

    Parameters
    ----------
    value, low, high : float
        ``0 < low <= value <= high``.
    per_decade : int, default 4
        Grid points per factor of 10.
    description : str
    digits : int, default 3
        Significant digits of the labels.
    """
    import ipywidgets as widgets

    for name, v in (("value", value), ("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise TypeError(f"{name} must be a finite number, got {v!r}")
    if not 0 < low <= value <= high:
        raise ValueError(f"need 0 < low <= value <= high, got low={low!r}, value={value!r}, high={high!r}")
    per_decade, digits = check_int(per_decade, "per_decade", minimum=1), check_int(digits, "digits", minimum=1)
    if not isinstance(description, str):
        raise TypeError(f"description must be a string, got {type(description).__name__}")
    exponents = np.arange(math.floor(math.log10(low) * per_decade), math.ceil(math.log10(high) * per_decade) + 1)
    grid = [float(10.0 ** (k / per_decade)) for k in exponents]
    grid = [g for g in grid if low * (1 - 1e-12) <= g <= high * (1 + 1e-12)]
    values = sorted(set(grid) | {float(value)})
    options = [(f"{v:.{digits}g}", v) for v in values]
    return widgets.SelectionSlider(options=options, value=float(value), description=description,
                                   continuous_update=False)
