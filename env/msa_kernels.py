"""msa's rule as compiled kernels: its action, and a fast rollout to the end of a game.

Pure over the ``Bank`` and ``State`` arrays of :mod:`mallocmuzero.env.kernels`; the
lookahead observation, beam search and restarts spend most of their time here.
"""

from __future__ import annotations

import numpy as np

from mallocmuzero.env.kernels import PICK, decide, jit, overlapping_intervals, reward_if_fast
from mallocmuzero.env.pick_kernels import prepare_next


@jit
def msa_action(st, g):
    """The msa baseline's action: best-fit candidate 0 when it saves time, else slow.

    At a pick step, pick slot 0: msa's next buffer.
    """
    if st.phase[g] == PICK:
        return 0
    if st.n_cand[g] > 0 and st.cand_reward[g] > 0.0:
        return 0
    return st.cand_off.shape[1]


@jit
def msa_rollout(bank, st, g):
    """Finish slot g's game with msa's rule; return the total seconds saved.

    Plays as applying :func:`msa_action` to the end would, computing only what msa needs:
    the reward, then the best-fit gap only when the reward is positive. At a pick step it
    picks slot 0, msa's next buffer, as :func:`msa_action` does.
    """
    nothing = np.empty(0, dtype=np.int64)
    return msa_rollout_guided(bank, st, g, NO_GUIDE, nothing, np.empty(0), nothing, np.empty(0))


NO_GUIDE = -1  # msa_rollout_guided without a guide: every buffer computed
GUIDE_INTERVALS = 64  # divergences tracked; past that, every later buffer is computed


@jit
def msa_rollout_guided(bank, st, g, diverged, guide_off, guide_rew, rec_off, rec_rew):
    """:func:`msa_rollout`, bit for bit, with its decisions recorded and a guide followed.

    ``guide_off[b]`` and ``guide_rew[b]`` are msa's decision for buffer ``b`` (its offset,
    -1 for slow memory; its reward) in a completion from a state that differs from this
    one by buffer ``diverged`` alone (decided otherwise, or presented out of turn). A
    buffer whose live range meets no buffer decided differently from the guide sees the
    same placed neighbours and the same instruction times (its accesses lie in its live
    range), in the same order of updates: msa decides it as the guide says, and its best
    fit is not searched. ``diverged`` = ``NO_GUIDE`` computes every buffer. Each decision
    is written to ``rec_off`` and ``rec_rew`` when they are not empty.
    """
    lo = np.empty(st.placed.shape[2], dtype=np.int64)  # scratch for best_fit_bottom
    hi = np.empty(st.placed.shape[2], dtype=np.int64)
    d_start = np.empty(GUIDE_INTERVALS, dtype=np.int64)  # live ranges of the divergences
    d_end = np.empty(GUIDE_INTERVALS, dtype=np.int64)
    base = bank.buf_off[st.wid[g]]
    guided, n_diverged = diverged >= 0, 0
    if guided:
        d_start[0], d_end[0], n_diverged = bank.start[base + diverged], bank.end[base + diverged], 1
    record = rec_off.shape[0] > 0
    slow = st.cand_off.shape[1]
    while st.pos[g] < st.n_order[g]:
        b = st.order[g, st.pos[g]]
        s, e = bank.start[base + b], bank.end[base + b]
        reached = not guided
        for i in range(n_diverged if guided else 0):
            if d_start[i] < e and d_end[i] > s:
                reached = True
                break
        if reached:
            reward, offset = reward_if_fast(bank, st, g, b), -1
            if reward > 0.0:
                offset = best_fit_bottom(bank, st, g, b, lo, hi)
            if guided and offset != guide_off[b]:
                if n_diverged == GUIDE_INTERVALS:
                    guided = False  # too many divergences: compute every buffer from here
                else:
                    d_start[n_diverged], d_end[n_diverged] = s, e
                    n_diverged += 1
        else:
            reward, offset = guide_rew[b], guide_off[b]
        st.cand_reward[g] = reward
        st.cand_off[g, 0] = offset
        decide(bank, st, g, 0 if offset >= 0 else slow)
        if record:
            rec_off[b], rec_rew[b] = offset, reward
    prepare_next(bank, st, g)  # the finished game's empty candidates, as apply leaves them
    return st.saved[g]


@jit
def best_fit_bottom(bank, st, g, b, lo, hi):
    """Candidate 0 of local buffer ``b`` in slot g, or -1 when no gap holds it.

    That is the bottom of the smallest free gap that holds it, ties by the lowest offset;
    ``lo`` and ``hi`` are scratch arrays at least as long as the placed list.
    """
    base = bank.buf_off[st.wid[g]]
    s, e, size, cap = bank.start[base + b], bank.end[base + b], bank.size[base + b], st.cap[g]
    n = overlapping_intervals(bank, st, g, s, e, lo, hi)  # by lo ascending
    cursor, best, best_length = 0, -1, 0
    for r in range(n + 1):
        a = lo[r] if r < n else cap
        if a > cursor and a - cursor >= size and (best < 0 or a - cursor < best_length):
            best, best_length = cursor, a - cursor
        z = hi[r] if r < n else cap
        if z > cursor:
            cursor = z
    return best
