"""Default experiment: every knob of a training run (ml_collections ConfigDict).

Override any field from the command line: ``--set learner.batch_size=128``.
"""

from __future__ import annotations

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """The default configuration."""
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.workloads = ml_collections.ConfigDict()
    c.workloads.dir = "workloads/builtin"  # built by `make workloads`
    c.workloads.split = "train"  # programs of the held-out split never enter training
    c.workloads.capacity_fraction_min = 0.05
    c.workloads.capacity_fraction_max = 0.6
    c.workloads.augment_windows = 8  # random schedule windows of long training programs
    c.workloads.augment_jitters = 8  # copies with log-normal size jitter
    c.workloads.augment_sigma = 0.3

    c.game = ml_collections.ConfigDict()
    c.game.num_offset_actions = 8
    c.game.occupancy_bins = 16
    c.game.window = 8
    c.game.lookahead = True  # msa-completion value of every action in the observation

    c.network = ml_collections.ConfigDict()
    c.network.latent_size = 128
    c.network.hidden = (256, 256)
    c.network.value_bins = 49
    c.network.value_low = -2.0
    c.network.value_high = 10.0
    c.network.value_scale = 100.0  # returns are fractions of the all-slow time: use percent

    c.search = ml_collections.ConfigDict()
    c.search.num_simulations = 16
    c.search.max_considered_actions = 16
    # The root's completed Q-values mix the learned model's with the lookahead's msa-completion
    # returns: (1 - w) q + w z, as AlphaGo mixed value network and rollouts (0: learned only).
    c.search.rollout_weight = 0.5

    c.replay = ml_collections.ConfigDict()
    c.replay.unroll_steps = 5
    c.replay.td_steps = 10
    c.replay.max_size = 100_000
    c.replay.min_size_to_sample = 1_000
    c.replay.samples_per_insert = 1.0
    c.replay.priority_exponent = 1.0
    c.replay.importance_beta = 0.5
    c.replay.period = 1
    c.replay.error_buffer = 2_000.0  # slack of the rate limiter, in samples (distributed runs)
    c.replay.num_cpus = 0.5  # the Reverb server actor

    c.learner = ml_collections.ConfigDict()
    c.learner.batch_size = 64
    c.learner.learning_rate = 3e-4
    c.learner.warmup_steps = 200
    c.learner.decay_steps = 100_000
    c.learner.weight_decay = 1e-4
    c.learner.max_grad_norm = 5.0
    c.learner.value_weight = 0.25
    c.learner.target_update_interval = 100
    c.learner.steps_per_call = 20  # learner steps per call from the supervisor
    c.learner.num_cpus = 1.0
    c.learner.num_gpus = -1  # -1: one GPU when the cluster has one, else CPU; 0 or 1 forces

    c.actors = ml_collections.ConfigDict()
    c.actors.num_games = 64  # games per actor, searched in one batch
    c.actors.num_actors = 2  # self-play actors (distributed runs)
    c.actors.num_cpus = 1.0  # per actor; its XLA and numba threads are limited to it
    c.actors.steps_per_call = 20  # batched steps between parameter fetches
    c.actors.resources = ""  # a custom Ray resource actors require, e.g. "selfplay" (one unit)

    c.evaluator = ml_collections.ConfigDict()
    c.evaluator.interval_s = 120.0  # seconds between evaluations of the newest parameters
    c.evaluator.fractions = (0.1, 0.25)  # capacities of the held-out programs it plays
    # Every evaluation plays the next held-out case of at least `large_buffers` buffers, then
    # the other cases in rotation until `budget_s` seconds are spent.
    c.evaluator.large_buffers = 400
    c.evaluator.budget_s = 60.0
    c.evaluator.images = 2  # memory maps of the agent and msa logged per evaluation
    c.evaluator.num_cpus = 0.5

    c.run = ml_collections.ConfigDict()
    c.run.max_steps = 0  # learner steps; 0 = unbounded
    c.run.max_minutes = 0.0  # 0 = unbounded
    c.run.log_interval_s = 10.0  # progress line and TensorBoard scalars
    c.run.checkpoint_interval_minutes = 5.0
    c.run.keep_checkpoints = 3
    return c
