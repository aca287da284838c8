"""XLA dump folder -> workload.

Reads ``*.cpu_after_optimizations-buffer-assignment.txt`` (allocations, values, uses and
``HloLiveRange``) and the matching optimized HLO text of one module (format notes in
``../shared/reference/xla-dumps.md``), then:

* the schedule is ``HloLiveRange``'s flattened ``InstructionSequence``; instructions of a
  ``while`` body or condition repeat ``known_trip_count`` times (nested loops multiply;
  an unknown count is taken as 1);
* every value with a live range becomes a buffer; values of one allocation at overlapping
  offsets whose live ranges overlap or touch share memory (loop-carried values, in-place
  updates) and are merged into one buffer;
* an instruction reads every value it uses and writes every value it defines, with the
  value's bytes; instructions that only alias (parameter, tuple, get-tuple-element,
  bitcast, while, ...) access nothing; flops follow XLA's HloCostAnalysis;
* entry parameters and live-out values are pinned to slow memory.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mallocmuzero.env.importers import hlo_costs, hlo_text
from mallocmuzero.env.workload import (
    DEFAULT_HARDWARE,
    Hardware,
    Workload,
    build_workload,
    placeable_peak,
)
from mallocmuzero.errors import WorkloadError, where

BUFFER_ASSIGNMENT_SUFFIX = ".cpu_after_optimizations-buffer-assignment.txt"
HLO_SUFFIX = ".cpu_after_optimizations.txt"
DEFAULT_CAPACITY_FRACTION = 0.25

_ALLOCATION = re.compile(r"^allocation (\d+): size (\d+)(.*)$")
_VALUE = re.compile(r"^\s*value: <(\d+) (\S+) @\d+> \(size=(\d+),offset=(\d+)\)")
_USED = re.compile(r"<(\d+) (\S+) @\d+>\n positions:\n")
_LIVE = re.compile(r"^\s*(\S+\{[\d,]*\}):(\d+)-(\d+)\s*$")


@dataclasses.dataclass
class Value:
    """One HLO value of the buffer assignment."""

    id: int
    name: str  # as printed: "dot.19", "tuple.59{}", "fusion.3{1}"
    size: int
    offset: int
    allocation: int
    defining: str = ""  # instruction of its first position
    uses: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # (instr, operand)

    @property
    def live_key(self) -> str:
        """The name HloLiveRange's BufferLiveRange prints for this value."""
        return self.name if "{" in self.name else self.name + "{}"


@dataclasses.dataclass
class BufferAssignment:
    """The parts of a buffer-assignment dump the importer needs."""

    values: dict[int, Value]
    allocation_kinds: dict[int, str]
    sequence: list[str]
    live: dict[str, tuple[int, int]]  # inclusive
    max_time: int


