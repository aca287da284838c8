"""Sampling numpy batches of sequences and updating their priorities."""

from __future__ import annotations

import dataclasses

import numpy as np

from mallocmuzero.replay.schema import STEP_FIELDS
from mallocmuzero.replay.server import TABLE


@dataclasses.dataclass
class SampledBatch:
    """B sequences ([B, L, ...] per field) with their keys and sampling probabilities."""

    sequences: dict[str, np.ndarray]
    keys: np.ndarray  # [B] uint64
    probabilities: np.ndarray  # [B]
    table_size: int

    def importance_weights(self, beta: float) -> np.ndarray:
        """Prioritized-replay importance weights, normalised to a maximum of 1."""
        weights = (self.table_size * self.probabilities) ** (-beta)
        return (weights / weights.max()).astype(np.float32)


def sample_batch(client, batch_size: int, table: str = TABLE) -> SampledBatch:
    """Sample ``batch_size`` sequences (blocks while the rate limiter says so)."""
    samples = client.sample(
        table, num_samples=batch_size, emit_timesteps=False, unpack_as_table_signature=True
    )
    items = [next(samples) for _ in range(batch_size)]
    sequences = {k: np.stack([np.asarray(s.data[k]) for s in items]) for k in STEP_FIELDS}
    return SampledBatch(
        sequences=sequences,
        keys=np.array([s.info.key for s in items], dtype=np.uint64),
        probabilities=np.array([s.info.probability for s in items], dtype=np.float64),
        table_size=int(items[-1].info.table_size),
    )


def update_priorities(client, keys: np.ndarray, priorities: np.ndarray, table: str = TABLE) -> None:
    """Set new priorities of sampled items (items evicted meanwhile are ignored by Reverb)."""
    client.mutate_priorities(
        table, updates={int(k): float(max(p, 1e-6)) for k, p in zip(keys, priorities)}
    )
