"""Builders of the cores from one experiment config, shared by every runner.

The synchronous runner and the Ray shells construct the game, the search, the self-play
core, the replay table and the learner through these functions, so one config means the
same experiment in one process or on a cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mallocmuzero.actors.self_play import SelfPlay, game_groups, overlap_groups
from mallocmuzero.actors.workload_sampler import CapacitySampler, load_split
from mallocmuzero.agent.checkpoint import dataclass_from_section
from mallocmuzero.agent.solve import agent_network, agent_search, observation_spec
from mallocmuzero.configs.schema import ExperimentConfig
from mallocmuzero.env.augment import augment
from mallocmuzero.env.game import GameBank, msa_scorer
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.env.workload import Workload, load_workload
from mallocmuzero.errors import UserError
from mallocmuzero.learner.learner import Learner
from mallocmuzero.learner.prefetch import learner_batches
from mallocmuzero.learner.train_state import OptimizerConfig
from mallocmuzero.replay.adder import SequenceAdder
from mallocmuzero.replay.dataset import ReplayBatch, ReplayDataset
from mallocmuzero.replay.schema import SequenceSpec
from mallocmuzero.replay.server import ReplayConfig


def optimizer_config(config: ExperimentConfig) -> OptimizerConfig:
    """The learner's optimizer settings from the config."""
    return dataclass_from_section(OptimizerConfig, config.learner)


def sequence_spec(config: ExperimentConfig) -> SequenceSpec:
    """Shapes of a replay sequence."""
    spec = observation_spec(config)
    return SequenceSpec(
        spec.size, spec.num_actions, config.replay.unroll_steps, config.replay.td_steps
    )


def replay_config(
    config: ExperimentConfig, samples_per_insert: float | None = None
) -> ReplayConfig:
    """The replay table settings; ``samples_per_insert=0`` gives a plain minimum-size limiter."""
    replay = dataclass_from_section(ReplayConfig, config.replay)
    if samples_per_insert is None:
        return replay
    return dataclasses.replace(replay, samples_per_insert=samples_per_insert)


def evaluation_workloads(config: ExperimentConfig) -> list[Workload]:
    """The evaluator's programs: the workload folder's held-out split, then large ones.

    The large ones are those of ``evaluator.large_programs`` (when set) with at most
    ``evaluator.large_programs_max_buffers`` buffers.
    """
    try:
        programs = load_split(config.workloads.dir, "heldout")
    except UserError:
        programs = []
    e = config.evaluator
    if e.large_programs:
        folder = Path(e.large_programs)
        paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if not paths:
            raise UserError(f"evaluator.large_programs: {folder} holds no workload files "
                            "(build them with 'mallocmuzero workloads large')")  # fmt: skip
        large = [load_workload(path) for path in paths]
        programs += [w for w in large if w.num_buffers <= e.large_programs_max_buffers]
    return programs


def base_workloads(config: ExperimentConfig) -> list[Workload]:
    """The programs of the config's training split (its first ``max_programs``, if set)."""
    programs = load_split(config.workloads.dir, config.workloads.split)
    return programs[: config.workloads.max_programs or None]


def training_workloads(config: ExperimentConfig, base: list[Workload], seed: int) -> list[Workload]:
    """``base`` plus the config's augmentations of it, drawn with ``seed``."""
    wc = config.workloads
    rng = np.random.default_rng(seed)
    return base + augment(base, rng, wc.augment_windows, wc.augment_jitters, sigma=wc.augment_sigma)


def make_self_play(
    config: ExperimentConfig,
    workloads: list[Workload],
    add: Callable[[dict[str, np.ndarray], np.ndarray], None] | None,
    seed: int,
) -> SelfPlay:
    """A self-play core over ``workloads`` at the config's capacities, writing to ``add``.

    Its games are split in two groups whose searches and game steps overlap where this
    process may use two cores (:func:`~mallocmuzero.actors.self_play.overlap_groups`).
    """
    wc = config.workloads
    bank = GameBank.build(workloads)
    sampler = CapacitySampler(workloads, wc.capacity_fraction_min, wc.capacity_fraction_max,
                              wc.base_order_share, wc.base_order_sigma, wc.base_order_tries,
                              msa_scorer(bank) if wc.base_order_tries > 1 else None)  # fmt: skip
    groups = min(overlap_groups(), config.actors.num_games)
    games = game_groups(bank, config.actors.num_games,
                        observation_spec(config), sampler, seed, groups)  # fmt: skip
    return SelfPlay(games, agent_search(config), add, seed=seed)


def make_learner(config: ExperimentConfig, state: Any = None) -> Learner:
    """The learner core of the config (a fresh state unless ``state`` is given)."""
    return Learner(
        agent_network(config),
        optimizer_config(config),
        sequence_spec(config),
        config.seed,
        state=state,
    )


def make_replay_dataset(config: ExperimentConfig, client) -> ReplayDataset:
    """The learner's prioritized batches from the replay table behind ``client``."""
    return ReplayDataset(client, config.learner.batch_size, config.replay.importance_beta)


# ----------------------------------------------------------------- the roles' parts
# Each role (actors/, learner/) receives one of these, bound to the config with
# functools.partial (picklable), and calls it in its own process: roles never import
# this module.


def self_play_parts(
    config: ExperimentConfig, base: list[Workload], seed: int, client
) -> tuple[SelfPlay, SequenceAdder]:
    """A self-play actor's core and the adder that streams its steps through ``client``."""
    adder = SequenceAdder(
        client, sequence_spec(config), config.actors.num_games, config.replay.period
    )
    workloads = training_workloads(config, base, seed)
    return make_self_play(config, workloads, adder.add, seed), adder


def learner_parts(
    config: ExperimentConfig, state: Any, client
) -> tuple[Learner, ReplayDataset, Iterator[ReplayBatch]]:
    """The learner core (from ``state``, or fresh), its replay dataset and its batches.

    The dataset samples through ``client`` and takes the priorities back; the batches come
    from it, stacked and prefetched as the config's learner section says.
    """
    dataset, lc = make_replay_dataset(config, client), config.learner
    batches = learner_batches(dataset, lc.updates_per_jit, lc.prefetch_batches)
    return make_learner(config, state), dataset, batches


def evaluator_parts(config: ExperimentConfig) -> tuple[ObservationSpec, Callable]:
    """The evaluator's observation spec and search (greedy play of the newest parameters)."""
    return observation_spec(config), agent_search(config)
