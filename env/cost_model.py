"""Cost model v1 (mallocgame.md section 2): a roofline over the schedule.

    time(F) = sum_t repeat_t * max(flops_t / peak_flops, sum_{(b, bytes) in t} bytes / bw(b))

Pure numpy functions over a :class:`~mallocmuzero.env.workload.Workload`. The game's
numba kernels evaluate the same model incrementally; these functions are the reference.
"""

from __future__ import annotations

import numpy as np

from mallocmuzero.env.workload import Hardware, Workload


def compute_times(workload: Workload) -> np.ndarray:
    """Compute-bound time of one run of each instruction, ``flops_t / peak_flops``."""
    return workload.flops / workload.hardware.peak_flops


def access_instructions(workload: Workload) -> np.ndarray:
    """Instruction index of every access (aligned with ``access_buffer``)."""
    counts = np.diff(workload.access_ptr)
    return np.repeat(np.arange(workload.num_instructions, dtype=np.int64), counts)


def memory_times(workload: Workload, fast: np.ndarray) -> np.ndarray:
    """Memory time of one run of each instruction, given a boolean fast-memory mask [B]."""
    hw = workload.hardware
    bw = np.where(fast[workload.access_buffer], hw.fast_bandwidth, hw.slow_bandwidth)
    per_access = workload.access_bytes / bw
    return np.bincount(
        access_instructions(workload), weights=per_access, minlength=workload.num_instructions
    )


def instruction_times(workload: Workload, fast: np.ndarray) -> np.ndarray:
    """Time of each instruction including its repeat count."""
    return workload.repeat * np.maximum(compute_times(workload), memory_times(workload, fast))


def total_time(workload: Workload, fast: np.ndarray | None = None) -> float:
    """``time(F)`` for a fast-memory mask (all slow when ``fast`` is None)."""
    if fast is None:
        fast = np.zeros(workload.num_buffers, dtype=bool)
    return float(instruction_times(workload, np.asarray(fast, dtype=bool)).sum())


def merged_accesses(workload: Workload) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accesses merged per (buffer, instruction), sorted by buffer then instruction.

    Returns ``(buffer, instruction, bytes)`` arrays. A buffer read twice by one
    instruction contributes one merged access.
    """
    t = access_instructions(workload)
    key = workload.access_buffer * max(1, workload.num_instructions) + t
    unique, inverse = np.unique(key, return_inverse=True)
    merged_bytes = np.bincount(inverse, weights=workload.access_bytes, minlength=unique.size)
    n = max(1, workload.num_instructions)
    return unique // n, unique % n, merged_bytes


def seconds_saved_per_byte(hardware: Hardware) -> float:
    """How much less one byte costs in fast memory than in slow memory."""
    return 1.0 / hardware.slow_bandwidth - 1.0 / hardware.fast_bandwidth


def standalone_savings(workload: Workload) -> np.ndarray:
    """``time({}) - time({b})`` for every buffer b, in seconds (pinned buffers included)."""
    hw = workload.hardware
    buf, t, nbytes = merged_accesses(workload)
    compute = compute_times(workload)
    slow_mem = memory_times(workload, np.zeros(workload.num_buffers, dtype=bool))
    delta = nbytes * seconds_saved_per_byte(hw)
    before = np.maximum(compute[t], slow_mem[t])
    after = np.maximum(compute[t], slow_mem[t] - delta)
    saving = workload.repeat[t] * (before - after)
    return np.bincount(buf, weights=saving, minlength=workload.num_buffers)


def round_significant(values: np.ndarray, digits: int = 9) -> np.ndarray:
    """Round to ``digits`` significant digits, so float noise never breaks a genuine tie."""
    return np.array([float(f"{v:.{digits - 1}e}") for v in values], dtype=np.float64)


def memory_boundedness(workload: Workload) -> np.ndarray:
    """MSA's sort key per buffer: standalone saving over sqrt(size), 9 significant digits."""
    raw = standalone_savings(workload) / np.sqrt(workload.size.astype(np.float64))
    return round_significant(raw)


def presentation_order(workload: Workload) -> np.ndarray:
    """All unpinned buffers in MSA order (spec section 3), before the capacity filter.

    Memory-boundedness descending, then size descending, then live-range length
    descending, then id ascending.
    """
    return order_by_key(workload, memory_boundedness(workload))


def order_by_key(workload: Workload, key: np.ndarray) -> np.ndarray:
    """Unpinned buffers by ``key`` descending, then size, live-range length, id.

    Size and length descending, id ascending: MSA's order with MSA's key; restarts
    perturbs the key.
    """
    length = workload.end - workload.start
    order = np.lexsort((workload.buffer_ids, -length, -workload.size, -key))
    return order[~workload.pinned[order]].astype(np.int64)


def game_order(workload: Workload, capacity: int | None = None) -> np.ndarray:
    """Buffers the game presents at ``capacity`` (default: the workload's): unpinned, fitting."""
    capacity = workload.capacity if capacity is None else capacity
    order = presentation_order(workload)
    return order[workload.size[order] <= capacity]
