r"""Pairwise dissimilarities and the metric registry.

Each model of a transfer has its own dissimilarity on its own feature space (``docs/method.md`` §1):

=================  ==========================================================================
name               :math:`d(a, b)`
=================  ==========================================================================
``"cosine"``       :math:`1 - \langle a, b\rangle / (\|a\| \|b\|)`, in :math:`[0, 2]`; a zero
                   vector has cosine 0 with everything (dissimilarity 1), itself included
``"euclidean"``    :math:`\|a - b\|`
``"sqeuclidean"``  :math:`\|a - b\|^2`
callable           ``fn(x) -> (n, n)`` tensor, used as given
=================  ==========================================================================

All built-in metrics are safe on zero vectors and duplicated points: no NaN in values or
gradients (the square root of the Euclidean metric has a zero gradient where two points coincide).
The diagonal of a square matrix ``pairwise(x)`` is exactly zero for ``euclidean`` and
``sqeuclidean``, and for ``cosine`` on non-zero rows.
"""
from __future__ import annotations

import types
from typing import Callable, Union

import numba
import numpy as np
import torch

from ._checks import all_finite

__all__ = [
    "Dissimilarity", "Cosine", "Euclidean", "SqEuclidean", "METRICS", "MetricLike", "check_features", "get_metric",
    "pairwise",
]

_EPS = 1e-12


