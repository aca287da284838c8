"""``restarts``: msa over randomly perturbed presentation orders, keeping the best.

Search without learning: the yardstick a learned agent must beat at equal wall time.
The first try is msa's own order, so restarts is never worse than msa.
"""

from __future__ import annotations

import numpy as np

from mallocmuzero.env import cost_model
from mallocmuzero.env.solution import Solution, make_solution
from mallocmuzero.env.workload import Workload
from mallocmuzero.solvers.common import Deadline, game_for


def perturbed_order(workload: Workload, key: np.ndarray, sigma: float, rng: np.random.Generator):
    """Unpinned buffers sorted by MSA's key times log-normal noise of width ``sigma``."""
    noisy = key * np.exp(sigma * rng.standard_normal(key.shape))
    return cost_model.order_by_key(workload, noisy)


def solve_restarts(
    workload: Workload,
    time_limit: float | None = 10.0,
    tries: int | None = None,
    seed: int = 0,
    max_sigma: float = 1.0,
) -> Solution:
    """Run msa on perturbed orders until ``time_limit`` seconds or ``tries`` orders."""
    if time_limit is None and tries is None:
        raise ValueError("restarts needs a time limit or a number of tries")
    deadline = Deadline(time_limit)
    rng = np.random.default_rng(seed)
    game = game_for(workload)
    key = cost_model.memory_boundedness(workload)
    best_saved = game.msa_rollout(0)
    best = game.offsets(0)
    done = 1
    while (tries is None or done < tries) and not deadline.expired():
        order = perturbed_order(workload, key, max_sigma * rng.random(), rng)
        game.reset(0, 0, workload.capacity, order=order)
        saved = game.msa_rollout(0)
        if saved > best_saved:
            best_saved, best = saved, game.offsets(0)
        done += 1
    return make_solution(
        workload, best, "restarts", extra={"tries": done, "wall_time_s": deadline.elapsed()}
    )
