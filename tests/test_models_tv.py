"""torchvision models as pcoh models (:mod:`pcoh.models.tv`): shapes, layers, sizes, published weights."""
from __future__ import annotations

import os
import time
import urllib.error

import pytest
import torch
import torchvision.models as tvm

from pcoh import models
from pcoh import files
from pcoh.models import ModelOutput, tv

#: Seconds a torchvision model may take to build in the shape test; the ones predicted slower (from
#: their parameter count and resnet18's build time measured here) are skipped with that prediction,
#: those of at most 3 M parameters never. PCOH_TV_BUDGET=1 tests every model that builds in a second.
BUDGET = float(os.environ.get("PCOH_TV_BUDGET", "0.1"))


@pytest.fixture(scope="module")
def seconds_per_parameter():
    """Build time per parameter on this machine, measured once on resnet18 (11.7 M parameters)."""
    start = time.perf_counter()
    tvm.resnet18()
    return (time.perf_counter() - start) / tvm.ResNet18_Weights.DEFAULT.meta["num_params"]


@pytest.mark.parametrize("arch", tvm.list_models(module=tvm))
def test_every_torchvision_model_gives_model_output(arch, seconds_per_parameter):
    params = tvm.get_model_weights(arch).DEFAULT.meta["num_params"]
    predicted = params * seconds_per_parameter
    if predicted > BUDGET and params > 3_000_000:  # the smallest ones are tested on any machine
        pytest.skip(f"{arch}: {params / 1e6:.1f} M parameters, about {predicted:.2f} s to build here, above the "
                    f"{BUDGET} s budget per model of this test")
    for channels in (1, 3):
        try:
            model = models.create(f"tv:{arch}", num_classes=5, in_channels=channels, image_size=32, seed=0)
        except ValueError as err:
            assert "cannot" in str(err) and arch in str(err)
            pytest.skip(f"{arch}: {err}")
        assert (model.num_classes, model.in_channels) == (5, channels)
        model.train()  # batch statistics: two samples
        with torch.no_grad():
            out = model(torch.randn(2, channels, 32, 32))
        assert isinstance(out, ModelOutput)
        assert out.features.shape == (2, model.feature_dim) and out.logits.shape == (2, 5)
        assert torch.isfinite(out.features).all() and torch.isfinite(out.logits).all()


def test_features_are_the_input_of_the_classifier():
    model = models.create("tv:resnet18", num_classes=4, in_channels=3, image_size=32, seed=1).eval()
    net = model.net
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        # Independent reference: the ResNet's own forward, written out, up to its fc.
        h = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        h = net.layer4(net.layer3(net.layer2(net.layer1(h))))
        pooled = torch.flatten(net.avgpool(h), 1)
    torch.testing.assert_close(out.features, pooled)
    torch.testing.assert_close(out.logits, net.fc(pooled))
    assert model.feature_dim == 512


def test_features_of_a_named_layer():
    a = models.create("tv:resnet18@layer3", num_classes=4, image_size=32, seed=2).eval()
    b = models.create("tv:resnet18", num_classes=4, image_size=32, seed=2, features="layer3").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = a(x)
        net = a.net
        h = net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x)))))))
    assert a.feature_dim == 256
    torch.testing.assert_close(out.features, h.mean(dim=(2, 3)))
    torch.testing.assert_close(b(x).features, out.features)


def test_vit_token_features_and_built_size():
    model = models.create("tv:vit_b_32", num_classes=3, image_size=32, seed=0)
    assert model.fixed_size and model.feature_dim == 768
    with pytest.raises(ValueError, match="32x32 inputs only"):
        model(torch.zeros(1, 3, 64, 64))


