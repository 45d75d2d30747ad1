"""End-to-end: the command line on a reduced budget, its files, its cache, its errors."""
import subprocess
import sys

import pandas as pd
import pytest

from pcoh.__main__ import main


def _run(tmp_path, *extra):
    return main([
        "--seeds", "1", "--epochs", "3", "--teacher-epochs", "3", "--batch-size", "64",
        "--methods", "pc", "rkd", "kd",
        "--root", str(tmp_path / "data"), "--cache", str(tmp_path / "data"), "--output", str(tmp_path / "results"),
        "--figures", str(tmp_path / "figures"), "--quiet", "--device", "cpu", *extra,
    ])


@pytest.mark.slow
def test_main_job_end_to_end(tmp_path, capsys):
    assert _run(tmp_path) == 0
    out = capsys.readouterr().out
    assert "| student | method | mode |" in out
    results = pd.read_csv(tmp_path / "results" / "digits" / "results.csv")
    assert {"method", "mode", "seed", "pc_n", "knn_accuracy", "linear_probe"} <= set(results.columns)
    # teacher + untrained + pc/rkd (both modes) + kd (class-aware only)
    assert len(results) == 1 + 1 + 2 * 2 + 1
    assert set(results["mode"]) == {"-", "class-unaware", "class-aware"}
    assert not results[results["method"] != "teacher"]["pc_n"].isna().any()
    teacher = results[results["method"] == "teacher"].iloc[0]
    assert teacher["accuracy"] > 0.5  # 10 classes: chance is 0.1
    pc = results[(results["method"] == "pc") & (results["mode"] == "class-unaware")].iloc[0]
    untrained = results[results["method"] == "untrained"].iloc[0]
    assert pc["pc_n"] > untrained["pc_n"]
    assert (tmp_path / "results" / "digits" / "summary.md").read_text().count("\n|") >= 7
    assert (tmp_path / "figures" / "digits-main-metrics.png").stat().st_size > 10_000
    assert (tmp_path / "figures" / "digits-main-metrics.svg").exists()
    runs = sorted((tmp_path / "data" / "runs").iterdir())
    assert len(runs) == 1 + 5  # one teacher, five trained students (untrained is not cached)
    mtimes = {p: (p / "final.pt").stat().st_mtime_ns for p in runs}

    # Second run: every model comes from the cache, nothing is retrained.
    assert _run(tmp_path) == 0
    assert {p: (p / "final.pt").stat().st_mtime_ns for p in runs} == mtimes
    again = pd.read_csv(tmp_path / "results" / "digits" / "results.csv")
    pd.testing.assert_series_equal(again["pc_n"], results["pc_n"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "0"], "seeds"),
        (["--methods", "nope"], "invalid choice"),
        (["--dataset", "imagenet"], "invalid choice"),
        (["--epochs", "three"], "invalid int"),
        (["--config", "does-not-exist.yaml"], "not found"),
        (["--device", "tpu"], "device"),
        (["--dataset", "mnist", "--root", "/nonexistent-pcoh-root"], "MNIST"),
    ],
)
def test_bad_options_exit_with_status_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        code = main(argv + ["--quiet", "--output", str(tmp_path)])
        raise SystemExit(code)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "pcoh", "--help"], capture_output=True, text=True, check=True)
    assert "--config" in out.stdout and "--seeds" in out.stdout
