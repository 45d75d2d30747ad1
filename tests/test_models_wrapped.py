"""Any nn.Module as a pcoh model (:mod:`pcoh.models.wrapped`): features, adaptation, registry, training, cache."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pcoh import models
from pcoh import files
from pcoh import train as T
from pcoh.experiment import ExperimentConfig, run_experiment
from pcoh.models import ModelOutput, wrap
from pcoh.models.wrapped import adapt_in_channels, adapt_num_classes


class Net(nn.Module):
    """A small network of one's own: conv body, pooling, a hidden layer, a classifier."""

    def __init__(self, in_channels=1, classes=10):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU())
        self.hidden = nn.Linear(32, 12)
        self.head = nn.Linear(12, classes)

    def forward(self, x):
        pooled = self.body(x).mean(dim=(2, 3))
        return self.head(torch.relu(self.hidden(pooled)))


def _net(seed=0, **kwargs):
    torch.manual_seed(seed)
    return Net(**kwargs).eval()


def test_features_default_to_the_input_of_the_classifier():
    net = _net()
    model = wrap(net, image_size=8)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        out = model(x)
        expected = torch.relu(net.hidden(net.body(x).mean(dim=(2, 3))))  # by hand
    assert isinstance(out, ModelOutput) and (model.feature_dim, model.num_classes) == (12, 10)
    torch.testing.assert_close(out.features, expected)
    torch.testing.assert_close(out.logits, net(x))
    assert (model.node, model.capture) == ("head", "input")


def test_features_of_a_named_layer_are_reduced_by_shape():
    net = _net()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        spatial = wrap(net, "body", image_size=8)(x).features  # (n, c, h, w): mean over h, w
        flat = wrap(net, "hidden", image_size=8)(x).features    # (n, d): as it is
        torch.testing.assert_close(spatial, net.body(x).mean(dim=(2, 3)))
        torch.testing.assert_close(flat, net.hidden(net.body(x).mean(dim=(2, 3))))
    tokens = nn.Sequential(nn.Flatten(2), _Transpose(), nn.Linear(1, 5), nn.Flatten(), nn.Linear(5 * 64, 3))
    model = wrap(tokens, "2", in_channels=1, image_size=8)  # (n, t, d) tokens: mean over t
    with torch.no_grad():
        torch.testing.assert_close(model(x).features, tokens[2](tokens[1](tokens[0](x))).mean(dim=1))


class _Transpose(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


def test_registry_names_follow_architecture_and_weights():
    a, b = wrap(_net(0), image_size=8), wrap(_net(0), image_size=8)
    assert a.name == b.name and a.name.startswith("wrap:Net-") and len(a.name) == len("wrap:Net-") + 12
    assert wrap(_net(1), image_size=8).name != a.name  # other weights
    assert wrap(_net(0, classes=9), image_size=8).name != a.name  # other architecture
    assert wrap(_net(0), "body", image_size=8).name != a.name  # other features
    assert wrap(_net(0), name="mine", image_size=8).name.startswith("wrap:mine-")
    assert a.name in models.wrapped.registered()
    assert models.check_name(_net(0), "teacher") == a.name  # a module is wrapped on the way


def test_create_builds_fresh_adapted_copies():
    net = _net(2)
    name = wrap(net, image_size=8).name
    same = models.create(name, num_classes=10, in_channels=1, image_size=8).eval()
    grey = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(same(grey).logits, net(grey))
    assert same.net is not net
    rgb = models.create(name, num_classes=4, in_channels=3, image_size=8, seed=0).eval()
    assert rgb.num_classes == 4 and rgb.net.head.out_features == 4
    with torch.no_grad():  # three copies of a grey image give the grey image's features
        torch.testing.assert_close(rgb(grey.expand(-1, 3, -1, -1)).features, same(grey).features)


def test_adapt_in_channels_rules():
    conv = nn.Conv2d(3, 4, 3)
    net = nn.Sequential(conv)
    w = conv.weight.detach().clone()
    adapt_in_channels(net, 2, rule="mean")
    torch.testing.assert_close(net[0].weight, (w.sum(1, keepdim=True) / 2).expand(-1, 2, -1, -1))
    net = nn.Sequential(nn.Conv2d(3, 4, 3))
    w = net[0].weight.detach().clone()
    adapt_in_channels(net, 5, rule="cycle")
    assert torch.equal(net[0].weight, w[:, [0, 1, 2, 0, 1]])
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        adapt_in_channels(nn.Sequential(nn.Linear(3, 3)), 1)
    with pytest.raises(ValueError, match="grouped"):
        adapt_in_channels(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), 1)
    with pytest.raises(ValueError, match="no nn.Linear"):
        adapt_num_classes(nn.Sequential(nn.Conv2d(3, 4, 3)), 5)


