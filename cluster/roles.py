"""Role handles: each role of a run as a Ray actor with honest resources.

The replay server is pinned to the driver's node (its checkpoints land beside the run
folder); the learner takes a GPU where the cluster has one; self-play actors and the
evaluator limit their XLA, numba and BLAS threads to the CPUs they declare. Every role
receives its parts from the composition root (``cluster/components.py``), bound to the
config with ``functools.partial``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mallocmuzero.actors.evaluator import EvaluatorService
from mallocmuzero.actors.service import SelfPlayService, thread_limits
from mallocmuzero.cluster import components
from mallocmuzero.configs.schema import ExperimentConfig
from mallocmuzero.learner.service import LearnerService
from mallocmuzero.replay.service import ReplayService


class Role(enum.Enum):
    """What an in-flight call belongs to."""

    ACTOR = "actor"  # a self-play call
    IDENTITY = "identity"  # a new self-play actor's pid and node
    LEARNER = "learner"
    EVALUATOR = "evaluator"


def ray_options(num_cpus: float, env: dict[str, str], **extra: Any) -> dict[str, Any]:
    """Ray actor options: CPUs, environment variables, anything else (GPUs, resources)."""
    return {"num_cpus": num_cpus, "runtime_env": {"env_vars": env}, **extra}


class RoleLauncher:
    """Starts the roles of one config on ``runtime`` (:mod:`ray`, or a LocalRuntime)."""

    def __init__(self, runtime: Any, config: ExperimentConfig) -> None:
        self.runtime, self.config = runtime, config

    def replay(self, scratch: Path, restore_from: Path | None) -> tuple[Any, str]:
        """The Reverb server on the driver's node; (handle, its address)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = self.runtime.get_runtime_context().get_node_id()
        host = next(n["NodeManagerAddress"] for n in self.runtime.nodes() if n["NodeID"] == here)
        remote = self.runtime.remote(ReplayService).options(
            **ray_options(self.config.replay.num_cpus, {"JAX_PLATFORMS": "cpu"}),
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
        )
        handle = remote.remote(
            components.sequence_spec(self.config),
            components.replay_config(self.config),
            str(scratch),
            str(restore_from) if restore_from else None,
            host,
        )
        return handle, self.runtime.get(handle.address.remote())

    def learner_gpus(self) -> int:
        """``learner.num_gpus``, or (at -1) one GPU when the cluster has one."""
        wanted = int(self.config.learner.num_gpus)
        if wanted >= 0:
            return wanted
        return 1 if self.runtime.cluster_resources().get("GPU", 0) >= 1 else 0

    def learner(self, replay_address: str, state: Any) -> Any:
        """The learner (restored from ``state``, or fresh)."""
        gpus = self.learner_gpus()
        env = {"JAX_PLATFORMS": ""} if gpus else {
            "JAX_PLATFORMS": "cpu", **thread_limits(self.config.learner.num_cpus)
        }  # fmt: skip
        remote = self.runtime.remote(LearnerService).options(
            **ray_options(self.config.learner.num_cpus, env, num_gpus=gpus)
        )
        parts = functools.partial(components.learner_parts, self.config)
        return remote.remote(parts, replay_address, state)

    def actor(self, base_ref: Any, replay_address: str, index: int, seed: int) -> Any:
        """Self-play actor ``index`` (one unit of ``actors.resources`` when set)."""
        a = self.config.actors
        extra = {"resources": {a.resources: 1}} if a.resources else {}
        env = {"JAX_PLATFORMS": "cpu", **thread_limits(a.num_cpus)}
        remote = self.runtime.remote(SelfPlayService).options(
            **ray_options(a.num_cpus, env, **extra)
        )
        parts = functools.partial(components.self_play_parts, self.config)
        return remote.remote(parts, base_ref, replay_address, index, seed,
                             self.config.search.num_simulations)  # fmt: skip

    def evaluator(self, progress: Callable[[str], None]) -> Any | None:
        """The evaluator over the held-out workloads, or None when there are none."""
        heldout = components.evaluation_workloads(self.config)
        if not heldout:
            progress("[train] no held-out workloads: the evaluator is off")
            return None
        cpus = self.config.evaluator.num_cpus
        remote = self.runtime.remote(EvaluatorService).options(
            **ray_options(cpus, {"JAX_PLATFORMS": "cpu", **thread_limits(cpus)})
        )
        parts = functools.partial(components.evaluator_parts, self.config)
        return remote.remote(parts, self.config.evaluator, heldout)

    def kill(self, *handles: Any) -> None:
        """Kill actors without restart (those already gone are skipped)."""
        for handle in handles:
            if handle is not None:
                try:
                    self.runtime.kill(handle, no_restart=True)
                except Exception:  # already gone
                    pass
