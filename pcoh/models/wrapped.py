"""Any :class:`torch.nn.Module` as a pcoh model: features from one of its layers, logits from its output.

:func:`wrap` turns a network of your own into a :class:`Wrapped` model, a
:class:`~pcoh.models.Backbone` whose ``forward(x)`` returns ``ModelOutput(features, logits)``
like every built-in model, so that the training loop, the run cache, the evaluation and the
notebooks accept it. :mod:`pcoh.models.tv` builds torchvision's classification models the same way.

Features and logits
-------------------
``logits`` are the module's own output (a tensor; the ``logits`` attribute of an output object,
such as our :class:`~pcoh.models.ModelOutput`; or the first element of a tuple).

``features`` are read while the module runs, by a forward hook, so the module computes exactly
what it computes alone and its state-dict keys stay its own (under ``net.``):

- by default, the *input of its classifier*, the model's own split into a feature extractor and
  a last layer. The classifier is the last :class:`torch.nn.Linear` (or 1x1
  :class:`torch.nn.Conv2d`, as in SqueezeNet) in registration order. Its input ``(n, d)`` is the
  feature vector; a 4-D input ``(n, c, h, w)`` is averaged over ``h, w``;
- with ``features=NODE``, the *output* of the submodule named ``NODE`` (a name of
  ``module.named_modules()``, e.g. ``"layer3"``; when a module runs several times, its last
  call): ``(n, c, h, w)`` is averaged over ``h, w``, ``(n, t, d)`` (tokens) over ``t``, ``(n, d)``
  is kept, any other shape is flattened to ``(n, -1)``.

Adapting to the data
--------------------
A model is built for a data set's ``in_channels`` and ``num_classes``:

- other input channels: the first :class:`~torch.nn.Conv2d` is replaced by one with ``c`` input
  channels whose kernel is ``W.mean(1) * c_old / c`` on every channel, so that ``c`` copies of a
  grey image give what ``c_old`` copies gave (for ``c = 1``: the sum over the old channels);
- other classes: the classifier is replaced by a new layer with ``num_classes`` outputs, freshly
  initialised (under the run's seed); everything else keeps its weights.

Registry and cache key
----------------------
:func:`wrap` keeps a copy of the module as it is (architecture and weights) under the name
``wrap:<Class>-<digest>``, the digest a SHA-256 of the module's whole definition: the source code
of every class in it that is not PyTorch's (a class whose code cannot be read is refused, naming
it; IPython keeps the code of notebook cells, so classes defined in a notebook are read), every
submodule's plain attributes (a ``scale`` set in ``__init__``), its ``repr``, its parameters and
buffers, non-persistent ones included (names, dtypes, shapes, bytes), the feature node and the
input channels. PyTorch's own layers are named by their class, not their code.
``pcoh.models.create(name, ...)`` builds fresh copies from it (every run starts from the same
weights), and the run cache, which hashes model names, gives a changed architecture or changed
weights a new run. The registry lives in the process: a script or notebook wraps its module before
using the name.
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import re
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from .._checks import check_choice, check_count
from ._base import Backbone, ModelOutput

__all__ = ["PREFIX", "Wrapped", "wrap", "is_wrapped", "registered", "build", "adapt_in_channels", "adapt_num_classes", "classifier_of"]

_CAPTURED = "_pcoh_features"  # the attribute a hook leaves its tensor in, on the module it hooks
_ARMED = "_pcoh_capture"  # set by Wrapped.forward for the call: the module run alone keeps nothing


def _keep_input(module: nn.Module, args) -> None:
    # Module-level functions (not closures over a model), so that a deep copy of a model hooks its own copy.
    if module.__dict__.get(_ARMED):
        module.__dict__[_CAPTURED] = args[0]


def _keep_output(module: nn.Module, args, output) -> None:
    if module.__dict__.get(_ARMED):
        module.__dict__[_CAPTURED] = output


def _reduce(features: torch.Tensor) -> torch.Tensor:
    """``(n, c, h, w)`` -> mean over ``h, w``; ``(n, t, d)`` -> mean over ``t``; ``(n, d)`` kept; else flattened."""
    if features.dim() == 4:
        return features.mean(dim=(2, 3))
    if features.dim() == 3:
        return features.mean(dim=1)
    if features.dim() == 2:
        return features
    return features.flatten(1)


def _logits(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(getattr(output, "logits", None), torch.Tensor):
        return output.logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"a wrapped module must return a tensor of logits, got {type(output).__name__}")


def _check_net(net) -> None:
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")


def classifier_of(net: nn.Module) -> Optional[tuple]:
    """``(name, layer)`` of the last ``nn.Linear`` or 1x1 ``nn.Conv2d`` of ``net`` in registration order, or None."""
    _check_net(net)
    found = None
    for name, m in net.named_modules():
        if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (1, 1)):
            found = (name, m)
    return found


def _first_conv(net: nn.Module) -> Optional[tuple]:
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    return None


def _replace(net: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, last = name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, last, new)


def adapt_in_channels(net: nn.Module, in_channels: int, *, rule: str = "mean") -> nn.Module:
    """Give ``net``'s first ``nn.Conv2d`` ``in_channels`` input channels, in place.

    Parameters
    ----------
    net : nn.Module
    in_channels : int
    rule : {"mean", "cycle"}
        ``"mean"`` (trained weights): every new channel gets ``W.mean(1) * c_old / in_channels``, so
        ``in_channels`` copies of one grey image give the old output of ``c_old`` copies.
        ``"cycle"`` (fresh weights): new channel ``j`` is old channel ``j mod c_old``, which keeps the
        initialisation's distribution.

    Returns
    -------
    nn.Module
        ``net``.

    Raises
    ------
    ValueError
        ``net`` has no ``nn.Conv2d``, or its first one is grouped.
    """
    _check_net(net)
    in_channels = check_count(in_channels, "in_channels", 1)
    check_choice(rule, "rule", ("mean", "cycle"))
    found = _first_conv(net)
    if found is None:
        raise ValueError(
            f"cannot adapt {type(net).__name__} to {in_channels} input channels: it has no nn.Conv2d to change "
            "(give in_channels= to wrap() for a model without convolutions)"
        )
    name, conv = found
    if conv.in_channels == in_channels:
        return net
    if conv.groups != 1:
        raise ValueError(f"cannot adapt {type(net).__name__} to {in_channels} input channels: its first "
                         f"convolution {name!r} is grouped (groups={conv.groups})")
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    1, conv.bias is not None, conv.padding_mode, device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        w = conv.weight
        if rule == "mean":
            new.weight.copy_(w.mean(dim=1, keepdim=True).expand(-1, in_channels, -1, -1) * (w.shape[1] / in_channels))
        elif rule == "cycle":
            new.weight.copy_(w[:, torch.arange(in_channels) % w.shape[1]])
        else:
            raise ValueError(f"rule must be 'mean' or 'cycle', got {rule!r}")
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _replace(net, name, new)
    return net


def adapt_num_classes(net: nn.Module, num_classes: int) -> nn.Module:
    """Replace ``net``'s classifier (:func:`classifier_of`) by a fresh one with ``num_classes`` outputs, in place.

    Raises
    ------
    ValueError
        ``net`` has no ``nn.Linear`` or 1x1 ``nn.Conv2d``.
    """
    _check_net(net)
    num_classes = check_count(num_classes, "num_classes", 2)
    found = classifier_of(net)
    if found is None:
        raise ValueError(f"cannot give {type(net).__name__} {num_classes} classes: it has no nn.Linear "
                         "(or 1x1 nn.Conv2d) classifier to replace")
    name, layer = found
    kw = dict(device=layer.weight.device, dtype=layer.weight.dtype)
    if isinstance(layer, nn.Linear):
        if layer.out_features == num_classes:
            return net
        new = nn.Linear(layer.in_features, num_classes, bias=layer.bias is not None, **kw)
    else:
        if layer.out_channels == num_classes:
            return net
        new = nn.Conv2d(layer.in_channels, num_classes, 1, bias=layer.bias is not None, **kw)
    _replace(net, name, new)
    return net


class Wrapped(Backbone):
    """A module seen as a pcoh model: ``forward(x)`` returns ``ModelOutput(features, logits)``.

    Parameters
    ----------
    net : nn.Module
        Maps ``(n, in_channels, h, w)`` to logits ``(n, num_classes)`` (see the module docstring).
        Used as it is (not copied).
    name : str
        The model's name (``tv:resnet18``, ``wrap:Net-<digest>``).
    features : str, optional
        The submodule whose output are the features; default the input of the classifier.
    in_channels : int
        Input channels of ``net``.
    image_size : int
        Input height and width that the model is checked on at construction (one forward pass of
        two zero images in eval mode, no gradient): a model that cannot take that size raises here.
    fixed_size : bool, default False
        The model takes only ``image_size x image_size`` inputs (a ViT built for one size).

    Attributes
    ----------
    net : nn.Module
    node : str
        The hooked submodule's name.
    capture : {"input", "output"}
        What of it the features are.
    num_classes, feature_dim : int
        Found by the check pass.

    Raises
    ------
    ValueError
        No classifier to split at, an unknown ``features`` node, or an input ``net`` cannot take
        (the message names the model and the input shape and gives the module's own error).
    """

    #: The prefix of ``net``'s keys in this model's state dict: :func:`pcoh.models.load_benchmark_state`
    #: adds it to a checkpoint saved from the bare module.
    state_prefix = "net."

    def __init__(self, net: nn.Module, *, name: str, features: Optional[str] = None, in_channels: int = 3,
                 image_size: int = 32, fixed_size: bool = False) -> None:
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__} {name!r}")
        if not isinstance(fixed_size, bool):
            raise TypeError(f"fixed_size must be True or False, got {type(fixed_size).__name__}")
        # Provisional sizes; the check pass below finds the real ones.
        super().__init__(name, 2, in_channels, image_size, 1)
        self.net = net
        self.training = net.training  # the module's mode is the model's (and the check pass restores it)
        self.fixed_size = fixed_size
        modules = dict(net.named_modules())
        if features is None:
            found = classifier_of(net)
            if found is None:
                raise ValueError(f"model {name!r}: {type(net).__name__} has no nn.Linear (or 1x1 nn.Conv2d) "
                                 "classifier whose input could be the features; name a layer with features=")
            self.node, self.capture = found[0], "input"
            if _keep_input not in modules[self.node]._forward_pre_hooks.values():  # wrapped twice: one hook
                modules[self.node].register_forward_pre_hook(_keep_input)
        else:
            if not isinstance(features, str):
                raise TypeError(f"features must be the name of a submodule (a string), got {type(features).__name__}")
            if features not in modules or features == "":
                import difflib

                names = [n for n in modules if n]
                close = difflib.get_close_matches(features, names, n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
                raise ValueError(f"model {name!r}: no submodule {features!r} to take the features from{hint} "
                                 f"(submodules: {shown})")
            self.node, self.capture = features, "output"
            if _keep_output not in modules[self.node]._forward_hooks.values():
                modules[self.node].register_forward_hook(_keep_output)
        self.feature_dim, self.num_classes = self._check_pass()

    def _check_pass(self) -> tuple:
        param = next(self.net.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.dtype.is_floating_point else torch.float32
        shape = (2, self.in_channels, self.image_size, self.image_size)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                try:
                    # Shapes only, on the meta device: no arithmetic, and no kernels prepared for a batch
                    # that training never uses. An op without a meta kernel falls back to a real pass.
                    meta = {k: torch.empty_like(v, device="meta")
                            for k, v in (*self.named_parameters(), *self.named_buffers())}
                    out = torch.func.functional_call(self, meta, (torch.zeros(shape, dtype=dtype, device="meta"),))
                except Exception:  # noqa: BLE001 - the real pass below gives the real error, if any
                    out = self(torch.zeros(shape, dtype=dtype, device=device))
        except (RuntimeError, ValueError, AssertionError, IndexError, TypeError) as err:
            first = " ".join(str(err).split("\n")[0].split()) or type(err).__name__
            raise ValueError(f"model {self.name!r} cannot take inputs of shape {shape}: {first}") from None
        finally:
            self.train(was_training)
        if out.logits.dim() != 2 or out.features.dim() != 2:
            raise ValueError(f"model {self.name!r} must give (n, num_classes) logits and (n, d) features, "
                             f"got shapes {tuple(out.logits.shape)} and {tuple(out.features.shape)}")
        return int(out.features.shape[1]), int(out.logits.shape[1])

    def extra_repr(self) -> str:
        return super().extra_repr() + f", features={self.node!r} ({self.capture})"

    def check_input(self, x: torch.Tensor) -> None:
        super().check_input(x)
        if self.fixed_size and tuple(x.shape[2:]) != (self.image_size, self.image_size):
            raise ValueError(f"model {self.name!r} was built for {self.image_size}x{self.image_size} inputs only, "
                             f"got input of shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """Features ``(n, feature_dim)`` and logits ``(n, num_classes)`` of ``x`` ``(n, in_channels, h, w)``."""
        self.check_input(x)
        node = self.net.get_submodule(self.node)
        node.__dict__.pop(_CAPTURED, None)
        node.__dict__[_ARMED] = True
        try:
            logits = _logits(self.net(x))
        finally:
            node.__dict__.pop(_ARMED, None)
        captured = node.__dict__.pop(_CAPTURED, None)
        if not isinstance(captured, torch.Tensor):
            raise RuntimeError(f"model {self.name!r}: the layer {self.node!r} did not run in the forward pass, "
                               "so it gave no features")
        return ModelOutput(_reduce(captured), logits)


# ----------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class _Entry:
    module: nn.Module  # the snapshot, on the CPU, without our hooks
    features: Optional[str]
    in_channels: int
    num_classes: int


#: The start of every wrapped model's name.
PREFIX = "wrap:"
_REGISTRY: dict[str, _Entry] = {}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_MODULE_FIELDS = frozenset(vars(nn.Module()))  # what every module holds: parameters, buffers, hooks, mode
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _class_source(cls: type, where: str) -> str:
    """``module.qualname`` and the source code of a class that is not PyTorch's; a class whose code
    cannot be read is refused (its name alone would let two different classes share a digest)."""
    text = f"{cls.__module__}.{cls.__qualname__}"
    if cls.__module__ == "torch" or cls.__module__.startswith("torch."):
        return text  # PyTorch's own layers: named by their class (the installed version is not in the key)
    try:
        return text + "\n" + inspect.getsource(cls)
    except (OSError, TypeError) as err:
        code = _cell_source(cls)
        if code is not None:
            return text + "\n" + code
        raise ValueError(
            f"cannot wrap {where}: the source code of its class {text} cannot be read ({err}), so the run cache "
            "could not tell it from another class of that name. Define the class in a file (a module you import) "
            "or in a notebook cell run by IPython, which keeps cells' code") from None


def _cell_source(cls: type) -> Optional[str]:
    """The code of a class defined where :func:`inspect.getsource` finds no file (a notebook cell, an
    ``exec``): the ``class`` statement that holds its methods' code, in the text ``linecache`` keeps
    for their file (IPython keeps every cell's). None when no such text is kept."""
    import ast
    import linecache

    codes = [f.__code__ for f in vars(cls).values() if inspect.isfunction(f)]
    for fn in dict.fromkeys(c.co_filename for c in codes):
        text = "".join(linecache.getlines(fn))
        if not text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        lines = [c.co_firstlineno for c in codes if c.co_filename == fn]
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == cls.__name__ \
                    and all(node.lineno <= n <= (node.end_lineno or n) for n in lines):
                return ast.get_source_segment(text, node, padded=True)
    return None


def _value_text(value, where: str, depth: int = 0) -> str:
    """A plain attribute as text that changes when it does: tensors by bytes, containers item by item,
    functions and classes by their code, other objects by their type and ``repr`` (addresses dropped)."""
    if depth > 8:
        return "..."
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        return (f"tensor({t.dtype},{tuple(t.shape)},"
                f"{hashlib.sha256(t.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()})")
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return repr(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_value_text(v, where, depth + 1) for v in value]
        if isinstance(value, (set, frozenset)):
            items.sort()
        return f"{type(value).__name__}[{', '.join(items)}]"
    if isinstance(value, dict):
        items = sorted(f"{_value_text(k, where, depth + 1)}: {_value_text(v, where, depth + 1)}"
                       for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, type):
        return _class_source(value, where)
    if inspect.isfunction(value) or inspect.ismethod(value):
        func = getattr(value, "__func__", value)
        try:
            code = inspect.getsource(func)
        except (OSError, TypeError):
            code = f"{func.__code__.co_code.hex()}{func.__code__.co_consts!r}"
        return f"function {func.__module__}.{func.__qualname__}\n{_ADDRESS.sub('', code)}"
    return f"{type(value).__module__}.{type(value).__qualname__}:{_ADDRESS.sub('', repr(value))}"


def _sources(module: nn.Module) -> list:
    """Source code of the classes in ``module`` that are not PyTorch's (their forward is the architecture)."""
    where = type(module).__name__
    return [_class_source(cls, where) for cls in
            sorted({type(m) for m in module.modules()}, key=lambda c: f"{c.__module__}.{c.__qualname__}")]


def _attributes(module: nn.Module) -> list:
    """Every submodule's plain attributes (what ``__init__`` set besides parameters, buffers and
    submodules: a ``scale``, a kernel size, an activation function), by name."""
    out = []
    for name, sub in module.named_modules():
        where = f"{type(module).__name__} (submodule {name or 'itself'}: {type(sub).__name__})"
        fields = {k: v for k, v in vars(sub).items() if k not in _MODULE_FIELDS and k not in (_CAPTURED, _ARMED)}
        out.append(f"{name}:" + ";".join(f"{k}={_value_text(v, where)}" for k, v in sorted(fields.items())))
    return out


def _digest(module: nn.Module, features: Optional[str], in_channels: int) -> str:
    """SHA-256 of the whole definition: classes' code, plain attributes, ``repr``, parameters and
    buffers (non-persistent ones too) with names, dtypes, shapes and bytes, the feature node and
    the input channels."""
    h = hashlib.sha256()
    for part in (*_sources(module), *_attributes(module), repr(module), f"features={features};in={in_channels}"):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    tensors = [("parameter", k, v) for k, v in module.named_parameters(remove_duplicate=False)]
    tensors += [("buffer", k, v) for k, v in module.named_buffers(remove_duplicate=False)]
    for kind, key, value in tensors:
        t = value.detach().cpu().contiguous()
        h.update(f"{kind};{key};{t.dtype};{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:12]


def wrap(module: nn.Module, features: Optional[str] = None, *, name: Optional[str] = None,
         in_channels: Optional[int] = None, image_size: int = 32) -> Wrapped:
    """Make any network a pcoh model, and register it for the training loop and the run cache.

    Parameters
    ----------
    module : nn.Module
        Maps images ``(n, in_channels, h, w)`` to logits (see the module docstring).
    features : str, optional
        Name of the submodule whose output are the features; default the input of the classifier
        (the last ``nn.Linear`` or 1x1 ``nn.Conv2d``).
    name : str, optional
        A readable name (letters, digits, ``_``); default the module's class name. The registered
        name is ``wrap:<name>-<digest>``.
    in_channels : int, optional
        Input channels; default those of the first ``nn.Conv2d`` (required without one).
    image_size : int, default 32
        The input size the module is checked on (:class:`Wrapped`).

    Returns
    -------
    Wrapped
        A model around ``module`` itself (sharing its parameters), whose ``name`` can be given to
        :func:`pcoh.models.create`, :class:`pcoh.config.ExperimentConfig` (``teacher``,
        ``students``; the model itself works too) and the run specs of :mod:`pcoh.train`. Each run
        starts from the weights ``module`` has now; a new seed changes the data order and any
        replaced classifier, not these weights.

    Raises
    ------
    TypeError
        ``module`` is not an ``nn.Module``.
    ValueError
        A bad ``name``, no classifier or no such ``features`` node, no ``nn.Conv2d`` and no
        ``in_channels``, or an input of ``image_size`` the module cannot take.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from pcoh.models import wrap, create
    >>> net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    >>> model = wrap(net, name="tiny", image_size=8)
    >>> model.name.startswith("wrap:tiny-"), model.feature_dim, model.num_classes
    (True, 8, 10)
    >>> create(model.name, num_classes=3, in_channels=3, image_size=8)(torch.zeros(2, 3, 8, 8)).logits.shape
    torch.Size([2, 3])
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if isinstance(module, Wrapped):
        return module
    if name is None:
        name = type(module).__name__
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__} {name!r}")
    if not _NAME.match(name):
        raise ValueError(f"name must be letters, digits and '_' (not starting with a digit), got {name!r}")
    image_size = check_count(image_size, "image_size", 8)
    if in_channels is None:
        found = _first_conv(module)
        if found is None:
            raise ValueError(f"{type(module).__name__} has no nn.Conv2d to read its input channels from; "
                             "give in_channels=")
        in_channels = found[1].in_channels
    in_channels = check_count(in_channels, "in_channels", 1)
    snapshot = copy.deepcopy(module).cpu()  # before any hook of ours is registered on module
    full = f"{PREFIX}{name}-{_digest(snapshot, features, in_channels)}"
    model = Wrapped(module, name=full, features=features, in_channels=in_channels, image_size=image_size)
    if full not in _REGISTRY:
        _REGISTRY[full] = _Entry(snapshot, features, in_channels, model.num_classes)
    return model


def is_wrapped(name) -> bool:
    """Whether ``name`` is a string starting with ``wrap:`` (registered in this process or not)."""
    return isinstance(name, str) and name.startswith(PREFIX)


def registered() -> list[str]:
    """Names of the modules wrapped in this process, in order."""
    return list(_REGISTRY)


def build(name: str, num_classes: int, in_channels: int, image_size: int) -> Wrapped:
    """A fresh copy of a wrapped module, adapted to ``num_classes`` and ``in_channels``.

    Raises
    ------
    ValueError
        ``name`` was not wrapped in this process, or the module cannot be adapted or take the input.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a wrapped model's name (a string), got {type(name).__name__}")
    if name not in _REGISTRY:
        known = ", ".join(registered()) or "none so far"
        raise ValueError(f"unknown model {name!r}: not wrapped in this process (call pcoh.models.wrap(module) "
                         f"first; wrapped: {known})")
    entry = _REGISTRY[name]
    net = copy.deepcopy(entry.module)
    if in_channels != entry.in_channels:
        adapt_in_channels(net, in_channels, rule="mean")
    if num_classes != entry.num_classes:
        adapt_num_classes(net, num_classes)
    return Wrapped(net, name=name, features=entry.features, in_channels=in_channels, image_size=image_size)
