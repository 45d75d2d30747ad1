"""Notebook 10's live training (pcoh.notebook.live), the saved-copy note of the controls, runs_to_train."""
import dataclasses

import numpy as np
import pytest
from scipy.stats import spearmanr

from pcoh.notebook import (SAVED_COPY_NOTE, LiveTraining, draw_controls, experiment_config, live_methods,
                           runs_to_train)
from pcoh.notebook import live as L


@pytest.fixture(scope="module")
def live():
    session = LiveTraining(smoke_mode=True, quiet=True)
    yield session
    session.close()


def test_methods_are_pc_and_class_unaware_baselines():
    methods = live_methods()
    assert methods[0] == "pc" and len(methods) >= 3
    assert "kd" not in methods and "ce" not in methods  # need labels


def test_measures_match_independent_references(live):
    m = live.measure(live.teacher.model)
    # the teacher against itself: every reference ranks alike
    assert m["pc"] == pytest.approx(1.0, abs=1e-6)
    # per-reference Spearman against scipy on a few references, for an untrained student
    from pcoh.train import build_model, predict
    from scipy.spatial.distance import cdist

    student = build_model("digits_cnn", live.data, 0, {}).eval()
    m = live.measure(student)
    s, _, _ = predict(student, live.data.test)
    ds, dt = cdist(s.numpy(), s.numpy(), "cosine"), cdist(live.t_test.numpy(), live.t_test.numpy(), "cosine")
    for i in (0, 7, 100):
        keep = np.arange(len(ds)) != i
        assert m["rho"][i] == pytest.approx(spearmanr(ds[i, keep], dt[i, keep])[0], abs=1e-4)
    # the 2-D view lies in the teacher's frame: the same centre
    np.testing.assert_allclose(m["xy"].mean(axis=0), live.teacher_xy.mean(axis=0), atol=1e-6)


def test_a_run_redraws_once_per_epoch_and_can_be_stopped(live, tmp_path, monkeypatch):
    frames = live.frames
    run = live.train("pc", epochs=2, batch_size=64, wait=True)
    assert run.status == "finished" and [p["epoch"] for p in run.epochs] == [0, 1, 2]
    assert live.frames == frames + 4  # the untrained student, two epochs, the end
    assert live.png.startswith(b"\x89PNG")
    with pytest.raises(RuntimeError, match="Stop"):
        live._thread = _Alive()
        live.train("pkt")
    live._thread = None
    stopped = live.train("pkt", epochs=30, batch_size=32)
    live.stop()
    live.wait(60)
    assert stopped.status == "stopped" and len(stopped.epochs) < 31
    # only the finished run is saved into the cache
    monkeypatch.setattr(live, "cfg", dataclasses.replace(live.cfg, cache=str(tmp_path)))
    lines = live.save()
    assert lines[0].startswith("pc: saved to") and "not saved" in lines[1]
    assert live.save()[0].startswith("pc: already in")
    assert len(list((tmp_path / "runs").glob("student-*/final.pt"))) == 1


class _Alive:
    def is_alive(self):
        return True


@pytest.mark.parametrize("kwargs, error", [(dict(method="kd"), ValueError), (dict(epochs=0), ValueError),
                                           (dict(batch_size="64"), TypeError)])
def test_bad_train_arguments(live, kwargs, error):
    with pytest.raises(error):
        live.train(**kwargs)


def test_controls_carry_the_saved_copy_note_only_in_the_saved_copy(monkeypatch):
    import ipywidgets as widgets

    def html(panel):
        return [c.value for c in panel.children if isinstance(c, widgets.HTML)]

    monkeypatch.delenv("PCOH_SAVED_COPY", raising=False)
    assert html(draw_controls(lambda x=1: None, show=False, x=widgets.IntSlider(1))) == []
    monkeypatch.setenv("PCOH_SAVED_COPY", "1")
    panel = draw_controls(lambda x=1: None, show=False, x=widgets.IntSlider(1))
    assert html(panel) == [SAVED_COPY_NOTE] and isinstance(panel.children[-1], widgets.Output)


def test_runs_to_train_counts_the_unfinished_runs(tmp_path):
    config = dataclasses.replace(experiment_config(smoke_mode=True), cache=str(tmp_path), methods=("pc", "pkt"),
                                 modes=("class-unaware",), include_untrained=True)
    assert runs_to_train(config) == 1 + 2  # the teacher and two students; the untrained one trains nothing
    # Two seeds, each on its own split with its own teacher: two teachers, four students.
    assert runs_to_train(dataclasses.replace(config, seeds=2)) == 2 + 4
    assert runs_to_train(dataclasses.replace(config, seeds=2, split="fixed")) == 1 + 4
    with pytest.raises(TypeError, match="config"):
        runs_to_train("digits")


def test_presenting_follows_the_switch(monkeypatch):
    monkeypatch.setenv("PCOH_PRESENT", "1")
    assert L.presenting()
    monkeypatch.setenv("PCOH_PRESENT", "0")
    assert not L.presenting()
