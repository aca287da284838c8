"""Property tests of the batched game against the specification and the cost model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallocmuzero.env import cost_model, step_kernels
from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.observation import GAME_V1, ObservationSpec
from mallocmuzero.env.random_workload import random_workload
from mallocmuzero.env.solution import validation_errors

from reference import check_solution_and_rewards, reference_candidates

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def v1_spec(**changes) -> ObservationSpec:
    """Game v1's observation with ``changes`` (the default spec is the shipped v2 game)."""
    return dataclasses.replace(GAME_V1, **changes)


def play_random(workload, seed, n_actions=8, slow_bias=0.2):
    """Play one game with random legal actions, checking every mask on the way."""
    rng = np.random.default_rng(seed)
    spec = v1_spec(num_offset_actions=n_actions)
    game = BatchedGame(GameBank.build([workload]), 1, spec=spec)
    game.reset(0, 0, workload.capacity)
    total = 0.0
    offsets: dict[int, int] = {}
    while not game.is_done(0):
        features, legal = game.observe()
        b = game.current_buffer(0)
        expected = reference_candidates(
            workload.size, workload.start, workload.end, offsets, b, workload.capacity, n_actions
        )
        assert game.candidate_offsets(0).tolist() == expected
        assert legal[0].tolist() == [i < len(expected) for i in range(n_actions)] + [True]
        assert np.isfinite(features).all()
        choices = np.flatnonzero(legal[0])
        action = n_actions if rng.random() < slow_bias else int(rng.choice(choices))
        out = game.step(np.array([action]))
        if action < n_actions:
            offsets[b] = expected[action]
        total += out.reward_seconds[0]
    return game, total, offsets


@SETTINGS
@given(seed=st.integers(0, 10_000), n_buffers=st.integers(1, 40), frac=st.floats(0.02, 0.8))
def test_random_legal_play_is_valid_and_rewards_sum_to_saving(seed, n_buffers, frac):
    workload = random_workload(
        seed, num_buffers=n_buffers, num_instructions=30, capacity_fraction=frac
    )
    game, total, offsets = play_random(workload, seed)
    check_solution_and_rewards(workload, game.offsets(0), total, offsets)


@SETTINGS
@given(seed=st.integers(0, 10_000), n_actions=st.sampled_from([1, 2, 3, 8, 16]))
def test_masks_match_spec_for_any_action_count(seed, n_actions):
    workload = random_workload(seed, num_buffers=25, num_instructions=20, capacity_fraction=0.5)
    play_random(workload, seed, n_actions=n_actions, slow_bias=0.0)


