"""The synchronous runner: self-play, Reverb replay and the learner in one process.

The debugging and test path of the distributed system, over the same cores. The
sample-to-insert ratio is held by the loop itself (a learner step whenever the items
inserted times ``samples_per_insert`` exceed the samples drawn), so the Reverb table uses
a plain minimum-size limiter and sampling never blocks the single thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from mallocmuzero.actors.self_play import SelfPlay
from mallocmuzero.actors.workload_sampler import CapacitySampler, load_split
from mallocmuzero.agent.checkpoint import dataclass_from_section, network_config, save_checkpoint
from mallocmuzero.agent.search import make_search
from mallocmuzero.env.augment import augment
from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.env.workload import Workload
from mallocmuzero.learner.learner import Learner
from mallocmuzero.learner.train_state import OptimizerConfig
from mallocmuzero.replay.adder import SequenceAdder
from mallocmuzero.replay.schema import SequenceSpec
from mallocmuzero.replay.server import TABLE, ReplayConfig, start_server


def observation_spec(config: ml_collections.ConfigDict) -> ObservationSpec:
    """The game's observation sizes from the config."""
    g = config.game
    return ObservationSpec(g.num_offset_actions, g.occupancy_bins, g.window)


def optimizer_config(config: ml_collections.ConfigDict) -> OptimizerConfig:
    """The learner's optimizer settings from the config."""
    return dataclass_from_section(OptimizerConfig, config.learner)


def train_sync(
    config: ml_collections.ConfigDict,
    run_dir: str,
    workloads: list[Workload] | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train until ``config.run.max_steps`` learner steps or ``max_minutes``; checkpoint.

    Returns the final counters. ``workloads`` overrides the config's workload folder.
    """
    import reverb

    started = time.monotonic()
    if workloads is None:
        workloads = load_split(config.workloads.dir, config.workloads.split)
        rng = np.random.default_rng(config.seed)
        wc = config.workloads
        workloads = workloads + augment(
            workloads, rng, wc.augment_windows, wc.augment_jitters, sigma=wc.augment_sigma
        )
    sampler = CapacitySampler(
        workloads, config.workloads.capacity_fraction_min, config.workloads.capacity_fraction_max
    )
    spec = observation_spec(config)
    game = BatchedGame(
        GameBank.build(workloads), config.actors.num_games, spec, sampler, seed=config.seed
    )
    net = network_config(config, spec.num_actions)
    seq = SequenceSpec(
        spec.size, spec.num_actions, config.replay.unroll_steps, config.replay.td_steps
    )
    replay = ReplayConfig(
        max_size=config.replay.max_size,
        priority_exponent=config.replay.priority_exponent,
        samples_per_insert=0.0,
        min_size_to_sample=config.replay.min_size_to_sample,
    )
    server = start_server(seq, replay)
    client = reverb.Client(f"127.0.0.1:{server.port}")
    try:
        adder = SequenceAdder(client, seq, game.num_games, period=config.replay.period)
        search = make_search(
            net, config.search.num_simulations, config.search.max_considered_actions
        )
        core = SelfPlay(game, search, adder.add, seed=config.seed)
        learner = Learner(
            net,
            optimizer_config(config),
            seq,
            config.learner.batch_size,
            config.replay.importance_beta,
            config.seed,
        )
        max_steps = config.run.max_steps or None
        max_seconds = config.run.max_minutes * 60 or None
        learner_steps, metrics, last_log = 0, {}, 0.0
        while True:
            elapsed = time.monotonic() - started
            if (max_steps and learner_steps >= max_steps) or (
                max_seconds and elapsed >= max_seconds
            ):
                break
            core.step(learner.params)
            adder.flush()
            inserted = adder.items_created
            if inserted >= config.replay.min_size_to_sample:
                due = inserted * config.replay.samples_per_insert / config.learner.batch_size
                while learner_steps < due and not (max_steps and learner_steps >= max_steps):
                    metrics = learner.step(client)
                    learner_steps += 1
            if time.monotonic() - last_log >= config.run.log_interval_s:
                last_log = time.monotonic()
                recent = core.stats.returns[-200:]
                progress(
                    f"[train] {elapsed:6.0f}s learner {learner_steps} | self-play "
                    f"{core.stats.steps / max(elapsed, 1e-9):.0f} steps/s, "
                    f"{core.stats.episodes} episodes, return {np.mean(recent) if recent else 0:.4f}"
                    f" | loss {metrics.get('loss/total', float('nan')):.4f} | replay {inserted}"
                )
        meta = {
            "learner_steps": learner_steps,
            "self_play_steps": core.stats.steps,
            "episodes": core.stats.episodes,
            "observation_size": spec.size,
            "num_actions": spec.num_actions,
            "replay_size": int(client.server_info()[TABLE].current_size),
        }
        save_checkpoint(Path(run_dir) / "checkpoint", learner.params, config, meta)
        progress(f"[train] done: {learner_steps} learner steps; checkpoint in {run_dir}/checkpoint")
        return {**meta, "params": learner.params, "metrics": metrics}
    finally:
        server.stop()
