"""``beam``: beam search over the game itself, each child scored by its msa completion.

Planning with the exact model and no learning: the strongest yardstick for the agent.
Every completion it scores is a full solution; the best one seen is returned, so beam is
never worse than msa.
"""

from __future__ import annotations

import numpy as np

from mallocmuzero.env.solution import Solution, make_solution
from mallocmuzero.env.workload import Workload
from mallocmuzero.solvers import beam_kernels
from mallocmuzero.solvers.common import Deadline, game_for, load_kernels


def solve_beam(
    workload: Workload,
    width: int = 16,
    time_limit: float | None = None,
    num_offset_actions: int = 8,
    pick_candidates: int = 1,
    pick_encoding: str = "window",
    order: np.ndarray | None = None,
) -> Solution:
    """Beam search of ``width`` states; stops early (keeping the best completion) at the limit.

    With ``pick_candidates`` K > 1 it searches game v2, expanding pick and place steps alike.
    ``order`` (buffer indices) replaces msa's presentation order as the game's base.
    """
    if width < 1:
        raise ValueError(f"beam width must be >= 1 (got {width})")
    if time_limit is not None:
        load_kernels("beam")  # start-up, before the clock
    deadline = Deadline(time_limit)
    # Slots: [0, width) current beam, [width, 2 width) next beam, scratch, best.
    game = game_for(workload, 2 * width + 2, num_offset_actions, pick_candidates, pick_encoding)
    if order is not None:
        game.reset(0, 0, workload.capacity, order=order)
    bank, state = game.bank.arrays, game.state
    scratch, best_slot = 2 * width, 2 * width + 1
    beam = np.array([0], dtype=np.int64)
    spare = np.arange(width, 2 * width, dtype=np.int64)
    game.copy_slot(0, best_slot)
    best_saved = np.array([game.msa_rollout(best_slot)])
    max_children = width * game.spec.num_actions
    scores = np.empty(max_children)
    parents = np.empty(max_children, dtype=np.int64)
    actions = np.empty(max_children, dtype=np.int64)
    depth = 0
    while not game.is_done(int(beam[0])) and not deadline.expired():
        n = _expand(bank, state, beam, scratch, best_slot, best_saved, scores, parents, actions,
                    deadline)  # fmt: skip
        if n is None:  # the limit came mid-step: the best completion so far stands
            break
        # Highest completion first; ties keep the earlier parent and the lower action.
        keep = np.argsort(-scores[:n], kind="stable")[:width]
        next_beam = spare[: keep.size]
        beam_kernels.beam_advance(bank, state, beam, next_beam, parents[keep], actions[keep])
        spare = np.setdiff1d(np.arange(2 * width), next_beam)[:width]
        beam = next_beam
        depth += 1
    version = "" if pick_candidates == 1 else f"-{pick_encoding}{pick_candidates}"
    name = f"beam{width}{version}"
    extra = {"width": width, "depth": depth, "wall_time_s": deadline.elapsed()}
    return make_solution(workload, game.offsets(best_slot), name, extra=extra)


def _expand(bank, state, beam, scratch, best_slot, best_saved, scores, parents, actions,
            deadline: Deadline) -> int | None:  # fmt: skip
    """Score the children of the beam, one parent at a time; None once ``deadline`` passes.

    On a program of thousands of buffers one parent's children (an msa completion each)
    take a good part of a second: checking the clock between parents keeps the limit.
    """
    n = 0
    for i in range(beam.size):
        if deadline.expired():
            return None
        k = beam_kernels.beam_expand(bank, state, beam[i : i + 1], scratch, best_slot,
                                     best_saved, scores[n:], parents[n:], actions[n:])  # fmt: skip
        parents[n : n + k] = i
        n += k
    return n
