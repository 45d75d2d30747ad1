"""Our CIFAR models hold the CRD benchmark's state-dict keys and load its checkpoints."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pcoh import models
from pcoh.models import BENCHMARK_NAMES, load_benchmark_state

# Key names and shapes of every CIFAR-100 model of the benchmark (RepDistiller models/),
# in state_dict order, read from its public model code.
REFERENCE = json.loads((Path(__file__).parent / "data" / "repdistiller_state_dicts.json").read_text())["models"]


def _ours(name: str, seed: int = 0) -> torch.nn.Module:
    return models.create(name, num_classes=100, in_channels=3, image_size=32, seed=seed)


def test_every_benchmark_model_has_ours():
    assert sorted(BENCHMARK_NAMES.values()) == sorted(REFERENCE)
    assert set(BENCHMARK_NAMES) <= set(models.available())


@pytest.mark.parametrize("name", sorted(BENCHMARK_NAMES))
def test_state_dict_keys_and_shapes_match_both_ways(name):
    ours = {k: tuple(v.shape) for k, v in _ours(name).state_dict().items()}
    theirs = {k: tuple(shape) for k, shape in REFERENCE[BENCHMARK_NAMES[name]]}
    assert sorted(set(theirs) - set(ours)) == []  # every benchmark key is ours
    assert sorted(set(ours) - set(theirs)) == []  # and nothing else
    assert {k: v for k, v in ours.items() if theirs[k] != v} == {}
    assert list(ours) == [k for k, _ in REFERENCE[BENCHMARK_NAMES[name]]]  # same order too


@pytest.mark.parametrize("name", sorted(BENCHMARK_NAMES))
def test_checkpoint_in_the_benchmark_format_loads(name, tmp_path):
    # A file as the benchmark publishes it: {'model': state dict under its key names, ...},
    # values drawn at random with the shapes its model code gives.
    gen = torch.Generator().manual_seed(1)
    state = {}
    for key, shape in REFERENCE[BENCHMARK_NAMES[name]]:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(240, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.1
    path = tmp_path / "ckpt_epoch_240.pth"
    torch.save({"epoch": 240, "model": state, "accuracy": 79.42}, path)
    model = load_benchmark_state(_ours(name), torch.load(path, weights_only=True))
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32, generator=gen))
    assert out.features.shape == (2, model.feature_dim) and out.logits.shape == (2, 100)
    # The features are the classifier's input (the benchmark's feat[-1]).
    torch.testing.assert_close(out.logits, model.fc(out.features))


def test_loaded_model_computes_what_the_saved_one_did():
    a, b = _ours("resnet8x4", seed=1).eval(), _ours("resnet8x4", seed=2).eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    load_benchmark_state(b, {"model": a.state_dict(), "best_acc": 73.0})
    with torch.no_grad():
        torch.testing.assert_close(a(x).logits, b(x).logits)
    c = _ours("resnet8x4", seed=3)
    load_benchmark_state(c, a.state_dict())  # a bare state dict
    prefixed = {"module." + k: v for k, v in a.state_dict().items()}
    d = load_benchmark_state(_ours("resnet8x4", seed=4), {"model": prefixed})
    for k, v in a.state_dict().items():
        assert torch.equal(c.state_dict()[k], v) and torch.equal(d.state_dict()[k], v)


def test_mismatch_names_missing_unexpected_and_misshaped_keys():
    model = _ours("wrn_16_2")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = dict(_ours("wrn_16_2", seed=5).state_dict())
    del state["block1.layer.0.convShortcut.weight"]
    state["block1.layer.0.shortcut.weight"] = torch.zeros(32, 16, 1, 1)
    state["fc.weight"] = torch.zeros(10, 128)
    with pytest.raises(ValueError) as info:
        load_benchmark_state(model, {"model": state})
    message = str(info.value)
    assert "missing keys 1 (block1.layer.0.convShortcut.weight)" in message
    assert "unexpected keys 1 (block1.layer.0.shortcut.weight)" in message
    assert "fc.weight (10, 128) instead of (100, 128)" in message and "'wrn_16_2'" in message
    for k, v in model.state_dict().items():  # nothing was loaded
        assert torch.equal(v, before[k]), k


def test_wrong_model_lists_a_few_keys():
    with pytest.raises(ValueError, match=r"missing keys \d+ \(conv1.weight, .*, \.\.\.\)"):
        load_benchmark_state(_ours("resnet8x4"), {"model": _ours("vgg8").state_dict()})


@pytest.mark.parametrize("obj", [None, [1, 2], "ckpt_epoch_240.pth", {"model": {"conv1.weight": [1.0]}}])
def test_bad_checkpoint_objects(obj):
    with pytest.raises(TypeError):
        load_benchmark_state(_ours("resnet8x4"), obj)
