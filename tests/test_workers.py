"""Runs trained side by side in worker processes (pcoh.workers) are the runs a single process
trains: the same cache entries, read back by the main job, the same results table."""
import numpy as np
import pytest

from pcoh.experiment import ExperimentConfig, run_experiment, side_by_side_jobs
from pcoh.specs import TrainConfig
from pcoh.workers import worker_threads


def _cfg(tmp_path, name, **changes):
    return ExperimentConfig(methods=("pc", "pkt"), modes=("class-unaware",), seeds=2, device="cpu", threads=2,
                            teacher_train=TrainConfig(epochs=1), student_train=TrainConfig(epochs=2),
                            cache=str(tmp_path / name), output=str(tmp_path / f"out-{name}"), **changes)


def test_worker_threads_share_the_cores():
    assert worker_threads(2, 2) == 1 and worker_threads(8, 3) == 2 and worker_threads(1, 4) == 1


def test_jobs_is_one_where_processes_cannot_help(tmp_path):
    assert side_by_side_jobs(_cfg(tmp_path, "a", jobs=3)) == 3
    assert side_by_side_jobs(_cfg(tmp_path, "a", jobs=3), cache=False) == 1
    with pytest.raises(ValueError, match="jobs"):
        _cfg(tmp_path, "a", jobs=0)
    with pytest.raises(TypeError, match="jobs"):
        _cfg(tmp_path, "a", jobs="2")


@pytest.mark.slow
def test_side_by_side_fills_the_cache_with_the_runs_one_process_trains(tmp_path):
    one = run_experiment(_cfg(tmp_path, "one", jobs=1), quiet=True, write=False)
    two = run_experiment(_cfg(tmp_path, "two", jobs=2), quiet=True, write=False)
    names = lambda p: sorted(q.name for q in (p / "runs").iterdir())  # noqa: E731
    assert names(tmp_path / "one") == names(tmp_path / "two")
    assert len(names(tmp_path / "two")) == 2 + 2 * 2  # two teachers, two methods x two seeds
    cols = ["student", "method", "mode", "seed", "split"]
    assert one.results[cols].equals(two.results[cols])
    for metric in ("pc_n", "knn_accuracy", "rnx_auc"):
        np.testing.assert_allclose(two.results[metric], one.results[metric], atol=0.03)
    # The workers evaluated too, and the main job read their evaluations (the features it computed
    # are those the workers computed, bit for bit): one evaluation per run, none recomputed.
    evaluations = sorted(p.name for p in (tmp_path / "two" / "evaluations").glob("*.json"))
    assert len(evaluations) == len(names(tmp_path / "two")) + 2  # + the untrained students, evaluated here
    # Read back, not retrained: a second call finds every run finished.
    again = run_experiment(_cfg(tmp_path, "two", jobs=2), quiet=True, write=False)
    np.testing.assert_array_equal(again.results["pc_n"], two.results["pc_n"])
