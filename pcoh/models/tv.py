"""torchvision's classification models as pcoh models: ``tv:<name>`` (``tv:resnet18``, ``tv:vit_b_16``).

Any name of ``torchvision.models.list_models(module=torchvision.models)`` works as a teacher or a
student, in :func:`pcoh.models.create`, on the command line (``--teacher tv:resnet18``) and in
config files. The network is built by ``torchvision.models.get_model`` and becomes a
:class:`~pcoh.models.wrapped.Wrapped` model: the features are the input of its classifier (the
model's own split: ``fc`` of a ResNet, the last ``Linear`` of ``classifier``, ``heads.head`` of a
ViT, ...), or the output of a layer named after ``@``: ``tv:resnet18@layer3`` (any name of
``model.named_modules()``; 4-D outputs are averaged over space, token sequences over tokens).

Adapted to the data as the built-in models are:

- ``num_classes``: given to torchvision's builder; with published weights (1,000 ImageNet
  classes) the classifier is replaced by a fresh one when the data set has other classes;
- ``in_channels``: the first convolution gets the data's channels (fresh weights: channel ``j``
  starts as the old channel ``j mod 3``; published weights: the mean kernel on every channel,
  scaled so that a grey image repeated gives what its three-channel copy gave);
- input size: convolutional models take any size their pooling allows; the ViTs and MaxViT are
  built for ``image_size`` (a ViT needs a multiple of its patch size); with published weights
  they take only their published size. A model that cannot take the input raises a
  :class:`ValueError` naming the model, the input shape and the reason.

Published weights
-----------------
``weights="IMAGENET1K_V1"`` (or ``"DEFAULT"``, or any name of
``torchvision.models.get_model_weights(name)``) loads torchvision's published weights. They are
read from torch.hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``, by default
``~/.cache/torch/hub/checkpoints``) when the file is there, so a machine without network works
once the file has been copied there; otherwise torchvision downloads it. When neither works,
:class:`WeightsNotFoundError` names the file to fetch and where to put it. The file is checked with
``torch.load(weights_only=True)`` before torchvision reads it. :func:`preprocessing` gives the
weights' published preprocessing (resize, centre crop, mean and std), which
:func:`pcoh.data.load` applies to image folders.
"""
from __future__ import annotations

import contextlib
import difflib
import socket
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

import torch

from .._checks import check_count, check_str
from .wrapped import Wrapped, adapt_in_channels, adapt_num_classes

__all__ = ["PREFIX", "WeightsNotFoundError", "available", "is_tv", "check_name", "weights_enum", "weights_path",
           "fetch_weights", "preprocessing", "build"]

PREFIX = "tv:"

#: torchvision builder modules whose models are built for one input size, and the keyword that sets it.
_SIZE_KEYWORD = {"torchvision.models.vision_transformer": "image_size", "torchvision.models.maxvit": "input_size"}
#: Builder modules with auxiliary classifiers (their training-mode output is a tuple): built without them.
_AUX = ("torchvision.models.googlenet", "torchvision.models.inception")
#: Seconds a download may wait for the network before the offline message.
DOWNLOAD_TIMEOUT = 30


class WeightsNotFoundError(FileNotFoundError):
    """Published weights are not in torch.hub's folder and could not be downloaded.

    Attributes
    ----------
    path : pathlib.Path
        Where the file is expected.
    url : str
        Where torchvision downloads it from.
    """

    def __init__(self, message: str, path: Path, url: str):
        super().__init__(message)
        self.path, self.url = Path(path), url

    def __str__(self) -> str:
        return str(self.args[0])


@lru_cache(maxsize=1)
def _names() -> tuple:
    import torchvision.models as tvm

    return tuple(tvm.list_models(module=tvm))


def available() -> list[str]:
    """``tv:<name>`` for every torchvision classification model, sorted."""
    return [PREFIX + n for n in _names()]


def is_tv(name) -> bool:
    """Whether ``name`` is a string starting with ``tv:``."""
    return isinstance(name, str) and name.startswith(PREFIX)


def _split(name: str) -> tuple:
    """``"tv:resnet18@layer3"`` -> ``("resnet18", "layer3")``; the node is None without ``@``."""
    arch, _, node = name[len(PREFIX):].partition("@")
    return arch, (node or None)


