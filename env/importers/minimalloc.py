"""MiniMalloc benchmark CSV (``id,lower,upper,size``, upper exclusive) -> workload.

Such a file has no instructions, so each buffer gets one synthetic access of its full size
at every step of its live range, and instructions have no flops (everything is
memory-bound): the game then rewards packing the most bytes x steps into fast memory.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from mallocmuzero.env.workload import DEFAULT_HARDWARE, Hardware, Workload, build_workload
from mallocmuzero.errors import WorkloadError, where


def import_minimalloc_csv(
    path: str | os.PathLike[str], capacity: int, hardware: Hardware = DEFAULT_HARDWARE
) -> Workload:
    """Read a MiniMalloc CSV with an explicit capacity in bytes."""
    path = Path(path)
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
            buffers.append({k: int(row[k]) for k in ("id", "lower", "upper", "size")})
        except (TypeError, ValueError):
            raise WorkloadError(where(str(path), f"line {line}", "non-integer field")) from None
    t_max = max(b["upper"] for b in buffers)
    accesses: list[list[list[int]]] = [[] for _ in range(max(t_max, 0))]
    for b in buffers:
        for t in range(max(b["lower"], 0), min(b["upper"], t_max)):
            accesses[t].append([b["id"], b["size"]])
    return build_workload(
        name=path.stem,
        instructions=[{"flops": 0.0, "accesses": a} for a in accesses],
        buffers=[
            {
                "id": b["id"],
                "size": b["size"],
                "start": b["lower"],
                "end": b["upper"],
                "pinned": False,
            }
            for b in buffers
        ],
        hardware=hardware,
        capacity=capacity,
        source=str(path),
    )
