"""Helpers shared by the solvers: a one-workload game and a wall-clock budget."""

from __future__ import annotations

import functools
import time

from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.env.workload import Workload


def game_for(
    workload: Workload,
    num_slots: int = 1,
    num_offset_actions: int = 8,
    pick_candidates: int = 1,
    pick_encoding: str = "window",
) -> BatchedGame:
    """A batched game over ``workload`` alone with every slot reset to a fresh game.

    ``pick_candidates`` K > 1 plays game v2 with that pick encoding; K = 1 is v1.
    """
    spec = ObservationSpec(
        num_offset_actions=num_offset_actions,
        lookahead=False,  # a solver's game plays, it does not observe
        pick_candidates=pick_candidates,
        pick_encoding=pick_encoding,
    )
    game = BatchedGame(GameBank.build([workload]), num_games=num_slots, spec=spec)
    for slot in range(num_slots):
        game.reset(slot, 0, workload.capacity)
    return game


@functools.cache
def load_kernels(solver: str) -> float:
    """Load ``solver``'s compiled kernels into this process, once: the seconds it took.

    ``solver`` is "restarts", "beam" or "packing". numba loads a kernel's machine code from
    its on-disk cache at the kernel's first call (about a second for a solver here; a
    first use on a machine compiles it). A time-limited solve calls this before its clock
    starts, so that a first call in a process spends its limit on search and returns
    within it, as later calls do; the seconds are the process's start-up, apart from any
    limit. It solves a tiny program with that solver, without a time limit.
    """
    from mallocmuzero.env.random_workload import random_workload
    from mallocmuzero.solvers import beam, packing, restarts

    tiny_solves = {
        "restarts": lambda w: restarts.search_orders(w, None, tries=2),
        "beam": lambda w: beam.solve_beam(w, 2, None, 8, 8, "dynamic"),
        "packing": lambda w: packing.solve_packing(w, None, node_limit=50),
    }
    if solver not in tiny_solves:
        raise ValueError(f"solver must be one of {sorted(tiny_solves)} (got {solver!r})")
    started = time.monotonic()
    tiny_solves[solver](random_workload(0, 12, num_instructions=10, capacity_fraction=0.3))
    return time.monotonic() - started


class Deadline:
    """A wall-clock budget in seconds (None: unbounded)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the budget started."""
        return time.monotonic() - self.started

    def expired(self) -> bool:
        """Whether the budget is spent."""
        return self.seconds is not None and self.elapsed() >= self.seconds

    def less(self, seconds: float) -> Deadline:
        """The same budget, from the same start, ending ``seconds`` earlier."""
        shorter = Deadline(None if self.seconds is None else self.seconds - seconds)
        shorter.started = self.started
        return shorter