def test_a_copy_of_a_model_has_its_own_features():
    model = wrap(_net(3), image_size=8)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.net.hidden.weight.mul_(2)
        x = torch.randn(2, 1, 8, 8)
        a, b = model(x), twin(x)
    assert not torch.allclose(a.features, b.features)
    torch.testing.assert_close(a.logits, model.net(x))


def test_the_module_run_alone_keeps_no_features():
    net = _net(4)
    model = wrap(net, image_size=8)
    x = torch.randn(2, 1, 8, 8, requires_grad=True)
    net(x)  # outside pcoh: the hook must not hold on to the tensor (and its graph)
    assert not any("_pcoh_features" in vars(m) for m in net.modules())
    model(x)
    assert not any("_pcoh_features" in vars(m) or "_pcoh_capture" in vars(m) for m in net.modules())


def test_a_state_dict_of_the_bare_module_loads():
    net, other = _net(4), _net(5)
    model = wrap(other, image_size=8)
    models.load_benchmark_state(model, {"model": net.state_dict()})
    for k, v in net.state_dict().items():
        assert torch.equal(model.net.state_dict()[k], v)


@pytest.mark.parametrize("call, error, match", [
    (lambda: wrap("net"), TypeError, "torch.nn.Module"),
    (lambda: wrap(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), image_size=8), ValueError, "no nn.Linear"),
    (lambda: wrap(_net(), "bodi", image_size=8), ValueError, "did you mean 'body'"),
    (lambda: wrap(_net(), name="my net", image_size=8), ValueError, "name must be"),
    (lambda: wrap(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), image_size=8), ValueError, "give in_channels="),
    (lambda: wrap(_net(), in_channels=3, image_size=8), ValueError, "cannot take inputs of shape \\(2, 3, 8, 8\\)"),
    (lambda: models.create("wrap:Nothing-123456789abc"), ValueError, "not wrapped in this process"),
    (lambda: models.check_name(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 3)), "students"),
     ValueError, "students: .*cannot take inputs.*wrap the module yourself"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_wrapped_module_trains_is_cached_and_resumes(digits, tmp_path):
    teacher = wrap(_net(6), name="teacher", image_size=8)
    tspec = T.TeacherSpec(model=teacher, train=T.TrainConfig(epochs=2, batch_size=64, lr=1e-2))
    assert tspec.model == teacher.name
    trained = T.train_teacher(tspec, digits, root=tmp_path / "t", quiet=True, device="cpu")
    assert not trained.cached and trained.history[-1]["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    spec = T.StudentSpec(model=wrap(_net(7), name="student", image_size=8), method="pc",
                         train=T.TrainConfig(epochs=2, batch_size=128))
    full = T.train_student(spec, trained, digits, teacher_key=tspec.key(), root=tmp_path / "full", quiet=True,
                           device="cpu")
    again = T.train_student(spec, trained, digits, teacher_key=tspec.key(), root=tmp_path / "full", quiet=True,
                            device="cpu")
    assert again.cached and full.history == again.history
    # Interrupted after its first epoch's checkpoint, then run again: it resumes to the same weights.
    real_save = files.atomic_save

    def crash_after_first_checkpoint(obj, target):
        real_save(obj, target)
        if target.name == "checkpoint.pt":
            raise KeyboardInterrupt

    files.atomic_save = crash_after_first_checkpoint
    try:
        with pytest.raises(KeyboardInterrupt):
            T.train_student(spec, trained, digits, teacher_key=tspec.key(), root=tmp_path / "cut", quiet=True,
                            device="cpu")
    finally:
        files.atomic_save = real_save
    resumed = T.train_student(spec, trained, digits, teacher_key=tspec.key(), root=tmp_path / "cut", quiet=True,
                              device="cpu")
    assert not resumed.cached and len(resumed.history) == 2
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(v, resumed.model.state_dict()[k], atol=1e-6, rtol=0)


