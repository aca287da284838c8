"""Independent, slow reference implementations of the spec's rules, for the tests."""

from __future__ import annotations

import numpy as np


def reference_candidates(
    size: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    offsets: dict[int, int],
    b: int,
    capacity: int,
    n: int,
) -> list[int]:
    """Candidate offsets of buffer b (mallocgame.md section 3), written from the text."""
    busy = sorted(
        (offsets[p], offsets[p] + size[p])
        for p in offsets
        if start[p] < end[b] and start[b] < end[p]
    )
    gaps = []
    cursor = 0
    for lo, hi in busy:
        if lo > cursor:
            gaps.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < capacity:
        gaps.append((cursor, capacity))
    fitting = sorted((hi - lo, lo, hi) for lo, hi in gaps if hi - lo >= size[b])
    candidates = []
    for _, lo, hi in fitting:
        candidates.append(lo)
        if hi - size[b] != lo:
            candidates.append(hi - size[b])
    return candidates[:n]
