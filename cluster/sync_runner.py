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

import numpy as np

from mallocmuzero.agent.checkpoint import save_checkpoint
from mallocmuzero.cluster.components import (
    base_workloads,
    make_learner,
    make_replay_dataset,
    make_self_play,
    observation_spec,
    replay_config,
    sequence_spec,
    training_workloads,
)
from mallocmuzero.cluster.run_checkpoint import agent_meta
from mallocmuzero.configs.schema import ExperimentConfig
from mallocmuzero.env.workload import Workload
from mallocmuzero.replay.adder import SequenceAdder
from mallocmuzero.replay.server import TABLE, start_server


def train_sync(
    config: ExperimentConfig,
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
        workloads = training_workloads(config, base_workloads(config), config.seed)
    spec = observation_spec(config)
    seq = sequence_spec(config)
    server = start_server(seq, replay_config(config, samples_per_insert=0.0))
    client = reverb.Client(f"127.0.0.1:{server.port}")
    try:
        adder = SequenceAdder(client, seq, config.actors.num_games, period=config.replay.period)
        core = make_self_play(config, workloads, adder.add, config.seed)
        learner = make_learner(config)
        dataset = make_replay_dataset(config, client)
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
                    batch = next(dataset)
                    metrics, priorities = learner.update(batch)
                    dataset.update_priorities(batch.keys, priorities)
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
        meta = agent_meta(
            learner_steps, spec, core.stats.steps, core.stats.episodes,
            replay_size=int(client.server_info()[TABLE].current_size),
        )  # fmt: skip
        save_checkpoint(Path(run_dir) / "checkpoint", learner.params, config, meta)
        progress(f"[train] done: {learner_steps} learner steps; checkpoint in {run_dir}/checkpoint")
        return {**meta, "params": learner.params, "metrics": metrics}
    finally:
        server.stop()
