"""The evaluator role: the newest parameters on held-out programs, against msa.

A plain class; the distributed runner wraps it in a Ray actor and logs what it returns:
the agent's gain over msa per held-out case and on average, and memory-map PNGs of the
agent's and msa's solutions for the first few cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from mallocmuzero.actors.evaluate import agent_solve
from mallocmuzero.cluster.components import agent_network, agent_search, observation_spec
from mallocmuzero.env.render import render_memory_map
from mallocmuzero.env.workload import Workload, resolve_capacity
from mallocmuzero.solvers.greedy import solve_msa


def evaluation_cases(
    workloads: Sequence[Workload], fractions: Sequence[float], max_workloads: int
) -> list[tuple[str, Workload]]:
    """``(name@fraction, workload)`` of the smallest ``max_workloads`` programs (0 = all)."""
    chosen = sorted(workloads, key=lambda w: (w.num_buffers, w.name))
    if max_workloads:
        chosen = chosen[:max_workloads]
    return [(f"{w.name}@{f:g}", resolve_capacity(w, fraction=f)) for w in chosen for f in fractions]


class EvaluatorService:
    """Plays each case greedily with search and compares it with msa."""

    def __init__(self, config: ml_collections.ConfigDict, workloads: list[Workload]) -> None:
        e = config.evaluator
        self._net = agent_network(config)
        self._spec = observation_spec(config)
        self._search = agent_search(config, self._net)
        self._cases = evaluation_cases(workloads, e.fractions, e.max_workloads)
        self._msa = [solve_msa(w) for _, w in self._cases]
        self._images = e.images

    def evaluate(self, params: Any, version: int) -> dict[str, Any]:
        """Gain over msa per case (``gain/NAME@F``), their mean, and memory-map PNGs."""
        gains, images = {}, {}
        for i, ((name, workload), msa) in enumerate(zip(self._cases, self._msa, strict=True)):
            agent = agent_solve(workload, params, self._net, self._spec, search=self._search)
            gains[f"gain/{name}"] = msa.estimated_time_s / agent.estimated_time_s - 1
            if i < self._images:
                images[f"memory_map/{name}/agent"] = render_memory_map(workload, agent)
                images[f"memory_map/{name}/msa"] = render_memory_map(workload, msa)
        gains["gain/mean"] = float(np.mean(list(gains.values())))
        return {"version": version, "scalars": gains, "images": images}