def test_real_workloads_random_play(real_workloads):
    for workload in real_workloads.values():
        for seed in range(3):
            small = workload.with_capacity(max(1, workload.capacity // (1 + seed)))
            game, total, _ = play_random(small, seed)
            final = game.offsets(0)
            assert validation_errors(small, final, small.capacity) == []
            saving = cost_model.total_time(small) - cost_model.total_time(small, final >= 0)
            assert total == pytest.approx(saving, rel=1e-9)


def test_game_order_follows_msa_key():
    workload = random_workload(7, num_buffers=60, num_instructions=50)
    order = cost_model.game_order(workload)
    key = cost_model.memory_boundedness(workload)
    assert not workload.pinned[order].any()
    assert (workload.size[order] <= workload.capacity).all()
    for a, b in zip(order, order[1:]):
        ka, kb = key[a], key[b]
        assert ka > kb or (
            ka == kb
            and (workload.size[a], workload.end[a] - workload.start[a], -workload.buffer_ids[a])
            >= (workload.size[b], workload.end[b] - workload.start[b], -workload.buffer_ids[b])
        )
    # Every unpinned buffer that fits is presented exactly once.
    fits = np.flatnonzero(~workload.pinned & (workload.size <= workload.capacity))
    assert sorted(order.tolist()) == fits.tolist()


def test_batch_of_mixed_workloads_equals_single_games():
    workloads = [random_workload(s, num_buffers=30, num_instructions=25) for s in range(3)]
    bank = GameBank.build(workloads)
    game = BatchedGame(bank, 6, spec=GAME_V1)
    caps = [w.capacity for w in workloads] * 2
    caps[3] //= 2
    game.reset_all([0, 1, 2, 0, 1, 2], caps)
    rng = np.random.default_rng(0)
    actions_log = []
    while not all(game.is_done(g) for g in range(6)):
        _, legal = game.observe()
        actions = np.array([rng.choice(np.flatnonzero(legal[g])) for g in range(6)])
        actions_log.append(actions)
        game.step(actions)
    for g in range(6):
        single = BatchedGame(GameBank.build([workloads[g % 3]]), 1, spec=GAME_V1)
        single.reset(0, 0, caps[g])
        for actions in actions_log:
            if single.is_done(0):
                break
            single.step(actions[g : g + 1])
        assert np.array_equal(single.offsets(0), game.offsets(g))
        assert single.saved_seconds(0) == pytest.approx(game.saved_seconds(g))


def test_illegal_action_raises():
    workload = random_workload(1, num_buffers=10, num_instructions=10, capacity_fraction=0.01)
    game = BatchedGame(GameBank.build([workload]), 1, spec=GAME_V1)
    game.reset(0, 0, 1)  # one byte of fast memory: nothing fits, nothing presented
    assert game.is_done(0)
    game.reset(0, 0, int(workload.size.max()))
    n_legal = len(game.legal_actions(0)) - 1
    with pytest.raises(ValueError, match="illegal action"):
        game.step(np.array([n_legal if n_legal < 8 else 9]))


def test_sampler_resets_finished_games_and_reports_returns():
    workloads = [random_workload(s, num_buffers=8, num_instructions=10) for s in range(2)]
    bank = GameBank.build(workloads)

    def sampler(rng):
        w = int(rng.integers(2))
        return w, workloads[w].capacity

    game = BatchedGame(bank, 4, GAME_V1, sampler=sampler, seed=1)
    finished = 0
    for _ in range(60):
        _, legal = game.observe()
        out = game.step(np.where(legal[:, 0], 0, 8))
        finished += int(out.done.sum())
        assert (out.episode_return[~out.done] == 0).all()
        assert (out.episode_return[out.done] >= 0).all()
        assert not any(game.is_done(g) for g in range(4))
    assert finished > 4


def test_observation_shape_and_layout():
    workload = random_workload(3, num_buffers=20, num_instructions=20)
    spec = v1_spec(num_offset_actions=4, occupancy_bins=8, window=3)
    game = BatchedGame(GameBank.build([workload]), 2, spec=spec)
    game.reset_all([0, 0], [workload.capacity] * 2)
    features, legal = game.observe()
    assert features.shape == (2, spec.size) and features.dtype == np.float32
    assert legal.shape == (2, spec.num_actions)
    b = game.current_buffer(0)
    assert features[0, 0] == pytest.approx(workload.size[b] / workload.capacity, rel=1e-6)
    # Candidate block: legal flags equal the mask.
    block = 12 + spec.occupancy_bins
    flags = features[0, block : block + 5 * spec.num_offset_actions : 5]
    assert flags.tolist() == legal[0, :-1].astype(np.float32).tolist()


@SETTINGS
@given(seed=st.integers(0, 10_000), frac=st.sampled_from([0.1, 0.3, 0.6]))
def test_lookahead_block_is_each_actions_msa_completion(seed, frac):
    """Each legal action's lookahead equals playing it then msa to the end, on a copy."""
    workload = random_workload(seed, num_buffers=25, num_instructions=20, capacity_fraction=frac)
    spec = v1_spec(num_offset_actions=4, lookahead=True)
    game = BatchedGame(GameBank.build([workload]), 2, spec=spec)
    game.reset(0, 0, workload.capacity)
    rng = np.random.default_rng(seed)
    time0 = game.bank.all_slow_time(0)
    first = spec.lookahead_start
    while not game.is_done(0):
        features, legal = game.observe()
        block = features[0, first:]
        completion = {}
        for a in np.flatnonzero(legal[0]):
            game.copy_slot(0, 1)
            step_kernels.apply(game.bank.arrays, game.state, 1, int(a))
            completion[int(a)] = game.msa_rollout(1)
        baseline = completion[game.msa_action(0)]
        for a in range(spec.num_actions):
            advantage, is_best = block[2 * a], block[2 * a + 1]
            if a in completion:
                assert advantage == pytest.approx(
                    100 * (completion[a] - baseline) / time0, abs=1e-4
                )
            else:
                assert advantage == 0 and is_best == 0
        best = int(np.argmax(block[1 : 2 * spec.num_actions : 2]))
        assert completion[best] == max(completion.values())
        assert block[-1] == pytest.approx(
            100 * (baseline - game.saved_seconds(0)) / time0, abs=1e-4
        )
        # Observing leaves the game untouched: the same observation again.
        again, _ = game.observe()
        assert np.array_equal(again[0], features[0])
        game.step(np.array([int(rng.choice(np.flatnonzero(legal[0]))), 0]), observe=False)


@SETTINGS
@given(seed=st.integers(0, 10_000), frac=st.sampled_from([0.1, 0.3, 0.6]))
def test_lookahead_reuses_the_chosen_actions_completion_exactly(seed, frac):
    """After a step, msa's completion is the chosen action's: the observation a step returns
    (which reuses it) equals, bit for bit, one computed from scratch by a game that replays
    the same actions without observing."""
    workload = random_workload(seed, num_buffers=30, num_instructions=25, capacity_fraction=frac)
    spec = v1_spec(num_offset_actions=4, lookahead=True)
    bank = GameBank.build([workload])

    def new_game() -> BatchedGame:
        game = BatchedGame(bank, 2, spec=spec)
        game.reset_all([0, 0], [workload.capacity] * 2)
        return game

    reusing, played, rng = new_game(), [], np.random.default_rng(seed)
    _, legal = reusing.observe()
    while not (reusing.is_done(0) and reusing.is_done(1)):
        played.append(np.array([int(rng.choice(np.flatnonzero(row))) for row in legal]))
        out = reusing.step(played[-1])
        fresh = new_game()
        for actions in played:
            fresh.step(actions, observe=False)
        assert np.array_equal(out.features, fresh.observe()[0])
        legal = out.legal


def test_following_the_lookahead_is_beam_width_one(real_workloads):
    """Taking the best completion at every step reproduces beam search of width 1."""
    from mallocmuzero.env.workload import resolve_capacity
    from mallocmuzero.solvers.beam import solve_beam

    workload = resolve_capacity(real_workloads["strassen_512"], fraction=0.25)
    spec = v1_spec(lookahead=True)
    game = BatchedGame(GameBank.build([workload]), 1, spec=spec)
    game.reset(0, 0, workload.capacity)
    while not game.is_done(0):
        features, _ = game.observe()
        best = np.argmax(features[0, spec.lookahead_start + 1 : -1 : 2])
        game.step(np.array([best]), observe=False)
    pilot_time = game.bank.all_slow_time(0) - game.saved_seconds(0)
    assert pilot_time == pytest.approx(solve_beam(workload, width=1).estimated_time_s, rel=1e-9)


def test_the_kernels_arguments_have_stable_numba_fingerprints():
    """Numba's dispatcher caches types by argument fingerprint; numba 0.60 fingerprinted
    named tuples from freed memory, so every kernel call added a cache entry: the
    evaluator grew about 5 MiB per evaluation (BENCHMARKS (d)). The lock pins a numba
    whose fingerprints of the game's Bank, State and Lookahead are the same on every call."""
    from numba._dispatcher import compute_fingerprint

    workloads = [random_workload(s, 20 + 10 * s) for s in range(3)]
    game = BatchedGame(GameBank.build(workloads), 2, spec=v1_spec(lookahead=True))
    game.reset_all([0, 2], [w.capacity for w in (workloads[0], workloads[2])])
    rng, junk = np.random.default_rng(0), []
    for value in (game.bank.arrays, game.state, game._lookahead):
        seen = set()
        for _ in range(500):
            junk = [*junk[-40:], np.ones(int(rng.integers(1, 4000)))]  # churn the heap
            seen.add(compute_fingerprint(value))
        assert len(seen) == 1, f"{type(value).__name__}: {len(seen)} fingerprints of one value"
        assert type(value).__name__.encode() in seen.pop()


def test_a_change_to_any_kernel_module_moves_the_kernel_cache(tmp_path):
    """numba keys a cache on the function's own file; the cache folder follows them all."""
    import os

    from mallocmuzero.env import jit

    for name in ("env/kernels.py", "env/msa_kernels.py", "solvers/beam_kernels.py", "env/game.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(f"# {name}\n")
    before = jit.kernel_sources_digest(tmp_path)
    (tmp_path / "env" / "game.py").write_text("# not a kernel module\n")
    assert jit.kernel_sources_digest(tmp_path) == before
    (tmp_path / "solvers" / "beam_kernels.py").write_text("# changed\n")
    assert jit.kernel_sources_digest(tmp_path) != before
    if not os.environ.get("NUMBA_CACHE_DIR"):  # the user's folder wins when set
        cache = step_kernels.step_batch._cache._cache_path
        assert Path(cache).is_relative_to(jit.kernel_cache_dir()), cache


KERNEL_CACHE_STATS = """
import json
import mallocmuzero
from mallocmuzero.env.random_workload import random_workload
from mallocmuzero.solvers import registry
from mallocmuzero.env import msa_kernels
registry.solve("restarts", random_workload(3), time_limit=0.2)
kernels = [f for f in vars(msa_kernels).values() if hasattr(f, "stats")]
print(json.dumps({"package": mallocmuzero.__file__,
                  "hits": sum(sum(f.stats.cache_hits.values()) for f in kernels),
                  "misses": sum(sum(f.stats.cache_misses.values()) for f in kernels)}))
"""


def test_a_copy_of_the_package_elsewhere_with_new_timestamps_reuses_the_compiled_kernels(
    tmp_path,
):
    """As ``ray job submit`` unpacks the shipped package per Ray session: no recompiling."""
    import json
    import os
    import subprocess
    import sys
    import time

    from mallocmuzero.cluster.package_shipping import stage_package

    if os.environ.get("NUMBA_CACHE_DIR"):
        pytest.skip("NUMBA_CACHE_DIR is set: numba's own path-keyed cache applies")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    runs = []
    for copy in ("first", "second"):
        package = stage_package(tmp_path / copy)
        later = time.time() + len(runs) + 1
        for path in package.rglob("*.py"):
            os.utime(path, (later, later))
        env["PYTHONPATH"] = str(tmp_path / copy)
        out = subprocess.run([sys.executable, "-c", KERNEL_CACHE_STATS], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        runs.append(json.loads(out.splitlines()[-1]))
    second = runs[-1]
    assert Path(second["package"]).is_relative_to(tmp_path / "second"), second
    assert second["hits"] > 0 and second["misses"] == 0, runs
