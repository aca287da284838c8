"""Game v2 (mallocgame.md section 3b): pick steps, their masks, and v1 inside v2."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallocmuzero.env import cost_model, pick_rules
from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.env.random_workload import random_workload
from mallocmuzero.env.solution import validation_errors
from mallocmuzero.solvers.beam import solve_beam
from mallocmuzero.solvers.greedy import solve_msa

from reference import (
    check_solution_and_rewards,
    reference_best_fit,
    reference_candidates,
    reference_lowest_offset,
    reference_picks,
    reference_rule_order,
)

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENCODINGS = st.sampled_from(pick_rules.ENCODINGS)


def v2_game(workload, k: int, encoding: str, lookahead: bool = False, n: int = 8) -> BatchedGame:
    spec = ObservationSpec(pick_candidates=k, pick_encoding=encoding, lookahead=lookahead,
                           num_offset_actions=n)  # fmt: skip
    game = BatchedGame(GameBank.build([workload]), 1, spec=spec)
    game.reset(0, 0, workload.capacity)
    return game


def check_place_mask(game, workload, legal, offsets) -> list[int]:
    """The place step's mask is v1's, padded to the action head; returns the candidates."""
    n = game.spec.num_offset_actions
    expected = reference_candidates(
        workload.size,
        workload.start,
        workload.end,
        offsets,
        game.current_buffer(0),
        workload.capacity,
        n,
    )
    mask = [i < len(expected) for i in range(n)] + [True]
    assert legal.tolist() == mask + [False] * (game.spec.num_actions - n - 1)
    return expected


def play_v2(workload, seed: int, k: int, encoding: str, slow_bias: float = 0.2, n: int = 8):
    """Play random legal v2 actions, checking both phases' masks against the spec."""
    rng = np.random.default_rng(seed)
    game = v2_game(workload, k, encoding, n=n)
    sources = pick_rules.pick_sources(k, encoding)
    rules = [reference_rule_order(workload, r) for r in range(len(pick_rules.RULES))]
    undecided = cost_model.game_order(workload).tolist()
    offsets: dict[int, int] = {}
    total, pick_steps, picked = 0.0, 0, -1
    while not game.is_done(0):
        features, legal = game.observe()
        assert np.isfinite(features).all()
        picks = reference_picks(
            rules,
            undecided,
            sources,
            lambda u: reference_lowest_offset(
                workload.size, workload.start, workload.end, offsets, u, workload.capacity
            ),
        )
        if picked < 0 and sum(p >= 0 for p in picks) > 1:
            assert game.is_pick_step(0) and features[0, game.spec.pick_start] == 1.0
            assert legal[0].tolist() == [p >= 0 for p in picks] + [False] * (legal.shape[1] - k)
            action = int(rng.choice(np.flatnonzero(legal[0])))
            out = game.step(np.array([action]))
            assert out.reward_seconds[0] == 0.0 and game.current_buffer(0) == picks[action]
            pick_steps, picked = pick_steps + 1, picks[action]
            continue
        b = game.current_buffer(0)
        assert not game.is_pick_step(0) and b == (picked if picked >= 0 else undecided[0])
        picked = -1
        expected = check_place_mask(game, workload, legal[0], offsets)
        slow = game.spec.num_offset_actions
        action = slow if rng.random() < slow_bias else int(rng.choice(np.flatnonzero(legal[0])))
        out = game.step(np.array([action]))
        if action < slow:
            offsets[b] = expected[action]
        undecided.remove(b)
        total += out.reward_seconds[0]
    return game, total, offsets, pick_steps


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    n_buffers=st.integers(1, 40),
    frac=st.floats(0.02, 0.8),
    k=st.integers(1, 9),
    encoding=ENCODINGS,
    n=st.sampled_from([2, 3, 8]),
)
def test_legal_v2_play_is_valid_masks_follow_the_spec_and_rewards_sum(
    seed, n_buffers, frac, k, encoding, n
):
    """With 2 or 3 offset actions the best-fit list is often cut before the lowest offset."""
    workload = random_workload(
        seed, num_buffers=n_buffers, num_instructions=30, capacity_fraction=frac
    )
    game, total, offsets, pick_steps = play_v2(workload, seed, k, encoding, n=n)
    check_solution_and_rewards(workload, game.offsets(0), total, offsets)
    if k == 1:
        assert pick_steps == 0


