"""pcoh.batchnorm: batch-norm statistics recomputed over training batches ("precise BN"), checked
against statistics computed by hand, and the training loop's use of it."""
import numpy as np
import pytest
import torch
from torch import nn

from pcoh import batchnorm as BN
from pcoh import data as D
from pcoh import models, specs
from pcoh import train as T


def _batches(n_batches=5, size=16, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(size, dim, generator=g) * torch.tensor([1.0, 3.0, 0.1]) + 2.0 for _ in range(n_batches)]


def test_the_statistics_are_the_average_of_the_batch_statistics():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3, momentum=0.01), nn.ReLU(), nn.BatchNorm1d(3))
    batches = _batches()
    assert BN.recompute_statistics(net, batches) == len(batches)
    # By hand: each layer's input, batch by batch; the mean of the batch means and of the
    # unbiased batch variances (PyTorch's running variance is unbiased).
    with torch.no_grad():
        first = [net[0](x).numpy() for x in batches]
        second = [torch.relu(nn.functional.batch_norm(torch.from_numpy(h), None, None, net[1].weight, net[1].bias,
                                                        training=True)).numpy() for h in first]
    for layer, inputs in ((net[1], first), (net[3], second)):
        np.testing.assert_allclose(layer.running_mean.numpy(), np.mean([h.mean(0) for h in inputs], 0), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(layer.running_var.numpy(), np.mean([h.var(0, ddof=1) for h in inputs], 0),
                                   rtol=1e-5, atol=1e-6)
    assert net[1].momentum == 0.01 and net[3].momentum == 0.1  # each layer keeps its momentum


def test_the_mode_and_the_random_state_are_left_as_they_were():
    net = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.BatchNorm1d(8)).eval()
    before = torch.get_rng_state()
    BN.recompute_statistics(net, ((x, None) for x in _batches()))  # tuples: the first item is the input
    assert not net.training
    assert torch.equal(torch.get_rng_state(), before)


def test_the_weights_do_not_change_and_no_gradient_is_computed():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    weights = {k: v.clone() for k, v in net.named_parameters()}
    BN.recompute_statistics(net, _batches())
    assert all(torch.equal(v, weights[k]) for k, v in net.named_parameters())
    assert all(p.grad is None for p in net.parameters())


def test_no_batch_or_no_batch_norm_leaves_everything_as_it_was():
    net = nn.BatchNorm1d(3)
    net.running_mean.fill_(5.0)
    assert BN.recompute_statistics(net, []) == 0
    assert torch.equal(net.running_mean, torch.full((3,), 5.0))
    assert BN.recompute_statistics(nn.Linear(3, 3), _batches()) == 0
    assert BN.layers(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3, track_running_stats=False))) == []


def test_a_failing_batch_restores_the_previous_statistics():
    net = nn.BatchNorm1d(3)
    net.running_mean.fill_(5.0)
    with pytest.raises(RuntimeError):
        BN.recompute_statistics(net, [torch.randn(4, 3), torch.randn(4, 7)])
    assert torch.equal(net.running_mean, torch.full((3,), 5.0)) and net.momentum == 0.1


def test_which_models_are_recomputed_and_their_keys():
    assert BN.recomputed("tv:mobilenet_v3_small") and BN.recomputed("wrap:Net-0123456789ab")
    assert not any(BN.recomputed(name) for name in models.available())
    # The built-in models keep their cache keys; a torchvision run's key says its statistics are recomputed.
    assert "batch_norm" not in specs._key_dict(specs.TeacherSpec())
    assert specs._key_dict(specs.TeacherSpec(model="tv:resnet18"))["batch_norm"] == "recomputed"
    assert specs._key_dict(specs.StudentSpec(model="tv:resnet18"))["batch_norm"] == "recomputed"


class _SlowStatistics(nn.Module):
    """A small network whose batch norm keeps 99.9% of its running averages at every step."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64, momentum=0.001), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.body(x.flatten(1) * 10.0 + 3.0))


def test_a_wrapped_model_with_slow_statistics_is_evaluated_with_recomputed_ones(tmp_path):
    torch.manual_seed(0)
    digits = D.load("digits")
    net = models.wrap(_SlowStatistics(), features="body", in_channels=1, image_size=8)
    spec = T.TeacherSpec(model=net, train=T.TrainConfig(epochs=3, batch_size=64))
    trained = T.train_teacher(spec, digits, root=tmp_path, quiet=True)
    layer = BN.layers(trained.model)[0]
    # What one more pass over the last epoch's batches gives: nothing is left of the start (0 and 1).
    again = {k: v.clone() for k, v in layer.state_dict().items()}
    source = T.BatchSource(digits.train, 64, device="cpu", shuffle=True, drop_last=True, seed=0)
    BN.recompute_statistics(trained.model, (b[0] for b in source.epoch(2)))
    torch.testing.assert_close(layer.running_var, again["running_var"])
    torch.testing.assert_close(layer.running_mean, again["running_mean"])
    # ...which are far from where an exponential average of momentum 0.001 would still be after
    # 66 steps (94% of its start, mean 0 and variance 1).
    assert (layer.running_var - 1).abs().max() > 10 and layer.running_mean.abs().max() > 1
    assert all(h["test_accuracy"] > 0.7 for h in trained.history), trained.history
