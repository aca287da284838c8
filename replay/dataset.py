"""The learner's view of replay: prioritized batches in, new priorities back.

A :class:`ReplayDataset` samples ``batch_size`` sequences from the Reverb table (blocking
while the rate limiter says so), attaches their importance weights, and writes the
learner's new priorities back. It is an iterator, as Acme's learners consume theirs, so
the learner core itself never touches a client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from mallocmuzero.replay.sampling import sample_batch, update_priorities
from mallocmuzero.replay.server import TABLE


@dataclasses.dataclass(frozen=True)
class ReplayBatch:
    """B sampled sequences ([B, L, ...] per step field), their keys and importance weights."""

    sequences: dict[str, np.ndarray]
    keys: np.ndarray  # [B] uint64, to give priorities back
    weights: np.ndarray  # [B] float32, normalised to a maximum of 1


class ReplayDataset(Iterator[ReplayBatch]):
    """Prioritized batches of one Reverb table through ``client``."""

    def __init__(self, client, batch_size: int, importance_beta: float, table: str = TABLE) -> None:
        self._client, self._table = client, table
        self.batch_size, self.importance_beta = batch_size, importance_beta

    def __next__(self) -> ReplayBatch:
        """The next batch (blocks until the rate limiter allows it)."""
        sampled = sample_batch(self._client, self.batch_size, self._table)
        return ReplayBatch(
            sequences=sampled.sequences,
            keys=sampled.keys,
            weights=sampled.importance_weights(self.importance_beta),
        )

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
        """Give the sampled items ``keys`` their new ``priorities``."""
        update_priorities(self._client, keys, priorities, self._table)
