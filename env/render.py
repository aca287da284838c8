"""Memory-map pictures: time on x, offset on y, placed buffers as rectangles shaded by saving."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mallocmuzero.env import cost_model
from mallocmuzero.env.solution import Solution
from mallocmuzero.env.workload import Workload


def render_memory_map(
    workload: Workload, solution: Solution, path: str | os.PathLike[str] | None = None
) -> bytes:
    """Draw the solution's fast memory as a PNG; write it to ``path`` when given.

    Each placed buffer is a rectangle over its live range and ``[offset, offset + size)``,
    coloured by its standalone saving (darker saves more). Returns the PNG bytes.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    saving = cost_model.standalone_savings(workload)
    placed = np.flatnonzero(solution.offsets >= 0)
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    patches = [
        Rectangle(
            (workload.start[b], solution.offsets[b]),
            workload.end[b] - workload.start[b],
            workload.size[b],
        )
        for b in placed
    ]
    values = saving[placed] / max(saving[placed].max(initial=0.0), 1e-30)
    collection = PatchCollection(patches, cmap="viridis_r", edgecolor="black", linewidth=0.3)
    collection.set_array(values)
    collection.set_clim(0.0, 1.0)
    ax.add_collection(collection)
    ax.set_xlim(0, workload.num_instructions)
    ax.set_ylim(0, solution.capacity)
    ax.set_xlabel("instruction")
    ax.set_ylabel("offset (bytes)")
    speedup = solution.all_slow_time_s / solution.estimated_time_s
    ax.set_title(
        f"{workload.name} - {solution.solver}: {placed.size} buffers in fast memory, "
        f"speed-up {speedup:.3f}x over all-slow"
    )
    fig.colorbar(collection, ax=ax, label="relative standalone saving")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return data
