"""The learner core: one replay batch in, one update, metrics and new priorities out.

No Ray, no Reverb client and no timing here: the distributed learner actor and the
synchronous runner both feed it batches from a ``replay.dataset.ReplayDataset`` and give
the priorities it returns back to that dataset.
"""

from __future__ import annotations

import functools
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
from mallocmuzero.replay.dataset import ReplayBatch
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
    """Owns the train state; one :meth:`update` is one batch and one optimizer step."""

    def __init__(
        self,
        net: NetworkConfig,
        opt: OptimizerConfig,
        spec: SequenceSpec,
        seed: int = 0,
        state: TrainState | None = None,
    ) -> None:
        self.spec = spec
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

    def update(self, batch: ReplayBatch) -> tuple[dict[str, float], np.ndarray]:
        """Targets from the target network, one train step; (scalar metrics, priorities)."""
        bootstrap = np.asarray(
            self._bootstrap(
                self.state.target_params, batch.sequences["observation"][:, self._window]
            )
        )
        targets = loss_batch(
            batch.sequences,
            bootstrap,
            batch.weights,
            self.spec.unroll_steps,
            self.spec.td_steps,
        )
        self.state, metrics, priority = self._train_step(self.state, targets)
        return {k: float(v) for k, v in metrics.items()}, np.asarray(priority)
