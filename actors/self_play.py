"""The self-play core: many games, one batched search per step, steps written to replay.

No Ray here: the distributed actor and the synchronous runner both wrap this class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numba
import numpy as np

from mallocmuzero.env.game import BatchedGame, GameBank, Sampler
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.replay.schema import Step


@dataclasses.dataclass
class SelfPlayStats:
    """Counters of one self-play core."""

    steps: int = 0  # game steps (slots x batched steps)
    episodes: int = 0
    returns: list[float] = dataclasses.field(default_factory=list)  # recent episode returns


def overlap_groups() -> int:
    """How many groups :class:`SelfPlay` should split its games into.

    2 where this thread may use two cores (numba's thread budget, which an actor sets to
    its declared CPUs), so that one group's game step runs beside the other's search; else 1.
    """
    return 2 if numba.get_num_threads() >= 2 else 1


def game_groups(
    bank: GameBank,
    num_games: int,
    spec: ObservationSpec,
    sampler: Sampler | None,
    seed: int,
    groups: int,
) -> list[BatchedGame]:
    """``num_games`` game slots split into ``groups`` games of (nearly) equal size."""
    if not 1 <= groups <= num_games:
        raise ValueError(f"groups must be in [1, {num_games}] (got {groups})")
    sizes = [num_games // groups + (i < num_games % groups) for i in range(groups)]
    return [BatchedGame(bank, n, spec, sampler, seed + i) for i, n in enumerate(sizes)]


class SelfPlay:
    """Plays ``games``' slots with ``search`` and hands every step to ``add``.

    ``search(params, rng, features, legal, greedy) -> SearchOutput`` (see
    :func:`mallocmuzero.agent.search.make_search`); ``add(steps, done)`` receives a
    :class:`~mallocmuzero.replay.schema.Step` of per-slot arrays (the groups' slots one
    after the other) and the done flags.

    ``games`` is one :class:`BatchedGame` or several groups (:func:`game_groups`). With
    several, each group is searched on its own and the searches overlap the game steps:
    JAX runs a search in the background while this thread steps the group searched before
    it (the lookahead observation costs about half a search), and the first group's next
    search runs beside the last group's step. So that search, handed over to the next
    call, uses the parameters of the call that started it: one call of policy lag for the
    first group's slots, as every distributed actor has.
    """

    def __init__(
        self,
        games: BatchedGame | Sequence[BatchedGame],
        search: Callable[..., Any],
        add: Callable[[Step, np.ndarray], None] | None,
        seed: int = 0,
    ) -> None:
        self.games = [games] if isinstance(games, BatchedGame) else list(games)
        self.search = search
        self.add = add
        # One key per group, threaded through its searches (each returns the next one).
        self._keys = list(jax.random.split(jax.random.PRNGKey(seed), len(self.games)))
        observations = [game.observe() for game in self.games]
        self._features = [features for features, _ in observations]
        self._legal = [legal for _, legal in observations]
        self._in_flight: tuple[bool, Any] | None = None  # (greedy, first group's search)
        self.stats = SelfPlayStats()

    @property
    def num_games(self) -> int:
        """Game slots over all groups."""
        return sum(game.num_games for game in self.games)

    @property
    def features(self) -> np.ndarray:
        """Every slot's current observation features [G, D], the groups one after the other."""
        return np.concatenate(self._features)

    @property
    def legal(self) -> np.ndarray:
        """Every slot's current legal-action mask [G, A]."""
        return np.concatenate(self._legal)

    def _search(self, params: Any, group: int, greedy: bool) -> Any:
        """Start a search of one group's current states (JAX returns before it finishes)."""
        out = self.search(
            params, self._keys[group], self._features[group], self._legal[group], greedy=greedy
        )
        self._keys[group] = out.rng
        return out

    def step(self, params: Any, greedy: bool = False) -> np.ndarray:
        """One search and one game step for every slot; returns the done flags."""
        n = len(self.games)
        if self._in_flight is None or self._in_flight[0] != greedy:
            self._in_flight = (greedy, self._search(params, 0, greedy))
        out, records = self._in_flight[1], []
        for i, game in enumerate(self.games):
            # Started before this group's step, so it runs beside it; after the last
            # group, that is the first group's next search, from its new states.
            following = self._search(params, (i + 1) % n, greedy) if n > 1 else None
            records.append(self._play(i, game, out))
            out = following
        self._in_flight = (greedy, out) if n > 1 else None
        if n == 1:
            steps, done = records[0]
        else:
            steps = Step(*(np.concatenate(field) for field in zip(*(r[0] for r in records))))
            done = np.concatenate([r[1] for r in records])
        if self.add is not None:
            self.add(steps, done)
        return done

    def wait(self) -> None:
        """Block until the search started for the next call, if any, has finished."""
        if self._in_flight is not None:
            jax.block_until_ready(self._in_flight[1].action)

    def _play(self, group: int, game: BatchedGame, out: Any) -> tuple[Step, np.ndarray]:
        """Step one group with its search's actions; its step records and done flags."""
        actions, weights, root_value = jax.device_get(
            (out.action, out.action_weights, out.root_value)
        )
        result = game.step(actions)
        steps = Step(
            observation=self._features[group],
            legal=self._legal[group],
            action=actions.astype(np.int32),
            reward=result.reward,
            policy=np.asarray(weights, np.float32),
            root_value=np.asarray(root_value, np.float32),
            mask=np.ones(game.num_games, np.float32),
        )
        self._features[group], self._legal[group] = result.features, result.legal
        self.stats.steps += game.num_games
        finished = result.episode_return[result.done]
        self.stats.episodes += int(result.done.sum())
        self.stats.returns = (self.stats.returns + finished.tolist())[-1000:]
        return steps, result.done
