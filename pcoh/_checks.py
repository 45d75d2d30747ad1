"""Input checks shared by the package: one rule for every module.

A value of the wrong *type* raises :class:`TypeError`; a value of the right type but a wrong
*value* (shape, range, unknown name, NaN) raises :class:`ValueError`. Every message names the
argument, says what was expected and shows what came, e.g.
``"features must be 2-D (n, d), got shape (8,)"``.

These helpers return the checked value in a normalised form (a Python ``int``, a float64 numpy
array, ...), so a caller writes ``k = check_int(k, "k", minimum=1)`` and uses ``k`` from there on.
"""
from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

__all__ = [
    "check_int",
    "check_float",
    "check_choice",
    "check_bool",
    "check_module",
    "check_optional_str",
    "as_path",
    "one_line",
    "check_seed",
    "as_array",
    "as_features",
    "as_labels",
    "check_columns",
    "check_names",
    "check_index",
    "check_count",
    "check_positive",
    "check_str",
    "check_path",
    "check_name_list",
    "check_table",
    "typed_repr",
    "all_finite",
    "name_list",
]


def check_int(value, name: str, *, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]``; booleans are not integers here.

    Raises
    ------
    TypeError
        ``value`` is not an integer (Python or numpy).
    ValueError
        ``value`` lies outside the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value}")
    return value


def check_float(value, name: str, *, minimum: Optional[float] = None, maximum: Optional[float] = None,
                strict: bool = False) -> float:
    """``value`` as a finite ``float`` in ``[minimum, maximum]`` (open bounds with ``strict``).

    Raises
    ------
    TypeError
        ``value`` is not a real number (booleans included).
    ValueError
        ``value`` is NaN, infinite, or outside the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    below = minimum is not None and (value <= minimum if strict else value < minimum)
    above = maximum is not None and (value >= maximum if strict else value > maximum)
    if below or above:
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        interval = f"({lo}, {hi})" if strict else f"[{lo}, {hi}]"
        raise ValueError(f"{name} must be a number in {interval}, got {value}")
    return value


def check_choice(value, name: str, choices: Iterable):
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    choices = list(choices)
    try:
        ok = value in choices
    except TypeError:  # an unhashable or incomparable value is simply not a valid choice
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_bool(value, name: str) -> bool:
    """``value`` as a ``bool``: Python or numpy booleans only (not 0/1, not strings)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_module(value, name: str = "model"):
    """``value`` if it is a ``torch.nn.Module``; anything else is a TypeError naming ``name``."""
    if not isinstance(value, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def check_optional_str(value, name: str) -> Optional[str]:
    """``value`` if it is a string or None; anything else is a TypeError."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None, got {type(value).__name__} {value!r}")
    return value


def check_seed(seed, name: str = "seed", *, optional: bool = True, maximum: Optional[int] = None) -> Optional[int]:
    """A random seed: a non-negative integer (what numpy's generators take), at most ``maximum``,
    or ``None`` when ``optional``."""
    if seed is None and optional:
        return None
    return check_int(seed, name, minimum=0, maximum=maximum)


def check_count(value, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` ``>= minimum`` (a size, a number of layers or epochs); booleans are
    not integers here (``num_classes=True`` is always a mistake)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite ``float`` ``> 0`` (``>= 0`` with ``allow_zero``): a temperature, a
    strength, a margin. Python numbers only, booleans excluded."""
    kind = "non-negative" if allow_zero else "positive"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a {kind} number, got {type(value).__name__}")
    if not ((value >= 0 if allow_zero else value > 0) and value < float("inf")):
        raise ValueError(f"{name} must be a {kind} finite number, got {value}")
    return float(value)


def all_finite(x: torch.Tensor) -> bool:
    """Whether every entry of the tensor ``x`` is finite (no NaN, no Inf); True when empty.

    A NaN or an Inf anywhere makes the sum non-finite, so a finite sum proves every entry finite
    in one read of ``x`` (a reduction, no boolean tensor as large as ``x``, about 15x faster than
    ``torch.isfinite(x).all()`` on a large CPU matrix). Only a non-finite sum, which finite but
    huge entries can give by overflow, needs the entry-by-entry test.
    """
    if not x.is_floating_point():
        return True
    if bool(torch.isfinite(x.sum())):
        return True
    return bool(torch.isfinite(x).all())


def typed_repr(value, limit: int = 60) -> str:
    """``type value`` for an error message, the value's repr cut to ``limit`` characters."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(value).__name__} {text}"


def name_list(names, limit: int = 5) -> str:
    """At most ``limit`` names (each cut to 40 characters) and how many more: an error message
    stays one short line."""
    names = [str(n)[:40] for n in names]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{names[:limit]}{more}"


def check_str(value, name: str, *, empty: bool = False) -> str:
    """``value`` if it is a string (non-empty unless ``empty``)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {typed_repr(value)}")
    if not value and not empty:
        raise ValueError(f"{name} must not be empty")
    return value


def check_path(value, name: str):
    """``value`` unchanged if it is a non-empty path (str or os.PathLike) without NUL characters.
    :func:`as_path` converts to a ``Path`` instead."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (a string), got {typed_repr(value)}")
    text = os.fspath(value)
    if not text or "\0" in str(text):
        raise ValueError(f"{name} must be a non-empty path without NUL characters, got {text!r}")
    return value


def check_name_list(value, name: str) -> tuple:
    """A name or a list of names (students, methods, modes) as a tuple: at least one, each once.
    :func:`check_names` takes column names instead (any sequence, repeats allowed)."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a name or a list of names, got {typed_repr(value)}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold names (strings), got {typed_repr(item)}")
    if not value:
        raise ValueError(f"{name} must name at least one entry")
    repeated = sorted({item for item in value if value.count(item) > 1})
    if repeated:
        raise ValueError(f"{name}: {name_list(repeated)} given more than once; name each once")
    return tuple(value)


def check_table(value, name: str) -> dict:
    """A mapping with string keys (a table of a config file), as a new ``dict``."""
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a table (a mapping of names to values), got {typed_repr(value)}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name} must have names (strings) as keys, got {typed_repr(key)}")
    return dict(value)


