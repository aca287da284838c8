"""Training-data augmentations of real workloads (never applied to held-out programs).

* :func:`schedule_window`: a contiguous window of a long program's schedule, with the
  live ranges of the buffers it touches clipped to it (a shorter, different packing
  problem with the same local structure).
* :func:`jitter_sizes`: every buffer's size and its accesses scaled by a log-normal factor
  (new relative sizes, hence new packings, with the same schedule).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mallocmuzero.env.workload import Workload, build_workload, workload_to_dict


def schedule_window(workload: Workload, start: int, end: int) -> Workload:
    """The instructions ``[start, end)`` and the buffers live in them, re-indexed from 0."""
    if not 0 <= start < end <= workload.num_instructions:
        raise ValueError(f"bad window [{start}, {end}) of {workload.num_instructions} instructions")
    data = workload_to_dict(workload)
    buffers = []
    for b in data["buffers"]:
        lo, hi = max(b["start"], start), min(b["end"], end)
        if lo < hi:
            buffers.append({**b, "start": lo - start, "end": hi - start})
    keep = {b["id"] for b in buffers}
    instructions = []
    for instr in data["instructions"][start:end]:
        accesses = [a for a in instr["accesses"] if a[0] in keep]
        instructions.append({**instr, "accesses": accesses})
    return build_workload(
        name=f"{workload.name}[{start}:{end}]",
        instructions=instructions,
        buffers=buffers,
        hardware=workload.hardware,
        capacity=workload.capacity,
    )


def jitter_sizes(workload: Workload, rng: np.random.Generator, sigma: float = 0.3) -> Workload:
    """Scale each buffer's size and accesses by ``exp(sigma * N(0, 1))``."""
    factor = np.exp(sigma * rng.standard_normal(workload.num_buffers))
    size = np.maximum(1, np.round(workload.size * factor)).astype(np.int64)
    return dataclasses.replace(
        workload,
        name=f"{workload.name}~{int(rng.integers(1 << 30))}",
        size=size,
        access_bytes=workload.access_bytes * (size / workload.size)[workload.access_buffer],
    )


def augment(
    workloads: list[Workload],
    rng: np.random.Generator,
    windows: int,
    jitters: int,
    min_window: int = 64,
    sigma: float = 0.3,
) -> list[Workload]:
    """``windows`` random schedule windows and ``jitters`` size-jittered copies."""
    out = []
    long = [w for w in workloads if w.num_instructions >= 2 * min_window]
    for _ in range(windows if long else 0):
        w = long[int(rng.integers(len(long)))]
        length = int(rng.integers(min_window, w.num_instructions // 2 + 1))
        start = int(rng.integers(0, w.num_instructions - length + 1))
        window = schedule_window(w, start, start + length)
        if (~window.pinned).any():
            out.append(window)
    for _ in range(jitters):
        out.append(jitter_sizes(workloads[int(rng.integers(len(workloads)))], rng, sigma))
    return out
