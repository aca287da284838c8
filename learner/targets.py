"""From sampled sequences to the loss's batch: n-step value targets and masks.

Written with ``jax.numpy``, so the learner computes them inside its jitted update (no
trip to the host between the target network and the train step); numpy arrays work too.

For unroll position k (0..K) of a sequence starting at step s:

    z_k = sum_{i<n} mask_{k+i} reward_{k+i} + mask_{k+n} * bootstrap_k

where ``bootstrap_k`` is the value of the state at step k+n (the target network's
estimate, or the stored search root value) and the game has no discount. Past the episode's
end states are absorbing: rewards and values are 0.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np


class Batch(NamedTuple):
    """What the loss reads: B sequences cut to the unroll, with their targets.

    Fields named as in the replay ``Step`` keep its meaning at the unroll's positions;
    ``value`` (n-step value targets) and ``weight`` (importance weights) are new.
    """

    observation: np.ndarray  # [B, F] the first step's observation
    action: np.ndarray  # [B, K] int32, the actions the dynamics unrolls
    policy: np.ndarray  # [B, K+1, A] the search's improved policies
    value: np.ndarray  # [B, K+1] n-step value targets
    reward: np.ndarray  # [B, K] rewards, 0 past the episode's end
    mask: np.ndarray  # [B, K+1] 1 for real steps
    weight: np.ndarray  # [B] importance weights


def value_targets(
    rewards: np.ndarray, mask: np.ndarray, bootstrap: np.ndarray, unroll: int, td_steps: int
) -> np.ndarray:
    """n-step targets [B, K+1] from rewards/mask [B, L] and bootstrap values [B, K+1]."""
    masked = rewards * mask
    columns = [
        masked[:, k : k + td_steps].sum(axis=1) + mask[:, k + td_steps] * bootstrap[:, k]
        for k in range(unroll + 1)
    ]
    return jnp.stack(columns, axis=1).astype(jnp.float32)


def loss_batch(
    sequences: dict[str, np.ndarray],
    bootstrap: np.ndarray,
    weights: np.ndarray,
    unroll: int,
    td_steps: int,
) -> Batch:
    """The :class:`Batch` of :func:`mallocmuzero.learner.loss.muzero_loss` from sequences."""
    mask = jnp.asarray(sequences["mask"]).astype(jnp.float32)
    reward = jnp.asarray(sequences["reward"])
    return Batch(
        observation=sequences["observation"][:, 0],
        action=jnp.asarray(sequences["action"][:, :unroll]).astype(jnp.int32),
        policy=sequences["policy"][:, : unroll + 1],
        value=value_targets(reward, mask, bootstrap, unroll, td_steps),
        reward=(reward[:, :unroll] * mask[:, :unroll]).astype(jnp.float32),
        mask=mask[:, : unroll + 1],
        weight=jnp.asarray(weights).astype(jnp.float32),
    )
