"""``restarts``: msa over randomly perturbed presentation orders, keeping the best.

Search without learning: the yardstick a learned agent must beat at equal wall time.
The first try is msa's own order, so restarts is never worse than msa.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from mallocmuzero.env import cost_model
from mallocmuzero.env.solution import Solution, make_solution
from mallocmuzero.env.workload import Workload
from mallocmuzero.solvers.common import Deadline, game_for, load_kernels

# The share of a time limit restarts gets before a search plays from its best order
# (restarts_then), when the caller names none: restarts then the agent is the best learned
# solver measured at equal time (BENCHMARKS.md (h), BENCHMARKS-curve.md); the share
# hardly matters there.
HYBRID_SHARE = 0.5
# The share of the limit the search first plays from msa's own order in that hybrid
# (restarts_then's own_order_share), when the caller names none: 0, since 0.4 measured
# about even at equal time, better on unseen families, worse on the large built-in
# programs at 5 s (README, --own-order-share).
OWN_ORDER_SHARE = 0.0


def perturbed_order(workload: Workload, key: np.ndarray, sigma: float, rng: np.random.Generator):
    """Unpinned buffers sorted by MSA's key times log-normal noise of width ``sigma``."""
    noisy = key * np.exp(sigma * rng.standard_normal(key.shape))
    return cost_model.order_by_key(workload, noisy)


@dataclasses.dataclass(frozen=True)
class RestartsResult:
    """What a restarts search found: seconds saved, the placement, its order, tries made.

    ``order`` is None when msa's own order stayed the best.
    """

    saved: float
    offsets: np.ndarray
    order: np.ndarray | None
    tries: int


def search_orders(
    workload: Workload,
    time_limit: float | None = 10.0,
    tries: int | None = None,
    seed: int = 0,
    max_sigma: float = 1.0,
) -> RestartsResult:
    """Run msa on perturbed orders until ``time_limit`` seconds or ``tries`` orders: the best."""
    if time_limit is None and tries is None:
        raise ValueError("restarts needs a time limit or a number of tries")
    if time_limit is not None:
        load_kernels("restarts")  # start-up, before the clock
    deadline = Deadline(time_limit)
    rng = np.random.default_rng(seed)
    game = game_for(workload)
    key = cost_model.memory_boundedness(workload)
    best = RestartsResult(game.msa_rollout(0), game.offsets(0), None, 1)
    done = 1
    while (tries is None or done < tries) and not deadline.expired():
        order = perturbed_order(workload, key, max_sigma * rng.random(), rng)
        game.reset(0, 0, workload.capacity, order=order)
        saved = game.msa_rollout(0)
        if saved > best.saved:
            best = RestartsResult(saved, game.offsets(0), order, 0)
        done += 1
    return dataclasses.replace(best, tries=done)


def solve_restarts(
    workload: Workload,
    time_limit: float | None = 10.0,
    tries: int | None = None,
    seed: int = 0,
    max_sigma: float = 1.0,
) -> Solution:
    """Run msa on perturbed orders until ``time_limit`` seconds or ``tries`` orders."""
    started = time.monotonic()
    best = search_orders(workload, time_limit, tries, seed, max_sigma)
    extra = {"tries": best.tries, "wall_time_s": time.monotonic() - started}
    return make_solution(workload, best.offsets, "restarts", extra=extra)


def restarts_then(
    workload: Workload,
    refine: Callable[[np.ndarray | None, float], Solution],
    time_limit: float,
    share: float = 0.5,
    seed: int = 0,
    own_order_share: float = 0.0,
    own_order: Callable[[float], Solution] | None = None,
) -> Solution:
    """Restarts for ``share`` of ``time_limit``, then ``refine`` from the best order found.

    ``refine(order, seconds)`` searches from that order (None: msa's own order) for the
    seconds left, for example the agent playing the game on that base order. With
    ``own_order_share`` > 0, a search first plays from msa's own order for at most that
    share of the limit (``own_order(seconds)``, by default ``refine(None, seconds)``; one
    that ends early leaves its time to the others), and restarts' share is of what is left.
    The best placement of every phase is the answer; ``extra`` holds their figures
    (``from_refine``: a refine phase's placement won; ``from_own_order``: the first's did).
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"the restarts share must be in (0, 1) (got {share})")
    if not 0.0 <= own_order_share < 1.0:
        raise ValueError(f"the own-order share must be in [0, 1) (got {own_order_share})")
    load_kernels("restarts")  # start-up, before the clock
    started = time.monotonic()

    def left() -> float:
        return max(0.0, time_limit - (time.monotonic() - started))

    first = own_order or (lambda seconds: refine(None, seconds))
    own = first(own_order_share * time_limit) if own_order_share else None
    found = search_orders(workload, share * left(), seed=seed)
    refined = refine(found.order, left())
    phases = [(cost_model.total_time(workload, found.offsets >= 0), "restarts", found.offsets),
              (refined.estimated_time_s, "refine", refined.offsets)]  # fmt: skip
    if own is not None:
        phases.append((own.estimated_time_s, "own order", own.offsets))
    _, winner, offsets = min(phases, key=lambda phase: phase[0])  # ties: the earlier phase
    extra = {**refined.extra, "restarts_tries": found.tries,
             "from_refine": winner != "restarts", "from_own_order": winner == "own order",
             "wall_time_s": time.monotonic() - started}  # fmt: skip
    name = f"{refined.solver}+restarts+{refined.solver}" if own else f"restarts+{refined.solver}"
    return make_solution(workload, offsets, name, extra=extra)