def as_array(x, name: str, *, ndim: Optional[int] = None, columns: Optional[int] = None,
             finite: bool = True, shape_doc: Optional[str] = None) -> np.ndarray:
    """``x`` (a torch tensor, numpy array or nested sequence of numbers) as a float64 numpy array.

    Parameters
    ----------
    x : torch.Tensor, numpy.ndarray or array-like
    name : str
        The argument's name, for messages.
    ndim : int, optional
        Required number of dimensions.
    columns : int, optional
        Required size of the last dimension (e.g. 2 for points in the plane).
    finite : bool, default True
        Reject NaN and Inf.
    shape_doc : str, optional
        How the shape is written in messages, e.g. ``"(n, d)"``; default from ``ndim``.

    Raises
    ------
    TypeError
        ``x`` does not hold numbers.
    ValueError
        Wrong number of dimensions or columns, or NaN/Inf values.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as err:  # ragged nested lists and the like
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from err
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {a.dtype} ({type(x).__name__})")
    a = a.astype(np.float64, copy=False)
    want = shape_doc or {1: "(n,)", 2: "(n, d)", 3: "(n, h, w)"}.get(ndim, "")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {want}, got shape {a.shape}".replace("  ", " "))
    if columns is not None and (a.ndim == 0 or a.shape[-1] != columns):
        raise ValueError(f"{name} must have {columns} columns {want}, got shape {a.shape}")
    if finite and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return a


def as_features(x, name: str) -> torch.Tensor:
    """A (N, d) feature matrix as a CPU tensor, float64 kept, any other dtype made float32.

    Accepts a torch tensor or a numpy array of numbers; rejects NaN and Inf.

    Raises
    ------
    TypeError
        Not a tensor or array, or not numeric.
    ValueError
        Not 2-D, or NaN/Inf values.
    """
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.number):
            raise TypeError(f"{name} must hold numbers, got dtype {x.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array (N, d), got {type(x).__name__}")
    elif x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    # Measures run on the CPU (index masks, numba kernels and numpy outputs): CUDA input is copied.
    x = x.detach().cpu()
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, d), got shape {tuple(x.shape)}")
    if x.dtype != torch.float64:
        x = x.to(torch.float32)
    if not all_finite(x):
        raise ValueError(f"{name} contains NaN or Inf values")
    return x


def as_labels(y, name: str = "labels", n: Optional[int] = None) -> np.ndarray:
    """Class labels as a 1-D numpy array, optionally of length ``n``."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n,), got shape {a.shape}")
    if n is not None and len(a) != n:
        raise ValueError(f"{name} must hold one label per row of the data ({n}), got {len(a)}")
    return a


def check_columns(frame, columns: Iterable[str], name: str) -> None:
    """Every one of ``columns`` is a column of the DataFrame ``frame``."""
    if not hasattr(frame, "columns"):
        raise TypeError(f"{name} must be a pandas.DataFrame, got {type(frame).__name__}")
    for col in columns:
        if col not in frame.columns:
            raise ValueError(f"{name} must have a {col!r} column, got columns {list(frame.columns)}")


def check_names(value, name: str) -> tuple:
    """A column name or a sequence of column names, as a tuple of strings."""
    if isinstance(value, str):
        return (value,)
    names = isinstance(value, Sequence) and not isinstance(value, bytes) and all(isinstance(v, str) for v in value)
    if not names:
        raise TypeError(f"{name} must be a column name or a sequence of column names, got {value!r}")
    return tuple(value)


def check_index(value, name: str, n: int) -> int:
    """An index into ``n`` items: an integer in ``[0, n)``."""
    value = check_int(value, name)
    if not 0 <= value < n:
        raise ValueError(f"{name} must be an index in [0, {n}), got {value}")
    return value


def check_indices(values, name: str, n: int) -> np.ndarray:
    """A 1-D sequence of indices into ``n`` items, as an int64 numpy array."""
    a = np.asarray(values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        raise TypeError(f"{name} must be a sequence of integers, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size and (a.min() < 0 or a.max() >= n):
        raise ValueError(f"{name} must hold indices in [0, {n}), got values in [{a.min()}, {a.max()}]")
    return a.astype(np.int64, copy=False)


def check_pairs_option(n_pairs, name: str = "n_pairs", *, minimum: int = 1, auto: bool = True):
    """A pair-sampling option: ``None`` (exact), ``"auto"`` (when allowed) or an integer >= minimum."""
    if n_pairs is None or (auto and isinstance(n_pairs, str) and n_pairs == "auto"):
        return n_pairs
    if isinstance(n_pairs, str):
        allowed = "None (exact), 'auto' or an integer" if auto else "None (exact) or an integer"
        raise ValueError(f"{name} must be {allowed} >= {minimum}, got {n_pairs!r}")
    return check_int(n_pairs, name, minimum=minimum)


def as_path(value, name: str = "path"):
    """``value`` (a str or os.PathLike) as a ``pathlib.Path``; anything else is a TypeError naming ``name``."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__} {value!r}")
    return Path(value)


def one_line(text, limit: int = 200) -> str:
    """``text`` on one line (runs of white space as one space), cut to ``limit`` characters with ``...``."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
