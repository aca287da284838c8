"""The agent as a solver: play a workload with search and keep the best placement.

``--solver agent`` is the agent alone: one greedy search rollout, plus optional sampled
(Gumbel) rollouts, each judged by the exact cost model; never another solver's solution.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from mallocmuzero.agent.search import make_search
from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.env.solution import Solution, make_solution
from mallocmuzero.env.workload import Workload


def play_out(game: BatchedGame, search, params: Any, greedy: bool, seed: int) -> None:
    """Play every slot of ``game`` to the end with the search."""
    rng = jax.random.PRNGKey(seed)
    features, legal = game.observe()
    while not all(game.is_done(g) for g in range(game.num_games)):
        rng, key = jax.random.split(rng)
        actions = np.asarray(search(params, key, features, legal, greedy=greedy).action)
        out = game.step(actions)
        features, legal = out.features, out.legal


def agent_solve(
    workload: Workload,
    params: Any,
    net,
    spec: ObservationSpec,
    num_simulations: int = 16,
    samples: int = 0,
    seed: int = 0,
    search=None,
) -> Solution:
    """Greedy search rollout plus ``samples`` sampled rollouts; the best by the cost model."""
    search = search or make_search(net, num_simulations=num_simulations)
    bank = GameBank.build([workload])
    candidates = []
    for greedy, slots in ((True, 1), (False, samples)):
        if slots == 0:
            continue
        game = BatchedGame(bank, slots, spec=spec)
        game.reset_all([0] * slots, [workload.capacity] * slots)
        play_out(game, search, params, greedy, seed)
        candidates += [(game.saved_seconds(g), game.offsets(g)) for g in range(slots)]
    best = max(candidates, key=lambda c: c[0])[1]
    return make_solution(workload, best, "agent", extra={"rollouts": len(candidates)})
