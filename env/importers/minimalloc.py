"""MiniMalloc benchmark CSV (``id,lower,upper,size``, upper exclusive) -> workload.

Such a file has no instructions: every buffer is accessed for its full size at every time
unit of its live range, and nothing computes (everything is memory-bound), so the game
rewards packing the most bytes x time into fast memory.

Time is compressed exactly. Between two consecutive *event points* (the distinct lower
and upper bounds) the set of live buffers does not change, so one instruction stands for
the whole interval, with ``repeat`` = its length. Cost model v1 sums ``repeat x max(flops
/ peak, bytes / bandwidth)`` over instructions, so every placement costs exactly what it
costs in the one-instruction-per-time-unit form, with at most ``2n - 1`` instructions for
``n`` buffers instead of ``max(upper)`` (1,048,576 on MiniMalloc's challenging suite).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

from mallocmuzero.env.workload import DEFAULT_HARDWARE, Hardware, Workload, build_workload
from mallocmuzero.errors import WorkloadError, where

CAPACITY_IN_NAME = re.compile(r"\.(\d+)$")  # MiniMalloc names its instances NAME.CAPACITY.csv


def capacity_from_name(path: str | os.PathLike[str]) -> int | None:
    """The capacity a MiniMalloc file name carries (``A.1048576.csv`` -> 1048576), or None."""
    found = CAPACITY_IN_NAME.search(Path(path).stem)
    return int(found.group(1)) if found and int(found.group(1)) > 0 else None


def read_minimalloc_csv(path: Path) -> list[dict[str, int]]:
    """The rows of a MiniMalloc CSV as integer dicts; a one-line error for bad input."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise WorkloadError(where(str(path), None, f"cannot read CSV: {exc}")) from None
    need = {"id", "lower", "upper", "size"}
    if not rows or not need <= set(rows[0]):
        raise WorkloadError(where(str(path), "header", f"expected columns {sorted(need)}"))
    buffers = []
    for line, row in enumerate(rows, 2):
        try:
            buffer = {k: int(row[k]) for k in ("id", "lower", "upper", "size")}
        except (TypeError, ValueError):
            raise WorkloadError(where(str(path), f"line {line}", "non-integer field")) from None
        if buffer["lower"] < 0 or buffer["upper"] <= buffer["lower"]:
            raise WorkloadError(
                where(str(path), f"line {line}", "needs 0 <= lower < upper (upper exclusive)")
            )
        buffers.append(buffer)
    return buffers


def import_minimalloc_csv(
    path: str | os.PathLike[str],
    capacity: int | None = None,
    hardware: Hardware = DEFAULT_HARDWARE,
    compress: bool = True,
) -> Workload:
    """Read a MiniMalloc CSV; the capacity defaults to the one in the file's name.

    ``compress=False`` keeps one instruction per time unit (for checking the compression
    on small files; MiniMalloc's own instances then have a million instructions).
    """
    path = Path(path)
    capacity = capacity if capacity is not None else capacity_from_name(path)
    if capacity is None:
        raise WorkloadError(
            where(str(path), None, "needs a capacity: none in the file name (NAME.BYTES.csv)")
        )
    buffers = read_minimalloc_csv(path)
    lowers = np.array([b["lower"] for b in buffers])
    uppers = np.array([b["upper"] for b in buffers])
    if compress:
        points = np.unique(np.concatenate([lowers, uppers]))  # event points, sorted
    else:
        points = np.arange(0, uppers.max() + 1)
    starts, ends = np.searchsorted(points, lowers), np.searchsorted(points, uppers)
    accesses: list[list[list[int]]] = [[] for _ in range(len(points) - 1)]
    for b, start, end in zip(buffers, starts, ends, strict=True):
        for t in range(start, end):
            accesses[t].append([b["id"], b["size"]])
    return build_workload(
        name=path.stem,
        instructions=[
            {"flops": 0.0, "repeat": int(points[t + 1] - points[t]), "accesses": a}
            for t, a in enumerate(accesses)
        ],
        buffers=[
            {"id": b["id"], "size": b["size"], "start": int(s), "end": int(e), "pinned": False}
            for b, s, e in zip(buffers, starts, ends, strict=True)
        ],
        hardware=hardware,
        capacity=capacity,
        source=str(path),
    )
