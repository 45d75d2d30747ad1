"""Every public function and constructor of pcoh checks its arguments by one rule.

The rule (see ``pcoh/_checks.py``): an argument of the wrong *type* raises :class:`TypeError`;
one of the right type but a wrong *value* (out of range, NaN, an unknown name, a wrong shape)
raises :class:`ValueError`; and the message names the argument.

How this file tests it
----------------------
:func:`public_callables` walks the package with :mod:`pkgutil` (every module and sub-package,
``pcoh.losses``, ``pcoh.data``, ``pcoh.models``, ``pcoh.plots`` and ``pcoh.notebook`` included) and
collects each function and class named in a module's ``__all__`` and defined in pcoh, once per
object however often it is re-exported, under its own name ``module.qualname``. Private modules
(a name part starting with ``_``, as ``pcoh._checks``) are not walked; what a public module
re-exports from one (``pcoh.plots.style`` from ``pcoh.plots._base``) is public all the same.

:data:`TABLE` holds, for each of them, one *valid* call and a list of *cases*. A case
``(parameter, wrong_type, wrong_value[, match])`` replaces that one argument of the valid call:
with ``wrong_type`` the call must raise TypeError, with ``wrong_value`` ValueError, and the
message must match ``match`` (a regular expression; by default the parameter's name). ``NA``
stands for "no such case" (a flag has no wrong value; a name picked from a list has no wrong
type other than a wrong value). The valid call itself must succeed, so a case cannot pass
because the call was broken anyway.

:data:`EXEMPT` lists the public callables left out, each with its reason. A completeness test
fails for any public callable in neither, and for any name in either that is not public.

To add a function: write ``"pcoh.module.name": entry(lambda: call(<valid arguments>), cases...)``
in :data:`TABLE` (the lambda builds fresh arguments for every call; the shared small inputs are
below), run this file, and fix the function (with the helpers of ``pcoh/_checks.py``) where a
case fails.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import pcoh  # noqa: E402

# Valid calls of pcoh.files.quarantine move a file aside, which it reports with a CacheWarning.
pytestmark = pytest.mark.filterwarnings("ignore::pcoh.files.CacheWarning")

NA = object()  # "no such case"


class later:
    """A case value made when the case runs, not when the table is built (a file, a figure)."""

    def __init__(self, make: Callable[[], Any]):
        self.make = make


# ------------------------------------------------------------------------- public callables
def _private(module_name: str) -> bool:
    return any(part.startswith("_") and part != "__main__" for part in module_name.split("."))


def public_callables() -> dict[str, Callable]:
    """``"module.qualname" -> object`` for every function and class in a public ``__all__``."""
    modules = [pcoh] + [importlib.import_module(info.name)
                        for info in pkgutil.walk_packages(pcoh.__path__, "pcoh.") if not _private(info.name)]
    found = {}
    for module in modules:
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__.startswith("pcoh"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def resolve(name: str) -> Callable:
    """The object called ``name`` (``"module.qualname"``)."""
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


# ---------------------------------------------------------------------------- the table format
def call(*args, **kwargs) -> tuple[tuple, dict]:
    """The arguments of one call."""
    return args, kwargs


def entry(valid: Callable[[], tuple[tuple, dict]], *cases: tuple) -> tuple:
    """A table row: the valid call (a function returning fresh arguments) and its cases."""
    return valid, cases


def with_argument(fn: Callable, args: tuple, kwargs: dict, parameter: str, value: Any) -> tuple[tuple, dict]:
    """``args, kwargs`` with ``parameter`` set to ``value`` (through ``**kwargs`` if it is not named;
    as the one item of ``*parameter``)."""
    signature = inspect.signature(fn)
    bound = signature.bind(*args, **kwargs)
    if parameter in signature.parameters:
        var_positional = signature.parameters[parameter].kind is inspect.Parameter.VAR_POSITIONAL
        bound.arguments[parameter] = (value,) if var_positional else value
    else:
        var_keyword = [p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD]
        assert var_keyword, f"{fn.__qualname__} has no parameter {parameter!r}"
        bound.arguments.setdefault(var_keyword[0], {})[parameter] = value
    return bound.args, bound.kwargs


# ----------------------------------------------------------------------------- small inputs
_SCRATCH: list = []  # the running test's tmp_path (set by the fixture _scratch_folder)


def scratch() -> Path:
    """An empty folder of the running test, for the functions that write files."""
    return _SCRATCH[-1]


def written(name: str = "data.json") -> Path:
    """A small JSON file in the scratch folder."""
    path = scratch() / name
    path.write_text('{"a": 1}')
    return path


N = 12  # samples in the small feature sets


def features(d: int = 3, n: int = N) -> np.ndarray:
    """Student-like features (n, d)."""
    return np.random.default_rng(d).normal(size=(n, d))


def tensor(d: int = 3, n: int = N) -> torch.Tensor:
    return torch.from_numpy(features(d, n)).float()


def labels(n: int = N) -> np.ndarray:
    return np.arange(n) % 3


def with_nan(x):
    """A copy of ``x`` with one NaN (a wrong value of a numeric array)."""
    x = x.clone() if isinstance(x, torch.Tensor) else np.array(x, dtype=float)
    x.reshape(-1)[0] = float("nan")
    return x


FLAT = np.arange(5.0)  # a 1-D array: a wrong shape where a matrix is expected


def tiny_net() -> torch.nn.Module:
    """A small network of one's own (one convolution, a linear classifier) for 8x8 grey images."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 3))


def tiny_model():
    """A small pcoh model (an MLP on 8x8 grey images)."""
    from pcoh import models

    return models.create("mlp", 3, 1, 8, hidden=8, feature_dim=4, seed=0)


def wrapped_name() -> str:
    from pcoh import models

    return models.wrap(tiny_net(), name="tiny", image_size=8).name


def tiny_data():
    """A small image data set (8x8 grey images, 3 classes) as a DataSplit."""
    from pcoh import data

    images = np.random.default_rng(0).normal(size=(24, 1, 8, 8))
    return data.from_arrays(images, np.arange(24) % 3, test_size=0.25)


def tiny_train(**fields):
    from pcoh.specs import TrainConfig

    return TrainConfig(**{"epochs": 1, "batch_size": 6, **fields})


METHODS_BY_MODE = {"class-unaware": ["untrained", "pc", "pkt"], "class-aware": ["pc", "pkt", "ce"]}
METRIC_COLUMNS = ("pc_n", "global_spearman", "kendall_tau", "topk_overlap", "trustworthiness", "continuity",
                  "rnx_auc", "cka", "knn_accuracy", "linear_probe", "accuracy")


def results(seeds: int = 3) -> pd.DataFrame:
    """A small results table as :func:`pcoh.experiment.run_experiment` makes one."""
    rows = [{"student": "net", "method": "teacher", "mode": "-", "seed": 0, **dict.fromkeys(METRIC_COLUMNS, 1.0)}]
    values = iter(np.random.default_rng(1).uniform(0.5, 0.9, size=1000))
    for seed in range(seeds):
        for mode, methods in METHODS_BY_MODE.items():
            for method in methods:
                rows.append({"student": "net", "method": method, "mode": mode, "seed": seed,
                             **{c: next(values) for c in METRIC_COLUMNS}})
    frame = pd.DataFrame(rows)
    frame["pc_n_low"], frame["pc_n_high"] = frame["pc_n"] - 0.01, frame["pc_n"] + 0.01
    return frame


def comparison() -> pd.DataFrame:
    from pcoh import stats

    return stats.paired_comparison(results().query("method != 'teacher'"), "pc_n")


def per_reference(n: int = N) -> dict:
    """Per-reference values of every run of :func:`results`, and the teacher's."""
    rows = results().query("method != 'teacher'")
    values = {key: np.random.default_rng(i).uniform(0, 1, n)
              for i, key in enumerate(rows[["student", "method", "mode", "seed"]].itertuples(index=False, name=None))}
    return {"teacher": np.ones(n), **values}


def rnx_curves(k: int = 10) -> dict:
    """R_NX curves of every run of :func:`results`, as :attr:`pcoh.experiment.ExperimentResult.curves`."""
    rows = results().query("method != 'teacher'")
    return {key: {"r_nx": np.random.default_rng(i).uniform(0, 1, k)}
            for i, key in enumerate(rows[["student", "method", "mode", "seed"]].itertuples(index=False, name=None))}


def frontier() -> pd.DataFrame:
    """A focus study's summary table (one cell: digits, batch 256, class-unaware)."""
    rows = [("pkt", "baseline", 0.0), ("pc", "plain", 0.0), ("pc", "exp", 4.0), ("pc", "exp-sym", 4.0)]
    return pd.DataFrame([{"data": "digits", "batch": 256, "mode": "class-unaware", "method": method, "family": family,
                          "focus": focus, "pc_n_mean": 0.8 + focus / 100, "pc_n_ci": 0.01,
                          "knn_accuracy_mean": 0.9 - focus / 100, "knn_accuracy_ci": 0.01}
                         for method, family, focus in rows])


def histories() -> dict:
    """Training histories of two runs, as :attr:`pcoh.train.TrainedModel.history`."""
    return {name: [{"epoch": e, "loss": 1.0 / (e + 1 + i)} for e in range(3)] for i, name in enumerate(["pc", "pkt"])}


def images(n: int = N) -> np.ndarray:
    return np.random.default_rng(2).uniform(size=(n, 1, 8, 8))


def axes():
    return plt.subplots()[1]


