"""The cache keys of runs are fixed: a change to how a spec carries its settings must not rename a
single cached run.

The keys below were computed from the specs before the loss settings became a typed value
(:class:`pcoh.specs.LossSettings`); a run's key is its folder under ``<cache>/runs/``, so a
different key would retrain every run of every user.
"""
import hashlib

import pytest

from pcoh.config import ExperimentConfig
from pcoh.specs import StudentSpec, TeacherSpec, TrainConfig

TEACHER_KEY = "teacher-key"

#: SHA-256 of the keys of the 100 student runs of the default configuration with five seeds, one a
#: line, in order.
DEFAULT_RUNS = (100, "79afae806eedff371d478faa6b96a4e9a2555d5aa3c824332cf18a011661e896")

SPECS = [
    (lambda: StudentSpec("digits_cnn", "pc", "class-unaware", loss_kwargs={"regularization_strength": 0.5}),
     "758151c3f4de"),
    # An argument at the loss's default is the run without it.
    (lambda: StudentSpec("digits_cnn", "pc", "class-unaware", loss_kwargs={"regularization_strength": 1.0}),
     "87ae6d46ad66"),
    (lambda: StudentSpec("digits_cnn", "pc", "class-aware", weight=2.0,
                         loss_kwargs={"focus": 4.0, "focus_symmetric": True}), "848047992809"),
    (lambda: StudentSpec("mlp", "crd", "class-aware", loss_kwargs={"embed_dim": 16},
                         train=TrainConfig(epochs=3, seed=2)), "f8a433239b6a"),
    (lambda: StudentSpec("mlp", "kd", "class-aware", weight=1), "00dedb40b628"),
    (lambda: StudentSpec("mlp", "ce", "class-aware"), "0cabd0922b02"),
    (lambda: StudentSpec("mlp", "untrained", "class-unaware"), "c32fd60e6471"),
]


def test_the_default_runs_keep_their_keys():
    runs = ExperimentConfig(seeds=5).runs()
    digest = hashlib.sha256("\n".join(s.key(TEACHER_KEY) for s in runs).encode()).hexdigest()
    assert (len(runs), digest) == DEFAULT_RUNS


@pytest.mark.parametrize("make, key", SPECS)
def test_a_spec_keeps_its_key(make, key):
    assert make().key(TEACHER_KEY) == key


def test_the_default_teacher_keeps_its_key():
    assert TeacherSpec().key() == "1dc6f015f952"
