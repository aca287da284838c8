"""The MuZero loss over a K-step unroll, as a pure function of parameters and a batch.

A batch (numpy or jax arrays) holds, for B sequences starting at a sampled step:

* ``observation`` [B, F]: the observation at the first step;
* ``actions`` [B, K]: the actions taken at steps 0..K-1 (any legal action past the end);
* ``target_policy`` [B, K+1, A]: the search's improved policies;
* ``target_value`` [B, K+1]: n-step bootstrapped value targets (raw scale);
* ``target_reward`` [B, K]: the rewards of the actions (raw scale);
* ``mask`` [B, K+1]: 1 where the step lies inside the episode (0 past its end);
* ``weight`` [B]: importance weights of prioritized replay.

Past the episode's end the game is absorbing: value and reward targets are 0 and the
policy term is masked. The dynamics' gradient is halved at every unroll step (MuZero).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from mallocmuzero.agent import value_transform as vt
from mallocmuzero.agent.networks import MuZeroNetwork, NetworkConfig
from mallocmuzero.learner.targets import Batch


class LossOutput(NamedTuple):
    """The total loss and its parts, plus new priorities."""

    total: jnp.ndarray
    policy: jnp.ndarray
    value: jnp.ndarray
    reward: jnp.ndarray
    priority: jnp.ndarray  # [B] |value prediction - target| at the first step


def scale_gradient(x: jnp.ndarray, scale: float) -> jnp.ndarray:
    """Identity forward, gradient multiplied by ``scale`` backward."""
    return x * scale + jax.lax.stop_gradient(x) * (1.0 - scale)


def muzero_loss(
    params, batch: Batch, config: NetworkConfig, value_weight: float = 0.25
) -> tuple[jnp.ndarray, LossOutput]:
    """MuZero loss of a batch; returns (scalar loss, LossOutput) for ``jax.value_and_grad``."""
    net = MuZeroNetwork(config)
    k_steps = batch.action.shape[1]
    latent, policy, value = net.apply(
        params, batch.observation, method=MuZeroNetwork.initial_inference
    )
    mask = batch.mask
    value_target = vt.encode(
        batch.value,
        config.value_scale,
        config.value_bins,
        config.value_low,
        config.value_high,
    )
    reward_target = vt.encode(
        batch.reward,
        config.value_scale,
        config.reward_bins,
        config.reward_low,
        config.reward_high,
    )
    policy_losses = [optax.softmax_cross_entropy(policy, batch.policy[:, 0])]
    value_losses = [optax.softmax_cross_entropy(value, value_target[:, 0])]
    reward_losses = []
    first_value = vt.decode(value, config.value_scale, config.value_low, config.value_high)
    for k in range(k_steps):
        latent, reward, policy, value = net.apply(
            params, latent, batch.action[:, k], method=MuZeroNetwork.recurrent_inference
        )
        latent = scale_gradient(latent, 0.5)
        reward_losses.append(optax.softmax_cross_entropy(reward, reward_target[:, k]))
        policy_losses.append(optax.softmax_cross_entropy(policy, batch.policy[:, k + 1]))
        value_losses.append(optax.softmax_cross_entropy(value, value_target[:, k + 1]))
    policy_l = jnp.stack(policy_losses, axis=1) * mask
    value_l = jnp.stack(value_losses, axis=1)
    reward_l = jnp.stack(reward_losses, axis=1)
    per_example = policy_l.sum(1) + value_weight * value_l.sum(1) + reward_l.sum(1)
    total = jnp.mean(per_example * batch.weight) / (k_steps + 1)
    priority = jnp.abs(first_value - batch.value[:, 0])
    return total, LossOutput(
        total, policy_l.mean(), value_l.mean(), reward_l.mean(), jax.lax.stop_gradient(priority)
    )
