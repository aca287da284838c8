"""The self-play role: one self-play core writing to a remote Reverb server.

A plain class; the distributed runner wraps it in a Ray actor with the CPUs it declares
(its XLA and numba threads limited to them through the actor's environment, see
:func:`thread_limits`). Each call plays a few batched steps with the parameters it is
handed; the supervisor passes the newest published version with every call, so
parameters are refreshed every ``steps_per_call`` steps without blocking self-play.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import ml_collections

import mallocmuzero
from mallocmuzero.cluster.components import make_self_play, sequence_spec, training_workloads
from mallocmuzero.env.workload import Workload
from mallocmuzero.replay.adder import SequenceAdder


def thread_limits(num_cpus: float) -> dict[str, str]:
    """Environment variables that keep XLA, numba and BLAS within ``num_cpus`` cores."""
    threads = str(max(1, math.ceil(num_cpus)))
    return {
        "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}",
        "NUMBA_NUM_THREADS": threads,
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": "1",
    }


class SelfPlayService:
    """Many games and one batched search per step; finished steps go to replay."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        base: list[Workload],
        replay_address: str,
        actor_id: int,
        seed: int,
    ) -> None:
        import reverb

        self._client = reverb.Client(replay_address)
        self._adder = SequenceAdder(
            self._client, sequence_spec(config), config.actors.num_games, config.replay.period
        )
        workloads = training_workloads(config, base, seed)
        self._core = make_self_play(config, workloads, self._adder.add, seed)
        self._simulations = config.search.num_simulations
        self.actor_id = actor_id

    def identity(self) -> dict[str, Any]:
        """Process id and Ray node id of this actor (node id empty outside Ray)."""
        try:
            import ray

            node = ray.get_runtime_context().get_node_id()
        except Exception:  # not inside Ray
            node = ""
        package = str(Path(mallocmuzero.__file__).resolve().parent)  # shipped or installed
        return {"actor": self.actor_id, "pid": os.getpid(), "node": node, "package": package}

    def run(self, params: Any, version: int, num_steps: int) -> dict[str, Any]:
        """Play ``num_steps`` batched steps with ``params`` (learner step ``version``)."""
        started = time.perf_counter()
        stats = self._core.stats
        steps0, episodes0 = stats.steps, stats.episodes
        for _ in range(num_steps):
            self._core.step(params)
        self._adder.flush()
        finished = stats.episodes - episodes0
        return {
            "actor": self.actor_id,
            "version": version,
            "steps": stats.steps - steps0,
            "simulations": (stats.steps - steps0) * self._simulations,
            "episodes": finished,
            "returns": stats.returns[-finished:] if finished else [],
            "seconds": time.perf_counter() - started,
        }