def test_wrapped_models_in_the_main_job(digits, tmp_path):
    cfg = ExperimentConfig(teacher=_net(8), students=(_net(9),), methods=("pc",), modes=("class-unaware",),
                           seeds=1, cache=str(tmp_path / "cache"), device="cpu", include_untrained=False,
                           teacher_train=T.TrainConfig(epochs=1), student_train=T.TrainConfig(epochs=1))
    assert cfg.teacher.startswith("wrap:Net-") and cfg.students[0].startswith("wrap:Net-")
    first = run_experiment(cfg, quiet=True, write=False, data=digits)
    second = run_experiment(cfg, quiet=True, write=False, data=digits)
    assert list(first.results["student"]) == [cfg.teacher, cfg.students[0]]
    assert all(run.cached for run in second.students.values()) and second.teacher.cached
    assert first.results["pc_n"].tolist() == second.results["pc_n"].tolist()


# ----------------------------------------------------------------------------- the whole definition in the name
class _Scaled(nn.Module):
    """A plain attribute and a non-persistent buffer, which a state dict does not hold."""

    def __init__(self, scale=1.0, shift=0.0):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 3)
        self.scale = scale
        self.register_buffer("shift", torch.full((4,), float(shift)), persistent=False)

    def forward(self, x):
        return self.fc(self.scale * self.conv(x).mean(dim=(2, 3)) + self.shift)


def _scaled(**kwargs):
    torch.manual_seed(0)
    return _Scaled(**kwargs)


def test_a_plain_attribute_or_a_non_persistent_buffer_changes_the_name():
    base = wrap(_scaled(), image_size=8).name
    scaled = wrap(_scaled(scale=2.0), image_size=8)
    shifted = wrap(_scaled(shift=1.0), image_size=8)
    assert len({base, scaled.name, shifted.name}) == 3
    assert wrap(_scaled(), image_size=8).name == base  # the same definition: the same name
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():  # create(name) builds the module of that name, not the first one wrapped
        torch.testing.assert_close(models.create(scaled.name, num_classes=3, in_channels=1, image_size=8)(x).logits,
                                   _scaled(scale=2.0)(x))


def _exec_class(code: str, filename: str):
    """A class defined the way a notebook cell defines it: compiled from a string, its text in linecache."""
    import linecache

    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    namespace = {"nn": nn, "torch": torch, "__name__": "__main__"}
    exec(compile(code, filename, "exec"), namespace)
    return namespace["Cell"]


_CELL = """
class Cell(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x).{reduce}(dim=(2, 3)))
"""


def test_a_class_edited_in_a_notebook_cell_gets_a_new_name():
    names = []
    for i, reduce in enumerate(("mean", "amax")):
        cls = _exec_class(_CELL.format(reduce=reduce), f"<ipython-input-{i}-cell>")
        torch.manual_seed(0)
        names.append(wrap(cls(), image_size=8).name)
    assert names[0] != names[1]


def test_a_class_whose_code_cannot_be_read_is_refused_naming_it():
    namespace = {"nn": nn, "torch": torch, "__name__": "__main__"}
    exec(compile(_CELL.format(reduce="mean"), "<nowhere>", "exec"), namespace)  # no text kept anywhere
    with pytest.raises(ValueError, match=r"__main__\.Cell.*cannot be read"):
        wrap(namespace["Cell"](), image_size=8)
