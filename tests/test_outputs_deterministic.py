"""Writing the main job's outputs twice from the same results gives byte-identical files (tables,
config and figures), so a rerun on the same data leaves git status clean."""
import hashlib
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pcoh.experiment import ExperimentConfig, write_outputs  # noqa: E402


def _result():
    rng = np.random.default_rng(0)
    rows = [{"student": "digits_resnet", "method": "teacher", "mode": "-", "seed": 0, "pc_n": 1.0, "knn_accuracy": 1.0}]
    per_reference = {"teacher": np.ones(20)}
    for mode in ("class-unaware", "class-aware"):
        for method in ("pc", "rkd"):
            for seed in range(2):
                rows.append({"student": "digits_cnn", "method": method, "mode": mode, "seed": seed,
                             "pc_n": rng.uniform(0.6, 0.9), "knn_accuracy": rng.uniform(0.9, 1.0)})
                per_reference[("digits_cnn", method, mode, seed)] = rng.uniform(0.3, 1.0, size=20)
    return SimpleNamespace(results=pd.DataFrame(rows), per_reference=per_reference, curves={},
                           data=SimpleNamespace(test=np.zeros(20)))


def _digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_writing_twice_gives_the_same_bytes(tmp_path):
    result = _result()
    cfg = ExperimentConfig(output=str(tmp_path / "out"), figures=str(tmp_path / "out" / "digits"))
    write_outputs(result, cfg)
    first = _digests(tmp_path / "out")
    assert {"digits/results.csv", "digits/summary.md", "digits/digits-main-metrics.png",
            "digits/digits-main-metrics.svg", "digits/digits-main-per-reference.svg"} <= set(first)
    write_outputs(result, cfg)
    assert _digests(tmp_path / "out") == first
