"""The typed experiment config: one copy of the defaults, checks at load, old checkpoints."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mallocmuzero.agent.checkpoint import load_checkpoint
from mallocmuzero.agent.solve import solve_time_weights
from mallocmuzero.cluster import components
from mallocmuzero.configs import default
from mallocmuzero.configs.loader import load_config
from mallocmuzero.configs.schema import (
    SECTIONS,
    ConfigError,
    ExperimentConfig,
    migrate,
    parse_config,
    with_values,
)
from mallocmuzero.errors import UserError
from mallocmuzero.solvers.registry import pretrained_checkpoint


def test_the_cores_settings_come_from_the_one_copy_of_the_defaults():
    config = ExperimentConfig()
    assert parse_config(default.get_config().to_dict()) == config
    replay = components.replay_config(config)
    assert (replay.samples_per_insert, replay.error_buffer) == (1.0, 2000.0)
    assert components.observation_spec(config).lookahead is True
    learner = components.optimizer_config(config)
    assert learner.learning_rate == config.learner.learning_rate
    assert components.agent_network(config).hidden == config.network.hidden


def test_every_section_is_frozen_and_typed():
    config = ExperimentConfig()
    for name in SECTIONS:
        with pytest.raises(dataclasses.FrozenInstanceError):
            getattr(config, name).x = 1
    assert parse_config({"learner": {"learning_rate": 1}}).learner.learning_rate == 1.0
    assert parse_config({"network": {"hidden": [32, 16]}}).network.hidden == (32, 16)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"replay": {"importance_beta": 1.5}}, "replay.importance_beta must be <= 1"),
        ({"actors": {"num_games": 0}}, "actors.num_games must be >= 1"),
        ({"learner": {"learning_rate": 0.0}}, "learner.learning_rate must be > 0"),
        ({"evaluator": {"fractions": (0.1, 1.5)}}, "evaluator.fractions must be <= 1"),
        ({"learner": {"batch_size": "64"}}, "learner.batch_size expects int"),
        ({"game": {"lookahead": 1}}, "game.lookahead expects bool"),
        ({"replay": {"min_size_to_sample": 10, "max_size": 5}}, "above replay.max_size"),
        ({"game": {"lookahead": False}}, "search.rollout_weight > 0 needs game.lookahead"),
        ({"replay": {"unrol_steps": 3}}, "unknown config key 'replay.unrol_steps'"),
        ({"replayy": {}}, "unknown config section 'replayy'"),
    ],
)
def test_bad_settings_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_config(data)


def test_a_config_file_error_names_the_file_and_loses_nothing(tmp_path):
    file = tmp_path / "mine.py"
    file.write_text(
        "from mallocmuzero.configs import default\n"
        "def get_config():\n    c = default.get_config()\n    c.search.num_simulations = 0\n"
        "    return c\n"
    )
    with pytest.raises(UserError, match=r"mine\.py: search\.num_simulations must be >= 1"):
        load_config(str(file))
    fixed = load_config(str(file), ["search.num_simulations=3"])
    assert fixed.search.num_simulations == 3


def test_with_values_rechecks():
    config = with_values(ExperimentConfig(), {"run.max_steps": 40})
    assert config.run.max_steps == 40 and ExperimentConfig().run.max_steps == 0
    with pytest.raises(ConfigError, match="run.max_steps must be >= 0"):
        with_values(config, {"run.max_steps": -1})


def test_old_checkpoint_configs_migrate_in_one_place():
    before_lookahead = ExperimentConfig().to_dict()
    del before_lookahead["game"]["lookahead"], before_lookahead["search"]["rollout_weight"]
    del before_lookahead["evaluator"]["large_buffers"]
    before_lookahead["evaluator"]["max_workloads"] = 3  # a key that no longer exists
    config = migrate(json.loads(json.dumps(before_lookahead)))
    assert config.game.lookahead is False and config.search.rollout_weight == 0.0
    assert config.evaluator.large_buffers == ExperimentConfig().evaluator.large_buffers
    assert solve_time_weights(config) == [0.0]


def test_the_shipped_checkpoint_loads_as_a_typed_config():
    folder = pretrained_checkpoint()
    if not (folder / "params.msgpack").is_file():
        pytest.skip(f"no shipped checkpoint in {folder}")
    _, config, meta, _ = load_checkpoint(folder)
    assert isinstance(config, ExperimentConfig)
    assert config.game.lookahead is True  # the shipped agent reads the lookahead block
    assert components.observation_spec(config).size == meta["observation_size"]


def test_a_checkpoint_with_a_broken_config_is_one_error(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "params.msgpack").write_bytes(b"")
    (folder / "meta.json").write_text("{}")
    (folder / "config.json").write_text(json.dumps({"replay": {"importance_beta": 7}}))
    with pytest.raises(UserError, match=r"config\.json: replay\.importance_beta must be <= 1"):
        load_checkpoint(folder)


def test_the_game_defaults_have_one_source():
    """The observation's defaults are the shipped agent's game, and every other default of
    the game (the config, the beam, the CLI, the evaluation) agrees with them."""
    import dataclasses
    import inspect
    import json

    from mallocmuzero.agent.solve import observation_spec
    from mallocmuzero.cli import build_parser
    from mallocmuzero.configs.schema import ExperimentConfig, GameConfig
    from mallocmuzero.env.observation import SHIPPED_GAME, ObservationSpec
    from mallocmuzero.solvers.registry import BeamShape, pretrained_checkpoint
    from mallocmuzero.solvers.tournament import evaluate

    spec, game = ObservationSpec(), GameConfig()
    assert spec == SHIPPED_GAME
    for field in dataclasses.fields(ObservationSpec):
        assert getattr(game, field.name) == getattr(spec, field.name), field.name
    assert observation_spec(ExperimentConfig()) == spec
    shipped = json.loads((pretrained_checkpoint() / "config.json").read_text())["game"]
    assert {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)} == shipped
    pick = (spec.pick_candidates, spec.pick_encoding)
    assert (BeamShape().pick_candidates, BeamShape().pick_encoding) == pick
    args = build_parser().parse_args(["solve", "w.json", "--solver", "beam", "--out", "s.json"])
    assert (args.pick_candidates, args.pick_encoding) == pick
    assert inspect.signature(evaluate).parameters["pick"].default == pick


def test_self_play_draws_its_base_orders_as_the_config_says():
    """``workloads.base_order_tries`` reaches the self-play core's sampler, whose scorer
    plays over the core's own bank: every order a game starts from saves more under msa's
    rule than msa's own order at that capacity, and some games start from msa's own."""
    import numpy as np

    from mallocmuzero.env.random_workload import random_workload

    config = with_values(
        ExperimentConfig(), {"workloads.base_order_share": 1.0, "workloads.base_order_tries": 6}
    )
    workloads = [random_workload(s, 20, capacity_fraction=0.3) for s in range(3)]
    core = components.make_self_play(config, workloads, None, seed=0)
    sampler = core.games[0].sampler
    assert sampler.tries == 6 and sampler.score_order is not None
    assert all(game.bank is core.games[0].bank for game in core.games)
    rng, kinds = np.random.default_rng(0), set()
    for _ in range(30):
        w, capacity, *order = sampler(rng)
        kinds.add(len(order))
        if order:
            own = sampler.score_order(w, capacity, None)
            assert sampler.score_order(w, capacity, order[0]) > own
    assert kinds == {0, 1}
