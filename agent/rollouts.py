"""The agent as a solver: play a workload with search and keep the best placement.

``--solver agent`` is the agent alone: one greedy search rollout, plus optional sampled
(Gumbel) rollouts, each judged by the exact cost model; never another solver's solution.
With a time limit it is anytime: after the greedy rollouts it plays batches of sampled
rollouts until the limit and keeps the best. A network that observes the lookahead also
offers what its rollouts' observations already evaluated exactly: at every step, each
legal action followed by msa's rule to the end (:class:`CompletionTrace`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.kernels import ILLEGAL
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.env.solution import Solution, make_solution
from mallocmuzero.env.workload import Workload
from mallocmuzero.solvers.greedy import solve_msa

SAMPLED_BATCH = 8  # sampled rollouts played together once the greedy ones are done


class CompletionTrace:
    """The actions a batched rollout played, and the best completion its lookahead met.

    Each observation of a lookahead network evaluates every legal action of every live
    slot followed by msa's rule to the end, with the exact cost model
    (:meth:`BatchedGame.completions`): each is a whole placement reached from the
    rollout's own prefix. The trace keeps the best one's seconds saved and where it was
    (step, slot, action), and :meth:`offsets` replays it.
    """

    def __init__(self) -> None:
        self.actions: list[np.ndarray] = []  # [G] per step
        self.saved, self.step, self.slot, self.action = ILLEGAL, -1, -1, -1

    def record(self, game: BatchedGame, actions: np.ndarray) -> None:
        """Note the observed completions of ``game``'s live slots and the ``actions`` chosen."""
        values = game.completions()
        values[[game.is_done(g) for g in range(game.num_games)]] = ILLEGAL
        slot, action = np.unravel_index(int(np.argmax(values)), values.shape)
        if values[slot, action] > self.saved:
            self.saved = float(values[slot, action])
            self.step, self.slot, self.action = len(self.actions), int(slot), int(action)
        self.actions.append(np.array(actions, dtype=np.int64))

    def path(self) -> list[int]:
        """The actions from the game's start to the best completion's own action."""
        played = [int(actions[self.slot]) for actions in self.actions[: self.step]]
        return [*played, self.action]

    def offsets(
        self,
        bank: GameBank,
        spec: ObservationSpec,
        capacity: int,
        order: np.ndarray | None = None,
    ) -> np.ndarray:
        """The best completion's placement: its path (from base ``order``), then msa."""
        game = start_from(bank, spec, capacity, 1, self.path(), order)
        game.msa_rollout(0)
        return game.offsets(0)


def start_from(
    bank: GameBank,
    spec: ObservationSpec,
    capacity: int,
    slots: int,
    path: Sequence[int],
    order: np.ndarray | None = None,
) -> BatchedGame:
    """A game of ``bank``'s workload 0 in ``slots`` slots, each after the actions ``path``.

    ``order`` replaces msa's presentation order as the base (pick candidate 0 and every
    msa completion follow it).
    """
    game = BatchedGame(bank, slots, spec=spec)
    for slot in range(slots):
        game.reset(slot, 0, capacity, order=order)
    for action in path:
        game.step(np.full(slots, action), observe=False)
    return game


def compile_searches(
    searches: Sequence[Callable], params: Any, spec: ObservationSpec, samples: int = 0
) -> None:
    """Compile every batch shape :func:`agent_solve` will run, before any clock starts.

    The first search plays greedy at batch 1 and sampled at ``samples`` and
    ``SAMPLED_BATCH``; the others greedy at batch 1. Compiling inside a timed solve would
    spend the time limit on XLA instead of rollouts.
    """
    first, *others = searches
    shapes = [(first, True, 1), *((first, False, n) for n in {samples, SAMPLED_BATCH} if n),
              *((s, True, 1) for s in others)]  # fmt: skip
    key = jax.random.PRNGKey(0)
    for search, greedy, batch in shapes:
        features = np.zeros((batch, spec.size), np.float32)
        legal = np.ones((batch, spec.num_actions), bool)
        search(params, key, features, legal, greedy=greedy).action.block_until_ready()


