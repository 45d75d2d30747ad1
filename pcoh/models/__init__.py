"""Registry of teacher and student architectures.

Every model maps an image batch ``(n, in_channels, h, w)`` to a :class:`ModelOutput`
holding the pooled penultimate ``features`` ``(n, feature_dim)`` -- the representation
that perception-coherence distillation compares -- and the ``logits``
``(n, num_classes)``. Every model has int attributes ``feature_dim``, ``num_classes``
and ``in_channels`` and raises :class:`ValueError` when fed an input with the wrong
number of channels.

>>> import torch
>>> from pcoh import models
>>> net = models.create("digits_cnn", num_classes=10, in_channels=1, image_size=8)
>>> out = net(torch.zeros(2, 1, 8, 8))
>>> out.features.shape, out.logits.shape
(torch.Size([2, 32]), torch.Size([2, 10]))

Models
------
CIFAR architectures of the CRD benchmark (Tian, Krishnan & Isola, "Contrastive
Representation Distillation", ICLR 2020), counted with ``num_classes=100,
in_channels=3``; digits models counted with ``num_classes=10, in_channels=1,
image_size=8``, with :func:`count_parameters` (all parameters; batch-norm running
statistics are buffers and not counted).

=============  ===========  ===========  ===========  ==========
name           num_classes  in_channels  feature_dim  parameters
=============  ===========  ===========  ===========  ==========
digits_cnn     10           1            32           14,458
digits_resnet  10           1            128          601,546
mlp            10           1            32           6,570
mobilenetv2    100          3            1280         812,836
resnet20       100          3            64           278,324
resnet32x4     100          3            256          7,433,860
resnet50       100          3            2048         23,705,252
resnet56       100          3            64           861,620
resnet8x4      100          3            256          1,233,540
shufflenetv1   100          3            960          949,258
shufflenetv2   100          3            1024         1,355,528
vgg13          100          3            512          9,462,180
vgg8           100          3            512          3,965,028
wrn_16_2       100          3            128          703,284
wrn_40_2       100          3            128          2,255,156
=============  ===========  ===========  ===========  ==========

``digits_resnet`` is the digits teacher; ``digits_cnn`` and ``mlp`` are its students
(over 40x and 90x fewer parameters, 32-wide instead of 128-wide features). The CIFAR
models are the benchmark's teachers (``resnet32x4``, ``wrn_40_2``, ``resnet56``,
``vgg13``, ``resnet50``) and students (``resnet8x4``, ``wrn_16_2``, ``resnet20``,
``vgg8``, ``mobilenetv2``, ``shufflenetv1``, ``shufflenetv2``).

Benchmark checkpoints
---------------------
The CIFAR models name their modules as the benchmark's code does (:data:`BENCHMARK_NAMES`
gives the benchmark's name of each model), so its published teachers
(``ckpt_epoch_240.pth``: a dict whose ``'model'`` entry is the state dict) load as they
are: ``load_benchmark_state(model, torch.load(path, weights_only=True))``. A checkpoint
that does not fit raises ``ValueError`` naming the missing, unexpected and mis-shaped keys.

Your own models
---------------
Besides these names, :func:`create` takes

- ``tv:<name>`` for any torchvision classification model (``tv:resnet18``,
  ``tv:mobilenet_v3_small``, ``tv:vit_b_16``), optionally with the layer whose output are the
  features (``tv:resnet18@layer3``), and ``weights=`` for torchvision's published weights
  (:mod:`pcoh.models.tv`);
- ``wrap:<name>-<digest>``, the name :func:`wrap` gives any ``nn.Module`` of your own
  (:mod:`pcoh.models.wrapped`).

Both return ``ModelOutput(features, logits)`` like the models above; :func:`check_name` accepts
all three kinds of names (and a wrapped model itself) where a model is named.

Credits: He et al. 2016 (ResNet); Zagoruyko & Komodakis 2016 (wide ResNet); Simonyan &
Zisserman 2015 (VGG); Sandler et al. 2018 (MobileNetV2); Zhang et al. 2018 (ShuffleNet);
Ma et al. 2018 (ShuffleNetV2); Tian et al. 2020 (benchmark layouts). See
:mod:`pcoh.models.cifar` and :mod:`pcoh.models.digits`.
"""
from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from typing import Callable

import torch
from torch import nn

from .. import files as _files

