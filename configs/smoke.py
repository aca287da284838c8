"""The smallest configuration that exercises every role (tests and quick checks)."""

from __future__ import annotations

import ml_collections

from mallocmuzero.configs import default


def get_config() -> ml_collections.ConfigDict:
    """Tiny networks, few games, a short run."""
    c = default.get_config()
    c.network.latent_size = 32
    c.network.hidden = (64,)
    c.search.num_simulations = 4
    c.replay.unroll_steps = 3
    c.replay.td_steps = 5
    c.replay.min_size_to_sample = 64
    c.replay.max_size = 5_000
    c.learner.batch_size = 16
    c.learner.warmup_steps = 10
    c.actors.num_games = 8
    c.run.max_steps = 20
    c.run.log_interval_s = 2.0
    c.actors.num_cpus = 0.5
    c.actors.steps_per_call = 5
    c.learner.steps_per_call = 5
    c.learner.num_cpus = 0.5
    c.evaluator.interval_s = 5.0
    c.evaluator.fractions = (0.25,)
    c.evaluator.budget_s = 5.0
    c.evaluator.images = 1
    c.evaluator.num_cpus = 0.25
    c.replay.num_cpus = 0.25
    c.replay.error_buffer = 200.0
    return c
