"""The training step loop: batches with indices, speed options, cache keys, --estimate."""
import dataclasses
import pickle
import warnings

import numpy as np
import pytest
import torch

from pcoh import batches as B
from pcoh import data as D
from pcoh import losses as L
from pcoh import train as T
from pcoh.__main__ import main
from pcoh.runs import run_key
from pcoh.specs import as_dict


@pytest.fixture(scope="module")
def teacher(digits, tmp_path_factory):
    spec = T.TeacherSpec(model="digits_cnn", train=T.TrainConfig(epochs=1, batch_size=64, lr=1e-2))
    return T.train_teacher(spec, digits, root=tmp_path_factory.mktemp("t"), quiet=True, device="cpu")


def test_speed_options_stay_out_of_the_cache_key():
    base = T.TeacherSpec()
    fast = T.TeacherSpec(train=T.TrainConfig(channels_last=True, compile=True, num_workers=3))
    assert base.key() == fast.key()
    assert T.StudentSpec().key("t") == T.StudentSpec(train=fast.train).key("t")
    amp = T.TeacherSpec(train=T.TrainConfig(amp=True))
    assert amp.key() != base.key() and T.StudentSpec(train=amp.train).key("t") != T.StudentSpec().key("t")
    # Without the new options the key is the one of the fields that existed before them.
    old = {"kind": "teacher", **as_dict(base)}
    for name in ("amp", "channels_last", "compile", "num_workers"):
        old["train"].pop(name)
    old.pop("source")  # the data's identity, None for the built-in data sets
    old.pop("checkpoint_sha256")  # a teacher checkpoint's digest, None without one
    assert base.key() == run_key(old)


@pytest.mark.parametrize("kwargs, match, error", [
    (dict(amp=1), "amp", TypeError), (dict(compile="yes"), "compile", TypeError),
    (dict(channels_last=None), "channels_last", TypeError), (dict(num_workers=-2), "num_workers", ValueError),
    (dict(num_workers=1.5), "num_workers", TypeError)])
def test_bad_speed_options(kwargs, match, error):
    # The one checking rule: a wrong type is a TypeError, a wrong value a ValueError.
    with pytest.raises(error, match=match):
        T.TrainConfig(**kwargs)


class _Recorder(L.TransferLoss):
    """PKT-like loss that records the indices it is handed."""

    seen: list = []

    def _loss(self, student, teacher):
        return (student - student.mean()).pow(2).mean() * 0.0 + student.pow(2).mean()

    def forward(self, student, teacher, *, indices=None):
        type(self).seen.append((indices.clone(), teacher.features.clone()))
        return super().forward(student, teacher, indices=indices)


def test_the_loss_gets_each_batch_positions(digits, teacher, tmp_path, monkeypatch):
    monkeypatch.setitem(L.LOSSES, "recorder", _Recorder)
    _Recorder.seen = []
    spec = T.StudentSpec(model="mlp", method="recorder", train=T.TrainConfig(epochs=2, batch_size=100))
    T.train_student(spec, teacher, digits, root=tmp_path, quiet=True, device="cpu")
    n = len(digits.train)
    assert len(_Recorder.seen) == 2 * (n // 100)  # last incomplete batch dropped
    X, _ = digits.tensors("train")
    with torch.no_grad():
        expected = teacher.model(X).features
    epoch0 = torch.cat([idx for idx, _ in _Recorder.seen[: n // 100]])
    assert len(set(epoch0.tolist())) == len(epoch0) and epoch0.max() < n
    for idx, feats in _Recorder.seen:
        # The cached teacher outputs are looked up by those positions.
        assert torch.allclose(feats, expected[idx], atol=1e-5)


def _write_cifar100(root, n_train=96, n_test=16):
    rng = np.random.default_rng(0)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        fine = [int(v) for v in rng.integers(0, 4, size=n)]
        with open(folder / split, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), "fine_labels": fine,
                         "coarse_labels": [0] * n, "filenames": [f"{j}.png" for j in range(n)], "batch_label": split}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"f{k}" for k in range(100)], "coarse_label_names": [f"c{k}" for k in range(20)]}, f)


def test_augmented_cifar_student_is_repeatable_with_the_teacher_under_inference_mode(tmp_path):
    _write_cifar100(tmp_path)
    split = D.load("cifar100", root=tmp_path, verify=False, augment=True)
    tnet = T.build_model("digits_cnn", split, 0, {})
    spec = T.StudentSpec(model="digits_cnn", method="pc", mode="class-aware",
                         train=T.TrainConfig(epochs=2, batch_size=32, channels_last=True))
    a = T.train_student(spec, tnet, split, root=tmp_path / "a", quiet=True, device="cpu")
    b = T.train_student(spec, tnet, split, root=tmp_path / "b", quiet=True, device="cpu")
    assert a.history == b.history and np.isfinite(a.history[-1]["loss"])
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k


