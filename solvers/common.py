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
def load_kernels() -> float:
    """Load the solvers' compiled kernels into this process, once: the seconds it took.

    numba loads a kernel's machine code from its on-disk cache at the kernel's first call,
    about a second for the solvers' kernels together. A time-limited solve does this before
    its clock starts (:class:`Deadline` calls it), so that a first call in a process spends
    its limit on search and returns within it, as later calls do; the seconds are the
    process's start-up, not part of any limit. It plays a tiny program with restarts, beam
    (game v2) and the packing search, each without a time limit.
    """
    from mallocmuzero.env.random_workload import random_workload
    from mallocmuzero.solvers import beam, packing, restarts

    started = time.monotonic()
    tiny = random_workload(0, num_buffers=12, num_instructions=10, capacity_fraction=0.3)
    restarts.search_orders(tiny, None, tries=2)
    beam.solve_beam(tiny, 2, None, 8, 8, "dynamic")
    packing.solve_packing(tiny, None, node_limit=50)
    return time.monotonic() - started


class Deadline:
    """A wall-clock budget in seconds (None: unbounded), started once the kernels are loaded."""

    def __init__(self, seconds: float | None) -> None:
        if seconds is not None:
            load_kernels()
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
