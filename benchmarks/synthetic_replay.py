"""Replay traffic without search: steps of the real signature, random values.

The replay and learner benchmarks drive a real Reverb table with these (the project's
:class:`~mallocmuzero.replay.adder.SequenceAdder`, its table and item shapes), so what
they measure is replay and learning alone, not self-play.
"""

from __future__ import annotations

import numpy as np

from mallocmuzero.replay.adder import SequenceAdder
from mallocmuzero.replay.schema import SequenceSpec, Step


def synthetic_step(spec: SequenceSpec, num_games: int, rng: np.random.Generator) -> Step:
    """One batched step of ``num_games`` games, every field of the real shape and dtype."""
    fields = {}
    for name, (shape, dtype) in spec.step_shapes().items():
        values = rng.random((num_games, *shape))
        fields[name] = values > 0.2 if dtype == np.dtype(bool) else values.astype(dtype)
    fields["action"] = rng.integers(0, spec.num_actions, num_games).astype(np.int32)
    fields["reward"] *= 0.01
    fields["mask"][:] = 1.0
    return Step(**fields)


def write_steps(adder: SequenceAdder, spec: SequenceSpec, num_games: int, steps: int,
                seed: int = 0, episode_length: int = 200) -> None:  # fmt: skip
    """Write ``steps`` batched steps of ``num_games`` games through ``adder``, then flush.

    Episodes end every ``episode_length`` steps.
    """
    rng = np.random.default_rng(seed)
    step = synthetic_step(spec, num_games, rng)  # the values do not matter, the traffic does
    for t in range(steps):
        adder.add(step, np.full(num_games, (t + 1) % episode_length == 0))
    adder.flush()
