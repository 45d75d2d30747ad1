"""The small faults a new user met, each as it was found: a home folder written `~`, options given
twice, a read-only install, an image size that cannot fit in memory, a metric a run cannot be
cached by, and messages that said something else than what was wrong."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.datasets import load_digits

from pcoh import data as D
from pcoh.__main__ import main
from pcoh.dissimilarity import Cosine, pairwise
from pcoh.experiment import ExperimentConfig, check_experiment

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--device", "cpu", "--seeds", "1", "--methods", "pc", "--modes", "class-unaware", "--quiet"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home folder of its own, and a working folder apart from it."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return home, work


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory):
    d = load_digits()
    keep = np.concatenate([np.flatnonzero(d.target == k)[:12] for k in range(10)])
    return d.images[keep] / 16, d.target[keep]


def _config(folder: Path, table: dict) -> str:
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump(table))
    return str(path)


# ----------------------------------------------------------------------------- ~ in a config
def test_a_tilde_in_a_config_is_the_home_folder(home):
    home, work = home
    cfg = ExperimentConfig(root="~/imgs", cache="~/runs", output="~/out", figures="~/figs",
                           teacher_checkpoint="~/t.pt", device="cpu")
    assert (cfg.root, cfg.cache, cfg.output, cfg.figures, cfg.teacher_checkpoint) == tuple(
        str(home / name) for name in ("imgs", "runs", "out", "figs", "t.pt"))
    assert ExperimentConfig(output="~/out", device="cpu").figures == str(home / "out" / "digits")


def test_a_tilde_config_checks_without_a_folder_named_tilde(home, capsys):
    home, work = home
    from pcoh.__main__ import _config as resolve, build_parser

    path = _config(work, {"cache": "~/runs", "output": "~/out"})
    args = build_parser().parse_args(["--config", path] + QUICK)
    del args.quiet
    cfg = resolve(args)
    assert (cfg.cache, cfg.output, cfg.figures) == (str(home / "runs"), str(home / "out"),
                                                    str(home / "out" / "digits"))
    assert main(["--config", path, "--check"] + QUICK) == 0
    assert not (work / "~").exists()


def test_root_tilde_imgs_reads_the_image_folder_in_the_home_folder(home, png_folder, capsys):
    home, work = home
    D.write_image_folder(home / "imgs", *png_folder, size=16)
    path = _config(work, {"dataset": "image_folder", "root": "~/imgs", "teacher": "mlp", "students": ["mlp"],
                          "cache": "~/runs", "output": "~/out", "data": {"image_size": 16, "test_size": 0.25}})
    assert main(["--config", path, "--check"] + QUICK) == 0, capsys.readouterr().err
    assert not (work / "~").exists()


# ----------------------------------------------------------------------------- sizes, metrics
def test_a_huge_resize_is_refused_before_anything_is_read(home, png_folder, capsys):
    home, work = home
    D.write_image_folder(work / "imgs", *png_folder, size=16)
    path = _config(work, {"dataset": "image_folder", "root": str(work / "imgs"), "teacher": "mlp",
                          "students": ["mlp"], "cache": str(work / "runs"), "output": str(work / "out"),
                          "data": {"resize": 100000}})
    assert main(["--config", path, "--check"] + QUICK) == 2
    err = capsys.readouterr().err
    assert "resize must be at most 4096 pixels" in err and "MemoryError" not in err and len(err.splitlines()) == 1
    with pytest.raises(ValueError, match="image_size must be at most 4096"):
        D.load("image_folder", root=work / "imgs", image_size=5000)


def test_a_callable_metric_is_refused_by_the_configuration_not_after_training():
    with pytest.raises(TypeError, match=r"teacher_metric must be one of \['cosine', 'euclidean', 'sqeuclidean'\]"):
        ExperimentConfig(teacher_metric=lambda x: torch.cdist(x, x), device="cpu")
    with pytest.raises(TypeError, match="student_metric must be one of"):
        ExperimentConfig(student_metric=torch.cdist, device="cpu")
    assert ExperimentConfig(teacher_metric=Cosine(), device="cpu").teacher_metric == "cosine"


def test_an_unknown_metric_in_a_config_fails_the_check(home, capsys):
    home, work = home
    for table in ({"teacher_metric": "manhattan"}, {"loss_kwargs": {"pc": {"student_metric": "manhattan"}}}):
        assert main(["--config", _config(work, table), "--check"] + QUICK) == 2
        err = capsys.readouterr().err
        assert "manhattan" in err and len(err.splitlines()) == 1, err


# ----------------------------------------------------------------------------- read-only install
def test_import_pcoh_on_a_read_only_install_with_an_unwritable_home(tmp_path):
    # Root may write anywhere, so "unwritable" is made the way that stops root too: the package's
    # __pycache__ folders and the home folder are regular files, where no folder can be made.
    site = tmp_path / "site"
    import shutil

    shutil.copytree(ROOT / "pcoh", site / "pcoh", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [site / "pcoh", *(p for p in (site / "pcoh").rglob("*") if p.is_dir())]:
        (folder / "__pycache__").write_text("")
    (tmp_path / "home").write_text("")
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "home" / "cache"),
               TMPDIR=str(tmp_path / "tmp"), PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    code = "import pcoh, torch; print(pcoh.rank(torch.tensor([[3.0, 1.0, 2.0]])).tolist())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[[3.0, 1.0, 2.0]]"
    assert (tmp_path / "tmp" / f"pcoh-numba-{os.getuid()}").is_dir()  # numba's cache went there


# ----------------------------------------------------------------------------- messages
def test_an_image_folder_that_is_a_file_is_called_a_file(tmp_path):
    (tmp_path / "imgs.zip").write_bytes(b"PK")
    with pytest.raises(FileNotFoundError, match="is a file, not a folder") as err:
        D.load("image_folder", root=tmp_path / "imgs.zip")
    assert "does not exist" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.load("image_folder", root=tmp_path / "missing")


def test_a_teacher_checkpoint_that_is_a_folder_is_called_a_folder(tmp_path):
    (tmp_path / "weights").mkdir()
    cfg = ExperimentConfig(teacher_checkpoint=str(tmp_path / "weights"), device="cpu", seeds=1, methods=("pc",),
                           cache=str(tmp_path / "c"), output=str(tmp_path / "o"))
    with pytest.raises(IsADirectoryError, match="is a folder; expected a checkpoint file") as err:
        check_experiment(cfg, write=False)
    assert "no such file" not in str(err.value)


def test_a_callable_metric_returning_an_array_says_so():
    x = torch.randn(8, 3)
    with pytest.raises(ValueError, match=r"got a numpy.ndarray of shape \(8, 8\) \(not a torch.Tensor"):
        pairwise(x, lambda v: np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"got a torch.Tensor of shape \(8, 7\)"):
        pairwise(x, lambda v: torch.zeros(8, 7))


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_finite_features_whose_squares_overflow_are_said_to_overflow(metric):
    from pcoh import perception_coherence

    big = torch.randn(8, 4) * 1e20  # finite in float32; squared distances (1e40) are not
    for call in (lambda: pairwise(big, metric), lambda: perception_coherence(big, torch.randn(8, 4),
                                                                           student_metric=metric)):
        with pytest.raises(ValueError, match="overflow float32") as err:
            call()
        assert "NaN or Inf" not in str(err.value)
    assert torch.isfinite(pairwise(big.double(), metric)).all()  # float64 holds them
