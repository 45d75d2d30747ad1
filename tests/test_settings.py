"""One source of defaults: an option given at its default value is the same experiment as one left
out, on the command line and in config files alike (same resolved configuration, same cache keys,
same projected schedule)."""
import dataclasses

import pytest

from pcoh import losses
from pcoh.__main__ import _config, build_parser
from pcoh.experiment import STUDENT_TRAIN, TEACHER_TRAIN, ExperimentConfig
from pcoh.train import TeacherSpec

BASE = ["--seeds", "1", "--methods", "pc", "--modes", "class-unaware"]
PC_STRENGTH = losses.LOSSES["pc"]().regularization_strength

#: Every training option with its documented default, as a user would type it.
DEFAULTS = {
    "--epochs": str(STUDENT_TRAIN.epochs),
    "--batch-size": str(STUDENT_TRAIN.batch_size),
    "--lr": "0.001",
    "--teacher-epochs": str(TEACHER_TRAIN.epochs),
    "--teacher-batch-size": str(TEACHER_TRAIN.batch_size),
    "--strength": f"{PC_STRENGTH:g}",
    "--dataset": "digits",
    "--teacher": "digits_resnet",
    "--students": "digits_cnn",
    "--output": "results/latest",
    "--figures": "results/latest/digits",
    "--split": "per-seed",
    "--root": "data",
    "--device": "cpu",
}
#: Options that change how fast, not what: any value leaves the experiment as it is.
SPEED = {"--num-workers": "0", "--channels-last": None, "--compile": None}


def _resolve(argv):
    args = build_parser().parse_args(argv)
    for flag in ("quiet", "no_cache", "estimate", "check"):
        if hasattr(args, flag):
            delattr(args, flag)
    return _config(args)


def _fingerprint(cfg: ExperimentConfig) -> dict:
    tspec = TeacherSpec(cfg.dataset, cfg.teacher, cfg.teacher_train, dict(cfg.data))
    tkey = tspec.key()
    return {
        "teacher": (tkey, cfg.teacher_train.epochs, cfg.teacher_train.batch_size),
        "students": [(s.model, s.method, s.mode, s.key(tkey), s.train.epochs, s.train.batch_size, s.train.lr)
                     for s in cfg.runs()],
        "files": (cfg.output, cfg.figures, cfg.root),
    }


def _plain(cfg):
    d = dataclasses.asdict(cfg)
    for section in ("teacher_train", "student_train"):
        for name in ("num_workers", "channels_last", "compile"):
            d[section].pop(name)
    return d


@pytest.fixture(scope="module")
def reference():
    return _resolve(BASE + ["--device", "cpu"])


@pytest.mark.parametrize("option", list(DEFAULTS))
def test_an_option_at_its_default_is_the_default_experiment(reference, option):
    cfg = _resolve(BASE + ["--device", "cpu", option, DEFAULTS[option]])
    assert _plain(cfg) == _plain(reference)
    assert _fingerprint(cfg) == _fingerprint(reference)


@pytest.mark.parametrize("option", list(SPEED))
def test_a_speed_option_changes_neither_the_schedule_nor_the_cache_keys(reference, option):
    value = SPEED[option]
    cfg = _resolve(BASE + ["--device", "cpu", option] + ([value] if value else []))
    assert _fingerprint(cfg) == _fingerprint(reference)


def test_one_option_never_resets_another(reference):
    cfg = _resolve(BASE + ["--device", "cpu", "--lr", "0.01"])
    assert cfg.student_train.lr == 0.01
    assert (cfg.student_train.epochs, cfg.student_train.batch_size) == (STUDENT_TRAIN.epochs, STUDENT_TRAIN.batch_size)
    assert cfg.teacher_train == TEACHER_TRAIN
    cfg = _resolve(BASE + ["--device", "cpu", "--teacher-epochs", "5"])
    assert cfg.teacher_train.epochs == 5 and cfg.teacher_train.batch_size == TEACHER_TRAIN.batch_size
    assert cfg.student_train == STUDENT_TRAIN