def test_amp_on_cpu_is_ignored_with_a_note(digits, teacher, tmp_path):
    spec = T.StudentSpec(model="mlp", method="pkt", train=T.TrainConfig(epochs=1, amp=True))
    plain = dataclasses.replace(spec, train=T.TrainConfig(epochs=1))
    with pytest.warns(UserWarning, match="CUDA only"):
        a = T.train_student(spec, teacher, digits, root=tmp_path / "a", quiet=True, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = T.train_student(plain, teacher, digits, root=tmp_path / "b", quiet=True, device="cpu")
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k


def test_history_is_the_mean_of_the_step_losses(digits, teacher, tmp_path):
    # The per-epoch record read once from device sums equals the mean of the per-step losses.
    spec = T.TeacherSpec(model="mlp", train=T.TrainConfig(epochs=1, batch_size=128))
    losses = []
    real = T._train_step

    def spy(*args, **kwargs):
        step = real(*args, **kwargs)

        def wrapped(x, y, idx):
            terms = step(x, y, idx)
            losses.append(float(terms["loss"]))
            return terms

        return wrapped

    T._train_step = spy
    try:
        out = T.train_teacher(spec, digits, root=tmp_path, quiet=True, device="cpu")
    finally:
        T._train_step = real
    assert len(losses) == len(digits.train) // 128
    assert out.history[0]["loss"] == pytest.approx(np.mean(losses), rel=1e-6)


def test_estimate_run_projects_the_epochs(digits, teacher):
    spec = T.StudentSpec(model="mlp", method="pc", mode="class-aware", train=T.TrainConfig(epochs=7, batch_size=64))
    t = T.estimate_run(spec, digits, teacher=teacher.model, device="cpu", steps=2, warmup=1)
    assert t["steps_per_epoch"] == len(digits.train) // 64 and t["epochs"] == 7
    assert t["step_s"] > 0 and t["eval_s"] > 0
    assert t["epoch_s"] == pytest.approx(t["step_s"] * t["steps_per_epoch"] + t["eval_s"])
    assert t["total_s"] == pytest.approx(t["setup_s"] + 7 * t["epoch_s"])
    with pytest.raises(ValueError, match="teacher"):
        T.estimate_run(spec, digits, device="cpu")
    with pytest.raises(TypeError, match="spec"):
        T.estimate_run("pc", digits, device="cpu")


def test_cli_estimate_trains_nothing(tmp_path, capsys):
    config = tmp_path / "small.yaml"
    config.write_text("dataset: digits\nteacher: digits_cnn\nstudents: [mlp]\nmethods: [pc, ce]\nseeds: 2\n"
                      "teacher_train: {epochs: 2, batch_size: 64}\nstudent_train: {epochs: 3, batch_size: 64}\n")
    code = main(["--config", str(config), "--estimate", "--root", str(tmp_path / "data"), "--cache", str(tmp_path / "data"),
                 "--device", "cpu",
                 "--quiet", "--output", str(tmp_path / "out"), "--figures", str(tmp_path / "fig")])
    out = capsys.readouterr().out
    assert code == 0
    assert "| teacher digits_cnn | 2 | 0 |" in out  # one teacher per seed: each on its own split
    assert "| mlp pc class-unaware | 2 | 0 |" in out and "| mlp ce class-aware | 2 | 0 |" in out
    assert "projected training time on cpu" in out
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists() and not (tmp_path / "fig").exists()


@pytest.mark.parametrize("device", [pytest.param("cpu", marks=pytest.mark.slow),
                                    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                                  reason="no CUDA"))])
def test_compiled_step_matches_the_eager_step(digits, teacher, tmp_path, device):
    cfg = T.TrainConfig(epochs=2, batch_size=128)
    spec = T.StudentSpec(model="mlp", method="pc", mode="class-aware", train=cfg)
    fast = dataclasses.replace(spec, train=dataclasses.replace(cfg, compile=True, channels_last=True))
    assert fast.key("t") == spec.key("t")
    eager = T.train_student(spec, teacher, digits, root=tmp_path / "e", quiet=True, device=device)
    compiled = T.train_student(fast, teacher, digits, root=tmp_path / "c", quiet=True, device=device)
    for k, v in eager.model.state_dict().items():
        assert torch.allclose(v, compiled.model.state_dict()[k], atol=1e-4), k
    assert compiled.history[-1]["loss"] == pytest.approx(eager.history[-1]["loss"], rel=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_cuda_batches_stay_on_the_device_and_amp_trains(digits, teacher, tmp_path):
    source = B.BatchSource(digits.train, 64, device="cuda", shuffle=True)
    x, y, idx = next(iter(source.epoch(0)))
    assert x.is_cuda and y.is_cuda and idx.is_cuda and source.memory.images.is_cuda
    spec = T.StudentSpec(model="mlp", method="pc", mode="class-aware", train=T.TrainConfig(epochs=2, amp=True))
    out = T.train_student(spec, teacher, digits, root=tmp_path, quiet=True, device="cuda")
    assert np.isfinite(out.history[-1]["loss"]) and out.history[-1]["test_accuracy"] > 0.2
