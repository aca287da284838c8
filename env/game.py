"""The mallocGame (mallocgame.md section 3), batched: one object steps many games at once.

Games in one batch may use different workloads and capacities. Observations are fixed-shape
float32 arrays (layout in :mod:`mallocmuzero.env.observation`), with legal-action masks.
Rewards come in seconds saved and normalised by the all-slow time (for learning).

Example::

    bank = GameBank.build([workload_a, workload_b])
    game = BatchedGame(bank, num_games=256)
    game.reset_all(workload_index=[0, 1] * 128, capacity=[cap_a, cap_b] * 128)
    obs = game.observe()
    out = game.step(actions)          # out.reward, out.done, out.features, out.legal
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from mallocmuzero.env import (
    cost_model,
    kernels,
    msa_kernels,
    observe_kernels,
    pick_kernels,
    pick_rules,
    step_kernels,
)
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.env.workload import Workload

#: A sampler draws the next game for a finished slot: ``rng -> (workload_index, capacity)``,
#: or ``(workload_index, capacity, base order)`` (mallocgame.md 3c).
Sampler = Callable[[np.random.Generator], tuple]


@dataclasses.dataclass(frozen=True, eq=False)
class GameBank:
    """The static data of a set of workloads, concatenated for the kernels."""

    workloads: tuple[Workload, ...]
    arrays: kernels.Bank
    max_instructions: int
    max_buffers: int

    @classmethod
    def build(cls, workloads: Sequence[Workload]) -> GameBank:
        """Precompute costs, merged accesses and MSA orders of every workload."""
        if not workloads:
            raise ValueError("a GameBank needs at least one workload")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in kernels.Bank._fields}
        inst_off, buf_off, order_off, acc_off = [0], [0], [0], 0
        acc_ptr_parts = []
        for w in workloads:
            hw = w.hardware
            compute = cost_model.compute_times(w)
            mem0 = cost_model.memory_times(w, np.zeros(w.num_buffers, dtype=bool))
            buf, t, nbytes = cost_model.merged_accesses(w)
            counts = np.bincount(buf, minlength=w.num_buffers)
            ptr = np.concatenate([[0], np.cumsum(counts)]) + acc_off
            acc_ptr_parts.append(ptr[:-1])
            acc_off = int(ptr[-1])
            parts["compute"].append(compute)
            parts["repeat"].append(w.repeat.astype(np.float64))
            parts["mem0"].append(mem0)
            parts["size"].append(w.size.astype(np.int64))
            parts["start"].append(w.start.astype(np.int64))
            parts["end"].append(w.end.astype(np.int64))
            parts["saving"].append(cost_model.standalone_savings(w))
            parts["acc_t"].append(t.astype(np.int64))
            parts["acc_delta"].append(nbytes * cost_model.seconds_saved_per_byte(hw))
            rule_order = pick_rules.rule_orders(w)
            order = rule_order[0]
            parts["order"].append(order.astype(np.int64))
            parts["rule_order"].append(rule_order.T)
            parts["time0"].append(np.array([cost_model.total_time(w)]))
            inst_off.append(inst_off[-1] + w.num_instructions)
            buf_off.append(buf_off[-1] + w.num_buffers)
            order_off.append(order_off[-1] + order.size)
        acc_ptr = np.concatenate(acc_ptr_parts + [np.array([acc_off])]).astype(np.int64)
        arrays = kernels.Bank(
            inst_off=np.asarray(inst_off, dtype=np.int64),
            buf_off=np.asarray(buf_off, dtype=np.int64),
            order_off=np.asarray(order_off, dtype=np.int64),
            acc_ptr=acc_ptr,
            **{
                k: np.concatenate(v)
                for k, v in parts.items()
                if k not in ("inst_off", "buf_off", "order_off", "acc_ptr", "rule_order")
            },
            rule_order=np.ascontiguousarray(np.concatenate(parts["rule_order"]).T, np.int64),
        )
        return cls(
            workloads=tuple(workloads),
            arrays=arrays,
            max_instructions=max(w.num_instructions for w in workloads),
            max_buffers=max(w.num_buffers for w in workloads),
        )

    def all_slow_time(self, workload_index: int) -> float:
        """``time({})`` of one workload."""
        return float(self.arrays.time0[workload_index])


@dataclasses.dataclass
class StepOutput:
    """What one batched step returns (arrays over the G slots)."""

    features: np.ndarray  # [G, D] float32, next observation (a new game's after auto-reset)
    legal: np.ndarray  # [G, A] bool, A = max(K, N + 1)
    reward: np.ndarray  # [G] float32, seconds saved / all-slow time
    reward_seconds: np.ndarray  # [G] float64
    done: np.ndarray  # [G] bool, the game in this slot ended with this step
    episode_return: np.ndarray  # [G] float64, total normalised return of games that ended


def _new_state(num_games: int, bank: GameBank, spec: ObservationSpec) -> kernels.State:
    g, t, b = num_games, bank.max_instructions, bank.max_buffers
    n, m, k = spec.num_offset_actions, spec.occupancy_bins, spec.pick_candidates
    i64, f64 = np.int64, np.float64
    return kernels.State(
        wid=np.zeros(g, i64),
        cap=np.ones(g, i64),
        mem=np.zeros((g, t), f64),
        offset=np.full((g, b), kernels.NOT_PLACED, i64),
        order=np.zeros((g, b), i64),
        n_order=np.zeros(g, i64),
        pos=np.zeros(g, i64),
        placed=np.zeros((g, 4, b), i64),
        n_placed=np.zeros(g, i64),
        saved=np.zeros(g, f64),
        remaining=np.zeros(g, f64),
        cand_off=np.zeros((g, n), i64),
        cand_gap=np.zeros((g, n), i64),
        cand_top=np.zeros((g, n), i64),
        n_cand=np.zeros(g, i64),
        cand_reward=np.zeros(g, f64),
        occupancy=np.zeros((g, m), f64),
        phase=np.zeros(g, i64),
        rank=np.full((g, b), kernels.NOT_PLACED, i64),
        pick=np.full((g, k), kernels.NOT_PLACED, i64),
        rule_ptr=np.zeros((g, len(pick_rules.RULES)), i64),
        low_bound=np.zeros((g, b), i64),
        pick_src=pick_rules.pick_sources(k, spec.pick_encoding),
    )


class BatchedGame:
    """``num_games`` mallocGames stepped together by compiled kernels.

    With a ``sampler``, a slot whose game ends is reset at once to a newly drawn game, and
    the observation returned for that slot is the new game's first.
    """

    def __init__(
        self,
        bank: GameBank,
        num_games: int,
        spec: ObservationSpec | None = None,
        sampler: Sampler | None = None,
        seed: int = 0,
    ) -> None:
        self.bank = bank
        self.spec = spec or ObservationSpec()
        self.num_games = num_games
        self.sampler = sampler
        self.rng = np.random.default_rng(seed)
        self.state = _new_state(num_games, bank, self.spec)
        self._scratch = _new_state(1, bank, self.spec) if self.spec.lookahead else None
        # Each action's msa completion at the last observed states, and msa's completion
        # from each slot's current state when a step made it known (NaN: to compute).
        self._lookahead = observe_kernels.new_lookahead(
            num_games, self.spec.num_actions if self.spec.lookahead else 0,
            bank.max_buffers if self.spec.lookahead else 0,
        )  # fmt: skip
        self._values_current = False  # whether the lookahead describes the current states
        self._features = np.zeros((num_games, self.spec.size), np.float32)
        self._legal = np.zeros((num_games, self.spec.num_actions), bool)
        self._rewards = np.zeros(num_games, np.float64)
        self._done = np.zeros(num_games, bool)
        if sampler is not None:
            for g in range(num_games):
                self.reset(g, *sampler(self.rng))

    def reset(
        self,
        slot: int,
        workload_index: int,
        capacity: int | None = None,
        order: np.ndarray | None = None,
    ) -> None:
        """Start a new game in ``slot`` (capacity defaults to the workload's own).

        ``order`` (buffer indices, int64) replaces msa's presentation order, as restarts
        does; buffers larger than the capacity are still skipped.
        """
        if capacity is None:
            capacity = self.bank.workloads[workload_index].capacity
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0 (got {capacity})")
        arrays, cap = self.bank.arrays, int(capacity)
        self._forget(slot)
        if order is None:
            step_kernels.reset_slot(arrays, self.state, slot, workload_index, cap)
        else:
            step_kernels.reset_slot_order(arrays, self.state, slot, workload_index, cap, order)

    def reset_all(self, workload_index: Sequence[int], capacity: Sequence[int]) -> None:
        """Reset every slot; ``workload_index[g]`` and ``capacity[g]`` describe slot g."""
        for g in range(self.num_games):
            self.reset(g, int(workload_index[g]), int(capacity[g]))

    def _forget(self, slot: int) -> None:
        """The slot's state changes outside a step: its known completions no longer hold."""
        self._lookahead.known[slot] = np.nan
        self._values_current = False

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """Current features [G, D] (float32) and legal-action masks [G, A] (bool)."""
        arrays, state, features = self.bank.arrays, self.state, self._features
        observe_kernels.observe_batch(arrays, state, self.spec.window, features, self._legal)
        if self.spec.pick_candidates > 1:
            observe_kernels.observe_picks(arrays, state, features, self.spec.pick_start)
        if self._scratch is not None:
            observe_kernels.observe_lookahead(
                arrays, state, self._scratch, features, self.spec.lookahead_start, self._lookahead
            )
            self._values_current = True
        return self._features.copy(), self._legal.copy()

    def step(self, actions: np.ndarray, observe: bool = True) -> StepOutput:
        """Play one action per slot and return rewards, done flags and next observations.

        Raises ValueError on an illegal action (the legal mask must be applied first).
        """
        actions = np.ascontiguousarray(actions, dtype=np.int64)
        if actions.shape != (self.num_games,):
            raise ValueError(f"expected {self.num_games} actions, got shape {actions.shape}")
        arrays, state = self.bank.arrays, self.state
        bad = step_kernels.step_batch(arrays, state, actions, self._rewards, self._done)
        # msa's completion from each new state is the value its chosen action had.
        reusable = self._values_current and bad < 0
        observe_kernels.advance_lookahead(self._lookahead, actions if reusable else None)
        self._values_current = False
        if bad >= 0:
            raise ValueError(f"illegal action {actions[bad]} in game slot {bad}")
        time0 = self.bank.arrays.time0[self.state.wid]
        reward = (self._rewards / time0).astype(np.float32)
        episode_return = np.where(self._done, self.state.saved / time0, 0.0)
        done = self._done.copy()
        if self.sampler is not None:
            for g in np.flatnonzero(done):
                self.reset(int(g), *self.sampler(self.rng))
        if observe:
            features, legal = self.observe()
        else:
            features, legal = self._features, self._legal
        return StepOutput(features, legal, reward, self._rewards.copy(), done, episode_return)

    # --- read-only views of one slot -------------------------------------------------------

    def completions(self, slot: int | None = None) -> np.ndarray:
        """Each action's msa completion at the last observed state of ``slot`` ([A]).

        Total seconds saved, ``ILLEGAL`` where the action is not allowed; needs the
        lookahead observation. Without ``slot``: every slot's ([G, A]); a finished
        game's row keeps its last observed state's.
        """
        if not self.spec.lookahead:
            raise ValueError("completions need an ObservationSpec with lookahead=True")
        values = self._lookahead.values
        return (values if slot is None else values[slot]).copy()

    def is_done(self, slot: int) -> bool:
        """Whether every presented buffer of the slot's game is decided."""
        return bool(self.state.pos[slot] >= self.state.n_order[slot])

    def legal_actions(self, slot: int) -> np.ndarray:
        """Indices of the legal actions of one slot (in its phase: pick or place)."""
        legal = [a for a in range(self.spec.num_actions)
                 if pick_kernels.is_legal(self.state, slot, a)]  # fmt: skip
        return np.asarray(legal, dtype=np.int64)

    def is_pick_step(self, slot: int) -> bool:
        """Whether the slot's next action picks a buffer (game v2) rather than places one."""
        return bool(self.state.phase[slot] == kernels.PICK)

    def current_buffer(self, slot: int) -> int:
        """Local index of the buffer the slot decides next (-1 when the game is over)."""
        if self.is_done(slot):
            return -1
        return int(self.state.order[slot, self.state.pos[slot]])

    def candidate_offsets(self, slot: int) -> np.ndarray:
        """Offsets of the slot's legal offset actions, in action order."""
        return self.state.cand_off[slot, : self.state.n_cand[slot]].copy()

    def offsets(self, slot: int) -> np.ndarray:
        """Offset per buffer index of the slot's workload (-1 for slow or undecided)."""
        n = self.bank.workloads[int(self.state.wid[slot])].num_buffers
        return self.state.offset[slot, :n].copy()

    def saved_seconds(self, slot: int) -> float:
        """Seconds saved so far in the slot's game."""
        return float(self.state.saved[slot])

    def copy_slot(self, src: int, dst: int) -> None:
        """Copy the whole game state of one slot into another (for tree and beam search)."""
        self._forget(dst)
        kernels.copy_slot(self.state, src, dst)

    def msa_action(self, slot: int) -> int:
        """The msa heuristic's action in this slot."""
        return int(msa_kernels.msa_action(self.state, slot))

    def msa_rollout(self, slot: int) -> float:
        """Finish the slot's game with msa's rule, in place; return total seconds saved."""
        self._forget(slot)
        return float(msa_kernels.msa_rollout(self.bank.arrays, self.state, slot))


def msa_scorer(bank: GameBank) -> Callable[[int, int, np.ndarray | None], float]:
    """A scorer of presentation orders by msa's completion, as restarts scores a try.

    ``score(w, capacity, order)`` is the seconds msa's rule saves on ``bank``'s workload
    ``w`` at ``capacity`` presented in ``order`` (None: msa's own). It plays in a one-slot
    game of its own over the same bank (no copy of the workloads).
    """
    game = BatchedGame(bank, 1)

    def score(w: int, capacity: int, order: np.ndarray | None) -> float:
        game.reset(0, w, capacity, order=order)
        return game.msa_rollout(0)

    return score
