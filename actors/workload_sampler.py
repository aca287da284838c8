"""Training data: which workloads and capacities the self-play games draw.

Workloads come from a folder (the built-in suite by default); a built-in program is used
only if its split matches the config's (``train`` by default), so held-out programs never
enter training; imported workloads unknown to the suite count as ``train``. Capacities are
drawn uniformly as a fraction of each workload's placeable peak.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mallocmuzero.env import cost_model
from mallocmuzero.env.suite import split_of
from mallocmuzero.env.workload import Workload, load_workload, placeable_peak
from mallocmuzero.errors import ArgumentError, UserError
from mallocmuzero.solvers.restarts import perturbed_order


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
    """Draws (workload index, capacity) with a uniform fraction of the placeable peak.

    With ``base_order_share`` > 0, that share of the games also gets a base order of the
    kind restarts draws (mallocgame.md 3c): msa's key times log-normal noise, its width
    drawn per game uniformly in ``[0, base_order_sigma)``; the draw is then
    ``(workload index, capacity, order)``. With a share of 0 the draws, and the random
    numbers they use, are exactly those of msa's base order alone.

    With ``base_order_tries`` N > 1 such a game's base order is instead the one restarts
    would keep after N tries at the game's capacity: msa's own order and N - 1 perturbed
    ones (each its own width, drawn uniformly in ``[0, base_order_sigma)``), the best by
    ``score_order(workload index, capacity, order)``, the seconds msa's rule saves over
    it (:func:`~mallocmuzero.env.game.msa_scorer`); when msa's own order stays the best
    the draw has no order, as restarts hands its refinement none.
    """

    def __init__(
        self,
        workloads: list[Workload],
        low: float,
        high: float,
        base_order_share: float = 0.0,
        base_order_sigma: float = 1.0,
        base_order_tries: int = 1,
        score_order: Callable[[int, int, np.ndarray | None], float] | None = None,
    ) -> None:
        if not 0 < low <= high:
            raise UserError(f"capacity fractions must satisfy 0 < min <= max (got {low}, {high})")
        if not 0.0 <= base_order_share <= 1.0:
            raise ArgumentError("base_order_share", f"must be in [0, 1] (got {base_order_share})")
        if base_order_tries < 1:
            raise ArgumentError("base_order_tries", f"must be at least 1 (got {base_order_tries})")
        if base_order_tries > 1 and score_order is None:
            raise ArgumentError("score_order", "is needed when base_order_tries > 1")
        self.peaks = [placeable_peak(w) for w in workloads]
        self.smallest = [
            int(w.size[cost_model.presentation_order(w)].min(initial=2**62)) for w in workloads
        ]
        self.low, self.high = low, high
        self.workloads = workloads
        self.share, self.sigma = base_order_share, base_order_sigma
        self.tries, self.score_order = base_order_tries, score_order
        self.keys = [cost_model.memory_boundedness(w) for w in workloads] if self.share else []

    def __call__(self, rng: np.random.Generator) -> tuple:
        """One draw; retries capacities under which no buffer fits (an empty game)."""
        for _ in range(100):
            w = int(rng.integers(len(self.peaks)))
            capacity = int(self.peaks[w] * rng.uniform(self.low, self.high))
            if capacity >= self.smallest[w]:
                if self.share and rng.random() < self.share:
                    return (w, capacity, *self._base_order(w, capacity, rng))
                return w, capacity
        raise UserError("no workload has a buffer that fits the sampled capacities")

    def _base_order(self, w: int, capacity: int, rng: np.random.Generator) -> tuple:
        """``(order,)`` for a perturbed base order; ``()`` when msa's own order is kept."""
        workload, key = self.workloads[w], self.keys[w]
        if self.tries == 1:
            return (perturbed_order(workload, key, self.sigma * rng.random(), rng),)
        best, best_saved = None, self.score_order(w, capacity, None)
        for _ in range(self.tries - 1):
            order = perturbed_order(workload, key, self.sigma * rng.random(), rng)
            saved = self.score_order(w, capacity, order)
            if saved > best_saved:
                best, best_saved = order, saved
        return () if best is None else (best,)
