"""Learner state and the jitted train step (optax AdamW, warm-up then cosine decay, clipping).

The target network (used for value bootstraps) is refreshed every
``target_update_interval`` steps.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mallocmuzero.agent.networks import NetworkConfig, init_params
from mallocmuzero.learner.loss import muzero_loss


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer settings (defaults: the experiment config's ``learner`` section)."""

    learning_rate: float
    warmup_steps: int
    decay_steps: int
    weight_decay: float
    max_grad_norm: float
    value_weight: float
    target_update_interval: int


class TrainState(NamedTuple):
    """Everything the learner checkpoints: parameters, target, optimizer state, step.

    The loss draws no randomness, so the state holds no RNG key.
    """

    params: Any
    target_params: Any
    opt_state: Any
    step: jnp.ndarray


def learning_rate_schedule(config: OptimizerConfig) -> optax.Schedule:
    """Linear warm-up from 0, then cosine decay to a tenth of the peak rate."""
    return optax.warmup_cosine_decay_schedule(
        0.0,
        config.learning_rate,
        config.warmup_steps,
        config.decay_steps,
        config.learning_rate * 0.1,
    )


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """AdamW with linear warm-up, cosine decay and global-norm clipping."""
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm),
        optax.adamw(learning_rate_schedule(config), weight_decay=config.weight_decay),
    )


def init_train_state(
    net_config: NetworkConfig, opt_config: OptimizerConfig, observation_size: int, seed: int = 0
) -> TrainState:
    """A fresh learner state."""
    params = init_params(net_config, observation_size, seed)
    opt_state = make_optimizer(opt_config).init(params)
    return TrainState(params, params, opt_state, jnp.zeros((), jnp.int32))


def make_train_step(net_config: NetworkConfig, opt_config: OptimizerConfig):
    """Build ``train_step(state, batch) -> (state, metrics, priorities)``, jitted."""
    optimizer = make_optimizer(opt_config)
    schedule = learning_rate_schedule(opt_config)
    loss_fn = functools.partial(
        muzero_loss, config=net_config, value_weight=opt_config.value_weight
    )

    @jax.jit
    def train_step(state: TrainState, batch):
        (_, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        step = state.step + 1
        refresh = step % opt_config.target_update_interval == 0
        target = jax.tree_util.tree_map(
            lambda new, old: jnp.where(refresh, new, old), params, state.target_params
        )
        metrics = {
            "loss/total": out.total,
            "loss/policy": out.policy,
            "loss/value": out.value,
            "loss/reward": out.reward,
            "grad_norm": optax.global_norm(grads),
            "learning_rate": schedule(state.step),
        }
        new_state = TrainState(params, target, opt_state, step)
        return new_state, metrics, out.priority

    return train_step
