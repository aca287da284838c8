"""The self-play core: its games in groups whose searches overlap the game steps."""

from __future__ import annotations

import numpy as np
import pytest

from mallocmuzero.actors.self_play import SelfPlay, game_groups
from mallocmuzero.actors.workload_sampler import CapacitySampler
from mallocmuzero.agent.networks import NetworkConfig, init_params
from mallocmuzero.agent.search import make_search
from mallocmuzero.env.game import GameBank
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.env.random_workload import random_workload
from mallocmuzero.replay.schema import Step


def _recorded(core: SelfPlay, calls: int, greedy: bool, params) -> list[tuple[Step, np.ndarray]]:
    records: list[tuple[Step, np.ndarray]] = []
    core.add = lambda steps, done: records.append((steps, done))
    for _ in range(calls):
        core.step(params, greedy=greedy)
    return records


def test_overlapped_groups_play_as_each_group_alone():
    """Two groups whose searches overlap each other's game steps write, slot for slot, the
    steps each group writes when played alone by its own core (greedy search, so the
    search is a function of the states and the parameters)."""
    workloads = [random_workload(s, 6 + 3 * s, capacity_fraction=0.3) for s in range(3)]
    spec = ObservationSpec(num_offset_actions=4, lookahead=True, pick_candidates=4)
    net = NetworkConfig(latent_size=16, hidden=(32,), num_actions=spec.num_actions)
    search = make_search(net, num_simulations=4)
    params = init_params(net, spec.size)
    bank, sampler = GameBank.build(workloads), CapacitySampler(workloads, 0.2, 0.6)

    overlapped = SelfPlay(game_groups(bank, 7, spec, sampler, 3, 2), search, add=None)
    alone = [
        SelfPlay([game], search, add=None) for game in game_groups(bank, 7, spec, sampler, 3, 2)
    ]
    together = _recorded(overlapped, 30, True, params)
    apart = [_recorded(core, 30, True, params) for core in alone]
    assert overlapped.num_games == 7 and [c.num_games for c in alone] == [4, 3]
    assert sum(int(done.sum()) for _, done in together) > 3, "games end and restart"
    for call, (steps, done) in enumerate(together):
        parts = [records[call] for records in apart]
        assert np.array_equal(done, np.concatenate([d for _, d in parts]))
        for field, value in zip(Step._fields, steps, strict=True):
            expected = np.concatenate([getattr(s, field) for s, _ in parts])
            assert np.array_equal(value, expected), f"call {call}: {field}"
    assert overlapped.stats.steps == 7 * 30
    assert np.array_equal(overlapped.features, np.concatenate([c.features for c in alone]))


def test_groups_must_fit_the_games():
    workloads = [random_workload(0, 10)]
    with pytest.raises(ValueError, match="groups must be in"):
        game_groups(GameBank.build(workloads), 2, ObservationSpec(), None, 0, 3)