from .._checks import as_path, check_bool, check_module, check_seed
from . import tv
from ._base import Backbone, ModelOutput
from .cifar import (
    mobilenetv2, resnet8x4, resnet20, resnet32x4, resnet50, resnet56, shufflenetv1, shufflenetv2, vgg8, vgg13,
    wrn_16_2, wrn_40_2,
)
from .digits import digits_cnn, digits_resnet, mlp
from .wrapped import Wrapped, is_wrapped, wrap
from .wrapped import build as _wrapped_build

__all__ = [
    "Backbone",
    "BENCHMARK_NAMES",
    "MODELS",
    "ModelOutput",
    "PARAMETER_COUNTS",
    "Wrapped",
    "available",
    "check_name",
    "count_parameters",
    "create",
    "load_benchmark_state",
    "load_weights",
    "published_preprocessing",
    "tv",
    "wrap",
]

#: Registry: model name -> builder ``(num_classes, in_channels, image_size, **kwargs)``.
MODELS: dict[str, Callable[..., Backbone]] = {
    "digits_cnn": digits_cnn,
    "digits_resnet": digits_resnet,
    "mlp": mlp,
    "mobilenetv2": mobilenetv2,
    "resnet20": resnet20,
    "resnet32x4": resnet32x4,
    "resnet50": resnet50,
    "resnet56": resnet56,
    "resnet8x4": resnet8x4,
    "shufflenetv1": shufflenetv1,
    "shufflenetv2": shufflenetv2,
    "vgg13": vgg13,
    "vgg8": vgg8,
    "wrn_16_2": wrn_16_2,
    "wrn_40_2": wrn_40_2,
}

#: Our name of each CIFAR model -> the name of the same model in the benchmark's code
#: (RepDistiller ``models/``), whose checkpoints it loads.
BENCHMARK_NAMES: dict[str, str] = {
    "mobilenetv2": "MobileNetV2",
    "resnet20": "resnet20",
    "resnet32x4": "resnet32x4",
    "resnet50": "ResNet50",
    "resnet56": "resnet56",
    "resnet8x4": "resnet8x4",
    "shufflenetv1": "ShuffleV1",
    "shufflenetv2": "ShuffleV2",
    "vgg13": "vgg13",
    "vgg8": "vgg8",
    "wrn_16_2": "wrn_16_2",
    "wrn_40_2": "wrn_40_2",
}

#: The module docstring's table as data: name -> (num_classes, in_channels,
#: feature_dim, parameters). Digits models are counted at ``image_size=8`` (only the
#: MLP depends on it). ``tests/test_models.py`` checks docstring, dict and real counts.
PARAMETER_COUNTS: dict[str, tuple[int, int, int, int]] = {
    "digits_cnn": (10, 1, 32, 14_458),
    "digits_resnet": (10, 1, 128, 601_546),
    "mlp": (10, 1, 32, 6_570),
    "mobilenetv2": (100, 3, 1280, 812_836),
    "resnet20": (100, 3, 64, 278_324),
    "resnet32x4": (100, 3, 256, 7_433_860),
    "resnet50": (100, 3, 2048, 23_705_252),
    "resnet56": (100, 3, 64, 861_620),
    "resnet8x4": (100, 3, 256, 1_233_540),
    "shufflenetv1": (100, 3, 960, 949_258),
    "shufflenetv2": (100, 3, 1024, 1_355_528),
    "vgg13": (100, 3, 512, 9_462_180),
    "vgg8": (100, 3, 512, 3_965_028),
    "wrn_16_2": (100, 3, 128, 703_284),
    "wrn_40_2": (100, 3, 128, 2_255_156),
}


def available() -> list[str]:
    """Names of all registered models, sorted.

    Returns
    -------
    list of str
    """
    return sorted(MODELS)