def test_seeded_fresh_weights():
    a, b, c = (models.create("tv:mobilenet_v3_small", num_classes=3, seed=s) for s in (0, 0, 1))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("name, kwargs, match", [
    ("tv:resnet19", {}, "did you mean tv:resnet18"),
    ("tv:resnet18@", {}, "name a layer after '@'"),
    ("tv:resnet18@layer9", {}, "did you mean 'layer4'"),
    ("tv:resnet18@layer3", {"features": "layer2"}, "named twice"),
    ("tv:vit_b_16", {"image_size": 40}, "indivisible by patch size"),
    ("tv:squeezenet1_1", {"image_size": 8}, "cannot take inputs of shape \\(2, 3, 8, 8\\)"),
    ("tv:resnet18", {"weights": "IMAGENET9"}, "IMAGENET1K_V1"),
])
def test_bad_names_and_inputs(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.create(name, num_classes=3, **kwargs)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """torch.hub's folder in tmp_path, and every download failing as without network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    calls = []

    def no_network(url, dst, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return calls


def test_published_size_is_checked_before_any_download(offline):
    with pytest.raises(ValueError, match="takes only 224x224 inputs"):
        models.create("tv:vit_b_16", num_classes=3, image_size=32, weights="DEFAULT")
    assert offline == []


def test_missing_weights_offline_name_the_file_and_where_to_put_it(offline, tmp_path):
    weights = tvm.ResNet18_Weights.IMAGENET1K_V1
    with pytest.raises(tv.WeightsNotFoundError) as info:
        models.create("tv:resnet18", weights="IMAGENET1K_V1")
    path = tmp_path / "torch" / "hub" / "checkpoints" / os.path.basename(weights.url)
    message = str(info.value)
    assert weights.url in message and str(path) in message and "name resolution" in message
    assert offline == [weights.url] and info.value.path == path
    assert isinstance(info.value, FileNotFoundError)


def test_weights_copied_into_torch_hub_load_offline(offline):
    weights = tvm.ResNet18_Weights.DEFAULT
    torch.manual_seed(3)
    published = tvm.resnet18().state_dict()  # stands in for the published file
    path = tv.weights_path(weights)
    path.parent.mkdir(parents=True)
    torch.save(published, path)
    same = models.create("tv:resnet18", num_classes=1000, weights="DEFAULT")
    for k, v in published.items():
        assert torch.equal(same.net.state_dict()[k], v), k
    grey = models.create("tv:resnet18", num_classes=7, in_channels=1, weights="IMAGENET1K_V1", seed=0)
    assert grey.num_classes == 7 and grey.net.fc.out_features == 7
    torch.testing.assert_close(grey.net.conv1.weight, published["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(grey.net.layer4[1].conv2.weight, published["layer4.1.conv2.weight"])
    assert offline == []  # the file was there: nothing downloaded


def test_a_weights_file_that_would_run_code_is_refused(offline):
    path = tv.weights_path(tvm.ResNet18_Weights.DEFAULT)
    path.parent.mkdir(parents=True)
    torch.save({"fc.weight": torch.zeros(2), "thing": os.getcwd}, path)  # a function: unsafe to unpickle
    with pytest.raises(files.UnsafeCheckpointError):
        models.create("tv:resnet18", weights="DEFAULT")


def test_published_preprocessing_is_the_weights_transforms():
    t = tvm.ResNet18_Weights.IMAGENET1K_V1.transforms()
    got = models.published_preprocessing("tv:resnet18", "IMAGENET1K_V1")
    assert got == {"image_size": t.crop_size[0], "resize": t.resize_size[0], "mean": tuple(t.mean),
                   "std": tuple(t.std), "interpolation": "bilinear"}
    assert models.published_preprocessing("tv:efficientnet_b0", "DEFAULT")["interpolation"] == "bicubic"
    with pytest.raises(ValueError, match="tv: models"):
        models.published_preprocessing("digits_cnn", "DEFAULT")


def test_check_name():
    assert models.check_name("tv:resnet18@layer2", "teacher") == "tv:resnet18@layer2"
    assert models.check_name("digits_cnn") == "digits_cnn"
    with pytest.raises(ValueError, match="students: unknown model 'resnet_18'"):
        models.check_name("resnet_18", "students")
    with pytest.raises(ValueError, match="teacher: .*not wrapped in this process"):
        models.check_name("wrap:Net-000000000000", "teacher")
    with pytest.raises(TypeError, match="teacher must be a model name"):
        models.check_name(3, "teacher")
    assert len(tv.available()) == len(tvm.list_models(module=tvm)) and "tv:resnet18" in tv.available()
