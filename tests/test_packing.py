"""The packing search: full packings where they exist, valid answers always."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mallocmuzero.env.importers.minimalloc import import_minimalloc_csv
from mallocmuzero.env.random_workload import random_workload
from mallocmuzero.env.solution import validation_errors
from mallocmuzero.env.workload import DEFAULT_HARDWARE, build_workload
from mallocmuzero.errors import ArgumentError
from mallocmuzero.solvers import packing_kernels as kernels
from mallocmuzero.solvers.greedy import solve_msa
from mallocmuzero.solvers.packing import (
    KEY_ROWS,
    PREORDERS,
    PackingSearch,
    packing_instance,
    preorder_keys,
    solve_packing,
)

from conftest import SHARED


def cut_rectangle(seed: int, pieces: int, horizon: int = 40, capacity: int = 64):
    """A workload whose buffers tile time x capacity exactly (it packs with no slack)."""
    rng = np.random.default_rng(seed)
    rects = [(0, horizon, 0, capacity)]
    while len(rects) < pieces:
        i = int(rng.integers(len(rects)))
        t0, t1, o0, o1 = rects[i]
        if rng.random() < 0.5 and t1 - t0 > 1:
            m = int(rng.integers(t0 + 1, t1))
            rects[i : i + 1] = [(t0, m, o0, o1), (m, t1, o0, o1)]
        elif o1 - o0 > 1:
            m = int(rng.integers(o0 + 1, o1))
            rects[i : i + 1] = [(t0, t1, o0, m), (t0, t1, m, o1)]
    instructions = [
        {"flops": 1.0, "accesses": [[b, 1] for b, r in enumerate(rects) if r[0] <= t < r[1]]}
        for t in range(horizon)
    ]
    buffers = [{"id": b, "size": r[3] - r[2], "start": r[0], "end": r[1], "pinned": False}
               for b, r in enumerate(rects)]  # fmt: skip
    return build_workload(name=f"cut{seed}", instructions=instructions, buffers=buffers,
                          hardware=DEFAULT_HARDWARE, capacity=capacity)  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), pieces=st.integers(2, 40))
def test_a_tiling_packs_fully_and_validly(seed, pieces):
    workload = cut_rectangle(seed, pieces)
    solution = solve_packing(workload, time_limit=None, node_limit=2_000_000)
    assert solution.extra["full_packing"], solution.extra
    assert (solution.offsets >= 0).all()
    assert validation_errors(workload, solution.offsets, workload.capacity) == []


def test_one_byte_less_is_proved_impossible():
    workload = cut_rectangle(7, 12)
    tight = workload.with_capacity(workload.capacity - 1)  # the peak no longer fits
    solution = solve_packing(tight, time_limit=None, node_limit=2_000_000)
    assert not solution.extra["full_packing"]
    assert solution.extra["proved_no_full_packing"]
    assert validation_errors(tight, solution.offsets, tight.capacity) == []


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.05, 0.8))
def test_any_workload_gets_a_valid_answer_never_worse_than_msa(seed, fraction):
    from mallocmuzero.env.workload import resolve_capacity

    workload = resolve_capacity(random_workload(seed, num_buffers=25), fraction=fraction)
    solution = solve_packing(workload, time_limit=None, node_limit=20_000)
    assert validation_errors(workload, solution.offsets, workload.capacity) == []
    assert solution.estimated_time_s <= solve_msa(workload).estimated_time_s * (1 + 1e-12)


def test_limits_are_checked_and_named():
    workload = random_workload(0, num_buffers=6)
    with pytest.raises(ArgumentError, match="^time_limit must be > 0"):
        solve_packing(workload, time_limit=0)
    with pytest.raises(ArgumentError, match="node_limit"):
        solve_packing(workload, time_limit=None, node_limit=None)


@pytest.mark.parametrize("seed", [7, 9, 10, 13])
@pytest.mark.parametrize("heuristic", PREORDERS)
def test_an_exhausted_search_undoes_every_placement_and_every_ranking(seed, heuristic):
    """Pieces get their own preorder as they form; backtracking past them restores it.

    These seeds have no full packing at 30% of the peak, and their search splits.
    """
    from mallocmuzero.env.workload import resolve_capacity

    workload = resolve_capacity(random_workload(seed, num_buffers=25), fraction=0.3)
    search = PackingSearch(packing_instance(workload), heuristic)
    root_rank = search.tree.rank.copy()
    status, most_frames = kernels.BUDGET, 1
    while status == kernels.BUDGET:
        status = search.run(1)
        most_frames = max(most_frames, int(search.tree.info[kernels.FRAMES]))
    assert status == kernels.EXHAUSTED and most_frames > 1
    assert (search.tree.rank == root_rank).all()
    assert (search.placed == -1).all() and (search.tree.floor == 0).all()
    assert search.tree.info[kernels.RANK_LOG] == 0


def test_the_root_is_ranked_by_the_preorder_letters():
    """WAT: longest live time first, then the larger area, then the tighter section."""
    workload = cut_rectangle(3, 12)
    inst = packing_instance(workload)
    rank = PackingSearch(inst, "WAT").tree.rank
    keys = preorder_keys(inst)
    order = np.argsort(rank)
    width, area = keys[KEY_ROWS.index("W")][order], keys[KEY_ROWS.index("A")][order]
    assert (np.diff(width) <= 0).all()
    assert all(area[i] >= area[i + 1] for i in range(len(order) - 1) if width[i] == width[i + 1])


@pytest.mark.parametrize("name", ["A", "F", "H", "I", "K"])
def test_minimalloc_instances_pack_fully(name):
    path = SHARED / "workloads" / "minimalloc" / f"{name}.1048576.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared is not beside this checkout)")
    workload = import_minimalloc_csv(path)
    solution = solve_packing(workload, time_limit=None, node_limit=1_000_000)
    assert solution.extra["full_packing"]
    assert validation_errors(workload, solution.offsets, workload.capacity) == []


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_the_lowest_feasible_offset_is_the_lowest_free_one(seed):
    """The dynamic rule's offset (mallocgame.md 3c) against a scan of every offset."""
    from mallocmuzero.solvers.canonical_kernels import NONE, _lowest_feasible

    workload = random_workload(seed, num_buffers=20, capacity_fraction=0.5)
    inst = packing_instance(workload)
    rng = np.random.default_rng(seed)
    offsets = np.full(inst.size.size, -1, np.int64)
    for b in rng.permutation(inst.size.size)[: inst.size.size // 2]:  # a valid partial map
        o = _lowest_feasible(b, inst.size, inst.neighbours_ptr, inst.neighbours, offsets,
                             inst.capacity)  # fmt: skip
        offsets[b] = o
    for w in np.flatnonzero(offsets < 0):
        meets = inst.neighbours[inst.neighbours_ptr[w] : inst.neighbours_ptr[w + 1]]
        busy = [(offsets[u], offsets[u] + inst.size[u]) for u in meets if offsets[u] >= 0]
        # The lowest free offset is 0 or the end of a busy interval (just above it was busy).
        ends = sorted({0} | {int(b) for _, b in busy})
        free = [o for o in ends if o + inst.size[w] <= inst.capacity
                and all(o + inst.size[w] <= a or b <= o for a, b in busy)]  # fmt: skip
        found = _lowest_feasible(w, inst.size, inst.neighbours_ptr, inst.neighbours, offsets,
                                 inst.capacity)  # fmt: skip
        assert found == (free[0] if free else NONE)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.05, 0.8))
def test_the_canonical_greedy_is_valid_and_never_worse_than_msa(seed, fraction):
    from mallocmuzero.env.workload import resolve_capacity
    from mallocmuzero.solvers.packing import solve_canonical

    workload = resolve_capacity(random_workload(seed, num_buffers=25), fraction=fraction)
    solution = solve_canonical(workload, time_limit=None, tries=5, seed=seed)
    assert validation_errors(workload, solution.offsets, workload.capacity) == []
    assert solution.estimated_time_s <= solve_msa(workload).estimated_time_s * (1 + 1e-12)
    assert solution.extra["tries"] == 5 and solution.solver == "canonical"
