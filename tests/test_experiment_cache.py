"""Evaluations are cached: keyed by the run and the measure settings, safe to read, exact."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from pcoh import evaluate as _eval
from pcoh import experiment as _exp
from pcoh.files import CacheWarning
from pcoh.train import TrainConfig


def _config(tmp_path, **extra):
    return _exp.ExperimentConfig(
        root=str(tmp_path / "data"), cache=str(tmp_path / "data"), output=str(tmp_path / "results"),
        figures=str(tmp_path / "figures"),
        methods=("pc",), modes=("class-unaware",), seeds=1, device="cpu",
        teacher_train=TrainConfig(epochs=1), student_train=TrainConfig(epochs=1), **extra)


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = _eval.evaluate_model

    def counting(*args, **kwargs):
        calls.append(kwargs.get("metric"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_eval, "evaluate_model", counting)
    return calls


def test_second_run_evaluates_nothing_and_gives_the_same_numbers(tmp_path, counted):
    cfg = _config(tmp_path)
    first = _exp.run_experiment(cfg, quiet=True, write=False)
    assert len(counted) == 3  # teacher, untrained, pc
    files = sorted((tmp_path / "data" / "evaluations").glob("*.json"))
    assert len(files) == 3 and all(f.name.startswith(("teacher-", "student-")) for f in files)
    second = _exp.run_experiment(cfg, quiet=True, write=False)
    assert len(counted) == 3
    pd.testing.assert_frame_equal(first.results, second.results)
    for key, rho in first.per_reference.items():
        np.testing.assert_array_equal(rho, second.per_reference[key])
    # Other measure settings are another evaluation: only the students' (the teacher keeps cosine).
    _exp.run_experiment(_config(tmp_path, student_metric="euclidean"), quiet=True, write=False)
    assert counted[3:] == ["euclidean", "euclidean"]
    # cache=False evaluates again.
    _exp.run_experiment(cfg, quiet=True, write=False, cache=False)
    assert len(counted) == 8


def test_damaged_or_malformed_cache_files_are_moved_aside_and_recomputed(tmp_path, counted):
    cfg = _config(tmp_path)
    first = _exp.run_experiment(cfg, quiet=True, write=False)
    files = sorted((tmp_path / "data" / "evaluations").glob("*.json"))
    files[0].write_bytes(b"\x80not json")
    payload = json.loads(files[1].read_text())
    payload["per_reference"] = payload["per_reference"][:-1]  # wrong length
    files[1].write_text(json.dumps(payload))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = _exp.run_experiment(cfg, quiet=True, write=False)
    assert len(counted) == 3 + 2
    assert sum(issubclass(w.category, CacheWarning) for w in caught) == 2
    assert len(list((tmp_path / "data" / "evaluations").glob("*.corrupt"))) == 2
    pd.testing.assert_frame_equal(first.results, again.results)


def test_cached_evaluation_keeps_nan_as_null(tmp_path):
    path = _exp.evaluation_path(tmp_path, "student-abc", {"metric": "cosine"})
    row = {"pc_n": 0.5, "accuracy": float("nan")}
    rho = np.array([0.1, np.nan, 0.3])
    out_row, out_rho = _exp.cached_evaluation(path, lambda: (row, rho), 3)
    text = path.read_text()
    assert "NaN" not in text and "null" in text  # strict JSON
    again_row, again_rho = _exp.cached_evaluation(path, lambda: pytest.fail("recomputed"), 3)
    assert again_row["pc_n"] == 0.5 and np.isnan(again_row["accuracy"])
    np.testing.assert_array_equal(again_rho, rho)
    # Settings change the file name.
    assert _exp.evaluation_path(tmp_path, "student-abc", {"metric": "euclidean"}) != path
