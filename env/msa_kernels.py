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
    lo = np.empty(st.placed.shape[1], dtype=np.int64)  # scratch for best_fit_bottom
    hi = np.empty(st.placed.shape[1], dtype=np.int64)
    slow = st.cand_off.shape[1]
    while st.pos[g] < st.n_order[g]:
        b = st.order[g, st.pos[g]]
        st.cand_reward[g] = reward_if_fast(bank, st, g, b)
        action = slow
        if st.cand_reward[g] > 0.0:
            st.cand_off[g, 0] = best_fit_bottom(bank, st, g, b, lo, hi)
            if st.cand_off[g, 0] >= 0:
                action = 0
        decide(bank, st, g, action)
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
