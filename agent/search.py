"""Batched Gumbel MuZero search with mctx over the learned model.

:func:`make_search` returns one jitted function that searches a whole batch of games:
``search(params, rng, features [B, F], legal [B, A], greedy) -> SearchOutput``; the output
carries the key for the caller's next search (``SearchOutput.rng``), split inside the jitted
call, so a caller threads one key through its searches with no dispatch of its own. Illegal
actions are masked at the root (mctx masks only there; inner nodes rely on the learned
policy). Acting mode samples Gumbel noise; evaluation mode (``greedy=True``) turns it
off, so the search picks the best action deterministically.

With ``rollout_weight`` λ > 0 and a ``rollout_returns`` reader, the root's completed
Q-values mix with the return ``z`` of a heuristic rollout after each action, which the
observation reports (the lookahead block), as AlphaGo mixed its value network with fast
rollouts: ``q(a) = (1 - λ) q_θ(a) + λ z(a)``. Every legal root action has its ``z``, so
even unvisited ones get it; deeper nodes use the learned model alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mctx

from mallocmuzero.agent import value_transform as vt
from mallocmuzero.agent.networks import MuZeroNetwork, NetworkConfig
from mallocmuzero.env.observation import ObservationSpec


class SearchOutput(NamedTuple):
    """One search over a batch: chosen actions, improved policies and root values."""

    action: jnp.ndarray  # [B] int32
    action_weights: jnp.ndarray  # [B, A] the improved policy (training target)
    root_value: jnp.ndarray  # [B] search value of the root, raw scale
    rng: jnp.ndarray  # the key to pass to the next search


def lookahead_returns(spec: ObservationSpec) -> Callable[[jnp.ndarray], jnp.ndarray]:
    """A reader of rollout returns from observations with the lookahead block.

    It maps features ``[B, F]`` to ``[B, A + 1]``: each action's return when msa completes
    the episode after it, then the return of msa's own completion, as fractions of the
    all-slow time still to save (the block holds percent). Illegal actions read as msa's.
    """
    if not spec.lookahead:
        raise ValueError("rollout returns need observations with the lookahead block")
    advantage_columns, to_go_column = spec.lookahead_columns

    def read(features: jnp.ndarray) -> jnp.ndarray:
        to_go = features[:, to_go_column]
        returns = features[:, jnp.array(advantage_columns)] + to_go[:, None]
        return jnp.concatenate([returns, to_go[:, None]], axis=1) / 100.0

    return read


class Embedding(NamedTuple):
    """A search node's state: the latent, and the root's rollout returns (carried along)."""

    latent: jnp.ndarray  # [B, L]
    rollout: jnp.ndarray  # [B, A] return of each root action's heuristic rollout


def completed_qvalues(tree: mctx.Tree, node_index, rollout_weight: float) -> jnp.ndarray:
    """A node's children Q-values, completed and scaled as Gumbel MuZero's ``sigma(q)``.

    Unvisited children get the mixed value (the node's raw value averaged with the
    prior-weighted Q of visited ones, Danihelka et al. 2022, eq. 33); at the root the
    result mixes with the rollout returns; then min-max rescaling and the visit scale
    ``(50 + max visits) * 0.1`` (mctx's defaults). Unbatched: ``tree`` is one game's.
    """
    q = tree.qvalues(node_index)
    visits = tree.children_visits[node_index]
    prior = jax.nn.softmax(tree.children_prior_logits[node_index])
    visited = visits > 0
    total_visits = jnp.sum(visits)
    visited_prior = jnp.sum(jnp.where(visited, prior, 0.0))
    weighted_q = jnp.sum(jnp.where(visited, prior * q, 0.0)) / jnp.maximum(visited_prior, 1e-12)
    mixed_value = (tree.raw_values[node_index] + total_visits * weighted_q) / (total_visits + 1)
    completed = jnp.where(visited, q, mixed_value)
    if rollout_weight > 0:
        rollout = tree.embeddings.rollout[node_index]
        at_root = node_index == tree.ROOT_INDEX
        completed = jnp.where(
            at_root, (1 - rollout_weight) * completed + rollout_weight * rollout, completed
        )
    low, high = jnp.min(completed), jnp.max(completed)
    rescaled = (completed - low) / jnp.maximum(high - low, 1e-8)
    return (50.0 + jnp.max(visits)) * 0.1 * rescaled


def make_search(
    config: NetworkConfig,
    num_simulations: int = 16,
    max_considered_actions: int = 16,
    discount: float = 1.0,
    rollout_weight: float = 0.0,
    rollout_returns: Callable[[jnp.ndarray], jnp.ndarray] | None = None,
):
    """Build the jitted batched search for a network configuration.

    ``rollout_returns(features) -> [B, A + 1]`` reads each root action's rollout return
    (and msa's own from the root, last) from the observation; it is needed when
    ``rollout_weight`` is above 0.
    """
    if not 0.0 <= rollout_weight <= 1.0:
        raise ValueError(f"rollout_weight must be in [0, 1] (got {rollout_weight})")
    if rollout_weight > 0 and rollout_returns is None:
        raise ValueError("rollout_weight > 0 needs observations with rollout returns")
    net = MuZeroNetwork(config)

    def value_of(logits):
        return vt.decode(logits, config.value_scale, config.value_low, config.value_high)

    def reward_of(logits):
        return vt.decode(logits, config.value_scale, config.reward_low, config.reward_high)

    def recurrent_fn(params, rng, action, embedding: Embedding):
        del rng
        latent, reward, policy, value = net.apply(
            params, embedding.latent, action, method=MuZeroNetwork.recurrent_inference
        )
        out = mctx.RecurrentFnOutput(
            reward=reward_of(reward),
            discount=jnp.full(action.shape, discount, jnp.float32),
            prior_logits=policy,
            value=value_of(value),
        )
        return out, Embedding(latent, embedding.rollout)

    @functools.partial(jax.jit, static_argnames=("greedy",))
    def search(params, rng, features, legal, greedy: bool = False) -> SearchOutput:
        rng, search_rng = jax.random.split(rng)
        latent, policy, value = net.apply(params, features, method=MuZeroNetwork.initial_inference)
        if rollout_weight > 0:
            rollout = rollout_returns(features)[:, :-1]
        else:
            rollout = jnp.zeros(legal.shape, jnp.float32)
        root = mctx.RootFnOutput(
            prior_logits=policy, value=value_of(value), embedding=Embedding(latent, rollout)
        )
        out = mctx.gumbel_muzero_policy(
            params=params,
            rng_key=search_rng,
            root=root,
            recurrent_fn=recurrent_fn,
            num_simulations=num_simulations,
            invalid_actions=~legal,
            qtransform=functools.partial(completed_qvalues, rollout_weight=rollout_weight),
            max_num_considered_actions=max_considered_actions,
            gumbel_scale=0.0 if greedy else 1.0,
        )
        return SearchOutput(
            action=out.action.astype(jnp.int32),
            action_weights=out.action_weights,
            root_value=out.search_tree.node_values[:, 0],
            rng=rng,
        )

    return search
