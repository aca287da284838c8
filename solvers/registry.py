"""Solver names of the CLI and benchmarks, dispatched to their functions."""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from pathlib import Path

from mallocmuzero.env.solution import Solution
from mallocmuzero.env.workload import Workload
from mallocmuzero.errors import UserError
from mallocmuzero.solvers.beam import solve_beam
from mallocmuzero.solvers.greedy import solve_all_slow, solve_first_fit, solve_msa
from mallocmuzero.solvers.restarts import solve_restarts


def _cpsat(workload: Workload, time_limit: float | None, seed: int, width: int) -> Solution:
    from mallocmuzero.solvers.cpsat import solve_cpsat  # ortools is slow to import

    return solve_cpsat(workload, time_limit=time_limit, seed=seed)


SOLVERS: dict[str, Callable[[Workload, float | None, int, int], Solution]] = {
    "all-slow": lambda w, limit, seed, width: solve_all_slow(w),
    "first-fit": lambda w, limit, seed, width: solve_first_fit(w),
    "msa": lambda w, limit, seed, width: solve_msa(w),
    "restarts": lambda w, limit, seed, width: solve_restarts(
        w, time_limit=limit or 10.0, seed=seed
    ),
    "beam": lambda w, limit, seed, width: solve_beam(w, width=width, time_limit=limit),
    "cpsat": _cpsat,
}


AGENT = "agent"  # the trained agent: cluster.components.solve_agent


def pretrained_checkpoint() -> Path:
    """The agent checkpoint shipped inside the installed package (wheel or checkout)."""
    return Path(str(importlib.resources.files("mallocmuzero") / "checkpoints" / "pretrained"))


def solve(
    name: str,
    workload: Workload,
    time_limit: float | None = None,
    seed: int = 0,
    width: int = 16,
) -> Solution:
    """Run search solver ``name`` on ``workload`` (at the workload's capacity).

    The agent (``AGENT``) needs a checkpoint's network: ``cluster.components.solve_agent``
    runs it, and the CLI and the package's ``solve`` dispatch to it.
    """
    if name not in SOLVERS:
        names = ", ".join([*SOLVERS, AGENT])
        raise UserError(f"unknown solver {name!r}; choose one of {names}")
    if time_limit is not None and time_limit <= 0:
        raise UserError(f"--time-limit must be > 0 (got {time_limit})")
    return SOLVERS[name](workload, time_limit, seed, width)
