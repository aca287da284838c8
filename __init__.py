"""mallocmuzero: learn to map the tensors of ML programs onto fast memory with MuZero.

The public API (everything else is internal and may change)::

    import mallocmuzero as mmz

    workload = mmz.resolve_capacity(mmz.load_workload("w.json"), fraction=0.25)
    msa = mmz.solve(workload, "msa")                 # or solve_msa, solve_restarts, ...
    assert mmz.validation_errors(workload, msa.offsets, workload.capacity) == []
    agent = mmz.load_agent("checkpoints/pretrained")  # a trained agent's searches
    best = agent.solve(workload, samples=8)
    game = mmz.BatchedGame(mmz.GameBank.build([workload]), num_games=64)

Names load on first use, so ``import mallocmuzero`` stays cheap (no JAX, no Ray).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # workloads and solutions
    "Workload": "env.workload",
    "Hardware": "env.workload",
    "load_workload": "env.workload",
    "save_workload": "env.workload",
    "resolve_capacity": "env.workload",
    "Solution": "env.solution",
    "load_solution": "env.solution",
    "save_solution": "env.solution",
    "validation_errors": "env.solution",
    "import_minimalloc_csv": "env.importers.minimalloc",
    "import_xla_dump": "env.importers.xla_dump",
    "import_hlo_text": "env.importers.compile",
    # the game
    "GameBank": "env.game",
    "BatchedGame": "env.game",
    "ObservationSpec": "env.observation",
    "total_time": "env.cost_model",
    # solvers
    "solve_all_slow": "solvers.greedy",
    "solve_first_fit": "solvers.greedy",
    "solve_msa": "solvers.greedy",
    "solve_restarts": "solvers.restarts",
    "solve_beam": "solvers.beam",
    "solve_cpsat": "solvers.cpsat",
    "solve_packing": "solvers.packing",
    "solve_canonical": "solvers.packing",
    "solve_agent": "agent.solve",
    # the agent
    "make_search": "agent.search",
    "load_agent": "agent.solve",
    # training
    "load_config": "configs.loader",
    "ExperimentConfig": "configs.schema",
    "with_values": "configs.schema",
    "train_distributed": "cluster.launch",
    "train_sync": "cluster.launch",
}

__all__ = [*_EXPORTS, "solve"]


def solve(workload: Any, solver: str, **options: Any) -> Any:
    """Run the solver named ``solver`` (as ``mallocmuzero solve --solver``) on ``workload``.

    ``options`` are the solver's keyword arguments: ``time_limit``, ``seed``, ``width``,
    ``pick_candidates`` and ``pick_encoding`` (beam over game v2);
    for ``agent``: ``checkpoint``, ``samples``, ``seed``, ``rollout_weights``.
    """
    from mallocmuzero.solvers.registry import AGENT
    from mallocmuzero.solvers.registry import solve as run

    if solver == AGENT:
        from mallocmuzero.agent.solve import solve_agent

        return solve_agent(workload, **options)
    return run(solver, workload, **options)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mallocmuzero' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mallocmuzero.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
