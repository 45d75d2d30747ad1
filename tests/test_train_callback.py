"""The training callback and stop event of train_student / train_teacher: once per epoch, stopping,
a stopped run not cached as finished, a raising callback leaving no half-written run."""
import threading

import pytest
import torch

import pcoh
from pcoh import train as T


@pytest.fixture(scope="module")
def teacher(digits, tmp_path_factory):
    spec = T.TeacherSpec(model="digits_cnn", train=T.TrainConfig(epochs=1, batch_size=64, lr=1e-2))
    return T.train_teacher(spec, digits, root=tmp_path_factory.mktemp("t"), quiet=True, device="cpu")


SPEC = T.StudentSpec(model="mlp", method="pc", train=T.TrainConfig(epochs=3, batch_size=256))


def _files(path):
    return sorted(p.name for p in path.iterdir())


def test_called_once_per_epoch_with_the_eval_student_and_its_loss(digits, teacher, tmp_path):
    calls = []

    def callback(epoch, model, loss):
        calls.append((epoch, model.training, torch.is_grad_enabled(), loss,
                      {k: v.clone() for k, v in model.state_dict().items()}))

    run = pcoh.train_student(SPEC, teacher, digits, root=tmp_path, quiet=True, device="cpu", callback=callback)
    assert [c[0] for c in calls] == [1, 2, 3]
    assert all(not training and not grad for _, training, grad, _, _ in calls)
    # the loss handed over is the epoch's mean training loss, as recorded in the history
    assert [c[3] for c in calls] == [h["loss"] for h in run.history]
    assert isinstance(calls[0][3], float)
    # the student handed over after the last epoch is the returned one
    for k, v in run.model.state_dict().items():
        assert torch.equal(calls[-1][4][k], v), k
    assert not run.stopped and (run.path / "final.pt").exists()
    # the same weights as a run without a callback
    plain = T.train_student(SPEC, teacher, digits, root=tmp_path / "plain", quiet=True, device="cpu")
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, run.model.state_dict()[k]), k
    # a run loaded from the cache trains nothing and calls nothing
    calls.clear()
    again = pcoh.train_student(SPEC, teacher, digits, root=tmp_path, quiet=True, device="cpu", callback=callback)
    assert again.cached and calls == []


@pytest.mark.parametrize("how", ["false", "raise"])
def test_stopping_early_is_not_cached_as_finished(digits, teacher, tmp_path, how):
    seen = []

    def callback(epoch, model, loss):
        seen.append(epoch)
        if epoch == 2:
            if how == "raise":
                raise pcoh.StopTraining("enough")
            return False
        return None

    run = pcoh.train_student(SPEC, teacher, digits, root=tmp_path, quiet=True, device="cpu", callback=callback)
    assert seen == [1, 2]
    assert run.stopped and not run.cached and len(run.history) == 2 and not run.model.training
    assert not (run.path / "final.pt").exists() and not (run.path / "history.json").exists()
    assert (run.path / "checkpoint.pt").exists()
    # the next call is not served a stopped run from the cache: it resumes and finishes, with the
    # weights of an uninterrupted run
    done = pcoh.train_student(SPEC, teacher, digits, root=tmp_path, quiet=True, device="cpu")
    assert not done.cached and not done.stopped and len(done.history) == 3
    full = T.train_student(SPEC, teacher, digits, root=tmp_path / "full", quiet=True, device="cpu")
    for k, v in full.model.state_dict().items():
        assert torch.allclose(v, done.model.state_dict()[k], atol=1e-6), k


def test_a_raising_callback_leaves_no_half_written_run(digits, teacher, tmp_path):
    def callback(epoch, model, loss):
        if epoch == 2:
            raise RuntimeError("the plot failed")

    with pytest.raises(RuntimeError, match="the plot failed"):
        pcoh.train_student(SPEC, teacher, digits, root=tmp_path, quiet=True, device="cpu", callback=callback)
    (path,) = (tmp_path / "runs").iterdir()
    # config and the whole checkpoint of the last epoch, no final weights, no temporary file
    assert _files(path) == ["checkpoint.pt", "config.json"] or _files(path) == [".lock", "checkpoint.pt",
                                                                                 "config.json"]
    state = torch.load(path / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    done = pcoh.train_student(SPEC, teacher, digits, root=tmp_path, quiet=True, device="cpu")
    assert not done.cached and len(done.history) == 3 and (done.path / "final.pt").exists()


def test_a_set_stop_event_stops_within_one_batch(digits, teacher, tmp_path):
    stop = threading.Event()
    steps = []
    real = T._run_epoch

    def counting(source, step, epoch, bar, **kwargs):
        def counted(x, y, idx):
            steps.append(epoch)
            if len(steps) == 2:
                stop.set()
            return step(x, y, idx)
        return real(source, counted, epoch, bar, **kwargs)

    T._run_epoch = counting
    try:
        run = pcoh.train_student(SPEC, teacher, digits, root=tmp_path, quiet=True, device="cpu", stop=stop)
    finally:
        T._run_epoch = real
    assert steps == [0, 0]  # the batch during which it was set was the last
    assert run.stopped and run.history == [] and not (run.path / "final.pt").exists()


def test_the_teacher_takes_a_callback_too(digits, tmp_path):
    spec = T.TeacherSpec(model="digits_cnn", train=T.TrainConfig(epochs=2, batch_size=128))
    seen = []
    run = pcoh.train_teacher(spec, digits, root=tmp_path, quiet=True, device="cpu",
                             callback=lambda epoch, model, loss: seen.append(epoch) or False)
    assert seen == [1] and run.stopped and len(run.history) == 1


@pytest.mark.parametrize("kwargs, match", [(dict(callback=3), "callback"), (dict(stop="yes"), "stop")])
def test_bad_callback_or_stop(digits, teacher, tmp_path, kwargs, match):
    with pytest.raises(TypeError, match=match):
        pcoh.train_student(SPEC, teacher, digits, root=tmp_path, quiet=True, device="cpu", **kwargs)
