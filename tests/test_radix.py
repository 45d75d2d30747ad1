"""The numba radix sorts of pcoh.radix against numpy's stable argsort and scipy's average ranks."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from pcoh.radix import INDEX_MASK, argsort_keys, argsort_packed32, average_ranks, packed_average_ranks, sortable_keys


def rows():
    rng = np.random.default_rng(0)
    yield (1 + 0.1 * rng.normal(size=1023)).astype(np.float32)  # narrow range: constant top byte
    yield (300 * rng.normal(size=997)).astype(np.float32)  # both signs, wide exponents
    ties = rng.integers(-3, 4, size=500).astype(np.float32)
    ties[:7] = -0.0
    yield ties
    yield np.array([np.float32(3.0)] * 5)
    yield np.array([np.finfo(np.float32).max, -np.finfo(np.float32).max, np.finfo(np.float32).tiny, 0.0], np.float32)
    yield np.empty(0, np.float32)


@pytest.mark.parametrize("x", list(rows()), ids=lambda x: f"m{len(x)}")
def test_packed_argsort_is_the_stable_argsort_and_its_ranks_average_ties(x):
    x = x + np.float32(0.0)  # -0.0 ties with +0.0, as the callers make it
    m = len(x)
    packed, tmp, hist = np.empty(m, np.int64), np.empty(m, np.int64), np.empty((4, 256), np.int64)
    words = argsort_packed32(x, packed, tmp, hist)
    np.testing.assert_array_equal(words & INDEX_MASK, np.argsort(x, kind="stable"))
    out = np.empty(m)
    packed_average_ranks(words, out, 0.0)
    np.testing.assert_array_equal(out, rankdata(x) if m else out)
    # The same ranks as the two-array sort.
    keys, order, tk, to = (np.empty(m, np.int64) for _ in range(4))
    h8 = np.empty((8, 256), np.int64)
    argsort_keys(keys, sortable_keys(x, keys), order, tk, to, h8)
    ref = np.empty(m)
    average_ranks(x, order, ref, 0.0)
    np.testing.assert_array_equal(out, ref)
