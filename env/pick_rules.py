"""Game v2's pick candidates (mallocgame.md section 3b): ordering rules and encodings.

A pick step offers ``K`` undecided buffers; each pick slot has a *source*:

* a source ``r >= 0`` is ordering rule ``r``: the slot offers the first undecided buffer in
  that rule's order (rule 0 is msa's order, so slot 0 is always msa's next buffer); the
  last rule, ``lowest_offset``, is dynamic (mallocgame.md section 3c): it offers the
  undecided buffer whose lowest feasible offset is smallest, ties by area (size x live
  range) descending, then msa's order;
* a source ``-j < 0`` is window position ``j``: the ``j``-th undecided buffer after msa's
  next one.

Encodings: ``window`` (msa's next ``K`` buffers), ``rules`` (the first ``K`` rules),
``hybrid`` (the first half of the slots rules, the rest a window) and ``dynamic`` (the
first ``K - 1`` rules, then the dynamic rule). Pure numpy; the game's kernels read the
orders from the bank (the dynamic rule's row is its tie order).
"""

from __future__ import annotations

import numpy as np

from mallocmuzero.env import cost_model
from mallocmuzero.env.workload import Workload

#: Ordering rules, by index: a planner's simple orders (rule 0 is msa's own).
RULES = (
    "msa",
    "saving",  # standalone saving, descending
    "saving_per_byte",  # standalone saving per byte, descending
    "size_ascending",
    "lifetime_ascending",
    "start_ascending",
    "end_descending",
    "saving_per_byte_time",  # standalone saving per byte and instruction, descending
    "lowest_offset",  # dynamic: the lowest feasible offset first (ties: area descending)
)
DYNAMIC_RULE = RULES.index("lowest_offset")
ENCODINGS = ("window", "rules", "hybrid", "dynamic")


def rule_keys(workload: Workload) -> np.ndarray:
    """``[R - 1, B]`` sort keys, larger first, one row per static rule of :data:`RULES`."""
    saving = cost_model.standalone_savings(workload)
    size = workload.size.astype(np.float64)
    lifetime = (workload.end - workload.start).astype(np.float64)
    keys = np.stack(
        [
            saving / np.sqrt(size),  # msa's key, rounded below with the others
            saving,
            saving / size,
            -size,
            -lifetime,
            -workload.start.astype(np.float64),
            workload.end.astype(np.float64),
            saving / (size * lifetime),
        ]
    )
    return cost_model.round_significant(keys.ravel()).reshape(keys.shape)


def rule_orders(workload: Workload) -> np.ndarray:
    """``[R, U]`` the unpinned buffers in each rule's order (row 0: msa's presentation order).

    Ties fall back to msa's own tie rules (size, live-range length descending, then id).
    The dynamic rule's row is its tie order: area (size x live time, loop repeats
    counted) descending, then msa's order.
    """
    static = [cost_model.order_by_key(workload, key) for key in rule_keys(workload)]
    area = workload.size * workload.live_time()
    msa = static[0]
    return np.stack([*static, msa[np.argsort(-area[msa], kind="stable")]])


def pick_sources(num_candidates: int, encoding: str) -> np.ndarray:
    """The source of each of ``K`` pick slots (rule index ``>= 0``, window position ``< 0``)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown pick encoding {encoding!r}; choose one of {ENCODINGS}")
    if num_candidates < 1:
        raise ValueError(f"the number of pick candidates must be >= 1 (got {num_candidates})")
    rules = {"window": 1, "rules": num_candidates, "hybrid": (num_candidates + 1) // 2,
             "dynamic": num_candidates}[encoding]  # fmt: skip
    if rules > len(RULES):
        raise ValueError(f"{encoding} offers at most {len(RULES)} rules (got K={num_candidates})")
    window = num_candidates - rules
    sources = np.concatenate([np.arange(rules), -np.arange(1, window + 1)]).astype(np.int64)
    if encoding == "dynamic" and num_candidates > 1:
        sources[-1] = DYNAMIC_RULE  # the dynamic rule takes the last rule's slot
    return sources
