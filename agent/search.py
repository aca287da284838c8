"""Batched Gumbel MuZero search with mctx over the learned model.

:func:`make_search` returns one jitted function that searches a whole batch of games:
``search(params, rng, features [B, F], legal [B, A], greedy) -> SearchOutput``. Illegal
actions are masked at the root (mctx masks only there; inner nodes rely on the learned
policy). Acting mode samples Gumbel noise; evaluation mode (``greedy=True``) turns it
off, so the search picks the best action deterministically.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mctx

from mallocmuzero.agent import value_transform as vt
from mallocmuzero.agent.networks import MuZeroNetwork, NetworkConfig


class SearchOutput(NamedTuple):
    """One search over a batch: chosen actions, improved policies and root values."""

    action: jnp.ndarray  # [B] int32
    action_weights: jnp.ndarray  # [B, A] the improved policy (training target)
    root_value: jnp.ndarray  # [B] search value of the root, raw scale


def make_search(
    config: NetworkConfig,
    num_simulations: int = 16,
    max_considered_actions: int = 16,
    discount: float = 1.0,
):
    """Build the jitted batched search for a network configuration."""
    net = MuZeroNetwork(config)

    def value_of(logits):
        return vt.decode(logits, config.value_scale, config.value_low, config.value_high)

    def reward_of(logits):
        return vt.decode(logits, config.value_scale, config.reward_low, config.reward_high)

    def recurrent_fn(params, rng, action, embedding):
        del rng
        latent, reward, policy, value = net.apply(
            params, embedding, action, method=MuZeroNetwork.recurrent_inference
        )
        out = mctx.RecurrentFnOutput(
            reward=reward_of(reward),
            discount=jnp.full(action.shape, discount, jnp.float32),
            prior_logits=policy,
            value=value_of(value),
        )
        return out, latent

    @functools.partial(jax.jit, static_argnames=("greedy",))
    def search(params, rng, features, legal, greedy: bool = False) -> SearchOutput:
        latent, policy, value = net.apply(params, features, method=MuZeroNetwork.initial_inference)
        root = mctx.RootFnOutput(prior_logits=policy, value=value_of(value), embedding=latent)
        out = mctx.gumbel_muzero_policy(
            params=params,
            rng_key=rng,
            root=root,
            recurrent_fn=recurrent_fn,
            num_simulations=num_simulations,
            invalid_actions=~legal,
            max_num_considered_actions=max_considered_actions,
            gumbel_scale=0.0 if greedy else 1.0,
        )
        return SearchOutput(
            action=out.action.astype(jnp.int32),
            action_weights=out.action_weights,
            root_value=out.search_tree.node_values[:, 0],
        )

    return search
