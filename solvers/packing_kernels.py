"""The packing search's kernels: depth-first search over canonical packings.

A packing is *canonical* when every buffer rests on a buffer below it or on offset 0
(mallocgame.md section 3c). Listed by ascending ``(offset, rank)``, a canonical packing is
rebuilt by placing each buffer on the *floor* of its live range: the highest top of the
buffers placed before it that it meets in time. So the search places buffers one at a
time on their floors, in nondecreasing ``(floor, rank)`` order (each packing is reached
once), lowest floor first (MiniMalloc's dynamic order; ``rank`` is a static preorder).
Ideas from MiniMalloc's paper, written afresh here:

* *section bounds*: in every section (a stretch of time where the live set is constant),
  the buffers not yet placed stack above the lowest floor among them and above the last
  placed offset (the order is monotone); if that stack passes the capacity, the branch
  is dead;
* *dominance*: a buffer is not placed on a floor at or above the top that another
  unplaced buffer reaches on its own floor: that buffer would fit under it in any
  completion (nothing placed later is that low), giving a packing with a lower sum of
  offsets, which the search reaches elsewhere;
* *decomposition*: when no unplaced buffer crosses some section boundaries, the buffers
  between them form independent subproblems (*frames*), solved one after the other, each
  with its own monotone order and its own preorder (the static keys again, with each
  section's total taken over the buffers still unplaced); once a frame is solved, a
  later frame's failure never backtracks into it, but fails the placement that split
  them.

All state lives in the arrays of a :class:`Tree`, so the search stops after ``budget``
nodes and resumes where it stopped: the caller checks its clock between calls.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mallocmuzero.env.jit import jit

FOUND, EXHAUSTED, BUDGET = 1, 0, 2
NONE = -1
# info slots
DEPTH, FLOOR_LOG, V_LOG, EXPANDED, NODES, BEST_AREA, FRAMES, CAPACITY, RANK_LOG = range(9)
TOTAL = -1  # a preorder key code: the largest unplaced total of the buffer's sections


class Tree(NamedTuple):
    """The instance (first seven fields) and the search's state, all arrays."""

    lo: np.ndarray  # [n] first section of each buffer
    hi: np.ndarray  # [n] one past its last section
    size: np.ndarray  # [n]
    area: np.ndarray  # [n]
    rank: np.ndarray  # [n] preorder: ties of floors go to the lower rank
    keys: np.ndarray  # [k, n] the static preorder keys, larger first
    heuristic: np.ndarray  # [h] the preorder: rows of ``keys``, or TOTAL, in turn
    nbr_ptr: np.ndarray  # [n + 1] CSR of the buffers each one meets in time
    nbr: np.ndarray
    floor: np.ndarray  # [S] top of the placed buffers in each section
    rem: np.ndarray  # [S] total size of the unplaced buffers live in each section
    cuts: np.ndarray  # [S] unplaced buffers crossing the boundary after each section
    v: np.ndarray  # [n] each buffer's floor
    placed: np.ndarray  # [n] offset, or NONE
    path: np.ndarray  # [n] the buffer placed at each depth
    tried: np.ndarray  # [n + 1, n] bool: buffers tried at each depth
    min_height: np.ndarray  # [n + 1] the dominance bound of the node at each depth
    log_floor: np.ndarray  # floors overwritten by placements, for undo
    log_v: np.ndarray  # [., 2] (buffer, old floor) pairs; (NONE, b) ends b's entries
    low: np.ndarray  # [S] scratch
    best: np.ndarray  # [n] offsets of the node with the most area placed
    rank_log: np.ndarray  # [., 2] (buffer, old rank) pairs a split's re-ranking replaced
    frames: np.ndarray  # [F, 5] section range, start depth, depth of the split (-1: root),
    # and the rank log's length before the split
    info: np.ndarray  # DEPTH ... CAPACITY


@jit
def _dead(lo, hi, size, v, placed, rem, low, a, b, capacity, last_off):
    """Whether the node can be pruned: a buffer over capacity, or a section over it.

    Frame ``[a, b)`` only; ``low`` is scratch.
    """
    low[a:b] = capacity
    for u in range(size.shape[0]):
        if placed[u] < 0 and a <= lo[u] and hi[u] <= b:
            vu = max(v[u], last_off)
            if vu + size[u] > capacity:
                return True
            for s in range(lo[u], hi[u]):
                if vu < low[s]:
                    low[s] = vu
    for s in range(a, b):
        if rem[s] > 0 and low[s] + rem[s] > capacity:
            return True
    return False


@jit
def _next_candidate(lo, hi, v, rank, placed, tried, a, b, min_height, last_off, last_rank):
    """The best untried buffer of frame ``[a, b)`` allowed after ``(last_off, last_rank)``.

    NONE when there is none. A buffer on a floor at or above the node's dominance bound
    ``min_height`` is not allowed.
    """
    best = NONE
    for u in range(v.shape[0]):
        if placed[u] >= 0 or tried[u] or v[u] >= min_height:
            continue
        if v[u] < last_off or (v[u] == last_off and rank[u] <= last_rank):
            continue
        if lo[u] < a or hi[u] > b:
            continue
        if best == NONE or v[u] < v[best] or (v[u] == v[best] and rank[u] < rank[best]):
            best = u
    return best