def check_name(value, argument: str = "model") -> str:
    """The model name that ``value`` stands for, checked: what :func:`create` accepts.

    Parameters
    ----------
    value : str or torch.nn.Module
        A built-in name (:func:`available`), ``tv:<torchvision model>[@<layer>]``, a name made by
        :func:`wrap`, or a module: a :class:`Wrapped` model gives its name, any other module is
        wrapped first (:func:`wrap`, default options).
    argument : str
        How error messages name the value (e.g. ``"teacher"``).

    Returns
    -------
    str

    Raises
    ------
    TypeError
        Neither a string nor a module.
    ValueError
        An unknown name (the message lists the built-in names and the other kinds).
    """
    if isinstance(value, nn.Module):
        try:
            return wrap(value).name
        except ValueError as err:
            raise ValueError(f"{argument}: {err} (wrap the module yourself, e.g. pcoh.models.wrap(module, "
                             "image_size=...), and give the wrapped model)") from None
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a model name (a string) or a torch.nn.Module, got {type(value).__name__}")
    try:
        if tv.is_tv(value):
            return tv.check_name(value)
        if is_wrapped(value):
            from .wrapped import _REGISTRY

            if value not in _REGISTRY:
                raise ValueError(f"model {value!r} was not wrapped in this process (call pcoh.models.wrap(module) "
                                 "and use its name)")
            return value
    except ValueError as err:
        raise ValueError(f"{argument}: {err}") from None
    if value not in MODELS:
        close = difflib.get_close_matches(value, MODELS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{argument}: unknown model {value!r}{hint}; expected one of {available()}, "
                         "tv:<torchvision model> (e.g. tv:resnet18) or a module wrapped by pcoh.models.wrap")
    return value


def published_preprocessing(name: str, weights) -> dict:
    """The preprocessing that model ``name``'s published ``weights`` were trained with, as
    :func:`pcoh.data.load` options (``image_size``, ``resize``, ``mean``, ``std``, ``interpolation``).

    Raises
    ------
    ValueError
        ``name`` is not a ``tv:`` model, or it has no such weights.
    """
    return tv.preprocessing(name, weights)


