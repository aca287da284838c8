"""The game's step as compiled kernels: start a game in a slot, play an action, a batch.

Pure over the ``Bank`` and ``State`` arrays of :mod:`mallocmuzero.env.kernels`; a place
step is v1's (``kernels.decide``), a pick step v2's (:mod:`~.pick_kernels`).
"""

from __future__ import annotations

from mallocmuzero.env.kernels import ILLEGAL, NOT_PLACED, PICK, decide, jit, prepare
from mallocmuzero.env.pick_kernels import is_legal, pick_buffer, prepare_next


@jit
def reset_slot(bank, st, g, w, cap):
    """Start a new game in slot g: workload w of the bank at capacity ``cap`` bytes."""
    reset_slot_order(bank, st, g, w, cap, bank.order[bank.order_off[w] : bank.order_off[w + 1]])


@jit
def reset_slot_order(bank, st, g, w, cap, order):
    """Like :func:`reset_slot`, presenting the unpinned buffers in a given order.

    ``order`` holds local buffer indices; buffers larger than ``cap`` are skipped (slow).
    Used by order-perturbing search.
    """
    st.wid[g] = w
    st.cap[g] = cap
    i0 = bank.inst_off[w]
    n_instr = bank.inst_off[w + 1] - i0
    for t in range(n_instr):
        st.mem[g, t] = bank.mem0[i0 + t]
    base = bank.buf_off[w]
    n_buf = bank.buf_off[w + 1] - base
    for b in range(n_buf):
        st.offset[g, b] = NOT_PLACED
        st.rank[g, b] = NOT_PLACED
    n = 0
    remaining = 0.0
    for k in range(order.shape[0]):
        b = order[k]
        if bank.size[base + b] <= cap:
            st.order[g, n] = b
            st.rank[g, b] = n
            n += 1
            remaining += bank.saving[base + b]
    st.n_order[g] = n
    st.pos[g] = 0
    st.n_placed[g] = 0
    st.saved[g] = 0.0
    st.remaining[g] = remaining
    st.rule_ptr[g, :] = 0
    st.low_bound[g, :] = 0
    prepare_next(bank, st, g)


@jit
def apply(bank, st, g, action):
    """Play ``action`` in slot g; return the reward in seconds (ILLEGAL if not allowed).

    At a place step, actions ``0..N-1`` place the current buffer at that candidate and
    ``N`` leaves it slow; at a pick step, action ``k`` picks pick slot k's buffer (reward
    0). A finished game ignores the action and returns 0.
    """
    if st.pos[g] >= st.n_order[g]:
        return 0.0
    if not is_legal(st, g, action):
        return ILLEGAL
    if st.phase[g] == PICK:
        pick_buffer(st, g, action)
        prepare(bank, st, g)
        return 0.0
    reward = decide(bank, st, g, action)
    prepare_next(bank, st, g)
    return reward


@jit
def step_batch(bank, st, actions, rewards, done):
    """Apply one action per slot; fill rewards (seconds) and done flags.

    Returns the first slot with an illegal action, or -1.
    """
    bad = -1
    for g in range(actions.shape[0]):
        r = apply(bank, st, g, actions[g])
        if r == ILLEGAL:
            if bad < 0:
                bad = g
            r = 0.0
        rewards[g] = r
        done[g] = st.pos[g] >= st.n_order[g]
    return bad
