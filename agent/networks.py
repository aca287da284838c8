"""MuZero networks in flax: representation, dynamics and prediction.

The representation maps the game's fixed-shape observation to a latent; the dynamics maps
(latent, action) to the next latent and a categorical reward; the prediction maps a latent
to policy logits over the game's actions and a categorical value. Latents are min-max
normalised to [0, 1] per example, as in MuZero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the networks and of the categorical supports."""

    num_actions: int = 9
    latent_size: int = 128
    hidden: Sequence[int] = (256, 256)
    value_bins: int = 49
    value_low: float = -2.0
    value_high: float = 10.0
    reward_bins: int = 49
    reward_low: float = -2.0
    reward_high: float = 10.0
    value_scale: float = 100.0


def normalize_latent(latent: jnp.ndarray) -> jnp.ndarray:
    """Min-max normalise each latent to [0, 1] (MuZero, Appendix G)."""
    low = latent.min(axis=-1, keepdims=True)
    high = latent.max(axis=-1, keepdims=True)
    return (latent - low) / jnp.maximum(high - low, 1e-8)


class MLP(nn.Module):
    """Dense layers with layer norm and ReLU."""

    sizes: Sequence[int]

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """Apply the layers."""
        for size in self.sizes:
            x = nn.relu(nn.LayerNorm()(nn.Dense(size)(x)))
        return x


class MuZeroNetwork(nn.Module):
    """The three MuZero functions behind two entry points (initial and recurrent)."""

    config: NetworkConfig

    def setup(self) -> None:
        """Create the submodules."""
        c = self.config
        self.representation = nn.Sequential([MLP(c.hidden), nn.Dense(c.latent_size)])
        self.dynamics = MLP(c.hidden)
        self.dynamics_latent = nn.Dense(c.latent_size)
        self.reward_head = nn.Dense(c.reward_bins)
        self.prediction = MLP(c.hidden)
        self.policy_head = nn.Dense(c.num_actions)
        self.value_head = nn.Dense(c.value_bins)

    def predict(self, latent: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Policy logits [B, A] and value logits [B, V] of latents [B, L]."""
        h = self.prediction(latent)
        return self.policy_head(h), self.value_head(h)

    def initial_inference(self, observation: jnp.ndarray):
        """Observation [B, F] -> (latent, policy logits, value logits)."""
        latent = normalize_latent(self.representation(observation))
        policy, value = self.predict(latent)
        return latent, policy, value

    def recurrent_inference(self, latent: jnp.ndarray, action: jnp.ndarray):
        """(latent [B, L], action [B]) -> (next latent, reward logits, policy, value logits)."""
        one_hot = jax.nn.one_hot(action, self.config.num_actions)
        h = self.dynamics(jnp.concatenate([latent, one_hot], axis=-1))
        next_latent = normalize_latent(self.dynamics_latent(h))
        reward = self.reward_head(h)
        policy, value = self.predict(next_latent)
        return next_latent, reward, policy, value

    def __call__(self, observation: jnp.ndarray, action: jnp.ndarray):
        """Both paths once (used to initialise every parameter)."""
        latent, policy, value = self.initial_inference(observation)
        return self.recurrent_inference(latent, action), policy, value


def init_params(config: NetworkConfig, observation_size: int, seed: int = 0):
    """Initial parameters for observations of ``observation_size`` features."""
    net = MuZeroNetwork(config)
    obs = jnp.zeros((1, observation_size), jnp.float32)
    return net.init(jax.random.PRNGKey(seed), obs, jnp.zeros((1,), jnp.int32))