def check_name(name: str) -> str:
    """``name`` if it is ``tv:<torchvision classification model>[@<layer>]``.

    Raises
    ------
    ValueError
        Any other name (the message suggests the closest model names).
    TypeError
        ``name`` is not a string.
    """
    check_str(name, "name", empty=True)
    arch, node = _split(name)
    if arch not in _names():
        close = difflib.get_close_matches(arch, _names(), n=3)
        hint = f" (did you mean {', '.join(PREFIX + c for c in close)}?)" if close else ""
        raise ValueError(f"unknown torchvision model {name!r}{hint}; a tv: name is one of "
                         f"torchvision.models.list_models(module=torchvision.models), e.g. tv:resnet18")
    if "@" in name and not node:
        raise ValueError(f"model {name!r}: name a layer after '@' (e.g. tv:resnet18@layer3), or leave '@' out")
    return name


def weights_enum(name: str, weights):
    """The torchvision weights of model ``name`` called ``weights`` (e.g. ``"IMAGENET1K_V1"``, ``"DEFAULT"``).

    Parameters
    ----------
    name : str
        ``tv:<name>`` (a layer after ``@`` is ignored) or the bare torchvision name.
    weights : str or torchvision.models.WeightsEnum

    Raises
    ------
    ValueError
        An unknown name (the message lists the model's weights).
    TypeError
        ``weights`` is not a string or a weights enum.
    """
    check_str(name, "name", empty=True)
    import torchvision.models as tvm

    arch = _split(name)[0] if is_tv(name) else name
    if arch not in _names():
        raise ValueError(f"published weights exist only for tv: models (torchvision's), got model {name!r}")
    enum = tvm.get_model_weights(arch)
    if isinstance(weights, enum):
        return weights
    if not isinstance(weights, str):
        raise TypeError(f"weights must be a name such as 'DEFAULT' or 'IMAGENET1K_V1', got {type(weights).__name__}")
    key = weights.split(".")[-1]  # "ResNet18_Weights.IMAGENET1K_V1" works too
    if key not in enum.__members__:
        raise ValueError(f"{PREFIX}{arch} has no published weights {weights!r}; "
                         f"expected one of {list(enum.__members__)}")
    return enum[key]


def weights_path(weights) -> Path:
    """Where torchvision keeps (and looks for) the file of ``weights``: torch.hub's checkpoint folder."""
    if not isinstance(getattr(weights, "url", None), str):
        raise TypeError(f"weights must be torchvision weights (a WeightsEnum member, see weights_enum), "
                        f"got {type(weights).__name__} {weights!r}")
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


