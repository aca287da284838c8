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

from mallocmuzero.env.observation import (
    CURRENT_FEATURES,
    PER_CANDIDATE,
    PER_LOOKAHEAD_ACTION,
    PER_PICK,
    PER_UPCOMING,
    PROGRESS_FEATURES,
    SHIPPED_GAME,
    ObservationSpec,
)


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
    encoder: str = "mlp"  # configs.schema.ENCODERS: "mlp" or "set" (SetEncoder)
    observation: ObservationSpec = SHIPPED_GAME  # the layout the "set" encoder splits
    token_size: int = 64  # the "set" encoder's width
    attention_layers: int = 1


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


def observation_tokens(x: jnp.ndarray, spec: ObservationSpec):
    """Split observations [B, F] into (global [B, G], actions [B, A, Fa], upcoming [B, W, 5]).

    Action token a holds offset candidate a's features (zeros for slow and beyond N),
    pick slot a's (zeros beyond K; absent in game v1), its lookahead pair (with the
    lookahead block) and a one-hot of a; an upcoming token holds its buffer's features and
    a one-hot of its place in the window. The global features are the current buffer,
    progress, occupancy, the phase flag and msa's completion to go.
    """
    b, a = x.shape[0], spec.num_actions
    n, w, k = spec.num_offset_actions, spec.window, spec.pick_candidates
    offsets_start = CURRENT_FEATURES + PROGRESS_FEATURES + spec.occupancy_bins
    upcoming_start = offsets_start + PER_CANDIDATE * n
    glob = [x[:, :offsets_start]]
    offsets = x[:, offsets_start:upcoming_start].reshape(b, n, PER_CANDIDATE)
    action = [jnp.pad(offsets, ((0, 0), (0, a - n), (0, 0)))]
    if k > 1:
        glob.append(x[:, spec.pick_start : spec.pick_start + 1])
        first = spec.pick_start + 1
        picks = x[:, first : first + PER_PICK * k].reshape(b, k, PER_PICK)
        action.append(jnp.pad(picks, ((0, 0), (0, a - k), (0, 0))))
    if spec.lookahead:
        first = spec.lookahead_start
        pairs = x[:, first : first + PER_LOOKAHEAD_ACTION * a].reshape(b, a, -1)
        action.append(pairs)
        glob.append(x[:, -1:])
    action.append(jnp.broadcast_to(jnp.eye(a, dtype=x.dtype), (b, a, a)))
    upcoming = x[:, upcoming_start : spec.pick_start].reshape(b, w, PER_UPCOMING)
    upcoming = jnp.concatenate(
        [upcoming, jnp.broadcast_to(jnp.eye(w, dtype=x.dtype), (b, w, w))], axis=-1
    )
    return jnp.concatenate(glob, axis=-1), jnp.concatenate(action, axis=-1), upcoming


class SetEncoder(nn.Module):
    """Observation [B, F] -> features [B, H]: one token per action and upcoming buffer.

    Each kind of token (global, action, upcoming buffer) has one embedding shared by every
    token of the kind; ``layers`` pre-norm self-attention blocks mix them; the global
    token's output and the mean and max over all tokens feed the hidden layers.
    """

    spec: ObservationSpec
    width: int
    layers: int
    hidden: Sequence[int]

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """Encode a batch of observations."""
        glob, actions, upcoming = observation_tokens(x, self.spec)
        tokens = [nn.Dense(self.width)(glob)[:, None], nn.Dense(self.width)(actions)]
        if self.spec.window:
            tokens.append(nn.Dense(self.width)(upcoming))
        h = jnp.concatenate(tokens, axis=1)
        for _ in range(self.layers):
            y = nn.LayerNorm()(h)
            h = h + nn.MultiHeadDotProductAttention(num_heads=4)(y, y)
            y = nn.Dense(2 * self.width)(nn.LayerNorm()(h))
            h = h + nn.Dense(self.width)(nn.relu(y))
        h = nn.LayerNorm()(h)
        return MLP(self.hidden)(jnp.concatenate([h[:, 0], h.mean(1), h.max(1)], axis=-1))


class MuZeroNetwork(nn.Module):
    """The three MuZero functions behind two entry points (initial and recurrent)."""

    config: NetworkConfig

    def setup(self) -> None:
        """Create the submodules."""
        c = self.config
        if c.encoder == "set":
            encoder = SetEncoder(c.observation, c.token_size, c.attention_layers, c.hidden)
        else:
            encoder = MLP(c.hidden)
        self.representation = nn.Sequential([encoder, nn.Dense(c.latent_size)])
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
