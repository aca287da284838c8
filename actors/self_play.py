"""The self-play core: many games, one batched search per step, steps written to replay.

No Ray here: the distributed actor and the synchronous runner both wrap this class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from mallocmuzero.env.game import BatchedGame
from mallocmuzero.replay.schema import Step


@dataclasses.dataclass
class SelfPlayStats:
    """Counters of one self-play core."""

    steps: int = 0  # game steps (slots x batched steps)
    episodes: int = 0
    returns: list[float] = dataclasses.field(default_factory=list)  # recent episode returns


class SelfPlay:
    """Plays ``game``'s slots with ``search`` and hands every step to ``add``.

    ``search(params, rng, features, legal, greedy) -> SearchOutput`` (see
    :func:`mallocmuzero.agent.search.make_search`); ``add(steps, done)`` receives a
    :class:`~mallocmuzero.replay.schema.Step` of per-slot arrays and the done flags.
    """

    def __init__(
        self,
        game: BatchedGame,
        search: Callable[..., Any],
        add: Callable[[Step, np.ndarray], None] | None,
        seed: int = 0,
    ) -> None:
        self.game = game
        self.search = search
        self.add = add
        self._rng = jax.random.PRNGKey(seed)
        self._keys: list = []
        self.features, self.legal = game.observe()
        self.stats = SelfPlayStats()

    def _next_key(self) -> jax.Array:
        # Splitting keys in blocks saves a device dispatch per step.
        if not self._keys:
            self._rng, *block = jax.random.split(self._rng, 257)
            self._keys = list(block)
        return self._keys.pop()

    def step(self, params: Any, greedy: bool = False) -> np.ndarray:
        """One batched search and one game step for every slot; returns the done flags."""
        out = self.search(params, self._next_key(), self.features, self.legal, greedy=greedy)
        actions, weights, root_value = jax.device_get(
            (out.action, out.action_weights, out.root_value)
        )
        result = self.game.step(actions)
        if self.add is not None:
            steps = Step(
                observation=self.features,
                legal=self.legal,
                action=actions.astype(np.int32),
                reward=result.reward,
                policy=np.asarray(weights, np.float32),
                root_value=np.asarray(root_value, np.float32),
                mask=np.ones(self.game.num_games, np.float32),
            )
            self.add(steps, result.done)
        self.features, self.legal = result.features, result.legal
        self.stats.steps += self.game.num_games
        finished = result.episode_return[result.done]
        self.stats.episodes += int(result.done.sum())
        self.stats.returns = (self.stats.returns + finished.tolist())[-1000:]
        return result.done
