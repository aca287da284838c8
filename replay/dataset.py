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

from mallocmuzero.replay.sampling import SampledBatch, update_priorities
from mallocmuzero.replay.server import TABLE


@dataclasses.dataclass(frozen=True)
class ReplayBatch:
    """B sampled sequences ([B, L, ...] per step field), their keys and importance weights."""

    sequences: dict[str, np.ndarray]
    keys: np.ndarray  # [B] uint64, to give priorities back
    weights: np.ndarray  # [B] float32, normalised to a maximum of 1


class ReplayDataset(Iterator[ReplayBatch]):
    """Prioritized batches of one Reverb table through ``client``.

    Reverb's own dataset (``TrajectoryDataset``, C++ workers with up to
    ``in_flight_batches`` batches of samples requested ahead) turns items into batches: about
    three times the batches per second of sampling item by item in Python
    (BENCHMARKS-learner.md). It is built on the first ``next()``, when the table exists.
    """

    def __init__(
        self,
        client,
        batch_size: int,
        importance_beta: float,
        table: str = TABLE,
        in_flight_batches: int = 2,
    ) -> None:
        self._client, self._table = client, table
        self.batch_size, self.importance_beta = batch_size, importance_beta
        self._in_flight = in_flight_batches * batch_size
        self._batches: Iterator | None = None

    def __next__(self) -> ReplayBatch:
        """The next batch (blocks until the rate limiter allows it)."""
        if self._batches is None:
            self._batches = self._batched_samples()
        sample = next(self._batches)
        info = sample.info
        sampled = SampledBatch(
            sequences=dict(sample.data),
            keys=np.asarray(info.key, np.uint64),
            probabilities=np.asarray(info.probability, np.float64),
            table_size=int(info.table_size[-1]),
        )
        return ReplayBatch(
            sequences=sampled.sequences,
            keys=sampled.keys,
            weights=sampled.importance_weights(self.importance_beta),
        )

    def _batched_samples(self) -> Iterator:
        import reverb

        dataset = reverb.TrajectoryDataset.from_table_signature(
            server_address=self._client.server_address,
            table=self._table,
            max_in_flight_samples_per_worker=self._in_flight,
        )
        return dataset.batch(self.batch_size, drop_remainder=True).as_numpy_iterator()

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
        """Give the sampled items ``keys`` their new ``priorities``."""
        update_priorities(self._client, keys, priorities, self._table)
