"""Training data: which workloads and capacities the self-play games draw.

Workloads come from a folder (the built-in suite by default); a built-in program is used
only if its split matches the config's (``train`` by default), so held-out programs never
enter training; imported workloads unknown to the suite count as ``train``. Capacities are
drawn uniformly as a fraction of each workload's placeable peak.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mallocmuzero.env import cost_model
from mallocmuzero.env.suite import split_of
from mallocmuzero.env.workload import Workload, load_workload, placeable_peak
from mallocmuzero.errors import UserError


def load_split(folder: str, split: str) -> list[Workload]:
    """The workloads of ``folder`` that belong to ``split`` (sorted by name)."""
    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"{folder}: no workload folder (run 'make workloads')")
    workloads = [load_workload(p) for p in sorted(path.glob("*.json"))]
    chosen = [w for w in workloads if split_of(w.name) == split]
    if not chosen:
        raise UserError(f"{folder}: no workloads of split {split!r}")
    return chosen


class CapacitySampler:
    """Draws (workload index, capacity) with a uniform fraction of the placeable peak."""

    def __init__(self, workloads: list[Workload], low: float, high: float) -> None:
        if not 0 < low <= high:
            raise UserError(f"capacity fractions must satisfy 0 < min <= max (got {low}, {high})")
        self.peaks = [placeable_peak(w) for w in workloads]
        self.smallest = [
            int(w.size[cost_model.presentation_order(w)].min(initial=2**62)) for w in workloads
        ]
        self.low, self.high = low, high

    def __call__(self, rng: np.random.Generator) -> tuple[int, int]:
        """One draw; retries capacities under which no buffer fits (an empty game)."""
        for _ in range(100):
            w = int(rng.integers(len(self.peaks)))
            capacity = int(self.peaks[w] * rng.uniform(self.low, self.high))
            if capacity >= self.smallest[w]:
                return w, capacity
        raise UserError("no workload has a buffer that fits the sampled capacities")
