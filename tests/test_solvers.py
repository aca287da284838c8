"""Baselines: validity, the spec's guarantees between them, and the exact solver."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallocmuzero.env import cost_model
from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.observation import GAME_V1
from mallocmuzero.env.random_workload import random_workload
from mallocmuzero.env.solution import validation_errors
from mallocmuzero.solvers.beam import solve_beam
from mallocmuzero.solvers.common import load_kernels
from mallocmuzero.solvers.cpsat import solve_cpsat
from mallocmuzero.solvers.greedy import solve_all_slow, solve_first_fit, solve_msa
from mallocmuzero.solvers.restarts import restarts_then, search_orders, solve_restarts

REL = 1e-9


def assert_valid(workload, solution):
    assert validation_errors(workload, solution.offsets, workload.capacity) == []
    assert solution.estimated_time_s == pytest.approx(
        cost_model.total_time(workload, solution.offsets >= 0), rel=1e-12
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(2, 30), frac=st.floats(0.05, 0.7))
def test_msa_and_cpsat_validate_and_cpsat_beats_msa_when_optimal(seed, n, frac):
    workload = random_workload(seed, num_buffers=n, num_instructions=20, capacity_fraction=frac)
    msa = solve_msa(workload)
    exact = solve_cpsat(workload, time_limit=10)
    assert_valid(workload, msa)
    assert_valid(workload, exact)
    if exact.optimal:
        assert exact.estimated_time_s <= msa.estimated_time_s * (1 + REL)
        assert exact.bound_time_s == pytest.approx(exact.estimated_time_s, rel=1e-6)
    assert exact.bound_time_s <= exact.estimated_time_s


def test_msa_is_action_zero_when_it_saves():
    """msa through the API equals the kernel rollout, and only uses actions 0 and slow."""
    workload = random_workload(11, num_buffers=50, num_instructions=40)
    game = BatchedGame(GameBank.build([workload]), 1, spec=GAME_V1)
    game.reset(0, 0, workload.capacity)
    actions = set()
    while not game.is_done(0):
        a = game.msa_action(0)
        actions.add(a)
        if a == 0:
            assert game.state.cand_reward[0] > 0
        game.step(np.array([a]))
    assert actions <= {0, 8}
    assert np.array_equal(game.offsets(0), solve_msa(workload).offsets)
    game.reset(0, 0, workload.capacity)
    assert game.msa_rollout(0) == pytest.approx(
        cost_model.total_time(workload) - solve_msa(workload).estimated_time_s, rel=1e-9
    )


def test_search_baselines_never_worse_than_msa():
    for seed in range(4):
        workload = random_workload(seed, num_buffers=40, num_instructions=30, capacity_fraction=0.2)
        msa = solve_msa(workload)
        for solution in (
            solve_restarts(workload, time_limit=None, tries=30, seed=seed),
            solve_beam(workload, width=4),
            solve_first_fit(workload),
            solve_all_slow(workload),
        ):
            assert_valid(workload, solution)
            if solution.solver in ("restarts", "beam4"):
                assert solution.estimated_time_s <= msa.estimated_time_s * (1 + REL)


def test_beam_width_one_recovers_something_on_real_programs(real_workloads):
    """Beam with the exact model should not lose to msa and often wins at tight capacity."""
    wins = 0
    for workload in real_workloads.values():
        tight = workload.with_capacity(max(1, workload.capacity // 3))
        msa = solve_msa(tight)
        beam = solve_beam(tight, width=4)
        assert_valid(tight, beam)
        assert beam.estimated_time_s <= msa.estimated_time_s * (1 + REL)
        wins += beam.estimated_time_s < msa.estimated_time_s * (1 - 1e-6)
    assert wins >= 1


def test_cpsat_on_a_real_program_is_optimal_and_beats_msa(real_workloads):
    workload = real_workloads["mlp_train"]
    msa = solve_msa(workload)
    exact = solve_cpsat(workload, time_limit=60)
    assert_valid(workload, exact)
    assert exact.optimal
    assert exact.estimated_time_s <= msa.estimated_time_s * (1 + REL)


def test_beam_from_a_given_order_starts_from_that_orders_msa():
    """Beam's root is the game on ``order``: stopped at once, it answers msa over that
    order, which restarts found better than msa's own."""
    w = random_workload(0, num_buffers=40, num_instructions=50)
    found = search_orders(w, None, tries=200)
    assert found.order is not None and found.tries == 200
    stopped = solve_beam(w, 16, 1e-9, order=found.order)
    assert np.array_equal(stopped.offsets, found.offsets)
    assert stopped.estimated_time_s < solve_msa(w).estimated_time_s


