"""Tests for the model registry :mod:`pcoh.models`."""
from __future__ import annotations

import doctest
import re

import numpy as np
import pytest
import torch

from pcoh import models
from pcoh.models import ModelOutput

CIFAR = [
    "mobilenetv2", "resnet20", "resnet32x4", "resnet50", "resnet56", "resnet8x4", "shufflenetv1", "shufflenetv2",
    "vgg13", "vgg8", "wrn_16_2", "wrn_40_2",
]
DIGITS = ["digits_cnn", "digits_resnet", "mlp"]
STUDENTS = ["digits_cnn", "mlp"]

# The documented feature widths (from the task and the benchmark).
FEATURE_DIM = {
    "resnet8x4": 256,
    "resnet32x4": 256,
    "wrn_40_2": 128,
    "wrn_16_2": 128,
    "mobilenetv2": 1280,
    "shufflenetv2": 1024,
    "resnet56": 64,
    "resnet20": 64,
    "vgg13": 512,
    "vgg8": 512,
    "resnet50": 2048,
    "shufflenetv1": 960,
    "digits_resnet": 128,
    "digits_cnn": 32,
    "mlp": 32,
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _check_output(model, out, n):
    assert isinstance(out, ModelOutput)
    assert isinstance(out, tuple) and out._fields == ("features", "logits")
    assert out.features.shape == (n, model.feature_dim)
    assert out.logits.shape == (n, model.num_classes)
    assert torch.isfinite(out.features).all() and torch.isfinite(out.logits).all()


def test_registry_contents():
    assert models.available() == sorted(CIFAR + DIGITS)
    assert set(models.MODELS) == set(models.available())
    assert set(models.PARAMETER_COUNTS) == set(models.available())


@pytest.mark.parametrize("name", CIFAR)
def test_cifar_forward_32x32_rgb(name):
    model = models.create(name, num_classes=100, in_channels=3, image_size=32)
    assert (model.num_classes, model.in_channels) == (100, 3)
    assert model.feature_dim == FEATURE_DIM[name]
    for flag in (True, False):  # batch statistics, then running statistics
        model.train(flag)
        with torch.no_grad():
            _check_output(model, model(torch.randn(2, 3, 32, 32)), 2)


@pytest.mark.parametrize("name", CIFAR)
@pytest.mark.parametrize("size", [8, 16])
def test_cifar_forward_small_grey(name, size):
    model = models.create(name, num_classes=10, in_channels=1, image_size=size)
    assert model.in_channels == 1 and model.feature_dim == FEATURE_DIM[name]
    with torch.no_grad():
        _check_output(model, model(torch.randn(2, 1, size, size)), 2)


@pytest.mark.parametrize("name", DIGITS)
def test_digits_forward(name):
    model = models.create(name, num_classes=10, in_channels=1, image_size=8)
    assert isinstance(model.feature_dim, int) and model.feature_dim == FEATURE_DIM[name]
    assert isinstance(model.num_classes, int) and isinstance(model.in_channels, int)
    for flag in (True, False):
        model.train(flag)
        with torch.no_grad():
            _check_output(model, model(torch.rand(2, 1, 8, 8)), 2)


@pytest.mark.parametrize("name", ["digits_resnet", "digits_cnn"])
def test_digits_conv_nets_take_rgb_and_other_sizes(name):
    model = models.create(name, num_classes=3, in_channels=3, image_size=32).eval()
    with torch.no_grad():
        _check_output(model, model(torch.randn(2, 3, 32, 32)), 2)
        _check_output(model, model(torch.randn(2, 3, 8, 8)), 2)


def test_mlp_accepts_flat_input_and_matches_image_input():
    model = models.create("mlp", num_classes=10, in_channels=1, image_size=8).eval()
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        a, b = model(x), model(x.reshape(4, 64))
    torch.testing.assert_close(a.logits, b.logits)
    wide = models.create("mlp", num_classes=5, in_channels=3, image_size=16)
    _check_output(wide, wide(torch.rand(2, 3, 16, 16)), 2)


def _documented_table() -> dict[str, tuple[int, int, int, int]]:
    row = re.compile(r"^\s*([a-z0-9_]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d,]+)\s*$")
    table = {}
    for line in models.__doc__.splitlines():
        m = row.match(line)
        if m:
            name, nc, ic, fd, params = m.groups()
            table[name] = (int(nc), int(ic), int(fd), int(params.replace(",", "")))
    return table


def test_parameter_table_docstring_mirrors_dict():
    assert _documented_table() == models.PARAMETER_COUNTS


@pytest.mark.parametrize("name", sorted(FEATURE_DIM))
def test_parameter_counts_match_table(name):
    num_classes, in_channels, feature_dim, params = models.PARAMETER_COUNTS[name]
    image_size = 8 if name in DIGITS else 32
    model = models.create(name, num_classes, in_channels, image_size)
    assert models.count_parameters(model) == params
    assert model.feature_dim == feature_dim == FEATURE_DIM[name]


def test_students_are_much_smaller_and_narrower():
    kw = dict(num_classes=10, in_channels=1, image_size=8)
    teacher = models.create("digits_resnet", **kw)
    n_teacher = models.count_parameters(teacher)
    assert 100_000 <= n_teacher <= 1_000_000
    for name in STUDENTS:
        student = models.create(name, **kw)
        assert models.count_parameters(student) * 10 <= n_teacher, name
        assert student.feature_dim < teacher.feature_dim, name


def test_count_parameters_trainable_only():
    model = models.create("mlp", num_classes=10, in_channels=1, image_size=8)
    total = models.count_parameters(model)
    model.fc.requires_grad_(False)
    assert models.count_parameters(model, trainable_only=True) == total - (32 * 10 + 10)
    assert models.count_parameters(model) == total


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        models.create("resnet18")
    message = str(info.value)
    assert "resnet18" in message
    for name in models.available():
        assert name in message
    with pytest.raises(TypeError, match="valid names"):
        models.create(None)


@pytest.mark.parametrize("name", ["resnet8x4", "wrn_16_2", "digits_cnn", "mlp"])
def test_wrong_channel_count_raises(name):
    size = 8 if name == "mlp" else 32
    model = models.create(name, num_classes=10, in_channels=3, image_size=size)
    with pytest.raises(ValueError, match=rf"3 input channels.*\(2, 1, {size}, {size}\)"):
        model(torch.zeros(2, 1, size, size))


def test_channel_error_message_exact():
    model = models.create("resnet8x4", num_classes=10, in_channels=3)
    with pytest.raises(ValueError) as info:
        model(torch.zeros(2, 1, 32, 32))
    assert str(info.value) == (
        "model 'resnet8x4' was built for 3 input channels, got input of shape (2, 1, 32, 32)"
    )


@pytest.mark.parametrize("shape", [(3, 32, 32), (2, 3 * 32 * 32), (1, 2, 3, 32, 32)])
def test_conv_nets_reject_non_4d_input(shape):
    model = models.create("resnet8x4", num_classes=10, in_channels=3)
    with pytest.raises(ValueError, match="resnet8x4"):
        model(torch.zeros(shape))


def test_mlp_rejects_wrong_size():
    model = models.create("mlp", num_classes=10, in_channels=1, image_size=8)
    with pytest.raises(ValueError, match="8x8"):
        model(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="64 values"):
        model(torch.zeros(2, 63))
    with pytest.raises(ValueError, match="mlp"):
        model(torch.zeros(2, 8, 8))


def test_non_tensor_input_raises_type_error():
    model = models.create("digits_cnn", num_classes=10, in_channels=1, image_size=8)
    with pytest.raises(TypeError):
        model([[0.0] * 64] * 2)


@pytest.mark.parametrize(
    "kwargs, argument, error",
    [
        (dict(num_classes=1), "num_classes", ValueError),
        (dict(num_classes=0), "num_classes", ValueError),
        (dict(num_classes=2.5), "num_classes", TypeError),
        (dict(num_classes=True), "num_classes", TypeError),
        (dict(num_classes="10"), "num_classes", TypeError),
        (dict(in_channels=0), "in_channels", ValueError),
        (dict(in_channels=-1), "in_channels", ValueError),
        (dict(in_channels=1.0), "in_channels", TypeError),
        (dict(image_size=7), "image_size", ValueError),
        (dict(image_size=0), "image_size", ValueError),
    ],
)
@pytest.mark.parametrize("name", ["resnet8x4", "mlp", "digits_cnn"])
def test_bad_constructor_arguments(name, kwargs, argument, error):
    with pytest.raises(error, match=argument):
        models.create(name, **kwargs)


def test_architecture_options_validated():
    with pytest.raises(ValueError, match="widths"):
        models.create("digits_cnn", in_channels=1, image_size=8, widths=[])
    with pytest.raises(ValueError, match="hidden"):
        models.create("mlp", in_channels=1, image_size=8, hidden=0)
    with pytest.raises(ValueError, match="dropout"):
        models.create("wrn_16_2", dropout=1.5)
    with pytest.raises(TypeError):
        models.create("resnet8x4", no_such_option=1)


def test_integer_like_arguments_are_stored_as_int():
    model = models.create(
        "digits_cnn", num_classes=np.int64(5), in_channels=np.int32(1), image_size=8
    )
    assert type(model.num_classes) is int and type(model.in_channels) is int
    assert type(model.feature_dim) is int


@pytest.mark.parametrize("name", DIGITS + ["wrn_16_2", "vgg8", "shufflenetv1", "resnet20"])
def test_gradients_reach_all_parameters(name):
    size = 8 if name in DIGITS else 16
    model = models.create(name, num_classes=10, in_channels=1, image_size=size).train()
    out = model(torch.randn(4, 1, size, size))
    (out.logits.sum() + out.features.sum()).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_seed_makes_init_reproducible_and_keeps_global_rng():
    state = torch.random.get_rng_state()
    a = models.create("digits_cnn", in_channels=1, image_size=8, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = models.create("digits_cnn", in_channels=1, image_size=8, seed=3)
    c = models.create("digits_cnn", in_channels=1, image_size=8, seed=4)
    for (na, pa), (_, pb), (_, pc) in zip(
        a.state_dict().items(), b.state_dict().items(), c.state_dict().items()
    ):
        assert torch.equal(pa, pb), na
    assert not torch.equal(a.fc.weight, c.fc.weight)


def test_batchnorm_used_in_conv_nets():
    for name in CIFAR + ["digits_resnet", "digits_cnn"]:
        model = models.create(name, num_classes=10, in_channels=1, image_size=8)
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()), name


def test_module_docstring_example():
    results = doctest.testmod(models, verbose=False)
    assert results.failed == 0 and results.attempted > 0