@pytest.mark.parametrize("field, value", [
    ("student_train", {"lr": 1.0e-3}), ("student_train", {"epochs": STUDENT_TRAIN.epochs}),
    ("student_train", {"batch_size": STUDENT_TRAIN.batch_size, "optimizer": "adam"}),
    ("teacher_train", {"epochs": TEACHER_TRAIN.epochs}), ("teacher_train", {}),
    ("loss_kwargs", {"pc": {"regularization_strength": PC_STRENGTH}}),
    ("loss_kwargs", {"pc": {"regularization_strength": int(PC_STRENGTH)}}),
    ("seeds", 1), ("include_untrained", True), ("teacher_metric", "cosine"), ("output", "results/latest"), ("split", "per-seed"),
    # data options and weights at their defaults (were part of the keys as given: everything retrained)
    ("data", {"test_size": 0.2}), ("data", {"normalize": True, "seed": 0}), ("weights", {"pc": 1.0}),
    ("weights", {"pc": 1}),
])
def test_a_config_field_at_its_default_is_the_default_experiment(reference, tmp_path, field, value):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({field: value}))
    cfg = _resolve(BASE + ["--device", "cpu", "--config", str(path)])
    assert _plain(cfg) == _plain(reference)
    assert _fingerprint(cfg) == _fingerprint(reference)


def test_a_partial_table_in_python_keeps_the_other_defaults():
    cfg = ExperimentConfig(student_train={"lr": 0.01}, device="cpu")
    assert cfg.student_train == dataclasses.replace(STUDENT_TRAIN, lr=0.01)
    assert cfg.teacher_train == TEACHER_TRAIN


def test_output_elsewhere_takes_the_figures_along():
    cfg = ExperimentConfig(output="elsewhere", device="cpu")
    assert cfg.figures == "elsewhere/digits"
    assert ExperimentConfig(output="results", device="cpu").figures == "results/digits"
    assert ExperimentConfig(device="cpu").figures == "results/latest/digits"
    assert ExperimentConfig(output="x", figures="f", device="cpu").figures == "f"


@pytest.mark.parametrize("spelling", ["cpu", "cpu:0", "cpu:1"])
def test_every_spelling_of_the_cpu_is_the_cpu(spelling):
    from pcoh.train import resolve_device

    assert str(resolve_device(spelling)) == "cpu"


def test_the_estimate_is_unchanged_by_options_at_their_defaults(tmp_path, reference):
    from pcoh import experiment

    small = ["--teacher", "mlp", "--students", "mlp", "--root", str(tmp_path)]
    a = experiment.estimate(_resolve(BASE + ["--device", "cpu"] + small), steps=1, warmup=0)
    b = experiment.estimate(_resolve(BASE + ["--device", "cpu", "--lr", "0.001", "--num-workers", "0",
                                             "--teacher-epochs", str(TEACHER_TRAIN.epochs)] + small),
                            steps=1, warmup=0)
    cols = ["run", "runs", "cached", "steps_per_epoch", "epochs"]
    assert a[cols].equals(b[cols])


def test_data_options_and_weights_that_differ_from_the_defaults_still_change_the_keys(reference, tmp_path):
    for table in ({"data": {"test_size": 0.25}}, {"weights": {"pc": 2.0}}, {"data": {"normalize": False}}):
        cfg = ExperimentConfig(**BASE_TABLE, **table)
        assert _fingerprint(cfg) != _fingerprint(reference), table


BASE_TABLE = {"seeds": 1, "methods": ("pc",), "modes": ("class-unaware",), "device": "cpu"}


def test_a_list_option_given_twice_adds_up():
    cfg = _resolve(["--seeds", "1", "--device", "cpu", "--methods", "pc", "--methods", "rkd",
                    "--modes", "class-unaware", "--modes", "class-aware"])
    assert cfg.methods == ("pc", "rkd") and cfg.modes == ("class-unaware", "class-aware")
    with pytest.raises(ValueError, match="more than once"):
        _resolve(["--device", "cpu", "--methods", "pc", "--methods", "pc"])
