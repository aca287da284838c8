"""MuZero's invertible value scaling h(x) and categorical (two-hot) value encoding.

h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x compresses large values; scalars are encoded as
two-hot distributions over an evenly spaced support in h-space (MuZero, Appendix F).
mallocGame returns are fractions of the all-slow time (mostly in [0, 1]), so callers scale
them (``value_scale``, percent by default) before the transform.
"""

from __future__ import annotations

import jax.numpy as jnp

EPS = 1e-3


def h(x: jnp.ndarray, eps: float = EPS) -> jnp.ndarray:
    """MuZero's value scaling."""
    return jnp.sign(x) * (jnp.sqrt(jnp.abs(x) + 1.0) - 1.0) + eps * x


def h_inverse(y: jnp.ndarray, eps: float = EPS) -> jnp.ndarray:
    """Exact inverse of :func:`h`."""
    root = (jnp.sqrt(1.0 + 4.0 * eps * (jnp.abs(y) + 1.0 + eps)) - 1.0) / (2.0 * eps)
    return jnp.sign(y) * (root**2 - 1.0)


def support(num_bins: int, low: float, high: float) -> jnp.ndarray:
    """The evenly spaced support of ``num_bins`` points in h-space."""
    return jnp.linspace(low, high, num_bins)


def scalar_to_two_hot(x: jnp.ndarray, num_bins: int, low: float, high: float) -> jnp.ndarray:
    """Encode scalars (already in h-space) as two-hot distributions over the support."""
    x = jnp.clip(x, low, high)
    position = (x - low) / (high - low) * (num_bins - 1)
    lower = jnp.floor(position)
    upper_weight = position - lower
    lower_idx = lower.astype(jnp.int32)
    upper_idx = jnp.minimum(lower_idx + 1, num_bins - 1)
    bins = jnp.arange(num_bins)
    return (bins == lower_idx[..., None]) * (1.0 - upper_weight[..., None]) + (
        bins == upper_idx[..., None]
    ) * upper_weight[..., None]


def two_hot_to_scalar(probs: jnp.ndarray, low: float, high: float) -> jnp.ndarray:
    """Expected value of a distribution over the support (still in h-space)."""
    return jnp.sum(probs * support(probs.shape[-1], low, high), axis=-1)


def encode(value: jnp.ndarray, scale: float, num_bins: int, low: float, high: float):
    """Raw value (fraction of all-slow time) -> two-hot target over the h-space support."""
    return scalar_to_two_hot(h(value * scale), num_bins, low, high)


def decode(logits: jnp.ndarray, scale: float, low: float, high: float) -> jnp.ndarray:
    """Categorical logits -> raw value (fraction of all-slow time)."""
    import jax

    return h_inverse(two_hot_to_scalar(jax.nn.softmax(logits), low, high)) / scale
