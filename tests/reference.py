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
    """Candidate offsets of buffer b (mallocgame.md section 3), written from the text.

    Best fit first; where that list is cut at n, the lowest feasible offset takes the last
    slot if it is not in the list (section 3c).
    """
    candidates = reference_best_fit(size, start, end, offsets, b, capacity)[:n]
    lowest = reference_lowest_offset(size, start, end, offsets, b, capacity)
    if len(candidates) == n > 1 and lowest not in candidates:
        candidates[-1] = lowest
    return candidates


def reference_best_fit(size, start, end, offsets: dict[int, int], b: int, capacity: int) -> list:
    """Every gap's bottom, then its top, by gap size ascending (ties: lower gap first)."""
    gaps = reference_gaps(size, start, end, offsets, b, capacity)
    candidates = []
    for _, lo, hi in sorted((hi - lo, lo, hi) for lo, hi in gaps if hi - lo >= size[b]):
        candidates += [lo] if hi - size[b] == lo else [lo, hi - size[b]]
    return candidates


def reference_gaps(size, start, end, offsets: dict[int, int], b: int, capacity: int) -> list:
    """The free ``(lo, hi)`` ranges over buffer b's live range, ascending."""
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
    return gaps


def reference_lowest_offset(size, start, end, offsets, b: int, capacity: int) -> int | None:
    """Buffer b's lowest feasible offset (mallocgame.md 3c), or None where it fits nowhere."""
    gaps = reference_gaps(size, start, end, offsets, b, capacity)
    return next((lo for lo, hi in gaps if hi - lo >= size[b]), None)


def _significant(value: float) -> float:
    return float(f"{value:.8e}")


def reference_rule_order(workload, rule: int) -> list[int]:
    """Unpinned buffers in pick rule ``rule``'s order (mallocgame.md section 3b, env docs)."""
    from mallocmuzero.env import cost_model

    saving = cost_model.standalone_savings(workload)
    size = workload.size.astype(float)
    life = (workload.end - workload.start).astype(float)
    keys = {
        0: lambda b: saving[b] / np.sqrt(size[b]),
        1: lambda b: saving[b],
        2: lambda b: saving[b] / size[b],
        3: lambda b: -size[b],
        4: lambda b: -life[b],
        5: lambda b: -float(workload.start[b]),
        6: lambda b: float(workload.end[b]),
        7: lambda b: saving[b] / (size[b] * life[b]),
    }
    unpinned = [b for b in range(workload.num_buffers) if not workload.pinned[b]]
    if rule not in keys:  # the dynamic rule's tie order: area, then msa's order
        clock = np.concatenate([[0], np.cumsum(workload.repeat)])
        area = [size[b] * (clock[workload.end[b]] - clock[workload.start[b]]) for b in unpinned]
        msa = reference_rule_order(workload, 0)
        return sorted(msa, key=lambda b: (-area[unpinned.index(b)], msa.index(b)))
    key = keys[rule]
    return sorted(
        unpinned,
        key=lambda b: (
            -_significant(key(b)),
            -size[b],
            -life[b],
            int(workload.buffer_ids[b]),
        ),
    )


def reference_picks(rule_orders, undecided: list[int], sources, lowest=None) -> list[int]:
    """Buffer of each pick slot (-1: masked), given the undecided buffers in msa's order.

    ``lowest(b)`` is buffer b's lowest feasible offset (None: it fits nowhere), for the
    dynamic rule: the smallest first, ties in that rule's order.
    """
    from mallocmuzero.env.pick_rules import DYNAMIC_RULE

    pending = set(undecided)
    picks: list[int] = []
    for source in sources:
        if source == DYNAMIC_RULE:
            offsets = [(lowest(u), i, u) for i, u in enumerate(rule_orders[source]) if u in pending]
            offsets = [entry for entry in offsets if entry[0] is not None]
            b = min(offsets)[2] if offsets else -1
        elif source <= 0:
            b = undecided[-source] if -source < len(undecided) else -1
        else:
            b = next((u for u in rule_orders[source] if u in pending), -1)
        picks.append(-1 if b in picks else b)
    return picks


def check_solution_and_rewards(workload, offsets, total: float, placed: dict[int, int]) -> None:
    """A played game's final offsets are valid, are the placements made, and the rewards
    (``total`` seconds) sum to the time they save."""
    import pytest

    from mallocmuzero.env import cost_model
    from mallocmuzero.env.solution import validation_errors

    assert validation_errors(workload, offsets, workload.capacity) == []
    assert {int(b): int(o) for b, o in enumerate(offsets) if o >= 0} == placed
    saving = cost_model.total_time(workload) - cost_model.total_time(workload, offsets >= 0)
    assert total == pytest.approx(saving, rel=1e-9, abs=1e-18)
