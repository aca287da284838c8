"""Compiled kernels of the mallocGame (numba, ``cache=True``).

The data is split in two named tuples of arrays:

* ``Bank``: read-only data of every workload in a batch, concatenated (``*_off`` give each
  workload's slice): instruction costs, buffers, merged accesses in CSR form per buffer, and
  the MSA presentation order.
* ``State``: the mutable state of ``G`` game slots, one row each, padded to the largest
  workload: memory time per instruction, offsets, the game order, the placed list, and the
  candidates and reward preview of the current buffer.

Every function here is pure over these arrays; :mod:`mallocmuzero.env.game` wraps them.
Offsets are bytes; ``-1`` means "not in fast memory".
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mallocmuzero.env.jit import jit

NOT_PLACED = -1
ILLEGAL = -1.0e300  # returned by apply() for an illegal action
PLACE, PICK = 0, 1  # a slot's phase: decide the current buffer, or choose which is next
LO, HI, START, END = 0, 1, 2, 3  # the rows of State.placed


class Bank(NamedTuple):
    """Static data of all workloads, concatenated."""

    inst_off: np.ndarray  # [W+1]
    compute: np.ndarray  # [sum T] flops / peak
    repeat: np.ndarray  # [sum T]
    mem0: np.ndarray  # [sum T] all-slow memory time per run
    buf_off: np.ndarray  # [W+1]
    size: np.ndarray  # [sum B] int64
    start: np.ndarray  # [sum B]
    end: np.ndarray  # [sum B]
    saving: np.ndarray  # [sum B] standalone saving time({}) - time({b})
    acc_ptr: np.ndarray  # [sum B + 1] CSR over global buffer index
    acc_t: np.ndarray  # [A] local instruction index
    acc_delta: np.ndarray  # [A] memory time saved per run when the buffer is fast
    order_off: np.ndarray  # [W+1]
    order: np.ndarray  # [sum order] local buffer indices, MSA order, unpinned only
    time0: np.ndarray  # [W] all-slow time
    rule_order: np.ndarray  # [R, sum order] the same buffers in each pick rule's order


class State(NamedTuple):
    """Mutable state of G game slots."""

    wid: np.ndarray  # [G] workload index in the bank
    cap: np.ndarray  # [G] capacity in bytes
    mem: np.ndarray  # [G, maxT] current memory time per run
    offset: np.ndarray  # [G, maxB] offset or NOT_PLACED
    order: np.ndarray  # [G, maxB] local buffer indices presented, in order
    n_order: np.ndarray  # [G]
    pos: np.ndarray  # [G] index into order of the current buffer
    placed: np.ndarray  # [G, 4, maxB] placed buffers' lo, hi, start and end; lo ascending
    n_placed: np.ndarray  # [G]
    saved: np.ndarray  # [G] seconds saved so far
    remaining: np.ndarray  # [G] standalone savings of undecided buffers
    cand_off: np.ndarray  # [G, N] candidate offsets
    cand_gap: np.ndarray  # [G, N] size of the candidate's gap
    cand_top: np.ndarray  # [G, N] 1 when the candidate is a gap's top
    n_cand: np.ndarray  # [G]
    cand_reward: np.ndarray  # [G] seconds saved if the current buffer is placed
    occupancy: np.ndarray  # [G, M] blocked fraction of each capacity bin over the live range
    # Game v2 (pick steps; see pick_kernels.py). With K = 1 pick slot there are none.
    phase: np.ndarray  # [G] PLACE or PICK
    rank: np.ndarray  # [G, maxB] index into order of each buffer (-1: not presented)
    pick: np.ndarray  # [G, K] buffer offered by each pick slot (-1: none, masked)
    rule_ptr: np.ndarray  # [G, R] how far each rule's order is known to be decided
    low_bound: np.ndarray  # [G, maxB] a lower bound of each buffer's lowest feasible offset
    pick_src: np.ndarray  # [K] each pick slot's source (pick_rules.pick_sources), shared


@jit
def reward_if_fast(bank, st, g, b):
    """Seconds saved by moving local buffer ``b`` of slot ``g`` to fast memory now."""
    w = st.wid[g]
    ib = bank.buf_off[w] + b
    i0 = bank.inst_off[w]
    total = 0.0
    for k in range(bank.acc_ptr[ib], bank.acc_ptr[ib + 1]):
        t = bank.acc_t[k]
        c = bank.compute[i0 + t]
        m = st.mem[g, t]
        before = m if m > c else c
        m2 = m - bank.acc_delta[k]
        after = m2 if m2 > c else c
        total += bank.repeat[i0 + t] * (before - after)
    return total


@jit
def _apply_fast(bank, st, g, b):
    w = st.wid[g]
    ib = bank.buf_off[w] + b
    for k in range(bank.acc_ptr[ib], bank.acc_ptr[ib + 1]):
        st.mem[g, bank.acc_t[k]] -= bank.acc_delta[k]


@jit
def prepare(bank, st, g):
    """Compute the candidates, reward preview and occupancy of slot g's current buffer."""
    n_bins = st.occupancy.shape[1]
    st.n_cand[g] = 0
    st.cand_reward[g] = 0.0
    for j in range(n_bins):
        st.occupancy[g, j] = 0.0
    if st.pos[g] >= st.n_order[g]:
        return
    w = st.wid[g]
    base = bank.buf_off[w]
    b = st.order[g, st.pos[g]]
    s = bank.start[base + b]
    e = bank.end[base + b]
    sz = bank.size[base + b]
    gap_lo, gap_hi, n_gaps = free_gaps(bank, st, g, s, e)
    nc = best_fit_candidates(st, g, gap_lo, gap_hi, n_gaps, sz)
    st.n_cand[g] = nc
    if nc > 0:
        st.cand_reward[g] = reward_if_fast(bank, st, g, b)


