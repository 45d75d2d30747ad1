"""The evaluation protocol: each seed on its own held-out split with its own teacher (repeated
hold-out), or every seed on one split (fixed); what the runs of one seed share."""
import numpy as np
import pytest

from pcoh import data as pdata
from pcoh.experiment import ExperimentConfig, estimate, run_experiment
from pcoh.specs import TrainConfig


def _cfg(tmp_path, **changes):
    return ExperimentConfig(methods=("pc", "pkt"), modes=("class-unaware",), seeds=2, device="cpu",
                            teacher_train=TrainConfig(epochs=1), student_train=TrainConfig(epochs=1),
                            cache=str(tmp_path / "cache"), output=str(tmp_path / "out"), **changes)


def test_split_seeds_of_the_two_designs(tmp_path):
    cfg = _cfg(tmp_path)
    assert [cfg.split_seed(s) for s in range(3)] == [0, 1, 2]
    assert cfg.data_options(0) == {} and cfg.data_options(2) == {"seed": 2}
    shifted = _cfg(tmp_path, data={"seed": 7})
    assert [shifted.split_seed(s) for s in range(2)] == [7, 8] and shifted.data_options(7) == {"seed": 7}
    fixed = _cfg(tmp_path, split="fixed")
    assert [fixed.split_seed(s) for s in range(3)] == [0, 0, 0]
    with pytest.raises(ValueError, match="split must be one of"):
        _cfg(tmp_path, split="folds")
    with pytest.raises(TypeError, match="split must be a string"):
        _cfg(tmp_path, split=1)


@pytest.mark.slow
def test_each_seed_has_its_own_split_and_teacher(tmp_path):
    cfg = _cfg(tmp_path)
    table = estimate(cfg, steps=1, warmup=0)
    assert table.iloc[0]["runs"] == 2  # two teachers, one per split
    result = run_experiment(cfg, quiet=True, write=True)
    assert result.split_seeds == {0: 0, 1: 1} and sorted(result.teachers) == [0, 1]
    # Each split is the loader's stratified split of that seed, and the two differ.
    for ss, split in result.splits.items():
        expected = pdata.load("digits", seed=ss)
        np.testing.assert_array_equal(split.test.tensors[1].numpy(), expected.test.tensors[1].numpy())
        np.testing.assert_array_equal(split.test.tensors[0].numpy(), expected.test.tensors[0].numpy())
    assert not np.array_equal(result.splits[0].test.tensors[0].numpy(), result.splits[1].test.tensors[0].numpy())
    # Seed 1's students are evaluated on split 1 against teacher 1: their features have split 1's labels.
    key = ("digits_cnn", "pc", "class-unaware", 1)
    np.testing.assert_array_equal(result.features[key]["y_test"], result.splits[1].test.tensors[1].numpy())
    rows = result.results
    assert sorted(rows[rows["method"] == "teacher"]["split"]) == [0, 1]
    assert set(rows[rows["seed"] == 1]["split"]) == {1}
    summary = (tmp_path / "out" / "digits" / "summary.md").read_text()
    assert "each seed on its own stratified held-out split" in summary
    assert "share its own stratified held-out split, the teacher trained on that split" in summary
    assert "| MDD | verdict | best |" in summary
    # The base split and its teacher are those of a fixed-split run: its runs are reused, not retrained.
    fixed = run_experiment(_cfg(tmp_path, split="fixed"), quiet=True, write=False)
    assert list(fixed.teachers) == [0]
    same = ("digits_cnn", "pc", "class-unaware", 0)
    np.testing.assert_array_equal(fixed.features[same]["test"], result.features[same]["test"])


def test_data_given_as_the_cli_gives_it_keeps_each_seeds_split(tmp_path):
    """``python -m pcoh`` loads the base split once (check_experiment) and hands it on: the other
    seeds still get their own splits and teachers (the estimate and the run alike)."""
    from pcoh.experiment import check_experiment

    cfg = _cfg(tmp_path)
    data = check_experiment(cfg, write=False)
    assert estimate(cfg, steps=1, warmup=0, data=data).iloc[0]["runs"] == 2
    from pcoh.experiment import _split_seeds

    assert _split_seeds(cfg) == {0: 0, 1: 1}
