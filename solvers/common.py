"""Helpers shared by the solvers: a one-workload game and a wall-clock budget."""

from __future__ import annotations

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