def play_out(
    game: BatchedGame,
    search,
    params: Any,
    greedy: bool,
    seed: int,
    deadline: float | None = None,
    trace: CompletionTrace | None = None,
) -> bool:
    """Play every slot of ``game`` to the end with the search; False if stopped at ``deadline``.

    ``deadline`` is a ``time.monotonic()`` value, checked before every batched step;
    ``trace`` records each step (it needs a lookahead observation).
    """
    key = jax.random.PRNGKey(seed)  # threaded: each search returns the next one
    features, legal = game.observe()
    while not all(game.is_done(g) for g in range(game.num_games)):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        out = search(params, key, features, legal, greedy=greedy)
        actions, key = np.asarray(out.action), out.rng
        if trace is not None:
            trace.record(game, actions)
        out = game.step(actions)
        features, legal = out.features, out.legal
    return True


def agent_solve(
    workload: Workload,
    params: Any,
    spec: ObservationSpec,
    search: Callable,
    samples: int = 0,
    seed: int = 0,
    more_greedy: Sequence = (),
    time_limit: float | None = None,
    rollouts_only: bool = False,
    order: np.ndarray | None = None,
    anytime: bool = True,
) -> Solution:
    """Greedy ``search`` rollout plus ``samples`` sampled rollouts; the best by the cost model.

    ``search`` is a batched search of the agent's network (``agent.search.make_search``);
    ``more_greedy`` are further searches of the same network (for example at other rollout
    weights) that each play one more greedy rollout. With ``time_limit`` (seconds from the
    call), every rollout stops when the time is up, the first greedy one included: the
    others, then batches of ``SAMPLED_BATCH`` sampled rollouts with fresh seeds, are
    played while time is left, and a rollout the limit interrupts leaves only the
    completions it observed. msa's own placement is a candidate too, so even a limit
    shorter than one rollout answers no worse than msa; its cost, measured first, is kept
    back from the rollouts' time for what follows them (replaying the best completion,
    scoring the answer), so the whole call keeps the limit. With a lookahead
    observation, the completions every rollout observed compete too
    (:class:`CompletionTrace`). With ``rollouts_only``, the rollouts' own ends alone compete
    (neither completions nor msa's placement): what the network plays; the solution's
    ``from_completion`` says whether one won.

    ``order`` (buffer indices) replaces msa's presentation order as the game's base: pick
    candidate 0 and every msa completion follow it (see :func:`restarts_then`). With
    ``anytime`` False no sampled batches follow: the call ends with its own rollouts, or
    at the limit if that comes first.
    """
    started = time.monotonic()
    bank = GameBank.build([workload])
    msa = solve_msa(workload)
    finishing = 2 * (time.monotonic() - started)  # about a replay and a scoring
    deadline = None if time_limit is None else started + time_limit - finishing
    candidates = []  # (seconds saved, offsets) of finished rollouts
    traces = []

    def play(player, greedy: bool, slots: int, play_seed: int, until: float | None) -> None:
        game = start_from(bank, spec, workload.capacity, slots, (), order)
        trace = CompletionTrace() if spec.lookahead and not rollouts_only else None
        finished = play_out(game, player, params, greedy, play_seed, until, trace)
        traces.extend([trace] if trace else [])
        if finished:
            candidates.extend((game.saved_seconds(g), game.offsets(g)) for g in range(slots))

    play(search, True, 1, seed, deadline)
    plays = [(search, False, samples), *((s, True, 1) for s in more_greedy)]
    for player, greedy, slots in plays:
        if slots:
            play(player, greedy, slots, seed, deadline)
    batch = 0
    while anytime and deadline is not None and time.monotonic() < deadline:
        batch += 1
        play(search, False, SAMPLED_BATCH, seed + batch, deadline)
    rollouts = len(candidates)
    if not rollouts_only or not candidates:
        candidates.append((msa.all_slow_time_s - msa.estimated_time_s, msa.offsets))
    saved, best = max(candidates, key=lambda c: c[0])
    completion = max(traces, key=lambda t: t.saved, default=None)
    from_completion = completion is not None and completion.saved > saved
    if from_completion:
        best = completion.offsets(bank, spec, workload.capacity, order)
    extra = {"rollouts": rollouts, "from_completion": from_completion,
             "wall_time_s": time.monotonic() - started}  # fmt: skip
    return make_solution(workload, best, "agent", extra=extra)
