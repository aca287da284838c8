"""The canonical rollout's kernels: MiniMalloc's dynamic order played greedily.

Each step places the undecided buffer with the lowest feasible offset at that offset
(mallocgame.md section 3c); :func:`mallocmuzero.solvers.packing.solve_canonical` restarts
it over tie-breaks.
"""

from __future__ import annotations

import numpy as np

from mallocmuzero.env.jit import jit

NONE = -1


@jit
def _lowest_feasible(w, size, nbr_ptr, nbr, offsets, capacity):
    """The lowest offset where buffer w fits beside its placed neighbours, or NONE."""
    count = 0
    for j in range(nbr_ptr[w], nbr_ptr[w + 1]):
        if offsets[nbr[j]] >= 0:
            count += 1
    starts = np.empty(count, np.int64)
    ends = np.empty(count, np.int64)
    k = 0
    for j in range(nbr_ptr[w], nbr_ptr[w + 1]):
        u = nbr[j]
        if offsets[u] >= 0:
            starts[k], ends[k] = offsets[u], offsets[u] + size[u]
            k += 1
    order = np.argsort(starts)
    low = 0
    for i in order:
        if starts[i] >= low + size[w]:
            break
        low = max(low, ends[i])
    return low if low + size[w] <= capacity else NONE


@jit
def canonical_start(size, capacity, offsets, lowest, decided):
    """Begin a canonical rollout (:func:`canonical_steps`).

    Nothing placed, every lowest feasible offset 0; a buffer larger than the capacity is
    decided (slow).
    """
    offsets[:] = NONE
    for u in range(size.shape[0]):
        lowest[u] = 0 if size[u] <= capacity else NONE
        decided[u] = lowest[u] == NONE


@jit
def canonical_steps(size, nbr_ptr, nbr, key, capacity, offsets, lowest, decided, budget):
    """Up to ``budget`` placements of a canonical rollout; True once it is complete.

    The rollout plays MiniMalloc's dynamic order greedily (mallocgame.md 3c).
    Repeatedly the undecided buffer with the lowest feasible offset (ties: larger ``key``
    first) goes to that offset; a buffer that fits nowhere stays slow (-1). Only the
    neighbours of a placed buffer whose offset range it meets are looked at again. The
    state (``offsets``, ``lowest``, ``decided``) carries over between calls, so a caller
    checks its clock between them (one try on ten thousand buffers takes seconds).
    """
    n = size.shape[0]
    for _ in range(budget):
        best = NONE
        for u in range(n):
            if decided[u]:
                continue
            if (
                best == NONE
                or lowest[u] < lowest[best]
                or (lowest[u] == lowest[best] and key[u] > key[best])
            ):
                best = u
        if best == NONE:
            return True
        offsets[best] = lowest[best]
        decided[best] = True
        top = lowest[best] + size[best]
        for j in range(nbr_ptr[best], nbr_ptr[best + 1]):
            w = nbr[j]
            if not decided[w] and lowest[w] < top and lowest[best] < lowest[w] + size[w]:
                lowest[w] = _lowest_feasible(w, size, nbr_ptr, nbr, offsets, capacity)
                decided[w] = lowest[w] == NONE
    return False
