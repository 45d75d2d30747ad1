"""Notebook 03's neighbour control: ``pc`` students trained at several focus values, and their neighbours."""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

from .._checks import check_choice, check_int, check_optional_str
from ..dissimilarity import get_metric
from ..experiment import ExperimentResult, run_experiment
from .prose import ranked_baselines
from .selection import pick_runs
from .workspace import experiment_config, runs_to_train
from ..methods import CLASS_UNAWARE

__all__ = ["FOCUS_VALUES", "focus_loss_kwargs", "focus_students", "focus_neighbors"]


#: The focus values of notebook 03's neighbour control: plain pc (0) and the symmetric exponential focus.
FOCUS_VALUES = (0, 4, 8)


def focus_loss_kwargs(focus: float) -> dict:
    """Keyword arguments of the ``pc`` loss at ``focus``: none for 0 (plain pc), else the symmetric exp focus."""
    if isinstance(focus, bool) or not isinstance(focus, (int, float)) or not math.isfinite(focus):
        raise TypeError(f"focus must be a finite number, got {focus!r}")
    if focus < 0:
        raise ValueError(f"focus must be >= 0, got {focus!r}")
    return {} if focus == 0 else {"focus": float(focus), "focus_kind": "exp", "focus_symmetric": True}


def focus_students(focus_values: Sequence[float] = FOCUS_VALUES, *, seed: int = 0,
                   smoke_mode: bool | None = None, result: Optional[ExperimentResult] = None) -> dict:
    """Test features of class-unaware ``pc`` students trained at each focus, with the notebooks' settings.

    One :func:`pcoh.experiment.run_experiment` per focus, with :func:`experiment_config`'s teacher,
    student, budgets and data, the ``pc`` method only, the class-unaware mode, seeds ``0..seed``
    and the loss arguments of :func:`focus_loss_kwargs`. Runs are cached in ``data/runs/`` like
    every other run, so focus 0 is the main experiment's ``pc`` run and a second call only loads.

    Parameters
    ----------
    focus_values : sequence of float, default :data:`FOCUS_VALUES`
    seed : int, default 0
    smoke_mode : bool, optional
        As :func:`experiment_config`.
    result : ExperimentResult, optional
        The main experiment of the same settings (:func:`experiment`): focus 0 is then read from
        its class-unaware ``pc`` run instead of a run of its own (the same cached run, without
        evaluating it again).

    Returns
    -------
    dict
        focus -> ``(n_test, d)`` numpy features of the run with ``seed``.
    """
    seed = check_int(seed, "seed", minimum=0)
    base = experiment_config(smoke_mode)
    out = {}
    for focus in focus_values:
        kwargs = focus_loss_kwargs(focus)
        if not kwargs and result is not None:
            out[focus] = result.features[pick_runs(result, CLASS_UNAWARE, seed)["pc"]]["test"]
            continue
        config = dataclasses.replace(base, methods=("pc",), modes=(CLASS_UNAWARE,), seeds=seed + 1,
                                     include_untrained=False, loss_kwargs={"pc": kwargs} if kwargs else {})
        result = run_experiment(config, quiet=not runs_to_train(config), write=False)
        out[focus] = result.features[(config.students[0], "pc", CLASS_UNAWARE, seed)]["test"]
    return out


def focus_neighbors(result: ExperimentResult, focus_features: dict, focus: float, reference: int, *,
                    baseline: Optional[str] = None, seed: int = 0, k: int = 8, teacher_metric: str = "cosine",
                    student_metric: str = "cosine", ax=None):
    """The reference's ``k`` nearest test images: teacher, the ``pc`` student at ``focus``, the best baseline.

    Parameters
    ----------
    result : ExperimentResult
        The main experiment (:func:`experiment`): the test images, the teacher's features and the
        baseline's class-unaware run of ``seed``.
    focus_features : dict
        focus -> ``(n_test, d)`` features (:func:`focus_students`).
    focus : float
        A key of ``focus_features``.
    reference : int
        Test index of the reference image.
    baseline : str, optional
        Default the class-unaware method other than ``pc`` with the highest mean $PC_n$
        (:func:`ranked_baselines`).
    seed : int, default 0
    k : int, default 8
    teacher_metric, student_metric : str, default "cosine"
        The dissimilarities of the teacher and of the students (the experiment's).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        From :func:`pcoh.plots.plot_neighbors`, the teacher's row first.
    """
    from .. import plots

    if not isinstance(focus_features, dict):
        raise TypeError(f"focus_features must be a dict of focus -> features, got {type(focus_features).__name__}")
    if not focus_features:
        raise ValueError("focus_features must hold at least one focus -> features")
    check_choice(focus, "focus", list(focus_features))
    seed = check_int(seed, "seed", minimum=0)
    get_metric(teacher_metric, "teacher_metric")
    get_metric(student_metric, "student_metric")
    check_optional_str(baseline, "baseline")
    if baseline is None:
        baseline = ranked_baselines(result.results, mode=CLASS_UNAWARE)[0]
    runs = pick_runs(result, CLASS_UNAWARE, seed)
    check_choice(baseline, "baseline", [m for m in runs if m != "pc"])
    images, labels = result.data.tensors("test")
    features = {"teacher": result.features["teacher"]["test"], f"pc, focus {focus:g}": focus_features[focus],
                baseline: result.features[runs[baseline]]["test"]}
    metric = {name: teacher_metric if name == "teacher" else student_metric for name in features}
    ax = plots.plot_neighbors(images, features, reference, k=k, metric=metric, labels=labels,
                              shared_with="teacher", mean=result.data.mean, std=result.data.std, ax=ax)
    ax.set_title(f"class-unaware students, seed {seed}: nearest neighbours of reference {reference}", pad=28)
    return ax