def test_real_workloads_v2_random_play(real_workloads):
    for encoding, k in (("window", 8), ("rules", 8), ("hybrid", 6)):
        for workload in real_workloads.values():
            small = workload.with_capacity(max(1, workload.capacity // 3))
            game, total, offsets, pick_steps = play_v2(small, 1, k, encoding)
            assert pick_steps > 0
            check_solution_and_rewards(small, game.offsets(0), total, offsets)


@SETTINGS
@given(seed=st.integers(0, 10_000), k=st.integers(2, 8), encoding=ENCODINGS)
def test_the_all_zero_picks_with_msas_placements_are_msa(seed, k, encoding):
    workload = random_workload(seed, num_buffers=30, num_instructions=30, capacity_fraction=0.3)
    game = v2_game(workload, k, encoding)
    while not game.is_done(0):
        action = game.msa_action(0)
        assert action == 0 or not game.is_pick_step(0)
        game.step(np.array([action]), observe=False)
    assert np.array_equal(game.offsets(0), solve_msa(workload).offsets)


@SETTINGS
@given(seed=st.integers(0, 10_000), k=st.integers(2, 8), encoding=ENCODINGS)
def test_v2_with_pick_zero_is_v1_step_for_step(seed, k, encoding):
    """Same place steps, rewards and observations (lookahead too) apart from the v2 block."""
    workload = random_workload(seed, num_buffers=30, num_instructions=30, capacity_fraction=0.3)
    v1, v2 = v2_game(workload, 1, "window", True), v2_game(workload, k, encoding, True)
    assert v1.spec.size == v2.spec.size - 1 - 10 * k
    rng = np.random.default_rng(seed)
    first, lookahead = v1.spec.pick_start, v2.spec.lookahead_start
    while not v1.is_done(0):
        f1, l1 = v1.observe()
        f2, l2 = v2.observe()
        if v2.is_pick_step(0):
            v2.step(np.array([0]), observe=False)
            f2, l2 = v2.observe()
        assert np.array_equal(f1[0, :first], f2[0, :first])
        assert np.array_equal(f1[0, first:], f2[0, lookahead:])
        assert np.array_equal(l1[0], l2[0, : l1.shape[1]]) and not l2[0, l1.shape[1] :].any()
        action = int(rng.choice(np.flatnonzero(l1[0])))
        assert (
            v1.step(np.array([action])).reward_seconds[0]
            == v2.step(np.array([action])).reward_seconds[0]
        )
    assert v2.is_done(0) and np.array_equal(v1.offsets(0), v2.offsets(0))


@SETTINGS
@given(seed=st.integers(0, 10_000), k=st.integers(2, 6), encoding=ENCODINGS)
def test_the_lookahead_gives_each_pick_its_msa_completion(seed, k, encoding):
    workload = random_workload(seed, num_buffers=25, num_instructions=30, capacity_fraction=0.3)
    game = v2_game(workload, k, encoding, lookahead=True)
    played: list[int] = []
    while not game.is_done(0) and not game.is_pick_step(0):
        played.append(game.msa_action(0))
        game.step(np.array([played[-1]]), observe=False)
    if game.is_done(0):
        return
    features, legal = game.observe()
    columns, to_go = game.spec.lookahead_columns
    scale = 100.0 / cost_model.total_time(workload)
    for slot in np.flatnonzero(legal[0]):
        replay = v2_game(workload, k, encoding)
        for action in [*played, int(slot)]:
            replay.step(np.array([action]), observe=False)
        completion = scale * (replay.msa_rollout(0) - game.saved_seconds(0))
        reported = features[0, columns[slot]] + features[0, to_go]
        assert reported == pytest.approx(completion, rel=1e-4, abs=1e-4)


def test_beam_over_v2_is_valid_and_never_worse_than_msa(real_workloads):
    workload = real_workloads["transformer_block"]
    small = workload.with_capacity(max(1, workload.capacity // 4))
    msa = solve_msa(small).estimated_time_s
    v1 = solve_beam(small, width=4)
    same = solve_beam(small, width=4, pick_candidates=1, pick_encoding="rules")
    assert np.array_equal(v1.offsets, same.offsets) and same.solver == "beam4"
    for encoding in pick_rules.ENCODINGS:
        v2 = solve_beam(small, width=4, pick_candidates=4, pick_encoding=encoding)
        assert v2.solver == f"beam4-{encoding}4"
        assert validation_errors(small, v2.offsets, small.capacity) == []
        assert v2.estimated_time_s <= msa * (1 + 1e-12)


def test_pick_sources_and_their_errors():
    assert pick_rules.pick_sources(4, "window").tolist() == [0, -1, -2, -3]
    assert pick_rules.pick_sources(4, "rules").tolist() == [0, 1, 2, 3]
    assert pick_rules.pick_sources(5, "hybrid").tolist() == [0, 1, 2, -1, -2]
    assert pick_rules.pick_sources(4, "dynamic").tolist() == [0, 1, 2, pick_rules.DYNAMIC_RULE]
    assert pick_rules.pick_sources(1, "dynamic").tolist() == [0]
    with pytest.raises(ValueError, match="at most 9 rules"):
        pick_rules.pick_sources(10, "rules")
    with pytest.raises(ValueError, match="at most 9 rules"):
        pick_rules.pick_sources(10, "dynamic")
    with pytest.raises(ValueError, match="unknown pick encoding"):
        pick_rules.pick_sources(2, "spiral")


@SETTINGS
@given(seed=st.integers(0, 10_000), k=st.sampled_from([1, 3, 8]), encoding=ENCODINGS,
       frac=st.sampled_from([0.1, 0.3, 0.6]))  # fmt: skip
def test_guided_completions_equal_plain_msa_rollouts_bit_for_bit(seed, k, encoding, frac):
    """Random play: every lookahead value equals a replay of the history, the action and a
    plain msa rollout, exactly (the guide is the previous step's chosen completion)."""
    workload = random_workload(seed, num_buffers=40, num_instructions=30, capacity_fraction=frac)
    game = v2_game(workload, k, encoding, lookahead=True)
    rng = np.random.default_rng(seed)
    history: list[int] = []
    while not game.is_done(0):
        _, legal = game.observe()
        values = game.completions(0)
        for action in np.flatnonzero(legal[0]):
            replay = v2_game(workload, k, encoding)
            for played in [*history, int(action)]:
                replay.step(np.array([played]), observe=False)
            assert values[action] == replay.msa_rollout(0), (history, action)
        legal_actions = np.flatnonzero(legal[0])
        history.append(int(rng.choice(legal_actions)) if rng.random() < 0.5 else game.msa_action(0))
        game.step(np.array([history[-1]]), observe=False)


@SETTINGS
@given(seed=st.integers(0, 10_000), k=st.integers(2, 8), encoding=ENCODINGS)
def test_a_sampled_base_order_game_plays_msa_over_that_order(seed, k, encoding):
    """Self-play's perturbed base orders (mallocgame.md 3c): the msa trajectory of a game
    drawn with one is msa's rule over that order, as restarts plays it; with a share of 0
    the sampler draws exactly what it drew before the knob existed."""
    from mallocmuzero.actors.workload_sampler import CapacitySampler
    from mallocmuzero.solvers.common import game_for

    workload = random_workload(seed, num_buffers=30, num_instructions=30, capacity_fraction=0.3)
    plain, zero = CapacitySampler([workload], 0.2, 0.6), CapacitySampler([workload], 0.2, 0.6, 0.0)
    first, second = np.random.default_rng(seed), np.random.default_rng(seed)
    assert [plain(first) for _ in range(5)] == [zero(second) for _ in range(5)]
    assert first.random() == second.random()  # the same random numbers consumed
    draw = CapacitySampler([workload], 0.2, 0.6, base_order_share=1.0)(np.random.default_rng(seed))
    w, capacity, order = draw
    game = v2_game(workload, k, encoding)
    game.reset(0, w, capacity, order=order)
    while not game.is_done(0):
        game.step(np.array([game.msa_action(0)]), observe=False)
    reference = game_for(workload.with_capacity(capacity))
    reference.reset(0, 0, capacity, order=order)
    saved = reference.msa_rollout(0)
    assert np.array_equal(game.offsets(0), reference.offsets(0))
    assert game.saved_seconds(0) == pytest.approx(saved, rel=1e-12)


@SETTINGS
@given(seed=st.integers(0, 10_000), tries=st.integers(2, 12))
def test_a_base_order_of_several_tries_is_the_one_restarts_would_keep(seed, tries):
    """With ``base_order_tries`` N the sampler scores msa's own order and N - 1 perturbed
    ones at the game's capacity by msa's completion (env.game.msa_scorer, which plays them
    as restarts does) and starts the game from the best: no order when msa's stays best."""
    from mallocmuzero.actors.workload_sampler import CapacitySampler
    from mallocmuzero.env.game import msa_scorer
    from mallocmuzero.solvers.common import game_for

    workload = random_workload(seed, num_buffers=30, num_instructions=30, capacity_fraction=0.3)
    score, scored = msa_scorer(GameBank.build([workload])), []

    def recording(w, capacity, order):
        scored.append((order, score(w, capacity, order)))
        return scored[-1][1]

    sampler = CapacitySampler([workload], 0.2, 0.6, 1.0, 1.0, tries, recording)
    w, capacity, *order = sampler(np.random.default_rng(seed))
    reference = game_for(workload.with_capacity(capacity))
    assert scored[0] == (None, reference.msa_rollout(0)) and len(scored) == tries
    best = max(range(tries), key=lambda i: (scored[i][1], -i))  # ties: the earlier try
    assert order == ([] if best == 0 else [scored[best][0]])
    for candidate, saved in scored[1:]:
        reference.reset(0, 0, capacity, order=candidate)
        assert reference.msa_rollout(0) == saved


def test_base_order_tries_errors_name_their_argument():
    from mallocmuzero.actors.workload_sampler import CapacitySampler
    from mallocmuzero.errors import ArgumentError

    workload = random_workload(0, num_buffers=10)
    with pytest.raises(ArgumentError, match="base_order_tries"):
        CapacitySampler([workload], 0.2, 0.6, 0.5, 1.0, 0)
    with pytest.raises(ArgumentError, match="score_order"):
        CapacitySampler([workload], 0.2, 0.6, 0.5, 1.0, 4)


@SETTINGS
@given(seed=st.integers(0, 10_000), frac=st.floats(0.05, 0.8), n_buffers=st.integers(2, 40),
       n=st.sampled_from([2, 3, 8]))  # fmt: skip
def test_the_dynamic_slot_and_the_lowest_candidate_play_the_canonical_rollout(
    seed, frac, n_buffers, n
):
    """Picking the dynamic rule's buffer and placing it at the candidate that is its lowest
    feasible offset, every step, is MiniMalloc's canonical greedy rollout (mallocgame.md
    3c), placement for placement; and the dynamic buffer's offset is the lowest of all.
    With 2 or 3 offset actions the best-fit list is often cut before the lowest offset."""
    from mallocmuzero.solvers import canonical_kernels
    from mallocmuzero.solvers.packing import packing_instance

    workload = random_workload(
        seed, num_buffers=n_buffers, num_instructions=30, capacity_fraction=frac
    )
    game = v2_game(workload, 2, "dynamic", n=n)
    lowest = lambda offsets, u: reference_lowest_offset(  # noqa: E731
        workload.size, workload.start, workload.end, offsets, u, workload.capacity
    )
    offsets: dict[int, int] = {}
    while not game.is_done(0):
        _, legal = game.observe()
        if game.is_pick_step(0):
            game.step(np.array([1]))  # the dynamic slot
            continue
        b = game.current_buffer(0)
        undecided = [u for u in cost_model.game_order(workload) if u not in offsets]
        fits = [lowest(offsets, u) for u in undecided if lowest(offsets, u) is not None]
        target = lowest(offsets, b)
        assert target is None or target == min(fits)
        candidates = game.state.cand_off[0, : game.state.n_cand[0]].tolist()
        action = candidates.index(target) if target is not None else game.spec.num_offset_actions
        game.step(np.array([action]))
        offsets[b] = -1 if target is None else target
    inst = packing_instance(workload)
    msa_rank, msa = np.zeros(workload.num_buffers), cost_model.presentation_order(workload)
    msa_rank[msa] = np.arange(msa.size, 0, -1)
    key = inst.area + msa_rank[inst.buffers] / (inst.buffers.size + 1)
    rollout = np.full(inst.size.size, -1, np.int64)
    lows, decided = np.empty_like(rollout), np.empty(inst.size.size, np.bool_)
    canonical_kernels.canonical_start(inst.size, inst.capacity, rollout, lows, decided)
    while not canonical_kernels.canonical_steps(
        inst.size,
        inst.neighbours_ptr,
        inst.neighbours,
        key,
        inst.capacity,
        rollout,
        lows,
        decided,
        64,
    ):
        pass  # fmt: skip
    expected = np.full(workload.num_buffers, -1, np.int64)
    expected[inst.buffers] = rollout
    assert game.offsets(0).tolist() == expected.tolist()


@SETTINGS
@given(seed=st.integers(0, 10_000), frac=st.floats(0.05, 0.8), n=st.sampled_from([2, 3, 8]),
       k=st.sampled_from([1, 8]))  # fmt: skip
def test_the_lowest_offset_candidate_leaves_every_earlier_move_in_place(seed, frac, n, k):
    """Adding the lowest-offset candidate (3c) changes at most the last offset slot: every
    best-fit candidate before it, and so msa's move (slot 0) and every trajectory of the
    earlier game through slots 0 .. N-2, is as it was (msa's own solution is checked
    against the game in ``test_the_all_zero_picks_with_msas_placements_are_msa``)."""
    workload = random_workload(seed, num_buffers=40, num_instructions=30, capacity_fraction=frac)
    game = v2_game(workload, k, "rules", n=n)
    rng = np.random.default_rng(seed)
    offsets: dict[int, int] = {}
    while not game.is_done(0):
        _, legal = game.observe()
        if game.is_pick_step(0):
            game.step(np.array([int(rng.choice(np.flatnonzero(legal[0])))]))
            continue
        b = game.current_buffer(0)
        best_fit = reference_best_fit(workload.size, workload.start, workload.end, offsets, b,
                                      workload.capacity)  # fmt: skip
        count = int(game.state.n_cand[0])
        assert game.state.cand_off[0, : max(count - 1, 0)].tolist() == best_fit[: max(count - 1, 0)]
        assert count == min(n, len(best_fit))
        action = int(rng.choice(np.flatnonzero(legal[0])))
        if action < count:
            offsets[b] = int(game.state.cand_off[0, action])
        game.step(np.array([action]))
