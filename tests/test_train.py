"""Training: repeatability, caching, resuming, atomic checkpoints, objectives."""
import json

import pytest
import torch

from pcoh import files
from pcoh import train as T


@pytest.fixture(scope="module")
def teacher(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    spec = T.TeacherSpec(model="digits_cnn", train=T.TrainConfig(epochs=2, batch_size=64, lr=1e-2))
    return spec, T.train_teacher(spec, digits, root=root, quiet=True, device="cpu"), root


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_teacher_learns_and_is_cached(digits, teacher):
    spec, trained, root = teacher
    assert not trained.cached
    assert len(trained.history) == 2 and trained.history[-1]["test_accuracy"] > 0.5
    assert (trained.path / "final.pt").exists() and not (trained.path / "checkpoint.pt").exists()
    config = json.loads((trained.path / "config.json").read_text())
    assert config["model"] == "digits_cnn"
    again = T.train_teacher(spec, digits, root=root, quiet=True, device="cpu")
    assert again.cached
    for k, v in _state(trained.model).items():
        assert torch.equal(v, again.model.state_dict()[k])


def test_student_cpu_run_is_repeatable(digits, teacher, tmp_path):
    _, trained, _ = teacher
    spec = T.StudentSpec(model="mlp", method="pc", train=T.TrainConfig(epochs=2, batch_size=128))
    a = T.train_student(spec, trained, digits, root=tmp_path / "a", quiet=True, device="cpu")
    b = T.train_student(spec, trained, digits, root=tmp_path / "b", quiet=True, device="cpu")
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    assert a.history == b.history and "transfer" in a.history[0] and "ce" not in a.history[0]


def test_interrupted_run_resumes_to_the_same_weights(digits, teacher, tmp_path):
    _, trained, _ = teacher
    spec = T.StudentSpec(model="mlp", method="rkd", mode="class-aware", train=T.TrainConfig(epochs=3))
    full = T.train_student(spec, trained, digits, root=tmp_path / "full", quiet=True, device="cpu")
    # Simulate an interruption after epoch 1: train 1 epoch, keep only its checkpoint, resume.
    short = T.StudentSpec(model="mlp", method="rkd", mode="class-aware", train=T.TrainConfig(epochs=3))
    path = T.run_dir(tmp_path / "cut", "student", short.key(""))
    path.mkdir(parents=True)
    calls = {"n": 0}
    real_save = files.atomic_save

    def crash_after_first_checkpoint(obj, target):
        real_save(obj, target)
        if target.name == "checkpoint.pt":
            calls["n"] += 1
            if calls["n"] == 1:
                raise KeyboardInterrupt

    files.atomic_save = crash_after_first_checkpoint
    try:
        with pytest.raises(KeyboardInterrupt):
            T.train_student(short, trained, digits, root=tmp_path / "cut", quiet=True, device="cpu")
    finally:
        files.atomic_save = real_save
    assert (path / "checkpoint.pt").exists() and not (path / "final.pt").exists()
    resumed = T.train_student(short, trained, digits, root=tmp_path / "cut", quiet=True, device="cpu")
    assert not resumed.cached and len(resumed.history) == 3
    for k, v in full.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k], atol=1e-6), k


def test_atomic_save_leaves_no_partial_file(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    target = tmp_path / "x.pt"
    files.atomic_save({"ok": 1}, target)
    with pytest.raises(RuntimeError, match="boom"):
        files.atomic_save({"bad": Unpicklable()}, target)
    assert torch.load(target) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


def test_fitnet_regressor_is_trained(digits, teacher, tmp_path):
    _, trained, _ = teacher
    spec = T.StudentSpec(model="mlp", method="fitnet", train=T.TrainConfig(epochs=1))
    out = T.train_student(spec, trained, digits, root=tmp_path, quiet=True, device="cpu")
    state = torch.load(out.path / "final.pt", weights_only=True)
    assert state["history"][0]["transfer"] > 0


def test_untrained_student_is_not_trained(digits, teacher, tmp_path):
    _, trained, _ = teacher
    spec = T.StudentSpec(model="mlp", method="untrained", train=T.TrainConfig(seed=4))
    out = T.train_student(spec, trained, digits, root=tmp_path, quiet=True, device="cpu")
    from pcoh import models

    fresh = models.create("mlp", num_classes=10, in_channels=1, image_size=8, seed=4)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, out.model.state_dict()[k])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="kd", mode="class-unaware"), "class-aware"),
        (dict(method="ce", mode="class-unaware"), "class-aware"),
        (dict(method="nope"), "unknown method"),
        (dict(mode="both"), "mode"),
        (dict(weight=-1.0), "weight"),
    ],
)
def test_bad_student_specs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        T.StudentSpec(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(epochs=-1), "epochs"), (dict(batch_size=0), "batch_size"), (dict(optimizer="rmsprop"), "optimizer"),
     (dict(lr=0), "lr"), (dict(weight_decay=-1), "weight_decay")],
)
def test_bad_train_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        T.TrainConfig(**kwargs)


def test_device_resolution():
    assert T.resolve_device("cpu").type == "cpu"
    assert T.resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        T.resolve_device("gpu7")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            T.resolve_device("cuda")
    if not torch.backends.mps.is_available():  # refused here, not when the first tensor moves
        with pytest.raises(ValueError, match="MPS .* not available"):
            T.resolve_device("mps")
    if not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        with pytest.raises(ValueError, match="no Intel GPU"):
            T.resolve_device("xpu")