def parse_buffer_assignment(text: str, source: str) -> BufferAssignment:
    """Parse a buffer-assignment text file; raises WorkloadError when a section is missing."""
    if "HloLiveRange" not in text or "allocation 0:" not in text:
        raise WorkloadError(
            where(
                source, None, "not an XLA buffer-assignment dump (no allocations or HloLiveRange)"
            )
        )
    values: dict[int, Value] = {}
    kinds: dict[int, str] = {}
    current = -1
    head, _, rest = text.partition("\nUsed values:")
    for line in head.splitlines():
        m = _ALLOCATION.match(line)
        if m:
            current = int(m.group(1))
            kinds[current] = m.group(3)
            continue
        m = _VALUE.match(line)
        if m and current >= 0:
            vid = int(m.group(1))
            values[vid] = Value(vid, m.group(2), int(m.group(3)), int(m.group(4)), current)
    used, _, live_text = rest.partition("HloLiveRange (max ")
    headers = list(_USED.finditer(used))
    for k, m in enumerate(headers):
        body = used[m.end() : headers[k + 1].start() if k + 1 < len(headers) else len(used)]
        positions, _, tail = body.partition(" uses:\n")
        uses, _, _ = tail.partition(" from instruction:")
        value = values.get(int(m.group(1)))
        if value is None:
            continue
        first = positions.strip().splitlines()
        value.defining = first[0].split()[0] if first else ""
        value.uses = [_parse_use(u) for u in uses.strip().splitlines() if u.strip()]
    if not live_text:
        raise WorkloadError(where(source, None, "missing HloLiveRange section"))
    max_time = int(live_text.split(")", 1)[0])
    seq_text, _, live_part = live_text.partition("BufferLiveRange:")
    sequence = []
    for line in seq_text.splitlines():
        m = re.match(r"^\s*(\d+):(\S+)\s*$", line)
        if m:
            sequence.append(m.group(2))
    live = {}
    for line in live_part.splitlines():
        m = _LIVE.match(line)
        if m:
            live[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        elif line.strip().startswith("Live ranges at"):
            break
    if not sequence:
        raise WorkloadError(where(source, None, "empty InstructionSequence in HloLiveRange"))
    return BufferAssignment(values, kinds, sequence, live, max_time)


def _parse_use(line: str) -> tuple[str, int]:
    name, _, rest = line.strip().partition(",")
    m = re.search(r"operand (\d+)", rest)
    return name.strip(), int(m.group(1)) if m else -1


def find_module_files(folder: Path, module: str | None = None) -> tuple[Path, Path]:
    """Pick the (buffer assignment, HLO text) pair of one module in a dump folder.

    ``module`` selects by name substring; otherwise the module with the largest buffer
    assignment (JAX also compiles small helper modules).
    """
    if not folder.is_dir():
        raise WorkloadError(where(str(folder), None, "not a readable dump folder"))
    try:
        candidates = sorted(folder.glob("*" + BUFFER_ASSIGNMENT_SUFFIX))
    except OSError as exc:
        raise WorkloadError(where(str(folder), None, f"cannot list: {exc}")) from None
    if module:
        candidates = [c for c in candidates if module in c.name]
    if not candidates:
        what = f"matching {module!r}" if module else "at all"
        raise WorkloadError(where(str(folder), None, f"no *{BUFFER_ASSIGNMENT_SUFFIX} file {what}"))
    best = max(candidates, key=lambda p: p.stat().st_size)
    hlo = best.with_name(best.name.replace(BUFFER_ASSIGNMENT_SUFFIX, HLO_SUFFIX))
    if not hlo.is_file():
        raise WorkloadError(where(str(folder), None, f"missing {hlo.name} beside {best.name}"))
    return best, hlo


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(where(str(path), None, f"cannot read: {exc}")) from None


def import_xla_dump(
    folder: str | os.PathLike[str],
    *,
    module: str | None = None,
    name: str | None = None,
    hardware: Hardware = DEFAULT_HARDWARE,
    capacity: int | None = None,
    capacity_fraction: float = DEFAULT_CAPACITY_FRACTION,
) -> Workload:
    """Build a workload from an XLA dump folder (see the module docstring for the rules)."""
    ba_path, hlo_path = find_module_files(Path(folder), module)
    assignment = parse_buffer_assignment(_read(ba_path), str(ba_path))
    hlo = hlo_text.parse_module(_read(hlo_path), str(hlo_path))
    workload_name = name or re.sub(
        r"^module_\d+\.", "", ba_path.name.replace(BUFFER_ASSIGNMENT_SUFFIX, "")
    )
    return workload_from_parts(
        assignment, hlo, workload_name, hardware, capacity, capacity_fraction
    )


def workload_from_parts(
    assignment: BufferAssignment,
    module: hlo_text.Module,
    name: str,
    hardware: Hardware = DEFAULT_HARDWARE,
    capacity: int | None = None,
    capacity_fraction: float = DEFAULT_CAPACITY_FRACTION,
) -> Workload:
    """Merge values into buffers and build the workload of one parsed module."""
    by_name = module.instruction_index()
    flop_counter = hlo_costs.FlopCounter(module)
    repeats = hlo_costs.computation_repeats(module)
    sequence = assignment.sequence
    num_t = len(sequence)
    time_of = {instr: t for t, instr in enumerate(sequence)}

    live_values = _live_values(assignment, num_t)
    groups = _overlapping_groups(live_values)
    buffers, buffer_of_value = _merged_buffers(groups, assignment, module, by_name, num_t)
    accesses = _accesses(assignment, module, by_name, time_of, buffers, buffer_of_value, num_t)
    instructions = _instructions(sequence, by_name, flop_counter, repeats, accesses)

    workload = build_workload(
        name=name,
        instructions=instructions,
        buffers=buffers,
        hardware=hardware,
        capacity=capacity or 1,
        source=name,
    )
    if capacity is None:
        peak = placeable_peak(workload)
        workload = workload.with_capacity(max(1, int(peak * capacity_fraction)))
    return workload


def _live_values(assignment: BufferAssignment, num_t: int) -> list[tuple[Any, int, int]]:
    """Values with a live range, as half-open [start, end) clamped to the schedule."""
    live_values = []
    for value in assignment.values.values():
        span = assignment.live.get(value.live_key)
        if span is None:
            continue
        start, end = span
        live_values.append((value, start, min(end + 1, num_t)))
    return live_values


def _overlapping_groups(live_values: list[tuple[Any, int, int]]) -> dict[int, list]:
    """Values merged into one buffer (union-find).

    Merged: same allocation, overlapping offsets, overlapping or touching lifetimes.
    """
    parent = {v.id: v.id for v, _, _ in live_values}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    by_allocation: dict[int, list] = {}
    for item in live_values:
        by_allocation.setdefault(item[0].allocation, []).append(item)
    for items in by_allocation.values():
        items.sort(key=lambda it: it[1])
        for i, (a, _, ea) in enumerate(items):
            for b, sb, _ in items[i + 1 :]:
                if sb >= ea:  # half-open: b starts after a's last instruction
                    break
                if a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                    parent[find(a.id)] = find(b.id)

    groups: dict[int, list] = {}
    for item in live_values:
        groups.setdefault(find(item[0].id), []).append(item)
    return groups


def _merged_buffers(
    groups: dict[int, list],
    assignment: BufferAssignment,
    module: hlo_text.Module,
    by_name: dict[str, hlo_text.Instruction],
    num_t: int,
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """One workload buffer per group, and the buffer of every value.

    Pinned: entry parameters, live-out values and the root of the entry computation.
    """
    entry_root = next(i.name for i in module.computations[module.entry] if i.is_root)
    buffers = []
    buffer_of_value: dict[int, int] = {}
    for bid, (_, items) in enumerate(sorted(groups.items())):
        lo = min(v.offset for v, _, _ in items)
        hi = max(v.offset + v.size for v, _, _ in items)
        start = min(s for _, s, _ in items)
        end = max(e for _, _, e in items)
        pinned = False
        for v, _, e in items:
            kind = assignment.allocation_kinds.get(v.allocation, "")
            is_param = (
                "parameter" in kind
                and by_name.get(v.defining) is not None
                and (
                    by_name[v.defining].opcode == "parameter"
                    and by_name[v.defining].computation == module.entry
                )
            )
            live_out = ("maybe-live-out" in kind or "output shape" in kind) and e == num_t
            pinned = pinned or is_param or live_out or v.defining == entry_root
        for v, _, _ in items:
            buffer_of_value[v.id] = bid
        buffers.append(
            {
                "id": bid,
                "size": max(1, hi - lo),
                "start": start,
                "end": end,
                "pinned": pinned,
                "name": items[0][0].name,
            }  # fmt: skip
        )
    return buffers, buffer_of_value


def _accesses(
    assignment: BufferAssignment,
    module: hlo_text.Module,
    by_name: dict[str, hlo_text.Instruction],
    time_of: dict[str, int],
    buffers: list[dict[str, Any]],
    buffer_of_value: dict[int, int],
    num_t: int,
) -> list[dict[int, float]]:
    """Bytes per buffer of every instruction: reads of used values, writes of defined ones.

    Stretches a buffer's live range over a last use that XLA's range leaves out.
    """
    accesses: list[dict[int, float]] = [{} for _ in range(num_t)]
    for value in assignment.values.values():
        b = buffer_of_value.get(value.id)
        if b is None:
            continue
        touched = [(name, k) for name, k in value.uses]
        if value.defining:
            touched.append((value.defining, -1))
        for instr_name, k in touched:
            t = time_of.get(instr_name)
            instr = by_name.get(instr_name)
            if t is None or instr is None or instr.opcode in hlo_text.FREE_OPS:
                continue
            nbytes = hlo_costs.access_bytes(module, by_name, instr, k, value.size)
            if nbytes <= 0:
                continue
            accesses[t][b] = accesses[t].get(b, 0.0) + nbytes
            # XLA's live range can end before a last use inside a nested computation.
            buffers[b]["start"] = min(buffers[b]["start"], t)
            buffers[b]["end"] = max(buffers[b]["end"], t + 1)
    return accesses


def _instructions(
    sequence: Sequence[str],
    by_name: dict[str, hlo_text.Instruction],
    flop_counter: hlo_costs.FlopCounter,
    repeats: dict[str, float],
    accesses: list[dict[int, float]],
) -> list[dict[str, Any]]:
    """The workload's instructions: FLOPs, repeat count and accesses, in schedule order."""
    instructions = []
    for t, instr_name in enumerate(sequence):
        instr = by_name.get(instr_name)
        flops = 0.0
        repeat = 1.0
        if instr is not None:
            f, tr = flop_counter.instruction(instr)
            flops = f + tr
            repeat = repeats.get(instr.computation, 1.0)
        item = {"flops": flops, "accesses": [[b, n] for b, n in sorted(accesses[t].items())]}
        if repeat != 1.0:
            item["repeat"] = repeat
        instructions.append(item)
    return instructions