class Dissimilarity:
    """Base of the built-in metrics: checks in one place, each metric writes only its matrix.

    Call as ``metric(x)`` for the (n, n) matrix of ``x`` against itself, or ``metric(x, y)`` for
    the (n, k) matrix of the rows of ``x`` against the rows of ``y``.
    """

    name = "dissimilarity"

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        check_features(x, "x")
        if y is None:
            out = no_overflow(self.matrix(x, x), self.name, x)
            # Exact zeros on the diagonal whatever the rounding of the matrix formula; the
            # multiplication keeps gradients flowing through the off-diagonal entries only.
            return out * (1 - torch.eye(x.shape[0], dtype=out.dtype, device=out.device))
        check_features(y, "y")
        if y.shape[1] != x.shape[1]:
            raise ValueError(f"x and y must have the same width, got {tuple(x.shape)} and {tuple(y.shape)}")
        return no_overflow(self.matrix(x, y), self.name, x, y)

    def matrix(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """The (n, k) dissimilarities of the rows of ``x`` (n, d) to the rows of ``y`` (k, d).

        What a subclass writes. No input checks and no diagonal corrections: for callers that
        have validated their inputs already (the transfer losses) or cut the diagonal away.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def no_overflow(out: torch.Tensor, name: str, *inputs: torch.Tensor) -> torch.Tensor:
    """``out``, unless finite features gave non-finite dissimilarities (their squares overflow the
    dtype): then a ValueError that says so. Checked on the CPU only, as the inputs are."""
    if out.device.type == "cpu" and not all_finite(out):
        largest = max(float(t.detach().abs().max()) for t in inputs)
        raise ValueError(
            f"the {name} dissimilarities of these features overflow {str(out.dtype).replace('torch.', '')}: "
            f"the features are finite, but as large as {largest:.3g}, and their squared distances exceed "
            f"{torch.finfo(out.dtype).max:.3g}; rescale the features (e.g. standardise them) or give float64")
    return out


class Cosine(Dissimilarity):
    """Cosine dissimilarity ``1 - cos(a, b)``; zero vectors are at dissimilarity 1 from all."""

    name = "cosine"

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            check_features(x, "x")
            out = self.matrix(x, x)
            # 1 - cos(a, a) is 0 for a non-zero row; a zero row keeps its dissimilarity of 1.
            nonzero = (x != 0).any(dim=1).to(out.dtype)
            return out - torch.diag(torch.diagonal(out).detach() * nonzero)
        return super().__call__(x, y)

    def matrix(self, x, y):
        xn = torch.nn.functional.normalize(x, dim=1, eps=_EPS)
        yn = xn if y is x else torch.nn.functional.normalize(y, dim=1, eps=_EPS)
        # 1 - xn yn^T as one fused product (no separate pass over the (n, m) result).
        return torch.addmm(xn.new_ones(()), xn, yn.T, alpha=-1.0)


def renamed(fn, suffix: str):
    """A copy of ``fn`` under another name: numba's disk cache is keyed by the function's name,
    so the parallel and serial builds of one function need different names."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__doc__ = fn.__doc__
    return copy


def _squared_rows(mm, xx, yy, floor, tiny):
    """Overwrite ``mm`` (c, k), which holds ``x @ y.T``, with the squared distances
    ``(xx_i + yy_j) - 2 mm_ij``, clamped at 0, or (``floor``) set to 0 where at most ``tiny`` (NaN
    included), as :class:`Euclidean` does before its square root: the arithmetic of the tensor
    formula of :class:`SqEuclidean`, in the same order and precision (so the same values), in one
    pass instead of five."""
    c, k = mm.shape
    zero = tiny - tiny
    for i in numba.prange(c):
        a = xx[i]
        for j in range(k):
            m = mm[i, j]
            v = (a + yy[j]) - (m + m)  # m + m: 2 m, exactly
            if floor:
                mm[i, j] = v if v > tiny else zero
            else:
                mm[i, j] = zero if v < zero else v


# One pass of a large block in parallel; a small one (a loss's batch) is not worth waking threads.
_PARALLEL_MIN_ELEMENTS = 1 << 17
_squared_rows_serial = numba.njit(nogil=True, cache=True)(_squared_rows)
_squared_rows_parallel = numba.njit(nogil=True, cache=True, parallel=True)(renamed(_squared_rows, "_parallel"))


def _squared_fused(x: torch.Tensor, y: torch.Tensor, root: bool) -> torch.Tensor | None:
    """The (squared) Euclidean matrix of :class:`SqEuclidean` and :class:`Euclidean`, the same
    values, computed in place after the product when no gradient is asked for (CPU, float32 or
    float64); None where the tensor formula must run (autograd, another device or dtype)."""
    if x.device.type != "cpu" or y.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) \
            or y.dtype != x.dtype or (torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)):
        return None
    xx = (x * x).sum(dim=1)
    yy = xx if y is x else (y * y).sum(dim=1)
    mm = (x @ y.T).contiguous()
    if mm.numel() == 0:
        return mm
    np_dtype = np.float32 if x.dtype == torch.float32 else np.float64
    tiny = np_dtype(torch.finfo(x.dtype).tiny)
    kernel = _squared_rows_parallel if mm.numel() >= _PARALLEL_MIN_ELEMENTS else _squared_rows_serial
    kernel(mm.numpy(), xx.contiguous().numpy(), yy.contiguous().numpy(), root, tiny)
    # torch's square root (not numpy's, which rounds some float32 roots the other way by one ulp):
    # the values of the tensor formula exactly, whichever path computed them.
    return mm.sqrt_() if root else mm


class SqEuclidean(Dissimilarity):
    """Squared Euclidean distance ``||a - b||^2`` (clamped at 0 against rounding)."""

    name = "sqeuclidean"

    def matrix(self, x, y):
        fused = _squared_fused(x, y, root=False)
        if fused is not None:
            return fused
        xx = (x * x).sum(dim=1, keepdim=True)
        yy = xx if y is x else (y * y).sum(dim=1, keepdim=True)
        return (xx + yy.T - 2.0 * (x @ y.T)).clamp_min(0.0)


class Euclidean(SqEuclidean):
    """Euclidean distance ``||a - b||``; zero gradient where two points coincide (no NaN)."""

    name = "euclidean"

    def matrix(self, x, y):
        fused = _squared_fused(x, y, root=True)
        if fused is not None:
            return fused
        sq = SqEuclidean.matrix(self, x, y)
        tiny = torch.finfo(sq.dtype).tiny
        positive = sq > tiny
        # sqrt has an infinite slope at 0: take it only where it is safe, 0 elsewhere.
        return torch.where(positive, torch.where(positive, sq, torch.ones_like(sq)).sqrt(), torch.zeros_like(sq))


