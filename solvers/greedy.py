"""Greedy baselines of spec section 5: all-slow, msa (XLA's best fit) and first-fit."""

from __future__ import annotations

import numpy as np

from mallocmuzero.env.solution import Solution, make_solution
from mallocmuzero.env.workload import Workload
from mallocmuzero.solvers.common import game_for


def solve_all_slow(workload: Workload) -> Solution:
    """Every buffer in slow memory: the scale of all other scores."""
    return make_solution(workload, np.full(workload.num_buffers, -1), "all-slow")


def solve_msa(workload: Workload) -> Solution:
    """XLA's memory-space-assignment rule played through the game API.

    In the game order, take action 0 (the best-fit candidate) when it saves time, else
    leave the buffer slow.
    """
    game = game_for(workload)
    while not game.is_done(0):
        game.step(np.array([game.msa_action(0)]), observe=False)
    return make_solution(workload, game.offsets(0), "msa")


def solve_first_fit(workload: Workload) -> Solution:
    """In the game order, the lowest free offset that holds the buffer, when it saves time."""
    # Enough offset actions to list both ends of every possible gap.
    num_offset_actions = 2 * workload.num_buffers + 2
    game = game_for(workload, num_offset_actions=num_offset_actions)
    slow = num_offset_actions
    while not game.is_done(0):
        offsets = game.candidate_offsets(0)
        saves = game.state.cand_reward[0] > 0
        action = int(np.argmin(offsets)) if offsets.size and saves else slow
        game.step(np.array([action]), observe=False)
    return make_solution(workload, game.offsets(0), "first-fit")
