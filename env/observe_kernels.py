"""Compiled kernels that write the game's observation (layout: ``env/observation.py``).

``observe_batch`` writes the fixed-shape features and legal masks of every slot;
``observe_picks`` adds game v2's block and ``observe_lookahead`` each action's
msa-completion value. All are pure over the ``Bank`` and ``State`` arrays of
:mod:`mallocmuzero.env.kernels`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mallocmuzero.env.kernels import ILLEGAL, PICK, copy_into, jit, reward_if_fast
from mallocmuzero.env.msa_kernels import (
    NO_GUIDE,
    best_fit_bottom,
    msa_action,
    msa_rollout_guided,
)
from mallocmuzero.env.observation import (
    CURRENT_FEATURES,
    PER_CANDIDATE,
    PER_PICK,
    PER_UPCOMING,
    PROGRESS_FEATURES,
)
from mallocmuzero.env.pick_kernels import is_legal, play

PROGRESS = CURRENT_FEATURES  # first progress feature
OCCUPANCY = CURRENT_FEATURES + PROGRESS_FEATURES  # first occupancy bin


class Lookahead(NamedTuple):
    """What the lookahead keeps between steps, per game slot ([G] leading axis).

    After an observation: ``values`` each action's completion (seconds) and ``msa`` msa's
    action (-1 once the game is over); ``rec_off`` and ``rec_rew`` each action's completion,
    decision by decision (per buffer: its offset, -1 for slow memory, and its reward).
    ``known``, ``guide_off`` and ``guide_rew``: msa's completion from the current state and
    its decisions, when a step made them known (``known`` NaN: to compute);
    :func:`advance_lookahead` sets them. The records take 16 bytes per game, action and
    buffer of the largest program (6 MB for 64 games, 9 actions and 677 buffers, the
    built-in suite's largest).
    """

    values: np.ndarray  # [G, A] float64
    msa: np.ndarray  # [G] int64
    rec_off: np.ndarray  # [G, A, B] int64
    rec_rew: np.ndarray  # [G, A, B] float64
    known: np.ndarray  # [G] float64
    guide_off: np.ndarray  # [G, B] int64
    guide_rew: np.ndarray  # [G, B] float64


def new_lookahead(num_games: int, num_actions: int, max_buffers: int) -> Lookahead:
    """An empty :class:`Lookahead`: nothing known yet."""
    g, a, b = num_games, num_actions, max_buffers
    return Lookahead(
        values=np.full((g, a), np.nan), msa=np.full(g, -1, np.int64),
        rec_off=np.full((g, a, b), -1, np.int64), rec_rew=np.zeros((g, a, b)),
        known=np.full(g, np.nan), guide_off=np.full((g, b), -1, np.int64),
        guide_rew=np.zeros((g, b)),
    )  # fmt: skip


def advance_lookahead(memo: Lookahead, actions: np.ndarray | None) -> None:
    """Carry the lookahead over a step that played ``actions`` from the observed states.

    msa's completion from each new state is the completion its action had, and that
    completion's decisions become the guide. ``None``: the states changed otherwise, so
    nothing is known.
    """
    if actions is None:
        memo.known[:] = np.nan
        return
    slots = np.arange(len(actions))
    memo.known[:] = memo.values[slots, actions]
    moved = np.flatnonzero(actions != memo.msa)  # msa's own action: the guide still holds
    memo.guide_off[moved] = memo.rec_off[moved, actions[moved]]
    memo.guide_rew[moved] = memo.rec_rew[moved, actions[moved]]


@jit
def lookahead_values(bank, st, g, scratch, memo):
    """Seconds saved in total after each action of slot g followed by msa to the end.

    ``memo.values[g, a]`` is filled for every action ``a`` (``ILLEGAL`` where not allowed)
    and ``memo.msa[g]`` set; the state of slot g is untouched; slot 0 of ``scratch`` (a
    one-slot state) is overwritten. Unless ``memo.known[g]`` is NaN, it is msa's
    completion from this state (the previous step's value of the action that led here),
    so msa's own action needs no rollout, and ``memo.guide_*[g]`` holds its decisions;
    else that rollout is played and the guide written. Every other action's completion
    follows the guide (:func:`msa_kernels.msa_rollout_guided`, the same values bit for
    bit) and writes its decisions to ``memo.rec_*[g, a]``.
    """
    values, guide_off, guide_rew = memo.values[g], memo.guide_off[g], memo.guide_rew[g]
    reuse = memo.msa[g] = msa_action(st, g)
    known = memo.known[g]
    if np.isnan(known):
        copy_into(st, g, scratch, 0)
        play(bank, scratch, 0, reuse)
        known = msa_rollout_guided(
            bank, scratch, 0, NO_GUIDE, guide_off, guide_rew, guide_off, guide_rew
        )
    for a in range(values.shape[0]):
        values[a] = ILLEGAL
        if not is_legal(st, g, a):
            continue
        if a == reuse:
            values[a] = known
            continue
        # The buffer this action treats unlike msa: the one it places, or the one it picks.
        diverged = st.pick[g, a] if st.phase[g] == PICK else st.order[g, st.pos[g]]
        copy_into(st, g, scratch, 0)
        play(bank, scratch, 0, a)  # the rollout prepares nothing it does not need
        values[a] = msa_rollout_guided(bank, scratch, 0, diverged, guide_off, guide_rew,
                                       memo.rec_off[g, a], memo.rec_rew[g, a])  # fmt: skip


@jit
def observe_lookahead(bank, st, scratch, features, first, memo):
    """Write the lookahead block (layout: observation.py) from column ``first`` on.

    Per action: advantage of its msa completion over msa's own choice and whether it is the
    best completion (both 0 when illegal); then msa's completion from here, all in percent
    of the all-slow time. ``memo`` (a :class:`Lookahead`) receives each slot's completions
    and gives what the last step made known, as in :func:`lookahead_values`.
    """
    n_actions = memo.values.shape[1]
    for g in range(features.shape[0]):
        for k in range(first, first + 2 * n_actions + 1):
            features[g, k] = 0.0
        memo.msa[g] = -1
        if st.pos[g] >= st.n_order[g]:
            continue
        lookahead_values(bank, st, g, scratch, memo)
        values = memo.values[g]
        scale = 100.0 / bank.time0[st.wid[g]]
        baseline = values[memo.msa[g]]
        best = np.argmax(values)
        for a in range(n_actions):
            if values[a] != ILLEGAL:
                features[g, first + 2 * a] = scale * (values[a] - baseline)
                features[g, first + 2 * a + 1] = 1.0 if a == best else 0.0
        features[g, first + 2 * n_actions] = scale * (baseline - st.saved[g])


@jit
def observe_batch(bank, st, window, features, legal):
    """Write fixed-shape features [G, D] and legal masks [G, A] (layout: observation.py)."""
    n_actions = st.cand_off.shape[1]
    n_bins = st.occupancy.shape[1]
    for g in range(features.shape[0]):
        for k in range(features.shape[1]):
            features[g, k] = 0.0
        for a in range(legal.shape[1]):
            legal[g, a] = is_legal(st, g, a)
        w = st.wid[g]
        base = bank.buf_off[w]
        n_instr = bank.inst_off[w + 1] - bank.inst_off[w]
        time0 = bank.time0[w]
        cap = st.cap[g]
        n_order = st.n_order[g]
        pos = st.pos[g]
        # Progress.
        features[g, PROGRESS] = pos / n_order if n_order > 0 else 1.0
        features[g, PROGRESS + 1] = st.saved[g] / time0
        features[g, PROGRESS + 2] = st.remaining[g] / time0
        if pos >= n_order:
            continue
        b = st.order[g, pos]
        sz = bank.size[base + b]
        s = bank.start[base + b]
        e = bank.end[base + b]
        features[g, 0] = sz / cap
        features[g, 1] = np.sqrt(sz / cap)
        features[g, 2] = (e - s) / n_instr
        features[g, 3] = s / n_instr
        features[g, 4] = e / n_instr
        features[g, 5] = 100.0 * bank.saving[base + b] / time0
        features[g, 6] = 100.0 * st.cand_reward[g] / time0
        if bank.saving[base + b] > 0:
            features[g, 7] = st.cand_reward[g] / bank.saving[base + b]
        peak = 0.0
        for j in range(n_bins):
            features[g, OCCUPANCY + j] = st.occupancy[g, j]
            if st.occupancy[g, j] > peak:
                peak = st.occupancy[g, j]
        features[g, PROGRESS + 3] = peak
        k = OCCUPANCY + n_bins
        for a in range(n_actions):
            if a < st.n_cand[g]:
                features[g, k] = 1.0
                features[g, k + 1] = st.cand_off[g, a] / cap
                features[g, k + 2] = st.cand_gap[g, a] / cap
                features[g, k + 3] = (st.cand_gap[g, a] - sz) / cap
                features[g, k + 4] = st.cand_top[g, a]
            k += PER_CANDIDATE
        for i in range(window):
            q = pos + 1 + i
            if q < n_order:
                u = st.order[g, q]
                features[g, k] = 1.0
                features[g, k + 1] = bank.size[base + u] / cap
                features[g, k + 2] = (bank.end[base + u] - bank.start[base + u]) / n_instr
                features[g, k + 3] = 100.0 * bank.saving[base + u] / time0
                if bank.start[base + u] < e and bank.end[base + u] > s:
                    features[g, k + 4] = 1.0
            k += PER_UPCOMING


@jit
def observe_picks(bank, st, features, first):
    """Write game v2's block from column ``first`` (layout: observation.py); K > 1 only."""
    lo = np.empty(st.placed.shape[2], dtype=np.int64)  # scratch for best_fit_bottom
    hi = np.empty(st.placed.shape[2], dtype=np.int64)
    for g in range(features.shape[0]):
        if st.phase[g] != PICK:
            continue
        features[g, first] = 1.0
        w = st.wid[g]
        base = bank.buf_off[w]
        n_instr = bank.inst_off[w + 1] - bank.inst_off[w]
        scale = 100.0 / bank.time0[w]
        cap = st.cap[g]
        undecided = st.n_order[g] - st.pos[g]
        for slot in range(st.pick.shape[1]):
            b = st.pick[g, slot]
            if b < 0:
                continue
            k = first + 1 + PER_PICK * slot
            s, e = bank.start[base + b], bank.end[base + b]
            bottom = best_fit_bottom(bank, st, g, b, lo, hi)
            features[g, k] = 1.0
            features[g, k + 1] = bank.size[base + b] / cap
            features[g, k + 2] = (e - s) / n_instr
            features[g, k + 3] = s / n_instr
            features[g, k + 4] = e / n_instr
            features[g, k + 5] = scale * bank.saving[base + b]
            features[g, k + 6] = scale * reward_if_fast(bank, st, g, b)
            features[g, k + 7] = 1.0 if bottom >= 0 else 0.0
            features[g, k + 8] = bottom / cap if bottom >= 0 else 0.0
            features[g, k + 9] = (st.rank[g, b] - st.pos[g]) / undecided