def stand_in_result() -> SimpleNamespace:
    """A small stand-in of :class:`pcoh.experiment.ExperimentResult`: what the notebook helpers read."""
    frame = results()
    runs = list(frame.query("method != 'teacher'")[["student", "method", "mode", "seed"]]
                .itertuples(index=False, name=None))
    feats = {"teacher": {"test": features(4), "train": features(4, n=2 * N)}}
    feats.update({key: {"test": features(3), "train": features(3, n=2 * N)} for key in runs})
    data = SimpleNamespace(tensors=lambda split: (images(), labels()), mean=None, std=None)
    return SimpleNamespace(results=frame, features=feats, per_reference=per_reference(), data=data, curves=rnx_curves(),
                           teacher=SimpleNamespace(model=torch.nn.Linear(4, 3)),
                           students={key: SimpleNamespace(model=torch.nn.Linear(3, 3)) for key in runs})


def focus_summary() -> pd.DataFrame:
    """A focus study's summary (one cell), as :func:`pcoh.notebook.describe_focus_study` reads it."""
    return pd.DataFrame({"method": ["pkt", "pc focus 0", "pc exp-sym 4", "pc exp-sym 8"],
                         "family": ["baseline", "plain", "exp-sym", "exp-sym"],
                         "pc_n_mean": [0.85, 0.84, 0.83, 0.82], "topk_overlap_mean": [0.5, 0.52, 0.55, 0.56],
                         "knn_accuracy_mean": [0.95, 0.94, 0.945, 0.94]}).assign(data="digits", batch=64,
                                                                                  mode="class-unaware")


def embedding_scores() -> pd.DataFrame:
    """Scores of three embeddings, indexed by name (as notebook 08 tables them)."""
    return pd.DataFrame({"pc_n": [0.9, 0.5, 0.4], "pc_n_low": [0.85, 0.45, 0.30], "pc_n_high": [0.95, 0.55, 0.46],
                         "trustworthiness": [0.99, 0.80, 0.90]}, index=["A", "B", "C"])


def saved_weights() -> Path:
    """A file holding :func:`tiny_model`'s state dict."""
    path = scratch() / "weights.pt"
    torch.save(tiny_model().state_dict(), path)
    return path


NOT_A_CHECKPOINT = later(lambda: written("not-a-checkpoint.pt"))
NAMES_THE_FILE = r"\bpath\b|not-a-checkpoint\.pt"  # a damaged file's error names the file


def scratch_config():
    """The default experiment, its folders in the scratch folder."""
    from pcoh.config import ExperimentConfig

    folder = str(scratch())
    return ExperimentConfig(root=folder, cache=folder, output=folder, figures=folder)


@functools.lru_cache(maxsize=1)
def digits():
    from pcoh import data

    return data.load("digits")


