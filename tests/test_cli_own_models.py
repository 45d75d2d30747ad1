"""The command line with one's own models and images: tv: models, image folders, checkpoints, published weights."""
from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision.models as tvm
from sklearn.datasets import load_digits

from pcoh import data as D
from pcoh.__main__ import main
from pcoh.experiment import ExperimentConfig, check_experiment
from pcoh.models import tv
from pcoh.train import TeacherSpec, predict, train_teacher


@pytest.fixture(scope="module")
def digits_png(tmp_path_factory):
    """A small image folder: 12 digits of each class as 32x32 grey PNG files (24 held out)."""
    d = load_digits()
    keep = np.concatenate([np.flatnonzero(d.target == k)[:12] for k in range(10)])
    return D.write_image_folder(tmp_path_factory.mktemp("png") / "digits", d.images[keep] / 16, d.target[keep],
                                size=32)


def _snapshot(folder: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def _lines(text: str) -> list:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.slow
def test_torchvision_teacher_and_students_on_an_image_folder_twice(digits_png, tmp_path, capsys):
    before = _snapshot(digits_png)
    argv = ["--dataset", "image_folder", "--root", str(digits_png), "--teacher", "tv:resnet18",
            "--students", "tv:mobilenet_v3_small", "digits_cnn", "--methods", "pc", "--modes", "class-unaware",
            "--seeds", "1", "--epochs", "1", "--teacher-epochs", "1", "--batch-size", "32",
            "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "results"), "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    first = pd.read_csv(tmp_path / "results" / "image_folder" / "results.csv")
    assert list(first["student"]) == ["tv:resnet18"] + ["tv:mobilenet_v3_small"] * 2 + ["digits_cnn"] * 2
    runs = sorted((tmp_path / "cache" / "runs").iterdir())
    assert len(runs) == 3  # the teacher and one pc run per student
    mtimes = {p: (p / "final.pt").stat().st_mtime_ns for p in runs}
    assert main(argv) == 0  # the second time: everything from the cache
    assert {p: (p / "final.pt").stat().st_mtime_ns for p in runs} == mtimes
    again = pd.read_csv(tmp_path / "results" / "image_folder" / "results.csv")
    pd.testing.assert_series_equal(again["pc_n"], first["pc_n"])
    assert _snapshot(digits_png) == before  # the image folder was only read
    assert "| tv:mobilenet_v3_small | pc | class-unaware |" in capsys.readouterr().out


def test_a_torchvision_state_dict_loads_as_teacher_checkpoint(digits_png, tmp_path, capsys):
    torch.manual_seed(0)
    net = tvm.resnet18(num_classes=10).eval()
    torch.save(net.state_dict(), tmp_path / "plain.pt")
    torch.save({"model": net.state_dict(), "epoch": 3}, tmp_path / "benchmark.pt")
    split = D.load("image_folder", root=digits_png)
    X, _ = split.tensors("test")
    with torch.no_grad():  # independent reference: torchvision's own network, cut before its fc
        h = net.maxpool(net.relu(net.bn1(net.conv1(X))))
        reference = torch.flatten(net.avgpool(net.layer4(net.layer3(net.layer2(net.layer1(h))))), 1)
    for name in ("plain.pt", "benchmark.pt"):
        assert main(["--dataset", "image_folder", "--root", str(digits_png), "--teacher", "tv:resnet18",
                     "--teacher-checkpoint", str(tmp_path / name), "--cache", str(tmp_path / "cache"),
                     "--output", str(tmp_path / "out"), "--check", "--quiet"]) == 0
        assert "all checks passed" in capsys.readouterr().out
        spec = TeacherSpec("image_folder", "tv:resnet18", checkpoint=str(tmp_path / name), source=split.source)
        teacher = train_teacher(spec, split, root=tmp_path / "cache", quiet=True, device="cpu")
        features, _, _ = predict(teacher.model, split.test, device="cpu")
        torch.testing.assert_close(features, reference, atol=1e-5, rtol=0)


def test_a_checkpoint_of_another_model_exits_2_naming_the_keys(digits_png, tmp_path, capsys):
    torch.save(tvm.resnet18(num_classes=5).state_dict(), tmp_path / "five.pt")
    code = main(["--dataset", "image_folder", "--root", str(digits_png), "--teacher", "tv:resnet18",
                 "--teacher-checkpoint", str(tmp_path / "five.pt"), "--cache", str(tmp_path / "cache"),
                 "--output", str(tmp_path / "out"), "--check", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "net.fc.weight (5, 512) instead of (10, 512)" in err and "Traceback" not in err


def test_published_weights_offline_exit_2_with_the_file_to_fetch(digits_png, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    weights = tvm.ResNet18_Weights.IMAGENET1K_V1
    code = main(["--dataset", "image_folder", "--root", str(digits_png), "--teacher", "tv:resnet18",
                 "--teacher-weights", "IMAGENET1K_V1", "--cache", str(tmp_path / "cache"),
                 "--output", str(tmp_path / "out"), "--check", "--quiet"])
    err = capsys.readouterr().err
    lines = _lines(err)
    expected = tmp_path / "torch" / "hub" / "checkpoints" / Path(weights.url).name
    assert code == 2 and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("pcoh: error:")
    assert weights.url in lines[0] and str(expected) in lines[0]
    assert not (tmp_path / "cache" / "runs").exists()


def test_published_weights_copied_into_torch_hub_work_offline(digits_png, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(url, dst, *args, **kwargs):
        raise AssertionError("nothing should be downloaded")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    weights = tvm.ResNet18_Weights.IMAGENET1K_V1
    path = tv.weights_path(weights)
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(tvm.resnet18().state_dict(), path)  # stands in for the copied file
    options = ["--dataset", "image_folder", "--root", str(digits_png), "--teacher", "tv:resnet18",
               "--teacher-weights", "IMAGENET1K_V1", "--students", "digits_cnn", "--cache", str(tmp_path / "cache"),
               "--output", str(tmp_path / "out"), "--quiet"]
    assert main(options + ["--check"]) == 0
    assert "all checks passed" in capsys.readouterr().out
    cfg = ExperimentConfig(dataset="image_folder", root=str(digits_png), cache=str(tmp_path / "cache"),
                           teacher="tv:resnet18", teacher_weights="IMAGENET1K_V1", students=("digits_cnn",))
    split = check_experiment(cfg, write=False)
    published = weights.transforms()  # the image folder is read with the weights' preprocessing
    assert split.image_size == published.crop_size[0] == 224
    assert split.mean == tuple(published.mean) and split.std == tuple(published.std)


def test_a_test_split_too_small_to_evaluate_exits_2_before_training(tmp_path, capsys):
    d = load_digits()
    folder = D.write_image_folder(tmp_path / "few", d.images[:50] / 16, d.target[:50], size=16)
    code = main(["--dataset", "image_folder", "--root", str(folder), "--cache", str(tmp_path / "cache"),
                 "--output", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "the test split has 10 samples" in err and "at least 21" in err
    assert not (tmp_path / "cache" / "runs").exists()


@pytest.mark.parametrize("argv, message", [
    (["--teacher", "tv:resnet19"], "did you mean tv:resnet18"),
    (["--students", "digits_cnn", "tv:nope"], "students: unknown torchvision model 'tv:nope'"),
    (["--teacher", "tv:resnet18", "--teacher-weights", "IMAGENET9"], "teacher_weights: tv:resnet18 has no"),
    (["--teacher", "digits_cnn", "--teacher-weights", "DEFAULT"], "teacher_weights: published weights exist only"),
])
def test_bad_model_options_exit_2(argv, message, tmp_path, capsys):
    code = main(argv + ["--quiet", "--output", str(tmp_path), "--cache", str(tmp_path / "cache"), "--check"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(_lines(err)) == 1