@jit
def overlapping_intervals(bank, st, g, s, e, lo, hi):
    """Write ``[lo, hi)`` of slot g's placed buffers live during ``[s, e)``; their count.

    They come by ``lo`` ascending, as the placed list is kept.
    """
    n = 0
    for i in range(st.n_placed[g]):  # branch-free: whether a buffer is live is a coin toss
        lo[n] = st.placed[g, LO, i]
        hi[n] = st.placed[g, HI, i]
        n += (st.placed[g, START, i] < e) & (st.placed[g, END, i] > s)
    return n


@jit
def free_gaps(bank, st, g, s, e):
    """The free offset ranges [lo, hi) of slot g over the live range [s, e), ascending.

    Also fills slot g's occupancy bins with the bytes taken over that range.
    """
    cap = st.cap[g]
    n_bins = st.occupancy.shape[1]
    lo = np.empty(st.n_placed[g], dtype=np.int64)
    hi = np.empty(st.n_placed[g], dtype=np.int64)
    n = overlapping_intervals(bank, st, g, s, e, lo, hi)  # by lo ascending
    gap_lo = np.empty(n + 1, dtype=np.int64)
    gap_hi = np.empty(n + 1, dtype=np.int64)
    n_gaps = 0
    cursor = 0
    bin_width = cap / n_bins
    seg_lo = -1
    for r in range(n + 1):
        if r < n:
            a = lo[r]
            z = hi[r]
        else:
            a = cap
            z = cap
        if a > cursor:
            if seg_lo >= 0:
                _add_occupancy(st, g, seg_lo, cursor, bin_width, n_bins)
            gap_lo[n_gaps] = cursor
            gap_hi[n_gaps] = a
            n_gaps += 1
            seg_lo = a
        elif seg_lo < 0:
            seg_lo = a
        if z > cursor:
            cursor = z
    if seg_lo >= 0 and cursor > seg_lo:
        _add_occupancy(st, g, seg_lo, cursor, bin_width, n_bins)
    return gap_lo, gap_hi, n_gaps


@jit
def best_fit_candidates(st, g, gap_lo, gap_hi, n_gaps, sz):
    """Write slot g's candidate offsets for a buffer of ``sz`` bytes; return their count.

    Best fit first: gap size ascending, ties by the gap's lower offset; in each gap the
    bottom offset, then the top one. The lowest feasible offset (the bottom of the lowest
    gap that fits) is always a candidate (mallocgame.md 3c): where the best-fit list is
    cut before it, it takes the last slot (never slot 0, msa's).
    """
    n_actions = st.cand_off.shape[1]
    used = np.zeros(n_gaps, dtype=np.bool_)
    nc = 0
    while nc < n_actions:
        best = -1
        for q in range(n_gaps):
            if used[q]:
                continue
            length = gap_hi[q] - gap_lo[q]
            if length < sz:
                continue
            if best < 0:
                best = q
            else:
                best_len = gap_hi[best] - gap_lo[best]
                if length < best_len or (length == best_len and gap_lo[q] < gap_lo[best]):
                    best = q
        if best < 0:
            break
        used[best] = True
        length = gap_hi[best] - gap_lo[best]
        st.cand_off[g, nc] = gap_lo[best]
        st.cand_gap[g, nc] = length
        st.cand_top[g, nc] = 0
        nc += 1
        top = gap_hi[best] - sz
        if top != gap_lo[best] and nc < n_actions:
            st.cand_off[g, nc] = top
            st.cand_gap[g, nc] = length
            st.cand_top[g, nc] = 1
            nc += 1
    if nc == n_actions and nc > 1:
        for q in range(n_gaps):  # ascending offsets: the first gap that fits is the lowest
            if gap_hi[q] - gap_lo[q] >= sz:
                if not used[q]:
                    st.cand_off[g, nc - 1] = gap_lo[q]
                    st.cand_gap[g, nc - 1] = gap_hi[q] - gap_lo[q]
                    st.cand_top[g, nc - 1] = 0
                break
    return nc


