"""Random workloads for tests and benchmarks (the real ones come from XLA, see importers)."""

from __future__ import annotations

import numpy as np

from mallocmuzero.env.workload import DEFAULT_HARDWARE, Hardware, Workload, build_workload


def random_workload(
    seed: int,
    num_buffers: int = 30,
    num_instructions: int = 40,
    pinned_fraction: float = 0.1,
    hardware: Hardware = DEFAULT_HARDWARE,
    capacity_fraction: float = 0.3,
) -> Workload:
    """A valid random workload: buffers with random live ranges, sizes and accesses.

    Sizes are log-uniform from 256 B to 4 MiB; flops are drawn so that instructions mix
    compute-bound and memory-bound ones. Capacity is a fraction of the total size.
    """
    rng = np.random.default_rng(seed)
    t_max = num_instructions
    starts = rng.integers(0, t_max, size=num_buffers)
    lengths = np.minimum(rng.geometric(0.15, size=num_buffers), t_max - starts)
    ends = starts + np.maximum(lengths, 1)
    sizes = np.exp(rng.uniform(np.log(256), np.log(4 << 20), size=num_buffers)).astype(int)
    pinned = rng.random(num_buffers) < pinned_fraction
    accesses: list[list[list[int]]] = [[] for _ in range(t_max)]
    for b in range(num_buffers):
        touched = {int(starts[b])} | {
            int(t) for t in rng.integers(starts[b], ends[b], size=rng.integers(1, 4))
        }
        for t in sorted(touched):
            accesses[t].append([b, int(sizes[b] * rng.uniform(0.5, 2.0))])
    instructions = []
    for t in range(t_max):
        total_bytes = sum(nb for _, nb in accesses[t])
        intensity = rng.choice([1.0, 10.0, 50.0, 200.0])
        instructions.append({"flops": float(total_bytes * intensity), "accesses": accesses[t]})
        if rng.random() < 0.1:
            instructions[-1]["repeat"] = int(rng.integers(2, 5))
    buffers = [
        {
            "id": b,
            "size": int(sizes[b]),
            "start": int(starts[b]),
            "end": int(ends[b]),
            "pinned": bool(pinned[b]),
        }
        for b in range(num_buffers)
    ]
    capacity = max(1, int(sizes.sum() * capacity_fraction / max(1, t_max / 10)))
    return build_workload(
        name=f"random-{seed}",
        instructions=instructions,
        buffers=buffers,
        hardware=hardware,
        capacity=capacity,
    )