@jit
def _place(t, b):
    """Put buffer b on its floor; log what changes so :func:`_undo` restores it."""
    top = t.v[b] + t.size[b]
    t.placed[b] = t.v[b]
    k = t.info[FLOOR_LOG]
    for s in range(t.lo[b], t.hi[b]):
        t.log_floor[k] = t.floor[s]
        k += 1
        t.floor[s] = top
        t.rem[s] -= t.size[b]
    t.info[FLOOR_LOG] = k
    for s in range(t.lo[b], t.hi[b] - 1):
        t.cuts[s] -= 1
    k = t.info[V_LOG]
    for j in range(t.nbr_ptr[b], t.nbr_ptr[b + 1]):
        u = t.nbr[j]
        if t.placed[u] < 0 and t.v[u] < top:
            t.log_v[k, 0] = u
            t.log_v[k, 1] = t.v[u]
            k += 1
            t.v[u] = top
    t.log_v[k, 0] = NONE
    t.log_v[k, 1] = b
    t.info[V_LOG] = k + 1


@jit
def _undo(t, b):
    """Take buffer b off again (the last placement), restoring what it changed."""
    k = t.info[V_LOG] - 2  # the entry before b's end marker
    while k >= 0 and t.log_v[k, 0] != NONE:
        t.v[t.log_v[k, 0]] = t.log_v[k, 1]
        k -= 1
    t.info[V_LOG] = k + 1
    k = t.info[FLOOR_LOG]
    for s in range(t.hi[b] - 1, t.lo[b] - 1, -1):
        k -= 1
        t.floor[s] = t.log_floor[k]
        t.rem[s] += t.size[b]
    t.info[FLOOR_LOG] = k
    for s in range(t.lo[b], t.hi[b] - 1):
        t.cuts[s] += 1
    t.placed[b] = NONE


