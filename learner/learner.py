"""The learner core: one replay batch in, one update, metrics and new priorities out.

No Ray, no Reverb client and no timing here: the distributed learner actor and the
synchronous runner both feed it batches from a ``replay.dataset.ReplayDataset`` and give
the priorities it returns back to that dataset.
"""

from __future__ import annotations

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
    """Target-network values of observations [B, K+1, F] -> [B, K+1] (raw scale)."""
    net = MuZeroNetwork(config)

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
        self._update = make_update(net, opt, spec)
        self._update_stacked = make_stacked_update(self._update)

    @property
    def params(self) -> Any:
        """Current network parameters."""
        return self.state.params

    def update(self, batch: ReplayBatch) -> tuple[dict[str, float], np.ndarray]:
        """Targets from the target network, one train step; (scalar metrics, priorities).

        A batch of n stacked batches (every field with a leading axis of n, see
        :func:`~mallocmuzero.learner.prefetch.stacked`) takes n steps in one jitted call;
        its metrics are their means and its priorities have the stacked shape [n, B].
        """
        update = self._update_stacked if batch.weights.ndim == 2 else self._update
        self.state, metrics, priority = update(self.state, batch.sequences, batch.weights)
        return {k: float(np.mean(v)) for k, v in metrics.items()}, np.asarray(priority)


def make_update(net: NetworkConfig, opt: OptimizerConfig, spec: SequenceSpec):
    """``update(state, sequences, weights) -> (state, metrics, priorities)``, one jitted call.

    The target network's bootstrap values, the n-step targets and the train step run in
    one XLA computation: nothing goes back to the host between them (on an accelerator,
    the batch goes up once and the metrics and priorities come down once).
    """
    bootstrap = make_bootstrap(net)
    train_step = make_train_step(net, opt)
    window = slice(spec.td_steps, spec.td_steps + spec.unroll_steps + 1)

    @jax.jit
    def update(state: TrainState, sequences: dict[str, Any], weights: Any):
        values = bootstrap(state.target_params, sequences["observation"][:, window])
        batch = loss_batch(sequences, values, weights, spec.unroll_steps, spec.td_steps)
        return train_step(state, batch)

    return update


def make_stacked_update(update):
    """``update`` over n stacked batches in one jitted call (``lax.scan``), n steps.

    On an accelerator this saves n - 1 dispatches and host round trips per call; the
    metrics come back per step [n], the priorities as [n, B].
    """

    @jax.jit
    def update_stacked(state: TrainState, sequences: dict[str, Any], weights: Any):
        def one(state, batch):
            state, metrics, priority = update(state, *batch)
            return state, (metrics, priority)

        state, (metrics, priority) = jax.lax.scan(one, state, (sequences, weights))
        return state, metrics, priority

    return update_stacked
