"""Solver names of the CLI and benchmarks, dispatched to their functions."""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from mallocmuzero.env.observation import SHIPPED_GAME
from mallocmuzero.env.pick_rules import pick_sources
from mallocmuzero.env.solution import Solution
from mallocmuzero.env.workload import Workload
from mallocmuzero.errors import UserError, check_time_limit
from mallocmuzero.solvers.beam import solve_beam
from mallocmuzero.solvers.greedy import solve_all_slow, solve_first_fit, solve_msa
from mallocmuzero.solvers.packing import solve_canonical, solve_packing
from mallocmuzero.solvers.restarts import solve_restarts


class BeamShape(NamedTuple):
    """The beam's width and the game it searches (K pick slots > 1: game v2)."""

    width: int = 16
    pick_candidates: int = SHIPPED_GAME.pick_candidates
    pick_encoding: str = SHIPPED_GAME.pick_encoding


def _cpsat(workload: Workload, time_limit: float | None, seed: int, beam: BeamShape) -> Solution:
    from mallocmuzero.solvers.cpsat import solve_cpsat  # ortools is slow to import

    return solve_cpsat(workload, time_limit=time_limit, seed=seed)


def _beam(workload: Workload, time_limit: float | None, seed: int, beam: BeamShape) -> Solution:
    return solve_beam(workload, beam.width, time_limit, 8, beam.pick_candidates, beam.pick_encoding)


SOLVERS: dict[str, Callable[[Workload, float | None, int, BeamShape], Solution]] = {
    "all-slow": lambda w, limit, seed, beam: solve_all_slow(w),
    "first-fit": lambda w, limit, seed, beam: solve_first_fit(w),
    "msa": lambda w, limit, seed, beam: solve_msa(w),
    "restarts": lambda w, limit, seed, beam: solve_restarts(w, time_limit=limit or 10.0, seed=seed),
    "beam": _beam,
    "cpsat": _cpsat,
    "packing": lambda w, limit, seed, beam: solve_packing(w, time_limit=limit or 10.0, seed=seed),
    "canonical": lambda w, limit, seed, beam: solve_canonical(
        w, time_limit=limit or 10.0, seed=seed
    ),
}


AGENT = "agent"  # the trained agent: agent.solve.solve_agent


def pretrained_checkpoint() -> Path:
    """The agent checkpoint shipped inside the installed package (wheel or checkout)."""
    return Path(str(importlib.resources.files("mallocmuzero") / "checkpoints" / "pretrained"))


def solve(
    name: str,
    workload: Workload,
    time_limit: float | None = None,
    seed: int = 0,
    width: int = BeamShape().width,
    pick_candidates: int = BeamShape().pick_candidates,
    pick_encoding: str = BeamShape().pick_encoding,
) -> Solution:
    """Run search solver ``name`` on ``workload`` (at the workload's capacity).

    ``width``, ``pick_candidates`` and ``pick_encoding`` shape the beam (game v2 when
    ``pick_candidates`` > 1; by default the shipped game's); the other solvers ignore them.

    The agent (``AGENT``) needs a checkpoint's network: ``agent.solve.solve_agent``
    runs it, and the CLI and the package's ``solve`` dispatch to it.
    """
    if name not in SOLVERS:
        names = ", ".join([*SOLVERS, AGENT])
        raise UserError(f"unknown solver {name!r}; choose one of {names}")
    check_time_limit(time_limit)
    try:
        beam = BeamShape(width, pick_candidates, pick_encoding)
        if name == "beam":
            pick_sources(pick_candidates, pick_encoding)  # the shape's own check
            if width < 1:
                raise ValueError(f"beam width must be >= 1 (got {width})")
    except ValueError as error:
        raise UserError(f"beam: {error}") from None
    return SOLVERS[name](workload, time_limit, seed, beam)
