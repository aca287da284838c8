"""Benchmark (b): every baseline on every workload at capacity fractions 0.1, 0.25 and 0.5.

For each case: the estimated time of all-slow, first-fit, msa, restarts, beam (widths 16
and 64) and cpsat, cpsat's optimality flag and bound, and msa's headroom (its time over
the best known solution, minus one). All times are recomputed by the cost model.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mallocmuzero.env.solution import Solution, validation_errors
from mallocmuzero.env.workload import Workload, resolve_capacity
from mallocmuzero.solvers.beam import solve_beam
from mallocmuzero.solvers.cpsat import solve_cpsat
from mallocmuzero.solvers.greedy import solve_all_slow, solve_first_fit, solve_msa
from mallocmuzero.solvers.restarts import solve_restarts

FRACTIONS = (0.1, 0.25, 0.5)
COLUMNS = ("all-slow", "first-fit", "msa", "restarts", "beam16", "beam64", "cpsat")


@dataclasses.dataclass
class Case:
    """The results of every baseline on one workload at one capacity."""

    workload: str
    fraction: float
    num_buffers: int
    times: dict[str, float]
    seconds: dict[str, float]
    cpsat_optimal: bool
    cpsat_bound: float  # nan when cpsat found no solution within its limit

    @property
    def best(self) -> float:
        """The best known time (the optimum when cpsat proved it)."""
        return min(self.times.values())

    @property
    def msa_headroom(self) -> float:
        """How much slower msa is than the best known time (ratio minus one)."""
        return self.times["msa"] / self.best - 1.0

    def headroom_recovered(self, solver: str) -> float | None:
        """Share of msa's headroom that ``solver`` recovers (None when msa has none)."""
        gap = self.times["msa"] - self.best
        if gap <= self.best * 1e-9:
            return None
        return (self.times["msa"] - self.times[solver]) / gap


def solvers(
    restarts_s: float, beam_limit_s: float, cpsat_limit_s: float
) -> dict[str, Callable[[Workload], Solution]]:
    """The baselines of the table, with their budgets."""
    return {
        "all-slow": solve_all_slow,
        "first-fit": solve_first_fit,
        "msa": solve_msa,
        "restarts": lambda w: solve_restarts(w, time_limit=restarts_s),
        "beam16": lambda w: solve_beam(w, width=16, time_limit=beam_limit_s),
        "beam64": lambda w: solve_beam(w, width=64, time_limit=beam_limit_s),
        "cpsat": lambda w: solve_cpsat(w, time_limit=cpsat_limit_s),
    }


def run_case(
    workload: Workload, fraction: float, table: dict[str, Callable[[Workload], Solution]]
) -> Case:
    """Run every baseline on one workload at one capacity fraction."""
    w = resolve_capacity(workload, fraction=fraction)
    times, seconds = {}, {}
    optimal, bound = False, float("nan")
    for name, solve in table.items():
        start = time.perf_counter()
        solution = solve(w)
        seconds[name] = time.perf_counter() - start
        errors = validation_errors(w, solution.offsets, w.capacity)
        if errors:
            raise AssertionError(f"{name} on {w.name}@{fraction}: {errors[0]}")
        times[name] = solution.estimated_time_s
        if name == "cpsat":
            optimal = bool(solution.optimal)
            bound = float("nan") if solution.bound_time_s is None else solution.bound_time_s
    return Case(w.name, fraction, w.num_buffers, times, seconds, optimal, bound)


def run(
    workloads: Sequence[Workload],
    fractions: Sequence[float] = FRACTIONS,
    restarts_s: float = 5.0,
    beam_limit_s: float = 60.0,
    cpsat_limit_s: float = 30.0,
    progress: Callable[[str], None] = print,
    cache: Path | None = None,
) -> list[Case]:
    """Every baseline on every workload and fraction; reports each case as it finishes.

    With ``cache`` (a JSON-lines file), finished cases are appended as they complete and
    reused by a later run with the same budgets, so an interrupted benchmark resumes.
    """
    table = solvers(restarts_s, beam_limit_s, cpsat_limit_s)
    budget_key = [restarts_s, beam_limit_s, cpsat_limit_s]
    done: dict[tuple[str, float], Case] = {}
    if cache is not None and cache.is_file():
        for line in cache.read_text().splitlines():
            record = json.loads(line)
            if record.pop("budgets") == budget_key:
                done[(record["workload"], record["fraction"])] = Case(**record)
    cases = []
    for workload in workloads:
        for fraction in fractions:
            case = done.get((workload.name, fraction)) or run_case(workload, fraction, table)
            if cache is not None and (workload.name, fraction) not in done:
                with cache.open("a") as handle:
                    handle.write(
                        json.dumps({**dataclasses.asdict(case), "budgets": budget_key}) + "\n"
                    )
            cases.append(case)
            progress(
                f"  {case.workload}@{fraction}: msa headroom {case.msa_headroom:.2%}, "
                f"cpsat {'optimal' if case.cpsat_optimal else 'not proven'}"
            )
    return cases
