"""The evaluator role: the newest parameters on held-out programs, against msa.

A plain class; the distributed runner wraps it in a Ray actor and logs what it returns.
The held-out cases (every held-out program at every ``evaluator.fractions`` capacity)
are too many to play at every evaluation, so each evaluation plays the next large case
(``evaluator.large_buffers`` buffers or more; the small programs are where msa already
finds the best known mapping) and then the other cases in rotation until
``evaluator.budget_s`` is spent. It returns the gain over msa of every case it played,
their mean, the mean over its large cases, and memory-map PNGs of the first few.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mallocmuzero.agent.rollouts import agent_solve
from mallocmuzero.configs.schema import EvaluatorConfig
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.env.render import render_memory_map
from mallocmuzero.env.workload import Workload, resolve_capacity
from mallocmuzero.memory import release_free_memory
from mallocmuzero.solvers.greedy import solve_msa
from mallocmuzero.solvers.restarts import solve_restarts


def evaluation_cases(
    workloads: Sequence[Workload], fractions: Sequence[float]
) -> list[tuple[str, Workload]]:
    """``(name@fraction, workload)`` for every program (smallest first) and fraction."""
    chosen = sorted(workloads, key=lambda w: (w.num_buffers, w.name))
    return [(f"{w.name}@{f:g}", resolve_capacity(w, fraction=f)) for w in chosen for f in fractions]


def rotation_order(num_cases: int, large: Sequence[int], evaluation: int) -> list[int]:
    """The order in which evaluation number ``evaluation`` tries the cases.

    First the next large case (round robin over ``large``, when there is one), then every
    other case in round robin, starting where evaluation ``evaluation`` falls in the
    cycle, so successive evaluations under a budget cover every case in turn.
    """
    first = [large[evaluation % len(large)]] if large else []
    start = evaluation % num_cases if num_cases else 0
    rest = [(start + k) % num_cases for k in range(num_cases)]
    return first + [i for i in rest if i not in first]


class EvaluatorService:
    """Plays held-out cases greedily with search and compares them with msa."""

    def __init__(
        self,
        make_parts: Callable[[], tuple[ObservationSpec, Callable]],
        settings: EvaluatorConfig,
        workloads: list[Workload],
    ) -> None:
        """``make_parts`` builds the spec and search; ``settings`` is the config's evaluator."""
        self._spec, self._search = make_parts()
        self._cases = evaluation_cases(workloads, settings.fractions)
        self._large = [
            i for i, (_, w) in enumerate(self._cases) if w.num_buffers >= settings.large_buffers
        ]
        self._msa = [solve_msa(w) for _, w in self._cases]
        self._images, self._budget_s = settings.images, settings.budget_s
        self._evaluations = 0

    def evaluate(self, params: Any, version: int) -> dict[str, Any]:
        """Gains over msa (``gain/NAME@F``, ``gain/mean``, ``gain/large_mean``) and PNGs.

        Each case also gets restarts for as long as the agent took: ``ratio/NAME@F`` and
        ``ratio/mean`` are the agent's speed-up over restarts at equal time (above 1: the
        agent is better). The first case of the rotation is always played; the others
        while the budget lasts.
        """
        started = time.monotonic()
        gains, ratios, images, large = {}, {}, {}, []
        order = rotation_order(len(self._cases), self._large, self._evaluations)
        for i in order:
            if gains and time.monotonic() - started >= self._budget_s:
                break
            (name, workload), msa = self._cases[i], self._msa[i]
            agent = agent_solve(workload, params, self._spec, self._search)
            gains[f"gain/{name}"] = gain = msa.estimated_time_s / agent.estimated_time_s - 1
            seconds = max(float(agent.extra.get("wall_time_s", 0.0)), 1e-3)
            restarts = solve_restarts(workload, time_limit=seconds)
            ratios[f"ratio/{name}"] = restarts.estimated_time_s / agent.estimated_time_s
            if i in self._large:
                large.append(gain)
            if len(images) < 2 * self._images:
                images[f"memory_map/{name}/agent"] = render_memory_map(workload, agent)
                images[f"memory_map/{name}/msa"] = render_memory_map(workload, msa)
        self._evaluations += 1
        release_free_memory()  # a large program's game and memory maps are garbage now
        scalars = {**gains, "gain/mean": float(np.mean(list(gains.values())))}
        scalars.update(ratios, **{"ratio/mean": float(np.mean(list(ratios.values())))})
        if large:
            scalars["gain/large_mean"] = float(np.mean(large))
        scalars["cases"] = float(len(gains))
        return {"version": version, "scalars": scalars, "images": images}
