"""``cpsat``: the exact optimum of the game's placement problem with OR-Tools CP-SAT.

Model (mallocgame.md section 5): a boolean per placeable buffer, an optional time interval
and an optional offset interval joined by ``AddNoOverlap2D``, a redundant cumulative on the
capacity, and the roofline modelled exactly with one integer time variable per
instruction, ``time_t >= compute_t`` and ``time_t >= memory_t(x)``, minimising
``sum repeat_t * time_t``. Times are integers in a unit chosen so that the longest
instruction is about 1e9 units, so rounding changes a time by about 1e-9 of it; the
reported time is always recomputed by the float cost model. msa's solution is the hint.
"""

from __future__ import annotations

import time

import numpy as np
from ortools.sat.python import cp_model

from mallocmuzero.env import cost_model
from mallocmuzero.env.solution import Solution, make_solution
from mallocmuzero.env.workload import Workload
from mallocmuzero.solvers.greedy import solve_msa

_RESOLUTION = 1.0e9


def add_placement(
    model: cp_model.CpModel, workload: Workload, placeable: np.ndarray, hint: Solution
) -> tuple[dict, dict]:
    """Placement variables (in fast memory?, offset) of each placeable buffer, no overlap."""
    cap = workload.capacity
    x, offset = {}, {}
    time_iv, mem_iv = [], []
    for b in placeable:
        size, s, e = int(workload.size[b]), int(workload.start[b]), int(workload.end[b])
        x[b] = model.NewBoolVar(f"x{b}")
        offset[b] = model.NewIntVar(0, cap - size, f"o{b}")
        time_iv.append(model.NewOptionalFixedSizedIntervalVar(s, e - s, x[b], f"t{b}"))
        mem_iv.append(model.NewOptionalFixedSizedIntervalVar(offset[b], size, x[b], f"m{b}"))
        model.AddHint(x[b], bool(hint.offsets[b] >= 0))
        model.AddHint(offset[b], max(0, int(hint.offsets[b])))
    if x:
        model.AddNoOverlap2D(time_iv, mem_iv)
        model.AddCumulative(time_iv, [int(workload.size[b]) for b in placeable], cap)
    return x, offset


def add_roofline_objective(
    model: cp_model.CpModel, workload: Workload, placeable: np.ndarray, x: dict, unit: float
) -> tuple[float, int]:
    """Minimise the program's time in ``unit``s.

    Returns the time (s) no placement changes and the scale of the repeat counts.
    """
    compute = cost_model.compute_times(workload)
    mem0 = cost_model.memory_times(workload, np.zeros(workload.num_buffers, dtype=bool))
    buf, t_of, nbytes = cost_model.merged_accesses(workload)
    delta = nbytes * cost_model.seconds_saved_per_byte(workload.hardware)
    is_placeable = np.zeros(workload.num_buffers, dtype=bool)
    is_placeable[placeable] = True
    slow_time = np.maximum(compute, mem0)
    # Roofline per instruction; instructions that no placeable buffer can speed up are
    # constants, and so are those compute-bound even when everything is slow.
    savings_of: dict[int, list[tuple[int, float]]] = {}
    for b, t, d in zip(buf, t_of, delta):
        if is_placeable[b] and mem0[t] > compute[t]:
            savings_of.setdefault(int(t), []).append((int(b), float(d)))
    constant = float(
        sum(workload.repeat[t] * slow_time[t] for t in range(len(slow_time)) if t not in savings_of)
    )
    objective = []
    for t, terms in savings_of.items():
        lower = int(np.floor(compute[t] / unit))
        upper = int(np.ceil(mem0[t] / unit))
        time_t = model.NewIntVar(lower, upper, f"time{t}")
        model.Add(time_t >= upper - sum(int(round(d / unit)) * x[b] for b, d in terms))
        objective.append((time_t, float(workload.repeat[t])))
    # Repeat counts are integers in real programs; scale fractional ones to keep integrality.
    rep_scale = 1 if all(r.is_integer() for _, r in objective) else 1000
    model.Minimize(sum(int(round(r * rep_scale)) * v for v, r in objective))
    return constant, rep_scale


def solve_cpsat(
    workload: Workload, time_limit: float | None = 60.0, workers: int = 2, seed: int = 0
) -> Solution:
    """Solve exactly within ``time_limit`` seconds; reports ``optimal`` and the bound.

    The limit covers building the model too (seconds on thousands of buffers): the solver
    gets what is left, and msa's hint is the answer when nothing is.
    """
    started = time.monotonic()
    placeable = cost_model.game_order(workload)
    hint = solve_msa(workload)
    slow_time = np.maximum(
        cost_model.compute_times(workload),
        cost_model.memory_times(workload, np.zeros(workload.num_buffers, dtype=bool)),
    )
    unit = max(float(slow_time.max(initial=0.0)), 1e-30) / _RESOLUTION
    model = cp_model.CpModel()
    x, offset = add_placement(model, workload, placeable, hint)
    constant, rep_scale = add_roofline_objective(model, workload, placeable, x, unit)

    solver = cp_model.CpSolver()
    if time_limit is not None:
        left = time_limit - (time.monotonic() - started)
        if left <= 0:
            return _hint_answer(workload, hint, "NO_TIME_TO_SOLVE")
        solver.parameters.max_time_in_seconds = left
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.Solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # No solution within the limit (a large model may not finish presolve).
        return _hint_answer(workload, hint, solver.StatusName(status))
    offsets = np.full(workload.num_buffers, -1, dtype=np.int64)
    for b in placeable:
        if solver.Value(x[b]):
            offsets[b] = solver.Value(offset[b])
    bound = constant + solver.BestObjectiveBound() / rep_scale * unit
    solution = make_solution(
        workload,
        offsets,
        "cpsat",
        optimal=status == cp_model.OPTIMAL,
        bound_time_s=float(bound),
        extra={"wall_time_s": solver.WallTime()},
    )
    if hint.estimated_time_s < solution.estimated_time_s:
        # Integer rounding can rank two near-equal placements the other way round than the
        # float model does; the hint is part of the search, so keep the better of the two.
        solution.offsets, solution.estimated_time_s = hint.offsets, hint.estimated_time_s
    # Rounding may make the bound exceed the float time by ~1e-9 relative; never report so.
    solution.bound_time_s = min(solution.bound_time_s, solution.estimated_time_s)
    return solution


def _hint_answer(workload: Workload, hint: Solution, status: str) -> Solution:
    """Msa's hint, always feasible, as the answer when CP-SAT has none: no bound."""
    return make_solution(workload, hint.offsets, "cpsat", optimal=False, extra={"status": status})
