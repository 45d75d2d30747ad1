"""Byte radix argsort of float rows, compiled with numba: the sort of the CPU kernels that rank.

Floats become signed 64-bit integers with the same order (:func:`sortable_keys`), which a
least-significant-digit radix sort on bytes orders in linear time (:func:`argsort_keys`):
faster than a comparison sort on the rows of a few hundred to tens of thousands of values that
the loss and the coherence measures rank, and stable.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["sortable_keys", "argsort_keys", "average_ranks", "argsort_packed32", "packed_average_ranks", "INDEX_MASK"]

#: The low 32 bits of a packed key (:func:`argsort_packed32`): the position the value came from.
INDEX_MASK = np.int64(0xFFFFFFFF)


@numba.njit(nogil=True, cache=True)
def sortable_keys(x, keys):
    """Write into ``keys`` (int64) integers ordered as the finite floats ``x`` (float32 or float64).

    A non-negative IEEE float compares like its bit pattern read as a signed integer; flipping
    the magnitude bits of the negative ones makes the map increasing. Returns the keys' width in
    bytes (that of ``x``'s dtype). ``-0.0`` must have been turned into ``+0.0`` (``v + 0.0``).
    """
    m = x.shape[0]
    if x.itemsize == 4:
        bits32 = x.view(np.int32)
        for k in range(m):
            b = np.int64(bits32[k])
            keys[k] = b ^ np.int64(0x7FFFFFFF) if b < 0 else b
        return 4
    bits64 = x.view(np.int64)
    for k in range(m):
        b = bits64[k]
        keys[k] = b ^ np.int64(0x7FFFFFFFFFFFFFFF) if b < 0 else b
    return 8


@numba.njit(nogil=True, cache=True)
def argsort_keys(keys, nbytes, perm, tmp_keys, tmp_perm, hist):
    """Ascending stable argsort of int64 ``keys`` of ``nbytes`` bytes (signed) into ``perm``.

    One pass builds every byte's histogram, then one scatter per byte, skipping the bytes on
    which all keys agree (often the exponent's). The top byte has its sign bit flipped so that
    negative keys come first. ``keys`` is overwritten; ``tmp_keys``, ``tmp_perm`` (length m) and
    ``hist`` (at least (nbytes, 256), int64) are scratch.
    """
    m = keys.shape[0]
    hist[:, :] = 0
    top = nbytes - 1
    for j in range(m):
        k = keys[j]
        for p in range(top):
            hist[p, (k >> (8 * p)) & 255] += 1
        hist[top, ((k >> (8 * top)) & 255) ^ 128] += 1
    for j in range(m):
        perm[j] = j
    if m == 0:
        return
    src_k, src_p, dst_k, dst_p = keys, perm, tmp_keys, tmp_perm
    swaps = 0
    for p in range(nbytes):
        flip = 128 if p == top else 0
        first = ((src_k[0] >> (8 * p)) & 255) ^ flip
        if hist[p, first] == m:
            continue
        total = 0
        for d in range(256):
            c = hist[p, d]
            hist[p, d] = total
            total += c
        for j in range(m):
            k = src_k[j]
            d = ((k >> (8 * p)) & 255) ^ flip
            q = hist[p, d]
            hist[p, d] = q + 1
            dst_k[q] = k
            dst_p[q] = src_p[j]
        src_k, dst_k = dst_k, src_k
        src_p, dst_p = dst_p, src_p
        swaps += 1
    if swaps % 2 == 1:  # the result lies in the scratch buffer
        for j in range(m):
            perm[j] = src_p[j]


@numba.njit(nogil=True, cache=True)
def average_ranks(x, order, out, shift):
    """Average ranks of ``x`` (ties share the mean of their positions 1..m), minus ``shift``, into
    ``out[order[q]]``; ``order`` is ``x``'s ascending argsort (:func:`argsort_keys`)."""
    m = x.shape[0]
    lo = 0
    while lo < m:
        hi = lo + 1
        v = x[order[lo]]
        while hi < m and x[order[hi]] == v:
            hi += 1
        rank = 0.5 * (lo + hi + 1) - shift  # the mean of positions lo + 1 .. hi
        for q in range(lo, hi):
            out[order[q]] = rank
        lo = hi


@numba.njit(nogil=True, cache=True)
def argsort_packed32(x, packed, tmp, hist):
    """Ascending stable argsort of the finite float32 ``x`` (length m < 2**32; ``-0.0`` turned
    into ``+0.0``), as int64 words ``key << 32 | position`` in sorted order.

    The key is :func:`sortable_keys`'s, shifted to be non-negative (so that its four bytes sort
    as unsigned digits); equal words' keys mean equal values. ``packed`` and ``tmp`` (length m,
    int64) are the two buffers of the sort and ``hist`` ((4, 256) int64) is scratch; the result
    is one of the two buffers, returned. Position ``q`` of the order is ``out[q] & INDEX_MASK``.
    """
    m = x.shape[0]
    bits = x.view(np.int32)
    hist[:, :] = 0
    for k in range(m):
        b = np.int64(bits[k])
        u = (b ^ np.int64(0x7FFFFFFF) if b < 0 else b) + np.int64(0x80000000)
        w = (u << 32) | k
        packed[k] = w
        hist[0, (w >> 32) & 255] += 1
        hist[1, (w >> 40) & 255] += 1
        hist[2, (w >> 48) & 255] += 1
        hist[3, (w >> 56) & 255] += 1
    src, dst = packed, tmp
    if m == 0:
        return src
    for d in range(4):
        shift = 32 + 8 * d
        if hist[d, (src[0] >> shift) & 255] == m:  # every key has this byte: nothing to do
            continue
        total = 0
        for v in range(256):
            c = hist[d, v]
            hist[d, v] = total
            total += c
        for j in range(m):
            w = src[j]
            v = (w >> shift) & 255
            q = hist[d, v]
            hist[d, v] = q + 1
            dst[q] = w
        src, dst = dst, src
    return src


@numba.njit(nogil=True, cache=True)
def packed_average_ranks(words, out, shift):
    """Average ranks (ties share the mean of their positions 1..m), minus ``shift``, into
    ``out[position]`` from the sorted words of :func:`argsort_packed32` (as :func:`average_ranks`)."""
    m = words.shape[0]
    lo = 0
    while lo < m:
        key = words[lo] >> 32
        hi = lo + 1
        while hi < m and (words[hi] >> 32) == key:
            hi += 1
        rank = 0.5 * (lo + hi + 1) - shift  # the mean of positions lo + 1 .. hi
        for q in range(lo, hi):
            out[words[q] & INDEX_MASK] = rank
        lo = hi
