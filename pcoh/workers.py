"""Training runs side by side: a pool of worker processes that fill the run cache.

On a CPU the small runs of the main job leave cores idle: a training step of a small student is
mostly short operations that two threads cannot share well. Two processes of one thread each
train about 1.45 times as many runs per minute as one process of two threads on a 2-core machine
(``benchmarks/bench_threads.py`` prints both). :func:`fill_cache` hands tasks (a function of the
package and its arguments) to ``jobs`` processes, each with ``threads`` threads; every task trains
one run into the cache of runs, and the caller then reads the finished runs from the cache as it
would read any finished run, in its own order. What a worker leaves unfinished (an error, a
diverged run) the caller meets again when it asks for that run, with its usual message.

The processes are started fresh (the ``spawn`` method: a forked process would inherit OpenMP
threads that it cannot use), import the package and set their threads before the first task.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

__all__ = ["fill_cache", "worker_threads"]


def worker_threads(threads: int, jobs: int) -> int:
    """Threads of each of ``jobs`` processes sharing ``threads`` cores: at least one."""
    return max(1, threads // max(1, jobs))


def _start(threads: int) -> None:
    from .threads import set_threads

    set_threads(threads)


def _call(function, args) -> None:
    function(*args)


def fill_cache(tasks: list, *, jobs: int, threads: int, desc: str = "training", quiet: bool = False) -> int:
    """Run ``tasks`` (``(function, args)`` pairs, the functions importable by name) on ``jobs``
    processes of ``threads`` threads each; returns how many finished.

    A task that fails is not retried here: the caller, reading the cache, trains that run itself
    and meets the failure with its usual message. An interrupt (Ctrl-C) stops the workers and is
    raised again; runs they finished are in the cache, unfinished ones keep their checkpoints.
    """
    if not tasks:
        return 0
    from tqdm.auto import tqdm

    context = multiprocessing.get_context("spawn")
    done = 0
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context,
                               initializer=_start, initargs=(threads,))
    try:
        futures = [pool.submit(_call, function, args) for function, args in tasks]
        with tqdm(total=len(futures), desc=f"{desc} ({min(jobs, len(tasks))} processes)", disable=quiet,
                  dynamic_ncols=True) as bar:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    if future.exception() is None:
                        done += 1
                    bar.update(1)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return done
