"""Benchmark (a): batched game steps per second per core against a single-game loop.

Both loops use the same kernels and the public API, observations included; actions are
drawn uniformly among the legal ones (drawing them is timed apart and excluded). The game
kernels run on one thread, so the process rate is the per-core rate.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.workload import Workload, placeable_peak


def _sampler(workloads: Sequence[Workload]):
    peaks = [placeable_peak(w) for w in workloads]

    def sample(rng: np.random.Generator) -> tuple[int, int]:
        w = int(rng.integers(len(workloads)))
        return w, max(1, int(peaks[w] * rng.uniform(0.05, 0.6)))

    return sample


def _random_legal(legal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.argmax(rng.random(legal.shape) * legal, axis=1)


def measure(game: BatchedGame, seconds: float, seed: int = 0) -> float:
    """Game steps per second (slots x batched steps) over about ``seconds`` of stepping."""
    rng = np.random.default_rng(seed)
    _, legal = game.observe()
    steps = 0
    stepping = 0.0
    while stepping < seconds:
        actions = _random_legal(legal, rng)
        start = time.perf_counter()
        out = game.step(actions)
        stepping += time.perf_counter() - start
        legal = out.legal
        steps += game.num_games
    return steps / stepping


def run(workloads: Sequence[Workload], batch: int = 256, seconds: float = 5.0) -> dict[str, float]:
    """Measure the batched and the single-game rates in the same run; return the figures."""
    bank = GameBank.build(workloads)
    sample = _sampler(workloads)
    batched = BatchedGame(bank, batch, sampler=sample, seed=0)
    single = BatchedGame(bank, 1, sampler=sample, seed=0)
    measure(batched, 0.5)  # warm-up (numba compilation or cache load)
    measure(single, 0.5)
    batched_rate = measure(batched, seconds)
    single_rate = measure(single, seconds)
    return {
        "batch": batch,
        "batched_steps_per_s": batched_rate,
        "single_steps_per_s": single_rate,
        "ratio": batched_rate / single_rate,
    }