@contextlib.contextmanager
def _timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def fetch_weights(weights, *, progress: bool = True) -> Path:
    """The file of published ``weights``, downloaded into torch.hub's folder if it is not there.

    Returns
    -------
    pathlib.Path
        The file, checked to hold only tensors and containers (``torch.load(weights_only=True)``).

    Raises
    ------
    WeightsNotFoundError
        (a :class:`FileNotFoundError`) Not there and the download failed: the message names the
        URL to fetch and the path to put the file at.
    pcoh.files.UnsafeCheckpointError, pcoh.files.CorruptFileError
        The file is there but holds other pickled objects, or is damaged.
    """
    from .. import files as _files

    path = weights_path(weights)
    if not path.is_file():
        match = torch.hub.HASH_REGEX.search(path.name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _timeout(DOWNLOAD_TIMEOUT):
                torch.hub.download_url_to_file(weights.url, str(path), match.group(1) if match else None,
                                               progress=progress)
        except Exception as err:  # no network, a proxy, a refused folder, a wrong checksum: all the same to the user
            reason = " ".join(str(err).split()) or type(err).__name__
            raise WeightsNotFoundError(
                f"the published weights {weights} are not in {path.parent} and could not be downloaded "
                f"({type(err).__name__}: {reason}). Fetch {weights.url} on a machine with network access and put "
                f"the file at {path} (torch.hub's checkpoint folder; set TORCH_HOME to use another), then run "
                "again", path, weights.url) from None
    _files.load_checkpoint(path)  # raises on a file that would run code or is damaged
    return path


def preprocessing(name: str, weights) -> dict:
    """The published preprocessing of ``weights`` (``weights.transforms()``) as options of :func:`pcoh.data.load`.

    Returns
    -------
    dict
        ``image_size`` (the centre crop), ``resize`` (the shorter side before cropping), ``mean``,
        ``std`` (tuples of 3 floats) and ``interpolation`` (``"bilinear"``, ``"bicubic"``, ...).
    """
    t = weights_enum(name, weights).transforms()
    return {"image_size": int(t.crop_size[0]), "resize": int(t.resize_size[0]),
            "mean": tuple(float(v) for v in t.mean), "std": tuple(float(v) for v in t.std),
            "interpolation": t.interpolation.value}


def build(name: str, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, *,
          weights=None, features: Optional[str] = None, **kwargs) -> Wrapped:
    """Build ``tv:<name>`` for the data (see the module docstring).

    Parameters
    ----------
    name : str
        ``tv:<torchvision name>``, optionally ``@<layer>``.
    num_classes, in_channels, image_size : int
    weights : str, optional
        Published weights (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ...); default fresh weights.
    features : str, optional
        The layer whose output are the features (same as ``@<layer>``; not both).
    **kwargs
        Passed to ``torchvision.models.get_model`` (e.g. ``dropout`` of the ViTs).

    Returns
    -------
    Wrapped

    Raises
    ------
    ValueError
        Unknown model, weights or layer; an input the model cannot take.
    WeightsNotFoundError
        See :func:`fetch_weights`.
    """
    import torchvision.models as tvm

    check_name(name)
    num_classes = check_count(num_classes, "num_classes", 2)
    in_channels = check_count(in_channels, "in_channels", 1)
    image_size = check_count(image_size, "image_size", 8)
    arch, node = _split(name)
    if features is not None and node is not None and features != node:
        raise ValueError(f"model {name!r}: the features layer is named twice ({node!r} and features={features!r})")
    features = features if features is not None else node
    module = tvm.get_model_builder(arch).__module__
    size_keyword = _SIZE_KEYWORD.get(module)
    kw = dict(kwargs)
    if module in _AUX:
        kw.setdefault("aux_logits", False)
    enum = weights_enum(arch, weights) if weights is not None else None
    if enum is not None:
        published = int(enum.meta["min_size"][0])
        if size_keyword is not None and image_size != published:
            raise ValueError(f"model {name!r} with weights {enum} takes only {published}x{published} inputs "
                             f"(the size its weights were trained at), got image_size={image_size}")
        if image_size < published:
            raise ValueError(f"model {name!r} with weights {enum} needs inputs of at least {published}x{published}, "
                             f"got image_size={image_size}")
        fetch_weights(enum)
    else:
        kw.setdefault("num_classes", num_classes)
        if size_keyword is not None:
            kw.setdefault(size_keyword, image_size if size_keyword == "image_size" else (image_size, image_size))
        if module in _AUX:
            kw.setdefault("init_weights", True)  # torchvision's initialisation, without its warning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. a ViT's notes on its kwargs
            net = tvm.get_model(arch, weights=enum, **kw)
    except (ValueError, AssertionError, RuntimeError, TypeError) as err:
        first = " ".join(str(err).split("\n")[0].split()) or type(err).__name__
        raise ValueError(f"model {name!r} cannot be built for {in_channels}x{image_size}x{image_size} inputs "
                         f"and {num_classes} classes: {first}") from None
    if enum is not None:
        adapt_num_classes(net, num_classes)
    adapt_in_channels(net, in_channels, rule="mean" if enum is not None else "cycle")
    try:
        return Wrapped(net, name=name, features=features, in_channels=in_channels, image_size=image_size,
                       fixed_size=size_keyword is not None)
    except ValueError as err:
        smallest = int(tvm.get_model_weights(arch).DEFAULT.meta["min_size"][0])
        if "cannot take inputs" in str(err) and image_size < smallest:
            raise ValueError(f"{err} (torchvision's published weights of {arch} take inputs of at least "
                             f"{smallest}x{smallest})") from None
        raise
