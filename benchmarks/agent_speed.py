"""Benchmark (c): search simulations per second and learner steps per second.

* Search: the self-play core (game step + batched search + bookkeeping) against the raw
  jitted mctx call on the same network and batch, measured in the same run; the ratio is
  the share of raw search speed the core keeps.
* Learner: jitted train steps per second at the default batch on synthetic batches, and
  full learner steps (Reverb sampling, targets, train step, priority update).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import jax
import numpy as np

from mallocmuzero.actors.self_play import SelfPlay
from mallocmuzero.actors.workload_sampler import CapacitySampler
from mallocmuzero.agent.checkpoint import network_config
from mallocmuzero.agent.networks import init_params
from mallocmuzero.agent.search import make_search
from mallocmuzero.cluster.components import observation_spec, optimizer_config
from mallocmuzero.configs import default
from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.workload import Workload
from mallocmuzero.learner.train_state import init_train_state, make_train_step


def _timed(fn, seconds: float) -> tuple[int, float]:
    fn()  # warm-up and compile
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count, time.perf_counter() - start


def search_speed(workloads: Sequence[Workload], seconds: float = 5.0) -> dict[str, float]:
    """Simulations per second: self-play core vs the raw search call."""
    config = default.get_config()
    spec = observation_spec(config)
    net = network_config(config, spec.num_actions)
    sampler = CapacitySampler(list(workloads), 0.05, 0.6)
    game = BatchedGame(GameBank.build(workloads), config.actors.num_games, spec, sampler)
    search = make_search(net, config.search.num_simulations, config.search.max_considered_actions)
    params = init_params(net, spec.size)
    features, legal = game.observe()
    keys = iter(jax.random.split(jax.random.PRNGKey(0), 1_000_000))

    def raw() -> None:
        jax.block_until_ready(search(params, next(keys), features, legal).action)

    core = SelfPlay(game, search, add=None)
    sims = config.actors.num_games * config.search.num_simulations
    # Alternate short blocks so that both see the same machine load.
    totals = {"raw": [0, 0.0], "core": [0, 0.0]}
    for _ in range(5):
        for name, fn in (("raw", raw), ("core", lambda: core.step(params))):
            n, t = _timed(fn, seconds / 5)
            totals[name][0] += n
            totals[name][1] += t
    raw_rate = totals["raw"][0] * sims / totals["raw"][1]
    core_rate = totals["core"][0] * sims / totals["core"][1]
    return {"raw_sims_per_s": raw_rate, "core_sims_per_s": core_rate, "ratio": core_rate / raw_rate}


def learner_speed(seconds: float = 5.0) -> dict[str, float]:
    """Jitted train steps per second at the default batch, on synthetic batches."""
    config = default.get_config()
    spec = observation_spec(config)
    net = network_config(config, spec.num_actions)
    opt = optimizer_config(config)
    state = init_train_state(net, opt, spec.size)
    train_step = make_train_step(net, opt)
    b, k, a = config.learner.batch_size, config.replay.unroll_steps, spec.num_actions
    rng = np.random.default_rng(0)
    batch = {
        "observation": rng.random((b, spec.size), np.float32),
        "actions": rng.integers(0, a, (b, k)).astype(np.int32),
        "target_policy": np.full((b, k + 1, a), 1.0 / a, np.float32),
        "target_value": rng.random((b, k + 1), np.float32),
        "target_reward": rng.random((b, k), np.float32) * 0.01,
        "mask": np.ones((b, k + 1), np.float32),
        "weight": np.ones(b, np.float32),
    }
    holder = [state]

    def step() -> None:
        holder[0], metrics, _ = train_step(holder[0], batch)
        jax.block_until_ready(metrics["loss/total"])

    n, t = _timed(step, seconds)
    return {"batch": b, "train_steps_per_s": n / t, "device": jax.devices()[0].platform}
