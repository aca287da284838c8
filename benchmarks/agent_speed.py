"""Benchmark (c): search simulations per second and learner steps per second.

* Search: the self-play core (game step + batched search + bookkeeping) against the raw
  jitted mctx call on the same network and batch, measured in the same run; the ratio is
  the share of raw search speed the core keeps (without and with lookahead observations).
* Learner: jitted train steps per second at the default batch on synthetic batches, and
  full learner steps (Reverb sampling, targets, train step, priority update).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import jax
import numba
import numpy as np

from mallocmuzero.actors.self_play import SelfPlay, game_groups, overlap_groups
from mallocmuzero.actors.service import thread_limits
from mallocmuzero.actors.workload_sampler import CapacitySampler
from mallocmuzero.agent.checkpoint import network_config
from mallocmuzero.agent.networks import init_params
from mallocmuzero.agent.search import make_search
from mallocmuzero.agent.solve import observation_spec
from mallocmuzero.cluster.components import optimizer_config
from mallocmuzero.configs.schema import ExperimentConfig
from mallocmuzero.env.game import GameBank
from mallocmuzero.env.workload import Workload, load_workload
from mallocmuzero.learner.targets import Batch
from mallocmuzero.learner.train_state import init_train_state, make_train_step


def _timed(fn, seconds: float, settle=None) -> tuple[int, float]:
    """Calls of ``fn`` in about ``seconds``, and their time.

    ``settle`` waits for work a call leaves running for the next one: once before the clock
    starts and once before it stops, so a block neither starts with it under way nor
    leaves it to the next block (the first call gets one finished, the last one's is timed).
    """
    fn()  # warm-up and compile
    if settle is not None:
        settle()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    if settle is not None:
        settle()
    return count, time.perf_counter() - start


def search_speed(
    workloads: Sequence[Workload], seconds: float = 5.0, lookahead_only: bool = False
) -> dict[str, float]:
    """Simulations per second: the self-play core, without and with lookahead, vs raw search.

    The raw call searches the states the core is at: a search costs more on mid-game
    states than on fresh ones (measured 24 against 15 ms for this batch), so a baseline on
    fresh states alone would flatter it. The lookahead observation (N+1 msa completions
    per game step) is a feature the game computes, so the core is timed both ways: without
    it the figure is the core's own overhead, with it the cost of the feature too. The
    core splits its games in the groups it would in an actor with this process's threads
    (:func:`~mallocmuzero.actors.self_play.overlap_groups`); ``_one_group`` is the core
    with lookahead in one group, its game steps not overlapping its searches.
    ``lookahead_only``: the default game with lookahead alone.
    """
    config = ExperimentConfig()
    sampler = CapacitySampler(list(workloads), 0.05, 0.6)
    search = make_search(
        network_config(config, observation_spec(config).num_actions),
        config.search.num_simulations,
        config.search.max_considered_actions,
    )
    key = [jax.random.PRNGKey(0)]  # threaded through the raw calls, as the core does
    blocks = {}
    groups = overlap_groups()
    variants = {"_lookahead": ({"lookahead": True}, groups)}
    if not lookahead_only:
        variants |= {"": ({"lookahead": False}, groups),
                     "_lookahead_v1": ({"lookahead": True, "pick_candidates": 1}, groups),
                     "_lookahead_one_group": ({"lookahead": True}, 1)}  # fmt: skip
    bank = GameBank.build(workloads)
    for suffix, (changes, n_groups) in variants.items():
        spec = dataclasses.replace(observation_spec(config), **changes)
        net = network_config(config, spec.num_actions)
        games = game_groups(bank, config.actors.num_games, spec, sampler, 0, n_groups)
        params = init_params(net, spec.size)
        core = SelfPlay(games, search, add=None)
        blocks[f"core{suffix}"] = (partial(core.step, params), core.wait)
        blocks[f"raw{suffix}"] = (partial(_raw_search, search, params, key, core), None)

    sims = config.actors.num_games * config.search.num_simulations
    # Alternate short blocks so that all see the same machine load.
    totals = {name: [0, 0.0] for name in blocks}
    for _ in range(5):
        for name, (fn, settle) in blocks.items():
            n, t = _timed(fn, seconds / 5, settle)
            totals[name][0] += n
            totals[name][1] += t
    rates = {f"{name}_sims_per_s": n * sims / t for name, (n, t) in totals.items()}
    ratios = {f"ratio{suffix}": rates[f"core{suffix}_sims_per_s"] / rates[f"raw{suffix}_sims_per_s"]
              for suffix in variants}  # fmt: skip
    return {**rates, **ratios, "groups": groups, "threads": numba.get_num_threads()}


def one_cpu_search_speed(workload_dir: str, seconds: float = 5.0) -> dict[str, float]:
    """:func:`search_speed` with lookahead alone, in a process held to one thread.

    As in an actor that declares one CPU (its XLA and numba threads: ``thread_limits(1)``).
    """
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **thread_limits(1)}
    command = [sys.executable, "-m", "mallocmuzero.benchmarks.agent_speed",
               "--workloads", workload_dir, "--seconds", str(seconds)]  # fmt: skip
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the one-CPU search bench failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _raw_search(search, params, key: list, core: SelfPlay) -> None:
    """The search call alone on the core's current states (the cost depends on them)."""
    out = search(params, key[0], core.features, core.legal)
    key[0] = out.rng
    jax.block_until_ready(out.action)


def learner_speed(seconds: float = 5.0) -> dict[str, float]:
    """Jitted train steps per second at the default batch, on synthetic batches."""
    config = ExperimentConfig()
    spec = observation_spec(config)
    net = network_config(config, spec.num_actions)
    opt = optimizer_config(config)
    state = init_train_state(net, opt, spec.size)
    train_step = make_train_step(net, opt)
    b, k, a = config.learner.batch_size, config.replay.unroll_steps, spec.num_actions
    rng = np.random.default_rng(0)
    batch = Batch(
        observation=rng.random((b, spec.size), np.float32),
        action=rng.integers(0, a, (b, k)).astype(np.int32),
        policy=np.full((b, k + 1, a), 1.0 / a, np.float32),
        value=rng.random((b, k + 1), np.float32),
        reward=rng.random((b, k), np.float32) * 0.01,
        mask=np.ones((b, k + 1), np.float32),
        weight=np.ones(b, np.float32),
    )
    holder = [state]

    def step() -> None:
        holder[0], metrics, _ = train_step(holder[0], batch)
        jax.block_until_ready(metrics["loss/total"])

    n, t = _timed(step, seconds)
    return {"batch": b, "train_steps_per_s": n / t, "device": jax.devices()[0].platform}


def main() -> None:
    """Print :func:`search_speed` with lookahead alone as JSON (see one_cpu_search_speed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", required=True, help="a folder of workload JSON files")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    workloads = [load_workload(p) for p in sorted(Path(args.workloads).glob("*.json"))]
    print(json.dumps(search_speed(workloads, args.seconds, lookahead_only=True)))


if __name__ == "__main__":
    main()
