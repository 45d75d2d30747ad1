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
import os
import signal
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
    except BaseException as err:
        stop = _stopped(pool, futures, err)
        del pool, futures  # its queues' semaphores are released now, not at exit
        raise stop from None
    pool.shutdown(wait=True)
    return done


def _stopped(pool: ProcessPoolExecutor, futures: list, err: BaseException) -> BaseException:
    """Stop the workers after an interrupt (or another error) of the main process; returns what to raise.

    Tasks not started are cancelled. The workers get the main process's signal (SIGINT for Ctrl-C,
    SIGTERM for a SIGTERM), so each run they train stops as it would alone: after its checkpoint,
    with :class:`~pcoh.interrupts.TrainingInterrupted` naming the run folder and the epoch saved.
    The first such report is raised in place of the main process's own (which names no run), so the
    message says where the work is kept; the same command resumes it.
    """
    from .interrupts import TrainingInterrupted

    for future in futures:
        future.cancel()
    signum = getattr(err, "signum", signal.SIGINT if isinstance(err, KeyboardInterrupt) else signal.SIGTERM)
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        try:
            os.kill(process.pid, signum)
        except (OSError, ProcessLookupError):
            pass
    _, late = wait([f for f in futures if not f.cancelled()], timeout=_STOP_WAIT)
    if late:  # a worker that did not stop in time
        for process in processes:
            if process.is_alive():
                process.kill()
    pool.shutdown(wait=True, cancel_futures=True)  # the workers are stopped: joined, their queues closed
    for future in futures:
        if future.done() and not future.cancelled():
            reported = future.exception()
            if isinstance(reported, TrainingInterrupted) and reported.path is not None:
                return reported
    return err


#: Seconds the workers have to stop after an interrupt (a checkpoint being written finishes first).
_STOP_WAIT = 60
