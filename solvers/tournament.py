"""A tournament: the agent against the baselines, per workload and capacity.

``solve_agent`` is passed in (the caller loads the agent); every other solver comes from
this package. :mod:`~mallocmuzero.solvers.tournament_report` writes its rows as text.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from mallocmuzero.env.observation import SHIPPED_GAME
from mallocmuzero.env.solution import Solution
from mallocmuzero.env.workload import Workload
from mallocmuzero.solvers.greedy import solve_msa


@dataclasses.dataclass
class EvaluationRow:
    """One workload at one capacity: the agent against the baselines (times in seconds)."""

    workload: str
    fraction: float
    agent: float
    agent_wall_s: float
    msa: float
    restarts: float  # at the agent's wall time
    beam: float  # beam16, at the agent's wall time
    lookahead: float  # beam1: following the lookahead block's best completion, no learning
    cpsat: float
    cpsat_optimal: bool
    all_slow: float

    @property
    def gain_over_msa(self) -> float:
        """How much faster the agent's placement runs than msa's (ratio minus one)."""
        return self.msa / self.agent - 1

    @property
    def best_known(self) -> float:
        """The best time any solver found."""
        return min(self.agent, self.msa, self.restarts, self.beam, self.lookahead, self.cpsat)

    @property
    def headroom_recovered(self) -> float | None:
        """Share of msa's headroom (over the best baseline) the agent recovers."""
        best = min(self.msa, self.restarts, self.beam, self.lookahead, self.cpsat)
        if self.msa - best <= best * 1e-9:
            return None
        return (self.msa - self.agent) / (self.msa - best)

    @property
    def share_of_optimum(self) -> float | None:
        """The agent's share of the optimal saving, where cpsat proved the optimum."""
        if not self.cpsat_optimal or self.all_slow <= self.cpsat:
            return None
        return (self.all_slow - self.agent) / (self.all_slow - self.cpsat)


def evaluate(
    workloads: Sequence[Workload],
    fractions: Sequence[float],
    solve_agent: Callable[..., Solution],
    cpsat_time_limit: float = 30.0,
    progress: Callable[[str], None] | None = None,
    time_limit: float | None = None,
    pick: tuple[int, str] = (SHIPPED_GAME.pick_candidates, SHIPPED_GAME.pick_encoding),
) -> list[EvaluationRow]:
    """The agent, msa, restarts, beam16, beam1 and cpsat, per case.

    The beams play the agent's game: ``pick`` is its (pick slots K, encoding); K = 1 is v1.

    ``solve_agent(workload, time_limit=...)`` plays the agent. With ``time_limit``, it and
    every search (restarts, beam16, cpsat) get that many seconds; without it, restarts and
    beam16 get the agent's wall time and cpsat ``cpsat_time_limit``. beam1 (unbounded) is what
    following the lookahead observation alone achieves: the ablation that tells what
    learning adds to it.

    ``progress`` receives one line per finished case.
    """
    from mallocmuzero.env.workload import resolve_capacity
    from mallocmuzero.solvers.beam import solve_beam
    from mallocmuzero.solvers.cpsat import solve_cpsat
    from mallocmuzero.solvers.restarts import solve_restarts

    rows = []
    for workload in workloads:
        for fraction in fractions:
            w = resolve_capacity(workload, fraction=fraction)
            start = time.perf_counter()
            agent = solve_agent(w, time_limit=time_limit)
            wall = time.perf_counter() - start
            budget = wall if time_limit is None else time_limit
            msa = solve_msa(w)
            exact = solve_cpsat(w, time_limit=time_limit or cpsat_time_limit)
            rows.append(
                EvaluationRow(
                    workload=w.name,
                    fraction=fraction,
                    agent=agent.estimated_time_s,
                    agent_wall_s=wall,
                    msa=msa.estimated_time_s,
                    restarts=solve_restarts(w, time_limit=budget).estimated_time_s,
                    beam=solve_beam(w, 16, budget, 8, *pick).estimated_time_s,
                    lookahead=solve_beam(w, 1, None, 8, *pick).estimated_time_s,
                    cpsat=exact.estimated_time_s,
                    cpsat_optimal=bool(exact.optimal),
                    all_slow=msa.all_slow_time_s,
                )
            )
            if progress:
                r = rows[-1]
                progress(
                    f"[evaluate] {len(rows)}/{len(workloads) * len(fractions)} {r.workload} "
                    f"@{fraction:g}: gain over msa {r.gain_over_msa:+.2%} ({wall:.1f} s)"
                )
    return rows