def optimiser(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return opt, torch.optim.lr_scheduler.StepLR(opt, 1)


def estimates() -> pd.DataFrame:
    """A table as :func:`pcoh.experiment.estimate` makes one."""
    return pd.DataFrame([{"run": "teacher", "runs": 1, "cached": 0, "step_ms": 2.0, "steps_per_epoch": 10,
                          "epochs": 2, "epoch_s": 0.02, "total_s": 0.04, "remaining_s": 0.04}])


# ------------------------------------------------------------------------------------ the table
TABLE: dict[str, tuple] = {
    # --- coherence
    "pcoh.coherence.per_reference_spearman": entry(
        lambda: call(features(3), features(4)),
        ("student", "features", FLAT), ("teacher", [[1.0, 2.0]], with_nan(features(4))),
        ("student_metric", 3, "nope"), ("chunk_size", 1.5, 0)),
    "pcoh.coherence.perception_coherence": entry(
        lambda: call(features(3), features(4)),
        ("student", "features", FLAT), ("teacher", [[1.0, 2.0]], with_nan(features(4))),
        ("teacher_metric", 3, "nope")),
    "pcoh.coherence.per_reference_kendall": entry(
        lambda: call(features(3), features(4)),
        ("student", "features", FLAT), ("teacher", [[1.0, 2.0]], with_nan(features(4))),
        ("n_pairs", 2.5, 0), ("seed", 1.5, -1), ("chunk_size", 1.5, 0), ("student_metric", 3, "nope")),
    "pcoh.coherence.concordance_probability": entry(
        lambda: call(features(3), features(4)),
        ("student", "features", FLAT), ("n_pairs", 2.5, "many"), ("seed", "0", -1), ("chunk_size", "1", 0),
        ("teacher_metric", 3, "nope")),
    "pcoh.coherence.kendall_and_concordance": entry(
        lambda: call(features(3), features(4)),
        ("student", "features", FLAT), ("teacher", [[1.0, 2.0]], with_nan(features(4))),
        ("n_pairs", 2.5, 0), ("seed", 1.5, -1), ("chunk_size", 1.5, 0), ("student_metric", 3, "nope")),
    "pcoh.coherence.global_spearman": entry(
        lambda: call(features(3), features(4)),
        ("student", "features", FLAT), ("teacher", [[1.0, 2.0]], with_nan(features(4))),
        ("n_pairs", 2.5, 0), ("seed", 1.5, -1), ("student_metric", 3, "nope")),
    "pcoh.coherence.probabilistic_ranks": entry(
        lambda: call(features(3)),
        ("features", "features", FLAT), ("metric", 3, "nope"), ("references", [0.5], [N]),
        ("chunk_size", 1.5, 0)),
    "pcoh.coranking.coranking_matrix": entry(
        lambda: call(features(3), features(4)),
        ("student", "features", FLAT), ("teacher", [["a"]], with_nan(features(4))), ("chunk_size", 1.5, 0),
        ("student_metric", 3, "nope"), ("teacher_metric", 3, "nope")),
    "pcoh.coranking.rnx_curve": entry(
        lambda: call(features(3), features(4)),
        ("student", "features", FLAT), ("teacher", [["a"]], with_nan(features(4))), ("chunk_size", 1.5, 0),
        ("student_metric", 3, "nope"), ("teacher_metric", 3, "nope")),
    "pcoh.coranking.rnx_auc": entry(
        lambda: call(features(3), features(4)),
        ("student", "features", FLAT), ("chunk_size", 1.5, 0), ("teacher_metric", 3, "nope")),
    "pcoh.coranking.rnx_area": entry(lambda: call(features(1).ravel()), ("r_nx", [["a"]], [np.nan])),
    "pcoh.coranking.qnx_per_point": entry(
        lambda: call(features(3), features(4), k=3),
        ("student", "features", FLAT), ("k", 1.5, N), ("chunk_size", 1.5, 0), ("student_metric", 3, "nope")),
    "pcoh.coherence.neighbor_overlap": entry(
        lambda: call(features(3), features(4), k=3),
        ("student", "features", FLAT), ("k", 1.5, 0), ("chunk_size", 1.5, 0), ("student_metric", 3, "nope")),
    "pcoh.coherence.bootstrap_ci": entry(
        lambda: call(features(1).ravel(), n_boot=50),
        ("values", "values", [[np.nan]]), ("statistic", "mean", NA), ("n_boot", 50.0, 0),
        ("confidence", "0.9", 1.5), ("seed", 1.5, -1)),
    # --- ranking and dissimilarity
    "pcoh.ranking.rank": entry(lambda: call(tensor()), ("values", features(), torch.ones(2, 2, 2))),
    "pcoh.ranking.soft_rank": entry(
        lambda: call(tensor()),
        ("values", features(), with_nan(tensor())), ("regularization_strength", "1", 0.0)),
    "pcoh.dissimilarity.pairwise": entry(
        lambda: call(tensor()),
        ("x", features(), torch.ones(3)), ("metric", 3, "nope"), ("y", features(), torch.ones(2, 5))),
    "pcoh.dissimilarity.check_features": entry(
        lambda: call(tensor(), "x"), ("x", features(), torch.ones(3))),
    "pcoh.dissimilarity.get_metric": entry(lambda: call("cosine"), ("metric", 3, "nope")),
    # --- rowwise helpers
    "pcoh.rowwise.check_pair": entry(
        lambda: call(features(3), features(4)),
        ("student", "features", FLAT), ("teacher", [[1.0]], features(4, n=5)), ("min_samples", 1.5, 0)),
    "pcoh.rowwise.check_chunk": entry(lambda: call(4, N), ("chunk_size", 1.5, 0)),
    "pcoh.rowwise.Rows": entry(
        lambda: call(tensor(), "cosine", "metric"), ("x", features(), torch.ones(3)), ("metric", 3, "nope")),
    "pcoh.rowwise.drop_self": entry(
        lambda: call(torch.ones(2, 4), 1), ("rows", features(), torch.ones(4)), ("lo", 1.5, -1)),
    "pcoh.rowwise.chunks": entry(lambda: call(10, 4), ("n", 1.5, -1), ("chunk", "4", 0)),
    "pcoh.rowwise.generator": entry(lambda: call(0), ("seed", 1.5, -1)),
    "pcoh.rowwise.row_pearson": entry(
        lambda: call(tensor(), tensor()), ("a", features(), torch.ones(3)), ("b", features(), torch.ones(4, 3))),
    "pcoh.rowwise.spearman_rows": entry(
        lambda: call(torch.rand(3, 5), torch.rand(3, 5), 0),
        ("ds", features(), torch.ones(3)), ("dt", features(), torch.ones(3, 4)), ("lo", 1.5, -1)),
    # --- threads
    "pcoh.threads.choose_threads": entry(
        lambda: call(None, {}, 2), ("threads", "2", 0), ("cores", 1.5, 0),
        ("environ", 3, {"OMP_NUM_THREADS": "many"}, r"\benviron\b|OMP_NUM_THREADS")),
    "pcoh.threads.set_threads": entry(lambda: call(torch.get_num_threads()), ("threads", 2.0, 0)),
    # --- diagnostics
    "pcoh.diagnostics.reference_dissimilarities": entry(
        lambda: call(features(), 2),
        ("features", "features", FLAT), ("reference", 1.5, N), ("metric", 3, "nope")),
    "pcoh.diagnostics.heldout_probabilistic_ranks": entry(
        lambda: call(features(), features(n=20)),
        ("features", "features", FLAT), ("population", "population", features(4, n=20)),
        ("metric", 3, "nope"), ("references", [0.5], [N]), ("chunk_size", 1.5, 0)),
    "pcoh.diagnostics.concordance_by_rank_gap": entry(
        lambda: call(features(3), features(4), bins=3, n_pairs=50),
        ("student", "features", FLAT), ("bins", 1.5, 0), ("n_pairs", 2.5, 0), ("seed", 1.5, -1),
        ("chunk_size", 1.5, 0), ("student_metric", 3, "nope")),
    "pcoh.diagnostics.subsample_coherence": entry(
        lambda: call(features(3), features(4), [4, 8], repeats=2),
        ("student", "features", FLAT), ("sizes", ["a"], [2]), ("repeats", 1.5, 0), ("seed", 1.5, -1)),
    "pcoh.diagnostics.per_class_mean": entry(
        lambda: call({"a": features(1).ravel()}, labels()),
        ("values", "text", {}), ("labels", NA, [[0, 1]])),
    "pcoh.diagnostics.grade_coherence": entry(
        lambda: call(0.8, 0.5, 10),
        ("pc_n", "0.8", float("nan")), ("kendall_tau", "0.5", 2.0), ("n", 10.0, 2)),
    "pcoh.diagnostics.expected_pc_n": entry(
        lambda: call([4, 8], pc_n=0.8, kendall_tau=0.5, n=10),
        ("sizes", ["a"], [2]), ("pc_n", "0.8", float("nan")), ("kendall_tau", "0.5", 2.0), ("n", 10.0, 2)),
    "pcoh.diagnostics.dissimilarity_matrix": entry(
        lambda: call(features()), ("features", "features", FLAT), ("metric", 3, "nope")),
    "pcoh.diagnostics.reference_ranks": entry(
        lambda: call(np.abs(features(N))), ("matrix", "matrix", features(3))),
    "pcoh.diagnostics.soft_rank_path": entry(
        lambda: call(features(1).ravel(), [0.1, 1.0]),
        ("values", "values", with_nan(features(1).ravel())), ("strengths", ["a"], [0.0, 1.0])),
    # --- evaluate
    "pcoh.evaluate.knn_accuracy": entry(
        lambda: call(features(), labels(), features(), labels(), k=3),
        ("train_features", "features", FLAT), ("train_labels", NA, labels(5)),
        ("test_features", "features", with_nan(features())), ("k", 1.5, 0), ("metric", NA, "nope")),
    "pcoh.evaluate.linear_probe_accuracy": entry(
        lambda: call(features(), labels(), features(), labels(), max_iter=50),
        ("train_features", "features", FLAT), ("test_labels", NA, labels(5)), ("C", "1", 0.0),
        ("max_iter", 1.5, 0)),
    "pcoh.evaluate.trustworthiness": entry(
        lambda: call(features(3), features(4), k=3),
        ("student", "features", FLAT), ("k", 1.5, 0), ("student_metric", NA, "nope")),
    "pcoh.evaluate.continuity": entry(
        lambda: call(features(3), features(4), k=3),
        ("teacher", "features", FLAT), ("k", 1.5, N), ("teacher_metric", NA, "nope")),
    "pcoh.evaluate.linear_cka": entry(
        lambda: call(features(3), features(4)), ("x", "features", FLAT), ("y", [["a"]], features(4, n=5))),
    "pcoh.evaluate.evaluate_model": entry(
        lambda: call(features(), labels(), features(), labels(), features(4), k_neighbors=3, n_boot=20),
        ("train_features", "features", FLAT), ("test_labels", NA, labels(5)),
        ("teacher_test_features", "features", FLAT), ("metric", NA, "nope"), ("k_neighbors", 1.5, 0),
        ("n_boot", 1.5, 0), ("seed", 1.5, -1), ("return_per_reference", "yes", NA), ("return_curves", "yes", NA)),
    "pcoh.evaluate.check_sizes": entry(
        lambda: call(100, 50, 10),
        ("n_train", 1.5, -1), ("n_test", "50", -1), ("num_classes", 1.5, -1), ("k_neighbors", 1.5, 0),
        ("knn_k", 1.5, 0)),
    "pcoh.evaluate.score_embeddings": entry(
        lambda: call(features(4), {"a": features(2)}, k=3, n_boot=20),
        ("teacher_features", "features", FLAT), ("embeddings", [features(2)], {"a": FLAT}),
        ("metric", NA, "nope"), ("teacher_metric", NA, "nope"), ("k", 1.5, 0), ("n_boot", 1.5, 0),
        ("confidence", "0.9", 1.5),
        ("seed", 1.5, -1), ("return_per_reference", "yes", NA)),
    # --- embedding
    "pcoh.embedding.align_procrustes": entry(
        lambda: call(features(2), features(2)),
        ("embedding", "embedding", FLAT), ("reference", [["a"]], features(2, n=5))),
    "pcoh.embedding.nearest_neighbors": entry(
        lambda: call(features(), 0, k=3),
        ("features", "features", FLAT), ("reference", 1.5, N), ("k", 1.5, 0), ("metric", 3, "nope")),
    # --- stats and tables
    "pcoh.stats.paired_comparison": entry(
        lambda: call(results(), "pc_n"),
        ("results", [1.0], NA), ("metric", 3, "nope"), ("by", 3, ("nope",)), ("method_col", 3, "nope"),
        ("seed_col", 3, "nope"), ("level", "0.9", 1.5)),
    "pcoh.stats.format_comparison": entry(
        lambda: call(comparison()),
        ("comparison", [1.0], pd.DataFrame({"a": [1]})), ("metric", 3, NA), ("digits", 1.5, -1),
        ("level", "0.9", 1.5)),
    "pcoh.stats.verdicts": entry(
        lambda: call(comparison()), ("comparison", [1.0], pd.DataFrame({"a": [1]}))),
    "pcoh.stats.two_level_interval": entry(
        lambda: call([np.ones(3), np.zeros(4)], n_boot=10),
        ("diffs", np.ones(3), [np.ones(3)]), ("level", "0.9", 1.5), ("n_boot", 1.5, 0), ("seed", 1.5, -1)),
    "pcoh.stats.compare_runs": entry(
        lambda: call(results(), results(), ["pc_n"]),
        ("run", [1.0], later(lambda: results().drop(columns="pc_n"))),
        ("reference", [1.0], later(lambda: results().drop(columns="pc_n"))), ("metrics", 3, NA),
        ("tolerance_se", "1", -1.0), ("tolerance_floor", "1", -1.0)),
    "pcoh.tables.compare_report": entry(
        lambda: call(*__import__("pcoh.stats", fromlist=["x"]).compare_runs(results(), results(), ["pc_n"])),
        ("numbers", [1.0], pd.DataFrame({"a": [1]})), ("changed", [1.0], pd.DataFrame({"a": [1]})),
        ("reference", 3, NA)),
    "pcoh.tables.per_reference_frame": entry(
        lambda: call(per_reference()),
        ("per_reference", [1.0], {"teacher": np.ones(N)}), ("include_teacher", "yes", NA)),
    "pcoh.tables.style_results": entry(
        lambda: call(results()),
        ("results", [1.0], pd.DataFrame({"a": [1]})), ("columns", 3, ["nope"]), ("digits", 1.5, -1)),
    "pcoh.tables.summary_table": entry(
        lambda: call(results()), ("results", [1.0], pd.DataFrame({"a": [1]})), ("columns", 3, ["nope"])),
    "pcoh.tables.comparison_tables": entry(
        lambda: call(results()),
        ("results", [1.0], pd.DataFrame({"a": [1]})), ("metrics", 3, NA), ("level", "0.9", 1.5)),
    "pcoh.tables.rnx_k_ranges": entry(
        lambda: call(results(), rnx_curves()),
        ("results", [1.0], pd.DataFrame({"a": [1]})), ("curves", [1.0], NA), ("method", 3, NA),
        ("level", "0.9", 1.5)),
    "pcoh.tables.paired_verdicts_by_k": entry(
        lambda: call(features(5), features(5)),
        ("a", [["a"]], FLAT), ("b", [["a"]], features(4)), ("level", "0.9", 1.5)),
    "pcoh.tables.estimate_table": entry(
        lambda: call(estimates()), ("table", [1.0], pd.DataFrame({"a": [1]})), ("device", 3, NA)),
    # --- methods, specs and configuration
    "pcoh.methods.get": entry(lambda: call("pc"), ("name", NA, "nope", "method")),
    "pcoh.methods.allows_mode": entry(lambda: call("pc", "class-aware"), ("method", NA, "nope"), ("mode", NA, "nope")),
    "pcoh.specs.method_allows_mode": entry(
        lambda: call("pc", "class-aware"), ("method", NA, "nope"), ("mode", NA, "nope")),
    "pcoh.specs.explicit_loss_kwargs": entry(
        lambda: call("pc", {"queue_size": 0}), ("method", NA, "nope"), ("kwargs", [1], NA)),
    "pcoh.specs.as_dict": entry(lambda: call(pcoh.specs.TrainConfig()), ("spec", {"a": 1}, NA)),
    "pcoh.specs.TrainConfig": entry(
        lambda: call(),
        ("epochs", 1.5, -1), ("batch_size", "8", 0), ("optimizer", NA, "rmsprop"), ("lr", "1e-3", float("nan")),
        ("momentum", "0.9", -1.0), ("weight_decay", "0", -1.0), ("milestones", 3, [-1]), ("gamma", "0.1", 0.0),
        ("seed", 1.5, -1), ("amp", "yes", NA), ("channels_last", 1, NA), ("compile", "no", NA),
        ("num_workers", 1.5, -1)),
    "pcoh.specs.LossSettings": entry(
        lambda: call("pc", 2.0, {"regularization_strength": 0.5}),
        ("method", NA, "nope"), ("weight", "1", -1.0), ("kwargs", [1], NA)),
    "pcoh.specs.StudentSpec": entry(
        lambda: call(),
        ("model", 3, "nope"), ("method", NA, "nope"), ("mode", NA, "nope"), ("weight", "1", -1.0),
        ("loss_kwargs", [1], NA), ("train", {"epochs": 1}, NA), ("model_kwargs", [1], NA)),
    "pcoh.config.ExperimentConfig": entry(
        lambda: call(),
        ("dataset", 3, "nope"), ("root", 3, ""), ("download", "yes", NA), ("data", [1], NA),
        ("teacher", 3, "nope"), ("students", 3, ["nope"]), ("methods", 3, ["nope"]), ("modes", 3, ["nope"]),
        ("seeds", 1.5, 0), ("teacher_train", 3, {"epochs": -1}), ("student_train", "x", {"nope": 1}),
        ("teacher_metric", 3, "nope"), ("student_metric", 3, "nope"), ("loss_kwargs", [1], {"nope": {}}),
        ("weights", [1], {"pc": -1.0}), ("include_untrained", "yes", NA), ("device", 3, "nope"),
        ("output", 3, ""), ("figures", 3, "")),
    "pcoh.config.load_config": entry(
        lambda: call("cifar100_resnet32x4_resnet8x4"), ("path", 3, "no-such-config", "config")),
    # --- the evaluation cache
    "pcoh.evaluations.digest": entry(lambda: call(features(), None), ("arrays", object(), NA)),
    # --- losses
    "pcoh.losses.pc.PerceptionCoherenceLoss": entry(
        lambda: call(),
        ("teacher_metric", 3, "nope"), ("student_metric", 3, "nope"), ("regularization_strength", "1", 0.0),
        ("queue_size", 1.5, -1), ("num_samples", 1.5, 0), ("focus", "1", -1.0), ("focus_kind", NA, "nope"),
        ("focus_fraction", "0.1", 1.5), ("focus_symmetric", "yes", NA)),
    "pcoh.losses.baselines.FitNetLoss": entry(lambda: call(3, 4), ("student_dim", 1.5, 0), ("teacher_dim", "4", -1)),
    "pcoh.losses.baselines.RKDLoss": entry(
        lambda: call(), ("distance_weight", "1", -1.0), ("angle_weight", "1", float("nan"))),
    "pcoh.losses.baselines.PKTLoss": entry(lambda: call(), ("eps", "1e-7", 0.0)),
    "pcoh.losses.baselines.CCLoss": entry(lambda: call(), ("gamma", "0.4", -1.0), ("p_order", 2.0, -1)),
    "pcoh.losses.baselines.KDLoss": entry(lambda: call(), ("temperature", "4", 0.0)),
    "pcoh.losses.crd.CRDLoss": entry(
        lambda: call(3, 4, 20, embed_dim=4, num_negatives=8),
        ("student_dim", 1.5, 0), ("teacher_dim", "4", -1), ("num_samples", 2.5, 0), ("embed_dim", 1.5, 0),
        ("num_negatives", 1.5, 0), ("temperature", "0.07", 0.0), ("momentum", "0.5", 1.5), ("seed", 1.5, -1)),
    "pcoh.losses.rrd.RRDLoss": entry(
        lambda: call(3, 4, 20, embed_dim=4, queue_size=8),
        ("student_dim", 1.5, 0), ("teacher_dim", "4", -1), ("num_samples", 2.5, 0), ("embed_dim", 1.5, 0),
        ("queue_size", 1.5, 0), ("student_temperature", "0.02", 0.0), ("teacher_temperature", "0.1", -1.0)),
    "pcoh.losses.dist.DISTLoss": entry(
        lambda: call(), ("beta", "2", -1.0), ("gamma", "2", float("nan")), ("temperature", "4", 0.0)),
    "pcoh.losses.registry.get": entry(
        lambda: call("pc", queue_size=0), ("name", 3, "nope", "name|loss"), ("queue_size", 1.5, -1)),
    "pcoh.losses.registry.arguments": entry(lambda: call("pc"), ("name", 3, "nope", "name|loss")),
    "pcoh.losses.base.off_diagonal": entry(
        lambda: call(torch.ones(4, 4)), ("matrix", np.ones((4, 4)), torch.ones(4, 3))),
    # --- models
    "pcoh.models.create": entry(
        lambda: call("mlp", 3, 1, 8, seed=0),
        ("name", 3, "nope"), ("num_classes", 2.5, 1), ("in_channels", "1", 0), ("image_size", 8.0, 4),
        ("seed", 1.5, -1), ("hidden", "8", 0)),
    "pcoh.models.check_name": entry(lambda: call("mlp"), ("value", 3, "nope", "model")),
    "pcoh.models.count_parameters": entry(
        lambda: call(tiny_model()), ("model", "mlp", NA), ("trainable_only", "yes", NA)),
    "pcoh.models.load_benchmark_state": entry(
        lambda: call(tiny_model(), tiny_model().state_dict()),
        ("model", "mlp", NA), ("obj", [1], {"nope": torch.ones(1)}, "checkpoint")),
    "pcoh.models.published_preprocessing": entry(
        lambda: call("tv:resnet18", "IMAGENET1K_V1"),
        ("name", 3, "tv:nope", r"\bname\b|model"), ("weights", 3, "NOPE")),
    "pcoh.models.wrapped.wrap": entry(
        lambda: call(tiny_net(), name="tiny", image_size=8),
        ("module", "net", NA), ("features", 3, "nope"), ("name", 3, "my net"), ("in_channels", 1.5, 0),
        ("image_size", "8", 4)),
    "pcoh.models._base.Backbone": entry(
        lambda: call("net", 3, 1, 8, 4),
        ("num_classes", 2.5, 1), ("in_channels", "3", 0), ("image_size", 8.0, 4), ("feature_dim", 1.5, 0)),
    "pcoh.models._base.BasicBlock": entry(
        lambda: call(4, 8, 2), ("c_in", 4.0, 0), ("c_out", "8", -1), ("stride", 1.5, 0)),
    "pcoh.models.cifar.CifarResNet": entry(
        lambda: call(8, (4, 4, 8, 8), num_classes=3),
        ("depth", 8.0, 9), ("widths", 4, (4, 4)), ("num_classes", 2.5, 1), ("in_channels", "3", 0),
        ("image_size", 8.0, 4)),
    "pcoh.models.cifar.Bottleneck": entry(lambda: call(4, 2), ("c_in", 4.0, 0), ("planes", "2", 0), ("stride", 1.5, 0)),
    "pcoh.models.cifar.BottleneckResNet": entry(
        lambda: call((1, 1, 1, 1), num_classes=3), ("blocks", 1, (1, 1)), ("num_classes", 2.5, 1)),
    "pcoh.models.cifar.WideBlock": entry(
        lambda: call(4, 8), ("c_in", 4.0, 0), ("c_out", "8", 0), ("stride", 1.5, 0), ("dropout", "0", 1.0)),
    "pcoh.models.cifar.WideResNet": entry(
        lambda: call(10, 1, num_classes=3), ("depth", 10.0, 11), ("widen", "1", 0), ("dropout", "0.1", 1.5),
        ("num_classes", 2.5, 1)),
    "pcoh.models.cifar.VGG": entry(
        lambda: call([[4], [4], [8], [8], [8]], num_classes=3), ("config", 4, [[4]]), ("num_classes", 2.5, 1)),
    "pcoh.models.cifar.InvertedResidual": entry(
        lambda: call(4, 4, 1, 2), ("c_in", 4.0, 0), ("c_out", "4", 0), ("stride", 1.5, 0), ("expand", "2", 0)),
    "pcoh.models.cifar.MobileNetV2": entry(
        lambda: call(0.1, 1, num_classes=3), ("width", "0.1", 0.0), ("expand", 1.5, 0), ("num_classes", 2.5, 1)),
    "pcoh.models.cifar.ShuffleV1Unit": entry(
        lambda: call(8, 8, 1, 2), ("c_in", 8.0, 0), ("c_out", "8", 0), ("stride", 1.5, 0), ("groups", "2", 0)),
    "pcoh.models.cifar.ShuffleNetV1": entry(
        lambda: call((60, 120, 240), (1, 1, 1), 3, num_classes=3),
        ("channels", 12, (60, 120)), ("blocks", 1, (1, 1)), ("groups", 1.5, 0), ("num_classes", 2.5, 1)),
    "pcoh.models.cifar.ShuffleNetV2": entry(
        lambda: call((8, 16, 32, 64), (1, 1, 1), num_classes=3),
        ("channels", 8, (8, 16)), ("blocks", 1, (1, 1)), ("num_classes", 2.5, 1)),
    "pcoh.models.digits.DigitsResNet": entry(
        lambda: call((4, 8), num_classes=3), ("widths", 4, []), ("num_classes", 2.5, 1), ("in_channels", "1", 0)),
    "pcoh.models.digits.DigitsCNN": entry(
        lambda: call((4, 8), num_classes=3), ("widths", 4, []), ("num_classes", 2.5, 1), ("image_size", 8.0, 4)),
    "pcoh.models.digits.MLP": entry(
        lambda: call(8, 4, num_classes=3), ("hidden", "8", 0), ("feature_dim", 4.0, 0), ("num_classes", 2.5, 1)),
    "pcoh.models.tv.check_name": entry(lambda: call("tv:resnet18"), ("name", 3, "tv:nope")),
    "pcoh.models.tv.weights_enum": entry(
        lambda: call("tv:resnet18", "IMAGENET1K_V1"),
        ("name", 3, "tv:nope", r"\bname\b|model"), ("weights", 3, "NOPE")),
    "pcoh.models.tv.weights_path": entry(
        lambda: call(pcoh.models.tv.weights_enum("tv:resnet18", "IMAGENET1K_V1")), ("weights", "IMAGENET1K_V1", NA)),
    "pcoh.models.tv.preprocessing": entry(
        lambda: call("tv:resnet18", "IMAGENET1K_V1"),
        ("name", 3, "tv:nope", r"\bname\b|model"), ("weights", 3, "NOPE")),
    "pcoh.models.tv.build": entry(
        lambda: call("tv:mobilenet_v3_small", 3, 1, 32),
        ("name", 3, "tv:nope"), ("num_classes", 2.5, 1), ("in_channels", "3", 0), ("image_size", 8.0, 4),
        ("weights", 3, "NOPE"), ("features", 3, "nope")),
    "pcoh.models.wrapped.build": entry(
        lambda: call(wrapped_name(), 3, 1, 8),
        ("name", 3, "wrap:nope", "name|model"), ("num_classes", 2.5, 1), ("in_channels", "1", 0),
        ("image_size", 8.0, 4)),
    "pcoh.models.wrapped.adapt_in_channels": entry(
        lambda: call(tiny_net(), 3),
        ("net", "net", torch.nn.Linear(2, 2), r"\bnet\b|cannot adapt Linear"), ("in_channels", 1.5, 0),
        ("rule", NA, "nope")),
    "pcoh.models.wrapped.adapt_num_classes": entry(
        lambda: call(tiny_net(), 5),
        ("net", "net", torch.nn.Conv2d(1, 2, 3), r"\bnet\b|cannot give Conv2d"), ("num_classes", 1.5, 1)),
    "pcoh.models.wrapped.classifier_of": entry(lambda: call(tiny_net()), ("net", "net", NA)),
    # --- data
    "pcoh.data.registry.dataset_folder": entry(
        lambda: call("mnist", "data"), ("name", 3, "nope", r"name|data set"), ("root", 3, NA)),
    "pcoh.data.registry.load": entry(
        lambda: call("digits"),
        ("name", 3, "nope", r"name|data set"), ("root", 3, NA), ("download", "yes", NA), ("test_size", "0.2", 1.5),
        ("seed", 1.5, -1), ("normalize", "yes", NA)),
    "pcoh.data.digits.from_arrays": entry(
        lambda: call(features(), labels(), test_size=0.5),
        ("x_train", [["a"]], with_nan(features())), ("y_train", labels() + 0.5, labels() - 1),
        ("test_size", "0.5", 1.5), ("seed", 1.5, -1), ("num_classes", 3.0, 1),
        ("class_names", NA, ["a", "b"])),
    "pcoh.data.image_folder.write_image_folder": entry(
        lambda: call(scratch() / "images", np.zeros((4, 4, 4)), [0, 1, 0, 1]),
        ("folder", 3, NA), ("images", [["a"]], np.full((4, 4, 4), np.nan)), ("labels", [0.5, 1, 0, 1], [0, 1, 0]),
        ("class_names", NA, [".a", "b"], "class names"), ("size", 4.0, 0)),
    "pcoh.data.image_folder.ImageFiles": entry(
        lambda: call([("a.png", 0), ("b.png", 1)], ["a", "b"]),
        ("samples", 3, [("a.png", 2)]), ("classes", "ab", NA), ("transform", "resize", NA)),
    # --- augmentation and batches
    "pcoh.augment.CropFlip": entry(lambda: call(2, 0.5), ("padding", 1.5, -1), ("flip", "0.5", 1.5)),
    "pcoh.augment.draw": entry(
        lambda: call(4, 2, 0.5), ("n", 4.0, -1), ("padding", "2", -1), ("flip", "0.5", 1.5),
        ("generator", 0, NA)),
    "pcoh.augment.crop_flip": entry(
        lambda: call(torch.ones(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long),
                     torch.tensor([True, False]), 1),
        ("images", np.ones((2, 1, 4, 4)), torch.ones(2, 4, 4)), ("rows", [0, 0], torch.zeros(3, dtype=torch.long)),
        ("flips", [True, False], torch.zeros(2, 1, dtype=torch.bool)), ("padding", 1.5, -1)),
    "pcoh.augment.gather_crop_flip": entry(
        lambda: call(torch.ones(3, 1, 6, 6), torch.tensor([0, 2]), torch.zeros(2, dtype=torch.long),
                     torch.ones(2, dtype=torch.long), torch.tensor([True, False]), (4, 4)),
        ("padded", np.ones((3, 1, 6, 6)), torch.ones(3, 6, 6)), ("idx", [0, 2], torch.zeros(2, 1, dtype=torch.long)),
        ("cols", [1, 1], torch.ones(5, dtype=torch.long)), ("size", 4, (8, 8))),
    "pcoh.batches.BatchSource": entry(
        lambda: call(tiny_data().train, 4, device="cpu"),
        ("dataset", 3, NA), ("batch_size", 4.0, 0), ("device", 3, "nope"), ("shuffle", "yes", NA),
        ("drop_last", 1, NA), ("seed", 1.5, -1), ("num_workers", "2", -1), ("augment", "no", NA)),
    # --- training helpers
    "pcoh.devices.resolve_device": entry(lambda: call("cpu"), ("device", 3, "nope")),
    "pcoh.build.build_model": entry(
        lambda: call("mlp", tiny_data(), 0, {"hidden": 8}),
        ("name", 3, "nope"), ("data", "digits", NA), ("seed", 1.5, -1), ("model_kwargs", [1], NA)),
    "pcoh.estimate.estimate_run": entry(
        lambda: call(pcoh.specs.StudentSpec("mlp", "ce", "class-aware", train=tiny_train()), tiny_data(),
                     device="cpu", steps=1, warmup=0),
        ("spec", {"model": "mlp"}, NA), ("data", "digits", NA), ("device", 3, "nope"), ("steps", 1.5, 0),
        ("warmup", "0", -1)),
    # --- plots
    "pcoh.plots._base.slide_figure": entry(
        lambda: call(1, 2), ("nrows", 1.5, 0), ("ncols", "2", 0), ("size", NA, "huge")),
    "pcoh.plots._base.slide_grid": entry(
        lambda: call(3), ("k", 1.5, 0), ("size", NA, "huge"), ("panel_aspect", "1", 0.0), ("rows", [1.5, 1.5], [1, 1])),
    "pcoh.plots._base.grid_rows": entry(
        lambda: call(5), ("k", 1.5, 0), ("size", NA, "huge"), ("panel_aspect", "1", -1.0), ("max_rows", 2.0, 0)),
    "pcoh.plots._base.slide_problems": entry(lambda: call(plt.figure()), ("fig", "fig", NA)),
    "pcoh.plots._base.contrast_ratio": entry(
        lambda: call("black", "#ffffff"), ("color", 3, "no-such-colour"), ("background", 0.5, "nope")),
    "pcoh.plots._base.savefig": entry(
        lambda: call(pcoh.plots.slide_figure()[0], scratch() / "figure", ("png",), check=False),
        ("fig", "fig", NA), ("path", 3, NA), ("formats", 3, ["gif"]), ("check", "yes", NA)),
    "pcoh.plots._base.render": entry(
        lambda: call(pcoh.plots.slide_figure()[0], ("png",), check=False),
        ("fig", "fig", NA), ("formats", 3, ["gif"]), ("check", "yes", NA)),
    "pcoh.plots.toy.plot_points": entry(
        lambda: call(features(2)),
        ("points", "points", features(3)), ("ax", "ax", NA), ("reference", 1.5, N), ("annotate", "yes", NA),
        ("color", 3, "no-such-colour")),
    "pcoh.plots.toy.plot_dissimilarity_matrix": entry(
        lambda: call(np.abs(features(N))),
        ("matrix", "matrix", features(3)), ("ax", "ax", NA), ("cmap", 3, "no-such-map"), ("colorbar", "yes", NA),
        ("vmin", "0", float("nan")), ("vmax", "1", float("inf"))),
    "pcoh.plots.ranks.plot_rank_vs_rank": entry(
        lambda: call(np.abs(features(N)), np.abs(features(N, n=N))),
        ("teacher_matrix", "matrix", features(3)), ("student_matrix", "matrix", np.ones((5, 5))),
        ("ax", "ax", NA), ("reference", 1.5, N), ("color", 3, "no-such-colour")),
    "pcoh.plots.ranks.plot_soft_ranks": entry(
        lambda: call(features(1).ravel(), [0.1, 1.0]),
        ("values", "values", features(3)), ("strengths", ["a"], [0.0]), ("ax", "ax", NA)),
    "pcoh.plots.ranks.plot_soft_rank_bars": entry(
        lambda: call(features(1).ravel(), 0.5),
        ("values", "values", features(3)), ("strength", "0.5", 0.0), ("ax", "ax", NA)),
    "pcoh.plots.ranks.plot_rank_hexbin": entry(
        lambda: call(features(3), features(4), reference=0, gridsize=5),
        ("student_features", "features", FLAT), ("teacher_features", [["a"]], features(4, n=5)),
        ("reference", 1.5, N), ("student_metric", 3, "nope"), ("gridsize", 5.0, 0), ("ax", "ax", NA),
        ("color", 3, "no-such-colour"), ("colorbar", "yes", NA)),
    "pcoh.plots.ranks.plot_rank_hexbin_grid": entry(
        lambda: call({"pc": features(3), "pkt": features(2)}, features(4), reference=0, gridsize=5),
        ("student_features", [features(3)], {"pc": FLAT}), ("teacher_features", "features", FLAT),
        ("reference", 1.5, N), ("colors", ["red"], {"pc": "no-such-colour"}), ("titles", ["a"], NA),
        ("size", NA, "huge"), ("gridsize", 5.0, 0)),
    "pcoh.plots.results.plot_metric_bars": entry(
        lambda: call(results()), ("results", [1.0], pd.DataFrame({"a": [1]})), ("metric", 3, "nope"),
        ("ax", "ax", NA)),
    "pcoh.plots.results.plot_metric_panels": entry(
        lambda: call(results()),
        ("results", [1.0], pd.DataFrame({"a": [1]})), ("metrics", 3, ["nope"]), ("titles", 3, ["one"]),
        ("ylabels", 3, ["one"]), ("size", NA, "huge")),
    "pcoh.plots.results.plot_per_reference": entry(
        lambda: call({"pc": features(1).ravel(), "pkt": features(2)[:, 0]}),
        ("values", [1.0], {}), ("ax", "ax", NA)),
    "pcoh.plots.results.plot_per_reference_distributions": entry(
        lambda: call(pcoh.plots.per_reference_frame(per_reference())),
        ("frame", [1.0], pd.DataFrame({"a": [1]})), ("value", 3, "nope"), ("kind", NA, "pie"),
        ("order", 3, ["nope"]), ("ax", "ax", NA)),
    "pcoh.plots.results.plot_per_reference_by_mode": entry(
        lambda: call(per_reference()),
        ("per_reference", [1.0], {"teacher": np.ones(N)}), ("modes", 3, ["nope"]), ("size", NA, "huge"),
        ("kind", NA, "pie")),
    "pcoh.plots.results.plot_global_vs_per_reference": entry(
        lambda: call(results()),
        ("results", [1.0], pd.DataFrame({"a": [1]})), ("x", 3, "nope"), ("y", 3, "nope"), ("exclude", 3, NA),
        ("ax", "ax", NA)),
    "pcoh.plots.results.plot_frontier": entry(
        lambda: call(frontier()),
        ("summary", [1.0], pd.DataFrame({"a": [1]})), ("data", 3, "mnist"), ("batch", "256", 7),
        ("mode", 3, "nope"), ("families", 3, ["nope"]), ("ax", "ax", NA)),
    "pcoh.plots.training.plot_learning_curves": entry(
        lambda: call(histories()),
        ("histories", "pc", {"pc": []}), ("key", 3, "nope"), ("normalise", "yes", NA), ("ax", "ax", NA),
        ("colors", ["red"], {"pc": "no-such-colour"})),
    "pcoh.plots.images.plot_class_dissimilarities": entry(
        lambda: call(features(), labels()),
        ("features", "features", FLAT), ("labels", NA, labels(5)), ("metric", 3, "nope"), ("ax", "ax", NA),
        ("class_names", 3, ["a"]), ("cmap", 3, "no-such-map")),
    "pcoh.plots.images.plot_images": entry(
        lambda: call(images(4), ncols=2),
        ("images", "images", np.ones((2, 2))), ("titles", 3, ["a"]), ("ncols", 2.0, 0), ("mean", "0", [0.0, 0.0]),
        ("std", "1", [1.0, 1.0]), ("ax", "ax", NA), ("cmap", 3, "no-such-map")),
    "pcoh.plots.images.plot_neighbors": entry(
        lambda: call(images(), {"pc": features(3)}, 0, k=3),
        ("images", "images", np.ones((N, 2))), ("features", [features(3)], {"pc": FLAT}), ("reference", 1.5, N),
        ("k", 3.0, 0), ("metric", 3, "nope"), ("labels", NA, labels(5)), ("shared_with", 3, "nope"),
        ("ax", "ax", NA)),
    "pcoh.plots.coranking.rnx_by_method": entry(
        lambda: call(rnx_curves(), "class-unaware"), ("curves", [1.0], {}), ("mode", 3, NA)),
    "pcoh.plots.coranking.plot_rnx_curves": entry(
        lambda: call(rnx_curves()),
        ("curves", [1.0], {}), ("mode", 3, "nope"), ("ax", "ax", NA), ("methods", 3, ["nope"])),
    "pcoh.plots.coranking.plot_rnx_panels": entry(
        lambda: call(rnx_curves()), ("curves", [1.0], {}), ("modes", 3, ["nope"]), ("size", NA, "huge")),
    "pcoh.plots.coranking.plot_coranking_matrix": entry(
        lambda: call(np.ones((4, 4))),
        ("q", [["a"]], np.ones((4, 3))), ("ax", "ax", NA), ("colorbar", "yes", NA)),
    "pcoh.plots.coranking.plot_point_scores": entry(
        lambda: call(features(2), np.linspace(0, 1, N)),
        ("embedding", "embedding", features(3)), ("scores", [["a"]], np.linspace(0, 2, N)), ("ax", "ax", NA),
        ("s", "8", -1.0), ("colorbar", "yes", NA)),
    "pcoh.plots.embedding.plot_embedding": entry(
        lambda: call(features(2), labels()),
        ("embedding", "embedding", features(3)), ("labels", NA, labels(5)), ("ax", "ax", NA), ("s", "8", -1.0),
        ("class_names", 3, ["a"]), ("annotate", "yes", NA), ("highlight", 1.5, [N]), ("cmap", 3, "no-such-map")),
    "pcoh.plots.embedding.plot_embedding_grid": entry(
        lambda: call({"a": features(2), "b": features(2)}, labels()),
        ("embeddings", [features(2)], {}), ("labels", NA, labels(5)), ("titles", ["a"], NA), ("ncols", 1.5, 0),
        ("size", NA, "huge")),
    "pcoh.plots.diagnostics.plot_reference_ecdfs": entry(
        lambda: call(features(1).ravel(), features(2)[:, 0]),
        ("teacher_dissimilarities", "values", with_nan(features(1).ravel())),
        ("student_dissimilarities", [["a"]], FLAT), ("highlight", 1.5, [N]), ("ax", "ax", later(lambda: [axes()])),
        ("student_color", 3, "no-such-colour")),
    "pcoh.plots.diagnostics.plot_probabilistic_ranks": entry(
        lambda: call(np.linspace(0, 1, N), np.linspace(0, 1, N) ** 2),
        ("u_teacher", "u", FLAT), ("u_student", [["a"]], np.linspace(0, 2, N)), ("ax", "ax", NA),
        ("kind", NA, "pie"), ("gridsize", 5.5, 0), ("color", 3, "no-such-colour")),
    "pcoh.plots.diagnostics.plot_uniformity": entry(
        lambda: call(np.linspace(0, 1, N)),
        ("u", "u", np.linspace(0, 2, N)), ("ax", "ax", NA), ("bins", 2.5, 0), ("color", 3, "no-such-colour"),
        ),
    "pcoh.plots.diagnostics.plot_pc_vs_n": entry(
        lambda: call(pd.DataFrame({"n": [4, 4, 8, 8], "pc_n": [0.5, 0.6, 0.7, 0.8]}), full=0.9),
        ("table", [1.0], pd.DataFrame({"a": [1]})), ("full", "0.9", float("nan")), ("ax", "ax", NA),
        ("color", 3, "no-such-colour"), ("band", 5, (95, 5)), ("inverse", "yes", NA)),
    "pcoh.plots.diagnostics.plot_concordance_by_gap": entry(
        lambda: call({"pc": pcoh.diagnostics.concordance_by_rank_gap(features(3), features(4), bins=3, n_pairs=50)}),
        ("tables", [1.0], {"pc": pd.DataFrame({"a": [1]})}, r"\btables\b"), ("ax", "ax", NA)),
    "pcoh.plots.diagnostics.plot_per_class_heatmap": entry(
        lambda: call(pcoh.diagnostics.per_class_mean({"pc": features(1).ravel()}, labels())),
        ("table", [1.0], pd.DataFrame()), ("ax", "ax", NA), ("cmap", 3, "no-such-map"), ("fmt", 3, "q")),
    # --- notebook helpers
    "pcoh.notebook.workspace.experiment_config": entry(lambda: call(True), ("smoke_mode", "yes", NA)),
    "pcoh.notebook.workspace.figures_folder": entry(lambda: call(True), ("smoke_mode", "yes", NA)),
    "pcoh.notebook.workspace.remove_stale_smoke_folders": entry(lambda: call(scratch()), ("folder", 3, NA)),
    "pcoh.notebook.coranking.best_other_by_rnx": entry(
        lambda: call(stand_in_result()), ("mode", NA, "nope"), ("method", 3, NA)),
    "pcoh.notebook.coranking.rnx_reading": entry(lambda: call(stand_in_result()), ("method", 3, NA)),
    "pcoh.notebook.coranking.coranking_pair": entry(
        lambda: call(stand_in_result()), ("mode", NA, "nope"), ("seed", 1.5, 7), ("methods", 3, ["nope"]),
        ("student_metric", 3, "nope")),
    "pcoh.notebook.coranking.point_scores_by_k": entry(
        lambda: call(stand_in_result(), rows=[0, 3]), ("mode", NA, "nope"), ("seed", 1.5, 7),
        ("methods", 3, ["nope"]), ("rows", [0.5], [N]), ("teacher_metric", 3, "nope")),
    "pcoh.notebook.coranking.coranking_reading": entry(
        lambda: call({"pc": np.ones((4, 4))}), ("matrices", [1], NA), ("band", 1.5, -1)),
    "pcoh.notebook.selection.pick_runs": entry(
        lambda: call(stand_in_result()), ("mode", NA, "nope"), ("seed", 1.5, 7), ("student", 3, "nope")),
    "pcoh.notebook.selection.run_features": entry(
        lambda: call(stand_in_result()), ("mode", NA, "nope"), ("seed", "0", 7), ("split", NA, "nope"),
        ("teacher", "yes", NA), ("student", 3, "nope")),
    "pcoh.notebook.selection.median_reference": entry(lambda: call(features(1).ravel()), ("values", "abc", [np.nan]),
                                                      ("decimals", 1.5, -1)),
    "pcoh.notebook.prose.ranked_baselines": entry(
        lambda: call(results()), ("results", [1.0], NA), ("mode", NA, "nope"), ("metric", 3, "nope"),
        ("method", 3, NA)),
    "pcoh.notebook.prose.versus_best_baseline": entry(
        lambda: call(results()),
        ("results", [1.0], NA), ("method", 3, "nope"), ("mode", NA, "nope"), ("metric", 3, "nope"),
        ("level", "0.9", 1.5)),
    "pcoh.notebook.prose.describe_versus": entry(
        lambda: call(pcoh.notebook.versus_best_baseline(results())),
        ("v", [1.0], {"method": "pc"}), ("metric", 3, NA), ("digits", 1.5, -1)),
    "pcoh.notebook.selection.sample_rows": entry(
        lambda: call(10, 4), ("n", 1.5, 0), ("n_points", "4", 0), ("seed", 1.5, -1)),
    "pcoh.notebook.selection.embedding_titles": entry(
        lambda: call(results(), ["teacher", "pc"]),
        ("results", [1.0], NA), ("methods", 3, ["nope"]), ("mode", NA, "nope"), ("seed", 1.5, 7),
        ("teacher", 3, NA)),
    "pcoh.notebook.controls.draw_controls": entry(
        lambda: call(lambda x=1: None, show=False, x=(1, 3)),
        ("function", 3, NA), ("manual", "yes", NA), ("show", "no", NA)),
    "pcoh.notebook.controls.log_slider": entry(
        lambda: call(1.0, 0.1, 10.0),
        ("value", "1", 100.0), ("low", "0.1", 0.0), ("high", [10.0], 0.5), ("per_decade", 1.5, 0),
        ("description", 3, NA), ("digits", 1.5, 0)),
    "pcoh.notebook.prose.uniformity_departure": entry(
        lambda: call(np.linspace(0.01, 0.99, 50)), ("u", "abc", [2.0]), ("bins", 1.5, 1)),
    "pcoh.notebook.prose.describe_uniformity": entry(
        lambda: call({"a": np.linspace(0.01, 0.99, 50)}, class_step=0.1),
        ("u_by_model", [1.0], {}), ("bins", 1.5, 1), ("class_step", "0.1", 1.5)),
    "pcoh.notebook.prose.describe_focus_study": entry(
        lambda: call(focus_summary()),
        ("summary", [1.0], pd.DataFrame({"a": [1]})), ("mode", NA, "nope"), ("settings", 3, ["nope"])),
    "pcoh.notebook.prose.order_by": entry(
        lambda: call(embedding_scores(), "pc_n"), ("scores", [1.0], NA), ("column", 3, "nope")),
    "pcoh.notebook.prose.agreeing_pairs": entry(
        lambda: call(embedding_scores(), "pc_n", "trustworthiness"),
        ("scores", [1.0], NA), ("a", 3, "nope"), ("b", 3, "nope")),
    "pcoh.notebook.prose.intervals_overlap": entry(
        lambda: call(embedding_scores(), "A", "B"),
        ("scores", [1.0], NA), ("x", 3, "nope"), ("z", 3, "nope"), ("column", 3, "trustworthiness")),
    "pcoh.notebook.prose.format_interval": entry(
        lambda: call(embedding_scores(), "A"),
        ("scores", [1.0], NA), ("name", 3, "nope"), ("column", 3, "trustworthiness"), ("digits", 1.5, -1)),
    "pcoh.notebook.prose.describe_transfer": entry(
        lambda: call(results(), seeds=3, epochs=2),
        ("results", [1.0], pd.DataFrame({"a": [1]})), ("modes", 3, ["nope"]), ("seeds", 1.5, 0),
        ("epochs", "2", -1)),
    "pcoh.notebook.prose.parameter_count": entry(lambda: call(tiny_net()), ("model", [1, 2], NA)),
    "pcoh.notebook.prose.describe_sizes": entry(lambda: call(stand_in_result()), ("student", 3, "nope")),
    "pcoh.notebook.focus.focus_loss_kwargs": entry(lambda: call(4), ("focus", "4", -1.0)),
    "pcoh.notebook.focus.focus_neighbors": entry(
        lambda: call(stand_in_result(), {0: features(3), 4: features(2)}, 4, 2, k=3),
        ("focus_features", [1.0], {}), ("focus", NA, 8), ("reference", 1.5, N), ("baseline", 3, "pc"),
        ("seed", 1.5, 7), ("k", 1.5, 0), ("teacher_metric", 3, "nope"), ("student_metric", 3, "nope"),
        ("ax", "ax", NA)),
    # --- process groups (in one process: pass-throughs that still check their arguments)
    "pcoh.distributed.init": entry(
        lambda: call("cpu"), ("device", 3, NA), ("backend", 3, "nope"), ("timeout", "60", -1.0)),
    "pcoh.distributed.gather_with_grad": entry(
        lambda: call(torch.ones(4, 2)), ("x", [1.0], torch.tensor(1.0)), ("sizes", 4, [3])),
    "pcoh.distributed.gather_no_grad": entry(
        lambda: call(torch.ones(4, 2), [4]), ("x", [1.0], torch.tensor(1.0)), ("sizes", 4, [4, 4])),
    "pcoh.distributed.shard_sizes": entry(lambda: call(torch.ones(4, 2)), ("x", [1.0], torch.tensor(1.0))),
    "pcoh.distributed.all_reduce_sum": entry(lambda: call([1.0, 2]), ("values", ["a"], NA)),
    "pcoh.distributed.shard": entry(lambda: call([torch.ones(4), torch.zeros(4)]), ("batch", torch.ones(4), NA)),
    "pcoh.distributed.check_batch_size": entry(lambda: call(8), ("batch_size", "8", 0)),
    "pcoh.distributed.wrap": entry(lambda: call(tiny_net()), ("model", "net", NA)),
    "pcoh.distributed.average_gradients": entry(
        lambda: call(list(tiny_net().parameters())), ("params", torch.ones(2), NA)),
    "pcoh.distributed.sync_batchnorm": entry(lambda: call(tiny_net()), ("model", "net", NA)),
    "pcoh.distributed.unsync_batchnorm": entry(lambda: call(tiny_net()), ("model", "net", NA)),
    # --- run folders and the caches
    "pcoh.runs.run_dir": entry(lambda: call("data", "student", "abc123"), ("root", 3, NA), ("kind", 3, ""),
                               ("key", 3, "a/b")),
    "pcoh.batchnorm.recomputed": entry(lambda: call("tv:resnet18"), ("model_name", 3, NA)),
    "pcoh.batchnorm.layers": entry(lambda: call(torch.nn.BatchNorm1d(2)), ("model", 3, NA)),
    "pcoh.batchnorm.recompute_statistics": entry(
        lambda: call(torch.nn.BatchNorm1d(2), [torch.randn(4, 2)]), ("model", 3, NA), ("batches", 3, NA),
        ("devices", 3, NA)),
    "pcoh.runs.run_key": entry(lambda: call({"a": 1}), ("obj", [1], NA)),
    "pcoh.files.atomic_save": entry(lambda: call({"a": 1}, scratch() / "a.pt"), ("path", 3, NA)),
    "pcoh.files.write_bytes": entry(lambda: call(b"abc", scratch() / "a.bin"), ("data", "abc", NA), ("path", 3, NA)),
    "pcoh.files.write_files": entry(lambda: call({scratch() / "a.bin": b"abc"}), ("contents", [b"abc"], NA)),
    "pcoh.files.recover": entry(lambda: call(scratch()), ("folder", 3, NA)),
    "pcoh.digests.file_sha256": entry(lambda: call(written()), ("path", 3, NA), ("cache", 3, NA)),
    "pcoh.digests.files_sha256": entry(lambda: call([written()]), ("paths", 3, NA), ("cache", 3, NA),
                                       ("name", 3, "a/b")),
    "pcoh.files.write_json": entry(lambda: call({"a": 1}, scratch() / "a.json"), ("path", 3, NA)),
    "pcoh.files.read_json": entry(lambda: call(written()), ("path", 3, NA)),
    "pcoh.files.load_checkpoint": entry(lambda: call(saved_weights()), ("path", 3, NOT_A_CHECKPOINT, NAMES_THE_FILE)),
    "pcoh.files.quarantine": entry(lambda: call(written(), "damaged"), ("path", 3, NA), ("reason", 3, NA)),
    "pcoh.runs.run_lock": entry(lambda: call(scratch()), ("path", 3, NA)),
    "pcoh.runs.output_lock": entry(lambda: call(scratch(), scratch() / "b"), ("folders", 3, NA)),
    "pcoh.runs.resume": entry(
        lambda: call(scratch() / "checkpoint.pt", tiny_net(), None, *optimiser(tiny_net())),
        ("ckpt_path", 3, NA), ("model", "net", NA), ("transfer", "loss", NA), ("opt", "adam", NA),
        ("sched", 0.1, NA)),
    "pcoh.runs.load_final": entry(lambda: call(scratch(), tiny_net(), "cpu"), ("path", 3, NA), ("model", "net", NA)),
    "pcoh.runs.repair_json": entry(
        lambda: call(scratch() / "a.json", {"a": 1}), ("path", 3, NA), ("overwrite", "yes", NA)),
    "pcoh.runs.finish": entry(
        lambda: call(scratch(), tiny_net(), [{"epoch": 1, "loss": 0.5}]),
        ("path", 3, NA), ("model", "net", NA), ("history", {"epoch": 1}, NA), ("extra", [1], NA)),
    "pcoh.runs.cached_run": entry(
        lambda: call(scratch() / "run", {"a": 1}, tiny_net(), "cpu", False, lambda: []),
        ("path", 3, NA), ("config", [1], NA), ("model", "net", NA), ("cache", "yes", NA), ("train", [], NA)),
    "pcoh.evaluations.evaluation_path": entry(
        lambda: call("data", "student-abc", {"k": 10}), ("root", 3, NA), ("run", 3, "a/b"), ("settings", [1], NA)),
    "pcoh.evaluations.cached_evaluation": entry(
        lambda: call(scratch() / "e.json", lambda: ({"pc_n": 0.5}, np.ones(4)), 4),
        ("path", 3, NA), ("compute", {"pc_n": 0.5}, NA), ("n_test", 4.0, 0), ("curves", "yes", NA)),
    "pcoh.experiment.check_experiment": entry(
        lambda: call(scratch_config(), write=False, data=digits()),
        ("cfg", {"dataset": "digits"}, NA), ("write", "no", NA), ("data", "digits", NA)),
    # --- remaining models and methods
    "pcoh.models.load_weights": entry(
        lambda: call(tiny_model(), saved_weights()),
        ("model", "mlp", NA), ("path", 3, NOT_A_CHECKPOINT, NAMES_THE_FILE),
        ("what", 3, NA)),
    "pcoh.models.wrapped.Wrapped": entry(
        lambda: call(tiny_net(), name="tiny", image_size=8, in_channels=1),
        ("net", "net", NA), ("name", 3, NA), ("features", 3, "nope"), ("in_channels", "1", 0),
        ("image_size", 8.0, 4), ("fixed_size", "yes", NA)),
    "pcoh.methods.color": entry(lambda: call("pc (class-aware)"), ("default", 3, "no-such-colour")),
}

#: The registered model builders, ``(num_classes, in_channels, image_size, **options)``: one set of cases.
_MODEL_SIZES = (("num_classes", 2.5, 1), ("in_channels", "3", 0), ("image_size", 8.0, 4))
for _builder in (
    "pcoh.models.cifar.resnet8x4", "pcoh.models.cifar.resnet32x4", "pcoh.models.cifar.resnet20",
    "pcoh.models.cifar.resnet56", "pcoh.models.cifar.resnet50", "pcoh.models.cifar.wrn_40_2",
    "pcoh.models.cifar.wrn_16_2", "pcoh.models.cifar.vgg13", "pcoh.models.cifar.vgg8",
    "pcoh.models.cifar.mobilenetv2", "pcoh.models.cifar.shufflenetv1", "pcoh.models.cifar.shufflenetv2",
    "pcoh.models.digits.digits_resnet", "pcoh.models.digits.digits_cnn", "pcoh.models.digits.mlp",
):
    TABLE[_builder] = entry(call, *_MODEL_SIZES)

_NO_ARGUMENTS = "takes no arguments"
_RAISED = "an exception or warning class: raised by the package, not called with a user's arguments"
_CONTAINER = "a data container: holds what the package built, checks nothing"

#: Public callables left out of TABLE, each with its reason.
EXEMPT: dict[str, str] = {
    **dict.fromkeys([
        "pcoh.__main__.build_parser", "pcoh.data.image_folder.default_num_workers", "pcoh.data.registry.available",
        "pcoh.dissimilarity.Cosine", "pcoh.dissimilarity.Dissimilarity", "pcoh.dissimilarity.Euclidean",
        "pcoh.dissimilarity.SqEuclidean", "pcoh.distributed.barrier", "pcoh.distributed.is_distributed",
        "pcoh.distributed.is_main", "pcoh.distributed.local_rank", "pcoh.distributed.rank",
        "pcoh.distributed.teardown", "pcoh.distributed.world_size", "pcoh.losses.registry.available",
        "pcoh.methods.available", "pcoh.methods.colors", "pcoh.methods.default_methods", "pcoh.models.available",
        "pcoh.models.tv.available", "pcoh.models.wrapped.registered", "pcoh.notebook.workspace.figures_dir",
        "pcoh.notebook.workspace.project_root", "pcoh.notebook.workspace.smoke", "pcoh.plots._base.style", "pcoh.interrupts.Interrupts",
        "pcoh.losses.base.TransferLoss", "pcoh.losses.baselines.SPLoss",
        "pcoh.threads.available_cores", "pcoh.threads.thread_counts",
        "pcoh.notebook.controls.saved_copy", "pcoh.notebook.live.live_methods", "pcoh.notebook.live.presenting",
    ], _NO_ARGUMENTS),
    **dict.fromkeys([
        "pcoh.data.errors.DatasetIntegrityError", "pcoh.data.errors.DatasetNotFoundError",
        "pcoh.data.image_folder.ImageFolderWarning", "pcoh.models.tv.WeightsNotFoundError", "pcoh.files.CacheWarning",
        "pcoh.files.CorruptFileError", "pcoh.runs.OutputInUseError", "pcoh.runs.TrainingDiverged",
        "pcoh.interrupts.TrainingInterrupted", "pcoh.files.UnsafeCheckpointError", "pcoh.train.StopTraining",
    ], _RAISED),
    **dict.fromkeys([
        "pcoh.batches.InMemory", "pcoh.data.split.DataSplit", "pcoh.experiment.ExperimentResult",
        "pcoh.train.TrainedModel", "pcoh.models._base.ModelOutput", "pcoh.coranking.RNXCurve",
    ], _CONTAINER),
    "pcoh.workers.fill_cache": "the main job's own tool: its tasks are built by pcoh.experiment from a checked config",
    "pcoh.workers.worker_threads": "the main job's own arithmetic on thread counts it has already checked",
    "pcoh.methods.Method": "a registry record written in the package (pcoh.methods.METHODS), not user input",
    "pcoh.specs.TeacherSpec": "plain settings without checks of its own, built from a checked ExperimentConfig",
    "pcoh.batches.in_memory": "any object is valid: it returns None for a data set it does not recognise",
    "pcoh.models.tv.is_tv": "a predicate: any object is valid (True only for a string starting with 'tv:')",
    "pcoh.models.wrapped.is_wrapped": "a predicate: any object is valid (True only for a string starting with "
                                      "'wrap:')",
    "pcoh.models.tv.fetch_weights": "downloads published weights: needs the network",
    "pcoh.embedding.umap_embedding": "runs UMAP: its numba compilation takes ~20 s a process (tests/test_embedding.py)",
    "pcoh.embedding.umap_embeddings": "runs UMAP, as umap_embedding (tests/test_embedding.py)",
    "pcoh.notebook.selection.umap_panels": "runs UMAP, as umap_embedding",
    "pcoh.notebook.workspace.digits_image_folder": "writes PNG files into the project's data/ folder "
                                         "(tests/test_notebook_helpers.py uses a scratch project)",
    "pcoh.notebook.focus.focus_students": "trains a network per focus value: too slow",
    "pcoh.experiment.run_experiment": "trains every run of a configuration: too slow (its checks: check_experiment)",
    "pcoh.experiment.estimate": "times training steps of every run of a configuration: too slow",
    "pcoh.train.train_teacher": "trains a network: too slow",
    "pcoh.train.train_student": "trains a network: too slow",
    "pcoh.notebook.live.LiveTraining": "trains or loads the main job's teacher; its arguments: "
                                       "tests/test_notebook_live.py",
    "pcoh.notebook.workspace.runs_to_train": "loads a configuration's data; its bad argument: "
                                             "tests/test_notebook_live.py",
    "pcoh.__main__.main": "the command line: argparse rejects bad arguments with exit status 2 (tests/test_cli.py)",
}


# ------------------------------------------------------------------------------------- the tests
def _cases():
    for name, (_, cases) in TABLE.items():
        for case in cases:
            parameter, wrong_type, wrong_value, *match = case
            for kind, value in (("type", wrong_type), ("value", wrong_value)):
                if value is not NA:
                    yield pytest.param(name, parameter, kind, value, match[0] if match else rf"\b{parameter}\b",
                                       id=f"{name}-{parameter}-{kind}")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(autouse=True)
def _scratch_folder(tmp_path):
    _SCRATCH.append(tmp_path)
    yield
    _SCRATCH.pop()


@pytest.mark.parametrize("name", sorted(TABLE))
def test_the_valid_call_succeeds(name):
    valid, _ = TABLE[name]
    args, kwargs = valid()
    resolve(name)(*args, **kwargs)


@pytest.mark.parametrize("name, parameter, kind, value, match", list(_cases()))
def test_a_wrong_argument_raises_by_the_rule(name, parameter, kind, value, match):
    fn = resolve(name)
    value = value.make() if isinstance(value, later) else value
    args, kwargs = with_argument(fn, *TABLE[name][0](), parameter, value)
    error = TypeError if kind == "type" else ValueError
    with pytest.raises(error, match=match) as info:
        fn(*args, **kwargs)
    # An error that is both (as scikit-learn's InvalidParameterError) would pass either way: the rule wants one.
    other = ValueError if kind == "type" else TypeError
    assert not isinstance(info.value, other), f"{type(info.value).__name__} is a TypeError and a ValueError"


def test_every_public_callable_is_tested_or_exempt():
    public = public_callables()
    missing = sorted(set(public) - set(TABLE) - set(EXEMPT))
    assert not missing, f"public callables neither in TABLE nor in EXEMPT: {missing}"
    unknown = sorted((set(TABLE) | set(EXEMPT)) - set(public))
    assert not unknown, f"names in TABLE or EXEMPT that are not public callables: {unknown}"
    assert not set(TABLE) & set(EXEMPT), "a callable is both tested and exempt"


def test_every_table_row_has_cases_and_every_exemption_a_reason():
    for name, (_, cases) in TABLE.items():
        assert cases, f"{name}: no cases"
        for case in cases:
            assert len(case) in (3, 4) and isinstance(case[0], str), f"{name}: malformed case {case!r}"
            assert case[1] is not NA or case[2] is not NA, f"{name}: case {case[0]!r} tests nothing"
    for name, reason in EXEMPT.items():
        assert reason.strip() and "\n" not in reason, f"{name}: give a one-line reason"