@jit
def _split(t, f, d):
    """Push frame f's independent pieces as frames (first on top) when there are two or more.

    A piece is a stretch of sections between boundaries no unplaced buffer crosses that
    holds an unplaced buffer. Returns whether it split.
    """
    a, b = t.frames[f, 0], t.frames[f, 1]
    pieces, start, busy = 0, a, False
    stack = t.info[FRAMES]
    for s in range(a, b):
        busy = busy or t.rem[s] > 0
        if s == b - 1 or t.cuts[s] == 0:
            if busy:
                t.frames[stack + pieces, 0] = start
                t.frames[stack + pieces, 1] = s + 1
                t.frames[stack + pieces, 2] = NONE  # starts when it becomes active
                t.frames[stack + pieces, 3] = d
                t.frames[stack + pieces, 4] = t.info[RANK_LOG]
                pieces += 1
            start, busy = s + 1, False
    if pieces < 2:
        return False
    _rerank(t, stack, pieces)
    for i in range(pieces // 2):  # the first piece on top of the stack
        for j in range(5):
            top, bottom = stack + pieces - 1 - i, stack + i
            t.frames[top, j], t.frames[bottom, j] = t.frames[bottom, j], t.frames[top, j]
    t.info[FRAMES] = stack + pieces
    t.frames[stack + pieces - 1, 2] = d
    return True


@jit
def _rerank(t, first, pieces):
    """Rank each new piece's unplaced buffers by the preorder, logging the old ranks.

    The pieces are frames ``first ..`` of the stack. Where the log is full the old ranks
    stay (the search stays exact, only less guided).
    """
    n = t.size.shape[0]
    for i in range(pieces):  # the section -> piece map, in the scratch array
        t.low[t.frames[first + i, 0] : t.frames[first + i, 1]] = i
    a, b = t.frames[first, 0], t.frames[first + pieces - 1, 1]
    count = np.zeros(pieces + 1, np.int64)
    piece = np.full(n, -1, np.int64)
    for u in range(n):
        if t.placed[u] < 0 and a <= t.lo[u] and t.hi[u] <= b:
            piece[u] = t.low[t.lo[u]]
            count[piece[u] + 1] += 1
    total = count.sum()
    if t.info[RANK_LOG] + total > t.rank_log.shape[0]:
        return
    for i in range(pieces):
        count[i + 1] += count[i]
    members = np.empty(total, np.int64)
    fill = count[:pieces].copy()
    for u in range(n):
        if piece[u] >= 0:
            members[fill[piece[u]]] = u
            fill[piece[u]] += 1
    k = t.info[RANK_LOG]
    for i in range(pieces):
        group = members[count[i] : count[i + 1]]
        key = np.empty(group.size, np.float64)
        for h in range(t.heuristic.shape[0] - 1, -1, -1):  # stable sorts, last key first
            for j in range(group.size):
                u = group[j]
                if t.heuristic[h] == TOTAL:
                    key[j] = t.rem[t.lo[u] : t.hi[u]].max()
                else:
                    key[j] = t.keys[t.heuristic[h], u]
            group = group[np.argsort(-key, kind="mergesort")]
        for j in range(group.size):
            u = group[j]
            t.rank_log[k, 0] = u
            t.rank_log[k, 1] = t.rank[u]
            k += 1
            t.rank[u] = j
    t.info[RANK_LOG] = k


@jit
def rank_root(t):
    """Rank every buffer by the preorder, for good (the root frame is never undone)."""
    _rerank(t, 0, 1)
    t.info[RANK_LOG] = 0


@jit
def _frame_done(t, f):
    for s in range(t.frames[f, 0], t.frames[f, 1]):
        if t.rem[s] > 0:
            return False
    return True


@jit
def _backtrack(t, d):
    """No candidate is left at depth d: undo, across frames a failed split undoes too.

    Returns the new depth, or NONE when the whole search is exhausted.
    """
    while True:
        f = t.info[FRAMES] - 1
        if d > t.frames[f, 2]:  # inside the frame: undo the last placement
            _undo(t, t.path[d - 1])
            t.info[EXPANDED] = 1
            return d - 1
        split = t.frames[f, 3]
        if split < 0:
            return NONE  # the root frame's first node has nothing left
        ranks = t.frames[f, 4]
        while t.info[FRAMES] > 0 and t.frames[t.info[FRAMES] - 1, 3] == split:
            t.info[FRAMES] -= 1  # drop this split's pieces, solved or pending
        for k in range(t.info[RANK_LOG] - 1, ranks - 1, -1):
            t.rank[t.rank_log[k, 0]] = t.rank_log[k, 1]  # the split frame's preorder
        t.info[RANK_LOG] = ranks
        for k in range(d - 1, split - 1, -1):
            _undo(t, t.path[k])  # the solved pieces' placements
        d = split  # the node that split has failed as a whole


@jit
def _enter(t, d):
    """Settle the frames at a new node of depth d; the active frame, or NONE when done."""
    while True:
        if t.info[FRAMES] == 0:
            return NONE
        f = t.info[FRAMES] - 1
        if t.frames[f, 2] == NONE:
            t.frames[f, 2] = d  # a pending piece becomes active here
        if _frame_done(t, f):
            t.info[FRAMES] -= 1  # solved (a split parent is solved with its last piece)
            continue
        if _split(t, f, d):
            continue
        return f


@jit
def search(t, budget):
    """Run the depth-first search for at most ``budget`` nodes; FOUND, EXHAUSTED or BUDGET."""
    capacity = t.info[CAPACITY]
    for _ in range(budget):
        if t.info[FRAMES] == 0:
            return FOUND  # every frame solved (a call after FOUND)
        d = t.info[DEPTH]
        if t.info[EXPANDED] == 0:  # a new node: settle frames, check it, expand it
            t.info[EXPANDED] = 1
            t.info[NODES] += 1
            _track_best(t.area, t.placed, t.best, t.info)
            f = _enter(t, d)
            if f == NONE:
                return FOUND
            a, b = t.frames[f, 0], t.frames[f, 1]
            last = t.path[d - 1] if d > t.frames[f, 2] else NONE
            last_off = t.placed[last] if last >= 0 else 0
            if _dead(t.lo, t.hi, t.size, t.v, t.placed, t.rem, t.low, a, b, capacity, last_off):
                t.min_height[d] = -1  # nothing is allowed: backtrack below
            else:
                t.tried[d, :] = False
                t.min_height[d] = _min_height(t.lo, t.hi, t.size, t.v, t.placed, a, b, capacity)
        f = t.info[FRAMES] - 1
        a, b = t.frames[f, 0], t.frames[f, 1]
        last = t.path[d - 1] if d > t.frames[f, 2] else NONE
        last_off = t.placed[last] if last >= 0 else 0
        u = _next_candidate(t.lo, t.hi, t.v, t.rank, t.placed, t.tried[d], a, b, t.min_height[d],
                            last_off, t.rank[last] if last >= 0 else NONE)  # fmt: skip
        if u == NONE:
            d = _backtrack(t, d)
            if d == NONE:
                return EXHAUSTED
            t.info[DEPTH] = d
            continue
        t.tried[d, u] = True
        _place(t, u)
        t.path[d] = u
        t.info[DEPTH] = d + 1
        t.info[EXPANDED] = 0
    return BUDGET


@jit
def _min_height(lo, hi, size, v, placed, a, b, capacity):
    """The lowest top an unplaced buffer of frame ``[a, b)`` reaches on its own floor."""
    height = capacity + 1
    for u in range(size.shape[0]):
        if placed[u] < 0 and a <= lo[u] and hi[u] <= b and v[u] + size[u] < height:
            height = v[u] + size[u]
    return height


@jit
def _track_best(area, placed, best, info):
    """Keep the offsets of the node with the most area placed."""
    total = 0
    for u in range(area.shape[0]):
        if placed[u] >= 0:
            total += area[u]
    if total > info[BEST_AREA]:
        info[BEST_AREA] = total
        best[:] = placed
