"""Tests for pcoh.threads: the thread count's sources and their precedence, bad values, and
that one count reaches torch, numba and the BLAS library."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pcoh import threads
from pcoh.config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]


def test_available_cores_is_the_affinity(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert threads.available_cores() == 3


def test_available_cores_without_affinity_is_the_cpu_count(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert threads.available_cores() == 6


def test_default_is_the_affinity_not_the_machine(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert threads.choose_threads(environ={}) == 1


@pytest.mark.parametrize("text, expected", [("3", 3), (" 2 ", 2), ("4,2", 4), ("1", 1)])
def test_omp_num_threads_wins_over_the_cores(text, expected):
    assert threads.choose_threads(environ={"OMP_NUM_THREADS": text}, cores=8) == expected


def test_empty_omp_num_threads_is_unset():
    assert threads.choose_threads(environ={"OMP_NUM_THREADS": ""}, cores=5) == 5


def test_option_wins_over_environment_and_cores():
    assert threads.choose_threads(2, environ={"OMP_NUM_THREADS": "7"}, cores=8) == 2


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", ","])
def test_bad_omp_num_threads_names_the_variable(text):
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        threads.choose_threads(environ={"OMP_NUM_THREADS": text}, cores=2)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), (1.0, TypeError), ("2", TypeError),
                                        (True, TypeError)])
def test_bad_requested_counts(bad, error):
    with pytest.raises(error, match="threads"):
        threads.choose_threads(bad, environ={}, cores=2)


@pytest.mark.parametrize("bad, error", [(0, ValueError), ("4", TypeError), (2.5, TypeError)])
def test_config_checks_threads(bad, error):
    with pytest.raises(error, match="threads"):
        ExperimentConfig(threads=bad)
    assert ExperimentConfig(threads=1).threads == 1
    assert ExperimentConfig().threads is None


def test_set_threads_reaches_every_pool_in_a_fresh_process():
    code = ("from pcoh.threads import set_threads; import numpy; c = set_threads(1); "
            "print(c['torch'], c['torch_interop'], c['numba'], c['blas'])")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    torch_n, interop, numba_n, blas = out.stdout.split()
    assert (torch_n, interop, numba_n) == ("1", "1", "1")
    assert blas in ("1", "None")


def test_cli_threads_option_is_checked():
    from pcoh.__main__ import main

    assert main(["--threads", "0", "--check"]) == 2
