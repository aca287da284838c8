"""The replay item: a fixed-length sequence of game steps.

A sequence holds ``length = unroll_steps + td_steps + 1`` consecutive steps of one game, so
that value targets of every unrolled position can bootstrap ``td_steps`` ahead. Each step
stores what the learner needs: the observation, the legal mask, the action taken, its
normalised reward, the search's improved policy, the search's root value, and ``mask``
(1 for a real step, 0 for padding past the episode's end).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np


class Step(NamedTuple):
    """What self-play writes for every game slot of one batched step ([G, ...] each).

    The replay table stores these fields under these names (its signature comes from
    :meth:`SequenceSpec.step_shapes`), and the learner's ``Batch`` keeps them.
    """

    observation: np.ndarray  # [G, F] float32, the observation the search saw
    legal: np.ndarray  # [G, A] bool
    action: np.ndarray  # [G] int32, the action played
    reward: np.ndarray  # [G] float32, normalised by the all-slow time
    policy: np.ndarray  # [G, A] float32, the search's improved policy
    root_value: np.ndarray  # [G] float32, the search's root value
    mask: np.ndarray  # [G] float32, 1 for a real step, 0 for padding past the end


STEP_FIELDS = Step._fields


@dataclasses.dataclass(frozen=True)
class SequenceSpec:
    """Shapes of a replay sequence."""

    observation_size: int
    num_actions: int
    unroll_steps: int = 5
    td_steps: int = 10

    @property
    def length(self) -> int:
        """Steps per sequence."""
        return self.unroll_steps + self.td_steps + 1

    def step_shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Shape and dtype of one slot's value of each :class:`Step` field."""
        shapes = {
            "observation": ((self.observation_size,), np.dtype(np.float32)),
            "legal": ((self.num_actions,), np.dtype(bool)),
            "action": ((), np.dtype(np.int32)),
            "reward": ((), np.dtype(np.float32)),
            "policy": ((self.num_actions,), np.dtype(np.float32)),
            "root_value": ((), np.dtype(np.float32)),
            "mask": ((), np.dtype(np.float32)),
        }
        assert tuple(shapes) == STEP_FIELDS
        return shapes

    def padding_step(self) -> dict[str, np.ndarray]:
        """The step appended past an episode's end: absorbing, masked out."""
        step = {k: np.zeros(shape, dtype) for k, (shape, dtype) in self.step_shapes().items()}
        step["legal"][:] = True
        step["policy"][:] = 1.0 / self.num_actions
        return step

    def table_signature(self):
        """The Reverb table signature (tf.TensorSpec per field, with the time axis)."""
        import tensorflow as tf

        return {
            k: tf.TensorSpec((self.length, *shape), tf.as_dtype(dtype), name=k)
            for k, (shape, dtype) in self.step_shapes().items()
        }
