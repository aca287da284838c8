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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mallocmuzero.actors.self_play import SelfPlay
from mallocmuzero.env.workload import Workload
from mallocmuzero.replay.adder import SequenceAdder

# (base workloads, seed, Reverb client) -> the core and its adder
SelfPlayParts = Callable[[list[Workload], int, Any], tuple[SelfPlay, SequenceAdder]]


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
        make_parts: SelfPlayParts,
        base: list[Workload],
        replay_address: str,
        actor_id: int,
        seed: int,
        num_simulations: int,
    ) -> None:
        import reverb

        self._core, self._adder = make_parts(base, seed, reverb.Client(replay_address))
        self._simulations = num_simulations
        self.actor_id = actor_id

    def identity(self) -> dict[str, Any]:
        """Process id and Ray node id of this actor (node id empty outside Ray)."""
        try:
            import ray

            node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
        except Exception:  # not inside Ray
            node = ""
        package = str(Path(__file__).resolve().parents[1])  # shipped to the cluster or installed
        return {"actor": self.actor_id, "pid": os.getpid(), "node": node, "package": package}

    def interrupt(self) -> None:
        """Make a replay write that blocks now raise (a role on a thread is stopped so)."""
        self._adder.interrupted = True

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
