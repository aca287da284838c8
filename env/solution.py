"""Solutions (mallocgame.md section 4): the placement map, its validation and its scores.

Scores are always recomputed by the cost model from the placements, never trusted from a
solver's own report.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from mallocmuzero.env import cost_model
from mallocmuzero.env.workload import Workload, read_json, write_json_atomic
from mallocmuzero.errors import SolutionError, where

SOLUTION_FORMAT = "mallocmuzero.solution/1"


@dataclasses.dataclass
class Solution:
    """A placement of every buffer: ``offsets[b]`` is the offset of buffer *index* b, or -1."""

    workload: str
    capacity: int
    solver: str
    offsets: np.ndarray
    estimated_time_s: float
    all_slow_time_s: float
    optimal: bool | None = None
    bound_time_s: float | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def fast(self) -> np.ndarray:
        """Boolean mask of buffers in fast memory."""
        return self.offsets >= 0


def make_solution(
    workload: Workload,
    offsets: np.ndarray,
    solver: str,
    *,
    optimal: bool | None = None,
    bound_time_s: float | None = None,
    extra: dict[str, Any] | None = None,
) -> Solution:
    """Wrap offsets into a :class:`Solution`, computing its times with the cost model."""
    offsets = np.asarray(offsets, dtype=np.int64)
    return Solution(
        workload=workload.name,
        capacity=workload.capacity,
        solver=solver,
        offsets=offsets,
        estimated_time_s=cost_model.total_time(workload, offsets >= 0),
        all_slow_time_s=cost_model.total_time(workload),
        optimal=optimal,
        bound_time_s=bound_time_s,
        extra=dict(extra or {}),
    )


def solution_to_dict(workload: Workload, solution: Solution) -> dict[str, Any]:
    """The canonical JSON object (``mallocmuzero.solution/1``)."""
    data: dict[str, Any] = {
        "format": SOLUTION_FORMAT,
        "workload": solution.workload,
        "capacity": solution.capacity,
        "solver": solution.solver,
        "placements": [
            {"buffer": int(bid), "offset": int(off) if off >= 0 else None}
            for bid, off in zip(workload.buffer_ids, solution.offsets)
        ],
        "estimated_time_s": solution.estimated_time_s,
        "all_slow_time_s": solution.all_slow_time_s,
    }
    if solution.optimal is not None:
        data["optimal"] = solution.optimal
    if solution.bound_time_s is not None:
        data["bound_time_s"] = solution.bound_time_s
    data.update(solution.extra)
    return data


def save_solution(workload: Workload, solution: Solution, path: str | os.PathLike[str]) -> None:
    """Write a solution file atomically."""
    write_json_atomic(solution_to_dict(workload, solution), path)


def solution_from_dict(data: Any, workload: Workload, source: str) -> Solution:
    """Read a solution object against its workload (ids resolved, every buffer covered)."""
    if not isinstance(data, Mapping):
        raise SolutionError(where(source, None, "top level must be a JSON object"))
    if data.get("format") != SOLUTION_FORMAT:
        raise SolutionError(
            where(source, "format", f"expected {SOLUTION_FORMAT!r}, got {data.get('format')!r}")
        )
    for key in ("capacity", "placements"):
        if key not in data:
            raise SolutionError(where(source, key, "missing"))
    capacity = data["capacity"]
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
        raise SolutionError(where(source, "capacity", f"must be an integer > 0 (got {capacity!r})"))
    index_of = {int(bid): i for i, bid in enumerate(workload.buffer_ids)}
    offsets = np.full(workload.num_buffers, -1, dtype=np.int64)
    seen = np.zeros(workload.num_buffers, dtype=bool)
    placements = data["placements"]
    if not isinstance(placements, list):
        raise SolutionError(where(source, "placements", "must be a list"))
    for k, item in enumerate(placements):
        field = f"placements[{k}]"
        if not isinstance(item, Mapping) or "buffer" not in item or "offset" not in item:
            raise SolutionError(where(source, field, 'must be {"buffer": id, "offset": int|null}'))
        bid, off = item["buffer"], item["offset"]
        if bid not in index_of:
            raise SolutionError(where(source, field, f"unknown buffer id {bid!r}"))
        b = index_of[bid]
        if seen[b]:
            raise SolutionError(where(source, field, f"buffer {bid} placed twice"))
        seen[b] = True
        if off is not None:
            if isinstance(off, bool) or not isinstance(off, int):
                raise SolutionError(where(source, field, "offset must be an integer or null"))
            offsets[b] = off
    if not seen.all():
        missing = workload.buffer_ids[~seen][:5].tolist()
        raise SolutionError(where(source, "placements", f"buffers missing, e.g. {missing}"))
    solution = make_solution(workload.with_capacity(capacity), offsets, str(data.get("solver")))
    solution.workload = str(data.get("workload", workload.name))
    return solution


def load_solution(path: str | os.PathLike[str], workload: Workload) -> Solution:
    """Load a solution file and resolve it against ``workload``."""
    return solution_from_dict(read_json(path, SolutionError), workload, str(path))


def validation_errors(workload: Workload, offsets: np.ndarray, capacity: int) -> list[str]:
    """Every rule of spec section 4 that the placement breaks (empty when valid)."""
    errors = []
    ids = workload.buffer_ids
    placed = np.flatnonzero(offsets >= 0)
    for b in placed:
        if workload.pinned[b]:
            errors.append(f"buffer {ids[b]} is pinned but placed in fast memory")
        if offsets[b] + workload.size[b] > capacity:
            errors.append(
                f"buffer {ids[b]} at offset {offsets[b]} + size {workload.size[b]} "
                f"exceeds capacity {capacity}"
            )
    bad_negative = np.flatnonzero(offsets < -1)
    errors += [f"buffer {ids[b]} has negative offset {offsets[b]}" for b in bad_negative]
    # Pairwise overlap, sweeping by start time.
    order = placed[np.argsort(workload.start[placed], kind="stable")]
    active: list[int] = []
    for b in order:
        active = [a for a in active if workload.end[a] > workload.start[b]]
        for a in active:
            if (
                offsets[a] < offsets[b] + workload.size[b]
                and offsets[b] < offsets[a] + workload.size[a]
            ):
                errors.append(
                    f"buffers {ids[a]} and {ids[b]} overlap in time and in memory "
                    f"([{offsets[a]}, {offsets[a] + workload.size[a]}) vs "
                    f"[{offsets[b]}, {offsets[b] + workload.size[b]}))"
                )
        active.append(b)
    return errors


@dataclasses.dataclass(frozen=True)
class Scores:
    """Scores of spec section 4, recomputed from placements."""

    estimated_time_s: float
    all_slow_time_s: float
    speedup: float
    gain_over_heuristic: float | None = None
    share_of_optimum: float | None = None


def score(
    workload: Workload,
    offsets: np.ndarray,
    heuristic_time_s: float | None = None,
    optimal_time_s: float | None = None,
) -> Scores:
    """Speed-up over all-slow, gain over the heuristic and share of the optimum's saving."""
    t = cost_model.total_time(workload, offsets >= 0)
    t0 = cost_model.total_time(workload)
    gain = heuristic_time_s / t - 1 if heuristic_time_s is not None else None
    share = None
    if optimal_time_s is not None and t0 > optimal_time_s:
        share = (t0 - t) / (t0 - optimal_time_s)
    return Scores(t, t0, t0 / t, gain, share)