def test_a_time_limit_starts_once_the_solvers_kernels_are_loaded():
    """A process's first time-limited solve loads that solver's kernels (numba's cache)
    before its clock starts, so its limit buys search: once per solver, only its own, and
    nothing for a solve without a limit."""
    import subprocess
    import sys

    script = """
from mallocmuzero.env import msa_kernels
from mallocmuzero.env.random_workload import random_workload
from mallocmuzero.solvers import beam_kernels, packing_kernels
from mallocmuzero.solvers.beam import solve_beam
from mallocmuzero.solvers.common import load_kernels
from mallocmuzero.solvers.packing import solve_packing
from mallocmuzero.solvers.restarts import search_orders
w = random_workload(1, 30, capacity_fraction=0.3)
search_orders(w, None, tries=2)
assert load_kernels.cache_info().currsize == 0
search_orders(w, 0.05)
assert msa_kernels.msa_rollout.signatures and not beam_kernels.beam_advance.signatures
assert not packing_kernels.search.signatures and load_kernels.cache_info().currsize == 1
solve_beam(w, 4, 0.05)
assert beam_kernels.beam_advance.signatures and not packing_kernels.search.signatures
solve_packing(w, 0.05)
search_orders(w, 0.05)
assert packing_kernels.search.signatures
assert load_kernels.cache_info().misses == 3, "once per solver and process"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    with pytest.raises(ValueError, match="solver must be one of"):
        load_kernels("greedy")


def test_restarts_then_hands_its_best_order_on_and_keeps_the_better():
    w = random_workload(1, num_buffers=40, num_instructions=50)
    handed = []

    def refine(order, seconds):
        handed.append((order, seconds))
        return solve_msa(w)  # msa's own order: worse than what restarts found here

    solution = restarts_then(w, refine, time_limit=0.4, share=0.5)
    ((order, seconds),) = handed
    # What is left of the limit, never negative (on a busy machine restarts can overrun).
    assert order is not None and 0 <= seconds <= 0.2 + 0.05
    assert solution.solver == "restarts+msa" and not solution.extra["from_refine"]
    assert solution.extra["restarts_tries"] > 1
    assert solution.estimated_time_s < solve_msa(w).estimated_time_s
    assert_valid(w, solution)
    with pytest.raises(ValueError, match="share"):
        restarts_then(w, refine, time_limit=1.0, share=1.0)


def test_restarts_then_plays_from_msas_own_order_first_and_keeps_the_best_phase():
    """With an own-order share the first search starts from msa's own order (order None),
    one that ends early leaves its time to restarts, and the best of the three phases is
    the answer, named as the phases ran."""
    w = random_workload(3, num_buffers=40, num_instructions=50)
    handed = []

    def refine(order, seconds):
        handed.append((order, seconds))
        return solve_msa(w)

    def own_order(seconds):
        handed.append(("own", seconds))
        return solve_restarts(w, tries=3000, seed=1)  # ends early: a fixed number of tries

    solution = restarts_then(w, refine, 0.6, 0.5, own_order_share=0.5, own_order=own_order)
    (first, own_seconds), (order, seconds) = handed
    assert first == "own" and own_seconds == pytest.approx(0.3)
    assert order is not None and 0 <= seconds <= 0.6
    own = solve_restarts(w, tries=3000, seed=1).estimated_time_s
    assert solution.estimated_time_s <= min(own, solve_msa(w).estimated_time_s)
    if solution.extra["from_own_order"]:  # strictly the best phase (ties: the earlier)
        assert solution.estimated_time_s == own and solution.extra["from_refine"]
    assert solution.solver == "msa+restarts+msa"
    assert_valid(w, solution)
    handed.clear()
    restarts_then(w, refine, 0.2, 0.5, own_order_share=0.25)  # default: refine from None
    assert handed[0] == (None, pytest.approx(0.05))
    with pytest.raises(ValueError, match="own-order share"):
        restarts_then(w, refine, time_limit=1.0, share=0.5, own_order_share=1.0)


@pytest.mark.parametrize("solver", ["beam", "cpsat", "restarts", "packing", "canonical"])
def test_a_limit_too_short_for_one_step_still_answers_no_worse_than_msa(solver):
    """Every search keeps its limit however short: beam checks the clock between the
    parents it expands, cpsat counts building its model; each answers with at least msa's
    placement (packing, a full-packing search, with at least a valid one)."""
    from mallocmuzero.solvers.registry import solve

    workload = random_workload(3, num_buffers=60, num_instructions=40, capacity_fraction=0.2)
    solution = solve(solver, workload, time_limit=1e-9)
    assert validation_errors(workload, solution.offsets, workload.capacity) == []
    if solver != "packing":
        assert solution.estimated_time_s <= solve_msa(workload).estimated_time_s * (1 + REL)
    if solver == "beam":
        assert solution.extra["depth"] == 0
    if solver == "cpsat":
        assert not solution.optimal and solution.bound_time_s is None
