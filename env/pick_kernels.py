"""Game v2's pick step as compiled kernels (mallocgame.md section 3b).

A slot's undecided buffers are ``order[pos:]``, in msa's relative order (or the order a
solver gave). Picking a buffer moves it to ``order[pos]`` and shifts the ones it jumped
down by one, so the rest keep their relative order and the place step then decides
``order[pos]`` as v1 does. ``rank`` is the inverse of ``order``. Pick slots and their
sources are described in :mod:`mallocmuzero.env.pick_rules`. Pure over the ``Bank`` and
``State`` arrays of :mod:`mallocmuzero.env.kernels`.
"""

from __future__ import annotations

from mallocmuzero.env.kernels import (
    END,
    HI,
    LO,
    NOT_PLACED,
    PICK,
    PLACE,
    START,
    decide,
    jit,
    prepare,
)
from mallocmuzero.env.pick_rules import DYNAMIC_RULE


@jit
def is_legal(st, g, action):
    """Whether ``action`` is allowed in slot g's phase (a finished game allows only slow)."""
    n_offsets = st.cand_off.shape[1]
    if st.phase[g] == PICK:
        return 0 <= action < st.pick.shape[1] and st.pick[g, action] >= 0
    return action == n_offsets or 0 <= action < st.n_cand[g]


@jit
def lowest_feasible_offset(bank, st, g, b):
    """The lowest offset where buffer b fits over its live range in slot g; ``cap + 1`` if none.

    The placed list is kept by offset ascending, so the first busy range that leaves room
    below it ends the scan.
    """
    base = bank.buf_off[st.wid[g]]
    s, e, size = bank.start[base + b], bank.end[base + b], bank.size[base + b]
    low = 0
    for i in range(st.n_placed[g]):
        if st.placed[g, START, i] < e and st.placed[g, END, i] > s:
            if st.placed[g, LO, i] >= low + size:
                break
            if st.placed[g, HI, i] > low:
                low = st.placed[g, HI, i]
    return low if low + size <= st.cap[g] else st.cap[g] + 1


@jit
def lowest_offset_first(bank, st, g):
    """The dynamic rule's buffer in slot g (mallocgame.md 3c), or -1 when none fits.

    The undecided buffer with the smallest lowest feasible offset; the rule's bank order
    (area descending, then msa's) breaks ties, as the scan keeps the first minimum.
    ``low_bound`` holds each buffer's last computed offset: placements only ever add, so
    it stays a lower bound, and a buffer whose bound cannot beat the best so far is not
    computed again.
    """
    pos, w = st.pos[g], st.wid[g]
    first, last = bank.order_off[w], bank.order_off[w + 1]
    ptr = st.rule_ptr[g, DYNAMIC_RULE]
    while first + ptr < last and st.rank[g, bank.rule_order[DYNAMIC_RULE, first + ptr]] < pos:
        ptr += 1
    st.rule_ptr[g, DYNAMIC_RULE] = ptr
    best, best_low = NOT_PLACED, st.cap[g] + 1
    for q in range(first + ptr, last):
        b = bank.rule_order[DYNAMIC_RULE, q]
        if st.rank[g, b] < pos or st.low_bound[g, b] >= best_low:
            continue
        low = lowest_feasible_offset(bank, st, g, b)
        st.low_bound[g, b] = low
        if low < best_low:
            best, best_low = b, low
            if low == 0:
                break
    return best


@jit
def first_undecided(bank, st, g, source):
    """The buffer a pick slot's ``source`` offers in slot g, or -1 when it has none."""
    pos, n_order = st.pos[g], st.n_order[g]
    if source == DYNAMIC_RULE:
        return lowest_offset_first(bank, st, g)
    if source <= 0:
        q = pos - source
        return st.order[g, q] if q < n_order else NOT_PLACED
    w = st.wid[g]
    first, last = bank.order_off[w], bank.order_off[w + 1]
    ptr = st.rule_ptr[g, source]
    while first + ptr < last:
        b = bank.rule_order[source, first + ptr]
        if st.rank[g, b] >= pos:  # presented and not decided yet
            st.rule_ptr[g, source] = ptr
            return b
        ptr += 1
    st.rule_ptr[g, source] = ptr
    return NOT_PLACED


@jit
def prepare_pick(bank, st, g):
    """Fill slot g's pick slots; its phase is PICK when they offer two buffers or more.

    A buffer that several slots offer is offered once, by the lowest slot.
    """
    st.phase[g] = PLACE
    k_slots = st.pick.shape[1]
    if k_slots == 1 or st.pos[g] >= st.n_order[g]:
        for k in range(k_slots):
            st.pick[g, k] = NOT_PLACED
        return
    offered = 0
    for k in range(k_slots):
        b = first_undecided(bank, st, g, st.pick_src[k])
        for j in range(k):
            if st.pick[g, j] == b:
                b = NOT_PLACED
        st.pick[g, k] = b
        if b >= 0:
            offered += 1
    if offered > 1:
        st.phase[g] = PICK


@jit
def prepare_next(bank, st, g):
    """Slot g's next decision: its pick slots, and the candidates of msa's next buffer."""
    prepare_pick(bank, st, g)
    prepare(bank, st, g)


@jit
def pick_buffer(st, g, slot):
    """Make the buffer of pick ``slot`` slot g's current one; the phase becomes PLACE."""
    b = st.pick[g, slot]
    pos = st.pos[g]
    for q in range(st.rank[g, b], pos, -1):
        st.order[g, q] = st.order[g, q - 1]
        st.rank[g, st.order[g, q]] = q
    st.order[g, pos] = b
    st.rank[g, b] = pos
    st.phase[g] = PLACE


@jit
def play(bank, st, g, action):
    """Play a legal action in slot g without preparing what comes next; the reward.

    For rollouts, which prepare what they need themselves: a pick moves the buffer, a
    place step is :func:`kernels.decide`.
    """
    if st.phase[g] == PICK:
        pick_buffer(st, g, action)
        return 0.0
    return decide(bank, st, g, action)