METRICS: dict[str, Dissimilarity] = {m.name: m for m in (Cosine(), Euclidean(), SqEuclidean())}

MetricLike = Union[str, Dissimilarity, Callable[[torch.Tensor], torch.Tensor]]


def get_metric(metric: MetricLike, argument: str = "metric") -> Callable:
    """Resolve a metric name, :class:`Dissimilarity` or callable to a callable.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    TypeError
        For anything that is neither a string nor a callable.
    """
    if isinstance(metric, str):
        try:
            return METRICS[metric]
        except KeyError:
            raise ValueError(
                f"{argument} must be one of {sorted(METRICS)} or a callable, got {metric!r}"
            ) from None
    if callable(metric):
        return metric
    raise TypeError(f"{argument} must be a metric name {sorted(METRICS)} or a callable, got {type(metric).__name__}")


def pairwise(x: torch.Tensor, metric: MetricLike = "cosine", y: torch.Tensor | None = None) -> torch.Tensor:
    r"""Matrix of dissimilarities between the rows of ``x`` (and ``y``).

    .. math::

        D_{ij} = d(x_i, x_j) \quad\text{or}\quad D_{ij} = d(x_i, y_j)

    Parameters
    ----------
    x : torch.Tensor, shape (n, d)
        Features, one row per sample.
    metric : str, Dissimilarity or callable, default "cosine"
        ``"cosine"``, ``"euclidean"``, ``"sqeuclidean"`` (see the module docstring), or a
        callable ``fn(x) -> (n, n)``. A plain callable is only called with ``x`` alone.
    y : torch.Tensor, shape (k, d), optional
        Second set of rows; the result is then (n, k). Requires a built-in metric or a
        :class:`Dissimilarity`.

    Returns
    -------
    torch.Tensor, shape (n, n) or (n, k)

    Raises
    ------
    TypeError
        ``x`` or ``y`` is not a floating-point tensor, or ``metric`` is neither a name nor a callable.
    ValueError
        Unknown metric name, input not 2-D, NaN or Inf in ``x`` or ``y``, widths that differ, or
        a callable that returns anything but a finite (n, n) tensor.
    """
    fn = get_metric(metric)
    if isinstance(fn, Dissimilarity):
        return fn(x, y)
    check_features(x, "x")
    if y is not None:
        raise ValueError("y is only supported with a built-in metric name or a Dissimilarity subclass")
    out = fn(x)
    n = x.shape[0]
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, n):
        kind = f"{type(out).__module__}.{type(out).__name__}".replace("builtins.", "")
        got = f"a {kind} of shape {tuple(out.shape)}" if hasattr(out, "shape") else f"a {kind}"
        if not isinstance(out, torch.Tensor) and hasattr(out, "shape"):
            got += " (not a torch.Tensor: convert it with torch.as_tensor)"
        raise ValueError(f"a callable metric must return an (n, n) = ({n}, {n}) torch.Tensor, got {got}")
    if not all_finite(out):
        raise ValueError("the callable metric returned NaN or Inf dissimilarities")
    return out


def check_features(x, name: str) -> None:
    """Raise unless ``x`` is a 2-D floating-point tensor (n, d), finite when on the CPU.

    Raises
    ------
    TypeError
        ``x`` is not a tensor, or not floating point.
    ValueError
        ``x`` is not 2-D, or (on the CPU) holds NaN or Inf.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    # NaN/Inf would not always propagate (clamps and masks turn them into 0): reject them here.
    # Only on the CPU: on an accelerator the check would make the host wait for the device at
    # every call (and forbid CUDA-graph capture); the losses poison their value instead.
    if x.device.type == "cpu" and not all_finite(x):
        raise ValueError(f"{name} contains NaN or Inf values")