@jit
def _add_occupancy(st, g, a, z, bin_width, n_bins):
    j0 = int(a / bin_width)
    j1 = int((z - 1) / bin_width)
    if j1 >= n_bins:
        j1 = n_bins - 1
    for j in range(j0, j1 + 1):
        left = j * bin_width
        right = left + bin_width
        ov = (z if z < right else right) - (a if a > left else left)
        if ov > 0:
            st.occupancy[g, j] += ov / bin_width


@jit
def decide(bank, st, g, action):
    """Play a legal ``action`` in slot g without preparing the next buffer; the reward.

    ``step_kernels.apply`` without its checks and its :func:`prepare`; for rollouts, which
    prepare what they need themselves.
    """
    base = bank.buf_off[st.wid[g]]
    b = st.order[g, st.pos[g]]
    reward = 0.0
    if action < st.cand_off.shape[1]:
        reward = st.cand_reward[g]
        offset = st.offset[g, b] = st.cand_off[g, action]
        _insert_placed(st, g, offset, offset + bank.size[base + b], bank.start[base + b],
                       bank.end[base + b])  # fmt: skip
        _apply_fast(bank, st, g, b)
        st.saved[g] += reward
    st.remaining[g] -= bank.saving[base + b]
    st.pos[g] += 1
    return reward


@jit
def _insert_placed(st, g, lo, hi, start, end):
    """Insert a buffer at ``[lo, hi)`` live over ``[start, end)`` into slot g's placed list.

    The list is kept by ``lo`` ascending; its four fields lie in rows of their own, so
    :func:`overlapping_intervals` scans them without a lookup per placed buffer.
    """
    k = st.n_placed[g]
    while k > 0 and st.placed[g, LO, k - 1] > lo:
        for f in range(4):
            st.placed[g, f, k] = st.placed[g, f, k - 1]
        k -= 1
    st.placed[g, LO, k] = lo
    st.placed[g, HI, k] = hi
    st.placed[g, START, k] = start
    st.placed[g, END, k] = end
    st.n_placed[g] += 1


@jit
def copy_into(src_st, src, dst_st, dst):
    """Copy the whole game state of slot ``src`` of ``src_st`` into slot ``dst`` of ``dst_st``."""
    dst_st.wid[dst] = src_st.wid[src]
    dst_st.cap[dst] = src_st.cap[src]
    dst_st.mem[dst, :] = src_st.mem[src, :]
    dst_st.offset[dst, :] = src_st.offset[src, :]
    dst_st.order[dst, :] = src_st.order[src, :]
    dst_st.n_order[dst] = src_st.n_order[src]
    dst_st.pos[dst] = src_st.pos[src]
    n_placed = src_st.n_placed[src]
    for f in range(4):
        dst_st.placed[dst, f, :n_placed] = src_st.placed[src, f, :n_placed]
    dst_st.n_placed[dst] = src_st.n_placed[src]
    dst_st.saved[dst] = src_st.saved[src]
    dst_st.remaining[dst] = src_st.remaining[src]
    dst_st.cand_off[dst, :] = src_st.cand_off[src, :]
    dst_st.cand_gap[dst, :] = src_st.cand_gap[src, :]
    dst_st.cand_top[dst, :] = src_st.cand_top[src, :]
    dst_st.n_cand[dst] = src_st.n_cand[src]
    dst_st.cand_reward[dst] = src_st.cand_reward[src]
    dst_st.occupancy[dst, :] = src_st.occupancy[src, :]
    dst_st.phase[dst] = src_st.phase[src]
    if src_st.pick.shape[1] > 1:  # v1 (K = 1) never reads the pick state
        dst_st.rank[dst, :] = src_st.rank[src, :]
        dst_st.pick[dst, :] = src_st.pick[src, :]
        dst_st.rule_ptr[dst, :] = src_st.rule_ptr[src, :]
        dst_st.low_bound[dst, :] = src_st.low_bound[src, :]


@jit
def copy_slot(st, src, dst):
    """Copy the whole game state of slot ``src`` into slot ``dst``."""
    copy_into(st, src, st, dst)
