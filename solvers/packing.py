"""``packing``: a backtracking search for full packings (MiniMalloc's problem).

When every unpinned buffer may fit (the goal is to place them all), the depth-first
search of :mod:`mallocmuzero.solvers.packing_kernels` looks for a canonical packing of
every buffer, trying the dynamic lowest-floor order first and pruning with section
bounds, dominance and decomposition. When a try's node budget is spent it restarts with
another tie-break preorder (:data:`PREORDERS` in turn, budgets doubling every round, as
MiniMalloc's round robin; each independent piece is ranked again as it forms), and it
keeps the placement of the most area (bytes x time) it has seen. The search is
deterministic (``seed`` only seeds the greedy fallback's tie-breaks).
Within ``time_limit`` it returns a full packing when it finds one, else that best
placement completed greedily (each remaining buffer at its lowest feasible offset,
largest area first), or one canonical greedy rollout's or msa's where that saves more.
With a full packing, no solver can save more time: every buffer is in fast memory.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mallocmuzero.env import cost_model
from mallocmuzero.env.solution import Solution, make_solution
from mallocmuzero.env.workload import Workload
from mallocmuzero.errors import ArgumentError, check_time_limit
from mallocmuzero.solvers import canonical_kernels
from mallocmuzero.solvers import packing_kernels as kernels
from mallocmuzero.solvers.common import Deadline, load_kernels
from mallocmuzero.solvers.greedy import solve_msa

CHUNK_NODES = 4_096  # nodes between two looks at the clock
CANONICAL_CHUNK = 16  # canonical placements between two looks at the clock
MAX_ROUND = 24  # budgets double every round up to here (n x 2^25 nodes a try)


@dataclasses.dataclass(frozen=True)
class Instance:
    """The buffers a packing may place, on compressed time (sections)."""

    buffers: np.ndarray  # workload buffer index of each packed buffer
    lo: np.ndarray  # first section of each
    hi: np.ndarray  # one past its last section
    size: np.ndarray
    live_time: np.ndarray  # in instruction runs (loop repeats counted)
    area: np.ndarray  # size x live time
    capacity: int
    neighbours_ptr: np.ndarray  # CSR of the buffers each one meets in time
    neighbours: np.ndarray


def packing_instance(workload: Workload) -> Instance:
    """The unpinned buffers that fit the capacity alone, on their event-point sections."""
    keep = np.flatnonzero(~workload.pinned & (workload.size <= workload.capacity))
    start, end = workload.start[keep], workload.end[keep]
    points = np.unique(np.concatenate([start, end]))
    lo = np.searchsorted(points, start).astype(np.int64)
    hi = np.searchsorted(points, end).astype(np.int64)
    duration = workload.live_time()[keep]
    size = workload.size[keep].astype(np.int64)
    pointer, neighbours = [0], []
    for i in range(keep.size):  # buffers meet in time when their live ranges intersect
        meets = np.flatnonzero((start < end[i]) & (start[i] < end))
        neighbours.append(meets[meets != i])
        pointer.append(pointer[-1] + neighbours[-1].size)
    flat = np.concatenate(neighbours) if neighbours else np.zeros(0, np.int64)
    return Instance(keep, lo, hi, size, duration, size * duration,
                    int(workload.capacity), np.asarray(pointer, np.int64),
                    flat.astype(np.int64))  # fmt: skip


class PackingSearch:
    """One try of the depth-first search: its arrays, resumable ``CHUNK_NODES`` at a time."""

    def __init__(self, inst: Instance, heuristic: str, keys: np.ndarray | None = None) -> None:
        """Start a search ranked by preorder ``heuristic`` over ``keys`` (:func:`preorder_keys`)."""
        n, sections = inst.size.size, int(inst.hi.max(initial=0))
        rem, cuts = np.zeros(sections, np.int64), np.zeros(sections, np.int64)
        for b in range(n):
            rem[inst.lo[b] : inst.hi[b]] += inst.size[b]
            cuts[inst.lo[b] : inst.hi[b] - 1] += 1
        frames = np.zeros((sections + n + 2, 5), np.int64)
        frames[0] = (0, sections, 0, -1, 0)  # the root frame: every section, from depth 0
        info = np.zeros(9, np.int64)
        info[kernels.FRAMES], info[kernels.CAPACITY] = 1, inst.capacity
        self.tree = kernels.Tree(
            inst.lo, inst.hi, inst.size, inst.area, np.arange(n, dtype=np.int64),
            preorder_keys(inst) if keys is None else keys, heuristic_codes(heuristic),
            inst.neighbours_ptr, inst.neighbours,
            floor=np.zeros(sections, np.int64), rem=rem, cuts=cuts,
            v=np.zeros(n, np.int64), placed=np.full(n, -1, np.int64),
            path=np.full(n, -1, np.int64), tried=np.zeros((n + 1, n), np.bool_),
            min_height=np.zeros(n + 1, np.int64),
            log_floor=np.zeros(max(int((inst.hi - inst.lo).sum()), 1), np.int64),
            log_v=np.zeros((inst.neighbours.size + n + 1, 2), np.int64),
            low=np.zeros(sections, np.int64), best=np.full(n, -1, np.int64),
            rank_log=np.zeros((min(n * n, RANK_LOG_ROWS), 2), np.int64),
            frames=frames, info=info,
        )  # fmt: skip
        kernels.rank_root(self.tree)

    def run(self, nodes: int) -> int:
        """Search at most ``nodes`` more nodes: FOUND, EXHAUSTED or BUDGET."""
        return int(kernels.search(self.tree, nodes))

    @property
    def placed(self) -> np.ndarray:
        """The current offsets (every buffer's, once FOUND)."""
        return self.tree.placed

    @property
    def best(self) -> np.ndarray:
        """The offsets of the node with the most area placed so far."""
        return self.tree.best

    @property
    def nodes(self) -> int:
        """Nodes visited so far."""
        return int(self.tree.info[kernels.NODES])

    @property
    def best_area(self) -> int:
        """The most area placed at any node so far."""
        return int(self.tree.info[kernels.BEST_AREA])


PREORDERS = ("WAT", "TAW", "TWA", "TSA")  # keys in turn (see :func:`preorder_keys`)
KEY_ROWS = "AWSZ"  # the static keys' rows; T (section total) is computed as frames form
RANK_LOG_ROWS = 1 << 22  # re-rankings past this many logged ranks keep the old ranks


def preorder_keys(inst: Instance) -> np.ndarray:
    """``[4, n]`` static preorder keys, larger first, as :data:`KEY_ROWS` names them.

    A area, W live time, S sections spanned, Z size.
    """
    return np.stack([inst.area, inst.live_time, inst.hi - inst.lo, inst.size]).astype(np.float64)


def heuristic_codes(heuristic: str) -> np.ndarray:
    """A preorder's letters as the kernels' key codes (rows of the keys, or TOTAL)."""
    return np.array([kernels.TOTAL if c == "T" else KEY_ROWS.index(c) for c in heuristic], np.int64)


def fill_greedily(inst: Instance, offsets: np.ndarray) -> np.ndarray:
    """Place each unplaced buffer (largest area first) at its lowest feasible offset."""
    offsets = offsets.copy()
    for b in np.argsort(-inst.area, kind="stable"):
        if offsets[b] >= 0:
            continue
        meets = inst.neighbours[inst.neighbours_ptr[b] : inst.neighbours_ptr[b + 1]]
        meets = meets[offsets[meets] >= 0]
        low, size = 0, int(inst.size[b])
        for other in meets[np.argsort(offsets[meets], kind="stable")]:
            if offsets[other] >= low + size:
                break
            low = max(low, int(offsets[other] + inst.size[other]))
        if low + size <= inst.capacity:
            offsets[b] = low
    return offsets


def _start(workload: Workload, time_limit: float | None, seed: int, other: int | None,
           other_name: str) -> tuple[Deadline, Instance, np.random.Generator]:  # fmt: skip
    """Check the limits (one of ``time_limit`` and ``other`` is needed); start the clock."""
    check_time_limit(time_limit)
    if time_limit is None and other is None:
        raise ArgumentError("time_limit", f"or {other_name} is needed (both are None)")
    if time_limit is not None:
        load_kernels("packing")  # start-up, before the clock
    return Deadline(time_limit), packing_instance(workload), np.random.default_rng(seed)


def solve_packing(
    workload: Workload,
    time_limit: float | None = 10.0,
    seed: int = 0,
    node_limit: int | None = None,
) -> Solution:
    """Search for a full packing within ``time_limit`` seconds and ``node_limit`` nodes.

    Either limit may be None (not both); without a full packing, the most area found,
    completed greedily, or msa's placement where that saves more.
    """
    deadline, inst, _ = _start(workload, time_limit, seed, node_limit, "node_limit")
    keys = preorder_keys(inst)
    best, best_area = np.full(inst.size.size, -1), -1
    tries, nodes, status = 0, 0, None
    nodes_left = lambda: node_limit - nodes if node_limit is not None else 1 << 62  # noqa: E731
    while inst.size.size and status != kernels.FOUND and not deadline.expired() and nodes_left():
        tries += 1
        cycle, heuristic = divmod(tries - 1, len(PREORDERS))
        search = PackingSearch(inst, PREORDERS[heuristic], keys)
        budget = inst.size.size * 2 ** (min(cycle, MAX_ROUND) + 1)
        status = kernels.BUDGET
        while status == kernels.BUDGET and search.nodes < budget and not deadline.expired():
            chunk = min(CHUNK_NODES, budget - search.nodes, nodes_left() - search.nodes)
            if chunk <= 0:
                break
            status = search.run(chunk)
        nodes += search.nodes
        if status == kernels.FOUND:
            best, best_area = search.placed.copy(), int(inst.area.sum())
        elif search.best_area > best_area:
            best, best_area = search.best.copy(), search.best_area
        if status == kernels.EXHAUSTED:
            break  # the whole space was searched: no full packing exists
    full = bool(inst.size.size) and status == kernels.FOUND
    offsets = np.full(workload.num_buffers, -1, np.int64)
    offsets[inst.buffers] = best if full else fill_greedily(inst, best)
    extra = {"tries": tries, "nodes": nodes, "full_packing": full,
             "proved_no_full_packing": status == kernels.EXHAUSTED,
             "seconds": round(deadline.elapsed(), 3)}  # fmt: skip
    found = make_solution(workload, offsets, "packing", extra=extra)
    if full:
        return found  # every buffer in fast memory: nothing saves more
    # A partial packing is kept only where it saves more than one canonical greedy rollout
    # (which includes msa's answer).
    left = None if time_limit is None else max(time_limit - deadline.elapsed(), 1e-9)
    greedy = solve_canonical(workload, time_limit=left, tries=1)
    if greedy.estimated_time_s < found.estimated_time_s:
        kept = greedy.extra["kept"]
        return dataclasses.replace(greedy, solver="packing", extra={**extra, "kept": kept})
    return found


def solve_canonical(workload: Workload, time_limit: float | None = 10.0, seed: int = 0,
                    tries: int | None = None) -> Solution:  # fmt: skip
    """``canonical``: MiniMalloc's dynamic order as a greedy rollout, restarted on its ties.

    Each try places the undecided buffer with the lowest feasible offset there (ties by
    area, then msa's order; later tries put log-normal noise on the area), a buffer that
    fits nowhere stays slow. The fastest placement by the cost model is kept, or msa's
    where that is faster, within ``time_limit`` seconds or ``tries`` tries. A try the
    limit interrupts (one takes seconds on ten thousand buffers) is dropped, and the tries
    stop early by what scoring one costs (msa's solve, timed first), so the call keeps
    its limit.
    """
    deadline, inst, rng = _start(workload, time_limit, seed, tries, "tries")
    lowest, decided = np.empty(inst.size.size, np.int64), np.empty(inst.size.size, np.bool_)
    msa_rank = np.empty(workload.num_buffers, np.float64)
    msa_rank[cost_model.presentation_order(workload)] = np.arange((~workload.pinned).sum(), 0, -1)
    tie = msa_rank[inst.buffers] / (inst.buffers.size + 1)  # below one unit of area
    scored = deadline.elapsed()
    best = solve_msa(workload)
    scoring = deadline.elapsed() - scored
    playing = deadline.less(scoring)
    done, kept = 0, "msa"
    offsets = np.full(inst.size.size, -1, np.int64)
    while (tries is None or done < tries) and not playing.expired():
        noise = np.exp(0.3 * rng.standard_normal(inst.size.size)) if done else 1.0
        key = np.floor(inst.area * noise) + tie
        canonical_kernels.canonical_start(inst.size, inst.capacity, offsets, lowest, decided)
        finished = False
        while not finished and not playing.expired():
            finished = canonical_kernels.canonical_steps(
                inst.size, inst.neighbours_ptr, inst.neighbours, key, inst.capacity, offsets,
                lowest, decided, CANONICAL_CHUNK)  # fmt: skip
        if not finished:
            break
        full = np.full(workload.num_buffers, -1, np.int64)
        full[inst.buffers] = offsets
        found = make_solution(workload, full, "canonical")
        if found.estimated_time_s < best.estimated_time_s:
            best, kept = found, "canonical"
        done += 1
    extra = {"tries": done, "kept": kept, "wall_time_s": round(deadline.elapsed(), 3)}
    return dataclasses.replace(best, solver="canonical", extra=extra)
