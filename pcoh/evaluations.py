"""The evaluation cache: one JSON file per run and measure settings, under ``<cache>/evaluations``.
It stores what :mod:`pcoh.evaluate` computes and computes nothing itself.

:func:`pcoh.experiment.run_experiment` reads an evaluation from here when the same run was
evaluated before with the same settings and features, and computes and writes it otherwise.
"""
from __future__ import annotations

import math
from pathlib import Path

from . import files as _files
from . import runs as _runs
from ._checks import as_path

__all__ = ["EVALUATION_FORMAT", "evaluation_path", "cached_evaluation", "digest"]


#: Version of the cached evaluations' format and of what :func:`pcoh.evaluate.evaluate_model`
#: computes; raising it makes every cached evaluation stale (2: the ``rnx_auc`` column and the
#: stored R_NX curves).
EVALUATION_FORMAT = 2


def digest(*arrays) -> str:
    """SHA-256 of arrays' dtypes, shapes and bytes (None for a missing one)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        if a.dtype == object:  # the bytes of an object array are memory addresses: no digest of the content
            raise TypeError(f"arrays must be arrays of numbers (or None), got an array of {a.dtype} objects")
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def evaluation_path(root, run: str, settings: dict) -> Path:
    """Where the evaluation of one run under some measure settings is cached.

    ``<root>/evaluations/<run>-<hash>.json``: ``run`` names the run's folder (``student-<key>``,
    as under ``<root>/runs``), ``hash`` is :func:`pcoh.runs.run_key` of ``settings`` (the
    dissimilarities, the evaluation's parameters, a digest of the features evaluated).
    """
    root = as_path(root, "root")
    if not isinstance(run, str):
        raise TypeError(f"run must be the run folder's name (a string), got {type(run).__name__}")
    if not run or "/" in run:
        raise ValueError(f"run must be a non-empty folder name without slashes, got {run!r}")
    if not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict of the evaluation's settings, got {type(settings).__name__}")
    return root / "evaluations" / f"{run}-{_runs.run_key({'evaluation': EVALUATION_FORMAT, **settings})}.json"


def _finite_or_none(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))


def cached_evaluation(path, compute, n_test: int, *, curves: bool = False):
    """``compute()`` -> ``(row, per_reference)``, read from ``path`` when it was computed before.

    The cache file is JSON (no code can run on reading it), written atomically. A damaged file,
    or one whose content does not have the expected form, is moved aside
    (:func:`pcoh.files.quarantine`) and the evaluation recomputed.

    Parameters
    ----------
    path : path-like
        From :func:`evaluation_path`.
    compute : callable
        ``() -> (dict of str -> float, (n_test,) array)``.
    n_test : int
        Length of the per-reference values, checked on reading.
    curves : bool, default False
        ``compute()`` returns a third element, a dict of name -> 1-D array (e.g. ``{"r_nx": ...}``),
        stored and read back with the rest; a cached file without curves is then recomputed.

    Returns
    -------
    (dict, numpy.ndarray), or (dict, numpy.ndarray, dict of name -> numpy.ndarray) with ``curves``
    """
    import numpy as np

    from ._checks import check_bool, check_int

    curves = check_bool(curves, "curves")

    path = as_path(path)
    if not callable(compute):
        raise TypeError(f"compute must be a callable () -> (row, per_reference), got {type(compute).__name__}")
    n_test = check_int(n_test, "n_test", minimum=1)
    if path.exists():
        try:
            cached = _files.read_json(path)
            row, names, rho = cached["row"], cached["columns"], cached["per_reference"]
            if not (isinstance(row, dict) and isinstance(rho, list) and len(rho) == n_test
                    and isinstance(names, list) and sorted(names) == sorted(row)
                    and all(_finite_or_none(v) for v in row.values())
                    and all(_finite_or_none(v) for v in rho)):
                raise _files.CorruptFileError(f"{path}: not an evaluation of {n_test} references "
                                             "(finite numbers or null)")
            if curves:
                stored = cached["curves"]
                if not (isinstance(stored, dict) and all(
                        isinstance(v, list) and all(_finite_or_none(x) and x is not None for x in v)
                        for v in stored.values())):
                    raise _files.CorruptFileError(f"{path}: curves are not lists of finite numbers")
            # The columns in the order they were computed (the JSON object's keys are sorted).
            out = ({k: (math.nan if row[k] is None else float(row[k])) for k in names},
                   np.asarray(rho, dtype=np.float64))
            return out + ({k: np.asarray(v, dtype=np.float64) for k, v in stored.items()},) if curves else out
        except (_files.CorruptFileError, KeyError, TypeError, ValueError) as err:
            _files.quarantine(path, str(err))
    if curves:
        row, rho, stored = compute()
        stored = {str(k): np.asarray(v, dtype=np.float64).ravel() for k, v in stored.items()}
    else:
        row, rho = compute()
    rho = np.asarray(rho, dtype=np.float64)
    # NaN (a metric that does not apply) is written as null: strict JSON.
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
    content = {"row": clean, "columns": list(row), "per_reference": [None if math.isnan(v) else float(v) for v in rho]}
    if curves:
        content["curves"] = {k: [float(x) for x in v] for k, v in stored.items()}
    _files.write_json(content, path)
    return (row, rho, stored) if curves else (row, rho)
