"""How many threads a process of this package uses, and setting them in every pool at once.

A process runs three thread pools: torch's (intra-op, and inter-op for asynchronous work),
numba's (the compiled rank and loss kernels) and the BLAS library's (numpy, scipy,
scikit-learn). Left alone, each starts one thread per core of the machine, whatever cores the
process may actually use; two processes on the same cores then fight, threads spinning while
they wait for each other. :func:`choose_threads` picks one count, :func:`set_threads` gives it
to all three pools.

The count, first found wins: the ``--threads`` option or the ``threads`` setting of the config;
the ``OMP_NUM_THREADS`` environment variable (its first entry, as OpenMP reads a list); the
number of cores in the process's CPU affinity (``os.sched_getaffinity``, which ``taskset``,
containers and batch schedulers restrict), not the machine's core count.
"""
from __future__ import annotations

import os
from ._checks import check_count

__all__ = ["available_cores", "choose_threads", "set_threads", "thread_counts"]

# The BLAS limit must stay alive: threadpoolctl restores the previous limits when it is collected.
_BLAS_LIMIT = None


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity where the system has one, else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _from_environment(environ) -> int | None:
    text = environ.get("OMP_NUM_THREADS")
    if text is None or not text.strip():
        return None
    first = text.split(",")[0].strip()
    try:
        value = int(first)
    except ValueError:
        raise ValueError(f"OMP_NUM_THREADS must be a positive integer (or a list of them), got {text!r}") from None
    if value < 1:
        raise ValueError(f"OMP_NUM_THREADS must be a positive integer (or a list of them), got {text!r}")
    return value


def choose_threads(threads: int | None = None, environ=None, cores: int | None = None) -> int:
    """The number of threads per pool: ``threads``, else ``OMP_NUM_THREADS``, else the cores.

    Parameters
    ----------
    threads : int, optional
        An explicit count (the ``--threads`` option or the ``threads`` setting); wins over the rest.
    environ : mapping, optional
        Where ``OMP_NUM_THREADS`` is read (default ``os.environ``).
    cores : int, optional
        The usable cores (default :func:`available_cores`).

    Raises
    ------
    TypeError, ValueError
        ``threads`` not a positive int; ``OMP_NUM_THREADS`` set but not a positive integer.
    """
    if threads is not None:
        return check_count(threads, "threads")
    if environ is not None and not hasattr(environ, "get"):
        raise TypeError(f"environ must be a mapping of environment variables, got {type(environ).__name__}")
    value = _from_environment(os.environ if environ is None else environ)
    if value is not None:
        return value
    return available_cores() if cores is None else check_count(cores, "cores")


def set_threads(threads: int) -> dict:
    """Give ``threads`` to torch (intra-op; inter-op gets one), numba and the BLAS library.

    Torch's inter-op pool runs only asynchronous work (none in this package's training loop);
    one thread there keeps it from competing with the intra-op threads. It can only be set
    before torch first uses it; later calls leave it as it is. Returns :func:`thread_counts`.
    """
    global _BLAS_LIMIT
    threads = check_count(threads, "threads")
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already started (or set): it stays as it is
        pass
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        pass
    else:
        _BLAS_LIMIT = threadpool_limits(limits=threads, user_api="blas")
    return thread_counts()


def thread_counts() -> dict:
    """The thread counts in use now: ``{"torch", "torch_interop", "numba", "blas"}`` (blas:
    the largest of the loaded BLAS libraries', None when none is loaded)."""
    import numba
    import torch

    blas = None
    try:
        from threadpoolctl import threadpool_info

        counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        blas = max(counts) if counts else None
    except ImportError:  # pragma: no cover
        pass
    return {"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
            "numba": numba.get_num_threads(), "blas": blas}
