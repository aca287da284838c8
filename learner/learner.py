"""The learner core: sample, build targets with the target network, train, reprioritize.

No Ray here: the distributed learner actor and the synchronous runner both wrap it.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import numpy as np

from mallocmuzero.agent import value_transform as vt
from mallocmuzero.agent.networks import MuZeroNetwork, NetworkConfig
from mallocmuzero.learner.targets import loss_batch
from mallocmuzero.learner.train_state import (
    OptimizerConfig,
    TrainState,
    init_train_state,
    make_train_step,
)
from mallocmuzero.replay.sampling import sample_batch, update_priorities
from mallocmuzero.replay.schema import SequenceSpec


def make_bootstrap(config: NetworkConfig):
    """Jitted target-network values of observations [B, K+1, F] -> [B, K+1] (raw scale)."""
    net = MuZeroNetwork(config)

    @jax.jit
    def bootstrap(params, observations):
        b, k, f = observations.shape
        _, _, value = net.apply(
            params, observations.reshape(b * k, f), method=MuZeroNetwork.initial_inference
        )
        return vt.decode(value, config.value_scale, config.value_low, config.value_high).reshape(
            b, k
        )

    return bootstrap


class Learner:
    """Owns the train state; one :meth:`step` is one sampled batch and one update."""

    def __init__(
        self,
        net: NetworkConfig,
        opt: OptimizerConfig,
        spec: SequenceSpec,
        batch_size: int,
        importance_beta: float = 0.5,
        seed: int = 0,
        state: TrainState | None = None,
    ) -> None:
        self.spec = spec
        self.batch_size = batch_size
        self.beta = importance_beta
        self.state = state or init_train_state(net, opt, spec.observation_size, seed)
        self._train_step = make_train_step(net, opt)
        self._bootstrap = make_bootstrap(net)

    @property
    def params(self) -> Any:
        """Current network parameters."""
        return self.state.params

    @functools.cached_property
    def _window(self) -> slice:
        return slice(self.spec.td_steps, self.spec.td_steps + self.spec.unroll_steps + 1)

    def step(self, client) -> dict[str, float]:
        """Sample, train once, update priorities; returns scalar metrics.

        ``replay_wait_s`` is the time spent getting the batch from replay (blocked by the
        rate limiter or the network).
        """
        started = time.perf_counter()
        sampled = sample_batch(client, self.batch_size)
        waited = time.perf_counter() - started
        bootstrap = np.asarray(
            self._bootstrap(
                self.state.target_params, sampled.sequences["observation"][:, self._window]
            )
        )
        batch = loss_batch(
            sampled.sequences,
            bootstrap,
            sampled.importance_weights(self.beta),
            self.spec.unroll_steps,
            self.spec.td_steps,
        )
        self.state, metrics, priority = self._train_step(self.state, batch)
        update_priorities(client, sampled.keys, np.asarray(priority))
        return {**{k: float(v) for k, v in metrics.items()}, "replay_wait_s": waited}