def create(
    name: str,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    *,
    seed: int | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model.

    Parameters
    ----------
    name : str
        One of :func:`available`, ``tv:<torchvision model>[@<layer>]`` (:mod:`pcoh.models.tv`) or a
        name made by :func:`wrap`.
    num_classes : int
        Number of classes, ``>= 2``.
    in_channels : int
        Input channels, ``>= 1`` (1 for the digits, 3 for CIFAR).
    image_size : int
        Input height and width, ``>= 8``. Convolutional models accept any size; the
        ``mlp`` needs it to size its first layer.
    seed : int, optional
        If given, initialise the weights from this seed without disturbing the global
        torch random state, so the same seed always gives the same weights.
    **kwargs
        Architecture options forwarded to the builder (e.g. ``widths`` for
        ``digits_cnn``, ``hidden`` for ``mlp``, ``dropout`` for the WRNs; ``weights`` and
        ``features`` for ``tv:`` models, see :func:`pcoh.models.tv.build`).

    Returns
    -------
    torch.nn.Module
        A :class:`Backbone` whose ``forward(x)`` returns :class:`ModelOutput` with
        ``features`` ``(n, feature_dim)`` and ``logits`` ``(n, num_classes)``.

    Raises
    ------
    TypeError
        ``name`` is not a string, or an argument is of the wrong type.
    ValueError
        For an unknown ``name`` (the message lists the valid names) or an invalid
        ``num_classes``, ``in_channels`` or ``image_size``.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a model name (a string), got {type(name).__name__}; valid names are: "
                        f"{', '.join(available())}, tv:<torchvision model> or a name made by pcoh.models.wrap")
    seed = check_seed(seed)
    if tv.is_tv(name):
        builder = functools.partial(tv.build, name)
    elif is_wrapped(name):
        if kwargs:
            raise TypeError(f"a wrapped model takes no architecture options, got {sorted(kwargs)}")
        builder = functools.partial(_wrapped_build, name)
    elif name not in MODELS:
        close = difflib.get_close_matches(name, MODELS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown model {name!r}{hint}; valid names are: {', '.join(available())}, "
            "tv:<torchvision model> or a name made by pcoh.models.wrap"
        )
    else:
        builder = MODELS[name]
    if seed is None:
        return builder(num_classes=num_classes, in_channels=in_channels,
                       image_size=image_size, **kwargs)
    # fork_rng restores the caller's CPU random state afterwards.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(num_classes=num_classes, in_channels=in_channels,
                       image_size=image_size, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (buffers such as BN statistics excluded).

    Parameters
    ----------
    model : torch.nn.Module
    trainable_only : bool
        Count only parameters with ``requires_grad`` (all of them by default).

    Returns
    -------
    int
    """
    check_module(model, "model")
    trainable_only = check_bool(trainable_only, "trainable_only")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _key_list(keys: list, limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > limit else ''})"


def load_benchmark_state(model: nn.Module, obj) -> nn.Module:
    """Load a checkpoint of the CRD benchmark (or a plain state dict) into ``model``, strictly.

    Parameters
    ----------
    model : torch.nn.Module
        The model to fill, e.g. ``create("resnet32x4", num_classes=100)``.
    obj : mapping
        What ``torch.load`` returned: the benchmark's checkpoint, a dict whose ``'model'``
        entry is the state dict (``ckpt_epoch_240.pth``, also the format of
        :mod:`pcoh.train`'s ``final.pt``), or a state dict itself. Keys all prefixed with
        ``module.`` (a model saved inside ``DataParallel``) are accepted without it. For a
        :class:`Wrapped` model (``tv:`` and wrapped models), the state dict of the bare module
        (e.g. ``torchvision.models.resnet18(num_classes=10).state_dict()``) is accepted too.

    Returns
    -------
    torch.nn.Module
        ``model``, its parameters and buffers replaced.

    Raises
    ------
    TypeError
        If ``obj`` is not a mapping, or holds a value that is not a tensor.
    ValueError
        If the keys or shapes differ from ``model``'s: the message names the missing,
        unexpected and mis-shaped keys (nothing is loaded then).

    Notes
    -----
    Reading the file is the caller's business (``torch.load(path, weights_only=True)``):
    this function only checks and copies, so it can be tested without files.
    """
    check_module(model, "model")
    state = obj
    for key in ("model", "state_dict"):  # the benchmark's layout; PyTorch Lightning's
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            state = obj[key]
            break
    if not isinstance(state, Mapping):
        raise TypeError(
            f"a checkpoint must be a state dict or a dict with a 'model' state dict, got {type(obj).__name__}"
        )
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    prefix = getattr(model, "state_prefix", "")
    if prefix and state and not any(isinstance(k, str) and k.startswith(prefix) for k in state):
        # saved from the bare module (e.g. torchvision's resnet18().state_dict()): its keys live under the prefix here
        state = {f"{prefix}{k}": v for k, v in state.items()}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"checkpoint entry {key!r} must be a tensor, got {type(value).__name__}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} instead of {tuple(own[k].shape)}"
        for k in own if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        name = getattr(model, "name", type(model).__name__)
        parts = [f"the checkpoint does not fit model {name!r}:"]
        if missing:
            parts.append(f"missing keys {_key_list(missing)};")
        if unexpected:
            parts.append(f"unexpected keys {_key_list(unexpected)};")
        if wrong:
            parts.append(f"wrong shapes {_key_list(wrong, 4)} (a different num_classes or model?);")
        raise ValueError(" ".join(parts).rstrip(";"))
    model.load_state_dict(state, strict=True)
    return model


def load_weights(model: nn.Module, path, *, what: str = "checkpoint") -> dict:
    """Load a user's weights file into ``model``, strictly, safely.

    Parameters
    ----------
    model : nn.Module
    path : path-like
        A state dict, or a dict holding one under ``"model"`` (the CIFAR-100 distillation
        benchmark's layout) or ``"state_dict"``; keys saved from ``DataParallel`` (``module.``
        prefix) are accepted.
    what : str
        How error messages name the file (e.g. ``"teacher_checkpoint"``).

    Returns
    -------
    dict
        The whole loaded object when it was a dict (e.g. with ``"history"``), else ``{}``.

    Raises
    ------
    FileNotFoundError, UnsafeCheckpointError, CorruptFileError
        As :func:`pcoh.files.load_checkpoint`.
    ValueError
        The file holds no state dict, or its keys or shapes do not match ``model``: the message
        names the missing and unexpected keys and the mismatched shapes.
    """
    check_module(model, "model")
    path = as_path(path)
    if not isinstance(what, str):
        raise TypeError(f"what must be a string (how messages name the file), got {type(what).__name__}")
    try:
        obj = _files.load_checkpoint(path, map_location="cpu")
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}: no such file: {path}") from None
    except ValueError as err:
        raise type(err)(f"{what}: {err}") from None
    # load_benchmark_state: the one check of keys and shapes
    try:
        load_benchmark_state(model, obj)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: {path}: {err}") from None
    return obj if isinstance(obj, dict) else {}
